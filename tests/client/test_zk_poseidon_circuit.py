"""Our circom Poseidon template (circuits/lib/poseidon.circom) on its own, for every width the circuit uses.

The template keeps the linear layer out of the A and B matrices (see its header), which makes the S-box
outputs implicit: these tests check on the compiled constraint system that it still computes exactly our
Python Poseidon, that no wire is left free (changing any one wire of a valid witness breaks a constraint),
and that A and B hold a single wire per row except where the layout says they cannot.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from zkkit import lc_value, read_r1cs, read_wtns

from nexotc_client.zk import poseidon_params
from nexotc_client.zk.poseidon import P, poseidon

ROOT = Path(__file__).resolve().parents[2]
INPUTS = [t - 1 for t in poseidon_params.WIDTHS]  # 1, 2, 7, 8 inputs


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[int, Path]:
    """circom2 --O2 of `component main = Poseidon(n)` for each width, as the ceremony compiles the circuit."""
    out = tmp_path_factory.mktemp("poseidon")
    # circom2 (WebAssembly) reads sources relative to the project root
    src_dir = ROOT / "circuits" / "build" / f"test-poseidon-{out.name}"
    src_dir.mkdir()
    built = {}
    try:
        for n in INPUTS:
            src = src_dir / f"poseidon{n}.circom"
            src.write_text(
                f'pragma circom 2.1.0;\ninclude "../../lib/poseidon.circom";\ncomponent main = Poseidon({n});\n'
            )
            subprocess.run(
                ["node_modules/.bin/circom2", str(src.relative_to(ROOT)), "--r1cs", "--wasm", "--O2", "-o", str(out)],
                cwd=ROOT,
                check=True,
                capture_output=True,
                timeout=300,
            )
            built[n] = out
    finally:
        for f in src_dir.iterdir():
            f.unlink()
        src_dir.rmdir()
    return built


def witness(out: Path, n: int, inputs: list[int]) -> list[int]:
    name = f"poseidon{n}"
    (out / "in.json").write_text(json.dumps({"inputs": [str(v) for v in inputs]}))
    subprocess.run(
        ["node", f"{name}_js/generate_witness.js", f"{name}_js/{name}.wasm", "in.json", "w.wtns"],
        cwd=out,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return read_wtns((out / "w.wtns").read_bytes())


def satisfied(constraint, w: list[int]) -> bool:
    a, b, c = constraint
    return lc_value(a, w) * lc_value(b, w) % P == lc_value(c, w)


@pytest.mark.parametrize("n", INPUTS)
def test_template_computes_our_poseidon(compiled, n):
    rng = random.Random(n)
    header, constraints = read_r1cs((compiled[n] / f"poseidon{n}.r1cs").read_bytes())
    t = n + 1
    # three constraints an S-box; the first S-box has a constant input
    assert header["n_constraints"] == 3 * (8 * t + poseidon_params.R_P_BY_T[t] - 1)
    for inputs in ([rng.randrange(P) for _ in range(n)], [0] * n, [P - 1] * n):
        w = witness(compiled[n], n, inputs)
        assert w[1] == poseidon(inputs)  # wire 1: the output
        assert all(satisfied(c, w) for c in constraints)


@pytest.mark.parametrize("n", INPUTS)
def test_no_wire_is_free(compiled, n):
    """Every wire but the constant is pinned: +1 on any single wire of a valid witness breaks a constraint."""
    _, constraints = read_r1cs((compiled[n] / f"poseidon{n}.r1cs").read_bytes())
    w = witness(compiled[n], n, [random.Random(7 * n).randrange(P) for _ in range(n)])
    uses: dict[int, list[int]] = {}
    for k, abc in enumerate(constraints):
        for wire in {*abc[0], *abc[1], *abc[2]}:
            uses.setdefault(wire, []).append(k)
    for wire in range(1, len(w)):
        bumped = list(w)
        bumped[wire] = (bumped[wire] + 1) % P
        assert any(not satisfied(constraints[k], bumped) for k in uses.get(wire, [])), f"wire {wire} is free"


@pytest.mark.parametrize("n", INPUTS)
def test_linear_layer_stays_out_of_a_and_b(compiled, n):
    """A and B rows hold one wire (besides the constant) but for the S-box inputs that stay linear
    combinations: t - 1 in the first full round after the partial rounds, and, from t = 3 on, cell 0 of round
    1 (round 0 has one S-box less, its first cell being constant). Each is in two rows: x^2 = s * s and
    x^4 * s = out."""
    _, constraints = read_r1cs((compiled[n] / f"poseidon{n}.r1cs").read_bytes())
    dense = [k for k, (a, b, _) in enumerate(constraints) if len(a.keys() - {0}) > 1 or len(b.keys() - {0}) > 1]
    assert len(dense) == 2 * n + (2 if n >= 2 else 0)
