"""A real ``redis-server`` (Debian's) for tests and benchmarks: a free 127.0.0.1 port, no
persistence unless asked, stopped by pid; and cluster nodes (``nbcall-server --redis``)."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .processes import HOST, free_port, nbcall_server_cmd, stop_process, wait_for_port


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` again keep its port (an outage).

    ``tls``: it speaks TLS only (a self-signed certificate for 127.0.0.1, made here), and
    :attr:`url` is ``rediss://`` with that certificate as its CA; ``password``: ``requirepass``.
    """

    def __init__(
        self, port: int | None = None, *, persist: bool = False, tls: bool = False, password: str | None = None
    ) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed (./dev setup installs it)")
        self.binary = binary
        self.port = port or free_port()
        self.persist = persist
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="nbcall-redis-")
        self.cert: Path | None = self_signed_certificate(Path(self.dir)) if tls else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.cert is not None:
            return f"rediss://{auth}{HOST}:{self.port}/0?ssl_ca_certs={self.cert}"
        return f"redis://{auth}{HOST}:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes"] if self.persist else ["--save", "", "--appendonly", "no"]
        listen = ["--port", str(self.port)]
        if self.cert is not None:
            key = self.cert.with_name("key.pem")
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.cert),
                      "--tls-key-file", str(key), "--tls-auth-clients", "no"]  # fmt: skip
        if self.password:
            listen += ["--requirepass", self.password]
        cmd = [self.binary, *listen, "--bind", HOST, "--dir", self.dir, *persistence]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server(*, persist: bool = False, tls: bool = False, password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(persist=persist, tls=tls, password=password)
    server.start()
    try:
        yield server
    finally:
        server.close()


def self_signed_certificate(directory: Path) -> Path:
    """cert.pem (and key.pem beside it) for 127.0.0.1, valid for a day: a test's own CA."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path


def node_cmd(port: int, redis_url: str, node_id: str, *args: str, python: str = sys.executable) -> list[str]:
    """``nbcall-server --redis`` on 127.0.0.1:port as cluster node ``node_id``."""
    return nbcall_server_cmd(port, "--redis", redis_url, "--node-id", node_id, *args, python=python)


class Node:
    """One cluster node process, stopped by pid (or killed, to test a crash)."""

    def __init__(self, redis_url: str, node_id: str, *args: str, log: Path | None = None) -> None:
        self.port = free_port()
        self.node_id = node_id
        self.url = f"ws://{HOST}:{self.port}"
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(node_cmd(self.port, redis_url, node_id, *args), stdout=out, stderr=out)
        wait_for_port(self.port, self.proc, timeout=20.0)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no goodbye to Redis or to anyone
        self.proc.wait(5)

    def stop(self) -> None:
        stop_process(self.proc)
