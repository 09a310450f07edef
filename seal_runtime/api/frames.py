"""The runtime's answer to a job on the wire: small JSON header lines with binary parts.

A job's response body is a sequence of frames. Each frame is one JSON object on one
line (its header), followed by the binary parts the header declares, back to back:

    {"event": "progress", "stage": "adapting", "step": 3, "total": 100, ...}\\n
    {"event": "concept", ..., "parts": [["embedding", 3324], ["adapter_weights", 3262976]]}\\n
    <3324 bytes><3262976 bytes>
    {"event": "result", ..., "parts": [["image", 612331], ["image", 598002]]}\\n
    <612331 bytes><598002 bytes>

Headers stay tiny (under MAX_HEADER_BYTES) whatever the results weigh, so no line ever
comes near aiohttp's 512 KiB line limit; parts are read with `readexactly`, and a whole
job may carry up to MAX_JOB_BYTES. Progress frames keep streaming as before: a header
with no parts is an NDJSON line.

Torch-free, like the rest of what the bot imports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

CONTENT_TYPE = "application/x-seal-frames"
MAX_HEADER_BYTES = 64 * 1024
MAX_JOB_BYTES = 64 * 1024 * 1024


class FramingError(Exception):
    """The stream is not a well-formed sequence of frames (truncated, oversize, garbled)."""


@dataclass(frozen=True)
class Frame:
    header: dict  # the event and its fields ("parts" taken out)
    parts: tuple[tuple[str, bytes], ...] = ()

    @property
    def event(self) -> str:
        return str(self.header.get("event", ""))

    def part(self, name: str) -> bytes | None:
        """The first part called `name`, or None."""
        return next((data for key, data in self.parts if key == name), None)

    def all_parts(self, name: str) -> list[bytes]:
        return [data for key, data in self.parts if key == name]


def encode_frame(header: dict, parts: Iterable[tuple[str, bytes | None]] = ()) -> list[bytes]:
    """The chunks to write for one frame: its header line, then its parts (None parts are left out)."""
    present = [(name, data) for name, data in parts if data is not None]
    line = json.dumps({**header, "parts": [[name, len(data)] for name, data in present]} if present else header)
    encoded = line.encode() + b"\n"
    if len(encoded) > MAX_HEADER_BYTES:
        raise ValueError(f"frame header of {len(encoded)} bytes is over {MAX_HEADER_BYTES}")
    return [encoded, *(data for _, data in present)]


async def read_frames(stream, *, max_total: int = MAX_JOB_BYTES) -> AsyncIterator[Frame]:
    """Frames from an asyncio/aiohttp StreamReader until the end of the stream.

    Raises FramingError for a header that is not a JSON object, a bad parts list, a body
    over `max_total`, or a stream that ends inside a frame. Connection errors of the
    stream itself (reset, payload errors, aiohttp's LineTooLong) pass through unchanged."""
    total = 0
    while True:
        line = await stream.readline()
        if not line:
            return
        total += len(line)
        if len(line) > MAX_HEADER_BYTES:
            raise FramingError(f"frame header of {len(line)} bytes is over {MAX_HEADER_BYTES}")
        if not line.endswith(b"\n"):
            raise FramingError(f"stream ended inside a frame header after {total} bytes")
        if not line.strip():
            continue
        try:
            header = json.loads(line)
        except ValueError as exc:
            raise FramingError(f"frame header is not JSON: {line[:80]!r}") from exc
        if not isinstance(header, dict) or "event" not in header:
            raise FramingError(f"frame header is not an event: {line[:80]!r}")
        sizes = _part_sizes(header.pop("parts", []))
        declared = sum(size for _, size in sizes)
        if total + declared > max_total:
            raise FramingError(f"job response of over {total + declared} bytes is larger than {max_total}")
        parts = []
        for name, size in sizes:
            try:
                parts.append((name, await stream.readexactly(size)))
            except asyncio.IncompleteReadError as exc:
                raise FramingError(
                    f"stream ended inside part {name!r} of a {header['event']!r} frame "
                    f"({len(exc.partial)} of {size} bytes)"
                ) from exc
        total += declared
        yield Frame(header, tuple(parts))


def _part_sizes(raw) -> Sequence[tuple[str, int]]:
    if not isinstance(raw, list):
        raise FramingError(f"frame parts must be a list, got {type(raw).__name__}")
    sizes = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], int)
            or isinstance(item[1], bool)
            or item[1] < 0
        ):
            raise FramingError(f"bad frame part {item!r}: expected [name, size]")
        sizes.append((item[0], item[1]))
    return sizes
