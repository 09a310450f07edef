"""/mysticker words -> StickerRequest: a table of phrasings users actually type."""

import pytest

from bot.schema.prompt_builder import CONCEPT_PLACEHOLDER, build_prompt
from bot.schema.prompt_parser import PromptError, parse_prompt
from bot.schema.sticker_request import StickerRequest
from bot.schema.vocabulary import ALL_VOCABULARIES, Attribute, emoji_for_emotion

E, A, C, S, B = "emotion", "action", "composition", "style", "background"

CASES = [
    # (text, expected slots, expected appearance, expected free text)
    ("happy waving beach", {E: "happy", A: "waving", B: "beach"}, (), ()),
    ("Happy Waving BEACH", {E: "happy", A: "waving", B: "beach"}, (), ()),
    ("happy, waving, beach!", {E: "happy", A: "waving", B: "beach"}, (), ()),
    ("sad sitting night sky", {E: "sad", A: "sitting", B: "night sky"}, (), ()),
    ("crying at night", {E: "sad", B: "night sky"}, (), ()),
    ("angry thumbs up city", {E: "angry", A: "thumbs up", B: "city"}, (), ()),
    ("furious thumbs-up downtown", {E: "angry", A: "thumbs up", B: "city"}, (), ()),
    ("thumbsup", {A: "thumbs up"}, (), ()),
    ("love close up", {E: "love", C: "close up"}, (), ()),
    ("in love close-up starry sky", {E: "love", C: "close up", B: "night sky"}, (), ()),
    ("heart eyes closeup", {E: "love", C: "close up"}, (), ()),
    ("surprised jumping forest", {E: "surprised", A: "jumping", B: "forest"}, (), ()),
    ("shocked hop in the woods", {E: "surprised", A: "jumping", B: "forest"}, (), ()),
    ("omg jumps", {E: "surprised", A: "jumping"}, (), ()),
    ("sleepy sitting room", {E: "sleepy", A: "sitting", B: "room"}, (), ()),
    ("tired seated in the bedroom", {E: "sleepy", A: "sitting", B: "room"}, (), ()),
    ("zzz indoors", {E: "sleepy", B: "room"}, (), ()),
    ("dancing party", {A: "dancing"}, (), ("party",)),
    ("dance on the sandy shore", {A: "dancing", B: "beach"}, (), ("shore",)),
    ("full body waving", {C: "full body", A: "waving"}, (), ()),
    ("full-body wave", {C: "full body", A: "waving"}, (), ()),
    ("whole body standing", {C: "full body", A: "standing"}, (), ()),
    ("upper body happy", {C: "upper body", E: "happy"}, (), ()),
    ("half-body grumpy", {C: "upper body", E: "angry"}, (), ()),
    ("wide shot beach", {C: "wide shot", B: "beach"}, (), ()),
    ("tiny far away in space", {C: "wide shot", B: "night sky"}, (), ("far", "away")),
    ("flat happy", {S: "flat", E: "happy"}, (), ()),
    ("pastel colors love", {S: "pastel", E: "love"}, (), ()),
    ("shaded 3d surprised", {S: "shaded", E: "surprised"}, (), ("3d",)),
    ("bold outline cheerful", {S: "bold outline", E: "happy"}, (), ()),
    ("happy with a hat", {E: "happy"}, ("hat",), ()),
    ("cool sunglasses beach", {B: "beach"}, ("glasses",), ("cool",)),
    ("wearing a crown and scarf", {}, ("crown", "scarf"), ("wearing",)),
    ("bow tie waving", {A: "waving"}, ("bow",), ()),
    ("happy birthday", {E: "happy"}, (), ("birthday",)),
    ("eating pizza", {}, (), ("eating", "pizza")),
    ("happy sad", {E: "happy"}, (), ("sad",)),
    ("plain background sad", {B: "plain", E: "sad"}, (), ("background",)),
    ("no background waving", {B: "plain", A: "waving"}, (), ()),
    ("white background jumping", {B: "plain", A: "jumping"}, (), ()),
    ("hello from the city", {A: "waving", B: "city"}, (), ("from",)),
    ("😀 happy 🎉", {E: "happy"}, (), ()),
    ("héllo café", {A: "waving"}, (), ("cafe",)),
    ("ok at home", {A: "thumbs up", B: "room"}, (), ()),
    ("smiling on the seaside", {E: "happy", B: "beach"}, (), ()),
    ("annoyed zoomed in", {E: "angry", C: "close up"}, (), ()),
]


@pytest.mark.parametrize("text,slots,appearance,free", CASES, ids=[c[0] for c in CASES])
def test_phrasings_fill_the_six_attribute_schema(text, slots, appearance, free):
    request = parse_prompt(text)
    defaults = StickerRequest()
    for slot in (E, A, C, S, B):
        assert getattr(request, slot) == slots.get(slot, getattr(defaults, slot)), slot
    assert request.appearance == appearance
    assert request.free_text == free
    assert {a.value for a in request.explicit} == set(slots)


def test_table_has_at_least_40_phrasings():
    assert len(CASES) >= 40


def test_defaults_give_a_clean_sticker():
    request = parse_prompt("pizza")
    assert (request.background, request.composition, request.style) == ("plain", "full body", "bold outline")


@pytest.mark.parametrize("text", ["", "   ", "!!!", "🎉🎉"])
def test_empty_prompt_gets_help_not_a_traceback(text):
    with pytest.raises(PromptError, match="/mysticker happy waving beach"):
        parse_prompt(text)


def test_overlong_prompt_is_refused_with_the_limit():
    with pytest.raises(PromptError, match="limit is 50"):
        parse_prompt("happy " * 20, max_chars=50)


def test_unknown_words_are_kept_as_free_text_in_the_prompt():
    prompt = build_prompt(parse_prompt("happy eating pizza"))
    assert prompt.endswith("eating pizza")


def test_prompt_builder_orders_appearance_then_the_other_five():
    prompt = build_prompt(parse_prompt("happy waving beach hat"))
    assert prompt.startswith(f"a sticker of {CONCEPT_PLACEHOLDER} wearing a hat,")
    positions = [prompt.index(p) for p in ("happy smiling", "waving one arm", "full body", "bold outline", "sunny beach")]
    assert positions == sorted(positions)


def test_background_words_fill_background_slot():
    assert parse_prompt("starry").background == "night sky"


def test_no_spelling_belongs_to_two_values():
    seen = {}
    for vocabulary in ALL_VOCABULARIES:
        for value in vocabulary.values:
            for spelling in value.spellings():
                assert spelling not in seen, (spelling, seen.get(spelling), value.key)
                seen[spelling] = value.key


def test_every_emotion_has_an_emoji():
    for value in ALL_VOCABULARIES[0].values:
        assert ALL_VOCABULARIES[0].attribute is Attribute.EMOTION
        assert emoji_for_emotion(value.key) and emoji_for_emotion(value.key) != "🙂"
