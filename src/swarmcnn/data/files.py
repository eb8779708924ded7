"""Only regular files are read: opening a FIFO blocks until a writer comes, a device may never end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from swarmcnn.errors import DataError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular_file(path: str | Path, what: str = "file") -> None:
    """Refuse, naming path, anything but a regular file (or a link to one) before it is opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"cannot read {what} '{path}': no such file") from None
    except OSError as error:
        raise DataError(f"cannot read {what} '{path}': {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise DataError(f"cannot read {what} '{path}': it is {kind}; only regular files are read")
