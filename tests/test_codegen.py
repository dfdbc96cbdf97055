"""One definition of every protocol constant: the page's copies are generated and current.

Python (nbcall/signaling/protocol.py and wire.py, nbcall/_enums.py, nbcall/_messages.py) is
the source; js/protocol.js, js/messages.js, js/wire.js, js/test/wire_cases.json and the
message tables of docs/protocol.md are written by ``python -m nbcall._codegen``.  These tests
fail when someone changes a constant on one side only.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from nbcall import _codegen, _enums, _messages
from nbcall.signaling import protocol as p
from nbcall.signaling import wire

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "js"
BUNDLE = ROOT / "nbcall" / "static" / "widget.js"


def hand_written_js() -> list[Path]:
    generated = {JS / name for name in _codegen.GENERATED}
    return [
        path
        for path in sorted(JS.rglob("*.js"))
        if path not in generated and "node_modules" not in path.parts and "test" not in path.parts
    ]


def test_the_generated_js_is_current() -> None:
    assert _codegen.stale() == [], "run `python -m nbcall._codegen` and commit what it wrote"


@pytest.mark.parametrize(
    ("change", "file"),
    [
        (lambda mp: mp.setattr(p, "REASONS", p.REASONS | {"vanished"}), "protocol.js"),
        (lambda mp: mp.setattr(p.ErrorCode, "NAME_TAKEN", "name_in_use"), "protocol.js"),
        (lambda mp: mp.setattr(p, "CLOSE_CODES", {**p.CLOSE_CODES, "REPLACED": 4002}), "protocol.js"),
        (lambda mp: mp.setattr(_enums, "ENUMS", {**_enums.ENUMS, "CALL_STATES": ("idle",)}), "messages.js"),
        (lambda mp: mp.setitem(_messages.TO_PAGE, "call", _messages.Kind("call", "x", {"who": "str"})), "messages.js"),
        (
            lambda mp: mp.setitem(wire.SERVER_MESSAGES, "pong", with_field("pong", wire.Field("at", "number"))),
            "wire.js",
        ),
        (
            lambda mp: mp.setitem(wire.SERVER_MESSAGES, "pong", with_field("pong", wire.Field("at", "number"))),
            "test/wire_cases.json",
        ),
        (
            lambda mp: mp.setitem(wire.SERVER_MESSAGES, "pong", with_field("pong", wire.Field("at", "number"))),
            "docs/protocol.md",
        ),
        (
            lambda mp: mp.setitem(wire.SERVER_MESSAGES, "pong", with_field("pong", wire.Field("at", "number"))),
            "nbcall/signaling/wire_types.py",
        ),
        (
            lambda mp: mp.setitem(wire.CLIENT_MESSAGES, "ping", with_field("ping", wire.Field("n", "integer"))),
            "wire.js",
        ),
    ],
)
def test_a_change_on_the_python_side_alone_is_caught(
    monkeypatch: pytest.MonkeyPatch, change: object, file: str
) -> None:
    change(monkeypatch)  # type: ignore[operator]
    assert (file if file.startswith(("docs/", "nbcall/")) else f"js/{file}") in _codegen.stale()


def with_field(kind: str, field: wire.Field) -> wire.Message:
    """The server's (or, for a client type, the client's) ``kind`` with one more field."""
    table = wire.SERVER_MESSAGES if kind in wire.SERVER_MESSAGES else wire.CLIENT_MESSAGES
    message = table[kind]
    return dataclasses.replace(message, fields=(*message.fields, field))


def test_the_bundle_was_built_from_the_current_constants() -> None:
    """`npm run build` after the last codegen: the widget the kernel ships speaks this protocol."""
    bundle = BUNDLE.read_text(encoding="utf-8")
    codes = [v for k, v in vars(p.ErrorCode).items() if k.isupper() and isinstance(v, str)]
    missing = sorted(
        value for value in [*codes, *p.REASONS, *_messages.TO_PAGE, *_messages.TO_KERNEL] if f'"{value}"' not in bundle
    )
    assert missing == [], "nbcall/static/widget.js is stale: run `npm run build`"


def test_hand_written_js_retypes_no_protocol_constant() -> None:
    codes = {v for k, v in vars(p.ErrorCode).items() if k.isupper() and isinstance(v, str)} - {"busy"}
    numbers = {str(code) for code in p.CLOSE_CODES.values()}
    kinds = {k for k in [*_messages.TO_PAGE, *_messages.TO_KERNEL] if "_" in k}  # distinctive ones
    offenders = []
    for path in hand_written_js():
        text = path.read_text(encoding="utf-8")
        for value in codes | kinds:
            if re.search(rf"[\"'`]{re.escape(value)}[\"'`]", text):
                offenders.append(f"{path.relative_to(ROOT)}: {value!r}")
        for number in numbers:
            if re.search(rf"\b{number}\b", text):
                offenders.append(f"{path.relative_to(ROOT)}: {number}")
    assert offenders == [], "import these from js/protocol.js or js/messages.js"


def test_the_page_holds_no_name_rule() -> None:
    """Identity is the server's key: no lower-casing or Unicode normalisation of names in js/."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in hand_written_js()
        if re.search(r"\.(toLowerCase|toLocaleLowerCase|normalize)\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
