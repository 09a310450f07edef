"""Character identities: body shape, colour, pattern, eyes and accessory.

Identity is what SEAL must keep (Appearance); the other five attributes are what
the user's words change. A fixed, seeded slice of identities is held out of
training so the quality benchmark personalises characters the model never saw.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

SHAPES = ("round", "square", "tall", "pear")
COLOURS = {
    "red": (220, 60, 60),
    "blue": (60, 110, 220),
    "green": (70, 170, 80),
    "yellow": (235, 200, 50),
    "purple": (150, 80, 200),
    "orange": (240, 140, 40),
    "pink": (240, 120, 180),
    "teal": (40, 170, 170),
}
PATTERNS = ("plain", "spots", "stripes", "belly")
EYES = ("dot", "big")
ACCESSORIES = ("none", "hat", "glasses", "scarf", "crown", "bow")

_PATTERN_WORDS = {"plain": "", "spots": "spotted", "stripes": "striped", "belly": "patched"}

HELD_OUT_FRACTION = 0.1


@dataclass(frozen=True)
class Identity:
    shape: str
    colour: str
    pattern: str
    eyes: str
    accessory: str

    @property
    def key(self) -> str:
        return "-".join((self.shape, self.colour, self.pattern, self.eyes, self.accessory))

    def describing_words(self) -> str:
        """Its shape, colour and pattern in words: 'round blue spotted' ('round blue' if plain)."""
        return " ".join(w for w in (self.shape, self.colour, _PATTERN_WORDS[self.pattern]) if w)

    def subject_words(self) -> str:
        """How a caption names this character: 'a round blue spotted character'."""
        return f"a {self.describing_words()} character"

    def appearance(self) -> tuple[str, ...]:
        """Accessories are Appearance words of the prompt schema."""
        return () if self.accessory == "none" else (self.accessory,)

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.colour]


def all_identities() -> list[Identity]:
    return [Identity(*values) for values in itertools.product(SHAPES, COLOURS, PATTERNS, EYES, ACCESSORIES)]


def is_held_out(identity: Identity) -> bool:
    """A stable hash split: the same identities are held out on every machine."""
    digest = hashlib.sha256(identity.key.encode()).digest()
    return digest[0] < 256 * HELD_OUT_FRACTION


def training_identities() -> list[Identity]:
    return [i for i in all_identities() if not is_held_out(i)]


def held_out_identities() -> list[Identity]:
    return [i for i in all_identities() if is_held_out(i)]
