"""Remote-control key names → the W3C DOM key codes RDKShell injects."""

from __future__ import annotations

from typing import Final

KEY_CODES: Final[dict[str, int]] = {
    "POWER": 116,
    "UP": 38,
    "DOWN": 40,
    "LEFT": 37,
    "RIGHT": 39,
    "OK": 13,
    "BACK": 8,
    "HOME": 36,
    "MENU": 93,
    "INFO": 73,
    "GUIDE": 71,
    "EXIT": 27,
    "CH_UP": 33,
    "CH_DOWN": 34,
    "VOL_UP": 175,
    "VOL_DOWN": 174,
    "MUTE": 173,
    "PLAY": 250,
    "PAUSE": 19,
    "PLAY_PAUSE": 179,
    "STOP": 178,
    "FAST_FORWARD": 228,
    "REWIND": 227,
    "RED": 403,
    "GREEN": 404,
    "YELLOW": 405,
    "BLUE": 406,
    **{f"DIGIT_{d}": 48 + d for d in range(10)},
}
