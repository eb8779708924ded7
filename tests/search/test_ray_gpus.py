"""--gpus-per-trial is honoured by Ray's scheduling: GPUs declared to a local Ray instance pack the candidates."""

import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'swarmcnn[ray]')")

from swarmcnn.search.evaluate import EvaluationConfig  # noqa: E402
from swarmcnn.search.ray_executor import RayExecutor  # noqa: E402
from swarmcnn.spec import Spec  # noqa: E402
from swarmcnn.train import Normalization  # noqa: E402
from tests.search.test_ray import _task_pids  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def one_fake_gpu():
    """Ray told of one GPU that is not there (resources are only counted): enough to see the packing."""
    ray.init(num_cpus=2, num_gpus=1, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _most_side_by_side(executor, jobs) -> int:
    most, done = 0, threading.Event()

    def watch():
        nonlocal most
        while not done.is_set():
            most = max(most, len(_task_pids()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        records = [record for _, record in executor.map(jobs)]
    finally:
        done.set()
        watcher.join()
    assert all(record.ok for record in records)
    return most


@pytest.mark.parametrize("gpus, side_by_side", [(1.0, 1), (0.5, 2)])
def test_candidates_are_packed_by_their_share_of_a_gpu(one_fake_gpu, digits, gpus, side_by_side):
    executor = RayExecutor(digits, Normalization.of(digits.train.x), cpus=1, gpus=gpus)
    config = EvaluationConfig(epochs=6, device="cpu")
    jobs = [(Spec.parse(f"conv{n}x3 relu fc32 relu"), config) for n in (8, 9, 10, 11)]
    assert _most_side_by_side(executor, jobs) == side_by_side
