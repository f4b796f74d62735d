"""A real forward proxy for the egress and doctor tests, and a throw-away CA so the mock IdP can speak TLS.

``ForwardProxy`` behaves as a hospital's egress proxy does: it takes ``CONNECT host:port`` (a raw
tunnel, for https URLs) and absolute-form requests (``GET http://host:port/path``, for http URLs),
resolves the host name ITSELF (``hosts``: e.g. ``moph.test`` -> ``127.0.0.1``; IP literals go as
they are; any other name is refused with 502, so nothing leaves the machine), and records every
request in ``seen``. One absolute-form request per connection (answered with ``Connection:
close``), so every request the client makes passes through the head parser and is recorded.

``make_tls`` makes a CA and a certificate for some host names or IP addresses, valid for a chosen
number of days (the doctor reports them); a ``sso-proxy serve`` or ``doctor`` child trusts it
through ``SSL_CERT_FILE`` (OpenSSL's standard override), so no system trust store is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Seen:
    """One request the proxy was sent: ``CONNECT`` or an HTTP method, and where it was to go."""

    method: str
    host: str
    port: int
    path: str  # "" for CONNECT (the proxy never sees inside the tunnel)
    proxy_authorization: str | None


@dataclass
class ForwardProxy:
    """A forward proxy on a loopback port (``url``); ``seen`` holds every request it was sent."""

    hosts: Mapping[str, str] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)  # host names answered 403 (a proxy's deny list)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hosts_seen(self) -> list[str]:
        return [seen.host for seen in self.seen]

    async def start(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def _address(self, host: str) -> str | None:
        """The proxy's own name resolution: the mapping, or an IP literal as it is."""
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(host.strip("[]")))
        return self.hosts.get(host.lower())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                return
            await self._serve(head.decode("latin-1"), reader, writer)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, head: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, *lines = head.rstrip("\r\n").split("\r\n")
        method, target, version = line.split(" ")
        headers = [tuple(h.split(":", 1)) for h in lines if ":" in h]
        auth = next((v.strip() for k, v in headers if k.lower() == "proxy-authorization"), None)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            path = ""
        else:
            parts = urlsplit(target)
            host, port = parts.hostname or "", str(parts.port or 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.seen.append(Seen(method, host.strip("[]").lower(), int(port), path, auth))
        address = self._address(host)
        if host.lower() in self.refuse or address is None:
            status = "403 Forbidden" if host.lower() in self.refuse else "502 Bad Gateway"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(address, int(port))
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
            body = await reader.readexactly(length) if length else b""
            kept = [f"{k}:{v}\r\n" for k, v in headers if not k.lower().startswith(("proxy-", "connection"))]
            up_writer.write(f"{method} {path} {version}\r\n{''.join(kept)}Connection: close\r\n\r\n".encode())
            up_writer.write(body)
            await up_writer.drain()
            writer.write(_closing(await up_reader.read()))
            await writer.drain()
        finally:
            up_writer.close()


def _closing(response: bytes) -> bytes:
    """The upstream's whole answer with ``Connection: close``: one request per client connection."""
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + sep + body


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


@dataclass(frozen=True)
class TlsNames:
    """A CA (``ca_file``) and a server certificate for some DNS names, signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_tls(directory: Path, names: list[str], *, valid_days: int = 30) -> TlsNames:
    """A CA and one certificate for every name (DNS name or IP) in ``names``.

    The certificate expires in ``valid_days`` days and 12 hours, so a check that counts whole
    days left reads exactly ``valid_days``.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("throw-away test CA"))
        .issuer_name(_name("throw-away test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=max(valid_days, 30) + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days, hours=12))
        .add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = TlsNames(
        directory / "egress-ca.pem", directory / "egress-server.pem", directory / "egress-server.key"
    )
    out.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return out
