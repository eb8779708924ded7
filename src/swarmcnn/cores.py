"""How many CPU cores this process may use, and how many of them other processes keep busy.

PyTorch's intra-op threads wait on each other at every operation, so one thread on a core that another
process holds slows all of them: on 2 cores with one taken by another process, a small VGG-style net
trained at 573 images/s with 2 threads and at 911 with 1 (measured with benchmarks/train_throughput.py's
networks). Giving PyTorch no more threads than there are free cores is worth more than any other setting.

The load of other processes is read from /proc/stat (Linux): the busy time of this process's cores less
this process's own CPU time, over an interval. Elsewhere nothing is known and every core counts as free.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def available_cores() -> int:
    """The cores this process may run on (its affinity, as a container or `taskset` sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class CpuSample:
    wall: float
    busy: float | None  # seconds of CPU time spent on this process's cores since boot; None off Linux
    own: float  # this process's CPU time (all its threads)


def sample() -> CpuSample:
    return CpuSample(time.monotonic(), _busy_seconds(), time.process_time())


def other_load(since: CpuSample, now: CpuSample | None = None) -> float | None:
    """Cores other processes kept busy between two samples (0.0 .. cores); None where unknown."""
    now = now or sample()
    wall = now.wall - since.wall
    if since.busy is None or now.busy is None or wall <= 0:
        return None
    return max(0.0, (now.busy - since.busy - (now.own - since.own)) / wall)


def free_cores(load: float | None, cores: int | None = None) -> int:
    """Cores left for PyTorch when other processes keep `load` cores busy: at least one."""
    cores = cores or available_cores()
    if load is None:
        return cores
    return max(1, min(cores, round(cores - load)))


def _busy_seconds() -> float | None:
    """Non-idle CPU seconds since boot summed over this process's cores, from /proc/stat."""
    try:
        with open("/proc/stat") as file:
            lines = file.read().splitlines()
        cores = os.sched_getaffinity(0)
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
            continue
        user, nice, system, idle, iowait, *rest = (int(v) for v in values)
        busy += user + nice + system + sum(rest[:3])  # irq, softirq, steal; not idle or iowait
    return busy / ticks


class ThreadGovernor:
    """Keeps PyTorch's threads at the cores other processes leave free, re-measured after each piece of work.

    One instance per process that trains; `update()` after a candidate looks at the load over its training.
    """

    def __init__(self, cores: int | None = None, set_threads=None) -> None:
        import torch

        self.cores = cores or available_cores()
        self.set_threads = set_threads or torch.set_num_threads
        self.threads = measured_free_cores_of(self.cores)
        self.set_threads(self.threads)
        self.mark = sample()

    def update(self) -> int:
        """Set the threads to the free cores over the interval since the last update; returns them."""
        now = sample()
        free = free_cores(other_load(self.mark, now), self.cores)
        self.mark = now
        if free != self.threads:
            self.threads = free
            self.set_threads(free)
        return free


def measured_free_cores_of(cores: int, seconds: float = 0.25) -> int:
    """Free cores of `cores`, measured over a short idle wait (before any work starts)."""
    start = sample()
    time.sleep(seconds)
    return free_cores(other_load(start), cores)
