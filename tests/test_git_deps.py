"""Git dependencies are analysed from their source: cargo's checkouts, or a shallow clone of the
branch, tag or rev the manifest names. Only when neither works are they unanalysable, and then the
text output says so and --check fails. Local repositories (file:// URLs), no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codemod.registry import open_index
from codemod.run import Options, analyze_manifest
from conftest import ROOT, cargo_available
from fixture_registry import cargo_home, write_project
from test_cargo_differential import MUSL, cargo, cargo_culprits, pkg

needs_cargo = pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: it is the oracle here")
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> tuple[Path, str]:
    """A repository holding a workspace: `nettls` (no TLS at tag v1; native-tls on main) and `util`."""
    r = tmp_path / "tlsrepo"
    write_project(r, {
        "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n\n[workspace.dependencies]\nnative-tls = "0.2"\n',
        "crates/nettls/Cargo.toml": pkg("nettls", 'util = { path = "../util" }'),
        "crates/util/Cargo.toml": pkg("util"),
    })
    git(r, "init", "-q", "-b", "main")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "no tls")
    git(r, "tag", "v1")
    v1 = git(r, "rev-parse", "HEAD")
    (r / "crates/nettls/Cargo.toml").write_text(pkg("nettls", 'util = { path = "../util" }\nnative-tls = { workspace = true }'))
    git(r, "commit", "-q", "-am", "tls")
    return r, v1


def project(tmp_path: Path, spec: str) -> Path:
    return write_project(tmp_path / "app", {"Cargo.toml": pkg("app", f"nettls = {{ {spec} }}")})


def culprits(result) -> set[tuple[str, str]]:
    return {(c.package, c.crate) for c in result.analysis.culprits}


@pytest.mark.parametrize("ref,blocked", [("", True), ('branch = "main"', True), ('tag = "v1"', False), ("rev = V1", False)])
def test_cloned_and_analysed_like_a_path_dependency(universe, repo, tmp_path, ref, blocked):
    srv, _ = universe
    r, v1 = repo
    spec = f'git = "{r.as_uri()}"' + (", " + ref.replace("V1", f'"{v1}"') if ref else "")
    result = analyze_manifest(project(tmp_path, spec), Options(target=MUSL), open_index(srv.index_url))
    assert result.unanalysable == ()
    assert culprits(result) == ({("app", "nettls")} if blocked else set())
    if blocked:
        chains = result.analysis.culprits[0].chains
        assert ("app", "nettls", "native-tls", "openssl-sys") in chains


def test_found_in_cargos_checkouts_offline(universe, repo, tmp_path, monkeypatch):
    """A checkout laid out as cargo leaves it: no clone needed, --offline is fine."""
    srv, _ = universe
    r, _v1 = repo
    home = tmp_path / "home"
    monkeypatch.setenv("CARGO_HOME", str(home))
    checkout = home / "git/checkouts/tlsrepo-0123456789abcdef" / git(r, "rev-parse", "--short=7", "HEAD")
    shutil.copytree(r, checkout, ignore=shutil.ignore_patterns(".git"))
    result = analyze_manifest(project(tmp_path, f'git = "{r.as_uri()}"'), Options(target=MUSL, offline=True),
                              open_index(srv.index_url))
    assert result.unanalysable == () and culprits(result) == {("app", "nettls")}
    # the package from the checkout is analysed, never offered for editing
    assert all(p.path == "" for p in result.analysis.resolution.packages if p.name in ("nettls", "util"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CARGO_STATIC_FIX_NO_MEMO="1"))


def test_unanalysable_is_said_and_fails_check(universe, tmp_path):
    srv, _ = universe
    gone = (tmp_path / "no-such-repo").as_uri()
    proj = project(tmp_path, f'git = "{gone}"')
    args = [str(proj), "--index-url", srv.index_url]
    r = run_cli("--check", *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning: app → nettls: ")]
    assert warning and f"git dependency ({gone}) could not be analysed" in warning[0]
    assert any(line.startswith("error: ") and "--check cannot pass" in line for line in r.stderr.splitlines())
    r = run_cli("--dry-run", *args)
    assert r.returncode == 0 and "warning: app → nettls: git dependency" in r.stderr
    doc = json.loads(run_cli("--explain", "--format", "json", *args).stdout)
    [u] = doc["unanalysable"]
    assert u["dependency"] == "nettls" and "could not be analysed" in u["reason"]
    # offline: nothing is cloned, and the reason says where it looked
    r = run_cli("--explain", "--offline", str(project(tmp_path / "o", 'git = "https://example.invalid/x.git"')),
                "--index-url", str(universe[1] / "index"))
    assert "not in cargo's git checkouts" in r.stdout and "--offline" in r.stdout


@needs_cargo
@pytest.mark.cargo
@pytest.mark.parametrize("ref", ["", 'tag = "v1"'])
def test_agrees_with_cargo(universe, repo, tmp_path, ref, monkeypatch):
    srv, _ = universe
    r, _v1 = repo
    home = cargo_home(tmp_path / "cargo", srv)
    proj = project(tmp_path, f'git = "{r.as_uri()}"' + (f", {ref}" if ref else ""))
    lock = cargo(["generate-lockfile"], proj, home)
    assert lock.returncode == 0, lock.stderr
    theirs = cargo_culprits(proj, home, MUSL, "features,normal,no-proc-macro", [], {"app"})
    ours = analyze_manifest(proj, Options(target=MUSL), open_index(srv.index_url))
    assert culprits(ours) == theirs == ({("app", "nettls")} if not ref else set())
    # and from cargo's own checkout, offline, with the commit Cargo.lock records
    monkeypatch.setenv("CARGO_HOME", str(home))
    offline = analyze_manifest(proj, Options(target=MUSL, offline=True), open_index(srv.index_url))
    assert offline.unanalysable == () and culprits(offline) == theirs
