"""Exponential backoff: the one formula for every retry loop and lockout in Linli.

Retry `attempt` (0 for the first) waits `base · 2^attempt`, never more than
`cap`. With jitter the wait is a uniform draw between `floor` and that bound
(AWS's "full jitter"), so that many clients that failed together — every
gateway of a region when its broker restarts — do not all come back together.
`floor` defaults to `base`; a loop that may retry almost at once, like the
uplink's, passes a small one.
"""

from __future__ import annotations

import random
from typing import Final

_MAX_EXPONENT: Final = 32  # 2^32 · any sane base is past every cap; bounds the float


def backoff_delay(
    attempt: int, *, base: float, cap: float, jitter: bool = True, floor: float | None = None
) -> float:
    """Seconds to wait before retry `attempt`: base·2^attempt up to cap, jittered down to floor."""
    if base <= 0 or cap < base:
        raise ValueError(f"backoff: need 0 < base <= cap, got base={base!r}, cap={cap!r}")
    bound = min(cap, base * 2 ** min(max(attempt, 0), _MAX_EXPONENT))
    low = base if floor is None else min(floor, bound)
    return random.uniform(low, bound) if jitter and bound > low else bound
