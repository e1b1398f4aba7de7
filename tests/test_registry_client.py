"""The production registry client against real HTTP servers on 127.0.0.1: faults, the persistent
cache, concurrency, offline use of cargo's cache, .cargo/config.toml sources, named registries."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codemod.errors import RegistryError, ResolveError
from codemod.registry import http as http_mod
from codemod.registry.cache import HttpCache
from codemod.registry.config import open_registry
from codemod.registry.http import HttpFetcher, _retry_after
from codemod.registry.index import IndexSource, index_path
from codemod.registry.sources import SparseSource
from codemod.run import Options, analyze_manifest
from conftest import cargo_available
from fixture_registry import C, D, Server, cargo_home, write_project, write_registry

MUSL = "x86_64-unknown-linux-musl"
ROOT = Path(__file__).resolve().parent.parent
PKG = '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'

CRATES = [C("a", "1.0.0", [D("b", "1")]), C("b", "1.0.0", [D("openssl-sys", "0.9")]),
          C("openssl-sys", "0.9.91", features={"vendored": []}, links="openssl")]


class FaultServer:
    """Serves index files from a dict; a script per path says how each request is answered."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.script: dict[str, list[tuple]] = {}
        self.log: list[tuple[str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0].lstrip("/")
                owner.log.append((path, dict(self.headers)))
                steps = owner.script.get(path) or [("ok",)]
                step = steps.pop(0) if len(steps) > 1 else steps[0]
                body = owner.files.get(path)
                kind = step[0]
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    return
                if kind == "sleep":
                    time.sleep(step[1])
                if kind == "status":
                    data = b"busy"
                    self.send_response(step[1])
                    for k, v in (step[2] if len(step) > 2 else {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode()
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                if kind == "ok" and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind == "badjson":
                    data = b'{"name": "a", "vers": \n'
                if kind == "big":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 ** 12))
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if kind == "truncate":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"sparse+http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def index_files(crates) -> dict[str, str]:
    lines: dict[str, list[str]] = {}
    for c in crates:
        lines.setdefault(index_path(c.name), []).append(json.dumps(c.line("0" * 64)))
    return {p: "".join(x + "\n" for x in ls) for p, ls in lines.items()}


@pytest.fixture
def fault_server():
    srv = FaultServer(index_files(CRATES))
    yield srv
    srv.close()


def index(srv, cache=None, refresh=False, timeout=5.0):
    f = HttpFetcher(srv.url.removeprefix("sparse+"), cache, jobs=4, timeout=timeout, refresh=refresh, backoff=0.01)
    return IndexSource(SparseSource(f), jobs=4)


def project(tmp_path, deps='a = "1"') -> Path:
    return write_project(tmp_path / "p", {"Cargo.toml": PKG + deps + "\n"})


def analyze(proj, idx):
    return analyze_manifest(proj, Options(target=MUSL), idx).analysis


# -- faults ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("first", [("status", 500), ("status", 503), ("reset",), ("truncate",), ("badjson",)])
def test_transient_faults_are_retried(fault_server, tmp_path, first):
    fault_server.script["1/a"] = [first, ("ok",)]
    idx = index(fault_server)
    a = analyze(project(tmp_path), idx)
    assert [c.crate for c in a.culprits] == ["a"]
    assert [p for p, _ in fault_server.log].count("1/a") == 2


def test_429_waits_for_retry_after(fault_server, tmp_path):
    fault_server.script["1/a"] = [("status", 429, {"Retry-After": "1"}), ("ok",)]
    start = time.monotonic()
    analyze(project(tmp_path), index(fault_server))
    assert time.monotonic() - start >= 0.9
    assert _retry_after("120") == http_mod.MAX_RETRY_AFTER and _retry_after("0.5") == 0.5
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and _retry_after("soon") == 1.0


@pytest.mark.parametrize("fault,message", [
    (("status", 500), r"1/a: cannot reach the index \(HTTP 500; tried 4 times\)"),
    (("truncate",), r"1/a: cannot reach the index \(truncated response; tried 4 times\)"),
    (("badjson",), r"1/a: cannot reach the index \(the file is not valid JSON lines \(truncated\?\); tried 4 times\)"),
    (("big",), r"1/a: the index file is larger than 64 MiB; refusing it"),
    (("status", 403), r"1/a: the index answered HTTP 403"),
    (("sleep", 2.0), r"1/a: cannot reach the index \(timed out; tried 4 times\)"),
])
def test_persistent_faults_end_in_one_clear_error(fault_server, tmp_path, fault, message):
    fault_server.script["1/a"] = [fault]
    with pytest.raises(RegistryError, match=message):
        analyze(project(tmp_path), index(fault_server, timeout=0.5))


def test_missing_crate_names_the_chain(fault_server, tmp_path):
    del fault_server.files[index_path("openssl-sys")]
    with pytest.raises(ResolveError, match=r"no crate named `openssl-sys` in the index \(required by app → a → b → openssl-sys\)"):
        analyze(project(tmp_path), index(fault_server))


def test_faults_never_touch_the_manifest(fault_server, tmp_path):
    proj = project(tmp_path)
    before = (proj / "Cargo.toml").read_bytes()
    fault_server.script["1/b"] = [("status", 500)]
    r = subprocess.run([sys.executable, "-m", "codemod", str(proj), "--allow-dirty", "--index-url", fault_server.url],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "1/b: cannot reach the index (HTTP 500" in r.stderr and "Traceback" not in r.stderr
    assert (proj / "Cargo.toml").read_bytes() == before
    down = f"http://127.0.0.1:{fault_server.httpd.server_address[1]}/"
    fault_server.close()
    r = subprocess.run([sys.executable, "-m", "codemod", str(proj), "--allow-dirty", "--index-url", down],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "cannot reach the index (connection refused" in r.stderr
    assert (proj / "Cargo.toml").read_bytes() == before


def test_user_agent_names_the_tool_its_version_and_homepage(fault_server, tmp_path):
    analyze(project(tmp_path), index(fault_server))
    ua = fault_server.log[0][1]["User-Agent"]
    assert ua.startswith("cargo-static-fix/0.1.0 (+https://")


# -- the cache --------------------------------------------------------------------------------------

def test_fresh_cache_makes_no_request_and_stale_one_revalidates(fault_server, tmp_path):
    cache = HttpCache(tmp_path / "cache", ttl=300)
    analyze(project(tmp_path), index(fault_server, cache))
    first = len(fault_server.log)
    assert first == 3
    analyze(project(tmp_path), index(fault_server, cache))
    assert len(fault_server.log) == first                    # within the freshness window: no request
    idx = index(fault_server, cache, refresh=True)
    analyze(project(tmp_path), idx)                          # --refresh: revalidate, 304s
    assert len(fault_server.log) == 2 * first
    assert idx.source.fetcher.not_modified == 3
    assert all("If-None-Match" in h for _, h in fault_server.log[first:])
    stale = HttpCache(tmp_path / "cache", ttl=0)
    analyze(project(tmp_path), index(fault_server, stale))
    assert len(fault_server.log) == 3 * first


def test_corrupt_or_truncated_cache_entries_are_fetched_again(fault_server, tmp_path):
    cache = HttpCache(tmp_path / "cache")
    analyze(project(tmp_path), index(fault_server, cache))
    files = sorted((tmp_path / "cache").rglob("*"))
    entries = [f for f in files if f.is_file()]
    assert len(entries) == 3
    entries[0].write_bytes(entries[0].read_bytes()[:-5])         # truncated body
    entries[1].write_bytes(b"\x00garbage")                        # broken header
    before = len(fault_server.log)
    a = analyze(project(tmp_path), index(fault_server, cache))
    assert [c.crate for c in a.culprits] == ["a"]
    assert len(fault_server.log) == before + 2


def test_two_processes_fill_one_cache_at_once(fault_server, tmp_path):
    proj = project(tmp_path)
    fault_server.script = {p: [("sleep", 0.05)] for p in fault_server.files}
    env = dict(os.environ, CARGO_STATIC_FIX_CACHE_DIR=str(tmp_path / "shared-cache"))
    cmd = [sys.executable, "-m", "codemod", "--explain", "--format", "json", str(proj), "--index-url", fault_server.url]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert json.loads(outs[0][0])["culprits"] == json.loads(outs[1][0])["culprits"]
    cache = HttpCache(tmp_path / "shared-cache")
    base = fault_server.url.removeprefix("sparse+")
    assert all(cache.get(base + p) is not None for p in fault_server.files)
    assert not list((tmp_path / "shared-cache").rglob(".tmp-*"))


# -- offline: cargo's own cache ----------------------------------------------------------------------

def cargo_cache_file(crates, version: str = "etag") -> bytes:
    out = bytes([3]) + (2).to_bytes(4, "little") + version.encode() + b"\0"
    for c in crates:
        out += c.vers.encode() + b"\0" + json.dumps(c.line("0" * 64)).encode() + b"\0"
    return out


def test_offline_reads_a_cache_in_cargos_format(tmp_path, monkeypatch):
    home = tmp_path / "cargo-home"
    base = home / "registry/index/index.crates.io-1949cf8c6b5b557f/.cache"
    for name in ("a", "b", "openssl-sys"):
        p = base / index_path(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(cargo_cache_file([c for c in CRATES if c.name == name]))
    monkeypatch.setenv("CARGO_HOME", str(home))
    proj = project(tmp_path)
    a = analyze(proj, open_registry(proj, offline=True))
    assert [c.chains for c in a.culprits] == [(("app", "a", "b", "openssl-sys"),)]
    (base / index_path("b")).unlink()
    with pytest.raises(ResolveError, match=r"--offline: cargo's index cache .* has no data for `b`"):
        analyze(proj, open_registry(proj, offline=True))
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "empty"))
    with pytest.raises(RegistryError, match="--offline: cargo has no cached index for crates.io"):
        open_registry(proj, offline=True)


@pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: it is needed to fill its own cache")
def test_offline_after_cargo_has_run(universe, tmp_path, monkeypatch):
    srv, _ = universe
    home = cargo_home(tmp_path, srv)
    proj = write_project(tmp_path / "p", {"Cargo.toml": PKG + 'reqwest = "0.11"\ngit2 = "0.17"\n'})
    env = dict(os.environ, CARGO_HOME=str(home))
    assert subprocess.run(["cargo", "generate-lockfile"], cwd=proj, env=env, capture_output=True).returncode == 0
    online = analyze_manifest(proj, Options(target=MUSL), open_registry(proj, index_url=srv.index_url)).analysis
    monkeypatch.setenv("CARGO_HOME", str(home))      # its config.toml replaces crates-io with the fixture registry
    idx = open_registry(proj, offline=True)
    offline = analyze_manifest(proj, Options(target=MUSL), idx).analysis
    assert [c.as_json() for c in offline.culprits] == [c.as_json() for c in online.culprits]
    assert idx.requests == 0


# -- .cargo/config.toml ------------------------------------------------------------------------------

def test_vendor_directory_source_matches_the_sparse_index(universe, tmp_path):
    srv, root = universe
    from universe import crates

    vendor = tmp_path / "p" / "vendor"
    for c in crates():
        d = vendor / f"{c.name}-{c.vers}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "Cargo.toml").write_text(c.manifest())
    proj = write_project(tmp_path / "p", {
        "Cargo.toml": PKG + 'reqwest = "0.11"\nsqlx = { version = "0.8.6", features = ["runtime-tokio-native-tls"] }\n',
        ".cargo/config.toml": '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
                              '[source.vendored-sources]\ndirectory = "vendor"\n',
    })
    sparse = analyze_manifest(proj, Options(target=MUSL), open_registry(proj, index_url=srv.index_url)).analysis
    vendored = analyze_manifest(proj, Options(target=MUSL), open_registry(proj)).analysis
    assert vendored.culprits and [c.as_json() for c in vendored.culprits] == [c.as_json() for c in sparse.culprits]
    assert [c.as_json() for c in vendored.host_only] == [c.as_json() for c in sparse.host_only]


@pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: `cargo vendor` writes the directory")
def test_cargo_vendor_output_is_read_like_cargo(universe, tmp_path):
    srv, _ = universe
    home = cargo_home(tmp_path, srv)
    proj = write_project(tmp_path / "p", {"Cargo.toml": PKG + 'reqwest = { version = "0.11", features = ["json"] }\n'})
    env = dict(os.environ, CARGO_HOME=str(home))
    r = subprocess.run(["cargo", "vendor", "--respect-source-config", "vendor"], cwd=proj, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (proj / ".cargo").mkdir()
    (proj / ".cargo/config.toml").write_text(r.stdout)     # cargo prints the source replacement to use
    sparse = analyze_manifest(proj, Options(target=MUSL), open_registry(proj, index_url=srv.index_url)).analysis
    vendored = analyze_manifest(proj, Options(target=MUSL), open_registry(proj)).analysis
    assert [c.as_json() for c in vendored.culprits] == [c.as_json() for c in sparse.culprits]


def test_local_registry_and_named_registries(universe, tmp_path, monkeypatch):
    srv, root = universe
    alt_root = tmp_path / "alt"
    write_registry(alt_root, [C("internal-tls", "2.0.0", [D("native-tls", "^0.2", registry="https://github.com/rust-lang/crates.io-index")])])
    alt = Server(alt_root)
    try:
        proj = write_project(tmp_path / "p", {
            "Cargo.toml": PKG + 'internal-tls = { version = "2", registry = "corp" }\n',
            ".cargo/config.toml": f'[registries.corp]\nindex = "{alt.index_url}"\n\n'
                                  '[source.crates-io]\nreplace-with = "mirror"\n\n'
                                  f'[source.mirror]\nlocal-registry = "{root}"\n',
        })
        a = analyze(proj, open_registry(proj))
        assert [(c.dependency, c.chains[0]) for c in a.culprits] == [
            ("internal-tls", ("app", "internal-tls", "native-tls", "openssl-sys"))]
        # the environment names a registry's index the way cargo's does
        (proj / ".cargo/config.toml").write_text(f'[source.crates-io]\nreplace-with = "mirror"\n\n[source.mirror]\nlocal-registry = "{root}"\n')
        monkeypatch.setenv("CARGO_REGISTRIES_CORP_INDEX", alt.index_url)
        assert [c.dependency for c in analyze(proj, open_registry(proj)).culprits] == ["internal-tls"]
        monkeypatch.delenv("CARGO_REGISTRIES_CORP_INDEX")
        with pytest.raises(RegistryError, match="no registry named `corp`"):
            analyze(proj, open_registry(proj))
    finally:
        alt.close()


def test_locked_refuses_versions_not_in_the_lock(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path / "p", {"Cargo.toml": PKG + 'openssl = "0.10"\n'})
    with pytest.raises(ResolveError, match="--locked needs a Cargo.lock"):
        analyze_manifest(proj, Options(target=MUSL, locked=True), open_registry(proj, index_url=srv.index_url))
    (proj / "Cargo.lock").write_text('version = 3\n\n[[package]]\nname = "openssl"\nversion = "0.10.56"\n'
                                     'source = "registry+https://github.com/rust-lang/crates.io-index"\n')
    with pytest.raises(ResolveError, match=r"--locked: Cargo.lock has no version of `openssl-sys` matching"):
        analyze_manifest(proj, Options(target=MUSL, locked=True), open_registry(proj, index_url=srv.index_url))


# -- remembered answers --------------------------------------------------------------------------

def test_read_only_runs_reuse_an_answer_until_an_input_changes(tmp_path, monkeypatch, capsys):
    from codemod import cli, run

    reg = tmp_path / "reg"
    write_registry(reg, CRATES)
    proj = project(tmp_path)
    argv = ["--explain", "--format", "json", str(proj), "--index-url", str(reg / "index")]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out

    def no_analysis(*a, **k):
        raise AssertionError("the analysis ran although nothing changed")

    real = run.analyze_manifest
    monkeypatch.setattr(run, "analyze_manifest", no_analysis)
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first            # answered from memory
    monkeypatch.setattr(run, "analyze_manifest", real)

    # an index file changes: b no longer depends on openssl-sys
    (reg / "index" / index_path("b")).write_text(json.dumps(C("b", "1.0.0").line("0" * 64)) + "\n")
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["culprits"] == []
    # a manifest changes
    (proj / "Cargo.toml").write_text(PKG + 'openssl-sys = "0.9"\n')
    assert cli.main(argv) == 0
    assert [c["crate"] for c in json.loads(capsys.readouterr().out)["culprits"]] == ["openssl-sys"]
