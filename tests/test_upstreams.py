"""Where the Jupyter endpoint may carry a page's frames: loopback, and what the administrator lists.

The target comes from the page (``?upstream=``): every test here is a page trying to make
the Jupyter server connect somewhere it should not.
"""

from __future__ import annotations

import pytest

from nbcall._upstreams import ENV, allow_list, allowed

LISTED = allow_list(["wss://signal.example.org/nbcall", "ws://10.1.2.3:9900"], environ={})


@pytest.mark.parametrize(
    "target",
    [
        "ws://127.0.0.1:9900",
        "ws://localhost:1/x?token=abc",
        "ws://[::1]:2",
        "wss://signal.example.org/nbcall",
        "wss://signal.example.org/nbcall/?token=s3cret",
        "wss://SIGNAL.Example.org:443/nbcall/node-2",
        "ws://10.1.2.3:9900/",
        "ws://10.1.2.3:9900/anything",  # an entry without a path allows any path on that host and port
    ],
)
def test_allowed(target: str) -> None:
    assert allowed(target, LISTED)


@pytest.mark.parametrize(
    "target",
    [
        "wss://evil.example.org/nbcall",
        "ws://10.0.0.1:9900",  # not listed
        "ws://signal.example.org/nbcall",  # listed as wss only
        "wss://signal.example.org:8443/nbcall",  # another port
        "wss://signal.example.org/nbcallx",  # not below the listed path
        "wss://signal.example.org/",
        "wss://signal.example.org.evil.com/nbcall",
        "wss://signal.example.org@evil.com/nbcall",  # user info: which host is it?
        "wss://user:pw@signal.example.org/nbcall",
        "wss://evil.com#@signal.example.org/nbcall",
        "wss://signal.example.org/nbcall/../admin",
        "wss://signal.example.org/nbcall/%2e%2e/admin",
        "wss://signal.example.org/nbcall\\..\\admin",
        "http://127.0.0.1:9900",
        "ws://127.0.0.1:notaport",
        "ws://127.0.0.1:99999",
        "",
        "ws://",
        "javascript:alert(1)",
        "ws://10.1.2.3:9901",
    ],
)
def test_refused(target: str) -> None:
    assert not allowed(target, LISTED)


def test_nothing_listed_allows_loopback_only() -> None:
    empty = allow_list(None, environ={})
    assert allowed("ws://127.0.0.1:9900", empty)
    assert not allowed("wss://signal.example.org/nbcall", empty)


def test_the_environment_adds_entries() -> None:
    entries = allow_list(["wss://a.example.org"], environ={ENV: " wss://b.example.org/x,\nws://c.example.org:81 "})
    assert [(e.host, e.port, e.path) for e in entries] == [("a.example.org", 443, ""), ("b.example.org", 443, "/x"),
                                                           ("c.example.org", 81, "")]  # fmt: skip


@pytest.mark.parametrize("bad", ["http://a.example.org", "wss://u@a.example.org", "a.example.org", "wss://a:x", 42])
def test_a_mistyped_entry_stops_the_extension_loudly(bad: object) -> None:
    with pytest.raises(ValueError):
        allow_list([bad], environ={})  # type: ignore[list-item]
