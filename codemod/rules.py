"""Curated knowledge about culprit crates, as data: `rules/*.toml` (schema in rules/README.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import CodemodError
from .semver import SemverError, parse_req, parse_version

# vendored-feature and rustls keep OpenSSL out; static-feature builds another catalog library
# (codemod/catalog.py) from source through a feature of the culprit and names that library's crate.
KINDS = ("vendored-feature", "rustls", "static-feature")


def _rules_dir() -> Path:
    """rules/ at the top of a checkout; ``codemod/ruledata/`` in an installed wheel (pyproject.toml)."""
    here = Path(__file__).resolve().parent
    installed = here / "ruledata"
    return installed if installed.is_dir() else here.parent / "rules"


RULES_DIR = _rules_dir()


class RuleError(CodemodError):
    pass


@dataclass(frozen=True)
class RuleRemedy:
    """One remedy of a rule: the features to add or remove, and the default-features switch."""

    kind: str
    add_features: tuple[str, ...] = ()
    remove_features: tuple[str, ...] = ()
    default_features: bool | None = None     # False: the remedy needs `default-features = false`
    notes: str = ""
    blocker: str = "openssl-sys"             # the sys crate the remedy builds from source

    def as_json(self) -> dict:
        doc = {"kind": self.kind, "add_features": list(self.add_features),
               "remove_features": list(self.remove_features), "default_features": self.default_features,
               "notes": self.notes}
        if self.blocker != "openssl-sys":
            doc["blocker"] = self.blocker
        return doc


@dataclass(frozen=True)
class Rule:
    """What `rules/` says about a culprit crate's versions: the remedies it offers."""

    crate: str
    versions: str
    remedies: tuple[RuleRemedy, ...]
    notes: str = ""
    file: str = ""

    def covers(self, crate: str, version: str) -> bool:
        return crate == self.crate and parse_req(self.versions).matches(parse_version(version))

    def as_json(self) -> dict:
        return {"crate": self.crate, "versions": self.versions, "remedies": [r.as_json() for r in self.remedies]}


def _strings(value, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def toml_data(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"{where}: invalid TOML: {e}") from None


def parse_rules(text: str, where: str) -> list[Rule]:
    return rules_from(toml_data(text, where), where)


def rules_from(data: dict, where: str) -> list[Rule]:
    unknown = set(data) - {"rules", "libraries"}     # `libraries`: the catalog (catalog.py)
    if unknown:
        raise RuleError(f"{where}: unknown top-level key `{sorted(unknown)[0]}`")
    out = []
    for i, r in enumerate(data.get("rules", [])):
        here = f"{where}: rules[{i}]"
        extra = set(r) - {"crate", "versions", "notes", "remedies"}
        if extra:
            raise RuleError(f"{here}: unknown key `{sorted(extra)[0]}`")
        if not isinstance(r.get("crate"), str) or not isinstance(r.get("versions"), str):
            raise RuleError(f"{here}: needs `crate` and `versions` strings")
        try:
            parse_req(r["versions"])
        except SemverError as e:
            raise RuleError(f"{here}: {e}") from None
        remedies = []
        for j, m in enumerate(r.get("remedies", [])):
            mw = f"{here}.remedies[{j}]"
            extra = set(m) - {"kind", "add_features", "remove_features", "default_features", "notes", "blocker"}
            if extra:
                raise RuleError(f"{mw}: unknown key `{sorted(extra)[0]}`")
            if m.get("kind") not in KINDS:
                raise RuleError(f"{mw}: `kind` must be one of {', '.join(KINDS)}")
            df = m.get("default_features")
            if df is not None and not isinstance(df, bool):
                raise RuleError(f"{mw}: `default_features` must be true or false")
            blocker = m.get("blocker", "openssl-sys")
            if not isinstance(blocker, str) or (m["kind"] == "static-feature") == (blocker == "openssl-sys"):
                raise RuleError(f"{mw}: a `static-feature` remedy names the `blocker` it builds from source "
                                "(another crate than openssl-sys); other kinds are about openssl-sys")
            add = _strings(m.get("add_features", []), mw, "add_features")
            if not add:
                raise RuleError(f"{mw}: `add_features` must name at least one feature")
            remedies.append(RuleRemedy(m["kind"], add, _strings(m.get("remove_features", []), mw, "remove_features"),
                                       df, m.get("notes", ""), blocker))
        out.append(Rule(r["crate"], r["versions"], tuple(remedies), r.get("notes", ""), where))
    return out


CACHE_DIR: list[Path] = []        # --cache-dir, when given (else the default cache directory)
_PARSED: dict[tuple, list] = {}


def parsed_once(parse, directory: Path) -> list:
    """`parse(data, name)` over the rule files' TOML data, once per run for the same files (each
    workspace of a monorepo run asks)."""
    import hashlib

    paths = sorted(Path(directory).glob("*.toml"))
    seen = (parse, str(directory), tuple((f.name, st.st_size, st.st_mtime_ns) for f in paths for st in [f.stat()]))
    if seen not in _PARSED:              # read and digested once per run while the files stay as they are
        files = [(f.name, f.read_bytes()) for f in paths]
        stamp = hashlib.sha256(repr([(name, hashlib.sha256(body).hexdigest()) for name, body in files]).encode()).hexdigest()
        key = (parse, str(directory), stamp)
        if key not in _PARSED:
            out = []
            for name, data in _documents(files, stamp):
                out.extend(parse(data, name))
            _PARSED[key] = out
        _PARSED[seen] = _PARSED[key]
    return list(_PARSED[seen])


def _documents(files: list[tuple[str, bytes]], stamp: str) -> list[tuple[str, dict]]:
    """(name, TOML data) of each rule file. tomllib takes about a millisecond a file and every run
    reads them all, so the data is also kept as JSON in the cache directory (read in a tenth of
    that) under the files' digest; a cache that cannot be written or read only costs the speed."""
    import json
    import os
    import threading

    cache = None
    try:
        from .registry.cache import default_cache_dir

        cache = Path(CACHE_DIR[0] if CACHE_DIR else default_cache_dir()) / f"rules-{stamp[:32]}.json"
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("stamp") == stamp:
            return [(name, data) for name, data in stored["documents"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    docs = []
    for name, body in files:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RuleError(f"{name}: not UTF-8: {e}") from None
        docs.append((name, toml_data(text, name)))
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({"stamp": stamp, "documents": docs}), encoding="utf-8")
            os.replace(tmp, cache)
        except (OSError, TypeError, ValueError):
            pass
    return docs


def load_rules(directory: Path = RULES_DIR) -> list[Rule]:
    rules = parsed_once(rules_from, directory)
    if not rules:
        # an installation without its rules would plan without the culprits' knowledge: refuse
        raise RuleError(f"no rules found in {directory}: the installation is incomplete (reinstall cargo-static-fix)")
    return rules


def rules_for(rules: list[Rule], crate: str, version: str) -> list[Rule]:
    return [r for r in rules if r.covers(crate, version)]
