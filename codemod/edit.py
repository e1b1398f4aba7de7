"""Apply dependency edits by splicing new text into the original, then prove only the intended
change landed.

A small scanner of TOML statements finds where each entry is written (its key lines and
continuation lines, or its whole `[dependencies.x]` table) and where a new entry or table goes.
Only the edited entry is rendered again; every byte outside its span is copied from the original
text, so comments, layout, CRLF, a BOM and a missing final newline survive by construction.

The check after an edit does not trust the code that made it: the result is parsed with tomllib
and compared, as data, with the original plus the intended edits; and the original text, cut at
the spans the scanner finds in it, must reappear piece by piece, in order, in the result, with
new text only inside those spans or at the planned insertion points. Anything else is an internal
error and nothing is written (Renovate's auto-replace check).
"""

from __future__ import annotations

import copy
import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace

from .errors import CodemodError


class EditError(CodemodError):
    pass


DEP_KINDS = ("dependencies", "dev-dependencies", "build-dependencies",
             "dev_dependencies", "build_dependencies")
ADD_KEYS = ("workspace", "version", "package", "registry", "default-features", "features", "optional")
_EDIT_KEYS = {"file", "table", "dependency", "add_features", "remove_features", "default_features"}


@dataclass(frozen=True)
class Edit:
    """One change to one dependency entry of one manifest."""

    file: str                                  # the manifest it changes
    table: str                                 # dependencies | dev-dependencies | build-dependencies | workspace.dependencies | target.<cfg>.dependencies
    dependency: str                            # the key as written
    add_features: tuple[str, ...] = ()
    remove_features: tuple[str, ...] = ()
    default_features: bool | None = None       # None: leave as is
    add: dict | None = field(default=None, compare=False)   # a new entry: {"version" | "workspace", "package"?, "default-features"?, "features"?}

    def as_json(self) -> dict:
        if self.add is not None:
            return {"file": self.file, "table": self.table, "dependency": self.dependency, "add": dict(self.add)}
        return {"file": self.file, "table": self.table, "dependency": self.dependency,
                "add_features": list(self.add_features), "remove_features": list(self.remove_features),
                "default_features": self.default_features}

    @classmethod
    def from_json(cls, obj: object) -> Edit:
        """An edit from a plan document, validated against the documented schema."""
        if not isinstance(obj, dict):
            raise EditError(f"an edit must be an object, not {_kind(obj)}")
        for key in ("file", "table", "dependency"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise EditError(f"an edit needs `{key}` as a non-empty string")
        if not is_dependency_table(obj["table"]):
            raise EditError(f"`table` must be a dependency table (dependencies, dev-dependencies, build-dependencies, "
                            f"workspace.dependencies or target.<cfg>.<one of those>), not `{obj['table']}`")
        if "add" in obj:
            extra = set(obj) - {"file", "table", "dependency", "add"}
            if extra:
                raise EditError(f"an `add` edit has unknown key `{sorted(extra)[0]}`")
            add = obj["add"]
            if not isinstance(add, dict):
                raise EditError(f"`add` must be an object, not {_kind(add)}")
            unknown = set(add) - set(ADD_KEYS)
            if unknown:
                raise EditError(f"an `add` edit has unknown key `{sorted(unknown)[0]}`")
            if not isinstance(add.get("version"), str) and add.get("workspace") is not True:
                raise EditError("an `add` edit needs a version string (or `workspace = true`)")
            if "workspace" in add and add["workspace"] is not True:
                raise EditError("`add.workspace` must be true")
            if "package" in add and not isinstance(add["package"], str):
                raise EditError("`add.package` must be a string")
            if "default-features" in add and not isinstance(add["default-features"], bool):
                raise EditError("`add.default-features` must be true or false")
            if "features" in add:
                _strings(add["features"], "add.features")
            return cls(obj["file"], obj["table"], obj["dependency"], add=dict(add))
        extra = set(obj) - _EDIT_KEYS
        if extra:
            raise EditError(f"an edit has unknown key `{sorted(extra)[0]}`")
        df = obj.get("default_features")
        if df is not None and not isinstance(df, bool):
            raise EditError("`default_features` must be true, false or null")
        return cls(obj["file"], obj["table"], obj["dependency"],
                   _strings(obj.get("add_features", []), "add_features"),
                   _strings(obj.get("remove_features", []), "remove_features"), df)


def _kind(v: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number")


def _strings(v: object, name: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise EditError(f"`{name}` must be a list of strings, not {_kind(v) if not isinstance(v, list) else 'a list with other values'}")
    return tuple(v)


def is_dependency_table(name: str) -> bool:
    if name in DEP_KINDS or name == "workspace.dependencies":
        return True
    path = table_path(name)
    return len(path) == 3 and path[0] == "target" and bool(path[1]) and path[2] in DEP_KINDS


def _add_entry(add: dict) -> dict:
    """The keys of a new entry in cargo's usual order."""
    return {k: add[k] for k in ADD_KEYS if k in add and add[k] not in (None, [])}


def table_name(table: tuple[str, ...]) -> str:
    """("target", "cfg(unix)", "dependencies") -> "target.cfg(unix).dependencies"."""
    return ".".join(table)


def table_path(name: str) -> tuple[str, ...]:
    if name.startswith("target."):
        rest = name[len("target."):]
        platform, _, kind = rest.rpartition(".")
        return ("target", platform, kind)
    return tuple(name.split("."))


# -- the semantic model of an edit (what tomllib must see afterwards) ---------------------------


def _noop_on_string(e: Edit) -> bool:
    return not e.add_features and e.default_features is None


def _semantic(data: dict, edits: list[Edit]) -> dict:
    data = copy.deepcopy(data)
    for e in edits:
        container = data
        for part in table_path(e.table):
            container = container.setdefault(part, {})
        if e.add is not None:
            container[e.dependency] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in _add_entry(e.add).items()}
            continue
        entry = container[e.dependency]
        if isinstance(entry, str):
            if _noop_on_string(e):
                continue
            entry = {"version": entry}
        removed = [f for f in entry.get("features", []) if f in e.remove_features]
        feats = [f for f in entry.get("features", []) if f not in e.remove_features]
        feats += [f for f in e.add_features if f not in feats]
        if feats or "features" in entry and not removed:
            entry["features"] = feats
        else:
            entry.pop("features", None)
        if e.default_features is not None:
            key = "default_features" if "default_features" in entry and "default-features" not in entry else "default-features"
            entry[key] = e.default_features
        container[e.dependency] = entry
    return data


# -- the statement scanner ----------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_WS = " \t"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r" \d{2}:\d{2}")


@dataclass(frozen=True)
class Stmt:
    """One line-level statement of a TOML document. `start`/`end` cover its whole text
    including continuation lines; `end` is after the newline (or at the end of the text)."""

    kind: str                     # header | array-header | kv | comment | blank
    start: int
    end: int
    table: tuple[str, ...]        # the table it belongs to (a header: the table it opens)
    key: tuple[str, ...] = ()     # kv: the key as written (dotted parts)
    key_start: int = 0
    key_parts: tuple[int, ...] = ()   # kv: where each dotted part begins
    key_end: int = 0
    value_start: int = 0
    value_end: int = 0

    @property
    def path(self) -> tuple[str, ...]:
        return self.table + self.key


class _Scanner:
    def __init__(self, text: str):
        self.t = text
        self.n = len(text)

    def err(self, i: int, what: str):
        line = self.t.count("\n", 0, i) + 1
        raise EditError(f"cannot read line {line}: {what}")

    def ws(self, i: int) -> int:
        while i < self.n and self.t[i] in _WS:
            i += 1
        return i

    def ws_nl(self, i: int) -> int:
        """Whitespace, newlines and comments (inside arrays)."""
        while i < self.n:
            c = self.t[i]
            if c in " \t\r\n":
                i += 1
            elif c == "#":
                while i < self.n and self.t[i] != "\n":
                    i += 1
            else:
                break
        return i

    def string(self, i: int) -> int:
        t = self.t
        if t.startswith('"""', i) or t.startswith("'''", i):
            q = t[i:i + 3]
            j = i + 3
            while j < self.n:
                if q == '"""' and t[j] == "\\":
                    j += 2
                    continue
                if t.startswith(q, j):
                    end = j + 3
                    while end < self.n and t[end] == q[0] and end - j < 5:
                        end += 1
                    return end
                j += 1
            self.err(i, "unterminated string")
        q = t[i]
        j = i + 1
        while j < self.n and t[j] != q:
            if t[j] == "\n":
                self.err(i, "unterminated string")
            j += 2 if q == '"' and t[j] == "\\" else 1
        if j >= self.n:
            self.err(i, "unterminated string")
        return j + 1

    def key(self, i: int) -> tuple[list[str], list[int], int]:
        """A dotted key: its parts, where each part starts, and where the key ends."""
        parts, starts = [], []
        while True:
            i = self.ws(i)
            starts.append(i)
            if i < self.n and self.t[i] in "\"'":
                j = self.string(i)
                raw = self.t[i:j]
                parts.append(raw[1:-1] if raw[0] == "'" else tomllib.loads(f"k = {raw}")["k"])
            else:
                m = _BARE.match(self.t, i)
                if not m:
                    self.err(i, "expected a key")
                j = m.end()
                parts.append(m.group())
            end = j
            j = self.ws(j)
            if j < self.n and self.t[j] == ".":
                i = j + 1
                continue
            return parts, starts, end

    def value(self, i: int) -> int:
        t = self.t
        if i >= self.n:
            self.err(i, "expected a value")
        c = t[i]
        if c in "\"'":
            return self.string(i)
        if c == "[":
            return self.array(i)[1]
        if c == "{":
            return self.inline(i)[1]
        j = i
        while j < self.n and t[j] not in " \t\r\n,]}#":
            j += 1
        if _DATE.fullmatch(t, i, j) and _TIME.match(t, j):        # `1979-05-27 07:32:00`
            j += 1
            while j < self.n and t[j] not in " \t\r\n,]}#":
                j += 1
        if j == i:
            self.err(i, "expected a value")
        return j

    def array(self, i: int) -> tuple[list[tuple[int, int]], int]:
        """The elements' spans and the end of the array (after `]`)."""
        elems = []
        j = i + 1
        while True:
            j = self.ws_nl(j)
            if j < self.n and self.t[j] == "]":
                return elems, j + 1
            s = j
            j = self.value(j)
            elems.append((s, j))
            j = self.ws_nl(j)
            if j < self.n and self.t[j] == ",":
                j += 1
            elif j < self.n and self.t[j] == "]":
                return elems, j + 1
            else:
                self.err(j, "expected `,` or `]`")

    def inline(self, i: int) -> tuple[list[tuple[tuple[str, ...], int, int, int, int]], int]:
        """Members as (key, key start, key end, value start, value end) and the end (after `}`)."""
        members = []
        j = i + 1
        while True:
            j = self.ws_nl(j)
            if j < self.n and self.t[j] == "}":
                return members, j + 1
            parts, starts, kend = self.key(j)
            j = self.ws(kend)
            if j >= self.n or self.t[j] != "=":
                self.err(j, "expected `=`")
            vs = self.ws(j + 1)
            ve = self.value(vs)
            members.append((tuple(parts), starts[0], kend, vs, ve))
            j = self.ws_nl(ve)
            if j < self.n and self.t[j] == ",":
                j += 1
            elif j < self.n and self.t[j] == "}":
                return members, j + 1
            else:
                self.err(j, "expected `,` or `}`")

    def line_rest(self, i: int) -> int:
        """After a statement: spaces, an optional comment, the newline."""
        i = self.ws(i)
        if i < self.n and self.t[i] == "#":
            while i < self.n and self.t[i] not in "\r\n":
                i += 1
        if self.t.startswith("\r\n", i):
            return i + 2
        if i < self.n and self.t[i] == "\n":
            return i + 1
        if i < self.n:
            self.err(i, "unexpected text after a statement")
        return i

    def statements(self) -> list[Stmt]:
        t, out, table = self.t, [], ()
        i = 1 if t.startswith("\ufeff") else 0
        while i < self.n:
            start = i
            j = self.ws(i)
            c = t[j] if j < self.n else ""
            if c in ("\r", "\n", ""):
                end = self.line_rest(j)
                out.append(self._stmt("blank", start, end, table))
            elif c == "#":
                end = self.line_rest(j)
                out.append(self._stmt("comment", start, end, table))
            elif c == "[":
                aot = t.startswith("[[", j)
                parts, _, kend = self.key(j + (2 if aot else 1))
                k = self.ws(kend)
                close = "]]" if aot else "]"
                if not t.startswith(close, k):
                    self.err(k, f"expected `{close}`")
                end = self.line_rest(k + len(close))
                table = tuple(parts)
                out.append(self._stmt("array-header" if aot else "header", start, end, table))
            else:
                parts, starts, kend = self.key(j)
                k = self.ws(kend)
                if k >= self.n or t[k] != "=":
                    self.err(k, "expected `=`")
                vs = self.ws(k + 1)
                ve = self.value(vs)
                end = self.line_rest(ve)
                out.append(self._stmt("kv", start, end, table, key=tuple(parts), key_start=j,
                                      key_parts=tuple(starts), key_end=kend, value_start=vs, value_end=ve))
            i = end
        return out

    def _stmt(self, kind, start, end, table, **kw) -> Stmt:
        return Stmt(kind, start, end, table, **kw)


def scan(text: str) -> list[Stmt]:
    """The statements of a TOML document, in order."""
    return _Scanner(text).statements()


# -- where an edit lands --------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where one edit lands in the original text: the statements of the entry it changes (by
    index), and the point where new text may be inserted."""

    stmts: tuple[int, ...]
    insert_at: int | None              # a new key or a new entry goes here
    new_table: bool = False            # the insertion opens a new [table]


def _sections(stmts: list[Stmt]) -> list[tuple[int, int]]:
    """(header index or -1, end index) of each section: the root, then each [header]."""
    out, begin = [], -1
    for i, s in enumerate(stmts):
        if s.kind in ("header", "array-header"):
            out.append((begin, i))
            begin = i
    out.append((begin, len(stmts)))
    return out


def _section_end(stmts: list[Stmt], header: int, stop: int, text: str) -> int:
    """Where a section's own statements end: after its last key (or its header), before trailing
    blank lines and the comments that introduce the next header."""
    last = header
    for i in range(header + 1, stop):
        if stmts[i].kind == "kv":
            last = i
    return stmts[last].end if last >= 0 else (1 if text.startswith("\ufeff") else 0)


def _kind_of(path: tuple[str, ...]) -> str:
    if path[:1] == ("target",):
        return "target"
    if path[:1] == ("workspace",):
        return "workspace"
    if path[:1] and path[0] in DEP_KINDS:
        return "deps"
    return "other"


def locate(text: str, stmts: list[Stmt], e: Edit) -> Site:
    t = table_path(e.table)
    entry = t + (e.dependency,)
    n = len(entry)
    mine = [i for i, s in enumerate(stmts) if s.kind == "kv" and s.path[:n] == entry]
    headers = [i for i, s in enumerate(stmts) if s.kind in ("header", "array-header") and s.table[:n] == entry]
    if e.add is not None:
        if mine or headers or any(s.kind == "kv" and s.path[:len(t)] == t and len(s.path) > len(t) and
                                  s.path[len(t)] == e.dependency for s in stmts):
            raise EditError(f"[{e.table}] already has `{e.dependency}`")
        own = [i for i, s in enumerate(stmts) if s.kind == "header" and s.table == t]
        if own:
            h = own[0]
            stop = next((j for j in range(h + 1, len(stmts)) if stmts[j].kind in ("header", "array-header")), len(stmts))
            return Site((), _section_end(stmts, h, stop, text))
        if any(s.kind == "kv" and s.path[:len(t)] == t and len(s.key) > 0 and len(s.table) < len(t) for s in stmts) or \
                any(s.kind == "kv" and s.path == t for s in stmts):
            raise EditError(f"[{e.table}] is written with dotted keys or inline; add `{e.dependency}` by hand")
        if any(s.kind == "array-header" and s.table == t[:len(s.table)] for s in stmts):
            raise EditError(f"[{e.table}] lies below an array of tables")
        kind = _kind_of(t)
        best = None
        for h, stop in _sections(stmts):
            if h >= 0 and stmts[h].kind == "header" and _kind_of(stmts[h].table) == kind and kind != "other":
                best = _section_end(stmts, h, stop, text)
        return Site((), len(text) if best is None else best, new_table=True)
    if headers:
        if any(stmts[h].table != entry or stmts[h].kind != "header" for h in headers):
            raise EditError(f"[{e.table}] `{e.dependency}` has sub-tables; edit it by hand")
        h = headers[0]
        stop = next((j for j in range(h + 1, len(stmts)) if stmts[j].kind in ("header", "array-header")), len(stmts))
        keys = [i for i in range(h + 1, stop) if stmts[i].kind == "kv"]
        return Site(tuple(keys), stmts[keys[-1]].end if keys else stmts[h].end)
    if not mine:
        if any(s.kind == "kv" and len(s.path) < n and s.path == entry[:len(s.path)] for s in stmts):
            raise EditError(f"[{e.table}] `{e.dependency}` is written inside an inline table; edit it by hand")
        raise EditError(f"[{e.table}] has no `{e.dependency}`")
    return Site(tuple(mine), stmts[mine[-1]].end)


# -- rendering ----------------------------------------------------------------------------------------


def _basic(s: str) -> str:
    """A TOML basic string, escaped by tomlkit (the only thing the editor asks of it)."""
    import tomlkit

    return tomlkit.string(s).as_string()


def _string(s: str, like: str = '"') -> str:
    if like.startswith("'") and "'" not in s and not any(ord(c) < 32 or ord(c) == 127 for c in s):
        return f"'{s}'"
    return _basic(s)


def _key(part: str) -> str:
    if _BARE.fullmatch(part):
        return part
    if "'" not in part and not any(ord(c) < 32 or ord(c) == 127 for c in part):
        return f"'{part}'"          # cargo's own spelling: [target.'cfg(target_env = "musl")'.dependencies]
    return _basic(part)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_string(str(x)) for x in v) + "]"
    return _string(str(v))


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _array_values(text: str, elems) -> list:
    out = []
    for s, e in elems:
        try:
            out.append(tomllib.loads(f"v = {text[s:e]}")["v"])
        except tomllib.TOMLDecodeError:
            out.append(None)
    return out


def edit_array(text: str, start: int, remove: tuple[str, ...], add: tuple[str, ...]) -> str:
    """The text with the array at `start` edited: elements in `remove` dropped, those in `add`
    appended in the array's own layout (one per line or inline, its separators, its trailing
    comma, its quoting)."""
    sc = _Scanner(text)
    if text[start] != "[":
        raise EditError("`features` is not an array")
    elems, end = sc.array(start)
    values = _array_values(text, elems)
    for k in reversed(range(len(elems))):
        if values[k] not in remove:
            continue
        s, e = elems[k]
        ls = text.rfind("\n", 0, s) + 1
        after = sc.ws(e)
        if after < len(text) and text[after] == ",":
            after = sc.ws(after + 1)
        if after < len(text) and text[after] == "#":
            while after < len(text) and text[after] not in "\r\n":
                after += 1
        own_line = not text[ls:s].strip(_WS) and text.startswith(("\n", "\r\n"), after)
        if own_line:
            nl_end = after + (2 if text.startswith("\r\n", after) else 1)
            text = _splice(text, ls, nl_end, "")
        elif k + 1 < len(elems):
            text = _splice(text, s, elems[k + 1][0], "")
        elif k > 0:
            text = _splice(text, elems[k - 1][1], e, "")
        else:
            stop = sc.ws(e)
            text = _splice(text, s, stop + 1 if text[stop] == "," else e, "")
        sc = _Scanner(text)
        elems, end = sc.array(start)
        values = _array_values(text, elems)
    have = [v for v in values]
    new = [f for f in add if f not in have]
    new = list(dict.fromkeys(new))
    if not new:
        return text
    sc = _Scanner(text)
    elems, end = sc.array(start)
    nl = _newline(text)
    like = text[elems[-1][0]] if elems else '"'
    rendered = [_string(f, like) for f in new]
    if not elems:
        inner = text[start + 1:end - 1]
        if not inner.strip():
            return _splice(text, start, end, "[" + ", ".join(rendered) + "]")
        return _splice(text, start + 1, start + 1, ", ".join(rendered) + ", ")
    s, e = elems[-1]
    ls = text.rfind("\n", 0, s) + 1
    indent = text[ls:s]
    after = sc.ws(e)
    trailing = after < len(text) and text[after] == ","
    comma_end = after + 1 if trailing else e
    rest = sc.ws(comma_end)
    if rest < len(text) and text[rest] == "#":
        while rest < len(text) and text[rest] not in "\r\n":
            rest += 1
    multiline = not indent.strip(_WS) and text.startswith(("\n", "\r\n"), rest)
    if multiline:
        line_end = rest + (2 if text.startswith("\r\n", rest) else 1)
        lines = "".join(f"{indent}{r}{',' if trailing else ''}{nl}" for r in rendered)
        if not trailing:
            lines = "".join(f"{indent}{r}{',' if i < len(rendered) - 1 else ''}{nl}" for i, r in enumerate(rendered))
            text = _splice(text, line_end, line_end, lines)
            return _splice(text, e, e, ",")
        return _splice(text, line_end, line_end, lines)
    sep = ", "
    if len(elems) >= 2:
        gap = text[elems[0][1]:elems[1][0]]
        if "\n" not in gap and "#" not in gap:
            sep = gap
    else:
        # one element: follow the line's own style (`{version="1",features=["a"]}` stays unspaced)
        line = text[text.rfind("\n", 0, start) + 1:end]
        if "," in line and ", " not in line:
            sep = ","
    space = sep.split(",", 1)[1] if "," in sep else " "
    if trailing:
        return _splice(text, comma_end, comma_end, "".join(f"{space}{r}," for r in rendered))
    return _splice(text, e, e, "".join(f"{sep}{r}" for r in rendered))


def _df_key(keys) -> str:
    keys = list(keys)
    return "default_features" if "default_features" in keys and "default-features" not in keys else "default-features"


def edit_inline(text: str, start: int, e: Edit) -> str:
    """The text with the inline table at `start` (an entry) edited in its own style."""
    sc = _Scanner(text)
    members, end = sc.inline(start)
    keys = {m[0]: m for m in members}
    feats = keys.get(("features",))
    df_key = _df_key(k[0] for k in keys if len(k) == 1)
    df = keys.get((df_key,))
    eq, sep = " = ", ", "
    if members:
        k0 = members[-1]
        eq = text[k0[2]:k0[3]]
        if len(members) >= 2:
            gap = text[members[0][4]:members[1][1]]
            if "\n" not in gap and "#" not in gap:
                sep = gap
        elif "=" in eq and eq.strip() == "=" and eq == "=":
            sep = ","
    appended = []
    # edits from the end backwards keep the earlier offsets valid
    edits_at: list[tuple[int, str]] = []
    if df is not None and e.default_features is not None:
        edits_at.append((df[3], "df"))
    if feats is not None and (e.add_features or e.remove_features):
        edits_at.append((feats[3], "features"))
    if feats is None and e.add_features:
        appended.append(f"features{eq}{_value(list(dict.fromkeys(e.add_features)))}")
    if df is None and e.default_features is not None:
        appended.append(f"{df_key}{eq}{_value(e.default_features)}")
    if appended:
        if members:
            last_end = members[-1][4]
            text = _splice(text, last_end, last_end, "".join(f"{sep}{a}" for a in appended))
        else:
            text = _splice(text, start, end, "{ " + ", ".join(appended) + " }")
    for pos, what in sorted(edits_at, reverse=True):
        if what == "df":
            vend = _Scanner(text).value(pos)
            text = _splice(text, pos, vend, _value(e.default_features))
        else:
            text = edit_array(text, pos, e.remove_features, e.add_features)
            members, _ = _Scanner(text).inline(start)
            m = next(m for m in members if m[0] == ("features",))
            elems, _ = _Scanner(text).array(m[3])
            if not elems and e.remove_features and not e.add_features:
                i = members.index(m)
                if i + 1 < len(members):
                    text = _splice(text, m[1], members[i + 1][1], "")
                elif i > 0:
                    text = _splice(text, members[i - 1][4], m[4], "")
                else:
                    text = _splice(text, m[1], m[4], "")
    return text


def _modify(text: str, stmts: list[Stmt], site: Site, e: Edit) -> str:
    entry_len = len(table_path(e.table)) + 1
    own = [stmts[i] for i in site.stmts]
    whole = [s for s in own if len(s.path) == entry_len]
    if whole:
        s = whole[0]
        v = text[s.value_start]
        if v == "{":
            return edit_inline(text, s.value_start, e)
        if v in "\"'" and not text.startswith(('"""', "'''"), s.value_start):
            if _noop_on_string(e):
                return text
            parts = [f"version = {text[s.value_start:s.value_end]}"]
            if e.add_features:
                parts.append(f"features = {_value(list(dict.fromkeys(e.add_features)))}")
            if e.default_features is not None:
                parts.append(f"default-features = {_value(e.default_features)}")
            return _splice(text, s.value_start, s.value_end, "{ " + ", ".join(parts) + " }")
        raise EditError(f"`{e.dependency}` is neither a version string nor a table")
    # a [dependencies.x] table or dotted keys: one statement per key
    by_key = {s.path[entry_len:]: s for s in own}
    feats = by_key.get(("features",))
    df_key = _df_key(k[0] for k in by_key if len(k) == 1)
    df = by_key.get((df_key,))
    last = own[-1] if own else None
    nl = _newline(text)
    new_lines = []
    template = last or feats or df
    if template is not None:
        indent = text[template.start:template.key_start]
        cut = entry_len - len(template.table)
        prefix = text[template.key_start:template.key_parts[cut]] if cut > 0 else ""
        eq = text[template.key_end:template.value_start]
    else:
        indent, prefix, eq = "", "", " = "
    if feats is None and e.add_features:
        new_lines.append(f"{indent}{prefix}features{eq}{_value(list(dict.fromkeys(e.add_features)))}")
    if df is None and e.default_features is not None:
        new_lines.append(f"{indent}{prefix}{df_key}{eq}{_value(e.default_features)}")
    if new_lines:
        at = site.insert_at
        if at == len(text) and not text.endswith("\n"):
            text = text + "".join(nl + ln for ln in new_lines)
        else:
            text = _splice(text, at, at, "".join(ln + nl for ln in new_lines))
    # in-place changes, from the end backwards so earlier offsets stay valid
    for s in sorted((x for x in (feats, df) if x is not None), key=lambda x: x.start, reverse=True):
        if s is df and e.default_features is not None:
            text = _splice(text, s.value_start, s.value_end, _value(e.default_features))
        elif s is feats and (e.add_features or e.remove_features):
            if text[s.value_start] != "[":
                raise EditError(f"`{e.dependency}.features` is not an array")
            edited = edit_array(text, s.value_start, e.remove_features, e.add_features)
            elems, _ = _Scanner(edited).array(s.value_start)
            if not elems and e.remove_features and not e.add_features:
                edited = _splice(text, s.start, s.end, "")
            text = edited
    return text


def _add(text: str, site: Site, e: Edit) -> str:
    nl = _newline(text)
    parts = [f"{k} = {_value(v)}" for k, v in _add_entry(e.add).items()]
    line = f"{_key(e.dependency)} = {{ {', '.join(parts)} }}"
    at = site.insert_at
    if not site.new_table:
        if at == len(text) and text and not text.endswith("\n"):
            return text + nl + line
        return _splice(text, at, at, line + nl)
    header = "[" + ".".join(_key(p) for p in table_path(e.table)) + "]"
    if at == len(text):
        body = text
        ending = body.endswith("\n")
        if body and not ending:
            body += nl
        if body.strip("\ufeff \t\r\n"):
            if not body.endswith(nl + nl) and not body.rstrip(" \t\r\n") == "":
                body += nl
        return body + header + nl + line + (nl if ending or not text else "")
    block = nl + header + nl + line + nl
    following = text[at:at + 2]
    if not (following.startswith("\n") or following.startswith("\r\n")):
        block += nl
    return _splice(text, at, at, block)


def apply_edits(text: str, edits: list[Edit], where: str) -> str:
    """The manifest text with the edits applied; raises EditError unless exactly they landed."""
    if not edits:
        return text
    try:
        original = tomllib.loads(_nobom(text))
    except tomllib.TOMLDecodeError as e:
        raise EditError(f"{where}: invalid TOML: {e}") from None
    edits = [_effective(e, original) for e in edits]
    new = text
    for e in edits:
        try:
            stmts = scan(new)
            site = locate(new, stmts, e)
            new = _add(new, site, e) if e.add is not None else _modify(new, stmts, site, e)
        except EditError as err:
            raise EditError(f"{where}: {err}") from None
    verify(text, new, edits, where, original)
    return new


def _effective(e: Edit, data: dict) -> Edit:
    """The edit as it applies to this entry: removing a feature the entry does not list changes
    nothing (and must not drop an empty `features` array the user wrote)."""
    if e.add is not None or not e.remove_features:
        return e
    entry = data
    for part in table_path(e.table) + (e.dependency,):
        entry = entry.get(part, {}) if isinstance(entry, dict) else {}
    listed = entry.get("features", []) if isinstance(entry, dict) else []
    return replace(e, remove_features=tuple(f for f in e.remove_features if f in listed))


def _nobom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


# -- the independent check ------------------------------------------------------------------------


def regions(text: str, edits: list[Edit]) -> list[tuple[int, int]]:
    """The spans of the original text an edit may replace, and the empty spans where it may
    insert, merged; everything else must survive byte for byte."""
    stmts = scan(text)
    out = []
    for e in edits:
        try:
            site = locate(text, stmts, e)
        except EditError:
            continue
        for i in site.stmts:
            s = stmts[i]
            out.append((s.start, s.end))
        if site.insert_at is not None:
            out.append((site.insert_at, site.insert_at))
    out.sort()
    merged: list[list[int]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def verify(old: str, new: str, edits: list[Edit], where: str, original: dict | None = None) -> None:
    """Renovate-style check: the data changed exactly as intended, other bytes are untouched.
    Nothing here uses the code that made the edit: tomllib for the data, the statement scanner
    for the spans, on the original text."""
    try:
        after = tomllib.loads(_nobom(new))
    except tomllib.TOMLDecodeError as e:
        raise EditError(f"{where}: internal error: the edited manifest does not parse ({e}); nothing written") from None
    before = tomllib.loads(_nobom(old)) if original is None else original
    if after != _semantic(before, edits):
        raise EditError(f"{where}: internal error: the edit changed more than intended; nothing written")
    try:
        spans = regions(old, edits)
    except EditError as e:
        raise EditError(f"{where}: internal error: {e}; nothing written") from None
    # the original, cut at the spans, must reappear in order: F0 X0 F1 X1 ... Fm
    fixed, prev = [], 0
    for s, e in spans:
        fixed.append((prev, old[prev:s]))
        prev = e
    fixed.append((prev, old[prev:]))
    pos = 0
    for k, (at, piece) in enumerate(fixed):
        if k == 0:
            ok = new.startswith(piece)
            found = 0
        elif k == len(fixed) - 1:
            found = len(new) - len(piece)
            ok = found >= pos and new.endswith(piece)
        else:
            found = new.find(piece, pos)
            ok = found >= 0
        if not ok:
            line = old.count("\n", 0, at) + 1
            raise EditError(f"{where}: internal error: text outside the edited entries would change "
                            f"(from line {line}); nothing written")
        pos = found + len(piece)
    if "\r\n" in old and "\n" not in old.replace("\r\n", "") and "\n" in new.replace("\r\n", ""):
        raise EditError(f"{where}: internal error: the edit would mix line endings; nothing written")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
