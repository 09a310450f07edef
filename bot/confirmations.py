"""Confirmations of what cannot be undone (/forget): a button press counts for a while only.

The deadline travels in the button's data, which the platform hands back with the press, so
a bot restarted in between still knows it; whole seconds, as button data is short text. Both
adapters ask the same question with the clock they were given (tests give them a fake one),
so the window is pinned here, at its edges, once.
"""

from __future__ import annotations

import math

FORGET_VALID_S = 600  # ten minutes: long enough to read the question, short enough to be this visit


def deadline(now: float, valid_s: float = FORGET_VALID_S) -> int:
    """The last second at which a confirmation asked at `now` still counts."""
    return math.floor(now + valid_s)


def expired(until: int, now: float) -> bool:
    """True once `now` is past the deadline (a press at the deadline itself still counts)."""
    return now > until
