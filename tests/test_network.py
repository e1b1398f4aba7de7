"""The network users have, against servers on 127.0.0.1: forward proxies (environment, cargo's
`http.proxy`, `CARGO_HTTP_PROXY`), an HTTPS index with its own CA (`http.cainfo`), a registry that
requires a token, deadlines against trickling and silent servers, Retry-After, Ctrl-C."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codemod.errors import RegistryError
from codemod.registry.config import http_settings, load_cargo_config, open_registry
from codemod.registry.index import index_path
from codemod.run import Options, analyze_manifest
from fixture_registry import C, D, write_project

MUSL = "x86_64-unknown-linux-musl"
ROOT = Path(__file__).resolve().parent.parent
PKG = '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\na = "1"\n'
CRATES = [C("a", "1.0.0", [D("b", "1")]), C("b", "1.0.0", [D("openssl-sys", "0.9")]),
          C("openssl-sys", "0.9.91", features={"vendored": []}, links="openssl")]
TOKEN = "cio-SECRET-7f3a9c"
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
             "no_proxy", "CARGO_HTTP_PROXY", "CARGO_HTTP_CAINFO", "CARGO_HTTP_TIMEOUT", "CARGO_NET_RETRY",
             "CARGO_HTTP_USER_AGENT", "CARGO_REGISTRY_TOKEN", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


@pytest.fixture(autouse=True)
def clean_network_env(monkeypatch):
    for k in PROXY_ENV:
        monkeypatch.delenv(k, raising=False)
    for k in list(os.environ):
        if k.startswith("CARGO_REGISTRIES_"):
            monkeypatch.delenv(k)


def index_files(crates=CRATES) -> dict[str, bytes]:
    lines: dict[str, list[str]] = {}
    for c in crates:
        lines.setdefault(index_path(c.name), []).append(json.dumps(c.line("0" * 64)))
    return {p: "".join(x + "\n" for x in ls).encode() for p, ls in lines.items()}


class Site:
    """A threaded HTTP(S) server on 127.0.0.1; ``answer(handler, path)`` writes each reply (by
    default the index files) and every request is logged with its headers."""

    def __init__(self, answer=None, tls: ssl.SSLContext | None = None, files=None):
        self.files = index_files() if files is None else files
        self.log: list[tuple[str, dict]] = []
        self.answer = answer or Site.serve_file
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                owner.log.append((path, dict(self.headers)))
                owner.answer(owner, self, path.lstrip("/"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def serve_file(site, h, path):
        body = site.files.get(path)
        if body is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"sparse+{scheme}://{host}:{self.port}/"

    def paths(self) -> list[str]:
        return [p for p, _ in self.log]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Proxy:
    """A forward HTTP proxy that records the absolute URLs it is asked for and fetches them."""

    def __init__(self):
        self.log: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                owner.log.append(self.path)
                target = http.client.urlsplit(self.path)
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection", "host")}
                conn.request("GET", target.path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture
def proxy():
    p = Proxy()
    yield p
    p.close()


def project(tmp_path, config: str = "") -> Path:
    files = {"Cargo.toml": PKG}
    if config:
        files[".cargo/config.toml"] = config
    return write_project(tmp_path / "p", files)


def analyze(proj, **kw):
    idx = open_registry(proj, jobs=4, **kw)
    return analyze_manifest(proj, Options(target=MUSL), idx).analysis


def culprits(a) -> list[str]:
    return [c.crate for c in a.culprits]


# -- settings -------------------------------------------------------------------------------------

def test_settings_come_from_env_over_config(tmp_path, monkeypatch):
    proj = project(tmp_path, '[http]\ntimeout = 7\nproxy = "proxy.corp:3128"\ncainfo = "certs/ca.pem"\n'
                             'user-agent = "corp-agent/1"\n\n[net]\nretry = 1\n')
    s = http_settings(load_cargo_config(proj))
    assert (s.timeout, s.retries, s.proxy, s.user_agent) == (7.0, 1, "proxy.corp:3128", "corp-agent/1")
    assert s.cainfo == str(proj / "certs/ca.pem")                  # relative to the directory holding .cargo/
    monkeypatch.setenv("CARGO_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("CARGO_NET_RETRY", "0")
    monkeypatch.setenv("CARGO_HTTP_PROXY", "other:8080")
    monkeypatch.setenv("CARGO_HTTP_CAINFO", "/etc/corp.pem")
    monkeypatch.setenv("CARGO_HTTP_USER_AGENT", "env-agent")
    s = http_settings(load_cargo_config(proj))
    assert (s.timeout, s.retries, s.proxy, s.cainfo, s.user_agent) == (2.5, 0, "other:8080", "/etc/corp.pem", "env-agent")
    monkeypatch.setenv("CARGO_NET_RETRY", "many")
    with pytest.raises(RegistryError, match=r"net.retry \(CARGO_NET_RETRY\) must be a whole number"):
        http_settings(load_cargo_config(proj))


def test_user_agent_setting_is_sent(site, tmp_path, monkeypatch):
    monkeypatch.setenv("CARGO_HTTP_USER_AGENT", "corp-agent/2")
    analyze(project(tmp_path), index_url=site.url())
    assert {h["User-Agent"] for _, h in site.log} == {"corp-agent/2"}


# -- proxies --------------------------------------------------------------------------------------

def index_only(log: list) -> list:
    """The index files among logged requests (the crates' own manifests are read too: config.json
    for the download address, then archives)."""
    return [e for e in log if not str(e if isinstance(e, str) else e[0]).endswith("config.json")
            and "/crates/" not in str(e if isinstance(e, str) else e[0])]


def test_http_proxy_from_the_environment(site, proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.address}")
    proj = project(tmp_path)
    assert culprits(analyze(proj, index_url=site.url())) == ["a"]
    assert sorted(index_only(proxy.log)) == sorted(f"http://127.0.0.1:{site.port}/{index_path(n)}" for n in ("a", "b", "openssl-sys"))
    assert f"http://127.0.0.1:{site.port}/config.json" in proxy.log      # downloads take the proxy too
    # NO_PROXY names the host: straight to the server
    proxy.log.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    analyze(proj, index_url=site.url(), refresh=True)
    assert proxy.log == []


def test_cargo_http_proxy_wins_over_the_environment(site, proxy, tmp_path, monkeypatch):
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    proj = project(tmp_path, f'[http]\nproxy = "{proxy.address}"\n')       # libcurl syntax: host:port
    assert culprits(analyze(proj, index_url=site.url())) == ["a"]
    assert len(index_only(proxy.log)) == 3 and len(index_only(site.log)) == 3
    # CARGO_HTTP_PROXY wins over the config file
    (proj / ".cargo/config.toml").write_text(f'[http]\nproxy = "{dead}"\n')
    monkeypatch.setenv("CARGO_HTTP_PROXY", f"http://{proxy.address}")
    proxy.log.clear()
    assert culprits(analyze(proj, index_url=site.url(), refresh=True)) == ["a"]
    assert len(index_only(proxy.log)) == 3
    # and an unreachable proxy is named in the error
    monkeypatch.setenv("CARGO_HTTP_PROXY", dead)
    monkeypatch.setenv("CARGO_NET_RETRY", "0")
    with pytest.raises(RegistryError, match=rf"cannot reach the proxy {dead}"):
        analyze(proj, index_url=site.url(), refresh=True)


# -- TLS with a private CA ------------------------------------------------------------------------

def make_ca(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA certificate and a server certificate for 127.0.0.1 signed by it."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return _make_ca_openssl(tmp)
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, signer, ca: bool, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False, data_encipherment=False,
                                              key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca_cert = cert(ca_name, ca_name, ca_key, ca_key, True)
    srv_cert = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, srv_key, ca_key, False,
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (tmp / "server.pem").write_bytes(srv_cert.public_bytes(pem))
    (tmp / "server.key").write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"


def _make_ca_openssl(tmp: Path) -> tuple[Path, Path, Path]:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor the openssl command is available to make a test CA")
    run = lambda *a: subprocess.run(["openssl", *a], cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"


@pytest.fixture
def tls_site(tmp_path):
    ca, cert, key = make_ca(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    s = Site(tls=ctx)
    yield s, ca
    s.close()


def test_https_index_with_a_private_ca(tls_site, tmp_path, monkeypatch):
    site, ca = tls_site
    url = site.url("https")
    proj = project(tmp_path, '[http]\ncainfo = "certs/ca.pem"\n')
    (proj / "certs").mkdir()
    (proj / "certs/ca.pem").write_bytes(ca.read_bytes())
    assert culprits(analyze(proj, index_url=url)) == ["a"]
    # without the CA: one clear error, no retries of a certificate that will not change
    (proj / ".cargo/config.toml").write_text("")
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"1/a: the server's TLS certificate is not trusted .*http.cainfo"):
        analyze(proj, index_url=url, refresh=True)
    assert time.monotonic() - start < 2.0
    # CARGO_HTTP_CAINFO and SSL_CERT_FILE give it too
    for var in ("CARGO_HTTP_CAINFO", "SSL_CERT_FILE"):
        monkeypatch.setenv(var, str(ca))
        assert culprits(analyze(proj, index_url=url, refresh=True)) == ["a"]
        monkeypatch.delenv(var)


# -- registries that require a token --------------------------------------------------------------

class AuthSite(Site):
    """An index that answers 401 to any request without the token; config.json says so."""

    def __init__(self, token: str = TOKEN, redirect_to: str | None = None):
        self.token = token
        self.redirect_to = redirect_to
        super().__init__(answer=AuthSite.answer_auth)

    @staticmethod
    def answer_auth(site, h, path):
        if h.headers.get("Authorization") != site.token:
            body = b'{"errors": [{"detail": "token required"}]}'
            h.send_response(401)
            h.send_header("WWW-Authenticate", 'Cargo login_url="https://example.invalid/me"')
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if path == "config.json":
            body = json.dumps({"dl": "https://example.invalid/dl", "auth-required": True}).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if site.redirect_to and path == index_path("b"):
            h.send_response(302)
            h.send_header("Location", site.redirect_to + path)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        Site.serve_file(site, h, path)


def auth_project(tmp_path, site) -> Path:
    return project(tmp_path, f'[registries.corp]\nindex = "{site.url()}"\n\n'
                             '[source.crates-io]\nreplace-with = "corp"\n')


def run_cli(proj: Path, *extra: str, env: dict | None = None, timeout: float = 60):
    cmd = [sys.executable, "-m", "codemod", "--explain", "-v", str(proj), *extra]
    full = {k: v for k, v in os.environ.items() if k not in PROXY_ENV}
    full.update(CARGO_STATIC_FIX_NO_MEMO="1", **(env or {}))
    return subprocess.run(cmd, cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


def test_auth_required_registry_without_a_token(tmp_path):
    site = AuthSite()
    try:
        proj = auth_project(tmp_path, site)
        with pytest.raises(RegistryError) as e:
            analyze(proj)
        assert str(e.value) == (
            f"registry `corp` requires authentication (HTTP 401 from {site.url().removeprefix('sparse+')}); "
            "set CARGO_REGISTRIES_CORP_TOKEN, or run `cargo login --registry corp` (it writes `token` "
            "under [registries.corp] in $CARGO_HOME/credentials.toml); a token is issued at https://example.invalid/me")
        r = run_cli(proj)
        assert r.returncode == 2 and r.stderr.count("error:") == 1 and "CARGO_REGISTRIES_CORP_TOKEN" in r.stderr
        assert all("Authorization" not in h for _, h in site.log)
    finally:
        site.close()


def test_auth_required_registry_with_a_token_from_env_or_credentials(tmp_path, monkeypatch):
    site = AuthSite()
    try:
        proj = auth_project(tmp_path, site)
        r = run_cli(proj, env={"CARGO_REGISTRIES_CORP_TOKEN": TOKEN})
        assert r.returncode == 0, r.stderr
        assert "openssl-sys" in r.stdout
        assert TOKEN not in r.stdout + r.stderr
        # the token is sent once config.json has asked for it, then with every request
        paths = site.paths()
        first_authed = next(i for i, (_, h) in enumerate(site.log) if h.get("Authorization") == TOKEN)
        assert paths[:first_authed].count("/config.json") >= 1 and "Authorization" not in site.log[0][1]
        authed = [p for p, h in site.log if h.get("Authorization") == TOKEN]
        assert {"/1/a", "/1/b", "/config.json"} <= set(authed)

        home = Path(os.environ["CARGO_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        (home / "credentials.toml").write_text(f'[registries.corp]\ntoken = "{TOKEN}"\n')
        monkeypatch.delenv("CARGO_REGISTRIES_CORP_TOKEN", raising=False)
        assert culprits(analyze(proj, refresh=True)) == ["a"]

        # a wrong token: refused, and the message does not show it
        (home / "credentials.toml").write_text('[registries.corp]\ntoken = "wrong-SECRET-token"\n')
        r = run_cli(proj, "--refresh")
        assert r.returncode == 2 and "registry `corp` refused the token (HTTP 401)" in r.stderr
        assert "wrong-SECRET-token" not in r.stdout + r.stderr
    finally:
        site.close()


def test_where_tokens_are_found(tmp_path, monkeypatch):
    from codemod.registry.config import registry_auth

    proj = project(tmp_path, '[registries.my-corp]\nindex = "sparse+https://corp.example/"\ntoken = "from-config"\n')
    config = load_cargo_config(proj)
    corp, cio = registry_auth("my-corp", config), registry_auth("crates-io", config)
    assert corp.token() == "from-config" and cio.token() is None
    home = Path(os.environ["CARGO_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "credentials.toml").write_text('[registry]\ntoken = "cio-file"\n\n[registries.my-corp]\ntoken = "corp-file"\n')
    assert (corp.token(), cio.token()) == ("corp-file", "cio-file")          # credentials.toml over config
    monkeypatch.setenv("CARGO_REGISTRIES_MY_CORP_TOKEN", "corp-env")
    monkeypatch.setenv("CARGO_REGISTRY_TOKEN", "cio-env")
    assert (corp.token(), cio.token()) == ("corp-env", "cio-env")            # the environment over both
    assert "CARGO_REGISTRIES_MY_CORP_TOKEN" in corp.hint and "CARGO_REGISTRY_TOKEN" in cio.hint


def test_the_token_never_goes_to_another_host(tmp_path, monkeypatch):
    other = Site()
    site = AuthSite(redirect_to=other.url(host="localhost").removeprefix("sparse+"))
    try:
        monkeypatch.setenv("CARGO_REGISTRIES_CORP_TOKEN", TOKEN)
        assert culprits(analyze(auth_project(tmp_path, site))) == ["a"]
        assert other.paths() == ["/1/b"]                     # followed the redirect...
        assert all("Authorization" not in h for _, h in other.log)     # ...without the token
    finally:
        site.close()
        other.close()


# -- deadlines --------------------------------------------------------------------------------------

def trickle(site, h, path):
    """Headers at once, then one byte of the body every 0.3 s: each read is quick, the whole slow."""
    body = site.files.get(path, b"")
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    try:
        for i in range(len(body)):
            h.wfile.write(body[i:i + 1])
            h.wfile.flush()
            time.sleep(0.3)
    except OSError:
        pass


@pytest.mark.parametrize("retries", [0, 1])
def test_a_trickling_server_fails_at_the_deadline(tmp_path, retries):
    import requests  # noqa: F401  (imported before the clock starts)

    site = Site(answer=trickle, files={p: b * 40 for p, b in index_files().items()})
    try:
        proj = project(tmp_path, f"[http]\ntimeout = 1\n\n[net]\nretry = {retries}\n")
        start = time.monotonic()
        tried = "tried once" if retries == 0 else f"tried {retries + 1} times"
        with pytest.raises(RegistryError, match=rf"1/a: cannot reach the index \(timed out; {tried}\)"):
            analyze(proj, index_url=site.url())
        elapsed = time.monotonic() - start
        assert elapsed < (retries + 1) * 1.0 + 1.2, elapsed     # the body alone would take most of an hour
        assert site.paths().count("/1/a") == retries + 1
    finally:
        site.close()


def test_a_large_file_arriving_steadily_is_not_cut_off(tmp_path):
    """The deadline starts again with each 64 KiB: a slow link is not a trickling server."""
    versions = [C("a", f"1.0.{i}", [D("b", "1")]) for i in range(1500)]
    files = index_files(versions + CRATES[1:])
    big = files[index_path("a")]
    assert len(big) > 4 * 64 * 1024

    def steady(site, h, path):
        body = site.files[path]
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for i in range(0, len(body), 64 * 1024):
            h.wfile.write(body[i:i + 64 * 1024])
            h.wfile.flush()
            if path == index_path("a"):
                time.sleep(0.4)

    site = Site(answer=steady, files=files)
    try:
        proj = project(tmp_path, "[http]\ntimeout = 1\n\n[net]\nretry = 0\n")
        start = time.monotonic()
        assert culprits(analyze(proj, index_url=site.url())) == ["a"]
        assert time.monotonic() - start > 1.5          # longer than the timeout, and not cut off
        assert site.paths().count("/1/a") == 1
    finally:
        site.close()


class SilentServer:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)

    @property
    def url(self) -> str:
        return f"sparse+http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_silent_server_is_reported_once_in_bounded_time(tmp_path, capsys):
    import requests  # noqa: F401  (imported before the clock starts)

    from codemod import cli

    srv = SilentServer()
    try:
        proj = write_project(tmp_path / "p", {
            "Cargo.toml": PKG + 'x = "1"\ny = "1"\n',
            ".cargo/config.toml": f'[source.crates-io]\nreplace-with = "mirror"\n\n[source.mirror]\nregistry = "{srv.url}"\n\n'
                                  '[http]\ntimeout = 1\n\n[net]\nretry = 1\n'})
        start = time.monotonic()
        code = cli.main(["--explain", str(proj), "--prefetch", "features"])
        elapsed = time.monotonic() - start
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("error:") == 1 and "cannot reach the index (timed out; tried 2 times)" in err, err
        # two attempts of 1 s each, once: the early prefetch's failure is remembered, not repeated
        assert elapsed < 2 * 1.0 + 1.5, elapsed        # repeating the retries would take 4 s
    finally:
        srv.close()


def test_ctrl_c_stops_the_run_within_a_second(tmp_path):
    srv = SilentServer()
    try:
        proj = project(tmp_path, f'[source.crates-io]\nreplace-with = "mirror"\n\n[source.mirror]\nregistry = "{srv.url}"\n')
        env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV}
        env["CARGO_STATIC_FIX_NO_MEMO"] = "1"
        p = subprocess.Popen([sys.executable, "-m", "codemod", "--explain", str(proj)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while srv.accepted == 0 and time.monotonic() < deadline:      # wait until requests are in flight
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = p.communicate(timeout=20)
        assert time.monotonic() - start < 1.0 + 0.5
        assert p.returncode == 130, err
        assert "Traceback" not in err
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()


# -- Retry-After ------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(tmp_path, status):
    first = {}

    def busy_once(site, h, path):
        if path not in first:
            first[path] = True
            h.send_response(status)
            h.send_header("Retry-After", "1")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        Site.serve_file(site, h, path)

    site = Site(answer=busy_once)
    try:
        start = time.monotonic()
        assert culprits(analyze(project(tmp_path), index_url=site.url())) == ["a"]
        assert time.monotonic() - start >= 0.95
        assert site.paths().count("/1/a") == 2
    finally:
        site.close()


def test_a_warm_run_does_not_import_requests(site, tmp_path):
    proj = project(tmp_path)
    cache = tmp_path / "cache"
    code = (
        "import sys\nfrom codemod import cli\n"
        f"code = cli.main(['--explain', {str(proj)!r}, '--index-url', {site.url()!r}])\n"
        "print(code, 'requests' in sys.modules)\n")
    env = dict({k: v for k, v in os.environ.items() if k not in PROXY_ENV},
               CARGO_STATIC_FIX_CACHE_DIR=str(cache), CARGO_STATIC_FIX_NO_MEMO="1")
    cold = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert cold.stdout.split()[-2:] == ["0", "True"], cold.stderr
    warm = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert warm.stdout.split()[-2:] == ["0", "False"], warm.stderr
