"""Development trusted setup for the zk compliance circuit (circuits/compliance.circom).

Run from the project root:  python scripts/zk_ceremony.py  [--power 13]

Steps (all through the npm packages circom2 and snarkjs, nothing downloaded):
  1. compile circuits/compliance.circom with circom2 --O2 (r1cs, wasm, sym)
  2. phase 1 (powers of tau, bn128, 2^power): new -> one contribution -> random beacon -> prepare phase 2
  3. phase 2 (circuit specific): groth16 setup -> one contribution -> random beacon
  4. export circuits/build/verification_key.json, copy compliance.wasm, record hashes in ceremony.json

The dev entropy strings and the beacon below are published on purpose: this is a DEVELOPMENT ceremony.
snarkjs also mixes 64 bytes of OS randomness into every contribution, so a rerun gives different (equally
valid) keys; the procedure is reproducible, the bytes are not. Production needs a real multi-party ceremony
(see the README section "zk compliance: circuit and trusted setup"). CI never reruns this script: the
artifacts are committed and tests/client/test_zk_artifacts.py checks they match the circuit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path("circuits/build")
WORK = BUILD / "ceremony"  # intermediates, git-ignored
CIRCUIT = Path("circuits/compliance.circom")
# documented development entropy and beacon (NOT secret, NOT for production)
DEV_ENTROPY_PHASE1 = "nexotc development ceremony, phase 1 contribution, not for production"
DEV_ENTROPY_PHASE2 = "nexotc development ceremony, phase 2 contribution, not for production"
BEACON = hashlib.sha256(b"nexotc development ceremony beacon 2026").hexdigest()
BEACON_ITERATIONS_EXP = 10


def bin_path(name: str) -> str:
    local = ROOT / "node_modules" / ".bin" / name
    return str(local) if local.exists() else name


def sha256(path: Path) -> str:
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


def compile_circuit(out_dir: Path) -> None:
    """circom2 from the project root with relative paths (the wasm embeds no absolute path)."""
    (ROOT / out_dir).mkdir(parents=True, exist_ok=True)
    cmd = [bin_path("circom2"), str(CIRCUIT), "--r1cs", "--wasm", "--sym", "--O2", "-o", str(out_dir)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)


def steps(power: int) -> list[tuple[str, list[str]]]:
    w = WORK
    r1cs = BUILD / "compliance.r1cs"
    return [
        ("phase 1: new", ["powersoftau", "new", "bn128", str(power), f"{w}/pot_0000.ptau"]),
        (
            "phase 1: contribution",
            [
                "powersoftau",
                "contribute",
                f"{w}/pot_0000.ptau",
                f"{w}/pot_0001.ptau",
                "--name=nexotc dev phase 1",
                f"-e={DEV_ENTROPY_PHASE1}",
            ],
        ),
        (
            "phase 1: beacon",
            [
                "powersoftau",
                "beacon",
                f"{w}/pot_0001.ptau",
                f"{w}/pot_beacon.ptau",
                BEACON,
                str(BEACON_ITERATIONS_EXP),
                "-n=nexotc dev phase 1 beacon",
            ],
        ),
        (
            "phase 1: prepare phase 2",
            ["powersoftau", "prepare", "phase2", f"{w}/pot_beacon.ptau", f"{w}/pot_final.ptau"],
        ),
        ("phase 2: groth16 setup", ["groth16", "setup", str(r1cs), f"{w}/pot_final.ptau", f"{w}/compliance_0000.zkey"]),
        (
            "phase 2: contribution",
            [
                "zkey",
                "contribute",
                f"{w}/compliance_0000.zkey",
                f"{w}/compliance_0001.zkey",
                "--name=nexotc dev phase 2",
                f"-e={DEV_ENTROPY_PHASE2}",
            ],
        ),
        (
            "phase 2: beacon",
            [
                "zkey",
                "beacon",
                f"{w}/compliance_0001.zkey",
                str(BUILD / "compliance_final.zkey"),
                BEACON,
                str(BEACON_ITERATIONS_EXP),
                "-n=nexotc dev phase 2 beacon",
            ],
        ),
        (
            "export verification key",
            [
                "zkey",
                "export",
                "verificationkey",
                str(BUILD / "compliance_final.zkey"),
                str(BUILD / "verification_key.json"),
            ],
        ),
        (
            "verify zkey against r1cs and ptau",
            ["zkey", "verify", str(r1cs), f"{w}/pot_final.ptau", str(BUILD / "compliance_final.zkey")],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--power", type=int, default=13, help="powers of tau size (2^power >= constraints + public + 1)")
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    (ROOT / WORK).mkdir(parents=True, exist_ok=True)
    todo = steps(args.power)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("compile circuit", total=len(todo) + 1)
        compile_circuit(BUILD)
        shutil.copyfile(ROOT / BUILD / "compliance_js" / "compliance.wasm", ROOT / BUILD / "compliance.wasm")
        bar.advance(task)
        for label, cmd in todo:
            bar.update(task, description=label)
            res = subprocess.run([bin_path("snarkjs"), *cmd], cwd=ROOT, capture_output=True, text=True)
            if res.returncode != 0 or "[ERROR]" in res.stdout:
                console.print(f"[red]{label} failed[/red]\n{res.stdout}\n{res.stderr}")
                return 1
            bar.advance(task)
    record = {
        "circuit": str(CIRCUIT),
        "compiler": "circom2 (npm) --O2",
        "power": args.power,
        "dev_entropy": [DEV_ENTROPY_PHASE1, DEV_ENTROPY_PHASE2],
        "beacon": BEACON,
        "beacon_iterations_exp": BEACON_ITERATIONS_EXP,
        "sha256": {
            "compliance.r1cs": sha256(BUILD / "compliance.r1cs"),
            "compliance.wasm": sha256(BUILD / "compliance.wasm"),
            "compliance_final.zkey": sha256(BUILD / "compliance_final.zkey"),
            "verification_key.json": sha256(BUILD / "verification_key.json"),
            "pot_final.ptau": sha256(WORK / "pot_final.ptau"),
        },
    }
    (ROOT / BUILD / "ceremony.json").write_text(json.dumps(record, indent=2) + "\n")
    console.print(
        f"[green]ceremony done[/green]: {BUILD}/compliance_final.zkey, verification_key.json, compliance.wasm"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
