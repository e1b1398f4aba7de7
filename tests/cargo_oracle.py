"""Real cargo as the judge of a plan: every member built on its own (`-p M`) and all of them
together (`--workspace`) must link no unvendored openssl-sys, and a member that linked a TLS
crate before the plan still links one after it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

TLS = {"native-tls", "rustls", "openssl", "openssl-sys"}


def cargo(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CARGO_HOME=str(home), CARGO_TERM_COLOR="never")
    return subprocess.run(["cargo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def scopes(members: list[str]) -> list[list[str]]:
    return [["--workspace"]] + [["-p", m] for m in members]


def unvendored(cwd: Path, home: Path, target: str, scope: list[str], flags: list[str] = ()) -> list[str]:
    """The openssl-sys versions built for the target without their `vendored` feature, read from
    the feature sets cargo tree prints for each package (`-f "{p} [{f}]"`): under resolver 1 a
    feature can reach a package through an edge that is not drawn for this target (an entry of
    another platform), so the inverted tree's feature edges alone would miss it. Build-dependencies
    and proc macros run on the host and do not count."""
    r = cargo(["tree", "-e", "normal,no-proc-macro", "-f", "{p} [{f}]", "--target", target, "--prefix", "none",
               *scope, *flags], cwd, home)
    assert r.returncode == 0, r.stderr
    bad = set()
    for line in r.stdout.splitlines():
        m = re.match(r"^openssl-sys v(\S+) \[([^\]]*)\]", line)
        if m and "vendored" not in m.group(2).split(","):
            bad.add(m.group(1))
    return sorted(bad)


def tls_crates(cwd: Path, home: Path, target: str, scope: list[str], flags: list[str] = ()) -> set[str]:
    r = cargo(["tree", "-e", "normal,no-proc-macro", "--target", target, "--prefix", "none", "-f", "{p}",
               *scope, *flags], cwd, home)
    assert r.returncode == 0, r.stderr
    return {line.split(" ")[0] for line in r.stdout.splitlines() if line.split(" ")[0] in TLS}


def tls_by_scope(cwd: Path, home: Path, target: str, members: list[str], flags: list[str] = ()) -> dict[str, set[str]]:
    return {" ".join(s): tls_crates(cwd, home, target, s, flags) for s in scopes(members)}


def assert_cargo_accepts(cwd: Path, home: Path, target: str, members: list[str], before: dict[str, set[str]],
                         flags: list[str] = ()) -> None:
    """After a plan is written: no scope builds an unvendored openssl-sys, and TLS is kept."""
    after = tls_by_scope(cwd, home, target, members, flags)
    for s in scopes(members):
        key = " ".join(s)
        assert unvendored(cwd, home, target, s, flags) == [], f"cargo tree {key} still builds an unvendored openssl-sys"
        if before.get(key):
            assert after[key], f"cargo tree {key}: had {sorted(before[key])}, now no TLS crate at all"
