"""Free cores from the load of other processes, and the governor that keeps PyTorch's threads at them."""

from __future__ import annotations

import pytest

from swarmcnn import cores
from swarmcnn.cores import CpuSample, ThreadGovernor, available_cores, free_cores, other_load

on_linux = pytest.mark.skipif(cores.sample().busy is None, reason="the load of other processes is read on Linux")


def test_every_core_is_free_when_the_load_is_unknown():
    assert free_cores(None, 6) == 6
    assert free_cores(None) == available_cores()


def test_free_cores_never_drop_below_one():
    assert free_cores(4.0, 4) == 1
    assert free_cores(50.0, 4) == 1


def test_free_cores_never_exceed_the_cores():
    assert free_cores(0.0, 4) == 4
    assert free_cores(-2.0, 4) == 4


@pytest.mark.parametrize("load,free", [(0.4, 4), (0.6, 3), (1.4, 3), (1.6, 2), (2.9, 1)])
def test_free_cores_round_to_the_nearest_core(load, free):
    assert free_cores(load, 4) == free


def test_other_load_is_busy_time_less_own_time_over_wall_time():
    since = CpuSample(wall=10.0, busy=100.0, own=5.0)
    now = CpuSample(wall=12.0, busy=104.0, own=6.0)
    assert other_load(since, now) == pytest.approx(1.5)  # (4 busy - 1 own) / 2 s


def test_other_load_is_none_where_busy_time_is_unknown():
    known = CpuSample(wall=10.0, busy=100.0, own=5.0)
    unknown = CpuSample(wall=12.0, busy=None, own=6.0)
    assert other_load(known, unknown) is None
    assert other_load(unknown, CpuSample(wall=14.0, busy=104.0, own=6.0)) is None


def test_other_load_is_none_without_time_passing():
    at = CpuSample(wall=10.0, busy=100.0, own=5.0)
    assert other_load(at, CpuSample(wall=10.0, busy=101.0, own=5.0)) is None


def test_other_load_is_never_negative():
    # this process's own time counts its threads on every core, and can outrun the busy time read from /proc/stat
    assert other_load(CpuSample(10.0, 100.0, 5.0), CpuSample(11.0, 100.5, 7.0)) == 0.0


def _governor(cores: int) -> tuple[ThreadGovernor, list[int]]:
    calls: list[int] = []
    return ThreadGovernor(cores=cores, set_threads=calls.append), calls


def _idle_since_long_ago() -> CpuSample:
    """A mark so far back that any busy time since it is no load at all."""
    now = cores.sample()
    return CpuSample(now.wall - 1e6, now.busy, now.own)


def _fully_loaded_for_a_second() -> CpuSample:
    """A mark one second back with a million seconds of other processes' CPU time since."""
    now = cores.sample()
    return CpuSample(now.wall - 1.0, None if now.busy is None else now.busy - 1e6, now.own)


def test_governor_sets_the_threads_at_start():
    governor, calls = _governor(3)
    assert calls == [governor.threads]
    assert 1 <= governor.threads <= 3


@on_linux
def test_governor_sets_the_threads_again_only_when_the_free_cores_change():
    governor, calls = _governor(3)
    governor.mark = _idle_since_long_ago()
    assert governor.update() == 3
    assert governor.threads == 3 and calls[-1] == 3
    made = len(calls)
    governor.mark = _idle_since_long_ago()
    assert governor.update() == 3
    assert len(calls) == made  # unchanged: not set again
    governor.mark = _fully_loaded_for_a_second()
    assert governor.update() == 1
    assert calls[made:] == [1]
    governor.mark = _fully_loaded_for_a_second()
    assert governor.update() == 1
    assert calls[made:] == [1]


def test_governor_gives_every_core_when_the_load_is_unknown():
    governor, calls = _governor(2)
    governor.mark = CpuSample(wall=0.0, busy=None, own=0.0)
    assert governor.update() == 2
    assert governor.threads == 2 and calls[-1] == 2


def test_governor_measures_the_next_update_from_this_one():
    governor, _ = _governor(2)
    governor.mark = _fully_loaded_for_a_second()
    before = cores.sample()
    governor.update()
    assert governor.mark.wall >= before.wall
