"""Which registry serves what, as cargo decides it: `.cargo/config.toml` from the project
directory upwards and `$CARGO_HOME/config.toml`, `[source]` replacement (`replace-with`,
`registry`, `directory`, `local-registry`), `[registries.<name>]`, and the `CARGO_HOME` and
`CARGO_REGISTRIES_<NAME>_INDEX` environment variables; and how to reach it: `[http]`, `[net]`
and their `CARGO_HTTP_*` / `CARGO_NET_*` variables, registry tokens."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
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
    """A value from a cargo config file, and the directory its relative paths start from."""

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


NESTED = ("source", "registries")        # tables of tables: [source.<name>], [registries.<name>]
FLAT = ("http", "net", "registry")        # tables of values


def load_cargo_config(start: Path) -> dict[str, dict]:
    """The merged `source` and `registries` tables (name -> key -> Setting) and `http`, `net`
    and `registry` tables (key -> Setting); the config nearest the project wins."""
    files = config_files(start)
    merged: dict[str, dict] = {t: {} for t in NESTED + FLAT}
    for p in reversed(files):            # farthest first, so nearer files override
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise RegistryError(f"{p}: invalid cargo configuration: {e}") from None
        base = p.parent.parent if p.parent.name == ".cargo" else p.parent
        for table in NESTED:
            for key, entry in (data.get(table) or {}).items():
                if isinstance(entry, dict):
                    merged[table].setdefault(key, {}).update({k: Setting(v, base) for k, v in entry.items()})
        for table in FLAT:
            entry = data.get(table)
            if isinstance(entry, dict):
                merged[table].update({k: Setting(v, base) for k, v in entry.items()})
    return merged


def http_settings(config: dict[str, dict]):
    """cargo's network settings: the `CARGO_HTTP_*` / `CARGO_NET_RETRY` variables over
    `[http]` / `[net]` in the config files. `SSL_CERT_FILE` gives the CA bundle when cargo's
    settings do not (libcurl with OpenSSL reads it too)."""
    from .http import HttpSettings

    def get(table: str, key: str, env: str) -> Setting | None:
        if os.environ.get(env):
            return Setting(os.environ[env], Path.cwd())
        return config.get(table, {}).get(key)

    out = HttpSettings()
    if (s := get("http", "timeout", "CARGO_HTTP_TIMEOUT")) is not None:
        try:
            timeout = float(s.value)
        except (TypeError, ValueError):
            timeout = -1.0
        if not timeout > 0 or isinstance(s.value, bool):
            raise RegistryError(f"http.timeout (CARGO_HTTP_TIMEOUT) must be a number of seconds, not {s.value!r}")
        out = replace(out, timeout=timeout)
    if (s := get("net", "retry", "CARGO_NET_RETRY")) is not None:
        try:
            retries = int(s.value)
        except (TypeError, ValueError):
            retries = -1
        if retries < 0 or isinstance(s.value, bool):
            raise RegistryError(f"net.retry (CARGO_NET_RETRY) must be a whole number of retries, not {s.value!r}")
        out = replace(out, retries=retries)
    if (s := get("http", "proxy", "CARGO_HTTP_PROXY")) is not None and str(s.value):
        out = replace(out, proxy=str(s.value))
    if (s := get("http", "cainfo", "CARGO_HTTP_CAINFO")) is not None and str(s.value):
        out = replace(out, cainfo=str(s.base / str(s.value)))
    elif os.environ.get("SSL_CERT_FILE"):
        out = replace(out, cainfo=os.environ["SSL_CERT_FILE"])
    if (s := get("http", "user-agent", "CARGO_HTTP_USER_AGENT")) is not None and str(s.value):
        out = replace(out, user_agent=str(s.value))
    return out


def registry_auth(name: str, config: dict[str, dict]):
    """Where cargo's default credential provider (`cargo:token`) finds a registry's token: for
    crates.io `CARGO_REGISTRY_TOKEN`, else `[registry] token`; for a named registry
    `CARGO_REGISTRIES_<NAME>_TOKEN`, else `[registries.<name>] token`; in
    `$CARGO_HOME/credentials.toml`, which wins over the config files. Read only when asked."""
    from .http import RegistryAuth

    if name == "crates-io":
        env, table, where = "CARGO_REGISTRY_TOKEN", ("registry",), "[registry]"
        login = "cargo login"
    else:
        env = f"CARGO_REGISTRIES_{name.upper().replace('-', '_')}_TOKEN"
        table, where = ("registries", name), f"[registries.{name}]"
        login = f"cargo login --registry {name}"

    def token() -> str | None:
        if os.environ.get(env):
            return os.environ[env]
        for fname in ("credentials.toml", "credentials"):
            p = cargo_home() / fname
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                raise RegistryError(f"{p}: cannot read cargo's credentials") from None
            for key in table:
                data = data.get(key) if isinstance(data, dict) else None
            if isinstance(data, dict) and isinstance(data.get("token"), str):
                return data["token"]
            break
        entry = config.get(table[0], {})
        if len(table) > 1:
            entry = entry.get(table[1], {})
        setting = entry.get("token")
        return str(setting.value) if setting is not None else None

    return RegistryAuth(name, token, f"set {env}, or run `{login}` (it writes `token` under {where} in "
                                     f"$CARGO_HOME/credentials.toml)")


def _host(url: str) -> str | None:
    return urlparse(url[len("sparse+"):] if url.startswith("sparse+") else url).hostname


def _registry_name(config, url: str) -> str | None:
    """The `[registries]` name whose index is this URL (cargo finds a token the same way)."""
    want = url.removeprefix("sparse+").rstrip("/")
    for name, entry in config["registries"].items():
        env = os.environ.get(f"CARGO_REGISTRIES_{name.upper().replace('-', '_')}_INDEX")
        index = env or (entry.get("index").value if entry.get("index") else None)
        if index and str(index).removeprefix("sparse+").rstrip("/") == want:
            return name
    return None


def open_registry(project_dir: Path, *, index_url: str | None = None, offline: bool = False, cache=None,
                  refresh: bool = False, jobs: int = 32, speculate: str = "features") -> MultiIndex:
    from .index import DEFAULT_INDEX, IndexSource, MultiIndex, open_index, with_crates
    from .sources import CargoCacheSource, cargo_cache_dirs

    config = load_cargo_config(Path(project_dir).resolve())
    settings = None

    def from_url(url: str, what: str, name: str | None = None) -> IndexSource:
        nonlocal settings
        if url.rstrip("/") == CRATES_IO_GIT:
            url = DEFAULT_INDEX           # cargo itself reads crates.io through the sparse index by default
        if offline and ("://" in url and not url.startswith("file:")):
            dirs = cargo_cache_dirs(cargo_home(), _host(url))
            if not dirs:
                raise RegistryError(f"--offline: cargo has no cached index for {what} ({url}) under {cargo_home()}/registry/index")
            return with_crates(IndexSource(CargoCacheSource(dirs), jobs), url, offline=True)
        if url.startswith("registry+") or (url.startswith("https://") and url.endswith(".git")):
            raise RegistryError(f"{url}: git registries are not supported; use the registry's sparse index (sparse+https://…)")
        plain = url.removeprefix("sparse+")
        if not plain.startswith(("http://", "https://")):
            return open_index(url, jobs=jobs, cache=cache, refresh=refresh, speculate=speculate)
        if settings is None:
            settings = http_settings(config)
        if name is None:
            name = "crates-io" if plain.rstrip("/") + "/" == DEFAULT_INDEX else _registry_name(config, url)
        auth = registry_auth(name, config) if name else None
        return open_index(url, jobs=jobs, cache=cache, refresh=refresh, speculate=speculate,
                          settings=settings, auth=auth)

    if index_url:
        return MultiIndex(from_url(index_url, "--index-url"))
    default = _source(config, "crates-io", from_url, seen=set())
    named: dict[str, IndexSource] = {}
    for name, entry in config["registries"].items():
        env = os.environ.get(f"CARGO_REGISTRIES_{name.upper().replace('-', '_')}_INDEX")
        url = env or (entry.get("index").value if entry.get("index") else None)
        if url:
            named[name] = from_url(str(url), f"registry `{name}`", name)
            named[str(url).removeprefix("sparse+")] = named[name]
            named[str(url)] = named[name]
    for key, value in os.environ.items():
        if key.startswith("CARGO_REGISTRIES_") and key.endswith("_INDEX"):
            name = key[len("CARGO_REGISTRIES_"):-len("_INDEX")].lower().replace("_", "-")
            if name not in named:
                named[name] = from_url(value, f"registry `{name}`", name)
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
    if name != "crates-io" and name in config["registries"] and "index" in config["registries"][name]:
        # `replace-with` may name a registry of [registries], e.g. a private mirror with a token
        return from_url(str(config["registries"][name]["index"].value), f"registry `{name}`", name)
    if name == "crates-io":
        return from_url(DEFAULT_INDEX, "crates.io")
    raise RegistryError(f"source `{name}` in .cargo/config.toml has no `registry`, `directory` or `local-registry`")
