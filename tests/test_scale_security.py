"""Redis for scale-out, secured: a password, an ACL user limited to the bot's keys, TLS
(`rediss://`) with a private CA; and clear errors when the credentials are wrong."""

from pathlib import Path

import pytest
import redis.asyncio
import redis.exceptions

from benchmarks.bench_scale import ScaleBed
from benchmarks.fakes.stub_runtime import running_stub_runtime
from benchmarks.gpu_fleet import running_gpu_worker
from benchmarks.redis_server import make_tls_files
from seal_runtime.api.protocol import RuntimeJobError
from seal_runtime.api.redis_client import RedisRuntimeClient
from seal_runtime.api.redis_jobs import redact_url, redis_settings


def deployed_acl_rules() -> str:
    """The rules of the ACL user `stickerbot` in deploy/docker-compose.scale.yml: what runs
    in production is what these tests check is enough (and really limited)."""
    import yaml

    compose = yaml.safe_load((Path(__file__).parents[1] / "deploy" / "docker-compose.scale.yml").read_text())
    command = compose["services"]["redis"]["command"]
    start = command.index("stickerbot") + 3  # "stickerbot", "on", ">password", then the rules
    return " ".join(command[start:])


async def one_sticker(tmp_path, url: str, ca_file: str | None = None) -> dict:
    async with running_stub_runtime() as stub, running_gpu_worker(url, stub.url, ca_file=ca_file, poll_delay_s=0.02):
        bed = ScaleBed(tmp_path / "bot", url, ca_file=ca_file)
        try:
            job_id = bed.ask(0)
            bed.start()
            assert await bed.wait_all_told(30)
            return {"outcome": bed.outcome(), "told": bed.sink.times_told(job_id)}
        finally:
            await bed.stop()


async def test_a_password_protected_redis_carries_a_job_and_a_wrong_password_is_named(tmp_path, start_redis):
    server = start_redis(password="pw-for-redis-1")
    result = await one_sticker(tmp_path, server.url)
    assert result["outcome"]["done"] == 1 and result["told"] == 1
    wrong = RedisRuntimeClient(server.url.replace("pw-for-redis-1", "nope"))
    with pytest.raises(RuntimeJobError, match="check the user and password in general.redis_url") as caught:
        await wrong.health()
    assert "nope" not in str(caught.value)
    await wrong.close()


async def test_an_acl_user_limited_to_the_bots_keys_is_enough(tmp_path, start_redis):
    rules = deployed_acl_rules()
    assert "~stickerbot:*" in rules and "-@all" in rules
    server = start_redis(acl_user=("stickerbot", "acl-pw-123", rules))
    result = await one_sticker(tmp_path, server.url)
    assert result["outcome"]["done"] == 1 and result["told"] == 1
    client = redis.asyncio.from_url(server.url)
    try:  # and the user really is limited
        for forbidden in (client.set("other:key", 1), client.flushall(), client.config_get("*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                await forbidden
    finally:
        await client.aclose()


async def test_tls_with_a_private_ca_carries_a_job_and_an_unknown_ca_is_refused(tmp_path, start_redis):
    tls = make_tls_files(tmp_path / "tls")
    server = start_redis(tls=tls, password="tls-pw-123")
    assert server.url.startswith("rediss://")
    result = await one_sticker(tmp_path, server.url, ca_file=str(tls.ca))
    assert result["outcome"]["done"] == 1 and result["told"] == 1
    untrusting = RedisRuntimeClient(server.url)  # the system's CAs do not know ours
    with pytest.raises(RuntimeJobError, match="certificate"):
        await untrusting.health()
    await untrusting.close()


def test_passwords_never_show_in_what_is_printed():
    assert redact_url("rediss://bot:s3cret@redis.example:6380/2") == "rediss://bot:***@redis.example:6380/2"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ValueError, match="redis:// or rediss://") as caught:
        redis_settings("http://bot:s3cret@redis.example")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("ci,outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_redis_server_the_redis_tests_fail_in_ci_and_skip_elsewhere(tmp_path, monkeypatch, ci, outcome):
    from tests.conftest import _start_redis

    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="apt-get install redis-server"):
        _start_redis(tmp_path / "redis")
