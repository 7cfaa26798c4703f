"""PoseidonTree (sparse, persisted), credentials, policies, binding and the audit commitment openings."""

from __future__ import annotations

import random

import pytest

from nexotc_client.zk.credential import (
    AUDIT_FIELDS,
    Credential,
    Policy,
    audit_commitment,
    binding,
    desk_scope,
    new_salts,
    open_fields,
    unpack_binding,
    verify_opening,
)
from nexotc_client.zk.merkle import MerklePath, PoseidonTree, zero_hashes
from nexotc_client.zk.poseidon import poseidon


def naive_root(leaves: dict[int, int], depth: int) -> int:
    level = [leaves.get(i, 0) for i in range(1 << depth)]
    for _ in range(depth):
        level = [poseidon([level[i], level[i + 1]]) for i in range(0, len(level), 2)]
    return level[0]


def test_sparse_tree_equals_naive_tree_and_paths_verify():
    rng = random.Random(1)
    tree = PoseidonTree(depth=4)
    leaves = {}
    for _ in range(5):
        leaf = rng.randrange(1, 1 << 250)
        leaves[tree.insert(leaf)] = leaf
    tree.update(11, 77)
    leaves[11] = 77
    tree.remove(1)
    leaves.pop(1)
    assert tree.root == naive_root(leaves, 4)
    for i in range(16):
        path = tree.path(i)
        assert path.verify() and path.root == tree.root
    assert tree.next_index == 12 and tree.insert(5) == 12  # removed index 1 is not reused


def test_empty_depth20_root_and_sparse_storage():
    tree = PoseidonTree()
    assert tree.root == zero_hashes()[20]
    tree.insert(123)
    assert tree.path(0).verify()
    assert sum(len(level) for level in tree._nodes) == 21  # one node per level, nothing else stored


def test_persistence_round_trip(tmp_path):
    tree = PoseidonTree.open(tmp_path / "issuer" / "tree.json")
    for v in (5, 6, 7):
        tree.insert(v)
    tree.remove(1)
    tree.save()
    again = PoseidonTree.load(tmp_path / "issuer" / "tree.json")
    assert again.root == tree.root and again.leaves() == {0: 5, 2: 7} and again.next_index == 3
    assert again.path(2) == tree.path(2)
    assert MerklePath.from_json(tree.path(2).to_json()) == tree.path(2)


def test_corrupt_tree_file_rejected(tmp_path):
    tree = PoseidonTree(depth=3)
    tree.insert(9)
    d = tree.to_json()
    assert PoseidonTree.from_json(d, check=True).consistent()
    d["nodes"][0]["0"] = hex(10)  # a tampered leaf: the stored root no longer matches it
    with pytest.raises(ValueError, match="does not match its children"):
        PoseidonTree.from_json(d, check=True)
    d["root"] = "1"
    with pytest.raises(ValueError, match="root mismatch"):
        PoseidonTree.from_json(d)


def cred(**kw) -> Credential:
    fields = dict(entity_type=1, jurisdiction=756, kyc_level=3, accredited=1, issued_at=100, expires_at=10_000)
    fields.update(kw)
    return Credential.for_holder(424242, **fields)


def test_credential_leaf_and_validation():
    c = cred()
    assert c.leaf() == poseidon([poseidon([424242]), 1, 756, 3, 1, 100, 10_000, 1])
    assert Credential.from_json(c.to_json()) == c
    assert "secret" not in c.to_json(include_secret=False)
    for bad in (dict(entity_type=3), dict(kyc_level=256), dict(expires_at=50), dict(jurisdiction=0)):
        with pytest.raises(ValueError):
            cred(**bad)
    with pytest.raises(ValueError, match="secret does not match"):
        Credential(secret_commitment=1, secret=2, **{k: v for k, v in c.fields().items()})


def test_policy_word_and_violations():
    pol = Policy(min_kyc_level=2, require_accredited=True, entity_mask=1, deny=(408, 364))
    assert pol.word() == 2 | 1 << 8 | 1 << 9 | 408 << 11 | 364 << 21
    assert Policy.from_word(pol.word()) == pol and Policy.from_word(Policy().word()) == Policy()
    with pytest.raises(ValueError, match="canonical"):
        Policy.from_word(Policy().word() | 408 << 21)  # a used slot after an unused one
    with pytest.raises(ValueError, match="91 bits"):
        Policy.from_word(1 << 91)
    assert Policy.from_json(pol.to_json()) == pol
    assert pol.violations(cred(), now=500) == []
    assert pol.violations(cred(kyc_level=1, accredited=0, jurisdiction=408, entity_type=2), now=10_000) == [
        "kyc level 1 < required 2",
        "accreditation required",
        "entity type not allowed",
        "jurisdiction 408 denied",
        "credential not valid at that time (issued later or expired)",
    ]
    with pytest.raises(ValueError):
        Policy(deny=tuple(range(1, 10)))


def test_binding_and_scopes():
    b = binding("0x" + "ab" * 20, 1_700_000_000, 1_700_000_600)
    assert unpack_binding(b) == ("0x" + "ab" * 20, 1_700_000_000, 1_700_000_600)
    assert desk_scope(7) == (1 << 160) | 7
    assert b >> 196 == 1_700_000_600 and b < 1 << 232
    for now, until in ((10, 9), (10, 10), (10, 1 << 36)):  # the registry needs now < valid_until < 2^36
        with pytest.raises(ValueError):
            binding("0x" + "ab" * 20, now, until)


def test_audit_opening_reveals_only_chosen_fields():
    c = cred()
    salts = new_salts()
    commitment = audit_commitment(c, salts)
    opening = open_fields(c, salts, ["jurisdiction"])
    assert opening.values == {"jurisdiction": 756}
    assert set(opening.hidden) == set(AUDIT_FIELDS) - {"jurisdiction"}
    assert verify_opening(commitment, opening)
    assert verify_opening(commitment, type(opening).from_json(opening.to_json()))
    # a lie about the opened value, a wrong salt, a missing field: all rejected
    lie = type(opening)({"jurisdiction": (840, salts["jurisdiction"])}, opening.hidden)
    assert not verify_opening(commitment, lie)
    wrong_salt = type(opening)({"jurisdiction": (756, salts["jurisdiction"] + 1)}, opening.hidden)
    assert not verify_opening(commitment, wrong_salt)
    missing = type(opening)(opening.opened, {k: v for k, v in list(opening.hidden.items())[1:]})
    assert not verify_opening(commitment, missing)
    assert verify_opening(commitment, open_fields(c, salts, AUDIT_FIELDS))
    issued = open_fields(c, salts, ["issued_at", "schema_id"])  # every credential field can be opened
    assert issued.values == {"issued_at": c.issued_at, "schema_id": c.schema_id} and verify_opening(commitment, issued)
    with pytest.raises(ValueError, match="not audited"):
        open_fields(c, salts, ["secret"])
