"""One GPU, one job at a time: the runtime's queue in front of its GPU thread.

Jobs that only generate (the concept came cached with the request) go before jobs that
must adapt first: a user whose character is already learned waits seconds, and should
not wait behind another user's whole adaptation. Within a priority, arrival order.
A running job is never interrupted (the U-Net may carry its LoRA layers); a queued job
whose client went away is dropped before it starts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

GENERATION_ONLY = 0
ADAPTATION = 1


@dataclass(order=True)
class _Entry:
    priority: int
    order: int
    work: Callable[[], Any] = field(compare=False)
    future: asyncio.Future = field(compare=False)


class GpuQueue:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self.running = False

    def submit(self, work: Callable[[], Any], priority: int) -> asyncio.Future:
        """Queue `work` (run in the GPU thread); cancel the returned future to drop it unstarted."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, _Entry(priority, next(self._order), work, future))
        self._wake.set()
        return future

    def position(self, future: asyncio.Future) -> int:
        """1 = next to run (0 once it runs or is done)."""
        waiting = sorted(entry for entry in self._heap if not entry.future.done())
        for index, entry in enumerate(waiting):
            if entry.future is future:
                return index + 1
        return 0

    def __len__(self) -> int:
        return sum(not entry.future.done() for entry in self._heap) + int(self.running)

    async def serve(self) -> None:
        """Run queued work one at a time until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._heap:
                self._wake.clear()
                await self._wake.wait()
            entry = heapq.heappop(self._heap)
            if entry.future.done():  # cancelled while it waited
                continue
            self.running = True
            try:
                result = await loop.run_in_executor(self._executor, entry.work)
            except Exception as exc:  # noqa: BLE001 - handed to whoever waits for it
                if not entry.future.done():
                    entry.future.set_exception(exc)
            else:
                if not entry.future.done():
                    entry.future.set_result(result)
            finally:
                self.running = False
