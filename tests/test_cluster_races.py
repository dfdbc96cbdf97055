"""Races a third hostile review found between registers, takeovers, unanswered claims, outages
and stopping, across two or three in-process nodes on a real redis-server: each ends with one
holder per name, the holder in Redis, and nobody's leftover entry holding a name."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis as redis_sync

from nbcall._testing.redis import RedisServer
from nbcall.signaling import protocol as p
from nbcall.signaling.cluster.config import ClusterConfig, Keys
from nbcall.signaling.cluster.hub import ClusterHub
from nbcall.signaling.names import name_key

from .cluster_helpers import (
    Gate,
    across,
    entry,
    first_claim_unanswered,
    holders,
    node,
    plant_entry,
    register,
    until_true,
)


def one_holder_named_by_redis(sync: redis_sync.Redis, prefix: str, *hubs: ClusterHub) -> None:
    found = entry(sync, prefix, "alice")
    assert holders(*hubs) == ([found["node"]] if found is not None else []), (holders(*hubs), found)


async def test_a_claim_over_a_stale_entry_of_a_node_does_not_make_that_node_give_way(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """r1 has a stale entry for alice.  While r1 claims alice for a new socket, r0's claim with
    her credential overwrites the stale entry and asks r1; then r0's alice leaves.  r1's claim
    (run after r0's) stands: r1 holds alice and Redis says so (no entry left held by nobody)."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        plant_entry(sync, prefix, "alice", "r1", credential="C")
        gate = Gate(r1, "claim")
        _, on_r1 = register(r1, "alice")
        await gate.reached()
        on_r0, first = register(r0, "alice", credential="C")
        await until_true(lambda: bool(first.sent), "r0 did not answer")
        assert first.kinds()[0] == "registered"
        await asyncio.sleep(0.1)  # r0 asked r1 (holding nobody yet) to let alice go
        r0.disconnect(on_r0)
        await until_true(lambda: entry(sync, prefix, "alice") is None, "r0's entry was not released")
        gate.open.set()
        await until_true(lambda: bool(on_r1.sent), "r1 did not answer")
        assert on_r1.kinds()[0] == "registered"
        one_holder_named_by_redis(sync, prefix, r0, r1)


async def test_a_takeover_asked_of_a_node_still_waiting_for_its_own_takeover_leaves_one_holder(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """alice on r0, which answers takeover questions slowly.  Her credential on r1 moves the name
    from r0; while r1 waits for r0, her credential on r2 moves it from r1.  r2's claim came last:
    r2 holds her, r1's register is refused."""
    async with (
        node(redis, prefix, "r0", started=True) as r0,
        node(redis, prefix, "r1", started=True) as r1,
        node(redis, prefix, "r2", started=True) as r2,
    ):
        register(r0, "alice", credential="C")
        await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
        real = r0.handovers._answer
        asked: list[Any] = []  # what r0 was asked, answered half a second late
        answered: list[Any] = []

        def late(event: Any) -> None:
            asked.append(event)
            asyncio.get_running_loop().call_later(0.5, lambda: (real(event), answered.append(event)))

        r0.handovers._answer = late  # type: ignore[method-assign]
        _, on_r1 = register(r1, "alice", credential="C")
        await until_true(lambda: entry(sync, prefix, "alice")["node"] == "r1", "r1 did not claim")  # type: ignore[index]
        _, on_r2 = register(r2, "alice", credential="C")
        await until_true(lambda: bool(on_r1.sent) and bool(on_r2.sent), "not answered", timeout=5)
        # Nothing more for r1's alice: r0's late answers have gone, and whatever they and the
        # other nodes published since has been handled everywhere (barriers, not a pause).
        await until_true(lambda: bool(asked) and len(answered) == len(asked), "r0's late answers did not go")
        for sender, receiver in ((r0, r1), (r0, r2), (r2, r1), (r1, r2)):
            await across(sender, receiver)
        assert on_r2.kinds()[0] == "registered" and on_r1.kinds() == ["error:name_taken"]
        one_holder_named_by_redis(sync, prefix, r0, r1, r2)


async def test_an_unanswered_claim_is_confirmed_even_after_a_takeover_on_the_same_node(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """r0's claim of alice never reached Redis; her client reconnects on r0 with its credential
    (the holding goes on, its token kept).  r0 still writes her entry a beat later, so r1
    refuses another alice."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        first_claim_unanswered(r0, runs=False)
        _, first = register(r0, "alice", credential="C")
        await until_true(lambda: bool(first.sent), "no answer")
        _, second = register(r0, "alice", credential="C")
        await until_true(lambda: bool(second.sent), "no answer")
        await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice never reached Redis")
        _, other = register(r1, "alice", credential="X")
        await until_true(lambda: bool(other.sent), "no answer")
        assert other.kinds() == ["error:name_taken"]
        one_holder_named_by_redis(sync, prefix, r0, r1)


async def test_a_user_leaving_before_an_unanswered_takeover_is_confirmed_leaves_nobody_holding(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """alice on r1; her credential on r0: the claim moves her (Redis ran it), the answer is lost,
    and she leaves r0 before the claim is confirmed.  r1 is still asked to let her go before
    the name is released, so a stranger can then take it without two holders."""
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=True) as r0:
        _, old = register(r1, "alice", credential="C")
        await until_true(lambda: entry(sync, prefix, "alice") is not None, "alice is not in Redis")
        first_claim_unanswered(r0, runs=True)
        session, new = register(r0, "alice", credential="C")
        await until_true(lambda: bool(new.sent), "no answer")
        r0.disconnect(session)
        await until_true(lambda: old.closed == p.CLOSE_REPLACED, "r1 was never asked to let alice go")
        await until_true(lambda: entry(sync, prefix, "alice") is None, "the name stays held by nobody")
        _, stranger = register(r0, "alice", credential="X")
        await until_true(lambda: bool(stranger.sent), "no answer")
        one_holder_named_by_redis(sync, prefix, r0, r1)


async def test_the_retry_of_an_unanswered_claim_never_takes_the_name_from_a_later_holder(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """r0's claim ran but its answer was lost; before its retry, alice's credential on r1 takes
    her over (r0 lets her go).  The retry then must not move her back: Redis names r1, which
    holds her."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        real = r0.link.claim
        calls = 0
        retry_held, go, retried = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def lose_then_hold(key: str, value: bytes, hashed: str, mode: str = "claim") -> tuple[str, str]:
            nonlocal calls
            calls += 1
            if calls == 1:
                await real(key, value, hashed, mode)
                raise asyncio.TimeoutError("the answer was lost")
            if calls == 2:
                retry_held.set()
                await go.wait()
                answer = await real(key, value, hashed, mode)
                retried.set()  # the registrar goes on with the answer before anyone else runs
                return answer
            return await real(key, value, hashed, mode)

        r0.link.claim = lose_then_hold  # type: ignore[method-assign,assignment]
        _, on_r0 = register(r0, "alice", credential="C")
        await asyncio.wait_for(retry_held.wait(), 3)
        _, on_r1 = register(r1, "alice", credential="C")
        await until_true(lambda: bool(on_r1.sent), "r1 did not answer")
        await until_true(lambda: on_r0.closed == p.CLOSE_REPLACED, "r0 did not let alice go")
        go.set()
        await asyncio.wait_for(retried.wait(), 3)
        await across(r0, r1)  # what r0's retried claim made it publish has reached r1
        await across(r1, r0)
        assert holders(r0, r1) == ["r1"]
        one_holder_named_by_redis(sync, prefix, r0, r1)


async def test_who_left_a_node_while_it_was_cut_off_is_gone_for_the_others_too(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=True) as r0:
        session, _ = register(r0, "alice")
        await until_true(lambda: r1.directory.get(name_key("alice")) is not None, "r1 never heard of alice")
        r0.link.failed(RuntimeError("Redis away"))
        r0.disconnect(session)  # the leave is not sent
        await until_true(lambda: r0.link.up, "r0 did not come back")
        await until_true(lambda: r1.directory.get(name_key("alice")) is None, "r1 still lists alice")


async def test_a_node_stopping_with_a_register_waiting_behind_a_claim_writes_nothing_after(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    async with node(redis, prefix, "r0", started=True) as r0:
        gate = Gate(r0, "claim")
        register(r0, "dora", credential="C")
        await gate.reached()
        register(r0, "dora", credential="C")
        stopping = asyncio.create_task(r0.stop())
        await asyncio.sleep(0.2)
        gate.open.set()
        await asyncio.wait_for(stopping, 5)
        # Nothing is left that could write: no task on the loop but this test's (a stopped
        # node's claims, link and outbox are gone), so no pause is needed to see it write.
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        assert entry(sync, prefix, "dora") is None and not r0.registrar.tasks


@pytest.mark.slow
async def test_a_node_publishing_thousands_of_users_stays_alive_and_publishes_once(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """3,000 users accepted while r0 was cut off, published when it reaches Redis, in batches
    made slow here (0.4 s each: 2.4 s in all, past the 1.5 s expiry).  Published one at a time
    and without beating, r1 reaped r0 mid-publish and r0 published again, endlessly; now r0
    beats between batches, publishes once, and r1 hears of every user."""
    async with node(redis, prefix, "r1", started=True) as r1:
        r0 = ClusterHub(None, ClusterConfig(redis.url, node_id="r0", prefix=prefix))
        for n in range(3000):
            register(r0, f"user{n}")  # the link not started yet: cut off
        publishes = 0
        real_up, real_puts = r0._on_up, r0.link.put_many

        async def counting() -> None:
            nonlocal publishes
            publishes += 1
            await real_up()

        async def slow_puts(entries: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
            await asyncio.sleep(0.4)
            return await real_puts(entries)

        r0.link._on_up = counting
        r0.link.put_many = slow_puts  # type: ignore[method-assign]
        reaped: list[str] = []

        def hear(data: bytes) -> None:
            if b'"t":"dead"' in data:
                reaped.append(data.decode())
            r1._on_bus(data)

        r1.link._on_message = hear
        try:
            await r0.start()
            await until_true(lambda: r0.link.up, "r0 did not publish its users", timeout=10)
            await until_true(lambda: len(r1.directory) >= 3000, "r1 did not hear of them all", timeout=5)
            await asyncio.sleep(2.0)  # longer than the expiry
            assert publishes == 1 and not reaped
            assert sync.hlen(Keys(prefix).users) == 3000
        finally:
            await r0.stop()


async def test_a_burst_of_registers_on_one_node_waits_for_redis_connections_rather_than_failing(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """500 registers at once (a class joining): their claims queue for the node's 32 Redis
    connections instead of failing past a pool's cap (then each user was kept unconfirmed)."""
    async with node(redis, prefix, "r0", started=True) as r0:
        failures: list[str] = []
        real = r0.link.claim

        async def watched(key: str, value: bytes, hashed: str, mode: str = "claim") -> tuple[str, str]:
            try:
                return await real(key, value, hashed, mode)
            except Exception as exc:
                failures.append(repr(exc))
                raise

        r0.link.claim = watched  # type: ignore[method-assign,assignment]
        peers = [register(r0, f"student{n}")[1] for n in range(500)]
        await until_true(lambda: all(peer.sent for peer in peers), "not all answered", timeout=10)
        assert not failures and all(peer.kinds() == ["registered"] for peer in peers)
        assert sync.hlen(Keys(prefix).users) == 500


@pytest.mark.parametrize("ran", [True, False], ids=["claim-ran", "claim-never-ran"])
async def test_confirming_an_old_unanswered_claim_leaves_a_newer_registration_on_the_node_alone(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis, ran: bool
) -> None:
    """alice's claim on r0 gets no answer; she leaves and registers again at once (a new claim,
    answered).  Confirming the old claim a beat later must neither overwrite nor release her
    new entry: r1 still refuses a stranger's alice."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        first_claim_unanswered(r0, runs=ran)
        first, first_peer = register(r0, "alice", credential="C")
        await until_true(lambda: bool(first_peer.sent), "no answer")
        r0.disconnect(first)
        _, again = register(r0, "alice", credential="C2")
        await until_true(lambda: bool(again.sent), "no answer")
        await until_true(lambda: not r0.registrar.unconfirmed, "the old claim was never confirmed")
        token = r0.registrar.tokens[name_key("alice")]
        written = lambda: (entry(sync, prefix, "alice") or {}).get("g") == token  # noqa: E731
        await until_true(written, "the confirmation was not written")
        _, stranger = register(r1, "alice", credential="X")
        await until_true(lambda: bool(stranger.sent), "no answer")
        assert stranger.kinds() == ["error:name_taken"]


@pytest.mark.slow
async def test_a_burst_of_registers_does_not_hold_up_the_nodes_beats(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """3,000 registers at once on r0 while r1 watches: r0's beats have their own connection, so
    none waits behind the claims and r1 never reaps r0."""
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=True) as r0:
        reaped: list[bytes] = []

        def hear(data: bytes) -> None:
            if b'"t":"dead"' in data:
                reaped.append(data)
            r1._on_bus(data)

        r1.link._on_message = hear
        peers = [register(r0, f"student{n}")[1] for n in range(3000)]
        await until_true(lambda: all(peer.sent for peer in peers), "not all answered", timeout=20)
        await asyncio.sleep(2.0)  # longer than the expiry
        assert not reaped and r0.link.up and sync.hlen(Keys(prefix).users) == 3000


async def test_a_user_taken_over_right_after_joining_is_listed_on_her_new_node(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """alice joins r0 and, within its 50 ms join batch, her credential takes her over on r1:
    r0's batch must not list her as r0's, or r2 keeps pointing at r0 after the move."""
    async with (
        node(redis, prefix, "r0", started=True) as r0,
        node(redis, prefix, "r1", started=True) as r1,
        node(redis, prefix, "r2", started=True) as r2,
    ):
        r0.directory.interval = 0.5  # r0's batch (with alice's join) goes out after r1's
        r1.directory.interval = 0.05
        _, first = register(r0, "alice", credential="C")
        await until_true(lambda: bool(first.sent), "r0 did not answer")  # (well inside its batch)
        _, moved = register(r1, "alice", credential="C")
        await until_true(lambda: bool(moved.sent), "r1 did not answer")
        await across(r0, r2)  # r0's batch has reached r2 (and so has everything before the marker's)
        await across(r1, r2)
        assert r2.directory.get(name_key("alice")) is not None
        assert r2.directory.get(name_key("alice")).node == "r1"  # type: ignore[union-attr]


async def test_confirming_an_unanswered_claim_replaces_a_stale_entry_of_the_node(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """A stale entry of r0's for alice (from before a restart with the same node id); her claim
    on r0 gets no answer, so r0 confirms it later: the entry must become hers, so that when
    she leaves the name is free, not held by the stale entry for as long as r0 lives."""
    async with node(redis, prefix, "r0", started=True) as r0, node(redis, prefix, "r1", started=True) as r1:
        plant_entry(sync, prefix, "alice", "r0", credential="C")
        first_claim_unanswered(r0, runs=False)
        session, peer = register(r0, "alice", credential="C")
        await until_true(lambda: bool(peer.sent), "no answer")
        await until_true(lambda: not r0.registrar.unconfirmed, "never confirmed")
        assert entry(sync, prefix, "alice")["g"] == r0.registrar.tokens[name_key("alice")]  # type: ignore[index]
        r0.disconnect(session)
        await until_true(lambda: entry(sync, prefix, "alice") is None, "the name stays held by nobody")
        _, stranger = register(r1, "alice", credential="X")
        await until_true(lambda: bool(stranger.sent), "no answer")
        assert stranger.kinds()[0] == "registered"


async def test_leaves_kept_while_a_reaped_node_is_cut_off_stay_bounded(
    redis: RedisServer, prefix: str, sync: redis_sync.Redis
) -> None:
    """Cut off long enough to be reaped, r0 keeps no leave for the others (they dropped all its
    users): 2,000 names registered and gone meanwhile leave nothing queued, and a leave after
    Redis is back is sent again."""
    async with node(redis, prefix, "r1", started=True) as r1, node(redis, prefix, "r0", started=True) as r0:
        r0.link.failed(RuntimeError("Redis away"))
        r0._isolate()  # what r0 does once the others have reaped it
        for n in range(2000):
            session, _ = register(r0, f"passer{n}")
            r0.disconnect(session)
        assert not r0.directory._del
        await until_true(lambda: r0.link.up, "r0 did not come back")
        session, _ = register(r0, "late")
        await until_true(lambda: r1.directory.get(name_key("late")) is not None, "r1 never heard of late")
        r0.disconnect(session)
        await until_true(lambda: r1.directory.get(name_key("late")) is None, "r1 never heard late leave")
