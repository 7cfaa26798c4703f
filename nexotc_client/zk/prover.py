"""Groth16 prover for the compliance circuit: snarkjs through node, warm.

A small node script (prover.js, ours) loads snarkjs, compliance.wasm and compliance_final.zkey once and
proves many times, so only the first proof pays node's start-up. `prove(inputs)` uses a shared prover;
`Prover` can be used directly (context manager) to control its lifetime. A rich progress indicator shows
the stages (witness, proof) on stderr.

Errors: `WitnessError` when the inputs do not satisfy the circuit (policy not met, expired credential,
wrong root or path, ...); `ProverError` for anything else.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "circuits" / "build"
WASM = BUILD / "compliance.wasm"
ZKEY = BUILD / "compliance_final.zkey"
PROVER_JS = Path(__file__).with_name("prover.js")
PUBLIC_SIGNALS = ("nullifier", "audit_commitment", "root", "policy", "scope", "binding")


class ProverError(RuntimeError):
    """The prover could not run or failed unexpectedly."""


class WitnessError(ProverError):
    """The inputs do not satisfy the circuit (no proof exists for them)."""


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof with its public signals [nullifier, audit_commitment, root, policy, scope, binding].

    a, c: G1 (x, y); b: G2 ((x.re, x.im), (y.re, y.im)) as in snarkjs JSON.
    """

    a: tuple[int, int]
    b: tuple[tuple[int, int], tuple[int, int]]
    c: tuple[int, int]
    public_signals: tuple[int, ...]
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @classmethod
    def from_snarkjs(cls, proof: Mapping[str, Any], public_signals: list, timings_ms: dict | None = None) -> Proof:
        pa, pb, pc = proof["pi_a"], proof["pi_b"], proof["pi_c"]
        return cls(
            a=(int(pa[0]), int(pa[1])),
            b=((int(pb[0][0]), int(pb[0][1])), (int(pb[1][0]), int(pb[1][1]))),
            c=(int(pc[0]), int(pc[1])),
            public_signals=tuple(int(s) for s in public_signals),
            timings_ms=dict(timings_ms or {}),
        )

    def calldata(self) -> tuple[list[int], list[int]]:
        """(proof[8], inputs[6]) in Groth16Verifier.verify's order (G2 as (im, re))."""
        (bx_re, bx_im), (by_re, by_im) = self.b
        return [self.a[0], self.a[1], bx_im, bx_re, by_im, by_re, self.c[0], self.c[1]], list(self.public_signals)

    def signal(self, name: str) -> int:
        return self.public_signals[PUBLIC_SIGNALS.index(name)]

    @property
    def nullifier(self) -> int:
        return self.signal("nullifier")

    @property
    def audit_commitment(self) -> int:
        return self.signal("audit_commitment")

    @property
    def root(self) -> int:
        return self.signal("root")

    @property
    def policy_word(self) -> int:
        return self.signal("policy")

    @property
    def scope(self) -> int:
        return self.signal("scope")

    @property
    def binding(self) -> int:
        return self.signal("binding")

    def to_json(self) -> dict:
        proof, inputs = self.calldata()
        return {
            "proof": [str(v) for v in proof],
            "public_signals": {n: str(v) for n, v in zip(PUBLIC_SIGNALS, inputs, strict=True)},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Proof:
        """The proof of `to_json`; ValueError naming what is wrong (element count, range, type)."""
        if not isinstance(d, Mapping):
            raise ValueError("proof: expected an object with 'proof' and 'public_signals'")
        raw = d.get("proof")
        if not isinstance(raw, list | tuple) or len(raw) != 8:
            count = f"{len(raw)} elements" if isinstance(raw, list | tuple) else "not a list"
            raise ValueError(f"proof.proof: {count}, expected 8 curve coordinates")
        p = [_element(v, f"proof.proof[{i}]", BASE_FIELD, "the base field q") for i, v in enumerate(raw)]
        sig = d.get("public_signals")
        if isinstance(sig, Mapping):
            missing = [n for n in PUBLIC_SIGNALS if n not in sig]
            if missing:
                raise ValueError(f"proof.public_signals: missing {', '.join(missing)}")
            values = [sig[n] for n in PUBLIC_SIGNALS]
        elif isinstance(sig, list | tuple) and len(sig) == len(PUBLIC_SIGNALS):
            values = list(sig)
        else:
            raise ValueError(f"proof.public_signals: expected the {len(PUBLIC_SIGNALS)} signals {PUBLIC_SIGNALS}")
        signals = tuple(
            _element(v, f"proof.public_signals.{n}", SCALAR_FIELD, "the scalar field r")
            for n, v in zip(PUBLIC_SIGNALS, values, strict=True)
        )
        return cls(a=(p[0], p[1]), b=((p[3], p[2]), (p[5], p[4])), c=(p[6], p[7]), public_signals=signals)


# BN254: curve coordinates are below q, public signals below r (Groth16Verifier checks both)
BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583
SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617


def _element(value: Any, what: str, bound: int, name: str) -> int:
    """A non-negative integer below `bound` from an int or a decimal (or 0x hex) string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip(), 0) if value.strip().lower().startswith("0x") else int(value.strip(), 10)
        except ValueError:
            raise ValueError(f"{what}: not an integer: {value!r}") from None
    if not 0 <= value < bound:
        raise ValueError(f"{what}: {value} is outside {name} (0 <= x < {bound})")
    return value


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ProverError("node is not installed (needed to run snarkjs)")
    return node


class Prover:
    """A warm snarkjs prover in a node subprocess (started on first use)."""

    def __init__(self, wasm: Path = WASM, zkey: Path = ZKEY, progress: bool = True) -> None:
        self.wasm, self.zkey, self.progress = Path(wasm), Path(zkey), progress
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._next_id = 0

    def __enter__(self) -> Prover:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        for f in (self.wasm, self.zkey):
            if not f.exists():
                raise ProverError(f"missing circuit artifact {f} (run scripts/zk_ceremony.py)")
        self._proc = subprocess.Popen(
            [_node(), str(PROVER_JS), str(self.wasm), str(self.zkey)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        first = self._read()
        if not first.get("ready"):
            raise ProverError(f"prover did not start: {first}")

    def _read(self) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.close()
            raise ProverError("the node prover exited unexpectedly")
        return json.loads(line)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def peak_rss_bytes(self) -> int | None:
        """Peak resident memory of the node prover process so far (Linux VmHWM)."""
        if self._proc is None:
            return None
        try:
            for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def prove(self, inputs: Mapping[str, Any]) -> Proof:
        """Prove the circuit for the given witness inputs (see `nexotc_client.zk.credential.circuit_inputs`)."""
        payload = {k: _jsonable(v) for k, v in inputs.items()}
        with self._lock:
            self.start()
            assert self._proc is not None and self._proc.stdin is not None
            self._next_id += 1
            rid = self._next_id
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]zk proof[/bold] {task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
                disable=not self.progress,
            ) as bar:
                task = bar.add_task("starting", total=None)
                self._proc.stdin.write(json.dumps({"id": rid, "input": payload}) + "\n")
                self._proc.stdin.flush()
                while True:
                    msg = self._read()
                    if msg.get("id") != rid:
                        continue
                    if "stage" in msg:
                        label = {"witness": "computing the witness", "prove": "proving (Groth16)"}
                        bar.update(task, description=label.get(msg["stage"], msg["stage"]))
                        continue
                    break
        if "error" in msg:
            err = msg["error"]
            if "Assert Failed" in err or "Error in template" in err or "Not all inputs" in err:
                raise WitnessError(f"the inputs do not satisfy the compliance circuit: {err.splitlines()[0]}")
            raise ProverError(err)
        return Proof.from_snarkjs(
            msg["proof"], msg["publicSignals"], {"witness": msg["witness_ms"], "prove": msg["prove_ms"]}
        )


def _jsonable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(int(v))


_shared: Prover | None = None


def prove(inputs: Mapping[str, Any], progress: bool = True) -> Proof:
    """Prove with a shared warm prover (closed at interpreter exit)."""
    global _shared
    if _shared is None:
        _shared = Prover(progress=progress)
        atexit.register(_shared.close)
    _shared.progress = progress
    return _shared.prove(inputs)
