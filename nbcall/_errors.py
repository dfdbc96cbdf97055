"""Why an action failed, as a stable code: ``nbcall.CallError`` and the codes it carries.

Every failure has a code a program can test (``err.code == "room_full"``) and words for a
person (``str(err)``).  A code is either the signaling server's (:class:`ErrorCode`, what
``{"type": "error", "code": ...}`` carries; ``docs/protocol.md``) when the server refused,
or one of :class:`PageError` when nbcall found the problem itself, in the kernel or in the
page, before or without asking the server.  Where the kernel or the page finds what the
server would have said (a user not online, yourself, a bad name), it uses the server's
code, so a program sees one code for one case wherever it was found.

The page's copy of these codes (``PageError`` and ``ERROR_CODES`` in ``js/messages.js``) is
generated from this module by :mod:`nbcall._codegen`; ``action_failed`` may carry only a
code of :data:`ERROR_CODES` (both sides check it, :mod:`nbcall._messages`).
"""

from __future__ import annotations

import functools
import types
from typing import Any, Final

from .signaling.protocol import ErrorCode

_MEANINGS: dict[str, str] = {}


def _code(code: str, meaning: str) -> str:
    _MEANINGS[code] = meaning
    return code


class PageError:
    """Codes for what nbcall finds itself (not the server's :class:`ErrorCode`), each with its meaning."""

    IN_CALL: Final = _code("in_call", "this side is in a call, placing one or ringing: hang up (or answer) first")
    IN_ROOM: Final = _code("in_room", "this side is in a room or joining one: leave it first")
    NOT_CONNECTED: Final = _code(
        "not_connected", "the action needs a connected call (or a room): chat, snapshot, recording"
    )
    ALREADY_MEMBER: Final = _code("already_member", "that user is already in this call or room, or already invited")
    INVALID_ARGUMENT: Final = _code(
        "invalid_argument", "an argument the action cannot take (an empty chat line, a bad source)"
    )
    ALREADY_RECORDING: Final = _code("already_recording", "a recording is going on: stop_recording() first")
    NOT_RECORDING: Final = _code("not_recording", "there is no recording to stop")
    MEDIA_FAILED: Final = _code(
        "media_failed", "the camera or microphone could not be opened (denied, missing or in use)"
    )
    LINK_FAILED: Final = _code(
        "link_failed", "the media connection to a room member, or to the SFU, failed or was refused"
    )
    ROOM_CLOSED: Final = _code("room_closed", "the room was closed, or this page was disconnected from it")
    TIMED_OUT: Final = _code(
        "timed_out", "a queued action waited 30 s (QUEUED_ACTION_WAIT_S) and its moment did not come"
    )
    EARLIER_FAILED: Final = _code("earlier_failed", "a queued action not tried because one queued before it failed")
    QUEUE_FULL: Final = _code(
        "queue_full", "MAX_QUEUED_ACTIONS actions already wait for the page (is the widget displayed?)"
    )
    CLOSED: Final = _code("closed", "this widget or Peer was closed (a newer one of the same name replaced it)")
    SERVER_UNREACHABLE: Final = _code(
        "server_unreachable", "the signaling server could not be reached, or did not answer in time"
    )
    SERVER_REFUSED: Final = _code(
        "server_refused", "the server refused with a code this nbcall does not know (a newer server)"
    )
    PAGE_ERROR: Final = _code(
        "page_error", "the page failed to carry out a command (a bug in nbcall: see the browser console)"
    )


# Each page-side code and its meaning, in the order declared (js/messages.js: PageError).
PAGE_ERRORS: Final = types.MappingProxyType(_MEANINGS)

# Every code a CallError or an action_failed message may carry.
ERROR_CODES: Final = frozenset(ErrorCode.ALL) | frozenset(PAGE_ERRORS)


def server_code(code: object) -> str:
    """The code to report for what a server's error reply says: its own, if this nbcall knows it."""
    return code if isinstance(code, str) and code in ErrorCode.ALL else PageError.SERVER_REFUSED


class CallError(RuntimeError):
    """An action that cannot work right now: ``str(error)`` says why, ``code`` which case it is.

    ``code`` is one of :data:`ERROR_CODES`: the server's (e.g. ``room_full``, ``not_invited``,
    ``unknown_peer``, ``busy``, ``rate_limited``) or nbcall's own (:class:`PageError`).
    ``action`` is the action that failed (``"call"``, ``"room"`` ...) when it failed in the
    page (:meth:`CallWidget.on_error`), else ``""``.
    """

    def __init__(self, message: str, *, code: str, action: str = "") -> None:
        if code not in ERROR_CODES:  # a bug in nbcall: every code is declared
            raise ValueError(f"undeclared CallError code {code!r}")
        super().__init__(message)
        self.code: str = str(code)
        self.action = action

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickles only the message; code and action are keyword-only.
        return (functools.partial(CallError, code=self.code, action=self.action), self.args)
