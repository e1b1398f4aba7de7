"""Reading manifests: every table, every spelling, inheritance, members and path dependencies."""


import pytest

from codemod.errors import ManifestError
from codemod.manifest import load_manifest, manifest_deps
from codemod.workspace import load_workspace
from fixture_registry import write_project as write


ALL_FORMS = '''[package]
name = "app"
version = "0.1.0"
edition = "2021"

[dependencies]
plain = "1.0"
inline = { version = "0.2", default-features = false, features = ["a", "b"], optional = true }
renamed = { package = "native-tls", version = "0.2" }
underscored = { version = "1", default_features = false }
dotted.version = "3"
dotted.features = ["x"]

[dependencies.tabled]
version = "0.4"
features = ["y"]

[dev-dependencies]
devdep = "1"

[dev_dependencies]
devdep2 = "1"

[build-dependencies]
builddep = "1"

[build_dependencies]
builddep2 = "1"

[target.'cfg(unix)'.dependencies]
unixdep = "1"

[target.x86_64-pc-windows-msvc.build-dependencies]
windep = "1"

[features]
default = ["inline"]
'''


def test_every_table_and_spelling(tmp_path):
    write(tmp_path, {"Cargo.toml": ALL_FORMS})
    deps = {d.name: d for d in manifest_deps(load_manifest(tmp_path))}
    assert deps["plain"].req == "1.0" and deps["plain"].default_features and deps["plain"].table == ("dependencies",)
    inline = deps["inline"]
    assert (inline.req, inline.default_features, inline.features, inline.optional) == ("0.2", False, ("a", "b"), True)
    assert (deps["renamed"].package, deps["renamed"].name) == ("native-tls", "renamed")
    assert deps["underscored"].default_features is False
    assert deps["dotted"].req == "3" and deps["dotted"].features == ("x",)
    assert deps["tabled"].req == "0.4" and deps["tabled"].features == ("y",)
    assert {deps["devdep"].kind, deps["devdep2"].kind} == {"dev"}
    assert {deps["builddep"].kind, deps["builddep2"].kind} == {"build"}
    assert deps["unixdep"].target == "cfg(unix)" and deps["unixdep"].table == ("target", "cfg(unix)", "dependencies")
    assert deps["windep"].target == "x86_64-pc-windows-msvc" and deps["windep"].kind == "build"


def test_workspace_members_inheritance_and_path_deps(tmp_path):
    write(tmp_path, {
        "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nexclude = ["crates/skip"]\n\n'
                      '[workspace.dependencies]\nreqwest = { version = "0.11", default-features = false, features = ["json"] }\n'
                      'openssl = "0.10"\n',
        "crates/a/Cargo.toml": '[package]\nname = "a"\nversion = "0.1.0"\n\n[dependencies]\n'
                               'reqwest = { workspace = true, features = ["blocking"], optional = true }\n'
                               'openssl = { workspace = true, default-features = false }\n'
                               'util = { path = "../../util" }\n'
                               'gitdep = { git = "https://example.com/x.git" }\n',
        "crates/skip/Cargo.toml": '[package]\nname = "skip"\nversion = "0.1.0"\n',
        "util/Cargo.toml": '[package]\nname = "util"\nversion = "0.2.0"\n\n[dependencies]\nlibc = "0.2"\n\n[dev-dependencies]\nnot-counted = "1"\n',
    })
    ws = load_workspace(tmp_path)
    assert ws.resolver == "1"                       # virtual workspace without `resolver`
    names = sorted(ws.packages[d].name for d in ws.members)
    assert names == ["a", "util"]                   # util: a path dependency inside the workspace
    assert sorted(p.name for p in ws.selected_ids()) == ["a", "util"]
    a = {d.name: d for d in ws.packages[tmp_path / "crates/a"].deps}
    assert a["reqwest"].req == "0.11" and a["reqwest"].features == ("json", "blocking")
    assert a["reqwest"].default_features is False and a["reqwest"].optional and a["reqwest"].inherited
    assert a["openssl"].default_features is True    # a member cannot turn off defaults the root keeps
    assert a["util"].source == "path" and a["util"].package == "util"
    assert "gitdep" not in a
    assert [(u.package, u.dependency) for u in ws.unanalysable] == [("a", "gitdep")]


def test_member_manifest_selects_itself_and_finds_root(tmp_path):
    write(tmp_path, {
        "Cargo.toml": '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n',
        "a/Cargo.toml": '[package]\nname = "a"\nversion = "0.1.0"\n',
        "b/Cargo.toml": '[package]\nname = "b"\nversion = "0.1.0"\nedition = "2024"\n',
    })
    ws = load_workspace(tmp_path / "a")
    assert ws.root.path == (tmp_path / "Cargo.toml").resolve()
    assert [p.name for p in ws.selected_ids()] == ["a"]
    assert [p.name for p in load_workspace(tmp_path / "a", workspace=True).selected_ids()] == ["a", "b"]
    assert [p.name for p in load_workspace(tmp_path, packages=("b",)).selected_ids()] == ["b"]
    with pytest.raises(ManifestError, match="not a member"):
        load_workspace(tmp_path, packages=("c",))


@pytest.mark.parametrize("edition,resolver", [("2015", "1"), ("2018", "1"), ("2021", "2"), ("2024", "3")])
def test_resolver_from_edition(tmp_path, edition, resolver):
    write(tmp_path, {"Cargo.toml": f'[package]\nname = "x"\nversion = "0.1.0"\nedition = "{edition}"\n'})
    assert load_workspace(tmp_path).resolver == resolver


def test_invalid_toml_names_line_and_column(tmp_path):
    write(tmp_path, {"Cargo.toml": '[package]\nname = "x"\nversion = \n'})
    with pytest.raises(ManifestError, match=r"Cargo.toml: invalid TOML: .*line 3, column 11"):
        load_manifest(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="no such file"):
        load_manifest(tmp_path / "nope")
