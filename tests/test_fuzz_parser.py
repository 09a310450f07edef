"""Fuzzing the /mysticker parser (hypothesis): whatever a user types, the answer is a
StickerRequest or a friendly PromptError, and what reaches the model is plain words.

`stickerbot bench reliability` runs the same strategy with thousands of inputs."""

import re
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.schema.prompt_builder import build_prompt
from bot.settings import Settings
from bot.errors import UserError
from bot.schema.prompt_parser import PromptError, normalise_words, parse_prompt
from bot.schema.vocabulary import ACTION, APPEARANCE, BACKGROUND, COMPOSITION, EMOTION, STYLE
from benchmarks.fakes.fuzz_inputs import ODD, SPELLINGS, prompts

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORD = re.compile(r"^[a-z0-9']+$")


@FUZZ
@given(prompts())
def test_any_text_gives_a_request_or_a_friendly_error(text):
    try:
        request = parse_prompt(text, max_chars=200)
    except PromptError as exc:
        assert exc.user_message and "Traceback" not in exc.user_message
        assert len(text.strip()) > 200 or not normalise_words(text)
        return
    assert request.emotion in EMOTION.keys() and request.action in ACTION.keys()
    assert request.composition in COMPOSITION.keys() and request.style in STYLE.keys()
    assert request.background in BACKGROUND.keys()
    assert all(key in APPEARANCE.keys() for key in request.appearance)
    assert all(WORD.match(word) for word in request.free_text)
    prompt = build_prompt(request)
    assert prompt.isascii() and "\n" not in prompt and len(prompt) < 1200
    assert isinstance(request.describe(), str)


@FUZZ
@given(st.text(max_size=400), st.integers(1, 300))
def test_the_length_limit_holds_for_every_limit(text, limit):
    try:
        parse_prompt(text, max_chars=limit)
    except PromptError as exc:
        if len(text.strip()) > limit:
            assert f"the limit is {limit}" in exc.user_message
        return
    assert len(text.strip()) <= limit


@FUZZ
@given(st.lists(st.sampled_from(SPELLINGS + list(ODD)), max_size=12), st.integers(0, 12),
       st.sampled_from(("badword", "BADWORD", "BadWord", "bädwörd", "Badword!", "«badword»")))
def test_a_blocklisted_word_is_refused_however_it_is_written(words, at, spelled):
    from bot.service import StickerService

    base = Settings()
    service = StickerService(None, replace(base, limits=replace(base.limits, blocklist=("badword",))))
    words = list(words)
    words.insert(min(at, len(words)), spelled)
    try:
        service.parse(" ".join(words))
    except UserError as exc:
        assert exc.code in ("blocked", "prompt_too_long")
        return
    raise AssertionError("a blocklisted word got through")
