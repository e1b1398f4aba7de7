"""Apply dependency edits to a manifest through tomlkit, then prove only the intended change landed.

After every edit the result is parsed again with tomllib and compared, as data, with the original
plus the intended edits; every line outside the edited entries must be byte-identical. Anything
else is an internal error and nothing is written (Renovate's auto-replace check).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import os
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CodemodError


class EditError(CodemodError):
    pass


@dataclass(frozen=True)
class Edit:
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
    def from_json(cls, obj: dict) -> Edit:
        try:
            if "add" in obj:
                add = obj["add"]
                if not isinstance(add.get("version"), str) and add.get("workspace") is not True:
                    raise EditError("an `add` edit needs a version string (or `workspace = true`)")
                unknown = set(add) - set(ADD_KEYS)
                if unknown:
                    raise EditError(f"an `add` edit has unknown key `{sorted(unknown)[0]}`")
                return cls(obj["file"], obj["table"], obj["dependency"], add=dict(add))
            df = obj.get("default_features")
            if df is not None and not isinstance(df, bool):
                raise EditError("default_features must be true, false or null")
            return cls(obj["file"], obj["table"], obj["dependency"], tuple(obj.get("add_features", ())),
                       tuple(obj.get("remove_features", ())), df)
        except (KeyError, TypeError, AttributeError) as e:
            raise EditError(f"malformed edit {obj!r}: {e}") from None


ADD_KEYS = ("workspace", "version", "package", "registry", "default-features", "features", "optional")


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
            entry = {"version": entry}
        feats = [f for f in entry.get("features", []) if f not in e.remove_features]
        feats += [f for f in e.add_features if f not in feats]
        if feats or "features" in entry and not e.remove_features:
            entry["features"] = feats
        else:
            entry.pop("features", None)
        if e.default_features is not None:
            key = "default_features" if "default_features" in entry else "default-features"
            entry[key] = e.default_features
        container[e.dependency] = entry
    return data


# -- applying through tomlkit ------------------------------------------------------------------


def _inline(snippet: str):
    import tomlkit

    return tomlkit.parse(f"x = {snippet}\n")["x"]


def _locate(doc, path: tuple[str, ...], create: bool):
    import tomlkit

    node = doc
    for i, part in enumerate(path):
        if part not in node:
            if not create:
                raise EditError(f"no [{'.'.join(path[:i + 1])}] table")
            table = tomlkit.table(is_super_table=i < len(path) - 1)
            if '"' in part and "'" not in part:
                # cargo's own spelling: [target.'cfg(target_env = "musl")'.dependencies]
                from tomlkit.items import KeyType, SingleKey

                node.append(SingleKey(part, t=KeyType.Literal), table)
            else:
                node[part] = table
        node = node[part]
    return node


def _toml_string(s: str) -> str:
    import json

    return json.dumps(s)


def _apply_one(doc, e: Edit) -> None:
    import tomlkit

    container = _locate(doc, table_path(e.table), create=e.add is not None)
    if e.add is not None:
        if e.dependency in container:
            raise EditError(f"[{e.table}] already has `{e.dependency}`")
        parts = []
        for k, v in _add_entry(e.add).items():
            if isinstance(v, bool):
                parts.append(f"{k} = {'true' if v else 'false'}")
            elif isinstance(v, (list, tuple)):
                parts.append(f"{k} = [" + ", ".join(_toml_string(x) for x in v) + "]")
            else:
                parts.append(f"{k} = {_toml_string(str(v))}")
        container[e.dependency] = _inline("{ " + ", ".join(parts) + " }")
        return
    if e.dependency not in container:
        raise EditError(f"[{e.table}] has no `{e.dependency}`")
    item = container[e.dependency]
    if isinstance(item, str):
        # `dep = "1.0"` becomes `dep = { version = "1.0" }`, keeping any comment after it
        new = _inline(f"{{ version = {_toml_string(str(item))} }}")
        trivia = getattr(item, "trivia", None)
        if trivia is not None:
            new.trivia.comment_ws = trivia.comment_ws
            new.trivia.comment = trivia.comment
            new.trivia.trail = trivia.trail
        container[e.dependency] = new
        item = container[e.dependency]
    if e.remove_features and "features" in item:
        arr = item["features"]
        for f in e.remove_features:
            for i in reversed(range(len(arr))):
                if str(arr[i]) == f:
                    del arr[i]
        if len(arr) == 0 and not e.add_features:
            del item["features"]
    if e.add_features:
        if "features" not in item:
            item["features"] = _inline("[" + ", ".join(_toml_string(f) for f in e.add_features) + "]")
        else:
            arr = item["features"]
            have = {str(x) for x in arr}
            for f in e.add_features:
                if f not in have:
                    arr.append(f)
    if e.default_features is not None:
        key = "default_features" if "default_features" in item else "default-features"
        item[key] = e.default_features
    if isinstance(item, tomlkit.items.InlineTable):
        container[e.dependency] = _rerender_inline(item)


def _rerender_inline(item):
    """tomlkit spaces keys it appends to an inline table oddly (`["v"],default-features = false}`):
    render the table again in the style it was written in. Values keep their own text, so a
    multi-line features array keeps its layout and comments."""
    from tomlkit.items import Null

    text = item.as_string()
    spaced = text.startswith("{ ") or text == "{}"
    parts = [f"{k.as_string().strip()} = {v.as_string().strip()}" for k, v in item.value.body
             if k is not None and not isinstance(v, Null)]
    body = ", ".join(parts)
    new = _inline(f"{{ {body} }}" if spaced else f"{{{body}}}")
    new.trivia.indent = item.trivia.indent
    new.trivia.comment_ws = item.trivia.comment_ws
    new.trivia.comment = item.trivia.comment
    new.trivia.trail = item.trivia.trail
    return new


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def apply_edits(text: str, edits: list[Edit], where: str) -> str:
    """The manifest text with the edits applied; raises EditError unless exactly they landed."""
    import tomlkit

    if not edits:
        return text
    try:
        original = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EditError(f"{where}: invalid TOML: {e}") from None
    doc = tomlkit.parse(text)
    for e in edits:
        try:
            _apply_one(doc, e)
        except EditError as err:
            raise EditError(f"{where}: {err}") from None
    new = tomlkit.dumps(doc)
    nl = _newline(text)
    if nl == "\r\n" and "\n" not in text.replace("\r\n", ""):
        new = new.replace("\r\n", "\n").replace("\n", "\r\n")
    if not text.endswith(("\n", "\r")) and new.endswith(nl) and not new[: -len(nl)].endswith(nl):
        new = new[: -len(nl)] if new[: -len(nl)].rstrip(" \t") == new[: -len(nl)] else new
    verify(text, new, edits, where, original)
    return new


def verify(old: str, new: str, edits: list[Edit], where: str, original: dict | None = None) -> None:
    """Renovate-style check: the data changed exactly as intended, other lines are untouched."""
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError as e:
        raise EditError(f"{where}: internal error: the edited manifest does not parse ({e}); nothing written") from None
    before = tomllib.loads(old) if original is None else original
    if after != _semantic(before, edits):
        raise EditError(f"{where}: internal error: the edit changed more than intended; nothing written")
    allowed = _entry_lines(old, edits)
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    adds = any(e.add is not None for e in edits)
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert" and (adds or (i1 - 1) in allowed or i1 in allowed):
            continue
        if not all(i in allowed for i in range(i1, i2)):
            # the last line may differ only by the newline that ends it
            if tag == "replace" and i2 == len(a) and all(i in allowed for i in range(i1, i2 - 1)) and a[-1].rstrip("\r\n") == b[-1].rstrip("\r\n"):
                continue
            raise EditError(f"{where}: internal error: lines {i1 + 1}-{i2} outside the edited entries would change; nothing written")


def _entry_lines(text: str, edits: list[Edit]) -> set[int]:
    """Indexes of the original lines that belong to the entries being edited: the lines that
    disappear when those entries are deleted."""
    import tomlkit

    doc = tomlkit.parse(text)
    for e in edits:
        if e.add is not None:
            continue
        try:
            container = _locate(doc, table_path(e.table), create=False)
            del container[e.dependency]
        except (EditError, KeyError):
            continue
    stripped = tomlkit.dumps(doc).splitlines(keepends=True)
    lines = text.splitlines(keepends=True)
    out = set()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, lines, stripped, autojunk=False).get_opcodes():
        if tag != "equal":
            out.update(range(i1, i2))
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename over the target, keeping its mode."""
    path = Path(path)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
