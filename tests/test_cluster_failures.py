"""A cluster node killed mid-call, and Redis stopped and started mid-run."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync

from nbcall._testing.redis import Node, RedisServer, redis_server
from nbcall.signaling import SignalingClient, SignalingError
from nbcall.signaling.cluster.config import ClusterConfig
from nbcall.signaling.cluster.inbox import Inbox
from nbcall.signaling.cluster.link import RedisLink
from nbcall.signaling.names import name_key

from .cluster_helpers import CANDIDATE, SDP, in_a_call, until_online


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def two_nodes(redis: RedisServer, tmp_path: Path) -> Iterator[list[Node]]:
    started = [Node(redis.url, f"f{i}", log=tmp_path / f"f{i}.log") for i in range(2)]
    try:
        yield started
    finally:
        for node in started:
            if node.proc.poll() is None:
                node.stop()


def health(node: Node) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/health", timeout=5) as reply:
        result: dict[str, object] = json.loads(reply.read())
        return result


async def until_status(node: Node, status: str, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while health(node)["status"] != status:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{node.node_id} not {status} after {timeout} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow
async def test_a_killed_node_frees_its_names_and_its_users_partners_are_told(two_nodes: list[Node]) -> None:
    survivor, victim = two_nodes
    async with SignalingClient(survivor.url, "alice") as alice:
        bob = SignalingClient(victim.url, "bob")
        await bob.connect()
        await until_online(alice, "bob")
        await in_a_call(alice, bob)
        killed = time.monotonic()
        victim.kill()  # SIGKILL: no close frames, no goodbye to Redis
        hangup = await alice.expect("hangup", timeout=3.0)  # the bound, as a deadline
        told = time.monotonic() - killed
        assert (hangup["reason"], hangup["from_key"]) == ("disconnected", name_key("bob"))
        print(f"partner told {told * 1e3:.0f} ms after SIGKILL")
        async with SignalingClient(survivor.url, "bob") as again:  # the name is free again
            assert again.registration is not None
        with pytest.raises(SignalingError, match="no_call"):
            await alice.send({"type": "hangup", "to": "bob"})
            await alice.expect("hangup")
        await bob.close()


@pytest.mark.slow
async def test_redis_stopped_and_started_keeps_local_calls_and_every_user(
    redis: RedisServer, two_nodes: list[Node]
) -> None:
    n0, n1 = two_nodes
    async with (
        SignalingClient(n0.url, "alice") as alice,
        SignalingClient(n0.url, "bob") as bob,
        SignalingClient(n1.url, "carol") as carol,
    ):
        await until_online(alice, "carol")
        redis.stop()
        print(f"degraded after {await until_status(n0, 'degraded') * 1e3:.0f} ms")
        await until_status(n1, "degraded")
        # calls among one node's own users go on
        await in_a_call(alice, bob)
        await alice.send({"type": "offer", "to": "bob", "sdp": SDP})
        assert (await bob.expect("offer"))["from"] == "alice"
        await bob.send({"type": "candidate", "to": "alice", "candidate": CANDIDATE})
        await alice.expect("candidate")
        # across nodes: a clear error, at once
        with pytest.raises(SignalingError, match="cluster_unavailable"):
            await carol.send({"type": "invite", "to": "alice"})
            await carol.expect("ringing")
        # a newcomer registers on its node meanwhile
        async with SignalingClient(n1.url, "dave") as dave:
            await asyncio.sleep(1.0)
            redis.start()  # empty: no persistence, as a restart without a disk would be
            print(f"recovered after {await until_status(n0, 'ok') * 1e3:.0f} ms")
            await until_status(n1, "ok")
            for client in (alice, carol, dave):  # nobody is lost, on any node
                await until_online(client, "alice", "bob", "carol", "dave")
            await carol.send({"type": "invite", "to": "dave"})
            await dave.expect("invite")
            await alice.send({"type": "hangup", "to": "bob"})
            await bob.expect("hangup")
            await carol.send({"type": "cancel", "to": "dave"})
            await dave.expect("cancel")
            await dave.send({"type": "invite", "to": "alice"})  # across nodes again
            await alice.expect("invite")


@pytest.mark.slow
async def test_a_name_left_and_taken_again_while_redis_was_away_stays_taken_when_it_is_back(
    redis: RedisServer, two_nodes: list[Node]
) -> None:
    """The release of the first alice, queued while Redis was away, must not delete the entry
    of the second alice (same node) once the node has published its users again."""
    n0, n1 = two_nodes
    first = SignalingClient(n0.url, "alice")
    await first.connect()
    redis.stop()
    await until_status(n0, "degraded")
    await first.close()  # its release cannot reach Redis
    await asyncio.sleep(0.3)
    async with SignalingClient(n0.url, "alice") as second:
        redis.start()
        await until_status(n0, "ok")
        await until_status(n1, "ok")
        store = redis_sync.Redis(port=redis.port)
        deadline = time.monotonic() + 5  # the node's writes after its re-publishing
        while store.hget("nbcall:users", name_key("alice")) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        entry = store.hget("nbcall:users", name_key("alice"))
        assert entry is not None and json.loads(entry)["node"] == "f0"
        with pytest.raises(SignalingError, match="name_taken"):
            async with SignalingClient(n1.url, "alice"):
                pass
        await second.send({"type": "list"})
        await second.expect("users")


@pytest.mark.slow
async def test_redis_closing_an_idle_publisher_is_not_an_outage(redis: RedisServer, two_nodes: list[Node]) -> None:
    """Redis's ``timeout`` (or a proxy's idle cut) closes a node's publisher when no
    cross-node message went for a while (its subscriber is exempt): the node stays ``ok`` and
    the next message crosses on a new connection."""
    n0, n1 = two_nodes
    async with SignalingClient(n0.url, "alice") as alice, SignalingClient(n1.url, "bob") as bob:
        await until_online(alice, "bob")
        redis_sync.Redis(port=redis.port).config_set("timeout", 1)
        deadline = time.monotonic() + 3.5  # Redis closes idle clients within ~2 s
        while time.monotonic() < deadline:
            assert health(n0)["status"] == "ok" and health(n1)["status"] == "ok"
            await asyncio.sleep(0.05)
        await in_a_call(alice, bob)  # invite and accept cross both ways
        await alice.send({"type": "offer", "to": "bob", "sdp": SDP})
        assert (await bob.expect("offer"))["from"] == "alice"


async def test_stop_ends_even_when_a_cancellation_comes_out_as_a_timeout(redis: RedisServer) -> None:
    """A cancellation that lands just as redis-py's connect or read times out comes out as a
    TimeoutError, which the heartbeat takes for "Redis is down" and goes on: stop() waited for
    it for ever, and a node whose Redis had gone ignored SIGTERM.  Here the heartbeat's Redis
    call turns every cancellation into a TimeoutError; stop() must still end, promptly."""
    link = RedisLink(ClusterConfig(url=redis.url, node_id="swallower"), lambda _data: None, _nothing, lambda: None)

    async def beat_that_swallows_cancellation(*_args: object, **_kwargs: object) -> list[int]:
        try:
            await asyncio.sleep(30)  # a Redis that does not answer: where stop() finds it
        except asyncio.CancelledError:
            raise TimeoutError("Timeout connecting to server") from None
        raise TimeoutError("Timeout reading from server")

    link._beat = beat_that_swallows_cancellation  # type: ignore[assignment]
    await link.start()
    await asyncio.sleep(0.3)  # the heartbeat waits in its Redis call
    stopping = asyncio.ensure_future(link.stop())
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert stopping in done, "stop() did not end"
    assert all(task.done() for task in link._tasks)


@pytest.mark.parametrize("reading", ["inbox", "redis-py"])
async def test_a_node_hears_its_channels_in_order_with_or_without_the_inbox(
    redis: RedisServer, reading: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox reads the subscription in its transport's callback; if redis-py's internals
    move (no hiredis reader, no stream buffer), the link reads through redis-py instead.
    Both deliver every message in order, and a message its handler fails on stops neither."""
    if reading == "redis-py":
        monkeypatch.setattr(Inbox, "take_over", classmethod(lambda cls, conn, handle: None))
    heard: list[bytes] = []

    def hear(data: bytes) -> None:
        heard.append(data)
        if data == b"bad":
            raise ValueError("a message this node cannot handle")

    link = RedisLink(ClusterConfig(url=redis.url, node_id="listener"), hear, _nothing, lambda: None)
    await link.start()
    publisher = redis_sync.Redis(port=redis.port)
    try:
        sent = [b"m%d" % n for n in range(50)]
        for data in [*sent[:25], b"bad", *sent[25:]]:
            publisher.publish("nbcall:to:listener", data)
        publisher.publish("nbcall:all", b"everyone")
        deadline = time.monotonic() + 5
        while len(heard) < 52 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert heard == [*sent[:25], b"bad", *sent[25:], b"everyone"]
    finally:
        publisher.close()
        await link.stop()


async def _nothing() -> None:
    return None


@pytest.mark.slow
async def test_malformed_bus_messages_do_not_stop_a_node_from_hearing_the_cluster(
    redis: RedisServer, two_nodes: list[Node]
) -> None:
    """Whatever lands on a node's channels (a broken envelope, broken JSON, an unknown event)
    is logged and dropped; the messages after it still arrive."""
    first, second = two_nodes
    publisher = redis_sync.Redis(port=redis.port)
    async with SignalingClient(first.url, "alice") as alice, SignalingClient(second.url, "bob") as bob:
        await until_online(alice, "bob")
        for channel in (f"nbcall:to:{second.node_id}", "nbcall:all"):
            for junk in (b"[not an envelope", b"{not json", b'{"t":"nonsense"}', b"\xff\xfe", b"[]\n[1,2]"):
                publisher.publish(channel, junk)
        await in_a_call(alice, bob)  # an invite, accept and offer crossing to the second node
        await alice.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})
        assert (await bob.expect("candidate"))["from"] == "alice"
    publisher.close()
