"""Cargo.lock (formats v1 to v4): the locked version of every registry package."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import ManifestError


def load_lock(path: Path) -> dict[str, list[str]]:
    """Crate name -> locked registry versions (path and git packages are not locked versions)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path}: invalid TOML: {e}") from None
    out: dict[str, list[str]] = {}
    for pkg in data.get("package", []):
        source = pkg.get("source", "")
        if not source.startswith(("registry+", "sparse+")):
            continue
        out.setdefault(pkg["name"], []).append(pkg["version"])
    return out
