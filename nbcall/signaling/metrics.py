"""``/metrics``: one server's figures in Prometheus text format (``prometheus_client``).

Read when scraped from counters the server keeps anyway (plain ints: a prometheus Counter's
lock on every relayed message would cost the hot path), through a collector registered in
a registry of this server's own (several servers can live in one process: tests, kernels).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .server import SignalingServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerCollector(Collector):
    def __init__(self, server: SignalingServer) -> None:
        self.server = server

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        server = self.server
        hub = server.hub
        cluster = server.cluster_hub
        yield GaugeMetricFamily("nbcall_connections", "Open websocket connections", value=len(server.admission))
        yield GaugeMetricFamily("nbcall_users", "Users registered on this node", value=len(hub.users))
        yield GaugeMetricFamily("nbcall_users_online", "Users online (every node's, in cluster mode)",
                                value=hub.online_count())  # fmt: skip
        yield GaugeMetricFamily("nbcall_calls", "Calls with a user on this node, ringing or active",
                                value=len({id(c) for c in hub.calls.values()}))  # fmt: skip
        relayed = CounterMetricFamily(
            "nbcall_messages_relayed", "Offers, answers and candidates forwarded", labels=["path"]
        )
        cross_out = cluster.cross_relayed if cluster is not None else 0
        relayed.add_metric(["local"], hub.relayed - cross_out)
        relayed.add_metric(["to_other_node"], cross_out)
        yield relayed
        errors = CounterMetricFamily("nbcall_errors", "Error replies sent, by code", labels=["code"])
        for code, count in sorted(hub.errors.items()):
            errors.add_metric([code], count)
        yield errors
        if cluster is None:
            return
        link = cluster.link
        yield CounterMetricFamily("nbcall_cluster_received", "Messages delivered here from other nodes",
                                  value=cluster.cross_received)  # fmt: skip
        yield CounterMetricFamily("nbcall_cluster_published", "Messages published to Redis",
                                  value=link.outbox.published)  # fmt: skip
        yield CounterMetricFamily("nbcall_cluster_published_bytes", "Bytes published to Redis",
                                  value=link.outbox.published_bytes)  # fmt: skip
        yield CounterMetricFamily("nbcall_cluster_dropped", "Messages not published (Redis down or backlog full)",
                                  value=link.outbox.dropped)  # fmt: skip
        yield GaugeMetricFamily("nbcall_cluster_nodes", "Live nodes at the last heartbeat", value=len(link.nodes))
        yield GaugeMetricFamily("nbcall_cluster_up", "1 when Redis answers, 0 when degraded", value=int(link.up))
        yield GaugeMetricFamily("nbcall_redis_rtt_seconds", "Round trip of the last heartbeat to Redis",
                                value=link.rtt)  # fmt: skip


def registry_for(server: SignalingServer) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
