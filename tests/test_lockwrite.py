"""Cargo.lock after a fix: cargo must accept it as it is (`cargo tree --locked`), every version
that was locked stays locked, and the lock the built-in writer makes is the one cargo makes.

Each case: cargo makes the lock against the fixture registry, the CLI applies the fix (with cargo
doing the lock update, or with the built-in writer), then cargo checks the result.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codemod.cli import main
from codemod.lockwrite import lock_changes
from conftest import cargo_available
from fixture_registry import cargo_home, write_project
from test_cargo_differential import REQ, cargo, cargo_blocker_features, pkg

pytestmark = [
    pytest.mark.cargo,
    pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: the lock tests need it as the oracle"),
]

MUSL = "x86_64-unknown-linux-musl"
WORKSPACE = {"Cargo.toml": '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n',
             "a/Cargo.toml": pkg("a", 'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }'),
             "b/Cargo.toml": pkg("b", 'reqwest = "0.11"\nlibc = "0.2"')}


@dataclass
class Case:
    id: str
    files: dict[str, str]
    strategy: str
    added: set[str]                                  # names the lock gains
    removed: set[str] = field(default_factory=set)   # names it loses (at least these)
    prepare: list[list[str]] = field(default_factory=list)   # cargo commands after generate-lockfile
    member_gains: dict[str, str] = field(default_factory=dict)  # member -> a dependency its entry gains


CASES = [
    # openssl 0.10.55 / openssl-sys 0.9.90 locked while newer versions exist: they must stay; the
    # vendored build adds openssl-src and its build dependency cc
    Case("vendored", {"Cargo.toml": pkg("hello", REQ)}, "vendored", {"openssl-src", "cc"},
         prepare=[["update", "-p", "openssl", "--precise", "0.10.55"], ["update", "-p", "openssl-sys", "--precise", "0.9.90"]]),
    Case("rustls", {"Cargo.toml": pkg("hello", REQ)}, "rustls", {"rustls", "hyper-rustls"},
         {"native-tls", "hyper-tls", "tokio-native-tls", "openssl", "openssl-sys", "openssl-probe", "schannel",
          "security-framework", "openssl-macros", "cc", "pkg-config"}),
    Case("openssl-dep", {"Cargo.toml": pkg("hello", 'native-tls = "0.2"')}, "openssl-dep", {"openssl-src"},
         member_gains={"hello": "openssl"}),
    # a second version of a locked name: every entry naming openssl-src now needs "name version"
    Case("second-version", {"Cargo.toml": pkg("hello", REQ + '\nopenssl-src = "300"')}, "vendored", {"openssl-src"}),
    Case("workspace-rustls", WORKSPACE, "rustls", set(), {"native-tls", "hyper-tls", "tokio-native-tls", "openssl-sys"}),
    Case("workspace-openssl-dep", WORKSPACE, "openssl-dep", {"openssl-src"}, member_gains={"b": "openssl"}),
]


def _names(text: str) -> set[tuple[str, str, str | None]]:
    return {(p["name"], p["version"], p.get("source")) for p in tomllib.loads(text)["package"]}


def _deps(text: str, name: str) -> list[str]:
    return next(p.get("dependencies", []) for p in tomllib.loads(text)["package"] if p["name"] == name)


@pytest.fixture(scope="module")
def home(universe, tmp_path_factory):
    srv, _ = universe
    return cargo_home(tmp_path_factory.mktemp("cargo"), srv)


def _locked_project(case: Case, fmt: int, home: Path, root: Path) -> str:
    write_project(root, case.files)
    r = cargo(["generate-lockfile"], root, home)
    assert r.returncode == 0, r.stderr
    for cmd in case.prepare:
        r = cargo(cmd, root, home)
        assert r.returncode == 0, r.stderr
    lock = root / "Cargo.lock"
    text = lock.read_text()
    assert "version = 4\n" in text
    if fmt == 3:
        text = text.replace("version = 4\n", "version = 3\n", 1)
        lock.write_text(text)
        assert cargo(["tree", "--locked"], root, home).returncode == 0
    return text


def _fix(root: Path, case: Case, writer: str, monkeypatch, capsys, *extra: str) -> tuple[int, str, str]:
    monkeypatch.setenv("CARGO_STATIC_FIX_LOCK_WRITER", writer)
    code = main([str(root), "--strategy", case.strategy, "--allow-dirty", *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", [3, 4])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lock_after_fix(case: Case, fmt: int, universe, home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARGO_HOME", str(home))
    results = {}
    for writer in ("cargo", "builtin"):
        root = tmp_path / writer
        before = _locked_project(case, fmt, home, root)
        code, out, err = _fix(root, case, writer, monkeypatch, capsys)
        assert code == 0, err
        after = (root / "Cargo.lock").read_text()
        assert "Cargo.lock: updated:" in out, out
        results[writer] = after
        # cargo takes the lock as it is: nothing left to add, remove or change
        r = cargo(["tree", "--locked", "-e", "normal,build,dev"], root, home)
        assert r.returncode == 0, (writer, r.stderr, after)
        r = cargo(["tree", "--locked", "--offline", "--target", MUSL], root, home)
        assert r.returncode == 0, (writer, r.stderr)
        # every version that was locked is still locked, or gone with everything of its name
        added, removed, changed = lock_changes(before, after)
        assert changed == ()
        old, new = _names(before), _names(after)
        assert {k for k in old if k[0] in {n[0] for n in new}} <= new
        assert {k[0] for k in new - old} == case.added
        assert case.removed <= {k[0] for k in old - new}
        for member, dep in case.member_gains.items():
            assert dep not in _deps(before, member) and dep in _deps(after, member)
        # and the fix itself holds
        versions, feats = cargo_blocker_features(root, home, MUSL, ["--workspace"])
        assert not versions or "vendored" in feats
        if writer == "builtin":
            assert (f"version = {fmt}\n") in after          # the file's own format
    # the built-in writer writes what cargo writes (cargo moves a v3 lock to v4 when it writes one)
    assert results["builtin"] == results["cargo"].replace("version = 4\n", f"version = {fmt}\n", 1)


def test_without_cargo_on_path(universe, home, tmp_path, monkeypatch, capsys):
    """No cargo installed: the built-in writer does it, and says so."""
    case = CASES[0]
    monkeypatch.setenv("CARGO_HOME", str(home))
    before = _locked_project(case, 4, home, tmp_path)
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("git", "python3"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delenv("CARGO_STATIC_FIX_LOCK_WRITER", raising=False)
    code = main([str(tmp_path), "--strategy", case.strategy, "--allow-dirty"])
    out, err = capsys.readouterr()
    monkeypatch.undo()
    assert code == 0, err
    assert "(without cargo: cargo is not installed)" in out
    after = (tmp_path / "Cargo.lock").read_text()
    assert {k[0] for k in _names(after) - _names(before)} == {"openssl-src", "cc"}
    r = cargo(["tree", "--locked"], tmp_path, home)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("flag", ["--locked", "--frozen"])
def test_locked_refuses_a_lock_change(flag, universe, home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARGO_HOME", str(home))
    before = _locked_project(CASES[0], 4, home, tmp_path)
    manifest = (tmp_path / "Cargo.toml").read_text()
    code, out, err = _fix(tmp_path, CASES[0], "auto", monkeypatch, capsys, flag)
    assert code == 2
    assert f"needs to be updated but {flag} was passed to prevent this" in err
    assert (tmp_path / "Cargo.lock").read_text() == before
    assert (tmp_path / "Cargo.toml").read_text() == manifest


def test_locked_accepts_a_fix_the_lock_already_holds(universe, home, tmp_path, monkeypatch, capsys):
    """openssl-dep on a project whose lock already has openssl, openssl-src and cc in the build:
    only the member's own dependency list changes, which --locked still refuses; with the lock
    already matching (a second run) there is nothing to refuse."""
    monkeypatch.setenv("CARGO_HOME", str(home))
    case = CASES[0]
    _locked_project(case, 4, home, tmp_path)
    code, out, err = _fix(tmp_path, case, "auto", monkeypatch, capsys)
    assert code == 0, err
    code, out, err = _fix(tmp_path, case, "auto", monkeypatch, capsys, "--locked")
    assert code == 0, err
    assert "nothing to do" in out


def test_no_update_lock(universe, home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARGO_HOME", str(home))
    before = _locked_project(CASES[0], 4, home, tmp_path)
    code, out, err = _fix(tmp_path, CASES[0], "auto", monkeypatch, capsys, "--no-update-lock")
    assert code == 0, err
    assert "Cargo.lock: left as it is (--no-update-lock)" in out
    assert (tmp_path / "Cargo.lock").read_text() == before
    assert "native-tls-vendored" in (tmp_path / "Cargo.toml").read_text()


def test_dry_run_says_what_the_lock_would_get(universe, home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARGO_HOME", str(home))
    before = _locked_project(CASES[1], 4, home, tmp_path)
    code, out, err = _fix(tmp_path, CASES[1], "builtin", monkeypatch, capsys, "--dry-run")
    assert code == 0, err
    assert "Cargo.lock: would update: adds hyper-rustls 0.24.1, rustls 0.21.6; removes " in err
    assert (tmp_path / "Cargo.lock").read_text() == before


# -- every fix of the differential scenarios --------------------------------------------------

from test_cargo_differential import FIX_SCENARIOS, cargo_flags  # noqa: E402


@pytest.mark.parametrize("strategy", ["auto", "rustls", "openssl-dep"])
@pytest.mark.parametrize("sc", FIX_SCENARIOS, ids=[s.id for s in FIX_SCENARIOS])
def test_builtin_lock_matches_cargo_for_every_fix(sc, strategy, universe, home, tmp_path, monkeypatch):
    """The built-in writer's lock after each fix of test_cargo_confirms_the_fix is the text
    `cargo update --workspace` writes, and `cargo tree --locked` takes it."""
    from codemod.registry import open_index
    from codemod.run import Options, analyze_manifest

    srv, _ = universe
    monkeypatch.setenv("CARGO_HOME", str(home))
    write_project(tmp_path, sc.files)
    assert cargo(["generate-lockfile"], tmp_path, home).returncode == 0
    opts = Options(target=sc.target, strategy=strategy, lock="update",
                   **{k: v for k, v in sc.args.items() if k != "packages"})
    texts = {}
    for writer in ("builtin", "cargo"):
        result = analyze_manifest(tmp_path, replace_writer(opts, writer), open_index(srv.index_url), plan=True)
        if result.plan.status != "fixable":
            assert strategy == "rustls", result.plan.reason
            return
        texts[writer] = result.lock.new if result.lock is not None else None
    assert texts["builtin"] == texts["cargo"]
    for path, text in result.plan.texts.items():
        path.write_text(text)
    if texts["builtin"] is not None:
        (tmp_path / "Cargo.lock").write_text(texts["builtin"])
    r = cargo(["tree", "--locked", "-e", "normal,build,dev", *cargo_flags(sc.args)], tmp_path, home)
    assert r.returncode == 0, r.stderr


def replace_writer(opts, writer):
    from dataclasses import replace

    return replace(opts, lock_writer=writer)


# -- the built-in writer on the older formats and on CRLF --------------------------------------


def to_v1(text: str) -> str:
    """A v2+ lock in the v1 encoding (full dependency strings, checksums in [metadata]), as cargo
    writes it: cargo 1.95 accepts the result with --locked."""
    pkgs = tomllib.loads(text)["package"]
    by_name: dict[str, list[dict]] = {}
    for p in pkgs:
        by_name.setdefault(p["name"], []).append(p)

    def full(d: str) -> str:
        parts = d.split(" ")
        c = [c for c in by_name[parts[0]] if len(parts) == 1 or c["version"] == parts[1]][0]
        return f'{c["name"]} {c["version"]}' + (f' ({c["source"]})' if c.get("source") else "")

    out, meta = "", {}
    for p in pkgs:
        out += f'[[package]]\nname = "{p["name"]}"\nversion = "{p["version"]}"\n'
        if p.get("source"):
            out += f'source = "{p["source"]}"\n'
            meta[f'checksum {p["name"]} {p["version"]} ({p["source"]})'] = p["checksum"]
        deps = sorted(full(d) for d in p.get("dependencies", []))
        if deps:
            out += "dependencies = [\n" + "".join(f' "{d}",\n' for d in deps) + "]\n"
        out += "\n"
    return out + "[metadata]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in sorted(meta.items()))


FORMATS = {
    "v1": to_v1,
    "v2": lambda t: t.replace("version = 4\n\n", "", 1),
    "v4-crlf": lambda t: t.replace("\n", "\r\n"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("case", [CASES[0], CASES[1]], ids=["vendored", "rustls"])
def test_builtin_keeps_older_formats(case, fmt, universe, home, tmp_path, monkeypatch, capsys):
    """The built-in writer keeps the file's format; the text is cargo's own v4 result in that
    format (`cargo tree --locked` alone would not tell: it compares what the lock means, not its bytes)."""
    monkeypatch.setenv("CARGO_HOME", str(home))
    _locked_project(case, 4, home, tmp_path / "cargo")
    code, out, err = _fix(tmp_path / "cargo", case, "cargo", monkeypatch, capsys)
    assert code == 0, err
    expected = FORMATS[fmt]((tmp_path / "cargo" / "Cargo.lock").read_text())

    root = tmp_path / "builtin"
    _locked_project(case, 4, home, root)
    lock = root / "Cargo.lock"
    lock.write_bytes(FORMATS[fmt](lock.read_text()).encode())
    before = lock.read_bytes().decode()
    assert cargo(["tree", "--locked"], root, home).returncode == 0       # cargo takes the old format as it is
    code, out, err = _fix(root, case, "builtin", monkeypatch, capsys)
    assert code == 0, err
    after = lock.read_bytes().decode()
    assert after == expected
    assert lock_changes(before, after)[2] == ()
    r = cargo(["tree", "--locked", "-e", "normal,build,dev"], root, home)
    assert r.returncode == 0, (r.stderr, after)


def test_json_names_the_lock_update(universe, home, tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setenv("CARGO_HOME", str(home))
    _locked_project(CASES[0], 4, home, tmp_path)
    code, out, err = _fix(tmp_path, CASES[0], "cargo", monkeypatch, capsys, "--dry-run", "--format", "json")
    assert code == 0, err
    lock = json.loads(out)["lock"]
    assert lock["updated"] and lock["via"] == "cargo"
    assert lock["added"] == ["cc 1.0.82", "openssl-src 111.27.0+1.1.1v"] and lock["removed"] == lock["changed"] == []


def test_cargo_sees_the_projects_config_and_path_dependencies_outside_it(universe, home, tmp_path, monkeypatch, capsys):
    """The registry comes from the project's own .cargo/config.toml, and a path dependency lives
    beside the project: cargo, run on the mirror, sees both as in the real tree."""
    srv, _ = universe
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    monkeypatch.setenv("CARGO_HOME", str(empty_home))
    app = tmp_path / "app"
    write_project(tmp_path, {
        "app/Cargo.toml": pkg("app", REQ + '\nshared = { path = "../shared" }'),
        "shared/Cargo.toml": pkg("shared", 'libc = "0.2"'),
        "app/.cargo/config.toml": (home / "config.toml").read_text(),
    })
    r = cargo(["generate-lockfile"], app, empty_home)
    assert r.returncode == 0, r.stderr
    before = (app / "Cargo.lock").read_text()
    monkeypatch.setenv("CARGO_STATIC_FIX_LOCK_WRITER", "cargo")
    code = main([str(app), "--strategy", "vendored", "--allow-dirty"])
    out, err = capsys.readouterr()
    assert code == 0, err
    after = (app / "Cargo.lock").read_text()
    assert {k[0] for k in _names(after) - _names(before)} == {"openssl-src"}
    assert _deps(after, "shared") == ["libc"]
    r = cargo(["tree", "--locked"], app, empty_home)
    assert r.returncode == 0, r.stderr


def test_real_crates_io_lines(tmp_path, monkeypatch, capsys):
    """The report's project on the bundled crates.io snapshot (100+ packages, several versions of
    some names): the built-in writer's lock is cargo's, for the vendored and the rustls fix."""
    from codemod.proc_macros import KNOWN
    from conftest import ROOT, SNAPSHOT_REGISTRY
    from fixture_registry import Server, registry_from_index

    registry_from_index(SNAPSHOT_REGISTRY, tmp_path / "reg", set(KNOWN))
    srv = Server(tmp_path / "reg")
    try:
        real_home = cargo_home(tmp_path, srv)
        monkeypatch.setenv("CARGO_HOME", str(real_home))
        for strategy in ("vendored", "rustls"):
            texts = {}
            for writer in ("cargo", "builtin"):
                proj = tmp_path / f"{strategy}-{writer}"
                (proj / "src").mkdir(parents=True)
                (proj / "Cargo.toml").write_text((ROOT / "examples/hello/Cargo.toml").read_text())
                (proj / "src/main.rs").write_text((ROOT / "examples/hello/src/main.rs").read_text())
                assert cargo(["generate-lockfile"], proj, real_home).returncode == 0
                before = (proj / "Cargo.lock").read_text()
                case = Case(strategy, {}, strategy, set())
                code, out, err = _fix(proj, case, writer, monkeypatch, capsys)
                assert code == 0, err
                assert "Cargo.lock: updated:" in out, (out, err)
                texts[writer] = (proj / "Cargo.lock").read_text()
                assert lock_changes(before, texts[writer])[2] == ()
                r = cargo(["tree", "--locked", "-e", "normal,build,dev"], proj, real_home)
                assert r.returncode == 0, r.stderr
            assert texts["builtin"] == texts["cargo"], strategy
    finally:
        srv.close()


def test_cargo_failing_falls_back_to_the_builtin_writer(universe, home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARGO_HOME", str(home))
    root = tmp_path / "p"
    before = _locked_project(CASES[0], 4, home, root)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cargo").write_text("#!/bin/sh\necho 'error: no network here' >&2\nexit 101\n")
    (fake / "cargo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    code, out, err = _fix(root, CASES[0], "auto", monkeypatch, capsys)
    assert code == 0, err
    assert "(without cargo: `cargo update --workspace` failed: error: no network here)" in out
    monkeypatch.undo()
    after = (root / "Cargo.lock").read_text()
    assert {k[0] for k in _names(after) - _names(before)} == {"openssl-src", "cc"}
    assert cargo(["tree", "--locked"], root, home).returncode == 0


def test_updated_lock_api(universe, home, tmp_path, monkeypatch):
    """`updated_lock(lock_path, before, after, index)`: the new text, or None when nothing changes."""
    from codemod.lockwrite import updated_lock
    from codemod.registry import open_index
    from codemod.run import Options, analyze_manifest

    srv, _ = universe
    monkeypatch.setenv("CARGO_HOME", str(home))
    _locked_project(CASES[0], 4, home, tmp_path)
    index = open_index(srv.index_url)
    result = analyze_manifest(tmp_path, Options(target=MUSL, strategy="vendored"), index, plan=True)
    assert result.lock is None                                  # Options.lock defaults to "off"
    before = result.analysis.resolution
    assert updated_lock(tmp_path / "Cargo.lock", before, before, index) is None
    result = analyze_manifest(tmp_path, Options(target=MUSL, strategy="vendored", lock="update", lock_writer="builtin"),
                              index, plan=True)
    text = result.lock.new
    assert result.lock.via == "builtin" and result.lock.added == ("cc 1.0.82", "openssl-src 111.27.0+1.1.1v")
    for path, manifest in result.plan.texts.items():
        path.write_text(manifest)
    after = analyze_manifest(tmp_path, Options(target=MUSL), index).analysis.resolution
    assert updated_lock(tmp_path / "Cargo.lock", before, after, index) == text
