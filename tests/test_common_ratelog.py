"""The rate-limited logger (linli.common.ratelog): once a window per key, with what it held back."""

from __future__ import annotations

import logging

import pytest

from linli.common.ratelog import RateLimitedLog

_LOGGER = logging.getLogger("tests.ratelog")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == _LOGGER.name]


def test_one_line_per_window_and_the_next_says_how_many_were_held_back(caplog) -> None:
    caplog.set_level(logging.WARNING, logger=_LOGGER.name)
    clock = Clock()
    log = RateLimitedLog(_LOGGER, 60.0, clock=clock)
    # when the same thing goes wrong 100 times within a minute
    logged = [
        log.warning("payload from %s rejected: %s", "dev1", f"reason {n}", key="dev1") for n in range(100)
    ]
    # then one line is logged, the first
    assert logged.count(True) == 1 and lines(caplog) == ["payload from dev1 rejected: reason 0"]
    # when the minute has passed, the next line says how many were not logged
    clock.now += 60
    assert log.warning("payload from %s rejected: %s", "dev1", "again", key="dev1")
    assert lines(caplog)[-1] == (
        "payload from dev1 rejected: again (99 more like this in the last 60 s not logged)"
    )
    # and after a quiet window nothing is owed
    clock.now += 61
    log.warning("payload from %s rejected: %s", "dev1", "later", key="dev1")
    assert lines(caplog)[-1] == "payload from dev1 rejected: later"


def test_keys_are_limited_apart(caplog) -> None:
    caplog.set_level(logging.WARNING, logger=_LOGGER.name)
    log = RateLimitedLog(_LOGGER, clock=Clock())
    for _ in range(3):
        log.warning("%s is silent", "a", key="a")
        log.warning("%s is silent", "b", key="b")
    assert lines(caplog) == ["a is silent", "b is silent"]


def test_a_budget_caps_all_keys_together_and_the_next_window_says_how_many(caplog) -> None:
    caplog.set_level(logging.WARNING, logger=_LOGGER.name)
    clock = Clock()
    log = RateLimitedLog(_LOGGER, 60.0, budget=3, budget_note=" (see the rejected view)", clock=clock)
    for n in range(10):
        log.warning("device %d refused", n, key=n)
    assert lines(caplog) == ["device 0 refused", "device 1 refused", "device 2 refused"]
    clock.now += 60
    log.warning("device %d refused", 42, key=42)
    assert lines(caplog)[-2:] == [
        "7 more lines in the last 60 s were not logged (see the rejected view)",
        "device 42 refused",
    ]


def test_the_keys_it_remembers_are_bounded_so_a_key_may_log_once_more(caplog) -> None:
    caplog.set_level(logging.WARNING, logger=_LOGGER.name)
    log = RateLimitedLog(_LOGGER, clock=Clock(), max_keys=2)
    for key in ("a", "b", "a", "c", "a"):
        log.warning("device %s", key, key=key)
    # "c" found the table full, which started afresh: "a" was forgotten and logs again
    assert lines(caplog) == ["device a", "device b", "device c", "device a"]
