"""Registers that meet other work on their name in one node: a claim in flight, Redis coming
back (the node publishing its users), a claim Redis does not answer.  In-process nodes on a
real redis-server; a gate holds a claim at a chosen point, so each interleaving is reached
every time rather than by chance (cluster_helpers.Gate)."""

from __future__ import annotations

import asyncio

import orjson
import redis as redis_sync

from nbcall._testing.redis import RedisServer
from nbcall.signaling import protocol as p
from nbcall.signaling.cluster.config import Keys
from nbcall.signaling.hub import Hub
from nbcall.signaling.names import name_key

from .cluster_helpers import (
    Gate,
    comes_back,
    entry,
    first_claim_unanswered,
    held_as_cluster_says,
    node,
    register,
    until_true,
)


async def test_a_credential_with_non_ascii_characters_is_refused_not_an_internal_error() -> None:
    hub = Hub()
    register(hub, "alice", credential="right")
    _, peer = register(hub, "alice", credential="é")
    assert peer.kinds() == ["error:name_taken"]


async def test_registers_waiting_behind_a_claim_are_all_answered_whatever_one_of_them_sends(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r0", started=False) as hub:
        hub.link.up = True
        gate = Gate(hub, "claim")
        _, first_peer = register(hub, "bob", credential="C")
        await gate.reached()
        _, odd_peer = register(hub, "bob", credential="é")
        victim, victim_peer = register(hub, "bob", credential="C")
        hub.receive(victim, b'{"type":"ping"}')  # held while it waits, then handled in order
        gate.open.set()
        await until_true(lambda: bool(victim_peer.sent), "the register behind the odd one was never answered")
        assert first_peer.kinds()[0] == "registered" and first_peer.closed == p.CLOSE_REPLACED
        assert odd_peer.kinds() == ["error:name_taken"]
        assert victim_peer.kinds() == ["registered", "pong"] and hub.users[name_key("bob")] is victim
        await until_true(lambda: entry(sync, prefix, "bob") is not None, "bob is not in Redis")
        held_as_cluster_says(hub, sync, prefix)


async def test_a_register_while_the_node_publishes_its_users_waits_and_is_claimed(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis is back: the node puts the users it accepted while cut off.  A user registering
    meanwhile waits for that, then is claimed in Redis like any other (it used to be taken
    here only, and never put: another node would have accepted a second carol)."""
    async with node(redis, prefix, "r0", started=False) as hub:
        register(hub, "bob")  # cut off: this node's rule only
        gate = Gate(hub, "put")
        publishing = asyncio.create_task(comes_back(hub))
        await gate.reached()
        waiting, carol = register(hub, "carol")
        # Waits behind the put: neither taken here (that answers at once) nor claimed in Redis.
        assert not carol.sent and waiting in hub.registrar.claiming and name_key("carol") not in hub.registrar.claims
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        await until_true(lambda: bool(carol.sent), "carol was not answered")
        assert carol.kinds() == ["registered"]
        held_as_cluster_says(hub, sync, prefix)


async def test_a_user_who_leaves_during_its_put_and_comes_back_is_in_redis(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis is back and the node puts alice and dave (one pipeline).  Meanwhile alice leaves
    and registers again (she waits for the put), and dave leaves: alice ends in Redis with her
    new registration's token, dave nowhere, and no token is kept for him."""
    async with node(redis, prefix, "r0", started=False) as hub:
        first, _ = register(hub, "alice", credential="one")
        dave, _ = register(hub, "dave")
        gate = Gate(hub, "put")
        publishing = asyncio.create_task(comes_back(hub))
        await gate.reached()
        assert sorted(hub.registrar.claims) == sorted([name_key("alice"), name_key("dave")])
        hub.disconnect(first)
        _, again = register(hub, "alice", credential="two")
        hub.disconnect(dave)
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        await until_true(lambda: bool(again.sent), "alice was not answered")
        assert again.kinds() == ["registered"]
        await until_true(lambda: entry(sync, prefix, "dave") is None, "dave's release was not written")
        held_as_cluster_says(hub, sync, prefix)
        assert list(hub.users) == [name_key("alice")] and entry(sync, prefix, "dave") is None


async def test_a_register_behind_a_put_that_finds_the_name_taken_elsewhere_is_refused_too(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """While this node was cut off, another node's user took alice; the node's own alice is
    closed when its put finds that, and her reconnect that waited for the put is refused: the
    cluster keeps one holder."""
    async with node(redis, prefix, "r0", started=False) as hub:
        _, first_peer = register(hub, "alice", credential="C")
        keys = Keys(prefix)
        now_s, now_us = sync.time()
        sync.zadd(keys.nodes, {"r1": now_s * 1000 + now_us // 1000})  # a live node
        theirs = {"n": "alice", "node": "r1", "c": True, "h": "x", "g": "t"}
        sync.hset(keys.users, name_key("alice"), orjson.dumps(theirs))
        gate = Gate(hub, "put")
        publishing = asyncio.create_task(comes_back(hub))
        await gate.reached()
        _, again = register(hub, "alice", credential="C")
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        await until_true(lambda: bool(again.sent), "the reconnect was not answered")
        assert first_peer.closed == p.CLOSE_REPLACED and again.kinds() == ["error:name_taken"]
        assert name_key("alice") not in hub.users and entry(sync, prefix, "alice") == theirs
        held_as_cluster_says(hub, sync, prefix)


async def test_a_claim_redis_ran_but_did_not_answer_frees_the_name_if_its_socket_closed(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r0", started=False) as hub:
        hub.link.up = True
        gate = Gate(hub, "claim", after=True, lose_reply=True)
        session, _ = register(hub, "erin")
        await gate.reached()
        assert entry(sync, prefix, "erin") is not None  # Redis ran it
        hub.disconnect(session)
        gate.open.set()
        await until_true(lambda: entry(sync, prefix, "erin") is None, "erin stays held in Redis by nobody")
        assert hub.link.up  # one unanswered claim is not an outage: the heartbeat decides that


async def test_a_kept_user_whose_claim_got_no_answer_is_claimed_again_once_redis_answers(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis did not answer erin's claim and never ran it: she is kept on this node, and the
    node claims her name again a beat later, so the cluster knows her."""
    async with node(redis, prefix, "r0", started=False) as hub:
        hub.link.up = True
        first_claim_unanswered(hub, runs=False)
        _, erin = register(hub, "erin")
        await until_true(lambda: bool(erin.sent), "erin was not answered")
        assert erin.kinds() == ["registered"] and entry(sync, prefix, "erin") is None
        await until_true(lambda: entry(sync, prefix, "erin") is not None, "erin never reached Redis", timeout=3)
        held_as_cluster_says(hub, sync, prefix)


async def test_a_failure_while_publishing_the_users_does_not_stop_the_heartbeat(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """A bug in ``_on_up`` (here: made to raise once) costs a retry at the next beat, not the
    beats themselves: a node that stopped beating would be reaped with its users online."""
    async with node(redis, prefix, "r0", started=True) as hub:
        real = hub._on_up
        calls = 0

        async def failing_once() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug")
            await real()

        hub.link._on_up = failing_once
        _, alice = register(hub, "alice")
        await until_true(lambda: bool(alice.sent), "alice was not answered")
        sync.delete(Keys(prefix).known("r0"))  # as after a Redis restart: the node publishes again
        await until_true(lambda: calls >= 2, "the node stopped beating after the failure", timeout=5)
        await until_true(lambda: hub.link.up and entry(sync, prefix, "alice") is not None, "alice not published again")
        assert all(not task.done() for task in hub.link._tasks)
