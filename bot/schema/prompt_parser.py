"""`/mysticker <words>` -> a StickerRequest: the prompt parser of the six-attribute schema."""

from __future__ import annotations

import re
import unicodedata

from bot.schema.attribute_words import FILLER_WORDS, labels, spellings
from bot.schema.sticker_request import StickerRequest
from bot.schema.vocabulary import (
    ACTION,
    ALL_VOCABULARIES,
    APPEARANCE,
    BACKGROUND,
    COMPOSITION,
    EMOTION,
    STYLE,
    Attribute,
)

MAX_PHRASE_WORDS = 3
# Letters and digits of any script (Latin, Cyrillic, ...), and apostrophes inside words.
_WORD_RE = re.compile(r"(?:[^\W_]|')+")


class PromptError(ValueError):
    """A prompt the parser cannot take (empty, too long); `user_message` is safe to show.
    The service turns it into the bot's UserError, in the user's language, from `code` and
    `params`: the schema knows nothing of the bot."""

    def __init__(self, user_message: str, *, code: str, **params: int) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code
        self.params = params


def normalise_words(text: str) -> list[str]:
    """Lower-case words of any script; hyphens split words; accents and other diacritics
    dropped ("é" -> "e", "ñ" -> "n", "й" -> "и", "ё" -> "е"); emoji and punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).lower())
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORD_RE.findall(folded.replace("-", " ").replace("_", " "))


def _build_phrase_index() -> dict[tuple[str, ...], tuple[Attribute, str]]:
    """Every spelling of every value, in every shipped language (attribute_words.py)."""
    index: dict[tuple[str, ...], tuple[Attribute, str]] = {}
    for vocabulary in ALL_VOCABULARIES:
        for value in vocabulary.values:
            for spelling in spellings(vocabulary.attribute, value.key):
                index[tuple(normalise_words(spelling))] = (vocabulary.attribute, value.key)
    return index


_PHRASES = _build_phrase_index()


def parse_prompt(text: str, *, max_chars: int = 200) -> StickerRequest:
    """Fill the schema from free words; the first value given for a slot wins.

    Attribute words of every shipped language fill the slots (attribute_words.py). Other
    words are kept as free text (they still reach the prompt), unless they are glue words
    or written in another script than Latin. Raises PromptError for empty or overlong prompts.
    """
    stripped = (text or "").strip()
    if len(stripped) > max_chars:
        raise PromptError(
            f"That prompt is {len(stripped)} characters long; the limit is {max_chars}. "
            "Try a few words, e.g. /mysticker happy waving beach",
            code="prompt_too_long",
            length=len(stripped),
            limit=max_chars,
        )
    words = normalise_words(stripped)
    if not words:
        raise PromptError(
            "Tell me what the sticker should show, e.g. /mysticker happy waving beach "
            "(send /help for all the words I know).",
            code="prompt_empty",
        )
    slots: dict[Attribute, str] = {}
    appearance: list[str] = []
    free: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            match = _PHRASES.get(tuple(words[i : i + size]))
            if match is None:
                continue
            attribute, key = match
            if attribute is Attribute.APPEARANCE:
                if key not in appearance:
                    appearance.append(key)
            elif attribute not in slots:
                slots[attribute] = key
            else:
                free.extend(words[i : i + size])
            i += size
            break
        else:
            # The model reads English: a word of another script that is no attribute word
            # stays out of its prompt (what reaches the model is plain ASCII words).
            if words[i] not in _FILLER_WORDS and words[i].isascii():
                free.append(words[i])
            i += 1
    return StickerRequest(
        emotion=slots.get(Attribute.EMOTION, EMOTION.default or "happy"),
        action=slots.get(Attribute.ACTION, ACTION.default or "standing"),
        composition=slots.get(Attribute.COMPOSITION, COMPOSITION.default or "full body"),
        style=slots.get(Attribute.STYLE, STYLE.default or "bold outline"),
        background=slots.get(Attribute.BACKGROUND, BACKGROUND.default or "plain"),
        appearance=tuple(appearance),
        free_text=tuple(free),
        explicit=frozenset(slots),
    )


# Glue words that carry no attribute ("waving *on the* beach", "en la playa") are not free text.
_FILLER_WORDS = frozenset(
    word for words in FILLER_WORDS.values() for spelling in words for word in normalise_words(spelling)
)


def words_for_help() -> dict[str, list[str]]:
    """Attribute -> its canonical words, for /help and autocomplete."""
    return {v.attribute.value: v.keys() for v in (EMOTION, ACTION, COMPOSITION, STYLE, BACKGROUND, APPEARANCE)}


def suggest_prompts(text: str, *, limit: int = 25, language: str = "en") -> list[str]:
    """Completions of a half-typed prompt for autocomplete: the last, unfinished word is
    completed with the attribute words of `language` that start with it (accents not
    needed: "sueno" finds "con sueño"), skipping attributes the rest of the prompt already
    fills. Returns whole prompts (what the user would send)."""
    typed = (text or "").lstrip()
    head, _, partial = typed.rpartition(" ")
    partial = " ".join(normalise_words(partial))
    try:
        filled = parse_prompt(head).explicit if normalise_words(head) else frozenset()
    except PromptError:  # already too long: nothing to add
        return []
    used = set(normalise_words(head))
    suggestions: list[str] = []
    for vocabulary in (EMOTION, ACTION, BACKGROUND, COMPOSITION, STYLE, APPEARANCE):
        if vocabulary.attribute in filled:
            continue
        for word in labels(vocabulary.attribute, language):
            folded = " ".join(normalise_words(word))
            if any(part.startswith(partial) for part in [folded, *folded.split()]) and folded not in used:
                suggestions.append(f"{head} {word}".strip())
    if partial and not suggestions:
        return [typed.strip()][:limit]
    return suggestions[:limit]
