"""A cold run's wave of index requests in a child process, so both processors work.

The HTTP client's work (its import, each request, each cache write) and the tool's own imports
(the analysis, networkx, the planner) are all Python, and in one process they take turns for the
interpreter. On Linux a cold run forks once, before it has started any thread: the child runs the
early fetch (cli._wave) and writes every answer to the cache of index files and of proc-macro
answers, while the parent loads the rest of the tool; then the parent runs the same early fetch
itself, which the caches now answer (registry/index.py reads files at hand in its own thread).

The child decides nothing: whatever it did not fetch, the parent fetches, and errors are the
parent's to report. It hands back only what the fetchers' `learnt` say: counters (requests,
downloads), the message that says the host cannot be reached, so that the parent does not try a
dead host a second time, and what it learnt of the registry (its token, config.json's download
address), so that the parent does not ask for them again.
Where the child's answers could not reach the parent (no cache directory or one that cannot be
written, `--refresh`), where a fork is not safe (a thread is running) or is turned off
(CARGO_STATIC_FIX_WAVE=thread), and on other systems, a thread runs the wave in the same process
instead.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading


def may_fork() -> bool:
    """Linux, no thread started yet, and not turned off (CARGO_STATIC_FIX_WAVE=thread)."""
    return (sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1
            and os.environ.get("CARGO_STATIC_FIX_WAVE", "process") != "thread")


def forked_wave(sources: list, work):
    """Run `work(True)` in a child process; None when that cannot be done here. `join` then runs
    `work(False)` in this process: the same wave, answered by the caches the child filled."""
    if not may_fork():
        return None
    fetchers = [_fetcher(s) for s in sources]
    if any(f is not None and (f.cache is None or f.refresh or not _writable(f.cache.root)) for f in fetchers):
        return None
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:                                  # the child: fetch, report, leave
        try:
            os.close(read_end)
            _child(sources, work, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    return ForkedWave(pid, read_end, sources, work)


def _fetcher(source):
    """An index source's HTTP fetcher (None for a local source)."""
    return getattr(source.source, "fetcher", None)


def _writable(root) -> bool:
    """Whether the cache can take the child's answers (a cache that cannot be written is skipped
    quietly, and the parent would then fetch everything again)."""
    try:
        os.makedirs(root, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK)


def _child(sources: list, work, fd: int) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)     # Ctrl-C ends it at once, quietly
        threading.Thread(target=_end_with_parent, args=(fd,), daemon=True).start()
        from .registry.http import preload

        threading.Thread(target=preload, daemon=True).start()      # while the fetch is prepared
        work(True)
        for s in sources:
            if s.crates is not None:
                s.crates.wait_prefetched()       # the archive reads the wave started
                s.crates.prepare()               # config.json's answer, if its read is still going
        report = [{"fetcher": _fetcher(s).learnt() if _fetcher(s) is not None else None,
                   "crates": s.crates.learnt() if s.crates is not None else None} for s in sources]
        data = json.dumps(report).encode()
        while data:
            data = data[os.write(fd, data):]
    except BaseException:         # noqa: BLE001 - the parent fetches and reports whatever is missing
        pass


def _end_with_parent(fd: int) -> None:
    """The parent gone without a word (killed, say) closes the pipe's only reading end: end too,
    rather than fetch on for nobody."""
    import select

    poll = select.poll()
    poll.register(fd, 0)        # the writing end of a pipe reports POLLERR once no reader is left
    poll.poll()
    os._exit(0)


class ForkedWave:
    """The parent's handle on the child, used as the early fetch's thread is (`is_alive`, `join`),
    and `cancel` when the run ends before it needs the wave."""

    def __init__(self, pid: int, fd: int, sources: list, work):
        self.pid, self.fd, self.sources, self.work = pid, fd, sources, work
        self._ended = False

    def is_alive(self) -> bool:
        if self._ended:
            return False
        import select

        return not select.select([self.fd], [], [], 0)[0]       # the report comes as it ends

    def join(self) -> None:
        if self._ended:
            return
        chunks = []
        try:
            while chunk := os.read(self.fd, 65536):
                chunks.append(chunk)
        except BaseException:
            self.cancel()
            raise
        self._end()
        try:
            report = json.loads(b"".join(chunks)) if chunks else []
        except ValueError:
            report = []
        for s, r in zip(self.sources, report):
            if _fetcher(s) is not None and r["fetcher"] is not None:
                _fetcher(s).adopt(r["fetcher"])
            if s.crates is not None and r["crates"] is not None:
                s.crates.adopt(r["crates"])
        self.work(False)

    def cancel(self) -> None:
        if not self._ended:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass
            self._end()

    def _end(self) -> None:
        self._ended = True
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass
