"""Poseidon parameters for BN254, generated from scratch with the Grain LFSR of the Poseidon paper.

This is our own implementation of the parameter generation described in the Poseidon paper
(Grassi et al., https://eprint.iacr.org/2019/458, appendix F) and its reference script
``generate_parameters_grain.sage``: field = prime (1), S-box x^alpha (0), n = 254 bits, t cells,
R_F = 8 full rounds, R_P partial rounds per width (the values circomlib uses: the paper's security
bound rounded up), round constants by rejection sampling, MDS = Cauchy matrix 1 / (x_i + y_j).

`generate(t)` is deterministic; `python -m nexotc_client.zk.poseidon_params` rewrites the committed
table ``poseidon_constants.json`` (the widths `WIDTHS`) that `poseidon.py` loads, so importing stays fast.
It also writes ``circuits/lib/poseidon_constants.circom`` (the same constants as circom functions).
A test regenerates both files and compares them with the committed ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# BN254 scalar field
P = 21888242871839275222246405745257275088548364400416034343698204186575808495617
N_BITS = 254
ALPHA = 5
R_F = 8
# partial rounds for t = 2..17 (the paper's bound for 128-bit security, rounded up as in circomlib)
R_P_BY_T = {
    t: r for t, r in zip(range(2, 18), [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68], strict=True)
}
# the widths the compliance circuit uses (t = number of inputs + 1)
WIDTHS = (2, 3, 8, 9)
TABLE = Path(__file__).with_name("poseidon_constants.json")
CIRCOM = Path(__file__).resolve().parents[2] / "circuits" / "lib" / "poseidon_constants.circom"


@dataclass(frozen=True)
class Params:
    t: int
    r_f: int
    r_p: int
    c: tuple[int, ...]  # (r_f + r_p) * t round constants, round-major
    m: tuple[tuple[int, ...], ...]  # t x t MDS matrix, new_state[i] = sum_j m[i][j] * state[j]


class _Grain:
    """The 80-bit Grain LFSR in self-shrinking mode, seeded with the parameter description."""

    def __init__(self, t: int, r_f: int, r_p: int) -> None:
        bits = "01" + "0000" + f"{N_BITS:012b}" + f"{t:012b}" + f"{r_f:010b}" + f"{r_p:010b}" + "1" * 30
        assert len(bits) == 80
        # state bit i of the reference list is bit i of this int (bit 0 = oldest)
        self.s = int(bits[::-1], 2)
        for _ in range(160):
            self._step()

    def _step(self) -> int:
        s = self.s
        b = ((s >> 62) ^ (s >> 51) ^ (s >> 38) ^ (s >> 23) ^ (s >> 13) ^ s) & 1
        self.s = (s >> 1) | (b << 79)
        return b

    def bit(self) -> int:
        while True:
            first = self._step()
            second = self._step()
            if first:
                return second

    def integer(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v


def generate(t: int) -> Params:
    """Round constants and MDS matrix for width t, as the reference script generates them."""
    r_p = R_P_BY_T[t]
    g = _Grain(t, R_F, r_p)
    c = []
    for _ in range((R_F + r_p) * t):
        v = g.integer(N_BITS)
        while v >= P:
            v = g.integer(N_BITS)
        c.append(v)
    while True:
        xy = [g.integer(N_BITS) % P for _ in range(2 * t)]
        if len(set(xy)) != 2 * t:
            continue
        xs, ys = xy[:t], xy[t:]
        if any((x + y) % P == 0 for x in xs for y in ys):
            continue
        m = tuple(tuple(pow(x + y, -1, P) for y in ys) for x in xs)
        return Params(t, R_F, r_p, tuple(c), m)


def table(widths: tuple[int, ...] = WIDTHS) -> dict:
    out = {}
    for t in widths:
        p = generate(t)
        out[str(t)] = {
            "r_f": p.r_f,
            "r_p": p.r_p,
            "c": [hex(v) for v in p.c],
            "m": [[hex(v) for v in row] for row in p.m],
        }
    return out


def table_json(widths: tuple[int, ...] = WIDTHS) -> str:
    return json.dumps(table(widths), indent=0, separators=(",", ":")) + "\n"


def inverse(m: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """The inverse of a square matrix mod P (Gauss-Jordan; every square block of a Cauchy MDS matrix is
    invertible, so a zero pivot means the input is not one)."""
    n = len(m)
    a = [list(row) + [int(i == j) for j in range(n)] for i, row in enumerate(m)]
    for c in range(n):
        if a[c][c] == 0:
            raise ValueError("singular block")
        inv = pow(a[c][c], -1, P)
        a[c] = [v * inv % P for v in a[c]]
        for r in range(n):
            if r != c and a[r][c]:
                f = a[r][c]
                a[r] = [(v - f * w) % P for v, w in zip(a[r], a[c], strict=True)]
    return tuple(tuple(row[n:]) for row in a)


def _circom_matrix(m: tuple[tuple[int, ...], ...], t: int) -> str:
    """A t x t circom array literal of `m`, zero-padded (circom arrays have the width's size)."""
    rows = [list(r) + [0] * (t - len(r)) for r in m] + [[0] * t] * (t - len(m))
    return "[" + ",".join("[" + ",".join(hex(v) for v in row) + "]" for row in rows) + "]"


def circom_source(widths: tuple[int, ...] = WIDTHS) -> str:
    """circom functions for the given widths: POSEIDON_RP(t), POSEIDON_C(t), POSEIDON_M(t), and the inverses
    circuits/lib/poseidon.circom needs (computed here so the witness generator never inverts):
    POSEIDON_M_INV(t) of M, POSEIDON_M_TAIL_INV(t) of M without row and column 0 (zero-padded to t x t) and
    POSEIDON_M00_INV(t) = 1 / M[0][0]."""
    params = [generate(t) for t in widths]
    out = [
        "// SPDX-License-Identifier: Apache-2.0",
        "// GENERATED by `python -m nexotc_client.zk.poseidon_params` (Grain LFSR, BN254). Do not edit.",
        "pragma circom 2.1.0;",
        "",
        "function POSEIDON_RP(t) {",
    ]
    for p in params:
        out.append(f"    if (t == {p.t}) {{ return {p.r_p}; }}")
    out += ["    assert(0);", "    return 0;", "}", "", "function POSEIDON_C(t) {"]
    for p in params:
        out.append(f"    if (t == {p.t}) {{")
        out.append("        return [" + ",".join(hex(v) for v in p.c) + "];")
        out.append("    }")
    out += ["    assert(0);", "    return [0];", "}", "", "function POSEIDON_M(t) {"]
    for p in params:
        out.append(f"    if (t == {p.t}) {{")
        out.append("        return [" + ",".join("[" + ",".join(hex(v) for v in row) + "]" for row in p.m) + "];")
        out.append("    }")
    for name, block in (
        ("POSEIDON_M_INV", lambda m: inverse(m)),
        ("POSEIDON_M_TAIL_INV", lambda m: inverse(tuple(row[1:] for row in m[1:]))),
    ):
        out += ["    assert(0);", "    return [[0]];", "}", "", f"function {name}(t) {{"]
        for p in params:
            out.append(f"    if (t == {p.t}) {{")
            out.append(f"        return {_circom_matrix(block(p.m), p.t)};")
            out.append("    }")
    out += ["    assert(0);", "    return [[0]];", "}", "", "function POSEIDON_M00_INV(t) {"]
    for p in params:
        out.append(f"    if (t == {p.t}) {{ return {hex(pow(p.m[0][0], -1, P))}; }}")
    out += ["    assert(0);", "    return 0;", "}", ""]
    return "\n".join(out)


def main() -> None:
    TABLE.write_text(table_json())
    CIRCOM.parent.mkdir(parents=True, exist_ok=True)
    CIRCOM.write_text(circom_source())
    print(f"wrote {TABLE} and {CIRCOM}")


if __name__ == "__main__":
    main()
