"""rules/: every feature a rule names exists in the index data it claims to cover, and every rule's
remedies are snapshot-tested end to end (dry-run diff and JSON plan)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cargo_oracle import assert_cargo_accepts, cargo, tls_by_scope
from codemod.rules import RuleError, load_rules, parse_rules
from codemod.semver import parse_version
from conftest import cargo_available
from fixture_registry import cargo_home

ROOT = Path(__file__).resolve().parent.parent
CHECKOUT = dict(os.environ, PYTHONPATH=str(ROOT))      # run this checkout's code from any directory
FIXTURE = json.loads((ROOT / "tests/fixtures/rule-features.json").read_text())["crates"]
RULES = load_rules()


def rule_id(rule) -> str:
    return f"{rule.crate} {rule.versions}"


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_rule_features_exist_in_every_covered_index_version(rule):
    lines = FIXTURE.get(rule.crate, [])
    covered = [line for line in lines if rule.covers(rule.crate, line["vers"])]
    assert covered, f"no index data for {rule_id(rule)}: add real index lines to tests/fixtures/rule-features.json"
    for line in covered:
        for remedy in rule.remedies:
            missing = set(remedy.add_features) - set(line["features"])
            assert not missing, f"{rule.crate} {line['vers']} has no feature {sorted(missing)}"


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_rule_starts_at_a_recorded_version(rule):
    """A range starts at a version whose index line was read: `>=X` names a recorded X."""
    low = rule.versions.split(",")[0].strip()
    assert low.startswith(">="), f"{rule_id(rule)}: ranges start with `>=` at a checked version"
    bound = low[2:].strip()
    want = parse_version(bound + ".0" * (2 - bound.split("-")[0].count(".")))   # `>=0.10` is 0.10.0
    recorded = [parse_version(line["vers"].split("+")[0]) for line in FIXTURE.get(rule.crate, [])]
    assert want in recorded, f"{rule_id(rule)}: the lower bound {bound} is not among the recorded versions"


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_rule_removals_exist_in_every_covered_version(rule):
    """Every feature a switch removes exists (as a feature or the implicit feature of an optional
    dependency) in every recorded version the range covers, so a rule says nothing untrue at either
    end. The planner itself only removes the names the dependency entry lists (an entry cannot list a
    feature its version lacks), but a name a version lacks means the range should be split there."""
    covered = [line for line in FIXTURE.get(rule.crate, []) if rule.covers(rule.crate, line["vers"])]
    assert covered, f"no index data for {rule_id(rule)}"
    for line in covered:
        names = set(line["features"]) | set(line.get("implicit", []))
        for remedy in rule.remedies:
            missing = set(remedy.remove_features) - names
            assert not missing, f"{rule.crate} {line['vers']} has no feature {sorted(missing)} ({rule_id(rule)} removes it)"


def test_reqwest_native_tls_alpn_arrives_in_0_11_4():
    """0.10.0 to 0.11.3 have no `native-tls-alpn`; the rule covering them does not name it."""
    lines = {line["vers"]: set(line["features"]) for line in FIXTURE["reqwest"]}
    for vers in ("0.10.0", "0.10.2", "0.10.8", "0.11.1", "0.11.3"):
        assert "native-tls-alpn" not in lines[vers] and "native-tls-vendored" in lines[vers]
    assert "native-tls-alpn" in lines["0.11.4"]
    before = next(r for r in RULES if r.covers("reqwest", "0.11.3"))
    after = next(r for r in RULES if r.covers("reqwest", "0.11.4"))
    assert before is not after and not after.covers("reqwest", "0.11.3")
    assert not any("native-tls-alpn" in m.remove_features for m in before.remedies)
    assert any("native-tls-alpn" in m.remove_features for m in after.remedies)


def test_versions_outside_a_rule_really_lack_its_features():
    """The boundaries the rules draw are real: tokio-native-tls 0.3.0, native-tls 0.2.0 and
    hyper-tls 0.3.0 have no `vendored` feature."""
    by_version = {(c, line["vers"]): set(line["features"]) for c, lines in FIXTURE.items() for line in lines}
    for crate, version in [("tokio-native-tls", "0.3.0"), ("native-tls", "0.2.0"), ("hyper-tls", "0.3.0")]:
        assert "vendored" not in by_version[(crate, version)]
        assert not any(r.covers(crate, version) for r in RULES)


def test_sqlx_core_rustls_features_change_where_the_rules_split():
    """0.8.0 still has rustls 0.21's `_tls-rustls` only; 0.8.1 adds `_tls-rustls-ring`; 0.8.3 replaces it
    with `_tls-rustls-ring-webpki`: each rule's switch is absent on the other side of its bounds."""
    by_version = {line["vers"]: set(line["features"]) for line in FIXTURE["sqlx-core"]}
    assert "_tls-rustls-ring" not in by_version["0.8.0"] and "_tls-rustls-ring" in by_version["0.8.1"]
    assert "_tls-rustls-ring" not in by_version["0.8.3"] and "_tls-rustls-ring-webpki" not in by_version["0.8.2"]
    adds = {r.versions: r.remedies[0].add_features for r in RULES if r.crate == "sqlx-core"}
    assert adds == {">=0.7.0, <0.8.1": ("_tls-rustls",), ">=0.8.1, <0.8.3": ("_tls-rustls-ring",),
                    ">=0.8.3, <0.9": ("_tls-rustls-ring-webpki",)}


def test_every_required_family_has_a_rule_file():
    assert {p.stem for p in (ROOT / "rules").glob("*.toml")} >= {
        "reqwest", "native-tls", "openssl", "git2", "ssh2", "curl", "sqlx", "tungstenite", "attohttpc", "redis",
        "rdkafka", "postgres", "lettre", "isahc", "ureq", "actix", "mongodb"}


@pytest.mark.parametrize("text,message", [
    ('[[rules]]\ncrate = "x"\n', "needs `crate` and `versions`"),
    ('[[rules]]\ncrate = "x"\nversions = "^1"\n[[rules.remedies]]\nkind = "magic"\nadd_features = ["a"]\n', "`kind` must be one of"),
    ('[[rules]]\ncrate = "x"\nversions = "^1"\n[[rules.remedies]]\nkind = "rustls"\n', "must name at least one feature"),
    ('[[rules]]\ncrate = "x"\nversions = "one"\n', "invalid version requirement"),
    ('[[rules]]\ncrate = "x"\nversions = "^1"\nextra = 1\n', "unknown key `extra`"),
])
def test_invalid_rules_are_rejected(text, message):
    with pytest.raises(RuleError, match=message):
        parse_rules(text, "bad.toml")


def test_list_rules_json():
    r = subprocess.run([sys.executable, "-m", "codemod", "--list-rules", "--format", "json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    from codemod.catalog import load_catalog

    rules = [d for d in doc if "library" not in d]
    libraries = [d for d in doc if "library" in d]
    assert len(rules) == len(RULES)
    assert {d["crate"] for d in libraries} == {lib.crate for lib in load_catalog()} >= {"openssl-sys", "libsqlite3-sys", "pq-sys"}
    assert all(set(d) >= {"crate", "library", "versions", "system", "remedies", "needs"} for d in libraries)
    reqwest = next(d for d in doc if d["crate"] == "reqwest" and d["versions"] == ">=0.12, <0.13")
    assert reqwest["remedies"][1] == {
        "kind": "rustls", "add_features": ["rustls-tls"],
        "remove_features": ["default-tls", "native-tls", "native-tls-alpn", "native-tls-vendored"],
        "default_features": False, "notes": reqwest["remedies"][1]["notes"]}
    assert set(reqwest["remedies"][0]) == {"kind", "add_features", "remove_features", "default_features", "notes"}


# -- one fixture project per rule and remedy kind, run through the command line ---------------------

# rule (crate, versions) -> (dependency line in a fixture manifest, strategy per remedy kind)
SNAPSHOT_CASES = {
    ("reqwest", ">=0.9.23, <0.10"): 'reqwest = "=0.9.24"',
    ("reqwest", ">=0.10, <0.11.4"): 'reqwest = { version = "=0.11.3", features = ["json"] }',
    ("reqwest", ">=0.11.4, <0.12"): 'reqwest = { version = "0.11.18", features = ["json"] }',
    ("reqwest", ">=0.12, <0.13"): 'reqwest = { version = "0.12.4", features = ["json"] }',
    ("native-tls", ">=0.2.1, <0.3"): 'native-tls = "0.2"',
    ("tokio-native-tls", ">=0.3.1, <0.4"): 'tokio-native-tls = "0.3.1"',
    ("hyper-tls", ">=0.3.1, <0.7"): 'hyper-tls = "0.5"',
    ("openssl", ">=0.10.56, <0.11"): 'openssl = "0.10.56"',
    ("openssl-sys", ">=0.9.91, <0.10"): 'openssl-sys = "0.9.91"',
    ("git2", ">=0.20.1, <0.21"): 'git2 = "0.20"',
    ("libgit2-sys", ">=0.18.3, <0.19"): 'libgit2-sys = { version = "0.18.3", features = ["https"] }',
    ("ssh2", ">=0.9.2, <0.10"): 'ssh2 = "0.9"',
    ("libssh2-sys", ">=0.3.0, <0.4"): 'libssh2-sys = "0.3"',
    ("curl", ">=0.4.45, <0.5"): 'curl = "0.4.46"',
    ("curl-sys", ">=0.4.81, <0.5"): 'curl-sys = "0.4.81"',
    ("sqlx", ">=0.8.5, <0.9"): 'sqlx = { version = "0.8.6", features = ["runtime-tokio-native-tls"] }',
    ("sqlx", ">=0.9.0-alpha.1, <0.10"): 'sqlx = { version = "=0.9.0-alpha.1", features = ["tls-native-tls"] }',
    ("sqlx", ">=0.7.3, <0.8"): 'sqlx = { version = "0.7.4", features = ["runtime-tokio-native-tls"] }',
    ("tungstenite", ">=0.21.0, <0.22"): 'tungstenite = { version = "0.21", features = ["native-tls"] }',
    ("tokio-tungstenite", ">=0.27.0, <0.28"): 'tokio-tungstenite = { version = "0.27", features = ["native-tls"] }',
    ("attohttpc", ">=0.28.0, <0.29"): 'attohttpc = { version = "0.28", features = ["json"] }',
    ("redis", ">=0.25.3, <0.26"): 'redis = { version = "0.25.3", features = ["tokio-native-tls-comp"] }',
    ("rdkafka", ">=0.36.2, <0.37"): 'rdkafka = { version = "0.36", features = ["ssl"] }',
    ("rdkafka-sys", ">=4.3.0, <5"): 'rdkafka-sys = { version = "4.7", features = ["ssl"] }',
    ("actix-tls", ">=3.2.0, <4"): 'actix-tls = { version = "3.3", features = ["openssl"] }',
    ("http-client", ">=6.5.3, <7"): 'http-client = "6.5"',
    ("surf", ">=2.3.1, <3"): 'surf = "2.3"',
    ("octocrab", ">=0.49.1, <0.50"): 'octocrab = { version = "0.49", features = ["opentls"] }',
    ("async-native-tls", ">=0.4.0, <0.7"): 'async-native-tls = "0.6"',
    ("postgres-native-tls", ">=0.4.0, <0.6"): 'postgres-native-tls = "0.5"',
    ("postgres-openssl", ">=0.5.0, <0.6"): 'postgres-openssl = "0.5"',
    ("lettre", ">=0.11.7, <0.12"): 'lettre = "0.11.7"',
    ("isahc", ">=1.7.2, <2"): 'isahc = "1.7"',
    ("ureq", ">=3.0.6, <4"): 'ureq = { version = "3.0.6", features = ["native-tls"] }',
    ("actix-web", ">=4.5.0, <5"): 'actix-web = { version = "4.5", features = ["openssl"] }',
    ("awc", ">=3.5.0, <4"): 'awc = { version = "3.5", features = ["openssl"] }',
    ("mongodb", ">=3.9.0, <4"): 'mongodb = { version = "3.9", features = ["openssl-tls"] }',
    ("ureq", ">=2.11.0, <3"): 'ureq = { version = "2.12", features = ["native-tls"] }',
    ("sqlx", ">=0.5.13, <0.7"): 'sqlx = { version = "0.6.3", features = ["runtime-actix-native-tls", "postgres"] }',
    ("sqlx-core", ">=0.8.3, <0.9"): 'sqlx-core = { version = "0.8.6", features = ["_tls-native-tls", "_rt-tokio"] }',
    ("sqlx-core", ">=0.8.1, <0.8.3"): 'sqlx-core = { version = "=0.8.2", features = ["_tls-native-tls", "_rt-tokio"] }',
    ("sqlx-core", ">=0.7.0, <0.8.1"): 'sqlx-core = { version = "0.7.4", features = ["_tls-native-tls", "_rt-tokio"] }',
    ("sqlx-rt", ">=0.5.2, <0.7"): 'sqlx-rt = { version = "0.6.3", features = ["runtime-tokio-native-tls"] }',
}
STRATEGY = {"vendored-feature": "vendored", "rustls": "rustls"}
# rules whose remedies build another catalog library (static-feature) are checked in test_catalog.py
OPENSSL_RULES = [r for r in RULES if all(m.kind in STRATEGY for m in r.remedies)]


def _cases():
    for rule in OPENSSL_RULES:
        line = SNAPSHOT_CASES.get((rule.crate, rule.versions))
        for kind in sorted({m.kind for m in rule.remedies}):
            yield pytest.param(rule, kind, line, id=f"{rule.crate}-{rule.versions}-{kind}")


def test_every_rule_has_a_snapshot_case():
    missing = [rule_id(r) for r in OPENSSL_RULES if (r.crate, r.versions) not in SNAPSHOT_CASES]
    assert not missing, f"add a fixture dependency line to SNAPSHOT_CASES for {missing}"


@pytest.fixture(scope="module")
def home(universe, tmp_path_factory):
    srv, _ = universe
    return cargo_home(tmp_path_factory.mktemp("cargo"), srv) if cargo_available() else None


@pytest.mark.parametrize("rule,kind,line", list(_cases()))
def test_rule_snapshot(rule, kind, line, universe, tmp_path, snapshot, home):
    assert line is not None, f"no snapshot case for {rule_id(rule)}"
    srv, _ = universe
    proj = tmp_path / "app"
    (proj / "src").mkdir(parents=True)
    (proj / "src/lib.rs").write_text("")
    (proj / "Cargo.toml").write_text(f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{line}\n')
    args = [sys.executable, "-m", "codemod", "--dry-run", "--strategy", STRATEGY[kind], "--index-url", srv.index_url, "app"]
    diff = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=CHECKOUT)
    assert diff.returncode == 0, diff.stderr
    plan = subprocess.run(args + ["--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=CHECKOUT)
    doc = json.loads(plan.stdout)
    remedies = doc["plan"]
    assert remedies and all(r["remedy"] == kind for r in remedies)
    assert any(r["source"] == "rule" for r in remedies), "the rule itself must produce the remedy"
    doc["manifest_sha256"] = "<sha256>"
    assert {"diff": diff.stdout, "plan": doc["plan"], "status": doc["status"]} == snapshot
    if home is not None:
        # the plan, written, is what cargo builds: no unvendored openssl-sys, TLS kept
        assert cargo(["generate-lockfile"], proj, home).returncode == 0
        before = tls_by_scope(proj, home, "x86_64-unknown-linux-musl", ["app"])
        apply = subprocess.run(args[:3] + args[4:] + ["--allow-dirty"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, env=CHECKOUT)
        assert apply.returncode == 0, apply.stderr
        assert_cargo_accepts(proj, home, "x86_64-unknown-linux-musl", ["app"], before)


@pytest.mark.parametrize("crate", ["postgres-native-tls", "postgres-openssl"])
def test_notes_only_rules_reach_the_user(crate, universe, tmp_path):
    """Crates with no feature to change: the plan vendors OpenSSL another way and passes the rule's advice on."""
    srv, _ = universe
    proj = tmp_path / "app"
    (proj / "src").mkdir(parents=True)
    (proj / "src/lib.rs").write_text("")
    (proj / "Cargo.toml").write_text(f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{crate} = "0.5"\n')
    r = subprocess.run([sys.executable, "-m", "codemod", "--dry-run", "--format", "json", "--index-url", srv.index_url, "app"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=CHECKOUT)
    doc = json.loads(r.stdout)
    assert doc["status"] == "would-fix"
    notes = [n for rem in doc["plan"] for n in rem["notes"]]
    assert any("tokio-postgres-rustls" in n for n in notes), notes


# -- the parsed rules are kept between runs --------------------------------------------------------


def _copy_rules(tmp_path):
    import shutil

    from codemod.rules import RULES_DIR

    d = tmp_path / "rules"
    shutil.copytree(RULES_DIR, d)
    return d


def _fresh_run(monkeypatch, tmp_path):
    from codemod import rules

    monkeypatch.setattr(rules, "_PARSED", {})
    monkeypatch.setattr(rules, "CACHE_DIR", [tmp_path / "cache"])


def test_rule_data_is_read_from_the_cache_while_the_files_are_unchanged(tmp_path, monkeypatch):
    from codemod import rules
    from codemod.catalog import load_catalog

    d = _copy_rules(tmp_path)
    _fresh_run(monkeypatch, tmp_path)
    first = rules.load_rules(d)
    assert list((tmp_path / "cache").glob("rules-*.json"))
    parsed = []
    real = rules.toml_data
    monkeypatch.setattr(rules, "toml_data", lambda text, where: parsed.append(where) or real(text, where))
    monkeypatch.setattr(rules, "_PARSED", {})                  # the next run
    assert rules.load_rules(d) == first
    assert load_catalog(d) and parsed == []                    # both from the stored data
    # an edited rule file is read again, and its edit is seen
    f = d / "reqwest.toml"
    f.write_text(f.read_text().replace('versions = ">=0.12, <0.13"', 'versions = ">=0.12.1, <0.13"'))
    monkeypatch.setattr(rules, "_PARSED", {})
    again = rules.load_rules(d)
    assert parsed and any(r.crate == "reqwest" and r.versions == ">=0.12.1, <0.13" for r in again)


def test_a_damaged_rule_cache_is_ignored(tmp_path, monkeypatch):
    from codemod import rules

    d = _copy_rules(tmp_path)
    _fresh_run(monkeypatch, tmp_path)
    first = rules.load_rules(d)
    for f in (tmp_path / "cache").glob("rules-*.json"):
        f.write_text('{"key": ')
    monkeypatch.setattr(rules, "_PARSED", {})
    assert rules.load_rules(d) == first
    # and an unwritable cache directory costs only the speed
    monkeypatch.setattr(rules, "CACHE_DIR", [tmp_path / "cache" / "rules-x.json" / "not-a-dir"])
    monkeypatch.setattr(rules, "_PARSED", {})
    assert rules.load_rules(d) == first
