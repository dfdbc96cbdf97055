"""Liveness (issue 12): how soon a call's partner is told that the other side failed.

A failing peer is a child process running a :class:`~nbcall.signaling.SignalingClient`,
registered and in a call (``invite`` → ``accept``) with an observer in this process.  The
child then fails in one of four ways, and the observer's clock (``time.monotonic`` here,
the same clock the failure was started by) says when it heard of it:

- ``clean``: the child closes its websocket with a close frame (SIGUSR1 asks it to);
- ``kill``: SIGKILL (its kernel closes the socket: FIN, or RST);
- ``stop``: SIGSTOP (no FIN: its kernel keeps ACKing, the process answers no pings);
- ``blackhole``: the network path drops every packet both ways (the child runs in a
  network namespace of its own, joined to the server's namespace by a veth pair; a
  ``pfifo limit 0`` qdisc on both ends drops everything; this kernel has no netem).

Reported per case: seconds from the failure to the observer's first ``peer_status``
``reconnecting``, to its ``hangup`` (the reason, ``disconnected``, is recorded), and to the
first of the two ("told": the partner knows something is wrong).  Drops keep the call for
the reconnect grace (15 s by default), so their ``hangup`` comes after it.

Transports (the servers run with their defaults):

- ``standalone``: ``python -m nbcall`` directly;
- ``jupyter``: a real Jupyter server's endpoint ``/nbcall/signal?token=T``, its own hub;
- ``jupyter-upstream``: the same endpoint with ``&upstream=ws://127.0.0.1:PORT`` to the
  standalone server (both the observer and the child connect that way).

Network namespaces: unless ``--no-netns``, the script creates a namespace for the servers
(``nblv<pid>s``) and one per repeat for the blackholed children, joined by veth pairs on
private 10.231.K.0/30 addresses that exist only inside them, then moves itself into the
server namespace (``setns``), so the servers, the observers and the other children all
talk over that namespace's loopback.  Nothing is added to the machine's own namespace;
everything is deleted at the end.  Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).

All the cases of a transport run together: N children per case, their failures
staggered by a random 0.4-0.9 s (so they fall at every phase of the server's 1 s ping
timer), then one wait for the grace.  Every process is stopped by its pid.

    sudo .venv/bin/python -m benchmarks.liveness --json benchmarks/results/liveness-1.json   # ~2 min
    .venv/bin/python -m benchmarks.liveness --no-netns --repeats 3                           # no blackhole
    .venv/bin/python -m benchmarks.liveness --summarise benchmarks/results/liveness-{1,2}.json  # pooled
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("NBCALL_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
CASES = ("clean", "kill", "stop", "blackhole")
TRANSPORTS = ("standalone", "jupyter", "jupyter-upstream")
GOAL_S = 2.0  # issue 12: the partner is told within 2 s, every case
CLONE_NEWNET = 0x40000000


# -- the failing peer (a child process) ------------------------------------------------


async def child_main(url: str, name: str) -> None:
    from nbcall.signaling import SignalingClient

    client = SignalingClient(url, name, presence=False)
    await client.connect(timeout=30)
    print("registered", flush=True)
    invite = await client.expect("invite", timeout=120)
    await client.send({"type": "accept", "to": invite["from"]})
    print("incall", flush=True)
    leave = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, leave.set)
    await leave.wait()
    await client.close()  # a close frame (1000): it left on purpose
    print("closed", flush=True)


# -- network namespaces ------------------------------------------------------------------


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


class Namespaces:
    """A server namespace and ``n`` client namespaces, each joined to it by a veth pair.

    Client K: namespace ``nblv<pid>cK``, address 10.231.K.2 on ``nblv<pid>cK``; its veth
    peer in the server namespace is ``nblv<pid>sK`` with 10.231.K.1.  Nothing else.
    """

    def __init__(self, n: int) -> None:
        tag = f"nblv{os.getpid() % 100000}"
        self.server = f"{tag}s"
        self.clients = [f"{tag}c{k}" for k in range(n)]
        self.dev_server = [f"{tag}s{k}" for k in range(n)]
        self.dev_client = [f"{tag}c{k}" for k in range(n)]
        self.made: list[str] = []

    def create(self) -> None:
        for ns in [self.server, *self.clients]:
            run("ip", "netns", "add", ns)
            self.made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        for k, ns in enumerate(self.clients):
            # Created inside the server namespace, its peer inside the client's: never in ours.
            run("ip", "-n", self.server, "link", "add", self.dev_server[k], "type", "veth",
                "peer", "name", self.dev_client[k], "netns", ns)  # fmt: skip
            run("ip", "-n", self.server, "addr", "add", f"{self.server_ip(k)}/30", "dev", self.dev_server[k])
            run("ip", "-n", ns, "addr", "add", f"10.231.{k}.2/30", "dev", self.dev_client[k])
            run("ip", "-n", self.server, "link", "set", self.dev_server[k], "up")
            run("ip", "-n", ns, "link", "set", self.dev_client[k], "up")

    @staticmethod
    def server_ip(k: int) -> str:
        return f"10.231.{k}.1"

    def enter_server(self) -> None:
        """Move this (still single-threaded) process into the server namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.server}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns: {os.strerror(err)}")
        finally:
            os.close(fd)

    def exec_prefix(self, k: int) -> list[str]:
        return ["ip", "netns", "exec", self.clients[k]]

    def blackhole(self, k: int) -> list[float]:
        """Drop every packet of pair K, client side first (its pongs); returns [t after each]."""
        stamps = []
        for ns, dev in ((self.clients[k], self.dev_client[k]), (self.server, self.dev_server[k])):
            run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "pfifo", "limit", "0")
            stamps.append(time.monotonic())
        return stamps

    def restore(self, k: int) -> None:
        for ns, dev in ((self.clients[k], self.dev_client[k]), (self.server, self.dev_server[k])):
            subprocess.run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], capture_output=True, timeout=20)

    def delete(self) -> None:
        for ns in reversed(self.made):  # deleting a namespace deletes its veth (and the peer)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self.made.clear()


# -- servers -----------------------------------------------------------------------------


def jupyter_command(host: str, port: int, token: str, home: Path) -> tuple[list[str], dict[str, str]]:
    """A Jupyter server (with nbcall's extension, enabled by the install) and its environment:
    its own config, data and runtime directories under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(home / var.lower())
    cmd = [PYTHON, "-m", "jupyter_server", "--no-browser", f"--ip={host}", f"--port={port}",
           "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}",
           "--ServerApp.port_retries=0"]  # fmt: skip
    if host not in ("127.0.0.1", "localhost"):
        cmd.append("--ServerApp.allow_remote_access=True")  # inside our own namespace only
    return cmd, env


def wait_jupyter(proc: subprocess.Popen[bytes], port: int, token: str, log: Path, timeout: float = 60) -> None:
    """Return once ``/nbcall/info`` answers (the extension has loaded)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/nbcall/info?token={token}", timeout=3):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the Jupyter endpoint did not come up: see {log}") from None
            time.sleep(0.2)


class Servers:
    """The standalone server and a Jupyter server, listening on ``host``; stopped by pid."""

    def __init__(self, host: str, logdir: Path) -> None:
        from nbcall._testing.processes import free_port

        self.host, self.logdir = host, logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sport = free_port()
        self.jport = free_port()
        self.token = secrets.token_hex(16)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        self.env = env
        self.commands: dict[str, list[str]] = {}

    def start(self) -> None:
        from nbcall._testing.processes import nbcall_server_cmd, wait_for_port

        cmd = nbcall_server_cmd(self.sport, python=PYTHON)
        cmd[cmd.index("--host") + 1] = self.host
        self.commands["standalone"] = cmd
        self.standalone = self._popen(cmd, "standalone.log")
        jcmd, jenv = jupyter_command(self.host, self.jport, self.token, self.logdir / "jupyter-home")
        self.commands["jupyter"] = [c.replace(self.token, "T") for c in jcmd]
        self.jupyter = self._popen(jcmd, "jupyter.log", env=jenv)
        wait_for_port(self.sport, self.standalone, 15)
        wait_jupyter(self.jupyter, self.jport, self.token, self.logdir / "jupyter.log")

    def _popen(self, cmd: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = open(self.logdir / log, "wb")  # noqa: SIM115 - the child keeps it; closed with the process
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env or self.env)
        out.close()
        self.procs.append(proc)
        return proc

    def url(self, transport: str, host: str = "127.0.0.1") -> str:
        if transport == "standalone":
            return f"ws://{host}:{self.sport}"
        url = f"ws://{host}:{self.jport}/nbcall/signal?token={self.token}"
        if transport == "jupyter-upstream":
            url += "&upstream=" + urllib.parse.quote(f"ws://127.0.0.1:{self.sport}", safe="")
        return url

    def stop(self) -> None:
        from nbcall._testing.processes import stop_process

        for proc in reversed(self.procs):
            stop_process(proc, timeout=10)  # SIGTERM, then SIGKILL, by pid


# -- one trial: a child in a call with an observer ---------------------------------------


@dataclass
class Trial:
    transport: str
    case: str
    k: int
    peer: str
    observer: str
    child_pid: int = 0
    t_fail: float = 0.0  # monotonic
    blackhole_stamps: list[float] = field(default_factory=list)
    reconnecting_s: float | None = None
    connected_again_s: float | None = None
    hangup_s: float | None = None
    hangup_reason: str | None = None
    grace: float | None = None
    other: list[dict[str, Any]] = field(default_factory=list)  # anything else the observer got after the failure
    error: str | None = None

    @property
    def told_s(self) -> float | None:
        known = [t for t in (self.reconnecting_s, self.hangup_s) if t is not None]
        return min(known) if known else None


async def read_line(proc: asyncio.subprocess.Process, want: str, timeout: float) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if line.decode().strip() != want:
        raise RuntimeError(f"child {proc.pid} said {line!r}, expected {want!r}")


async def run_transport(
    transport: str, servers: Servers, ns: Namespaces | None, args: argparse.Namespace, rng: random.Random
) -> list[Trial]:
    from nbcall.signaling import SignalingClient

    cases = [c for c in args.cases if c != "blackhole" or ns is not None]
    short = {"standalone": "s", "jupyter": "j", "jupyter-upstream": "u"}[transport]
    run_id = secrets.token_hex(2)
    trials = [
        Trial(transport, case, k, f"peer-{short}{run_id}-{case}-{k}", f"obs-{short}{run_id}-{case}-{k}")
        for k in range(args.repeats)
        for case in cases
    ]
    procs: dict[str, asyncio.subprocess.Process] = {}
    observers: dict[str, SignalingClient] = {}
    watchers: list[asyncio.Task[None]] = []
    log = open(servers.logdir / f"children-{transport}.log", "ab")  # noqa: SIM115
    try:
        # Children: registered, then waiting for an invite.
        for trial in trials:
            prefix, host = [], "127.0.0.1"
            if trial.case == "blackhole":
                assert ns is not None
                prefix, host = ns.exec_prefix(trial.k), ns.server_ip(trial.k)
            cmd = [*prefix, PYTHON, "-m", "benchmarks.liveness", "--child", servers.url(transport, host), trial.peer]
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=log, env=servers.env, cwd=ROOT
            )
            procs[trial.peer] = proc
            trial.child_pid = proc.pid  # ``ip netns exec`` execs python: the same pid
        await asyncio.gather(*(read_line(procs[t.peer], "registered", 60) for t in trials))

        # Observers (here): each invites its child, which accepts.
        async def call(trial: Trial) -> None:
            obs = SignalingClient(servers.url(transport), trial.observer, presence=False)
            observers[trial.observer] = obs
            await obs.connect(timeout=30)
            await obs.send({"type": "invite", "to": trial.peer})
            await obs.expect("accept", timeout=30)
            await read_line(procs[trial.peer], "incall", 30)

        await asyncio.gather(*(call(t) for t in trials))
        await asyncio.sleep(args.settle)

        async def watch(trial: Trial) -> None:
            obs = observers[trial.observer]
            while True:
                try:
                    message = await obs.recv(timeout=3600)
                except TimeoutError:
                    continue
                now = time.monotonic()
                if not trial.t_fail:
                    trial.other.append({"before_failure": True, **message})
                    continue
                dt = now - trial.t_fail
                kind = message.get("type")
                if kind == "peer_status" and message.get("status") == "reconnecting" and trial.reconnecting_s is None:
                    trial.reconnecting_s, trial.grace = dt, message.get("grace")
                elif kind == "peer_status" and message.get("status") == "connected":
                    trial.connected_again_s = dt
                elif kind == "hangup" and trial.hangup_s is None:
                    trial.hangup_s, trial.hangup_reason = dt, message.get("reason")
                else:
                    trial.other.append({"t": dt, **message})

        watchers = [asyncio.create_task(watch(t)) for t in trials]

        # Failures, one at a time, a random 0.4-0.9 s apart.
        for trial in trials:
            await asyncio.sleep(rng.uniform(args.stagger_min, args.stagger_max))
            pid = trial.child_pid
            if trial.case == "blackhole":
                assert ns is not None
                stamps = await asyncio.to_thread(ns.blackhole, trial.k)
                trial.t_fail, trial.blackhole_stamps = stamps[0], [s - stamps[0] for s in stamps]
            else:
                sig = {"clean": signal.SIGUSR1, "kill": signal.SIGKILL, "stop": signal.SIGSTOP}[trial.case]
                trial.t_fail = time.monotonic()
                os.kill(pid, sig)
        last = time.monotonic()

        # Wait for every hangup (drops: after the grace), or give up.
        deadline = last + args.grace_wait
        while time.monotonic() < deadline and any(t.hangup_s is None for t in trials):
            await asyncio.sleep(0.1)
        for t in trials:
            if t.hangup_s is None:
                t.error = "no hangup within the wait"
        return trials
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for proc in procs.values():  # by pid; SIGKILL ends stopped ones too
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        for proc in procs.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)
        await asyncio.gather(*(o.close() for o in observers.values()), return_exceptions=True)
        if ns is not None:
            for k in range(args.repeats):
                await asyncio.to_thread(ns.restore, k)
        log.close()


def code_state() -> dict[str, Any]:
    """The commit, and which of nbcall's files differ from it (read-only git), with a hash of that diff."""
    import hashlib

    from . import wsbench as wb

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    diff = git("diff", "HEAD", "--", "nbcall")
    return wb.code_version() | {
        "changed": git("status", "--porcelain", "--", "nbcall").split("\n")[:-1],
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None,
    }


# -- summary ------------------------------------------------------------------------------


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} / {max(values):.3f}"


def summarise(trials: list[dict[str, Any]], grace: float | None) -> list[str]:
    lines = [
        "| transport | case | n | **told** median / max s | `peer_status` reconnecting median / max s "
        "| final `hangup` median / max s | reason | told < 2 s |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    order = {t: i for i, t in enumerate(TRANSPORTS)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in trials:
        groups.setdefault((t["transport"], t["case"]), []).append(t)
    for (transport, case), ts in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], CASES.index(kv[0][1]))):
        told = [t["told_s"] for t in ts if t["told_s"] is not None]
        rec = [t["reconnecting_s"] for t in ts if t["reconnecting_s"] is not None]
        hang = [t["hangup_s"] for t in ts if t["hangup_s"] is not None]
        reasons = sorted({str(t["hangup_reason"]) for t in ts if t["hangup_reason"]})
        ok = len(told) == len(ts) and max(told) < GOAL_S
        lines.append(
            f"| {transport} | {case} | {len(ts)} | **{fmt(told)}** | {fmt(rec)}"
            f"{'' if len(rec) in (0, len(ts)) else f' ({len(rec)} of {len(ts)})'} | {fmt(hang)} "
            f"| {', '.join(reasons) or '-'} | {'yes' if ok else '**no**'} |"
        )
    if grace is not None:
        lines.append(f"\nReconnect grace (from `peer_status.grace`): {grace:g} s.")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("URL", "NAME"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=5, help="children per case and transport")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--no-netns", action="store_true", help="no namespaces: loopback only, no blackhole case")
    ap.add_argument("--stagger-min", type=float, default=0.4)
    ap.add_argument("--stagger-max", type=float, default=0.9)
    ap.add_argument("--settle", type=float, default=1.5, help="seconds between the calls' set-up and the first failure")
    ap.add_argument("--grace-wait", type=float, default=25.0, help="seconds after the last failure to wait for hangups")
    ap.add_argument("--seed", type=int, default=None, help="random seed of the stagger")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--summarise", type=Path, nargs="+", help="print the table of saved runs (pooled)")
    args = ap.parse_args()

    if args.child:
        asyncio.run(child_main(*args.child))
        return 0
    if args.summarise:
        saved = [json.loads(path.read_text()) for path in args.summarise]
        print("\n".join(summarise([t for run in saved for t in run["trials"]], saved[0].get("grace"))))
        return 0

    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    assert set(args.cases) <= set(CASES) and set(args.transports) <= set(TRANSPORTS), "unknown case or transport"
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally blocks run

    ns: Namespaces | None = None
    servers: Servers | None = None
    logdir = Path(tempfile.mkdtemp(prefix="nbcall-liveness-"))
    all_trials: list[Trial] = []
    started = time.time()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    try:
        if not args.no_netns and "blackhole" in args.cases:
            ns = Namespaces(args.repeats)
            ns.create()
            ns.enter_server()  # from here on, this process and its children talk inside it
        servers = Servers("0.0.0.0" if ns is not None else "127.0.0.1", logdir)
        servers.start()
        print(f"servers: standalone pid {servers.standalone.pid} port {servers.sport}, "
              f"jupyter pid {servers.jupyter.pid} port {servers.jport}; logs in {logdir}", file=sys.stderr)  # fmt: skip

        async def everything() -> None:
            for transport in args.transports:
                t0 = time.monotonic()
                trials = await run_transport(transport, servers, ns, args, rng)
                all_trials.extend(trials)
                print(f"{transport}: {len(trials)} trials in {time.monotonic() - t0:.0f} s", file=sys.stderr)

        asyncio.run(everything())
    finally:
        if servers is not None:
            servers.stop()
        if ns is not None:
            ns.delete()

    from nbcall.signaling.session import Limits

    rows = [asdict(t) | {"told_s": t.told_s} for t in all_trials]
    grace = next((t.grace for t in all_trials if t.grace is not None), Limits().reconnect_grace)
    print("\n".join(summarise(rows, grace)))
    failed = [t for t in all_trials if t.error or t.told_s is None]
    if args.json:
        out = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "seed": seed,
            "code": code_state(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": time.time() - started,
            "loadavg_before": load_before,
            "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
            "netns": ns is not None,
            "servers": servers.commands if servers is not None else {},
            "grace": grace,
            "trials": rows,
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
