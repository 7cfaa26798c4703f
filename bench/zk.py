"""zk compliance benchmark: circuit size, witness/prove time and memory, verifier gas, py_ecc verify time.

    .venv/bin/python bench/zk.py [--runs 7] [--json | --markdown] [--phases]

Prove times are from our warm node prover (nexotc_client/zk/prover.js: snarkjs, wasm and zkey loaded once),
median of --runs proofs after one warm-up; "cold" is `snarkjs groth16 fullprove` in a fresh node process.
Gas is the receipt's gasUsed of a `Groth16Verifier.verify` transaction on a local anvil (ape-foundry), and
the same minus the intrinsic cost (21,000 + calldata).
--phases prints instead where snarkjs' prove time goes (bench/zk_phases.js: median milliseconds per phase,
split at snarkjs' own debug messages).
"""

from __future__ import annotations

import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from zkkit import scenario  # noqa: E402

from nexotc_client.zk import groth16  # noqa: E402
from nexotc_client.zk.prover import WASM, ZKEY, Prover  # noqa: E402

# Anchors (issue 4): Semaphore v4 validateProof, PrivadoID V3 on-chain verification
SEMAPHORE_GAS = 288_798
SEMAPHORE_CONSTRAINTS = 6_431


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""


def circuit_size() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["node_modules/.bin/circom2", "circuits/compliance.circom", "--r1cs", "--O2", "-o", tmp],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        data = (Path(tmp) / "compliance.r1cs").read_bytes()
    pos = 12
    while True:  # find the header section (type 1)
        kind, size = struct.unpack_from("<IQ", data, pos)
        if kind == 1:
            break
        pos += 12 + size
    h = pos + 12
    n8 = struct.unpack_from("<I", data, h)[0]
    n_wires, n_out, n_pub, n_prv = struct.unpack_from("<IIII", data, h + 4 + n8)
    n_constraints = struct.unpack_from("<I", data, h + 4 + n8 + 24)[0]
    return {"constraints": n_constraints, "wires": n_wires, "public": n_out + n_pub, "private": n_prv}


def prove_stats(runs: int) -> tuple[dict, object]:
    sc = scenario()
    inputs = sc.inputs()
    with Prover(progress=False) as prover:
        t = time.perf_counter()
        first = prover.prove(inputs)
        first_total = time.perf_counter() - t
        witness, prove, total = [], [], []
        for _ in range(runs):
            t = time.perf_counter()
            p = prover.prove(inputs)
            total.append(time.perf_counter() - t)
            witness.append(p.timings_ms["witness"] / 1000)
            prove.append(p.timings_ms["prove"] / 1000)
        rss = prover.peak_rss_bytes() or 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.json").write_text(json.dumps({k: _j(v) for k, v in inputs.items()}))
        t = time.perf_counter()
        subprocess.run(
            [
                "node_modules/.bin/snarkjs",
                "groth16",
                "fullprove",
                f"{tmp}/in.json",
                str(WASM),
                str(ZKEY),
                f"{tmp}/proof.json",
                f"{tmp}/public.json",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        cold = time.perf_counter() - t
    return {
        "witness_s": statistics.median(witness),
        "prove_s": statistics.median(prove),
        "total_s": statistics.median(total),
        "first_s": first_total,
        "cold_cli_s": cold,
        "peak_rss_mb": rss / 2**20,
        "runs": runs,
    }, first


def _j(v):
    return [_j(x) for x in v] if isinstance(v, list | tuple) else str(v)


def verifier_gas(proof) -> dict:
    from ape import accounts, chain, networks, project
    from ape.logging import logger

    logger.set_level("ERROR")
    with networks.parse_network_choice("ethereum:local:foundry"):
        sender = accounts.test_accounts[0]
        verifier = sender.deploy(project.Groth16Verifier)
        p, inputs = proof.calldata()
        assert verifier.verify(p, inputs) is True
        receipt = verifier.verify.transact(p, inputs, sender=sender)
        data = bytes(chain.provider.web3.eth.get_transaction(receipt.txn_hash)["input"])
        zeros = data.count(0)
        intrinsic = 21_000 + 4 * zeros + 16 * (len(data) - zeros)
        return {"tx": receipt.gas_used, "exec": receipt.gas_used - intrinsic}


def pyecc_time(proof, runs: int = 3) -> float:
    vk = groth16.load_vk()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        assert groth16.verify(vk, *proof.calldata())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def collect(runs: int) -> dict:
    size = circuit_size()
    stats, proof = prove_stats(runs)
    gas = verifier_gas(proof)
    return {
        **size,
        **stats,
        "verify_gas_tx": gas["tx"],
        "verify_gas_exec": gas["exec"],
        "pyecc_verify_s": pyecc_time(proof),
    }


def phase_times(runs: int) -> dict[str, float]:
    """Median milliseconds of each snarkjs prover phase (bench/zk_phases.js), and of the witness."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.json"
        path.write_text(json.dumps({k: _j(v) for k, v in scenario().inputs().items()}))
        out = subprocess.run(
            ["node", "bench/zk_phases.js", str(WASM), str(ZKEY), str(path), str(runs)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout)


def phase_rows(times: dict[str, float]) -> list[Row]:
    prove = times["prove"]
    out = [
        Row(name, f"{ms:.0f} ms", f"{ms / prove:.0%} of prove")
        for name, ms in times.items()
        if name not in ("witness", "prove")
    ]
    return [
        Row("witness (not part of prove)", f"{times['witness']:.0f} ms"),
        *out,
        Row("prove (median of the runs)", f"{prove:.0f} ms", "<= 1.1 s"),
    ]


def rows(r: dict) -> list[Row]:
    return [
        Row(
            "constraints (non-linear, --O2)",
            f"{r['constraints']:,}",
            f"<= 8,192 (2^13); Semaphore v4 {SEMAPHORE_CONSTRAINTS:,}",
        ),
        Row(
            "wires / public signals",
            f"{r['wires']:,} / {r['public']}",
            "[nullifier, audit, root, policy, scope, binding]",
        ),
        Row("witness (warm, median)", f"{r['witness_s'] * 1000:.0f} ms", ""),
        Row("prove (warm, median)", f"{r['prove_s'] * 1000:.0f} ms", "<= 1.1 s"),
        Row("witness + prove + IPC (warm, median)", f"{r['total_s'] * 1000:.0f} ms", f"{r['runs']} runs"),
        Row("first proof (node start + load)", f"{r['first_s'] * 1000:.0f} ms", ""),
        Row("snarkjs groth16 fullprove (fresh node)", f"{r['cold_cli_s'] * 1000:.0f} ms", "cold, for comparison"),
        Row("prover peak memory (node RSS)", f"{r['peak_rss_mb']:.0f} MiB", ""),
        Row(
            "Groth16Verifier.verify (tx gas)",
            f"{r['verify_gas_tx']:,}",
            f"submit_proof <= Semaphore v4 {SEMAPHORE_GAS:,}",
        ),
        Row("Groth16Verifier.verify (exec gas)", f"{r['verify_gas_exec']:,}", "tx minus 21,000 + calldata"),
        Row("py_ecc verify (median)", f"{r['pyecc_verify_s'] * 1000:.0f} ms", ""),
    ]


@click.command()
@click.option("--runs", default=7, show_default=True, help="Warm proofs to time (median reported).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (as in the README).")
@click.option("--phases", is_flag=True, help="Split snarkjs' prove time into its phases instead.")
def main(runs: int, as_json: bool, markdown: bool, phases: bool) -> None:
    if phases:
        result: dict = phase_times(runs)
        table_rows = phase_rows(result)
        title = "snarkjs 0.7.6 groth16 prove, by phase (warm, median)"
    else:
        result = collect(runs)
        table_rows = rows(result)
        title = "nexotc zk compliance (circom2 --O2, snarkjs 0.7.6, anvil)"
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        print()
    elif markdown:
        print("| metric | value | target / anchor |")
        print("|---|---:|---|")
        for row in table_rows:
            print(f"| {row.metric} | {row.value} | {row.target} |")
    else:
        table = Table(title=title)
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("target / anchor")
        for row in table_rows:
            table.add_row(escape(row.metric), escape(row.value), escape(row.target))
        Console().print(table)


if __name__ == "__main__":
    main()
