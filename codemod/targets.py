"""Target facts and cfg(...) evaluation, as cargo decides whether a `[target.X]` table applies.

Facts come from ``rustc --print cfg --target T`` (shipped in ``data/targets.json``; regenerate
with ``python -m codemod.data.generate_targets``). cargo does not use them as printed: it asks
rustc once per build with the target's rustflags and without the profile's flags, so what a
`[target.'cfg(..)'.dependencies]` table sees is

- ``debug_assertions``: on (also for ``--release``), unless the rustflags set ``-C opt-level``
  other than 0 (or ``-O``) or ``-C debug-assertions=off``;
- ``target_feature = "crt-static"``: off unless the rustflags say ``-C target-feature=+crt-static``
  (cargo's probe names the proc-macro crate type, for which rustc turns crt-static off), on the
  targets that respect that flag; so even musl, whose binaries are static by default, does not
  select crt-static tables without it;
- ``-C target-feature=+f,-g`` adds and removes ``target_feature`` values as written (features they
  imply, such as ``avx`` for ``+avx2``, are not derived); ``--cfg name`` and ``--cfg 'k="v"'`` add
  cfgs; ``-C panic=abort`` sets ``panic``.

Which rustflags: `RustFlags` reads them as cargo does (``read_rustflags``) and `probe_target`
applies them. They reach only the ``--target`` side: with ``--target``, build scripts and proc
macros (the host side) get no RUSTFLAGS, ``[build]`` or ``[target]`` rustflags (only ``[host]``
ones, an unstable cargo feature), so the host is `load_target(host)` with no flags.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

from .errors import TargetError

DEFAULT_TARGET = "x86_64-unknown-linux-musl"
HOST_TARGET = "x86_64-unknown-linux-gnu"      # the host when rustc cannot tell (see host_triple)

CRT_STATIC = ("target_feature", "crt-static")


@dataclass(frozen=True)
class Target:
    """A target's cfg facts, as `rustc --print cfg` gives them for the flags in effect."""

    triple: str
    names: frozenset[str]                 # bare cfgs: unix, windows, debug_assertions, ...
    pairs: frozenset[tuple[str, str]]     # key="value" cfgs
    rustflags: tuple[str, ...] = ()       # the flags the facts were probed with

    def matches(self, platform: str | None) -> bool:
        """Does a dependency's platform (None, a triple, or ``cfg(...)``) apply to this target?"""
        if platform is None:
            return True
        return _eval(_parse(platform), self)


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(resources.files("codemod.data").joinpath("targets.json").read_text())


def _all_facts() -> dict[str, list[str]]:
    return _data()["targets"]


@lru_cache(maxsize=1)
def _crt_static_respected() -> frozenset[str]:
    return frozenset(_data().get("crt_static_respected", ()))


@lru_cache(maxsize=None)
def load_target(triple: str, rustflags: tuple[str, ...] = ()) -> Target:
    """The cfg facts cargo's target probe (``rustc --print cfg --target triple <rustflags>``) gives."""
    facts = _all_facts().get(triple)
    if facts is None:
        close = difflib.get_close_matches(triple, _all_facts().keys(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join('`' + c + '`' for c in close)}?" if close else ""
        raise TargetError(f"unknown target `{triple}`{hint}")
    names, pairs = set(), set()
    for line in facts:
        if "=" in line:
            k, v = line.split("=", 1)
            pairs.add((k, v.strip('"')))
        else:
            names.add(line)
    flags = _read_flags(rustflags)
    if flags.debug_assertions:
        names.add("debug_assertions")
    for name, value in flags.features:
        if name == "crt-static":
            continue
        if value:
            pairs.add(("target_feature", name))
        else:
            pairs.discard(("target_feature", name))
    if triple in _crt_static_respected():
        # rustc: any `+crt-static` wins, then any `-crt-static`; without either, the proc-macro
        # crate type in cargo's probe turns it off
        pairs.discard(CRT_STATIC)
        if ("crt-static", True) in flags.features:
            pairs.add(CRT_STATIC)
    if flags.panic is not None:
        pairs = {p for p in pairs if p[0] != "panic"} | {("panic", flags.panic)}
    for cfg in flags.cfgs:
        if isinstance(cfg, tuple):
            pairs.add(cfg)
        else:
            names.add(cfg)
    return Target(triple, frozenset(names), frozenset(pairs), tuple(rustflags))


# -- what rustflags do to cfg --------------------------------------------------------------------


@dataclass(frozen=True)
class _Flags:
    """What rustflags change in cfg: debug assertions, target features, --cfg, panic strategy."""

    debug_assertions: bool
    features: tuple[tuple[str, bool], ...]      # (feature, on) in order
    cfgs: tuple[str | tuple[str, str], ...]
    panic: str | None


# rustc options whose value is the next argument (so that value is not read as an option)
_TAKES_VALUE = {"-L", "-l", "-o", "-A", "-W", "-D", "-F", "-Z", "--cap-lints", "--force-warn", "--crate-type",
                "--crate-name", "--edition", "--emit", "--print", "--target", "--out-dir", "--explain", "--extern",
                "--sysroot", "--error-format", "--json", "--color", "--remap-path-prefix", "--check-cfg",
                "--env-set", "--diagnostic-width"}
_CFG_ARG = re.compile(r'^\s*(?:r#)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*"([^"]*)"\s*)?$')
_TRUE, _FALSE = {"", "y", "yes", "on", "true"}, {"n", "no", "off", "false"}


def _read_flags(rustflags: tuple[str, ...]) -> _Flags:
    """The parts of rustc's command line that change `--print cfg`; everything else is ignored."""
    codegen: list[str] = []
    cfgs: list[str | tuple[str, str]] = []
    args = list(rustflags)
    i = 0
    while i < len(args):
        a = args[i]
        value = None
        if a in ("-C", "--codegen", "--cfg") and i + 1 < len(args):
            value, i = args[i + 1], i + 1
        elif a.startswith("-C") and len(a) > 2:
            a, value = "-C", a[2:]
        elif a.startswith(("--codegen=", "--cfg=")):
            a, value = a.split("=", 1)
        elif a == "-O":
            a, value = "-C", "opt-level=3"
        elif a in _TAKES_VALUE:
            i += 1
        if value is not None and a in ("-C", "--codegen"):
            codegen.append(value)
        elif value is not None and a == "--cfg":
            m = _CFG_ARG.match(value)
            if not m:
                raise TargetError(f'invalid `--cfg` argument: `{value}` (expected `key` or `key="value"`)')
            cfgs.append((m.group(1), m.group(2)) if m.group(2) is not None else m.group(1))
        i += 1
    opt_level, debug, panic, features = "0", None, None, []
    for opt in codegen:
        key, _, val = opt.partition("=")
        key = key.replace("_", "-")
        if key == "opt-level":
            opt_level = val
        elif key == "debug-assertions":
            if val in _TRUE or val in _FALSE:
                debug = val in _TRUE
        elif key == "panic":
            panic = val
        elif key == "target-feature":
            # rustc joins every -C target-feature; a name without + or - is ignored (with a warning)
            features += [(f[1:], f[0] == "+") for f in val.split(",") if f[:1] in ("+", "-") and len(f) > 1]
    on = debug if debug is not None else opt_level == "0"
    return _Flags(on, tuple(features), tuple(cfgs), panic)


# -- where cargo takes the rustflags from --------------------------------------------------------

_List = tuple[str, ...]
_Value = str | _List          # a config value: a string (split on whitespace) or an array


@dataclass(frozen=True)
class RustFlags:
    """cargo's rustflags sources for a ``--target`` build; the first that gives any flags wins:
    ``CARGO_ENCODED_RUSTFLAGS``, ``RUSTFLAGS``, then ``[target.<triple>]`` and every matching
    ``[target.'cfg(..)']`` table joined, then ``[build]`` (with ``CARGO_BUILD_RUSTFLAGS``)."""

    env: _List | None = None                          # from the environment, when set (even empty)
    triples: tuple[tuple[str, _Value], ...] = ()      # [target.<triple>].rustflags
    cfgs: tuple[tuple[str, _Value], ...] = ()         # [target.'cfg(..)'].rustflags, in cargo's (sorted) order
    triple_env: tuple[tuple[str, str], ...] = ()      # CARGO_TARGET_<TRIPLE>_RUSTFLAGS
    build: _List | None = None

    def for_target(self, triple: str, target: Target | None) -> _List:
        """The flags cargo passes for ``--target triple``; `target` is what the previous probe found
        (None on the first, when ``cfg(..)`` tables cannot be evaluated yet)."""
        if self.env is not None:
            return self.env
        flags: list[str] = []
        own = _string_list(dict(self.triples).get(triple), dict(self.triple_env).get(_env_key(triple)))
        flags += own or ()
        if target is not None:
            for key, value in self.cfgs:
                if _matches_key(key, target):
                    flags += _string_list(value, None) or ()
        if flags:
            return tuple(flags)
        return self.build or ()


@lru_cache(maxsize=None)
def probe_target(triple: str, rustflags: RustFlags = RustFlags()) -> Target:
    """The target as ``cargo build --target triple`` sees it: cargo probes rustc with the flags it
    knows before any cfg, then once more if ``[target.'cfg(..)']`` rustflags change them."""
    first = rustflags.for_target(triple, None)
    target = load_target(triple, first)
    second = rustflags.for_target(triple, target)
    return target if second == first else load_target(triple, second)


def _env_key(triple: str) -> str:
    return f"CARGO_TARGET_{triple.upper().replace('-', '_')}_RUSTFLAGS"


def _string_list(value: _Value | None, env: str | None) -> _List | None:
    """A cargo `StringList` key: an array is extended by its environment variable, a string replaced."""
    if env is not None:
        return (value if isinstance(value, tuple) else ()) + tuple(env.split())
    if value is None:
        return None
    return tuple(value.split()) if isinstance(value, str) else value


def _matches_key(key: str, target: Target) -> bool:
    """cargo's `CfgExpr::matches_key`: an unparsable cfg matches nothing."""
    if not (key.startswith("cfg(") and key.endswith(")")):
        return False
    try:
        return _eval(_parse(key), target)
    except TargetError:
        return False


def is_rustflags_variable(name: str) -> bool:
    """An environment variable `read_rustflags` or `host_triple` reads (answers depend on it)."""
    return name in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "RUSTC") or (
        name.startswith("CARGO_TARGET_") and name.endswith("_RUSTFLAGS"))


def read_rustflags(project_dir: Path, env: Mapping[str, str] | None = None) -> RustFlags:
    """The rustflags sources for a project: the environment (`env`, default ``os.environ``) and
    cargo's config files, found as for registries: ``.cargo/config.toml`` from `project_dir`
    upwards, then ``$CARGO_HOME/config.toml`` (CARGO_HOME from the process environment)."""
    from .registry.config import config_files

    env = os.environ if env is None else env
    files = config_files(Path(project_dir).resolve())
    stamp = tuple((p, st.st_mtime_ns, st.st_size) for p, st in ((p, p.stat()) for p in files))
    triples, cfgs, build = _config_rustflags(stamp)
    if "CARGO_ENCODED_RUSTFLAGS" in env:
        encoded = env["CARGO_ENCODED_RUSTFLAGS"]
        from_env: _List | None = tuple(encoded.split("\x1f")) if encoded else ()
    elif "RUSTFLAGS" in env:
        from_env = tuple(a.strip() for a in env["RUSTFLAGS"].split(" ") if a.strip())
    else:
        from_env = None
    triple_env = tuple(sorted((k, v) for k, v in env.items() if k.startswith("CARGO_TARGET_") and k.endswith("_RUSTFLAGS")))
    return RustFlags(from_env, triples, cfgs, triple_env, _string_list(build, env.get("CARGO_BUILD_RUSTFLAGS")))


@lru_cache(maxsize=64)
def _config_rustflags(stamp: tuple) -> tuple:
    """`target.*.rustflags` and `build.rustflags` merged over the files (nearest first in `stamp`)
    as cargo merges them: arrays are joined, the nearer file's items last; a nearer string wins."""
    import tomllib

    merged: dict[tuple[str, ...], _Value] = {}
    for path, _mtime, _size in reversed(stamp):          # farthest first
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise TargetError(f"{path}: invalid cargo configuration: {e}") from None
        found: list[tuple[tuple[str, ...], object]] = []
        build = data.get("build")
        if isinstance(build, dict) and "rustflags" in build:
            found.append((("build",), build["rustflags"]))
        for key, table in (data.get("target") or {}).items():
            if isinstance(table, dict) and "rustflags" in table:
                found.append((("target", key), table["rustflags"]))
        for where, value in found:
            name = ".".join(where) + ".rustflags"
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = tuple(value)
            elif not isinstance(value, str):
                raise TargetError(f"{path}: `{name}` must be a string or an array of strings")
            old = merged.get(where)
            if old is None or isinstance(old, str) and isinstance(value, str):
                merged[where] = value
            elif isinstance(old, tuple) and isinstance(value, tuple):
                merged[where] = old + value
            else:
                raise TargetError(f"{path}: `{name}` is a string in one cargo config file and an array in another")
    targets = sorted((w[1], v) for w, v in merged.items() if w[0] == "target")
    triples = tuple((k, v) for k, v in targets if not k.startswith("cfg("))
    cfgs = tuple((k, v) for k, v in targets if k.startswith("cfg("))
    return triples, cfgs, merged.get(("build",))


# -- the host ------------------------------------------------------------------------------------


def host_triple() -> str:
    """The machine's triple as cargo learns it: the ``host:`` line of ``$RUSTC -vV`` (``rustc`` when
    RUSTC is unset). `HOST_TARGET` when rustc cannot be run or names a target we have no facts for."""
    found = _rustc_host(os.environ.get("RUSTC") or "rustc")
    return found if found in _all_facts() else HOST_TARGET


_VV: dict[str, str | None] = {}
_VV_LOCK = threading.Lock()


def _rustc_vv(rustc: str) -> str | None:
    """``rustc -vV``'s output (None when it cannot be run): one process answers both the host
    triple and the installed version, however many threads ask."""
    with _VV_LOCK:
        if rustc not in _VV:
            try:
                out = subprocess.run([rustc, "-vV"], capture_output=True, text=True, timeout=30)
                _VV[rustc] = out.stdout if out.returncode == 0 else None
            except (OSError, subprocess.SubprocessError):
                _VV[rustc] = None
        return _VV[rustc]


def probe_host_soon() -> None:
    """Start ``rustc -vV`` in the background (a rustup proxy takes ~25 ms): the first build input
    needs the host triple, and the wait for the process then overlaps the run's other start-up."""
    threading.Thread(target=host_triple, name="csf-rustc-vV", daemon=True).start()


def _rustc_host(rustc: str) -> str | None:
    for line in (_rustc_vv(rustc) or "").splitlines():
        if line.startswith("host:"):
            return line.split(":", 1)[1].strip()
    return None


def installed_rust_version() -> str | None:
    """The installed rustc's version: resolver 3 prefers versions it supports when the workspace
    declares no rust-version (cargo's `incompatible-rust-versions = "fallback"`)."""
    m = re.match(r"rustc (\d+\.\d+\.\d+)", _rustc_vv("rustc") or "")
    return m.group(1) if m else None


# -- cfg expressions, parsed as cargo-platform parses them ---------------------------------------


def _ident_start(ch: str) -> bool:
    return ch == "_" or "a" <= ch <= "z" or "A" <= ch <= "Z"


def _ident_rest(ch: str) -> bool:
    return _ident_start(ch) or "0" <= ch <= "9"


def _classify(tok: tuple) -> str:
    return {"ident": "an identifier", "str": "a string"}.get(tok[0]) or f"`{tok[0]}`"


class _CfgParser:
    """cargo-platform's tokenizer and parser (``cfg.rs``), with its error messages."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def error(self, kind: str) -> TargetError:
        return TargetError(f"failed to parse `{self.text}` as a cfg expression: {kind}")

    def next(self) -> tuple | None:
        s = self.text
        while self.pos < len(s) and s[self.pos] == " ":     # only spaces: cargo rejects tabs
            self.pos += 1
        if self.pos >= len(s):
            return None
        ch = s[self.pos]
        self.pos += 1
        if ch in "(),=":
            return (ch,)
        if ch == '"':
            end = s.find('"', self.pos)
            if end < 0:
                self.pos = len(s)
                raise self.error("unterminated string in cfg")
            value, self.pos = s[self.pos:end], end + 1
            return ("str", value)
        if _ident_start(ch):
            start, raw = self.pos - 1, False
            if ch == "r" and s[self.pos:self.pos + 1] == "#":
                self.pos += 1
                if self.pos >= len(s):
                    raise self.error("expected identifier, but cfg expression ended")
                ch = s[self.pos]
                self.pos += 1
                if not _ident_start(ch):
                    raise self.error(self._unexpected(ch))
                start, raw = self.pos - 1, True
            while self.pos < len(s) and _ident_rest(s[self.pos]):
                self.pos += 1
            return ("ident", s[start:self.pos], raw)
        raise self.error(self._unexpected(ch))

    @staticmethod
    def _unexpected(ch: str) -> str:
        return f"unexpected character `{ch}` in cfg, expected parens, a comma, an identifier, or a string"

    def peek(self) -> tuple | None | TargetError:
        pos = self.pos
        try:
            return self.next()
        except TargetError as e:
            return e
        finally:
            self.pos = pos

    def try_(self, punct: str) -> bool:
        if self.peek() == (punct,):
            self.next()
            return True
        return False

    def eat(self, punct: str) -> None:
        tok = self.next()
        if tok is None:
            raise self.error(f"expected `{punct}`, but cfg expression ended")
        if tok != (punct,):
            raise self.error(f"expected `{punct}`, found {_classify(tok)}")

    def expr(self):
        tok = self.peek()
        if isinstance(tok, TargetError):
            raise tok
        if tok is None:
            raise self.error("expected start of a cfg expression, but cfg expression ended")
        if tok[0] == "ident" and not tok[2] and tok[1] in ("all", "any"):
            self.next()
            items = []
            self.eat("(")
            while not self.try_(")"):
                items.append(self.expr())
                if not self.try_(","):
                    self.eat(")")
                    break
            return (tok[1], tuple(items))
        if tok[0] == "ident" and not tok[2] and tok[1] == "not":
            self.next()
            self.eat("(")
            inner = self.expr()
            self.eat(")")
            return ("not", inner)
        value = self.cfg()
        if value[0] == "name" and value[1] in ("true", "false"):      # `r#true` too, as in cargo
            return (value[1],)
        return value

    def cfg(self):
        tok = self.next()
        if tok is None:
            raise self.error("expected identifier, but cfg expression ended")
        if tok[0] != "ident":
            raise self.error(f"expected identifier, found {_classify(tok)}")
        if self.try_("="):
            value = self.next()
            if value is None:
                raise self.error("expected a string, but cfg expression ended")
            if value[0] != "str":
                raise self.error(f"expected a string, found {_classify(value)}")
            return ("pair", tok[1], value[1])
        return ("name", tok[1])

    def finish(self) -> None:
        rest = self.text[self.pos:].lstrip(" ")
        if rest:
            raise self.error(f"unexpected content `{rest}` found after cfg expression")


@lru_cache(maxsize=None)
def _parse(platform: str):
    """A platform as cargo's `Platform::from_str` reads it: ``cfg(<expr>)`` or a target name.
    Nested tuples: ('all'|'any', (..)), ('not', x), ('name', n), ('pair', k, v), ('true',),
    ('false',), ('triple', t)."""
    if platform.startswith("cfg(") and platform.endswith(")"):
        p = _CfgParser(platform[4:-1])
        tree = p.expr()
        p.finish()
        return tree
    for ch in platform:
        if not (ch.isalnum() or ch in "_-."):
            what = ("unexpected `(` character, cfg expressions must start with `cfg(`" if "(" in platform
                    else f"unexpected character {ch} in target name")
            raise TargetError(f"failed to parse `{platform}` as a cfg expression: invalid target specifier: {what}")
    return ("triple", platform)


def _eval(node, target: Target) -> bool:
    kind = node[0]
    if kind == "all":
        return all(_eval(n, target) for n in node[1])
    if kind == "any":
        return any(_eval(n, target) for n in node[1])
    if kind == "not":
        return not _eval(node[1], target)
    if kind == "name":
        return node[1] in target.names
    if kind == "pair":
        return (node[1], node[2]) in target.pairs
    if kind in ("true", "false"):
        return kind == "true"
    return node[1] == target.triple
