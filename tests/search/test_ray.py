"""Candidates as Ray tasks: the same search as the local executor, through a real local Ray instance."""

import json

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'swarmcnn[ray]')")

from swarmcnn.cli import main  # noqa: E402

pytestmark = pytest.mark.ray
SEARCH = ["search", "digits", "--strategy", "random", "--evaluations", "5", "--candidate-epochs", "1",
          "--train-fraction", "0.3", "--final-epochs", "1", "--seed", "3", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of two CPUs on the loopback address, started by the test and shut down after it."""
    ray.init(num_cpus=2, num_gpus=0, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _rows(run, capsys) -> list[tuple]:
    assert main(["runs", "show", str(run), "--json", "--top", "100"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = summary["leaderboard"] + summary["promotions"]
    return sorted((r["spec"], r["rung"], round(r["val_accuracy"], 4)) for r in rows), summary


def test_a_search_on_ray_journals_what_the_local_executor_does(local_ray, tmp_path, capsys):
    assert main([*SEARCH, "--out", str(tmp_path / "local")]) == 0
    assert main([*SEARCH, "--executor", "ray", "--cpus-per-trial", "1", "--out", str(tmp_path / "ray")]) == 0
    local, local_summary = _rows(tmp_path / "local", capsys)
    remote, remote_summary = _rows(tmp_path / "ray", capsys)
    assert local == remote  # the same candidates, rungs and scores, each journaled once
    assert remote_summary["evaluations"] == local_summary["evaluations"] == 5
    assert remote_summary["best_spec"] == local_summary["best_spec"]


def test_a_run_started_on_ray_resumes_locally(local_ray, tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*SEARCH, "--executor", "ray", "--out", str(run)]) == 0
    assert main(["search", "--resume", str(run), "--quiet"]) == 0  # finished: nothing to do, either executor
    assert main(["search", "--resume", str(run), "--executor", "ray", "--quiet"]) == 0


def _task_pids() -> list[int]:
    """Processes running a candidate now: Ray titles its workers by the task they run."""
    import subprocess

    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::_evaluate_task" in line]


def test_a_worker_killed_during_its_candidate_is_retried_and_the_candidate_comes_back_once(local_ray, digits):
    import os
    import signal
    import threading
    import time

    from swarmcnn.search.evaluate import EvaluationConfig
    from swarmcnn.search.ray_executor import RayExecutor
    from swarmcnn.spec import Spec
    from swarmcnn.train import Normalization

    executor = RayExecutor(digits, Normalization.of(digits.train.x), max_retries=2)
    jobs = [(Spec.parse(f"conv{n}x3 relu fc32 relu"), EvaluationConfig(epochs=20)) for n in (8, 12)]
    killed = []

    def kill_one():
        deadline = time.time() + 60
        while not killed and time.time() < deadline:
            pids = _task_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    results = list(executor.map(jobs))
    killer.join()
    executor.close()
    assert killed, "no Ray worker was seen running a candidate"
    assert sorted(i for i, _ in results) == [0, 1]  # every candidate once
    assert all(record.ok for _, record in results)  # the killed one was run again
