"""What a /makepack draws: N sticker texts that cover the emotions with varied actions and shots.

Sticker i takes emotion i mod 6, so every emotion appears once before any appears twice;
the action moves on by one per sticker and back by one each round, so the first 36
stickers are 36 different (emotion, action) pairs; a pack is mostly full-body
with close-ups and upper-body shots mixed in (they read best small). What the user added
(`/makepack cozy winter`, or an explicit `beach`, `pastel`, `sad`) goes into every text, and
an attribute the user named is kept for every sticker instead of being varied.

Pure Python, deterministic: the same words and size give the same plan.
"""

from __future__ import annotations

from bot.schema.prompt_parser import parse_prompt
from bot.schema.vocabulary import ACTION, EMOTION, Attribute

# Shots in the order they are dealt: full body twice as often as the others.
COMPOSITIONS = ("full body", "close up", "full body", "upper body")


def plan_pack(words: str, size: int, *, max_chars: int = 200) -> list[str]:
    """The `size` texts, each a /mysticker prompt (the user's words last)."""
    if size < 1:
        raise ValueError(f"a pack has at least one sticker, got {size}")
    fixed = parse_prompt(words, max_chars=max_chars).explicit if words.strip() else frozenset()
    emotions, actions = EMOTION.keys(), ACTION.keys()
    texts = []
    for i in range(size):
        round_, slot = divmod(i, len(emotions))
        parts = []
        if Attribute.EMOTION not in fixed:
            parts.append(emotions[slot])
        if Attribute.ACTION not in fixed:
            parts.append(actions[(slot - round_) % len(actions)])
        if Attribute.COMPOSITION not in fixed:
            parts.append(COMPOSITIONS[(i + round_) % len(COMPOSITIONS)])
        texts.append(" ".join([*parts, words.strip()]).strip())
    return texts
