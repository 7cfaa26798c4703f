"""Harness for CLI tests: the `nexotc` console entry point run as a subprocess against a real anvil
(started by `nexotc node start` on a free port), plus the one-line-error check every failure must pass."""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ForkServer:
    """The client side of `forkcli.py`: each command runs in a process forked from one that has already
    imported ape and the CLI (see that module for why that is still a fresh `nexotc` process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="nexotc-forkcli-"))
        self._log = open(self._dir / "server.log", "w")  # noqa: SIM115  (lives as long as the server)
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("forkcli.py"))],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._calls = 0
        self._buffer = b""

    def _answer(self, deadline: float | None) -> dict[str, Any]:
        """The server's next answer line. Read with os.read into our own buffer: a buffered readline could
        swallow two answers at once and leave select() waiting for one already read."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, 65536)
            if not chunk:
                log = (self._dir / "server.log").read_text()[-2000:]
                raise RuntimeError(f"the CLI fork server died: {log}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def run(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Result:
        with self._lock:
            self._calls += 1
            out, err = self._dir / f"{self._calls}.out", self._dir / f"{self._calls}.err"
            request = {"argv": argv, "env": env, "cwd": str(cwd), "out": str(out), "err": str(err)}
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            pid = int(self._answer(None)["pid"])
            try:
                code = int(self._answer(time.monotonic() + timeout)["code"])
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._answer(None)
                raise subprocess.TimeoutExpired(["nexotc", *argv], timeout) from None
            result = Result(code, out.read_text(), err.read_text())
            out.unlink()
            err.unlink()
            return result

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)


_SERVER: ForkServer | None = None


def _fork_server() -> ForkServer:
    global _SERVER
    if _SERVER is None or _SERVER._proc.poll() is not None:
        _SERVER = ForkServer()
        atexit.register(_SERVER.close)
    return _SERVER


def run_nexotc(args: Sequence[str | Path], env: dict[str, str], cwd: Path = ROOT, timeout: float = 120) -> Result:
    """`nexotc ARGS` as its own process, to completion: forked from the CLI fork server, or the console
    script itself with NEXOTC_TEST_SUBPROCESS=1 (a process that must be signalled mid-run is started with
    `nexotc_command()` instead)."""
    argv = [*map(str, args)]
    if os.environ.get("NEXOTC_TEST_SUBPROCESS") != "1":
        return _fork_server().run(argv, env, cwd, timeout)
    proc = subprocess.run([*nexotc_command(), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def nexotc_command() -> list[str]:
    script = Path(sys.executable).parent / "nexotc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nexotc_client.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    home: Path
    port: int
    state: dict[str, Any]

    def __call__(self, *args: str | Path, timeout: float = 120) -> Result:
        env = {**os.environ, "NEXOTC_HOME": str(self.home)}
        env.pop("NEXOTC_DEBUG", None)
        env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
        return run_nexotc(args, env, timeout=timeout)

    def ok(self, *args: str | Path) -> Result:
        result = self(*args)
        assert result.code == 0, f"nexotc {' '.join(map(str, args))} -> {result.code}: {result.err}"
        return result

    def rpc(self, method: str, params: list[Any]) -> Any:
        from nexotc_client.cli.node import rpc_call

        return rpc_call(f"http://127.0.0.1:{self.port}", method, params)

    def send(self, tx: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Send a transaction from an unlocked anvil account and wait for its receipt, so that the reads that
        follow see it (the hash can come back before the block that holds it is served)."""
        tx_hash = self.rpc("eth_sendTransaction", [tx])
        deadline = time.monotonic() + timeout
        while (receipt := self.rpc("eth_getTransactionReceipt", [tx_hash])) is None:
            assert time.monotonic() < deadline, f"no receipt for {tx_hash} after {timeout} s"
            time.sleep(0.05)
        assert int(receipt["status"], 16) == 1, f"transaction {tx_hash} reverted"
        return receipt

    def balance_of(self, token: str, holder: str) -> int:
        data = "0x70a08231" + encode(["address"], [holder]).hex()
        return int(self.rpc("eth_call", [{"to": token, "data": data}, "latest"]), 16)

    def allowance(self, token: str, owner: str, spender: str) -> int:
        data = "0xdd62ed3e" + encode(["address", "address"], [owner, spender]).hex()
        return int(self.rpc("eth_call", [{"to": token, "data": data}, "latest"]), 16)


@contextmanager
def kyc_node_cli(d: Path, admin: str = "test:0", issuer: str = "test:9") -> Iterator[dict[str, Any]]:
    """A node with the factory, mock tokens and a KYC registry (policy #1, any KYC level) deployed by `admin`;
    `issuer` holds the buyer's credential (published): files in `d` (buyer.secret, buyer.cred, issuer/).
    Yields {"cli", "dir", "deployment"}."""
    with node_cli(d / "home") as c:
        deployed = c.ok("deploy", "--mock-tokens", "--kyc", "--account", admin, "--json").json()
        c.ok("issuer", "grant", issuer, "--account", admin)
        c.ok("issuer", "init", "--issuer-dir", d / "issuer", "--issuer", issuer)
        commitment = c.ok("kyc", "secret", "--out", d / "buyer.secret", "--json").json()["commitment"]
        c.ok("kyc", "issue", "--issuer-dir", d / "issuer", "--commitment", commitment, "--jurisdiction", "756",
             "--kyc-level", "2", "--holder", "buyer", "--out", d / "buyer.cred")  # fmt: skip
        c.ok("issuer", "publish-root", "--issuer-dir", d / "issuer", "--account", issuer)
        c.ok("issuer", "path", "0", "--issuer-dir", d / "issuer", "--out", d / "buyer.cred", "--force")
        c.ok("kyc", "policy", "register", "--label", "any", "--account", admin)
        yield {"cli": c, "dir": d, "deployment": deployed}


@contextmanager
def node_cli(home: Path, state: dict[str, Any] | None = None, deploy: bool = False, *node_args: str) -> Iterator[Cli]:
    """A Cli on its own anvil, started by `nexotc node start` on a free port (its pid in state["pid"]; `node_args`
    go to `node start`); with `deploy`, the factory and mock tokens are deployed first (state["deployment"]). The
    node is stopped at the end, by pid if `nexotc node stop` fails."""
    c = Cli(home=home, port=free_port(), state=state if state is not None else {})
    started = c.ok("node", "start", "--port", str(c.port), *node_args, "--json").json()
    c.state["pid"] = started["pid"]
    try:
        if deploy:
            c.state["deployment"] = c.ok("deploy", "--mock-tokens", "--account", "test:0", "--json").json()
        yield c
    finally:
        if c("node", "stop").code != 0:
            try:
                os.kill(started["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
