"""The command line as users call it: --explain, --format json, and one-line errors with exit 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REG = ["--index-url", "examples/registry/index"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_explain_names_reqwest_and_the_default_tls_chain(snapshot):
    r = run("--explain", "examples/hello", *REG)
    assert r.returncode == 0, r.stderr
    assert "hello → reqwest [default] → reqwest [default-tls] → native-tls → openssl-sys  (+7 more)" in r.stdout
    assert "rustup target add x86_64-unknown-linux-musl" in r.stdout and "musl-tools" in r.stdout
    assert "NOT vendored" in r.stdout
    assert r.stdout == snapshot


def test_json_is_one_stable_object(snapshot):
    r = run("--explain", "--format", "json", "examples/hello", *REG)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # the bundled index has no crate archives: whether a crate is a proc macro is guessed, and said so
    # the default checks every library of the catalog: its entries come after today's fields
    assert list(doc) == ["manifest", "target", "blocker", "vendored", "culprits", "host_only", "unanalysable",
                         "assumed_proc_macros", "manifest_sha256", "files", "status", "plan", "candidates", "schema_version", "blockers"]
    assert doc.pop("schema_version") == 2
    assert all(b["static"] and not b["built"] for b in doc.pop("blockers"))
    # --blocker openssl-sys: today's object, byte for byte
    only = run("--explain", "--format", "json", "--blocker", "openssl-sys", "examples/hello", *REG)
    assert json.loads(only.stdout) == doc
    assert {"crate": "reqwest 0.11.18", "reason": "no .crate in cargo's cache or in examples/registry"} in doc["assumed_proc_macros"]
    assert doc["files"] == {"examples/hello/Cargo.toml": doc["manifest_sha256"]}
    assert doc["status"] == "would-fix" and doc["plan"][0]["remedy"] == "vendored-feature"
    assert doc["manifest"] == "examples/hello/Cargo.toml" and doc["target"] == "x86_64-unknown-linux-musl"
    assert doc["vendored"] is False
    [c] = doc["culprits"]
    assert (c["package"], c["dependency"], c["crate"], c["kind"]) == ("hello", "reqwest", "reqwest", "normal")
    assert ["hello", "reqwest [default]", "reqwest [default-tls]", "hyper-tls", "native-tls", "openssl", "openssl-sys"] in c["chains"]
    assert doc == snapshot


def test_cargo_subcommand_form():
    r = run("static-fix", "--explain", "--format", "json", "examples/hello", *REG)
    assert r.returncode == 0 and json.loads(r.stdout)["culprits"]


def test_clean_result_exits_0(universe):
    srv, _ = universe
    r = run("--explain", "--target", "x86_64-pc-windows-msvc", "examples/hello", "--index-url", srv.index_url)
    assert r.returncode == 0, r.stderr
    assert "examples/hello/Cargo.toml (target x86_64-pc-windows-msvc): nothing links openssl-sys." in r.stdout
    r = run("--explain", "--blocker", "openssl-src", "examples/hello", *REG)
    assert r.returncode == 0 and "nothing links openssl-src" in r.stdout


def test_git_dependency_listed_as_unanalysable(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "g"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
                                         f'mylib = {{ git = "{(tmp_path / "no-such-repo").as_uri()}" }}\n')
    r = run("--explain", "--format", "json", str(tmp_path), *REG)
    assert r.returncode == 0, r.stderr
    [u] = json.loads(r.stdout)["unanalysable"]
    assert u["package"] == "g" and u["dependency"] == "mylib" and "git dependency" in u["reason"]
    text = run("--explain", str(tmp_path), *REG).stdout
    assert "Not analysed" in text and "mylib" in text


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_error_invalid_toml(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "x"\nversion = "0.1.0"\n[dependencies\n')
    line = one_line_error(run("--explain", str(tmp_path), *REG))
    assert str(tmp_path / "Cargo.toml") in line and "line 4, column" in line


def test_error_missing_file(tmp_path):
    line = one_line_error(run("--explain", str(tmp_path / "absent"), *REG))
    assert f"manifest path `{tmp_path / 'absent'}` does not exist" in line


def test_error_unknown_crate(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "x"\nversion = "0.1.0"\n\n[dependencies]\nno-such-crate-here = "1"\n')
    line = one_line_error(run("--explain", str(tmp_path), *REG))
    assert "no crate named `no-such-crate-here`" in line and "required by x → no-such-crate-here" in line


def test_error_unreachable_index():
    line = one_line_error(run("--explain", "examples/hello", "--index-url", "http://127.0.0.1:9/"))
    assert "http://127.0.0.1:9/" in line and "cannot reach the index" in line


def test_error_unknown_target():
    line = one_line_error(run("--explain", "examples/hello", "--target", "x86_64-unknown-linux-musle", *REG))
    assert "unknown target `x86_64-unknown-linux-musle`; did you mean `x86_64-unknown-linux-musl`" in line


@pytest.mark.skipif(shutil.which("cargo") is None or shutil.which("cargo-static-fix") is None,
                    reason="needs cargo and the installed cargo-static-fix script on PATH")
def test_runs_as_a_cargo_subcommand():
    r = subprocess.run(["cargo", "static-fix", "--explain", "examples/hello", *REG], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "hello → reqwest [default] → reqwest [default-tls]" in r.stdout
