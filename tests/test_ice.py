import base64
import hashlib
import hmac

import pytest

from nbcall.ice import default_ice_servers, turn_credentials, validate_ice_servers


def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    creds = turn_credentials("s3cret", "turn:127.0.0.1:3478", user="alice", ttl=600, now=1_700_000_000)
    assert creds["urls"] == ["turn:127.0.0.1:3478"]
    assert creds["username"] == "1700000600:alice"
    expected = hmac.new(b"s3cret", b"1700000600:alice", hashlib.sha1).digest()
    assert base64.b64decode(creds["credential"]) == expected


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"secret": "", "urls": "turn:h:3478"}, "empty"),
        ({"secret": "x", "urls": "turn:h:3478", "ttl": 0}, "ttl"),
        ({"secret": "x", "urls": "http://h"}, "not a STUN/TURN URL"),
        ({"secret": "x", "urls": "turn:h", "user": "a:b"}, "cannot contain"),
    ],
)
def test_turn_credentials_refuse_bad_input(kwargs: dict[str, object], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        turn_credentials(**kwargs)  # type: ignore[arg-type]


def test_default_ice_servers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBCALL_ICE_SERVERS", raising=False)
    assert default_ice_servers() == []
    monkeypatch.setenv("NBCALL_ICE_SERVERS", '[{"urls": "stun:127.0.0.1:3478"}]')
    assert default_ice_servers() == [{"urls": "stun:127.0.0.1:3478"}]
    monkeypatch.setenv("NBCALL_ICE_SERVERS", "[oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        default_ice_servers()


def test_validate_ice_servers_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="needs 'username'"):
        validate_ice_servers([{"urls": "turn:127.0.0.1:3478"}])
    with pytest.raises(ValueError, match="needs 'urls'"):
        validate_ice_servers([{"url": "stun:x"}])
