"""Workspace membership as cargo decides it (`core/workspace.rs`): `exclude` is a path prefix, an
explicit member wins over an exclusion, and a `members` entry without a Cargo.toml is an error.
Each case is also put to `cargo metadata --offline --no-deps` where cargo is installed."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from codemod.errors import ManifestError
from codemod.workspace import load_workspace
from conftest import cargo_available
from fixture_registry import write_project


def pkg(name: str) -> str:
    return f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n'


def root(members: list[str], exclude: list[str] = (), package: str | None = None, deps: str = "") -> str:
    text = pkg(package) + (f"\n[dependencies]\n{deps}\n" if deps else "") if package else ""
    return text + f'\n[workspace]\nresolver = "2"\nmembers = {json.dumps(members)}\nexclude = {json.dumps(list(exclude))}\n'


TREE = {
    "crates/a/Cargo.toml": pkg("a"),
    "crates/skip/Cargo.toml": pkg("skip"),
    "crates/skip/inner/Cargo.toml": pkg("inner"),
    "crates/notes.txt": "not a crate\n",
}

# (id, root manifest, extra files, expected member names or the error cargo gives)
CASES = [
    ("exclude-is-a-prefix", root(["crates/a", "crates/skip/*"], ["crates/skip"]), {}, ["a"]),
    ("exclude-prefix-under-glob", root(["crates/*", "crates/skip/*"], ["crates/skip"]), {}, ["a"]),
    ("explicit-member-wins", root(["crates/a", "crates/skip/inner"], ["crates/skip"]), {}, ["a", "inner"]),
    ("glob-skips-files", root(["crates/*"], []), {}, ["a", "skip"]),
    ("glob-match-without-manifest", root(["crates/*"], []), {"crates/empty/README": "x\n"}, "crates/empty"),
    ("excluded-glob-match-without-manifest", root(["crates/*"], ["crates/empty"]), {"crates/empty/README": "x\n"}, ["a", "skip"]),
    ("missing-member", root(["crates/a", "crates/missing"]), {}, "crates/missing"),
    ("glob-matching-nothing", root(["crates/a", "nomatch/*"]), {}, "nomatch/*"),
    ("path-dependency-in-excluded-dir-is-not-a-member",
     root(["crates/a"], ["crates/skip"], package="top", deps='inner = { path = "crates/skip/inner" }'), {}, ["a", "top"]),
]


def cargo_members(tmp_path) -> list[str] | str:
    r = subprocess.run(["cargo", "metadata", "--offline", "--no-deps", "--format-version", "1"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, CARGO_TERM_COLOR="never"))
    if r.returncode != 0:
        return r.stderr
    doc = json.loads(r.stdout)
    by_id = {p["id"]: p["name"] for p in doc["packages"]}
    return sorted(by_id[i] for i in doc["workspace_members"])


def _write(case, tmp_path):
    _id, manifest, extra, _expected = case
    write_project(tmp_path, {**TREE, **extra, "Cargo.toml": manifest})


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_members_as_cargo_expands_them(case, tmp_path):
    _write(case, tmp_path)
    expected = case[3]
    if isinstance(expected, list):
        ws = load_workspace(tmp_path, workspace=True)
        assert sorted(ws.packages[d].name for d in ws.members) == expected
        return
    with pytest.raises(ManifestError) as e:
        load_workspace(tmp_path, workspace=True)
    message = str(e.value)
    assert "failed to load manifest for workspace member" in message
    assert str(tmp_path.resolve() / expected) in message and "no such file" in message
    # a member cannot be analysed on its own either: cargo refuses the whole workspace
    with pytest.raises(ManifestError, match="failed to load manifest for workspace member"):
        load_workspace(tmp_path / "crates/a")


@pytest.mark.cargo
@pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: it is the oracle for these cases")
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cargo_agrees(case, tmp_path):
    _write(case, tmp_path)
    expected = case[3]
    theirs = cargo_members(tmp_path)
    if isinstance(expected, list):
        assert theirs == expected
    else:
        assert "failed to load manifest for workspace member" in theirs and expected in theirs, theirs
