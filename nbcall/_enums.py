"""The widget's named values: call states, transports, end reasons, recording states.

One definition for Python and the page: ``js/messages.js`` is generated from this module
and :mod:`nbcall._messages` by :mod:`nbcall._codegen` (``tests/test_codegen.py`` fails
when the committed copy differs).  Signaling-level constants (message types, error codes,
the reasons a server passes on) live in :mod:`nbcall.signaling.protocol`.
"""

from __future__ import annotations

from typing import Final

from .signaling import protocol as p

# The call state machine of one widget's Phone (js/call/call_state.js) and of nbcall.Peer
# (nbcall/_call_state.py): CALL_TRANSITIONS below are the only moves either makes.
CALL_STATES: Final = ("idle", "registering", "calling", "ringing", "connecting", "connected", "ended", "error")
# States in which a new call can be placed: registered and not in a call.
CAN_CALL_STATES: Final = ("idle", "ended")
# States of an outgoing or established call (``ringing`` is an incoming call, not yet ours).
IN_CALL_STATES: Final = ("calling", "connecting", "connected")

# How the page reaches the signaling server (js/signaling/transports.js, nbcall/_kernel_socket.py).
#   same-origin  the Jupyter server's own endpoint ({base_url}nbcall/signal)
#   direct       a websocket straight to the server URL
#   kernel       the widget's comm to the kernel, whose websocket talks to the server
TRANSPORTS: Final = ("same-origin", "direct", "kernel")
CONNECT_VIA: Final = ("auto", *TRANSPORTS)
# Accepted with a DeprecationWarning: the kernel transport's name before 0.2 ("relay" now
# means only a TURN relay, as in ice_transport_policy="relay").
DEPRECATED_TRANSPORTS: Final = {"relay": "kernel"}

# RTCConfiguration.iceTransportPolicy: "relay" sends media only through TURN servers.
ICE_POLICIES: Final = ("all", "relay")

# Why a call ended (CallWidget.end_reason): a reason the server passes on, or the error code
# the server answered an invite with (e.g. unknown_peer when the callee left meanwhile).
END_REASONS: Final = tuple(sorted(p.REASONS)) + tuple(sorted(p.ErrorCode.ALL - p.REASONS))

# How the other side of the current call is reachable (CallWidget.peer_status): "" with no
# connected call, "connected", or "reconnecting" after ~1.5 s without its heartbeat or
# media, or when the server says its signaling dropped.
PEER_STATUSES: Final = ("", "connected", "reconnecting")

# What a queued action waits for in the page (nbcall/_actions.py, js/queued_actions.js):
#   online     registered, and the user to call is online
#   ringing    a call is ringing here (accept, reject)
#   in_call    a call is ringing here, being placed, set up or connected (hangup)
#   connected  a connected call (chat, snapshots, recordings, screen sharing)
#   free       registered, and in no call or room (join a room)
#   in_room    in a room (invite, leave)
#   member     the member named by the entry's key is in the room, its media connected (snapshot of it)
QUEUE_WAITS: Final = ("online", "ringing", "in_call", "connected", "free", "in_room", "member")

# How the current call carries media (CallWidget.topology, docs/rooms.md): "" with no call,
# "p2p" in a one-to-one call, "mesh" in a room where every member connects to every other,
# "sfu" in a room whose media goes through the SFU (Janus).
TOPOLOGIES: Final = ("", "p2p", "mesh", "sfu")
# A room member as CallWidget.participants shows it: invited and not answered yet (ringing),
# joined and its media on the way (connecting), its media arriving (connected), or its link
# or signaling interrupted (reconnecting).
PARTICIPANT_STATES: Final = ("ringing", "connecting", "connected", "reconnecting")

RECORDING_STATES: Final = ("idle", "recording", "stopping", "done", "error")
SNAPSHOT_SOURCES: Final = ("remote", "local")
RECORDING_SOURCES: Final = ("remote", "local", "both")
# What start_recording records in a room besides a member by name (docs/widget.md
# "Recording"): the grid (every member's tile and ours, all the audio mixed) or our own
# video.  There "remote" is the first member (as for snapshots) and "both" is the grid.
ROOM_RECORDING_SOURCES: Final = ("grid", "local")

# Every move a call state may make (a move to itself: "no change", allowed where listed).
#   registering → idle | error            the server answered register (or refused / is unreachable)
#   registering → registering, error → error   (retrying again: no change, no event)
#   idle, ended → calling | ringing       a call placed here, or an invite / seed offer arriving
#   idle, ended → registering | error     the socket dropped (quiet first retry, then an error)
#   error       → registering | idle      retrying, then registered again
#   calling     → connecting | ended      accepted; or cancelled, rejected, busy, no answer
#   ringing     → connecting | ended      answered here; or rejected here, cancelled there
#   connecting  → connected | ended       media flows; or hung up, failed
#   connected   → ended
# ``ended`` behaves like ``idle`` (a new call can start); a call in progress never goes to
# ``error`` directly: it ends first (ended → error), so its media is always released.
CALL_TRANSITIONS: Final = {
    "registering": ("registering", "idle", "error"),
    "idle": ("calling", "ringing", "registering", "error"),
    "ended": ("calling", "ringing", "registering", "error"),
    "error": ("error", "registering", "idle"),
    "calling": ("connecting", "ended"),
    "ringing": ("connecting", "ended"),
    "connecting": ("connected", "ended"),
    "connected": ("ended",),
}

ENUMS: Final = {
    "CALL_STATES": CALL_STATES,
    "CAN_CALL_STATES": CAN_CALL_STATES,
    "IN_CALL_STATES": IN_CALL_STATES,
    "TRANSPORTS": TRANSPORTS,
    "CONNECT_VIA": CONNECT_VIA,
    "ICE_POLICIES": ICE_POLICIES,
    "END_REASONS": END_REASONS,
    "PEER_STATUSES": PEER_STATUSES,
    "QUEUE_WAITS": QUEUE_WAITS,
    "TOPOLOGIES": TOPOLOGIES,
    "PARTICIPANT_STATES": PARTICIPANT_STATES,
    "RECORDING_STATES": RECORDING_STATES,
    "SNAPSHOT_SOURCES": SNAPSHOT_SOURCES,
    "RECORDING_SOURCES": RECORDING_SOURCES,
    "ROOM_RECORDING_SOURCES": ROOM_RECORDING_SOURCES,
}
