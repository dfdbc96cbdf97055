"""The cluster's name registry in Redis: a release that arrives late, and registrations of one
name on one node at once, never leave a name held by nobody or by two."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_sync

from nbcall._testing.redis import Node, RedisServer
from nbcall.signaling import SignalingClient, SignalingError
from nbcall.signaling.cluster import scripts
from nbcall.signaling.cluster.config import Keys
from nbcall.signaling.names import name_key

from .cluster_helpers import unique

KEYS = Keys("nbcall")


@pytest.fixture(scope="module")
def nodes(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    logs = tmp_path_factory.mktemp("registry")
    started = [Node(redis.url, f"r{i}", log=logs / f"r{i}.log") for i in range(2)]
    try:
        yield started
    finally:
        for node in started:
            node.stop()


def entry(sync: redis_sync.Redis, key: str) -> dict[str, Any] | None:
    raw: bytes | None = sync.hget(KEYS.users, key)  # type: ignore[assignment]
    return json.loads(raw) if raw is not None else None


async def until_free(sync: redis_sync.Redis, key: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while (held := entry(sync, key)) is not None:
        assert time.monotonic() < deadline, f"'{key}' still held in Redis: {held}"
        await asyncio.sleep(0.02)


def test_a_release_deletes_only_the_registration_it_names(sync: redis_sync.Redis) -> None:
    users, held = "t:users", "t:node:n1:users"
    release = sync.register_script(scripts.RELEASE)

    def put(key: str, node: str, token: str | None) -> None:
        sync.hset(users, key, json.dumps({"n": key, "node": node, **({"g": token} if token else {})}))
        sync.sadd(held, key)

    put("alice", "n1", "t2")
    assert release(keys=[users, held], args=["alice", "n1", "t1"]) == 0  # registered again since
    assert sync.hexists(users, "alice") and sync.sismember(held, "alice")  # and still reaped with n1
    assert release(keys=[users, held], args=["alice", "n1", "t2"]) == 1
    assert not sync.hexists(users, "alice") and not sync.sismember(held, "alice")
    put("bob", "n2", "t7")  # another node's now: never deleted here, forgotten from our set
    assert release(keys=[users, held], args=["bob", "n1", "t7"]) == 1
    assert sync.hexists(users, "bob") and not sync.sismember(held, "bob")
    put("carol", "n1", None)  # an entry without a token (an nbcall before tokens): only "" frees it
    assert release(keys=[users, held], args=["carol", "n1", "t1"]) == 0
    assert release(keys=[users, held], args=["carol", "n1", ""]) == 1 and not sync.hexists(users, "carol")
    sync.sadd(held, "dave")  # in our set, gone from the hash: forgotten
    assert release(keys=[users, held], args=["dave", "n1", ""]) == 1 and not sync.sismember(held, "dave")


async def test_a_late_release_leaves_the_users_new_registration_on_the_same_node(
    nodes: list[Node], sync: redis_sync.Redis
) -> None:
    """alice leaves node 0 and registers there again while the release of her first
    registration still waits in the node's outbox (here: put back by hand, then run when it
    would have arrived).  Her new entry survives it, so node 1 still refuses a second alice."""
    (a,) = unique("alice")
    key = name_key(a)
    async with SignalingClient(nodes[0].url, a):
        first = entry(sync, key)
    assert first is not None and first["node"] == "r0" and first.get("g")
    await until_free(sync, key)
    sync.hset(KEYS.users, key, json.dumps(first))  # the state before the release arrives
    sync.sadd(KEYS.node_users("r0"), key)
    async with SignalingClient(nodes[0].url, a) as again:
        second = entry(sync, key)
        assert second is not None and second["node"] == "r0"
        assert second["g"] != first["g"], "the claim kept the earlier registration's entry"
        late = sync.register_script(scripts.RELEASE)
        assert late(keys=[KEYS.users, KEYS.node_users("r0")], args=[key, "r0", first["g"]]) == 0
        assert entry(sync, key) == second and sync.sismember(KEYS.node_users("r0"), key)
        with pytest.raises(SignalingError, match="name_taken"):
            await SignalingClient(nodes[1].url, a).connect()
        await again.send({"type": "list"})
        await again.expect("users")
    await until_free(sync, key)  # and her own release still frees it


@pytest.mark.parametrize("with_credential", [True, False], ids=["takeovers", "refusals"])
async def test_registrations_of_one_name_at_once_on_one_node_leave_it_free_after(
    nodes: list[Node], sync: redis_sync.Redis, with_credential: bool
) -> None:
    """Twelve sockets register one name on node 0 at once (with one credential each takes over
    from the one before; without, all but the first are refused).  Once they have all gone,
    the name is free in the whole cluster: nobody's leftover entry holds it."""
    (c,) = unique("carol")
    key = name_key(c)
    credential = "carol-credential-0123456789" if with_credential else None
    clients = [SignalingClient(nodes[0].url, c, credential=credential) for _ in range(12)]
    results = await asyncio.gather(*(client.connect() for client in clients), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    if with_credential:
        assert len(accepted) == 12 and not refused
    else:
        assert len(accepted) == 1 and all("name_taken" in str(r) for r in refused), results
    held = entry(sync, key)
    assert held is not None and held["node"] == "r0"
    for client in clients:
        await client.close()
    await until_free(sync, key)
    async with SignalingClient(nodes[1].url, c) as elsewhere:  # free for another node too
        assert entry(sync, key) is not None and entry(sync, key)["node"] == "r1"  # type: ignore[index]
        await elsewhere.send({"type": "list"})
        await elsewhere.expect("users")
