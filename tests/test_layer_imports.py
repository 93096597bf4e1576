"""The bottom of the layers, and the region beside them, import only what they may.

`linli.wire` (the uplink's wire format) and `linli.common` (small shared helpers)
import nothing else of Linli; the regional application, `linli.region`, imports
only those two. Each is imported, every module of it, in a fresh interpreter, so
that nothing an earlier test loaded can hide (or fake) a dependency.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

# Every module of the package, then the names of all Linli modules loaded by doing so.
_PROBE = """
import importlib, pkgutil, sys, orjson
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(orjson.dumps(sorted(name for name in sys.modules if name.split(".")[0] == "linli")).decode())
"""


def linli_modules_loaded_by(package: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, package], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"importing {package} failed:\n{result.stderr}"
    return orjson.loads(result.stdout)


@pytest.mark.parametrize(
    ("package", "may_use"),
    [
        ("linli.wire", ("linli.wire",)),
        ("linli.common", ("linli.common",)),
        ("linli.region", ("linli.region", "linli.wire", "linli.common")),
    ],
)
def test_package_imports_nothing_of_linli_beyond_what_it_may_use(
    package: str, may_use: tuple[str, ...]
) -> None:
    # given a fresh interpreter, when every module of the package is imported
    loaded = linli_modules_loaded_by(package)
    # then the package itself was loaded (the probe saw it) …
    assert package in loaded
    # … and no Linli module outside what it may use: not the gateway, services, adapters or portal
    outside = [
        name
        for name in loaded
        if name != "linli" and not any(name == p or name.startswith(p + ".") for p in may_use)
    ]
    assert outside == [], f"{package} must import only {', '.join(may_use)}; it loaded {outside}"
