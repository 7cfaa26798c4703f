"""`nexotc node start|stop|status`: a local anvil node whose chain survives restarts.

The node runs in the background on 127.0.0.1:<port>; its files live in the nexotc home
(default ./.nexotc): node.json (pid, port), anvil.log, and anvil-state.json, which anvil reloads on
start and dumps every `--state-interval` seconds and on exit (`anvil --state`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import DEFAULT_PORT, App, shared_options

NODE_FILE = "node.json"
STATE_FILE = "anvil-state.json"
LOG_FILE = "anvil.log"
TEST_MNEMONIC = "test test test test test test test test test test test junk"
EXIT_NOT_RUNNING = 3


@dataclass(frozen=True)
class NodeInfo:
    pid: int
    port: int
    started_at: int
    state_file: str
    log_file: str
    anvil: str

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def load(cls, home: Path) -> NodeInfo | None:
        path = home / NODE_FILE
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        (home / NODE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    """One JSON-RPC call; raises OSError when nothing answers."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise OSError(str(exc)) from exc
    if "error" in reply:
        raise OSError(str(reply["error"].get("message", reply["error"])))
    return reply["result"]


def find_anvil() -> str:
    """node_modules/.bin/anvil (here or in the nexotc checkout), else anvil on PATH."""
    from nexotc_client.chain.contracts import project_root

    for base in (Path.cwd(), project_root()):
        candidate = base / "node_modules" / ".bin" / "anvil"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise NexotcError("anvil not found: run `npm install` in the nexotc checkout or install foundry")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _is_anvil(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that is an anvil."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv0 = handle.read().split(b"\0", 1)[0]
    except OSError:
        return _alive(pid)  # no /proc (macOS): trust the pid file
    return b"anvil" in Path(argv0.decode(errors="replace")).name.encode()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def running_node(home: Path) -> NodeInfo | None:
    """The node recorded in `home` if its process is still an anvil; removes a stale record."""
    info = NodeInfo.load(home)
    if info is None:
        return None
    if _alive(info.pid) and _is_anvil(info.pid):
        return info
    (home / NODE_FILE).unlink(missing_ok=True)
    return None


def _log_tail(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def start_node(home: Path, port: int, block_time: int | None = None, state_interval: int = 1) -> NodeInfo:
    """Start anvil in the background with its state persisted in `home`."""
    if (info := running_node(home)) is not None:
        raise NexotcError(f"a node is already running (pid {info.pid}, port {info.port}); `nexotc node stop` first")
    if _port_in_use(port):
        raise NexotcError(f"port {port} is already in use on 127.0.0.1 (choose another with --port)")
    anvil = find_anvil()
    home.mkdir(parents=True, exist_ok=True)
    home = home.resolve()
    state, log = home / STATE_FILE, home / LOG_FILE
    cmd = [
        anvil,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--state",
        str(state),
        "--state-interval",
        str(state_interval),
        "--mnemonic",
        TEST_MNEMONIC,
        "--accounts",
        "20",
        "--hardfork",
        "prague",
    ]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    with open(log, "ab") as log_handle:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            tail = _log_tail(log)
            raise NexotcError(f"anvil exited at start (code {process.returncode}): {tail or 'see ' + str(log)}")
        try:
            rpc_call(url, "eth_chainId", timeout=1.0)
            break
        except OSError:
            if time.monotonic() > deadline:
                process.terminate()
                raise NexotcError(f"anvil did not answer on {url} within 20s (see {log})") from None
            time.sleep(0.1)
    _keep_time_monotonic(url)
    info = NodeInfo(
        pid=process.pid,
        port=port,
        started_at=int(time.time()),
        state_file=str(state),
        log_file=str(log),
        anvil=anvil,
    )
    info.save(home)
    return info


def _keep_time_monotonic(url: str) -> None:
    """A restarted node's clock starts from the wall clock, but the state it loaded may hold blocks from a chain
    time moved ahead (`evm_increaseTime`, tests of deadlines): the next block would then be dated before the
    last one. Set the clock to just after the last block in that case, so chain time never goes back."""
    try:
        latest = int(rpc_call(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        if latest >= int(time.time()):
            rpc_call(url, "evm_setTime", [latest + 1])
    except (OSError, KeyError, TypeError, ValueError):
        pass  # a node that cannot say keeps its own clock


def stop_node(home: Path, timeout: float = 15.0) -> NodeInfo:
    """Stop the recorded node (SIGTERM: anvil dumps its state and exits; SIGKILL after `timeout`)."""
    info = running_node(home)
    if info is None:
        raise NexotcError(f"no node is running (nothing recorded in {home / NODE_FILE})")
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(info.pid):
        if time.monotonic() > deadline:
            os.kill(info.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    (home / NODE_FILE).unlink(missing_ok=True)
    return info


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None = None
    port: int | None = None
    rpc_url: str | None = None
    block_number: int | None = None
    chain_id: int | None = None
    state_file: str | None = None
    log_file: str | None = None


def node_status(home: Path) -> NodeStatus:
    info = running_node(home)
    if info is None:
        return NodeStatus(running=False)
    try:
        block = int(rpc_call(info.rpc_url, "eth_blockNumber", timeout=2.0), 16)
        chain_id = int(rpc_call(info.rpc_url, "eth_chainId", timeout=2.0), 16)
    except OSError:
        block = chain_id = None
    return NodeStatus(True, info.pid, info.port, info.rpc_url, block, chain_id, info.state_file, info.log_file)


# ----------------------------------------------------------------- commands
@click.group()
def node() -> None:
    """Run a local anvil node (state kept in the nexotc home, survives stop/start)."""


@node.command("start")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--block-time", type=click.IntRange(1), default=None, help="Mine every N seconds (default: on tx).")
@click.option("--fresh", is_flag=True, help="Discard the saved chain state first.")
@shared_options
@click.pass_obj
def start(app: App, port: int, block_time: int | None, fresh: bool) -> None:
    """Start anvil in the background on 127.0.0.1:PORT."""
    if fresh:
        if running_node(app.home) is not None:
            raise NexotcError("--fresh: stop the running node first")
        (app.home / STATE_FILE).unlink(missing_ok=True)
    info = start_node(app.home, port, block_time)
    app.emit(
        {"running": True, **asdict(info), "rpc_url": info.rpc_url},
        lambda c: c.print(f"node started: pid {info.pid}, {info.rpc_url}, state {info.state_file}"),
    )


@node.command("stop")
@shared_options
@click.pass_obj
def stop(app: App) -> None:
    """Stop the node (its state is saved)."""
    info = stop_node(app.home)
    app.emit(
        {"running": False, "pid": info.pid, "port": info.port, "state_file": info.state_file},
        lambda c: c.print(f"node stopped (pid {info.pid}); state kept in {info.state_file}"),
    )


@node.command("status")
@shared_options
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show pid, port, block number and chain id. Exit code 3 when no node runs."""
    app: App = ctx.obj
    st = node_status(app.home)

    def render(console: Any) -> None:
        if not st.running:
            console.print("node: not running")
            return
        from rich.table import Table

        table = Table(show_header=False, box=None)
        for key, value in (
            ("status", "running"),
            ("pid", st.pid),
            ("rpc", st.rpc_url),
            ("block", st.block_number),
            ("chain id", st.chain_id),
            ("state", st.state_file),
            ("log", st.log_file),
        ):
            table.add_row(key, str(value))
        console.print(table)

    app.emit(asdict(st), render)
    if not st.running:
        ctx.exit(EXIT_NOT_RUNNING)


__all__ = [
    "NodeInfo",
    "NodeStatus",
    "find_anvil",
    "node",
    "node_status",
    "rpc_call",
    "start_node",
    "stop_node",
]
