"""A fake Telegram Bot API server (aiohttp on 127.0.0.1) for driving PTB through its real HTTP stack.

The bot under test is built with `ApplicationBuilder().base_url(fake.base_url)
.base_file_url(fake.base_file_url)`; nothing in PTB is mocked. The fake plays both sides:

- **Telegram users**: `send_text`, `send_photo`, `send_document`, `send_sticker`, `press`
  queue updates that the bot fetches with `getUpdates` (long polling).
- **The Bot API**: the methods the bot calls answer like Telegram does, including its
  checks and its error strings (sticker spec, set names, the 120-sticker limit, unknown
  messages), and `flood(seconds)` answers 429 with `retry_after` to every chat call
  until the flood is over.

Every call is recorded in `calls` (method, decoded params, uploaded files, arrival time)
and `wait_for` awaits the next matching one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, field

from aiohttp import web

TOKEN = "123456:TEST-token-not-secret"
BOT_ID = 424242
BOT_USERNAME = "seal_test_bot"

# The Bot API's documented limits (https://core.telegram.org/bots/api), written here on their
# own so that the fake checks the bot's code instead of trusting its constants.
STICKER_MAX_BYTES = 512 * 1024
SET_MAX_STATIC = 120
CREATE_MAX_STICKERS = 50  # createNewStickerSet: "A JSON-serialized list of 1-50 initial stickers"
MAX_EMOJI = 20  # InputSticker.emoji_list: "List of 1-20 emoji"
MAX_KEYWORDS, MAX_KEYWORD_CHARS = 20, 64  # InputSticker.keywords: "0-20 ... total length of up to 64 characters"
THUMBNAIL_SIDE, THUMBNAIL_MAX_BYTES = 100, 128 * 1024  # setStickerSetThumbnail: "up to 128 kilobytes", "exactly 100px"
DOCUMENT_MAX_BYTES = 50 * 1024 * 1024  # bots send files of up to 50 MB
INT_FIELDS = {"chat_id", "message_id", "user_id", "offset", "limit", "timeout", "message_thread_id",
              "from_chat_id", "reply_to_message_id"}
# Calls that never count toward flood control (polling and start-up housekeeping).
UNLIMITED = {"getUpdates", "getMe", "deleteWebhook", "setMyCommands", "getMyCommands", "close", "logOut"}


@dataclass(frozen=True)
class TgUser:
    id: int
    first_name: str
    username: str | None = None

    def as_dict(self) -> dict:
        data = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    method: str
    params: dict
    files: dict[str, Upload]
    at: float
    status: int = 200
    result: object = None

    def __getitem__(self, key):
        return self.params[key]

    def get(self, key, default=None):
        return self.params.get(key, default)


def validate_static_sticker(data: bytes) -> str | None:
    """Telegram's static sticker rules; None when `data` passes, else the error description."""
    from PIL import Image

    if len(data) > STICKER_MAX_BYTES:
        return "Bad Request: file is too big"
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
            image.load()
    except Exception:
        return "Bad Request: STICKER_FILE_INVALID"
    if fmt not in ("WEBP", "PNG"):
        return "Bad Request: STICKER_FILE_INVALID"
    if max(width, height) != 512 or min(width, height) > 512:
        return "Bad Request: STICKER_PNG_DIMENSIONS"
    return None


def valid_set_name(name: str, bot_username: str) -> bool:
    suffix = f"_by_{bot_username}".lower()
    return (
        0 < len(name) <= 64
        and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) is not None
        and "__" not in name
        and name.lower().endswith(suffix)
        and len(name) > len(suffix)
    )


@dataclass
class _Waiter:
    method: str
    predicate: object
    remaining: int
    future: asyncio.Future


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class FakeBotAPI:
    def __init__(self, *, token: str = TOKEN, bot_username: str = BOT_USERNAME, bot_id: int = BOT_ID) -> None:
        self.token = token
        self.bot = {"id": bot_id, "is_bot": True, "first_name": "SEAL Stickers", "username": bot_username,
                    "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        self.bot_username = bot_username
        self.calls: list[Call] = []
        self.updates: list[dict] = []
        self.sent_at: dict[int, float] = {}  # update_id -> when the user sent it (monotonic)
        self.handed_out: dict[int, float] = {}  # update_id -> when getUpdates returned it
        self.chats: dict[int, dict] = {}
        self.messages: dict[tuple[int, int], dict] = {}
        self.files: dict[str, dict] = {}
        self.sticker_sets: dict[str, dict] = {}
        self.deleted_set_names: set[str] = set()
        self.users: dict[int, TgUser] = {}
        self.flood_until = 0.0
        self._closing = False
        self.flood_answers = 0
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = {}
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._waiters: list[_Waiter] = []
        self.on_call: list = []  # callables run with each successful Call (cheap hooks for benchmarks)
        self.update_id_of_message: dict[tuple[int, int], int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- server ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def create_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._dispatch)
        app.router.add_get("/bot{token}/{method}", self._dispatch)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.create_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing = True
        self._new_update.set()  # end pending long polls now, or the server waits for them
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files, time.monotonic())
        self.calls.append(call)
        try:
            if method not in UNLIMITED and time.monotonic() < self.flood_until:
                self.flood_answers += 1
                retry_after = max(1, math.ceil(self.flood_until - time.monotonic()))
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(call)
        except ApiError as exc:
            call.status = exc.status
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            call.result = body
            return web.json_response(body, status=exc.status)
        call.result = result
        self._answered(call)
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for record in self.files.values():
            if record["file_path"] == path:
                return web.Response(body=record["data"])
        return web.Response(status=404)

    def _answered(self, call: Call) -> None:
        for hook in self.on_call:
            hook(call)
        for waiter in list(self._waiters):
            if waiter.method == call.method and (waiter.predicate is None or waiter.predicate(call)):
                waiter.remaining -= 1
                if waiter.remaining == 0 and not waiter.future.done():
                    waiter.future.set_result(call)

    # -- waiting for the bot ----------------------------------------------------------------
    def calls_to(self, method: str, predicate=None) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.status == 200
                and (predicate is None or predicate(c))]

    async def wait_for(self, method: str, predicate=None, *, timeout: float = 10.0, count: int = 1) -> Call:
        """The `count`-th successful call to `method` matching `predicate` (already made or next)."""
        made = self.calls_to(method, predicate)
        if len(made) >= count:
            return made[count - 1]
        waiter = _Waiter(method, predicate, count - len(made), asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            seen = [(c.method, c.status, _short(c.params)) for c in self.calls[-15:]]
            raise AssertionError(f"no {method} call matched within {timeout}s; last calls: {seen}") from None
        finally:
            self._waiters.remove(waiter)

    def replies_to(self, chat_id: int) -> list[str]:
        return [c["text"] for c in self.calls_to("sendMessage", lambda c: c["chat_id"] == chat_id)]

    async def wait_reply(self, chat_id: int, *, contains: str = "", timeout: float = 10.0, count: int = 1) -> Call:
        return await self.wait_for("sendMessage", lambda c: c["chat_id"] == chat_id and contains in c["text"],
                                   timeout=timeout, count=count)

    # -- what Telegram users do --------------------------------------------------------------
    def private_chat(self, user: TgUser) -> dict:
        self.users[user.id] = user
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        if user.username:
            chat["username"] = user.username
        self.chats[user.id] = chat
        return chat

    def group_chat(self, chat_id: int, title: str) -> dict:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        self.chats[chat_id] = chat
        return chat

    def _new_message(self, chat: dict, sender: dict, **content) -> dict:
        counter = self._message_ids.setdefault(chat["id"], itertools.count(1))
        message = {"message_id": next(counter), "date": int(time.time()), "chat": chat, "from": sender, **content}
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _push(self, **update) -> dict:
        update = {"update_id": next(self._update_ids), **update}
        self.sent_at[update["update_id"]] = time.monotonic()
        self.updates.append(update)
        self._new_update.set()
        return update

    def _user_message(self, user: TgUser, chat: dict | None, reply_to: dict | None = None, **content) -> dict:
        self.users[user.id] = user
        chat = chat or self.private_chat(user)
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        message = self._new_message(chat, user.as_dict(), **content)
        update = self._push(message=message)
        self.update_id_of_message[(chat["id"], message["message_id"])] = update["update_id"]
        return message

    def send_text(self, user: TgUser, text: str, chat: dict | None = None, reply_to: dict | None = None) -> dict:
        content: dict = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(user, chat, reply_to, **content)

    def _caption(self, caption: str | None) -> dict:
        if not caption:
            return {}
        content: dict = {"caption": caption}
        entities = _command_entities(caption)
        if entities:
            content["caption_entities"] = entities
        return content

    def add_file(self, data: bytes, folder: str, extension: str) -> dict:
        """Store bytes as a Telegram file; returns {file_id, file_unique_id, file_size}."""
        number = next(self._file_ids)
        file_id = f"FILE{number:05d}{folder[:3].upper()}"
        self.files[file_id] = {"data": data, "file_unique_id": f"U{number:05d}",
                               "file_path": f"{folder}/file_{number}.{extension}"}
        return {"file_id": file_id, "file_unique_id": f"U{number:05d}", "file_size": len(data)}

    def send_photo(self, user: TgUser, data: bytes, chat: dict | None = None, caption: str | None = None,
                   reply_to: dict | None = None) -> dict:
        from PIL import Image

        width, height = Image.open(io.BytesIO(data)).size
        small = self.add_file(data[: len(data) // 4] or data, "photos", "jpg")  # a thumbnail stand-in
        big = self.add_file(data, "photos", "jpg")
        photo = [{**small, "width": max(1, width // 4), "height": max(1, height // 4)},
                 {**big, "width": width, "height": height}]
        return self._user_message(user, chat, reply_to, photo=photo, **self._caption(caption))

    def send_document(self, user: TgUser, data: bytes, file_name: str, mime_type: str,
                      chat: dict | None = None, caption: str | None = None, file_size: int | None = None) -> dict:
        info = self.add_file(data, "documents", file_name.rsplit(".", 1)[-1] if "." in file_name else "bin")
        if file_size is not None:
            info["file_size"] = file_size  # what Telegram reports, to test limits without huge bodies
        document = {**info, "file_name": file_name, "mime_type": mime_type}
        return self._user_message(user, chat, None, document=document, **self._caption(caption))

    def send_sticker(self, user: TgUser, data: bytes, chat: dict | None = None, *, is_animated: bool = False,
                     is_video: bool = False, reply_to: dict | None = None) -> dict:
        from PIL import Image

        try:
            width, height = Image.open(io.BytesIO(data)).size
        except Exception:
            width, height = 512, 512
        info = self.add_file(data, "stickers", "webm" if is_video else "tgs" if is_animated else "webp")
        sticker = {**info, "width": width, "height": height, "is_animated": is_animated, "is_video": is_video,
                   "type": "regular", "emoji": "🙂"}
        return self._user_message(user, chat, reply_to, sticker=sticker)

    def press(self, user: TgUser, message: dict, data: str) -> dict:
        """`user` presses the inline button carrying `data` under the bot's `message`."""
        query = {"id": str(next(self._callback_ids)), "from": user.as_dict(), "message": message,
                 "chat_instance": f"ci{message['chat']['id']}", "data": data}
        self._push(callback_query=query)
        return query

    def flood(self, seconds: float) -> None:
        """Answer 429 (with retry_after) to every chat call for `seconds`."""
        self.flood_until = time.monotonic() + seconds

    def delete_sticker_set(self, name: str) -> None:
        """The user deleted their set in @Stickers."""
        del self.sticker_sets[name]
        self.deleted_set_names.add(name)

    def fill_sticker_set(self, name: str, count: int = SET_MAX_STATIC) -> None:
        stickers = self.sticker_sets[name]["stickers"]
        while len(stickers) < count:
            stickers.append(dict(stickers[-1]))

    def sent_file(self, file_id: str) -> bytes:
        return self.files[file_id]["data"]

    # -- the Bot API methods -------------------------------------------------------------------
    async def api_getMe(self, call: Call) -> dict:
        return self.bot

    async def api_deleteWebhook(self, call: Call) -> bool:
        return True

    async def api_setMyCommands(self, call: Call) -> bool:
        return True

    async def api_getUpdates(self, call: Call) -> list[dict]:
        offset = call.get("offset", 0) or 0
        limit = call.get("limit", 100) or 100
        timeout = float(call.get("timeout", 0) or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self.updates and not self._closing and time.monotonic() < deadline:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
        batch = self.updates[:limit]
        now = time.monotonic()
        for update in batch:
            self.handed_out.setdefault(update["update_id"], now)
        return batch

    def _chat(self, call: Call) -> dict:
        chat = self.chats.get(call.get("chat_id"))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _reply_to(self, call: Call, chat: dict) -> dict:
        content = {}
        parameters = call.get("reply_parameters") or {}
        reply_id = parameters.get("message_id") or call.get("reply_to_message_id")
        if reply_id:
            replied = self.messages.get((chat["id"], reply_id))
            if replied is None and not parameters.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
            if replied is not None:
                content["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        if call.get("reply_markup"):
            content["reply_markup"] = call["reply_markup"]
        if call.get("message_thread_id"):
            content["message_thread_id"] = call["message_thread_id"]
        return content

    async def api_sendMessage(self, call: Call) -> dict:
        chat = self._chat(call)
        text = call.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._new_message(chat, self.bot, text=text, **self._reply_to(call, chat))

    async def api_editMessageText(self, call: Call) -> dict:
        chat = self._chat(call)
        message = self.messages.get((chat["id"], call.get("message_id")))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.get("text") == call.get("text") and message.get("reply_markup") == call.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        message["text"] = call.get("text")
        message["edit_date"] = int(time.time())
        if call.get("reply_markup"):
            message["reply_markup"] = call["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return message

    async def api_deleteMessage(self, call: Call) -> bool:
        chat = self._chat(call)
        if self.messages.pop((chat["id"], call.get("message_id")), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def api_answerCallbackQuery(self, call: Call) -> bool:
        if not call.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    def _sticker_bytes(self, call: Call, value) -> tuple[bytes, str | None]:
        """An InputFile upload, an attach:// reference, or an existing file_id."""
        if isinstance(value, Upload):
            return value.data, None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value[len("attach://"):])
            if upload is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return upload.data, None
        if isinstance(value, str) and value in self.files:
            return self.files[value]["data"], value
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _sticker_object(self, data: bytes, file_id: str | None, emoji: str | None, set_name: str | None) -> dict:
        from PIL import Image

        if file_id is None:
            info = self.add_file(data, "stickers", "webp")
        else:
            info = {"file_id": file_id, "file_unique_id": self.files[file_id]["file_unique_id"],
                    "file_size": len(data)}
        width, height = Image.open(io.BytesIO(data)).size
        sticker = {**info, "width": width, "height": height, "is_animated": False, "is_video": False,
                   "type": "regular"}
        if emoji:
            sticker["emoji"] = emoji
        if set_name:
            sticker["set_name"] = set_name
        return sticker

    async def api_sendSticker(self, call: Call) -> dict:
        chat = self._chat(call)
        value = call.files.get("sticker") or call.get("sticker")
        data, file_id = self._sticker_bytes(call, value)
        if file_id is None:
            upload = call.files.get("sticker")
            if upload is not None and upload.content_type == "application/octet-stream":
                raise ApiError(400, "Bad Request: wrong file type: send the sticker with a .webp file name")
            problem = validate_static_sticker(data)
            if problem:
                raise ApiError(400, problem)
        sticker = self._sticker_object(data, file_id, call.get("emoji"), None)
        return self._new_message(chat, self.bot, sticker=sticker, **self._reply_to(call, chat))

    async def api_getFile(self, call: Call) -> dict:
        record = self.files.get(call.get("file_id"))
        if record is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(record["data"]) > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": call.get("file_id"), "file_unique_id": record["file_unique_id"],
                "file_size": len(record["data"]), "file_path": record["file_path"]}

    def _known_user(self, call: Call) -> int:
        user_id = call.get("user_id")
        if user_id not in self.users:
            raise ApiError(400, "Bad Request: USER_ID_INVALID")
        return user_id

    async def api_uploadStickerFile(self, call: Call) -> dict:
        self._known_user(call)
        if call.get("sticker_format") != "static":
            raise ApiError(400, "Bad Request: STICKER_FORMAT_INVALID")
        upload = call.files.get("sticker")
        if upload is None:
            raise ApiError(400, "Bad Request: there is no sticker file in the request")
        problem = validate_static_sticker(upload.data)
        if problem:
            raise ApiError(400, problem)
        return self.add_file(upload.data, "stickers", "webp")

    def _input_sticker(self, call: Call, item: dict, set_name: str) -> dict:
        if not isinstance(item, dict) or item.get("format") != "static":
            raise ApiError(400, "Bad Request: STICKER_FORMAT_INVALID")
        emoji = item.get("emoji_list") or []
        if not 1 <= len(emoji) <= MAX_EMOJI:
            raise ApiError(400, "Bad Request: STICKER_EMOJI_INVALID")
        keywords = item.get("keywords") or []
        if len(keywords) > MAX_KEYWORDS or sum(len(k) for k in keywords) > MAX_KEYWORD_CHARS:
            raise ApiError(400, "Bad Request: invalid sticker keywords specified")
        data, file_id = self._sticker_bytes(call, item.get("sticker"))
        problem = validate_static_sticker(data)
        if problem:
            raise ApiError(400, problem)
        return self._sticker_object(data, file_id, emoji[0], set_name)

    async def api_createNewStickerSet(self, call: Call) -> bool:
        user_id = self._known_user(call)
        name = call.get("name") or ""
        if not valid_set_name(name, self.bot_username):
            raise ApiError(400, "Bad Request: invalid sticker set name is specified")
        if name.lower() in {n.lower() for n in (*self.sticker_sets, *self.deleted_set_names)}:
            raise ApiError(400, "Bad Request: sticker set name is already occupied")
        title = call.get("title") or ""
        if not 1 <= len(title) <= 64:
            raise ApiError(400, "Bad Request: STICKERSET_TITLE_INVALID")
        items = call.get("stickers") or []
        if not 1 <= len(items) <= CREATE_MAX_STICKERS:
            raise ApiError(400, "Bad Request: STICKERS_INVALID")
        stickers = [self._input_sticker(call, item, name) for item in items]
        self.sticker_sets[name] = {"name": name, "title": title, "sticker_type": call.get("sticker_type") or "regular",
                                   "stickers": stickers, "owner": user_id}
        return True

    def _owned_set(self, call: Call) -> dict:
        user_id = self._known_user(call)
        sticker_set = self.sticker_sets.get(call.get("name"))
        if sticker_set is None or sticker_set["owner"] != user_id:
            raise ApiError(400, "Bad Request: STICKERSET_INVALID")
        return sticker_set

    async def api_addStickerToSet(self, call: Call) -> bool:
        sticker_set = self._owned_set(call)
        if len(sticker_set["stickers"]) >= SET_MAX_STATIC:
            raise ApiError(400, "Bad Request: STICKERS_TOO_MUCH")
        sticker_set["stickers"].append(self._input_sticker(call, call.get("sticker"), sticker_set["name"]))
        return True

    async def api_setStickerSetThumbnail(self, call: Call) -> bool:
        sticker_set = self._owned_set(call)
        if call.get("format") != "static":
            raise ApiError(400, "Bad Request: STICKER_FORMAT_INVALID")
        value = call.files.get("thumbnail") or call.get("thumbnail")
        if value is None:  # "If omitted, then the thumbnail is dropped"
            sticker_set.pop("thumbnail", None)
            return True
        data, _ = self._sticker_bytes(call, value)
        if len(data) > THUMBNAIL_MAX_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                fmt, size = image.format, image.size
        except Exception:
            raise ApiError(400, "Bad Request: STICKER_THUMB_INVALID") from None
        if fmt not in ("WEBP", "PNG") or size != (THUMBNAIL_SIDE, THUMBNAIL_SIDE):
            raise ApiError(400, "Bad Request: STICKER_THUMB_DIMENSIONS_INVALID")
        info = self.add_file(data, "thumbnails", fmt.lower())
        sticker_set["thumbnail"] = {**info, "width": size[0], "height": size[1]}
        return True

    async def api_sendDocument(self, call: Call) -> dict:
        chat = self._chat(call)
        upload = call.files.get("document")
        if upload is None:
            raise ApiError(400, "Bad Request: there is no document in the request")
        if len(upload.data) > DOCUMENT_MAX_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        info = self.add_file(upload.data, "documents", (upload.filename or "file").rsplit(".", 1)[-1])
        document = {**info, "file_name": upload.filename, "mime_type": upload.content_type}
        content = {"document": document, **self._reply_to(call, chat)}
        if call.get("caption"):
            content["caption"] = call["caption"]
        return self._new_message(chat, self.bot, **content)

    async def api_getStickerSet(self, call: Call) -> dict:
        sticker_set = self.sticker_sets.get(call.get("name"))
        if sticker_set is None:
            raise ApiError(400, "Bad Request: STICKERSET_INVALID")
        return {k: v for k, v in sticker_set.items() if k != "owner"}


async def _read_params(request: web.Request) -> tuple[dict, dict[str, Upload]]:
    params: dict = {}
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        params = await request.json()
    elif request.method == "POST":
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(value.filename, value.content_type, value.file.read())
            else:
                params[name] = value
    params.update(request.query)
    decoded = {}
    for name, value in params.items():
        if isinstance(value, str):
            if name in INT_FIELDS:
                with contextlib.suppress(ValueError):
                    value = int(value)
            elif value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            elif value in ("true", "false"):
                value = value == "true"
        decoded[name] = value
    for name, upload in files.items():
        decoded.setdefault(name, upload)
    return decoded, files


def _command_entities(text: str) -> list[dict]:
    match = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group(0))}]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _short(params: dict) -> dict:
    return {k: (v if not isinstance(v, (str, bytes)) or len(v) < 60 else f"{v[:57]}...")
            for k, v in params.items() if not isinstance(v, Upload)}


@contextlib.asynccontextmanager
async def running_fake_bot_api(**kwargs):
    fake = FakeBotAPI(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
