"""What a user asked for: a typed StickerRequest over the six-attribute schema."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.schema.attribute_words import label
from bot.schema.vocabulary import ACTION, BACKGROUND, COMPOSITION, EMOTION, STYLE, Attribute


@dataclass(frozen=True)
class StickerRequest:
    """What a user asked for. Appearance is the learned concept plus `appearance` extras."""

    emotion: str = EMOTION.default or "happy"
    action: str = ACTION.default or "standing"
    composition: str = COMPOSITION.default or "full body"
    style: str = STYLE.default or "bold outline"
    background: str = BACKGROUND.default or "plain"
    appearance: tuple[str, ...] = ()
    free_text: tuple[str, ...] = ()
    # Which slots the user filled explicitly (the rest are defaults).
    explicit: frozenset[Attribute] = field(default_factory=frozenset)

    def as_tags(self) -> dict[str, str]:
        return {
            "appearance": " ".join(self.appearance),
            "emotion": self.emotion,
            "action": self.action,
            "composition": self.composition,
            "style": self.style,
            "background": self.background,
        }

    @classmethod
    def from_tags(cls, tags: dict, free_text: tuple[str, ...] | list[str] = ()) -> StickerRequest:
        """The request back from what a job stores (`as_tags` and its free text)."""
        return cls(
            emotion=tags.get("emotion") or cls.emotion,
            action=tags.get("action") or cls.action,
            composition=tags.get("composition") or cls.composition,
            style=tags.get("style") or cls.style,
            background=tags.get("background") or cls.background,
            appearance=tuple((tags.get("appearance") or "").split()),
            free_text=tuple(free_text),
        )

    def describe(self, language: str = "en") -> str:
        """Short human summary for progress messages, in `language`: 'happy, waving, beach',
        'feliz, saludando, playa'. Free text stays as typed."""
        parts = [
            label(Attribute.EMOTION, self.emotion, language),
            label(Attribute.ACTION, self.action, language),
            label(Attribute.BACKGROUND, self.background, language) if self.background != "plain" else "",
        ]
        parts += [label(Attribute.APPEARANCE, key, language) for key in self.appearance] + list(self.free_text)
        return ", ".join(p for p in parts if p)
