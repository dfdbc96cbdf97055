"""Chat that cannot be used as a weapon, on the kernel's side (no browser): the page reports
each line once (chat_sent / chat_received), the history behind ``messages`` is bounded by
count and bytes, ``on_chat`` runs once per received line, and ``send_chat`` has the same
rate limit as the page."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from nbcall import CallWidget
from nbcall._errors import PageError
from nbcall._in_call import ChatHistory, js_len, line_bytes, utf8_len
from nbcall._messages import CHAT_BURST, CHAT_RATE, MAX_CHAT_BYTES, MAX_CHAT_CHARS, MAX_CHAT_LINES, TO_KERNEL, problem
from nbcall.signaling.bucket import TokenBucket
from nbcall.signaling.protocol import ErrorCode

from .error_helpers import raises_code

URL = "ws://127.0.0.1:1"  # never dialled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def connected_widget() -> tuple[CallWidget, list[dict[str, Any]]]:
    w = CallWidget("ann", server=URL)
    w._handle_custom_msg({"kind": "view"}, [])
    w.set_trait("state", "connected")
    w.set_trait("peer", "ben")
    sent: list[dict[str, Any]] = []
    w.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    return w, sent


def received(w: CallWidget, text: str, time: float = 1.0, sender: str = "ben") -> None:
    content = {"kind": "chat_received", "from": sender, "text": text, "time": time}
    assert problem(TO_KERNEL, content) is None
    w._handle_custom_msg(content, [])


def sent_by_page(w: CallWidget, text: str, time: float = 2.0) -> None:
    w._handle_custom_msg({"kind": "chat_sent", "text": text, "time": time}, [])


def test_the_bounds_are_what_the_docs_say() -> None:
    assert (MAX_CHAT_LINES, MAX_CHAT_BYTES, CHAT_RATE, CHAT_BURST, MAX_CHAT_CHARS) == (200, 256 * 1024, 5, 20, 4000)


def test_messages_is_kernel_side_and_filled_one_line_at_a_time() -> None:
    w, _ = connected_widget()
    assert "messages" not in w.keys  # never sent to the page: the history does not travel back
    received(w, "hi ben here", 1.0)
    sent_by_page(w, "hello ben", 2.0)
    received(w, "<img src=x onerror=alert(1)> 你好 👋", 3.0)
    assert w.messages == [
        {"from": "ben", "text": "hi ben here", "time": 1.0},
        {"from": "ann", "text": "hello ben", "time": 2.0},
        {"from": "ben", "text": "<img src=x onerror=alert(1)> 你好 👋", "time": 3.0},
    ]


def test_the_history_is_bounded_by_count_oldest_first() -> None:
    w, _ = connected_widget()
    for i in range(MAX_CHAT_LINES + 50):
        received(w, f"line {i}", float(i))
    assert len(w.messages) == MAX_CHAT_LINES
    assert w.messages[0]["text"] == "line 50" and w.messages[-1]["text"] == f"line {MAX_CHAT_LINES + 49}"


def test_the_history_is_bounded_by_bytes() -> None:
    w, _ = connected_widget()
    text = "é" * MAX_CHAT_CHARS  # 8000 bytes
    for i in range(100):
        received(w, text, float(i))
    per = utf8_len("ben") + utf8_len(text)
    assert len(w.messages) == MAX_CHAT_BYTES // per
    assert sum(line_bytes(m) for m in w.messages) <= MAX_CHAT_BYTES
    assert w.messages[-1]["time"] == 99.0


def test_messages_set_by_code_is_bounded_and_the_history_follows() -> None:
    w, _ = connected_widget()
    w.messages = [{"from": "ben", "text": f"old {i}", "time": float(i)} for i in range(300)]
    assert len(w.messages) == MAX_CHAT_LINES and w.messages[0]["text"] == "old 100"
    w.messages = []
    received(w, "fresh", 1.0)
    assert [m["text"] for m in w.messages] == ["fresh"]


def test_on_chat_runs_once_per_received_line_even_for_repeats() -> None:
    w, _ = connected_widget()
    got: list[dict[str, Any]] = []
    w.on_chat(got.append)
    received(w, "same", 5.0)
    received(w, "same", 5.0)  # the same text at the same time is still a second line
    sent_by_page(w, "mine")  # this side's own line is not "received"
    received(w, "third", 6.0)
    assert [(m["from"], m["text"]) for m in got] == [("ben", "same"), ("ben", "same"), ("ben", "third")]
    # Once the history is full, each new line is still reported once.
    for i in range(MAX_CHAT_LINES + 10):
        received(w, f"n{i}", float(i))
    assert len(got) == 3 + MAX_CHAT_LINES + 10


def test_a_failing_on_chat_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    w, _ = connected_widget()
    got: list[str] = []

    def broken(message: dict[str, Any]) -> None:
        raise RuntimeError("oops")

    w.on_chat(broken)
    w.on_chat(lambda m: got.append(m["text"]))
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        received(w, "hi")
    assert got == ["hi"] and w.messages[-1]["text"] == "hi"
    assert "on_chat callback failed" in caplog.text


def test_the_page_is_trusted_for_the_sender_but_times_are_checked() -> None:
    w, _ = connected_widget()
    before = time.time()
    received(w, "no time from the peer", -5.0)
    received(w, "far future", 1e300)
    received(w, "empty from", 7.0, sender="")
    assert all(before <= m["time"] <= time.time() for m in w.messages[:2])
    assert w.messages[2]["from"] == "ben"  # the call's peer


def test_malformed_chat_events_are_kept_as_page_problems_not_raised() -> None:
    w, _ = connected_widget()
    w._handle_custom_msg({"kind": "chat_received", "text": "no from", "time": 1}, [])
    w._handle_custom_msg({"kind": "chat_sent", "text": 5, "time": 1}, [])
    assert w.messages == []
    assert w._page_problem_count == 2


def test_dropped_reports_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    w, _ = connected_widget()
    assert w.chat_dropped == {"flood": 0, "malformed": 0}
    with caplog.at_level(logging.WARNING, logger="nbcall.widget"):
        w._handle_custom_msg({"kind": "chat_dropped", "from": "ben", "flood": 1, "malformed": 0}, [])
        w._handle_custom_msg({"kind": "chat_dropped", "from": "ben", "flood": 979, "malformed": 3}, [])
    assert w.chat_dropped == {"flood": 980, "malformed": 3}
    warnings = [r for r in caplog.records if "dropped chat from ben" in r.getMessage()]
    assert len(warnings) == 1, "a sustained flood warns once, not every second"


def test_send_chat_is_rate_limited_like_the_page() -> None:
    w, sent = connected_widget()
    clock = Clock()
    w._chat.send_bucket = TokenBucket(CHAT_RATE, CHAT_BURST, clock=clock)
    for i in range(CHAT_BURST):
        w.send_chat(f"line {i}")
    with raises_code(ErrorCode.RATE_LIMITED):
        w.send_chat("one too many")
    assert len(sent) == CHAT_BURST
    clock.now += 1 / CHAT_RATE
    w.send_chat("after a pause")
    with raises_code(ErrorCode.RATE_LIMITED):
        w.send_chat("again too soon")
    clock.now += 60
    for i in range(CHAT_BURST):
        w.send_chat(f"burst {i}")  # a long pause refills the burst, no more
    with raises_code(ErrorCode.RATE_LIMITED):
        w.send_chat("over")
    assert [m["kind"] for m in sent] == ["chat"] * (2 * CHAT_BURST + 1)


def test_send_chat_errors_come_before_the_rate_limit() -> None:
    w, sent = connected_widget()
    with raises_code(PageError.INVALID_ARGUMENT):
        w.send_chat("")
    with raises_code(ErrorCode.TOO_LARGE):
        w.send_chat("x" * (MAX_CHAT_CHARS + 1))
    # Characters as the page counts them (UTF-16): an emoji is two.
    assert js_len("👋") == 2
    with raises_code(ErrorCode.TOO_LARGE):
        w.send_chat("👋" * (MAX_CHAT_CHARS // 2 + 1))
    w.send_chat("👋" * (MAX_CHAT_CHARS // 2))
    w.set_trait("state", "ended")
    for _ in range(CHAT_BURST + 5):
        with raises_code(PageError.NOT_CONNECTED):
            w.send_chat("hi")
    w.set_trait("state", "connected")
    for _ in range(CHAT_BURST - 1):
        w.send_chat("refused sends took no tokens")
    assert len(sent) == CHAT_BURST


def test_a_thousand_lines_cost_the_kernel_little() -> None:
    w, _ = connected_widget()
    got: list[dict[str, Any]] = []
    w.on_chat(got.append)
    text = "y" * MAX_CHAT_CHARS
    start = time.perf_counter()
    for i in range(1000):
        received(w, text, float(i))
    took = time.perf_counter() - start
    assert len(w.messages) <= MAX_CHAT_LINES and len(got) == 1000
    assert took < 2.0, f"1000 lines took {took:.2f} s"


def test_history_and_bucket_units() -> None:
    history = ChatHistory(max_lines=3, max_bytes=100)
    assert [history.append({"from": "b", "text": t, "time": 0}) for t in "abcd"] == [0, 0, 0, 1]
    assert history.append({"from": "b", "text": "z" * 98, "time": 0}) == 3  # 99 bytes: all others go
    assert len(history) == 1 and history.bytes == 99
    assert utf8_len("\ud800") == 3 and utf8_len("👋") == 4 and js_len("a👋") == 3
