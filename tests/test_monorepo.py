"""Whole monorepos in one run, and the cargo-like experience around it."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cargo_available
from fixture_registry import cargo_home, write_project

ROOT = Path(__file__).resolve().parent.parent


def pkg(name: str, deps: str = "", extra: str = "") -> str:
    return f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{extra}\n[dependencies]\n{deps}\n'


def monorepo(root: Path) -> Path:
    """Nested workspaces, an excluded member, a broken manifest, a gitignored folder, a symlink
    pointing outside, vendor/ and target/ folders, and a fix shared through [workspace.dependencies]."""
    outside = root.parent / "outside"
    write_project(outside, {"Cargo.toml": pkg("outside", 'reqwest = "0.11"')})
    write_project(root, {
        ".gitignore": "ignored/\n",
        "services/Cargo.toml": '[workspace]\nmembers = ["api", "worker", "tools/*"]\nexclude = ["tools/legacy"]\nresolver = "2"\n\n'
                               '[workspace.dependencies]\nreqwest = { version = "0.11", features = ["json"] }\n',
        "services/api/Cargo.toml": pkg("api", "reqwest = { workspace = true }"),
        "services/worker/Cargo.toml": pkg("worker", 'reqwest = { workspace = true, features = ["blocking"] }'),
        "services/tools/cli/Cargo.toml": pkg("cli", 'serde_json = "1"'),
        "services/tools/legacy/Cargo.toml": pkg("legacy", 'git2 = "0.17"'),           # excluded: its own workspace
        "services/nested/Cargo.toml": '[workspace]\nmembers = ["inner"]\nresolver = "2"\n',
        "services/nested/inner/Cargo.toml": pkg("inner", 'curl = "0.4.46"'),
        "libs/clean/Cargo.toml": pkg("clean", 'serde_json = "1"'),
        "libs/broken/Cargo.toml": '[package\nname = "broken"\n',
        "ignored/skipme/Cargo.toml": pkg("skipme", 'reqwest = "0.11"'),
        "vendor/vendored/Cargo.toml": pkg("vendored", 'reqwest = "0.11"'),
        "target/debug/build/Cargo.toml": pkg("built", 'reqwest = "0.11"'),
    })
    (root / "linked").symlink_to(outside, target_is_directory=True)
    return root


def cli(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_discovery_and_grouping(tmp_path):
    from codemod.discover import find_manifests, group_workspaces

    repo = monorepo(tmp_path / "repo")
    found = {str(p.relative_to(repo)) for p in find_manifests(repo)}
    assert found == {"services/Cargo.toml", "services/api/Cargo.toml", "services/worker/Cargo.toml",
                     "services/tools/cli/Cargo.toml", "services/tools/legacy/Cargo.toml",
                     "services/nested/Cargo.toml", "services/nested/inner/Cargo.toml",
                     "libs/clean/Cargo.toml", "libs/broken/Cargo.toml"}
    groups, broken = group_workspaces(find_manifests(repo))
    roots = {str(g.root.relative_to(repo)): len(g.manifests) for g in groups}
    assert roots == {"services/Cargo.toml": 4, "services/tools/legacy/Cargo.toml": 1,
                     "services/nested/Cargo.toml": 2, "libs/clean/Cargo.toml": 1}
    assert [str(b.manifest.relative_to(repo)) for b in broken] == ["libs/broken/Cargo.toml"]


def test_batch_fix_edits_shared_root_once_and_goes_on_after_errors(universe, tmp_path):
    srv, _ = universe
    repo = monorepo(tmp_path / "repo")
    r = cli("--format", "json", "--strategy", "rustls", "--allow-dirty", str(repo), "--index-url", srv.index_url)
    assert r.returncode == 2, r.stderr                           # the broken manifest is an error...
    entries = {(ROOT / e["manifest"]).resolve().relative_to(repo.resolve()).as_posix(): e for e in json.loads(r.stdout)}
    assert entries["libs/broken/Cargo.toml"]["status"] == "error"
    assert "invalid TOML" in entries["libs/broken/Cargo.toml"]["error"]
    # ...and the rest was still done
    assert entries["services/api/Cargo.toml"]["status"] == "fixed"
    assert entries["services/worker/Cargo.toml"]["status"] == "fixed"
    assert entries["services/Cargo.toml"]["status"] == "fixed"
    assert entries["libs/clean/Cargo.toml"]["status"] == "clean"
    assert entries["services/tools/legacy/Cargo.toml"]["status"] == "unfixable"      # git2 has no rustls
    root_text = (repo / "services/Cargo.toml").read_text()
    assert root_text.count("default-features = false") == 1          # one edit, shared by both members
    # the rustls feature goes to the root with `default-features = false`: every member inheriting
    # the entry keeps a TLS backend
    assert 'reqwest = { version = "0.11", features = ["json", "rustls-tls"], default-features = false }' in root_text
    assert "1 error" in r.stderr and "unfixable" in r.stderr
    assert not (repo / "ignored/skipme/Cargo.toml").read_text().count("default-features")
    assert (tmp_path / "outside/Cargo.toml").read_text() == pkg("outside", 'reqwest = "0.11"')


def test_summary_and_jsonl(universe, tmp_path):
    srv, _ = universe
    repo = monorepo(tmp_path / "repo")
    r = cli("--check", str(repo), "--index-url", srv.index_url)
    assert r.returncode == 2
    # api and worker (through their shared root), the excluded legacy crate (git2) and nested/inner
    assert r.stderr.strip().splitlines()[-1] == "4 manifests would be fixed, 4 clean, 1 error."
    r = cli("--check", "--format", "jsonl", str(repo), "--index-url", srv.index_url)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 9 and {e["status"] for e in lines} == {"would-fix", "clean", "error"}
    r = cli("--check", "-q", str(repo), "--index-url", srv.index_url)
    assert "would be fixed" not in r.stderr


def test_progress_bar_only_on_a_terminal(universe, tmp_path):
    srv, _ = universe
    repo = monorepo(tmp_path / "repo")
    args = [sys.executable, "-m", "codemod", "--check", str(repo), "--index-url", srv.index_url]
    piped = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "workspaces" not in piped.stderr and "\r" not in piped.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(master)
    text = out.decode(errors="replace")
    assert "\r[" in text and "/4 workspaces" in text


def test_several_targets_must_all_be_fixed(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("app", 'reqwest = "0.11"')})
    r = cli("--dry-run", "--format", "json", "--target", "x86_64-unknown-linux-musl", "--target",
            "aarch64-unknown-linux-musl", str(proj), "--index-url", srv.index_url)
    doc = json.loads(r.stdout)
    assert [t["target"] for t in doc["targets"]] == ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
    assert doc["status"] == "would-fix"


def test_scope_musl_keeps_other_targets_untouched(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("app", 'reqwest = { version = "0.11", features = ["json"] }')})
    r = cli("--scope", "musl", "--strategy", "rustls", "--dry-run", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 3 and "only additive remedies" in r.stderr
    r = cli("--scope", "musl", "--allow-dirty", str(proj), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    text = (proj / "Cargo.toml").read_text()
    assert 'reqwest = { version = "0.11", features = ["json"] }\n' in text            # unchanged for every target
    assert "[target.'cfg(target_env = \"musl\")'.dependencies]\nreqwest = { version = \"0.11\", features = [\"native-tls-vendored\"] }" in text
    from codemod.registry import open_index
    from codemod.run import Options, analyze_manifest

    musl = analyze_manifest(proj, Options(target="x86_64-unknown-linux-musl"), open_index(srv.index_url)).analysis
    gnu = analyze_manifest(proj, Options(target="x86_64-unknown-linux-gnu"), open_index(srv.index_url)).analysis
    assert musl.vendored and not gnu.vendored and gnu.culprits


def test_graph_files(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("app", 'reqwest = "0.11"')})
    dot, mmd = tmp_path / "g.dot", tmp_path / "g.mmd"
    assert cli("--explain", "--graph", "dot", str(dot), str(proj), "--index-url", srv.index_url).returncode == 0
    assert cli("--explain", "--graph", "mermaid", str(mmd), str(proj), "--index-url", srv.index_url).returncode == 0
    d = dot.read_text()
    assert d.startswith("digraph culprits {") and 'label="reqwest [default]"' in d and "fillcolor" in d
    assert 'label="openssl-sys"' in d
    m = mmd.read_text()
    assert m.startswith("flowchart LR") and '["reqwest [default]"]' in m and "style n" in m


def test_exclude_members(universe, tmp_path):
    srv, _ = universe
    repo = write_project(tmp_path / "ws", {
        "Cargo.toml": '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n',
        "a/Cargo.toml": pkg("a", 'reqwest = "0.11"'),
        "b/Cargo.toml": pkg("b", 'serde_json = "1"'),
    })
    r = cli("--explain", "--format", "json", "--workspace", "--exclude", "a", "--manifest-path",
            str(repo / "Cargo.toml"), "--index-url", srv.index_url)
    assert json.loads(r.stdout)["culprits"] == []


@pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: --verify asks it")
def test_verify_with_cargo(universe, tmp_path):
    srv, _ = universe
    home = cargo_home(tmp_path, srv)
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("app", 'reqwest = "0.11"')})
    env = dict(os.environ, CARGO_HOME=str(home))
    assert subprocess.run(["cargo", "generate-lockfile"], cwd=proj, env=env, capture_output=True).returncode == 0
    r = cli("--verify", "--allow-dirty", "--format", "json", str(proj), "--index-url", srv.index_url, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verified"] is True and "cargo agrees" in doc["verify_note"]


def test_verify_without_cargo_says_so(universe, tmp_path):
    srv, _ = universe
    proj = write_project(tmp_path / "p", {"Cargo.toml": pkg("app", 'reqwest = "0.11"')})
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    r = cli("--verify", "--allow-dirty", "--format", "json", str(proj), "--index-url", srv.index_url, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verified"] is None and "cargo is not installed" in doc["verify_note"]


def test_remembered_answers_notice_changes_anywhere_in_the_tree(universe, tmp_path):
    srv, _ = universe
    repo = write_project(tmp_path / "repo", {
        "a/Cargo.toml": pkg("a", 'serde_json = "1"'),
        "b/Cargo.toml": pkg("b", 'serde_json = "1"'),
    })
    first = cli("--check", "--format", "json", str(repo), "--index-url", srv.index_url)
    assert first.returncode == 0
    (repo / "b/Cargo.toml").write_text(pkg("b", 'reqwest = "0.11"'))
    second = cli("--check", "--format", "json", str(repo), "--index-url", srv.index_url)
    assert second.returncode == 1
    assert {e["status"] for e in json.loads(second.stdout)} == {"clean", "would-fix"}


def test_batch_entries_list_their_own_remedies_and_the_union_applies(universe, tmp_path):
    """Each batch entry lists the remedies that edit it or a local package on its chains, with the
    hashes of the files those edit, and the candidates of its own culprits: a workspace does not
    repeat its whole plan per member, and `--plan` applies the union of the entries."""
    srv, _ = universe
    files = {"Cargo.toml": '[workspace]\nmembers = ["a", "b", "c", "d"]\nresolver = "2"\n',
             "a/Cargo.toml": pkg("a", 'reqwest = "0.11"'),
             "b/Cargo.toml": pkg("b", 'a = { path = "../a" }'),               # a culprit through a
             "c/Cargo.toml": pkg("c", 'git2 = "0.17"'),
             "d/Cargo.toml": pkg("d", 'serde_json = "1"')}
    repo = write_project(tmp_path / "repo", files)
    r = cli("--dry-run", "--format", "json", "--blocker", "openssl-sys", str(repo), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    entries = {(ROOT / e["manifest"]).resolve().relative_to(repo.resolve()).as_posix(): e for e in json.loads(r.stdout)}

    def edited(entry) -> set[str]:
        return {(ROOT / x["file"]).resolve().parent.name for rem in entry["plan"] for x in rem["edits"]}

    assert edited(entries["a/Cargo.toml"]) == {"a"}
    assert edited(entries["b/Cargo.toml"]) == {"a"}                  # its chain goes through a
    assert edited(entries["c/Cargo.toml"]) == {"c"}
    assert entries["d/Cargo.toml"]["plan"] == [] and "candidates" not in entries["d/Cargo.toml"]
    for name in ("a", "c"):
        cands = entries[f"{name}/Cargo.toml"]["candidates"]
        assert cands and all(c["culprit"].startswith(f"{name} → ") or " → " not in c["culprit"] for c in cands)
        assert set(entries[f"{name}/Cargo.toml"]["files"]) == {x["file"] for rem in entries[f"{name}/Cargo.toml"]["plan"]
                                                                for x in rem["edits"]}
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(r.stdout)
    r = cli("--plan", str(plan_file), "--allow-dirty", str(repo))
    assert r.returncode == 0, r.stderr
    assert "native-tls-vendored" in (repo / "a/Cargo.toml").read_text()
    assert "vendored-openssl" in (repo / "c/Cargo.toml").read_text()
    assert (repo / "b/Cargo.toml").read_text() == files["b/Cargo.toml"]
    r = cli("--check", "--blocker", "openssl-sys", str(repo), "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
