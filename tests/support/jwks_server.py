"""A JWKS endpoint for the verifier tests: serves ``document``, counts its hits, and answers
``status`` (anything but 200 is an outage, with no keys in the body)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sso_proxy.identity.key_files import SigningKey
from sso_proxy.identity.signing import Signer


class CountingJwks:
    def __init__(self, document: Any = None) -> None:
        self.document, self.hits, self.status = document, 0, 200
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    outer.hits += 1
                body = json.dumps(outer.document).encode() if outer.status == 200 else b"down"
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey, issuer: str) -> None:
        self.document = Signer(keys, issuer=issuer).jwks()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
