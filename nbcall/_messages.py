"""Every custom comm message between a CallWidget and its page, in one table.

Lasting state travels in traitlets; custom messages are only for commands (kernel → page)
and events (page → kernel).  Each message is a JSON object with a ``kind`` from this table
and the fields it lists; binary buffers travel beside it where ``buffers`` says so.

The page's copy (``js/messages.js``) is generated from this module by
:mod:`nbcall._codegen`; each side has one dispatcher that validates against it
(:meth:`CallWidget._on_page_message` here, ``js/dispatch.js`` there).  A message of an
unknown kind, or with a missing or mistyped field, is logged and reported, never dropped
in silence.  ``docs/widget.md`` ("Messages between the kernel and the page") is the prose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import ERROR_CODES

# Field types, as both sides check them.  A trailing "?" makes a field optional (absent or null).
# "error_code": a string of nbcall._errors.ERROR_CODES (the page's copy: ERROR_CODES in messages.js).
_CHECKS: Final = {
    "str": lambda v: isinstance(v, str),
    "error_code": lambda v: isinstance(v, str) and v in ERROR_CODES,
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "num": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}
MAX_ID_CHARS: Final = 64  # ids of kernel sockets, snapshots and recordings


@dataclass(frozen=True)
class Kind:
    """One message kind: its fields (name -> type) and how many binary buffers it carries."""

    name: str
    doc: str
    fields: dict[str, str] = field(default_factory=dict)
    buffers: int = 0  # buffers that must come with it (at least this many)

    def problem(self, content: dict[str, Any], buffers: int = 0) -> str | None:
        """Why ``content`` is not a valid message of this kind, or None."""
        for name, kind in self.fields.items():
            optional = kind.endswith("?")
            value = content.get(name)
            if value is None:
                if optional:
                    continue
                return f"'{self.name}' needs '{name}'"
            if not _CHECKS[kind.rstrip("?")](value):
                return f"'{self.name}': '{name}' must be {kind.rstrip('?')}"
            if name == "id" and isinstance(value, str) and len(value) > MAX_ID_CHARS:
                return f"'{self.name}': 'id' is longer than {MAX_ID_CHARS} characters"
        if buffers < self.buffers:
            return f"'{self.name}' needs {self.buffers} binary buffer(s), got {buffers}"
        return None


def _table(*kinds: Kind) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


# -- commands: kernel -> page --------------------------------------------------------------
TO_PAGE: Final = _table(
    Kind("call", "Ring a user (a name the page listed as online).", {"to": "str"}),
    Kind("accept", "Answer the ringing call."),
    Kind("reject", "Decline the ringing call."),
    Kind("hangup", "End the call, or stop ringing someone."),
    Kind(
        "join",
        "Join a room (created on first join; invite_only and password apply when it is created).",
        {"room": "str", "invite_only": "bool", "password": "str?"},
    ),
    Kind("leave", "Leave the room."),
    Kind("invite", "Invite a user into the current room.", {"to": "str"}),
    Kind("chat", "Send a chat line to the other side over the call's data channel.", {"text": "str"}),
    Kind("snapshot", "Grab the current frame of the remote or local video.", {"id": "str", "which": "str"}),
    Kind("recording_start", "Start recording remote, local or both.", {"which": "str"}),
    Kind("recording_stop", "Stop the recording; its last chunks and recording_done follow."),
    Kind(
        "screen",
        "Share the screen (on) or go back to the camera (off), as setting the screen_share trait does.",
        {"on": "bool"},
    ),
    Kind("kernel_socket_opened", "The kernel's websocket for this page is open.", {"id": "str"}),
    Kind("kernel_socket_message", "A text frame from the signaling server.", {"id": "str", "data": "str"}),
    Kind("kernel_socket_closed", "The kernel's websocket closed.", {"id": "str", "code": "int", "reason": "str"}),
)

# -- events: page -> kernel ----------------------------------------------------------------
TO_KERNEL: Final = _table(
    Kind("ready", "The model's call machinery started in the page (initialize ran)."),
    Kind("view", "A view of the widget was rendered."),
    Kind(
        "action_failed",
        "A command could not be carried out: which case (a code of nbcall._errors.ERROR_CODES: the server's "
        "when it refused, else the page's own) and why, in words.",
        {"action": "str", "code": "error_code", "message": "str"},
    ),
    Kind(
        "queued_done",
        "The page is finished with this entry of the _queued trait (carried out, or failed: action_failed "
        "said why); the kernel drops it.",
        {"id": "int"},
    ),
    Kind(
        "protocol_error",
        "The page received a message it cannot handle (unknown kind or bad fields).",
        {"detail": "str"},
    ),
    Kind(
        "snapshot_taken",
        "The frame asked for: PNG and raw RGBA pixels as two buffers when ok, else an error.",
        {"id": "str?", "which": "str", "ok": "bool", "width": "int?", "height": "int?", "error": "str?"},
    ),
    Kind("recording_started", "A recording began.", {"id": "str", "which": "str", "mime": "str"}),
    Kind("recording_chunk", "One chunk of WebM, numbered from 0, as one buffer.", {"id": "str", "seq": "int"}, 1),
    Kind("recording_done", "The recording ended after this many chunks.", {"id": "str", "chunks": "int"}),
    Kind("recording_failed", "The recording could not start or went wrong.", {"id": "str", "message": "str"}),
    Kind(
        "chat_sent",
        "A chat line this page sent to the peer (send_chat or the text box); time: this page's clock.",
        {"text": "str", "time": "num"},
    ),
    Kind(
        "chat_received",
        "A chat line from the call's peer, checked and within the rate limit; from: the call's peer.",
        {"from": "str", "text": "str", "time": "num"},
    ),
    Kind(
        "chat_dropped",
        "Channel messages from the peer dropped since the last report: over the rate limit, or malformed.",
        {"from": "str", "flood": "int", "malformed": "int"},
    ),
    Kind(
        "kernel_socket_open",
        "Open a websocket from the kernel to the widget's server on the page's behalf.",
        {"id": "str"},
    ),
    Kind("kernel_socket_send", "A text frame for the server, in order.", {"id": "str", "data": "str"}),
    Kind("kernel_socket_close", "Close that websocket.", {"id": "str"}),
    Kind(
        "kernel_socket_ping",
        "The page holding this socket is alive: sent every second while it is open. The kernel "
        "drops a socket that has had none for a few idle seconds (a crashed page).",
        {"id": "str"},
    ),
)

# -- actions asked for before the page could carry them out (nbcall/_actions.py) -----------
MAX_QUEUED_ACTIONS: Final = 32  # entries of CallWidget._queued at once; more raise CallError
QUEUED_ACTION_WAIT_S: Final = 30  # the page gives up on an entry whose condition has not held this long

# -- page <-> page: the call's data channel ------------------------------------------------
# Sent by the other side of a call: hostile until checked.  Each side validates every
# message against this table and drops (and counts) what does not fit; a Python peer
# (aiortc) speaks the same messages.
MAX_CHAT_CHARS: Final = 4000  # one chat line (UTF-16 code units, as JavaScript counts)
# Chat that cannot be used as a weapon (docs/widget.md "Chat"): the page and the kernel each
# keep at most MAX_CHAT_LINES lines and MAX_CHAT_BYTES bytes (UTF-8 of sender and text),
# oldest dropped first; each side sends, and accepts from its peer, at most CHAT_RATE lines
# a second with bursts of CHAT_BURST (a token bucket); what comes in over it is dropped and
# counted.
MAX_CHAT_LINES: Final = 200
MAX_CHAT_BYTES: Final = 256 * 1024
CHAT_RATE: Final = 5  # lines per second, sustained
CHAT_BURST: Final = 20  # lines at once
# The longest channel message worth parsing: a chat line of MAX_CHAT_CHARS characters each
# escaped by JSON as \uXXXX, and room for the rest.  Longer ones are malformed unread.
MAX_CHANNEL_CHARS: Final = MAX_CHAT_CHARS * 6 + 256
# The call's data channel: both sides create it themselves (negotiated, fixed id), so neither
# waits for the other to announce it and a Python peer (aiortc) can open the same one.
DATA_CHANNEL_LABEL: Final = "nbcall"
DATA_CHANNEL_ID: Final = 0
HEARTBEAT_INTERVAL_MS: Final = 500  # each side sends {"kind": "heartbeat"} this often while the channel is open
SILENT_AFTER_MS: Final = 1500  # no life from the other side this long: it is "reconnecting"
DATA_CHANNEL: Final = _table(
    Kind("chat", "A chat line; time is the sender's clock (epoch seconds).", {"text": "str", "time": "num?"}),
    Kind(
        "media",
        "What the sender sends now: microphone, camera, screen.",
        {"audio": "bool", "video": "bool", "screen": "bool?"},
    ),
    Kind("heartbeat", "I am here: sent every HEARTBEAT_INTERVAL_MS while the channel is open.", {"seq": "int?"}),
)

DIRECTIONS: Final = {"to_page": TO_PAGE, "to_kernel": TO_KERNEL, "data_channel": DATA_CHANNEL}


def problem(table: dict[str, Kind], content: object, buffers: int = 0) -> str | None:
    """Why ``content`` is not a valid message of ``table``, or None."""
    if not isinstance(content, dict):
        return "a message must be a JSON object"
    kind = content.get("kind")
    spec = table.get(kind) if isinstance(kind, str) else None
    if spec is None:
        shown = kind[:40] if isinstance(kind, str) else repr(kind)[:40]
        return f"unknown message kind {shown!r}"
    return spec.problem(content, buffers)
