"""Crash recovery end to end, with the benchmark's own scenarios at small sizes
(`stickerbot bench reliability` runs them at full size: 10 runtime kills, 1,000 requests)."""

import pytest

from benchmarks.bench_reliability import bot_kills, runtime_kills, soak


@pytest.mark.slow
async def test_sigkilling_the_real_runtime_during_adaptation_loses_and_doubles_nothing(tmp_path):
    figures = await runtime_kills(tmp_path, kills=2, users=2, adapt_steps=2, generate_steps=1, timeout_s=240)
    assert figures["kills"] == 2
    assert figures["jobs_done"] == 2 and figures["jobs_failed"] == 0
    assert figures["delivered_once"] == 2 and figures["delivered_twice_or_more"] == 0
    assert figures["references_intact"] == figures["references_saved"] == 2
    assert figures["references_with_embedding"] == 2
    assert figures["distinct_jobs_killed"] == 2  # round-robin: the next kill lands on the other user's job


async def test_sigkilling_the_bot_mid_job_then_restarting_it_delivers_the_sticker_once(tmp_path):
    figures = await bot_kills(tmp_path, kills=1, jobs_n=2, adapt_steps=10, step_delay_s=0.05)
    assert figures["kills"] == 1 and figures["jobs_done"] == 2
    assert figures["delivered_once"] == 2 and figures["delivered_twice_or_more"] == 0
    assert figures["sigterm_exit_code"] == 0


async def test_soak_of_mixed_requests_loses_and_doubles_nothing(tmp_path):
    figures = await soak(tmp_path, requests=100, users=10, workers=3, arrival_s=0.5, step_delay_s=0.002)
    assert figures["jobs_accepted"] > 60
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["finished_in_time"]
    assert figures["poison_failed_and_told_once"] == figures["poison_jobs"]
    assert figures["other_jobs_failed"] == 0  # dropped connections were retried, not failed
    assert figures["runtime_drops_injected"] > 0
