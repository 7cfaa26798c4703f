"""The committed circuit artifacts match the circuit source.

The circuit is recompiled (circom2 --O2, as scripts/zk_ceremony.py does): the r1cs must hash to the value the
ceremony recorded, the wasm must equal the committed compliance.wasm byte for byte, the committed zkey must
encode exactly the recompiled constraint system (header sizes and every A/B coefficient of section 4), and
the committed verification key must be the one snarkjs exports from that zkey.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
from pathlib import Path

import pytest
from zkkit import bin_sections, read_r1cs

from nexotc_client.zk.groth16 import R

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "circuits" / "build"
N8 = 32


def r1cs_info(data: bytes) -> tuple[dict, list[tuple[int, int, int, int]]]:
    """The header and the A and B coefficients (matrix, constraint, wire, value) as snarkjs stores them."""
    header, constraints = read_r1cs(data)
    coefs = [
        (matrix, c, wire, value)
        for c, abc in enumerate(constraints)
        for matrix in range(2)  # snarkjs stores A and B (C follows from them)
        for wire, value in abc[matrix].items()
    ]
    return {k: header[k] for k in ("n_wires", "n_public", "n_constraints")}, coefs


def zkey_info(data: bytes) -> tuple[dict, list[tuple[int, int, int, int]]]:
    s = bin_sections(data, b"zkey")
    g = s[2]  # groth16 header: n8q, q, n8r, r, nVars, nPublic, domainSize, ...
    pos = 4 + N8 + 4 + N8
    n_vars, n_public, domain = struct.unpack_from("<III", g, pos)
    header = {"n_wires": n_vars, "n_public": n_public, "domain": domain}
    body = s[4]
    (n,) = struct.unpack_from("<I", body, 0)
    coefs = []
    for i in range(n):
        off = 4 + i * (12 + N8)
        m, c, w = struct.unpack_from("<III", body, off)
        coefs.append((m, c, w, int.from_bytes(body[off + 12 : off + 12 + N8], "little")))
    return header, coefs


@pytest.fixture(scope="module")
def recompiled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("circuit")
    subprocess.run(
        ["node_modules/.bin/circom2", "circuits/compliance.circom", "--r1cs", "--wasm", "--O2", "-o", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_recompiled_circuit_matches_the_ceremony_record(recompiled):
    record = json.loads((BUILD / "ceremony.json").read_text())
    r1cs = (recompiled / "compliance.r1cs").read_bytes()
    assert hashlib.sha256(r1cs).hexdigest() == record["sha256"]["compliance.r1cs"]
    wasm = (recompiled / "compliance_js" / "compliance.wasm").read_bytes()
    assert wasm == (BUILD / "compliance.wasm").read_bytes()
    for name in ("compliance.wasm", "compliance_final.zkey", "verification_key.json"):
        assert hashlib.sha256((BUILD / name).read_bytes()).hexdigest() == record["sha256"][name], name


def test_zkey_encodes_the_recompiled_constraints(recompiled):
    header, coefs = r1cs_info((recompiled / "compliance.r1cs").read_bytes())
    zheader, zcoefs = zkey_info((BUILD / "compliance_final.zkey").read_bytes())
    assert header["n_constraints"] <= 8_192 - header["n_public"] - 1  # fits the 2^13 domain
    assert zheader == {"n_wires": header["n_wires"], "n_public": header["n_public"], "domain": 8_192}
    r2 = pow(2, 512, R)  # snarkjs stores coefficient * R^2 (R = 2^256 mod r)
    expected = [(m, c, w, v * r2 % R) for m, c, w, v in coefs]
    expected += [(0, header["n_constraints"] + s, s, r2) for s in range(header["n_public"] + 1)]
    assert zcoefs == expected


def test_verification_key_is_exported_from_the_zkey(tmp_path):
    out = tmp_path / "vk.json"
    subprocess.run(
        [
            "node_modules/.bin/snarkjs",
            "zkey",
            "export",
            "verificationkey",
            str(BUILD / "compliance_final.zkey"),
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert json.loads(out.read_text()) == json.loads((BUILD / "verification_key.json").read_text())
