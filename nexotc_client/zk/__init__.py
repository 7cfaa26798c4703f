"""zk compliance: Poseidon, credential trees, Groth16 proofs of policy compliance (see ZK section of the README).

Modules: poseidon (hash), merkle (PoseidonTree), credential (Credential, Policy, audit commitments),
prover (snarkjs through node), groth16 (py_ecc verification, verification key), verifier_gen (Vyper verifier).
"""
