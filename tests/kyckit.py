"""Helpers for the KYC registry and compliance gate tests: an issuer tree with the actors' credentials,
the policies, and a warm prover making real Groth16 proofs bound to (wallet, scope, now, valid_until)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nexotc_client.chain.kyc import PolicyParams
from nexotc_client.zk.credential import (
    ENTITY_BUSINESS,
    ENTITY_INDIVIDUAL,
    MASK_BUSINESSES,
    Credential,
    Policy,
    circuit_inputs,
    new_salts,
    unpack_binding,
)
from nexotc_client.zk.merkle import PoseidonTree
from nexotc_client.zk.prover import Proof, Prover

DAY = 86_400
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
CH, US, GB, KP, IR = 756, 840, 826, 408, 364
# policy 1: KYC level >= 2, accredited, individuals or businesses, not North Korea or Iran
EU_PRO = Policy(min_kyc_level=2, require_accredited=True, deny=(KP, IR))
# policy 2: businesses only (KYB), any level
KYB_ONLY = Policy(entity_mask=MASK_BUSINESSES)


def params(policy: Policy) -> PolicyParams:
    return PolicyParams(policy.min_kyc_level, policy.require_accredited, policy.entity_mask, tuple(policy.deny))


def register_args(policy: Policy, label: str) -> tuple:
    p = params(policy)
    return (*p.as_args(), label)


@dataclass
class Credentials:
    """One issuer tree: an accredited Swiss individual (level 3), an accredited UK business (level 2),
    a North Korean individual (denied by EU_PRO), and a credential that expires soon after `t0`."""

    t0: int
    tree: PoseidonTree = field(default_factory=PoseidonTree)
    creds: dict[str, Credential] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, rng: random.Random, **fields: int) -> None:
        cred = Credential.for_holder(rng.randrange(1, R), **fields)
        self.creds[name] = cred
        self.index[name] = self.tree.insert(cred.leaf())

    @classmethod
    def build(cls, t0: int, seed: int = 11) -> Credentials:
        rng = random.Random(seed)
        c = cls(t0)
        c.tree.insert(rng.randrange(1, R))  # someone else's credential
        year = dict(issued_at=t0 - 30 * DAY, expires_at=t0 + 365 * DAY)
        c.add("swiss", rng, entity_type=ENTITY_INDIVIDUAL, jurisdiction=CH, kyc_level=3, accredited=1, **year)
        c.add("uk_business", rng, entity_type=ENTITY_BUSINESS, jurisdiction=GB, kyc_level=2, accredited=1, **year)
        c.add("north_korean", rng, entity_type=ENTITY_INDIVIDUAL, jurisdiction=KP, kyc_level=3, accredited=1, **year)
        c.add(
            "short",
            rng,
            entity_type=ENTITY_INDIVIDUAL,
            jurisdiction=CH,
            kyc_level=3,
            accredited=1,
            issued_at=t0 - DAY,
            expires_at=t0 + 2 * DAY,
        )
        return c

    def inputs(
        self,
        name: str,
        wallet: str,
        scope: int,
        now: int,
        valid_until: int,
        policy: Policy = EU_PRO,
        salts: dict | None = None,
    ) -> dict:
        path = self.tree.path(self.index[name])
        return circuit_inputs(self.creds[name], path, policy, scope, wallet, now, valid_until, salts or new_salts())

    def prove(
        self, prover: Prover, name: str, wallet: str, scope: int, now: int, valid_until: int, policy: Policy = EU_PRO
    ) -> Proof:
        return prover.prove(self.inputs(name, wallet, scope, now, valid_until, policy))


def submit_args(proof: Proof, policy_id: int) -> tuple:
    """submit_proof's arguments for `proof` (scope, policy, root, nullifier, audit, now, valid_until, proof)."""
    points, signals = proof.calldata()
    nullifier, audit, root, _policy_word, scope, binding = signals
    _, now, valid_until = unpack_binding(binding)
    return (scope, policy_id, root, nullifier, audit, now, valid_until, points)
