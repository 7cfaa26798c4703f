"""Groth16 (BN254) verification in Python with py_ecc, the same checks as contracts/Groth16Verifier.vy.

`verify(vk, proof, inputs)` takes the proof in the verifier's calldata order
[A.x, A.y, B.x.im, B.x.re, B.y.im, B.y.re, C.x, C.y] and the public inputs; it raises `MalformedProof`
with the contract's revert reason for malformed input and returns False when the pairing check fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from py_ecc.optimized_bn128 import FQ, FQ2, FQ12, add, b2, curve_order, is_inf, is_on_curve, multiply
from py_ecc.optimized_bn128.optimized_pairing import final_exponentiate, pairing

Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583  # base field
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617  # scalar field
DEFAULT_VK = Path(__file__).resolve().parents[2] / "circuits" / "build" / "verification_key.json"

G1Point = tuple[int, int]
G2Point = tuple[tuple[int, int], tuple[int, int]]  # ((x.re, x.im), (y.re, y.im)), as in snarkjs JSON


class MalformedProof(ValueError):
    """Input the contract rejects with a revert (the message is the contract's revert reason)."""


@dataclass(frozen=True)
class VerifyingKey:
    alpha: G1Point
    beta: G2Point
    gamma: G2Point
    delta: G2Point
    ic: tuple[G1Point, ...]

    @property
    def n_public(self) -> int:
        return len(self.ic) - 1


def _g1(v: Sequence) -> G1Point:
    return int(v[0]), int(v[1])


def _g2(v: Sequence) -> G2Point:
    return (int(v[0][0]), int(v[0][1])), (int(v[1][0]), int(v[1][1]))


def load_vk(path: Path | str = DEFAULT_VK) -> VerifyingKey:
    """Read a snarkjs verification_key.json (Groth16, bn128)."""
    d = json.loads(Path(path).read_text())
    if d.get("protocol") != "groth16" or d.get("curve") != "bn128":
        raise ValueError(f"{path}: not a Groth16 bn128 verification key")
    return VerifyingKey(
        alpha=_g1(d["vk_alpha_1"]),
        beta=_g2(d["vk_beta_2"]),
        gamma=_g2(d["vk_gamma_2"]),
        delta=_g2(d["vk_delta_2"]),
        ic=tuple(_g1(p) for p in d["IC"]),
    )


def _p1(x: int, y: int):
    return (FQ(x), FQ(y), FQ.one()) if (x, y) != (0, 0) else (FQ.one(), FQ.one(), FQ.zero())


def _p2(x_re: int, x_im: int, y_re: int, y_im: int):
    return (FQ2([x_re, x_im]), FQ2([y_re, y_im]), FQ2.one())


def check_format(proof: Sequence[int], inputs: Sequence[int], n_public: int) -> None:
    """The contract's input checks, in the contract's order; raises MalformedProof."""
    if len(proof) != 8 or len(inputs) != n_public:
        raise MalformedProof("Groth16: wrong proof or input length")
    proof = [int(v) for v in proof]
    if any(not 0 <= v < Q for v in proof):
        raise MalformedProof("Groth16: proof coordinate >= q")
    if any(not 0 <= int(v) < R for v in inputs):
        raise MalformedProof("Groth16: public input >= r")
    if proof[0] == 0 and proof[1] == 0:
        raise MalformedProof("Groth16: A is the point at infinity")
    if not any(proof[2:6]):
        raise MalformedProof("Groth16: B is the point at infinity")
    if proof[6] == 0 and proof[7] == 0:
        raise MalformedProof("Groth16: C is the point at infinity")
    if (proof[1] ** 2 - proof[0] ** 3 - 3) % Q:
        raise MalformedProof("Groth16: A is not on the curve")
    if (proof[7] ** 2 - proof[6] ** 3 - 3) % Q:
        raise MalformedProof("Groth16: C is not on the curve")
    b = _p2(proof[3], proof[2], proof[5], proof[4])
    if not is_on_curve(b, b2) or not is_inf(multiply(b, curve_order)):
        raise MalformedProof("Groth16: B is not a valid G2 point")


def verify(vk: VerifyingKey, proof: Sequence[int], inputs: Sequence[int]) -> bool:
    """e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) == 1, as the contract computes it."""
    check_format(proof, inputs, vk.n_public)
    p = [int(v) for v in proof]
    vk_x = _p1(*vk.ic[0])
    for x, ic in zip(inputs, vk.ic[1:], strict=True):
        vk_x = add(vk_x, multiply(_p1(*ic), int(x)))
    a_neg = _p1(p[0], (Q - p[1]) % Q)
    b = _p2(p[3], p[2], p[5], p[4])
    c = _p1(p[6], p[7])

    def g2(pt: G2Point):
        return _p2(pt[0][0], pt[0][1], pt[1][0], pt[1][1])

    acc = FQ12.one()
    for g2p, g1p in ((b, a_neg), (g2(vk.beta), _p1(*vk.alpha)), (g2(vk.gamma), vk_x), (g2(vk.delta), c)):
        acc = acc * pairing(g2p, g1p, final_exponentiate=False)  # e(O, Q) = 1 is handled by pairing()
    return final_exponentiate(acc) == FQ12.one()
