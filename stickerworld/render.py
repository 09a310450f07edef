"""Draw one StickerWorld sample with Pillow: a character with an identity, an emotion
(the face and a sticker mark beside the head), an action (limbs), a camera composition
(scale and framing), a style (outline, flat, shaded, pastel) and a background.

Everything is drawn at 4x the requested size on a unit-square coordinate system
and downsampled, so 64-px training images stay smooth. The subject is drawn on
its own transparent layer: its alpha is the exact subject mask.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from stickerworld.identities import Identity

SUPERSAMPLE = 4

# (centre x, centre y, scale) of the body for each camera composition. Close up and
# upper body push the body down and out of frame so the face fills the picture.
COMPOSITIONS = {
    "full body": (0.5, 0.52, 1.0),
    "close up": (0.5, 0.8, 1.9),
    "upper body": (0.5, 0.72, 1.45),
    "wide shot": (0.5, 0.6, 0.45),
}


@dataclass(frozen=True)
class Scene:
    identity: Identity
    emotion: str = "happy"
    action: str = "standing"
    composition: str = "full body"
    style: str = "bold outline"
    background: str = "plain"

    def tags(self) -> dict[str, str]:
        return {
            "appearance": self.identity.key,
            "emotion": self.emotion,
            "action": self.action,
            "composition": self.composition,
            "style": self.style,
            "background": self.background,
        }


def _mix(colour, other, amount: float):
    return tuple(int(round(c * (1 - amount) + o * amount)) for c, o in zip(colour, other))


class _Canvas:
    """Unit-square drawing helpers on a supersampled image."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.side = image.size[0]

    def px(self, value: float) -> float:
        return value * self.side

    def box(self, cx, cy, w, h):
        return [self.px(cx - w / 2), self.px(cy - h / 2), self.px(cx + w / 2), self.px(cy + h / 2)]

    def line(self, points, fill, width):
        self.draw.line([(self.px(x), self.px(y)) for x, y in points], fill=fill, width=max(1, int(self.px(width))),
                       joint="curve")


# -- backgrounds --------------------------------------------------------------------------------
def draw_background(name: str, side: int, rng: random.Random) -> Image.Image:
    image = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    c = _Canvas(image)
    d = c.draw
    if name == "beach":
        d.rectangle([0, 0, side, c.px(0.55)], fill=(135, 200, 245))
        d.rectangle([0, c.px(0.55), side, c.px(0.68)], fill=(30, 110, 200))
        d.rectangle([0, c.px(0.68), side, side], fill=(240, 215, 140))
        d.ellipse(c.box(0.85, 0.15, 0.16, 0.16), fill=(255, 230, 80))
    elif name == "forest":
        d.rectangle([0, 0, side, side], fill=(170, 220, 150))
        d.rectangle([0, c.px(0.8), side, side], fill=(90, 150, 60))
        for x in (0.08, 0.3, 0.72, 0.93):
            d.rectangle(c.box(x, 0.72, 0.04, 0.2), fill=(110, 70, 40))
            d.polygon([(c.px(x - 0.12), c.px(0.66)), (c.px(x + 0.12), c.px(0.66)), (c.px(x), c.px(0.2))],
                      fill=(30, 110, 50))
    elif name == "night sky":
        d.rectangle([0, 0, side, side], fill=(20, 25, 70))
        for _ in range(18):
            x, y = rng.random(), rng.random() * 0.9
            d.ellipse(c.box(x, y, 0.015, 0.015), fill=(255, 255, 230))
        d.ellipse(c.box(0.82, 0.16, 0.16, 0.16), fill=(250, 240, 170))
        d.ellipse(c.box(0.86, 0.13, 0.14, 0.14), fill=(20, 25, 70))
    elif name == "city":
        d.rectangle([0, 0, side, side], fill=(250, 200, 150))
        x = 0.0
        while x < 1.0:
            w = 0.12 + rng.random() * 0.1
            top = 0.25 + rng.random() * 0.35
            d.rectangle([c.px(x), c.px(top), c.px(x + w), side], fill=(90, 95, 115))
            for wy in range(int(top * 20) + 1, 19, 2):
                d.rectangle(c.box(x + w / 2, wy / 20, 0.03, 0.03), fill=(255, 220, 90))
            x += w + 0.01
    elif name == "room":
        d.rectangle([0, 0, side, side], fill=(235, 215, 180))
        d.rectangle([0, c.px(0.75), side, side], fill=(150, 100, 60))
        d.rectangle(c.box(0.2, 0.3, 0.24, 0.24), fill=(170, 220, 250), outline=(255, 255, 255),
                    width=int(c.px(0.02)))
    elif name != "plain":
        raise ValueError(f"unknown background {name!r}")
    return image


# -- the character -------------------------------------------------------------------------------
def _body_box(shape: str, cx: float, cy: float, s: float):
    w, h = {"round": (0.46, 0.46), "square": (0.44, 0.44), "tall": (0.34, 0.56), "pear": (0.46, 0.5)}[shape]
    return cx, cy, w * s, h * s


def _style_colours(identity: Identity, style: str):
    body = identity.rgb
    outline = (20, 20, 20)
    if style == "pastel":
        body = _mix(body, (255, 255, 255), 0.5)
        outline = (120, 120, 130)
    width = {"bold outline": 0.022, "flat": 0.0, "shaded": 0.008, "pastel": 0.01}[style]
    return body, outline, width


def draw_character(scene: Scene, side: int) -> Image.Image:
    """The subject alone, on transparency."""
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    c = _Canvas(layer)
    identity = scene.identity
    cx, cy, s = COMPOSITIONS[scene.composition]
    if scene.action == "jumping":
        cy -= 0.08 * s
    if scene.action == "sitting":
        cy += 0.05 * s
    bx, by, bw, bh = _body_box(identity.shape, cx, cy, s)
    body, outline, width = _style_colours(identity, scene.style)
    ow = width * s if width else 0
    limb = (30, 30, 30) if scene.style != "pastel" else (110, 110, 120)
    limb_w = 0.035 * s

    _draw_limbs(c, scene.action, bx, by, bw, bh, s, limb, limb_w, body)

    # Body.
    box = c.box(bx, by, bw, bh)
    outline_fill = outline if ow else None
    ow_px = int(c.px(ow)) if ow else 0
    if identity.shape == "square":
        c.draw.rounded_rectangle(box, radius=c.px(0.08 * s), fill=body, outline=outline_fill, width=ow_px)
    elif identity.shape == "pear":
        c.draw.ellipse(c.box(bx, by + bh * 0.12, bw, bh * 0.76), fill=body, outline=outline_fill, width=ow_px)
        c.draw.ellipse(c.box(bx, by - bh * 0.18, bw * 0.72, bh * 0.6), fill=body, outline=outline_fill, width=ow_px)
        c.draw.ellipse(c.box(bx, by - bh * 0.05, bw * 0.7, bh * 0.4), fill=body)
    else:
        c.draw.ellipse(box, fill=body, outline=outline_fill, width=ow_px)

    _draw_pattern(c, identity.pattern, bx, by, bw, bh, body)
    if scene.style == "shaded":
        shade = _mix(body, (0, 0, 0), 0.25)
        c.draw.chord(c.box(bx, by + bh * 0.05, bw * 0.92, bh * 0.88), 20, 160, fill=shade)
        c.draw.ellipse(c.box(bx - bw * 0.22, by - bh * 0.28, bw * 0.16, bh * 0.1), fill=_mix(body, (255, 255, 255), 0.6))
    _draw_face(c, scene.emotion, identity.eyes, bx, by - bh * 0.12, bw, s)
    _draw_accessory(c, identity.accessory, bx, by, bw, bh, s)
    _draw_emotion_mark(c, scene.emotion, bx, by, bw, bh, s)
    return layer


def _draw_limbs(c: _Canvas, action: str, bx, by, bw, bh, s, colour, width, body):
    left, right = bx - bw * 0.45, bx + bw * 0.45
    shoulder = by + bh * 0.05
    hip = by + bh * 0.42
    foot = hip + 0.12 * s
    hand_r = 0.045 * s
    arms = {
        "standing": [((left, shoulder), (left - 0.08 * s, shoulder + 0.14 * s)),
                     ((right, shoulder), (right + 0.08 * s, shoulder + 0.14 * s))],
        "waving": [((left, shoulder), (left - 0.08 * s, shoulder + 0.14 * s)),
                   ((right, shoulder), (right + 0.14 * s, shoulder - 0.2 * s))],
        "jumping": [((left, shoulder), (left - 0.15 * s, shoulder - 0.18 * s)),
                    ((right, shoulder), (right + 0.15 * s, shoulder - 0.18 * s))],
        "thumbs up": [((left, shoulder), (left - 0.08 * s, shoulder + 0.14 * s)),
                      ((right, shoulder), (right + 0.16 * s, shoulder))],
        "sitting": [((left, shoulder), (left - 0.06 * s, shoulder + 0.12 * s)),
                    ((right, shoulder), (right + 0.06 * s, shoulder + 0.12 * s))],
        "dancing": [((left, shoulder), (left - 0.12 * s, shoulder - 0.22 * s)),
                    ((right, shoulder), (right + 0.18 * s, shoulder + 0.02 * s))],
    }[action]
    legs = {
        "sitting": [((bx - bw * 0.2, hip), (bx - bw * 0.55, hip + 0.02 * s)),
                    ((bx + bw * 0.2, hip), (bx + bw * 0.55, hip + 0.02 * s))],
        "jumping": [((bx - bw * 0.2, hip), (bx - bw * 0.35, foot - 0.03 * s)),
                    ((bx + bw * 0.2, hip), (bx + bw * 0.35, foot - 0.03 * s))],
        "dancing": [((bx - bw * 0.2, hip), (bx - bw * 0.2, foot)),
                    ((bx + bw * 0.2, hip), (bx + bw * 0.6, foot - 0.06 * s))],
    }.get(action, [((bx - bw * 0.2, hip), (bx - bw * 0.2, foot)), ((bx + bw * 0.2, hip), (bx + bw * 0.2, foot))])
    for start, end in legs:
        c.line([start, end], colour, width)
        c.draw.ellipse(c.box(end[0], end[1], hand_r * 1.6, hand_r), fill=colour)
    for index, (start, end) in enumerate(arms):
        c.line([start, end], colour, width)
        c.draw.ellipse(c.box(end[0], end[1], hand_r * 1.5, hand_r * 1.5), fill=body, outline=colour,
                       width=max(1, int(c.px(0.008 * s))))
        if action == "thumbs up" and index == 1:
            c.draw.rounded_rectangle(c.box(end[0], end[1] - hand_r * 1.3, hand_r * 0.6, hand_r * 1.4),
                                     radius=c.px(hand_r * 0.3), fill=body, outline=colour,
                                     width=max(1, int(c.px(0.008 * s))))
    if action == "jumping":
        c.draw.ellipse(c.box(bx, foot + 0.1 * s, bw * 0.8, 0.03 * s), fill=(0, 0, 0, 90))
    if action == "waving":
        for k in (1, 2):
            x, y = right + 0.2 * s, shoulder - 0.2 * s
            c.draw.arc(c.box(x, y, 0.06 * s * k, 0.1 * s * k), -60, 60, fill=colour, width=max(1, int(c.px(0.01 * s))))


def _draw_pattern(c: _Canvas, pattern: str, bx, by, bw, bh, body):
    light = _mix(body, (255, 255, 255), 0.55)
    dark = _mix(body, (0, 0, 0), 0.35)
    if pattern == "spots":
        for dx, dy in ((-0.25, 0.15), (0.22, 0.25), (-0.05, 0.35), (0.3, -0.05)):
            c.draw.ellipse(c.box(bx + dx * bw, by + dy * bh, bw * 0.16, bw * 0.16), fill=dark)
    elif pattern == "stripes":
        for dy in (0.1, 0.24, 0.38):
            c.draw.rectangle(c.box(bx, by + dy * bh, bw * 0.8, bh * 0.06), fill=dark)
    elif pattern == "belly":
        c.draw.ellipse(c.box(bx, by + bh * 0.22, bw * 0.55, bh * 0.45), fill=light)


def _heart(c: _Canvas, x, y, r, fill):
    c.draw.ellipse(c.box(x - r * 0.5, y - r * 0.3, r, r), fill=fill)
    c.draw.ellipse(c.box(x + r * 0.5, y - r * 0.3, r, r), fill=fill)
    c.draw.polygon([(c.px(x - r), c.px(y - r * 0.15)), (c.px(x + r), c.px(y - r * 0.15)), (c.px(x), c.px(y + r * 0.9))],
                   fill=fill)


def _draw_face(c: _Canvas, emotion: str, eyes: str, fx, fy, bw, s):
    ink = (20, 20, 20)
    ex = bw * 0.2
    er = (0.05 if eyes == "big" else 0.032) * s
    lw = max(1, int(c.px(0.014 * s)))
    for side in (-1, 1):
        x = fx + side * ex
        if emotion == "sleepy":
            c.line([(x - er, fy), (x + er, fy)], ink, 0.014 * s)
        elif emotion == "love":
            _heart(c, x, fy, er * 1.1, (230, 30, 60))
        elif emotion == "surprised":
            c.draw.ellipse(c.box(x, fy, er * 2.4, er * 2.4), fill=(255, 255, 255), outline=ink, width=lw)
            c.draw.ellipse(c.box(x, fy, er * 0.9, er * 0.9), fill=ink)
        else:
            if eyes == "big":
                c.draw.ellipse(c.box(x, fy, er * 2, er * 2), fill=(255, 255, 255), outline=ink, width=lw)
                c.draw.ellipse(c.box(x, fy, er, er), fill=ink)
            else:
                c.draw.ellipse(c.box(x, fy, er * 1.4, er * 1.4), fill=ink)
        if emotion == "angry":
            c.line([(x - side * er * 1.6, fy - er * 2.4), (x + side * er * 0.6, fy - er * 1.2)], ink, 0.018 * s)
    my = fy + 0.1 * s
    mw = bw * 0.35
    if emotion in ("happy", "love"):
        c.draw.chord(c.box(fx, my - 0.02 * s, mw, 0.1 * s), 0, 180, fill=(120, 20, 30), outline=ink, width=lw)
    elif emotion == "sad":
        c.draw.arc(c.box(fx, my + 0.03 * s, mw * 0.8, 0.08 * s), 200, 340, fill=ink, width=lw)
        c.draw.ellipse(c.box(fx + ex + 0.01 * s, fy + 0.06 * s, 0.03 * s, 0.05 * s), fill=(60, 150, 255))
    elif emotion == "angry":
        c.draw.arc(c.box(fx, my + 0.03 * s, mw * 0.9, 0.06 * s), 200, 340, fill=ink, width=lw * 2)
    elif emotion == "surprised":
        c.draw.ellipse(c.box(fx, my + 0.01 * s, 0.06 * s, 0.08 * s), fill=(120, 20, 30), outline=ink, width=lw)
    elif emotion == "sleepy":
        c.line([(fx - mw * 0.2, my), (fx + mw * 0.2, my)], ink, 0.012 * s)


# Chat stickers say their emotion twice: with the face and with a mark beside the head
# (sparkle, heart, tear, anger vein, "!", "Z"). At 64 px a full-body face is ~8 px
# across, so the mark, sized to the frame more than to the character, is what stays
# legible for the small builtin model (and in a wide shot, for a person too).
MARK_INK = (25, 25, 35)


def _draw_emotion_mark(c: _Canvas, emotion: str, bx, by, bw, bh, s):
    r = max(0.085, 0.11 * s)
    x = min(max(bx + bw * 0.5 + r * 0.4, r + 0.02), 0.98 - r)
    y = min(max(by - bh * 0.42, r + 0.02), 0.98 - r)
    edge = max(1, int(c.px(0.012)))
    if emotion == "happy":  # a four-point sparkle
        points = []
        for k in range(8):
            reach = r if k % 2 == 0 else r * 0.3
            angle = k * math.pi / 4
            points.append((c.px(x + reach * math.cos(angle)), c.px(y + reach * math.sin(angle))))
        c.draw.polygon(points, fill=(255, 215, 40), outline=MARK_INK, width=edge)
    elif emotion == "love":
        _heart(c, x, y - r * 0.1, r * 0.9, (235, 40, 90))
    elif emotion == "sad":  # a tear drop
        c.draw.ellipse(c.box(x, y + r * 0.3, r * 1.2, r * 1.2), fill=(60, 150, 255), outline=MARK_INK, width=edge)
        c.draw.polygon([(c.px(x - r * 0.55), c.px(y + r * 0.15)), (c.px(x + r * 0.55), c.px(y + r * 0.15)),
                        (c.px(x), c.px(y - r * 0.9))], fill=(60, 150, 255))
    elif emotion == "angry":  # the anger vein: four bent strokes, corners to the centre
        for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
            cx, cy = x + sx * r * 0.2, y + sy * r * 0.2
            c.line([(cx, cy + sy * r * 0.65), (cx, cy), (cx + sx * r * 0.65, cy)], (230, 30, 30), 0.26 * r)
    elif emotion == "surprised":  # "!"
        c.draw.rounded_rectangle(c.box(x, y - r * 0.25, r * 0.45, r * 1.3), radius=c.px(r * 0.2),
                                 fill=(255, 140, 0), outline=MARK_INK, width=edge)
        c.draw.ellipse(c.box(x, y + r * 0.75, r * 0.45, r * 0.45), fill=(255, 140, 0), outline=MARK_INK, width=edge)
    elif emotion == "sleepy":  # "Z"
        z = r * 0.75
        c.line([(x - z, y - z), (x + z, y - z), (x - z, y + z), (x + z, y + z)], (70, 70, 210), 0.3 * r)


def _draw_accessory(c: _Canvas, accessory: str, bx, by, bw, bh, s):
    top = by - bh * 0.48
    if accessory == "hat":
        c.draw.rectangle(c.box(bx, top + 0.005 * s, bw * 0.75, 0.035 * s), fill=(30, 30, 30))
        c.draw.rectangle(c.box(bx, top - 0.07 * s, bw * 0.45, 0.14 * s), fill=(30, 30, 30))
    elif accessory == "crown":
        w = bw * 0.5
        points = [(bx - w / 2, top + 0.03 * s), (bx - w / 2, top - 0.08 * s), (bx - w / 4, top - 0.02 * s),
                  (bx, top - 0.1 * s), (bx + w / 4, top - 0.02 * s), (bx + w / 2, top - 0.08 * s),
                  (bx + w / 2, top + 0.03 * s)]
        c.draw.polygon([(c.px(x), c.px(y)) for x, y in points], fill=(250, 200, 30), outline=(150, 110, 0))
    elif accessory == "bow":
        c.draw.polygon([(c.px(bx), c.px(top)), (c.px(bx - 0.1 * s), c.px(top - 0.06 * s)),
                        (c.px(bx - 0.1 * s), c.px(top + 0.06 * s))], fill=(240, 60, 140))
        c.draw.polygon([(c.px(bx), c.px(top)), (c.px(bx + 0.1 * s), c.px(top - 0.06 * s)),
                        (c.px(bx + 0.1 * s), c.px(top + 0.06 * s))], fill=(240, 60, 140))
    elif accessory == "glasses":
        fy = by - bh * 0.12
        for side in (-1, 1):
            c.draw.ellipse(c.box(bx + side * bw * 0.2, fy, 0.11 * s, 0.11 * s), outline=(20, 20, 20),
                           width=max(1, int(c.px(0.014 * s))))
        c.line([(bx - bw * 0.2 + 0.055 * s, fy), (bx + bw * 0.2 - 0.055 * s, fy)], (20, 20, 20), 0.014 * s)
    elif accessory == "scarf":
        c.draw.rounded_rectangle(c.box(bx, by + bh * 0.12, bw * 0.85, 0.06 * s), radius=c.px(0.02 * s),
                                 fill=(200, 30, 40))
        c.draw.rectangle(c.box(bx + bw * 0.25, by + bh * 0.25, 0.05 * s, 0.12 * s), fill=(200, 30, 40))


# -- a whole sample -------------------------------------------------------------------------------
def render(scene: Scene, size: int = 64, seed: int = 0) -> tuple[Image.Image, Image.Image]:
    """Returns (RGBA sticker with background, L subject mask), both size x size."""
    side = size * SUPERSAMPLE
    rng = random.Random(seed)
    background = draw_background(scene.background, side, rng)
    character = draw_character(scene, side)
    composed = Image.alpha_composite(background, character)
    image = composed.resize((size, size), Image.Resampling.LANCZOS)
    mask = character.getchannel("A").resize((size, size), Image.Resampling.BOX)
    return image, mask


def render_subject(scene: Scene, size: int = 64) -> Image.Image:
    """The character alone on transparency (the mask is its alpha)."""
    return draw_character(scene, size * SUPERSAMPLE).resize((size, size), Image.Resampling.LANCZOS)




def emotion_region(scene: Scene, size: int = 64) -> Image.Image:
    """L mask (255) of the pixels that depend on the emotion alone: the face and the mark.

    Found by drawing the same character with every emotion and keeping what differs,
    so it follows the renderer whatever it draws; training weights its loss there."""
    import dataclasses

    import numpy as np

    from bot.schema.vocabulary import EMOTION

    def premultiplied(emotion: str):
        # Colour counts only where it shows: resampling leaves faint (alpha 1-4) fringes
        # whose colour differs between emotions but is invisible on any backdrop.
        rgba = np.asarray(render_subject(dataclasses.replace(scene, emotion=emotion), size), dtype=np.float32)
        return np.concatenate([rgba[..., :3] * rgba[..., 3:] / 255.0, rgba[..., 3:]], axis=-1)

    drawn = [premultiplied(e) for e in EMOTION.keys()]
    differs = np.zeros(drawn[0].shape[:2], dtype=bool)
    for other in drawn[1:]:
        differs |= np.abs(other - drawn[0]).max(axis=-1) > 8
    return Image.fromarray(differs.astype(np.uint8) * 255, "L")
