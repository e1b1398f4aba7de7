"""Which registry serves what, as cargo decides it: `.cargo/config.toml` from the project
directory upwards and `$CARGO_HOME/config.toml`, `[source]` replacement (`replace-with`,
`registry`, `directory`, `local-registry`), `[registries.<name>]`, and the `CARGO_HOME` and
`CARGO_REGISTRIES_<NAME>_INDEX` environment variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ..errors import RegistryError

if TYPE_CHECKING:
    from .index import IndexSource, MultiIndex

CRATES_IO_GIT = "https://github.com/rust-lang/crates.io-index"


def cargo_home() -> Path:
    env = os.environ.get("CARGO_HOME")
    return Path(env) if env else Path.home() / ".cargo"


@dataclass(frozen=True)
class Setting:
    value: object
    base: Path        # paths in a config file are relative to the directory holding `.cargo/`


def config_files(start: Path) -> list[Path]:
    """cargo's config files that apply to a project, nearest first."""
    files: list[Path] = []
    for d in [start, *start.parents]:
        for name in ("config", "config.toml"):      # cargo reads `config` when both exist
            p = d / ".cargo" / name
            if p.is_file():
                files.append(p)
                break
    home = cargo_home()
    for name in ("config", "config.toml"):
        p = home / name
        if p.is_file() and p not in files:
            files.append(p)
            break
    return files


def load_cargo_config(start: Path) -> dict[str, dict[str, Setting]]:
    """The merged `source` and `registries` tables; the config nearest the project wins."""
    files = config_files(start)
    merged: dict[str, dict[str, dict[str, Setting]]] = {"source": {}, "registries": {}}
    for p in reversed(files):            # farthest first, so nearer files override
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise RegistryError(f"{p}: invalid cargo configuration: {e}") from None
        base = p.parent.parent if p.parent.name == ".cargo" else p.parent
        for table in ("source", "registries"):
            for key, entry in (data.get(table) or {}).items():
                if isinstance(entry, dict):
                    merged[table].setdefault(key, {}).update({k: Setting(v, base) for k, v in entry.items()})
    return merged


def _host(url: str) -> str | None:
    return urlparse(url[len("sparse+"):] if url.startswith("sparse+") else url).hostname


def open_registry(project_dir: Path, *, index_url: str | None = None, offline: bool = False, cache=None,
                  refresh: bool = False, jobs: int = 16, speculate: str = "features") -> MultiIndex:
    from .index import DEFAULT_INDEX, IndexSource, MultiIndex, open_index, with_crates
    from .sources import CargoCacheSource, cargo_cache_dirs

    def from_url(url: str, what: str) -> IndexSource:
        if url.rstrip("/") == CRATES_IO_GIT:
            url = DEFAULT_INDEX           # cargo itself reads crates.io through the sparse index by default
        if offline and ("://" in url and not url.startswith("file:")):
            dirs = cargo_cache_dirs(cargo_home(), _host(url))
            if not dirs:
                raise RegistryError(f"--offline: cargo has no cached index for {what} ({url}) under {cargo_home()}/registry/index")
            return with_crates(IndexSource(CargoCacheSource(dirs), jobs), url, offline=True)
        if url.startswith("registry+") or (url.startswith("https://") and url.endswith(".git")):
            raise RegistryError(f"{url}: git registries are not supported; use the registry's sparse index (sparse+https://…)")
        return open_index(url, jobs=jobs, cache=cache, refresh=refresh, speculate=speculate)

    if index_url:
        return MultiIndex(from_url(index_url, "--index-url"))
    config = load_cargo_config(Path(project_dir).resolve())
    default = _source(config, "crates-io", from_url, seen=set())
    named: dict[str, IndexSource] = {}
    for name, entry in config["registries"].items():
        env = os.environ.get(f"CARGO_REGISTRIES_{name.upper().replace('-', '_')}_INDEX")
        url = env or (entry.get("index").value if entry.get("index") else None)
        if url:
            named[name] = from_url(str(url), f"registry `{name}`")
            named[str(url).removeprefix("sparse+")] = named[name]
            named[str(url)] = named[name]
    for key, value in os.environ.items():
        if key.startswith("CARGO_REGISTRIES_") and key.endswith("_INDEX"):
            name = key[len("CARGO_REGISTRIES_"):-len("_INDEX")].lower().replace("_", "-")
            if name not in named:
                named[name] = from_url(value, f"registry `{name}`")
    return MultiIndex(default, named)


def _source(config, name: str, from_url, seen: set[str]) -> IndexSource:
    from .index import DEFAULT_INDEX, IndexSource
    from .sources import DirSource, VendorSource

    if name in seen:
        raise RegistryError(f"source replacement loops through `{name}` in .cargo/config.toml")
    seen.add(name)
    entry = config["source"].get(name, {})
    if "replace-with" in entry:
        return _source(config, str(entry["replace-with"].value), from_url, seen)
    if "directory" in entry:
        s = entry["directory"]
        return IndexSource(VendorSource(s.base / str(s.value)))
    if "local-registry" in entry:
        s = entry["local-registry"]
        from .index import with_crates

        return with_crates(IndexSource(DirSource(s.base / str(s.value) / "index")), str(s.base / str(s.value)))
    if "registry" in entry:
        return from_url(str(entry["registry"].value), f"source `{name}`")
    if name == "crates-io":
        return from_url(DEFAULT_INDEX, "crates.io")
    raise RegistryError(f"source `{name}` in .cargo/config.toml has no `registry`, `directory` or `local-registry`")
