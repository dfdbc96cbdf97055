"""What an attacker with a name on the same server tries against other people's calls.

Against the real websockets server on 127.0.0.1 with its default limits.  Offers, answers
and candidates reach a user only from the other side of its call (or ringing invite); a
plain seed-style offer starts a call only with someone in no call; candidate and SDP
objects are forwarded with their known fields only.
"""

from __future__ import annotations

from nbcall.signaling import SignalingClient, SignalingServer

from .room_helpers import drain

SDP = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
PADDED = {**CANDIDATE, "pad": "x" * 60_000}  # extra keys used to pass validation and be forwarded


async def in_a_call(alice: SignalingClient, bob: SignalingClient) -> None:
    await alice.send({"type": "invite", "to": bob.username})
    await bob.expect("invite")
    await bob.send({"type": "accept", "to": alice.username})
    await alice.expect("accept")


async def test_strangers_flooding_candidates_cannot_end_a_call(server: SignalingServer) -> None:
    """The kick: two connections sent 200 padded candidates each to a victim, whose send
    buffer overflowed, so the server closed the victim and ended its call."""
    async with (
        SignalingClient(server.url, "alice") as alice,
        SignalingClient(server.url, "bob") as bob,
        SignalingClient(server.url, "mallory1") as m1,
        SignalingClient(server.url, "mallory2") as m2,
    ):
        await in_a_call(alice, bob)
        for _ in range(200):
            await m1.send({"type": "candidate", "to": "bob", "candidate": PADDED})
            await m2.send({"type": "candidate", "to": "bob", "candidate": PADDED})
        for attacker in (m1, m2):
            errors = {m["code"] for m in await drain(attacker, flooded=True) if m["type"] == "error"}
            assert errors and errors <= {"no_call", "rate_limited"}, errors
        # The attackers' round trips above came after all they sent: bob's own is enough.
        assert await drain(bob) == []  # nothing reached the victim
        await alice.send({"type": "candidate", "to": "bob", "candidate": CANDIDATE})
        assert (await bob.expect("candidate"))["from"] == "alice"  # the call goes on
        assert "bob" in {s.name for s in server.hub.users.values()}
        assert await drain(alice, bob) == []  # no hangup


async def test_answers_and_candidates_need_a_call_with_the_receiver(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "bob") as bob, SignalingClient(server.url, "mallory") as mallory:
        for message in (
            {"type": "answer", "to": "bob", "sdp": SDP},
            {"type": "candidate", "to": "bob", "candidate": CANDIDATE},
        ):
            await mallory.send(message)
            error = await mallory.expect("error")
            assert (error["code"], error["request"]) == ("no_call", message["type"])
        assert await drain(bob, mallory) == []


async def test_a_plain_offer_cannot_break_into_a_call(server: SignalingServer) -> None:
    async with (
        SignalingClient(server.url, "alice") as alice,
        SignalingClient(server.url, "bob") as bob,
        SignalingClient(server.url, "mallory") as mallory,
    ):
        await in_a_call(alice, bob)
        await mallory.send({"type": "offer", "to": "bob", "sdp": SDP})
        assert (await mallory.expect("busy"))["from"] == "bob"
        assert await drain(bob, mallory) == []
        await alice.send({"type": "offer", "to": "bob", "sdp": SDP})  # a renegotiation still flows
        assert (await bob.expect("offer"))["from"] == "alice"


async def test_a_seed_style_call_cannot_be_taken_over(server: SignalingServer) -> None:
    """A seed client's call is tracked too: no invite or offer from a third party ends it."""
    async with (
        SignalingClient(server.url, "seedpage", seed=True) as seed,
        SignalingClient(server.url, "widget") as widget,
        SignalingClient(server.url, "mallory") as mallory,
    ):
        await seed.send({"type": "offer", "to": "widget", "sdp": SDP})
        await widget.expect("offer")
        await mallory.send({"type": "invite", "to": "widget"})
        assert (await mallory.expect("busy"))["from"] == "widget"
        await mallory.send({"type": "offer", "to": "seedpage", "sdp": SDP})
        assert (await mallory.expect("busy"))["from"] == "seedpage"
        assert await drain(widget, mallory) == [] and await drain(seed, mallory) == []
        await seed.send({"type": "candidate", "to": "widget", "candidate": CANDIDATE})
        assert (await widget.expect("candidate"))["from"] == "seedpage"


async def test_only_known_fields_of_candidates_and_descriptions_are_forwarded(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice, SignalingClient(server.url, "bob") as bob:
        await in_a_call(alice, bob)
        await alice.send({"type": "offer", "to": "bob", "sdp": {**SDP, "pad": "x" * 1000, "extra": [1]}})
        assert (await bob.expect("offer"))["sdp"] == SDP
        await alice.send({"type": "candidate", "to": "bob", "candidate": {**PADDED, "usernameFragment": "abcd"}})
        assert (await bob.expect("candidate"))["candidate"] == {**CANDIDATE, "usernameFragment": "abcd"}
        await alice.send({"type": "candidate", "to": "bob", "candidate": {**CANDIDATE, "usernameFragment": 7}})
        assert (await alice.expect("error"))["code"] == "bad_message"


async def test_an_offer_to_yourself_is_refused(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice") as alice:
        await alice.send({"type": "offer", "to": "ALICE", "sdp": SDP})
        assert (await alice.expect("error"))["code"] == "self_call"
        assert server.hub.calls == {}


async def test_starting_another_seed_style_call_ends_your_own_and_says_so(server: SignalingServer) -> None:
    async with (
        SignalingClient(server.url, "seedpage", seed=True) as seed,
        SignalingClient(server.url, "first") as first,
        SignalingClient(server.url, "second") as second,
    ):
        await seed.send({"type": "offer", "to": "first", "sdp": SDP})
        await first.expect("offer")
        await seed.send({"type": "offer", "to": "second", "sdp": SDP})
        await second.expect("offer")
        hangup = await first.expect("hangup")
        assert (hangup["from"], hangup["reason"]) == ("seedpage", "hangup")


LOOK_ALIKES_OF_ALICE = ["aIice", "al1ce", "ALICE", "al\u0131ce"]  # capital I, digit one, case, dotless i
REFUSED = [
    "alice\u034f", "alice\ufe0f", "alice\ufe00", "alice\u180b", "alice\u17b4",  # invisible tails
    "\u3164\u3164", "\uffa0", "b\u0585b", "\u13aa\u13a0min", "\u1d00lice", "a" + "\u0301" * 63,
]  # fmt: skip


async def test_look_alike_names_cannot_impersonate_an_online_user(server: SignalingServer) -> None:
    async with SignalingClient(server.url, "alice"):
        for name in LOOK_ALIKES_OF_ALICE:
            impostor = SignalingClient(server.url)
            await impostor.connect()
            await impostor.send({"type": "register", "username": name, "client": "attacker"})
            error = await impostor.expect("error")
            assert error["code"] == "name_taken", (name, error)
            await impostor.close()
        for name in REFUSED:
            impostor = SignalingClient(server.url)
            await impostor.connect()
            await impostor.send({"type": "register", "username": name, "client": "attacker"})
            assert (await impostor.expect("error"))["code"] == "invalid_name", name
            await impostor.close()
        assert [s.name for s in server.hub.users.values()] == ["alice"]
