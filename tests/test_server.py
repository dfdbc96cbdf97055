"""The signaling server's rules, against the real websockets server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nbcall.signaling import Limits, SignalingClient, SignalingError, SignalingServer
from nbcall.signaling import protocol as p
from nbcall.signaling.names import name_key

from .barriers import settle
from .conftest import FakeClock, small_buffer_client

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


def seed_json(message: dict[str, Any]) -> str:
    """What node's JSON.stringify gives: compact, non-ASCII kept."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


async def error_of(client: SignalingClient, frame: dict[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(frame, dict):
        await client.send(frame)
    else:
        await client.send_raw(frame)
    return await client.expect("error")


# -- registration and presence ----------------------------------------------------------


async def test_register_replies_with_credential_and_online_users(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "小文222") as bob:
        assert bob.registration is not None
        assert bob.registration["username"] == "小文222"
        assert sorted(bob.registration["users"]) == ["alice", "小文222"]
        assert bob.registration["online"] == 2
        assert len(bob.registration["credential"]) >= 16
        await alice.send({"type": "list"})
        users = await alice.expect("users")
        assert sorted(users["users"]) == ["alice", "小文222"]


async def test_presence_is_batched_joins_and_leaves(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "watcher") as watcher:
        others = [SignalingClient(server.url, f"user{i}") for i in range(20)]
        await asyncio.gather(*(o.connect() for o in others))
        expected = {f"user{i}" for i in range(20)}
        joined: set[str] = set()
        updates = 0
        while not expected <= joined:
            update = await watcher.expect("presence")
            updates += 1
            joined.update(update["joined"])
        # 20 joins arrive in a few batched messages, not one message per join
        assert updates < 20
        assert joined - {"watcher"} == expected
        await asyncio.gather(*(o.close() for o in others[:5]))
        left: set[str] = set()
        while len(left) < 5:
            left.update((await watcher.expect("presence"))["left"])
        assert left == {f"user{i}" for i in range(5)}
        await asyncio.gather(*(o.close() for o in others[5:]))


async def test_a_quick_join_and_leave_is_still_reported_as_a_leave(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "watcher") as watcher:
        async with SignalingClient(server.url, "flash"):
            pass  # joins and leaves inside one presence batch
        left: set[str] = set()
        while "flash" not in left:
            left.update((await watcher.expect("presence"))["left"])


async def test_seed_clients_get_no_presence_noise(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "seedling", seed=True) as seed, SignalingClient(server.url, "w") as watcher:
        async with SignalingClient(server.url, "other"):
            while "other" not in (await watcher.expect("presence"))["joined"]:
                pass
        while "other" not in (await watcher.expect("presence"))["left"]:
            pass
        # A batch is written to every subscriber at once: had the seed client been one, both
        # batches would be on its socket already, before its pong.
        await seed.round_trip()
        assert [m for m in seed.pending() if m["type"] == "presence"] == []


# -- the seed's messages, forwarded -------------------------------------------------------------------


async def test_seed_messages_are_forwarded_in_the_seeds_exact_shape(server: SignalingServer) -> None:
    async with connect(server.url) as a, connect(server.url) as b:
        await a.send(seed_json({"type": "register", "id": "wzh111", "username": "小文111"}))
        await b.send(seed_json({"type": "register", "id": "wzh222", "username": "小文222"}))
        await a.recv()  # nbcall's registered reply (an extension the seed page ignores)
        await b.recv()
        for kind, field in (("offer", "sdp"), ("candidate", "candidate")):
            payload = SDP if field == "sdp" else CANDIDATE
            await a.send(seed_json({"type": kind, field: payload, "from": "小文111", "to": "小文222"}))
            assert await b.recv() == seed_json({"type": kind, "from": "小文111", field: payload})
        answer = {"type": "answer", "sdp": "v=0\r\n"}
        await b.send(seed_json({"type": "answer", "sdp": answer, "from": "小文222", "to": "小文111"}))
        assert await a.recv() == seed_json({"type": "answer", "from": "小文222", "sdp": answer})


async def test_from_is_stamped_by_the_server(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "mallory") as mallory, SignalingClient(server.url, "bob") as bob:
        await mallory.send({"type": "offer", "to": "bob", "from": "alice", "sdp": SDP})
        offer = await bob.expect("offer")
        assert offer["from"] == "mallory"


async def test_names_resolve_case_and_width_insensitively(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "Alice") as alice, SignalingClient(server.url, "bob") as bob:
        await bob.send({"type": "offer", "to": "ＡＬＩＣＥ", "sdp": SDP})  # a seed-style call
        await alice.expect("offer")
        await bob.send({"type": "candidate", "to": "ＡＬＩＣＥ", "candidate": CANDIDATE})
        assert (await alice.expect("candidate"))["from"] == "bob"


# -- call control -----------------------------------------------------------------------


async def test_invite_ring_accept_and_hangup_with_reason(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "bob") as bob:
        await alice.send({"type": "invite", "to": "bob"})
        ringing = await alice.expect("ringing")
        invite = await bob.expect("invite")
        assert invite["from"] == "alice" and invite["call_id"] == ringing["call_id"]
        await bob.send({"type": "accept", "to": "alice"})
        assert (await alice.expect("accept"))["from"] == "bob"
        await bob.send({"type": "hangup", "to": "alice", "reason": "failed"})
        hangup = await alice.expect("hangup")
        assert hangup["reason"] == "failed" and hangup["from"] == "bob"
        with pytest.raises(SignalingError, match="no_call"):
            await bob.send({"type": "hangup", "to": "alice"})
            await bob.expect("hangup")


async def test_reject_and_cancel(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "bob") as bob:
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await bob.send({"type": "reject", "to": "alice"})
        assert (await alice.expect("reject"))["reason"] == "rejected"
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await alice.send({"type": "cancel", "to": "bob"})
        assert (await bob.expect("cancel"))["reason"] == "cancelled"
        # the callee cannot cancel, the caller cannot accept its own call
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        assert (await error_of(alice, {"type": "accept", "to": "bob"}))["code"] == "no_call"
        assert (await error_of(bob, {"type": "cancel", "to": "alice"}))["code"] == "no_call"


async def test_busy_when_the_callee_is_in_another_call(server: SignalingServer) -> None:
    async with (
        SignalingClient(server.url, "alice") as alice,
        SignalingClient(server.url, "bob") as bob,
        SignalingClient(server.url, "carol") as carol,
    ):
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await bob.send({"type": "accept", "to": "alice"})
        await alice.expect("accept")
        await carol.send({"type": "invite", "to": "bob"})
        assert (await carol.expect("busy"))["from"] == "bob"
        # a seed-style plain offer to a busy user gets busy too, and is not forwarded
        await carol.send({"type": "offer", "to": "bob", "sdp": SDP})
        assert (await carol.expect("busy"))["from"] == "bob"
        # and the caller in a call cannot start a second one
        assert (await error_of(alice, {"type": "invite", "to": "carol"}))["code"] == "busy"
        await settle(carol, alice, bob)
        assert not [m for m in bob.pending() if m["type"] in ("offer", "invite")]


async def test_ring_timeout_ends_the_call_on_both_sides(server_factory: Any) -> None:
    server = await server_factory(limits=Limits(ring_timeout=0.3, presence_interval=0.05))
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "bob") as bob:
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        assert (await alice.expect("hangup", timeout=3))["reason"] == "timeout"
        assert (await bob.expect("cancel", timeout=3))["reason"] == "timeout"
        assert (await error_of(bob, {"type": "accept", "to": "alice"}))["code"] == "no_call"


async def test_disconnect_ends_the_call_at_once_and_frees_the_name(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice:
        bob = SignalingClient(server.url, "bob")
        await bob.connect()
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await bob.send({"type": "accept", "to": "alice"})
        await alice.expect("accept")
        await bob.close()
        hangup = await alice.expect("hangup", timeout=2)
        assert hangup == {
            "type": "hangup",
            "from": "bob",
            "from_key": name_key("bob"),
            "call_id": hangup["call_id"],
            "reason": "disconnected",
        }
        async with SignalingClient(server.url, "bob") as new_bob:
            assert new_bob.registration is not None


async def test_seed_style_call_disconnect_tells_the_other_side(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "widget") as widget:
        seed = SignalingClient(server.url, "seedpage", seed=True)
        await seed.connect()
        await seed.send({"type": "offer", "to": "widget", "from": "seedpage", "sdp": SDP})
        await widget.expect("offer")
        await seed.close()
        assert (await widget.expect("hangup", timeout=2))["reason"] == "disconnected"


async def test_inviting_a_seed_client_is_accepted_on_its_behalf(server: SignalingServer) -> None:
    async with (
        SignalingClient(server.url, "widget") as widget,
        SignalingClient(server.url, "seedpage", seed=True) as seed,
    ):
        await widget.send({"type": "invite", "to": "seedpage"})
        accept = await widget.expect("accept")
        assert accept["seed"] is True and accept["from"] == "seedpage"
        await widget.send({"type": "offer", "to": "seedpage", "sdp": SDP})
        assert (await seed.expect("offer"))["from"] == "widget"
        assert all(m["type"] != "invite" for m in seed.pending())


# -- names and credentials --------------------------------------------------------------


async def test_name_takeover_is_refused_without_the_credential(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice:
        intruder = SignalingClient(server.url, "ALICE")
        with pytest.raises(SignalingError) as caught:
            await intruder.connect()
        assert caught.value.code == "name_taken"
        intruder.credential = "guessed-credential"
        with pytest.raises(SignalingError, match="name_taken"):
            await intruder.register("alice")
        await intruder.close()
        await alice.send({"type": "ping"})
        assert await alice.expect("pong")


async def test_reconnect_with_credential_takes_over_and_keeps_the_call(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "bob") as bob:
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await bob.send({"type": "accept", "to": "alice"})
        await alice.expect("accept")
        async with SignalingClient(server.url, "alice", credential=alice.credential) as again:
            assert again.registration is not None
            assert again.registration["call"]["peer"] == "bob"
            assert (await alice.expect("replaced"))["type"] == "replaced"
            await asyncio.wait_for(alice.closed.wait(), 2)
            assert alice.ws.close_code == p.CLOSE_REPLACED
            # the call goes on with the new connection, and the old one's close ended nothing
            await bob.send({"type": "answer", "to": "alice", "sdp": SDP})
            assert (await again.expect("answer"))["from"] == "bob"
            # The old socket's end reaches the hub (which could end the call) in the server's
            # handler, a turn of this loop after the server let the socket go: then a round
            # trip through bob comes after anything that sent him.
            while len(server.admission) > 2:
                await asyncio.sleep(0.01)
            await settle(again, bob)
            assert all(m["type"] != "hangup" for m in bob.pending())


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_message"),
        ("[1,2,3]", "bad_message"),
        ('{"type": "teleport"}', "bad_message"),
        ('{"no": "type"}', "bad_message"),
        ('{"type": "offer", "to": "bob", "sdp": 42}', "bad_message"),
        ('{"type": "offer", "to": "bob", "sdp": {"type": "nonsense", "sdp": ""}}', "bad_message"),
        ('{"type": "candidate", "to": "bob", "candidate": "x"}', "bad_message"),
        ('{"type": "hangup", "to": "bob", "reason": "because"}', "bad_message"),
        ('{"type": "offer", "to": 7, "sdp": "v=0"}', "bad_message"),
        ('{"type": "invite", "to": "bob", "call_id": 5}', "bad_message"),
        ('{"type": "offer", "to": "nobody", "sdp": "v=0"}', "unknown_peer"),
        ('{"type": "invite", "to": "me"}', "self_call"),
        ('{"type": "accept", "to": "bob"}', "no_call"),
        ('{"type": "register", "username": "a\\u200bb"}', "invalid_name"),
        ('{"type": "register", "username": "x", "presence": "yes"}', "bad_message"),
    ],
)
async def test_each_bad_request_gets_a_stable_error_code(server: SignalingServer, frame: str, code: str) -> None:
    async with SignalingClient(server.url, "me") as me, SignalingClient(server.url, "bob"):
        error = await error_of(me, frame)
        assert error["code"] == code and error["message"]
        assert code in p.ErrorCode.ALL
        await me.send({"type": "ping"})
        assert await me.expect("pong")


async def test_requests_before_register_are_refused(server: SignalingServer) -> None:
    async with SignalingClient(server.url) as anonymous:
        error = await error_of(anonymous, {"type": "offer", "to": "x", "sdp": SDP})
        assert error["code"] == "not_registered"


async def test_oversized_payloads_get_too_large_and_huge_frames_close(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "me") as me, SignalingClient(server.url, "bob"):
        big_sdp = {"type": "offer", "sdp": "a" * (p.MAX_SDP_CHARS + 1)}
        assert (await error_of(me, {"type": "offer", "to": "bob", "sdp": big_sdp}))["code"] == "too_large"
        frame = json.dumps({"type": "ping", "pad": "x" * p.MAX_FRAME_BYTES})
        assert (await error_of(me, frame))["code"] == "too_large"
        await me.send_raw(b"\x00\x01binary")
        assert (await me.expect("error"))["code"] == "bad_message"
        await me.send_raw("x" * (p.MAX_HARD_FRAME_BYTES + 1))
        await asyncio.wait_for(me.closed.wait(), 3)
        assert me.ws.close_code == 1009


async def test_rate_limit_drops_the_flood_and_says_so_once(server_factory: Any) -> None:
    clock = FakeClock()  # stands still until advanced: no refill while the flood is handled
    server = await server_factory(limits=Limits(rate=20, burst=10, presence_interval=0.05), clock=clock)
    async with SignalingClient(server.url, "flood") as flood, SignalingClient(server.url, "bob") as bob:
        await flood.send({"type": "offer", "to": "bob", "sdp": SDP})  # a call: candidates go to it
        await bob.expect("offer")
        relayed = server.hub.relayed
        for _ in range(100):
            await flood.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})
        for _ in range(500):  # until the server has handled all 100 (forwarded or dropped)
            if server.hub.relayed - relayed + server.hub.errors.get("rate_limited", 0) == 100:
                break
            await asyncio.sleep(0.01)
        clock.advance(0.5)  # the bucket refills (20/s): the ping below is not dropped
        await flood.send({"type": "ping"})
        before_pong = []  # the pong is a barrier: every reply to the flood came before it
        while (message := await flood.recv())["type"] != "pong":
            before_pong.append(message)
        await bob.round_trip()  # and every forward of it reached bob before his pong
        received = [m for m in bob.pending() if m["type"] == "candidate"]
        errors = [m for m in before_pong if m["type"] == "error"]
        assert 8 <= len(received) < 30  # the burst (less register and offer) and a little refill, not 100
        assert [e["code"] for e in errors] == ["rate_limited"]


async def test_a_fuzzing_neighbour_does_not_disturb_a_call(server: SignalingServer) -> None:
    async with (
        SignalingClient(server.url, "alice") as alice,
        SignalingClient(server.url, "bob") as bob,
        SignalingClient(server.url, "noisy") as noisy,
    ):
        await alice.send({"type": "offer", "to": "bob", "sdp": SDP})
        await bob.expect("offer")
        for garbage in (
            "{",
            "null",
            '{"type":"offer"}',
            '{"type":"register"}',
            "\ud800".encode("utf-8", "surrogatepass"),
        ):
            await noisy.send_raw(garbage)
            await alice.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})
            assert (await bob.expect("candidate"))["from"] == "alice"


async def test_slow_receiver_is_disconnected_not_buffered_forever(server_factory: Any) -> None:
    # The slow-receiver rule itself, for what the server sends: forwards are let through to it
    # here (no cap on what a partner may queue; see the next test for that cap).
    limits = Limits(rate=1e6, burst=1e6, max_forward_backlog=1 << 40)
    server = await server_factory(max_buffer=256 * 1024, limits=limits)
    sleeper = await small_buffer_client(server.url, server.port, {"type": "register", "username": "sleeper"})
    async with SignalingClient(server.url, "sender") as sender:
        sleeper.transport.pause_reading()  # a client that stops reading
        sdp = {"type": "offer", "sdp": "a" * 40_000}
        for _ in range(400):
            await sender.send({"type": "offer", "to": "sleeper", "sdp": sdp})
            if "sleeper" not in {s.name for s in server.hub.users.values()}:
                break
        await sender.round_trip()  # every offer handled: the sleeper's overflow came with one of them
        assert "sleeper" not in {s.name for s in server.hub.users.values()}
    sleeper.transport.resume_reading()
    with pytest.raises(ConnectionClosed):
        while True:
            await sleeper.recv()


async def test_a_partner_flooding_a_receiver_that_does_not_read_is_refused_not_the_receiver_dropped(
    server_factory: Any,
) -> None:
    """What someone else sends never costs the receiver its connection: past max_forward_backlog
    unread bytes, the sender's forwards are refused (rate_limited), the receiver stays."""
    limits = Limits(rate=1e6, burst=1e6, max_forward_backlog=64 * 1024)
    server = await server_factory(max_buffer=256 * 1024, limits=limits)
    register = {"type": "register", "username": "sleeper", "client": "t"}
    sleeper = await small_buffer_client(server.url, server.port, register)
    async with SignalingClient(server.url, "sender") as sender:
        sleeper.transport.pause_reading()  # a client that stops reading
        sdp = {"type": "offer", "sdp": "a" * 40_000}
        for _ in range(200):
            await sender.send({"type": "offer", "to": "sleeper", "sdp": sdp})
        await sender.round_trip()  # every reply to the 200 has arrived
        codes = {m.get("code") for m in sender.pending() if m["type"] == "error"}
        assert codes == {"rate_limited"}
        session = server.hub.users[name_key("sleeper")]
        assert session.transport.unsent_bytes() <= limits.max_forward_backlog + 48 * 1024  # one frame past the cap
        sleeper.transport.resume_reading()
        first = json.loads(await asyncio.wait_for(sleeper.recv(), 5))
        assert first["type"] in ("offer", "presence") and name_key("sleeper") in server.hub.users
    # Not close(): its handshake waits behind what the paused reader never read (10 s).
    sleeper.transport.abort()


# -- listening safely -------------------------------------------------------------------


async def test_token_is_required_when_configured(server_factory: Any) -> None:
    server = await server_factory(token="s3cret-token")
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url)
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["code"] == "unauthorized"
    with pytest.raises(InvalidStatus):
        await connect(server.url + "/?token=wrong-token")
    async with SignalingClient(server.url + "/?token=s3cret-token", "alice") as alice:
        assert alice.registration is not None
    async with connect(server.url, additional_headers={"Authorization": "Bearer s3cret-token"}) as ws:
        await ws.send('{"type":"ping"}')
        assert json.loads(await ws.recv())["type"] == "pong"


async def test_browser_origins_can_be_restricted(server_factory: Any) -> None:
    server = await server_factory(origins=["http://127.0.0.1:8888"])
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    async with connect(server.url, origin="http://127.0.0.1:8888") as ws:  # type: ignore[arg-type]
        await ws.send('{"type":"ping"}')
        assert json.loads(await ws.recv())["type"] == "pong"


async def test_connections_beyond_the_limit_are_refused(server_factory: Any) -> None:
    server = await server_factory(max_connections=2)
    async with connect(server.url), connect(server.url):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url)
        assert refused.value.response.status_code == 503


def test_binds_loopback_by_default() -> None:
    from nbcall.signaling import ServerConfig

    assert ServerConfig().host == "127.0.0.1"
    with pytest.raises(ValueError, match="at least 8"):
        ServerConfig(token="short").check()


async def test_health_endpoint_identifies_the_server(server: SignalingServer) -> None:
    from nbcall.signaling import probe

    info = await asyncio.to_thread(probe, "127.0.0.1", server.port)
    assert info is not None and info["server"] == "nbcall" and info["protocol"] == p.PROTOCOL_VERSION
