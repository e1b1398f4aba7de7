"""The wheel users install (pip, pipx, pre-commit) carries the rules: built here, installed into a
fresh virtual environment, and run from outside the checkout. Offline: the wheel is built without
build isolation and the environment borrows the already-installed dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(autouse=True)
def no_checkout_on_the_path(monkeypatch):
    """The installed wheel must run from its own files, not the checkout conftest puts on PYTHONPATH."""
    monkeypatch.delenv("PYTHONPATH", raising=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    wheels = base / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build a wheel offline here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    [wheel] = wheels.glob("*.whl")
    env = base / "venv"
    venv.create(env, system_site_packages=True, with_pip=False)
    py = env / "bin" / "python"
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return env


def _run(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(env / "bin" / "cargo-static-fix"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_wheel_runs_from_its_own_files(installed, tmp_path):
    r = subprocess.run([str(installed / "bin" / "python"), "-c", "import codemod, codemod.rules as r; print(codemod.__file__); print(r.RULES_DIR)"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    module, rules_dir = r.stdout.split()
    assert Path(module).is_relative_to(installed), module
    assert Path(rules_dir).is_relative_to(installed) and Path(rules_dir).name == "ruledata"


def test_list_rules_from_the_wheel(installed, tmp_path):
    r = _run(installed, "--list-rules", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rules = json.loads(r.stdout)
    shipped = {p.stem for p in (ROOT / "rules").glob("*.toml")}
    assert rules and {x["crate"] for x in rules} >= {"reqwest", "native-tls", "git2"}
    assert len(shipped) > 10


def test_readme_example_from_the_wheel(installed, tmp_path):
    r = _run(installed, "--explain", str(ROOT / "examples/hello"), "--index-url", str(ROOT / "examples/registry/index"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "NOT vendored" in r.stdout
    assert "[vendored-feature, rule] enable `native-tls-vendored` of reqwest 0.11.18" in r.stdout


def test_missing_rules_are_an_error(tmp_path):
    from codemod.rules import RuleError, load_rules

    with pytest.raises(RuleError, match="no rules found"):
        load_rules(tmp_path)
