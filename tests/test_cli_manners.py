"""Behaving like a cargo tool: finding the project as cargo does, never a silent success, paths
relative to where the user stands, cargo's error manners, and no traceback for any input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_registry import write_project

ROOT = Path(__file__).resolve().parent.parent
SEED = str(ROOT / "examples/registry/index")
PKG = '[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n'


def cli(*args, cwd: Path = ROOT, env: dict | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    environ = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=300, env=environ)


def one_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def hello(where: Path, deps: str = 'reqwest = "0.11.18"') -> Path:
    write_project(where, {"Cargo.toml": PKG.format(name="hello", deps=deps), "src/main.rs": "fn main() {}\n"})
    return where


# -- finding the project -------------------------------------------------------------------------

def test_a_subdirectory_finds_its_package_upwards(tmp_path):
    proj = hello(tmp_path / "hello")
    r = cli("--check", "--index-url", SEED, cwd=proj / "src")
    assert r.returncode == 1, r.stderr
    assert "--- a/../Cargo.toml" in r.stdout          # outside a git work tree: relative to where the user stands


def test_nothing_found_is_cargos_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line(cli("--check", cwd=empty))
    assert line == f"error: could not find `Cargo.toml` in `{empty.resolve()}` or any parent directory"


def test_a_cargo_toml_that_is_a_directory(tmp_path):
    (tmp_path / "Cargo.toml").mkdir()
    assert "is a directory" in one_line(cli("--check", "Cargo.toml", cwd=tmp_path))


def test_a_manifest_not_named_cargo_toml(tmp_path):
    (tmp_path / "other.toml").write_text(PKG.format(name="x", deps=""))
    assert "must be a path to a Cargo.toml file" in one_line(cli("--check", "other.toml", cwd=tmp_path))
    assert "must be a path to a Cargo.toml file" in one_line(cli("--check", "--manifest-path", "other.toml", cwd=tmp_path))


def test_an_empty_scan_is_an_error(tmp_path):
    write_project(tmp_path / "tree", {".gitignore": "*/\n", "a/Cargo.toml": PKG.format(name="a", deps="")})
    # every manifest below is ignored, and no parent has one
    r = cli("--check", "tree", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_scan_reports_every_broken_manifest_in_text_sorted(tmp_path):
    write_project(tmp_path / "tree", {
        "b/Cargo.toml": "[package\n",
        "a/Cargo.toml": '[package]\nversion = "1.0.0"\n',
        "c/Cargo.toml": PKG.format(name="c", deps=""),
    })
    (tmp_path / "tree/d").mkdir()
    (tmp_path / "tree/d/Cargo.toml").symlink_to("Cargo.toml")       # a symlink loop
    r = cli("--check", "tree", "--index-url", SEED, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert [e.split(":")[1].strip() for e in errors] == ["tree/a/Cargo.toml", "tree/b/Cargo.toml", "tree/d/Cargo.toml"]
    assert "missing the field `name`" in errors[0] and "invalid TOML" in errors[1] and "loop" in errors[2].lower()
    assert "tree/c/Cargo.toml: nothing to do" in r.stdout
    doc = json.loads(cli("--check", "--format", "json", "tree", "--index-url", SEED, cwd=tmp_path).stdout)
    assert [e["manifest"] for e in doc] == ["tree/a/Cargo.toml", "tree/b/Cargo.toml", "tree/c/Cargo.toml", "tree/d/Cargo.toml"]


def test_unreadable_directories_are_reported(tmp_path, monkeypatch):
    """Root reads every directory, so the walk's error path is driven directly."""
    from codemod import discover

    real_walk = os.walk

    def walk(top, **kw):
        kw["onerror"](PermissionError(13, "Permission denied", str(Path(top) / "secret")))
        yield from real_walk(top, **kw)

    monkeypatch.setattr(discover.os, "walk", walk)
    write_project(tmp_path / "tree", {"a/Cargo.toml": PKG.format(name="a", deps="")})
    discover._find_manifests.cache_clear()
    errors = discover.scan_errors(tmp_path / "tree")
    assert errors == [((tmp_path / "tree/secret").resolve(), "cannot read directory: Permission denied")]


def test_json_and_diff_paths_are_relative_and_diffs_apply_from_the_repository_root(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    write_project(repo, {
        "Cargo.toml": '[workspace]\nmembers = ["crates/app"]\nresolver = "2"\n\n[workspace.dependencies]\nreqwest = "0.11.18"\n',
        "crates/app/Cargo.toml": PKG.format(name="app", deps="reqwest = { workspace = true }"),
        "crates/app/src/main.rs": "fn main() {}\n",
    })
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    member = repo / "crates/app"
    doc = json.loads(cli("--dry-run", "--format", "json", "--strategy", "rustls", "--index-url", SEED, cwd=member).stdout)
    assert doc["manifest"] == "Cargo.toml"
    assert {e["file"] for step in doc["plan"] for e in step["edits"]} <= {"Cargo.toml", "../../Cargo.toml"}
    # the rustls switch edits the root, the vendored feature the member: both diffs apply from the top
    for strategy, header in (("rustls", "--- a/Cargo.toml"), ("vendored", "--- a/crates/app/Cargo.toml")):
        r = cli("--dry-run", "--strategy", strategy, "--index-url", SEED, cwd=member)
        assert header in r.stdout, r.stdout
        patch = tmp_path / f"{strategy}.patch"
        patch.write_text(r.stdout)
        applied = subprocess.run(["git", "apply", "--check", str(patch)], cwd=repo, capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr


def test_explain_exits_0_even_when_unfixable(universe, tmp_path):
    srv, _ = universe
    proj = hello(tmp_path / "p", 'git2 = "0.17"')
    assert cli("--check", "--strategy", "rustls", str(proj), "--index-url", srv.index_url).returncode == 3
    r = cli("--explain", "--strategy", "rustls", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    assert "Cannot fix" in r.stdout


# -- cargo's manners --------------------------------------------------------------------------------

def test_unknown_argument_is_one_error_and_a_pointer_to_help():
    r = cli("--bogus")
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == "error: unexpected argument: --bogus"
    assert r.stderr.strip().endswith("For more information, try '--help'.")
    assert "usage:" not in r.stderr.lower()


def test_help_is_grouped():
    out = cli("--help").stdout
    for group in ("Mode:", "Remedies:", "Package selection:", "Feature selection:", "Registry:", "Output:"):
        assert group in out


@pytest.mark.parametrize("args, message", [
    (["-q", "-v"], "'--quiet' cannot be used with '--verbose'"),
    (["-j", "0"], "jobs may not be less than 1"),
    (["--graph", "dot", "no/such/dir/g.dot"], "does not exist"),
    (["--graph", "svg", "g.svg"], "takes dot or mermaid"),
])
def test_bad_flags_are_refused_before_anything_runs(args, message, tmp_path):
    proj = hello(tmp_path / "p")
    before = (proj / "Cargo.toml").read_bytes()
    r = cli(*args, "--allow-dirty", str(proj), "--index-url", SEED)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert (proj / "Cargo.toml").read_bytes() == before


def test_graph_to_stdout(tmp_path):
    proj = hello(tmp_path / "p")
    r = cli("--explain", "--graph", "dot", "-", str(proj), "--index-url", SEED)
    assert r.returncode == 0 and "digraph culprits {" in r.stdout


def test_colours_follow_cargo_term_color_and_no_color():
    r = cli("--bogus", env={"CARGO_TERM_COLOR": "always"})
    assert r.stderr.startswith("\x1b[1;31merror\x1b[0m: ")
    r = cli("--bogus", env={"CARGO_TERM_COLOR": "never"})
    assert r.stderr.startswith("error: ")
    r = cli("--bogus", "--color", "always", env={"CARGO_TERM_COLOR": "never"})
    assert r.stderr.startswith("\x1b[1;31merror")
    # NO_COLOR counts only when non-empty; on a pipe auto means no colour anyway
    from codemod import cli as cli_mod

    class Tty:
        def isatty(self):
            return True

    os.environ.pop("CARGO_TERM_COLOR", None)
    for value, expect in (("", True), ("1", False)):
        os.environ["NO_COLOR"] = value
        try:
            assert cli_mod._color_for(Tty(), "auto") is expect
        finally:
            del os.environ["NO_COLOR"]


def test_closed_pipe_ends_quietly(tmp_path):
    proj = hello(tmp_path / "p")
    shell = f"{sys.executable} -m codemod --explain {proj} --index-url {SEED} | head -c 10 > /dev/null"
    r = subprocess.run(["bash", "-c", "set -o pipefail; " + shell], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_one_failing_manifest_still_prints_a_json_error_object(tmp_path):
    (tmp_path / "Cargo.toml").write_text("[package\n")
    r = cli("--check", "--format", "json", cwd=tmp_path)
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["status"] == "error" and "invalid TOML" in doc["error"] and doc["manifest"] == "Cargo.toml"


@pytest.mark.parametrize("manifest, message", [
    ('[package]\nversion = "0.1.0"\n', "missing the field `name`"),
    ('[package]\nname = 5\nversion = "0.1.0"\n', "`package.name`: invalid type: integer"),
    ('package = "x"\n', "`package`: invalid type: string"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[features]\ndefault = "a"\n', "`features.default`: invalid type"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[dependencies]\nfoo = { version = 1 }\n', "`dependencies.foo.version`"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[dependencies]\nfoo = { version = "1", optional = "yes" }\n', "a boolean"),
])
def test_malformed_manifests_are_one_line(manifest, message, tmp_path):
    (tmp_path / "Cargo.toml").write_text(manifest)
    assert message in one_line(cli("--check", "--index-url", SEED, cwd=tmp_path))


def test_index_entry_with_a_non_string_req_is_one_line(tmp_path):
    from codemod.errors import RegistryError
    from codemod.registry.index import parse_index_file

    line = json.dumps({"name": "x", "vers": "1.0.0", "deps": [{"name": "y", "req": 1}], "features": {}, "cksum": ""})
    with pytest.raises(RegistryError, match="line 1 is not a valid index entry .*`req` is not a string"):
        parse_index_file(line, "x")


def test_corrupt_remembered_answers_are_not_replayed(tmp_path):
    from codemod.memo import Memo

    memo = Memo(tmp_path, None)
    memo.store("abcd", {"stdout": "ok", "stderr": "", "code": 0, "index": []})
    assert memo.lookup("abcd") == {"stdout": "ok", "stderr": "", "code": 0, "index": []}
    [path] = tmp_path.rglob("abcd")
    text = path.read_text()
    path.write_text(text.replace('"ok"', '"ko"'))                 # the checksum no longer matches
    assert memo.lookup("abcd") is None
    path.write_text(text[: len(text) // 2])                        # truncated
    assert memo.lookup("abcd") is None
    path.write_text(json.dumps({"entry": {"stdout": "ok"}, "sha256": "0"}))
    assert memo.lookup("abcd") is None


def test_verify_has_a_timeout_and_no_traceback(tmp_path):
    """A cargo that hangs: --verify says it could not verify, within its timeout."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cargo").write_text("#!/bin/sh\nsleep 30\n")
    (fake / "cargo").chmod(0o755)
    proj = hello(tmp_path / "p")
    env = {"PATH": f"{fake}:{os.environ['PATH']}", "CARGO_STATIC_FIX_VERIFY_TIMEOUT": "1",
           "CARGO_STATIC_FIX_LOCK_WRITER": "builtin"}
    r = cli("--verify", "--allow-dirty", str(proj), "--index-url", SEED, env=env)
    assert "Traceback" not in r.stderr
    assert "cargo did not answer within 1 s: not verified" in r.stderr, r.stderr
