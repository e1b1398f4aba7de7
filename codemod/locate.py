"""Where the project is, as cargo finds it: a `Cargo.toml` given by path, a directory holding one
(or manifests below it), or else the nearest parent directory with one (`cargo locate-project`)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ManifestError


def locate(paths: list[Path], manifest_paths: list[Path]) -> list[Path]:
    """The paths to analyse, each a Cargo.toml file or a directory with manifests; raises
    ManifestError with cargo's wording when one names nothing to analyse."""
    out: list[Path] = []
    for p in manifest_paths:
        if p.name != "Cargo.toml":
            raise ManifestError(f"the manifest-path must be a path to a Cargo.toml file: `{p}`")
        out.append(_manifest_file(p))
    for p in paths:
        if p.name == "Cargo.toml" or p.is_file():
            out.append(_manifest_file(p))
            continue
        if not p.exists():
            raise ManifestError(f"manifest path `{p}` does not exist")
        if (p / "Cargo.toml").exists():
            _manifest_file(p / "Cargo.toml")
            out.append(p)
            continue
        from .discover import find_manifests, scan_errors

        if find_manifests(p) or scan_errors(p):      # unreadable parts are reported by the scan
            out.append(p)
            continue
        out.append(_upwards(p))
    return out


def _manifest_file(p: Path) -> Path:
    if p.is_dir():
        raise ManifestError(f"{p}: is a directory, not a Cargo.toml file")
    if not p.exists():
        raise ManifestError(f"manifest path `{p}` does not exist")
    if p.name != "Cargo.toml":
        raise ManifestError(f"the manifest-path must be a path to a Cargo.toml file: `{p}`")
    return p


def _upwards(d: Path) -> Path:
    start = d.resolve()
    for parent in start.parents:
        candidate = parent / "Cargo.toml"
        if candidate.is_file():
            return Path(os.path.relpath(candidate))
    raise ManifestError(f"could not find `Cargo.toml` in `{start}` or any parent directory")
