"""Reading one Cargo.toml: its package, features and every dependency entry with where it is written."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ManifestError
from .model import BUILD, DEV, NORMAL, Dep

# (table key, kind); cargo accepts the underscore spellings too.
DEP_TABLES = (
    ("dependencies", NORMAL),
    ("dev-dependencies", DEV),
    ("dev_dependencies", DEV),
    ("build-dependencies", BUILD),
    ("build_dependencies", BUILD),
)


@dataclass(frozen=True)
class Unanalysable:
    """A dependency the analysis cannot follow (a git source it cannot read, ...), and why."""

    package: str
    dependency: str
    reason: str

    def as_json(self) -> dict:
        return {"package": self.package, "dependency": self.dependency, "reason": self.reason}


@dataclass
class Manifest:
    """A Cargo.toml: its text, its parsed data and its dependencies."""

    path: Path                       # the Cargo.toml file
    text: str
    data: dict
    deps: list[Dep] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def package(self) -> dict | None:
        return self.data.get("package")

    @property
    def workspace(self) -> dict | None:
        return self.data.get("workspace")

    @property
    def name(self) -> str:
        return self.package["name"] if self.package else self.dir.name

    @property
    def version(self) -> str:
        v = (self.package or {}).get("version", "0.0.0")
        return v if isinstance(v, str) else "0.0.0"   # `version.workspace = true`: resolved by the workspace

    @property
    def features(self) -> dict[str, list[str]]:
        return self.data.get("features", {})

    @property
    def proc_macro(self) -> bool:
        lib = self.data.get("lib", {})
        return bool(lib.get("proc-macro", lib.get("proc_macro", False)))

    @property
    def links(self) -> str | None:
        return (self.package or {}).get("links")


def load_manifest(path: Path, texts: dict[Path, str] | None = None) -> Manifest:
    """Read and parse a Cargo.toml; `texts` maps resolved paths to edited, not yet written, contents."""
    path = manifest_file(path)
    real = None
    try:
        if texts and (real := path.resolve()) in texts:
            text = texts[real]
        else:
            text = read_text(path)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read: {e}") from None
    return parse_manifest(path, real or path.resolve(), text)


def manifest_file(path: Path) -> Path:
    path = Path(path)
    return path / "Cargo.toml" if path.is_dir() or path.suffix != ".toml" else path


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8")         # no newline translation: CRLF stays


def parse_manifest(path: Path, real: Path, text: str) -> Manifest:
    """`text` as the Cargo.toml at `path` (as named in messages; `real`: resolved)."""
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))      # cargo accepts a UTF-8 BOM
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path}: invalid TOML: {e}") from None
    _check_shape(path, data)
    return Manifest(real, text, data)


def _type_name(value) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(type(value), "value")


def _check_shape(path: Path, data: dict) -> None:
    """The keys the analysis reads have the types cargo requires (cargo's own wording)."""
    def bad(key: str, value, expected: str):
        raise ManifestError(f"{path}: `{key}`: invalid type: {_type_name(value)}, expected {expected}")

    pkg = data.get("package", data.get("project"))
    if pkg is not None:
        if not isinstance(pkg, dict):
            bad("package", pkg, "a table")
        if "name" not in pkg:
            raise ManifestError(f"{path}: `[package]` is missing the field `name`")
        if not isinstance(pkg["name"], str) or not pkg["name"]:
            bad("package.name", pkg["name"], "a non-empty string")
        v = pkg.get("version")
        if v is not None and not isinstance(v, (str, dict)):
            bad("package.version", v, "a string or `{ workspace = true }`")
        for key in ("edition", "links", "resolver", "rust-version"):
            if key in pkg and not isinstance(pkg[key], (str, dict)):
                bad(f"package.{key}", pkg[key], "a string")
    for key in ("workspace", "lib", "target", "patch", "replace"):
        if key in data and not isinstance(data[key], dict):
            bad(key, data[key], "a table")
    feats = data.get("features", {})
    if not isinstance(feats, dict):
        bad("features", feats, "a table")
    for name, values in feats.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            bad(f"features.{name}", values, "an array of strings")
    for table, _kind, _platform, entries in _dep_tables(data):
        for name, spec in entries.items():
            where = ".".join(table) + "." + name
            if isinstance(spec, str):
                continue
            if not isinstance(spec, dict):
                bad(where, spec, "a version string or a table")
            for k in ("version", "package", "path", "git", "registry", "branch", "tag", "rev"):
                if k in spec and not isinstance(spec[k], str):
                    bad(f"{where}.{k}", spec[k], "a string")
            for k in ("optional", "default-features", "default_features", "workspace"):
                if k in spec and not isinstance(spec[k], bool):
                    bad(f"{where}.{k}", spec[k], "a boolean")
            if "features" in spec and (not isinstance(spec["features"], list)
                                       or not all(isinstance(f, str) for f in spec["features"])):
                bad(f"{where}.features", spec["features"], "an array of strings")


def _dep_tables(data: dict):
    """Yield (table path, kind, platform, table) for every dependency table of a manifest."""
    for key, kind in DEP_TABLES:
        if isinstance(data.get(key), dict):
            yield (key,), kind, None, data[key]
    for platform, tables in (data.get("target") or {}).items():
        if not isinstance(tables, dict):
            continue
        for key, kind in DEP_TABLES:
            if isinstance(tables.get(key), dict):
                yield ("target", platform, key), kind, platform, tables[key]


def _bool(spec: dict, *names: str, default: bool) -> bool:
    for n in names:
        if n in spec:
            return bool(spec[n])
    return default


def parse_dep(name: str, spec, kind: str, platform: str | None, table: tuple[str, ...],
              base_dir: Path, where: str) -> Dep:
    """One entry as written; `workspace = true` entries come back with inherited=True, unmerged."""
    if isinstance(spec, str):
        return Dep(name, name, spec, kind, platform, table=table)
    if not isinstance(spec, dict):
        raise ManifestError(f"{where}: dependency `{name}` must be a string or a table")
    features = tuple(spec.get("features", ()))
    df = _bool(spec, "default-features", "default_features", default=True)
    common = dict(kind=kind, target=platform, optional=bool(spec.get("optional", False)),
                  default_features=df, features=features, table=table)
    if spec.get("workspace") is True:
        # Only an explicit `default-features = true` can matter here (see `inherit`).
        common["default_features"] = _bool(spec, "default-features", "default_features", default=False)
        return Dep(name, name, "*", inherited=True, **common)
    package = spec.get("package", name)
    req = spec.get("version", "*")
    if "git" in spec:
        ref = next(((k, str(spec[k])) for k in ("rev", "tag", "branch") if k in spec), None)
        return Dep(name, package, req, source="git", git=spec["git"], git_ref=ref, **common)
    if "path" in spec:
        return Dep(name, package, req, source="path", path=str((base_dir / spec["path"]).resolve()), **common)
    return Dep(name, package, req, registry=spec.get("registry"), **common)


def manifest_deps(m: Manifest) -> list[Dep]:
    where = str(m.path)
    out = []
    for table, kind, platform, entries in _dep_tables(m.data):
        for name, spec in entries.items():
            out.append(parse_dep(name, spec, kind, platform, table, m.dir, where))
    return out


def inherit(dep: Dep, root: Manifest) -> Dep:
    """Merge a `workspace = true` entry with the root's `[workspace.dependencies]` entry, as cargo does:
    version, source and default-features come from the root; member features add to the root's."""
    wdeps = (root.workspace or {}).get("dependencies", {})
    if dep.name not in wdeps:
        raise ManifestError(
            f"{root.path}: dependency `{dep.name}` is `workspace = true` but `[workspace.dependencies]` has no `{dep.name}`"
        )
    base = parse_dep(dep.name, wdeps[dep.name], dep.kind, dep.target, dep.table, root.dir, str(root.path))
    # The member's `default-features = false` cannot turn off defaults the root keeps on.
    return replace(
        base,
        optional=dep.optional,
        default_features=base.default_features or dep.default_features,
        features=tuple(dict.fromkeys(base.features + dep.features)),
        table=dep.table,
        inherited=True,
    )
