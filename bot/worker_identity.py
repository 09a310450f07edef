"""One process per worker id. A worker's id is stable across restarts so that a restarted
process reclaims its own interrupted jobs at once (`jobs.expire_leases`); two processes
started with the same id would instead expire each other's leases and run jobs twice.

At start a worker claims its id in the `workers` table, and keeps the claim fresh while it
runs (`refresh`, every few seconds). The claim of another process is respected when:
- it is on this host, its pid is alive and is not this process's own pid (a restart in a
  container often gets the same pid, and a process is never its own clash); or
- it is on another host (several containers sharing the database) and it refreshed its
  claim within `stale_after_s`.
Otherwise the old claim is stale (its process died without releasing it) and is taken
over. A clash raises `WorkerIdClash`, whose message tells the operator what to change.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field

import sqlite_utils

from storage import workers
from storage.workers import WorkerClaim


class WorkerIdClash(Exception):
    """Another running process uses this worker id."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


@dataclass
class WorkerIdentity:
    db: sqlite_utils.Database
    claim: WorkerClaim
    refresh_every_s: float
    _refreshed_at: float = field(default=0.0)
    lost: bool = False

    def refresh(self, *, now: float | None = None) -> bool:
        """Keep the claim fresh (at most every `refresh_every_s`); False once another
        process took the id over."""
        at = time.time() if now is None else now
        if self.lost:
            return False
        if now is None and at - self._refreshed_at < self.refresh_every_s:
            return True
        self._refreshed_at = at
        if not workers.refresh_claim(self.db, self.claim.worker_id, self.claim.instance, at):
            self.lost = True
        return not self.lost

    def release(self) -> None:
        workers.release_claim(self.db, self.claim.worker_id, self.claim.instance)


def claim_worker_id(
    db: sqlite_utils.Database,
    worker_id: str,
    *,
    stale_after_s: float,
    now: float | None = None,
) -> WorkerIdentity:
    """Claim `worker_id` for this process, or raise WorkerIdClash (module docstring)."""
    at = time.time() if now is None else now
    host, pid = socket.gethostname(), os.getpid()
    mine = WorkerClaim(worker_id, uuid.uuid4().hex, host, pid, at, at)

    def stale(current: WorkerClaim) -> bool:
        if current.host == host:
            return current.pid == pid or not pid_alive(current.pid)
        return at - current.seen_at > stale_after_s

    holder = workers.take_claim(db, mine, stale)
    if holder is not None:
        seen = max(0.0, at - holder.seen_at)
        raise WorkerIdClash(
            f"worker id {worker_id!r} is in use by another running process (pid {holder.pid} on {holder.host}, "
            f"seen {seen:.0f} s ago): give each process its own --worker-id"
        )
    return WorkerIdentity(db, mine, refresh_every_s=max(1.0, stale_after_s / 3))
