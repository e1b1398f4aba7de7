"""Editing never damages a file: every spelling, the traps a re-serialising editor falls into, and
property-based checks over many layouts."""

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codemod.edit import Edit, EditError, apply_edits, verify

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
        '[dependencies]\nreqwest.version = "0.11"\nreqwest.features = ["json", "rustls-tls"]\nreqwest.default-features = false\nserde = "1"\n',
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
        if isinstance(entry, str):              # nothing to add or switch: a version string stays one
            assert not edit.add_features and edit.default_features is None
            entry = {"version": entry}
        assert set(edit.add_features) <= set(entry.get("features", []))
        assert not set(edit.remove_features) & set(entry.get("features", []))
        if edit.default_features is not None:
            assert entry.get("default-features", entry.get("default_features")) is edit.default_features
    # line endings and the final newline are kept
    assert ("\r\n" in out) == ("\r\n" in text)
    assert out.endswith(("\n", "\r")) == text.endswith(("\n", "\r"))
    # running the same edit again changes nothing
    assert apply_edits(out, [edit], F) == out if edit.add is None else True


# -- splicing: nothing outside the entry moves --------------------------------------------------

MINIMAL = '[[bin]]\nname = "a"\n\n[[test]]\nname = "t"\n\n[[bin]]\nname = "b"\n\n[dependencies]\nserde = "1"\n'
SERDE = Edit(F, "dependencies", "serde", ("derive",))


def only_between(old: str, new: str, start: int, end: int) -> bool:
    """new is old with old[start:end] replaced by something (an insertion when start == end)."""
    return new.startswith(old[:start]) and new.endswith(old[end:]) and len(new) >= start + len(old) - end


def test_split_array_of_tables_is_not_regrouped():
    out = apply_edits(MINIMAL, [SERDE], F)
    assert out == MINIMAL.replace('serde = "1"', 'serde = { version = "1", features = ["derive"] }')


# vector's manifest and friends: an array of tables interrupted by another header
SPLITS = {
    "bin/test/bin": ('[[bin]]\nname = "a"\n', '[[test]]\nname = "t"\n', '[[bin]]\nname = "b"\n'),
    "bin/bench/bin": ('[[bin]]\nname = "a"\n', '[[bench]]\nname = "x"\nharness = false\n', '[[bin]]\nname = "b"\n'),
    "example/bin/example": ('[[example]]\nname = "e"\n', '[[bin]]\nname = "b"\n', '[[example]]\nname = "f"\n'),
    "bin/features/bin": ('[[bin]]\nname = "a"\n', '[features]\ndefault = []\n', '[[bin]]\nname = "b"\n'),
    "bench/metadata/bench": ('[[bench]]\nname = "a"\n', '[package.metadata.x]\ny = 1\n', '[[bench]]\nname = "b"\n'),
}
EDIT_KINDS = {
    "feature": SERDE,
    "rustls": Edit(F, "dependencies", "serde", ("rustls",), ("native-tls",), False),
    "add": Edit(F, "dependencies", "openssl", add={"version": "0.10", "features": ["vendored"]}),
    "add musl table": Edit(F, 'target.cfg(target_env = "musl").dependencies', "openssl",
                           add={"version": "0.10", "features": ["vendored"]}),
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", EDIT_KINDS)
@pytest.mark.parametrize("deps_first", [False, True])
def test_split_arrays_keep_every_other_line(split, kind, deps_first):
    deps = '[dependencies]\nserde = "1"\n'
    blocks = ([deps] if deps_first else []) + list(SPLITS[split]) + ([] if deps_first else [deps])
    text = '[package]\nname = "p"\nversion = "0.1.0"\n\n' + "\n".join(blocks)
    edit = EDIT_KINDS[kind]
    out = apply_edits(text, [edit], F)
    if edit.add is None:
        s = text.index('serde = "1"')
        assert only_between(text, out, s, s + len('serde = "1"'))
    else:
        p = text.index('serde = "1"\n') + len('serde = "1"\n')
        if kind == "add musl table":
            p = len(text)
        assert only_between(text, out, p, p), out
    assert tomllib.loads(out) == tomllib.loads(apply_edits(out, [], F))


def test_quoted_target_table_among_split_target_tables():
    text = ("[target.'cfg(unix)'.dependencies]\nx = \"1\"\n\n[[bin]]\nname = \"a\"\n\n"
            "[target.'cfg(windows)'.dependencies]\ny = \"1\"\n# the features\n[features]\na = []\n")
    out = apply_edits(text, [EDIT_KINDS["add musl table"]], F)
    p = text.index('y = "1"\n') + len('y = "1"\n')
    assert out == text[:p] + ("\n[target.'cfg(target_env = \"musl\")'.dependencies]\n"
                              'openssl = { version = "0.10", features = ["vendored"] }\n\n') + text[p:]


@pytest.mark.parametrize("src, edit, expected", [
    ('[dependencies]\nr = {version="1",features=["a"]}\n', Edit(F, "dependencies", "r", ("b",), (), False),
     '[dependencies]\nr = {version="1",features=["a","b"],default-features=false}\n'),
    ('[dependencies]\nr = { version = "1", features = ["a",] }\n', Edit(F, "dependencies", "r", ("b",)),
     '[dependencies]\nr = { version = "1", features = ["a", "b",] }\n'),
    ("[dependencies]\nr = { version = '1', features = ['a'] }\n", Edit(F, "dependencies", "r", ("b",)),
     "[dependencies]\nr = { version = '1', features = ['a', 'b'] }\n"),
    ("[dependencies]\nr = '1' # pinned\n", Edit(F, "dependencies", "r", ("b",)),
     "[dependencies]\nr = { version = '1', features = [\"b\"] } # pinned\n"),
    ('[dependencies]\nr = { version = "1", features = [\n  "a",\n  "b"\n] }\n', Edit(F, "dependencies", "r", ("c",), ("a",)),
     '[dependencies]\nr = { version = "1", features = [\n  "b",\n  "c"\n] }\n'),
    ('[dependencies.r]\nversion = "1"\n# about r\n\n[dev-dependencies]\n', Edit(F, "dependencies", "r", ("c",), (), False),
     '[dependencies.r]\nversion = "1"\nfeatures = ["c"]\ndefault-features = false\n# about r\n\n[dev-dependencies]\n'),
    ('[dependencies]\nr.version = "1"\ns = "1"\nr.features = ["a"]\nt = "1"\n', Edit(F, "dependencies", "r", (), ("a",), False),
     '[dependencies]\nr.version = "1"\ns = "1"\nr.default-features = false\nt = "1"\n'),
    ('dependencies.r = "1"\n', Edit(F, "dependencies", "r", ("a",)),
     'dependencies.r = { version = "1", features = ["a"] }\n'),
    ('[dependencies]\nserde = "1"\n\n\n# dev\n[dev-dependencies]\n', EDIT_KINDS["add"],
     '[dependencies]\nserde = "1"\nopenssl = { version = "0.10", features = ["vendored"] }\n\n\n# dev\n[dev-dependencies]\n'),
    ('[dependencies]\n', EDIT_KINDS["add"],
     '[dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n'),
    ('[package]\nname = "x"', EDIT_KINDS["add"],
     '[package]\nname = "x"\n\n[dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }'),
    ('\ufeff[dependencies]\r\nserde = "1"\r\n[x]\r\ny = 1', SERDE,
     '\ufeff[dependencies]\r\nserde = { version = "1", features = ["derive"] }\r\n[x]\r\ny = 1'),
    ('\ufeff[package]\r\nname = "x"\r\n', EDIT_KINDS["add musl table"],
     '\ufeff[package]\r\nname = "x"\r\n\r\n[target.\'cfg(target_env = "musl")\'.dependencies]\r\n'
     'openssl = { version = "0.10", features = ["vendored"] }\r\n'),
])
def test_layouts_are_kept(src, edit, expected):
    assert apply_edits(src, [edit], F) == expected


def test_duplicate_lines_elsewhere_do_not_confuse_the_check():
    arr = 'features = [\n    "json",\n    "gzip",\n]\n'
    text = f'[dependencies.a]\nversion = "1"\n{arr}\n[dependencies.reqwest]\nversion = "0.11"\n{arr}\n[dependencies.b]\nversion = "1"\n{arr}'
    out = apply_edits(text, [Edit(F, "dependencies", "reqwest", ("rustls-tls",), ("json",), False)], F)
    assert out.count(arr) == 2 and tomllib.loads(out)["dependencies"]["reqwest"]["features"] == ["gzip", "rustls-tls"]


def test_verify_refuses_an_insertion_away_from_the_planned_point():
    old = '[package]\nname = "x"\n\n[dependencies]\nserde = "1"\n'
    edit = EDIT_KINDS["add"]
    good = old + 'openssl = { version = "0.10", features = ["vendored"] }\n'
    verify(old, good, [edit], F)
    moved = old.replace("[dependencies]\n", '[dependencies]\nopenssl = { version = "0.10", features = ["vendored"] }\n')
    with pytest.raises(EditError, match="outside the edited entries"):
        verify(old, moved, [edit], F)


def test_verify_refuses_mixed_line_endings():
    old = '[dependencies]\r\nserde = "1"\r\n'
    with pytest.raises(EditError, match="line endings"):
        verify(old, old + 'openssl = { version = "0.10", features = ["vendored"] }\n', [EDIT_KINDS["add"]], F)


# -- property-based: split tables, every spelling, every edit kind -------------------------------

def _entry_styles(draw, feats, df, comment):
    arr = "[" + ", ".join(f'"{f}"' for f in feats) + "]"
    extra = "" if df is None else f", default-features = {str(df).lower()}"
    style = draw(st.sampled_from(["string", "inline", "unspaced", "multiline", "multiline-no-trailing",
                                  "dotted", "dotted-split", "table"]))
    if style == "string" or (style in ("inline", "unspaced") and not feats and df is None):
        return [f'reqwest = "0.11"{comment}\n'], None
    if style == "inline":
        return [f'reqwest = {{ version = "0.11", features = {arr}{extra} }}{comment}\n'], None
    if style == "unspaced":
        return ['reqwest = {version="0.11",features=[' + ",".join(f'"{f}"' for f in feats) + "]"
                + ("" if df is None else f",default-features={str(df).lower()}") + "}" + comment + "\n"], None
    if style.startswith("multiline"):
        trailing = style == "multiline"
        body = ",\n".join(f'    "{f}" # {f}' if i == 0 else f'    "{f}"' for i, f in enumerate(feats))
        body = body.replace(' # ' + feats[0], ', # ' + feats[0], 1).replace(',,', ',') if feats else ""
        if feats and trailing:
            body += ","
        return [f'reqwest = {{ version = "0.11", features = [\n{body}\n]{extra} }}{comment}\n'], None
    df_line = "" if df is None else f"reqwest.default-features = {str(df).lower()}\n"
    if style == "dotted":
        return [f'reqwest.version = "0.11"{comment}\nreqwest.features = {arr}\n{df_line}'], None
    if style == "dotted-split":
        return [f'reqwest.version = "0.11"{comment}\n', f"reqwest.features = {arr}\n{df_line}"], None
    df_line = "" if df is None else f"default-features = {str(df).lower()}\n"
    return None, f'version = "0.11"{comment}\nfeatures = {arr}\n{df_line}'


@st.composite
def split_manifests(draw):
    """A manifest as a list of (text, tag) chunks: `entry` chunks hold reqwest's entry; `dep-end`
    and `target-end` mark where a new dependency or a new target table belongs."""
    feats = draw(features)
    df = draw(st.sampled_from([None, True, False]))
    comment = draw(st.sampled_from(["", "  # keep", " #c"]))
    others = draw(st.lists(names.filter(lambda n: n != "reqwest"), unique=True, max_size=3))
    inline_entry, table_body = _entry_styles(draw, feats, df, comment)
    chunks: list[tuple[str, str]] = []
    if draw(st.booleans()):
        chunks.append(("# a manifest\n", ""))
    chunks.append(('[package]\nname = "app"\nversion = "0.1.0"\n', ""))
    split = draw(st.sampled_from(list(SPLITS)))
    a, interrupt, b = SPLITS[split]
    deps = [("\n# deps\n[dependencies]\n", "")]
    items = [(f'{n} = "1" # {n}\n' if draw(st.booleans()) else f'{n} = "1"\n', "") for n in others]
    if inline_entry:
        at = draw(st.integers(0, len(items)))
        pieces = [(c, "entry") for c in inline_entry]
        if len(pieces) == 2:
            items = items[:at] + [pieces[0], ('middle = "1"\n', "")] + items[at:] + [pieces[1]]
        else:
            items[at:at] = pieces
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), ("# between\n", ""))
    if not items or items[-1][0].startswith("#"):
        items.append(('last = "1"\n', ""))
    deps += items + [("", "dep-end")]
    targets_a = [("\n# unix only\n[target.'cfg(unix)'.dependencies]\n", ""), ('libc = "0.2"\n', "libc")]
    targets_b = [("\n[target.\"cfg(windows)\".dependencies]\n", ""), ('winapi = "0.3"\n', "")]
    order = draw(st.permutations(["deps", "a", "interrupt", "b", "ta", "tb"]))
    for part in order:
        if part == "deps":
            chunks += deps
        elif part == "ta":
            chunks += targets_a + [("", "target-end")]
        elif part == "tb":
            chunks += targets_b + [("", "target-end")]
        else:
            chunks.append(("\n" + {"a": a, "interrupt": interrupt, "b": b}[part], ""))
    if table_body:
        chunks += [("\n[dependencies.reqwest]\n", ""), (table_body, "entry")]
    chunks.append(("\n[dev-dependencies]\nz = \"1\" # dev\n", ""))
    crlf, bom, no_final = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    if crlf:
        chunks = [(c.replace("\n", "\r\n"), tag) for c, tag in chunks]
    if bom:
        chunks.insert(0, ("\ufeff", ""))
    if no_final:
        k = max(i for i, (c, _) in enumerate(chunks) if c)
        chunks[k] = (chunks[k][0].rstrip("\r\n"), chunks[k][1])
    return chunks


split_edits = st.sampled_from([
    Edit(F, "dependencies", "reqwest", ("native-tls-vendored",)),
    Edit(F, "dependencies", "reqwest", ("rustls-tls", "gzip"), ("native-tls", "json"), False),
    Edit(F, "dependencies", "reqwest", (), ("json",), None),
    Edit(F, "dependencies", "reqwest", (), (), True),
    Edit(F, "dependencies", "openssl", add={"version": "0.10.56", "features": ["vendored"]}),
    Edit(F, 'target.cfg(target_env = "musl").dependencies', "openssl", add={"version": "0.10.56", "features": ["vendored"]}),
    Edit(F, "target.cfg(unix).dependencies", "openssl", add={"version": "0.10.56"}),
    Edit(F, "target.cfg(unix).dependencies", "libc", ("extra_traits",), (), False),
])


def _pattern(chunks, edit) -> str:
    """The result as a regular expression: every chunk but the edited ones literally, the
    edited entry's chunks (or the planned insertion point) free."""
    import re

    target = "libc" if edit.dependency == "libc" else "entry"
    if edit.add is not None:
        target = {"dependencies": "dep-end", "target.cfg(unix).dependencies": "unix-end"}.get(edit.table, "musl")
    out, marks = [], [i for i, (_, tag) in enumerate(chunks) if tag == "target-end"]
    for i, (c, tag) in enumerate(chunks):
        if target == "unix-end" and tag == "target-end" and chunks[i - 1][1] == "libc":
            out.append("(.*?)")
        elif target == "musl" and marks and i == marks[-1]:
            out.append("(.*?)")
        elif tag == target and target in ("entry", "dep-end", "libc"):
            out.append("(.*?)")
            if tag in ("entry", "libc") and c.endswith("\n"):
                out.append(re.escape("\r\n" if c.endswith("\r\n") else "\n"))
            continue
        out.append(re.escape(c))
    if target == "musl" and not marks:
        out.append("(.*)")
    return "".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_manifests(), split_edits)
def test_split_properties(chunks, edit):
    import re

    text = "".join(c for c, _ in chunks)
    before = tomllib.loads(text.lstrip("\ufeff"))
    out = apply_edits(text, [edit], F)
    # 1. as data: the original plus exactly the edit
    from codemod.edit import _semantic

    assert tomllib.loads(out.lstrip("\ufeff")) == _semantic(before, [edit])
    # 2. as text: every chunk outside the entry (or the insertion point) byte for byte, in order
    assert re.fullmatch(_pattern(chunks, edit), out, flags=re.DOTALL), (text, out)
    assert out.startswith("\ufeff") == text.startswith("\ufeff")
    if "\r\n" in text:
        assert "\n" not in out.replace("\r\n", "")
    assert out.endswith("\n") == text.endswith("\n") or not text.strip()
    if edit.add is None:
        assert apply_edits(out, [edit], F) == out
