"""Editing never damages a file: every spelling, the known tomlkit traps, atomic writes, and
property-based checks over many layouts."""

import os
import stat
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codemod.edit import Edit, EditError, apply_edits, verify, write_atomic

F = "Cargo.toml"


def vendored(dep="reqwest", table="dependencies"):
    return Edit(F, table, dep, ("native-tls-vendored",))


def rustls(dep="reqwest", table="dependencies"):
    return Edit(F, table, dep, ("rustls-tls",), ("native-tls",), False)


# (input, edits, expected) pairs that read like a specification
CASES = {
    "string becomes inline table": (
        '[dependencies]\nreqwest = "0.11"\n',
        [vendored()],
        '[dependencies]\nreqwest = { version = "0.11", features = ["native-tls-vendored"] }\n',
    ),
    "string keeps its comment": (
        '[dependencies]\nreqwest = "0.11" # http\nserde = "1"\n',
        [rustls()],
        '[dependencies]\nreqwest = { version = "0.11", features = ["rustls-tls"], default-features = false } # http\nserde = "1"\n',
    ),
    "inline table keeps order and other keys": (
        '[dependencies]\nreqwest = { version = "0.11", features = ["json", "native-tls"], optional = true }\n',
        [rustls()],
        '[dependencies]\nreqwest = { version = "0.11", features = ["json", "rustls-tls"], optional = true, default-features = false }\n',
    ),
    "compact inline table stays compact": (
        '[dependencies]\nreqwest = {version = "0.11"}\n',
        [vendored()],
        '[dependencies]\nreqwest = {version = "0.11", features = ["native-tls-vendored"]}\n',
    ),
    "existing default_features spelling is kept": (
        '[dependencies]\nreqwest = { version = "0.11", default_features = true }\n',
        [rustls()],
        '[dependencies]\nreqwest = { version = "0.11", default_features = false, features = ["rustls-tls"] }\n',
    ),
    "dependencies.x table": (
        '[dependencies.reqwest]\nversion = "0.11" # pinned\nfeatures = ["json"]\n\n[dev-dependencies]\nx = "1"\n',
        [rustls()],
        '[dependencies.reqwest]\nversion = "0.11" # pinned\nfeatures = ["json", "rustls-tls"]\ndefault-features = false\n\n[dev-dependencies]\nx = "1"\n',
    ),
    "dotted keys followed by other keys (tomlkit#556)": (
        '[dependencies]\nreqwest.version = "0.11"\nreqwest.features = ["json"]\nserde = "1"\n',
        [rustls()],
        '[dependencies]\nreqwest.version = "0.11"\nreqwest.default-features = false\nreqwest.features = ["json", "rustls-tls"]\nserde = "1"\n',
    ),
    "multi-line array with comments inside an inline table (tomlkit#512)": (
        '[dependencies]\nreqwest = { version = "0.11", features = [\n    "json", # for the API\n    "native-tls",\n] }\n',
        [rustls()],
        '[dependencies]\nreqwest = { version = "0.11", features = [\n    "json", # for the API\n    "rustls-tls",\n], default-features = false }\n',
    ),
    "CRLF line endings (tomlkit#200, #593)": (
        '[package]\r\nname = "x"\r\n\r\n[dependencies]\r\nreqwest = "0.11"\r\nserde = "1"\r\n',
        [vendored()],
        '[package]\r\nname = "x"\r\n\r\n[dependencies]\r\nreqwest = { version = "0.11", features = ["native-tls-vendored"] }\r\nserde = "1"\r\n',
    ),
    "no final newline stays without one": (
        '[dependencies]\nreqwest = "0.11"',
        [vendored()],
        '[dependencies]\nreqwest = { version = "0.11", features = ["native-tls-vendored"] }',
    ),
    "table with comments is edited in place, not replaced (tomlkit#392)": (
        '# top\n[dependencies]\n# the client\nreqwest = "0.11"  # inline\n# after\nserde = "1"\n',
        [vendored()],
        '# top\n[dependencies]\n# the client\nreqwest = { version = "0.11", features = ["native-tls-vendored"] }  # inline\n# after\nserde = "1"\n',
    ),
    "target table": (
        "[target.'cfg(unix)'.dependencies]\nreqwest = \"0.11\"\n",
        [vendored(table="target.cfg(unix).dependencies")],
        "[target.'cfg(unix)'.dependencies]\nreqwest = { version = \"0.11\", features = [\"native-tls-vendored\"] }\n",
    ),
    "renamed dependency is edited under its key": (
        '[dependencies]\nhttp = { package = "reqwest", version = "0.11" }\n',
        [vendored("http")],
        '[dependencies]\nhttp = { package = "reqwest", version = "0.11", features = ["native-tls-vendored"] }\n',
    ),
    "workspace root entry": (
        '[workspace]\nmembers = ["a"]\n\n[workspace.dependencies]\nreqwest = { version = "0.11", features = ["native-tls"] }\n',
        [Edit(F, "workspace.dependencies", "reqwest", (), ("native-tls",), False)],
        '[workspace]\nmembers = ["a"]\n\n[workspace.dependencies]\nreqwest = { version = "0.11", default-features = false }\n',
    ),
    "new dependency appended to its table": (
        '[dependencies]\nreqwest = "0.11"\n\n[dev-dependencies]\nx = "1"\n',
        [Edit(F, "dependencies", "openssl", add={"version": "0.10.56", "features": ["vendored"]})],
        '[dependencies]\nreqwest = "0.11"\nopenssl = { version = "0.10.56", features = ["vendored"] }\n\n[dev-dependencies]\nx = "1"\n',
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_edit_cases(name):
    src, edits, expected = CASES[name]
    out = apply_edits(src, edits, F)
    assert out == expected
    assert apply_edits(out, [], F) == out


def test_feature_already_present_is_not_duplicated():
    src = '[dependencies]\nreqwest = { version = "0.11", features = ["native-tls-vendored"] }\n'
    assert apply_edits(src, [vendored()], F) == src


def test_missing_entry_is_an_error_not_a_silent_addition():
    with pytest.raises(EditError, match="has no `reqwest`"):
        apply_edits('[dependencies]\nserde = "1"\n', [vendored()], F)


def test_verify_refuses_changes_outside_the_entries():
    old = '[package]\nname = "x"\n\n[dependencies]\nreqwest = "0.11"\n'
    sneaky = old.replace('name = "x"', 'name = "y"').replace('"0.11"', '{ version = "0.11", features = ["native-tls-vendored"] }')
    with pytest.raises(EditError, match="changed more than intended"):
        verify(old, sneaky, [vendored()], F)
    reformatted = old.replace('name = "x"', 'name="x"').replace('"0.11"', '{ version = "0.11", features = ["native-tls-vendored"] }')
    with pytest.raises(EditError, match="outside the edited entries"):
        verify(old, reformatted, [vendored()], F)


def test_write_atomic_keeps_mode_and_leaves_no_temp_file(tmp_path):
    p = tmp_path / "Cargo.toml"
    p.write_text("a = 1\n")
    os.chmod(p, 0o640)
    write_atomic(p, "a = 2\n")
    assert p.read_text() == "a = 2\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert [x.name for x in tmp_path.iterdir()] == ["Cargo.toml"]


# -- property-based: many layouts, the same invariants -------------------------------------------

names = st.sampled_from(["reqwest", "serde", "tokio", "git2", "my-dep", "x_y"])
features = st.lists(st.sampled_from(["json", "blocking", "native-tls", "gzip", "rustls-tls"]), unique=True, max_size=4)


@st.composite
def manifests(draw):
    """A manifest with reqwest written in one of cargo's spellings among other entries, with
    comments, blank lines and either line ending."""
    others = draw(st.lists(names.filter(lambda n: n != "reqwest"), unique=True, max_size=3))
    feats = draw(features)
    style = draw(st.sampled_from(["string", "inline", "inline-compact", "table", "dotted", "multiline"]))
    comment = draw(st.sampled_from(["", "  # keep", " #c"]))
    df = draw(st.sampled_from([None, True, False]))
    arr = "[" + ", ".join(f'"{f}"' for f in feats) + "]"
    extra = "" if df is None else f', default-features = {str(df).lower()}'
    if style == "string" or (style in ("inline", "inline-compact") and not feats and df is None):
        entry = f'reqwest = "0.11"{comment}\n'
    elif style == "inline":
        entry = f'reqwest = {{ version = "0.11", features = {arr}{extra} }}{comment}\n'
    elif style == "inline-compact":
        entry = f'reqwest = {{version = "0.11", features = {arr}{extra}}}{comment}\n'
    elif style == "multiline":
        body = "".join(f'    "{f}",\n' for f in feats)
        entry = f'reqwest = {{ version = "0.11", features = [\n{body}]{extra} }}{comment}\n'
    elif style == "dotted":
        entry = f'reqwest.version = "0.11"{comment}\nreqwest.features = {arr}\n'
    else:
        entry = None
    lines = ['[package]\nname = "app"\nversion = "0.1.0"\n', "\n# deps\n[dependencies]\n"]
    before = draw(st.integers(0, len(others)))
    deps = [f'{n} = "1"\n' for n in others]
    if entry is not None:
        deps.insert(before, entry)
    lines.extend(deps)
    if entry is None:
        df_line = "" if df is None else f"default-features = {str(df).lower()}\n"
        lines.append(f'\n[dependencies.reqwest]\nversion = "0.11"{comment}\nfeatures = {arr}\n{df_line}')
    lines.append('\n[dev-dependencies]\nz = "1"\n')
    text = "".join(lines)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text


edit_choices = st.sampled_from([
    Edit(F, "dependencies", "reqwest", ("native-tls-vendored",)),
    Edit(F, "dependencies", "reqwest", ("rustls-tls", "gzip"), ("native-tls", "json"), False),
    Edit(F, "dependencies", "reqwest", (), ("json",), None),
    Edit(F, "dependencies", "openssl", add={"version": "0.10.56", "features": ["vendored"]}),
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), edit_choices)
def test_properties(text, edit):
    out = apply_edits(text, [edit], F)          # raises unless only the intended change landed
    after = tomllib.loads(out)
    before = tomllib.loads(text)
    # untouched tables are identical as data
    assert after["package"] == before["package"] and after["dev-dependencies"] == before["dev-dependencies"]
    if edit.add is None:
        entry = after["dependencies"]["reqwest"]
        assert set(edit.add_features) <= set(entry.get("features", []))
        assert not set(edit.remove_features) & set(entry.get("features", []))
        if edit.default_features is not None:
            assert entry.get("default-features", entry.get("default_features")) is edit.default_features
    # line endings and the final newline are kept
    assert ("\r\n" in out) == ("\r\n" in text)
    assert out.endswith(("\n", "\r")) == text.endswith(("\n", "\r"))
    # running the same edit again changes nothing
    assert apply_edits(out, [edit], F) == out if edit.add is None else True
