"""Harness for CLI tests: the `nexotc` console entry point run as a subprocess against a real anvil
(started by `nexotc node start` on a free port), plus the one-line-error check every failure must pass."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
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
        proc = subprocess.run(
            [*nexotc_command(), *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str | Path) -> Result:
        result = self(*args)
        assert result.code == 0, f"nexotc {' '.join(map(str, args))} -> {result.code}: {result.err}"
        return result

    def rpc(self, method: str, params: list[Any]) -> Any:
        from nexotc_client.cli.node import rpc_call

        return rpc_call(f"http://127.0.0.1:{self.port}", method, params)

    def balance_of(self, token: str, holder: str) -> int:
        data = "0x70a08231" + encode(["address"], [holder]).hex()
        return int(self.rpc("eth_call", [{"to": token, "data": data}, "latest"]), 16)

    def allowance(self, token: str, owner: str, spender: str) -> int:
        data = "0xdd62ed3e" + encode(["address", "address"], [owner, spender]).hex()
        return int(self.rpc("eth_call", [{"to": token, "data": data}, "latest"]), 16)


@contextmanager
def node_cli(home: Path, state: dict[str, Any] | None = None, deploy: bool = False) -> Iterator[Cli]:
    """A Cli on its own anvil, started by `nexotc node start` on a free port (its pid in state["pid"]); with
    `deploy`, the factory and mock tokens are deployed first (state["deployment"]). The node is stopped at the
    end, by pid if `nexotc node stop` fails."""
    c = Cli(home=home, port=free_port(), state=state if state is not None else {})
    started = c.ok("node", "start", "--port", str(c.port), "--json").json()
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
