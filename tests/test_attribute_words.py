"""The prompt vocabulary in every shipped language (bot/schema/attribute_words.py): each
language's attribute words and their synonyms fill the schema as the English ones do, the
sticker the model draws is the same, and replies name the tags in the user's language."""

from __future__ import annotations

import pytest

from bot.schema.attribute_words import FILLER_WORDS, WORDS, label, labels, spellings
from bot.schema.prompt_builder import build_prompt
from bot.schema.prompt_parser import normalise_words, parse_prompt
from bot.schema.vocabulary import ALL_VOCABULARIES, Attribute

SAME_AS_ENGLISH = [
    ("feliz saludando playa", "happy waving beach"),
    ("Enfadada, sentada en el bosque con gafas", "angry sitting forest glasses"),
    ("triste primer plano cielo nocturno", "sad close up night sky"),
    ("enamorado bailando en la ciudad, colores planos", "love dancing city flat"),
    ("con sueño de pie plano general habitación", "sleepy standing wide shot room"),
    ("sorprendida pulgar arriba medio cuerpo sombrero", "surprised thumbs up upper body hat"),
    ("радость машет пляж", "happy waving beach"),
    ("весёлый машет рукой на пляже", "happy waving beach"),
    ("Грустная сидит в лесу в очках", "sad sitting forest glasses"),
    ("злой палец вверх, крупный план, город", "angry thumbs up close up city"),
    ("влюблённая танцует под ночным небом", "love dancing night sky"),
    ("сонный стоит в комнате в шляпе, пастель", "sleepy standing room hat pastel"),
    ("удивлён прыгает на море общий план", "surprised jumping beach wide shot"),
]


@pytest.mark.parametrize(("words", "english"), SAME_AS_ENGLISH)
def test_each_language_parses_like_english(words, english):
    request = parse_prompt(words)
    assert request == parse_prompt(english)
    assert build_prompt(request) == build_prompt(parse_prompt(english))  # the model sees the same prompt


def test_every_value_has_words_in_every_shipped_language():
    for code, words in WORDS.items():
        for vocabulary in ALL_VOCABULARIES:
            for key in vocabulary.keys():
                assert words[vocabulary.attribute].get(key), (code, vocabulary.attribute, key)
            assert set(words[vocabulary.attribute]) <= set(vocabulary.keys()), (code, vocabulary.attribute)


def test_no_spelling_means_two_values_in_any_language():
    seen: dict[tuple[str, ...], tuple[Attribute, str]] = {}
    for vocabulary in ALL_VOCABULARIES:
        for key in vocabulary.keys():
            for spelling in spellings(vocabulary.attribute, key):
                words = tuple(normalise_words(spelling))
                assert words, spelling
                other = seen.setdefault(words, (vocabulary.attribute, key))
                assert other == (vocabulary.attribute, key), (spelling, other, key)


def test_no_glue_word_is_an_attribute_word():
    single = {tuple(normalise_words(s)) for v in ALL_VOCABULARIES for k in v.keys() for s in spellings(v.attribute, k)}
    for code, fillers in FILLER_WORDS.items():
        for filler in fillers:
            assert tuple(normalise_words(filler)) not in single, (code, filler)


def test_words_of_other_scripts_do_not_reach_the_model_but_latin_free_words_do():
    request = parse_prompt("весёлый пушистый кот fluffy")
    assert request.emotion == "happy" and request.free_text == ("fluffy",)
    assert build_prompt(request).isascii()


def test_replies_name_the_tags_in_the_users_language():
    request = parse_prompt("happy waving beach hat")
    assert request.describe() == "happy, waving, beach, hat"
    assert request.describe("es") == "feliz, saludando, playa, sombrero"
    assert request.describe("ru") == "радость, машет рукой, пляж, шляпа"
    assert label(Attribute.BACKGROUND, "night sky", "es") == "cielo nocturno"
    assert labels(Attribute.EMOTION, "ru")[:2] == ["радость", "грусть"]
