"""The planner end to end: least invasive edits, proven by resolving the edited manifests again."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cargo_oracle import assert_cargo_accepts, cargo, tls_by_scope
from codemod.registry import open_index
from codemod.run import Options, analyze_manifest
from conftest import cargo_available
from fixture_registry import cargo_home, write_project

ROOT = Path(__file__).resolve().parent.parent
SEED = str(ROOT / "examples/registry/index")
MUSL = "x86_64-unknown-linux-musl"


def cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT))         # this tree's code from any working directory
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def hello(tmp_path) -> Path:
    dest = tmp_path / "hello"
    shutil.copytree(ROOT / "examples/hello", dest)
    return dest


def reanalyze(path: Path, url: str):
    return analyze_manifest(path, Options(target=MUSL), open_index(url)).analysis


@pytest.mark.parametrize("strategy,expected_line", [
    ("auto", 'reqwest = { version = "0.11.18", features = ["json", "blocking", "native-tls-vendored"] }'),
    ("vendored", 'reqwest = { version = "0.11.18", features = ["json", "blocking", "native-tls-vendored"] }'),
    ("rustls", 'reqwest = { version = "0.11.18", features = ["json", "blocking", "rustls-tls"], default-features = false }'),
    ("openssl-dep", 'openssl = { version = "0.10.56", features = ["vendored"] }'),
])
def test_seed_strategies_fix_the_build(tmp_path, strategy, expected_line):
    proj = hello(tmp_path)
    before = (proj / "Cargo.toml").read_text()
    r = cli("--dry-run", "--strategy", strategy, str(proj), "--index-url", SEED)
    assert r.returncode == 0, r.stderr
    assert f"+{expected_line}" in r.stdout
    assert (proj / "Cargo.toml").read_text() == before           # --dry-run writes nothing
    r = cli("--strategy", strategy, "--allow-dirty", str(proj), "--index-url", SEED)
    assert r.returncode == 0, r.stderr
    assert expected_line in (proj / "Cargo.toml").read_text()
    a = reanalyze(proj, SEED)
    assert not a.blocked                                         # no unvendored openssl-sys left
    if strategy == "rustls":
        assert not a.culprits
    else:
        assert a.vendored
    # a second run finds nothing to do and changes nothing
    after = (proj / "Cargo.toml").read_bytes()
    r = cli("--check", str(proj), "--index-url", SEED)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    assert (proj / "Cargo.toml").read_bytes() == after


def test_check_exits_1_and_json_reports_would_fix(tmp_path):
    proj = hello(tmp_path)
    r = cli("--check", str(proj), "--index-url", SEED)
    assert r.returncode == 1
    r = cli("--check", "--format", "json", str(proj), "--index-url", SEED)
    doc = json.loads(r.stdout)
    assert doc["status"] == "would-fix" and len(doc["manifest_sha256"]) == 64
    [step] = doc["plan"]
    assert step["remedy"] == "vendored-feature" and step["source"] == "rule"
    # paths are relative to the working directory, as in every output
    assert (ROOT / doc["manifest"]).resolve() == (proj / "Cargo.toml").resolve()
    [edit] = step["edits"]
    assert (ROOT / edit.pop("file")).resolve() == (proj / "Cargo.toml").resolve()
    assert edit == {"table": "dependencies", "dependency": "reqwest",
                    "add_features": ["native-tls-vendored"], "remove_features": [], "default_features": None}


PKG = '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'


def plan_for(universe, proj, strategy="auto"):
    srv, _ = universe
    return analyze_manifest(proj, Options(target=MUSL, strategy=strategy), open_index(srv.index_url), plan=True)


@pytest.fixture(scope="module")
def home(universe, tmp_path_factory):
    srv, _ = universe
    return cargo_home(tmp_path_factory.mktemp("cargo"), srv) if cargo_available() else None


def write_and_confirm(r, proj: Path, home) -> None:
    """Write the plan; where cargo is installed, it must agree for every member alone and for the
    workspace, and no member may lose its TLS crate."""
    members = sorted(p.name for p in r.workspace.selected_ids())
    before = None
    if home is not None:
        assert cargo(["generate-lockfile"], proj, home).returncode == 0
        before = tls_by_scope(proj, home, MUSL, members)
    for path, text in r.plan.texts.items():
        path.write_text(text)
    if home is not None:
        assert_cargo_accepts(proj, home, MUSL, members, before)


def test_reqwest_git2_sqlx_one_vendored_edit_fixes_all(universe, tmp_path, home):
    proj = write_project(tmp_path, {"Cargo.toml": PKG + 'reqwest = "0.11"\ngit2 = "0.17"\n'
                                                        'sqlx = { version = "0.7", features = ["runtime-tokio-native-tls"] }\n'})
    r = plan_for(universe, proj)
    assert {c.dependency for c in r.analysis.culprits} == {"reqwest", "git2", "sqlx"}
    # features unify: one vendored feature vendors the one openssl-sys every path reaches
    [rem] = r.plan.remedies
    assert rem.kind == "vendored-feature" and len(rem.edits) == 1
    write_and_confirm(r, proj, home)
    srv, _ = universe
    assert reanalyze(proj, srv.index_url).vendored


def test_reqwest_git2_sqlx_rustls_where_possible(universe, tmp_path, home):
    proj = write_project(tmp_path, {"Cargo.toml": PKG + 'reqwest = "0.11"\n'
                                                        'sqlx = { version = "0.8.6", features = ["runtime-tokio-native-tls"] }\n'})
    r = plan_for(universe, proj, "rustls")
    kinds = {(e.dependency, e.default_features, e.add_features, e.remove_features) for e in r.plan.edits}
    assert kinds == {("reqwest", False, ("rustls-tls",), ()),
                     ("sqlx", None, ("runtime-tokio-rustls",), ("runtime-tokio-native-tls",))}
    assert all(rem.source == "rule" for rem in r.plan.remedies)
    write_and_confirm(r, proj, home)
    srv, _ = universe
    a = reanalyze(proj, srv.index_url)
    assert not a.culprits and not a.host_only          # sqlx-macros on the host is clean too


def test_reqwest_012_rustls_keeps_the_other_defaults(universe, tmp_path, home):
    proj = write_project(tmp_path, {"Cargo.toml": PKG + 'reqwest = { version = "0.12", features = ["json"] }\n'})
    r = plan_for(universe, proj, "rustls")
    [edit] = r.plan.edits
    assert edit.default_features is False
    assert edit.add_features == ("rustls-tls", "charset", "http2", "macos-system-configuration")
    text = r.plan.texts[(proj / "Cargo.toml").resolve()]
    assert 'reqwest = { version = "0.12", features = ["json", "rustls-tls", "charset", "http2", "macos-system-configuration"], default-features = false }' in text
    write_and_confirm(r, proj, home)


def test_forced_strategy_that_cannot_work_exits_3(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path, {"Cargo.toml": PKG + 'git2 = "0.17"\n'})
    r = cli("--dry-run", "--strategy", "rustls", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 3
    assert "no `rustls` remedy exists for git2 0.17.2" in r.stderr
    r = cli("--dry-run", "--strategy", "rustls", "--format", "json", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 3 and json.loads(r.stdout)["status"] == "unfixable"


def test_common_mistake_rustls_with_defaults_on(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path, {"Cargo.toml": PKG + 'reqwest = { version = "0.11", features = ["rustls-tls"] }\n'})
    r = cli("--dry-run", str(proj), "--index-url", srv.index_url)
    assert "asks for `rustls-tls` but keeps default features on" in r.stderr
    assert "set `default-features = false`" in r.stderr


def test_workspace_inherited_dependency_is_switched_at_the_root(universe, tmp_path, home):
    proj = write_project(tmp_path, {
        "Cargo.toml": '[workspace]\nmembers = ["app"]\nresolver = "2"\n\n[workspace.dependencies]\n'
                      'reqwest = { version = "0.11", features = ["json"] }\n',
        "app/Cargo.toml": PKG + 'reqwest = { workspace = true, features = ["blocking"] }\n',
    })
    r = plan_for(universe, proj, "rustls")
    files = {Path(e.file).resolve(): e for e in r.plan.edits}
    root, member = (proj / "Cargo.toml").resolve(), (proj / "app/Cargo.toml").resolve()
    assert files[root].table == "workspace.dependencies" and files[root].default_features is False
    # every member that inherits the entry loses the default TLS with it, so the rustls feature
    # goes to the root too: no inheriting member is left without TLS
    assert member not in files and files[root].add_features == ("rustls-tls",)
    assert 'reqwest = { version = "0.11", features = ["json", "rustls-tls"], default-features = false }' in r.plan.texts[root]
    write_and_confirm(r, proj, home)


def test_plan_file_applies_without_a_registry_and_refuses_stale_plans(tmp_path):
    proj = hello(tmp_path)
    r = cli("--dry-run", "--format", "json", str(proj), "--index-url", SEED)
    plan = tmp_path / "plan.json"
    plan.write_text(r.stdout)
    # no --index-url: applying a plan reads no registry at all (its paths are relative to where it was made)
    # and writes only inside the directories named
    r = cli("--plan", str(plan), "--check")
    assert r.returncode == 2 and "outside the project" in r.stderr
    r = cli("--plan", str(plan), "--check", str(proj))
    assert r.returncode == 1 and "+reqwest" in r.stdout
    r = cli("--plan", str(plan), "--allow-dirty", str(proj))
    assert r.returncode == 0, r.stderr
    assert "native-tls-vendored" in (proj / "Cargo.toml").read_text()
    r = cli("--plan", str(plan), "--allow-dirty", str(proj))
    assert r.returncode == 2 and "changed since the plan was made" in r.stderr


def test_refuses_dirty_git_manifest_unless_allowed(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    proj = hello(tmp_path)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], cwd=proj, check=True)
    subprocess.run(git + ["add", "."], cwd=proj, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=proj, check=True)
    (proj / "Cargo.toml").write_text((proj / "Cargo.toml").read_text() + "# local edit\n")
    before = (proj / "Cargo.toml").read_text()
    r = cli(str(proj), "--index-url", SEED)
    assert r.returncode == 2 and "uncommitted changes" in r.stderr and "--allow-dirty" in r.stderr
    assert (proj / "Cargo.toml").read_text() == before
    r = cli(str(proj), "--index-url", SEED, "--allow-dirty")
    assert r.returncode == 0 and "native-tls-vendored" in (proj / "Cargo.toml").read_text()


def test_diff_colour_follows_the_color_flag(tmp_path):
    proj = hello(tmp_path)
    coloured = cli("--dry-run", "--color", "always", str(proj), "--index-url", SEED).stdout
    plain = cli("--dry-run", "--color", "never", str(proj), "--index-url", SEED).stdout
    assert "\x1b[32m+reqwest" in coloured and "\x1b[31m-reqwest" in coloured
    assert "\x1b[" not in plain and "+reqwest" in plain
    assert cli("--dry-run", str(proj), "--index-url", SEED).stdout == plain     # piped: auto means no colour
