"""The Discord adapter, driven through discord.py's real REST stack against a fake Discord
(benchmarks/fakes/fake_discord_api.py) and the stub runtime. Members' actions enter where the gateway
hands them to discord.py (`parse_interaction_create`); every assertion is on what the bot
sent over HTTP, or on the database."""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, replace

import pytest
from PIL import Image

from adapters.discord.app import DiscordBot
from benchmarks.bench_telegram import reference_png
from bot.settings import Settings
from bot.sticker_spec import validate_discord_message
from seal_runtime.api.client import RuntimeClient
from storage.database import open_database
from benchmarks.fakes.fake_discord_api import (ADMIN_ROLE_ID, APP_ID, CHANNEL_ID, GUILD_ID, MANAGE_EXPRESSIONS,
                                    MANAGE_GUILD, MEMBER_DEFAULT, OTHER_CHANNEL_ID, SEND_MESSAGES, TOKEN, DcUser,
                                    buttons_of, running_fake_discord, sticker_upload_problems, Upload)
from benchmarks.fakes.stub_runtime import StubRuntime, running_stub_runtime

ANN = DcUser(100000000000000001, "Ann")
BOB = DcUser(100000000000000002, "Bob")
OWNER = DcUser(100000000000000007, "Owner")
EPHEMERAL = 64


@dataclass
class Bed:
    fake: object
    stub: StubRuntime
    bot: DiscordBot

    @property
    def db(self):
        return self.bot.db

    def act(self, payload: dict) -> dict:
        """A member's action arrives, as from the gateway."""
        self.bot.client._connection.parse_interaction_create(payload)
        return payload

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


@contextlib.asynccontextmanager
async def discord_testbed(directory, *, stub: StubRuntime | None = None, generation: dict | None = None,
                          **discord_settings):
    async with running_fake_discord() as fake, running_stub_runtime(stub or StubRuntime()) as runtime:
        base = Settings()
        settings = replace(
            base,
            general=replace(base.general, database=str(directory / "bot.sqlite"), runtime_url=runtime.url),
            limits=replace(base.limits, blocklist=("badword",), max_upload_bytes=2_000_000,
                           retry_base_s=0.2, retry_max_s=0.5),
            generation=replace(base.generation, **(generation or {})),
            discord=replace(base.discord, **{"api_base": fake.api_base, "admin_ids": (OWNER.id,),
                                             "progress_interval_s": 0.25, **discord_settings}),
        )
        db = open_database(settings.general.database)
        client = RuntimeClient(runtime.url)
        bot = DiscordBot(settings, TOKEN, db, client)
        try:
            async with bot.running(connect=False):
                bot.client._connection.parse_guild_create(fake.guilds[GUILD_ID])  # what the gateway sends first
                yield Bed(fake, runtime, bot)
        finally:
            await client.close()
            db.conn.close()


@pytest.fixture
async def bed(tmp_path):
    async with discord_testbed(tmp_path) as bed:
        yield bed


def answer_of(bed: Bed, payload: dict, **kwargs):
    """The interaction callback (the first answer) for `payload`."""
    return bed.fake.wait_for("POST", f"/interactions/{payload['id']}/", **kwargs)


async def private_text(bed: Bed, payload: dict) -> str:
    """The text of a private answer: an ephemeral callback, or the follow-up after an ephemeral defer."""
    first = await answer_of(bed, payload)
    data = first.json.get("data") or {}
    assert data.get("flags", 0) & EPHEMERAL, f"answer is public: {first.json}"
    if first["type"] == 4:
        return data["content"]
    followup = await bed.fake.wait_for("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    assert followup.json.get("flags", 0) & EPHEMERAL
    return followup["content"]


def assert_discord_sticker(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP" and max(image.size) == 512
    assert validate_discord_message(data) == []


async def save_character(bed: Bed, user: DcUser = ANN, **where) -> None:
    attachment = bed.fake.attachment(reference_png())
    payload = bed.act(bed.fake.slash(user, "setref", [{"name": "image", "type": 11, "value": attachment["id"]}],
                                     resolved={"attachments": {attachment["id"]: attachment}}, **where))
    assert "Saved your character" in await private_text(bed, payload)


async def sticker_for(bed: Bed, user: DcUser = ANN, prompt: str = "happy waving beach", **where) -> tuple[dict, dict]:
    """/mysticker; returns (interaction payload, the final message that answers it)."""
    payload = bed.act(bed.fake.slash(user, "mysticker", [{"name": "prompt", "type": 3, "value": prompt}], **where))
    first = await answer_of(bed, payload)
    assert first["type"] == 4 and first["data"]["content"].startswith("Queued at position")
    await bed.fake.wait_for("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/@original",
                            lambda c: c.files)
    return payload, bed.fake.original_of(payload)


# -- the whole flow ------------------------------------------------------------------------------
async def test_setref_then_mysticker_delivers_an_inline_webp_with_owner_buttons(bed):
    fake = bed.fake
    sync = fake.calls_to("PUT", f"/applications/{APP_ID}/commands")
    assert sync, "commands are synced at start"
    names = {c["name"] for c in sync[0].json}
    assert {"setref", "mysticker", "again", "forget", "help", "sticker-add", "stickeradmin", "stickerconfig",
            "Use as my sticker reference"} <= names
    menu = next(c for c in sync[0].json if c["name"] == "Use as my sticker reference")
    assert menu["type"] == 3

    help_payload = bed.act(fake.slash(ANN, "help"))
    assert "/mysticker" in await private_text(bed, help_payload)

    early = bed.act(fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": "happy"}]))
    assert "not saved a character" in await private_text(bed, early)
    assert bed.count("jobs") == 0

    await save_character(bed)
    payload, message = await sticker_for(bed)
    upload = fake.calls_to("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/@original")[-1]
    assert upload.files[0].filename == "sticker.webp"
    assert_discord_sticker(upload.files[0].data)
    assert message["content"].startswith("😊 happy, waving, beach")
    sticker_id = bed.db.execute("SELECT id FROM stickers").fetchone()[0]
    ids = buttons_of(message)
    assert [i.split(":")[:4] for i in ids] == [["stk", a, str(sticker_id), str(ANN.id)] for a in ("ag", "add", "rm")]
    progress = [c["content"] for c in fake.calls_to("PATCH", payload["token"]) if not c.files]
    assert progress and all(t.startswith(("Starting", "Learning", "Drawing")) for t in progress), progress


async def test_progress_edits_are_paced(tmp_path):
    stub = StubRuntime(adapt_steps=30, generate_steps=30, step_delay_s=0.02)
    async with discord_testbed(tmp_path, stub=stub, progress_interval_s=0.3) as bed:
        await save_character(bed)
        started = time.monotonic()
        payload, _ = await sticker_for(bed)
        elapsed = time.monotonic() - started
    edits = [c for c in bed.fake.calls_to("PATCH", payload["token"]) if not c.files]
    gaps = [b.at - a.at for a, b in zip(edits, edits[1:])]
    assert len(edits) >= 2, "progress is shown"
    assert len(edits) <= elapsed / 0.3 + 2, f"{len(edits)} edits in {elapsed:.2f}s"
    # The next edit waits the interval after the previous one was answered, so at Discord's end
    # they are at least 0.3 s apart however slow the machine (a lower bound; 5 ms of timer slack).
    assert min(gaps) >= 0.295, gaps


async def test_buttons_obey_only_their_owner(bed):
    await save_character(bed)
    payload, message = await sticker_for(bed)
    again, add, delete = buttons_of(message)
    jobs_before = bed.count("jobs")

    for custom_id in (again, add, delete):
        press = bed.act(bed.fake.press(BOB, message, custom_id))
        assert "Only the member who asked" in await private_text(bed, press)
    assert bed.count("jobs") == jobs_before and bed.count("stickers") == 1

    press = bed.act(bed.fake.press(ANN, message, again))
    first = await answer_of(bed, press)
    assert first["type"] == 4 and first["data"]["content"].startswith("Queued")
    await bed.fake.wait_for("PATCH", f"/webhooks/{APP_ID}/{press['token']}/messages/@original", lambda c: c.files)
    assert bed.count("stickers") == 2

    press = bed.act(bed.fake.press(ANN, message, delete))
    update = await answer_of(bed, press)
    assert update["type"] == 7 and update["data"]["components"] == [] and "deleted" in update["data"]["content"]
    assert bed.count("stickers") == 1


async def test_expired_buttons_are_removed_with_a_private_note(bed):
    await save_character(bed)
    _, message = await sticker_for(bed)
    expired = buttons_of(message)[0].rsplit(":", 1)[0] + f":{int(time.time()) - 1}"
    message["components"][0]["components"][0]["custom_id"] = expired  # as sent an hour ago
    press = bed.act(bed.fake.press(ANN, message, expired))
    update = await answer_of(bed, press)
    assert update["type"] == 7 and update["data"]["components"] == []
    note = await bed.fake.wait_for("POST", f"/webhooks/{APP_ID}/{press['token']}")
    assert "expired" in note["content"] and note["flags"] & EPHEMERAL
    assert bed.count("jobs") == 1


# -- server stickers -------------------------------------------------------------------------------
async def test_sticker_add_uploads_a_valid_server_sticker_with_permission_checks(bed):
    fake = bed.fake
    no_sticker = bed.act(fake.slash(ANN, "sticker-add", [{"name": "name", "type": 3, "value": "ann waves"}],
                                    permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS))
    assert "no sticker yet" in await private_text(bed, no_sticker)
    await save_character(bed)
    await sticker_for(bed)

    def add(**kwargs):
        return bed.act(fake.slash(ANN, "sticker-add", [{"name": "name", "type": 3, "value": "ann waves"}], **kwargs))

    assert "you don't have it" in await private_text(bed, add(permissions=MEMBER_DEFAULT))
    assert "I need the Manage Expressions" in await private_text(
        bed, add(permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS, app_permissions=SEND_MESSAGES))
    assert not fake.calls_to("POST", "/stickers")

    done = add(permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS)
    assert "Added “ann waves”" in await private_text(bed, done)
    created = fake.calls_to("POST", f"/guilds/{GUILD_ID}/stickers")
    assert len(created) == 1 and created[0].status == 200
    upload = created[0]
    assert upload["name"] == "ann waves" and upload["tags"] == "blush" and upload["description"] == "happy, waving, beach"
    assert sticker_upload_problems(upload["name"], upload["description"], upload["tags"], upload.files[0]) == []
    file_ids = bed.db.execute("SELECT platform_file_ids FROM stickers").fetchone()[0]
    assert f"discord_guild:{GUILD_ID}" in file_ids


async def test_sticker_add_says_when_the_server_has_no_free_slots(bed):
    await save_character(bed)
    await sticker_for(bed)
    bed.fake.fill_sticker_slots(premium_tier=1)
    full = bed.act(bed.fake.slash(ANN, "sticker-add", [{"name": "name", "type": 3, "value": "ann"}],
                                  permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS))
    assert "no free sticker slots (15/15 used)" in await private_text(bed, full)
    assert not bed.fake.calls_to("POST", "/stickers")


async def test_add_to_server_button_in_dms_explains_servers(bed):
    await save_character(bed, guild_id=None)
    _, message = await sticker_for(bed, guild_id=None)
    press = bed.act(bed.fake.press(ANN, message, buttons_of(message)[1], guild_id=None))
    assert "Server stickers live in servers" in await private_text(bed, press)


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "content_type", "size", "expected"), [
    (b"just text", "text/plain", None, "not a picture"),
    (b"\x89PNG\r\n\x1a\nbroken", "image/png", None, "doesn't look like a picture"),
    (reference_png()[:300], "image/png", None, "damaged"),
    (reference_png(), "image/png", 5_000_000, "the limit is 2 MB"),
    (reference_png(), "image/x-icon", None, "I can't read image/x-icon"),
])
async def test_bad_reference_files_are_refused_privately_and_store_nothing(bed, data, content_type, size, expected):
    attachment = bed.fake.attachment(data, content_type=content_type, size=size)
    payload = bed.act(bed.fake.slash(ANN, "setref", [{"name": "image", "type": 11, "value": attachment["id"]}],
                                     resolved={"attachments": {attachment["id"]: attachment}}))
    assert expected in await private_text(bed, payload)
    assert bed.count("reference_images") == 0


@pytest.mark.parametrize(("prompt", "expected"), [
    ("   ", "Tell me what the sticker should show"),
    ("x" * 201, "the limit is 200"),
    ("happy badword", "can't make that sticker"),
])
async def test_bad_prompts_are_refused_privately(bed, prompt, expected):
    await save_character(bed)
    payload = bed.act(bed.fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": prompt}]))
    assert expected in await private_text(bed, payload)
    assert bed.count("jobs") == 0


async def test_message_menu_takes_only_your_own_picture(bed):
    fake = bed.fake
    picture = fake.attachment(reference_png())
    bobs = fake.message_payload(CHANNEL_ID, "my oc", author=BOB, attachments=[picture])
    refused = bed.act(fake.message_menu(ANN, "Use as my sticker reference", bobs))
    assert "Only pictures you posted yourself" in await private_text(bed, refused)
    text_only = fake.message_payload(CHANNEL_ID, "hello", author=ANN)
    assert "no picture" in await private_text(bed, bed.act(fake.message_menu(ANN, "Use as my sticker reference",
                                                                             text_only)))
    assert bed.count("reference_images") == 0
    anns = fake.message_payload(CHANNEL_ID, "my oc", author=ANN, attachments=[picture])
    saved = bed.act(fake.message_menu(ANN, "Use as my sticker reference", anns))
    assert "Saved your character" in await private_text(bed, saved)


async def test_autocomplete_suggests_attribute_words(bed):
    payload = bed.act(bed.fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": "happy wa",
                                                         "focused": True}], autocomplete=True))
    answer = await answer_of(bed, payload)
    assert answer["type"] == 8
    assert [c["value"] for c in answer["data"]["choices"]] == ["happy waving"]


# -- /forget ------------------------------------------------------------------------------------------
async def test_forget_asks_first_and_only_its_owner_confirms(bed):
    await save_character(bed)
    await sticker_for(bed)
    ask = bed.act(bed.fake.slash(ANN, "forget"))
    first = await answer_of(bed, ask)
    assert first["data"]["flags"] & EPHEMERAL
    message = bed.fake.original_of(ask)
    yes, no = buttons_of(message)
    assert "Only the member who used /forget" in await private_text(bed, bed.act(bed.fake.press(BOB, message, yes)))
    assert bed.count("stickers") == 1
    confirm = bed.act(bed.fake.press(ANN, message, yes))
    update = await answer_of(bed, confirm)
    assert update["type"] == 7 and "deleted your character" in update["data"]["content"]
    for table in ("reference_images", "stickers", "jobs"):
        assert bed.count(table) == 0, table


async def test_a_forget_confirmation_expires_after_ten_minutes(bed):
    """On the adapter's clock: one second past the deadline nothing is deleted; at it, all is."""
    now = [2_000_000.0]
    bed.bot.client.deps.clock = lambda: now[0]
    await save_character(bed)
    ask = bed.act(bed.fake.slash(ANN, "forget"))
    await answer_of(bed, ask)
    message = bed.fake.original_of(ask)
    yes, _ = buttons_of(message)
    assert yes == f"fg:yes:{ANN.id}:{2_000_600}"
    now[0] = 2_000_601.0
    late = await answer_of(bed, bed.act(bed.fake.press(ANN, message, yes)))
    assert "expired" in late["data"]["content"] and bed.count("reference_images") == 1
    # The expired answer took the buttons away (as Discord shows it): a new /forget, pressed at its deadline.
    now[0] = 2_000_000.0
    again = bed.act(bed.fake.slash(ANN, "forget"))
    await answer_of(bed, again)
    message = bed.fake.original_of(again)
    yes, _ = buttons_of(message)
    now[0] = 2_000_600.0
    in_time = await answer_of(bed, bed.act(bed.fake.press(ANN, message, yes)))
    assert "deleted your character" in in_time["data"]["content"] and bed.count("reference_images") == 0


# -- servers' settings and admins ------------------------------------------------------------------------
async def test_allowed_channels_admin_role_and_bans(bed):
    fake = bed.fake
    channel_option = [{"name": "channel", "type": 7, "value": str(CHANNEL_ID)}]
    resolved = {"channels": {str(CHANNEL_ID): {"id": str(CHANNEL_ID), "type": 0, "name": "general",
                                               "permissions": "0"}}}
    denied = bed.act(fake.slash(ANN, "stickerconfig", channel_option, resolved=resolved, subcommand="allow-channel"))
    assert "manage this server" in await private_text(bed, denied)
    allowed = bed.act(fake.slash(ANN, "stickerconfig", channel_option, resolved=resolved, subcommand="allow-channel",
                                 permissions=MEMBER_DEFAULT | MANAGE_GUILD))
    assert f"<#{CHANNEL_ID}>" in await private_text(bed, allowed)

    await save_character(bed)
    elsewhere = bed.act(fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": "happy"}],
                                   channel_id=OTHER_CHANNEL_ID))
    assert f"I make stickers in <#{CHANNEL_ID}>" in await private_text(bed, elsewhere)
    assert bed.count("jobs") == 0
    await sticker_for(bed)  # in the allowed channel

    role_option = [{"name": "role", "type": 8, "value": str(ADMIN_ROLE_ID)}]
    set_role = bed.act(fake.slash(ANN, "stickerconfig", role_option, subcommand="admin-role",
                                  resolved={"roles": {str(ADMIN_ROLE_ID): {"id": str(ADMIN_ROLE_ID),
                                                                            "name": "Sticker admins",
                                                                            "permissions": "0", "position": 1,
                                                                            "color": 0, "hoist": False,
                                                                            "managed": False,
                                                                            "mentionable": False}}},
                                  permissions=MEMBER_DEFAULT | MANAGE_GUILD))
    assert f"<@&{ADMIN_ROLE_ID}>" in await private_text(bed, set_role)

    target = [{"name": "member", "type": 6, "value": str(ANN.id)}]
    users = {"users": {str(ANN.id): ANN.as_dict()}}
    not_admin = bed.act(fake.slash(BOB, "stickeradmin", target, resolved=users, subcommand="ban"))
    assert "for the bot's admins" in await private_text(bed, not_admin)
    banned = bed.act(fake.slash(BOB, "stickeradmin", target, resolved=users, subcommand="ban",
                                roles=(ADMIN_ROLE_ID,)))
    assert "Banned." in await private_text(bed, banned)
    refused = bed.act(fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": "happy"}]))
    assert "can't use this bot" in await private_text(bed, refused)

    stats = bed.act(fake.slash(OWNER, "stickeradmin", subcommand="stats", guild_id=None))  # bot admin, in a DM
    assert "Users: 1 (1 banned)" in await private_text(bed, stats)


# -- delivery when the interaction can no longer be answered -------------------------------------------
async def test_sticker_goes_to_the_channel_when_the_interaction_expired(tmp_path):
    async with discord_testbed(tmp_path, stub=StubRuntime(adapt_steps=5, step_delay_s=0.1)) as bed:
        await save_character(bed)
        payload = bed.act(bed.fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": "sad"}]))
        await answer_of(bed, payload)
        bed.fake.expired_tokens.add(payload["token"])
        posted = await bed.fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
    assert posted["content"].startswith(f"<@{ANN.id}> 😢 sad")
    assert [str(u) for u in posted["allowed_mentions"]["users"]] == [str(ANN.id)] and posted["allowed_mentions"]["parse"] == []
    assert_discord_sticker(posted.files[0].data)
    assert len(buttons_of(posted.json)) == 3


async def test_login_with_a_wrong_token_fails_clearly(tmp_path):
    import discord

    async with running_fake_discord() as fake, running_stub_runtime() as runtime:
        base = Settings()
        settings = replace(base, general=replace(base.general, database=str(tmp_path / "b.sqlite"),
                                                 runtime_url=runtime.url),
                           discord=replace(base.discord, api_base=fake.api_base))
        db = open_database(settings.general.database)
        client = RuntimeClient(runtime.url)
        bot = DiscordBot(settings, "wrong-token", db, client)
        with pytest.raises(discord.LoginFailure):
            await bot.start(connect=False, run_worker=False)
        await bot.stop()
        await client.close()
        db.conn.close()


def test_sticker_payload_rules_of_the_fake_match_discord():
    png = io.BytesIO()
    Image.new("RGBA", (320, 320)).save(png, "PNG")
    good = Upload("s.png", "image/png", png.getvalue())
    assert sticker_upload_problems("ok name", "", "blush", good) == []
    assert sticker_upload_problems("x", "d", "", good) == ["name must be 2-30 characters, got 1",
                                                           "description must be empty or 2-100 characters, got 1",
                                                           "tags must be 2-200 characters (a Discord emoji name)"]
    big = io.BytesIO()
    Image.new("RGBA", (512, 512)).save(big, "WEBP")
    assert any("WEBP" in p for p in sticker_upload_problems("name", "", "blush", Upload("s.webp", None, big.getvalue())))

