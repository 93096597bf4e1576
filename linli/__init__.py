"""Linli (邻里): the smart-community home gateway, installed as one import package.

Everything Linli ships lives under `linli.`: the core (`linli.gateway`), the
adapters, the services and the portal built on it, and — in this folder — the
composition root that puts them together (`linli.cli`, `linli.components`), the
regional application (`linli.region`), the simulated community (`linli.sim`) and
the adapters' conformance kit (`linli.certify`). See docs/architecture.md.

In a source checkout the layers sit beside this folder (gateway/, services/, …)
rather than inside it; the path below makes `linli.gateway` resolve to them, so
that a checkout runs the same as an installed wheel (where they are inside it).
"""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "gateway" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))
