// SPDX-License-Identifier: Apache-2.0
// Binary Poseidon Merkle inclusion, written for nexotc: node = Poseidon([left, right]).
pragma circom 2.1.0;

include "poseidon.circom";

// root = the root reached from leaf along siblings; pathIndices[i] = 1 when the node at level i is a
// right child (bit i of the leaf index).
template MerkleRoot(depth) {
    signal input leaf;
    signal input siblings[depth];
    signal input pathIndices[depth];
    signal output root;

    component h[depth];
    signal left[depth];
    var cur = leaf;
    for (var i = 0; i < depth; i++) {
        pathIndices[i] * (pathIndices[i] - 1) === 0;
        // left = index bit ? sibling : current ; right = the other one
        left[i] <== cur + pathIndices[i] * (siblings[i] - cur);
        h[i] = Poseidon(2);
        h[i].inputs[0] <== left[i];
        h[i].inputs[1] <== cur + siblings[i] - left[i];
        cur = h[i].out;
    }
    root <== cur;
}
