"""/makepack and /export on Discord: a gallery (at most 10 files a message), a menu that members
with Manage Expressions use to add chosen stickers to the server while slots last."""

from __future__ import annotations

import io
import zipfile

import pytest

from benchmarks.fakes.fake_discord_api import (
    APP_ID,
    GUILD_ID,
    MANAGE_EXPRESSIONS,
    MEMBER_DEFAULT,
    DcUser,
    buttons_of,
)
from tests.test_discord_adapter import (
    EPHEMERAL,
    answer_of,
    discord_testbed,
    private_text,
    save_character,
)

ANN = DcUser(100000000000000001, "Ann")
MOD = DcUser(100000000000000009, "Mod")


@pytest.fixture
async def bed(tmp_path):
    async with discord_testbed(tmp_path) as bed:
        yield bed


async def gallery_of(bed, size: int) -> list[dict]:
    payload = bed.act(
        bed.fake.slash(
            ANN, "makepack", [{"name": "size", "type": 4, "value": size}, {"name": "words", "type": 3, "value": "cozy"}]
        )
    )
    first = await answer_of(bed, payload)
    assert f"Drawing a pack of {size} stickers" in first.json["data"]["content"]
    pages = -(-size // 10)
    # the first gallery replaces the command's response; the others are posted in the channel
    await bed.fake.wait_for(
        "PATCH",
        f"/webhooks/{APP_ID}/{payload['token']}/messages/@original",
        predicate=lambda c: "is ready" in (c.json.get("content") or ""),
        timeout=30,
    )
    if pages > 1:
        await bed.fake.wait_for("POST", "/channels/", count=pages - 1, timeout=30)
    messages = sorted((m for m in bed.fake.messages.values() if m.get("attachments")), key=lambda m: int(m["id"]))
    return messages[-pages:]


async def test_makepack_answers_with_a_gallery_in_messages_of_ten(bed):
    await save_character(bed)
    pages = await gallery_of(bed, 12)
    assert [len(m["attachments"]) for m in pages] == [10, 2]
    assert all(a["filename"].endswith(".webp") for m in pages for a in m["attachments"])
    assert "your pack “cozy” is ready: 12 stickers" in pages[0]["content"]
    menus = [c for m in pages for row in m["components"] for c in row["components"]]
    assert [len(menu["options"]) for menu in menus] == [10, 2]
    assert all(menu["custom_id"] == f"pks:{ANN.id}" for menu in menus)
    assert bed.count("jobs") == 12


async def test_members_with_manage_expressions_add_chosen_stickers_while_slots_last(bed):
    await save_character(bed)
    [page] = await gallery_of(bed, 6)
    menu = page["components"][0]["components"][0]
    values = [o["value"] for o in menu["options"]]

    refused = bed.act(bed.fake.select(MOD, page, menu["custom_id"], values[:2], permissions=MEMBER_DEFAULT))
    assert "Manage Expressions" in await private_text(bed, refused)
    assert not bed.fake.calls_to("POST", f"/guilds/{GUILD_ID}/stickers")

    chosen = bed.act(
        bed.fake.select(MOD, page, menu["custom_id"], values[:3], permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS)
    )
    text = await private_text(bed, chosen)
    assert "Added 3 stickers" in text and "(3/5 slots used)" in text
    assert len(bed.fake.guilds[GUILD_ID]["stickers"]) == 3

    rest = bed.act(
        bed.fake.select(MOD, page, menu["custom_id"], values[3:], permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS)
    )
    text = await private_text(bed, rest)
    assert "Added 2 stickers" in text and "1 did not fit" in text and "no free sticker slots" in text
    assert len(bed.fake.guilds[GUILD_ID]["stickers"]) == 5


async def test_export_sends_the_file_privately(bed):
    await save_character(bed)
    await gallery_of(bed, 3)
    payload = bed.act(bed.fake.slash(ANN, "export", [{"name": "format", "type": 3, "value": "whatsapp"}]))
    followup = await bed.fake.wait_for("POST", f"/webhooks/{APP_ID}/{payload['token']}", timeout=30)
    assert followup.json.get("flags", 0) & EPHEMERAL
    [upload] = followup.files
    assert upload.filename.endswith(".wastickers")
    assert len([n for n in zipfile.ZipFile(io.BytesIO(upload.data)).namelist() if n.endswith(".webp")]) == 3
    assert buttons_of(followup.json) == []
