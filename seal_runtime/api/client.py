"""The bot's side of the runtime HTTP API (aiohttp client; torch-free).

Every way a job's stream can break (connection reset, a truncated or garbled body, a
response over the size limit, aiohttp's own parser errors) ends as a retryable
RuntimeJobError that says which job and what was being read, never as another exception
type escaping into the worker.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from seal_runtime.api.frames import (
    CONTENT_TYPE,
    MAX_JOB_BYTES,
    FramingError,
    read_frames,
)
from seal_runtime.api.protocol import (
    SECRET_HEADER,
    TRANSPORT,
    JobAnswer,
    JobRequest,
    JobResult,
    OnConcept,
    OnProgress,
    RuntimeJobError,
)

# What a broken stream can raise inside aiohttp or asyncio (LineTooLong is an
# HttpProcessingError, not a ClientError).
STREAM_ERRORS = (
    aiohttp.ClientError,
    HttpProcessingError,
    ConnectionError,
    asyncio.IncompleteReadError,
    FramingError,
    TimeoutError,
    ValueError,
)


class RuntimeClient:
    def __init__(
        self,
        base_url: str,
        *,
        secret: str | None = None,
        job_timeout_s: float = 3600,
        max_job_bytes: int = MAX_JOB_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {SECRET_HEADER: secret} if secret else {}
        self._timeout = aiohttp.ClientTimeout(total=job_timeout_s, sock_connect=10)
        self._max_job_bytes = max_job_bytes
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

    async def run_job(
        self, request: JobRequest, on_progress: OnProgress | None = None, on_concept: OnConcept | None = None
    ) -> JobResult:
        """Run one job; `on_concept` gets the learned concept as soon as adaptation ends
        (before generation), so the caller can store it whatever happens next."""
        session = await self._client()
        reading = "the response"
        answer = JobAnswer(request, on_progress, on_concept)
        try:
            async with session.post(f"{self.base_url}/v1/jobs", json=request.to_json()) as resp:
                if resp.status != 200:
                    body = await resp.text()
                    raise RuntimeJobError(f"runtime answered {resp.status}: {body[:200]}", retryable=resp.status >= 500)
                if resp.content_type != CONTENT_TYPE:
                    raise RuntimeJobError(
                        f"the runtime answered {resp.content_type!r}, not {CONTENT_TYPE!r}: "
                        "it speaks another protocol version (update it)",
                        retryable=False,
                    )
                async for frame in read_frames(resp.content, max_total=self._max_job_bytes):
                    reading = f"a {frame.event!r} frame"
                    result = await answer.take(frame)
                    if result is not None:
                        return result
                    reading = "the response"
        except RuntimeJobError:
            raise
        except (*STREAM_ERRORS, KeyError) as exc:
            raise RuntimeJobError(
                f"lost the runtime during job {request.job_id} while reading {reading}"
                + (" (after the concept arrived)" if answer.concept else "")
                + f": {type(exc).__name__}: {exc}",
                code=TRANSPORT,
            ) from exc
        raise RuntimeJobError(f"runtime closed job {request.job_id} without a result", code=TRANSPORT)
