"""Home Assistant `value_template`s as devices ship them, evaluated in a sandbox.

Devices announce how to read their payloads as Jinja2 templates
(`{{ value_json.ENERGY.Power }}`, `{{ value | float | round(1) }}`,
`{{ 'ON' if value_json.state == 1 else 'OFF' }}`). A template is text from the
network: it is compiled once, checked before it ever runs, and rendered in
Jinja2's ImmutableSandboxedEnvironment (as Home Assistant does) with:

* only `value` (the payload as text) and `value_json` (the payload parsed) in
  scope — no globals (`range`, `cycler`, `namespace`, `lipsum`, `dict` …);
* the filters and tests found in device templates, nothing else;
* no statements that repeat or reach outside (`for`, `macro`, `call`,
  `include`, `import`, `extends`);
* no attribute or key that starts with `_` (`__class__`, `__globals__` …),
  and no method calls but a few harmless string/dict ones;
* limits on template length, payload size, output size, string/list
  repetition and powers, and the time a render may take.

A template refused by these checks, or one that a render finds reaching for
something else (a `SecurityError`), is *refused for good*: it never renders
anything again, and its reason says why. A template that merely fails on one
payload (`'unavailable' | float`) raises `TemplateFailed` for that payload.
A missing field (`value_json.battery` on a payload without it) is not an error:
the template's value is `MISSING`, i.e. "not reported this time".
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any, Final

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing as _jinja_missing

MAX_TEMPLATE_CHARS: Final = 4096
MAX_PAYLOAD_BYTES: Final = 65536
#: Home Assistant keeps at most 255 characters of a state; a little room for attributes.
MAX_OUTPUT_CHARS: Final = 4096
#: The largest string or list an expression may build (`'a' * n`, `[0] * n`).
MAX_SEQUENCE: Final = 4096
MAX_EXPONENT: Final = 64
MAX_INT_BITS: Final = 4096
MAX_RENDER_S: Final = 0.05
MAX_CACHED: Final = 4096

MISSING: Final = object()  # the template read a field the payload does not have

SCOPE: Final = frozenset({"value", "value_json"})

_FORBIDDEN_NODES: Final[dict[type[nodes.Node], str]] = {
    nodes.For: "loops ({% for %})",
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.Scope: "scopes",
    nodes.OverlayScope: "scopes",
    nodes.EvalContextModifier: "{% autoescape %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
}

#: Methods a template may call on a value (all read-only, output bounded by their input).
_SAFE_METHODS: Final = frozenset(
    {"get", "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "title"}
)


class TemplateRefused(ValueError):
    """A template that will never be rendered; the message says why."""


class TemplateFailed(ValueError):
    """A template that could not render one payload; the message says why."""


def _ha_number(cast: Callable[[Any], Any], name: str) -> Callable[..., Any]:
    # Home Assistant's `float`/`int`: an unconvertible value is an error unless a default is given
    # (Jinja's own filters silently answer 0, which would report a false reading).
    def convert(value: Any, default: Any = _jinja_missing, base: int = 10) -> Any:
        if isinstance(value, Undefined) and default is _jinja_missing:
            raise UndefinedError(f"{name}: the value is not in this payload")
        try:
            if cast is int and isinstance(value, str) and base != 10:
                return int(value, base)
            result = cast(float(value)) if cast is int and isinstance(value, str) else cast(value)
        except (ValueError, TypeError, OverflowError, UndefinedError):
            if default is not _jinja_missing:
                return default
            raise TemplateFailed(f"{name}: cannot convert {str(value)[:40]!r} to a number") from None
        if isinstance(result, float) and not math.isfinite(result):
            if default is not _jinja_missing:
                return default
            raise TemplateFailed(f"{name}: {result} is not a finite number")
        return result

    return convert


def _ha_round(value: Any, precision: int = 0, method: str = "common", default: Any = _jinja_missing) -> Any:
    if isinstance(value, Undefined) and default is _jinja_missing:
        raise UndefinedError("round: the value is not in this payload")
    try:
        number = float(value)
    except (ValueError, TypeError, UndefinedError):
        if default is not _jinja_missing:
            return default
        raise TemplateFailed(f"round: cannot convert {str(value)[:40]!r} to a number") from None
    if not isinstance(precision, int) or not 0 <= precision <= 15:
        raise TemplateFailed(f"round: precision {precision!r} is not 0-15")
    if method == "floor":
        factor = 10**precision
        return math.floor(number * factor) / factor
    if method == "ceil":
        factor = 10**precision
        return math.ceil(number * factor) / factor
    return round(number, precision) if precision else float(round(number))


def _is_defined(value: Any) -> Any:
    # Home Assistant's `is_defined`: fail (here: "not reported") when the value is undefined.
    if isinstance(value, Undefined):
        raise UndefinedError("is_defined: the value is not defined")
    return value


def _bool(value: Any, default: Any = _jinja_missing) -> Any:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "enable"):
        return True
    if text in ("0", "false", "no", "off", "disable", "none"):
        return False
    if default is not _jinja_missing:
        return default
    raise TemplateFailed(f"bool: {str(value)[:40]!r} is not a boolean")


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple | bytes) else None


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with repetition and powers bounded and almost no calls."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                size = _sized(seq)
                if size is not None and isinstance(count, int) and size * count > MAX_SEQUENCE:
                    raise SecurityError(f"repeating a sequence {count} times (over {MAX_SEQUENCE} items)")
        elif operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"a power of {right} (over {MAX_EXPONENT})")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() * abs(right) > MAX_INT_BITS
            ):
                raise SecurityError(f"a power with over {MAX_INT_BITS} bits")
        elif operator == "+":
            left_size, right_size = _sized(left), _sized(right)
            if (
                left_size is not None
                and right_size is not None
                and left_size + right_size > MAX_PAYLOAD_BYTES
            ):
                raise SecurityError("concatenating past the payload size")
        return super().call_binop(context, operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_"):
            return False
        if callable(value):
            return attr in _SAFE_METHODS and isinstance(obj, str | dict)
        return bool(super().is_safe_attribute(obj, attr, value))

    def is_safe_callable(self, obj: Any) -> bool:
        name = getattr(obj, "__name__", "")
        return name in _SAFE_METHODS and type(getattr(obj, "__self__", None)) in (str, dict)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `value_json.update.state` (Zigbee2MQTT's OTA field) means the payload's key, not
        # dict.update: for JSON objects the key wins over the method of the same name.
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _environment() -> _Sandbox:
    env = _Sandbox(autoescape=False, auto_reload=False, cache_size=0, undefined=StrictUndefined)
    env.globals.clear()
    builtin = env.filters
    env.filters = {
        "float": _ha_number(float, "float"),
        "int": _ha_number(int, "int"),
        "round": _ha_round,
        "is_defined": _is_defined,
        "bool": _bool,
        "default": builtin["default"],
        "d": builtin["default"],
        "lower": builtin["lower"],
        "upper": builtin["upper"],
        "capitalize": builtin["capitalize"],
        "title": builtin["title"],
        "trim": builtin["trim"],
        "string": builtin["string"],
        "abs": builtin["abs"],
        "length": builtin["length"],
        "count": builtin["count"],
        "first": builtin["first"],
        "last": builtin["last"],
        "min": builtin["min"],
        "max": builtin["max"],
        "tojson": builtin["tojson"],
        "to_json": builtin["tojson"],
    }
    env.tests = {
        name: env.tests[name]
        for name in (
            "defined",
            "undefined",
            "none",
            "number",
            "string",
            "mapping",
            "sequence",
            "boolean",
            "true",
            "false",
            "integer",
            "float",
            "in",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "==",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "equalto",
            "lessthan",
            "greaterthan",
            "odd",
            "even",
            "lower",
            "upper",
        )
        if name in env.tests
    }
    return env


_ENV: Final = _environment()


def _static_problem(tree: nodes.Template) -> str | None:
    """Why the parsed template may never run, or None."""
    # What it reaches for comes first: that is the more telling reason.
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(access, nodes.Getattr) and access.attr.startswith("_"):
            return f"reaches for attribute {access.attr!r}"
        if isinstance(access, nodes.Getitem) and isinstance(access.arg, nodes.Const):
            if isinstance(access.arg.value, str) and access.arg.value.startswith("_"):
                return f"reaches for item {access.arg.value!r}"
    try:
        unknown = sorted(find_undeclared_variables(tree) - SCOPE)
    except TemplateError:  # an unknown filter or test: named by the checks below
        unknown = sorted({n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"} - SCOPE)
    if unknown:
        names = ", ".join(repr(n) for n in unknown[:5])
        return f"reaches for {names}: only value and value_json are available"
    for node in tree.find_all(nodes.Node):
        kind = type(node)
        if kind in _FORBIDDEN_NODES:
            return f"uses {_FORBIDDEN_NODES[kind]}, which value templates may not"
        if isinstance(node, nodes.Filter) and node.name not in _ENV.filters:
            return (
                f"uses filter {node.name!r}, which is not available ({', '.join(sorted(_ENV.filters))} are)"
            )
        if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
            return f"uses test {node.name!r}, which is not available"
        if isinstance(node, nodes.Call):
            target = node.node
            if not (isinstance(target, nodes.Getattr) and target.attr in _SAFE_METHODS):
                return "calls a function; only value and value_json (and a few string methods) are available"
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                return "calls with *args/**kwargs"
    return None


class ValueTemplate:
    """One compiled template (shared by every device that announced the same text)."""

    __slots__ = ("_template", "refused", "source")

    def __init__(self, source: str, template: Any) -> None:
        self.source = source
        self._template = template
        self.refused: str | None = None  # set for good when a render reaches outside the sandbox

    def render(self, value: str, value_json: Any = MISSING) -> Any:
        """The template's text for one payload; `MISSING` if it read a field that is absent.

        `value` is the payload as text, `value_json` the payload parsed (MISSING: not JSON).
        Raises TemplateRefused (for good) or TemplateFailed (this payload).
        """
        if self.refused is not None:
            raise TemplateRefused(self.refused)
        if len(value) > MAX_PAYLOAD_BYTES:
            raise TemplateFailed(
                f"payload of {len(value)} characters is over {MAX_PAYLOAD_BYTES} for a template"
            )
        scope: dict[str, Any] = {"value": value}
        if value_json is not MISSING:
            scope["value_json"] = value_json
        started = time.perf_counter()
        try:
            parts: list[str] = []
            size = 0
            for chunk in self._template.generate(scope):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"output over {MAX_OUTPUT_CHARS} characters")
                parts.append(chunk)
        except UndefinedError:
            return MISSING
        except SecurityError as exc:
            self.refused = f"template reaches outside its sandbox: {exc}"
            raise TemplateRefused(self.refused) from None
        except TemplateFailed:
            raise
        except RecursionError:
            self.refused = "template nests too deeply (recursion limit)"
            raise TemplateRefused(self.refused) from None
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
            raise TemplateFailed(f"template failed: {type(exc).__name__}: {str(exc)[:120]}") from None
        elapsed = time.perf_counter() - started
        if elapsed > MAX_RENDER_S:
            self.refused = (
                f"template took {elapsed * 1000:.0f} ms to render (limit {MAX_RENDER_S * 1000:.0f} ms)"
            )
            raise TemplateRefused(self.refused)
        text = "".join(parts)
        return text.strip()


@functools.lru_cache(maxsize=MAX_CACHED)
def _compile(source: str) -> ValueTemplate | str:
    if len(source) > MAX_TEMPLATE_CHARS:
        return f"template of {len(source)} characters is over the {MAX_TEMPLATE_CHARS}-character limit"
    try:
        tree = _ENV.parse(source)
    except TemplateError as exc:
        return f"template does not parse: {str(exc)[:160]}"
    except RecursionError:
        return "template nests too deeply to parse"
    problem = _static_problem(tree)
    if problem is not None:
        return f"template {problem}"
    try:
        return ValueTemplate(source, _ENV.from_string(tree))
    except (TemplateError, RecursionError) as exc:
        return f"template does not compile: {str(exc)[:160]}"


def compile_template(source: str) -> ValueTemplate:
    """The compiled template for `source` (cached); TemplateRefused if it may never run."""
    if not isinstance(source, str):
        raise TemplateRefused(f"template must be text, not {type(source).__name__}")
    compiled = _compile(source)
    if isinstance(compiled, str):
        raise TemplateRefused(compiled)
    return compiled


def render(source: str, value: str, value_json: Any = MISSING) -> Any:
    """Compile (cached) and render once: the text, or MISSING; TemplateRefused / TemplateFailed."""
    return compile_template(source).render(value, value_json)
