"""The bot's side of the runtime HTTP API (aiohttp client; torch-free)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiohttp

from seal_runtime.api.protocol import SECRET_HEADER, JobRequest, JobResult, ProgressEvent, RuntimeJobError

OnProgress = Callable[[ProgressEvent], Awaitable[None]]


class RuntimeClient:
    def __init__(self, base_url: str, *, secret: str | None = None, job_timeout_s: float = 3600) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {SECRET_HEADER: secret} if secret else {}
        self._timeout = aiohttp.ClientTimeout(total=job_timeout_s, sock_connect=10)
        self._session: aiohttp.ClientSession | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def health(self) -> dict:
        session = await self._client()
        try:
            async with session.get(f"{self.base_url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                resp.raise_for_status()
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RuntimeJobError(f"runtime at {self.base_url} is not reachable: {exc}") from exc

    async def run_job(self, request: JobRequest, on_progress: OnProgress | None = None) -> JobResult:
        session = await self._client()
        try:
            async with session.post(f"{self.base_url}/v1/jobs", json=request.to_json()) as resp:
                if resp.status != 200:
                    body = await resp.text()
                    raise RuntimeJobError(f"runtime answered {resp.status}: {body[:200]}",
                                          retryable=resp.status >= 500)
                async for raw in resp.content:
                    if not raw.strip():
                        continue
                    line = json.loads(raw)
                    event = line.pop("event")
                    if event == "progress" and on_progress is not None:
                        await on_progress(ProgressEvent(**line))
                    elif event == "result":
                        return JobResult.from_json(line)
                    elif event == "error":
                        raise RuntimeJobError(line.get("message", "runtime error"),
                                              retryable=bool(line.get("retryable", True)))
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise RuntimeJobError(f"lost the runtime during job {request.job_id}: {exc}") from exc
        raise RuntimeJobError(f"runtime closed job {request.job_id} without a result")
