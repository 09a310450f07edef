import os

import pytest
import torch

# Two cores here: keep torch from oversubscribing them when tests run subprocesses too.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_backbone():
    """The builtin architecture with random weights, built from configs in code (no files)."""
    from seal_runtime.models.loader import random_builtin

    backbone = random_builtin(torch.device("cpu"), torch.float32, seed=0)
    backbone.freeze()
    return backbone


@pytest.fixture(scope="session")
def sd15_model_dir(tmp_path_factory):
    """A random SD-1.5-shaped diffusers folder (`stickerbot make-test-model`), built once."""
    from seal_runtime.models.sd15_architecture import save_sd15_test_model

    return save_sd15_test_model(tmp_path_factory.mktemp("models") / "sd15-test")
