"""The stub runtime (benchmarks/fakes/stub_runtime.py) with the failures reliability needs.

- `drop(job) -> bool`: the runtime "dies" during that job — it sends a few progress lines
  and then cuts the connection, as a SIGKILLed runtime would (a poison job drops every
  time; a flaky runtime drops some).
- `served[job_id]`: how often each job reached the runtime.

Run alone (`python -m benchmarks.fakes.reliability_stub --port N`) it is a cheap runtime child for
supervisor tests: it can be SIGKILLed and restarted in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from benchmarks.fakes.stub_runtime import StubRuntime
from seal_runtime.api.frames import CONTENT_TYPE
from seal_runtime.api.protocol import JobRequest, ProgressEvent


@dataclass
class CrashingStub(StubRuntime):
    drop: Callable[[JobRequest], bool] = lambda job: False
    served: collections.Counter = field(default_factory=collections.Counter)
    dropped: int = 0

    async def run_job(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            job = JobRequest.from_json(json.loads(raw))
        except Exception:
            return await super().run_job(request)
        self.served[job.job_id] += 1
        if not self.drop(job):
            return await super().run_job(request)
        self.dropped += 1
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)
        for step in (1, 2):
            for chunk in ProgressEvent(job.job_id, "adapting", step, 9).to_frame():
                await response.write(chunk)
            await asyncio.sleep(self.step_delay_s)
        request.transport.close()  # the process "died": no result, no error line, no end of stream
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--step-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    stub = StubRuntime(step_delay_s=args.step_delay)
    web.run_app(stub.create_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
