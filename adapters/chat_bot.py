"""What the Telegram and Discord bots share: running their own JobWorker beside the
platform's intake (`stickerbot telegram` / `stickerbot discord`), and a `running()` block.
Under `stickerbot run` the supervisor's one worker serves all adapters instead
(`start(run_worker=False)`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.job_worker import JobWorker

log = logging.getLogger(__name__)

WORKER_STOP_GRACE_S = 10


class ChatBotProcess:
    worker: JobWorker

    def __init__(self, worker: JobWorker) -> None:
        self.worker = worker
        self._worker_stop = asyncio.Event()
        self._worker_task: asyncio.Task | None = None

    def start_worker(self) -> None:
        self.worker.recover()  # raises WorkerIdClash here, at start, not inside the task
        self._worker_stop.clear()
        self._worker_task = asyncio.create_task(self.worker.run_forever(self._worker_stop), name="job-worker")

    async def stop_worker(self) -> None:
        if self._worker_task is None:
            return
        self._worker_stop.set()
        try:  # a job in progress may finish; past the grace its lease expires and it runs again later
            await asyncio.wait_for(self._worker_task, WORKER_STOP_GRACE_S)
        except TimeoutError:
            log.warning("worker did not stop in time; its job will be retried")
        self._worker_task = None

    async def start(self, **kwargs) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def running(self, **kwargs):
        await self.start(**kwargs)
        try:
            yield self
        finally:
            await self.stop()
