"""Builds the SEAL loss terms an AdaptationSettings asks for.

Foundation state: only plain textual inversion (no extra loss terms). The SEAL
components (attention capture, spatial attention loss, layer restriction) are
added here by the SEAL work.
"""

from __future__ import annotations

from seal_runtime.config import AdaptationSettings


def build_loss_terms(settings: AdaptationSettings, backbone) -> list:
    if settings.attention_loss == "none":
        return []
    raise ValueError(f"attention_loss={settings.attention_loss!r} is not available in this build")
