"""The standalone server's plain HTTP answers: ``/health``, ``/metrics``, refusals as JSON."""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry
from websockets.datastructures import Headers
from websockets.http11 import Response

from .forwarding import health_body
from .hub import Hub
from .metrics import CONTENT_TYPE, render

if TYPE_CHECKING:
    from .cluster import ClusterHub


def health(hub: Hub, cluster: ClusterHub | None) -> dict[str, Any]:
    """``/health``: who this is; in cluster mode also the node and its view of the cluster."""
    body = health_body(hub)
    if cluster is not None:
        body["online"] = hub.online_count()
        body.update(cluster.health())
    return body


def json_response(status: http.HTTPStatus, body: dict[str, Any]) -> Response:
    return _response(status, "application/json", orjson.dumps(body))


def metrics_response(registry: CollectorRegistry) -> Response:
    return _response(http.HTTPStatus.OK, CONTENT_TYPE, render(registry))


def _response(status: http.HTTPStatus, content_type: str, data: bytes) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data))), ("Connection", "close")])
    return Response(status.value, status.phrase, headers, data)
