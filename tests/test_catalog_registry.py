"""The catalog end to end on a fixture registry: crates shaped like their crates.io index lines
(features and dependency structure of the versions recorded in tests/fixtures/rule-features.json),
the report's `blockers` and their plans, checked against `cargo tree` where cargo is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_registry import C, D, Server, cargo_home, write_project, write_registry

GNU = "x86_64-unknown-linux-gnu"      # the host: pkg-config probes run, as in a native static build
MUSL = "x86_64-unknown-linux-musl"
NOT_WINDOWS = 'cfg(not(target_os = "windows"))'
MSVC = 'cfg(target_env = "msvc")'


def crates() -> list[C]:
    return [
        C("cc", "1.0.83"), C("pkg-config", "0.3.27"), C("vcpkg", "0.2.15"), C("cmake", "0.1.50"),
        C("libc", "0.2.147", features={"default": ["std"], "std": []}),
        C("openssl-src", "300.1.3+3.1.2", [D("cc", "^1.0.79")]),
        C("openssl-sys", "0.9.91",
          [D("libc", "^0.2"), D("cc", "^1.0.61", kind="build"), D("pkg-config", "^0.3.9", kind="build"),
           D("openssl-src", "^300", optional=True, kind="build")],
          {"vendored": ["openssl-src"], "unstable_boringssl": []}, links="openssl"),
        # SQLite: libsqlite3-sys 0.28 shaped like the recorded 0.29.0 line, rusqlite 0.31.0
        C("libsqlite3-sys", "0.28.0",
          [D("cc", "^1.0", optional=True, kind="build"), D("pkg-config", "^0.3.19", optional=True, kind="build"),
           D("vcpkg", "^0.2", optional=True, kind="build"), D("openssl-sys", "^0.9", optional=True)],
          {"bundled": ["cc", "bundled_bindings"], "bundled-sqlcipher": ["bundled"],
           "bundled-sqlcipher-vendored-openssl": ["bundled-sqlcipher", "openssl-sys/vendored"],
           "bundled-windows": ["cc", "bundled_bindings"], "bundled_bindings": [],
           "default": ["min_sqlite_version_3_14_0"], "min_sqlite_version_3_14_0": ["pkg-config", "vcpkg"],
           "sqlcipher": [], "unlock_notify": []}, links="sqlite3"),
        C("libsqlite3-sys", "0.22.2",
          [D("cc", "^1.0", optional=True, kind="build"), D("pkg-config", "^0.3", optional=True, kind="build"),
           D("vcpkg", "^0.2", optional=True, kind="build", target=MSVC)],
          {"bundled": ["cc", "bundled_bindings"], "bundled_bindings": [], "default": ["min_sqlite_version_3_6_8"],
           "min_sqlite_version_3_6_8": ["pkg-config", "vcpkg"], "sqlcipher": []}, links="sqlite3"),
        C("rusqlite", "0.31.0", [D("libsqlite3-sys", "^0.28.0")],
          {"bundled": ["libsqlite3-sys/bundled", "modern_sqlite"], "modern_sqlite": ["libsqlite3-sys/bundled_bindings"],
           "bundled-sqlcipher": ["libsqlite3-sys/bundled-sqlcipher", "bundled"],
           "bundled-sqlcipher-vendored-openssl": ["libsqlite3-sys/bundled-sqlcipher-vendored-openssl", "bundled-sqlcipher"],
           "sqlcipher": ["libsqlite3-sys/sqlcipher"], "backup": []}),
        # libpq: pq-sys 0.6.0 and its pq-src 0.2.0 (openssl-sys without `vendored`)
        C("pq-src", "0.2.0", [D("cc", "^1.0.83", kind="build"), D("openssl-sys", "^0.9.91", target=NOT_WINDOWS)],
          {"default": [], "with-asan": []}, links="pq_sys_src"),
        C("pq-sys", "0.6.0",
          [D("pq-src", "^0.2", optional=True), D("pkg-config", "^0.3.0", optional=True, kind="build"),
           D("vcpkg", "^0.2.6", kind="build", target=MSVC)],
          {"bundled": ["pq-src"], "default": []}, links="pq"),
        # zlib through flate2's `zlib` feature (libz-sys without default features, as flate2 asks)
        C("libz-sys", "1.1.16",
          [D("cc", "^1.0.18", kind="build"), D("cmake", "^0.1.44", optional=True, kind="build"),
           D("libc", "^0.2.43", optional=True), D("pkg-config", "^0.3.9", kind="build"),
           D("vcpkg", "^0.2", kind="build")],
          {"asm": [], "default": ["libc", "stock-zlib"], "static": [], "stock-zlib": [], "zlib-ng": ["libc", "cmake"]},
          links="z"),
        C("flate2", "1.0.28", [D("libz-sys", "^1.1.8", optional=True, default_features=False)],
          {"default": ["rust_backend"], "rust_backend": [], "any_zlib": [], "zlib": ["any_zlib", "libz-sys"]}),
        # bzip2 and xz
        C("bzip2-sys", "0.1.11+1.0.8", [D("cc", "^1.0", kind="build"), D("libc", "^0.2"),
                                        D("pkg-config", "^0.3.9", kind="build")], {"static": []}, links="bzip2"),
        C("bzip2", "0.4.4", [D("bzip2-sys", "^0.1.11"), D("libc", "^0.2")], {"static": ["bzip2-sys/static"]}),
        C("lzma-sys", "0.1.20", [D("cc", "^1.0.34", kind="build"), D("libc", "^0.2.51"),
                                 D("pkg-config", "^0.3.14", kind="build")], {"static": []}, links="lzma"),
        C("xz2", "0.1.7", [D("lzma-sys", "^0.1.18")], {"static": ["lzma-sys/static"]}),
        # libcurl: curl-sys 0.4.81 and curl 0.4.46, as in the rules' fixture universe
        C("curl-sys", "0.4.81+curl-8.14.1",
          [D("libz-sys", "^1.0.18", default_features=False), D("openssl-sys", "^0.9.64", optional=True)],
          {"default": ["ssl"], "http2": [], "ssl": ["openssl-sys"], "static-curl": [], "static-ssl": ["openssl-sys/vendored"]},
          links="curl"),
        C("curl", "0.4.46", [D("curl-sys", "^0.4.72", default_features=False), D("openssl-sys", "^0.9.64", optional=True)],
          {"default": ["ssl"], "ssl": ["openssl-sys", "curl-sys/ssl"], "static-curl": ["curl-sys/static-curl"],
           "static-ssl": ["curl-sys/static-ssl"]}),
        # librdkafka: rdkafka-sys 4.7.0 (dynamic-linking links the system's), and FreeType (no feature)
        C("rdkafka-sys", "4.7.0+2.3.0", [D("libc", "^0.2.65"), D("libz-sys", "^1.0.0", optional=True),
                                         D("openssl-sys", "^0.9.48", optional=True)],
          {"default": ["libz"], "libz": ["libz-sys"], "libz-static": ["libz", "libz-sys/static"], "ssl": ["openssl-sys"],
           "ssl-vendored": ["ssl", "openssl-sys/vendored"], "dynamic-linking": [], "cmake-build": []}, links="rdkafka"),
        C("freetype-sys", "0.20.1", [D("cc", "^1", kind="build"), D("libc", "^0.2.42"), D("pkg-config", "^0.3.11", kind="build")],
          links="freetype"),
        # Fontconfig: yeslogic-fontconfig-sys 5.0.0 (`dlopen`), servo-fontconfig-sys 5.1.0 (`force_system_lib`)
        # with the expat-sys and freetype-sys its index line requires
        C("cstr", "0.2.11"), C("dlib", "0.5.2"), C("once_cell", "1.19.0"),
        C("yeslogic-fontconfig-sys", "5.0.0",
          [D("cstr", "^0.2.11"), D("dlib", "^0.5.0"), D("once_cell", "^1.9.0"), D("pkg-config", "^0.3", kind="build")],
          {"dlopen": []}, links="fontconfig"),
        C("expat-sys", "2.1.6", [D("cmake", "^0.1", kind="build"), D("pkg-config", "^0.3", kind="build")], links="expat"),
        C("freetype-sys", "0.13.1", [D("cmake", "^0.1.42", kind="build"), D("libc", "^0.2.42"),
                                     D("pkg-config", "^0.3.11", kind="build")], links="freetype"),
        C("servo-fontconfig-sys", "5.1.0",
          [D("expat-sys", "^2.1.0"), D("freetype-sys", "^0.13.0"), D("pkg-config", "^0.3", kind="build")],
          {"default": [], "force_system_lib": []}, links="fontconfig"),
        # the MySQL client: mysqlclient-sys 0.3.0 `bundled` → mysqlclient-src 0.1.0 → openssl-sys `vendored`
        C("mysqlclient-src", "0.1.0", [D("cmake", "^0.1", kind="build"), D("openssl-sys", "^0.9.91", features=["vendored"])],
          {"default": [], "with-asan": []}, links="mysqlclient_sys_src"),
        C("mysqlclient-sys", "0.3.0", [D("mysqlclient-src", "^0.1.0", optional=True), D("pkg-config", "^0.3.9", kind="build")],
          {"default": [], "bundled": ["dep:mysqlclient-src"]}, links="mysqlclient"),
        # libusb: libusb1-sys 0.7.0
        C("libusb1-sys", "0.7.0", [D("cc", "^1.0", kind="build"), D("libc", "^0.2"), D("pkg-config", "^0.3", kind="build")],
          {"vendored": []}, links="usb-1.0"),
        # Cyrus SASL: sasl2-sys 0.1.22 (`scram` brings an unvendored openssl-sys)
        C("duct", "0.13.7"), C("krb5-src", "0.3.3"),
        C("sasl2-sys", "0.1.22+2.1.28",
          [D("cc", "^1.0.50", kind="build"), D("duct", "^0.13.3", kind="build"), D("krb5-src", "^0.3.0", optional=True),
           D("libc", "^0.2.68"), D("openssl-sys", "^0.9.55", optional=True),
           D("pkg-config", "^0.3.17", optional=True, kind="build")],
          {"default": ["pkg-config"], "gssapi-vendored": ["krb5-src", "vendored"], "openssl-vendored": ["openssl-sys/vendored"],
           "plain": ["vendored"], "scram": ["openssl-sys", "vendored"], "vendored": []}, links="sasl2"),
        # libgit2: libgit2-sys 0.18.3 and git2 0.20.3 as in their index lines (`vendored-libgit2` forwards
        # `libgit2-sys/vendored`), libssh2-sys 0.3.0 behind `ssh`
        C("openssl-probe", "0.1.5"),
        C("libssh2-sys", "0.3.0",
          [D("libc", "^0.2"), D("libz-sys", "^1.1.0", ["libc"], default_features=False), D("cc", "^1.0.25", kind="build"),
           D("pkg-config", "^0.3.11", kind="build"), D("openssl-sys", "^0.9.35", target="cfg(unix)")],
          {"vendored-openssl": ["openssl-sys/vendored"], "zlib-ng-compat": ["libz-sys/zlib-ng"]}, links="ssh2"),
        C("libgit2-sys", "0.18.3+1.9.2",
          [D("cc", "^1.0.43", kind="build"), D("libc", "^0.2"),
           D("libssh2-sys", "^0.3.0", optional=True), D("libz-sys", "^1.1.0", ["libc"], default_features=False),
           D("openssl-sys", "^0.9.45", optional=True, target="cfg(unix)"), D("pkg-config", "^0.3.15", kind="build")],
          {"https": ["openssl-sys"], "ssh": ["libssh2-sys"], "vendored": [], "vendored-openssl": ["openssl-sys/vendored"],
           "zlib-ng-compat": ["libz-sys/zlib-ng", "libssh2-sys?/zlib-ng-compat"]}, links="git2"),
        C("git2", "0.20.3",
          [D("libc", "^0.2"), D("libgit2-sys", "^0.18.3"),
           D("openssl-probe", "^0.1", optional=True, target='cfg(all(unix, not(target_os = "macos")))'),
           D("openssl-sys", "^0.9.45", optional=True, target='cfg(all(unix, not(target_os = "macos")))')],
          {"default": ["ssh", "https"], "https": ["libgit2-sys/https", "openssl-sys", "openssl-probe"],
           "ssh": ["libgit2-sys/ssh"], "unstable": [], "vendored-libgit2": ["libgit2-sys/vendored"],
           "vendored-openssl": ["openssl-sys/vendored", "libgit2-sys/vendored-openssl"],
           "zlib-ng-compat": ["libgit2-sys/zlib-ng-compat"]}),
        # zstd: `pkg-config` forwarded from zstd through zstd-safe
        C("zstd-sys", "2.0.10+zstd.1.5.6", [D("cc", "^1.0.45", kind="build"), D("pkg-config", "^0.3", kind="build")],
          {"default": ["legacy", "zdict_builder"], "legacy": [], "zdict_builder": [], "pkg-config": [], "std": []},
          links="zstd"),
        C("zstd-safe", "7.1.0", [D("zstd-sys", "^2.0.10", default_features=False)],
          {"default": ["legacy"], "legacy": ["zstd-sys/legacy"], "pkg-config": ["zstd-sys/pkg-config"]}),
        C("zstd", "0.13.1", [D("zstd-safe", "^7.1.0", default_features=False)],
          {"default": ["legacy"], "legacy": ["zstd-safe/legacy"], "pkg-config": ["zstd-safe/pkg-config"]}),
    ]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog-registry")
    write_registry(root, crates())
    srv = Server(root)
    yield srv
    srv.close()


def _project(tmp_path: Path, deps: str) -> Path:
    proj = tmp_path / "app"
    write_project(proj, {"Cargo.toml": f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n'})
    return proj


def _tool(proj: Path, srv: Server, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CARGO_STATIC_FIX_NO_MEMO="1")
    return subprocess.run([sys.executable, "-m", "codemod", *args, "--index-url", srv.index_url, str(proj)],
                          cwd=proj.parent, capture_output=True, text=True, timeout=300, env=env)


def _json(proj: Path, srv: Server, *args: str) -> dict:
    r = _tool(proj, srv, "--dry-run", "--format", "json", *args)
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


def _blocker(doc: dict, crate: str) -> dict:
    return next(b for b in doc["blockers"] if b["crate"] == crate)


CASES = [
    # (dependency lines, target, sys crate, system libraries, culprit chain, remedy kind, edit)
    ('rusqlite = "0.31"', MUSL, "libsqlite3-sys", ["SQLite (libsqlite3)"], ["app", "rusqlite", "libsqlite3-sys"],
     "static-feature", ("rusqlite", ["bundled"])),
    ('flate2 = { version = "1", features = ["zlib"] }', GNU, "libz-sys", ["zlib (libz)"],
     ["app", "flate2 [zlib]", "libz-sys"], "static-dep", ("libz-sys", ["static"])),
    ('bzip2 = "0.4"', GNU, "bzip2-sys", ["bzip2 (libbz2)"], ["app", "bzip2", "bzip2-sys"],
     "static-feature", ("bzip2", ["static"])),
    ('xz2 = "0.1.7"', GNU, "lzma-sys", ["xz (liblzma)"], ["app", "xz2", "lzma-sys"], "static-feature", ("xz2", ["static"])),
    ('pq-sys = "0.6"', MUSL, "pq-sys", ["PostgreSQL's libpq"], ["app", "pq-sys"], "static-feature", ("pq-sys", ["bundled"])),
    ('sasl2-sys = "0.1"', MUSL, "sasl2-sys", ["Cyrus SASL (libsasl2)"], ["app", "sasl2-sys"], "static-feature",
     ("sasl2-sys", ["vendored"])),
    ('curl = { version = "0.4.46", default-features = false }', GNU, "curl-sys", ["libcurl"], ["app", "curl", "curl-sys"],
     "static-feature", ("curl", ["static-curl"])),
    ('mysqlclient-sys = "0.3"', MUSL, "mysqlclient-sys", ["MySQL client (libmysqlclient)"], ["app", "mysqlclient-sys"],
     "static-feature", ("mysqlclient-sys", ["bundled"])),
    ('libusb1-sys = "0.7"', GNU, "libusb1-sys", ["libusb"], ["app", "libusb1-sys"], "static-feature", ("libusb1-sys", ["vendored"])),
    ('git2 = { version = "0.20", default-features = false }', GNU, "libgit2-sys", ["libgit2"], ["app", "git2", "libgit2-sys"],
     "static-feature", ("git2", ["vendored-libgit2"])),
]


@pytest.mark.parametrize("deps,target,crate,libs,chain,kind,edit", CASES, ids=[c[2] for c in CASES])
def test_blocker_report_and_plan(deps, target, crate, libs, chain, kind, edit, registry, tmp_path):
    proj = _project(tmp_path, deps)
    doc = _json(proj, registry, "--target", target)
    assert doc["schema_version"] == 2
    b = _blocker(doc, crate)
    assert b["static"] is False and b["system_libraries"] == libs
    assert [c["chains"][0] for c in b["culprits"]] == [chain]
    assert b["status"] == "fixable", b
    assert b["plan"] and b["plan"][0]["remedy"] == kind
    dep, feats = edit
    edits = [e for r in b["plan"] for e in r["edits"]]
    assert any(e["dependency"] == dep and feats == (e.get("add_features") or e.get("add", {}).get("features"))
               for e in edits), edits
    assert doc["status"] == "would-fix"


def test_sqlcipher_needs_the_vendored_openssl_flavour(registry, tmp_path):
    """rusqlite `bundled-sqlcipher`: SQLite is compiled, but against the system libcrypto; the plan
    switches to `bundled-sqlcipher-vendored-openssl`, which builds OpenSSL as well."""
    proj = _project(tmp_path, 'rusqlite = { version = "0.31", features = ["bundled-sqlcipher"] }')
    doc = _json(proj, registry)
    b = _blocker(doc, "libsqlite3-sys")
    assert b["system_libraries"] == ["OpenSSL's libcrypto"]
    edits = [e for r in b["plan"] for e in r["edits"]]
    assert [(e["dependency"], e["add_features"]) for e in edits] == [("rusqlite", ["bundled-sqlcipher-vendored-openssl"])]
    assert doc["status"] == "would-fix"


def test_bundled_libpq_brings_openssl_back_and_the_plan_fixes_both(registry, tmp_path):
    """pq-sys 0.6's bundled build goes through pq-src 0.2, whose openssl-sys is not vendored: the
    whole plan builds both from source."""
    proj = _project(tmp_path, 'pq-sys = "0.6"')
    doc = _json(proj, registry)
    kinds = {(r["remedy"], e["dependency"]) for r in doc["plan"] for e in r["edits"]}
    assert ("static-feature", "pq-sys") in kinds
    assert any(dep == "openssl-sys" for _k, dep in kinds), doc["plan"]
    assert not doc.get("warnings"), doc.get("warnings")


def test_musl_cross_build_compiles_zlib_itself(registry, tmp_path):
    """On musl from a glibc host the pkg-config probe is refused: libz-sys, bzip2-sys and lzma-sys build their own."""
    proj = _project(tmp_path, 'flate2 = { version = "1", features = ["zlib"] }\nbzip2 = "0.4"\nxz2 = "0.1.7"')
    doc = _json(proj, registry, "--target", MUSL)
    for crate in ("libz-sys", "bzip2-sys", "lzma-sys"):
        b = _blocker(doc, crate)
        assert b["built"] and b["static"], b
    assert doc["status"] == "clean"


def test_zlib_ng_counts_only_without_stock_zlib(registry, tmp_path):
    """libz-sys builds zlib-ng only while `stock-zlib` (a default feature) is off: with default
    features on, `zlib-ng` still leaves the system zlib, and the plan adds `static`."""
    proj = _project(tmp_path / "a", 'libz-sys = { version = "1.1", features = ["zlib-ng"] }')
    b = _blocker(_json(proj, registry, "--target", GNU), "libz-sys")
    assert b["static"] is False and b["status"] == "fixable", b
    assert set(b["enabled_by"]) == {"zlib-ng", "stock-zlib"} and "overrides" in b["why"][0]
    edits = [e for r in b["plan"] for e in r["edits"]]
    assert any(e["dependency"] == "libz-sys" and "static" in (e.get("add_features") or e.get("add", {}).get("features", []))
               for e in edits), edits
    proj = _project(tmp_path / "b", 'libz-sys = { version = "1.1", default-features = false, features = ["zlib-ng"] }')
    b = _blocker(_json(proj, registry, "--target", GNU), "libz-sys")
    assert b["built"] and b["static"], b


def test_sasl_scram_fixes_sasl_and_openssl(registry, tmp_path):
    proj = _project(tmp_path, 'sasl2-sys = { version = "0.1", features = ["scram"] }')
    doc = _json(proj, registry)
    assert doc["vendored"] is False and doc["culprits"]          # scram: openssl-sys, not vendored
    b = _blocker(doc, "sasl2-sys")
    assert b["static"] is True                                    # scram turns `vendored` on as well
    assert doc["status"] == "would-fix" and doc["plan"]


def _assert_cargo_tree_has(proj, home, crate: str, target: str, chain) -> None:
    """Every package and feature of our chain is in `cargo tree -i <crate> -e features`."""
    tree = _cargo(proj, home, "tree", "-i", crate, "-e", "features,normal", "--target", target)
    assert tree.returncode == 0, tree.stderr
    for step in chain:
        name, _, feature = step.partition(" [")
        assert f"{name} v" in tree.stdout, (step, tree.stdout)
        if feature:
            assert f'{name} feature "{feature[:-1]}"' in tree.stdout, (step, tree.stdout)


@pytest.mark.parametrize("deps,target,crate,chain,status", [
    ('zstd = { version = "0.13", features = ["pkg-config"] }', MUSL, "zstd-sys",
     ["app", "zstd", "zstd-safe", "zstd-sys"], "unfixable"),
    ('rdkafka-sys = { version = "4.7", features = ["dynamic-linking"] }', MUSL, "rdkafka-sys",
     ["app", "rdkafka-sys"], "unfixable"),
    ('freetype-sys = "0.20"', MUSL, "freetype-sys", ["app", "freetype-sys"], "unfixable"),
    ('yeslogic-fontconfig-sys = "5"', MUSL, "yeslogic-fontconfig-sys", ["app", "yeslogic-fontconfig-sys"], "unfixable"),
    ('yeslogic-fontconfig-sys = { version = "5", features = ["dlopen"] }', MUSL, "yeslogic-fontconfig-sys",
     ["app", "yeslogic-fontconfig-sys"], "unfixable"),
    ('servo-fontconfig-sys = "5.1"', GNU, "servo-fontconfig-sys", ["app", "servo-fontconfig-sys"], "unfixable"),
    ('servo-fontconfig-sys = { version = "5.1", features = ["force_system_lib"] }', MUSL, "servo-fontconfig-sys",
     ["app", "servo-fontconfig-sys"], "unfixable"),
    ('sasl2-sys = "0.1"', MUSL, "sasl2-sys", ["app", "sasl2-sys"], "fixable"),
    ('curl = { version = "0.4.46", default-features = false }', GNU, "curl-sys", ["app", "curl", "curl-sys"], "fixable"),
])
def test_every_entry_reports_its_chain(deps, target, crate, chain, status, registry, tmp_path):
    proj = _project(tmp_path, deps)
    b = _blocker(_json(proj, registry, "--target", target), crate)
    assert b["static"] is False and b["status"] == status, b
    assert [c["chains"][0] for c in b["culprits"]] == [chain]
    if shutil.which("cargo"):
        _assert_cargo_tree_has(proj, cargo_home(tmp_path, registry), crate, target, chain)


def test_zstd_pkg_config_has_no_remedy_but_says_why(registry, tmp_path):
    proj = _project(tmp_path, 'zstd = { version = "0.13", features = ["pkg-config"] }')
    doc = _json(proj, registry, "--target", MUSL)
    b = _blocker(doc, "zstd-sys")
    assert b["static"] is False and b["status"] == "unfixable"
    assert "pkg-config" in b["reason"]
    # who turns the feature on that links the system library
    assert b["enabled_by"]["pkg-config"] == ["app", "zstd [pkg-config]", "zstd-safe [pkg-config]", "zstd-sys [pkg-config]"]
    assert [c["chains"][0] for c in b["culprits"]][0][:2] == ["app", "zstd"]


def test_fontconfig_dlopen_is_no_static_build(registry, tmp_path):
    """yeslogic-fontconfig-sys `dlopen` links nothing but loads libfontconfig.so.1 at run time: the
    report keeps it as a system library, says why, and names who turns the feature on."""
    proj = _project(tmp_path, 'yeslogic-fontconfig-sys = { version = "5", features = ["dlopen"] }')
    b = _blocker(_json(proj, registry, "--target", MUSL), "yeslogic-fontconfig-sys")
    assert b["static"] is False and b["status"] == "unfixable" and not b["plan"]
    assert len(b["why"]) == 1 and "run time" in b["why"][0]
    assert b["enabled_by"] == {"dlopen": ["app", "yeslogic-fontconfig-sys [dlopen]"]}
    assert "dlopen" in b["reason"] and "static archive" in b["reason"]


def test_servo_fontconfig_cross_build_compiles_its_own_but_not_freetype(registry, tmp_path):
    """Cross-compiling, the pkg-config probe is refused and servo-fontconfig-sys builds the fontconfig it
    ships; the freetype-sys it depends on still links the system FreeType."""
    proj = _project(tmp_path, 'servo-fontconfig-sys = "5.1"')
    doc = _json(proj, registry, "--target", MUSL)
    fc = _blocker(doc, "servo-fontconfig-sys")
    assert fc["built"] and fc["static"], fc
    ft = _blocker(doc, "freetype-sys")
    assert ft["static"] is False and ft["status"] == "unfixable"
    assert [c["chains"][0] for c in ft["culprits"]] == [["app", "servo-fontconfig-sys", "freetype-sys"]]


def test_blocker_openssl_sys_alone_reports_no_blockers(registry, tmp_path):
    proj = _project(tmp_path, 'rusqlite = "0.31"')
    doc = _json(proj, registry, "--blocker", "openssl-sys")
    assert "blockers" not in doc and "schema_version" not in doc
    assert doc["status"] == "clean"


def test_blocker_list_and_unknown_crate(registry, tmp_path):
    proj = _project(tmp_path, 'rusqlite = "0.31"\nbzip2 = "0.4"')
    doc = _json(proj, registry, "--blocker", "libsqlite3-sys", "--target", GNU)
    assert [b["crate"] for b in doc["blockers"]] == ["libsqlite3-sys"]
    r = _tool(proj, registry, "--dry-run", "--blocker", "libsqlite3-sys,nope-sys")
    assert r.returncode == 2 and "not in the catalog" in r.stderr


def test_explain_has_a_section_per_system_library(registry, tmp_path):
    proj = _project(tmp_path, 'rusqlite = "0.31"\nbzip2 = "0.4"')
    r = _tool(proj, registry, "--explain", "--target", GNU)
    assert r.returncode == 0, r.stderr
    assert "libsqlite3-sys 0.28.0 links SQLite (libsqlite3) from the system" in r.stdout
    assert "bzip2-sys 0.1.11+1.0.8 links bzip2 (libbz2) from the system" in r.stdout
    assert "Plan for libsqlite3-sys:" in r.stdout


def test_list_rules_lists_the_catalog():
    r = subprocess.run([sys.executable, "-m", "codemod", "--list-rules"], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr
    assert "\nlibraries:\n" in r.stdout
    assert "libsqlite3-sys >=0.9.4, <0.23 [SQLite (libsqlite3)]: system when no `bundled`" in r.stdout


# -- cargo as the oracle ------------------------------------------------------------------------------

needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")


def _cargo(proj: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CARGO_HOME=str(home), CARGO_NET_OFFLINE="false")
    return subprocess.run(["cargo", *args], cwd=proj, env=env, capture_output=True, text=True, timeout=300)


@needs_cargo
@pytest.mark.parametrize("deps,target,crate,libs,chain,kind,edit", CASES, ids=[c[2] for c in CASES])
def test_chains_agree_with_cargo_tree_and_plans_hold(deps, target, crate, libs, chain, kind, edit, registry, tmp_path):
    proj = _project(tmp_path, deps)
    home = cargo_home(tmp_path, registry)
    _assert_cargo_tree_has(proj, home, crate, target, chain)
    b = _blocker(_json(proj, registry, "--target", target), crate)
    static = set(edit[1]) if kind == "static-dep" else None
    # apply the plan as written, then ask cargo how the sys crate is built
    r = _tool(proj, registry, "--allow-dirty", "--target", target)
    assert r.returncode == 0, r.stderr + r.stdout
    after = _cargo(proj, home, "tree", "-i", crate, "-e", "features,normal", "--target", target)
    assert after.returncode == 0, after.stderr
    want = static or {"libsqlite3-sys": {"bundled"}, "bzip2-sys": {"static"}, "lzma-sys": {"static"},
                      "pq-sys": {"bundled"}, "sasl2-sys": {"vendored"}, "curl-sys": {"static-curl"},
                      "mysqlclient-sys": {"bundled"}, "libusb1-sys": {"vendored"}, "libgit2-sys": {"vendored"}}[crate]
    assert any(f'{crate} feature "{f}"' in after.stdout for f in want), after.stdout
    assert b["plan"]
    if crate in ("pq-sys", "mysqlclient-sys"):        # their bundled builds bring openssl-sys: vendored
        ssl = _cargo(proj, home, "tree", "-i", "openssl-sys", "-e", "features,normal", "--target", target)
        assert 'openssl-sys feature "vendored"' in ssl.stdout, ssl.stdout


# -- one snapshot per catalog entry with a remedy: before, diff, after ----------------------------------

# (crate, versions) of a catalog entry -> (dependency lines of a fixture project, target)
ENTRY_CASES = {
    ("libsqlite3-sys", ">=0.23.0, <0.35"): ('rusqlite = "0.31"', MUSL),
    ("libsqlite3-sys", ">=0.9.4, <0.23"): ('libsqlite3-sys = "0.22"', MUSL),
    ("pq-sys", ">=0.5.0, <0.7"): ('pq-sys = "0.6"', MUSL),
    ("libz-sys", ">=1.0.25, <2"): ('flate2 = { version = "1", features = ["zlib"] }', GNU),
    ("bzip2-sys", ">=0.1.11, <0.2"): ('bzip2 = "0.4"', GNU),
    ("lzma-sys", ">=0.1.16, <0.2"): ('xz2 = "0.1.7"', GNU),
    ("openssl-sys", ">=0.9.91, <0.10"): ('pq-src = "0.2"', MUSL),
    ("sasl2-sys", ">=0.1.12, <0.2"): ('sasl2-sys = "0.1"', MUSL),
    ("mysqlclient-sys", ">=0.3.0, <0.4"): ('mysqlclient-sys = "0.3"', MUSL),
    ("libusb1-sys", ">=0.4.1, <0.8"): ('libusb1-sys = "0.7"', GNU),
    ("curl-sys", ">=0.4.81, <0.5"): ('curl = { version = "0.4.46", default-features = false }', GNU),
    ("libgit2-sys", ">=0.12.23, <0.19"): ('git2 = { version = "0.20", default-features = false }', GNU),
}


# entries without a remedy: (sys crate, dependency lines, target) -> what the report says; nothing is written
UNFIXABLE_CASES = {
    "yeslogic-fontconfig-sys musl": ("yeslogic-fontconfig-sys", 'yeslogic-fontconfig-sys = "5"', MUSL),
    "yeslogic-fontconfig-sys dlopen musl": ("yeslogic-fontconfig-sys",
                                            'yeslogic-fontconfig-sys = { version = "5", features = ["dlopen"] }', MUSL),
    "servo-fontconfig-sys gnu": ("servo-fontconfig-sys", 'servo-fontconfig-sys = "5.1"', GNU),
    "servo-fontconfig-sys force_system_lib musl": (
        "servo-fontconfig-sys", 'servo-fontconfig-sys = { version = "5.1", features = ["force_system_lib"] }', MUSL),
}


@pytest.mark.parametrize("case", sorted(UNFIXABLE_CASES))
def test_unfixable_entry_snapshot(case, registry, tmp_path, snapshot):
    crate, deps, target = UNFIXABLE_CASES[case]
    proj = _project(tmp_path, deps)
    before = (proj / "Cargo.toml").read_text()
    dry = _tool(proj, registry, "--dry-run", "--target", target)
    assert dry.returncode == 0, dry.stderr
    b = _blocker(_json(proj, registry, "--target", target), crate)
    written = _tool(proj, registry, "--allow-dirty", "--target", target)
    assert written.returncode == 0, written.stderr
    assert (proj / "Cargo.toml").read_text() == before
    report = {k: b.get(k) for k in ("static", "versions", "system_libraries", "why", "status", "reason", "needs",
                                    "enabled_by", "plan")}
    report["chains"] = [c["chains"][0] for c in b["culprits"]]
    out = (dry.stdout + dry.stderr).replace(str(tmp_path), "<tmp>")
    assert {"manifest": before, "output": out, "report": report} == snapshot


def _entries_with_remedies():
    from codemod.catalog import load_catalog

    return [lib for lib in load_catalog() if lib.remedies]


def test_every_catalog_entry_has_a_snapshot_case():
    missing = [f"{lib.crate} {lib.versions}" for lib in _entries_with_remedies() if (lib.crate, lib.versions) not in ENTRY_CASES]
    assert not missing, f"add a fixture project to ENTRY_CASES for {missing}"


@pytest.mark.parametrize("key", sorted(ENTRY_CASES), ids=lambda k: f"{k[0]} {k[1]}")
def test_catalog_entry_snapshot(key, registry, tmp_path, snapshot):
    deps, target = ENTRY_CASES[key]
    proj = _project(tmp_path, deps)
    before = (proj / "Cargo.toml").read_text()
    diff = _tool(proj, registry, "--dry-run", "--target", target)
    assert diff.returncode == 0, diff.stderr
    doc = _json(proj, registry, "--target", target)
    crate = key[0]
    report = next((b for b in doc.get("blockers", []) if b["crate"] == crate), None)
    written = _tool(proj, registry, "--allow-dirty", "--target", target)
    assert written.returncode == 0, written.stderr
    after = (proj / "Cargo.toml").read_text()
    again = _json(proj, registry, "--target", target)
    fixed = next((b for b in again.get("blockers", []) if b["crate"] == crate), None)
    assert again["status"] == "clean", again
    if fixed is not None:
        assert fixed["static"], fixed
    plan = doc["plan"] if report is None else report["plan"]
    assert len({json.dumps(r, sort_keys=True) for r in plan}) == len(plan), "a remedy listed twice"
    assert {"before": before, "diff": diff.stdout.replace(str(tmp_path), "<tmp>"), "after": after,
            "plan": plan} == snapshot
