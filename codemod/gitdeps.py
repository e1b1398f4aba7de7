"""Git dependencies: find the dependency's source, so it is analysed like a path dependency.

cargo keeps what it fetched under `$CARGO_HOME/git/checkouts/<repo>-<hash>/<short-rev>/`; a project
cargo has built once has its git dependencies there. Otherwise (and not offline) we make a shallow
clone of the reference the manifest names (branch, tag or rev; the commit Cargo.lock records wins)
into our cache. Inside a checkout the package is found by name, as cargo does: a repository may
hold a whole workspace.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

_SKIP = {".git", "target", "node_modules"}
_CLONING = threading.Lock()


class GitUnavailable(Exception):
    """Why a git dependency's source could not be found; str() is the reason."""


@dataclass(frozen=True)
class GitRef:
    """A git dependency's repository and the branch, tag or revision it asks for."""

    url: str
    branch: str | None = None
    tag: str | None = None
    rev: str | None = None

    @property
    def what(self) -> str:
        for kind in ("rev", "tag", "branch"):
            value = getattr(self, kind)
            if value:
                return f"{kind} {value}"
        return "default branch"


def _canonical(url: str) -> str:
    """cargo's CanonicalUrl, enough to match Cargo.lock entries: no trailing slash or `.git`, lower-case GitHub."""
    url = url.rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    if urlparse(url).hostname == "github.com":
        url = url.lower()
    return url


def locked_commits(lock_path: Path) -> dict[str, str]:
    """Canonical git URL -> the commit Cargo.lock records (`git+URL?branch=x#<commit>`)."""
    try:
        data = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    out = {}
    for pkg in data.get("package", []):
        source = pkg.get("source", "")
        if source.startswith("git+") and "#" in source:
            url, commit = source[4:].rsplit("#", 1)
            out[_canonical(url.split("?", 1)[0])] = commit
    return out


def find_package(checkout: Path, name: str) -> Path | None:
    """The directory of the package called `name` below a checkout (cargo searches the same way)."""
    for dirpath, dirnames, filenames in os.walk(checkout):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP)
        if "Cargo.toml" in filenames:
            try:
                data = tomllib.loads((Path(dirpath) / "Cargo.toml").read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if (data.get("package") or {}).get("name") == name:
                return Path(dirpath)
    return None


class GitSources:
    """Locates git dependencies' packages; one answer per (reference, package) for the whole run."""

    def __init__(self, *, cargo_home: Path | None = None, cache_dir: Path | None = None, clone: bool = True,
                 offline: bool = False):
        from .registry.cache import default_cache_dir
        from .registry.config import cargo_home as default_home

        self.cargo_home = Path(cargo_home) if cargo_home else default_home()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.clone_allowed = clone and not offline
        self.offline = offline
        self._clones: dict[tuple[GitRef, str | None], Path] = {}

    def locate(self, ref: GitRef, package: str, commit: str | None = None) -> Path:
        """The package's directory, or GitUnavailable with the reason."""
        checkout = self._cargo_checkout(ref, package, commit)
        if checkout is not None:
            return checkout
        if not self.clone_allowed:
            where = self.cargo_home / "git" / "checkouts"
            why = "--offline" if self.offline else "cloning is off"
            raise GitUnavailable(f"not in cargo's git checkouts ({where}), and {why}; run `cargo fetch` once")
        root = self._clone(ref, commit)
        found = find_package(root, package)
        if found is None:
            raise GitUnavailable(f"no package named `{package}` in {ref.url} ({ref.what})")
        return found

    def _cargo_checkout(self, ref: GitRef, package: str, commit: str | None) -> Path | None:
        base = self.cargo_home / "git" / "checkouts"
        repo = _canonical(ref.url).rsplit("/", 1)[-1]
        candidates = [d for d in sorted(base.glob(f"{repo}-*/*")) if d.is_dir()]
        wanted = commit or ref.rev
        if wanted:
            # checkout directories are named by the commit's short id
            candidates = [d for d in candidates if wanted.startswith(d.name) or d.name.startswith(wanted)]
        candidates.sort(key=lambda d: d.stat().st_mtime, reverse=True)   # without a commit: the newest
        for d in candidates:
            found = find_package(d, package)
            if found is not None:
                return found
        return None

    def _clone(self, ref: GitRef, commit: str | None) -> Path:
        key = (ref, commit)
        with _CLONING:                 # workspaces analysed in parallel may share a dependency
            if key in self._clones:
                return self._clones[key]
            digest = hashlib.sha256(f"{ref.url}\0{ref.branch}\0{ref.tag}\0{ref.rev}\0{commit}".encode()).hexdigest()[:20]
            dest = self.cache_dir / "git" / digest
            if not (dest / ".git").is_dir() or not (dest / ".cargo-static-fix-ok").is_file():
                self._fetch(ref, commit, dest)
            self._clones[key] = dest
            return dest

    def _fetch(self, ref: GitRef, commit: str | None, dest: Path) -> None:
        import shutil

        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
        pin = commit or ref.rev
        if pin:
            # a commit: fetch just it; servers that refuse unadvertised commits get a full clone
            steps = [["git", "init", "-q", str(dest)],
                     ["git", "-C", str(dest), "fetch", "-q", "--depth", "1", ref.url, pin],
                     ["git", "-C", str(dest), "checkout", "-q", "FETCH_HEAD"]]
            try:
                _run_all(steps, env)
            except GitUnavailable:
                shutil.rmtree(dest, ignore_errors=True)
                _run_all([["git", "clone", "-q", "--no-checkout", ref.url, str(dest)],
                          ["git", "-C", str(dest), "checkout", "-q", pin]], env)
        else:
            branch = ref.branch or ref.tag
            cmd = ["git", "clone", "-q", "--depth", "1"] + (["--branch", branch] if branch else []) + [ref.url, str(dest)]
            _run_all([cmd], env)
        (dest / ".cargo-static-fix-ok").write_text("")


def _run_all(steps: list[list[str]], env: dict) -> None:
    for cmd in steps:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        except FileNotFoundError:
            raise GitUnavailable("git is not installed") from None
        except subprocess.TimeoutExpired:
            raise GitUnavailable(f"`{' '.join(cmd[:3])}` timed out") from None
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
            raise GitUnavailable(f"`git {cmd[1] if cmd[1] != '-C' else cmd[3]}` failed: {last}")
