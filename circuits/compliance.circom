// SPDX-License-Identifier: Apache-2.0
// nexotc zk compliance circuit (see nexotc_client/zk and the README section "zk compliance").
//
// Proves, without revealing the credential:
//   * the credential leaf Poseidon([Poseidon([secret]), entity_type, jurisdiction, kyc_level, accredited,
//     issued_at, expires_at, schema_id]) is in the issuer's binary Poseidon tree of the given depth under `root`;
//   * the fields meet the policy committed in `policy_hash` = Poseidon([min_kyc_level, require_accredited,
//     entity_mask, deny[0..7]]): kyc_level >= min_kyc_level, accredited if required, entity type allowed by the
//     mask (bit 0 individuals = 1, bit 1 businesses = 2), jurisdiction differs from every deny slot;
//   * issued_at <= now < expires_at and now <= valid_until <= expires_at, where `binding` =
//     wallet | now << 160 | valid_until << 200 is fully decomposed (the wallet cannot be swapped);
// and outputs nullifier = Poseidon([secret, scope]) and
//   audit_commitment = Poseidon([Poseidon([f_1, salt_1]), ..., Poseidon([f_5, salt_5])]) over the audited fields
//   entity_type, jurisdiction, kyc_level, accredited, expires_at (AUDIT_FIELDS in nexotc_client/zk/credential.py).
//
// Public signals (snarkjs order): [nullifier, audit_commitment, root, policy_hash, scope, binding].
// Assumptions: the issuer only signs fields in range (kyc_level < 2^8, jurisdiction != 0, accredited 0/1,
// timestamps < 2^40); the circuit re-checks what a prover could otherwise abuse.
pragma circom 2.1.0;

include "lib/poseidon.circom";
include "lib/bits.circom";
include "lib/merkle.circom";

template Compliance(depth, nAudit) {
    // ---- private: credential
    signal input secret;
    signal input entity_type;
    signal input jurisdiction;
    signal input kyc_level;
    signal input accredited;
    signal input issued_at;
    signal input expires_at;
    signal input schema_id;
    signal input path_elements[depth];
    signal input path_indices[depth];
    // ---- private: policy preimage
    signal input min_kyc_level;
    signal input require_accredited;
    signal input entity_mask;
    signal input deny[8];
    // ---- private: audit salts, one per audited field
    signal input audit_salts[nAudit];
    // ---- public inputs (in this order after the two outputs)
    signal input root;
    signal input policy_hash;
    signal input scope;
    signal input binding;
    // ---- public outputs
    signal output nullifier;
    signal output audit_commitment;

    // credential leaf and membership
    component commitment = Poseidon(1);
    commitment.inputs[0] <== secret;
    component leaf = Poseidon(8);
    leaf.inputs[0] <== commitment.out;
    leaf.inputs[1] <== entity_type;
    leaf.inputs[2] <== jurisdiction;
    leaf.inputs[3] <== kyc_level;
    leaf.inputs[4] <== accredited;
    leaf.inputs[5] <== issued_at;
    leaf.inputs[6] <== expires_at;
    leaf.inputs[7] <== schema_id;
    component tree = MerkleRoot(depth);
    tree.leaf <== leaf.out;
    for (var i = 0; i < depth; i++) {
        tree.siblings[i] <== path_elements[i];
        tree.pathIndices[i] <== path_indices[i];
    }
    tree.root === root;

    // policy preimage
    component policy = Poseidon(11);
    policy.inputs[0] <== min_kyc_level;
    policy.inputs[1] <== require_accredited;
    policy.inputs[2] <== entity_mask;
    for (var i = 0; i < 8; i++) {
        policy.inputs[3 + i] <== deny[i];
    }
    policy.out === policy_hash;

    // kyc_level >= min_kyc_level (both 8 bits)
    component minRange = AssertBits(8);
    minRange.in <== min_kyc_level;
    component kycRange = AssertBits(8);
    kycRange.in <== kyc_level;
    component kycOk = AssertLessEq(8);
    kycOk.a <== min_kyc_level;
    kycOk.b <== kyc_level;

    // accredited when required
    require_accredited * (1 - accredited) === 0;

    // entity type 1 or 2, allowed by the mask bits
    (entity_type - 1) * (entity_type - 2) === 0;
    component mask = Num2Bits(2);
    mask.in <== entity_mask;
    signal individualOk;
    individualOk <== mask.out[0] * (2 - entity_type);
    mask.out[1] * (entity_type - 1) === 1 - individualOk;

    // jurisdiction is set and equals no deny slot (an unused slot is 0 and never matches)
    component jurisdictionSet = AssertNonZero();
    jurisdictionSet.in <== jurisdiction;
    component notDenied[8];
    for (var i = 0; i < 8; i++) {
        notDenied[i] = AssertNonZero();
        notDenied[i].in <== jurisdiction - deny[i];
    }

    // binding = wallet (160 bits) | now << 160 | valid_until << 200, decomposed into 240 bits
    component bind = Num2Bits(240);
    bind.in <== binding;
    var now = 0;
    var validUntil = 0;
    for (var i = 0; i < 40; i++) {
        now += bind.out[160 + i] * (1 << i);
        validUntil += bind.out[200 + i] * (1 << i);
    }

    // issued_at <= now <= valid_until <= expires_at and now != expires_at (so now < expires_at)
    component issuedOk = AssertLessEq(40);
    issuedOk.a <== issued_at;
    issuedOk.b <== now;
    component nowOk = AssertLessEq(40);
    nowOk.a <== now;
    nowOk.b <== validUntil;
    component validOk = AssertLessEq(40);
    validOk.a <== validUntil;
    validOk.b <== expires_at;
    component notExpired = AssertNonZero();
    notExpired.in <== expires_at - now;

    // nullifier per scope
    component nul = Poseidon(2);
    nul.inputs[0] <== secret;
    nul.inputs[1] <== scope;
    nullifier <== nul.out;

    // audit commitment: each audited field with its own salt (order = AUDIT_FIELDS in credential.py)
    // (issued_at and schema_id are not audited: all seven fields would need 8,621 constraints, over the
    // 2^13 budget; see the README)
    var fields[5] = [entity_type, jurisdiction, kyc_level, accredited, expires_at];
    component fieldHash[nAudit];
    component audit = Poseidon(nAudit);
    for (var i = 0; i < nAudit; i++) {
        fieldHash[i] = Poseidon(2);
        fieldHash[i].inputs[0] <== fields[i];
        fieldHash[i].inputs[1] <== audit_salts[i];
        audit.inputs[i] <== fieldHash[i].out;
    }
    audit_commitment <== audit.out;
}

component main {public [root, policy_hash, scope, binding]} = Compliance(20, 5);
