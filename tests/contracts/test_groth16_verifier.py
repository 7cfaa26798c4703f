"""contracts/Groth16Verifier.vy on anvil with real proofs: a valid proof verifies on chain and in py_ecc;
a randomized set of tampered and malformed proofs is rejected identically by both (same False or the same
revert reason)."""

from __future__ import annotations

import ape
import pytest
from zkkit import NOW, scenario, tampered

from nexotc_client.zk.credential import Policy
from nexotc_client.zk.groth16 import MalformedProof, load_vk, verify
from nexotc_client.zk.prover import Prover


@pytest.fixture(scope="module")
def verifier(project, desk):
    return desk.deploy(project.Groth16Verifier)


@pytest.fixture(scope="module")
def proofs():
    """Two real proofs (different holders and policies), made once for the module."""
    sc = scenario()
    with Prover(progress=False) as prover:
        holder = prover.prove(sc.inputs())
        businesses_only = Policy(entity_mask=2)
        business = prover.prove(sc.inputs(sc.business, sc.business_index, policy=businesses_only, valid_until=NOW + 9))
    return [holder.calldata(), business.calldata()]


@pytest.fixture(scope="module")
def vk():
    return load_vk()


def test_valid_proofs_verify_on_chain_and_in_python(verifier, proofs, vk):
    for proof, inputs in proofs:
        assert verifier.verify(proof, inputs) is True
        assert verify(vk, proof, inputs) is True


def test_proof_of_one_statement_fails_for_another(verifier, proofs, vk):
    (p1, i1), (p2, i2) = proofs
    assert verifier.verify(p1, i2) is False
    assert verify(vk, p1, i2) is False
    assert verifier.verify(p2, i1) is False


@pytest.mark.parametrize("which", [0, 1])
def test_tampered_proofs_rejected_identically(verifier, proofs, vk, which):
    proof, inputs = proofs[which]
    outcomes = set()
    for label, bad_proof, bad_inputs in tampered(proof, inputs, seed=which + 1):
        try:
            expected = verify(vk, bad_proof, bad_inputs)
        except MalformedProof as e:
            with ape.reverts(str(e)):
                verifier.verify(bad_proof, bad_inputs)
            outcomes.add(str(e))
            continue
        assert expected is False, label
        assert verifier.verify(bad_proof, bad_inputs) is False, label
        outcomes.add(False)
    # every kind of rejection was exercised
    assert outcomes >= {
        False,
        "Groth16: proof coordinate >= q",
        "Groth16: public input >= r",
        "Groth16: A is the point at infinity",
        "Groth16: B is the point at infinity",
        "Groth16: C is the point at infinity",
        "Groth16: A is not on the curve",
        "Groth16: C is not on the curve",
        "Groth16: B is not a valid G2 point",
    }


def test_verify_gas(verifier, proofs, desk):
    """The verifier as a transaction (measured in bench/zk.py; printed here for the record, bounded loosely)."""
    proof, inputs = proofs[0]
    receipt = verifier.verify.transact(proof, inputs, sender=desk)
    assert receipt.gas_used < 260_000
