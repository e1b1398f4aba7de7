"""Plans hold for every build cargo makes: each member on its own (`-p M`) and all together
(`--workspace`). The search grows linearly with the edit points, an edit never strips a feature a
member needs, and the plan says which candidates it looked at and why it left them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cargo_oracle import assert_cargo_accepts, cargo, tls_by_scope, unvendored
from conftest import cargo_available
from fixture_registry import C, D, Server, cargo_home, write_project, write_registry

ROOT = Path(__file__).resolve().parent.parent
MUSL = "x86_64-unknown-linux-musl"
HAVE_CARGO = cargo_available()


def pkg(name: str, deps: str = "", extra: str = "") -> str:
    return f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{extra}\n[dependencies]\n{deps}\n'


def virtual(members: dict[str, str], extra: str = "") -> dict[str, str]:
    names = ", ".join(f'"{m}"' for m in members)
    files = {"Cargo.toml": f'[workspace]\nmembers = [{names}]\nresolver = "2"\n{extra}'}
    files.update({f"{m}/Cargo.toml": pkg(m, deps) for m, deps in members.items()})
    return files


def extra_crates() -> list[C]:
    """Versions the main fixture universe does not have, shaped for one defect each."""
    return [
        # an older release without the vendored feature the reqwest rule names
        C("reqwest", "0.11.13",
          [D("native-tls-crate", "^0.2.10", optional=True, package="native-tls"),
           D("rustls", "^0.21.6", optional=True)],
          {"default": ["default-tls"], "default-tls": ["native-tls-crate", "__tls"], "native-tls": ["default-tls"],
           "rustls-tls": ["rustls", "__tls"], "__tls": []}),
        # a release whose `native-tls-vendored` does not reach openssl-sys at all: the rule's
        # candidate is offered, and the check rejects it
        C("reqwest", "0.11.14",
          [D("native-tls-crate", "^0.2.10", optional=True, package="native-tls"),
           D("rustls", "^0.21.6", optional=True)],
          {"default": ["default-tls"], "default-tls": ["native-tls-crate", "__tls"], "native-tls": ["default-tls"],
           "native-tls-vendored": ["native-tls"], "rustls-tls": ["rustls", "__tls"], "__tls": []}),
        # a git2 with no vendored feature at all
        C("git2", "0.16.1",
          [D("libgit2-sys", "^0.15.2"), D("openssl-sys", "^0.9.0", optional=True, target="cfg(unix)")],
          {"default": ["https"], "https": ["libgit2-sys/https", "openssl-sys"]}),
        # defaults that name a dependency's feature (`h2x/fast`) and an optional dependency (`dep:brotlix`)
        C("h2x", "1.0.0", features={"fast": []}),
        C("brotlix", "1.0.0"),
        C("tlsclient", "1.0.0",
          [D("native-tls", "^0.2", optional=True), D("rustls", "^0.21", optional=True),
           D("h2x", "^1", optional=True), D("brotlix", "^1", optional=True)],
          {"default": ["native", "h2x/fast", "dep:brotlix", "gzip"], "native": ["dep:native-tls"],
           "rustls": ["dep:rustls"], "http2": ["h2x/fast"], "gzip": []}),
    ]


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    from universe import crates

    root = tmp_path_factory.mktemp("reg")
    write_registry(root, crates() + extra_crates())
    srv = Server(root)
    home = cargo_home(tmp_path_factory.mktemp("cargo"), srv) if HAVE_CARGO else None
    yield srv, home
    srv.close()


def cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT), CARGO_STATIC_FIX_NO_MEMO="1")
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def plan_for(reg, proj, **kw):
    from codemod.registry import open_index
    from codemod.run import Options, analyze_manifest

    srv, _ = reg
    opts = Options(target=MUSL, **kw)
    return analyze_manifest(proj, opts, open_index(srv.index_url), plan=True)


def confirm(reg, proj: Path, members: list[str], before: dict, flags=()) -> None:
    if not HAVE_CARGO:
        return
    _, home = reg
    assert_cargo_accepts(proj, home, MUSL, members, before, list(flags))


def tls_before(reg, proj: Path, members: list[str], flags=()) -> dict:
    if not HAVE_CARGO:
        return {}
    _, home = reg
    assert cargo(["generate-lockfile"], proj, home).returncode == 0
    return tls_by_scope(proj, home, MUSL, members, list(flags))


def write(plan) -> None:
    for path, text in plan.texts.items():
        path.write_text(text)


# -- 1. linear search ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 13))
def test_members_sharing_a_culprit_are_fixed_in_linear_checks(reg, tmp_path, n):
    srv, _ = reg
    members = [f"m{i:02}" for i in range(n)]
    proj = write_project(tmp_path, virtual({m: 'reqwest = "0.11"' for m in members}))
    before = tls_before(reg, proj, members)
    r = cli("-v", "--allow-dirty", "--workspace", str(proj / "Cargo.toml"), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    checks = int(re.search(r": fixable, (\d+) candidate checks?", r.stderr).group(1))
    assert checks <= n + 2, r.stderr
    for m in members:
        assert "native-tls-vendored" in (proj / m / "Cargo.toml").read_text()
    confirm(reg, proj, members, before)


@pytest.mark.parametrize("n", [1, 4, 8])
def test_rejected_candidates_move_each_point_on_once(reg, tmp_path, n):
    """Every member's cheapest candidate fails; all move on together, so the checks stay linear."""
    srv, _ = reg
    members = [f"m{i:02}" for i in range(n)]
    proj = write_project(tmp_path, virtual({m: 'reqwest = "=0.11.14"' for m in members}))
    before = tls_before(reg, proj, members)
    r = cli("-v", "--format", "json", "--allow-dirty", "--workspace", str(proj / "Cargo.toml"), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    checks = int(re.search(r": fixable, (\d+) candidate checks?", r.stderr).group(1))
    assert checks <= n + 2, r.stderr
    doc = json.loads(r.stdout)
    entries = doc if isinstance(doc, list) else [doc]
    cands = [c for e in entries for c in e.get("candidates", [])]
    rejected = [c for c in cands if c["status"] == "rejected"]
    assert rejected and all(c["remedy"] == "vendored-feature" for c in rejected)
    assert "still builds openssl-sys without `vendored`" in rejected[0]["why"]
    for m in members:
        assert 'default-features = false' in (proj / m / "Cargo.toml").read_text()
    confirm(reg, proj, members, before)


# -- 2. unification must not hide a member that fails on its own ----------------------------------


def test_each_member_is_fixed_on_its_own(reg, tmp_path):
    files = virtual({"a": 'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }',
                     "b": 'reqwest = "0.11"'})
    proj = write_project(tmp_path, files)
    before = tls_before(reg, proj, ["a", "b"])
    r = plan_for(reg, proj)
    assert r.plan.status == "fixable"
    edited = {Path(e.file).resolve().parent.name for e in r.plan.edits}
    assert "b" in edited                          # b built alone is what links OpenSSL
    assert (proj / "a/Cargo.toml").resolve() not in r.plan.texts   # a links no OpenSSL of its own: left alone
    write(r.plan)
    confirm(reg, proj, ["a", "b"], before)


def test_a_vendored_union_still_fixes_the_member_that_is_not(reg, tmp_path):
    """`--workspace` is vendored because `a` asks for it; `cargo build -p b` is not."""
    files = virtual({"a": 'reqwest = { version = "0.11", features = ["native-tls-vendored"] }', "b": 'reqwest = "0.11"'})
    proj = write_project(tmp_path, files)
    before = tls_before(reg, proj, ["a", "b"])
    r = plan_for(reg, proj, workspace=True)
    assert r.analysis.vendored                     # the union alone looks clean
    assert r.plan.status == "fixable"
    assert {Path(e.file).resolve() for e in r.plan.edits} == {(proj / "b/Cargo.toml").resolve()}
    write(r.plan)
    confirm(reg, proj, ["a", "b"], before)


# -- 3. inherited dependencies keep TLS in every inheriting member ---------------------------------


@pytest.mark.parametrize("strategy", ["auto", "rustls"])
def test_inherited_dependency_keeps_tls_in_every_member(reg, tmp_path, strategy):
    proj = write_project(tmp_path, virtual({"a": "reqwest = { workspace = true }", "b": "reqwest = { workspace = true }"},
                                           '\n[workspace.dependencies]\nreqwest = "0.11"\n'))
    before = tls_before(reg, proj, ["a", "b"])
    r = plan_for(reg, proj, strategy=strategy)
    assert r.plan.status == "fixable", r.plan.reason
    if strategy == "rustls":
        [edit] = r.plan.edits
        assert edit.table == "workspace.dependencies" and edit.default_features is False
        assert edit.add_features == ("rustls-tls",)
    write(r.plan)
    confirm(reg, proj, ["a", "b"], before)


def test_a_member_that_would_lose_tls_rejects_the_candidate(reg, tmp_path):
    """The checker itself refuses a plan that leaves a member with TLS before without any after."""
    from codemod.edit import Edit
    from codemod.plan import Checker

    proj = write_project(tmp_path, virtual({"a": "reqwest = { workspace = true }", "b": "reqwest = { workspace = true }"},
                                           '\n[workspace.dependencies]\nreqwest = "0.11"\n'))
    checker: Checker = _checker_of(reg, proj)
    # the old split: default features off at the root, rustls only in `a`
    bad = [Edit(str(proj / "Cargo.toml"), "workspace.dependencies", "reqwest", (), (), False),
           Edit(str(proj / "a/Cargo.toml"), "dependencies", "reqwest", ("rustls-tls",))]
    v = checker.check(bad)
    assert [(b.label, why) for b, why in v.failures] == [
        ("-p b", "`cargo build -p b` has no TLS crate left (it had native-tls, openssl, openssl-sys)")]


def _checker_of(reg, proj):
    from codemod.plan import Checker
    from codemod.registry import open_index
    from codemod.run import Options, builds
    from codemod.workspace import load_workspace

    srv, _ = reg
    opts = Options(target=MUSL, workspace=True)
    index = open_index(srv.index_url)
    ws = load_workspace(proj, workspace=True)

    def reload(texts, near=None):
        w = load_workspace(proj, workspace=True, texts=texts) if texts else ws
        return builds(w, opts, (MUSL,), index)

    return Checker({}, reload, "openssl-sys")


# -- 4. edits cargo accepts, with the meaning they had ---------------------------------------------


def test_readding_defaults_never_writes_dependency_features(reg, tmp_path):
    proj = write_project(tmp_path, {"Cargo.toml": pkg("app", 'tlsclient = "1"')})
    before = tls_before(reg, proj, ["app"])
    r = plan_for(reg, proj, strategy="rustls")
    [rem] = r.plan.remedies
    [edit] = rem.edits
    assert edit.default_features is False
    assert edit.add_features == ("rustls", "http2", "gzip")        # `h2x/fast` comes back as `http2`
    assert not any("/" in f or f.startswith("dep:") for f in edit.add_features)
    assert any("`dep:brotlix` cannot be re-added" in n for n in rem.notes), rem.notes
    write(r.plan)
    confirm(reg, proj, ["app"], before)


def test_scope_musl_keeps_an_optional_dependency_optional(reg, tmp_path):
    srv, home = reg
    proj = write_project(tmp_path, {"Cargo.toml": pkg("app", 'reqwest = { version = "0.11", optional = true }',
                                                      '\n[features]\ndefault = ["net"]\nnet = ["dep:reqwest"]\n')})
    before = tls_before(reg, proj, ["app"])
    r = cli("--scope", "musl", "--allow-dirty", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    text = (proj / "Cargo.toml").read_text()
    assert ("[target.'cfg(target_env = \"musl\")'.dependencies]\n"
            'reqwest = { version = "0.11", features = ["native-tls-vendored"], optional = true }') in text
    confirm(reg, proj, ["app"], before)
    if HAVE_CARGO:
        out = cargo(["tree", "--no-default-features", "--target", MUSL, "-e", "normal", "--prefix", "none"], proj, home)
        assert out.returncode == 0, out.stderr
        assert "reqwest" not in out.stdout            # still optional on musl
        assert unvendored(proj, home, MUSL, ["--no-default-features"]) == []


def test_a_vendored_rule_adds_every_feature_it_lists(reg, tmp_path):
    from codemod.rules import parse_rules

    rules = parse_rules('[[rules]]\ncrate = "reqwest"\nversions = ">=0.11, <0.12"\n\n[[rules.remedies]]\n'
                        'kind = "vendored-feature"\nadd_features = ["native-tls-vendored", "native-tls-alpn"]\n', "t.toml")
    from codemod.registry import open_index
    from codemod.run import Options, analyze_manifest

    srv, _ = reg
    proj = write_project(tmp_path, {"Cargo.toml": pkg("app", 'reqwest = "0.11.18"')})
    r = analyze_manifest(proj, Options(target=MUSL), open_index(srv.index_url), plan=True, rules=rules)
    [edit] = r.plan.edits
    assert edit.add_features == ("native-tls-vendored", "native-tls-alpn")


# -- 5. errors are errors -------------------------------------------------------------------------


def test_a_failing_check_is_an_error_not_unfixable(reg, tmp_path, monkeypatch):
    from codemod import run
    from codemod.errors import CodemodError, RegistryError
    from codemod.registry import open_index

    srv, _ = reg
    proj = write_project(tmp_path, {"Cargo.toml": pkg("app", 'reqwest = "0.11"')})
    real = run.resolve_with_fetch
    calls = []

    def flaky(inp, index, blocker=None):
        calls.append(1)
        if len(calls) > 1:              # the analysis resolves; the first candidate check fails
            raise RegistryError("http://127.0.0.1/: connection refused")
        return real(inp, index, blocker)

    monkeypatch.setattr(run, "resolve_with_fetch", flaky)
    with pytest.raises(CodemodError, match="checking a candidate fix failed: http://127.0.0.1/: connection refused"):
        run.analyze_manifest(proj, run.Options(target=MUSL), open_index(srv.index_url), plan=True)

    from codemod import cli as cli_module

    calls.clear()
    monkeypatch.setenv("CARGO_STATIC_FIX_NO_MEMO", "1")
    assert cli_module.main(["--dry-run", str(proj), "--index-url", srv.index_url]) == 2


# -- explaining the choice --------------------------------------------------------------------------


def test_candidates_are_listed_with_cost_and_reason(reg, tmp_path):
    srv, _ = reg
    proj = write_project(tmp_path, {"Cargo.toml": pkg("app", 'reqwest = "=0.11.13"')})
    r = cli("--dry-run", "--format", "json", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    cands = doc["candidates"]
    assert {"culprit", "remedy", "source", "description", "cost", "edits", "status", "why"} == set(cands[0])
    gone = next(c for c in cands if c["status"] == "unavailable")
    assert gone["why"] == "reqwest 0.11.13 has no `native-tls-vendored`" and gone["remedy"] == "vendored-feature"
    chosen = [c for c in cands if c["status"] == "chosen"]
    assert [c["remedy"] for c in chosen] == ["rustls"] and chosen[0]["cost"] == 2
    text = cli("--explain", str(proj), "--index-url", srv.index_url).stdout
    assert "Candidates considered" in text and "reqwest 0.11.13 has no `native-tls-vendored`" in text


def test_unfixable_names_the_culprit_and_what_would_fix_it(reg, tmp_path):
    srv, _ = reg
    proj = write_project(tmp_path, virtual({"a": 'reqwest = "0.11"', "b": 'git2 = "0.16"'}))
    r = cli("--dry-run", "--strategy", "vendored", "--workspace", str(proj / "Cargo.toml"), "--index-url", srv.index_url)
    assert r.returncode == 3
    assert "b → git2 (git2 0.16.1): git2 0.16.1 has no vendored feature in this registry" in r.stderr
    assert "git2 0.17.2 has `vendored-openssl`" in r.stderr
    assert "+reqwest" not in r.stdout                    # nothing is written without --partial


def test_partial_fixes_the_others(reg, tmp_path):
    srv, _ = reg
    proj = write_project(tmp_path, virtual({"a": 'reqwest = "0.11"', "b": 'git2 = "0.16"'}))
    before = tls_before(reg, proj, ["a"])
    args = ("--strategy", "vendored", "--partial", "--workspace", str(proj / "Cargo.toml"), "--index-url", srv.index_url)
    r = cli("--dry-run", "--format", "json", *args)
    assert r.returncode == 3, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "would-partially-fix" and doc["unfixed"] == ["b → git2"]
    assert [rem["remedy"] for rem in doc["plan"]] == ["vendored-feature"]
    assert any(c["culprit"].startswith("b → git2") and c["status"] == "unavailable" for c in doc["candidates"])
    r = cli("--allow-dirty", *args)
    assert r.returncode == 3 and "partial fix" in r.stderr
    assert "native-tls-vendored" in (proj / "a/Cargo.toml").read_text()
    if HAVE_CARGO:
        _, home = reg
        assert unvendored(proj, home, MUSL, ["-p", "a"]) == []
        assert unvendored(proj, home, MUSL, ["-p", "b"]) != []      # reported as left, and it is


# -- 6. large workspaces: pruning in rounds ----------------------------------------------------------

ROUND_DEPS = [
    'reqwest = "0.11"', 'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }',
    'reqwest = { version = "0.12", features = ["json"] }', 'git2 = "0.17"', 'curl = "0.4.46"',
    'tungstenite = { version = "0.21", features = ["native-tls"] }', 'serde_json = "1"',
    'redis = { version = "0.25.3", features = ["tokio-native-tls-comp"] }', 'openssl = "0.10"',
]


def grouped_workspace(root: Path, n: int, seed: int, group: int = 4) -> Path:
    """n members in groups that depend on their group's first member by path, each with 0-2
    culprits or clean crates, some inherited from [workspace.dependencies]: edits whose builds
    overlap (same group) and edits whose builds do not (other groups)."""
    import random

    rng = random.Random(seed)
    files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n\n'
                           '[workspace.dependencies]\nreqwest = { version = "0.11", features = ["json"] }\n'}
    for i in range(n):
        deps = list({d.split(" ")[0]: d for d in rng.sample(ROUND_DEPS, rng.randint(0, 2))}.values())
        if i % group:
            deps.append(f'm{i - i % group} = {{ path = "../m{i - i % group}" }}')
        if rng.random() < 0.2:
            deps = ["reqwest = { workspace = true }"] + [d for d in deps if not d.startswith("reqwest")]
        files[f"crates/m{i}/Cargo.toml"] = pkg(f"m{i}", "\n".join(deps))
    return write_project(root, files)


@pytest.mark.parametrize("seed", range(6))
def test_pruning_in_rounds_gives_the_one_at_a_time_answer(reg, tmp_path, monkeypatch, seed):
    """Edits whose removal reaches no build in common are tried together: the plan, the texts
    and every candidate's status are those of removing one edit per check, in fewer checks."""
    from codemod import plan

    proj = grouped_workspace(tmp_path, 12, seed)
    together = plan_for(reg, proj, workspace=True).plan
    monkeypatch.setattr(plan, "_prune_together", lambda *a, **k: None)
    each = plan_for(reg, proj, workspace=True).plan
    assert together.status == each.status
    assert together.texts == each.texts
    assert [c.as_json() for c in together.candidates] == [c.as_json() for c in each.candidates]
    assert together.evaluations <= each.evaluations


def test_pruning_checks_do_not_grow_with_members(reg, tmp_path):
    """The pruning pass takes as many checks for 160 members as for 40 (the number of rounds
    follows how many edits reach one build, not the number of edits); one edit per check took
    one check per edit."""
    checks, edits = {}, {}
    for n in (40, 160):
        proj = grouped_workspace(tmp_path / str(n), n, seed=3)
        result = plan_for(reg, proj, workspace=True).plan
        assert result.status == "fixable"
        checks[n], edits[n] = result.evaluations, len(result.remedies)
    assert edits[160] > 3 * edits[40]
    assert checks[160] <= checks[40] + 2, checks


def test_a_failed_complete_check_falls_back_to_one_edit_at_a_time(reg, tmp_path, monkeypatch):
    """A pruning that holds for every member on its own but not for the workspace build is
    redone with complete checks."""
    from codemod import plan

    proj = grouped_workspace(tmp_path, 8, seed=1)
    expected = plan_for(reg, proj, workspace=True).plan
    calls = []
    real = plan._prune_each

    def each(*a, **k):
        calls.append(1)
        return real(*a, **k)

    def wrong(items, order, verdict, checker, edits_of, points):
        return items[:1], verdict                  # a members-only answer the complete check refuses

    monkeypatch.setattr(plan, "_prune_each", each)
    monkeypatch.setattr(plan, "_prune_together", wrong)
    again = plan_for(reg, proj, workspace=True).plan
    assert calls, "the one-at-a-time pass did not run"
    assert again.texts == expected.texts
