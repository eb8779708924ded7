"""How much memory is free, and a check to run before any allocation whose size an input decides.

An input that asks for more than the machine has (a 100000x100000 image size, an npz header claiming
10**12 values, a spec of 10**20 neurons) must end in a one-line error naming it, not in the kernel's
OOM killer or an allocator's traceback, so sizes are computed arithmetically and checked first.
"""

from __future__ import annotations

import decimal
import os
from pathlib import Path

from swarmcnn.errors import SwarmCNNError

_MEMINFO = Path("/proc/meminfo")
# (limit, usage) files of cgroup v2 and v1: a container's limit is lower than what /proc/meminfo shows
_CGROUPS = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)


def available_bytes() -> int:
    """Bytes that can be allocated without swapping: the kernel's MemAvailable, lowered to a container's limit."""
    free = [value for value in (_meminfo_available(), *(_cgroup_left(*files) for files in _CGROUPS)) if value]
    if free:
        return min(free)
    return _sysconf_available() or _psutil_available() or 0


def check_fits(nbytes: int, what: str, error: type[SwarmCNNError] = SwarmCNNError) -> None:
    """Raise error (one line naming what and its size) when nbytes exceed the memory available now."""
    available = available_bytes()
    if available and nbytes > available:
        raise error(f"{what} needs {format_bytes(nbytes)} of memory but only {format_bytes(available)} is available")


def format_bytes(nbytes: int) -> str:
    """'512.0 MB', '3.2 GB', or '1.0E+11 GB' for sizes floats cannot hold (an input can ask for 10**400 bytes)."""
    if nbytes < 10**9:
        return f"{nbytes / 10**6:.1f} MB"
    if nbytes < 10**15:
        return f"{nbytes / 10**9:,.1f} GB"
    return f"{decimal.Decimal(nbytes) / 10**9:.1E} GB"


def _meminfo_available() -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file says kB and means KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_left(limit_file: Path, usage_file: Path) -> int | None:
    try:
        limit, usage = limit_file.read_text().strip(), usage_file.read_text().strip()
        if limit == "max" or int(limit) >= 2**60:  # v1 writes 'no limit' as about 2**63
            return None
        return max(int(limit) - int(usage), 1)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on macOS or Windows
        return None


def _psutil_available() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)
