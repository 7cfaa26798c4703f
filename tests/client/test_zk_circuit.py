"""The compliance circuit with real witnesses and proofs (snarkjs through our warm node prover).

One valid proof is made for the module; the refusals only need the witness computation, which fails before
any proving starts.
"""

from __future__ import annotations

import json

import pytest
from zkkit import CH, DAY, IR, KP, NOW, SCOPE, WALLET, scenario

from nexotc_client.zk import groth16
from nexotc_client.zk.credential import AUDIT_FIELDS, CREDENTIAL_FIELDS, Policy, audit_commitment, binding, new_salts
from nexotc_client.zk.prover import Proof, Prover, WitnessError


@pytest.fixture(scope="module")
def sc():
    return scenario()


@pytest.fixture(scope="module")
def prover():
    with Prover(progress=False) as p:
        yield p


@pytest.fixture(scope="module")
def valid(sc, prover):
    salts = new_salts()
    return salts, prover.prove(sc.inputs(salts=salts))


def test_outputs_equal_the_python_computations(sc, valid):
    salts, proof = valid
    assert proof.public_signals == (
        sc.holder.nullifier(SCOPE),
        audit_commitment(sc.holder, salts),
        sc.tree.root,
        sc.policy.word(),
        SCOPE,
        binding(WALLET, NOW, NOW + 600),
    )
    assert AUDIT_FIELDS == CREDENTIAL_FIELDS


def test_proof_verifies_in_python_and_round_trips_json(valid):
    _, proof = valid
    vk = groth16.load_vk()
    assert groth16.verify(vk, *proof.calldata())
    again = Proof.from_json(json.loads(json.dumps(proof.to_json())))
    assert again.calldata() == proof.calldata()
    bad_proof, bad_inputs = proof.calldata()
    bad_inputs[5] ^= 1  # another wallet
    assert groth16.verify(vk, bad_proof, bad_inputs) is False


def test_business_credential_under_a_businesses_only_policy(sc, prover):
    pol = Policy(entity_mask=2, deny=(KP,))
    inputs = sc.inputs(sc.business, sc.business_index, policy=pol)
    # witness only: the business meets this policy (its proof is exercised in the contract tests)
    proof = prover.prove(inputs)
    assert proof.policy_word == pol.word() and proof.nullifier == sc.business.nullifier(SCOPE)


REFUSALS = {
    "kyc level below the minimum": lambda sc: sc.inputs(policy=Policy(min_kyc_level=4)),
    "accreditation required": lambda sc: sc.inputs(sc.business, sc.business_index),
    "entity type not allowed": lambda sc: sc.inputs(policy=Policy(entity_mask=2)),
    "jurisdiction denied": lambda sc: sc.inputs(policy=Policy(deny=(KP, IR, CH))),
    # the registry requires now < valid_until, so an expired credential needs valid_until > expires_at
    "expired credential (now == expires_at)": lambda sc: sc.inputs(
        now=sc.holder.expires_at, valid_until=sc.holder.expires_at + 1
    ),
    "expired credential (now > expires_at)": lambda sc: sc.inputs(
        now=sc.holder.expires_at + DAY, valid_until=sc.holder.expires_at + DAY + 1
    ),
    "not yet issued": lambda sc: sc.inputs(now=sc.holder.issued_at - 1, valid_until=sc.holder.issued_at),
    "valid_until > expires_at": lambda sc: sc.inputs(valid_until=sc.holder.expires_at + 1),
    "wrong root": lambda sc: sc.inputs(root=sc.tree.root + 1),
    "wrong path": lambda sc: {**sc.inputs(), "path_elements": [1, *sc.tree.path(sc.index).siblings[1:]]},
    "wrong leaf index": lambda sc: {
        **sc.inputs(),
        "path_indices": [1 - sc.tree.path(sc.index).indices[0], *sc.tree.path(sc.index).indices[1:]],
    },
    "policy word wider than 91 bits": lambda sc: {**sc.inputs(), "policy": sc.inputs()["policy"] + (1 << 91)},
    "wallet wider than 160 bits": lambda sc: {**sc.inputs(), "binding": sc.inputs()["binding"] + (1 << 232)},
    "another holder's secret": lambda sc: {**sc.inputs(), "secret": sc.business.secret},
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_circuit_refuses_bad_witnesses(sc, prover, case):
    with pytest.raises(WitnessError):
        prover.prove(REFUSALS[case](sc))
