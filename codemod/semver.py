"""Cargo's version and version-requirement semantics (the ``semver`` crate cargo uses).

Only what cargo needs: parse ``MAJOR.MINOR.PATCH[-pre][+build]`` versions, parse requirements
(``^``, ``~``, ``*``, ``=``, ``>``, ``>=``, ``<``, ``<=``, wildcards, comma-joined, a bare
``1.2`` meaning ``^1.2``), match with the pre-release rule, and tell which versions share a
semver-compatible line (cargo allows one version per line in a resolve).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

from .errors import CodemodError


class SemverError(CodemodError):
    pass


_VERSION = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def _pre_key(pre: tuple[str, ...]) -> tuple:
    # A release sorts after all of its pre-releases; numeric identifiers sort before alphanumeric.
    if not pre:
        return (1,)
    return (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre))


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A semver version, compared as cargo compares them."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = ""

    @property
    def key(self) -> tuple:
        return (self.major, self.minor, self.patch, _pre_key(self.pre), self.build)

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            s += "-" + ".".join(self.pre)
        if self.build:
            s += "+" + self.build
        return s

    @property
    def compat_line(self) -> tuple[int, ...]:
        """Versions with the same line are semver-compatible; cargo keeps one per line."""
        if self.major:
            return (self.major,)
        if self.minor:
            return (0, self.minor)
        return (0, 0, self.patch)


@lru_cache(maxsize=None)
def parse_version(text: str) -> Version:
    m = _VERSION.match(text.strip())
    if not m:
        raise SemverError(f"invalid version `{text}`")
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")


_COMPARATOR = re.compile(
    r"^(=|>=|<=|>|<|~|\^)?\s*"
    r"(\d+|\*|x|X)(?:\.(\d+|\*|x|X))?(?:\.(\d+|\*|x|X))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-.]+)?$"
)


@dataclass(frozen=True, slots=True)
class Comparator:
    """One comparator of a version requirement (`^1.2`, `>=0.9, <0.11`, ...)."""

    op: str  # one of = > >= < <= ~ ^ *
    major: int | None
    minor: int | None
    patch: int | None
    pre: tuple[str, ...]

    def _lower(self) -> Version:
        return Version(self.major or 0, self.minor or 0, self.patch or 0, self.pre)

    def matches(self, v: Version) -> bool:
        op, M, m, p = self.op, self.major, self.minor, self.patch
        if op == "*":
            return True
        if op == "=":
            if v.major != M:
                return False
            if m is not None and v.minor != m:
                return False
            if p is not None and v.patch != p:
                return False
            return m is None or p is None or v.pre == self.pre
        if op == ">":
            if m is None:
                return v.major > M
            if p is None:
                return (v.major, v.minor) > (M, m)
            return _cmp(v, self._lower()) > 0
        if op == ">=":
            return _cmp(v, self._lower()) >= 0
        if op == "<":
            return _cmp(v, self._lower()) < 0
        if op == "<=":
            if m is None:
                return v.major <= M
            if p is None:
                return (v.major, v.minor) <= (M, m)
            return _cmp(v, self._lower()) <= 0
        if op == "~":
            if v.major != M:
                return False
            if m is not None and v.minor != m:
                return False
            return _cmp(v, self._lower()) >= 0
        # caret
        if v.major != M:
            return False
        if m is None:
            return True
        if p is None:
            return v.minor == m if M == 0 else v.minor >= m
        if _cmp(v, self._lower()) < 0:
            return False
        if M > 0:
            return True
        if m > 0:
            return v.minor == m
        return v.minor == 0 and v.patch == p


def _cmp(a: Version, b: Version) -> int:
    ka, kb = a.key[:4], b.key[:4]
    return (ka > kb) - (ka < kb)


@dataclass(frozen=True, slots=True)
class VersionReq:
    """A version requirement as cargo reads it: comparators that must all match."""

    text: str
    comparators: tuple[Comparator, ...]

    def matches(self, v: Version) -> bool:
        if not all(c.matches(v) for c in self.comparators):
            return False
        if not v.pre:
            return True
        # A pre-release only matches a comparator that names the same x.y.z with a pre-release.
        return any(
            c.major == v.major and c.minor == v.minor and c.patch == v.patch and c.pre
            for c in self.comparators
        )

    def __str__(self) -> str:
        return self.text


def _part(s: str | None) -> int | None | str:
    if s is None:
        return None
    if s in ("*", "x", "X"):
        return "*"
    return int(s)


@lru_cache(maxsize=None)
def parse_req(text: str) -> VersionReq:
    raw = text.strip()
    if raw in ("", "*"):
        return VersionReq(text, (Comparator("*", None, None, None, ()),))
    comps = []
    for piece in raw.split(","):
        piece = piece.strip()
        m = _COMPARATOR.match(piece)
        if not m:
            raise SemverError(f"invalid version requirement `{text}`")
        op = m.group(1) or "^"
        parts = [_part(m.group(i)) for i in (2, 3, 4)]
        pre = tuple(m.group(5).split(".")) if m.group(5) else ()
        if "*" in parts:
            # A wildcard ends the version: 1.* means >=1.0.0, <2.0.0 whatever the operator.
            idx = parts.index("*")
            if idx == 0:
                comps.append(Comparator("*", None, None, None, ()))
                continue
            parts = parts[:idx] + [None] * (3 - idx)
            op = "=" if op in ("^", "=", "~") else op
        major, minor, patch = parts
        if pre and patch is None:
            raise SemverError(f"invalid version requirement `{text}`: pre-release needs a full version")
        comps.append(Comparator(op, major, minor, patch, pre))
    return VersionReq(text, tuple(comps))
