"""CLI guards found by exploratory testing (kyc, issuer, msig, desk): a proof is refused for a wallet that is
not a principal of a plain deal (`kyc prove` and `kyc submit`), `kyc prove --deal` takes a creation number and
refuses a --policy for a deal that is not gated, `kyc prove` warns when the credential's expiry caps the
attestation, a corrupt issuer tree is named malformed, `issuer set-root-window` to the current window sends
nothing, `msig propose --call` refuses integers out of their ABI type's range, `msig propose|sign --out` refuse
an existing file without --force, and `desk set-assets` refuses an asset both allowed and disallowed. Each
mistake is one line, and nothing is sent or written. Offline checks run in-process; the rest on a real anvil."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import Cli, assert_one_line_error, kyc_node_cli

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli import run

ROOT = Path(__file__).resolve().parents[2]
DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ADMIN, BUYER, SELLER, INTRODUCER, ISSUER = "test:0", "test:1", "test:2", "test:3", "test:9"


# ------------------------------------------------------------------------------------------ offline
@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[1, 2]", "a JSON list, not an object"),
        ("{}", "no 'depth' field"),
        ('{"depth": 20}', "no 'next_index' field"),
        ("not json", "Expecting value"),
        ('{"depth": 20, "next_index": 0, "root": "1", "nodes": {"0": 1}}', "malformed: "),
        ('{"depth": 20, "next_index": 0, "root": "1", "nodes": [{"0": 5}]}', "malformed: "),
        ('{"depth": 1e400, "next_index": 0, "root": "1", "nodes": []}', "malformed: "),
        ('{"depth": 99, "next_index": 0, "root": "1", "nodes": []}', "depth must be 1..32"),
        ('{"depth": 2, "next_index": 0, "root": "1", "nodes": [{}, {}, {}]}', "root mismatch"),
    ],
)
def test_a_corrupt_issuer_tree_is_named_malformed(tmp_path, capsys, content, fragment):
    home = ["--home", str(tmp_path)]
    assert run(["issuer", "init", "--issuer", "0x" + "ab" * 20, *home]) == 0
    tree = tmp_path / "issuer" / "tree.json"
    tree.write_text(content + "\n")
    capsys.readouterr()
    for argv in (["issuer", "show"], ["issuer", "path", "0", "--out", str(tmp_path / "c.json")]):
        assert run([*argv, *home]) == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith(f"error: issuer tree {tree}: not an issuer tree (malformed: "), lines[0]
        assert fragment in lines[0] and "internal error" not in lines[0], lines[0]
    assert tree.read_text() == content + "\n" and not (tmp_path / "c.json").exists()


def test_call_integers_must_fit_their_abi_type():
    from nexotc_client.cli.msig import convert_arg

    for text, abi_type, why in (
        ("-1", "uint256", "-1 is out of range for uint256 (0 .. 2**256 - 1)"),
        (str(2**256), "uint256", "out of range for uint256"),
        ("-0x1", "uint32", "-1 is out of range for uint32 (0 .. 4294967295)"),
        ("256", "uint8", "256 is out of range for uint8 (0 .. 255)"),
        ("-129", "int8", "-129 is out of range for int8 (-128 .. 127)"),
        ("128", "int8", "128 is out of range for int8 (-128 .. 127)"),
        (str(2**255), "int256", "out of range for int256"),
    ):
        with pytest.raises(NexotcError) as refused:
            convert_arg(text, abi_type, "arg x")
        assert str(refused.value).startswith("arg x: ") and why in str(refused.value), refused.value
    assert convert_arg("255", "uint8", "x") == 255 and convert_arg("-128", "int8", "x") == -128
    assert convert_arg(str(2**256 - 1), "uint256", "x") == 2**256 - 1 and convert_arg("0", "uint", "x") == 0
    assert convert_arg(str(-(2**255)), "int256", "x") == -(2**255)


# -------------------------------------------------------------------- on a real anvil
@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Factory with a KYC registry and mock tokens; issuer test:9 holds the buyer's credential (published);
    policy #1 (any KYC level)."""
    with kyc_node_cli(tmp_path_factory.mktemp("nexotc-guards"), ADMIN, ISSUER) as env:
        yield env


def _address(c: Cli, ref: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(c.rpc("eth_accounts", [])[int(ref[5:])])


def _txs(c: Cli, ref: str) -> int:
    return int(c.rpc("eth_getTransactionCount", [_address(c, ref), "latest"]), 16)


def _prove(c: Cli, d: Path, out: Path, *scope_and_wallet: str) -> Any:
    return c("kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--policy", "1",
             *scope_and_wallet, "--out", out, "--json", timeout=300)  # fmt: skip


def test_a_proof_only_binds_a_principal_of_a_plain_deal_and_deal_takes_creation_numbers(env):
    c, d = env["cli"], env["dir"]
    now = int(c.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    terms = [
        "--terms", DVP_EXAMPLE, "--set", "compliance.policy=1", "--salt", "0x0c",
        "--set", f"timers.funding_deadline={now + 86_400}", "--set", f"tranches.first_unlock={now + 600}",
    ]  # fmt: skip
    deal = c.ok("deal", "create", *terms, "--dry-run", "--account", SELLER, "--json").json()["deal"]
    # before the deal exists nothing names its principals: a proof for its address is made for any wallet
    early = _prove(c, d, d / "introducer.proof", "--deal", deal, "--valid-for", "1d", "--wallet", INTRODUCER)
    assert early.code == 0, early.err
    created = c.ok("deal", "create", *terms, "--account", SELLER, "--json").json()
    assert created["deal"] == deal
    number = str(next(r["index"] for r in c.ok("deal", "list", "--json").json() if r["deal"] == deal))
    buyer, seller, introducer = _address(c, BUYER), _address(c, SELLER), _address(c, INTRODUCER)

    # once it exists, a wallet that is not its buyer or seller is refused before anything is proved or written
    for scope in (["--deal", deal], ["--deal", number], ["--deal", f"#{number}"], ["--scope", str(int(deal, 16))]):
        refused = _prove(c, d, d / "stray.proof", *scope, "--wallet", INTRODUCER)
        assert_one_line_error(
            refused, f"--wallet {introducer} is not a principal of deal {deal}", f"buyer {buyer}, seller {seller}"
        )
        assert not (d / "stray.proof").exists()
    assert_one_line_error(
        _prove(c, d, d / "stray.proof", "--deal", number, "--account", INTRODUCER), f"--account {introducer} is not"
    )
    # ... and a proof made earlier for such a wallet is not submitted: nothing sent
    before = _txs(c, INTRODUCER)
    assert_one_line_error(
        c("kyc", "submit", d / "introducer.proof", "--account", INTRODUCER),
        f"the proof's wallet {introducer} is not a principal of deal {deal}", f"buyer {buyer}, seller {seller}",
    )  # fmt: skip
    assert _txs(c, INTRODUCER) == before
    status = c("kyc", "status", INTRODUCER, "--deal", deal, "--json")
    assert status.code == 3 and status.json()["attested"] is False

    # --deal by creation number (`N` or `#N`), as `kyc status` and `audit export` take it; the buyer's credential
    # was not used up, so the buyer attests in the deal's scope
    for ref, out in ((number, d / "buyer.proof"), (f"#{number}", d / "buyer2.proof")):
        proved = _prove(c, d, out, "--deal", ref, "--account", BUYER)
        assert proved.code == 0, proved.err
        data = proved.json()
        assert data["scope"] == str(int(deal, 16)) and data["wallet"] == buyer and data["warnings"] == []
    submitted = c.ok("kyc", "submit", d / "buyer.proof", "--account", BUYER, "--json").json()
    assert [e["name"] for e in submitted["events"]] == ["Attested"]
    assert c.ok("kyc", "status", BUYER, "--deal", number, "--json").json()["compliant"] is True


def test_set_root_window_to_the_current_window_sends_nothing(env):
    c = env["cli"]
    done = c.ok("issuer", "set-root-window", "2h", "--account", ADMIN, "--json").json()
    assert done["root_window"] == 7200 and [e["name"] for e in done["events"]] == ["RootWindowSet"]
    before = _txs(c, ADMIN)
    again = c.ok("issuer", "set-root-window", "2h", "--account", ADMIN)
    assert again.out.strip() == "the root window is already 2h (7200 s); nothing sent"
    same = c.ok("issuer", "set-root-window", "7200", "--account", ADMIN, "--json").json()
    assert same == {"method": "set_root_window", "changed": False, "root_window": 7200}
    # no calldata for a change that changes nothing either
    assert c.ok("issuer", "set-root-window", "2h", "--calldata", "--json").json()["changed"] is False
    assert _txs(c, ADMIN) == before
    c.ok("issuer", "set-root-window", "1h", "--account", ADMIN)


def test_msig_propose_refuses_out_of_range_integers_and_propose_and_sign_refuse_overwrites(env):
    c, d = env["cli"], env["dir"]
    wallet = c.ok(
        "msig", "create", "--owner", BUYER, "--owner", SELLER, "--threshold", "1", "--account", ADMIN, "--json"
    ).json()["wallet"]
    out = d / "p.json"
    for value, fragment in (("-1", "-1 is out of range for uint256"), (str(2**256), f"{2**256} is out of range")):
        refused = c("msig", "propose", wallet, "--call", f"wallet.change_threshold({value})", "--out", out)
        assert_one_line_error(refused, "--call change_threshold argument threshold: ", fragment, "2**256 - 1")
        assert "internal error" not in refused.err and not out.exists()

    # an existing proposal is not overwritten (owners may have signed it) unless --force
    first = c.ok("msig", "propose", wallet, "--call", "wallet.change_threshold(2)", "--out", out, "--json").json()
    written = out.read_text()
    refused = c("msig", "propose", wallet, "--call", "wallet.change_threshold(1)", "--out", out)
    assert_one_line_error(refused, f"{out} exists", "--force", "nothing written")
    assert out.read_text() == written
    sig = d / "p.sig.json"
    c.ok("msig", "sign", out, "--account", BUYER, "--out", sig)
    signature = sig.read_text()
    assert_one_line_error(c("msig", "sign", out, "--account", SELLER, "--out", sig), f"{sig} exists", "--force")
    assert sig.read_text() == signature
    assert_one_line_error(c("msig", "sign", out, "--account", BUYER, "--out", out), f"{out} exists")
    assert out.read_text() == written
    resigned = c.ok("msig", "sign", out, "--account", SELLER, "--out", sig, "--force", "--json").json()
    assert resigned["signer"] == _address(c, SELLER) and json.loads(sig.read_text())["signer"] == resigned["signer"]
    forced = c.ok("msig", "propose", wallet, "--call", "wallet.change_threshold(1)", "--out", out, "--force", "--json")
    assert forced.json()["digest"] != first["digest"] == json.loads(written)["digest"]


def test_desk_set_assets_refuses_an_asset_both_allowed_and_disallowed(env):
    c = env["cli"]
    weth = env["deployment"]["tokens"]["WETH"]
    desk_id = str(
        c.ok("desk", "create", "--admin", ISSUER, "--fee-recipient", ADMIN, "--max-fee-bps", "30",
             "--introducer-cap-bps", "20", "--asset", "WBTC", "--account", ADMIN, "--json").json()["desk_id"]
    )  # fmt: skip
    before = _txs(c, ISSUER)
    for disallow, named in (("WETH", "both name WETH:"), (weth.lower(), f"both name WETH ({weth.lower()})")):
        refused = c("desk", "set-assets", desk_id, "--allow", "WETH", "--disallow", disallow, "--account", ISSUER)
        assert refused.code == 2
        assert_one_line_error(refused, named, "give each asset in one list only")
    assert_one_line_error(
        c("desk", "set-assets", desk_id, "--allow", "WETH", "--allow", "USDT", "--disallow", "usdt", "--calldata"),
        "both name USDT (usdt)",
    )
    assert _txs(c, ISSUER) == before
    assert weth not in c.ok("desk", "show", desk_id, "--json").json()["assets"]
    # the same asset twice in one list is asked once
    c.ok("desk", "set-assets", desk_id, "--allow", "WETH", "--allow", weth, "--account", ISSUER)
    assert weth in c.ok("desk", "show", desk_id, "--json").json()["assets"]


def test_prove_refuses_a_policy_for_an_ungated_deal(env):
    """`kyc prove --deal N --policy 1` for a deployed deal whose terms carry no policy used to make a proof: nothing
    would ever check it, and submitted it would use up the credential in that deal's scope."""
    c, d = env["cli"], env["dir"]
    now = int(c.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    deal = c.ok(
        "deal", "create", "--terms", DVP_EXAMPLE, "--salt", "0x0d", "--set", f"timers.funding_deadline={now + 86_400}",
        "--set", f"tranches.first_unlock={now + 600}", "--account", SELLER, "--json",
    ).json()["deal"]  # fmt: skip
    number = str(next(r["index"] for r in c.ok("deal", "list", "--json").json() if r["deal"] == deal))
    for ref in (deal, number, f"#{number}"):
        refused = _prove(c, d, d / "ungated.proof", "--deal", ref, "--account", BUYER)
        assert_one_line_error(
            refused, f"--policy 1: deal {deal} is not gated: its terms carry no compliance policy", "no proof is needed"
        )
        assert not (d / "ungated.proof").exists()


def test_prove_warns_when_the_credential_caps_the_attestation(env):
    """`--valid-for 400d` with a credential that expires in 365 days was silently cut to the credential's expiry."""
    c, d = env["cli"], env["dir"]
    from nexotc_client.issuer import HolderFile

    expires_at = HolderFile.load(d / "buyer.cred").credential.expires_at
    scope = ["--scope", str(2**200 + 7), "--account", BUYER, "--valid-for", "400d"]
    proved = _prove(c, d, d / "capped.proof", *scope)
    assert proved.code == 0, proved.err
    data = proved.json()
    assert data["valid_until"] == expires_at - 1
    iso = [_iso(t) for t in (expires_at - 1, expires_at, data["now"] + 400 * 86_400)]
    assert data["warnings"] == [
        f"the attestation is capped at the credential's expiry: it ends at {iso[0]}, just before the credential "
        f"expires ({iso[1]}), not at {iso[2]} as --valid-for 400d asks"
    ]
    # the human output says so too
    shown = c("kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--policy", "1",
              *scope, "--out", d / "capped.proof", "--force", timeout=300)  # fmt: skip
    assert shown.code == 0, shown.err
    assert f"warning: the attestation is capped at the credential's expiry: it ends at {iso[0]}" in shown.out


def _iso(ts: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
