import warnings

import pytest
import torch

# PyTorch notes once per process that even feature sizes with padding='same' pad a copy; not a problem here.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """Tests run on small data: more threads than cores only adds contention."""
    torch.set_num_threads(min(2, torch.get_num_threads()))


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
