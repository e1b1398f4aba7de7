"""The catalog of native-library crates a static build must not link from the system, as data:
the `[[libraries]]` tables of `rules/*.toml` (schema in rules/README.md).

Each entry names a `-sys` crate and a range of its versions, says when a target unit of it links
a system library (clauses over the features it is built with), and lists its static remedies
(`static-dep`: an explicit dependency on the sys crate with the static feature, which features
unify into every path) or why there is none (`unfixable`). Culprit-side remedies (a feature of
the crate that depends on the sys crate, e.g. rusqlite `bundled`) are `[[rules]]` with kind
`static-feature` and a `blocker`.

Pure: the checks read a Resolution and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .resolve import TARGET_SIDE, Resolution
from .rules import RULES_DIR, RuleError, parsed_once, toml_data
from .semver import SemverError, parse_req, parse_version

LIBRARY_KINDS = ("static-dep",)
DEFAULT_BLOCKER = "openssl-sys"


@dataclass(frozen=True)
class SystemClause:
    """The unit links `library` from the system when every `when` feature is on and no `unless` one is."""

    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    library: str = ""              # empty: the entry's own library
    why: str = ""
    native_only: bool = False      # holds only when the target is the host: cross-compiling, the pkg-config
    #                                crate refuses (unless PKG_CONFIG_ALLOW_CROSS) and the build compiles its own

    def holds(self, features: set[str] | frozenset[str], cross: bool = False) -> bool:
        if self.native_only and cross:
            return False
        return all(f in features for f in self.when) and not any(f in features for f in self.unless)

    def as_json(self) -> dict:
        doc = {"when": list(self.when), "unless": list(self.unless), "library": self.library, "why": self.why}
        if self.native_only:
            doc["native_only"] = True
        return doc


@dataclass(frozen=True)
class LibraryRemedy:
    """A catalog remedy: features of the crate that build its library from source."""

    kind: str                      # static-dep
    add_features: tuple[str, ...]
    notes: str = ""
    implies: tuple[str, ...] = ()  # features the added ones turn on in the crate (checked against the index)

    def as_json(self) -> dict:
        return {"kind": self.kind, "add_features": list(self.add_features), "notes": self.notes}


@dataclass(frozen=True)
class Library:
    """A catalog entry: a -sys crate's versions, when they link the system library, and the remedies."""

    crate: str
    library: str
    versions: str
    system: tuple[SystemClause, ...]
    remedies: tuple[LibraryRemedy, ...] = ()
    needs: tuple[str, ...] = ()
    notes: str = ""
    unfixable: str = ""
    bundled_source: str = ""       # the directory inside the crate its static build compiles from
    file: str = ""

    def covers(self, version: str) -> bool:
        return parse_req(self.versions).matches(parse_version(version))

    def links_system(self, features, cross: bool = False) -> tuple[SystemClause, ...]:
        """The clauses that hold for a unit built with ``features`` (empty: it links nothing from the
        system); ``cross``: the target is not the host."""
        feats = set(features)
        return tuple(c for c in self.system if c.holds(feats, cross))

    def static_with(self, features) -> bool:
        return not self.links_system(features)

    def as_json(self) -> dict:
        return {"crate": self.crate, "library": self.library, "versions": self.versions,
                "system": [c.as_json() for c in self.system], "remedies": [r.as_json() for r in self.remedies],
                "needs": list(self.needs), "notes": self.notes, "unfixable": self.unfixable}


def _strings(value, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def _text(value, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise RuleError(f"{where}: `{key}` must be a string")
    return value


def parse_libraries(text: str, where: str) -> list[Library]:
    return libraries_from(toml_data(text, where), where)


def libraries_from(data: dict, where: str) -> list[Library]:
    out = []
    for i, e in enumerate(data.get("libraries", [])):
        here = f"{where}: libraries[{i}]"
        extra = set(e) - {"crate", "library", "versions", "system", "remedies", "needs", "notes", "unfixable",
                          "bundled_source"}
        if extra:
            raise RuleError(f"{here}: unknown key `{sorted(extra)[0]}`")
        for key in ("crate", "library", "versions"):
            if not isinstance(e.get(key), str):
                raise RuleError(f"{here}: needs `crate`, `library` and `versions` strings")
        try:
            parse_req(e["versions"])
        except SemverError as err:
            raise RuleError(f"{here}: {err}") from None
        clauses = []
        for j, c in enumerate(e.get("system", [])):
            cw = f"{here}.system[{j}]"
            extra = set(c) - {"when", "unless", "library", "why", "native_only"}
            if extra:
                raise RuleError(f"{cw}: unknown key `{sorted(extra)[0]}`")
            native = c.get("native_only", False)
            if not isinstance(native, bool):
                raise RuleError(f"{cw}: `native_only` must be true or false")
            clauses.append(SystemClause(_strings(c.get("when", []), cw, "when"), _strings(c.get("unless", []), cw, "unless"),
                                        _text(c.get("library", ""), cw, "library"), _text(c.get("why", ""), cw, "why"),
                                        native))
        if not clauses:
            raise RuleError(f"{here}: needs at least one `[[libraries.system]]` clause (when does it link the system library?)")
        remedies = []
        for j, m in enumerate(e.get("remedies", [])):
            mw = f"{here}.remedies[{j}]"
            extra = set(m) - {"kind", "add_features", "notes", "implies"}
            if extra:
                raise RuleError(f"{mw}: unknown key `{sorted(extra)[0]}`")
            if m.get("kind") not in LIBRARY_KINDS:
                raise RuleError(f"{mw}: `kind` must be one of {', '.join(LIBRARY_KINDS)}")
            add = _strings(m.get("add_features", []), mw, "add_features")
            if not add:
                raise RuleError(f"{mw}: `add_features` must name at least one feature")
            remedies.append(LibraryRemedy(m["kind"], add, _text(m.get("notes", ""), mw, "notes"),
                                          _strings(m.get("implies", []), mw, "implies")))
        unfixable = _text(e.get("unfixable", ""), here, "unfixable")
        if remedies and unfixable:
            raise RuleError(f"{here}: an entry with remedies cannot be `unfixable`")
        lib = Library(e["crate"], e["library"], e["versions"], tuple(clauses), tuple(remedies),
                      _strings(e.get("needs", []), here, "needs"), _text(e.get("notes", ""), here, "notes"), unfixable,
                      _text(e.get("bundled_source", ""), here, "bundled_source"), where)
        # each remedy clears the clauses that hold without any feature; together they clear all
        # (libsqlite3-sys: `bundled`, and for SQLCipher `bundled-sqlcipher-vendored-openssl`)
        base = [c for c in lib.system if not c.when]
        for m in lib.remedies:
            if any(c.holds(set(m.add_features) | set(m.implies)) for c in base):
                raise RuleError(f"{here}: remedy +{', +'.join(m.add_features)} leaves a `system` clause true")
        every = {f for m in lib.remedies for f in (*m.add_features, *m.implies)}
        if lib.remedies and any(not set(c.unless) & every for c in lib.system):
            raise RuleError(f"{here}: the remedies together leave a `system` clause true")
        out.append(lib)
    return out


def load_catalog(directory: Path = RULES_DIR) -> list[Library]:
    return parsed_once(libraries_from, directory)


def blocker_names(catalog: list[Library]) -> list[str]:
    """Every sys crate of the catalog, OpenSSL first, then by name."""
    names = sorted({lib.crate for lib in catalog})
    return sorted(names, key=lambda n: (n != DEFAULT_BLOCKER, n))


def parse_blocker_option(value: str, catalog: list[Library]) -> tuple[str, ...]:
    """`--blocker`: a crate, a comma-separated list, or `all` (every catalog entry)."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise RuleError("--blocker needs a crate name, a comma-separated list, or `all`")
    out: list[str] = []
    for n in names:
        for crate in (blocker_names(catalog) if n == "all" else [n]):
            if crate not in out:
                out.append(crate)
    return tuple(out)


def entry_for(catalog: list[Library], crate: str, version: str) -> Library | None:
    return next((lib for lib in catalog if lib.crate == crate and lib.covers(version)), None)


@dataclass(frozen=True)
class UnitStatus:
    """One target unit of a catalog crate: its version, features and the system clauses that hold."""

    version: str
    features: tuple[str, ...]
    entry: Library | None            # None: no catalog entry covers this version
    system: tuple[SystemClause, ...]

    @property
    def links_system(self) -> bool:
        return bool(self.system)


@dataclass(frozen=True)
class BlockerStatus:
    """A catalog crate as the resolution builds it for the target, unit by unit."""

    crate: str
    library: str
    units: tuple[UnitStatus, ...]     # target units of the crate

    @property
    def built(self) -> bool:
        return bool(self.units)

    @property
    def links_system(self) -> bool:
        return any(u.links_system for u in self.units)

    @property
    def static(self) -> bool:
        """Built for the target, and every unit is built from source."""
        return self.built and not self.links_system

    def libraries(self) -> list[str]:
        out = []
        for u in self.units:
            for c in u.system:
                name = c.library or self.library
                if name not in out:
                    out.append(name)
        return out


def is_cross(res: Resolution) -> bool:
    return res.input.target != res.input.host


def unit_status(res: Resolution, crate: str, catalog: list[Library]) -> BlockerStatus:
    cross = is_cross(res)
    units = sorted((pid for pid, side in res.units if pid.name == crate and side == TARGET_SIDE),
                   key=lambda p: parse_version(p.version))
    out = []
    for pid in units:
        feats = res.unit_features(pid, TARGET_SIDE)
        entry = entry_for(catalog, crate, pid.version)
        if entry is not None:
            system = entry.links_system(feats, cross)
        else:
            # a version no entry has checked: judged by every entry for the crate, so a release the
            # catalog does not know yet is never taken for static by mistake
            system = tuple(dict.fromkeys(c for lib in catalog if lib.crate == crate for c in lib.links_system(feats, cross)))
        out.append(UnitStatus(pid.version, tuple(sorted(feats)), entry, system))
    library = next((lib.library for lib in catalog if lib.crate == crate), crate)
    return BlockerStatus(crate, library, tuple(out))


def fixed_predicate(crate: str, catalog: list[Library]):
    """plan.py's `blocker_fixed` generalised: every target unit of `crate` is built from source."""
    def fixed(res: Resolution, _blocker: str = crate) -> bool:
        return not unit_status(res, crate, catalog).links_system
    return fixed


def all_static(res: Resolution, catalog: list[Library], crates=None) -> bool:
    """No catalog crate (or none of ``crates``) links a system library on the target."""
    return not any(unit_status(res, c, catalog).links_system for c in (crates or blocker_names(catalog)))


def crate_source_dir(index, name: str, version: str) -> Path | None:
    """Where a crate's source can be read without downloading it: a `cargo vendor` or directory
    source (Debian's /usr/share/cargo/registry). None when the index is a registry."""
    from .registry.sources import VendorSource

    seen = []
    for idx in (getattr(index, "default", None), *getattr(index, "named", {}).values(), index):
        src = getattr(idx, "source", None)
        if isinstance(src, VendorSource) and src not in seen:
            seen.append(src)
            for d in (src.root / f"{name}-{version}", src.root / f"{name}-{version.split('+')[0]}", src.root / name):
                if (d / "Cargo.toml").is_file():
                    return d
    return None


def stripped(lib: Library, version: str, served_features, source_dir: Path | None) -> str:
    """Why the crate as served cannot be built from source although the catalog's remedy exists
    upstream: its static feature was removed, or the bundled library's sources were."""
    wanted = [f for m in lib.remedies for f in m.add_features]
    if wanted and not any(f in served_features for f in wanted):
        named = lib.remedies[0].add_features          # the main switch; the others are flavours of it
        return (f"{lib.crate} {version} as served has no `{'`/`'.join(named)}` feature (crates.io's "
                f"has it): this source strips the static build; use crates.io's {lib.crate}, or a system {lib.library} "
                f"with a static archive")
    if source_dir is not None and lib.bundled_source and not (source_dir / lib.bundled_source).exists():
        return (f"{lib.crate} {version} in {source_dir} has no {lib.bundled_source}/ to build {lib.library} from: "
                f"this source strips the bundled library, so `{'`/`'.join(lib.remedies[0].add_features)}` breaks the build; "
                f"use crates.io's {lib.crate}, or a system {lib.library} with a static archive")
    return ""


def list_text(catalog: list[Library]) -> list[str]:
    lines = []
    for lib in catalog:
        if lib.unfixable:
            how = "no static remedy"
        else:
            how = ", ".join(f"{m.kind} (+{', +'.join(m.add_features)})" for m in lib.remedies) or "remove the feature that links it"
        cond = "; ".join(_clause_text(c) for c in lib.system)
        when = "system always" if cond == "always" else f"system when {cond}"
        lines.append(f"{lib.crate} {lib.versions} [{lib.library}]: {when}; {how}")
    return lines


def _clause_text(c: SystemClause) -> str:
    parts = [f"`{f}`" for f in c.when] + [f"no `{f}`" for f in c.unless]
    if c.native_only:
        parts.append("not cross-compiling")
    return " and ".join(parts) or "always"
