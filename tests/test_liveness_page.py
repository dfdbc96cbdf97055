"""The kernel and widget side of liveness (issue 12), without a browser.

A page using the kernel transport pings (``kernel_socket_ping``) every second; one that
crashed without ``pagehide`` stops, and the kernel drops its socket after a few *idle*
seconds (no close frame: the server gives a call its reconnect grace and tells the partner
``peer_status`` at once).  A busy kernel reads no comm messages, so it never drops a page
for that.  The messages are fed to a real CallWidget's comm handler, its kernel sockets
talk to a real server.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import traitlets

from nbcall import CallWidget
from nbcall._kernel_socket import PAGE_SILENCE, KernelActivity, KernelSockets
from nbcall.signaling import Limits, SignalingClient

SILENCE = 0.6  # the tests' page silence (the default is PAGE_SILENCE)


class Page:
    """The page side of one widget's kernel transport, played by the test."""

    def __init__(self, widget: CallWidget, sid: str = "p1") -> None:
        self.widget = widget
        self.sid = sid
        self.out: list[dict[str, Any]] = []
        widget.send = self.out.append  # type: ignore[method-assign]

    def message(self, kind: str, **fields: Any) -> None:
        self.widget._handle_custom_msg({"kind": kind, "id": self.sid, **fields}, [])

    def open(self) -> None:
        self.message("kernel_socket_open")
        self.ping()

    def ping(self) -> None:
        self.message("kernel_socket_ping")

    def send(self, frame: dict[str, Any]) -> None:
        self.message("kernel_socket_send", data=json.dumps(frame))

    def received(self, type_: str) -> list[dict[str, Any]]:
        frames = [json.loads(c["data"]) for c in list(self.out) if c["kind"] == "kernel_socket_message"]
        return [f for f in frames if f.get("type") == type_]

    def closed(self) -> dict[str, Any] | None:
        return next((c for c in list(self.out) if c["kind"] == "kernel_socket_closed"), None)

    async def wait(self, what: Any, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = what()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.sid}: nothing after {timeout} s: {self.out}")


def widget(url: str, user: str, activity: KernelActivity | None = None) -> CallWidget:
    w = CallWidget(user, server=url)
    w._sockets = KernelSockets(lambda: w.server, w._command, silence=SILENCE, activity=activity or KernelActivity())
    w._handlers.update(w._sockets.handlers())
    return w


async def registered(page: Page, user: str) -> None:
    page.open()
    page.send({"type": "register", "username": user, "client": "nbcall-widget", "presence": True})
    await page.wait(lambda: page.received("registered"))


@pytest.mark.slow
async def test_a_page_that_stops_pinging_leaves_the_server_within_seconds(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(presence_interval=0.05))
    w = widget(server.url, "crashy")
    page = Page(w)
    async with SignalingClient(server.url, "watcher") as watcher:
        await registered(page, "crashy")
        for _ in range(5):  # alive: pinging every 0.2 s for a second
            await asyncio.sleep(0.2)
            page.ping()
        assert page.closed() is None
        crashed = time.monotonic()  # no pagehide, no more pings
        closed = await page.wait(page.closed)
        took = time.monotonic() - crashed
        assert closed["code"] == 1006 and SILENCE <= took < SILENCE + 1.5, took
        while "crashy" not in (await watcher.expect("presence"))["left"]:
            pass
        left = time.monotonic() - crashed
        assert left < SILENCE + 2.0, left
        assert w._sockets.dropped == 1 and len(w._sockets) == 0
    w.close()


@pytest.mark.slow
async def test_a_page_that_never_pings_is_never_dropped(server_factory: Any) -> None:
    """An older page (no kernel_socket_ping) keeps its socket as before."""
    server = await server_factory()
    w = widget(server.url, "oldpage")
    page = Page(w)
    page.message("kernel_socket_open")
    page.send({"type": "register", "username": "oldpage", "client": "nbcall-widget"})
    await page.wait(lambda: page.received("registered"))
    await asyncio.sleep(SILENCE * 3)
    assert page.closed() is None and len(w._sockets) == 1
    w.close()


@pytest.mark.slow
async def test_a_busy_kernel_does_not_drop_a_live_page(server_factory: Any) -> None:
    """While a cell runs the kernel reads no comm messages: that silence does not count."""
    server = await server_factory()
    activity = KernelActivity()
    w = widget(server.url, "patient", activity)
    page = Page(w)
    await registered(page, "patient")
    activity.started()  # a long cell: the page's pings wait in the kernel's queue
    await asyncio.sleep(SILENCE * 3)
    assert page.closed() is None
    activity.finished()  # the cell ends ...
    await asyncio.sleep(SILENCE / 3)
    page.ping()  # ... and the queued pings are read
    await asyncio.sleep(SILENCE / 2)
    assert page.closed() is None, "the idle seconds after the cell count from its end"
    closed = await page.wait(page.closed, timeout=SILENCE * 4)  # then real silence
    assert closed["code"] == 1006
    w.close()


@pytest.mark.slow
async def test_a_crashed_page_in_a_call_its_partner_hears_peer_status_at_once(server_factory: Any) -> None:
    """The kernel drops the socket without a close frame: a call gets the reconnect grace."""
    server = await server_factory(limits=Limits(presence_interval=0.05, reconnect_grace=1.5))
    w = widget(server.url, "caller")
    page = Page(w)
    async with SignalingClient(server.url, "partner") as partner:
        await registered(page, "caller")
        page.send({"type": "invite", "to": "partner", "call_id": "c-1"})
        await partner.expect("invite")
        await partner.send({"type": "accept", "to": "caller"})
        await page.wait(lambda: page.received("accept"))
        crashed = time.monotonic()
        status = await partner.expect("peer_status", timeout=SILENCE + 2)
        noticed = time.monotonic() - crashed
        assert (status["status"], status["call_id"]) == ("reconnecting", "c-1")
        assert noticed < SILENCE + 2.0, noticed
        hangup = await partner.expect("hangup", timeout=4)  # nobody came back within the grace
        assert hangup["reason"] == "disconnected"
    w.close()


def test_the_kernel_activity_follows_ipython_execution_events() -> None:
    activity = KernelActivity()
    assert activity.quiet_since(5.0) == max(5.0, activity.idle_since)
    activity.started()
    assert activity.quiet_since(time.monotonic()) is None
    activity.finished()
    assert activity.quiet_since(0.0) == activity.idle_since
    activity.hook()  # no IPython shell in this process: nothing to follow, no error
    assert PAGE_SILENCE == 3.0


def test_the_kernel_activity_hooks_into_ipythons_execute_events(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython
    from IPython.core.events import EventManager, available_events

    class Shell:
        events = EventManager(None, available_events)

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell)
    activity = KernelActivity()
    activity.hook()
    activity.hook()  # once only
    Shell.events.trigger("pre_execute")
    assert activity.busy
    Shell.events.trigger("post_execute")
    assert not activity.busy and time.monotonic() - activity.idle_since < 1
    assert len(Shell.events.callbacks["pre_execute"]) == 1


def test_a_ping_for_an_unknown_socket_is_ignored() -> None:
    w = CallWidget("nobody", server="ws://127.0.0.1:9")
    w._handle_custom_msg({"kind": "kernel_socket_ping", "id": "never-opened"}, [])
    assert not w._page_problems and not w._sockets._heard
    w._handle_custom_msg({"kind": "kernel_socket_ping"}, [])  # no id: a problem, logged
    assert w._page_problem_count == 1
    w.close()


def test_peer_status_and_lost_after_traits() -> None:
    w = CallWidget("traits", server="ws://127.0.0.1:9", lost_after=2.5)
    assert (w.peer_status, w.lost_after) == ("", 2.5)
    assert w.trait_metadata("peer_status", "sync") and w.trait_metadata("lost_after", "sync")
    seen: list[str] = []
    w.observe(lambda change: seen.append(change["new"]), names=["peer_status"])
    w.peer_status = "reconnecting"  # as the page sets it
    w.peer_status = "connected"
    assert seen == ["reconnecting", "connected"]
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(traitlets.TraitError, match="lost_after"):
            w.lost_after = bad
    with pytest.raises(traitlets.TraitError):
        w.peer_status = "lost"
    w.lost_after = 30
    assert w.lost_after == 30.0
    w.close()
