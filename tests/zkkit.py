"""Shared zk test helpers: a small issuer tree with holder credentials, a policy, witness inputs, a
randomized set of tampered proofs (used by the client tests and the on-chain verifier tests), and readers for
the iden3 binary files (r1cs, wtns, zkey sections)."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from py_ecc.optimized_bn128 import FQ2, G2, b2, curve_order, is_inf, is_on_curve, multiply, normalize

from nexotc_client.zk.credential import (
    ENTITY_BUSINESS,
    ENTITY_INDIVIDUAL,
    Credential,
    Policy,
    circuit_inputs,
    new_salts,
)
from nexotc_client.zk.groth16 import Q, R
from nexotc_client.zk.merkle import PoseidonTree

NOW = 1_800_000_000
DAY = 86_400
WALLET = "0x" + "b0" * 20
SCOPE = 0xDEA1DEA1DEA1DEA1DEA1DEA1DEA1DEA1DEA1DEA1
CH, US, KP, IR = 756, 840, 408, 364


@dataclass
class Scenario:
    tree: PoseidonTree
    holder: Credential  # an accredited Swiss individual, KYC level 3
    index: int
    business: Credential  # a non-accredited US business, KYC level 1
    business_index: int
    policy: Policy = field(default_factory=lambda: Policy(min_kyc_level=2, require_accredited=True, deny=(KP, IR)))

    def inputs(
        self,
        cred: Credential | None = None,
        index: int | None = None,
        policy: Policy | None = None,
        now: int = NOW,
        valid_until: int = NOW + 600,
        wallet: str = WALLET,
        scope: int = SCOPE,
        salts: dict | None = None,
        root: int | None = None,
    ) -> dict:
        cred = cred or self.holder
        idx = self.index if index is None else index
        inp = circuit_inputs(
            cred, self.tree.path(idx), policy or self.policy, scope, wallet, now, valid_until, salts or new_salts()
        )
        if root is not None:
            inp["root"] = root
        return inp


def scenario(seed: int = 7) -> Scenario:
    rng = random.Random(seed)
    tree = PoseidonTree()
    for _ in range(3):  # other holders
        tree.insert(rng.randrange(1, R))
    holder = Credential.for_holder(
        rng.randrange(1, R),
        entity_type=ENTITY_INDIVIDUAL,
        jurisdiction=CH,
        kyc_level=3,
        accredited=1,
        issued_at=NOW - 30 * DAY,
        expires_at=NOW + 365 * DAY,
    )
    index = tree.insert(holder.leaf())
    business = Credential.for_holder(
        rng.randrange(1, R),
        entity_type=ENTITY_BUSINESS,
        jurisdiction=US,
        kyc_level=1,
        accredited=0,
        issued_at=NOW - DAY,
        expires_at=NOW + 10 * DAY,
    )
    business_index = tree.insert(business.leaf())
    return Scenario(tree, holder, index, business, business_index)


def _fq_sqrt(a: int) -> int | None:
    r = pow(a, (Q + 1) // 4, Q)  # q = 3 mod 4
    return r if r * r % Q == a % Q else None


def twist_point_outside_g2(rng: random.Random) -> list[int]:
    """A point on the twist curve y^2 = x^3 + 3/(9+i) that is not in the order-r subgroup G2, as precompile
    words (x.im, x.re, y.im, y.re)."""
    inv2 = pow(2, -1, Q)
    while True:
        x = FQ2([rng.randrange(Q), rng.randrange(Q)])
        a0, a1 = (int(c) for c in (x**3 + b2).coeffs)
        n = _fq_sqrt((a0 * a0 + a1 * a1) % Q)  # sqrt in Fq[i] via the norm
        if n is None:
            continue
        for cand in ((a0 + n) * inv2 % Q, (a0 - n) * inv2 % Q):
            y0 = _fq_sqrt(cand)
            if y0:
                y1 = a1 * pow(2 * y0, -1, Q) % Q
                point = (x, FQ2([y0, y1]), FQ2.one())
                assert is_on_curve(point, b2) and not is_inf(multiply(point, curve_order))
                return [int(x.coeffs[1]), int(x.coeffs[0]), y1, y0]


def tampered(proof: list[int], inputs: list[int], seed: int = 1) -> list[tuple[str, list[int], list[int]]]:
    """(label, proof, inputs) cases: wrong but well-formed proofs, and malformed ones (each check)."""
    rng = random.Random(seed)
    g2 = normalize(multiply(G2, rng.randrange(1, R)))
    g2_words = [int(g2[0].coeffs[1]), int(g2[0].coeffs[0]), int(g2[1].coeffs[1]), int(g2[1].coeffs[0])]
    cases = []
    for i in range(len(inputs)):
        bad = list(inputs)
        bad[i] = (bad[i] + rng.randrange(1, 1 << 64)) % R
        cases.append((f"public input {i} changed", proof, bad))
    p = list(proof)
    cases += [
        ("A negated", [p[0], Q - p[1], *p[2:]], inputs),
        ("A and C swapped", [p[6], p[7], *p[2:6], p[0], p[1]], inputs),
        ("B replaced by another G2 point", [*p[:2], *g2_words, *p[6:]], inputs),
        ("B re/im swapped", [p[0], p[1], p[3], p[2], p[5], p[4], p[6], p[7]], inputs),
        ("A off the curve", [p[0], (p[1] + 1) % Q, *p[2:]], inputs),
        ("C off the curve", [*p[:7], (p[7] + 1) % Q], inputs),
        ("B off the curve", [*p[:2], (p[2] + 1) % Q, *p[3:]], inputs),
        ("B on the twist but outside G2", [*p[:2], *twist_point_outside_g2(rng), *p[6:]], inputs),
        ("A at infinity", [0, 0, *p[2:]], inputs),
        ("B at infinity", [*p[:2], 0, 0, 0, 0, *p[6:]], inputs),
        ("C at infinity", [*p[:6], 0, 0], inputs),
        ("coordinate >= q", [p[0] + Q if p[0] + Q < 1 << 256 else Q, *p[1:]], inputs),
        ("coordinate = q", [*p[:4], Q, *p[5:]], inputs),
    ]
    i = rng.randrange(len(inputs))
    bad = list(inputs)
    bad[i] = bad[i] + R  # the same value mod r: must still be rejected
    cases.append((f"public input {i} + r", proof, bad))
    return cases


# ---------------------------------------------------------------- iden3 binary files (r1cs, wtns, zkey)

# a linear combination: wire -> coefficient (wire 0 is the constant 1)
LinComb = dict[int, int]


def bin_sections(data: bytes, magic: bytes) -> dict[int, bytes]:
    """The sections of an iden3 binary file (r1cs, wtns, zkey), by section type."""
    assert data[:4] == magic, data[:4]
    (n_sections,) = struct.unpack_from("<I", data, 8)
    pos, out = 12, {}
    for _ in range(n_sections):
        kind, size = struct.unpack_from("<IQ", data, pos)
        out[kind] = data[pos + 12 : pos + 12 + size]
        pos += 12 + size
    return out


def read_r1cs(data: bytes) -> tuple[dict, list[tuple[LinComb, LinComb, LinComb]]]:
    """(header, constraints): each constraint is (A, B, C) with A * B = C over the witness."""
    s = bin_sections(data, b"r1cs")
    h = s[1]
    (n8,) = struct.unpack_from("<I", h, 0)
    n_wires, n_out, n_pub_in, n_prv_in = struct.unpack_from("<IIII", h, 4 + n8)
    (n_constraints,) = struct.unpack_from("<I", h, 4 + n8 + 24)
    header = {
        "n_wires": n_wires,
        "n_outputs": n_out,
        "n_public": n_out + n_pub_in,
        "n_private_inputs": n_prv_in,
        "n_constraints": n_constraints,
    }
    body, pos, constraints = s[2], 0, []
    for _ in range(n_constraints):
        abc = []
        for _matrix in range(3):
            (n,) = struct.unpack_from("<I", body, pos)
            pos += 4
            lc: LinComb = {}
            for _ in range(n):
                (wire,) = struct.unpack_from("<I", body, pos)
                lc[wire] = int.from_bytes(body[pos + 4 : pos + 4 + n8], "little")
                pos += 4 + n8
            abc.append(lc)
        constraints.append((abc[0], abc[1], abc[2]))
    return header, constraints


def read_wtns(data: bytes) -> list[int]:
    """The witness values (index 0 is the constant 1)."""
    s = bin_sections(data, b"wtns")
    (n8,) = struct.unpack_from("<I", s[1], 0)
    return [int.from_bytes(s[2][i : i + n8], "little") for i in range(0, len(s[2]), n8)]


def lc_value(lc: LinComb, w: list[int]) -> int:
    return sum(c * w[i] for i, c in lc.items()) % R
