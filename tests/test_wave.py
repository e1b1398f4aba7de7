"""A cold run's wave in a child process (codemod/wave.py): the same answer and counters as the
thread, a dead registry tried once, Ctrl-C ending both processes, nothing left running.

The child is forked only by the command itself (cli.entry), so these tests run the command in a
subprocess, through a wrapper that records each fork in a file."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from fixture_registry import Server, _Handler

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the wave runs in a child process on Linux only")

WRAPPER = """
import os, sys
real = os.fork
def counted():
    pid = real()
    if pid:
        with open(os.environ["FORK_LOG"], "a") as f:
            f.write(f"{pid}\\n")
    return pid
os.fork = counted
from codemod.cli import entry
entry()
"""


def _run(args, tmp: Path, mode: str, cache: Path | None = None, env: dict | None = None, **kw):
    log = tmp / f"forks-{mode}"
    env = dict(os.environ, **(env or {}), CARGO_STATIC_FIX_WAVE=mode, FORK_LOG=str(log), CARGO_STATIC_FIX_NO_MEMO="1",
               CARGO_STATIC_FIX_CACHE_DIR=str(cache or tmp / f"cache-{mode}"), CARGO_HOME=str(tmp / "no-cargo-home"),
               CARGO_NET_RETRY="0")
    r = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120, **kw)
    forks = log.read_text().split() if log.exists() else []
    return r, forks


def _start(tmp: Path, log: Path, args, **kw) -> subprocess.Popen:
    """The command, started in its own session (a signal to its group reaches it and its child)."""
    env = dict(os.environ, FORK_LOG=str(log), CARGO_STATIC_FIX_NO_MEMO="1",
               CARGO_STATIC_FIX_CACHE_DIR=str(tmp / "cache"), CARGO_HOME=str(tmp / "no-cargo-home"))
    return subprocess.Popen([sys.executable, "-c", WRAPPER, *args], cwd=ROOT, env=env,
                            start_new_session=True, **kw)


def _alive(pids) -> list[str]:
    return [p for p in pids if Path(f"/proc/{p}").exists()]


def _project(tmp: Path) -> Path:
    proj = tmp / "hello"
    shutil.copytree(ROOT / "examples" / "hello", proj)
    (proj / "Cargo.lock").unlink()
    return proj


def test_the_child_process_gives_the_threads_answer_and_counters(tmp_path, seed_server):
    proj = _project(tmp_path)
    args = ["--explain", "--format", "json", "-v", str(proj), "--index-url", seed_server.index_url]
    runs = {mode: _run(args, tmp_path, mode) for mode in ("thread", "process")}
    (thread, thread_forks), (child, child_forks) = runs["thread"], runs["process"]
    assert thread.returncode == child.returncode == 0, (thread.stderr, child.stderr)
    assert thread_forks == [] and len(child_forks) == 1
    assert not _alive(child_forks)
    assert json.loads(child.stdout) == json.loads(thread.stdout)

    def counters(err: str) -> str:      # files, requests, round trips, proc macros; not the time
        line = next(ln for ln in err.splitlines() if ln.startswith("index "))
        return line.rsplit(";", 1)[0]

    assert counters(child.stderr) == counters(thread.stderr)
    assert " 0 HTTP requests" not in counters(child.stderr)


class _Failing(_Handler):
    """Every request answers 500: the registry is down."""
    asked: list[str] = []

    def do_GET(self):
        _Failing.asked.append(self.path)
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Slow(_Handler):
    """Answers after a long pause, so a run is still in its wave when the test acts."""
    asked = threading.Event()

    def do_GET(self):
        _Slow.asked.set()
        time.sleep(5)
        try:
            super().do_GET()
        except OSError:
            pass                # the client is gone (interrupted): nobody reads this answer


def _serve(handler, root: Path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"sparse+http://127.0.0.1:{httpd.server_address[1]}/index/"


def test_a_dead_registry_is_asked_once_and_reported_as_the_thread_reports_it(tmp_path):
    proj = _project(tmp_path)
    httpd, url = _serve(_Failing, tmp_path)
    try:
        outcome = {}
        for mode in ("thread", "process"):
            _Failing.asked.clear()
            r, forks = _run(["--explain", str(proj), "--index-url", url], tmp_path, mode)
            index_files = sorted(a for a in _Failing.asked if not a.endswith("/config.json"))   # (asked aside, racily)
            outcome[mode] = (r.returncode, r.stderr.strip().splitlines()[-1], index_files, forks)
    finally:
        httpd.shutdown()
        httpd.server_close()
    (t_code, t_err, t_asked, t_forks), (c_code, c_err, c_asked, c_forks) = outcome["thread"], outcome["process"]
    assert t_code == c_code != 0
    assert "HTTP 500" in c_err and c_err.replace(url, "") == t_err.replace(url, "")
    # the child's message reaches the parent, which does not ask the dead host again
    assert c_asked == t_asked and c_asked and t_forks == [] and len(c_forks) == 1
    assert not _alive(c_forks)


def test_ctrl_c_during_the_wave_ends_both_processes(tmp_path):
    proj = _project(tmp_path)
    httpd, url = _serve(_Slow, ROOT / "examples" / "registry")
    log = tmp_path / "forks"
    try:
        _Slow.asked.clear()
        p = _start(tmp_path, log, ["--explain", str(proj), "--index-url", url],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert _Slow.asked.wait(60), "no request reached the registry"
        os.killpg(p.pid, signal.SIGINT)            # what a terminal's Ctrl-C does
        _out, _err = p.communicate(timeout=60)
    finally:
        httpd.shutdown()
        httpd.server_close()
    forks = log.read_text().split()
    assert len(forks) == 1
    assert p.returncode == 130
    assert not _alive(forks)


def test_an_error_after_the_fork_ends_the_child_and_reads_as_without_it(tmp_path, seed_server):
    proj = _project(tmp_path)
    args = ["--explain", "--blocker", ",", str(proj), "--index-url", seed_server.index_url]
    (thread, thread_forks), (child, child_forks) = (_run(args, tmp_path, m) for m in ("thread", "process"))
    assert thread.returncode == child.returncode != 0
    assert child.stderr == thread.stderr and "--blocker needs a crate name" in child.stderr
    assert thread_forks == [] and len(child_forks) == 1 and not _alive(child_forks)


class _Held(_Handler):
    """Answers only once the test lets it, so a run stays in its wave as long as the test needs."""
    asked = threading.Event()
    release = threading.Event()

    def do_GET(self):
        _Held.asked.set()
        _Held.release.wait(60)
        try:
            super().do_GET()
        except OSError:
            pass


def _running(pid: str) -> bool:
    """Alive and not a zombie (whoever adopted an orphan may be slow to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_the_child_process_ends_when_the_command_is_killed(tmp_path):
    proj = _project(tmp_path)
    httpd, url = _serve(_Held, ROOT / "examples" / "registry")
    log = tmp_path / "forks"
    forks: list[str] = []
    _Held.asked.clear()
    _Held.release.clear()
    p = _start(tmp_path, log, ["--explain", str(proj), "--index-url", url],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _Held.asked.wait(60), "no request reached the registry"
        p.kill()                    # the command alone, as `kill -9` or a harness's timeout does
        p.wait(30)
        forks = log.read_text().split()
        assert len(forks) == 1
        deadline = time.monotonic() + 10
        while _running(forks[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(forks[0]), "the child process outlived the command"
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)        # whatever is left of the test's run
        except OSError:
            pass
        _Held.release.set()
        httpd.shutdown()
        httpd.server_close()


def test_an_unwritable_cache_does_not_make_the_child_fetch_in_vain(tmp_path, seed_server):
    proj = _project(tmp_path)
    (tmp_path / "a-file").write_text("")
    args = ["--explain", "-v", str(proj), "--index-url", seed_server.index_url]
    runs = {mode: _run(args, tmp_path, mode, cache=tmp_path / "a-file" / "cache") for mode in ("thread", "process")}
    (thread, _), (child, _) = runs["thread"], runs["process"]
    assert thread.returncode == child.returncode == 0, (thread.stderr, child.stderr)

    def counters(err: str) -> str:
        line = next(ln for ln in err.splitlines() if ln.startswith("index "))
        return line.rsplit(";", 1)[0]

    # what the child fetched never reaches the parent: it must not fetch everything a second time
    assert counters(child.stderr) == counters(thread.stderr)


class _Private(_Handler):
    """A registry that answers only with its token, as cargo's authenticated registries do."""
    asked: list[str] = []

    def do_GET(self):
        _Private.asked.append((self.path, self.headers.get("Authorization") == "s3cret"))
        port = self.server.server_address[1]
        if self.path == "/index/config.json":
            body = json.dumps({"dl": f"http://127.0.0.1:{port}/crates/{{crate}}/{{crate}}-{{version}}.crate",
                               "auth-required": True}).encode()
        elif self.headers.get("Authorization") != "s3cret":
            body = None
        else:
            super().do_GET()
            return
        self.send_response(200 if body else 401)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


def _private_project(tmp_path: Path):
    """The example project, its crates served by a registry that wants its token (`priv`)."""
    proj = _project(tmp_path)
    httpd, url = _serve(_Private, ROOT / "examples" / "registry")
    (proj / ".cargo").mkdir()
    (proj / ".cargo" / "config.toml").write_text(
        f'[source.crates-io]\nreplace-with = "priv"\n\n[registries.priv]\nindex = "{url}"\n')
    return proj, httpd


def test_a_registry_that_wants_its_token_answers_the_child_process_as_the_thread(tmp_path):
    # The resolution asks for files the wave did not fetch (here: no speculation at all), several
    # at once; the token must be sent with them whichever process learnt it first.
    proj, httpd = _private_project(tmp_path)
    args = ["--explain", "--format", "json", "--prefetch", "off", str(proj)]
    try:
        runs = {mode: _run(args, tmp_path, mode, env={"CARGO_REGISTRIES_PRIV_TOKEN": "s3cret"})
                for mode in ("thread", "process")}
    finally:
        httpd.shutdown()
        httpd.server_close()
    (thread, _), (child, child_forks) = runs["thread"], runs["process"]
    assert len(child_forks) == 1
    assert thread.returncode == child.returncode == 0, (thread.stderr, child.stderr)

    def answer(out: str) -> str:        # which unreadable archive a note names is a race either way
        return re.sub(r'"reason": "[^"]*"', '"reason": ?', out)

    assert answer(child.stdout) == answer(thread.stdout)
    assert child.stderr == thread.stderr


def test_the_parent_does_not_learn_again_what_the_child_learnt(tmp_path):
    # the registry's token and its download address (config.json): the child's requests for them
    # are not made a second time by the parent when it needs the network after the wave
    proj, httpd = _private_project(tmp_path)
    asked = {}
    try:
        for mode in ("thread", "process"):
            _Private.asked.clear()
            r, forks = _run(["--explain", "--prefetch", "off", str(proj)], tmp_path, mode,
                            env={"CARGO_REGISTRIES_PRIV_TOKEN": "s3cret"})
            assert r.returncode == 0, r.stderr
            asked[mode] = list(_Private.asked)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(forks) == 1

    def served(mode):                   # what was answered (a request may be resent on a reset)
        return {path for path, token in asked[mode] if token or path.endswith("/config.json")}

    def config_reads(mode):
        return sum(path.endswith("/config.json") for path, _ in asked[mode])

    def refused(mode):                  # sent before the token was known: 401, then sent again
        return sum(not token and not path.endswith("/config.json") for path, token in asked[mode])

    assert served("process") == served("thread")
    assert config_reads("process") <= config_reads("thread")
    # The requests in flight when the first 401 arrives are refused, in either mode (a race: one
    # here, as a rule). Without the token handed back, the parent's first round was refused too.
    assert refused("process") <= refused("thread") + 2, (refused("process"), refused("thread"))
