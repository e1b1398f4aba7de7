"""Writing a fix cannot damage or lose anything: all files or none, no lost updates, no temporary
files left behind, nothing written outside the project, plans validated, git asked (and trusted
only when it answers)."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from codemod import write
from codemod.edit import sha256
from codemod.write import Change, WriteError, write_all
from fixture_registry import write_project

ROOT = Path(__file__).resolve().parent.parent


def pkg(name: str, deps: str = "") -> str:
    return f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n'


WS_ROOT = '[workspace]\nmembers = ["a"]\nresolver = "2"\n\n[workspace.dependencies]\nreqwest = { version = "0.11" }\n'
WS_MEMBER = pkg("a", 'reqwest = { workspace = true, features = ["native-tls"] }')


def workspace(tmp_path: Path) -> Path:
    """A fix with --strategy rustls edits both files: default-features and the rustls feature at the
    root, native-tls dropped from the member."""
    return write_project(tmp_path / "ws", {"Cargo.toml": WS_ROOT, "a/Cargo.toml": WS_MEMBER})


def cli(*args, cwd=ROOT, env=None):
    env = dict(env or os.environ, PYTHONPATH=str(ROOT))         # this checkout, from any directory
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def leftovers(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*.tmp"))


def two_changes(ws: Path) -> list[Change]:
    root, member = ws / "Cargo.toml", ws / "a/Cargo.toml"
    return [Change(root, root.read_bytes(), root.read_bytes() + b"# root\n"),
            Change(member, member.read_bytes(), member.read_bytes() + b"# member\n")]


# -- the transaction ------------------------------------------------------------------------------

def test_all_files_written_mode_and_owner_kept(tmp_path):
    ws = workspace(tmp_path)
    member = ws / "a/Cargo.toml"
    os.chmod(member, 0o640)
    if os.geteuid() == 0:
        os.chown(member, 1234, 2345)
    assert write_all(two_changes(ws), allowed=[ws], allow_dirty=True) == [ws / "Cargo.toml", member]
    assert (ws / "Cargo.toml").read_text().endswith("# root\n") and member.read_text().endswith("# member\n")
    st = member.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert leftovers(ws) == []


def test_failed_rename_restores_the_files_already_replaced(tmp_path, monkeypatch):
    """The member's rename fails after the root's succeeded (an injected EROFS: a real read-only
    file system cannot be made here); the root is put back and the error says so."""
    ws = workspace(tmp_path)

    def fault(stage, path):
        if stage == "replace" and path.parent.name == "a":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(write, "FAULT", fault)
    with pytest.raises(WriteError, match=r"a/Cargo.toml: cannot write: Read-only file system; nothing written "
                                         r"\(1 file\(s\) already replaced were restored\)"):
        write_all(two_changes(ws), allowed=[ws], allow_dirty=True)
    assert (ws / "Cargo.toml").read_text() == WS_ROOT and (ws / "a/Cargo.toml").read_text() == WS_MEMBER
    assert leftovers(ws) == []


def _immutable(d: Path) -> bool:
    """`chattr +i`: a directory nobody, root included, can create files in (tests run as root, so
    permission bits alone would not stop the write)."""
    try:
        return subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def test_read_only_member_directory_leaves_the_root_untouched(universe, tmp_path):
    srv, _ = universe
    ws = workspace(tmp_path)
    if not _immutable(ws / "a"):
        pytest.skip("chattr +i is not available on this file system")
    try:
        r = cli("--strategy", "rustls", "--allow-dirty", str(ws / "a"), "--index-url", srv.index_url)
    finally:
        subprocess.run(["chattr", "-i", str(ws / "a")])
    assert r.returncode == 2
    assert "a/Cargo.toml: cannot write: Operation not permitted; nothing written" in r.stderr
    assert (ws / "Cargo.toml").read_text() == WS_ROOT and (ws / "a/Cargo.toml").read_text() == WS_MEMBER
    assert leftovers(ws) == []
    # the next run still sees the work to do: nothing was half-fixed
    r = cli("--check", str(ws / "a"), "--strategy", "rustls", "--index-url", srv.index_url)
    assert r.returncode == 1


def test_file_changed_after_analysis_is_refused_and_the_edit_kept(tmp_path):
    ws = workspace(tmp_path)
    changes = two_changes(ws)
    (ws / "a/Cargo.toml").write_text(WS_MEMBER + "# mine\n")          # the user, meanwhile
    with pytest.raises(WriteError, match="a/Cargo.toml: changed since it was read"):
        write_all(changes, allowed=[ws], allow_dirty=True)
    assert (ws / "a/Cargo.toml").read_text() == WS_MEMBER + "# mine\n"
    assert (ws / "Cargo.toml").read_text() == WS_ROOT and leftovers(ws) == []


def test_file_changed_during_the_write_rolls_back(tmp_path, monkeypatch):
    ws = workspace(tmp_path)

    def fault(stage, path):
        if stage == "replace" and path.parent.name == "a":
            path.write_text(WS_MEMBER + "# mine\n")              # lands after the root was replaced

    monkeypatch.setattr(write, "FAULT", fault)
    with pytest.raises(WriteError, match="changed since it was read.*restored"):
        write_all(two_changes(ws), allowed=[ws], allow_dirty=True)
    assert (ws / "Cargo.toml").read_text() == WS_ROOT
    assert (ws / "a/Cargo.toml").read_text() == WS_MEMBER + "# mine\n" and leftovers(ws) == []


def test_two_runs_on_one_workspace_never_interleave(tmp_path, monkeypatch):
    """Run A holds the workspace lock, paused between its two renames; run B waits for the lock,
    then finds the files A wrote and refuses: A's fix is complete, B's not applied at all."""
    ws = workspace(tmp_path)
    a_changes = two_changes(ws)
    b_changes = [Change(c.path, c.old, c.old + b"# b\n") for c in a_changes]
    inside, go = threading.Event(), threading.Event()

    def fault(stage, path):
        if threading.current_thread().name == "A" and stage == "replace" and path.parent.name == "a":
            inside.set()
            go.wait(10)

    monkeypatch.setattr(write, "FAULT", fault)
    errors = {}

    def run(name, changes):
        try:
            write_all(changes, allowed=[ws], allow_dirty=True, lock_timeout=10)
        except WriteError as e:
            errors[name] = str(e)

    a = threading.Thread(target=run, args=("A", a_changes), name="A")
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=run, args=("B", b_changes), name="B")
    b.start()
    time.sleep(0.3)
    assert b.is_alive()                      # waiting for the lock, not writing
    assert (ws / "a/Cargo.toml").read_text() == WS_MEMBER
    go.set()
    a.join(10), b.join(10)
    assert "A" not in errors and "changed since it was read" in errors["B"]
    assert (ws / "Cargo.toml").read_text() == WS_ROOT + "# root\n"
    assert (ws / "a/Cargo.toml").read_text() == WS_MEMBER + "# member\n"


def test_lock_timeout_refuses(tmp_path):
    import fcntl

    ws = workspace(tmp_path)
    fd = os.open(ws, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(WriteError, match="another run is writing this workspace"):
            write_all(two_changes(ws), allowed=[ws], allow_dirty=True, lock_timeout=0.2)
    finally:
        os.close(fd)
    assert (ws / "Cargo.toml").read_text() == WS_ROOT


def test_concurrent_cli_runs(universe, tmp_path):
    srv, _ = universe
    ws = workspace(tmp_path)
    args = [sys.executable, "-m", "codemod", "--strategy", "rustls", "--allow-dirty", str(ws / "a"),
            "--index-url", srv.index_url]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 2]), outs
    if codes == [0, 2]:
        assert any("changed since it was read" in err for _, err in outs)
    # the switch turns defaults off at the root, so the rustls feature goes there too (every
    # inheriting member keeps TLS); the member drops native-tls
    assert (ws / "Cargo.toml").read_text() == WS_ROOT.replace(
        '{ version = "0.11" }', '{ version = "0.11", features = ["rustls-tls"], default-features = false }')
    assert (ws / "a/Cargo.toml").read_text() == WS_MEMBER.replace(', features = ["native-tls"]', '')
    assert leftovers(ws) == []


SIGTERM_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from codemod import write
    ws = Path(sys.argv[1])
    def pause(stage, path):
        if stage == "replace" and path.parent.name == "a":      # the root is already replaced
            Path(sys.argv[2]).write_text("paused")
            time.sleep(60)
    write.FAULT = pause
    root, member = ws / "Cargo.toml", ws / "a/Cargo.toml"
    write.write_all([write.Change(root, root.read_bytes(), b"[workspace]\\n# half\\n"),
                     write.Change(member, member.read_bytes(), b"# half\\n")], allowed=[ws], allow_dirty=True)
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_the_write_rolls_back_and_leaves_no_temp_files(tmp_path, signum):
    ws = workspace(tmp_path)
    marker = tmp_path / "paused"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(ws), str(marker)], env=env)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    assert (ws / "Cargo.toml").read_text() == "[workspace]\n# half\n"          # mid-transaction
    p.send_signal(signum)
    assert p.wait(30) == -signum
    assert (ws / "Cargo.toml").read_text() == WS_ROOT and (ws / "a/Cargo.toml").read_text() == WS_MEMBER
    assert leftovers(ws) == []


# -- confinement ----------------------------------------------------------------------------------

def test_writes_outside_the_allowed_directories_are_refused(tmp_path):
    ws = workspace(tmp_path)
    other = write_project(tmp_path / "other", {"Cargo.toml": pkg("o")})
    changes = two_changes(ws) + [Change(other / "Cargo.toml", (other / "Cargo.toml").read_bytes(), b"# x\n")]
    with pytest.raises(WriteError, match=r"other/Cargo.toml: outside the project"):
        write_all(changes, allowed=[ws], allow_dirty=True)
    assert (ws / "Cargo.toml").read_text() == WS_ROOT


def test_allowed_dirs_take_the_workspace_root_of_a_member_but_not_of_a_symlink_target(tmp_path):
    ws = workspace(tmp_path)
    assert write.allowed_dirs([ws / "a"]) == [(ws / "a").resolve(), ws.resolve()]
    repo = write_project(tmp_path / "elsewhere", {"Cargo.toml": pkg("x", 'reqwest = "0.11"')})
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "Cargo.toml").symlink_to(repo / "Cargo.toml")
    assert write.allowed_dirs([proj], [repo]) == [proj.resolve()]
    with pytest.raises(WriteError, match=r"proj/Cargo.toml \(a symlink to .*elsewhere/Cargo.toml\): outside the project"):
        write.confine(proj / "Cargo.toml", write.allowed_dirs([proj], [repo]))


def test_symlinked_manifest_into_another_repository_is_refused(universe, tmp_path):
    srv, _ = universe
    repo = write_project(tmp_path / "elsewhere", {"Cargo.toml": pkg("x", 'reqwest = "0.11"')})
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "Cargo.toml").symlink_to(repo / "Cargo.toml")
    r = cli(str(proj), "--index-url", srv.index_url)
    assert r.returncode == 2 and "outside the project" in r.stderr
    assert (repo / "Cargo.toml").read_text() == pkg("x", 'reqwest = "0.11"')


def test_path_dependency_outside_the_named_directory(universe, tmp_path):
    srv, _ = universe
    write_project(tmp_path / "outside-lib", {"Cargo.toml": pkg("outlib", 'reqwest = "0.11"')})
    app = write_project(tmp_path / "app", {"Cargo.toml": pkg("app", 'outlib = { path = "../outside-lib" }')})
    r = cli("--format", "json", str(app), "--index-url", srv.index_url)
    assert r.returncode == 2 and "outside-lib/Cargo.toml: outside the project" in r.stderr
    assert json.loads(r.stdout)["status"] == "error"
    assert (tmp_path / "outside-lib/Cargo.toml").read_text() == pkg("outlib", 'reqwest = "0.11"')
    r = cli(str(app), str(tmp_path / "outside-lib"), "--index-url", srv.index_url)   # named too: allowed
    assert r.returncode == 0, r.stderr
    assert "native-tls-vendored" in (tmp_path / "outside-lib/Cargo.toml").read_text()


def test_directory_scan_goes_on_after_a_refused_workspace(universe, tmp_path):
    srv, _ = universe
    repo = tmp_path / "repo"
    write_project(tmp_path / "outside-lib", {"Cargo.toml": pkg("outlib", 'reqwest = "0.11"')})
    write_project(repo, {"app/Cargo.toml": pkg("app", 'outlib = { path = "../../outside-lib" }'),
                         "good/Cargo.toml": pkg("good", 'reqwest = "0.11"'),
                         "clean/Cargo.toml": pkg("clean", 'serde_json = "1"')})
    r = cli("--format", "json", str(repo), "--index-url", srv.index_url)
    assert r.returncode == 2
    entries = {Path(e["manifest"]).parent.name: e for e in json.loads(r.stdout)}
    assert entries["app"]["status"] == "error" and "outside the project" in entries["app"]["error"]
    assert entries["good"]["status"] == "fixed" and entries["clean"]["status"] == "clean"
    assert "native-tls-vendored" in (repo / "good/Cargo.toml").read_text()


# -- the dirty check fails closed -------------------------------------------------------------------

def _git_repo(tmp_path: Path) -> Path:
    proj = write_project(tmp_path / "g", {"Cargo.toml": pkg("g", 'reqwest = "0.11"')})
    (proj / ".git").mkdir()                # what makes it a repository for the check
    return proj


def test_git_missing_refuses_without_allow_dirty(tmp_path, monkeypatch):
    proj = _git_repo(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    c = [Change(proj / "Cargo.toml", (proj / "Cargo.toml").read_bytes(), b"# x\n")]
    with pytest.raises(WriteError, match="git is not installed; pass --allow-dirty"):
        write_all(c, allowed=[proj], allow_dirty=False)
    write_all(c, allowed=[proj], allow_dirty=True)


def test_git_error_refuses_and_shows_what_git_said(tmp_path, monkeypatch):
    proj = _git_repo(tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\necho \"fatal: detected dubious ownership in repository at '$PWD'\" >&2\n"
                              "echo 'To add an exception for this directory, call:' >&2\nexit 128\n")
    os.chmod(fake / "git", 0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    c = [Change(proj / "Cargo.toml", (proj / "Cargo.toml").read_bytes(), b"# x\n")]
    with pytest.raises(WriteError, match="git says: fatal: detected dubious ownership in repository at"):
        write_all(c, allowed=[proj], allow_dirty=False)
    assert (proj / "Cargo.toml").read_text() == pkg("g", 'reqwest = "0.11"')


def test_uncommitted_changes_are_refused(tmp_path):
    proj = write_project(tmp_path / "g", {"Cargo.toml": pkg("g", 'reqwest = "0.11"')})
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    c = [Change(proj / "Cargo.toml", (proj / "Cargo.toml").read_bytes(), b"# x\n")]
    with pytest.raises(WriteError, match="has uncommitted changes"):
        write_all(c, allowed=[proj], allow_dirty=False)


# -- --plan -------------------------------------------------------------------------------------------

def _plan(files: dict, edits: list[dict], manifest="Cargo.toml", **extra) -> dict:
    return {"manifest": manifest, "files": files, "plan": [{"remedy": "rustls", "edits": edits}], **extra}


def _edit(file="Cargo.toml", **kw) -> dict:
    return {"file": file, "table": "dependencies", "dependency": "reqwest", "add_features": ["rustls-tls"],
            "remove_features": [], "default_features": False, **kw}


def _run_plan(tmp_path, doc, *paths, cwd=None) -> subprocess.CompletedProcess:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc))
    return cli("--plan", str(plan), *map(str, paths), cwd=cwd)


@pytest.mark.parametrize("doc, message", [
    (_plan({}, [_edit(add_features="rustls-tls")]), "`add_features` must be a list of strings"),
    (_plan({}, [_edit(table="package")]), "`table` must be a dependency table"),
    (_plan({}, [_edit(default_features="no")]), "`default_features` must be true, false or null"),
    (_plan({}, [{"file": "Cargo.toml", "table": "dependencies", "dependency": "openssl", "add": {"features": ["vendored"]}}]),
     "needs a version string"),
    ({"manifest": "Cargo.toml", "plan": "x"}, "`plan` must be a list"),
    (_plan({"Cargo.toml": "abc"}, [_edit()]), "must be a sha256"),
    (_plan({}, [_edit()]), "edits Cargo.toml but gives no sha256 for it"),
])
def test_plan_documents_are_validated(tmp_path, doc, message):
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("p", 'reqwest = "0.11"')})
    r = _run_plan(tmp_path, doc, cwd=proj)
    assert r.returncode == 2 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert (proj / "Cargo.toml").read_text() == pkg("p", 'reqwest = "0.11"')


def test_plan_needs_the_sha256_of_every_file_it_edits(tmp_path):
    ws = workspace(tmp_path)
    member_sha = sha256((ws / "a/Cargo.toml").read_bytes())
    root_edit = {"file": "../Cargo.toml", "table": "workspace.dependencies", "dependency": "reqwest",
                 "add_features": [], "remove_features": [], "default_features": False}
    doc = {"manifest": "Cargo.toml", "manifest_sha256": member_sha,
           "plan": [{"edits": [root_edit, _edit(add_features=[], remove_features=["native-tls"], default_features=None)]}]}
    r = _run_plan(tmp_path, doc, ws, cwd=ws / "a")
    assert r.returncode == 2 and "edits ../Cargo.toml but gives no sha256 for it" in r.stderr
    doc["files"] = {"../Cargo.toml": sha256((ws / "Cargo.toml").read_bytes())}
    r = _run_plan(tmp_path, doc, cwd=ws / "a")             # the member's workspace root is in the project
    assert r.returncode == 0, r.stderr
    assert "default-features = false" in (ws / "Cargo.toml").read_text()


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_plan_edits_outside_the_project_are_refused(tmp_path, where):
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("p", 'reqwest = "0.11"')})
    other = write_project(tmp_path / "x", {"Cargo.toml": pkg("x", 'reqwest = "0.11"')})
    name = "../x/Cargo.toml" if where == "relative" else str(other / "Cargo.toml")
    doc = _plan({name: sha256((other / "Cargo.toml").read_bytes())}, [_edit(file=name)])
    r = _run_plan(tmp_path, doc, cwd=proj)
    assert r.returncode == 2 and "x/Cargo.toml: outside the project" in r.stderr
    assert (other / "Cargo.toml").read_text() == pkg("x", 'reqwest = "0.11"')
    r = _run_plan(tmp_path, doc, ".", other, cwd=proj)         # named: allowed
    assert r.returncode == 0, r.stderr


def test_plan_keeps_crlf_and_bom(tmp_path):
    text = "\ufeff" + pkg("p", 'reqwest = "0.11"').replace("\n", "\r\n")
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "Cargo.toml").write_bytes(text.encode())
    doc = _plan({"Cargo.toml": sha256(text.encode())}, [_edit()])
    r = _run_plan(tmp_path, doc, cwd=proj)
    assert r.returncode == 0, r.stderr
    assert (proj / "Cargo.toml").read_bytes() == text.replace(
        'reqwest = "0.11"', 'reqwest = { version = "0.11", features = ["rustls-tls"], default-features = false }').encode()


def test_old_plans_with_only_manifest_sha256_still_apply_to_that_manifest(tmp_path):
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("p", 'reqwest = "0.11"')})
    doc = {"manifest": "Cargo.toml", "manifest_sha256": sha256((proj / "Cargo.toml").read_bytes()),
           "plan": [{"edits": [_edit()]}]}
    r = _run_plan(tmp_path, doc, cwd=proj)
    assert r.returncode == 0, r.stderr


def test_plan_from_a_workspace_run_applies_to_root_and_member(universe, tmp_path):
    """The JSON of a run that edits two files carries both sha256; applied later, both land."""
    srv, _ = universe
    ws = workspace(tmp_path)
    r = cli("--check", "--format", "json", "--strategy", "rustls", ".", "--index-url", srv.index_url, cwd=ws)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    entries = doc if isinstance(doc, list) else [doc]
    assert any(set(e.get("files", {})) == {"Cargo.toml", "a/Cargo.toml"} for e in entries), entries
    plan = tmp_path / "plan.json"
    plan.write_text(r.stdout)
    r = cli("--plan", str(plan), cwd=ws)
    assert r.returncode == 0, r.stderr
    assert 'features = ["rustls-tls"], default-features = false' in (ws / "Cargo.toml").read_text()
    assert '"native-tls"' not in (ws / "a/Cargo.toml").read_text()
    r = cli("--plan", str(plan), cwd=ws)                   # the files changed since: refused
    assert r.returncode == 2 and "changed since the plan was made" in r.stderr


# -- the manifests, end to end ---------------------------------------------------------------

SPLIT = ('[package]\r\nname = "app"\r\nversion = "0.1.0"\r\nedition = "2021"\r\n\r\n'
         '[[bin]]\r\nname = "a"\r\npath = "src/lib.rs"\r\n\r\n'
         "[target.'cfg(unix)'.dependencies]\r\nlibc = \"0.2\"\r\n\r\n"
         '[[test]]\r\nname = "t"\r\npath = "src/lib.rs"\r\n\r\n'
         '[[bin]]\r\nname = "b"\r\npath = "src/lib.rs"\r\n\r\n'
         '[target."cfg(windows)".dependencies]\r\nserde_json = "1"\r\n\r\n'
         '[dependencies]\r\nreqwest = "0.11"\r\n')


@pytest.mark.parametrize("scope", [[], ["--scope", "musl"]])
def test_split_arrays_and_target_tables_fixed_in_place(universe, tmp_path, scope):
    srv, _ = universe
    proj = write_project(tmp_path / "p", {"src/lib.rs": ""})
    (proj / "Cargo.toml").write_bytes(SPLIT.encode())
    r = cli(*scope, str(proj), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    out = (proj / "Cargo.toml").read_bytes().decode()
    if scope:        # a quoted target table, after the last target table, one blank line before the next header
        at = SPLIT.index('serde_json = "1"\r\n') + len('serde_json = "1"\r\n')
        assert out == SPLIT[:at] + ("\r\n[target.'cfg(target_env = \"musl\")'.dependencies]\r\n"
                                    'reqwest = { version = "0.11", features = ["native-tls-vendored"] }\r\n') + SPLIT[at:]
    else:
        assert out == SPLIT.replace('reqwest = "0.11"', 'reqwest = { version = "0.11", features = ["native-tls-vendored"] }')
    assert cli("--check", str(proj), "--index-url", srv.index_url).returncode == 0
