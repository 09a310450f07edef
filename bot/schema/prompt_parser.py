"""`/mysticker <words>` -> a StickerRequest: the prompt parser of the six-attribute schema."""

from __future__ import annotations

import re
import unicodedata

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
_WORD_RE = re.compile(r"[a-z0-9']+")


class PromptError(ValueError):
    """A prompt the parser cannot take (empty, too long); `user_message` is safe to show.
    The service turns it into the bot's UserError: the schema knows nothing of the bot."""

    def __init__(self, user_message: str, *, code: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


def _build_phrase_index() -> dict[tuple[str, ...], tuple[Attribute, str]]:
    index: dict[tuple[str, ...], tuple[Attribute, str]] = {}
    for vocabulary in ALL_VOCABULARIES:
        for value in vocabulary.values:
            for spelling in value.spellings():
                words = tuple(_WORD_RE.findall(spelling.replace("-", " ")))
                index[words] = (vocabulary.attribute, value.key)
    return index


_PHRASES = _build_phrase_index()


def normalise_words(text: str) -> list[str]:
    """Lower-case words; hyphens split words; accents folded; emoji and punctuation dropped."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _WORD_RE.findall(text.lower().replace("-", " ").replace("_", " "))


def parse_prompt(text: str, *, max_chars: int = 200) -> StickerRequest:
    """Fill the schema from free words; the first value given for a slot wins.

    Unknown words are kept as free text (they still reach the prompt), so nothing
    the user typed is silently dropped. Raises PromptError for empty or overlong prompts.
    """
    stripped = (text or "").strip()
    if len(stripped) > max_chars:
        raise PromptError(
            f"That prompt is {len(stripped)} characters long; the limit is {max_chars}. "
            "Try a few words, e.g. /mysticker happy waving beach",
            code="prompt_too_long",
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
            if words[i] not in _FILLER_WORDS:
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


# Glue words that carry no attribute ("waving *on the* beach") are not free text.
_FILLER_WORDS = frozenset({"a", "an", "the", "on", "in", "at", "with", "and", "of", "my", "me", "is", "very", "please"})


def words_for_help() -> dict[str, list[str]]:
    """Attribute -> its canonical words, for /help and autocomplete."""
    return {v.attribute.value: v.keys() for v in (EMOTION, ACTION, COMPOSITION, STYLE, BACKGROUND, APPEARANCE)}


def suggest_prompts(text: str, *, limit: int = 25) -> list[str]:
    """Completions of a half-typed prompt for autocomplete: the last, unfinished word is
    completed with the attribute words that start with it, skipping attributes the rest of
    the prompt already fills. Returns whole prompts (what the user would send)."""
    typed = (text or "").lstrip()
    head, _, partial = typed.rpartition(" ")
    partial = partial.lower()
    try:
        filled = parse_prompt(head).explicit if normalise_words(head) else frozenset()
    except PromptError:  # already too long: nothing to add
        return []
    used = set(normalise_words(head))
    suggestions: list[str] = []
    for vocabulary in (EMOTION, ACTION, BACKGROUND, COMPOSITION, STYLE, APPEARANCE):
        if vocabulary.attribute in filled:
            continue
        for key in vocabulary.keys():  # noqa: SIM118 - AttributeVocabulary's own method, not a dict
            if key.startswith(partial) and key not in used:
                suggestions.append(f"{head} {key}".strip())
    if partial and not suggestions:
        return [typed.strip()][:limit]
    return suggestions[:limit]
