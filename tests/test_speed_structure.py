"""Structural guards for speed (no timings): work that grows with members stays linear, the
remembered answer imports only what it uses, a locked project fetches nothing for other
platforms, and a cold run fetches the planner's remedy crates in its first wave."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from fixture_registry import C, D, Server, _Handler, write_project, write_registry

ROOT = Path(__file__).resolve().parent.parent


# -- workspaces: linear in members ---------------------------------------------------------------

def _workspace(root: Path, n: int) -> Path:
    files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*", "tools/extra"]\nexclude = ["crates/old"]\n'
                           'resolver = "2"\n'}
    for i in range(n):
        dep = f'm{i - 1} = {{ path = "../m{i - 1}" }}\n' if i % 5 else ""
        files[f"crates/m{i}/Cargo.toml"] = (f'[package]\nname = "m{i}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                            f'[features]\nx = []\n\n[dependencies]\n{dep}')
    files["crates/old/Cargo.toml"] = '[package]\nname = "old"\nversion = "0.1.0"\n'
    files["tools/extra/Cargo.toml"] = '[package]\nname = "extra"\nversion = "0.1.0"\n'
    write_project(root, files)
    return root


def _counted(monkeypatch):
    """Count the calls to the glob expansion, the member expansion and the exclusion test."""
    from codemod import workspace

    counts = {"glob": 0, "members": 0, "excluded": 0}

    def wrap(owner, name, key):
        real = getattr(owner, name)

        def counting(*a, **k):
            counts[key] += 1
            return real(*a, **k)

        monkeypatch.setattr(owner, name, counting)

    wrap(workspace.glob, "glob", "glob")
    wrap(workspace, "_member_dirs", "members")
    wrap(workspace, "is_excluded", "excluded")
    return counts


@pytest.mark.parametrize("entry", ["root", "member", "scan"])
def test_workspace_loading_is_linear_in_members(tmp_path, monkeypatch, entry):
    from codemod.discover import find_manifests, group_workspaces
    from codemod.workspace import load_workspace

    figures = {}
    for n in (20, 80):
        root = _workspace(tmp_path / f"ws{n}", n)
        counts = _counted(monkeypatch)
        if entry == "root":
            ws = load_workspace(root, workspace=True)
            assert len(ws.members) == n + 1
        elif entry == "member":
            ws = load_workspace(root / "crates" / "m7")
            assert len(ws.members) == n + 1
        else:
            groups, broken = group_workspaces(find_manifests(root))
            assert not broken and len(groups) == 2         # the workspace, and the excluded package
        figures[n] = dict(counts)
        monkeypatch.undo()
    # expanding `members` and globbing happen a fixed number of times, not once per member
    assert figures[80]["members"] == figures[20]["members"] <= 4
    assert figures[80]["glob"] == figures[20]["glob"]
    # the exclusion test runs a bounded number of times per member
    assert figures[80]["excluded"] <= 4 * 80 + 8
    assert figures[80]["excluded"] - figures[20]["excluded"] <= 4 * 60


# -- the remembered answer imports only what it uses ---------------------------------------------

def test_remembered_answer_imports_neither_networkx_nor_tomlkit_nor_the_registry(tmp_path):
    proj = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", proj)
    env = dict(__import__("os").environ, CARGO_STATIC_FIX_CACHE_DIR=str(tmp_path / "cache"),
               CARGO_HOME=str(tmp_path / "cargo-home"))
    env.pop("CARGO_STATIC_FIX_NO_MEMO", None)
    argv = ["--explain", "--format", "json", str(proj), "--index-url", str(ROOT / "examples/registry/index")]
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from codemod import cli
        code = cli.main({argv!r})
        sys.stdout.flush()
        heavy = ["networkx", "tomlkit", "urllib3", "requests", "codemod.registry.index",
                 "codemod.registry.http", "codemod.run", "codemod.resolve", "codemod.plan"]
        print("\\nMODULES " + json.dumps([m for m in heavy if m in sys.modules]) + " CODE " + str(code))
    """)
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "MODULES" in first.stdout, first.stderr
    again = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    out_first, mods_first = first.stdout.rsplit("\nMODULES ", 1)
    out_again, mods_again = again.stdout.rsplit("\nMODULES ", 1)
    assert out_again == out_first                              # the same answer, remembered
    assert "networkx" in mods_first                            # the analysis ran the first time
    assert mods_again.split(" CODE ")[0] == "[]", mods_again   # and nothing heavy the second


# -- a locked project fetches nothing for platforms that are neither the target nor the host -----

LOCKED_CRATES = [
    C("openssl-sys", "0.9.91", links="openssl"),
    C("winonly", "1.0.0", [D("deeper", "1")]),
    C("deeper", "1.0.0"),
    C("maconly", "1.0.0"),
    C("tls", "1.0.0", [D("openssl-sys", "0.9"), D("winonly", "1", target="cfg(windows)"),
                       D("maconly", "1", target='cfg(target_os = "macos")')]),
]

LOCK = """\
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "tls",
]
""" + "".join(f"""
[[package]]
name = "{name}"
version = "{version}"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [{deps}]
""" for name, version, deps in [
    ("deeper", "1.0.0", ""), ("maconly", "1.0.0", ""), ("openssl-sys", "0.9.91", ""),
    ("tls", "1.0.0", '\n "maconly",\n "openssl-sys",\n "winonly",\n'), ("winonly", "1.0.0", '\n "deeper",\n')])


def _served(tmp_path, monkeypatch):
    write_registry(tmp_path / "reg", LOCKED_CRATES)
    asked: list[str] = []
    real = _Handler.do_GET

    def recording(self):
        asked.append(self.path.rsplit("/", 1)[-1])
        real(self)

    monkeypatch.setattr(_Handler, "do_GET", recording)
    return Server(tmp_path / "reg"), asked


@pytest.mark.parametrize("resolver", ["2", "1"])
def test_a_locked_project_does_not_fetch_crates_for_other_platforms(tmp_path, monkeypatch, capsys, resolver):
    from codemod import cli

    monkeypatch.setenv("CARGO_STATIC_FIX_NO_MEMO", "1")
    srv, asked = _served(tmp_path, monkeypatch)
    edition = "2021" if resolver == "2" else "2018"
    try:
        answers = {}
        for locked in (True, False):
            proj = write_project(tmp_path / f"app-{locked}", {
                "Cargo.toml": f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "{edition}"\n\n'
                              '[dependencies]\ntls = "1"\n'})
            if locked:
                (proj / "Cargo.lock").write_text(LOCK)
            monkeypatch.setenv("CARGO_STATIC_FIX_CACHE_DIR", str(tmp_path / f"cache-{locked}"))
            asked.clear()
            code = cli.main(["--explain", "--format", "json", str(proj), "--index-url", srv.index_url])
            assert code == 0
            doc = json.loads(capsys.readouterr().out)
            answers[locked] = ([c["crate"] for c in doc["culprits"]], doc.get("status"))
            fetched = set(asked)
            assert {"tls", "openssl-sys"} <= fetched
            if locked and resolver == "2":
                assert not fetched & {"winonly", "deeper", "maconly"}, fetched
            else:
                # no lock (versions are chosen for every platform, as cargo does), or resolver 1
                # (features unify across platforms): the other platforms' crates are read
                assert {"winonly", "deeper", "maconly"} <= fetched, fetched
        assert answers[True] == answers[False]
    finally:
        srv.close()


# -- a cold run fetches what the planner needs in its first wave ---------------------------------

@pytest.mark.parametrize("strategy", ["auto", "rustls"])
def test_the_planners_remedy_crates_arrive_in_the_first_wave(tmp_path, monkeypatch, capsys, seed_server, strategy):
    from codemod import cli

    monkeypatch.setenv("CARGO_STATIC_FIX_NO_MEMO", "1")
    proj = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", proj)
    (proj / "Cargo.lock").unlink()
    code = cli.main(["--explain", "-v", "--strategy", strategy, str(proj), "--index-url", seed_server.index_url])
    assert code == 0
    err = capsys.readouterr().err
    m = re.search(r"(\d+) files, (\d+) HTTP requests, (\d+) round trips", err)
    assert m, err
    assert int(m.group(3)) == 1, err             # one wave: the planner's checks found their data loaded
    assert int(m.group(1)) == int(m.group(2))    # every file fetched once


# -- a plan's checks load the workspace again without parsing it again ---------------------------

def test_a_plans_checks_parse_each_manifest_text_once(tmp_path, monkeypatch):
    """Every candidate check loads the workspace with edited texts; the files it does not edit are
    parsed once for the whole analysis, and their dependency entries read once."""
    from codemod import workspace
    from codemod.registry import open_index
    from codemod.run import Options, analyze_manifest
    from universe import crates

    members = [f"m{i}" for i in range(20)]
    files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n'}
    for i, m in enumerate(members):
        lead = f'm{i - i % 3} = {{ path = "../m{i - i % 3}" }}'
        dep = {0: 'reqwest = "0.11"', 1: f'reqwest = "0.11"\n{lead}', 2: lead}[i % 3]    # m1's edit is pruned
        files[f"crates/{m}/Cargo.toml"] = (f'[package]\nname = "{m}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                           f'[dependencies]\n{dep}\n')
    proj = write_project(tmp_path / "ws", files)
    write_registry(tmp_path / "reg", crates())
    parsed, deps = [], []
    real_parse, real_deps = workspace.parse_manifest, workspace.manifest_deps
    monkeypatch.setattr(workspace, "parse_manifest", lambda *a: parsed.append(a[1]) or real_parse(*a))
    monkeypatch.setattr(workspace, "manifest_deps", lambda m: deps.append(m.path) or real_deps(m))
    srv = Server(tmp_path / "reg")
    try:
        result = analyze_manifest(proj, Options(target="x86_64-unknown-linux-musl", workspace=True),
                                  open_index(srv.index_url), plan=True)
    finally:
        srv.close()
    assert result.plan.status == "fixable" and result.plan.evaluations >= 2
    edited = {p.resolve() for p in result.plan.texts}
    texts_seen = len(edited) * (result.plan.evaluations + 1)      # at most one text per edited file and check
    assert len(parsed) <= len(files) + texts_seen, (len(parsed), len(files), texts_seen)
    assert len(deps) <= len(files) + texts_seen, len(deps)


# -- a cold run starts the proc-macro check's archive reads during its wave ----------------------

def test_the_archives_the_proc_macro_check_reads_are_started_in_the_wave(tmp_path, monkeypatch, capsys, seed_server):
    from codemod import cli
    from codemod.registry import crates

    monkeypatch.setenv("CARGO_STATIC_FIX_NO_MEMO", "1")
    monkeypatch.setenv("CARGO_STATIC_FIX_CACHE_DIR", str(tmp_path / "cache"))     # cold
    proj = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", proj)
    (proj / "Cargo.lock").unlink()
    started, asked = [], []
    real_prefetch, real_ask = crates.CrateManifests.prefetch, crates.CrateManifests.proc_macros
    monkeypatch.setattr(crates.CrateManifests, "prefetch", lambda self, ref: started.append(ref) or real_prefetch(self, ref))
    monkeypatch.setattr(crates.CrateManifests, "proc_macros", lambda self, refs: asked.extend(refs) or real_ask(self, refs))
    code = cli.main(["--explain", "--format", "json", "--blocker", "openssl-sys", str(proj), "--index-url", seed_server.index_url])
    assert code == 0
    json.loads(capsys.readouterr().out)
    assert asked, "the proc-macro check read no archive"
    assert set(asked) <= set(started), set(asked) - set(started)
    assert {r.name for r in started} >= {"openssl-sys", "native-tls", "reqwest"}


def test_archive_prefetch_follows_the_crates_above_the_blocker():
    from codemod.model import Dep, Package, PkgId
    from codemod.prefetch import ArchivePrefetch

    def pkg(name, *deps, kind="normal"):
        return Package(PkgId(name, "1.0.0"), tuple(Dep(d, d, "1", kind) for d in deps), {})

    class Crates:
        def __init__(self):
            self.started = []

        def prefetch(self, ref):
            self.started.append(ref.name)

    c = Crates()
    hint = ArchivePrefetch(c, "openssl-sys")
    hint("app-lib", [pkg("app-lib", "reqwest", "serde")], ["reqwest", "serde"])
    hint("reqwest", [pkg("reqwest", "native-tls", "serde")], ["native-tls", "serde"])
    hint("serde", [pkg("serde")], [])
    hint("native-tls", [pkg("native-tls", "openssl-sys")], ["openssl-sys"])
    assert c.started == []                               # nothing is known to reach the blocker yet
    hint("openssl-sys", [pkg("openssl-sys", "cc", kind="build")], ["cc"])
    assert sorted(c.started) == ["app-lib", "native-tls", "openssl-sys", "reqwest"]
    hint("late-parent", [pkg("late-parent", "native-tls")], ["native-tls"])    # arrives after: joins
    assert c.started[-1] == "late-parent"
    hint("openssl-sys", [pkg("openssl-sys")], [])        # told again: nothing read twice
    assert sorted(c.started) == ["app-lib", "late-parent", "native-tls", "openssl-sys", "reqwest"]


# -- a project that builds no blocker never imports the graph library ----------------------------

@pytest.mark.parametrize("lock", [False, True])
def test_a_clean_project_does_not_import_networkx(tmp_path, lock):
    """The chains are drawn only when the blocker is built for the target; the graph library is
    loaded ahead (while cached index files are read) only when Cargo.lock names a blocker."""
    proj = write_project(tmp_path / "clean", {
        "Cargo.toml": '[package]\nname = "clean"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nbase64 = "0.21"\n'})
    if lock:
        (proj / "Cargo.lock").write_text(
            '# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 3\n\n'
            '[[package]]\nname = "base64"\nversion = "0.21.2"\n'
            'source = "registry+https://github.com/rust-lang/crates.io-index"\n'
            'checksum = "604178f6c5c21f02dc555784810edfb88d34ac2c73b2eae109655649ee73ce3d"\n\n'
            '[[package]]\nname = "clean"\nversion = "0.1.0"\ndependencies = [\n "base64",\n]\n')
    env = dict(__import__("os").environ, CARGO_STATIC_FIX_CACHE_DIR=str(tmp_path / "cache"),
               CARGO_HOME=str(tmp_path / "cargo-home"), CARGO_STATIC_FIX_NO_MEMO="1")
    argv = ["--explain", "--format", "json", str(proj), "--index-url", str(ROOT / "examples/registry/index")]
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from codemod import cli
        code = cli.main({argv!r})
        sys.stdout.flush()
        print("\\nNETWORKX " + str("networkx" in sys.modules) + " CODE " + str(code))
    """)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    out, tail = r.stdout.rsplit("\nNETWORKX ", 1)
    assert json.loads(out)["status"] == "clean", r.stderr
    assert tail.split(" CODE ")[0] == "False", r.stderr


# -- a warm run reads its cached files in the calling thread --------------------------------------

def test_a_warm_run_reads_cached_files_and_answers_without_worker_threads(tmp_path, monkeypatch, capsys, seed_server):
    """Cached index files and cached proc-macro answers are read where they are asked for: handing
    them to a thread pool costs more than reading them (the workers take turns for the
    interpreter). The warm answer is the cold one, and no request is made."""
    import concurrent.futures

    from codemod import cli

    monkeypatch.setenv("CARGO_STATIC_FIX_NO_MEMO", "1")
    monkeypatch.setenv("CARGO_STATIC_FIX_CACHE_DIR", str(tmp_path / "cache"))
    proj = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", proj)
    (proj / "Cargo.lock").unlink()
    argv = ["--explain", "--format", "json", "-v", str(proj), "--index-url", seed_server.index_url]
    assert cli.main(argv) == 0
    cold = capsys.readouterr()
    assert re.search(r" [1-9]\d* HTTP requests", cold.err), cold.err
    for t in threading.enumerate():         # archive reads the cold run started and did not need
        if t.name == "csf-archive":
            t.join(60)

    class NoPool:
        def __init__(self, *a, **k):
            raise AssertionError("a thread pool for answers the cache holds")

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", NoPool)
    assert cli.main(argv) == 0
    warm = capsys.readouterr()
    assert " 0 HTTP requests" in warm.err, warm.err
    assert json.loads(warm.out) == json.loads(cold.out)


def test_a_stale_or_missing_cache_entry_still_goes_to_the_network(tmp_path):
    from codemod.registry.cache import HttpCache
    from codemod.registry.index import MISS, open_index

    srv = Server(ROOT / "examples" / "registry")
    try:
        idx = open_index(srv.index_url, cache=HttpCache(tmp_path / "cache"))
        assert idx.source.at_hand("reqwest") is MISS           # nothing cached yet
        idx.fetch_many(["reqwest"])
        assert idx.requests >= 1 and idx.get("reqwest")
        again = open_index(srv.index_url, cache=HttpCache(tmp_path / "cache"))
        assert [p.id for p in again.source.at_hand("reqwest")] == [p.id for p in idx.get("reqwest")]
        stale = open_index(srv.index_url, cache=HttpCache(tmp_path / "cache", ttl=0), speculate="off")
        assert stale.source.at_hand("reqwest") is MISS          # too old to use without asking
        stale.fetch_many(["reqwest"])
        assert stale.requests == 1 and [p.id for p in stale.get("reqwest")] == [p.id for p in idx.get("reqwest")]
    finally:
        srv.close()
