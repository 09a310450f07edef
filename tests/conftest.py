import os

import pytest
import torch

# Two cores here: keep torch from oversubscribing them when tests run subprocesses too.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

if os.environ.get("STICKERBOT_MUTATION"):
    # `make mutation` (tests/mutation.py sets it) runs the same property tests for every mutant.
    # Fixed inputs, checked on the clean code first, and no example database: a shared one
    # replayed each saved failure against every later mutant, so an input that failed on the
    # clean code too (a real bug, then) "killed" every mutant after it.
    from hypothesis import settings

    settings.register_profile("mutation", database=None, derandomize=True)
    settings.load_profile("mutation")


@pytest.fixture(scope="session")
def tiny_backbone():
    """The builtin architecture with random weights, built from configs in code (no files)."""
    from seal_runtime.models.loader import random_builtin

    backbone = random_builtin(torch.device("cpu"), torch.float32, seed=0)
    backbone.freeze()
    return backbone


@pytest.fixture(scope="session")
def v4_model_dir(tmp_path_factory):
    """A builtin-v4-shaped diffusers folder with random weights (the shipped layout, 128 px)."""
    from seal_runtime.models.builtin_architecture import save_random_v4

    return save_random_v4(tmp_path_factory.mktemp("models") / "builtin-v4-random")


@pytest.fixture(scope="session")
def v4_backbone(v4_model_dir):
    """That folder loaded by the runtime's own loader: the SD-1.5 path, no builtin branch."""
    from seal_runtime.api.config import RuntimeSettings
    from seal_runtime.models.loader import load_backbone

    return load_backbone(RuntimeSettings(device="cpu", model=str(v4_model_dir)))


@pytest.fixture(params=["tiny_backbone", "v4_backbone"])
def each_builtin_backbone(request):
    """SEAL's invariants are checked on both builtin architectures: the pixel model that ships
    today and the latent v4 (the SD 1.5 path), so neither can drift from them unseen."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def sd15_model_dir(tmp_path_factory):
    """A random SD-1.5-shaped diffusers folder (`stickerbot make-test-model`), built once."""
    from seal_runtime.models.sd15_architecture import save_sd15_test_model

    return save_sd15_test_model(tmp_path_factory.mktemp("models") / "sd15-test")


def _start_redis(directory, **options):
    """A real redis-server (benchmarks/redis_server.py). Missing, it fails the test under
    CI=true (the Makefile installs it there) and skips it, saying so, elsewhere."""
    from benchmarks.redis_server import RedisServer, RedisUnavailable

    try:
        return RedisServer(directory, **options).start()
    except RedisUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis tests must run in CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server on a free 127.0.0.1 port, AOF on, in this test's own directory."""
    server = _start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def start_redis(tmp_path):
    """Start redis-servers with options (password, ACL user, TLS): `start_redis(tls=...)`."""
    servers = []

    def start(**options):
        server = _start_redis(tmp_path / f"redis{len(servers)}", **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
