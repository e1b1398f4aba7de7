"""What only a crate's own manifest says: whether it is a proc macro.

The index does not carry `[lib] proc-macro = true`; cargo learns it from the Cargo.toml inside the
`.crate` it downloads. We read that manifest from the first place that has it:

1. our cache of earlier answers, one small file per (registry, name, version, checksum) — only the
   boolean is kept, since archives can be megabytes and nothing else in them is needed;
2. cargo's unpacked sources, `$CARGO_HOME/registry/src/*/<name>-<version>/Cargo.toml`;
3. cargo's downloaded archives, `$CARGO_HOME/registry/cache/*/<name>-<version>.crate`
   (used only when the archive's sha256 is the index line's `cksum`);
4. a local registry's archives next to its index (`<dir>/<name>-<version>.crate`);
5. the registry's `dl` URL template from its `config.json`, unless offline.

A vendor directory needs none of this: its crates' manifests are the index (sources.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

MAX_ARCHIVE = 64 * 1024 * 1024
_TEMPLATES = ("{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}")


UNREADABLE = object()          # a cached "the registry had no archive": retried after UNREADABLE_TTL
UNREADABLE_TTL = 3600.0


@dataclass(frozen=True)
class CrateRef:
    """A published crate version, with the index checksum that pins its archive."""

    name: str
    version: str
    cksum: str | None


def proc_macro_of(manifest_text: str) -> bool:
    data = tomllib.loads(manifest_text)
    lib = data.get("lib") or {}
    return bool(lib.get("proc-macro", lib.get("proc_macro", False)))


def manifest_from_archive(data: bytes) -> str | None:
    """The top-level `<name>-<version>/Cargo.toml` of a `.crate` (a gzip tar)."""
    import gzip                 # only a run that reads an archive needs these
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Cargo.toml" and member.isfile():
                    f = tar.extractfile(member)
                    return f.read().decode("utf-8") if f else None
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError):
        return None
    return None


def dl_url(template: str, name: str, version: str, cksum: str | None) -> str:
    """cargo's `make_dl_url`: a template without markers gets `/{crate}/{version}/download`."""
    if not any(t in template for t in _TEMPLATES):
        template = template.rstrip("/") + "/{crate}/{version}/download"
    prefix = _cased_prefix(name)
    return (template.replace("{crate}", name).replace("{version}", version)
            .replace("{prefix}", prefix).replace("{lowerprefix}", prefix.lower())
            .replace("{sha256-checksum}", cksum or ""))


def _cased_prefix(name: str) -> str:
    if len(name) <= 2:
        return str(len(name))
    if len(name) == 3:
        return f"3/{name[0]}"
    return f"{name[:2]}/{name[2:4]}"


class CrateManifests:
    """Answers "is this crate version a proc macro?" for one registry; None when no source could say.

    ``registry`` names the registry in cache keys (its index URL); ``fetcher`` is the registry's
    HttpFetcher (None for local and offline sources); ``local_dirs`` hold a local registry's
    archives."""

    def __init__(self, registry: str, *, cargo_home: Path | None, cache_dir: Path | None,
                 fetcher=None, local_dirs: tuple[Path, ...] = (), jobs: int = 16,
                 no_download: str = "not in cargo's cache, and nothing to download it from"):
        self.registry = registry
        self.cargo_home = cargo_home
        self.cache_dir = cache_dir
        self.fetcher = fetcher
        self.local_dirs = local_dirs
        self.jobs = jobs
        self.no_download = no_download      # why a crate cargo has not cached cannot be read
        self.downloads = 0
        self._dl: str | None = None
        self._dl_error: str | None = None
        self._lock = threading.Lock()
        self.failure: str | None = None     # why the last unanswered crate could not be read
        self._ahead: dict[CrateRef, threading.Event] = {}     # reads started by `prefetch`

    # -- our cache of answers ------------------------------------------------------------------

    def _answer_path(self, ref: CrateRef) -> Path | None:
        if self.cache_dir is None:
            return None
        # a published version never changes; the checksum, where the index gives one, pins it further
        key = hashlib.sha256(f"{self.registry}\0{ref.name}\0{ref.version}\0{ref.cksum or ''}".encode()).hexdigest()
        return Path(self.cache_dir) / "proc-macro-v1" / key[:2] / key

    def _cached(self, ref: CrateRef) -> bool | None:
        p = self._answer_path(ref)
        if p is None:
            return None
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if doc.get("name") != ref.name or doc.get("version") != ref.version or doc.get("cksum") != ref.cksum:
            return None
        if doc.get("proc_macro") is None and isinstance(doc.get("unreadable_at"), (int, float)):
            # the registry had no archive for it a short while ago: do not ask again every run
            if time.time() - doc["unreadable_at"] < UNREADABLE_TTL:
                self.failure = doc.get("why") or "no archive"
                return UNREADABLE
            return None
        return bool(doc["proc_macro"]) if isinstance(doc.get("proc_macro"), bool) else None

    def _remember(self, ref: CrateRef, answer: bool | None, why: str = "") -> None:
        p = self._answer_path(ref)
        if p is None:
            return
        doc = {"registry": self.registry, "name": ref.name, "version": ref.version, "cksum": ref.cksum,
               "proc_macro": answer}
        if answer is None:
            doc.update(unreadable_at=time.time(), why=why)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=p.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f)
            os.replace(tmp, p)
        except OSError:
            pass                      # a cache that cannot be written only costs speed

    # -- cargo's own files ----------------------------------------------------------------------

    def _from_cargo(self, ref: CrateRef) -> bool | None:
        if self.cargo_home is None:
            return None
        stem = f"{ref.name}-{ref.version}"
        for manifest in sorted((Path(self.cargo_home) / "registry" / "src").glob(f"*/{stem}/Cargo.toml")):
            try:
                return proc_macro_of(manifest.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
        archives = sorted((Path(self.cargo_home) / "registry" / "cache").glob(f"*/{stem}.crate"))
        return self._from_archives(ref, archives)

    def _from_archives(self, ref: CrateRef, archives) -> bool | None:
        for archive in archives:
            try:
                data = Path(archive).read_bytes()
            except OSError:
                continue
            answer = self._from_bytes(ref, data)
            if answer is not None:
                return answer
        return None

    def _from_bytes(self, ref: CrateRef, data: bytes) -> bool | None:
        if ref.cksum and hashlib.sha256(data).hexdigest() != ref.cksum:
            return None               # another registry's archive, or a damaged one
        text = manifest_from_archive(data)
        if text is None:
            return None
        try:
            return proc_macro_of(text)
        except tomllib.TOMLDecodeError:
            return None

    # -- the registry ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Learn the registry's download template now (its config.json), ahead of the downloads
        a cold run will make once the versions are chosen."""
        if self.fetcher is not None:
            self._template()

    def _template(self) -> str | None:
        with self._lock:
            if self._dl is None and self._dl_error is None:
                try:
                    body = self.fetcher.download(self.fetcher.base + "config.json", 1024 * 1024)
                    dl = json.loads(body.decode("utf-8")).get("dl") if body is not None else None
                    if not isinstance(dl, str):
                        raise ValueError("no `dl` in config.json")
                    self._dl = dl
                except Exception as e:      # noqa: BLE001 - any failure means: no downloads
                    self._dl_error = f"{self.fetcher.base}config.json: {e}"
            return self._dl

    def _download(self, ref: CrateRef) -> bool | None:
        template = self._template()
        if template is None:
            self.failure = self._dl_error
            return None
        url = dl_url(template, ref.name, ref.version, ref.cksum)
        try:
            data = self.fetcher.download(url, MAX_ARCHIVE)
        except Exception as e:              # noqa: BLE001 - a crate we cannot read is reported, not fatal
            self.failure = str(e)
            return None
        with self._lock:
            self.downloads += 1
        if data is None:
            self.failure = f"{url}: not found"
            return None
        answer = self._from_bytes(ref, data)
        if answer is None:
            self.failure = f"{url}: not a .crate matching the index checksum"
        return answer

    def prefetch(self, ref: CrateRef) -> None:
        """Start reading one crate's answer in the background (a cold run's wave, once the
        crate is known to matter); the answer lands in the cache of answers, where `proc_macro`
        finds it. Without a cache directory there is nowhere to keep it: nothing is started."""
        if self.cache_dir is None:
            return
        with self._lock:
            if ref in self._ahead:
                return
            done = self._ahead[ref] = threading.Event()

        def work():
            try:
                self._answer(ref)
            except Exception:       # noqa: BLE001 - the later ask reads again and reports
                pass
            finally:
                done.set()

        threading.Thread(target=work, name="csf-archive", daemon=True).start()

    def wait_prefetched(self) -> None:
        """Until the reads `prefetch` started have ended (each within the HTTP timeout)."""
        timeout = self.fetcher.timeout if self.fetcher is not None else 30
        for done in list(self._ahead.values()):
            done.wait(timeout)

    def learnt(self) -> dict:
        """What another process's reader of the same registry can use (wave.py): the downloads
        made, and config.json's answer (the download address, or why there is none)."""
        return {"downloads": self.downloads, "dl": self._dl, "dl_error": self._dl_error}

    def adopt(self, learnt: dict) -> None:
        self.downloads += learnt["downloads"]
        with self._lock:
            if self._dl is None and self._dl_error is None:
                self._dl, self._dl_error = learnt["dl"], learnt["dl_error"]

    def proc_macro(self, ref: CrateRef) -> bool | None:
        ahead = self._ahead.get(ref)
        if ahead is not None:
            ahead.wait(self.fetcher.timeout if self.fetcher is not None else 30)
        return self._answer(ref)

    def _answer(self, ref: CrateRef) -> bool | None:
        answer = self._cached(ref)
        if answer is UNREADABLE:
            return None
        if answer is not None:
            return answer
        answer = self._from_cargo(ref)
        if answer is None and self.local_dirs:
            answer = self._from_archives(ref, [d / f"{ref.name}-{ref.version}.crate" for d in self.local_dirs])
        if answer is None and self.fetcher is not None:
            answer = self._download(ref)
            if answer is None:
                self._remember(ref, None, self.failure or "")
        elif answer is None:
            self.failure = self.no_download
        if answer is not None:
            self._remember(ref, answer)
        return answer

    def proc_macros(self, refs: list[CrateRef]) -> dict[CrateRef, bool | None]:
        """Several crates at once: what the cache of answers has, read here; the rest in parallel
        (one round of downloads)."""
        answers: dict[CrateRef, bool | None] = {}
        rest = []
        for r in refs:
            cached = self._cached(r)
            if cached is None:
                rest.append(r)
            else:
                answers[r] = None if cached is UNREADABLE else cached
        if len(rest) <= 1:
            answers.update((r, self.proc_macro(r)) for r in rest)
            return answers
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(rest)))) as pool:
            answers.update(zip(rest, pool.map(self.proc_macro, rest)))
        return answers
