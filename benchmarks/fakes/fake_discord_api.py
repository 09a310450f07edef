"""A fake Discord (REST on 127.0.0.1, plus interaction payloads) for driving discord.py's real
HTTP stack offline.

The bot under test sets `discord.api_base` to `fake.api_base`, logs in with `fake.token`
(GET /users/@me, GET /oauth2/applications/@me) and syncs its commands (PUT …/commands).
Members act through the gateway path: `fake.member_*` builders make INTERACTION_CREATE
payloads, which the test hands to `client._connection.parse_interaction_create`, exactly
as the gateway would. What the bot does comes back over HTTP and is recorded in `calls`:
interaction callbacks, edits of the original response, follow-ups, channel messages,
fetching a server and creating a server sticker (checked against Discord's rules:
PNG/APNG/GIF ≤ 512 KiB, 320 × 320, name 2–30, description empty or 2–100, tags 2–200, free slots).

Attachments members "upload" are served from `/cdn/<name>` on the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import itertools
import json
import time
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

TOKEN = "fake-discord-bot-token"
APP_ID = 900000000000000001
BOT_ID = 900000000000000002
GUILD_ID = 910000000000000001
CHANNEL_ID = 920000000000000001
OTHER_CHANNEL_ID = 920000000000000002
ADMIN_ROLE_ID = 930000000000000001
STICKER_MAX_BYTES = 512 * 1024
DISCORD_EPOCH_MS = 1420070400000
SLOTS_BY_TIER = {0: 5, 1: 15, 2: 30, 3: 60}

# Permission bits (Discord's documented values)
MANAGE_GUILD = 1 << 5
SEND_MESSAGES = 1 << 11
ATTACH_FILES = 1 << 15
MANAGE_EXPRESSIONS = 1 << 30
MEMBER_DEFAULT = SEND_MESSAGES | ATTACH_FILES
BOT_DEFAULT = SEND_MESSAGES | ATTACH_FILES | MANAGE_EXPRESSIONS


@dataclass(frozen=True)
class DcUser:
    id: int
    name: str

    def as_dict(self) -> dict:
        return {"id": str(self.id), "username": self.name.lower(), "discriminator": "0", "global_name": self.name,
                "avatar": None}


BOT_USER = DcUser(BOT_ID, "StickerBot")


@dataclass
class Upload:
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class Call:
    method: str
    path: str
    json: dict = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)
    at: float = 0.0
    status: int = 200

    def __getitem__(self, key):
        return self.json[key]

    def get(self, key, default=None):
        return self.json.get(key, default)


MAX_FILES_PER_MESSAGE = 10  # Discord, Create Message: up to 10 files per message


def _json(data, status: int = 200) -> web.Response:
    # discord.py decodes a body only when its Content-Type is exactly application/json
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


CALL = web.RequestKey("call", Call)


def sticker_upload_problems(name: str, description: str, tags: str, upload: Upload | None) -> list[str]:
    """Discord's rules for POST /guilds/{id}/stickers, as documented."""
    problems = []
    if not 2 <= len(name) <= 30:
        problems.append(f"name must be 2-30 characters, got {len(name)}")
    if description and not 2 <= len(description) <= 100:
        problems.append(f"description must be empty or 2-100 characters, got {len(description)}")
    if not 2 <= len(tags) <= 200:
        problems.append("tags must be 2-200 characters (a Discord emoji name)")
    if upload is None:
        return problems + ["no file"]
    if len(upload.data) > STICKER_MAX_BYTES:
        problems.append(f"file is {len(upload.data)} bytes, over 512 KiB")
    try:
        image = Image.open(io.BytesIO(upload.data))
        if image.format not in ("PNG", "GIF"):
            problems.append(f"file is {image.format}, not PNG/APNG/GIF")
        elif image.size != (320, 320):
            problems.append(f"file is {image.size}, Discord shows stickers at 320x320")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a problem to report
        problems.append(f"file is not an image: {exc}")
    return problems


class FakeDiscord:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.refuse_next: list[tuple[str, str]] = []  # (method, path part): answer the next such call 400, once
        self.messages: dict[int, dict] = {}
        self.originals: dict[str, int] = {}  # interaction token -> its response message id
        self.expired_tokens: set[str] = set()
        self.cdn: dict[str, bytes] = {}
        self.guilds: dict[int, dict] = {GUILD_ID: self.guild_payload(GUILD_ID)}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._channels: dict[str, int] = {}  # interaction token -> its channel
        self._component_message: dict[str, int] = {}  # component interaction token -> the pressed message
        self.closed_channels: set[int] = set()  # channels the bot may not post in
        self.base_url = ""

    # -- addresses -----------------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    def next_id(self) -> int:
        """A snowflake of now: discord.py reads creation times (and so an interaction's
        15-minute expiry) from ids."""
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    # -- the server's state ----------------------------------------------------------------------
    @staticmethod
    def guild_payload(guild_id: int, *, premium_tier: int = 0, stickers: int = 0) -> dict:
        return {
            "id": str(guild_id), "name": "Test Server", "icon": None, "owner_id": "1", "features": [],
            "premium_tier": premium_tier, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "preferred_locale": "en-US",
            "system_channel_flags": 0, "emojis": [],
            "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": str(MEMBER_DEFAULT), "position": 0,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False},
                      {"id": str(ADMIN_ROLE_ID), "name": "Sticker admins", "permissions": "0", "position": 1,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False}],
            "channels": [{"id": str(c), "type": 0, "name": n, "position": i, "guild_id": str(guild_id),
                          "permission_overwrites": []}
                         for i, (c, n) in enumerate([(CHANNEL_ID, "general"), (OTHER_CHANNEL_ID, "memes")])],
            "stickers": [{"id": str(950 + i), "name": f"old {i}", "description": "", "tags": "slight_smile", "type": 2,
                          "format_type": 1, "available": True, "guild_id": str(guild_id)} for i in range(stickers)],
        }

    def fill_sticker_slots(self, guild_id: int = GUILD_ID, *, premium_tier: int = 0) -> None:
        self.guilds[guild_id] = self.guild_payload(guild_id, premium_tier=premium_tier,
                                                   stickers=SLOTS_BY_TIER[premium_tier])

    def message_payload(self, channel_id: int, content: str, *, author: DcUser = BOT_USER,
                        attachments: list[dict] | None = None, components: list | None = None,
                        flags: int = 0) -> dict:
        message_id = self.next_id()
        return {"id": str(message_id), "channel_id": str(channel_id), "type": 0, "content": content,
                "author": author.as_dict(), "attachments": attachments or [], "embeds": [], "mentions": [],
                "mention_roles": [], "pinned": False, "mention_everyone": False, "tts": False,
                "timestamp": datetime.datetime.now(datetime.UTC).isoformat(), "edited_timestamp": None,
                "flags": flags, "components": components or []}

    def attachment(self, data: bytes, filename: str = "character.png", content_type: str | None = "image/png",
                   size: int | None = None) -> dict:
        """A file a member uploaded: served from the fake CDN."""
        attachment_id = self.next_id()
        self.cdn[f"{attachment_id}-{filename}"] = data
        url = f"{self.base_url}/cdn/{attachment_id}-{filename}"
        payload = {"id": str(attachment_id), "filename": filename, "size": len(data) if size is None else size,
                   "url": url, "proxy_url": url}
        if content_type:
            payload["content_type"] = content_type
        return payload

    # -- recorded calls ----------------------------------------------------------------------
    def calls_to(self, method: str, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    async def wait_for(self, method: str, path_part: str = "", predicate=None, *, count: int = 1,
                       timeout: float = 15.0) -> Call:
        """The `count`-th call matching method, path fragment and predicate."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method, path_part) if predicate is None or predicate(c)]
            if len(found) >= count:
                return found[count - 1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [f"{c.method} {c.path} {json.dumps(c.json)[:160]}" for c in self.calls[-12:]]
                raise AssertionError(f"no {method} {path_part} call #{count} in {timeout}s; last calls:\n"
                                     + "\n".join(seen))
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    def original_of(self, interaction: dict) -> dict | None:
        """The message that currently answers `interaction` (after all edits)."""
        message_id = self.originals.get(interaction["token"])
        return self.messages.get(message_id) if message_id else None

    # -- HTTP ----------------------------------------------------------------------------------
    async def _read(self, request: web.Request) -> tuple[dict, list[Upload]]:
        if request.content_type == "multipart/form-data":
            body, files = {}, []
            reader = await request.multipart()
            async for part in reader:
                if part.filename:
                    files.append(Upload(part.filename, part.headers.get("Content-Type"), await part.read()))
                elif part.name == "payload_json":
                    body.update(json.loads(await part.text()))
                else:
                    body[part.name] = await part.text()
            return body, files
        text = await request.text()
        return (json.loads(text) if text else {}), []

    @web.middleware
    async def _record(self, request: web.Request, handler):
        if request.path.startswith("/cdn/"):
            return await handler(request)
        body, files = await self._read(request)
        call = Call(request.method, request.path.removeprefix("/api/v10"), body, files, time.monotonic())
        request[CALL] = call
        if len(files) > MAX_FILES_PER_MESSAGE and not request.path.endswith("/stickers"):
            call.status = 400
            self.calls.append(call)
            # Create Message: "files[n]" up to 10 (Discord answers 50035 Invalid Form Body past it)
            return self._error(400, 50035, "Invalid Form Body: files: Must be 10 or fewer in length.")
        for rule in list(self.refuse_next):
            method, path_part = rule
            if call.method == method and path_part in call.path:
                self.refuse_next.remove(rule)  # once: a transient refusal
                call.status = 400
                self.calls.append(call)
                return self._error(400, 50035, "Invalid Form Body (refused once by the test)")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            call.status = exc.status
            raise
        call.status = response.status
        self.calls.append(call)
        self._changed.set()
        return response

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return _json({"code": code, "message": message}, status=status)

    def _attachments_from(self, call: Call) -> list[dict]:
        out = []
        for upload in call.files:
            name = f"{self.next_id()}-{upload.filename}"
            self.cdn[name] = upload.data
            out.append({"id": name.split("-")[0], "filename": upload.filename, "size": len(upload.data),
                        "url": f"{self.base_url}/cdn/{name}", "proxy_url": f"{self.base_url}/cdn/{name}",
                        "content_type": upload.content_type})
        return out

    def _apply_edit(self, message: dict, call: Call) -> dict:
        for key in ("content", "components", "embeds", "flags"):
            if key in call.json:
                message[key] = call.json[key] if call.json[key] is not None else ([] if key != "content" else "")
        if "attachments" in call.json or call.files:
            message["attachments"] = self._attachments_from(call)
        message["edited_timestamp"] = datetime.datetime.now(datetime.UTC).isoformat()
        return message

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_get("/api/v10/users/@me", self._me)
        r.add_get("/api/v10/oauth2/applications/@me", self._application)
        r.add_put("/api/v10/applications/{app}/commands", self._sync)
        r.add_put("/api/v10/applications/{app}/guilds/{guild}/commands", self._sync)
        r.add_post("/api/v10/interactions/{id}/{token}/callback", self._callback)
        r.add_get("/api/v10/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message)
        r.add_patch("/api/v10/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message)
        r.add_delete("/api/v10/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_post("/api/v10/channels/{channel}/messages", self._channel_message)
        r.add_get("/api/v10/guilds/{guild}", self._guild)
        r.add_post("/api/v10/guilds/{guild}/stickers", self._create_sticker)
        r.add_get("/cdn/{name}", self._cdn)
        return app

    async def _me(self, request):
        if request.headers.get("Authorization") != f"Bot {TOKEN}":
            return self._error(401, 0, "401: Unauthorized")
        return _json({**BOT_USER.as_dict(), "bot": True, "verified": True, "mfa_enabled": False,
                                  "flags": 0})

    async def _application(self, request):
        return _json({"id": str(APP_ID), "name": "StickerBot", "description": "", "icon": None,
                                  "bot_public": True, "bot_require_code_grant": False, "verify_key": "00",
                                  "owner": DcUser(1, "Owner").as_dict(), "flags": 1 << 23})

    async def _sync(self, request):
        commands = request[CALL].json
        return _json([{"description": "", **c, "id": str(self.next_id()), "application_id": str(APP_ID), "version": "1"}
                                  for c in commands])

    async def _callback(self, request):
        call, token = request[CALL], request.match_info["token"]
        if token in self.expired_tokens:
            return self._error(404, 10062, "Unknown interaction")
        kind, data = call.json.get("type"), call.json.get("data") or {}
        interaction_id = request.match_info["id"]
        channel_id = self._channels.get(token, CHANNEL_ID)
        message = None
        if kind in (4, 5):  # a new message (5: "thinking…" until edited)
            message = self.message_payload(channel_id, data.get("content") or "", flags=data.get("flags") or 0,
                                           components=data.get("components"))
            if call.files:
                message["attachments"] = self._attachments_from(call)
            self.messages[int(message["id"])] = message
            self.originals[token] = int(message["id"])
        elif kind == 7:  # update the message the button is on
            target = self.messages[self._component_message[token]]
            self._apply_edit(target, call)
            self.originals[token] = int(target["id"])
            message = target
        elif kind == 6:
            self.originals[token] = self._component_message.get(token, 0)
        resource = {"type": kind}
        if message is not None:
            resource["message"] = message
        return _json({"interaction": {"id": interaction_id, "type": 2,
                                                  "response_message_loading": kind == 5,
                                                  "response_message_ephemeral": bool((data.get("flags") or 0) & 64)},
                                  "resource": resource})

    def _webhook_message(self, request) -> dict | web.Response:
        token, which = request.match_info["token"], request.match_info["message"]
        if token in self.expired_tokens:
            return self._error(401, 50027, "Invalid Webhook Token")
        message_id = self.originals.get(token) if which == "@original" else int(which)
        message = self.messages.get(message_id or 0)
        if message is None:
            return self._error(404, 10008, "Unknown Message")
        return message

    async def _get_webhook_message(self, request):
        found = self._webhook_message(request)
        return found if isinstance(found, web.Response) else _json(found)

    async def _edit_webhook_message(self, request):
        found = self._webhook_message(request)
        if isinstance(found, web.Response):
            return found
        return _json(self._apply_edit(found, request[CALL]))

    async def _delete_webhook_message(self, request):
        found = self._webhook_message(request)
        if isinstance(found, web.Response):
            return found
        self.messages.pop(int(found["id"]), None)
        return web.Response(status=204)

    async def _followup(self, request):
        call, token = request[CALL], request.match_info["token"]
        if token in self.expired_tokens:
            return self._error(401, 50027, "Invalid Webhook Token")
        message = self.message_payload(self._channels.get(token, CHANNEL_ID), call.json.get("content") or "",
                                       flags=call.json.get("flags") or 0, components=call.json.get("components"))
        message["attachments"] = self._attachments_from(call)
        self.messages[int(message["id"])] = message
        return _json(message)

    async def _channel_message(self, request):
        call = request[CALL]
        channel_id = int(request.match_info["channel"])
        if channel_id in self.closed_channels:
            return self._error(403, 50001, "Missing Access")
        message = self.message_payload(channel_id, call.json.get("content") or "",
                                       components=call.json.get("components"))
        message["attachments"] = self._attachments_from(call)
        self.messages[int(message["id"])] = message
        return _json(message)

    async def _guild(self, request):
        guild = self.guilds.get(int(request.match_info["guild"]))
        if guild is None:
            return self._error(404, 10004, "Unknown Guild")
        return _json(guild)

    async def _create_sticker(self, request):
        call = request[CALL]
        guild = self.guilds[int(request.match_info["guild"])]
        if len(guild["stickers"]) >= SLOTS_BY_TIER[guild["premium_tier"]]:
            return self._error(400, 30039, "Maximum number of stickers reached")
        upload = call.files[0] if call.files else None
        problems = sticker_upload_problems(call.json.get("name", ""), call.json.get("description", ""),
                                           call.json.get("tags", ""), upload)
        if problems:
            return self._error(400, 50035, "Invalid Form Body: " + "; ".join(problems))
        sticker = {"id": str(self.next_id()), "name": call.json["name"], "description": call.json.get("description"),
                   "tags": call.json["tags"], "type": 2, "format_type": 1, "available": True,
                   "guild_id": guild["id"], "user": BOT_USER.as_dict()}
        guild["stickers"].append(sticker)
        return _json(sticker)

    async def _cdn(self, request):
        data = self.cdn.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    # -- members' actions (INTERACTION_CREATE payloads) -----------------------------------------
    def _interaction(self, kind: int, user: DcUser, data: dict, *, guild_id: int | None, channel_id: int,
                     permissions: int, roles: tuple[int, ...], app_permissions: int,
                     message: dict | None = None) -> dict:
        token = f"itoken-{self.next_id()}"
        self._channels[token] = channel_id
        payload = {"id": str(self.next_id()), "application_id": str(APP_ID), "type": kind, "token": token,
                   "version": 1, "data": data, "locale": "en-US", "attachment_size_limit": 10 * 1024 * 1024,
                   "app_permissions": str(app_permissions), "entitlements": []}
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
            payload["channel"] = {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "general"}
            payload["member"] = {"user": user.as_dict(), "roles": [str(r) for r in roles],
                                 "permissions": str(permissions), "joined_at": "2026-01-01T00:00:00+00:00",
                                 "deaf": False, "mute": False, "flags": 0}
            payload["context"] = 0
        else:
            payload["channel"] = {"id": str(channel_id), "type": 1, "recipients": [user.as_dict()]}
            payload["user"] = user.as_dict()
            payload["context"] = 1
        if message is not None:
            payload["message"] = message
            self._component_message[token] = int(message["id"])
        return payload

    def slash(self, user: DcUser, name: str, options: list[dict] | None = None, *, resolved: dict | None = None,
              guild_id: int | None = GUILD_ID, channel_id: int = CHANNEL_ID, permissions: int = MEMBER_DEFAULT,
              roles: tuple[int, ...] = (), app_permissions: int = BOT_DEFAULT, subcommand: str | None = None,
              autocomplete: bool = False) -> dict:
        options = options or []
        if subcommand is not None:
            options = [{"type": 1, "name": subcommand, "options": options}]
        data = {"id": str(self.next_id()), "name": name, "type": 1, "options": options}
        if resolved:
            data["resolved"] = resolved
        return self._interaction(4 if autocomplete else 2, user, data, guild_id=guild_id, channel_id=channel_id,
                                 permissions=permissions, roles=roles, app_permissions=app_permissions)

    def message_menu(self, user: DcUser, name: str, target: dict, **kwargs) -> dict:
        data = {"id": str(self.next_id()), "name": name, "type": 3, "target_id": target["id"],
                "resolved": {"messages": {target["id"]: target}}}
        return self._interaction(2, user, data, guild_id=kwargs.get("guild_id", GUILD_ID),
                                 channel_id=kwargs.get("channel_id", CHANNEL_ID),
                                 permissions=kwargs.get("permissions", MEMBER_DEFAULT), roles=(),
                                 app_permissions=kwargs.get("app_permissions", BOT_DEFAULT))

    def press(self, user: DcUser, message: dict, custom_id: str, *, guild_id: int | None = GUILD_ID,
              permissions: int = MEMBER_DEFAULT, app_permissions: int = BOT_DEFAULT) -> dict:
        data = {"custom_id": custom_id, "component_type": 2}
        return self._interaction(3, user, data, guild_id=guild_id, channel_id=int(message["channel_id"]),
                                 permissions=permissions, roles=(), app_permissions=app_permissions,
                                 message=message)


    def select(self, user: DcUser, message: dict, custom_id: str, values: list[str], *, guild_id: int | None = GUILD_ID,
               permissions: int = MEMBER_DEFAULT, app_permissions: int = BOT_DEFAULT) -> dict:
        """`user` picks `values` in the message's select menu `custom_id`."""
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
        return self._interaction(3, user, data, guild_id=guild_id, channel_id=int(message["channel_id"]),
                                 permissions=permissions, roles=(), app_permissions=app_permissions,
                                 message=message)


def buttons_of(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components") or [] for c in row.get("components", [])]


@contextlib.asynccontextmanager
async def running_fake_discord():
    fake = FakeDiscord()
    runner = web.AppRunner(fake.build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
