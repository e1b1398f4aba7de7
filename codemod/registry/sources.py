"""Where index data comes from: the sparse protocol, a directory in index layout (a local
registry or a copy of the index), cargo's own on-disk index cache (offline), and vendor
directories written by `cargo vendor`. Each answers one question: the versions of a crate."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ManifestError, RegistryError
from ..model import Package
from .index import MISS, index_path, parse_index_file, parse_index_line


class DirSource:
    """A directory laid out like the index (`3/s/syn`, `se/rd/serde`, ...)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def where(self) -> str:
        return str(self.root)

    def fetch(self, name: str) -> list[Package] | None:
        p = self.root / index_path(name)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise RegistryError(f"{p}: cannot read: {e}") from None
        return parse_index_file(text, str(p))

    at_hand = fetch         # a local read: no reason to hand it to a thread


class SparseSource:
    remote = True

    def __init__(self, fetcher):
        self.fetcher = fetcher

    @property
    def where(self) -> str:
        return self.fetcher.where

    def cancel(self) -> None:
        from .http import cancel_all

        cancel_all()

    def fetch(self, name: str) -> list[Package] | None:
        text, where = self.fetcher.read(index_path(name))
        return None if text is None else parse_index_file(text, where)

    def at_hand(self, name: str):
        """The crate's versions when a fresh cache entry has them, else MISS (no request made)."""
        hit = self.fetcher.read_cached(index_path(name))
        if hit is None:
            return MISS
        text, where = hit
        return None if text is None else parse_index_file(text, where)


class CargoCacheSource:
    """cargo's binary index cache, `$CARGO_HOME/registry/index/<registry>/.cache/`.

    Format (cargo `sources/registry/index/cache.rs`, cache version 3): a version byte, the index
    schema version as u32 little-endian, the index file version and a NUL, then pairs of
    `semver version NUL json blob NUL`."""

    CACHE_VERSION = 3

    def __init__(self, dirs: list[Path]):
        self.dirs = [Path(d) for d in dirs]

    @property
    def where(self) -> str:
        return ", ".join(str(d) for d in self.dirs) or "cargo's index cache (none found)"

    def fetch(self, name: str) -> list[Package] | None:
        rel = index_path(name)
        for d in self.dirs:
            p = d / rel
            try:
                data = p.read_bytes()
            except OSError:
                continue
            pkgs = parse_cargo_cache(data, str(p))
            if pkgs is not None:
                return pkgs
        return None

    at_hand = fetch         # a local read: no reason to hand it to a thread


def parse_cargo_cache(data: bytes, where: str) -> list[Package] | None:
    if not data or data[0] != CargoCacheSource.CACHE_VERSION or len(data) < 5:
        return None                      # another cargo's cache format: not usable
    parts = data[5:].split(b"\0")
    if parts and parts[-1] == b"":
        parts = parts[:-1]
    out = []
    for i in range(1, len(parts) - 1, 2):
        blob = parts[i + 1]
        try:
            out.append(parse_index_line(json.loads(blob)))
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"{where}: unreadable entry in cargo's index cache ({e})") from None
    return out


def cargo_cache_dirs(cargo_home: Path, host: str | None) -> list[Path]:
    """cargo's cache directories for a registry: `<host>-<hash>/.cache` under registry/index."""
    base = Path(cargo_home) / "registry" / "index"
    if not base.is_dir():
        return []
    dirs = sorted(p / ".cache" for p in base.iterdir() if (p / ".cache").is_dir())
    if host:
        matching = [d for d in dirs if d.parent.name.rsplit("-", 1)[0] == host]
        return matching
    return dirs


class VendorSource:
    """A `cargo vendor` directory: one `<name>-<version>/` (or `<name>/`) folder per crate,
    each with the normalized Cargo.toml cargo wrote when packaging it. Read the way cargo's
    directory source does: dependencies and features from that manifest."""

    manifests = True        # proc-macro status comes from each crate's own manifest: nothing to guess

    def __init__(self, root: Path):
        self.root = Path(root)
        self._by_name: dict[str, list[Package]] | None = None

    @property
    def where(self) -> str:
        return str(self.root)

    def _scan(self) -> dict[str, list[Package]]:
        from ..manifest import load_manifest, manifest_deps
        from ..model import PkgId, build_feature_map

        out: dict[str, list[Package]] = {}
        if not self.root.is_dir():
            raise RegistryError(f"{self.root}: vendor directory does not exist")
        for d in sorted(self.root.iterdir()):
            if not (d / "Cargo.toml").is_file():
                continue
            try:
                m = load_manifest(d / "Cargo.toml")
            except ManifestError as e:
                raise RegistryError(f"{e} (vendored crate)") from None
            if m.package is None:
                continue
            deps = tuple(dep for dep in manifest_deps(m) if dep.source != "path")
            fmap, implicit = build_feature_map(m.features, deps)
            lib = m.data.get("lib", {})
            proc_macro = bool(lib.get("proc-macro", lib.get("proc_macro", False)))
            pkg = Package(PkgId(m.name, m.version), deps, fmap, implicit, proc_macro=proc_macro, links=m.links,
                          raw_features=dict(m.features), rust_version=(m.package or {}).get("rust-version"),
                          checksum=_vendored_checksum(d))
            out.setdefault(m.name.lower(), []).append(pkg)
        return out

    def fetch(self, name: str) -> list[Package] | None:
        if self._by_name is None:
            self._by_name = self._scan()
        return self._by_name.get(name.lower())

    at_hand = fetch         # a local read: no reason to hand it to a thread


def _vendored_checksum(d: Path) -> str | None:
    """`cargo vendor` records the archive's sha256 as `package` in `.cargo-checksum.json`."""
    try:
        value = json.loads((d / ".cargo-checksum.json").read_text(encoding="utf-8")).get("package")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
