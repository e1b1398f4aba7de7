"""Cargo.lock kept in step with a fix, as `cargo add` leaves it.

A fix that turns on a feature, switches a dependency to rustls or adds a dependency changes what
Cargo.lock must hold: new packages (openssl-src, rustls, ...), a member's or a crate's own
`dependencies` list, and packages nothing reaches any more. Two ways to the new text:

- **with cargo** (`cargo_updated_lock`): the edited manifests are mirrored in a temporary
  directory with a copy of the lock, and `cargo update --workspace` runs there (from the project's
  directory, so cargo reads the project's own configuration). That command re-resolves only the
  workspace members: every other locked version stays, what is missing is added, what nothing
  reaches is dropped — exactly what `cargo add` leaves. cargo writes the lock in the format it
  chooses (cargo 1.83+ moves v3 to v4 unless `rust-version` is older).
- **without cargo** (`updated_lock`): the difference between the lock graph of the resolution
  before the edit and after it is applied to the lock text itself, in the file's own format
  (v1 to v4, as cargo's `core/resolver/encode.rs` writes them): new `[[package]]` entries from the
  index data (name, version, source, checksum) inserted in cargo's order (name, version, source),
  changed `dependencies` lists written again, unreachable packages removed. Every other byte is
  kept.

Either way the result is checked: a package that was locked keeps its version unless the edit
itself needs another one (reported as `changed`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import CodemodError
from .semver import SemverError, parse_version

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
WRITERS = ("auto", "cargo", "builtin")

Key = tuple  # (name, version, source or None for a path package)


class LockError(CodemodError):
    pass


@dataclass(frozen=True)
class LockUpdate:
    """The new text of a workspace's Cargo.lock, as one more file of the same fix."""

    path: Path
    old: str
    new: str | None                  # None: the lock needs an update this tool could not write (see note)
    via: str                         # "cargo" | "builtin"
    added: tuple[str, ...] = ()      # "name version"
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()    # "name old → new": a locked version the edit itself replaced
    note: str = ""                   # why cargo was not used, when it was not

    def as_json(self) -> dict:
        return {"path": str(self.path), "updated": self.new is not None, "via": self.via, "added": list(self.added),
                "removed": list(self.removed), "changed": list(self.changed), "note": self.note}

    def summary(self) -> str:
        if self.new is None:
            return f"not updated: {self.note}"
        parts = []
        if self.added:
            parts.append("adds " + ", ".join(self.added))
        if self.removed:
            parts.append("removes " + ", ".join(self.removed))
        if self.changed:
            parts.append("changes " + ", ".join(self.changed))
        return "; ".join(parts) or "dependency lists updated"


# -- the whole step ----------------------------------------------------------------------------


def lock_for_fix(ws, texts: dict[Path, str], old_res, new_res, index=None, *, writer: str = "auto",
                 offline: bool = False) -> LockUpdate | None:
    """The lock update a fix needs (None when there is no Cargo.lock or it stays as it is).
    `writer`: "cargo" (fail without it), "builtin" (never run cargo), "auto" (cargo when installed,
    else, or when cargo fails, the built-in writer)."""
    path = ws.lock_path
    try:
        old = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    note = ""
    if writer not in WRITERS:
        raise LockError(f"unknown lock writer `{writer}` (use one of {', '.join(WRITERS)})")
    if writer != "builtin":
        if shutil.which("cargo") is None:
            if writer == "cargo":
                raise LockError("cargo is not installed, and the lock writer `cargo` was asked for")
            note = "cargo is not installed"
        else:
            try:
                new = cargo_updated_lock(ws, texts, offline=offline)
            except LockError as e:
                if writer == "cargo":
                    raise
                note = str(e)
            else:
                return _update(path, old, new, "cargo")
    try:
        new = _updated_text(old, old_res, new_res, index)
    except LockError as e:
        # The fix stands without it: cargo completes the lock on the next build (not with --locked).
        reason = f"{e}; {note}" if note else str(e)
        return LockUpdate(path, old, None, "builtin", note=reason)
    return _update(path, old, new, "builtin", note)


def _update(path: Path, old: str, new: str | None, via: str, note: str = "") -> LockUpdate | None:
    if new is None or new == old:
        return None
    added, removed, changed = lock_changes(old, new)
    return LockUpdate(path, old, new, via, added, removed, changed, note)


def lock_changes(old: str, new: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Packages added and removed between two lock texts, and the names whose locked version was
    replaced by another (a name that lost a version and gained one)."""
    before = {(p["name"], p["version"], p.get("source")) for p in tomllib.loads(old).get("package", [])}
    after = {(p["name"], p["version"], p.get("source")) for p in tomllib.loads(new).get("package", [])}
    gone, came = before - after, after - before
    changed = []
    for name in sorted({k[0] for k in gone} & {k[0] for k in came}):
        was = ", ".join(sorted(k[1] for k in gone if k[0] == name))
        now = ", ".join(sorted(k[1] for k in came if k[0] == name))
        changed.append(f"{name} {was} → {now}")
    names = {c.split(" ", 1)[0] for c in changed}
    fmt = lambda keys: tuple(f"{k[0]} {k[1]}" for k in sorted(keys, key=_order) if k[0] not in names)  # noqa: E731
    return fmt(came), fmt(gone), tuple(changed)


# -- with cargo --------------------------------------------------------------------------------


def cargo_updated_lock(ws, texts: dict[Path, str], *, offline: bool = False, timeout: float = 300) -> str | None:
    """Let cargo add what the edited manifests need: `cargo update --workspace` on a mirror of the
    workspace (its manifests, with `texts` applied, and empty stand-ins for the target files cargo
    looks for), run from the project's directory so cargo sees the project's configuration."""
    lock = ws.lock_path
    old = lock.read_bytes().decode("utf-8")
    manifests = {ws.root.path: ws.root}
    manifests.update({m.path: m for m in ws.manifests.values()})
    dirs = [p.parent for p in manifests]
    base = Path(os.path.commonpath([str(d) for d in dirs]))
    with tempfile.TemporaryDirectory(prefix="cargo-static-fix-lock-") as tmp:
        mirror = Path(tmp) / "ws"
        for path, m in manifests.items():
            dest = mirror / path.parent.relative_to(base)
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "Cargo.toml").write_text(texts.get(path, m.text), encoding="utf-8")
            for rel in _target_files(path.parent, m.data):
                stub = dest / rel
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.touch()
        root = mirror / ws.root.dir.relative_to(base)
        (root / "Cargo.lock").write_bytes(lock.read_bytes())
        cmd = ["cargo", "update", "--workspace", "--manifest-path", str(root / "Cargo.toml")]
        if offline:
            cmd.append("--offline")
        env = dict(os.environ, CARGO_TERM_COLOR="never")
        try:
            proc = subprocess.run(cmd, cwd=ws.root.dir, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LockError(f"`cargo update --workspace` did not run: {e}") from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            why = next((ln for ln in lines if ln.startswith("error")), lines[-1] if lines else f"exit {proc.returncode}")
            raise LockError(f"`cargo update --workspace` failed: {why}")
        new = (root / "Cargo.lock").read_bytes().decode("utf-8")
    return None if new == old else new


def _target_files(d: Path, data: dict) -> list[str]:
    """The files cargo needs to find to load a package (it does not read them to resolve)."""
    out = [rel for rel in ("src/lib.rs", "src/main.rs", "build.rs") if (d / rel).is_file()]
    pkg = data.get("package") or {}
    if isinstance(pkg.get("build"), str):
        out.append(pkg["build"])
    lib = data.get("lib")
    if isinstance(lib, dict) and isinstance(lib.get("path"), str):
        out.append(lib["path"])
    for kind in ("bin", "example", "test", "bench"):
        for t in data.get(kind) or ():
            if isinstance(t, dict) and isinstance(t.get("path"), str):
                out.append(t["path"])
    bins = d / "src" / "bin"
    if bins.is_dir():
        out += [str(p.relative_to(d)) for p in bins.glob("*.rs")] + [str(p.relative_to(d)) for p in bins.glob("*/main.rs")]
    if data.get("package") is not None and not any(r in out for r in ("src/lib.rs", "src/main.rs")) \
            and not (isinstance(lib, dict) and "path" in lib) and not data.get("bin"):
        out.append("src/lib.rs")       # cargo refuses a package without any target
    return [r for r in out if not Path(r).is_absolute() and ".." not in Path(r).parts]


# -- without cargo -----------------------------------------------------------------------------


def updated_lock(lock_path: Path, old_resolution, new_resolution, index=None) -> str | None:
    """The lock text after a fix, written from the resolutions before and after the edit (the index
    data they hold gives each new package's checksum); None when the lock stays as it is."""
    text = Path(lock_path).read_bytes().decode("utf-8")
    new = _updated_text(text, old_resolution, new_resolution, index)
    return None if new == text else new


def lock_graph(res) -> dict:
    """What Cargo.lock records of a resolution: every package reachable from the members through
    the dependency resolver's edges (all platforms, all features, members' dev-dependencies),
    each with the packages it depends on."""
    children: dict = {}
    # pass 1's edges: features asked on the command line (`-F dep/feature`) never reach the lock
    for (parent, _i), child in (getattr(res, "lock_edges", None) or res.edges).items():
        children.setdefault(parent, set()).add(child)
    out: dict = {}
    todo = list(res.input.members)
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out[pid] = children.get(pid, set())
        todo.extend(out[pid])
    return out


@dataclass
class _Block:
    """One `[[package]]` block of Cargo.lock as the file writes it."""

    key: Key
    checksum: str | None
    written: list[str]       # the dependency strings as the file has them
    deps: set                # the same, as keys
    text: str | None         # verbatim, "[[package]]\n...\n" without the blank line after it


class _Lock:
    """A lock text split into cargo's parts: the head (comments, `version = N`), the package
    entries, and whatever follows them (`[[patch.unused]]`, `[metadata]`)."""

    def __init__(self, text: str):
        self.crlf = text.split("\n", 1)[0].endswith("\r")
        if self.crlf:
            text = text.replace("\r\n", "\n")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise LockError(f"invalid TOML: {e}") from None
        self.format = _format(data)
        starts = [m.start() for m in re.finditer(r"^\[", text, re.M)]
        self.head = text[:starts[0]] if starts else text
        self.blocks: list[_Block] = []
        self.tail = ""
        self.after_last = ""
        raw: list[str] = []
        for i, s in enumerate(starts):
            seg = text[s:starts[i + 1] if i + 1 < len(starts) else len(text)]
            if self.tail or not seg.startswith("[[package]]\n"):
                self.tail += seg
            else:
                raw.append(seg)
        if not raw:
            raise LockError("no [[package]] entries")
        self.after_last = raw[-1][len(raw[-1].rstrip("\n")) + 1:]
        entries = []
        for seg in raw:
            pkgs = tomllib.loads(seg).get("package", [])
            if len(pkgs) != 1:
                raise LockError(f"unusual layout near {seg.splitlines()[0]!r}")
            entries.append((pkgs[0], seg.rstrip("\n") + "\n"))
        if len(entries) != len(data.get("package", [])):
            raise LockError("[[package]] entries are not all together")
        self.by_name: dict[str, list[Key]] = {}
        for p, _ in entries:
            self.by_name.setdefault(p["name"], []).append(_key(p))
        for p, seg in entries:
            deps = set()
            for d in p.get("dependencies", []):
                k = self.lookup(d)
                if k is None:
                    raise LockError(f"`{p['name']} {p['version']}` depends on `{d}`, which names no package "
                                    f"of this lock unambiguously")
                deps.add(k)
            self.blocks.append(_Block(_key(p), p.get("checksum"), list(p.get("dependencies", [])), deps, seg))

    def lookup(self, written: str) -> Key | None:
        """A dependency string to the package it names, as cargo reads it."""
        parts = written.split(" ", 2)
        cands = self.by_name.get(parts[0], [])
        if len(parts) > 1:
            cands = [k for k in cands if k[1] == parts[1]]
        if len(parts) > 2:
            source = parts[2].strip("()")
            cands = [k for k in cands if k[2] is not None and k[2].split("#")[0] == source.split("#")[0]]
        elif len(cands) > 1:
            paths = [k for k in cands if k[2] is None]
            cands = paths if len(paths) == 1 else cands
        return cands[0] if len(cands) == 1 else None

    def keys(self) -> dict[Key, _Block]:
        return {b.key: b for b in self.blocks}


def _key(p: dict) -> Key:
    return (p["name"], p["version"], p.get("source"))


def _format(data: dict) -> int:
    v = data.get("version")
    if v is not None:
        if v not in (3, 4):
            raise LockError(f"lock file version {v} is not one this tool can write (1 to 4)")
        return v
    if any(k.startswith("checksum ") for k in (data.get("metadata") or {})):
        return 1
    pkgs = data.get("package", [])
    if any("checksum" in p for p in pkgs) or any(" " not in d for p in pkgs for d in p.get("dependencies", [])):
        return 2
    return 1


def _order(k: Key) -> tuple:
    """cargo's PackageId order: name, then version (semver order), then source (path first)."""
    try:
        v = parse_version(k[1]).key
    except SemverError:
        v = (k[1],)
    return (k[0], v, k[2] is not None, k[2] or "")


def _encode(k: Key, counts: dict | None) -> str:
    """A dependency string: v2+ name only while one version of the name is locked, "name version"
    while that version comes from one source, else with the source (v1: always in full)."""
    name, version, source = k
    if counts is not None:
        by_version = counts[name]
        if by_version[version] == 1:
            return name if len(by_version) == 1 else f"{name} {version}"
    out = f"{name} {version}"
    return out + f" ({source.split('#')[0]})" if source else out


def _encode_order(s: str) -> tuple:
    parts = s.split(" ", 2)
    return (parts[0], len(parts) > 1, parts[1] if len(parts) > 1 else "", len(parts) > 2, parts[2] if len(parts) > 2 else "")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(b: _Block, deps: list[str], fmt: int) -> str:
    name, version, source = b.key
    out = f"[[package]]\nname = {_quote(name)}\nversion = {_quote(version)}\n"
    if source:
        out += f"source = {_quote(source)}\n"
    if b.checksum and fmt >= 2:
        out += f"checksum = {_quote(b.checksum)}\n"
    if deps:
        out += "dependencies = [\n" + "".join(f" {_quote(d)},\n" for d in deps) + "]\n"
    return out


def _source(registry: str | None, name: str) -> str:
    if registry is None:
        return CRATES_IO
    if registry.startswith(("sparse+", "registry+")):
        return registry
    if "://" in registry:
        return "registry+" + registry
    raise LockError(f"cannot write the lock entry of `{name}` from registry `{registry}` without cargo; "
                    "`cargo update --workspace` will complete the lock")


def _updated_text(text: str, old_res, new_res, index) -> str:
    lock = _Lock(text)
    g0, g1 = lock_graph(old_res), lock_graph(new_res)
    registry_of = {}                   # a registry package -> the registry its dependents name
    for (parent, i), child in (getattr(new_res, "lock_edges", None) or new_res.edges).items():
        if not child.path:
            registry_of.setdefault(child, new_res.deps_of(parent)[i].registry)
    blocks = lock.keys()
    existing, paths = {}, {}
    for k in blocks:
        existing.setdefault((k[0], k[1], k[2] is None), []).append(k)
        if k[2] is None:
            paths[k[0]] = k

    def key_of(pid) -> Key:
        """A package of the model as the lock names it: the locked entry of that name and version
        (a path package by its name alone: cargo requires those names to be unique), else a new
        registry entry."""
        if pid.path:
            return paths.get(pid.name, (pid.name, pid.version, None))
        found = existing.get((pid.name, pid.version, False))
        if found and len(found) == 1:
            return found[0]
        return (pid.name, pid.version, _source(registry_of.get(pid), pid.name))

    k0 = {pid: key_of(pid) for pid in g0}
    k1 = {pid: key_of(pid) for pid in g1}
    new_blocks: list[_Block] = []
    for pid, kids in g1.items():
        after = {k1[c] for c in kids}
        before = {k0[c] for c in g0.get(pid, ())}
        key = k1[pid]
        block = blocks.get(key)
        if block is None:
            checksum = None
            if not pid.path:
                checksum = new_res.packages[pid].checksum or _checksum_from(index, pid)
                if checksum is None:
                    raise LockError(f"the index data has no checksum for {pid.name} {pid.version}; "
                                    "`cargo update --workspace` will complete the lock")
            block = _Block(key, checksum, [], after, None)
            blocks[key] = block
            new_blocks.append(block)
        elif after != before:
            block.deps = (block.deps - (before - after)) | (after - before)
    # A dependency the index could not answer (another platform's crate a snapshot lacks) is
    # already in the lock where nothing changes; a new or changed entry would miss it.
    touched = {b.key[0] for b in new_blocks} | {k1[p][0] for p in g1 if p in g0 and
                                               {k1[c] for c in g1[p]} != {k0[c] for c in g0[p]}}
    for skipped in getattr(new_res, "skipped", ()):
        if skipped.split(" → ", 1)[0] in touched:
            raise LockError(f"the index data lacks a dependency the new entries need ({skipped}); "
                            "`cargo update --workspace` will complete the lock")
    # packages nothing reaches any more go, as cargo drops them
    reach, todo = set(), [k for k in blocks if k[2] is None]
    while todo:
        k = todo.pop()
        if k in reach or k not in blocks:
            continue
        reach.add(k)
        todo.extend(blocks[k].deps)
    missing = [d for b in blocks.values() if b.key in reach for d in b.deps if d not in blocks]
    if missing:
        raise LockError(f"internal error: no lock entry for {missing[0][0]} {missing[0][1]}")
    kept = [b for b in lock.blocks if b.key in reach]
    added = sorted((b for b in new_blocks if b.key in reach), key=lambda b: _order(b.key))
    order: list[_Block] = []
    i = 0
    for b in kept:
        while i < len(added) and _order(added[i].key) < _order(b.key):
            order.append(added[i])
            i += 1
        order.append(b)
    order.extend(added[i:])

    counts = None
    if lock.format >= 2:
        counts = {}
        for b in order:
            name, version, _ = b.key
            counts.setdefault(name, {}).setdefault(version, 0)
            counts[name][version] += 1
    out = []
    for b in order:
        deps = sorted((_encode(d, counts) for d in b.deps), key=_encode_order)
        out.append(b.text if b.text is not None and deps == b.written else _render(b, deps, lock.format))
    body = lock.head + "\n".join(out) + lock.after_last + _tail(lock, {b.key: b for b in order})
    return body.replace("\n", "\r\n") if lock.crlf else body


def _tail(lock: _Lock, final: dict) -> str:
    """What follows the package entries; in the v1 format `[metadata]` holds the checksums, one
    `"checksum name version (source)"` key per registry package, kept in key order."""
    if lock.format != 1 or "[metadata]" not in lock.tail:
        return lock.tail
    lines = lock.tail.split("\n")
    start = lines.index("[metadata]") + 1
    end = start
    while end < len(lines) and lines[end] and not lines[end].startswith("["):
        end += 1
    wanted = {}
    for k, b in final.items():
        if k[2] is not None:
            wanted[f"checksum {_encode(k, None)}"] = b.checksum or "<none>"
    entries = []
    for line in lines[start:end]:
        key = tomllib.loads(line)
        (name, value), = key.items()
        if name.startswith("checksum "):
            if name in wanted:
                entries.append((name, line))
                wanted.pop(name)
        else:
            entries.append((name, line))
    for name, value in wanted.items():
        entries.append((name, f"{_quote(name)} = {_quote(value)}"))
    entries.sort(key=lambda e: e[0])
    return "\n".join(lines[:start] + [line for _, line in entries] + lines[end:])


def _checksum_from(index, pid) -> str | None:
    if index is None:
        return None
    try:
        versions = index.get(pid.name)
    except (KeyError, CodemodError):
        return None
    for p in versions or ():
        if p.id.version == pid.version:
            return p.checksum
    return None
