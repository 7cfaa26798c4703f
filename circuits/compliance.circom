// SPDX-License-Identifier: Apache-2.0
// nexotc zk compliance circuit (see nexotc_client/zk and the README section "zk compliance").
//
// Proves, without revealing the credential:
//   * the credential leaf Poseidon([Poseidon([secret]), entity_type, jurisdiction, kyc_level, accredited,
//     issued_at, expires_at, schema_id]) is in the issuer's binary Poseidon tree of the given depth under `root`;
//   * the fields meet the policy packed in the public `policy` word = min_kyc_level | require_accredited << 8 |
//     entity_mask << 9 | deny[i] << (11 + 10 i) (i = 0..7; fully decomposed, so every part is exactly the
//     registry's): kyc_level >= min_kyc_level, accredited if required, entity type allowed by the mask (bit 0
//     individuals = 1, bit 1 businesses = 2), jurisdiction differs from every deny slot (0 = unused);
//   * issued_at <= now and valid_until <= expires_at, where `binding` = wallet | now << 160 |
//     valid_until << 196 is fully decomposed (the wallet cannot be swapped); the registry checks
//     now < valid_until and |now - block time| <= 300 s, so the credential is not expired at `now`;
// and outputs nullifier = Poseidon([secret, scope]) and
//   audit_commitment = Poseidon([Poseidon([f_1, salt_1]), ..., Poseidon([f_7, salt_7])]) over all seven
//   credential fields (AUDIT_FIELDS in nexotc_client/zk/credential.py), any subset of which can be opened.
//
// Public signals (snarkjs order): [nullifier, audit_commitment, root, policy, scope, binding].
// Assumptions: the issuer only signs fields in range (entity_type 1/2, jurisdiction 1..999, kyc_level < 2^8,
// accredited 0/1, timestamps < 2^36; nexotc_client.zk.credential.Credential enforces them); the circuit
// re-checks what a prover could otherwise abuse. 8,171 constraints (+7 rows for the public signals: 8,178 of
// the 2^13 domain).
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
    // ---- private: audit salts, one per audited field
    signal input audit_salts[nAudit];
    // ---- public inputs (in this order after the two outputs)
    signal input root;
    signal input policy;
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

    // policy word: min_kyc_level (bits 0-7), require_accredited (8), entity_mask (9-10), deny[i] (11 + 10 i, 10
    // bits each); 91 bits, fully decomposed
    component pw = Num2Bits(91);
    pw.in <== policy;
    var minKyc = 0;
    for (var i = 0; i < 8; i++) {
        minKyc += pw.out[i] * (1 << i);
    }
    var deny[8];
    for (var d = 0; d < 8; d++) {
        deny[d] = 0;
        for (var i = 0; i < 10; i++) {
            deny[d] += pw.out[11 + 10 * d + i] * (1 << i);
        }
    }

    // kyc_level >= min_kyc_level (min < 2^8 from its bits; kyc_level < 2^8 is the issuer's)
    component kycOk = AssertLessEq(8);
    kycOk.a <== minKyc;
    kycOk.b <== kyc_level;

    // accredited when required
    pw.out[8] * (1 - accredited) === 0;

    // entity type 1 or 2, allowed by the mask bits
    (entity_type - 1) * (entity_type - 2) === 0;
    signal individualOk;
    individualOk <== pw.out[9] * (2 - entity_type);
    pw.out[10] * (entity_type - 1) === 1 - individualOk;

    // jurisdiction equals no deny slot (an unused slot is 0; jurisdictions are 1..999, so it never matches)
    component notDenied[8];
    for (var i = 0; i < 8; i++) {
        notDenied[i] = AssertNonZero();
        notDenied[i].in <== jurisdiction - deny[i];
    }

    // binding = wallet (160 bits) | now << 160 | valid_until << 196, decomposed into 232 bits
    component bind = Num2Bits(232);
    bind.in <== binding;
    var now = 0;
    var validUntil = 0;
    for (var i = 0; i < 36; i++) {
        now += bind.out[160 + i] * (1 << i);
        validUntil += bind.out[196 + i] * (1 << i);
    }

    // issued_at <= now and valid_until <= expires_at (all below 2^36); with the registry's now < valid_until
    // this makes issued_at <= now < expires_at
    component issuedOk = AssertLessEq(36);
    issuedOk.a <== issued_at;
    issuedOk.b <== now;
    component validOk = AssertLessEq(36);
    validOk.a <== validUntil;
    validOk.b <== expires_at;

    // nullifier per scope
    component nul = Poseidon(2);
    nul.inputs[0] <== secret;
    nul.inputs[1] <== scope;
    nullifier <== nul.out;

    // audit commitment: each credential field with its own salt (order = AUDIT_FIELDS in credential.py)
    var fields[7] = [entity_type, jurisdiction, kyc_level, accredited, issued_at, expires_at, schema_id];
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

component main {public [root, policy, scope, binding]} = Compliance(20, 7);
