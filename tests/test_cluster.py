"""The server's rules across cluster nodes: three ``nbcall-server --redis`` processes on one
real redis-server; clients of one call on different nodes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nbcall._testing.redis import Node, RedisServer
from nbcall.signaling import SignalingClient, SignalingError
from nbcall.signaling import protocol as p
from nbcall.signaling.names import name_key

from .cluster_helpers import CANDIDATE, SDP, drain, in_a_call, seed_json, unique, until, until_online

pytestmark = pytest.mark.slow  # three nbcall-server processes, seconds to start


@pytest.fixture(scope="module")
def nodes(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    logs = tmp_path_factory.mktemp("nodes")
    started = [Node(redis.url, f"n{i}", log=logs / f"n{i}.log") for i in range(3)]
    try:
        yield started
    finally:
        for node in started:
            node.stop()


def http_get(node: Node, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}{path}", timeout=5) as reply:
        data: bytes = reply.read()
        return data


async def test_seed_messages_cross_nodes_in_the_seeds_exact_shape(nodes: list[Node]) -> None:
    a_name, b_name = unique("小文", "wzh")
    async with connect(nodes[0].url) as a, connect(nodes[1].url) as b:
        await a.send(seed_json({"type": "register", "id": "x", "username": a_name}))
        await b.send(seed_json({"type": "register", "id": "y", "username": b_name}))
        await a.recv()
        await b.recv()
        async with SignalingClient(nodes[0].url, unique("probe")[0]) as probe:
            await until_online(probe, b_name)
        for kind, field in (("offer", "sdp"), ("candidate", "candidate")):
            payload = SDP if field == "sdp" else CANDIDATE
            await a.send(seed_json({"type": kind, field: payload, "from": "someone", "to": b_name}))
            assert await b.recv() == seed_json({"type": kind, "from": a_name, field: payload})
        answer = {"type": "answer", "sdp": "v=0\r\n"}
        await b.send(seed_json({"type": "answer", "sdp": answer, "to": a_name}))
        assert await a.recv() == seed_json({"type": "answer", "from": b_name, "sdp": answer})


async def test_invite_accept_offer_answer_hangup_across_nodes(nodes: list[Node]) -> None:
    a, b = unique("alice", "bob")
    async with SignalingClient(nodes[0].url, a) as alice, SignalingClient(nodes[1].url, b) as bob:
        await until_online(alice, b)
        await alice.send({"type": "invite", "to": b, "call_id": "c1"})
        ringing = await alice.expect("ringing")
        invite = await bob.expect("invite")
        assert ringing == {"type": "ringing", "from": b, "from_key": name_key(b), "call_id": "c1"}
        assert invite == {"type": "invite", "from": a, "from_key": name_key(a), "call_id": "c1"}
        await bob.send({"type": "accept", "to": a})
        assert await alice.expect("accept") == {"type": "accept", "from": b, "from_key": name_key(b), "call_id": "c1"}
        await alice.send({"type": "offer", "to": b, "sdp": SDP, "call_id": "c1"})
        offer = await bob.expect("offer")
        assert list(offer) == ["type", "from", "sdp", "call_id", "from_key"] and offer["from"] == a
        await bob.send({"type": "candidate", "to": a, "candidate": CANDIDATE})
        assert (await alice.expect("candidate"))["candidate"] == CANDIDATE
        await bob.send({"type": "hangup", "to": a, "reason": "failed"})
        hangup = await alice.expect("hangup")
        assert (hangup["reason"], hangup["from"], hangup["call_id"]) == ("failed", b, "c1")
        with pytest.raises(SignalingError, match="no_call"):  # the call is over on both nodes
            await alice.send({"type": "hangup", "to": b})
            await alice.expect("hangup")
        with pytest.raises(SignalingError, match="no_call"):
            await bob.send({"type": "candidate", "to": a, "candidate": CANDIDATE})
            await bob.expect("candidate")


async def test_reject_cancel_and_ring_timeout_across_nodes(nodes: list[Node]) -> None:
    a, b = unique("alice", "bob")
    async with SignalingClient(nodes[0].url, a) as alice, SignalingClient(nodes[2].url, b) as bob:
        await until_online(alice, b)
        await alice.send({"type": "invite", "to": b})
        await bob.expect("invite")
        await bob.send({"type": "reject", "to": a})
        assert (await alice.expect("reject"))["reason"] == "rejected"
        await alice.send({"type": "invite", "to": b})
        await bob.expect("invite")
        await alice.send({"type": "cancel", "to": b})
        assert (await bob.expect("cancel"))["reason"] == "cancelled"
        with pytest.raises(SignalingError, match="no_call"):  # nothing left to accept
            await bob.send({"type": "accept", "to": a})
            await bob.expect("accept")


async def test_busy_across_nodes_for_invites_and_plain_offers(nodes: list[Node]) -> None:
    a, b, c = unique("alice", "bob", "carol")
    async with (
        SignalingClient(nodes[0].url, a) as alice,
        SignalingClient(nodes[1].url, b) as bob,
        SignalingClient(nodes[2].url, c) as carol,
    ):
        await until_online(carol, a, b)
        await in_a_call(alice, bob)
        await carol.send({"type": "invite", "to": b, "call_id": "c2"})
        busy = await carol.expect("busy")
        assert busy == {"type": "busy", "from": b, "from_key": name_key(b), "call_id": "c2"}
        await carol.send({"type": "offer", "to": a, "sdp": SDP})  # the seed's way of calling
        assert (await carol.expect("busy"))["from"] == a
        # Each busy came from the callee's node after it handled the invite or offer: a round
        # trip through each callee's own connection then covers anything that node sent them.
        assert [m for m in await drain(bob) if m["type"] in ("invite", "offer")] == []
        assert [m for m in await drain(alice) if m["type"] in ("invite", "offer")] == []
        # carol is in no call after being refused: she can call again once they hang up
        await alice.send({"type": "hangup", "to": b})
        await bob.expect("hangup")
        await carol.send({"type": "invite", "to": b})
        await bob.expect("invite")


async def test_disconnect_ends_the_call_on_the_other_node_and_frees_the_name(nodes: list[Node]) -> None:
    a, b = unique("alice", "bob")
    async with SignalingClient(nodes[0].url, a) as alice:
        bob = SignalingClient(nodes[1].url, b)
        await bob.connect()
        await until_online(alice, b)
        await in_a_call(alice, bob)
        await bob.close()  # a clean close: the call ends at once
        hangup = await alice.expect("hangup", timeout=2)
        assert (hangup["reason"], hangup["from_key"]) == ("disconnected", name_key(b))
        async with SignalingClient(nodes[2].url, b):  # the name is free on every node
            pass


async def test_presence_across_nodes_is_batched(nodes: list[Node]) -> None:
    watcher_name, *names = unique("watcher", *[f"user{i}-" for i in range(20)])
    async with SignalingClient(nodes[0].url, watcher_name, presence=True) as watcher:
        others = [SignalingClient(nodes[1 + i % 2].url, name) for i, name in enumerate(names)]
        await asyncio.gather(*(o.connect() for o in others))
        joined: set[str] = set()
        updates = 0
        while not set(names) <= joined:
            update = await watcher.expect("presence")
            updates += 1
            joined.update(update["joined"])
            assert update["joined_keys"] == [name_key(n) for n in update["joined"]]
        assert updates < 10  # 20 joins on two other nodes: a few batches, not one per join
        await asyncio.gather(*(o.close() for o in others))
        left: set[str] = set()
        while not set(names) <= left:
            left.update((await watcher.expect("presence"))["left"])


async def test_errors_that_cross_nodes(nodes: list[Node]) -> None:
    a, b, c = unique("alice", "bob", "carol")
    async with (
        SignalingClient(nodes[0].url, a) as alice,
        SignalingClient(nodes[1].url, b) as bob,
        SignalingClient(nodes[2].url, c) as carol,
    ):
        await until_online(alice, b, c)
        with pytest.raises(SignalingError, match="unknown_peer"):
            await alice.send({"type": "invite", "to": unique("nobody")[0]})
            await alice.expect("ringing")
        with pytest.raises(SignalingError, match="no_call"):  # a candidate to someone not in a call with you
            await alice.send({"type": "candidate", "to": b, "candidate": CANDIDATE})
            await alice.expect("candidate")
        await in_a_call(alice, bob)
        with pytest.raises(SignalingError, match="busy"):  # inviting while in a call
            await alice.send({"type": "invite", "to": c})
            await alice.expect("ringing")
        with pytest.raises(SignalingError, match="no_call"):  # answering a call you are not in
            await carol.send({"type": "answer", "to": b, "sdp": SDP})
            await carol.expect("answer")
        with pytest.raises(SignalingError, match="name_taken"):  # the name, on another node
            await SignalingClient(nodes[2].url, b).connect()
        with pytest.raises(SignalingError, match="name_taken"):  # a look-alike of it (capital B, width)
            await SignalingClient(nodes[0].url, "Ｂ" + b[1:]).connect()
        assert [m for m in bob.pending() if m["type"] in ("answer", "candidate", "invite")] == []


async def test_forged_from_and_strangers_are_refused_across_nodes(nodes: list[Node]) -> None:
    a, b, m = unique("alice", "bob", "mallory")
    async with (
        SignalingClient(nodes[0].url, a) as alice,
        SignalingClient(nodes[1].url, b) as bob,
        SignalingClient(nodes[2].url, m) as mallory,
    ):
        await until_online(mallory, a, b)
        await in_a_call(alice, bob)
        for _ in range(30):  # a stranger floods the call with candidates, signed as alice
            await mallory.send({"type": "candidate", "to": b, "from": a, "candidate": CANDIDATE})
        await mallory.send({"type": "offer", "to": b, "from": a, "sdp": SDP})
        # The candidates are refused on mallory's node; the offer crosses to bob's, whose busy
        # comes back after it (and after any candidate that had crossed before it).
        replies = await until(mallory, "busy")
        errors = [x for x in replies if x["type"] == "error"]
        assert {e["code"] for e in errors} <= {"no_call", "busy", "rate_limited"} and errors
        assert any(x["type"] == "busy" for x in replies) or any(e["code"] == "no_call" for e in errors)
        # nothing reached bob; his call goes on
        assert [x for x in await drain(bob) if x["type"] != "presence"] == []
        await alice.send({"type": "candidate", "to": b, "candidate": CANDIDATE})
        assert (await bob.expect("candidate"))["from"] == a


async def test_a_flood_across_nodes_is_limited_per_connection(nodes: list[Node]) -> None:
    a, b = unique("alice", "bob")
    async with SignalingClient(nodes[0].url, a) as alice, SignalingClient(nodes[1].url, b) as bob:
        await until_online(alice, b)
        await in_a_call(alice, bob)
        for _ in range(400):  # the burst is 200
            await alice.send({"type": "candidate", "to": b, "candidate": CANDIDATE})
        errors = [x for x in await drain(alice, flooded=True) if x["type"] == "error"]
        assert [e["code"] for e in errors] == ["rate_limited"]  # once, not per message
        # Node 0 has handled the flood and publishes for node 1 in order: once a last
        # candidate reaches bob, every one of the flood that crossed has too.  (It is sent
        # again while it does not come: past the rate limit it may be dropped.)
        last = {**CANDIDATE, "sdpMid": "last"}
        received: list[dict[str, object]] = []
        while not any(x.get("candidate") == last for x in received):
            await alice.send({"type": "candidate", "to": b, "candidate": last})
            with contextlib.suppress(TimeoutError):
                while (message := await bob.recv(timeout=0.5)).get("candidate") != last:
                    received.append(message)
                received.append(message)
        received = [x for x in received if x["type"] == "candidate" and x["candidate"] != last]
        assert 195 <= len(received) <= 260  # the burst and what the rate refilled meanwhile


async def test_takeover_across_nodes_needs_the_credential_and_keeps_the_call(nodes: list[Node]) -> None:
    a, b = unique("alice", "bob")
    async with SignalingClient(nodes[0].url, a) as alice:
        bob = SignalingClient(nodes[1].url, b)
        await bob.connect()
        await until_online(alice, b)
        await in_a_call(alice, bob, "c9")
        with pytest.raises(SignalingError, match="name_taken"):
            await SignalingClient(nodes[2].url, b, credential="wrong-credential").connect()
        back = SignalingClient(nodes[2].url, b, credential=bob.credential)
        registered = await back.connect()
        assert registered is not None
        assert registered["call"] == {"call_id": "c9", "peer": a, "peer_key": name_key(a), "state": "active"}
        replaced = await bob.expect("replaced")
        assert replaced["type"] == "replaced"
        await asyncio.wait_for(bob.closed.wait(), 2)
        assert bob.ws.close_code == p.CLOSE_REPLACED
        # the call goes on between node 0 and node 2
        await alice.send({"type": "candidate", "to": b, "candidate": CANDIDATE})
        assert (await back.expect("candidate"))["from"] == a
        await back.send({"type": "hangup", "to": a})
        assert (await alice.expect("hangup"))["from"] == b
        await back.close()


async def test_a_dropped_user_reconnects_on_another_node_within_the_grace(nodes: list[Node]) -> None:
    a, b = unique("alice", "bob")
    async with SignalingClient(nodes[0].url, a) as alice:
        bob = SignalingClient(nodes[1].url, b)
        await bob.connect()
        await until_online(alice, b)
        await in_a_call(alice, bob, "c7")
        bob.ws.transport.abort()  # no close frame: a drop
        status = await alice.expect("peer_status", timeout=2)
        assert (status["status"], status["from_key"]) == ("reconnecting", name_key(b))
        await alice.send({"type": "candidate", "to": b, "candidate": CANDIDATE})  # waits for bob on node 1
        await asyncio.sleep(0.1)
        back = SignalingClient(nodes[2].url, b, credential=bob.credential)
        registered = await back.connect()
        assert registered is not None and registered["call"]["call_id"] == "c7"
        assert (await back.expect("candidate"))["from"] == a  # what waited, in order
        assert (await alice.expect("peer_status"))["status"] == "connected"
        await alice.send({"type": "hangup", "to": b})
        assert (await back.expect("hangup"))["from"] == a
        await back.close()


async def test_health_and_metrics_show_the_node_and_the_cluster(nodes: list[Node]) -> None:
    health = json.loads(http_get(nodes[1], "/health"))
    assert health["status"] == "ok" and health["node"]["id"] == "n1"
    assert sorted(health["cluster"]["nodes"]) == ["n0", "n1", "n2"]
    metrics = http_get(nodes[0], "/metrics").decode()
    for name in ("nbcall_connections", "nbcall_messages_relayed_total{path=\"to_other_node\"}",
                 "nbcall_redis_rtt_seconds", "nbcall_cluster_published_total", "nbcall_errors_total"):  # fmt: skip
        assert name in metrics


async def test_a_seed_client_on_another_node_is_accepted_on_its_behalf(nodes: list[Node]) -> None:
    a, s = unique("alice", "seedling")
    async with SignalingClient(nodes[0].url, a) as alice, SignalingClient(nodes[1].url, s, seed=True) as seed:
        await until_online(alice, s)
        await alice.send({"type": "invite", "to": s, "call_id": "c5"})
        accept = await alice.expect("accept")
        assert accept == {"type": "accept", "from": s, "from_key": name_key(s), "call_id": "c5", "seed": True}
        await alice.send({"type": "offer", "to": s, "sdp": SDP})
        assert (await seed.expect("offer"))["from"] == a
        await seed.close()
        assert (await alice.expect("hangup"))["reason"] == "disconnected"


async def registers_once_free(url: str, name: str, timeout: float = 5.0) -> None:
    """Registers ``name`` on ``url`` as soon as the cluster has freed it (name_taken until then)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with SignalingClient(url, name):
                return
        except SignalingError as refused:
            if refused.code != "name_taken" or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.05)


async def test_closed_socket_cannot_be_used_after_close(nodes: list[Node]) -> None:
    # a register in flight when its socket closes leaves no name behind
    (a,) = unique("ghost")
    async with connect(nodes[0].url) as ws:
        await ws.send(json.dumps({"type": "register", "username": a, "client": "t"}))
    await registers_once_free(nodes[1].url, a)
    # The register may have been answered before the server read the close (the reply is
    # then in the socket's buffer); nothing else may have come, and the socket is closed.
    seen = []
    with pytest.raises(ConnectionClosed):
        while True:
            seen.append(json.loads(await ws.recv())["type"])
    assert seen in ([], ["registered"]), seen


async def test_a_flood_across_nodes_arrives_in_order(
    redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """3,000 candidates as fast as a client can send them, to a client on another node: the
    receiver gets every one, in the order sent (the writer coalesces what queues up)."""
    logs = tmp_path_factory.mktemp("fast")
    unlimited = ("--rate", "1000000", "--burst", "1000000")
    fast = [Node(redis.url, f"f{i}", *unlimited, log=logs / f"f{i}.log") for i in range(2)]
    try:
        a, b = unique("alice", "bob")
        async with SignalingClient(fast[0].url, a) as alice, SignalingClient(fast[1].url, b) as bob:
            await until_online(alice, b)
            await in_a_call(alice, bob)
            count, pad = 3000, "x" * 300

            async def flood() -> None:
                for i in range(count):
                    line = f"candidate:{i} 1 udp 1 127.0.0.1 {i} typ host {pad}"
                    await alice.send({"type": "candidate", "to": b, "candidate": {**CANDIDATE, "candidate": line}})

            async def receive() -> list[str]:
                return [
                    (await bob.expect("candidate", timeout=20))["candidate"]["candidate"].split()[0]
                    for _ in range(count)
                ]

            _, got = await asyncio.gather(flood(), receive())
            assert got == [f"candidate:{i}" for i in range(count)]
    finally:
        for node in fast:
            node.stop()
