"""One call's RTCPeerConnection (aiortc), negotiated the way the widget does it.

The caller offers after ``accept`` (js/call/peer_call.js); the callee answers.  Signals are
applied strictly in order (one lock); candidates that arrive before the remote
description wait (at most :data:`MAX_REMOTE_CANDIDATES` per call: a candidate makes ICE
send checks to an address the other side chose, so a flood of them is refused).  aiortc
puts all of its own candidates in its SDP and does not trickle; it accepts trickled ones.

The data channel is negotiated (label ``nbcall``, id 0, ordered), created here as the
page creates it, so it is in the first offer; seed calls have none.  aiortc cannot roll
back an offer, so perfect negotiation's polite side cannot yield to a collision; a Peer
never renegotiates on its own, so the only offers after the first come from a browser
(and are answered when the connection is stable, ignored otherwise).  aiortc does not
restart ICE either: an offer with new ICE credentials fails to apply and is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.sdp import candidate_from_sdp

from .._messages import DATA_CHANNEL_ID, DATA_CHANNEL_LABEL

log = logging.getLogger("nbcall.peer")

MAX_REMOTE_CANDIDATES = 64
MAX_PENDING_SIGNALS = 128  # signals of a call that arrive before its connection exists

SendSignal = Callable[[dict[str, Any]], Awaitable[None]]


def ice_servers(config: list[dict[str, Any]]) -> list[RTCIceServer]:
    """``[{"urls", "username"?, "credential"?}]`` (the widget's ``ice_servers``) for aiortc."""
    out = []
    for entry in config:
        urls = entry.get("urls")
        if not isinstance(urls, (str, list)):
            raise ValueError(f"an ICE server needs 'urls': {entry!r}")
        out.append(RTCIceServer(urls=urls, username=entry.get("username"), credential=entry.get("credential")))
    return out


def sdp_text(sdp: object) -> str | None:
    """The SDP text of an offer/answer's ``sdp`` field (a description object or a bare string)."""
    if isinstance(sdp, str):
        return sdp
    if isinstance(sdp, dict) and isinstance(sdp.get("sdp"), str):
        return str(sdp["sdp"])
    return None


class MediaSession:
    """The connection of one call; ``on_state(connectionState)`` is told every change."""

    def __init__(
        self,
        *,
        send: SendSignal,
        tracks: list[MediaStreamTrack],
        data_channel: bool,
        config: list[dict[str, Any]],
        on_track: Callable[[MediaStreamTrack], None],
        on_state: Callable[[str], None],
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(config)))
        self._send = send
        self._tracks = tracks
        self._tracks_added = False
        self._lock = asyncio.Lock()
        self._pending: list[dict[str, Any]] = []
        self.candidates_added = 0
        self.candidates_refused = 0
        self.closed = False
        self.channel: RTCDataChannel | None = None
        if data_channel:
            self.channel = self.pc.createDataChannel(
                DATA_CHANNEL_LABEL, negotiated=True, id=DATA_CHANNEL_ID, ordered=True
            )
        self.pc.on("track", on_track)

        @self.pc.on("connectionstatechange")
        def _changed() -> None:
            if not self.closed:
                on_state(self.pc.connectionState)

    def _add_tracks(self, offerer: bool) -> None:
        if self._tracks_added:
            return
        self._tracks_added = True
        kinds = set()
        for track in self._tracks:
            self.pc.addTrack(track)
            kinds.add(track.kind)
        if offerer:  # receive what we do not send
            for kind in ("audio", "video"):
                if kind not in kinds:
                    self.pc.addTransceiver(kind, direction="recvonly")

    async def offer(self) -> None:
        """The caller: add tracks, make the offer (with every candidate) and send it."""
        async with self._lock:
            self._add_tracks(offerer=True)
            await self.pc.setLocalDescription(await self.pc.createOffer())
            if not self.closed:
                await self._send({"type": "offer", "sdp": {"type": "offer", "sdp": self.pc.localDescription.sdp}})

    async def handle(self, message: Mapping[str, Any]) -> None:
        """An offer, answer or candidate from the other side, after the previous one."""
        async with self._lock:
            if self.closed:
                return
            kind = message.get("type")
            if kind in ("offer", "answer"):
                await self._description(str(kind), message.get("sdp"))
            elif kind == "candidate":
                await self._candidate(message.get("candidate"))

    async def _description(self, kind: str, sdp: object) -> None:
        text = sdp_text(sdp)
        if text is None:
            raise ValueError(f"an {kind} without SDP")
        if kind == "answer":
            if self.pc.signalingState != "have-local-offer":
                return  # a stray answer
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
        else:
            if self.pc.signalingState != "stable":
                log.info("offer ignored: a negotiation is already under way (aiortc cannot roll back)")
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="offer"))
            self._add_tracks(offerer=False)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            if not self.closed:
                await self._send({"type": "answer", "sdp": {"type": "answer", "sdp": self.pc.localDescription.sdp}})
        pending, self._pending = self._pending, []
        for candidate in pending:
            await self._candidate(candidate)

    async def _candidate(self, candidate: object) -> None:
        if not isinstance(candidate, dict):
            return  # null: end of candidates
        text = candidate.get("candidate")
        if not isinstance(text, str) or not text.strip():
            return
        remote: object = self.pc.remoteDescription  # None until set (aiortc's annotation says otherwise)
        if remote is None:
            if len(self._pending) < MAX_REMOTE_CANDIDATES:
                self._pending.append(candidate)
            else:
                self.candidates_refused += 1
            return
        if self.candidates_added >= MAX_REMOTE_CANDIDATES:
            self.candidates_refused += 1
            return
        parsed = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        mid = candidate.get("sdpMid")
        index = candidate.get("sdpMLineIndex")
        parsed.sdpMid = mid if isinstance(mid, str) else None
        parsed.sdpMLineIndex = index if type(index) is int else None
        if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
            parsed.sdpMLineIndex = 0
        self.candidates_added += 1
        await self.pc.addIceCandidate(parsed)

    async def stats(self) -> dict[str, Any]:
        """A few numbers from aiortc's getStats: rtt and the inbound/outbound RTP counters."""
        out: dict[str, Any] = {}
        if self.closed:
            return out
        report = await self.pc.getStats()
        for stat in report.values():
            kind = getattr(stat, "kind", None)
            if stat.type == "inbound-rtp" and kind in ("audio", "video"):
                out[f"{kind}_packets_received"] = stat.packetsReceived
                out[f"{kind}_packets_lost"] = stat.packetsLost
                out[f"{kind}_bytes_received"] = stat.bytesReceived
            elif stat.type == "outbound-rtp" and kind in ("audio", "video"):
                out[f"{kind}_bytes_sent"] = stat.bytesSent
            elif stat.type == "remote-inbound-rtp" and kind == "video":
                out["rtt_ms"] = round(stat.roundTripTime * 1000, 1)
        return out

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for track in self._tracks:
            track.stop()
        await self.pc.close()
