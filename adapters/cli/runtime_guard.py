"""What keeps `stickerbot run`'s runtime child its own: a fresh secret for every launch, and
a check, before every request, that the process listening on the port is that child.

- The secret (`fresh_secret`) goes to the child in its environment (readable only by the
  same user) and with every request (`X-Seal-Secret`); the runtime refuses requests without
  it, so other local users cannot submit jobs. A new launch gets a new secret: whatever
  learned an old one can use it for nothing.
- Between a child's death and the next start, another process could take the port and
  receive users' photos. `ChildRuntimeClient` therefore sends nothing while no child runs,
  and before each request checks (Linux: `/proc/net/tcp*` and the child's file
  descriptors) that the socket listening on the port belongs to the child's pid; if not,
  the request is refused with a retryable `RuntimeJobError` and never leaves this process.
  On systems without /proc the check cannot be made and only the secret protects.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from bot.log_format import register_secret
from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import (
    SECRET_HEADER,
    JobRequest,
    JobResult,
    RuntimeJobError,
)

log = logging.getLogger("stickerbot.supervisor")

PROC = Path("/proc")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def fresh_secret() -> str:
    """A new launch's secret (256 bits), redacted from all output like the bot tokens."""
    secret = secrets.token_urlsafe(32)
    register_secret(secret)
    return secret


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def owns_listener(pid: int, port: int) -> bool | None:
    """Does process `pid` hold the socket listening on `port`? None: cannot tell here."""
    if not (PROC / "net" / "tcp").exists():
        return None
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


class ChildRuntimeClient(RuntimeClient):
    """The client of a runtime this process started: it talks only to that child."""

    def __init__(self, base_url: str, *, job_timeout_s: float = 3600) -> None:
        super().__init__(base_url, job_timeout_s=job_timeout_s)
        self.port = urlparse(self.base_url).port or 80
        self.pid: int | None = None
        self.secret: str | None = None
        self._warned_unverifiable = False

    async def attach(self, pid: int, secret: str) -> None:
        """A new child runs (pid) with this launch's secret: use both from now on."""
        self.pid, self.secret = pid, secret
        self._headers = {SECRET_HEADER: secret}
        await self.close()  # the next request opens a session with the new secret

    def detach(self) -> None:
        """The child is gone: send nothing until the next one runs."""
        self.pid = None

    def _verify(self) -> None:
        if self.pid is None:
            raise RuntimeJobError(f"the runtime child on port {self.port} is not running (restarting)")
        owned = owns_listener(self.pid, self.port)
        if owned is None:
            if not self._warned_unverifiable:
                self._warned_unverifiable = True
                log.warning(
                    "cannot check who listens on the runtime's port here (no /proc); only the secret "
                    "protects the runtime child",
                    extra={"port": self.port},
                )
            return
        if not owned:
            raise RuntimeJobError(
                f"port {self.port} is held by another process, not the runtime child (pid {self.pid}): nothing was sent"
            )

    async def health(self) -> dict:
        self._verify()
        return await super().health()

    async def run_job(self, request: JobRequest, on_progress=None, on_concept=None) -> JobResult:
        self._verify()
        return await super().run_job(request, on_progress, on_concept)
