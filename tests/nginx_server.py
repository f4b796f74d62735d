"""A real nginx (Debian nginx-light) running the files in deploy/nginx/, for tests.

The deploy files are copied into a temp dir with their ``__PLACEHOLDER__`` values filled in (ports,
app addresses, TLS files), then included from a small main ``nginx.conf`` laid out like Debian's
(``conf.d/*.conf`` and a site inside ``http { }``), so the tests run exactly the shipped files.

nginx runs in the foreground with every path it writes (pid, logs, temp dirs) in the temp dir, so
it needs no root and touches nothing in /etc, /var or /run. A missing nginx is an error with the
install line, never a skipped test.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

INSTALL_HINT = "nginx not found: apt-get install nginx-light"
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
PLACEHOLDER = re.compile(r"__[A-Z][A-Z0-9_]*__")


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
    now = datetime.datetime.now(datetime.timezone.utc)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NginxServer:
    """nginx with ``conf.d/sso-proxy.conf`` and the given ``sites`` (names in sites-available/).

    ``values`` fills the placeholders; ``__LISTEN_PORT__`` (a free port unless given) and the
    TLS files are filled in here.
    """

    def __init__(self, sites: Sequence[str], values: Mapping[str, str], *, tls_names: Sequence[str]) -> None:
        self.binary = nginx_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="sso-nginx-"))
        # nginx started as root runs its workers as "nobody": they must be able to enter the dir.
        self.dir.chmod(0o755)
        self.conf_dir = self.dir / "conf"
        self.sites = list(sites)
        self.port = int(values.get("__LISTEN_PORT__", "0")) or free_port()
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
        self.write_config()
        check = subprocess.run(self.argv("-t", "-q"), capture_output=True, timeout=timeout, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{check.stderr.decode(errors='replace')}")
        stderr = (self.dir / "stderr.log").open("ab")
        self.process = subprocess.Popen(self.argv(), stdout=stderr, stderr=subprocess.STDOUT, cwd=self.dir)
        stderr.close()
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nginx exited at start:\n{self.log_tail()}")
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

