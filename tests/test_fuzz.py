"""Property-based fuzzing: arbitrary and mutated messages never crash the server or
disturb the well-behaved clients next to the fuzzer."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from nbcall.signaling import SignalingClient, wire
from nbcall.signaling import protocol as p

from .conftest import free_port, nbcall_server_cmd, serving

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["type", "to", "from", "sdp", "candidate", "username", "credential", "call_id", "reason", "presence", "client"]
)
message_types = st.sampled_from(sorted(wire.CLIENT_TYPES)) | st.text(max_size=12)
# Messages shaped like real ones, with fields of any type: the likeliest way to hit a bug.
mutated = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    message_types,
    st.dictionaries(field_names, json_values | st.sampled_from(["bob", "fuzzer", "", "x" * 300]), max_size=6),
)
frames = st.one_of(
    mutated.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
)


@pytest.fixture(scope="module")
def standalone_url() -> Iterator[str]:
    port = free_port()
    cmd = nbcall_server_cmd(port, "--rate", "1000000", "--burst", "1000000", "--log-level", "WARNING")
    with serving(cmd, port, stdout=subprocess.DEVNULL) as proc:
        yield f"ws://127.0.0.1:{port}"
        assert proc.poll() is None, "the server died during fuzzing"


async def fuzz_once(url: str, batch: list[str | bytes], register_first: bool) -> None:
    async with (
        SignalingClient(url, "alice") as alice,
        SignalingClient(url, "bob") as bob,
        connect(url, max_size=None) as fuzzer,
    ):
        # alice and bob are in a call before the fuzzer starts: nothing it sends may disturb it.
        await alice.send({"type": "invite", "to": "bob"})
        await bob.expect("invite")
        await bob.send({"type": "accept", "to": "alice"})
        await alice.expect("accept")
        if register_first:
            await fuzzer.send(json.dumps({"type": "register", "username": "fuzzer"}))
        for frame in batch:
            if isinstance(frame, bytes):
                await fuzzer.send(frame, text=True)  # possibly invalid UTF-8 in a text frame
            else:
                await fuzzer.send(frame)
        # Every reply the fuzzer gets is a well-formed protocol message.
        await fuzzer.send('{"type":"ping"}')
        while True:
            reply: Any = json.loads(await asyncio.wait_for(fuzzer.recv(), 5))
            assert isinstance(reply, dict) and isinstance(reply.get("type"), str)
            if reply["type"] == "error":
                assert reply["code"] in p.ErrorCode.ALL - {p.ErrorCode.INTERNAL}, reply
            if reply["type"] == "pong":
                break
        # ...and the neighbours' call still carries their messages.
        await alice.send({"type": "candidate", "to": "bob", "candidate": None})
        reached_bob = []
        while not reached_bob or reached_bob[-1]["type"] != "candidate":
            reached_bob.append(await bob.recv())
        assert reached_bob[-1]["from"] == "alice"
        assert [m for m in reached_bob if m["type"] != "presence"] == [reached_bob[-1]], reached_bob


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=12), register_first=st.booleans())
def test_fuzzed_messages_never_break_the_server(
    standalone_url: str, batch: list[str | bytes], register_first: bool
) -> None:
    asyncio.run(fuzz_once(standalone_url, batch, register_first))


@pytest.mark.slow
@given(frame=frames)
@settings(max_examples=500, deadline=None)
def test_parse_request_only_raises_protocol_errors(frame: str | bytes) -> None:
    try:
        message = wire.parse_request(frame)
    except p.ProtocolError as exc:
        assert exc.code in p.ErrorCode.ALL - {p.ErrorCode.INTERNAL}
    else:
        assert message["type"] in wire.CLIENT_TYPES
