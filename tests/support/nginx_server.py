"""A real nginx (Debian nginx-light) running the files in deploy/nginx/, for tests.

Two layers: ``NginxServer`` (render the shipped files, run nginx, stop it) and ``start_site``
(nginx + sso-proxy loaded from a shipped deploy/nginx/*.yaml + the mock IdP + one recording echo
app per application), plus the client helpers the nginx tests share.

The deploy files are copied into a temp dir with their ``__PLACEHOLDER__`` values filled in (ports,
app addresses, TLS files), then included from a small main ``nginx.conf`` laid out like Debian's
(``conf.d/*.conf`` and a site inside ``http { }``), so the tests run exactly the shipped files.

nginx runs in the foreground with every path it writes (pid, logs, temp dirs) in the temp dir, so
it needs no root and touches nothing in /etc, /var or /run. A missing nginx is an error with the
install line, never a skipped test.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sso_proxy.config.schema import Config, load_config
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.identity.key_files import write_key_file
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import RunningMock, start_mock_idp
from support.echo_app import make_app
from support.harness import COOKIE_SECRET, LoopbackResolver, start_proxy
from support.ports import START_ATTEMPTS, PortClash, address_in_use, free_port, release

INSTALL_HINT = "nginx not found: apt-get install nginx-light"
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
PLACEHOLDER = re.compile(r"__[A-Z][A-Z0-9_]*__")
SYSTEM_FASTCGI_PARAMS = Path("/etc/nginx/fastcgi_params")


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


def render(text: str, values: Mapping[str, str], *, name: str = "") -> str:
    """``text`` with every ``__NAME__`` replaced; a placeholder without a value is an error."""

    def one(match: re.Match[str]) -> str:
        key = match.group(0)
        if key not in values:
            raise KeyError(f"{name}: no value for placeholder {key}")
        return values[key]

    return PLACEHOLDER.sub(one, text)


def write_tls_files(directory: Path, names: Sequence[str]) -> tuple[Path, Path]:
    """A self-signed EC certificate for ``names`` (wildcards allowed): (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


TLS_NAMES = ("hospital.example", "*.hospital.example")


class NginxServer:
    """nginx with ``conf.d/sso-proxy.conf`` and the given ``sites`` (names in sites-available/).

    ``values`` fills the placeholders; ``__LISTEN_PORT__`` (a free port unless given) and the
    TLS files are filled in here. A free port someone else takes first is replaced by another
    one at start, unless ``movable_port`` is False (the caller wrote it elsewhere too): then
    start raises ``PortClash``.
    """

    def __init__(
        self,
        sites: Sequence[str],
        values: Mapping[str, str],
        *,
        tls_names: Sequence[str],
        movable_port: bool = True,
    ) -> None:
        self.binary = nginx_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="sso-nginx-"))
        # nginx started as root runs its workers as "nobody": they must be able to enter the dir.
        self.dir.chmod(0o755)
        self.conf_dir = self.dir / "conf"
        self.sites = list(sites)
        self.port = int(values.get("__LISTEN_PORT__", "0")) or free_port()
        self.movable_port = movable_port and "__LISTEN_PORT__" not in values
        cert, key = write_tls_files(self.dir, tls_names)
        self.values = {
            **values,
            "__LISTEN_PORT__": str(self.port),
            "__TLS_CERT__": str(cert),
            "__TLS_KEY__": str(key),
        }
        self.process: subprocess.Popen[bytes] | None = None

    # -- files -------------------------------------------------------------------------------

    def write_config(self) -> Path:
        sources = [p for sub in ("conf.d", "snippets") for p in sorted((DEPLOY_DIR / sub).glob("*.conf"))]
        sources += [DEPLOY_DIR / "sites-available" / site for site in self.sites]
        for source in sources:
            target = self.conf_dir / source.relative_to(DEPLOY_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(source.read_text(encoding="utf-8"), self.values, name=str(source)))
        # Debian's fastcgi_params (nginx-common), for sites that pass to PHP-FPM (php-app.conf).
        if SYSTEM_FASTCGI_PARAMS.exists():
            shutil.copy(SYSTEM_FASTCGI_PARAMS, self.conf_dir / "fastcgi_params")
        temp = self.dir / "temp"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / name).mkdir(parents=True, exist_ok=True)
        sites = "\n".join(f"    include sites-available/{site};" for site in self.sites)
        main = self.conf_dir / "nginx.conf"
        main.write_text(
            "worker_processes 1;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    client_body_temp_path {temp}/client_body;\n"
            f"    proxy_temp_path {temp}/proxy;\n"
            f"    fastcgi_temp_path {temp}/fastcgi;\n"
            f"    uwsgi_temp_path {temp}/uwsgi;\n"
            f"    scgi_temp_path {temp}/scgi;\n"
            "    log_format sso '$host \"$request\" $status auth=$sso_auth_status';\n"
            f"    access_log {self.dir}/access.log sso;\n"
            "    default_type application/octet-stream;\n"
            "    include conf.d/*.conf;\n"
            f"{sites}\n"
            "}\n"
        )
        return main

    def argv(self, *extra: str) -> list[str]:
        main = self.conf_dir / "nginx.conf"
        globals_ = f"daemon off; pid {self.dir}/nginx.pid; error_log {self.dir}/error.log info;"
        return [self.binary, "-p", str(self.dir), "-c", str(main), "-g", globals_, *extra]

    # -- process -----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> NginxServer:
        for attempt in range(START_ATTEMPTS):
            try:
                self._start_once(timeout)
                return self
            except PortClash:
                if not self.movable_port or attempt + 1 == START_ATTEMPTS:
                    raise
                self.port = free_port()
                self.values["__LISTEN_PORT__"] = str(self.port)
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> None:
        self.write_config()
        check = subprocess.run(self.argv("-t", "-q"), capture_output=True, timeout=timeout, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{check.stderr.decode(errors='replace')}")
        for name in ("stderr.log", "error.log", "nginx.pid"):
            (self.dir / name).unlink(missing_ok=True)  # this start's only
        release(self.port)
        with (self.dir / "stderr.log").open("ab") as out:
            self.process = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        try:
            self._wait_listening(timeout)
        except RuntimeError:
            if self.process.poll() is not None and address_in_use(self.log_tail()):
                raise PortClash(f"nginx: port {self.port} taken:\n{self.log_tail()}") from None
            raise

    def _wait_listening(self, timeout: float) -> None:
        """Until nginx has bound its port (it writes its pid file after that) and accepts on it;
        a bare connect could reach whoever took the port first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nginx exited at start:\n{self.log_tail()}")
            if not (self.dir / "nginx.pid").exists():
                time.sleep(0.05)
                continue
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.dir / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts) or "(no log)"

    def access_log(self) -> list[str]:
        path = self.dir / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    async def wait_log_line(self, needle: str, timeout: float = 5.0) -> str:
        """The last access-log line containing ``needle``; nginx may log a request only after
        the client saw the response (e.g. after a lingering close), so wait for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.access_log() if needle in line]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no access-log line with {needle!r}: {self.access_log()[-5:]}")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown, the master stops its workers
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, host: str, path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a whole site: nginx + sso-proxy + mock IdP + apps -------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def start_recording_echo() -> tuple[web.AppRunner, str, list[str]]:
    """The echo app (tests/echo_app.py) that also lists every request target it received."""
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.raw_path)
        return await handler(request)

    app = make_app()
    app.middlewares.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"127.0.0.1:{runner.addresses[0][1]}", seen


def provider_field(mock: RunningMock, key: str, field: str) -> str:
    """A field of the Provider ID profile the mock IdP gives user ``key`` (what a header must carry)."""
    users = mock.state.users
    for user in users.values() if isinstance(users, dict) else users:
        if user.key == key and user.provider is not None:
            return str(user.provider[field])
    raise KeyError(key)


async def start_or_unwind(nginx: NginxServer, proxy: web.AppRunner, mock: RunningMock) -> None:
    """Start nginx in front of a started sso-proxy and mock IdP; if it fails, stop all three."""
    try:
        nginx.start()
    except BaseException:
        nginx.stop()
        await proxy.cleanup()
        await mock.close()
        raise


@dataclass
class Site:
    nginx: NginxServer
    config: Config
    mock: RunningMock
    runner: web.AppRunner
    app: web.Application
    apps: dict[str, tuple[web.AppRunner, str, list[str]]]

    @property
    def public_url(self) -> str:
        return self.config.public_url

    @property
    def cookie_name(self) -> str:
        return self.app[RUNTIME].cookies.session_name

    def url(self, host: str, path: str = "/") -> str:
        return self.nginx.url(host, path)

    def seen(self, app: str) -> list[str]:
        """Request targets the app ``app`` has received so far."""
        return list(self.apps[app][2])

    def user_field(self, key: str, field: str) -> str:
        return provider_field(self.mock, key, field)

    def cookie_header(self, client: aiohttp.ClientSession, host: str) -> str:
        """The session cookie the browser holds for ``host``, as a Cookie header value."""
        found = [
            f"{c.key}={c.value}"
            for c in client.cookie_jar
            if c.key == self.cookie_name and c["domain"] == host
        ]
        assert found, f"no session cookie for {host}"
        return found[0]

    async def mock_token_calls(self) -> int:
        """How many token requests the mock IdP has answered (a login makes them, SSO does not)."""
        async with aiohttp.ClientSession() as client, client.get(self.mock.base_url + "/_mock/requests") as r:
            entries = (await r.json())["requests"]
        return sum(1 for e in entries if str(e.get("path", "")).endswith("/token"))

    async def close(self) -> None:
        self.nginx.stop()
        await self.runner.cleanup()
        await self.mock.close()
        for runner, _, _ in self.apps.values():
            await runner.cleanup()


async def start_site(
    sites: Sequence[str],
    config_file: str,
    apps: Sequence[str],
    *,
    login_host: str,
    redis_url: str,
    tmp: Path,
    values: Mapping[str, str] | None = None,
) -> Site:
    """nginx with ``sites`` in front of sso-proxy configured by the shipped ``config_file``.

    Each name in ``apps`` gets a recording echo app, filled in as ``__<NAME>_ADDR__`` in the nginx
    files and ``<NAME>_UPSTREAM`` in the sso-proxy config. The login host is ``login_host``.
    ``values`` fills further placeholders of the nginx files (e.g. ``__PHP_FPM__``).
    nginx's port is part of the public URL, so a port taken first means starting over on another.
    """
    started = {name: await start_recording_echo() for name in apps}
    try:
        for attempt in range(START_ATTEMPTS):
            try:
                return await start_site_once(
                    sites, config_file, started, login_host, redis_url, tmp, extra_values=values
                )
            except PortClash:
                if attempt + 1 == START_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")
    except BaseException:
        for runner, _, _ in started.values():
            await runner.cleanup()
        raise


async def start_site_once(
    sites: Sequence[str],
    config_file: str,
    started: dict[str, tuple[web.AppRunner, str, list[str]]],
    login_host: str,
    redis_url: str,
    tmp: Path,
    extra_values: Mapping[str, str] | None = None,
) -> Site:
    proxy_port = free_port()  # reserved: start_proxy serves on the reserved socket
    values = {"__PROXY_PORT__": str(proxy_port), **(extra_values or {})}
    values.update({f"__{name.upper()}_ADDR__": addr for name, (_, addr, _) in started.items()})
    nginx = NginxServer(sites, values, tls_names=TLS_NAMES, movable_port=False)
    public_url = f"https://{login_host}:{nginx.port}"
    mock = await start_mock_idp(MockSettings(redirect_uris=[public_url + "/oauth2/callback"]))
    key_file = tmp / f"signing-{nginx.port}.pem"
    write_key_file(str(key_file))
    settings = mock.settings
    environ = {
        "SSO_PROXY_PORT": str(proxy_port),
        "SSO_PUBLIC_URL": public_url,
        "HEALTH_ID_URL": mock.base_url,
        "HEALTH_ID_CLIENT_ID": settings.health_client_id,
        "HEALTH_ID_CLIENT_SECRET": settings.health_client_secret,
        "PROVIDER_ID_URL": mock.base_url,
        "PROVIDER_ID_CLIENT_ID": settings.provider_client_id,
        "PROVIDER_ID_SECRET_KEY": settings.provider_secret_key,
        "SSO_REDIS_URL": redis_url,
        "SSO_COOKIE_SECRET": COOKIE_SECRET,
        "SSO_SIGNING_KEY": str(key_file),
        "HOSPITAL_HCODE": "10999",
        **{f"{name.upper()}_UPSTREAM": f"http://{addr}" for name, (_, addr, _) in started.items()},
    }
    try:
        config = load_config(DEPLOY_DIR / config_file, environ)
        runner, app = await start_proxy(config)
    except BaseException:
        await mock.close()
        nginx.stop()
        raise
    await start_or_unwind(nginx, runner, mock)
    return Site(nginx=nginx, config=config, mock=mock, runner=runner, app=app, apps=started)


# -- client helpers ------------------------------------------------------------------------------


def tls_browser() -> aiohttp.ClientSession:
    """A browser-like client: cookies per host, every name resolves to 127.0.0.1, the test
    certificate accepted, redirects left to the caller (``harness.follow``)."""
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver(), ssl=False)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


def echoed(body: dict[str, Any]) -> dict[str, list[str]]:
    """The echo app's view of the request headers: lower-case name -> every value."""
    out: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def verify_assertion(token: str, jwks: dict[str, Any], issuer: str, audience: str) -> dict[str, Any]:
    """Verify an X-Provider-Assertion the way an app would: PyJWT, key by ``kid`` from the JWKS."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=audience, issuer=issuer
    )
    return claims


async def raw_request(
    port: int, sni: str, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTPS request with the request line and headers byte for byte as given (no client
    library normalising the path): (status, response headers, body)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=sni)
    try:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        head = f"{method} {target} HTTP/1.1\r\n{lines}{length}Connection: close\r\n\r\n"
        writer.write(head.encode("utf-8", "surrogateescape") + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if response_headers.get("transfer-encoding", "").lower() == "chunked":
        payload = dechunk(payload)
    return int(status_line.split()[1]), response_headers, payload


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out
