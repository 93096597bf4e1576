"""Per-message value checks compiled once from a capability's JSON Schema.

`jsonschema`'s pre-built validator costs ~20 µs a call; at tens of thousands of
readings a second that is most of a core. Profiles almost always constrain a
value with `type`, `minimum`/`maximum` (and their exclusive forms) and `enum`,
so those are compiled to a plain predicate. Any schema using another keyword
goes to the library's validator, and tests check that both agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import orjson
from jsonschema import Draft202012Validator

ValueCheck = Callable[[Any], bool]

_FAST_KEYWORDS: Final = frozenset(
    {
        "type",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "enum",
        "description",
        "title",
        "$comment",
    }
)


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python but never a JSON number; NaN/inf are not JSON.
    t = type(value)
    return (t is int) or (t is float and math.isfinite(value))


def _is_integer(value: Any) -> bool:
    t = type(value)
    return t is int or (t is float and math.isfinite(value) and value.is_integer())


_TYPE_CHECKS: Final[dict[str, ValueCheck]] = {
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda v: type(v) is bool,
    "string": lambda v: type(v) is str,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "null": lambda v: v is None,
}


_INF: Final = (math.inf, -math.inf)


def _number_check(schema: dict[str, Any], integer: bool) -> ValueCheck:
    """The hottest case, a number in a range, as one closure with no further calls."""
    lo: float = schema.get("minimum", -math.inf)
    hi: float = schema.get("maximum", math.inf)
    xlo: float = schema.get("exclusiveMinimum", -math.inf)
    xhi: float = schema.get("exclusiveMaximum", math.inf)

    def check(v: Any) -> bool:
        t = type(v)
        if t is float:
            if v != v or v in _INF or (integer and not v.is_integer()):
                return False
        elif t is not int:
            return False
        number: float = v  # an int or a finite float by now (type() checks do not narrow for mypy)
        return lo <= number <= hi and xlo < number < xhi

    return check


_OBJECT_KEYWORDS: Final = frozenset({"type", "required", "properties", "description", "title", "$comment"})


def _object_check(schema: dict[str, Any]) -> ValueCheck:
    """A composite value (a blood-pressure panel): each listed part checked, required ones present."""
    required = tuple(schema.get("required", ()))
    parts = tuple((name, compile_check(sub)) for name, sub in schema.get("properties", {}).items())

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return False
        for name in required:
            if name not in v:
                return False
        for name, part in parts:
            if name in v and not part(v[name]):
                return False
        return all(_is_json_finite(x) for x in v.values())

    return check


def _bounded(compare: Callable[[Any, Any], bool], bound: Any) -> ValueCheck:
    # A bound constrains numbers only; anything else passes it (the type check decides).
    return lambda v: not _is_number(v) or compare(v, bound)


def compile_check(schema: dict[str, Any]) -> ValueCheck:
    """A predicate equivalent to `Draft202012Validator(schema).is_valid` for JSON values."""
    if (
        schema.get("type") == "object"
        and set(schema) <= _OBJECT_KEYWORDS
        and all(isinstance(sub, dict) for sub in schema.get("properties", {}).values())
    ):
        return _object_check(schema)
    if set(schema) <= _FAST_KEYWORDS and "enum" not in schema:
        if schema.get("type") in ("number", "integer"):
            return _number_check(schema, schema["type"] == "integer")
        if schema.get("type") == "boolean" and len(schema) == 1:
            return lambda v: v is True or v is False
    if not set(schema) <= _FAST_KEYWORDS:
        validator = Draft202012Validator(schema)
        return lambda v: _is_json_finite(v) and validator.is_valid(v)
    checks: list[ValueCheck] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        type_checks = [_TYPE_CHECKS[name] for name in names]
        if len(type_checks) == 1:
            checks.append(type_checks[0])
        else:
            checks.append(lambda v: any(check(v) for check in type_checks))
    if "enum" in schema:
        options = schema["enum"]
        checks.append(lambda v: any(_json_equal(v, o) for o in options))
    for keyword, compare in (
        ("minimum", lambda v, b: v >= b),
        ("maximum", lambda v, b: v <= b),
        ("exclusiveMinimum", lambda v, b: v > b),
        ("exclusiveMaximum", lambda v, b: v < b),
    ):
        if keyword in schema:
            bound = schema[keyword]
            checks.append(_bounded(compare, bound))
    if not checks:
        return _is_json_finite
    if len(checks) == 1:
        only = checks[0]
        return lambda v: _is_json_finite(v) and only(v)
    return lambda v: _is_json_finite(v) and all(check(v) for check in checks)


def _json_equal(a: Any, b: Any) -> bool:
    # JSON Schema equality: 1 == 1.0, but true != 1.
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def _is_json_finite(value: Any) -> bool:
    """False for NaN/Infinity anywhere inside the value (they are not JSON)."""
    t = type(value)
    if t is float:
        return math.isfinite(value)
    if t is dict:
        return all(_is_json_finite(v) for v in value.values())
    if t is list:
        return all(_is_json_finite(v) for v in value)
    return True


MAX_PLAIN_CHARS: Final = 256


class PlainPayloadError(ValueError):
    """A state payload that is neither a JSON object nor one plain value; the message says why."""


def plain_value(payload: bytes) -> Any:
    """One value published as it is (`23.5`, `ON`, `open`, `true`), as Tasmota, ESPHome and
    scripts do on a state topic: a JSON scalar as JSON reads it, anything else as trimmed text."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PlainPayloadError("a plain payload must be UTF-8 text") from None
    if not text:
        raise PlainPayloadError("empty payload")
    if len(text) > MAX_PLAIN_CHARS:
        raise PlainPayloadError(f"a plain value of {len(text)} characters (over {MAX_PLAIN_CHARS})")
    if not text.isprintable():
        raise PlainPayloadError(f"{text[:40]!r} has control characters")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if type(value) in (dict, list) or value is None:
        raise PlainPayloadError(f"expected a JSON object or one value, got {type(value).__name__}")
    if type(value) is float and not math.isfinite(value):
        raise PlainPayloadError(f"{text!r} is not a finite number")
    return value
