"""A realistic SDP for the forwarding benchmark's offers and answers."""

from __future__ import annotations

import os
import secrets


def make_sdp(kind: str) -> str:
    """A Chrome-style SDP (audio + video + data channel, BUNDLE, trickle ICE), ~3 KB."""
    sid = int.from_bytes(os.urandom(8), "big") >> 1
    ufrag, pwd = secrets.token_urlsafe(3)[:4], secrets.token_urlsafe(18)[:24]
    fp = ":".join(f"{b:02X}" for b in os.urandom(32))
    setup = "actpass" if kind == "offer" else "active"
    stream, track_a, track_v = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(16)
    ssrc_a, ssrc_v, ssrc_r = (int.from_bytes(os.urandom(4), "big") for _ in range(3))
    cname = secrets.token_urlsafe(12)[:16]
    common = [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {fp}",
        f"a=setup:{setup}",
    ]
    lines = [
        "v=0",
        f"o=- {sid} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "a=extmap-allow-mixed",
        f"a=msid-semantic: WMS {stream}",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        *common,
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        f"a=msid:{stream} {track_a}",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        f"a=ssrc:{ssrc_a} cname:{cname}",
        f"a=ssrc:{ssrc_a} msid:{stream} {track_a}",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 45 46",
        *common,
        "a=mid:1",
        "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:13 urn:3gpp:video-orientation",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        f"a=msid:{stream} {track_v}",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000",
        *(f"a=rtcp-fb:96 {fb}" for fb in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")),
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:98 VP9/90000",
        *(f"a=rtcp-fb:98 {fb}" for fb in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")),
        "a=fmtp:98 profile-id=0",
        "a=rtpmap:99 rtx/90000",
        "a=fmtp:99 apt=98",
        "a=rtpmap:100 H264/90000",
        *(f"a=rtcp-fb:100 {fb}" for fb in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")),
        "a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtpmap:101 rtx/90000",
        "a=fmtp:101 apt=100",
        "a=rtpmap:45 AV1/90000",
        "a=rtcp-fb:45 transport-cc",
        "a=rtpmap:46 rtx/90000",
        "a=fmtp:46 apt=45",
        f"a=ssrc-group:FID {ssrc_v} {ssrc_r}",
        f"a=ssrc:{ssrc_v} cname:{cname}",
        f"a=ssrc:{ssrc_r} cname:{cname}",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        *[c for c in common if not c.startswith("a=rtcp:")],
        "a=mid:2",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
    ]
    return "\r\n".join(lines) + "\r\n"
