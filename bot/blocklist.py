"""The operator's blocklist (`limits.blocklist`): words and phrases no sticker may ask for.

Entries and prompts go through the same normalisation as the prompt parser (case and
accents folded, hyphens and underscores split words, punctuation dropped), and then:

- **apostrophes never hide a word**: straight and curly ones are read both as a word
  break and as nothing, so `gore'`, `'gore`, `gore's` and `gore’s` all contain `gore`,
  and an entry `don't` also catches `dont`;
- **phrases match as phrases**: an entry of several words (`blood bath`, `x-rated`)
  matches those words in a row, not each word alone;
- **the final prompt is checked too**, not only what the user typed: the parser drops
  glue words ("blood *the* bath" reaches the model as "blood bath"). An entry that is part
  of the bot's own prompt template (e.g. `sticker`) therefore blocks every request.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.schema.prompt_parser import normalise_words

# Typographic apostrophes and look-alikes: read as the ASCII one before folding, which
# would otherwise drop them and glue the word to its suffix ("gore’s" -> "gores").
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2018\u2019\u201b\u02bc\u02bb\u0060\u00b4\u2032"})


def word_forms(text: str) -> tuple[tuple[str, ...], ...]:
    """The text's words, once with apostrophes as word breaks and once with them removed."""
    words = normalise_words(text.translate(_APOSTROPHES))
    split = tuple(part for word in words for part in word.split("'") if part)
    joined = tuple(word.replace("'", "") for word in words if word.replace("'", ""))
    return (split, joined) if split != joined else (split,)


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


class Blocklist:
    def __init__(self, entries: Iterable[str]) -> None:
        self.phrases = frozenset(form for entry in entries for form in word_forms(entry) if form)

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def blocks(self, *texts: str) -> bool:
        """Does any of `texts` (what the user typed, the prompt built from it) hold an entry?"""
        if not self.phrases:
            return False
        forms = [form for text in texts for form in word_forms(text)]
        return any(_contains(words, phrase) for words in forms for phrase in self.phrases)
