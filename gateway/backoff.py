"""Exponential backoff, the one formula every retry loop in Linli shares."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Seconds to wait before retry `attempt` (0 for the first): base·2^attempt up to cap.

    With `jitter` (AWS's "full jitter"), a uniform draw between `base` and that bound,
    so that many clients failing together do not retry together.
    """
    bound = min(cap, base * 2 ** min(attempt, 32))
    return random.uniform(base, bound) if jitter and bound > base else bound
