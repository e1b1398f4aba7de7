"""Writing a fix: one transaction for all the files it changes.

Every file is written to a temporary file next to it first, with the original's mode and owner;
only then are they renamed over the originals, one after the other. If any step fails, the files
already replaced are put back (from backups prepared with the temporary files, so the way back is
a rename too) and nothing else is touched. Immediately before replacing a file it is read again:
if its bytes are no longer the ones that were analysed (the user edited it, another run wrote it),
nothing is written. An advisory lock per workspace root keeps two runs from interleaving.

Only files inside the directories the user named (and their workspace roots) are written, after
resolving symlinks; files with uncommitted changes in git are refused unless --allow-dirty, and
when git cannot answer the answer is no.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import subprocess
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .edit import sha256
from .errors import CodemodError


class WriteError(CodemodError):
    pass


@dataclass(frozen=True)
class Change:
    """One file of a fix: the bytes analysed and the bytes to write."""

    path: Path           # the file to replace
    old: bytes           # its bytes as analysed: the file must still hold exactly these
    new: bytes
    derived: bool = False  # generated from the others (Cargo.lock): no uncommitted-changes check, often untracked


# Called with (stage, path) at "prepare" (before a file's temporary files are made) and "replace"
# (before a file is renamed into place); tests use it to inject faults and pauses.
FAULT: Callable[[str, Path], None] | None = None

LOCK_TIMEOUT = 30.0


# -- which files may be written ----------------------------------------------------------------


def workspace_root_of(path: Path) -> Path:
    """The directory of the workspace root a manifest belongs to, as cargo finds it: the nearest
    Cargo.toml upwards (itself included) with a [workspace] table; else the manifest's own."""
    path = Path(path).resolve()
    start = path.parent if path.suffix == ".toml" else path
    for d in (start, *start.parents):
        candidate = d / "Cargo.toml"
        try:
            data = tomllib.loads(candidate.read_bytes().decode("utf-8").removeprefix("\ufeff"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if isinstance(data.get("workspace"), dict):
            return d
    return start


def allowed_dirs(given: list[Path], roots: list[Path] = ()) -> list[Path]:
    """The directories a run may write in: those named on the command line, and the workspace
    roots (`roots`, or found from the named directories) that contain a named directory, as
    written (a Cargo.toml that is a symlink elsewhere does not bring its target's root in)."""
    dirs = []
    named = []
    for g in given:
        g = Path(g)
        d = g if g.is_dir() or g.suffix != ".toml" else g.parent
        named.append(d)
        dirs.append(d.resolve())
    for d in named:
        candidates = list(roots) or [workspace_root_of(d)]
        for root in candidates:
            root = Path(root).resolve()
            if d.absolute().is_relative_to(root) or _lexical(d).is_relative_to(root):
                dirs.append(root)
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _lexical(p: Path) -> Path:
    return Path(os.path.normpath(p.absolute()))


def confine(path: Path, allowed: list[Path]) -> Path:
    """The real file behind `path`, if it lies inside one of the allowed directories."""
    real = Path(path).resolve()
    if any(real.is_relative_to(Path(a).resolve()) for a in allowed):
        return real
    how = f" (a symlink to {real})" if Path(path).is_symlink() or Path(path).resolve() != _lexical(Path(path)) else ""
    raise WriteError(f"{path}{how}: outside the project ({', '.join(str(a) for a in allowed)}); not written "
                     f"(name its directory on the command line to allow it)")


# -- uncommitted changes -------------------------------------------------------------------------


def _under_git(path: Path) -> bool:
    return any((d / ".git").exists() for d in (path.parent, *path.parent.parents))


def check_committed(path: Path) -> None:
    """Refuse a file with uncommitted changes; fail closed when git cannot tell."""
    path = Path(path)
    if not _under_git(path):
        return
    advice = "pass --allow-dirty to write anyway"
    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=path.parent,
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise WriteError(f"{path}: cannot tell whether it has uncommitted changes: git is not installed; {advice}") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WriteError(f"{path}: cannot tell whether it has uncommitted changes: {e}; {advice}") from None
    if proc.returncode != 0:
        said = next((ln.strip() for ln in proc.stderr.splitlines() if ln.strip()), f"exit status {proc.returncode}")
        raise WriteError(f"{path}: cannot tell whether it has uncommitted changes: git says: {said}; {advice}")
    if proc.stdout.strip():
        raise WriteError(f"{path}: has uncommitted changes; commit or stash them first, or pass --allow-dirty")


# -- the lock ---------------------------------------------------------------------------------------


class _Locks:
    """flock on each workspace root directory (no lock file to leave behind), taken in a fixed
    order so that two runs cannot deadlock; waits up to `timeout` seconds, then refuses."""

    def __init__(self, dirs: list[Path], timeout: float):
        self.dirs = sorted(set(dirs))
        self.timeout = timeout
        self.fds: list[int] = []

    def __enter__(self):
        try:
            for d in self.dirs:
                try:
                    fd = os.open(d, os.O_RDONLY)
                except OSError as e:
                    raise WriteError(f"{d}: cannot lock the workspace: {e.strerror or e}; nothing written") from None
                self.fds.append(fd)
                deadline = time.monotonic() + self.timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise WriteError(f"{d}: another run is writing this workspace; nothing written, try again") from None
                        time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for fd in self.fds:
            os.close(fd)          # closing releases the lock
        self.fds = []


# -- signals ------------------------------------------------------------------------------------------


class _Signalled(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _SignalGuard:
    """SIGTERM and SIGHUP become an exception inside the transaction, so that it rolls back and
    removes its temporary files; while it does that (`deferring`), a further signal only waits.
    Afterwards the process ends by the signal it received."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)

    def __enter__(self):
        self.saved = {}
        self.deferring = False
        self.pending: int | None = None
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.saved[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.pending is None:
            self.pending = signum
        if not self.deferring:
            raise _Signalled(signum)

    def __exit__(self, kind, value, _tb):
        for s, h in self.saved.items():
            signal.signal(s, h)
        signum = value.signum if isinstance(value, _Signalled) else self.pending
        if signum is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        return False


# -- the transaction --------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """A change during the transaction: its temporary file, its backup, whether it was replaced."""

    change: Change
    real: Path
    tmp: Path | None = None
    backup: Path | None = None
    replaced: bool = False


def _temp(real: Path, data: bytes, st: os.stat_result, tag: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=f".{tag}.tmp", dir=real.parent)
    try:
        _write_all(fd, data)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                raise WriteError(f"{real}: cannot keep its owner ({st.st_uid}:{st.st_gid}); nothing written") from None
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _same(real: Path, old: bytes) -> bool:
    """Does the file still hold the bytes that were analysed?"""
    try:
        return sha256(real.read_bytes()) == sha256(old)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise WriteError(f"{real}: cannot read it again before writing: {e.strerror or e}; nothing written") from None


def write_all(changes: list[Change], *, allowed: list[Path], allow_dirty: bool,
              lock_timeout: float | None = None) -> list[Path]:
    """Replace every file in `changes` or none of them; returns the files written.

    Raises WriteError, with nothing changed on disk, when a file lies outside `allowed`, has
    uncommitted changes (unless `allow_dirty`), changed since it was analysed, or cannot be
    written; files already replaced when a step fails are restored."""
    changes = [c for c in changes if c.new != c.old]
    if not changes:
        return []
    prepared = [_Prepared(c, confine(c.path, allowed)) for c in changes]
    seen: set[Path] = set()
    for p in prepared:
        if p.real in seen:
            raise WriteError(f"{p.change.path}: named twice in one fix; nothing written")
        seen.add(p.real)
    if not allow_dirty:
        for p in prepared:
            if not p.change.derived:
                check_committed(p.real)
    roots = [workspace_root_of(p.real) for p in prepared]
    timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
    with _SignalGuard() as guard, _Locks(roots, timeout):
        try:
            for p in prepared:
                if not _same(p.real, p.change.old):
                    raise WriteError(f"{p.change.path}: changed since it was read (edited by someone else?); "
                                     f"nothing written, run again")
            for p in prepared:
                try:
                    if FAULT:
                        FAULT("prepare", p.real)
                    st = os.stat(p.real)
                    p.tmp = _temp(p.real, p.change.new, st, "new")
                    p.backup = _temp(p.real, p.change.old, st, "old")
                except OSError as e:
                    raise WriteError(f"{p.change.path}: cannot write: {e.strerror or e}; nothing written") from None
            try:
                for p in prepared:
                    try:
                        if FAULT:
                            FAULT("replace", p.real)
                        if not _same(p.real, p.change.old):
                            raise WriteError(f"{p.change.path}: changed since it was read (edited by someone else?); "
                                             f"nothing written, run again")
                        os.replace(p.tmp, p.real)
                    except OSError as e:
                        raise WriteError(f"{p.change.path}: cannot write: {e.strerror or e}") from None
                    p.replaced = True
                    p.tmp = None
            except BaseException as e:
                guard.deferring = True
                restored, failed = _roll_back(prepared)
                if not isinstance(e, WriteError):
                    raise
                msg = str(e) if "nothing written" in str(e) else f"{e}; nothing written"
                if restored:
                    msg += f" ({restored} file(s) already replaced were restored)"
                if failed:
                    msg += (f"; could not restore {', '.join(map(str, failed))}: "
                            f"the original is kept next to it as a .old.tmp file")
                raise WriteError(msg) from None
            _sync_dirs(prepared)
        finally:
            guard.deferring = True
            for p in prepared:
                for t in (p.tmp, p.backup):
                    if t is not None:
                        try:
                            os.unlink(t)
                        except OSError:
                            pass            # gone already, or the directory turned read-only
    return [p.real for p in prepared]


def _roll_back(prepared: list[_Prepared]) -> tuple[int, list[Path]]:
    """Put back every file already replaced: how many were, and those that could not be (their
    backup is left in place: it is the only copy of the original)."""
    restored, failed = 0, []
    for p in reversed(prepared):
        if not p.replaced:
            continue
        try:
            os.replace(p.backup, p.real)
            restored += 1
        except OSError:
            failed.append(p.real)
        p.backup = None
        p.replaced = False
    return restored, failed


def _sync_dirs(prepared: list[_Prepared]) -> None:
    for d in {p.real.parent for p in prepared}:
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EBADF):
                raise
        finally:
            os.close(fd)
