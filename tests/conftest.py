from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

from fixture_registry import Server, write_registry

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_REGISTRY = ROOT / "examples" / "registry" / "index"


class TopLevelSnapshots(AmberSnapshotExtension):
    """Keep snapshots under the repository's top-level snapshots/ folder."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(ROOT / "snapshots" / Path(test_location.filepath).stem)


@pytest.fixture(autouse=True)
def isolated_homes(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's index cache or cargo configuration."""
    base = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("CARGO_STATIC_FIX_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("CARGO_HOME", str(base / "cargo-home"))
    # `python -m codemod` in a subprocess runs this checkout, not whichever copy is installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))


@pytest.fixture
def snapshot(snapshot):
    return snapshot.use_extension(TopLevelSnapshots)


@pytest.fixture(scope="session")
def seed_server():
    """The bundled crates.io snapshot, served over HTTP in the sparse protocol."""
    srv = Server(SNAPSHOT_REGISTRY.parent)
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def universe(tmp_path_factory):
    """The fixture universe (tests/universe.py) written out and served; cargo can use it."""
    from universe import crates

    root = tmp_path_factory.mktemp("universe")
    write_registry(root, crates())
    srv = Server(root)
    yield srv, root
    srv.close()


def cargo_available() -> bool:
    return shutil.which("cargo") is not None
