"""How much memory is free, and a check to run before any allocation whose size an input decides.

An input that asks for more than the machine has (a 100000x100000 image size, an npz header claiming
10**12 values, a spec of 10**20 neurons) must end in a one-line error naming it, not in the kernel's
OOM killer or an allocator's traceback, so sizes are computed arithmetically and checked first. What is
free is what this process may still have: the machine's memory, lowered to a container's limit (cgroups), to
the process's address-space limit (RLIMIT_AS: `prlimit --as`, `ulimit -v`, a cluster job's memory limit) and,
for a CUDA device, to the device's free memory. An allocation that fails all the same (the checks are
estimates) ends in one line too, with the size asked for (`allocating`, `allocation_failure`).
"""

from __future__ import annotations

import contextlib
import decimal
import os
import re
from collections.abc import Iterator
from pathlib import Path

from swarmcnn.errors import SwarmCNNError

_MEMINFO = Path("/proc/meminfo")
_STATUS = Path("/proc/self/status")
# (limit, usage) files of cgroup v2 and v1: a container's limit is lower than what /proc/meminfo shows
_CGROUPS = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)


def available_bytes(device=None) -> int:
    """Bytes this process can allocate without swapping: the kernel's MemAvailable, lowered to a container's limit
    and to what RLIMIT_AS leaves it; on a CUDA device (a torch.device or its name), also to the device's free
    memory. 0 where nothing can be measured."""
    sources = (_meminfo_available(), *(_cgroup_left(*files) for files in _CGROUPS), address_space_left())
    free = [value for value in sources if value]
    host = min(free) if free else _sysconf_available() or _psutil_available() or 0
    device_free = cuda_free_bytes(device)
    return min(value for value in (host, device_free) if value) if host or device_free else 0


def check_fits(nbytes: int, what: str, error: type[SwarmCNNError] = SwarmCNNError, device=None) -> None:
    """Raise error (one line naming what and its size) when nbytes exceed the memory available now (on device,
    where it is a CUDA device)."""
    available = available_bytes() if device is None else available_bytes(device)
    if available and nbytes > available:
        raise error(f"{what} needs {format_bytes(nbytes)} of memory but only {format_bytes(available)} is available")


def address_space_left(limit: int | None = None, mapped: int | None = None) -> int | None:
    """What RLIMIT_AS leaves this process: its soft limit less the address space it maps now (VmSize); None
    without a limit. limit and mapped: the values to use instead of this process's own (for tests)."""
    limit = _address_space_limit() if limit is None else limit
    if limit is None:
        return None
    mapped = (_vm_size() or 0) if mapped is None else mapped
    return max(limit - mapped, 1)


def cuda_free_bytes(device) -> int | None:
    """The free memory of a CUDA device (torch.cuda.mem_get_info); None for any other device, or None given."""
    if device is None or not str(device).startswith("cuda"):
        return None
    import torch

    try:
        free, _ = torch.cuda.mem_get_info(torch.device(device))
    except (RuntimeError, AssertionError, ValueError):  # no CUDA here: resolve_device refuses such a device first
        return None
    return int(free)


# what allocators say when they fail: PyTorch's CPU allocator and CUDA caching allocator, NumPy's MemoryError
_ALLOCATION_WORDS = ("can't allocate memory", "out of memory", "cannot allocate memory", "unable to allocate")
_ASKED = re.compile(r"allocate (\d+(?:\.\d+)?) ?(bytes|B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\b", re.IGNORECASE)
_UNITS = {"bytes": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6,
          "gb": 10**9, "tb": 10**12}


def allocation_failure(error: BaseException, doing: str = "computing", device=None) -> SwarmCNNError | None:
    """The one-line error for an allocator that refused memory (MemoryError, torch.OutOfMemoryError, PyTorch's
    "can't allocate memory" RuntimeError), with the size asked for where the message gives it; None for any
    other error. doing: what failed ("training", "predicting"), as the line says it; device: where."""
    words = str(error).lower()
    if not isinstance(error, MemoryError) and not any(w in words for w in _ALLOCATION_WORDS):
        return None
    asked = asked_bytes(str(error))
    size = f" of {format_bytes(asked)}" if asked is not None else ""
    left = available_bytes(device)
    free = f" ({format_bytes(left)} available to this process now)" if left else ""
    return SwarmCNNError(
        f"out of memory while {doing}: an allocation{size} failed{free}; try a smaller network, --batch-size or "
        "--image-size"
    )


def asked_bytes(message: str) -> int | None:
    """The size an allocator's message says was asked for: 'you tried to allocate 6912000000 bytes', 'Tried to
    allocate 2.00 GiB', 'Unable to allocate 6.44 GiB for an array'."""
    found = _ASKED.search(message)
    return None if found is None else round(float(found[1]) * _UNITS[found[2].lower()])


@contextlib.contextmanager
def allocating(doing: str, device=None) -> Iterator[None]:
    """Turn an allocator's failure inside the block (on device) into allocation_failure's one-line error."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:  # torch.OutOfMemoryError is a RuntimeError
        failure = allocation_failure(error, doing, device)
        if failure is None:
            raise
        raise failure from None


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


def _address_space_limit() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY or soft < 0 else soft


def _vm_size() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024  # kB, meaning KiB
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
