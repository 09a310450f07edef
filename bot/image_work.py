"""Where uploads are decoded: a small pool of threads, off the event loop.

The bot's one event loop serves Telegram, Discord and the job worker; decoding a large
picture there (seconds for a 40 MP PNG) would keep every other user waiting and make
Discord interactions miss their 3 s deadline. `ImageWork.run` runs the work on at most
`limits.image_threads` threads at once; further uploads wait their turn in the pool's
queue. Pillow and numpy release the GIL in their heavy loops, so the loop keeps running
(`tests/test_setref_loop_lag.py` measures it). The work must not touch the database: the
connection belongs to the loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ImageWork:
    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.busy = 0
        self.max_busy = 0  # the most ever at once (≤ threads)

    async def run(self, work: Callable[..., T], *args) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="image-work")

        def counted() -> T:
            with self._lock:
                self.busy += 1
                self.max_busy = max(self.max_busy, self.busy)
            try:
                return work(*args)
            finally:
                with self._lock:
                    self.busy -= 1

        return await asyncio.get_running_loop().run_in_executor(self._executor, counted)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
