"""Our Poseidon (constants from our Grain LFSR generator) against circomlibjs (GPL, test-time reference only)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from nexotc_client.zk import poseidon_params
from nexotc_client.zk.poseidon import P, poseidon

ROOT = Path(__file__).resolve().parents[2]
CIRCOMLIBJS = """
const {buildPoseidon} = require('circomlibjs');
(async () => {
  const p = await buildPoseidon();
  const ins = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  console.log(JSON.stringify(ins.map(x => p.F.toString(p(x.map(BigInt))))));
  process.exit(0);
})();
"""


def circomlibjs_poseidon(batches: list[list[int]]) -> list[int]:
    res = subprocess.run(
        ["node", "-e", CIRCOMLIBJS],
        input=json.dumps([[str(v) for v in b] for b in batches]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return [int(v) for v in json.loads(res.stdout)]


def test_matches_circomlibjs_on_random_inputs_for_every_width():
    rng = random.Random(2026)
    batches = []
    for n in range(1, 17):  # every width circomlib supports, including the circuit's 1, 2, 5, 8, 11 inputs
        count = 6 if n + 1 in poseidon_params.WIDTHS else 1
        for _ in range(count):
            batches.append([rng.randrange(P) for _ in range(n)])
    batches += [[0], [P - 1, P - 1], [0] * 11]  # edge values
    assert [poseidon(b) for b in batches] == circomlibjs_poseidon(batches)


def test_known_vector():
    # Poseidon([1, 2]) of the circomlib test vectors
    assert poseidon([1, 2]) == 0x115CC0F5E7D690413DF64C6B9662E9CF2A3617F2743245519E19607A4417189A


def test_rejects_out_of_field_and_bad_arity():
    with pytest.raises(ValueError):
        poseidon([P])
    with pytest.raises(ValueError):
        poseidon([])
    with pytest.raises(ValueError):
        poseidon([1] * 17)


def test_generated_tables_are_up_to_date():
    """The committed JSON table and circom constants are exactly what the generator writes now."""
    assert poseidon_params.TABLE.read_text() == poseidon_params.table_json()
    assert poseidon_params.CIRCOM.read_text() == poseidon_params.circom_source()
