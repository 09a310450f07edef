"""/setref must not stall the bot: decoding runs on a bounded pool of image threads, and
high-bit-depth pictures are scaled down in their own mode before any conversion, so the
event loop shared by Telegram, Discord and the worker keeps answering: the loop's thread does
a small share of the work's CPU (load cannot change that), and, where the machine is quiet
enough to measure it, the loop is never late by 100 ms more than the machine's own noise."""

from __future__ import annotations

import asyncio
import os
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


# The decoding must run off the loop: the loop's thread may spend this share of the CPU the
# whole /setref costs (measured 0.5-3 % with the image threads; ~100 % with the decoding on the
# loop, which the old code did). CPU time is this process's own, so other load cannot move it.
MAX_LOOP_SHARE = 0.25


async def cpu_and_lag_during(work):
    """(result, CPU seconds of the loop's thread, CPU seconds of the whole process, the loop's
    longest lag) while `work` runs. Call it on the loop's thread."""
    loop_cpu, all_cpu = time.thread_time(), time.process_time()
    result, lag_s = await loop_lag_during(work)
    return result, time.thread_time() - loop_cpu, time.process_time() - all_cpu, lag_s


def oversubscribed() -> bool:
    """More runnable work than cores (the 1-minute load average): wall-clock figures then say
    how busy the machine is. A decoder that holds the GIL in short stretches (libtiff's) stalls
    the loop for as long as the OS leaves that thread waiting with the GIL: seconds under a CPU
    hog, which no noise measured beside it shows (169 ms against 23 ms of noise, seen)."""
    return os.getloadavg()[0] >= (os.cpu_count() or 1)


async def assert_the_loop_was_not_held(lag_s: float, seconds: float, what: str) -> None:
    """The wall-clock half: a stall over 100 ms that the machine's own noise does not explain.
    It is judged only where the machine can measure it: not oversubscribed, and the loop's lag
    under an equal GIL-free load, measured beside it, under half the bound. Elsewhere the share
    of CPU above is what shows the decoding is off the loop."""
    if lag_s < MAX_LAG_S or oversubscribed():
        return
    noise = await machine_noise(seconds)
    if noise >= MAX_LAG_S / 2:
        return
    assert lag_s - noise < MAX_LAG_S, (
        f"the event loop stalled {lag_s * 1000:.0f} ms during {what} (the machine alone, under an "
        f"equal load that does not hold the GIL: {noise * 1000:.0f} ms)")


@pytest.mark.parametrize("kind", ["png16_6300", "tiff_float_6300", "png_rgb_6300", "jpeg_7000x5700"])
async def test_the_event_loop_keeps_answering_during_a_large_setref(tmp_path, pictures, kind):
    service = StickerService(open_database(tmp_path / "bot.sqlite"), Settings())
    started = time.perf_counter()
    saved, loop_cpu, all_cpu, lag_s = await cpu_and_lag_during(
        service.set_reference_async(UserRef("telegram", "1", "Ann"), pictures[kind]))
    assert saved.width == 1024 or saved.height == 1024  # decoded and scaled for real
    assert loop_cpu < MAX_LOOP_SHARE * all_cpu, (
        f"the loop's thread did {loop_cpu * 1000:.0f} of {all_cpu * 1000:.0f} ms of CPU during /setref of {kind}")
    await assert_the_loop_was_not_held(lag_s, time.perf_counter() - started, f"/setref of {kind}")


async def test_image_work_is_bounded_and_others_keep_being_served(tmp_path, pictures):
    service = StickerService(open_database(tmp_path / "bot.sqlite"), Settings())
    people = [UserRef("telegram", str(i), f"U{i}") for i in range(4)]
    started = time.perf_counter()
    setrefs = asyncio.gather(*(service.set_reference_async(p, pictures["png16_6300"]) for p in people))
    results, loop_cpu, all_cpu, lag_s = await cpu_and_lag_during(setrefs)
    assert len(results) == 4 and loop_cpu < MAX_LOOP_SHARE * all_cpu, (loop_cpu, all_cpu)
    assert service.images.max_busy <= service.settings.limits.image_threads
    await assert_the_loop_was_not_held(lag_s, time.perf_counter() - started, "four /setref at once")


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
