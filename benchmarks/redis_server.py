"""A real `redis-server` (Debian's package) on 127.0.0.1 for the tests and `bench scale`.

Each instance gets a free port, its own directory (the AOF lives there, so `restart()`
finds the data again) and, when asked, a password, an ACL user or TLS with a CA made on
the spot with `openssl`. Nothing here fakes Redis.

    server = RedisServer(tmp_path)          # AOF on, fsync every write
    server.start(); server.url              # redis://127.0.0.1:PORT/0
    server.restart()                        # SHUTDOWN (the AOF is flushed), then start again
    server.stop(kill=True)                  # SIGKILL
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

INSTALL_HINT = "install Debian's package: apt-get install redis-server"


class RedisUnavailable(RuntimeError):
    """redis-server is not installed on this machine."""


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable(f"redis-server is not on PATH ({INSTALL_HINT})")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A private CA and a server certificate for `host` (an IP SAN), made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, csr = directory / "redis.crt", directory / "redis.key", directory / "redis.csr"
    ext = directory / "san.ext"
    ext.write_text(f"subjectAltName=IP:{host},DNS:localhost\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=stickerbot test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr))
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
    return TlsFiles(ca, cert, key)


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        acl_user: tuple[str, str, str] | None = None,
        tls: TlsFiles | None = None,
        appendfsync: str = "always",
    ) -> None:
        """`acl_user` is (name, password, rules), e.g. ("bot", "pw", "~* &* +@all"); with it
        the default user is switched off."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.acl_user = acl_user
        self.tls = tls
        self.appendfsync = appendfsync
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        if self.acl_user:
            auth = f"{self.acl_user[0]}:{self.acl_user[1]}@"
        elif self.password:
            auth = f":{self.password}@"
        else:
            auth = ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        command = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.tls:
            command += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls.cert),
                "--tls-key-file",
                str(self.tls.key),
                "--tls-ca-cert-file",
                str(self.tls.ca),
                "--tls-auth-clients",
                "no",
            ]
        else:
            command += ["--port", str(self.port)]
        if self.password:
            command += ["--requirepass", self.password]
        if self.acl_user:
            name, password, rules = self.acl_user
            command += ["--user", "default", "off", "--user", name, "on", f">{password}", *rules.split()]
        return command

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}: "
                    f"{self.process.stderr.read().decode() if self.process.stderr else ''}"
                    f"{log.read_text()[-2000:] if log.exists() else ''}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                if self._ping():
                    return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout_s} s")

    def _ping(self) -> bool:
        import redis

        kwargs: dict = {"host": "127.0.0.1", "port": self.port, "socket_timeout": 1}
        if self.acl_user:
            kwargs.update(username=self.acl_user[0], password=self.acl_user[1])
        elif self.password:
            kwargs.update(password=self.password)
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        try:
            with redis.Redis(**kwargs) as client:
                return bool(client.ping())
        except redis.exceptions.BusyLoadingError:
            return False  # still loading the AOF
        except redis.exceptions.ConnectionError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM makes Redis flush its AOF and exit; `kill` is a SIGKILL (a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, kill: bool = False, down_s: float = 0.0) -> None:
        self.stop(kill=kill)
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
