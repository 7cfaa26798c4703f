// SPDX-License-Identifier: Apache-2.0
// Bit decomposition and range / order assertions, written for nexotc.
pragma circom 2.1.0;

// out[i] = bit i of in; constrains in < 2^n (n constraints). n must be < 254.
template Num2Bits(n) {
    signal input in;
    signal output out[n];
    var acc = 0;
    var e = 1;
    for (var i = 0; i < n; i++) {
        out[i] <-- (in >> i) & 1;
        out[i] * (out[i] - 1) === 0;
        acc += out[i] * e;
        e = e + e;
    }
    acc === in;
}

// Asserts 0 <= in < 2^n (n constraints).
template AssertBits(n) {
    signal input in;
    component b = Num2Bits(n);
    b.in <== in;
}

// Asserts a <= b, for a and b already known to be < 2^n (n constraints): b - a must fit in n bits,
// while a > b would wrap around to a value close to the field modulus.
template AssertLessEq(n) {
    signal input a;
    signal input b;
    component d = Num2Bits(n);
    d.in <== b - a;
}

// Asserts in != 0 (one constraint: in has an inverse).
template AssertNonZero() {
    signal input in;
    signal inv;
    inv <-- in != 0 ? 1 / in : 0;
    in * inv === 1;
}
