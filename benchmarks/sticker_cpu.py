"""CPU cost of the runtime's finish step per 512 px sticker: clean-up, cut-out (background
flood fill with its connected-component labelling, trim) and PNG encoding, the work done
for every image after sampling (`seal_runtime.engine.finish_image`).

Measured as the thread's CPU time (`time.thread_time`), not wall time, so other work on
the machine does not inflate it. The picture is made in code: a character on a plain,
slightly noisy background with thin lines reaching out from it (whiskers, hair), the
case where the old numpy pointer-jumping labelling needed many rounds.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from PIL import Image, ImageDraw

TARGET_MS = 50.0


def plain_background_picture(side: int = 512, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    scale = side / 512
    draw.ellipse([v * scale for v in (120, 100, 400, 420)], fill=(230, 120, 40), outline=(20, 20, 20),
                 width=max(1, round(8 * scale)))
    for _ in range(40):
        x, y = rng.integers(round(60 * scale), round(450 * scale), 2)
        draw.line((side // 2, side // 2, int(x), int(y)), fill=(40, 30, 20), width=2)
    pixels = np.asarray(image).astype(np.int16) + rng.integers(-6, 7, (side, side, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def sticker_cpu_ms(repeats: int = 5, side: int = 512) -> dict:
    from seal_runtime.engine import finish_image

    image = plain_background_picture(side)
    times, size = [], 0
    for _ in range(repeats):
        started = time.thread_time()
        size = len(finish_image(image))
        times.append(time.thread_time() - started)
    return {"sticker_cpu_ms": round(statistics.median(times) * 1000, 1), "sticker_cpu_target_ms": TARGET_MS,
            "sticker_png_bytes": size, "side_px": side}
