// SPDX-License-Identifier: Apache-2.0
// nexotc persistent Groth16 prover: loads snarkjs, the circuit wasm and the zkey once, then answers
// line-delimited JSON requests on stdin: {"id": n, "input": {...}} ->
// {"id": n, "proof": {...}, "publicSignals": [...], "witness_ms": x, "prove_ms": y} or {"id": n, "error": "..."}.
// Progress lines {"id": n, "stage": "witness"|"prove"} are written before each stage.
// Usage: node prover.js <circuit.wasm> <circuit.zkey>
"use strict";
const fs = require("fs");
const readline = require("readline");
const snarkjs = require("snarkjs");

const [wasmPath, zkeyPath] = process.argv.slice(2);
const wasm = new Uint8Array(fs.readFileSync(wasmPath));
const zkey = new Uint8Array(fs.readFileSync(zkeyPath));

function send(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

async function prove(id, input) {
    send({ id, stage: "witness" });
    const t0 = performance.now();
    const wtns = { type: "mem" };
    await snarkjs.wtns.calculate(input, { type: "mem", data: wasm }, wtns);
    const t1 = performance.now();
    send({ id, stage: "prove" });
    const { proof, publicSignals } = await snarkjs.groth16.prove({ type: "mem", data: zkey }, wtns);
    const t2 = performance.now();
    send({ id, proof, publicSignals, witness_ms: t1 - t0, prove_ms: t2 - t1 });
}

let queue = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
    if (!line.trim()) return;
    let req;
    try {
        req = JSON.parse(line);
    } catch (e) {
        send({ id: null, error: "bad request: " + e.message });
        return;
    }
    queue = queue.then(() =>
        prove(req.id, req.input).catch((e) => send({ id: req.id, error: String((e && e.message) || e) }))
    );
});
rl.on("close", () => {
    queue.then(async () => {
        if (globalThis.curve_bn128) await globalThis.curve_bn128.terminate();
        process.exit(0);
    });
});
send({ ready: true, peak_rss: process.memoryUsage().rss });
