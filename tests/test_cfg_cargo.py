"""cfg(...) as cargo selects dependencies, with rustc and cargo themselves as the oracle.

- rustc: our facts for (target, rustflags) against cargo's probe, ``rustc - --print=cfg
  --crate-type …`` with every crate type cargo names (proc-macro among them);
- cargo: one path dependency per cfg expression, and ``cargo tree --target T --offline`` under
  RUSTFLAGS, CARGO_ENCODED_RUSTFLAGS and ``.cargo/config.toml`` rustflags, against the units our
  resolver builds for the same project (`build_input` → `resolve`: host, rustflags, cfg).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codemod.registry import open_index
from codemod.resolve import HOST_SIDE
from codemod.run import Options, build_input, resolve_with_fetch
from codemod.targets import host_triple, load_target
from codemod.workspace import load_workspace
from conftest import SNAPSHOT_REGISTRY, cargo_available
from fixture_registry import write_project

MUSL, GNU = "x86_64-unknown-linux-musl", "x86_64-unknown-linux-gnu"
CRATE_TYPES = ["bin", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"]
FLAG_ENV = ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS")


# -- rustc's probe -------------------------------------------------------------------------------


def rustc_probe(target: str, flags: list[str]) -> tuple[set[str], set[tuple[str, str]]]:
    cmd = ["rustc", "-", "--crate-name", "___", "--print=cfg", *flags, "--target", target]
    for t in CRATE_TYPES:
        cmd += ["--crate-type", t]
    out = subprocess.run(cmd, input="", capture_output=True, text=True, check=True).stdout
    names, pairs = set(), set()
    for line in out.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            pairs.add((k, v.strip('"')))
        elif line and line != "proc_macro":          # cargo drops proc_macro from what it keeps
            names.add(line)
    return names, pairs


PROBES = [
    (MUSL, []), (GNU, []), ("aarch64-unknown-linux-musl", []), ("x86_64-pc-windows-msvc", []),
    ("x86_64-apple-darwin", []), ("wasm32-unknown-unknown", []),
    (MUSL, ["-C", "target-feature=+crt-static"]), (MUSL, ["-Ctarget-feature=-crt-static"]),
    (MUSL, ["-C", "target-feature=+crt-static,-crt-static"]),
    (MUSL, ["-Ctarget-feature=-crt-static", "-Ctarget-feature=+crt-static"]),
    (GNU, ["-C", "target-feature=+crt-static"]), ("x86_64-pc-windows-msvc", ["-C", "target-feature=+crt-static"]),
    ("x86_64-apple-darwin", ["-C", "target-feature=+crt-static"]), ("x86_64-pc-windows-gnu", ["-C", "target-feature=+crt-static"]),
    (MUSL, ["-C", "target-feature=+aes"]), (MUSL, ["-C", "target-feature=-sse2"]),
    (MUSL, ["--codegen", "target-feature=+aes", "--codegen=target-feature=-aes"]),
    (MUSL, ["-C", "target-feature=aes"]),
    (MUSL, ["-O"]), (MUSL, ["-C", "opt-level=0"]), (MUSL, ["-Copt-level=s"]), (MUSL, ["-C", "opt-level=3", "-C", "debug-assertions"]),
    (MUSL, ["-C", "debug-assertions=off"]), (MUSL, ["-C", "debug_assertions=no"]),
    (MUSL, ["-C", "panic=abort"]), ("wasm32-unknown-unknown", ["-C", "panic=abort"]),
    (MUSL, ["--cfg", "foo", "--cfg=bar", "--cfg", 'k="v"', "--cfg", 'feature="x"', "--cfg", "r#raw"]),
    (MUSL, ["-L", "native=/nonexistent", "-A", "warnings", "--cap-lints", "warn"]),
]


@pytest.mark.skipif(shutil.which("rustc") is None, reason="rustc is not installed: these tests compare with its --print cfg")
@pytest.mark.parametrize("target,flags", PROBES, ids=[f"{t}:{' '.join(f) or 'none'}" for t, f in PROBES])
def test_facts_match_cargos_rustc_probe(target, flags):
    names, pairs = rustc_probe(target, flags)
    ours = load_target(target, tuple(flags))
    assert (set(ours.names), set(ours.pairs)) == (names, pairs)


# -- cargo's dependency selection ----------------------------------------------------------------

# one path dependency per expression, under [target.'<expr>'.dependencies]
EXPRS = {
    "crt": 'cfg(target_feature = "crt-static")',
    "nocrt": 'cfg(not(target_feature = "crt-static"))',
    "dbg": "cfg(debug_assertions)",
    "nodbg": "cfg(not(debug_assertions))",
    "tru": "cfg(true)",
    "fals": "cfg(false)",
    "rawtrue": "cfg(r#true)",
    "anyfalsetrue": "cfg(any(false, true))",
    "truepair": 'cfg(true = "x")',
    "foo": "cfg(foo)",
    "rawfoo": "cfg(r#foo)",
    "foobar": 'cfg(foo = "bar")',
    "aes": 'cfg(target_feature = "aes")',
    "abort": 'cfg(panic = "abort")',
    "trailing": "cfg(all(unix,))",
    "spaces": "cfg(  all( unix ,  not(windows) ) )",
    "test": "cfg(test)",
    "procmacro": "cfg(proc_macro)",
    "musl": 'cfg(target_env = "musl")',
    "triple": MUSL,
}
# and some under [target.'<expr>'.build-dependencies]: those are matched against the host
HOST_EXPRS = {
    "hcrt": 'cfg(target_feature = "crt-static")',
    "hfoo": "cfg(foo)",
    "hdbg": "cfg(debug_assertions)",
    "hgnu": 'cfg(target_env = "gnu")',
}


def write_app(root: Path) -> Path:
    files = {}
    deps = ""
    for name, expr in {**EXPRS, **HOST_EXPRS}.items():
        kind = "build-dependencies" if name in HOST_EXPRS else "dependencies"
        deps += f"[target.'{expr}'.{kind}]\n{name} = {{ path = \"deps/{name}\" }}\n"
        files[f"deps/{name}/Cargo.toml"] = f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n'
    files["Cargo.toml"] = f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n{deps}'
    write_project(root, files)
    (root / "build.rs").write_text("fn main() {}\n")
    return root


@dataclass
class Case:
    id: str
    env: dict[str, str] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)    # path relative to the test's tmp dir → text
    target: str = MUSL
    expect: set[str] | None = None                           # a few selections each case must show


CRT = '["-C", "target-feature=+crt-static"]'
CASES = [
    Case("defaults", expect={"nocrt", "dbg", "tru", "rawtrue", "hdbg", "hgnu"}),
    Case("rustflags-crt-static", {"RUSTFLAGS": "-C target-feature=+crt-static"}, expect={"crt"}),
    Case("rustflags-minus-crt-static", {"RUSTFLAGS": "-Ctarget-feature=-crt-static"}, expect={"nocrt"}),
    Case("rustflags-cfgs", {"RUSTFLAGS": '--cfg foo --cfg foo="bar"  -C target-feature=+aes'}, expect={"foo", "rawfoo", "foobar", "aes"}),
    Case("rustflags-opt-level", {"RUSTFLAGS": "-C opt-level=3 -C panic=abort"}, expect={"nodbg", "abort"}),
    Case("encoded-wins", {"CARGO_ENCODED_RUSTFLAGS": "--cfg\x1ffoo", "RUSTFLAGS": "-C target-feature=+crt-static"},
         expect={"foo", "nocrt"}),
    Case("encoded-empty", {"CARGO_ENCODED_RUSTFLAGS": ""}, {"proj/.cargo/config.toml": f"[build]\nrustflags = {CRT}\n"},
         expect={"nocrt"}),
    Case("build-rustflags", configs={"proj/.cargo/config.toml": f"[build]\nrustflags = {CRT}\n"}, expect={"crt"}),
    Case("build-rustflags-string", configs={"proj/.cargo/config.toml": '[build]\nrustflags = "--cfg foo  -C target-feature=+crt-static"\n'},
         expect={"crt", "foo"}),
    Case("empty-rustflags-env-wins", {"RUSTFLAGS": ""}, {"proj/.cargo/config.toml": f"[build]\nrustflags = {CRT}\n"},
         expect={"nocrt"}),
    Case("target-triple-over-build",
         configs={"proj/.cargo/config.toml": f'[build]\nrustflags = {CRT}\n[target.{MUSL}]\nrustflags = ["--cfg", "foo"]\n'},
         expect={"foo", "nocrt"}),
    Case("target-cfgs-joined",
         configs={"proj/.cargo/config.toml": f"[target.'cfg(target_env = \"musl\")']\nrustflags = {CRT}\n"
                                             "[target.'cfg(unix)']\nrustflags = [\"--cfg\", \"foo\"]\n"
                                             "[target.'cfg(windows)']\nrustflags = [\"--cfg\", 'foo=\"bar\"']\n"},
         expect={"crt", "foo"}),
    Case("cfg-table-needs-second-probe",
         configs={"proj/.cargo/config.toml": f'[target.{MUSL}]\nrustflags = ["--cfg", "foo"]\n'
                                             f"[target.'cfg(foo)']\nrustflags = {CRT}\n"},
         expect={"foo", "crt"}),
    Case("cfg-table-replaces-build-on-second-probe",
         configs={"proj/.cargo/config.toml": f"[build]\nrustflags = {CRT}\n[target.'cfg(unix)']\nrustflags = [\"--cfg\", \"foo\"]\n"},
         expect={"foo", "nocrt"}),
    Case("config-hierarchy-joins-arrays", configs={
        "cargo-home/config.toml": '[build]\nrustflags = ["--cfg", "foo"]\n',
        ".cargo/config.toml": '[build]\nrustflags = ["-C", "panic=abort"]\n',
        "proj/.cargo/config.toml": f"[build]\nrustflags = {CRT}\n"}, expect={"foo", "crt", "abort"}),
    Case("config-hierarchy-nearer-string-wins", configs={
        ".cargo/config.toml": '[build]\nrustflags = "--cfg foo"\n',
        "proj/.cargo/config.toml": '[build]\nrustflags = "-C target-feature=+crt-static"\n'}, expect={"crt"}),
    Case("cargo-build-rustflags-env-extends-array", {"CARGO_BUILD_RUSTFLAGS": "--cfg foo"},
         {"proj/.cargo/config.toml": f"[build]\nrustflags = {CRT}\n"}, expect={"crt", "foo"}),
    Case("cargo-target-triple-rustflags-env", {f"CARGO_TARGET_{MUSL.upper().replace('-', '_')}_RUSTFLAGS": "--cfg foo"},
         expect={"foo"}),
    Case("gnu-crt-static-not-on-host", {"RUSTFLAGS": "-C target-feature=+crt-static --cfg foo"}, target=GNU,
         expect={"crt", "foo", "hgnu"}),
]


def _is_flag_env(key: str) -> bool:
    return key in FLAG_ENV or (key.startswith("CARGO_TARGET_") and key.endswith("_RUSTFLAGS"))


@pytest.fixture
def app(tmp_path, monkeypatch):
    for key in list(os.environ):
        if _is_flag_env(key):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "cargo-home"))
    return write_app(tmp_path / "proj")


def cargo_selection(proj: Path, target: str) -> set[str]:
    env = dict(os.environ, CARGO_TERM_COLOR="never")
    r = subprocess.run(["cargo", "tree", "--target", target, "--offline", "-e", "normal,build", "--prefix", "none",
                        "--format", "{p}"], cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {line.split()[0] for line in r.stdout.splitlines() if line.strip()} - {"app"}


def our_selection(proj: Path, target: str) -> set[str]:
    ws = load_workspace(proj)
    res = resolve_with_fetch(build_input(ws, Options(target=target)), open_index(str(SNAPSHOT_REGISTRY)))
    return {pid.name for pid, _side in res.units} - {"app"}


@pytest.mark.cargo
@pytest.mark.skipif(not cargo_available(), reason="cargo is not installed: these tests compare with its dependency selection")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_selection_agrees_with_cargo(case: Case, app, tmp_path, monkeypatch):
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    for rel, text in case.configs.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    theirs = cargo_selection(app, case.target)
    assert our_selection(app, case.target) == theirs
    assert case.expect <= theirs, (case.expect - theirs)
    assert not {"fals", "truepair", "test", "procmacro", "hcrt", "hfoo"} & theirs


def test_host_side_is_resolved_on_the_host(app, monkeypatch):
    """The build-dependency tables are matched against the host, which gets no RUSTFLAGS."""
    monkeypatch.setenv("RUSTFLAGS", "--cfg foo -C target-feature=+crt-static")
    ws = load_workspace(app)
    res = resolve_with_fetch(build_input(ws, Options(target=MUSL)), open_index(str(SNAPSHOT_REGISTRY)))
    host = load_target(host_triple())
    assert {pid.name for pid, side in res.units if side == HOST_SIDE} == {n for n, e in HOST_EXPRS.items() if host.matches(e)}
    assert {"hdbg"} <= {pid.name for pid, side in res.units if side == HOST_SIDE}
    assert {"crt", "foo"} <= {pid.name for pid, side in res.units if side != HOST_SIDE}


def test_rustflags_decide_the_answer_and_its_memo(tmp_path, monkeypatch):
    """musl selects crt-static tables only with +crt-static in the rustflags; a remembered answer
    made without them is not reused with them."""
    import sys

    from conftest import ROOT

    for key in list(os.environ):
        if _is_flag_env(key):
            monkeypatch.delenv(key)
    proj = write_project(tmp_path / "p", {"Cargo.toml": '[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                          "[target.'cfg(target_feature = \"crt-static\")'.dependencies]\n"
                                          'openssl-sys = "0.9"\n'})

    def check(**env):
        r = subprocess.run([sys.executable, "-m", "codemod", "--check", str(proj), "--index-url", str(SNAPSHOT_REGISTRY)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, **env))
        assert r.returncode in (0, 1), r.stderr
        return r.returncode

    assert check() == 0
    assert check(RUSTFLAGS="-C target-feature=+crt-static") == 1
    assert check(CARGO_ENCODED_RUSTFLAGS="-Ctarget-feature=+crt-static") == 1
    assert check() == 0
    (proj / ".cargo").mkdir()
    (proj / ".cargo" / "config.toml").write_text('[build]\nrustflags = ["-C", "target-feature=+crt-static"]\n')
    assert check() == 1
