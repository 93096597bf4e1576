"""The hash-pinned requirements.lock (docs/updating.md) covers every runtime dependency."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_every_runtime_dependency_is_pinned_with_its_hashes_in_the_lock() -> None:
    # given the project's runtime dependencies and the lock an update installs from
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m.group(1).lower().replace("_", "-"): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)
    }
    # then each is in it, pinned, with a hash (run .ci/lock after changing pyproject.toml)
    missing = sorted(_name(r) for r in declared if _name(r) not in pinned)
    assert not missing, f"not in requirements.lock (run .ci/lock): {missing}"
    for name in (_name(r) for r in declared):
        block = lock[lock.index(f"{name}=={pinned[name]}") :].split("\n\n", 1)[0]
        assert "--hash=sha256:" in block, f"{name} has no hash in requirements.lock"
