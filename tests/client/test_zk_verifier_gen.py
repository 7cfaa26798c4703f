"""contracts/Groth16Verifier.vy is exactly what the generator writes from the committed verification key."""

from __future__ import annotations

from nexotc_client.zk import verifier_gen
from nexotc_client.zk.groth16 import load_vk


def test_generated_verifier_is_up_to_date():
    assert verifier_gen.DEFAULT_OUT.read_text() == verifier_gen.render(load_vk(verifier_gen.DEFAULT_VK))


def test_generator_embeds_the_key_and_uses_precompile_order(tmp_path):
    vk = load_vk()
    out = tmp_path / "V.vy"
    verifier_gen.main(["--out", str(out)])
    src = out.read_text()
    (x_re, x_im), (y_re, y_im) = vk.delta
    # G2 constants in precompile order (im before re)
    assert src.index(f"{x_im:#066x}") < src.index(f"{x_re:#066x}") < src.index(f"{y_im:#066x}")
    assert src.index(f"{y_im:#066x}") < src.index(f"{y_re:#066x}")
    assert "def verify(proof: uint256[8], inputs: uint256[6]) -> bool:" in src
    assert src.count("EC_MUL, concat(") == vk.n_public
