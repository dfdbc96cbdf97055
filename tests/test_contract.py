"""The recorded sessions under tests/contract/ are what the real server answers today.

js/test/contract.test.js replays them into the JS fake server, so a JS unit test cannot
pass against a rule the server does not have; this test keeps the recordings from
drifting from the server.  After a deliberate change to the server's answers, record
again with ``python -m tests.contract.record`` and review the diff.
"""

from __future__ import annotations

import pytest

from tests.contract.record import dumps, path_of, record
from tests.contract.sessions import SESSIONS, Session


@pytest.mark.parametrize("session", SESSIONS, ids=[s.name for s in SESSIONS])
async def test_the_recording_is_what_the_server_answers_now(session: Session) -> None:
    path = path_of(session)
    assert path.exists(), f"{path.name} is missing: run python -m tests.contract.record"
    stored = path.read_text(encoding="utf-8")
    now = dumps(await record(session))
    assert now == stored, f"{path.name} differs from what the server answers now: run python -m tests.contract.record"


def test_every_recording_has_a_script() -> None:
    recorded = {p.stem for p in path_of(SESSIONS[0]).parent.glob("*.json")}
    assert recorded == {s.name for s in SESSIONS}
