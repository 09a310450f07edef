"""Several JobWorkers in one process, as many as the GPU side can take at once.

Embedded (one local runtime) the pool holds one worker, exactly the single JobWorker of
before. Scaled out through Redis it follows `capacity()` (the slots of the live GPU
workers), checked every `check_interval_s`: a GPU worker that joins gets its own job
worker within a second or two, and one that leaves takes one away (after the job in hand).
Every worker claims from SQLite by the one fair rule, so round-robin between users holds
across all GPUs, and arq's queue holds only jobs that are already on their way to one.

Worker i has the id `<base>` for i = 0, else `<base>-<i>`: stable across restarts, so
each one's `recover` reclaims what its previous life held. A worker index is started
again only after its previous JobWorker has stopped, so `recover` never expires a lease
that is still being worked on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.job_worker import JobWorker

log = logging.getLogger(__name__)


def worker_id_of(base: str, index: int) -> str:
    return base if index == 0 else f"{base}-{index}"


@dataclass
class _Slot:
    worker: JobWorker
    task: asyncio.Task
    stop: asyncio.Event


class JobWorkerPool:
    def __init__(
        self,
        make_worker: Callable[[int], JobWorker],
        *,
        capacity: Callable[[], Awaitable[int]] | None = None,
        size: int = 1,
        max_size: int = 64,
        check_interval_s: float = 1.0,
        release: Callable[[JobWorker], None] | None = None,
    ) -> None:
        """`make_worker(i)` builds worker i; `release(worker)` frees what it built (a
        database connection) once that worker stopped. Without `capacity`, `size` workers."""
        self.make_worker = make_worker
        self.capacity = capacity
        self.size = max(1, size)
        self.max_size = max(1, max_size)
        self.check_interval_s = check_interval_s
        self.release = release
        self.slots: dict[int, _Slot] = {}
        self._retired: Counter = Counter()  # counters of workers that stopped
        self.target = 0
        self.offered: int | None = None  # what `capacity()` said last (None: fixed size)
        self._first: JobWorker | None = None  # worker 0, built early by `prepare`

    @property
    def workers(self) -> list[JobWorker]:
        return [slot.worker for _, slot in sorted(self.slots.items())]

    @property
    def counters(self) -> dict[str, int]:
        total = Counter(self._retired)
        for slot in self.slots.values():
            total.update(slot.worker.counters)
        return dict(total)

    async def _target(self) -> int:
        if self.capacity is None:
            return self.size
        try:
            offered = await self.capacity()
        except Exception as exc:  # noqa: BLE001 - the GPU side cannot be asked (Redis restarting): wait
            log.warning("GPU capacity unknown; keeping the job workers as they are", extra={"error": str(exc)[:200]})
            return self.target or 1
        self.offered = offered
        return max(1, min(self.max_size, offered))

    def prepare(self) -> JobWorker:
        """Build worker 0 and run its `recover` now, before anything else starts: a clash of
        worker ids (bot/worker_identity.py) then stops the process at once. `run` uses it."""
        if self._first is None:
            self._first = self.make_worker(0)
            self._first.recover()
        return self._first

    async def run(self, stop: asyncio.Event, idle_sleep: float = 0.2) -> None:
        """Keep the pool at its target until `stop` is set; then every worker finishes the
        job in hand. Cancelled, the workers are cancelled too (their jobs go back to the queue)."""
        try:
            while not stop.is_set():
                self._reap()
                self.target = await self._target()
                self._resize(self.target, idle_sleep)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.check_interval_s)
            for slot in self.slots.values():
                slot.stop.set()
            await asyncio.gather(*(slot.task for slot in self.slots.values()), return_exceptions=True)
        except asyncio.CancelledError:
            for slot in self.slots.values():
                slot.task.cancel()
            await asyncio.gather(*(slot.task for slot in self.slots.values()), return_exceptions=True)
            raise
        finally:
            self._reap(all_done=True)

    def _resize(self, target: int, idle_sleep: float) -> None:
        running = sorted(i for i, slot in self.slots.items() if not slot.stop.is_set())
        for index in range(target):
            if index not in self.slots:
                worker, self._first = (
                    (self._first, None) if index == 0 and self._first else (self.make_worker(index), self._first)
                )
                stop = asyncio.Event()
                task = asyncio.create_task(worker.run_forever(stop, idle_sleep=idle_sleep), name=worker.worker_id)
                self.slots[index] = _Slot(worker, task, stop)
                if index >= 1:
                    log.info("job worker added", extra={"worker": worker.worker_id, "target": target})
        for index in running[target:]:
            self.slots[index].stop.set()  # it finishes the job in hand, then `_reap` removes it
            log.info("job worker retiring", extra={"worker": self.slots[index].worker.worker_id, "target": target})

    def _reap(self, all_done: bool = False) -> None:
        for index, slot in list(self.slots.items()):
            if slot.task.done() or all_done:
                if slot.task.done() and not slot.task.cancelled() and slot.task.exception() is not None:
                    log.error(
                        "job worker died", extra={"worker": slot.worker.worker_id, "error": repr(slot.task.exception())}
                    )
                self._retired.update(slot.worker.counters)
                del self.slots[index]
                if self.release is not None:
                    self.release(slot.worker)

    def alive(self) -> bool:
        return any(not slot.task.done() for slot in self.slots.values())
