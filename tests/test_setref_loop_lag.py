"""/setref must not stall the bot: decoding runs on a bounded pool of image threads, and
high-bit-depth pictures are scaled down in their own mode before any conversion, so the
event loop shared by Telegram, Discord and the worker keeps answering (lag < 100 ms)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from benchmarks.setref_load import large_setref_pictures, loop_lag_during, machine_noise
from bot.messages import UserRef
from bot.service import StickerService
from bot.settings import Settings
from storage.database import open_database

MAX_LAG_S = 0.100


@pytest.fixture(scope="module")
def pictures():
    return large_setref_pictures()


@pytest.mark.parametrize("kind", ["png16_6300", "tiff_float_6300", "png_rgb_6300", "jpeg_7000x5700"])
async def test_the_event_loop_keeps_answering_during_a_large_setref(tmp_path, pictures, kind):
    service = StickerService(open_database(tmp_path / "bot.sqlite"), Settings())
    lags, noise = [], []
    for attempt in range(3):  # this 2-core machine is shared: a stall of ours repeats, the machine's does not
        user = UserRef("telegram", str(attempt), "Ann")
        started = time.perf_counter()
        saved, lag_s = await loop_lag_during(service.set_reference_async(user, pictures[kind]))
        assert saved.width == 1024 or saved.height == 1024  # decoded and scaled for real
        lags.append(lag_s)
        if lag_s < MAX_LAG_S:
            break
        # Read against the machine's own lag under an equal GIL-free load, measured beside it.
        noise.append(await machine_noise(time.perf_counter() - started))
    ours = min((lag - quiet for lag, quiet in zip(lags, noise)), default=0.0)
    assert min(lags) < MAX_LAG_S or ours < MAX_LAG_S, (
        f"the event loop stalled {min(lags) * 1000:.0f} ms during /setref of {kind} "
        f"(the machine alone, under an equal load that does not hold the GIL: {min(noise) * 1000:.0f} ms)"
    )


async def test_image_work_is_bounded_and_others_keep_being_served(tmp_path, pictures):
    service = StickerService(open_database(tmp_path / "bot.sqlite"), Settings())
    people = [UserRef("telegram", str(i), f"U{i}") for i in range(4)]
    setrefs = asyncio.gather(*(service.set_reference_async(p, pictures["png16_6300"]) for p in people))
    results, lag_s = await loop_lag_during(setrefs)
    assert len(results) == 4 and lag_s < MAX_LAG_S
    assert service.images.max_busy <= service.settings.limits.image_threads


def test_a_16_bit_picture_is_scaled_down_before_it_is_converted(tmp_path, pictures):
    """Peak memory of decoding the 16-bit PNG, in a fresh process (the decoded picture
    itself is 79 MB; converted at full size to float64 it took about 1 GB). VmHWM, not
    ru_maxrss: a child's ru_maxrss starts at its parent's size."""
    path = tmp_path / "grey16.png"
    path.write_bytes(pictures["png16_6300"])
    script = (
        f"from pathlib import Path; from bot.image_input import load_reference_image\n"
        f"def peak_mb():\n"
        f"    line = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        f"    return int(line.split()[1]) // 1024\n"
        f"data = Path({str(path)!r}).read_bytes(); before = peak_mb()\n"
        f"image = load_reference_image(data)\n"
        f"print(max(image.size), peak_mb() - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    side, grown_mb = map(int, result.stdout.split())
    assert side == 1024
    assert grown_mb < 200, f"decoding grew the peak memory by {grown_mb} MB"
