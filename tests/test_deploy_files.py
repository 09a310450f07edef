"""Static checks of deploy/ (no Docker engine or systemd here): the files parse, and every
service, command, setting, port and path they name exists in this repository."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from adapters.cli.commands import build_parser
from bot.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ROOT = DEPLOY.parent


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def assert_stickerbot_command(argv: list[str]):
    args = build_parser().parse_args(argv)  # exits (SystemExit) on an unknown command or flag
    assert callable(args.func)
    return args


def assert_known_settings(environ: dict[str, str]):
    """Every STICKERBOT_<SECTION>__<FIELD> names a real setting, and the values load."""
    sections = {name: set(getattr(Settings(), name).__dataclass_fields__) for name in Settings.__dataclass_fields__}
    for key in environ:
        if key.startswith("STICKERBOT_"):
            section, _, field = key[len("STICKERBOT_"):].lower().partition("__")
            assert section in sections and field in sections[section], key
    return load_settings(environ={**environ, "STICKERBOT_CONFIG": ""})


def test_compose_has_bot_and_runtime_sharing_a_volume_with_a_gpu_for_the_runtime(compose):
    services = compose["services"]
    assert set(services) == {"bot", "runtime"}
    volume = next(iter(compose["volumes"]))
    for service in services.values():
        assert any(str(v).startswith(f"{volume}:") for v in service["volumes"])
        assert service["image"] == services["runtime"]["image"]
    devices = services["runtime"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in services["bot"]  # the bot needs no GPU
    assert services["runtime"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["runtime"]["build"]["context"] / "deploy" / "Dockerfile").exists()


def test_compose_commands_exist_and_the_bot_finds_the_runtime(compose):
    runtime = compose["services"]["runtime"]
    bot = compose["services"]["bot"]
    runtime_args = assert_stickerbot_command(runtime["command"])
    bot_args = assert_stickerbot_command(bot["command"])
    assert runtime_args.command == "runtime" and bot_args.command == "run" and bot_args.no_runtime
    url = bot["environment"]["STICKERBOT_GENERAL__RUNTIME_URL"]
    assert url == f"http://runtime:{runtime_args.port}" and str(runtime_args.port) in runtime["expose"]
    assert f":{runtime_args.port}/healthz" in " ".join(runtime["healthcheck"]["test"])
    assert f":{Settings().general.health_port}/healthz" in " ".join(bot["healthcheck"]["test"])
    # The runtime leaves loopback inside the network, so the shared secret must be configured.
    assert runtime_args.host == "0.0.0.0" and "STICKERBOT_RUNTIME__SHARED_SECRET" in env_example()
    assert "ports" not in runtime  # not published on the host
    grace = float(bot_args.grace)
    assert int(bot["stop_grace_period"].rstrip("s")) > grace  # SIGKILL only after the grace
    for service in (runtime, bot):
        assert_known_settings({k: str(v) for k, v in service.get("environment", {}).items()})
        assert service["env_file"] == ".env"


def test_env_example_names_only_real_settings_and_loads():
    environ = env_example()
    settings = assert_known_settings(environ)
    assert settings.general.adapters == ("telegram",)
    assert "TELEGRAM_BOT_TOKEN" in environ and "DISCORD_BOT_TOKEN" in environ
    assert all(not environ[k] for k in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN",
                                        "STICKERBOT_RUNTIME__SHARED_SECRET"))  # no secret ships


def test_dockerfile_copies_existing_packages_and_runs_stickerbot():
    text = (DEPLOY / "Dockerfile").read_text()
    sources = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ")]
    assert sources and all((ROOT / s).exists() for s in sources)
    pyproject = (ROOT / "pyproject.toml").read_text()
    for package in ("bot", "adapters", "seal_runtime", "storage", "benchmarks"):
        assert package in sources and f'"{package}*"' in pyproject
    assert re.search(r'^stickerbot = "adapters\.cli\.commands:main"', pyproject, re.M)
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))
    assert entry == ["stickerbot"]
    assert_stickerbot_command(cmd)
    assert re.search(r"^USER stickerbot$", text, re.M)  # not root
    assert 'torch==${TORCH_VERSION}' in text and "ARG TORCH_VERSION=2.13.0" in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".env" in ignore and ".venv" in ignore and "*.sqlite" in ignore


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key, value))
    return sections


@pytest.mark.parametrize("name,command", [("stickerbot-runtime.service", "runtime"),
                                          ("stickerbot-bot.service", "run")])
def test_systemd_units_run_existing_commands_and_restart(name, command):
    unit = _unit(DEPLOY / "systemd" / name)
    assert {"Unit", "Service", "Install"} <= set(unit)
    service = dict(unit["Service"])
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/stickerbot")
    args = assert_stickerbot_command(argv[1:])
    assert args.command == command
    assert service["Restart"] == "always" and service["User"] == "stickerbot"
    assert service["EnvironmentFile"] == "/etc/stickerbot/stickerbot.env"
    environment = dict(v.split("=", 1) for k, v in unit["Service"] if k == "Environment")
    assert_known_settings(environment)
    if command == "runtime":
        assert args.host == "127.0.0.1"
    else:
        assert args.no_runtime and "stickerbot-runtime.service" in dict(unit["Unit"])["After"]
        assert float(service["TimeoutStopSec"]) > args.grace
        assert environment["STICKERBOT_TELEGRAM__TOKEN_FILE"].startswith("%d/")  # a credential file


def _compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_a_gpu_box_pairs_one_runtime_with_one_gpu_worker_per_gpu_id():
    services = _compose("docker-compose.gpu.yml")["services"]
    runtimes = sorted(name for name in services if name.startswith("runtime-gpu"))
    assert runtimes and set(services) == set(runtimes) | {n.replace("runtime-", "gpu-worker-") for n in runtimes}
    for index, name in enumerate(runtimes):
        gpu = name.removeprefix("runtime-gpu")
        runtime, worker = services[name], services[f"gpu-worker-gpu{gpu}"]
        devices = runtime["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "device_ids": [gpu], "capabilities": ["gpu"]}]
        assert gpu == str(index)  # gpu ids 0, 1, … once each
        runtime_args = assert_stickerbot_command(runtime["command"])
        worker_args = assert_stickerbot_command(worker["command"])
        assert runtime_args.command == "runtime" and runtime_args.host == "0.0.0.0"
        assert worker_args.command == "gpu-worker"
        assert worker_args.runtime == f"http://{name}:{runtime_args.port}"  # its own runtime, no other
        assert worker_args.id.endswith(f"-gpu{gpu}") and name in worker["depends_on"]
        assert int(worker["stop_grace_period"].rstrip("s")) > worker_args.grace
        assert "deploy" not in worker  # the worker itself needs no GPU
        assert_known_settings({k: str(v) for k, v in runtime["environment"].items()})
        assert set(worker["environment"]) == {"STICKERBOT_GENERAL__REDIS_URL"}
    ids = [assert_stickerbot_command(services[n]["command"]).id for n in services if n.startswith("gpu-worker")]
    assert len(set(ids)) == len(ids)


def test_the_scale_box_runs_redis_with_aof_and_a_limited_user_and_the_bot_on_the_redis_queue():
    compose = _compose("docker-compose.scale.yml")
    assert compose["include"] == ["docker-compose.gpu.yml"]
    services = compose["services"]
    assert set(services) == {"redis", "bot"}
    redis = services["redis"]["command"]
    assert redis[:5] == ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec"]
    assert redis[redis.index("default") + 1] == "off" and "-@all" in redis
    assert not services["redis"]["ports"][0].startswith("6379")  # bound to an address, 127.0.0.1 unless set
    bot = services["bot"]
    args = assert_stickerbot_command(bot["command"])
    assert args.command == "run"
    settings = assert_known_settings({**{k: str(v) for k, v in bot["environment"].items()},
                                      "STICKERBOT_GENERAL__REDIS_URL": "redis://stickerbot:pw@redis:6379/0"})
    assert settings.general.queue == "redis"
    assert "deploy" not in bot
    tls = _compose("docker-compose.redis-tls.yml")["services"]
    tls_command = tls["redis"]["command"]
    assert tls_command[tls_command.index("stickerbot"):] == redis[redis.index("stickerbot"):]  # one ACL
    assert "--tls-port" in tls_command and tls_command[tls_command.index("--port") + 1] == "0"
    assert tls["bot"]["environment"]["STICKERBOT_GENERAL__REDIS_CA_FILE"] == "/tls/ca.crt"
    environ = env_example()
    assert {"REDIS_PASSWORD", "REDIS_URL", "BOX_NAME"} <= set(environ) and not environ["REDIS_PASSWORD"]
