"""Test tiers: each test is marked by what it starts, read from its code at collection.

    broker    starts an MQTT broker process (Mosquitto or the embedded rumqttd)
    postgres  starts PostgreSQL (the regional tests)
    browser   starts Chromium (the pages, through Playwright or --dump-dom)
    slow      takes more than ~0.4 s on its own (most take 0.1 s): marked by hand, beside the test

A test gets `broker`, `postgres` or `browser` when it, or any fixture it uses (directly or
through other fixtures), names one of the fixtures or helpers below. Marking by hand would
drift as tests are added; reading the code cannot forget one. For the browser, whose helper
may be called from anywhere, `expect_marked` checks at run time that the reading found it.

The fast tier for daily work is everything but the slow, browser and PostgreSQL tests:
`python -m pytest -q --fast` (README, *Tests*); CI runs everything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import CodeType
from typing import Final

import pytest

# A test (or one of its fixtures) uses one of these fixtures ...
_FIXTURES: Final[dict[str, frozenset[str]]] = {
    "broker": frozenset({"broker", "mosquitto", "region_broker", "mosquitto_installed"}),
    "postgres": frozenset({"postgres_cluster"}),
}
# ... or its code names one of these helpers or classes (a Gateway started without the
# `broker` fixture starts its own broker).
_NAMES: Final[dict[str, frozenset[str]]] = {
    "broker": frozenset(
        {
            "MosquittoProcess",
            "EmbeddedBrokerProcess",
            "EmbeddedBroker",
            "MosquittoBroker",
            "persistent_mosquitto",
            "tls_broker",
            "Gateway",
            "async_certify",  # the conformance kit runs a gateway, with its broker
            "_run_demo",  # `linli demo` in a child process
        }
    ),
    "postgres": frozenset({"PostgresCluster"}),
    "browser": frozenset({"browser_page"}),
}

# What each marker's test starts, for the failure `expect_marked` reports (pyproject.toml
# registers the markers themselves).
_STARTS: Final = {
    "broker": "starts an MQTT broker",
    "postgres": "starts PostgreSQL",
    "browser": "starts Chromium",
}


@functools.cache
def _names_in(code: CodeType) -> frozenset[str]:
    """The names a function's code uses (globals, locals, imports, attributes), nested functions' too."""
    names = {*code.co_names, *code.co_varnames, *code.co_freevars}
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names_in(const)
    return frozenset(names)


def _code_of(function: Callable[..., object]) -> CodeType | None:
    function = getattr(function, "__wrapped__", function)
    return getattr(function, "__code__", None)


def _uses(item: pytest.Item) -> tuple[set[str], set[str]]:
    """The fixtures a test uses (the whole closure) and the names its code and theirs load."""
    fixtures = set(getattr(item, "fixturenames", ()))
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in fixtures:
        definitions = info.name2fixturedefs.get(name, ()) if info is not None else ()
        functions.extend(d.func for d in definitions)
    names: set[str] = set()
    for function in functions:
        code = _code_of(function) if function is not None else None
        if code is not None:
            names |= _names_in(code)
    return fixtures, names


FAST_TIER: Final = ("slow", "browser", "postgres")  # what `--fast` leaves out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help='the fast tier for daily work: as -m "not slow and not browser and not postgres"',
    )


@pytest.hookimpl(tryfirst=True)  # before -m selects by the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures, names = _uses(item)
        for marker in ("broker", "postgres", "browser"):
            if fixtures & _FIXTURES.get(marker, frozenset()) or names & _NAMES[marker]:
                item.add_marker(marker)
    if config.getoption("fast"):
        kept: list[pytest.Item] = []
        left_out: list[pytest.Item] = []
        for item in items:
            (left_out if any(item.get_closest_marker(m) for m in FAST_TIER) else kept).append(item)
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = kept


_running: pytest.Item | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _running
    _running = item


def pytest_runtest_teardown(item: pytest.Item) -> None:
    global _running
    _running = None


def expect_marked(marker: str) -> None:
    """Fail the running test if it starts what `marker` stands for but was not marked so.

    A helper that starts a browser calls this: a test reaching it through a path the
    reading above missed would otherwise run in the fast tier unnoticed."""
    item = _running
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(
            f"{item.nodeid} {_STARTS[marker]} but is not marked `{marker}`: "
            f"name the helper in tests/tiers.py or mark the test @pytest.mark.{marker}"
        )
