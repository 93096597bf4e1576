"""The core knows nothing above it: not by import (import-linter, .ci/layers) and not by string."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "gateway"
# A dotted path into a layer above the core (a module named in a string, to be imported later).
ABOVE = re.compile(r"\blinli\.(services|adapters|portal)\.\w|\blinli\.(sim|certify|region|cli|components)\b")


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant except docstrings (prose may say where a thing lives)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.slow
def test_the_core_names_no_module_above_it_even_in_a_string() -> None:
    found = [
        f"{path.relative_to(CORE.parent)}:{line}: {text!r}"
        for path in sorted(CORE.rglob("*.py"))
        for line, text in _strings(ast.parse(path.read_text(), str(path)))
        if ABOVE.search(text)
    ]
    assert not found, (
        "the core names layers above it (give it the name from the composition root):\n" + "\n".join(found)
    )


def test_the_check_sees_a_string_that_names_a_service() -> None:
    tree = ast.parse(
        '"""Docs may say linli.services.alerts."""\nSPEC = "linli.services.alerts:AlertEngine"\n'
    )
    assert [text for _, text in _strings(tree) if ABOVE.search(text)] == ["linli.services.alerts:AlertEngine"]
