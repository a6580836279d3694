"""A self-signed certificate for 127.0.0.1, made with the `openssl` CLI, and the contexts a
loopback HTTPS server and a client that trusts it (and nothing else) need.

    cert = self_signed(tmp_path)
    server_context(cert)   # ssl.SSLContext for the server side
    client_context(cert)   # trusts this certificate only
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certificate", "client_context", "self_signed", "server_context"]


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(folder: Path, host: str = "127.0.0.1") -> Certificate:
    """A one-day self-signed certificate for the IP `host` (its own CA)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    made = Certificate(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(made.key), "-out", str(made.cert), "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=IP:{host}"],
        check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return made


def server_context(cert: Certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)
    return context


def client_context(cert: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.cert))
