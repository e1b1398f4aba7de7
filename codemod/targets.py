"""Target facts and cfg(...) evaluation, as cargo decides whether a `[target.X]` table applies.

Facts come from ``rustc --print cfg --target T`` (shipped in ``data/targets.json``; regenerate
with ``python -m codemod.data.generate_targets``).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .errors import TargetError

DEFAULT_TARGET = "x86_64-unknown-linux-musl"
HOST_TARGET = "x86_64-unknown-linux-gnu"


@dataclass(frozen=True)
class Target:
    triple: str
    names: frozenset[str]                 # bare cfgs: unix, windows, ...
    pairs: frozenset[tuple[str, str]]     # key="value" cfgs

    def matches(self, platform: str | None) -> bool:
        """Does a dependency's platform (None, a triple, or ``cfg(...)``) apply to this target?"""
        if platform is None:
            return True
        return _evaluate(platform, self)


@lru_cache(maxsize=1)
def _all_facts() -> dict[str, list[str]]:
    text = resources.files("codemod.data").joinpath("targets.json").read_text()
    return json.loads(text)["targets"]


@lru_cache(maxsize=None)
def load_target(triple: str) -> Target:
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
    return Target(triple, frozenset(names), frozenset(pairs))


_TOKEN = re.compile(r'\s*(?:(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>"[^"]*")|(?P<punct>[(),=]))')


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise TargetError(f"invalid cfg expression `{text}`")
        out.append(m.group(m.lastgroup))
        pos = m.end()
    return out


@lru_cache(maxsize=None)
def _parse(platform: str):
    """Parse ``cfg(...)`` into nested tuples: ('all'|'any', [..]), ('not', x), ('name', n), ('pair', k, v)."""
    platform = platform.strip()
    if not platform.startswith("cfg("):
        return ("triple", platform)
    toks = _tokens(platform[3:])
    pos = 0

    def expect(t):
        nonlocal pos
        if pos >= len(toks) or toks[pos] != t:
            raise TargetError(f"invalid cfg expression `{platform}`")
        pos += 1

    def expr():
        nonlocal pos
        if pos >= len(toks):
            raise TargetError(f"invalid cfg expression `{platform}`")
        tok = toks[pos]
        pos += 1
        if tok in ("all", "any", "not") and pos < len(toks) and toks[pos] == "(":
            expect("(")
            items = []
            while toks[pos] != ")":
                items.append(expr())
                if toks[pos] == ",":
                    pos += 1
            expect(")")
            if tok == "not":
                if len(items) != 1:
                    raise TargetError(f"invalid cfg expression `{platform}`: not() takes one argument")
                return ("not", items[0])
            return (tok, tuple(items))
        if not re.match(r"[A-Za-z_]", tok):
            raise TargetError(f"invalid cfg expression `{platform}`")
        if pos < len(toks) and toks[pos] == "=":
            pos += 1
            value = toks[pos]
            pos += 1
            return ("pair", tok, value.strip('"'))
        return ("name", tok)

    expect("(")
    tree = expr()
    expect(")")
    if pos != len(toks):
        raise TargetError(f"invalid cfg expression `{platform}`")
    return tree


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
    return node[1] == target.triple


def _evaluate(platform: str, target: Target) -> bool:
    return _eval(_parse(platform), target)
