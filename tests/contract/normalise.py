"""What is random in the server's answers, and how a recording names it (js/test/contract.test.js
does the same, step for step, to the fake's answers).

A value is random when the server made it up: a credential, its ``server_id``, a call id
the client did not choose, the name of a room made of a call (``call-`` and 8 hex digits) and that room's key.
Each distinct value becomes ``<kind:n>``, numbered by first appearance in the session
(steps in order, each step's clients in the order they connected), so two runs, or the
real server and the fake, give the same text.  A value some client sent literally (a
call id the page chose, a room the user named) is the client's, not random, and stays.
A scripted message may carry a placeholder (a credential given back on a reconnect): it is
resolved to the value it stands for before it is sent.  An error's prose that quotes a
random value seen before quotes its placeholder.
"""

from __future__ import annotations

import re
from typing import Any

# field -> the kind of placeholder its random values get
RANDOM_FIELDS = {"call_id": "call_id", "credential": "credential", "server_id": "server_id"}
ROOM_FIELDS = ("room", "room_key")
CALL_ROOM = re.compile(r"call-[0-9a-f]{8}")
PLACEHOLDER = re.compile(r"<(\w+):(\d+)>")


def sent_literals(messages: list[dict[str, Any]]) -> set[str]:
    """The values of random-looking fields that the clients themselves sent."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                random = key in RANDOM_FIELDS or key in ROOM_FIELDS
                if random and isinstance(item, str) and not PLACEHOLDER.fullmatch(item):
                    found.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for message in messages:
        walk(message)
    return found


class Normaliser:
    """One session's placeholders: random value -> ``<kind:n>`` and back."""

    def __init__(self, literals: set[str]) -> None:
        self.literals = literals
        self.names: dict[tuple[str, str], str] = {}  # (kind, value) -> placeholder
        self.values: dict[str, str] = {}  # placeholder -> value
        self.counts: dict[str, int] = {}

    def _kind(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or value in self.literals:
            return None
        if key in RANDOM_FIELDS:
            return RANDOM_FIELDS[key]
        if key in ROOM_FIELDS and CALL_ROOM.fullmatch(value):
            return "room"
        return None

    def _name(self, kind: str, value: str) -> str:
        placeholder = self.names.get((kind, value))
        if placeholder is None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            placeholder = self.names[kind, value] = f"<{kind}:{self.counts[kind]}>"
            self.values[placeholder] = value
        return placeholder

    def received(self, value: Any, key: str = "") -> Any:
        """``value`` (a message the server sent) with its random values named."""
        if isinstance(value, dict):
            return {k: self._field(value, k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.received(v, key) for v in value]
        if key == "message" and isinstance(value, str):  # prose may quote a random value
            for (_, raw), placeholder in self.names.items():
                value = value.replace(raw, placeholder)
            return value
        kind = self._kind(key, value)
        return self._name(kind, value) if kind is not None else value

    def _field(self, message: dict[str, Any], key: str, value: Any) -> Any:
        # A random room's key is the server's key of a random name: random too.
        if key == "room_key" and isinstance(value, str) and self._kind("room", message.get("room")) == "room":
            return self._name("room_key", value)
        return self.received(value, key)

    def resolve(self, value: Any) -> Any:
        """``value`` (a scripted message) with its placeholders replaced by what they stand for."""
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str) and PLACEHOLDER.fullmatch(value):
            if value not in self.values:
                raise KeyError(f"{value} was not seen before it is sent")
            return self.values[value]
        return value
