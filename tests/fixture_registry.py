"""A registry for tests: index lines and `.crate` archives written to a directory, served over
HTTP on 127.0.0.1 in cargo's sparse protocol, so the tool and cargo itself read the same data."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from codemod.registry.index import index_path


@dataclass
class D:
    """A dependency as an index line writes it."""

    name: str
    req: str
    features: list[str] = field(default_factory=list)
    optional: bool = False
    default_features: bool = True
    target: str | None = None
    kind: str = "normal"
    package: str | None = None
    registry: str | None = None

    def line(self) -> dict:
        d = {"name": self.name, "req": self.req, "features": self.features, "optional": self.optional,
             "default_features": self.default_features, "target": self.target, "kind": self.kind}
        if self.package:
            d["package"] = self.package
        if self.registry:
            d["registry"] = self.registry
        return d


@dataclass
class C:
    """A crate version: its index line and a `.crate` archive cargo accepts."""

    name: str
    vers: str
    deps: list[D] = field(default_factory=list)
    features: dict[str, list[str]] = field(default_factory=dict)
    links: str | None = None
    proc_macro: bool = False
    yanked: bool = False

    def manifest(self) -> str:
        """The normalized Cargo.toml `cargo package` would write: the same facts as the index line."""
        q = json.dumps
        out = f'[package]\nname = {q(self.name)}\nversion = {q(self.vers)}\nedition = "2018"\n'
        if self.links:
            out += f'links = {q(self.links)}\nbuild = "build.rs"\n'
        if self.proc_macro:
            out += "\n[lib]\nproc-macro = true\n"
        if self.features:
            out += "\n[features]\n" + "".join(f"{q(k)} = {q(v)}\n" for k, v in self.features.items())
        for d in self.deps:
            table = {"normal": "dependencies", "build": "build-dependencies", "dev": "dev-dependencies"}[d.kind]
            if d.target:
                table = f"target.'{d.target}'.{table}"
            out += f"\n[{table}.{q(d.name)}]\nversion = {q(d.req)}\n"
            if d.package:
                out += f"package = {q(d.package)}\n"
            if d.optional:
                out += "optional = true\n"
            if not d.default_features:
                out += "default-features = false\n"
            if d.features:
                out += f"features = {q(d.features)}\n"
        return out

    def archive(self) -> bytes:
        root = f"{self.name}-{self.vers}"
        files = {"Cargo.toml": self.manifest(), "src/lib.rs": ""}
        if self.links:
            files["build.rs"] = "fn main() {}\n"
        buf = io.BytesIO()
        # Fixed mtimes and a fixed gzip header keep archives (and so checksums) reproducible.
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w") as tar:
                for rel, text in sorted(files.items()):
                    data = text.encode()
                    info = tarfile.TarInfo(f"{root}/{rel}")
                    info.size = len(data)
                    info.mtime = 0
                    tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def line(self, cksum: str) -> dict:
        features = {k: v for k, v in self.features.items() if not any("dep:" in x or "?/" in x for x in v)}
        features2 = {k: v for k, v in self.features.items() if k not in features}
        obj = {"name": self.name, "vers": self.vers, "deps": [d.line() for d in self.deps], "cksum": cksum,
               "features": features, "yanked": self.yanked, "links": self.links}
        if features2:
            obj["features2"] = features2
            obj["v"] = 2
        return obj


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write a project's files; a package without a src/lib.rs or src/main.rs gets an empty
    src/lib.rs so cargo accepts it."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for rel, text in files.items():
        src = (root / rel).parent / "src"
        if rel.endswith("Cargo.toml") and "[package]" in text and not (src / "lib.rs").exists() and not (src / "main.rs").exists():
            src.mkdir(exist_ok=True)
            (src / "lib.rs").write_text("")
    return root


def write_registry(root: Path, crates: list[C], raw_lines: dict[str, list[str]] | None = None) -> Path:
    """Write index files under root/index and archives under root/crates; returns root/index."""
    index = root / "index"
    files: dict[str, list[str]] = {}
    for c in crates:
        data = c.archive()
        dest = root / "crates" / c.name / f"{c.name}-{c.vers}.crate"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        files.setdefault(c.name, []).append(json.dumps(c.line(hashlib.sha256(data).hexdigest())))
    for name, lines in (raw_lines or {}).items():
        files.setdefault(name, []).extend(lines)
    for name, lines in files.items():
        p = index / index_path(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(line + "\n" for line in lines))
    return index


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, as crates.io serves
    disable_nagle_algorithm = True         # headers and body go out in separate writes

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/config.json") and self.path.startswith("/index"):
            port = self.server.server_address[1]
            body = json.dumps({"dl": f"http://127.0.0.1:{port}/crates/{{crate}}/{{crate}}-{{version}}.crate",
                               "api": f"http://127.0.0.1:{port}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


class Server:
    """Serves a directory on 127.0.0.1: the index at /index/, archives at /crates/."""

    def __init__(self, root: Path):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def index_url(self) -> str:
        return f"sparse+http://127.0.0.1:{self.httpd.server_address[1]}/index/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def cargo_home(root: Path, server: Server) -> Path:
    """A fresh CARGO_HOME whose crates-io source is replaced by the fixture registry."""
    home = root / "cargo-home"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "fixture"\n\n'
        f'[source.fixture]\nregistry = "{server.index_url}"\n\n'
        "[net]\nretry = 0\n"
    )
    return home


def registry_from_index(src: Path, root: Path, proc_macros: set[str]) -> Path:
    """Make a registry cargo accepts from real index lines (e.g. the bundled crates.io snapshot):
    every line kept as published except `cksum`, which must match our stand-in archive; crates the
    lines depend on but the snapshot lacks (other platforms') get stub lines with the features
    their dependents ask for, since cargo resolves Cargo.lock for every platform."""
    from codemod.semver import parse_req, parse_version

    lines: dict[str, list[dict]] = {}
    for f in sorted(p for p in src.rglob("*") if p.is_file() and p.name != "config.json" and not p.suffix):
        for text in f.read_text().splitlines():
            if text.strip():
                obj = json.loads(text)
                lines.setdefault(obj["name"], []).append(obj)
    wanted: dict[str, dict] = {}
    for objs in list(lines.values()):
        for obj in objs:
            for d in obj["deps"]:
                if d.get("kind") == "dev" or (d.get("optional") and not d.get("target")):
                    continue
                name = d.get("package") or d["name"]
                have = [o for o in lines.get(name, ()) if parse_req(d["req"]).matches(parse_version(o["vers"]))]
                if not have:
                    w = wanted.setdefault(name, {"reqs": set(), "features": set()})
                    w["reqs"].add(d["req"])
                    w["features"] |= set(d.get("features", ()))
                    values = [v for vs in {**obj.get("features", {}), **obj.get("features2", {})}.values() for v in vs]
                    w["features"] |= {v.split("/", 1)[1] for v in values if v.split("/", 1)[0].rstrip("?") == d["name"] and "/" in v}
    out: list[C] = []
    raw: dict[str, list[str]] = {}
    for name, objs in lines.items():
        for obj in objs:
            c = C(name, obj["vers"], links=obj.get("links"), proc_macro=name in proc_macros)
            data = c.archive()
            dest = root / "crates" / name / f"{name}-{obj['vers']}.crate"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            raw.setdefault(name, []).append(json.dumps(dict(obj, cksum=hashlib.sha256(data).hexdigest())))
    for name, w in wanted.items():
        # one stub per requirement: the highest lower bound that satisfies it
        lowers = {".".join((r.lstrip("^~=>< ").split(",")[0].strip().split(".") + ["0", "0"])[:3]) for r in w["reqs"]}
        versions = {max((v for v in lowers if parse_req(r).matches(parse_version(v))), key=parse_version) for r in w["reqs"]}
        for v in sorted(versions):
            out.append(C(name, v, features={f: [] for f in sorted(w["features"])}))
    return write_registry(root, out, raw)
