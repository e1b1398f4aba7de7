"""The catalog of native libraries (`[[libraries]]` in rules/*.toml): every feature it names exists
in the index lines of the versions it covers, the boundaries it draws are real, and the
"links a system library" predicates say what the build scripts do."""

import json
from pathlib import Path

import pytest

from codemod.catalog import (Library, SystemClause, blocker_names, load_catalog, parse_blocker_option,
                             parse_libraries)
from codemod.rules import RuleError, load_rules, parse_rules
from codemod.semver import parse_version

ROOT = Path(__file__).resolve().parent.parent
DOC = json.loads((ROOT / "tests/fixtures/rule-features.json").read_text())
FIXTURE = DOC["crates"]
CATALOG = load_catalog()


def entry_id(lib: Library) -> str:
    return f"{lib.crate} {lib.versions}"


def _lines(lib: Library) -> list[dict]:
    return [line for line in FIXTURE.get(lib.crate, []) if lib.covers(line["vers"])]


def _names(line: dict) -> set[str]:
    """Explicit features plus the implicit features of optional dependencies the line records."""
    return set(line["features"]) | set(line.get("implicit", []))


@pytest.mark.parametrize("lib", CATALOG, ids=entry_id)
def test_entry_is_checked_at_both_ends_and_in_between(lib):
    lines = _lines(lib)
    assert lines, f"no index data for {entry_id(lib)}: add real index lines to tests/fixtures/rule-features.json"
    assert lib.crate in DOC["sources"], f"say where the {lib.crate} lines come from under `sources`"
    versions = sorted((parse_version(line["vers"]) for line in lines))
    if len(lines) > 1:
        assert versions[0] != versions[-1]
    # the range starts at a version whose line was read: `>=X` names X exactly
    low = lib.versions.split(",")[0].strip()
    assert low.startswith(">="), f"{entry_id(lib)}: ranges start with `>=` at a checked version"
    assert any(line["vers"].split("+")[0] == low[2:].strip() for line in lines), \
        f"{entry_id(lib)}: the lower bound {low[2:]} is not among the recorded versions"


@pytest.mark.parametrize("lib", CATALOG, ids=entry_id)
def test_remedy_features_exist_in_every_covered_version(lib):
    for line in _lines(lib):
        for remedy in lib.remedies:
            missing = set(remedy.add_features) - _names(line)
            assert not missing, f"{lib.crate} {line['vers']} has no feature {sorted(missing)}"


@pytest.mark.parametrize("lib", CATALOG, ids=entry_id)
def test_predicate_features_exist(lib):
    """A clause's `unless` features are the static switch: at least one exists in every covered
    version that has its `when` features. Its `when` features exist in some covered version
    (bundled-sqlcipher only from 0.23)."""
    lines = _lines(lib)
    for clause in lib.system:
        if clause.unless:
            for line in lines:
                if not set(clause.when) <= _names(line):
                    continue
                assert set(clause.unless) & _names(line), f"{lib.crate} {line['vers']} has none of {clause.unless}"
        for f in clause.when:
            assert any(f in _names(line) for line in lines), f"no covered {lib.crate} version has `{f}`"


@pytest.mark.parametrize("crate,version,feature", [
    ("pq-sys", "0.4.8", "bundled"),          # bundled arrives in 0.5.0
    ("pq-sys", "0.4.6", "bundled"),
    ("libz-sys", "1.0.24", "static"),       # static arrives in 1.0.25
    ("bzip2-sys", "0.1.10+1.0.8", "static"),  # static arrives in 0.1.11
    ("lzma-sys", "0.1.15", "static"),        # static arrives in 0.1.16
    ("libsqlite3-sys", "0.22.2", "bundled-sqlcipher"),   # bundled-sqlcipher arrives in 0.23.0
    ("libgit2-sys", "0.12.22+1.1.0", "vendored"),         # vendored arrives in 0.12.23
])
def test_versions_below_a_range_really_lack_its_switch(crate, version, feature):
    line = next(line for line in FIXTURE[crate] if line["vers"] == version)
    assert feature not in _names(line)
    fixable = [lib for lib in CATALOG if lib.crate == crate and lib.covers(version) and lib.remedies]
    assert not any(feature in m.add_features for lib in fixable for m in lib.remedies)


def test_pq_sys_0_4_is_unfixable_and_says_where_bundled_starts():
    lib = next(lib for lib in CATALOG if lib.crate == "pq-sys" and lib.covers("0.4.8"))
    assert lib.unfixable and "0.5.0" in lib.unfixable and not lib.remedies
    assert lib.links_system(set())


def test_bundled_libpq_brings_openssl_back_from_0_6():
    """pq-sys 0.5's pq-src 0.1 asks for openssl-sys `vendored`; 0.6's pq-src 0.2 does not, so the
    OpenSSL entry has to be fixed too (the whole-catalog check catches it)."""
    pq = {line["vers"]: line for line in FIXTURE["pq-sys"]}
    src = {line["vers"]: line for line in FIXTURE["pq-src"]}
    assert pq["0.5.0"]["deps"][0]["req"] == "^0.1" and pq["0.6.0"]["deps"][0]["req"] == "^0.2"
    ssl = lambda v: next(d for d in src[v]["deps"] if d["name"] == "openssl-sys")  # noqa: E731
    assert all("vendored" in ssl(v)["features"] for v in src if v.startswith("0.1."))
    assert "vendored" not in ssl("0.2.0")["features"]
    lib = next(lib for lib in CATALOG if lib.crate == "pq-sys" and lib.covers("0.6.0"))
    assert any("perl" in n for n in lib.needs)


def test_rusqlite_bundled_reaches_libsqlite3_sys_bundled():
    rules = [r for r in load_rules() if r.crate == "rusqlite"]
    assert rules
    for line in FIXTURE["rusqlite"]:
        rule = next(r for r in rules if r.covers("rusqlite", line["vers"]))
        remedy = rule.remedies[0]
        assert remedy.kind == "static-feature" and remedy.blocker == "libsqlite3-sys"
        assert set(remedy.add_features) <= set(line["features"])
        assert "libsqlite3-sys/bundled" in line["feature_values"]["bundled"]


def test_git2_vendored_libgit2_reaches_libgit2_sys_vendored():
    """git2's `vendored-libgit2` forwards `libgit2-sys/vendored` in every recorded line the rule covers,
    and the libgit2-sys it requires is one the catalog entry covers (so `vendored` exists there)."""
    from codemod.semver import parse_req

    rules = [r for r in load_rules() if r.crate == "git2" and any(m.kind == "static-feature" for m in r.remedies)]
    assert len(rules) == 1
    rule = rules[0]
    remedy = next(m for m in rule.remedies if m.kind == "static-feature")
    assert remedy.blocker == "libgit2-sys" and remedy.add_features == ("vendored-libgit2",)
    covered = [line for line in FIXTURE["git2"] if rule.covers("git2", line["vers"])]
    assert {covered[0]["vers"], covered[-1]["vers"]} == {"0.13.22", "0.20.3"}
    entry = next(lib for lib in CATALOG if lib.crate == "libgit2-sys")
    sys_lines = {line["vers"].split("+")[0]: line for line in FIXTURE["libgit2-sys"]}
    for line in covered:
        assert line["feature_values"]["vendored-libgit2"] == ["libgit2-sys/vendored"], line["vers"]
        req = next(d["req"] for d in line["deps"] if d["name"] == "libgit2-sys")
        low = req.lstrip("^")
        assert parse_req(req).matches(parse_version(low)) and entry.covers(low), (line["vers"], req)
        assert "vendored" in sys_lines[low]["features"], (line["vers"], low)
    below = next(line for line in FIXTURE["git2"] if line["vers"] == "0.13.21")
    assert "vendored-libgit2" not in below["features"] and not rule.covers("git2", "0.13.21")


def test_libssh2_sys_has_no_catalog_entry():
    """libssh2-sys compiles its bundled libssh2 unless the LIBSSH2_SYS_USE_PKG_CONFIG variable is set:
    no feature selects the system library, so no clause could say when it is linked (rules/ssh2.toml)."""
    assert not any(lib.crate == "libssh2-sys" for lib in CATALOG)
    for line in FIXTURE["libssh2-sys"]:
        assert set(line["features"]) <= {"openssl-on-win32", "vendored-openssl", "zlib-ng-compat"}, line["vers"]


@pytest.mark.parametrize("crate,version,features,system", [
    ("libsqlite3-sys", "0.30.1", {"default", "min_sqlite_version_3_14_0"}, ["SQLite (libsqlite3)"]),
    ("libsqlite3-sys", "0.30.1", {"bundled", "cc", "bundled_bindings"}, []),
    ("libsqlite3-sys", "0.30.1", {"bundled", "bundled-sqlcipher"}, ["OpenSSL's libcrypto"]),
    ("libsqlite3-sys", "0.30.1", {"bundled", "bundled-sqlcipher", "bundled-sqlcipher-vendored-openssl"}, []),
    ("zstd-sys", "2.0.10+zstd.1.5.6", {"default", "legacy", "zdict_builder"}, []),
    ("zstd-sys", "2.0.10+zstd.1.5.6", {"pkg-config"}, ["Zstandard (libzstd)"]),
    ("libz-sys", "1.1.16", {"default", "libc", "stock-zlib"}, ["zlib (libz)"]),
    ("libz-sys", "1.1.16", {"static"}, []),
    ("libz-sys", "1.1.16", {"zlib-ng"}, []),
    # `stock-zlib` (a default feature) overrides the zlib-ng switches: want_ng = ... && !stock-zlib
    ("libz-sys", "1.1.16", {"default", "libc", "stock-zlib", "zlib-ng", "cmake"}, ["zlib (libz)"]),
    ("libz-sys", "1.1.16", {"default", "libc", "stock-zlib", "zlib-ng", "cmake", "static"}, []),
    ("libz-sys", "1.1.18", {"zlib-ng-no-cmake-experimental-community-maintained", "libc"}, []),
    ("libz-sys", "1.1.24", {"default", "libc", "stock-zlib", "zlib-ng-no-cmake-experimental-community-maintained"},
     ["zlib (libz)"]),
    ("pq-sys", "0.6.0", set(), ["PostgreSQL's libpq"]),
    ("pq-sys", "0.6.0", {"bundled", "pq-src"}, []),
    ("bzip2-sys", "0.1.11+1.0.8", set(), ["bzip2 (libbz2)"]),
    ("lzma-sys", "0.1.20", {"static"}, []),
    ("openssl-sys", "0.9.102", set(), ["OpenSSL (libssl, libcrypto)"]),
    ("openssl-sys", "0.9.102", {"vendored"}, []),
    ("libgit2-sys", "0.18.3+1.9.2", {"https", "ssh"}, ["libgit2"]),
    ("libgit2-sys", "0.18.3+1.9.2", {"https", "ssh", "vendored"}, []),
    ("libgit2-sys", "0.18.3+1.9.2", {"zlib-ng-compat"}, []),
    ("libgit2-sys", "0.12.23+1.2.0", set(), ["libgit2"]),
    ("yeslogic-fontconfig-sys", "2.11.2", set(), ["Fontconfig (libfontconfig)"]),
    ("yeslogic-fontconfig-sys", "5.0.0", set(), ["Fontconfig (libfontconfig)"]),
    ("yeslogic-fontconfig-sys", "5.0.0", {"dlopen"}, ["Fontconfig (libfontconfig)"]),   # loaded at run time
    ("servo-fontconfig-sys", "5.1.0", {"default"}, ["Fontconfig (libfontconfig)"]),
    ("servo-fontconfig-sys", "4.0.9", set(), ["Fontconfig (libfontconfig)"]),
])
def test_links_system(crate, version, features, system):
    lib = next(lib for lib in CATALOG if lib.crate == crate and lib.covers(version))
    assert [c.library or lib.library for c in lib.links_system(features)] == system


@pytest.mark.parametrize("crate,version", [("libz-sys", "1.1.16"), ("bzip2-sys", "0.1.11+1.0.8"), ("lzma-sys", "0.1.20"),
                                           ("libgit2-sys", "0.18.3+1.9.2"), ("servo-fontconfig-sys", "5.1.0")])
def test_pkg_config_probes_do_not_run_when_cross_compiling(crate, version):
    """musl from a glibc host: the pkg-config crate refuses, the build script compiles its own."""
    lib = next(lib for lib in CATALOG if lib.crate == crate and lib.covers(version))
    assert lib.links_system(set(), cross=False) and not lib.links_system(set(), cross=True)


def test_libraries_that_link_the_system_even_when_cross_compiling():
    for crate, version, feats in [("libsqlite3-sys", "0.30.1", set()), ("pq-sys", "0.6.0", set()),
                                  ("openssl-sys", "0.9.102", set()), ("zstd-sys", "2.0.10+zstd.1.5.6", {"pkg-config"}),
                                  ("yeslogic-fontconfig-sys", "5.0.0", set()), ("yeslogic-fontconfig-sys", "2.11.1", set()),
                                  ("servo-fontconfig-sys", "5.1.0", {"force_system_lib"})]:
        lib = next(lib for lib in CATALOG if lib.crate == crate and lib.covers(version))
        assert lib.links_system(feats, cross=True)


def test_fontconfig_has_no_bundled_build_in_yeslogic_fontconfig_sys():
    """Every recorded line's only build dependency is pkg-config (no cc, no cmake): nothing to build
    from source. `dlopen` arrives in 3.0.0 and moves the library to run time, so both entries are
    unfixable and neither calls a `dlopen` build static."""
    lines = FIXTURE["yeslogic-fontconfig-sys"]
    assert [line["vers"] for line in lines][0] == "2.11.1" and lines[-1]["vers"] == "5.0.0"
    for line in lines:
        assert [d["name"] for d in line["deps"] if d["kind"] == "build"] == ["pkg-config"], line["vers"]
        assert line["features"] == ([] if line["vers"].startswith("2.") else ["dlopen"]), line["vers"]
    entries = [lib for lib in CATALOG if lib.crate == "yeslogic-fontconfig-sys"]
    assert len(entries) == 2 and all(lib.unfixable and not lib.remedies for lib in entries)
    new = next(lib for lib in entries if lib.covers("3.0.0"))
    assert not new.covers("2.11.2") and "dlopen" in new.unfixable
    assert new.links_system({"dlopen"}, cross=True) and new.links_system(set(), cross=True)


def test_servo_fontconfig_sys_builds_its_own_only_when_the_probe_fails():
    """No feature selects the bundled fontconfig; 2.11.1, below the range, has no pkg-config build
    dependency; `force_system_lib` exists only in 5.1.0."""
    lines = {line["vers"]: line for line in FIXTURE["servo-fontconfig-sys"]}
    assert not any(d["name"] == "pkg-config" for d in lines["2.11.1"]["deps"])
    assert all(any(d["name"] == "pkg-config" and d["kind"] == "build" for d in line["deps"])
               for v, line in lines.items() if v != "2.11.1")
    assert [v for v, line in lines.items() if line["features"]] == ["5.1.0"]
    lib = next(lib for lib in CATALOG if lib.crate == "servo-fontconfig-sys")
    assert not lib.covers("2.11.1") and lib.covers("2.11.2-really.1") and lib.covers("5.1.0")
    assert lib.unfixable and "FONTCONFIG_NO_PKG_CONFIG" in lib.unfixable and not lib.remedies
    assert not lib.links_system({"default"}, cross=True)          # the bundled copy is built
    assert lib.links_system({"default", "force_system_lib"}, cross=True)


def test_every_remedy_clears_the_base_clauses_and_together_all():
    for lib in CATALOG:
        for m in lib.remedies:
            assert not any(c.holds(set(m.add_features) | set(m.implies)) for c in lib.system if not c.when), (lib.crate, m)
    lib = next(lib for lib in CATALOG if lib.crate == "libsqlite3-sys" and lib.covers("0.30.1"))
    assert lib.static_with({"bundled", "bundled-sqlcipher", "bundled-sqlcipher-vendored-openssl"})


def test_blocker_option():
    names = blocker_names(CATALOG)
    assert names[0] == "openssl-sys" and set(names) >= {"libsqlite3-sys", "pq-sys", "libz-sys", "zstd-sys",
                                                         "bzip2-sys", "lzma-sys"}
    assert parse_blocker_option("openssl-sys", CATALOG) == ("openssl-sys",)
    assert parse_blocker_option("libz-sys, pq-sys", CATALOG) == ("libz-sys", "pq-sys")
    assert parse_blocker_option("all", CATALOG) == tuple(names)
    with pytest.raises(RuleError):
        parse_blocker_option(" , ", CATALOG)


def test_clause_semantics():
    c = SystemClause(when=("a",), unless=("b", "c"))
    assert c.holds({"a"}) and not c.holds({"a", "c"}) and not c.holds(set())
    assert SystemClause().holds(set())


@pytest.mark.parametrize("text,message", [
    ('[[libraries]]\ncrate = "x-sys"\nversions = "^1"\n', "needs `crate`, `library` and `versions`"),
    ('[[libraries]]\ncrate = "x-sys"\nlibrary = "x"\nversions = "^1"\n', "at least one `\\[\\[libraries.system\\]\\]`"),
    ('[[libraries]]\ncrate = "x-sys"\nlibrary = "x"\nversions = "^1"\n[[libraries.system]]\nunless = ["s"]\n'
     '[[libraries.remedies]]\nkind = "magic"\nadd_features = ["s"]\n', "`kind` must be one of"),
    ('[[libraries]]\ncrate = "x-sys"\nlibrary = "x"\nversions = "^1"\n[[libraries.system]]\nunless = ["s"]\n'
     '[[libraries.remedies]]\nkind = "static-dep"\nadd_features = ["other"]\n', "leaves a `system` clause true"),
    ('[[libraries]]\ncrate = "x-sys"\nlibrary = "x"\nversions = "^1"\n[[libraries.system]]\nunless = ["s"]\n'
     '[[libraries.system]]\nwhen = ["c"]\nunless = ["cv"]\n'
     '[[libraries.remedies]]\nkind = "static-dep"\nadd_features = ["s"]\n', "together leave a `system` clause true"),
    ('[[libraries]]\ncrate = "x-sys"\nlibrary = "x"\nversions = "^1"\nextra = 1\n', "unknown key `extra`"),
    ('[[libraries]]\ncrate = "x-sys"\nlibrary = "x"\nversions = "^1"\nunfixable = "no"\n[[libraries.system]]\n'
     '[[libraries.remedies]]\nkind = "static-dep"\nadd_features = ["s"]\n', "cannot be `unfixable`"),
])
def test_invalid_entries_are_rejected(text, message):
    with pytest.raises(RuleError, match=message):
        parse_libraries(text, "bad.toml")


def test_static_feature_rules_name_their_blocker():
    bad = '[[rules]]\ncrate = "x"\nversions = "^1"\n[[rules.remedies]]\nkind = "static-feature"\nadd_features = ["a"]\n'
    with pytest.raises(RuleError, match="names the `blocker`"):
        parse_rules(bad, "bad.toml")
    ok = bad + 'blocker = "x-sys"\n'
    assert parse_rules(ok, "ok.toml")[0].remedies[0].blocker == "x-sys"


def test_rule_files_with_libraries_still_parse_as_rules():
    assert parse_rules('[[libraries]]\ncrate = "x-sys"\n', "x.toml") == []


def test_stripped_sources_and_features_are_named(tmp_path):
    from codemod.catalog import stripped

    lib = next(lib for lib in CATALOG if lib.crate == "lzma-sys")
    assert lib.bundled_source == "xz-5.2"
    assert "no `static` feature" in stripped(lib, "0.1.20", {"default"}, None)
    (tmp_path / "xz-5.2").mkdir()
    assert stripped(lib, "0.1.20", {"static"}, tmp_path) == ""
    (tmp_path / "xz-5.2").rmdir()
    assert "has no xz-5.2/" in stripped(lib, "0.1.20", {"static"}, tmp_path)
    # Debian's libgit2-sys 0.14.1 drops `vendored` (disable-vendor.patch): features as its Cargo.toml lists them
    git = next(lib for lib in CATALOG if lib.crate == "libgit2-sys" and lib.covers("0.14.1+1.5.0"))
    assert git.bundled_source == "libgit2"
    assert "no `vendored` feature" in stripped(git, "0.14.1+1.5.0", {"https", "ssh", "ssh_key_from_memory"}, None)


def test_diesel_releases_read_pin_pq_sys_below_0_5():
    from codemod.semver import parse_req

    for line in FIXTURE["diesel"]:
        req = parse_req(line["deps"][0]["req"])
        assert not req.matches(parse_version("0.5.0")) and not req.matches(parse_version("0.6.0")), line["vers"]
    lib = next(lib for lib in CATALOG if lib.crate == "pq-sys" and lib.covers("0.4.8"))
    assert "diesel up to 2.1.6" in lib.unfixable


@pytest.mark.parametrize("lib", [lib for lib in CATALOG if any(m.implies for m in lib.remedies)], ids=entry_id)
def test_implied_features_are_what_the_index_says(lib):
    """`implies` is the closure of the added features' values in every recorded covered line that has them."""
    for line in _lines(lib):
        values = line.get("feature_values", {})
        for m in lib.remedies:
            if not m.implies or not set(m.add_features) <= _names(line):
                continue
            seen, todo = set(), list(m.add_features)
            while todo:
                f = todo.pop()
                for v in values.get(f, ()):
                    if "/" not in v and not v.startswith("dep:") and v not in seen:
                        seen.add(v)
                        todo.append(v)
            assert set(m.implies) <= seen, (line["vers"], m.implies, seen)
