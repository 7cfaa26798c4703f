// SPDX-License-Identifier: Apache-2.0
// Phase timings of snarkjs' Groth16 prover for bench/zk.py --phases: proves `runs` times (after one
// warm-up) with a logger and prints, as JSON, the median milliseconds of each phase, split at the debug
// messages snarkjs 0.7.6 writes in groth16_prove.js.
// Usage: node bench/zk_phases.js <circuit.wasm> <circuit.zkey> <input.json> <runs>
"use strict";
const fs = require("fs");
const snarkjs = require("snarkjs");

const [wasmPath, zkeyPath, inputPath, runsArg] = process.argv.slice(2);
const wasm = new Uint8Array(fs.readFileSync(wasmPath));
const zkey = new Uint8Array(fs.readFileSync(zkeyPath));
const input = JSON.parse(fs.readFileSync(inputPath, "utf8"));
const runs = Number(runsArg);

// phase name -> the debug message that starts it (the next phase's start ends it)
const MARKS = [
    ["QAP: A, B, C evaluations (single-threaded JS)", (m) => m === "Building ABC"],
    ["FFTs (3 inverse, 3 on the coset)", (m) => m.startsWith("IFFT_A")],
    ["MSM A (G1)", (m) => m === "Reading A Points"],
    ["MSM B (G1)", (m) => m === "Reading B1 Points"],
    ["MSM B (G2)", (m) => m === "Reading B2 Points"],
    ["MSM C (G1)", (m) => m === "Reading C Points"],
    ["MSM H (G1)", (m) => m === "Reading H Points"],
];

async function once() {
    const wtns = { type: "mem" };
    const w0 = performance.now();
    await snarkjs.wtns.calculate(input, { type: "mem", data: wasm }, wtns);
    const starts = new Map();
    const logger = {
        debug(m) {
            const mark = MARKS.find(([name, test]) => !starts.has(name) && test(m));
            if (mark) starts.set(mark[0], performance.now());
        },
        info() {},
        warn() {},
        error() {},
    };
    const t0 = performance.now();
    await snarkjs.groth16.prove({ type: "mem", data: zkey }, wtns, logger);
    const t1 = performance.now();
    const out = { witness: t0 - w0, "setup (read sections)": starts.get(MARKS[0][0]) - t0 };
    MARKS.forEach(([name], i) => {
        const end = i + 1 < MARKS.length ? starts.get(MARKS[i + 1][0]) : t1;
        out[name] = end - starts.get(name);
    });
    out.prove = t1 - t0;
    return out;
}

(async () => {
    await once();
    const all = [];
    for (let i = 0; i < runs; i++) all.push(await once());
    const median = {};
    for (const key of Object.keys(all[0])) {
        const v = all.map((r) => r[key]).sort((a, b) => a - b);
        median[key] = v[v.length >> 1];
    }
    process.stdout.write(JSON.stringify(median) + "\n");
    if (globalThis.curve_bn128) await globalThis.curve_bn128.terminate();
    process.exit(0);
})();
