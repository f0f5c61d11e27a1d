"""Hypothesis strategies for Telegram updates: the odd, the huge, the forged and the unknown.

Shared by tests/e2e/test_fuzz.py (a few hundred per run) and
bench/fuzz_soak.py (tens of thousands).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import strategies as st

# Telegram never repeats a callback query id; the fuzzer must not either, or an
# unanswered press would hide behind an answered twin.
_query_ids = itertools.count(1)

CONTROL_USER = 424242  # the user whose /help proves the bot is still alive
# Mostly distinct chats (Telegram allows one message per second into each),
# plus a few fixed ids that recur, including ids beyond 32 bits.
USER_IDS = st.one_of(st.integers(1_000_000, 9_000_000), st.sampled_from([1_000_001, 7, 999_999_999_999, 2_000_000_001]))
COMMANDS = [
    "start", "help", "today", "progress", "settings", "pause", "resume", "mydata", "delete", "stop",
    "pain", "checkin", "note", "invite", "patients", "patient", "alerts", "cancel", "nonsense", "learn",
]  # fmt: skip

odd_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.sampled_from(["", " ", "\u200b", "\u202e evil", "🦴" * 50, "ß" * 4096, "/", "//start", "\x00", "a\nb\r\nc"]),
    st.just("x" * 5000),
)
callback_data = st.one_of(
    st.text(max_size=64),
    st.from_regex(r"[a-z]{1,3}:[0-9]{1,12}(:[a-z0-9]{0,6}){0,3}", fullmatch=True),
    st.sampled_from(["s:1:d", "s:999999:d", "s:-1:x", "c:1:5", "e:1:consent:yes", "p:0", ":::", "a:1:ack"]),
    st.sampled_from(["le:m", "le:o:walking", "le:a:walking:9", "le:a:walking:0", "le:r:x"]),
)


def _user(uid: int, lang: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": "Fuzz"}
    if lang is not None:
        user["language_code"] = lang
    return user


def _private(uid: int) -> dict[str, Any]:
    return {"id": uid, "type": "private", "first_name": "Fuzz"}


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    """One raw update dict (without update_id)."""
    uid = draw(USER_IDS)
    lang = draw(st.sampled_from([None, "en", "de", "de-AT", "fr", "", "x" * 20]))
    sender = _user(uid, lang)
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 10**6)),
        "date": 0,
        "chat": _private(uid),
        "from": sender,
    }
    kind = draw(
        st.sampled_from(
            ["text", "command", "callback", "group", "channel", "edited", "sticker", "location", "contact", "document"]
        )
    )
    if kind == "text":
        message["text"] = draw(odd_text) or "."
        return {"message": message}
    if kind == "command":
        command = "/" + draw(st.sampled_from(COMMANDS))
        text = command + draw(st.one_of(st.just(""), st.text(max_size=80).map(lambda s: " " + s)))
        message["text"] = text
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"message": message}
    if kind == "callback":
        return {
            "callback_query": {
                "id": f"q{next(_query_ids)}",
                "from": sender,
                "chat_instance": "1",
                "data": draw(callback_data),
                "message": {**message, "from": {"id": 1, "is_bot": True, "first_name": "Bot"}, "text": "old"},
            }
        }
    if kind == "group":
        chat = {
            "id": -draw(st.integers(1, 10**12)),
            "type": draw(st.sampled_from(["group", "supergroup"])),
            "title": "G",
        }
        message["chat"] = chat
        message["text"] = draw(st.sampled_from(["/start", "/help", "hi", "/patients"]))
        if message["text"].startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(message["text"])}]
        return {"message": message}
    if kind == "channel":
        post = {
            "message_id": 1,
            "date": 0,
            "chat": {"id": -1000 - uid, "type": "channel", "title": "C"},
            "text": "news",
        }
        return {"channel_post": post}
    if kind == "edited":
        message["text"] = draw(odd_text) or "."
        message["edit_date"] = 1
        return {"edited_message": message}
    if kind == "sticker":
        message["sticker"] = {
            "file_id": "S", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
            "is_animated": False, "is_video": False,
        }  # fmt: skip
        return {"message": message}
    if kind == "location":
        message["location"] = {
            "latitude": draw(st.floats(-90, 90, allow_nan=False)),
            "longitude": draw(st.floats(-180, 180, allow_nan=False)),
        }
        return {"message": message}
    if kind == "contact":
        message["contact"] = {"phone_number": draw(st.text(max_size=20)) or "0", "first_name": "C"}
        return {"message": message}
    message["document"] = {"file_id": "D", "file_unique_id": "d", "file_name": draw(st.text(max_size=40)) or "f"}
    return {"message": message}


def spread_users(batch: list[dict[str, Any]], seed: int = 0, repeat_share: float = 0.1) -> list[dict[str, Any]]:
    """Give most updates a sender of their own.

    Hypothesis favours small, repeated values, so a raw batch comes mostly
    from one user; Telegram's one-message-a-second-per-chat limit then makes
    the bot (correctly) answer one update a second. Real traffic comes from
    many patients, so all but `repeat_share` get a fresh random user id.
    """
    rng = random.Random(seed)
    for update in batch:
        if rng.random() < repeat_share:
            continue
        uid = rng.randrange(10_000_000, 2_000_000_000)
        body = next(iter(update.values()))
        if "from" in body:
            body["from"] = {**body["from"], "id": uid}
        for holder in (body, body.get("message") or {}):
            chat = holder.get("chat")
            if chat and chat.get("type") == "private":
                holder["chat"] = {**chat, "id": uid}
    return batch
