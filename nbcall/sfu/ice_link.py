"""An interface of its own, with a loopback-range address, for a local Janus's ICE.

Janus gathers ICE candidates with libnice, which never uses a loopback interface: on a
machine (or CI sandbox) with only ``lo`` a local Janus has no candidate at all, and on a
machine with a real interface its media would go to that interface's address.  Neither
``ice_enforce_list = lo`` nor ``nat_1_1_mapping`` helps (the socket stays bound where
libnice put it).  What does: a veth pair in this network namespace whose one end carries a
``127.x.y.z/32`` address.  It is not flagged as loopback, so Janus gathers exactly one
candidate on it (``ice_enforce_list`` names it), and a ``127.*`` destination is delivered
locally like any loopback address: the browsers reach Janus and nothing leaves the machine.

Creating links needs root (CAP_NET_ADMIN) and ``ip`` (iproute2); without them
:meth:`IceLink.open` returns None and Janus uses the machine's own interfaces, as a
deployment would.  :meth:`IceLink.close` removes the pair (deleting one end deletes both).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("nbcall.sfu")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def sweep() -> int:
    """Remove the pairs of processes that are gone (killed before they could); how many."""
    try:
        listing = subprocess.run(["ip", "-o", "link"], check=True, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    removed = 0
    for line in listing.splitlines():
        parts = line.split(":")
        name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        if not name.startswith("tunj") or len(name) < 9:
            continue
        try:
            pid = int(name[4:-4], 16)
        except ValueError:
            continue
        if not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _ip("link", "del", name)
                removed += 1
    return removed


class IceLink:
    """A veth pair ``tunj<pid><rand>``/``tunk<pid><rand>`` whose first end has a random ``127.x.y.z/32``.

    Named like a tunnel: Chromium leaves ``tun*`` interfaces out when it decides whether the
    network changed (seen here once with another name: a page's loads in flight failed with
    ERR_NETWORK_CHANGED as Janus started; not since).
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self.address: str | None = None

    def open(self) -> str | None:
        """Create the pair and return the interface Janus should gather on (None: not possible here)."""
        if os.geteuid() != 0 or shutil.which("ip") is None:
            return None
        sweep()
        for _ in range(5):
            # The owner's pid in the name: a pair whose process is gone (killed) is swept later.
            tag = f"{os.getpid():x}{secrets.token_hex(2)}"
            name, peer = f"tunj{tag}", f"tunk{tag}"
            # Never 127.0.0.x: what else on this machine listens on loopback is most likely there.
            address = f"127.{1 + secrets.randbelow(254)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
            try:
                _ip("link", "add", name, "type", "veth", "peer", "name", peer)
            except (OSError, subprocess.SubprocessError) as exc:
                log.info("cannot create a link for Janus's ICE (%s): Janus uses the machine's interfaces", exc)
                return None
            try:
                # No IPv6 on it: each link-local address would be one more ICE candidate for
                # every browser connection on this machine (Chromium gathers on all interfaces).
                for end in (name, peer):
                    with contextlib.suppress(OSError):  # a kernel without IPv6 has none to add
                        Path(f"/proc/sys/net/ipv6/conf/{end}/disable_ipv6").write_text("1")
                _ip("addr", "add", f"{address}/32", "dev", name)
                _ip("link", "set", name, "up")
                _ip("link", "set", peer, "up")
            except (OSError, subprocess.SubprocessError):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    _ip("link", "del", name)
                continue  # an address in use: another try
            self.name, self.address = name, address
            return name
        return None

    def close(self) -> None:
        """Remove the pair (both ends); a second call does nothing."""
        name, self.name = self.name, None
        if name is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _ip("link", "del", name)
