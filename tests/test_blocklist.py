"""The blocklist: entries are normalised like prompts, apostrophes do not hide a word,
phrases of several words match, and the prompt that reaches the model is checked too."""

from dataclasses import replace

import pytest

from bot.blocklist import Blocklist, word_forms
from bot.errors import UserError
from bot.service import StickerService
from bot.settings import Settings
from storage.database import open_database

BLOCKLIST = ("gore", "x-rated", "Blood Bath", "Café", "don't")


@pytest.fixture
def service(tmp_path):
    base = Settings()
    settings = replace(base, limits=replace(base.limits, blocklist=BLOCKLIST))
    return StickerService(open_database(tmp_path / "bot.sqlite"), settings)


@pytest.mark.parametrize(
    "text",
    [
        "happy gore",
        "happy GORE beach",
        "happy gore'",
        "happy 'gore",
        "gore's party",
        "gore’s party",
        "‘gore’",  # apostrophes, straight and curly
        "x-rated",
        "X rated",
        "x_rated",  # the entry's hyphen is a word break
        "blood bath",
        "Blood-bath!",
        "blood   bath",
        "sad blood, bath",  # a phrase of two words
        "blood the bath",  # the filler word is dropped, so the model would read "blood bath"
        "cafe",
        "CAFÉ",
        "in a café",  # the entry's accent is folded like the prompt's
        "dont",
        "don't",
        "don’t",
    ],
)
def test_blocked_words_are_refused_however_they_are_written(service, text):
    with pytest.raises(UserError) as refused:
        service.parse(text)
    assert refused.value.code == "blocked"


@pytest.mark.parametrize(
    "text",
    [
        "happy gorilla",
        "gored",
        "blood",
        "bath time",
        "rated x",
        "happy waving beach",
        "coffee",
        "bath blood",
    ],
)
def test_words_that_only_look_alike_pass(service, text):
    service.parse(text)


def test_an_entry_that_is_only_punctuation_blocks_nothing(tmp_path):
    base = Settings()
    settings = replace(base, limits=replace(base.limits, blocklist=("'", " - ", "")))
    service = StickerService(open_database(tmp_path / "bot.sqlite"), settings)
    service.parse("happy waving beach")
    service.parse("happy ' waving - beach")  # a lone apostrophe is no word to match either
    assert not Blocklist(("'", " - ", "")) and not Blocklist(()) and Blocklist(("gore",))


def test_each_text_is_read_with_apostrophes_as_breaks_and_without_them_once_each():
    assert word_forms("don't go") == (("don", "t", "go"), ("dont", "go"))
    assert word_forms("gore ' bath") == (("gore", "bath"),)  # the same both ways: one form
    assert word_forms("'") == ((),)
