"""What the tests need from the machine, and what happens when it is missing.

Some tests need programs outside Python: Mosquitto (the managed broker and its ACL plugin),
Chromium (the pages), PostgreSQL (the region). On a developer's machine a missing one is a
skip that says how to install it. Under CI (`CI=true`, as `.ci/run` runs) it is a failure:
`.ci/run` installs all of them, so a skip there would be a green run that tested less.

Every skip for missing infrastructure goes through `require` (or `missing`), so no test can skip its way
past CI. A broken import of Linli's own code is never a skip: import it, and let it fail.
"""

from __future__ import annotations

import os
import shutil
from typing import Final, NoReturn, TypeVar

import pytest

T = TypeVar("T")

_FALSE: Final = ("", "0", "false", "no")


def in_ci() -> bool:
    """`CI` set to anything but empty/0/false/no (GitHub Actions and GitLab set `CI=true`)."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE


def require(what: str, available: T | None, how_to_install: str) -> T:
    """`available` if it is truthy; else skip (locally) or fail (under CI) saying how to install `what`."""
    if not available:
        missing(what, how_to_install)
    return available


def missing(what: str, how_to_install: str) -> NoReturn:
    """Skip the test (locally) or fail it (under CI): `what` is not on this machine."""
    message = f"{what} is not available: {how_to_install}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: missing infrastructure fails; .ci/run should have installed it)")
    pytest.skip(message)


MOSQUITTO: Final = shutil.which("mosquitto")
CHROMIUM: Final = shutil.which("chromium") or shutil.which("chromium-browser")


def require_mosquitto() -> str:
    """The path of the `mosquitto` program."""
    return require("Mosquitto", MOSQUITTO, "apt-get install mosquitto mosquitto-clients")


def require_chromium() -> str:
    """The path of Debian's Chromium (Playwright drives it; no browser download)."""
    return require("Chromium", CHROMIUM, "apt-get install chromium")
