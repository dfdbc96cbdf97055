"""Two users' machines on one signaling cluster, as on a JupyterHub (issue 13).

The cluster (a Redis and two `nbcall-server --redis` nodes) runs in a network namespace the
test makes, on a non-loopback address, as a shared service would run on other machines.
Two Jupyter servers outside it each have a kernel pointed at a different node
(``NBCALL_SERVER``) and an administrator's allow-list naming that node
(``NBCALL_UPSTREAMS``); their pages reach it only through their own Jupyter origin (the
same-origin endpoint). A call between the two connects with frames decoded both ways, and a
page cannot make its endpoint reach a node its administrator did not list.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from nbcall._testing.jupyter import JupyterLab
from nbcall._testing.lab import Lab, write_notebook
from nbcall._testing.processes import stop_process
from nbcall.signaling import protocol as p

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUBNET = f"10.231.{os.getpid() % 200 + 20}"
HOST_SIDE, CLUSTER_SIDE = f"{SUBNET}.1", f"{SUBNET}.2"
TOKEN = secrets.token_urlsafe(16)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def reachable(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Redis and two nodes in a namespace of their own; yields the nodes' URLs (token included)."""
    ns = f"nbcall{os.getpid() % 100000}"
    outside, inside = f"nbv{os.getpid() % 100000}a", f"nbv{os.getpid() % 100000}b"
    ip("netns", "add", ns)
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path_factory.mktemp("cluster")
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", ns)
        ip("addr", "add", f"{HOST_SIDE}/24", "dev", outside)
        ip("link", "set", outside, "up")
        for args in (["addr", "add", f"{CLUSTER_SIDE}/24", "dev", inside], ["link", "set", inside, "up"],
                     ["link", "set", "lo", "up"]):  # fmt: skip
            ip("netns", "exec", ns, "ip", *args)
        run = ["ip", "netns", "exec", ns]
        redis_port, ports = 6379, [9901, 9902]  # a namespace of its own: every port is free
        procs.append(subprocess.Popen([*run, "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))  # fmt: skip
        for node, port in zip("ab", ports, strict=True):
            cmd = [*run, sys.executable, "-m", "nbcall", "--host", CLUSTER_SIDE, "--port", str(port),
                   f"--token={TOKEN}", "--redis", f"redis://127.0.0.1:{redis_port}/0", "--node-id", node]  # fmt: skip
            with (logs / f"node-{node}.log").open("wb") as out:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        for port in ports:
            reachable(CLUSTER_SIDE, port)
        yield [f"ws://{CLUSTER_SIDE}:{port}/?token={TOKEN}" for port in ports]
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", outside], check=False, capture_output=True)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def machines(
    cluster: list[str], browser: Browser, sandbox_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[Lab]]:
    """Two Jupyter servers, each a user's machine whose kernels use one node of the cluster."""
    labs: list[tuple[JupyterLab, Lab]] = []
    try:
        for i, node in enumerate(cluster):
            home = tmp_path_factory.mktemp(f"machine{i}")
            node_base = node.split("/?")[0]
            env = {**sandbox_env, "NBCALL_SERVER": node, "NBCALL_UPSTREAMS": node_base}
            server = JupyterLab(home / "notebooks", env, home / "lab.log")
            server.wait_ready()
            labs.append((server, Lab(browser, server.base, server.token, server.root, node)))
        yield [lab for _, lab in labs]
    finally:
        for server, lab in labs:
            await lab.close_all()
            server.stop()


def widget_notebook(lab: Lab, user: str) -> str:
    # No server given: the kernel uses $NBCALL_SERVER; the page may only use its own Jupyter origin.
    cell = f"import nbcall\nw = nbcall.CallWidget({user!r}, connect_via='same-origin')\nw"
    write_notebook(lab.root / "call.ipynb", [cell])
    return "call.ipynb"


async def test_a_call_between_two_machines_through_their_jupyter_origins(machines: list[Lab]) -> None:
    lab_a, lab_b = machines
    a = await lab_a.open(widget_notebook(lab_a, "ann-c"), users=["ann-c"])
    b = await lab_b.open(widget_notebook(lab_b, "ben-c"), users=["ben-c"])
    for nb, lab in ((a, lab_a), (b, lab_b)):  # each kernel on its own node, each page through its Jupyter origin
        got = (await nb.py("print(w.server == NODE, w.transport)".replace("NODE", repr(lab.signaling_url)))).split()
        assert got == ["True", "same-origin"], got
    await a.wait_py("'ben-c' in w.peers", "True")  # presence across nodes
    await a.py("w.call('ben-c')")
    await b.wait_py("w.state, w.incoming", "('ringing', 'ann-c')")
    await b.py("w.accept()")
    await a.wait_py("w.state", "connected")
    await b.wait_py("w.state", "connected")
    await a.assert_video_flows("ann-c")
    await b.assert_video_flows("ben-c")
    await a.py("w.hangup()")
    await b.wait_py("w.state, w.end_reason", "('ended', 'hangup')")


async def test_a_page_cannot_reach_a_node_its_administrator_did_not_list(
    machines: list[Lab], cluster: list[str]
) -> None:
    lab_a = machines[0]
    nb = await lab_a.open(widget_notebook(lab_a, "cy-c"), users=["cy-c"])
    # Node b is up and reachable from this machine, but only node a is on this server's list.
    code = await nb.page.evaluate(
        """([path, token]) => new Promise((resolve) => {
             const ws = new WebSocket(`ws://${location.host}/${path}&token=${token}`);
             let error = "";
             ws.onmessage = (e) => { error = e.data; };
             ws.onclose = (e) => resolve([e.code, error]);
           })""",
        [f"nbcall/signal?upstream={quote(cluster[1], safe='')}", lab_a.token],
    )
    assert code[0] == p.CLOSE_UNAUTHORIZED and '"unauthorized"' in code[1] and "NBCALL_UPSTREAMS" in code[1], code
