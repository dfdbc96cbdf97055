"""Barriers: proving that nothing (more) arrived without sleeping on it.

One server handles a connection's frames in order and writes every reply and forward a
frame causes before it reads the connection's next one (server.py), so a round trip
(``SignalingClient.round_trip``: a ping, then its pong) is a barrier on one connection:
once it returns, every reply to what that client sent before has arrived.  What one client
sends to another needs two: a round trip through the sender (the server has handled what
it sent and written what that caused to the receiver's socket), then one through the
receiver (its socket has delivered what was written before its pong).

Not covered: what a timer sends (presence batches, ring timeouts), and what crosses
cluster nodes (test_cluster.py explains its barriers where it uses them).
"""

from __future__ import annotations

from typing import Any

from nbcall.signaling import SignalingClient

FLOODED_RETRY = 0.2  # seconds between pings of a client past its rate limit (each may be dropped)


async def settle(*clients: SignalingClient, flooded: tuple[SignalingClient, ...] = ()) -> None:
    """Until every message the server sent to one of ``clients`` because of what one of them
    sent before this call has arrived (and is queued): a round trip through each of them,
    then through each again.  ``flooded``: those of them that may be past their rate limit
    (their pings are retried; they get no further round trip, see ``round_trip``)."""
    for client in clients:
        await client.round_trip(retry_every=FLOODED_RETRY if client in flooded else None)
    for client in clients:
        if client not in flooded:
            await client.round_trip()


async def drain(client: SignalingClient, *others: SignalingClient, flooded: bool = False) -> list[dict[str, Any]]:
    """Everything that reached ``client`` because of what it and ``others`` sent before: taken
    from its queue, after :func:`settle` (``flooded``: ``client`` may be past its rate limit)."""
    await settle(*others, client, flooded=(client,) if flooded else ())
    return client.pending()
