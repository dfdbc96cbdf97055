"""Takeovers across nodes that meet other work on the name: a socket that closes mid-claim,
both nodes claiming at once, a node publishing its users, a reply Redis sends that is lost
(and redis-py's retry of it), a node stopping mid-claim.  In-process nodes on a real
redis-server, with a gate that holds a claim at a chosen point (cluster_helpers.Gate)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
import redis as redis_sync

from nbcall._testing.redis import RedisServer
from nbcall.signaling import protocol as p
from nbcall.signaling.cluster.config import ClusterConfig, Keys
from nbcall.signaling.cluster.hub import ClusterHub
from nbcall.signaling.names import name_key

from .cluster_helpers import (
    Gate,
    RecordingPeer,
    across,
    comes_back,
    entry,
    first_claim_unanswered,
    holders,
    node,
    plant_entry,
    register,
    until_true,
)


def replaced(peer: RecordingPeer) -> Callable[[], bool]:
    return lambda: peer.closed == p.CLOSE_REPLACED


async def test_a_takeover_from_a_socket_that_closed_while_claiming_still_moves_the_user(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """alice on r0; her credential's new socket on r1 wins the name in Redis and closes before
    r1 hears so.  r0 must still let her go (else r0 holds alice with no entry in Redis), and r1
    keeps nothing of the closed socket (it had asked for presence: no subscriber left)."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        for round_ in range(3):
            _, old = register(r0, "alice", credential=f"C{round_}")
            await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
            gate = Gate(r1, "claim", after=True)
            new = r1.connect(RecordingPeer())
            message = {"type": "register", "username": "alice", "credential": f"C{round_}", "presence": True}
            r1.receive(new, orjson.dumps(message))
            await gate.reached()
            r1.disconnect(new)
            gate.open.set()
            await until_true(replaced(old), "r0 kept the user it gave up in Redis")
            await until_true(lambda: entry(sync, prefix, "alice") is None, "the name stays held by nobody")
            await until_true(lambda: not r1.registrar.claims, "r1 still claims")
            assert not holders(r0, r1) and not r1.presence.subscribers and not r1.registrar.tokens
        _, later = register(r0, "alice")  # free for anyone now
        await until_true(lambda: bool(later.sent), "no answer")
        assert later.kinds()[0] == "registered"


async def test_a_takeover_while_the_old_nodes_own_claim_is_on_its_way_back_leaves_one_holder(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis ran r0's claim of alice, but r0 has not heard back when her credential's socket on
    r1 takes the name over: r1's claim is the later one, so r1 holds her and r0's register is
    refused when its answer arrives."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        gate = Gate(r0, "claim", after=True)
        _, first = register(r0, "alice", credential="C")
        await gate.reached()
        _, second = register(r1, "alice", credential="C")
        await until_true(lambda: bool(second.sent), "r1 did not answer")
        assert second.kinds()[0] == "registered"
        gate.open.set()
        await until_true(lambda: bool(first.sent), "r0 did not answer")
        assert first.kinds() == ["error:name_taken"]
        assert holders(r0, r1) == ["r1"] and name_key("alice") not in r0.registrar.tokens
        assert entry(sync, prefix, "alice")["node"] == "r1"  # type: ignore[index]


async def test_two_nodes_claiming_one_name_at_once_end_with_one_holder_and_no_loop(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """r0's earlier alice left (her release still queued); alice's credential registers on r0
    and on r1 at once.  r1's claim moves the name from r0, r0's (run after) moves it back:
    each asks the other.  One node holds her in the end, the one Redis names, and a message
    for her is delivered once, not passed back and forth between nodes that each think she
    moved to the other."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        plant_entry(sync, prefix, "alice", "r0", credential="C")
        gate = Gate(r0, "claim")
        _, a0 = register(r0, "alice", credential="C")
        await gate.reached()
        _, a1 = register(r1, "alice", credential="C")
        await until_true(lambda: entry(sync, prefix, "alice")["node"] == "r1", "r1 did not claim")  # type: ignore[index]
        await asyncio.sleep(0.1)  # r1 asks r0, which is claiming the name itself
        gate.open.set()
        await until_true(lambda: bool(a0.sent) and bool(a1.sent), "a register was not answered", timeout=5)
        await until_true(lambda: len(holders(r0, r1)) == 1, "not one holder")
        for sender, receiver in ((r0, r1), (r1, r0), (r0, r1)):  # every handover between them is over
            await across(sender, receiver)
        found = entry(sync, prefix, "alice")
        assert found is not None and holders(r0, r1) == [found["node"]]
        r0.handovers.moved[name_key("alice")] = ("r1", 1e12)  # both think she moved to the other
        r1.handovers.moved[name_key("alice")] = ("r0", 1e12)
        for hub in (r0, r1):
            hub.users.pop(name_key("alice"), None)
        before = r0.cross_received + r1.cross_received
        header = ["offer", name_key("alice"), "bob", "bob", "r9", True, None]
        sync.publish(Keys(prefix).inbox("r0"), orjson.dumps(header) + b'\n{"type":"offer"}')
        await until_true(lambda: r0.cross_received + r1.cross_received - before >= 2, "not delivered")
        # A copy bounced back (r1 → r0, then r0 → r1) would have arrived before these markers.
        await across(r1, r0)
        await across(r0, r1)
        assert r0.cross_received + r1.cross_received - before == 2  # r0, forwarded once to r1


async def test_a_takeover_while_the_new_node_publishes_its_users_reaches_the_old_node(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=False) as r0:
        _, old = register(r1, "alice", credential="C")
        await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
        register(r0, "bob")  # r0 cut off: accepted here only
        gate = Gate(r0, "put")
        publishing = asyncio.create_task(comes_back(r0))
        await gate.reached()
        _, new = register(r0, "alice", credential="C")
        gate.open.set()
        await asyncio.wait_for(publishing, 5)
        await until_true(lambda: bool(new.sent), "the takeover was not answered")
        await until_true(lambda: old.closed == p.CLOSE_REPLACED, "r1 was never asked to let alice go")
        assert new.kinds()[0] == "registered" and holders(r0, r1) == ["r0"]


async def test_a_takeover_whose_answer_from_redis_is_lost_still_moves_the_user(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Redis ran r0's claim (it moved alice from r1) and the answer was lost: r0 keeps her and
    claims again a beat later, gets the first answer again, and only then asks r1."""
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=True) as r0:
        _, old = register(r1, "alice", credential="C")
        await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
        first_claim_unanswered(r0, runs=True)
        _, new = register(r0, "alice", credential="C")
        await until_true(lambda: bool(new.sent), "r0 did not answer")
        await until_true(lambda: old.closed == p.CLOSE_REPLACED, "r1 still holds alice", timeout=3)
        assert holders(r0, r1) == ["r0"] and entry(sync, prefix, "alice")["node"] == "r0"  # type: ignore[index]


class DropFirstAnswer:
    """A TCP proxy to Redis that drops the first reply containing ``needle`` once armed (a lost
    answer that redis-py's own retry then asks again)."""

    def __init__(self, port: int, needle: bytes) -> None:
        self.port, self.needle, self.armed, self.dropped = port, needle, False, 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if watch and self.armed and self.needle in data:
                        self.armed = False
                        self.dropped += 1
                        continue
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_r, redis_w, False), pipe(redis_r, client_w, True))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.mark.slow
async def test_redis_py_asking_a_takeover_claim_again_gets_moved_again(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """The node's Redis client retries a command whose answer times out (2 s): the second run
    of the claim must answer 'moved' as the first did, not 'ok' (its own entry), or r1 is never
    asked and both nodes hold alice."""
    proxy = DropFirstAnswer(redis.port, b"moved")
    port = await proxy.start()
    r0 = ClusterHub(None, ClusterConfig(f"redis://127.0.0.1:{port}/0", node_id="r0", prefix=prefix))
    try:
        async with node(redis, prefix, "r1", started=True) as r1:
            await r0.start()
            await until_true(lambda: r0.link.up, "r0 is not up")
            _, old = register(r1, "alice", credential="C")
            await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
            proxy.armed = True
            _, new = register(r0, "alice", credential="C")
            await until_true(lambda: bool(new.sent), "r0 did not answer", timeout=10)
            await until_true(lambda: old.closed == p.CLOSE_REPLACED, "r1 still holds alice", timeout=3)
            assert proxy.dropped == 1 and holders(r0, r1) == ["r0"]
    finally:
        await r0.stop()
        proxy.close()


async def test_who_a_node_published_while_redis_was_away_is_heard_by_the_others(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """carol and dave register on r0 while it is cut off (their joins are not sent).  When
    Redis is back r0 puts them, then reads the registry slowly, so the join batch goes out
    while r0 still counts as down, and is dropped: r0 sends its users again once it is up."""
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=True) as r0:
        real = r0.link.entries

        async def slow_entries() -> dict[bytes, bytes]:
            await asyncio.sleep(0.3)
            return await real()

        r0.link.entries = slow_entries  # type: ignore[method-assign]
        r0.link.failed(RuntimeError("Redis away"))  # as the heartbeat does when Redis fails
        _, carol = register(r0, "carol")
        _, dave = register(r0, "dave")
        await until_true(lambda: bool(carol.sent) and bool(dave.sent), "not answered")
        await until_true(lambda: r0.link.up, "r0 did not come back", timeout=3)
        for name in ("carol", "dave"):
            heard = lambda name=name: r1.directory.get(name_key(name)) is not None  # noqa: E731
            await until_true(heard, f"r1 never heard of {name}")


async def test_a_node_that_stops_mid_claim_writes_nothing_after(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r0", started=True) as r0:
        gate = Gate(r0, "claim")
        register(r0, "dora")
        await gate.reached()
        stopping = asyncio.create_task(r0.stop())
        await asyncio.sleep(0.2)
        gate.open.set()
        await asyncio.wait_for(stopping, 5)
        # Nothing is left that could write: no task on the loop but this test's (a stopped
        # node's claims, link and outbox are gone), so no pause is needed to see it write.
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        assert entry(sync, prefix, "dora") is None and not r0.registrar.tasks
