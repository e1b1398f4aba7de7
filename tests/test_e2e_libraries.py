"""The catalog's libraries with Debian's crate sources (`librust-bzip2-dev`, `librust-xz2-dev`,
`librust-libsqlite3-sys-dev`, `librust-libz-sys-dev` → /usr/share/cargo/registry).

What these sources are, measured: Debian keeps the `static` marker of bzip2-sys and lzma-sys but
strips the bundled C sources they would compile (`bzip2-1.0.8/`, `xz-5.2/`), and strips the
static features themselves from libsqlite3-sys (`bundled`) and libz-sys (`static`). Its -dev
packages ship static archives (libbz2.a, liblzma.a, libz.a, libsqlite3.a), so a `+crt-static`
build for the host links the system's archives. The tool reports each library as linked from the
system with the chain cargo shows, and, asked to fix one, exits 3 with the reason: a `static`
that would break the build (shown by building it) or a feature that is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_registry import write_project

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = Path("/usr/share/cargo/registry")
HOST = "x86_64-unknown-linux-gnu"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed: real builds need it"),
    pytest.mark.skipif(not (any(DEBIAN.glob("bzip2-sys-*")) and any(DEBIAN.glob("lzma-sys-*"))),
                       reason="Debian's crate sources are not installed (.ci/run installs librust-bzip2-dev, "
                              "librust-xz2-dev, librust-libsqlite3-sys-dev, librust-libz-sys-dev)"),
]

XZ_MAIN = ('use std::io::Write;\nfn main() {\n    let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);\n'
           '    e.write_all(b"hello").unwrap();\n    println!("{}", e.finish().unwrap().len());\n}\n')


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    h = tmp_path_factory.mktemp("debian-home")
    (h / "config.toml").write_text('[source.crates-io]\nreplace-with = "debian"\n\n[source.debian]\n'
                                   'directory = "/usr/share/cargo/registry"\n\n[net]\noffline = true\n')
    return h


def _env(home: Path, **extra) -> dict:
    env = dict(os.environ, CARGO_HOME=str(home), CARGO_STATIC_FIX_NO_MEMO="1", CARGO_TERM_COLOR="never", **extra)
    env.setdefault("RUSTUP_HOME", str(Path.home() / ".rustup"))
    env["PATH"] = f"{Path.home() / '.cargo' / 'bin'}:{env.get('PATH', '')}"
    return env


def _project(tmp_path: Path, deps: str, main: str | None = None) -> Path:
    files = {"Cargo.toml": f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n'}
    if main:
        files["src/main.rs"] = main
    return write_project(tmp_path / "app", files)


def _tool(proj: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codemod", *args, "--target", HOST, str(proj)], cwd=proj.parent,
                          env=_env(home), capture_output=True, text=True, timeout=600)


def _cargo(proj: Path, home: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["cargo", *args], cwd=proj, env=_env(home, **env), capture_output=True, text=True, timeout=900)


def _version(crate: str) -> str:
    return sorted(DEBIAN.glob(f"{crate}-[0-9]*"))[-1].name[len(crate) + 1:]


@pytest.mark.parametrize("deps,sys_crate,library,chain,stripped", [
    ('bzip2 = "0.4"', "bzip2-sys", "bzip2 (libbz2)", ["app", "bzip2", "bzip2-sys"], "no bzip2-1.0.8/"),
    ('xz2 = "0.1.7"', "lzma-sys", "xz (liblzma)", ["app", "xz2", "lzma-sys"], "no xz-5.2/"),
])
def test_stripped_bundled_sources(deps, sys_crate, library, chain, stripped, home, tmp_path):
    proj = _project(tmp_path, deps)
    doc = json.loads(_tool(proj, home, "--dry-run", "--format", "json").stdout)
    b = next(b for b in doc["blockers"] if b["crate"] == sys_crate)
    assert b["static"] is False and b["system_libraries"] == [library]
    assert [c["chains"][0] for c in b["culprits"]] == [chain]
    assert b["status"] == "unfixable" and stripped in b["reason"]
    # cargo agrees on the chain
    tree = _cargo(proj, home, "tree", "-i", sys_crate, "-e", "features,normal", "--target", HOST)
    assert tree.returncode == 0, tree.stderr
    for step in chain:
        assert f"{step} v" in tree.stdout
    # asked for that library, the run is unfixable: exit 3 and the reason
    r = _tool(proj, home, "--dry-run", "--blocker", sys_crate)
    assert r.returncode == 3, r.stdout + r.stderr
    assert stripped in r.stderr + r.stdout


def test_static_with_stripped_sources_breaks_the_build_and_the_system_archive_links(home, tmp_path):
    """Why the tool refuses lzma-sys `static` here: the build script then compiles xz-5.2/, which
    Debian removed. Without it, +crt-static links Debian's liblzma.a: a static binary, no NEEDED."""
    proj = _project(tmp_path, 'xz2 = "0.1.7"', XZ_MAIN)
    flags = {"RUSTFLAGS": "-C target-feature=+crt-static", "CARGO_TARGET_DIR": str(tmp_path / "target")}
    built = _cargo(proj, home, "build", "--target", HOST, **flags)
    assert built.returncode == 0, built.stderr
    exe = tmp_path / "target" / HOST / "debug" / "app"
    if shutil.which("readelf"):
        dyn = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
        assert "NEEDED" not in dyn
    (proj / "Cargo.toml").write_text((proj / "Cargo.toml").read_text().replace(
        'xz2 = "0.1.7"', 'xz2 = { version = "0.1.7", features = ["static"] }'))
    broken = _cargo(proj, home, "build", "--target", HOST, **flags)
    assert broken.returncode != 0 and "lzma-sys" in broken.stderr


@pytest.mark.parametrize("crate,feature", [("libsqlite3-sys", "bundled"), ("libz-sys", "static")])
def test_stripped_static_features_exit_3(crate, feature, home, tmp_path):
    if not any(DEBIAN.glob(f"{crate}-[0-9]*")):
        pytest.skip(f"{crate} is not installed")
    version = _version(crate)
    proj = _project(tmp_path, f'{crate} = "={version}"')
    r = _tool(proj, home, "--dry-run", "--blocker", crate)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{crate} {version} as served has no `{feature}` feature" in r.stderr + r.stdout
    # the default checks every library and reports it, without changing the exit code
    doc = json.loads(_tool(proj, home, "--dry-run", "--format", "json").stdout)
    b = next(b for b in doc["blockers"] if b["crate"] == crate)
    assert b["status"] == "unfixable" and f"no `{feature}` feature" in b["reason"]
    assert doc["status"] == "clean"
