"""Adaptation defaults per kind of model (issue #16 §3): the builtin model keeps its tuned
set, an SD-class model gets the literature's set with a plateau stop, the operator's own
values win, and the worker sends the runtime exactly the settings it hashed."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.bench_seal import synthetic_reference
from seal_runtime.api.config import ADAPTATION_PROFILES, AdaptationSettings
from seal_runtime.ttf.adaptation import adapt_concept


def test_each_kind_of_model_gets_its_own_defaults_and_explicit_values_win():
    builtin, sd = AdaptationSettings().resolved("builtin"), AdaptationSettings().resolved("sd15")
    assert (builtin.steps, builtin.learning_rate, builtin.batch_size, builtin.plateau_every) == (100, 5e-3, 2, 0)
    assert (sd.steps, sd.learning_rate, sd.batch_size, sd.lora_learning_rate) == (500, 2e-3, 4, 1e-4)
    assert sd.plateau_every > 0
    assert AdaptationSettings(steps=42).resolved("sd15").steps == 42
    assert AdaptationSettings(profile="builtin").resolved("sd15").steps == 100  # the config decides
    # Leaving a value to the profile or writing the same value out is the same cache key.
    assert AdaptationSettings().settings_hash("m", "sd15") == AdaptationSettings(steps=500).settings_hash("m", "sd15")
    assert AdaptationSettings().settings_hash("m", "sd15") != AdaptationSettings().settings_hash("m", "builtin")
    with pytest.raises(ValueError, match="not resolved"):
        AdaptationSettings().check()
    with pytest.raises(ValueError, match="profile"):
        AdaptationSettings(profile="sdxl").resolved("builtin")
    assert set(ADAPTATION_PROFILES) == {"builtin", "sd15"}


def test_the_plateau_stop_ends_a_run_that_stopped_improving(tiny_backbone):
    reference, mask = synthetic_reference(tiny_backbone.resolution)
    # An improvement of 100 % is never reached: after the minimum the run ends at the
    # first measure that is not better, here the second one, at step 4 of 50.
    stopping = AdaptationSettings(steps=50, batch_size=1, plateau_every=2, plateau_min_steps=2,
                                  plateau_patience=1, plateau_min_delta=1.0)
    result = adapt_concept(tiny_backbone, reference, mask, stopping)
    assert result.steps == 4 and len(result.losses) == 4
    assert [step for step, _ in result.plateau] == [2, 4]
    full = adapt_concept(tiny_backbone, reference, mask, dataclasses.replace(stopping, steps=6, plateau_every=0))
    assert full.steps == 6 and full.plateau == []


async def test_the_worker_sends_the_settings_of_the_runtimes_model_profile(tmp_path):
    from benchmarks.bench_reliability import (
        RecordingSink,
        bench_settings,
        character_png,
    )
    from bot.job_worker import JobWorker
    from bot.messages import UserRef
    from bot.service import StickerService
    from seal_runtime.api.client import RuntimeClient
    from storage.database import open_database
    from tests.scripted_engine import ScriptedEngine, serving

    engine = ScriptedEngine()
    engine.adaptation_profile = "sd15"
    async with serving(engine) as url:
        base = bench_settings(str(tmp_path / "bot.sqlite"), url)
        settings = dataclasses.replace(base, adaptation=AdaptationSettings())  # nothing set by the operator
        db = open_database(settings.general.database)
        service = StickerService(db, settings)
        client = RuntimeClient(url)
        user = UserRef("console", "ann", "Ann")
        service.set_reference(user, character_png(0))
        service.request_sticker(user, "happy", {}, seed=1)
        try:
            assert await JobWorker(db, settings, client, RecordingSink(), worker_id="w").run_once()
        finally:
            await client.close()
    sent = AdaptationSettings.from_dict(engine.requests[0].adaptation)
    assert (sent.profile, sent.steps, sent.batch_size) == ("sd15", 500, 4)
    assert sent.check() is sent
