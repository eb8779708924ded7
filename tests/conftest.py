import warnings

import pytest
import torch

# PyTorch notes once per process that even feature sizes with padding='same' pad a copy; not a problem here.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests train tiny networks: one thread per process is as fast, and on a busy 2-core machine two OpenMP
    threads that wait on each other made a search twenty times slower (measured: 6 s against 125 s)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from swarmcnn.data import load_data

    return load_data("digits")


@pytest.fixture(scope="session")
def digits_model_dir(tmp_path_factory):
    """A small model trained on digits through the CLI, shared by the checkpoint and CLI tests."""
    from swarmcnn.cli import main

    out = tmp_path_factory.mktemp("models") / "digits"
    assert (
        main(
            [
                "train",
                "digits",
                "--arch",
                "conv8x3 relu maxpool2 fc32 relu",
                "--epochs",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out
