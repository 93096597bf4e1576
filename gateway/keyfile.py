"""Small secrets kept beside the database, not in it.

A pepper (a key mixed into a hash) only helps if it is not stolen with the
hashes: so it lives in its own file under `<data_dir>/secrets/`, readable by the
gateway's user alone. A database copied off the machine, a backup of `linli.db`
or a leaked export then holds hashes that cannot be brute-forced without it.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

_LOGGER = logging.getLogger(__name__)


def load_or_create(path: Path, nbytes: int = 32) -> tuple[bytes, bool]:
    """The secret in `path` (created, mode 0600, when missing); and whether it was just created.

    Blocking file I/O: call it from a worker thread when the event loop runs.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            _LOGGER.warning(
                "%s can be read by other users (mode %o): run `chmod 600 %s`", path, mode & 0o777, path
            )
        secret = path.read_bytes()
        if len(secret) < 16:
            raise ValueError(
                f"{path} holds {len(secret)} bytes, too short for a secret: restore it from the "
                "backup of this data folder, or delete it to make a new one (PINs must then be set again)"
            ) from None
        return secret, False
    secret = secrets.token_bytes(nbytes)
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
        out.flush()
        os.fsync(out.fileno())
    return secret, True
