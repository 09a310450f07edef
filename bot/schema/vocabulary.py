"""The six-attribute prompt schema of StickerBench and the words that fill it.

Appearance comes from the learned concept (plus optional appearance words);
the other five attributes are filled from the user's words. Each value has a
canonical key, the phrase written into the diffusion prompt, and the synonyms
users type. Multi-word synonyms ("thumbs up", "night sky") are matched before
single words. StickerWorld renders exactly these values, so the builtin model
understands every prompt phrase below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Attribute(str, Enum):
    APPEARANCE = "appearance"
    EMOTION = "emotion"
    ACTION = "action"
    COMPOSITION = "composition"
    STYLE = "style"
    BACKGROUND = "background"


@dataclass(frozen=True)
class AttributeValue:
    key: str
    phrase: str
    synonyms: tuple[str, ...] = ()
    emoji: str = ""

    def spellings(self) -> tuple[str, ...]:
        return (self.key, *self.synonyms)


@dataclass(frozen=True)
class AttributeVocabulary:
    attribute: Attribute
    values: tuple[AttributeValue, ...]
    default: str | None = None
    by_key: dict[str, AttributeValue] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {v.key: v for v in self.values})

    def __getitem__(self, key: str) -> AttributeValue:
        return self.by_key[key]

    def keys(self) -> list[str]:
        return [v.key for v in self.values]


EMOTION = AttributeVocabulary(
    Attribute.EMOTION,
    (
        AttributeValue(
            "happy",
            "happy smiling face",
            ("glad", "joyful", "smiling", "smile", "cheerful", "pleased", "content", "yay"),
            "😊",
        ),
        AttributeValue(
            "sad",
            "sad crying face",
            ("unhappy", "crying", "cry", "teary", "upset", "down", "blue mood", "sorrowful"),
            "😢",
        ),
        AttributeValue("angry", "angry frowning face", ("mad", "furious", "grumpy", "annoyed", "rage", "cross"), "😠"),
        AttributeValue(
            "surprised",
            "surprised open mouth face",
            ("shocked", "amazed", "wow", "astonished", "surprise", "omg"),
            "😮",
        ),
        AttributeValue(
            "sleepy",
            "sleepy closed eyes face",
            ("tired", "sleeping", "asleep", "drowsy", "exhausted", "zzz", "bored"),
            "😴",
        ),
        AttributeValue(
            "love",
            "loving heart eyes face",
            ("in love", "loving", "heart eyes", "hearts", "romantic", "adoring", "crush"),
            "😍",
        ),
    ),
    default="happy",
)

ACTION = AttributeVocabulary(
    Attribute.ACTION,
    (
        AttributeValue("standing", "standing", ("stand", "idle", "still")),
        AttributeValue("waving", "waving one arm", ("wave", "waves", "hello", "hi", "bye", "greeting")),
        AttributeValue("jumping", "jumping in the air", ("jump", "jumps", "hopping", "hop", "leaping")),
        AttributeValue(
            "thumbs up", "giving a thumbs up", ("thumbs-up", "thumbsup", "thumb up", "like", "approve", "ok", "okay")
        ),
        AttributeValue("sitting", "sitting down", ("sit", "sits", "seated", "sitting down")),
        AttributeValue("dancing", "dancing with arms up", ("dance", "dances", "party", "celebrating", "celebrate")),
    ),
    default="standing",
)

COMPOSITION = AttributeVocabulary(
    Attribute.COMPOSITION,
    (
        AttributeValue(
            "full body",
            "full body shot, centered",
            ("full-body", "whole body", "fullbody", "full shot", "centered", "centred"),
        ),
        AttributeValue(
            "close up",
            "close up on the face",
            ("close-up", "closeup", "face", "portrait", "headshot", "zoom", "zoomed in"),
        ),
        AttributeValue("upper body", "upper body shot", ("half body", "half-body", "bust", "waist up")),
        AttributeValue(
            "wide shot", "small in a wide shot", ("wide", "far", "far away", "tiny", "small", "distant", "zoomed out")
        ),
    ),
    default="full body",
)

STYLE = AttributeVocabulary(
    Attribute.STYLE,
    (
        AttributeValue(
            "bold outline", "sticker style with a bold outline", ("sticker", "outline", "outlined", "cartoon", "bold")
        ),
        AttributeValue("flat", "flat colors, no outline", ("flat colors", "flat colours", "minimal", "vector")),
        AttributeValue("shaded", "soft shaded", ("shading", "3d", "soft shading", "glossy")),
        AttributeValue("pastel", "pastel palette", ("pastel colors", "pastel colours", "soft colors", "cute")),
    ),
    default="bold outline",
)

BACKGROUND = AttributeVocabulary(
    Attribute.BACKGROUND,
    (
        AttributeValue(
            "plain",
            "plain white background",
            ("white", "transparent", "no background", "none", "blank", "white background"),
        ),
        AttributeValue("beach", "on a sunny beach", ("sea", "seaside", "ocean", "sand", "sandy", "shore", "summer")),
        AttributeValue("forest", "in a green forest", ("woods", "trees", "jungle", "park", "nature")),
        AttributeValue(
            "night sky",
            "under a starry night sky",
            ("night", "stars", "starry", "starry sky", "space", "moon", "nighttime"),
        ),
        AttributeValue(
            "city", "in front of a city skyline", ("town", "street", "skyline", "downtown", "buildings", "urban")
        ),
        AttributeValue("room", "inside a cozy room", ("indoors", "bedroom", "home", "inside", "house", "living room")),
    ),
    default="plain",
)

# Appearance is the learned concept; these optional words add to it.
APPEARANCE = AttributeVocabulary(
    Attribute.APPEARANCE,
    (
        AttributeValue("hat", "wearing a hat", ("cap", "beanie")),
        AttributeValue("glasses", "wearing glasses", ("sunglasses", "spectacles", "shades")),
        AttributeValue("scarf", "wearing a scarf", ()),
        AttributeValue("crown", "wearing a crown", ("tiara", "king", "queen")),
        AttributeValue("bow", "wearing a bow", ("ribbon", "bowtie", "bow tie")),
    ),
    default=None,
)

# Order matters for matching only when two vocabularies share a spelling;
# none do (checked by a test), so this is also the display order of /help.
ALL_VOCABULARIES: tuple[AttributeVocabulary, ...] = (EMOTION, ACTION, COMPOSITION, STYLE, BACKGROUND, APPEARANCE)
VOCABULARY_BY_ATTRIBUTE: dict[Attribute, AttributeVocabulary] = {v.attribute: v for v in ALL_VOCABULARIES}


def emoji_for_emotion(emotion_key: str) -> str:
    """The emoji tagged on a sticker (Telegram sticker sets need one or more)."""
    value = EMOTION.by_key.get(emotion_key)
    return value.emoji if value else "🙂"
