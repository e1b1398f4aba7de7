"""Real builds with Debian's crate sources: the report's failing build, fixed by the tool, linked
statically; more real projects; a differential sweep over the installed crates.

Debian ships crate sources as packages (`librust-*-dev` → /usr/share/cargo/registry/), which cargo
reads offline as a `directory` source; the tool reads the same directory through its vendor-source
support (the same $CARGO_HOME/config.toml), so both see identical crates. Debian removes upstream's
`vendored` features (there is no openssl-src), so here the real fixes are rustls switches.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_registry import write_project as write

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = Path("/usr/share/cargo/registry")
HOST = "x86_64-unknown-linux-gnu"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed: real builds need it"),
    pytest.mark.skipif(not any(DEBIAN.glob("reqwest-*")),
                       reason="Debian's crate sources are not installed (.ci/run installs librust-reqwest-dev and friends)"),
]

REPORT_MAIN = 'fn main() {\n    let body = reqwest::blocking::get("https://www.rust-lang.org").map(|r| r.status());\n    println!("{:?}", body.is_ok());\n}\n'


def pkg(name: str, deps: str, extra: str = "") -> str:
    return f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{extra}\n[dependencies]\n{deps}\n'


@pytest.fixture(scope="session")
def debian_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("debian-cargo-home")
    (home / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "debian"\n\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n\n'
        '[net]\noffline = true\n')
    return home


@pytest.fixture(scope="session")
def target_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-target")          # shared by every build of the run


def env_for(home: Path, target_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSSL_")}
    env.update(CARGO_HOME=str(home), CARGO_TARGET_DIR=str(target_dir), OPENSSL_NO_PKG_CONFIG="1",
               CARGO_TERM_COLOR="never", **extra)
    # rustup's toolchains stay where they are although CARGO_HOME moves
    env.setdefault("RUSTUP_HOME", str(Path.home() / ".rustup"))
    env["PATH"] = f"{Path.home() / '.cargo' / 'bin'}:{env.get('PATH', '')}"
    return env


def tool(*args, env, cwd=ROOT):
    env = dict(env, CARGO_STATIC_FIX_NO_MEMO="1")
    return subprocess.run([sys.executable, "-m", "codemod", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def cargo(*args, cwd, env, timeout=900):
    return subprocess.run(["cargo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def blocker_state(cwd: Path, env) -> str:
    """cargo tree's three answers: not in the lock, resolved but not built here, or built."""
    r = cargo("tree", "-i", "openssl-sys", "-e", "features,normal", "--target", HOST, cwd=cwd, env=env)
    if r.returncode == 101 and "did not match any packages" in r.stderr:
        return "absent"
    assert r.returncode == 0, r.stderr
    return "built" if r.stdout.strip() else "not-for-target"


def test_report_program_fails_then_is_fixed_and_links_statically(debian_home, target_dir, tmp_path):
    env = env_for(debian_home, target_dir)
    proj = write(tmp_path / "hello", {"Cargo.toml": pkg("hello", 'reqwest = { version = "0.11", features = ["json", "blocking"] }'),
                                      "src/main.rs": REPORT_MAIN})
    # 1. as on a bare machine: openssl-sys's build script cannot find OpenSSL
    r = cargo("build", cwd=proj, env=env)
    assert r.returncode != 0
    assert "Could not find directory of OpenSSL installation" in r.stderr
    assert blocker_state(proj, env) == "built"

    # 2. the tool proposes a rustls switch (no vendored feature exists in this data), applies it
    r = tool("--dry-run", str(proj), env=env)
    assert r.returncode == 0, r.stderr
    assert "+reqwest = { version = \"0.11\", features = [\"json\", \"blocking\", \"rustls-tls\"], default-features = false }" in r.stdout
    r = tool("--allow-dirty", str(proj), env=env)
    assert r.returncode == 0, r.stderr
    r = cargo("build", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr                      # OpenSSL still hidden, and it builds
    assert blocker_state(proj, env) == "absent"

    # 3. the same program, fully static
    static_env = dict(env, RUSTFLAGS="-C target-feature=+crt-static", CARGO_TARGET_DIR=str(target_dir / "static"))
    r = cargo("build", "--target", HOST, cwd=proj, env=static_env)
    assert r.returncode == 0, r.stderr
    binary = target_dir / "static" / HOST / "debug" / "hello"
    kind = subprocess.run(["file", str(binary)], capture_output=True, text=True).stdout
    assert "statically linked" in kind or "static-pie linked" in kind, kind
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True).stdout
    assert "NEEDED" not in dynamic


def test_workspace_fix_lands_in_workspace_dependencies(debian_home, target_dir, tmp_path):
    env = env_for(debian_home, target_dir)
    ws = write(tmp_path / "ws", {
        "Cargo.toml": '[workspace]\nmembers = ["app", "lib"]\nresolver = "2"\n\n[workspace.dependencies]\n'
                      'reqwest = { version = "0.11", features = ["json"] }\n',
        "app/Cargo.toml": pkg("app", 'reqwest = { workspace = true, features = ["blocking"] }\nlib = { path = "../lib" }'),
        "app/src/main.rs": REPORT_MAIN,
        "lib/Cargo.toml": pkg("lib", "reqwest = { workspace = true }"),
        "lib/src/lib.rs": "pub fn client() -> reqwest::Client { reqwest::Client::new() }\n",
    })
    assert cargo("build", cwd=ws, env=env).returncode != 0
    r = tool("--allow-dirty", str(ws), env=env)
    assert r.returncode == 0, r.stderr
    root = (ws / "Cargo.toml").read_text()
    # default features off at the root, and the rustls feature with them: both members keep TLS
    assert 'reqwest = { version = "0.11", features = ["json", "rustls-tls"], default-features = false }' in root
    r = cargo("build", cwd=ws, env=env)
    assert r.returncode == 0, r.stderr
    assert blocker_state(ws, env) == "absent"


@pytest.mark.parametrize("deps,crate", [('git2 = "0.16"', "git2"), ('isahc = "1.7"', "isahc"), ('curl = "0.4"', "curl")])
def test_no_remedy_in_this_data_is_said_plainly(debian_home, target_dir, tmp_path, deps, crate):
    env = env_for(debian_home, target_dir)
    proj = write(tmp_path / crate, {"Cargo.toml": pkg("app", deps), "src/lib.rs": ""})
    before = (proj / "Cargo.toml").read_text()
    r = tool("--allow-dirty", str(proj), env=env)
    # Debian's openssl-sys has no `vendored` (its openssl's `vendored` is empty) and these crates
    # have no rustls backend here: nothing can take the system OpenSSL out
    assert r.returncode == 3, r.stdout + r.stderr
    assert "cannot fix: no remedy removes the unvendored OpenSSL" in r.stderr
    assert (proj / "Cargo.toml").read_text() == before


def test_differential_sweep_over_installed_crates(debian_home, target_dir, tmp_path):
    """Every installed crate, as the only dependency of a generated project: does it put
    openssl-sys into the build with its default features, through which direct dependency?"""
    from codemod.registry.config import open_registry
    from codemod.run import Options, analyze_manifest

    env = env_for(debian_home, target_dir)
    os.environ["CARGO_HOME"] = str(debian_home)          # the tool reads the same config
    crates = sorted({(m.group(1), m.group(2)) for d in DEBIAN.iterdir()
                     if (m := re.match(r"^(.+)-(\d+\.\d+\.\d+.*)$", d.name)) and (d / "Cargo.toml").is_file()})
    agree = disagree = skipped = reaching = 0
    mismatches = []
    index = None
    for name, version in crates:
        proj = write(tmp_path / f"sweep-{name}", {"Cargo.toml": pkg("sweep", f'{name} = "={version}"'), "src/lib.rs": ""})
        if cargo("generate-lockfile", cwd=proj, env=env, timeout=120).returncode != 0:
            skipped += 1                                    # Debian's set cannot resolve it alone
            continue
        r = cargo("tree", "-i", "openssl-sys", "-e", "features,normal,no-proc-macro", "--target",
                  "x86_64-unknown-linux-musl", "--prefix", "depth", cwd=proj, env=env, timeout=120)
        cargo_says = r.returncode == 0 and bool(r.stdout.strip())
        if index is None:
            index = open_registry(proj)
        try:
            a = analyze_manifest(proj, Options(target="x86_64-unknown-linux-musl"), index).analysis
        except Exception as e:                              # noqa: BLE001 — counted, not hidden
            disagree += 1
            mismatches.append(f"{name}: tool error {e}")
            continue
        tool_says = bool(a.culprits)
        reaching += cargo_says
        if tool_says == cargo_says and (not tool_says or {c.crate for c in a.culprits} == {name}):
            agree += 1
        else:
            disagree += 1
            mismatches.append(f"{name}: cargo {cargo_says}, tool {tool_says}")
    total = agree + disagree
    print(f"\ndifferential sweep: {total} Debian crates compared ({reaching} reach openssl-sys), "
          f"{agree} agree, {disagree} disagree, {skipped} not resolvable alone; agreement {agree / max(total, 1):.1%}")
    assert total > 100 and reaching > 5
    assert not mismatches, mismatches
