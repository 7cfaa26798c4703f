"""`nexotc kyc|issuer|audit` end to end on a real anvil (subprocesses, real proofs): holders make secrets,
the issuer issues credentials and publishes its root, the admin registers a policy, both parties prove
for a deal address predicted before creation, the compliant deal is created and funded, an auditor gets
a bundle where the buyer discloses its jurisdiction only, and a tampered bundle is named mismatch by
mismatch. Mistakes print one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import Cli, assert_one_line_error, node_cli
from eth_utils import to_checksum_address

from nexotc_client.cli import run

ROOT = Path(__file__).resolve().parents[2]
DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ESCROWED_EXAMPLE = ROOT / "examples" / "escrowed-btc-usdt.yaml"


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-kyc-home")) as c:
        yield c


def test_cli_mistakes_without_a_chain(tmp_path, capsys):
    home = ["--home", str(tmp_path)]

    def check(argv: list[str], code: int, fragment: str) -> None:
        assert run(argv) == code
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines

    check(["kyc", "issue", "--commitment", "1", "--jurisdiction", "756", "--kyc-level", "2", *home], 2, "--out")
    check(
        ["kyc", "issue", "--commitment", "1", "--jurisdiction", "756", "--kyc-level", "2", "--entity", "robot",
         "--out", str(tmp_path / "c.json"), *home],
        1,
        "--entity: individual or business",
    )  # fmt: skip
    check(["kyc", "disclose", str(tmp_path / "nope.json"), "--field", "jurisdiction", "--out", "x", *home], 2, "nope")
    (tmp_path / "bundle.json").write_text("{}")
    check(["audit", "verify", str(tmp_path / "bundle.json"), *home], 1, "is not an audit bundle")


def test_kyc_issue_prove_submit_deal_and_audit(cli, tmp_path):
    d = tmp_path
    deployed = cli.ok("deploy", "--mock-tokens", "--kyc", "--account", "test:0", "--json").json()
    assert deployed["kyc_registry"]

    # holders: secrets (commitments only go to the issuer); issuer: credentials, grant, root; admin: policy
    commitments = {}
    for who in ("buyer", "seller", "sanctioned"):
        commitments[who] = cli.ok("kyc", "secret", "--out", d / f"{who}.secret", "--json").json()["commitment"]
    # `issuer init` is the one command that creates a tree; every other issuer command refuses a missing one
    cli.ok("issuer", "init", "--issuer-dir", d / "issuer", "--issuer", "test:9")
    issue = ["kyc", "issue", "--issuer-dir", d / "issuer", "--expires", "+365d", "--accredited", "--json"]
    cli.ok(*issue, "--commitment", commitments["buyer"], "--jurisdiction", "756", "--kyc-level", "3",
           "--holder", "buyer", "--out", d / "buyer.cred")  # fmt: skip
    cli.ok(*issue, "--commitment", commitments["seller"], "--jurisdiction", "826", "--kyc-level", "2",
           "--entity", "business", "--out", d / "seller.cred")  # fmt: skip
    cli.ok(*issue, "--commitment", commitments["sanctioned"], "--jurisdiction", "408", "--kyc-level", "3",
           "--out", d / "sanctioned.cred")  # fmt: skip
    cli.ok("issuer", "grant", "test:9", "--label", "Acme KYC", "--account", "test:0")
    published = cli.ok("issuer", "publish-root", "--issuer-dir", d / "issuer", "--account", "test:9", "--json").json()
    assert [e["name"] for e in published["events"]] == ["RootPublished"]
    # the first holder files carry paths under older, never published roots: the issuer hands out fresh ones
    for index, who in enumerate(("buyer", "seller")):
        cli.ok("issuer", "path", str(index), "--issuer-dir", d / "issuer", "--out", d / f"{who}.cred", "--force")
    policy = cli.ok(
        "kyc", "policy", "register", "--min-kyc-level", "2", "--accredited", "--deny", "408", "--deny", "364",
        "--label", "EU professional", "--account", "test:0", "--json",
    ).json()  # fmt: skip
    # the registry packs the parameters into the policy word proofs carry (both ends compute it)
    word = 2 | 1 << 8 | 3 << 9 | 408 << 11 | 364 << 21
    assert policy["policy_id"] == 1 and policy["policy_word"] == word
    listed = cli.ok("kyc", "policy", "list", "--json").json()
    assert listed[0]["policy_word"] == word and listed[0]["params"]["deny"][:2] == [408, 364]
    # the issuer prepares its current root with the policy (later proofs verify two ecMul cheaper)
    prepared = cli.ok("issuer", "prepare", "--policy", "1", "--account", "test:9", "--json").json()
    assert [e["name"] for e in prepared["events"]] == ["Prepared"] and prepared["policy"] == 1
    assert_one_line_error(cli("issuer", "prepare", "--policy", "1", "--account", "test:9"), "already prepared")
    assert_one_line_error(cli("issuer", "prepare", "--policy", "7", "--account", "test:9"), "unknown policy")
    assert_one_line_error(cli("issuer", "prepare", "--policy", "1", "--account", "test:3"), "has no current root")
    assert_one_line_error(
        cli("issuer", "prepare", "--policy", "2", "--root", "nope", "--account", "test:3"), "root: not an integer"
    )

    # the deal's address before it exists (absolute times: the terms, hence the address, stay fixed)
    now = int(cli.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    terms = [
        "--terms", DVP_EXAMPLE, "--set", "compliance.policy=1", "--salt", "0x0a",
        "--set", f"timers.funding_deadline={now + 86_400}", "--set", f"tranches.first_unlock={now + 600}",
    ]  # fmt: skip
    dry = cli.ok("deal", "create", *terms, "--dry-run", "--account", "test:2", "--json").json()
    deal = dry["deal"]
    assert dry["warnings"] == []  # absolute times: the address is fixed
    relative = cli.ok("deal", "create", "--terms", DVP_EXAMPLE, "--dry-run", "--account", "test:2", "--json").json()
    assert any("relative times" in w for w in relative["warnings"])
    # a gated deal nobody could ever fund is refused before anything is sent
    assert_one_line_error(
        cli("deal", "create", "--terms", DVP_EXAMPLE, "--set", "compliance.policy=99", "--account", "test:2"),
        "this deal could never be funded", "compliance policy #99 is not registered",
    )  # fmt: skip
    # the creator funding at creation needs its own attestation in the new deal's scope
    assert_one_line_error(
        cli("deal", "create", *terms, "--fund", "--account", "test:2"),
        "--fund: the seller", "no current attestation of policy #1", f"nexotc kyc prove --deal {deal} --valid-for ",
    )  # fmt: skip
    assert cli.rpc("eth_getCode", [deal, "latest"]) in ("0x", "0x0")
    # a deal not created yet has no final expiry to read: the attestation's length must be given
    assert_one_line_error(
        cli("kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--policy", "1",
            "--deal", deal, "--account", "test:1", "--out", d / "x.proof"),
        f"--deal {deal}: no deal there yet", "--offer FILE|LINK", "--valid-for DURATION",
    )  # fmt: skip
    assert not (d / "x.proof").exists()
    hinted = cli("deal", "create", *terms, "--fund", "--account", "test:2").err.split("--valid-for ")[1].split()[0]

    # each party proves for that address from its own wallet and submits: the seller for as long as the hint
    # says (to the final expiry), the buyer for a day (it extends its attestation below, once the deal exists)
    for who, account, valid_for in (("buyer", "test:1", "1d"), ("seller", "test:2", hinted)):
        proved = cli.ok(
            "kyc", "prove", "--credential", d / f"{who}.cred", "--secret", d / f"{who}.secret", "--policy", "1",
            "--deal", deal, "--valid-for", valid_for, "--account", account, "--out", d / f"{who}.proof", "--json",
        ).json()  # fmt: skip
        assert proved["scope"] == str(int(deal, 16))
        assert (proved["valid_until"] >= dry["terms"]["final_expiry"]) == (who == "seller")
        if who == "buyer":
            assert_one_line_error(
                cli("kyc", "submit", d / "buyer.proof", "--account", "test:5"), "the proof is bound to"
            )
        submitted = cli.ok("kyc", "submit", d / f"{who}.proof", "--account", account, "--json").json()
        assert [e["name"] for e in submitted["events"]] == ["Attested"]
    assert_one_line_error(
        cli("kyc", "prove", "--credential", d / "sanctioned.cred", "--secret", d / "sanctioned.secret",
            "--policy", "1", "--deal", deal, "--valid-for", hinted, "--account", "test:6", "--out", d / "x.proof"),
        "cannot meet policy #1", "jurisdiction 408 denied",
    )  # fmt: skip
    assert_one_line_error(  # the registry needs now < valid_until: refused before any proving, naming the option
        cli("kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--policy", "1",
            "--deal", deal, "--valid-for", "0s", "--account", "test:1", "--out", d / "x.proof"),
        "--valid-for: must be at least 1s",
    )  # fmt: skip
    status = cli.ok("kyc", "status", "test:1", "--deal", deal, "--json").json()
    assert status["compliant"] is True and status["policy_id"] == 1
    assert "policy #1" in cli.ok("kyc", "status", "test:1", "--deal", deal).out
    assert f"word {word}" in cli.ok("kyc", "policy", "list").out
    shown = cli.ok("issuer", "show", "--issuer-dir", d / "issuer").out
    assert "#0 buyer: entity 1, jurisdiction 756" in shown and "secret" not in shown

    created = cli.ok("deal", "create", *terms, "--fund", "--account", "test:2", "--json").json()
    assert created["deal"] == deal and created["funded"] is True
    # the buyer's attestation (a day) ends before the final expiry: the deal takes no deposit from it (a funder
    # could otherwise back out by letting it lapse); named before anything is sent, nothing approved
    buyer = to_checksum_address(cli.rpc("eth_accounts", [])[1])
    refused = cli("deal", "fund", deal, "--account", "test:1")
    assert_one_line_error(
        refused, f"fund: the buyer {buyer}'s attestation in the deal's scope ends at", "before the deal's final expiry"
    )
    assert cli.allowance(deployed["tokens"]["USDT"], buyer, deal) == 0
    # a second gated deal: nobody proved in its scope, so funding names the principal and approves nothing
    other_terms = [("0x0b" if arg == "0x0a" else arg) for arg in terms]
    other = cli.ok("deal", "create", *other_terms, "--account", "test:2", "--json").json()["deal"]
    refused = cli("deal", "fund", other, "--account", "test:1")
    assert_one_line_error(refused, f"fund: the buyer {buyer}", "no current attestation of policy #1")
    assert cli.allowance(deployed["tokens"]["USDT"], buyer, other) == 0
    # once deployed, the deal names its scope (its address; a desk deal's would be its desk's)
    status = cli.ok("kyc", "status", "test:1", "--deal", deal, "--json").json()
    assert status["scope"] == str(int(deal, 16)) and status["compliant"] is True
    # ... and a proof for it lasts to its final expiry by default (releases are gated until then); a shorter
    # --valid-for is warned about
    final = cli.ok("deal", "show", deal, "--json").json()["terms"]["final_expiry"]
    prove = ["kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--policy", "1",
             "--deal", deal, "--account", "test:1", "--json"]  # fmt: skip
    renewal = cli.ok(*prove, "--out", d / "renewal.proof").json()
    assert renewal["valid_until"] == final and renewal["warnings"] == []
    cli.ok("kyc", "submit", d / "renewal.proof", "--account", "test:1")
    cli.ok("deal", "fund", deal, "--account", "test:1")  # attested to the final expiry: the deposit is taken
    # the attestation in force here can only be extended: a shorter proof is refused before proving
    refused = cli(*prove, "--valid-for", "1h", "--out", d / "short.proof")
    assert_one_line_error(refused, "already attested for policy #1 in this scope", "only a later expiry extends it")
    assert not (d / "short.proof").exists()
    # in the other deal's scope (no attestation yet) a --valid-for that ends before its final expiry is warned about
    other_final = cli.ok("deal", "show", other, "--json").json()["terms"]["final_expiry"]
    other_prove = [other if arg == deal else arg for arg in prove]
    short = cli.ok(*other_prove, "--valid-for", "1h", "--out", d / "short.proof").json()
    assert short["valid_until"] < other_final and "before the deal's final expiry" in short["warnings"][0]
    # a proof of another policy would not count for the deal (and would hold the scope): refused before proving
    cli.ok("kyc", "policy", "register", "--label", "any", "--account", "test:0")
    at = other_prove.index("--policy") + 1
    lax = [*other_prove[:at], "2", *other_prove[at + 1 :]]
    assert_one_line_error(cli(*lax, "--out", d / "lax.proof"), "--policy 2:", "is gated on policy #1")
    assert not (d / "lax.proof").exists()
    # `kyc status --deal` checks the deal's own policy by default
    assert cli.ok("kyc", "status", "test:1", "--deal", deal, "--json").json()["checked_policy"] == 1

    # before accepting a gated offer: prove in the scope of the deal it makes, to its final expiry
    offer_terms = [arg for arg in terms if arg not in ("--salt", "0x0a")]
    cli.ok("offer", "create", *offer_terms, "--account", "test:2", "--out", d / "gated-offer.json")
    # (`open` also lists what stops the acceptance now, exit 1: approvals and the attestations still missing)
    opened = cli("offer", "open", d / "gated-offer.json", "--account", "test:1", "--json").json()
    by_offer = [
        "kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--offer",
        d / "gated-offer.json", "--account", "test:1",
    ]  # fmt: skip
    proved = cli.ok(*by_offer, "--policy", "1", "--out", d / "offer.proof", "--json").json()
    assert proved["scope"] == str(int(opened["deal"], 16)) and proved["valid_until"] == opened["terms"]["final_expiry"]
    assert_one_line_error(cli(*by_offer, "--policy", "2", "--out", d / "x.proof"), "gated on policy #1")
    outsider = [arg if arg != "test:1" else "test:5" for arg in by_offer]
    assert_one_line_error(cli(*outsider, "--policy", "1", "--out", d / "x.proof"), "neither the offer's maker")
    assert not (d / "x.proof").exists()

    # an ESCROWED gated offer (the seller delivers BTC off chain): a buyer's attestation that ends before the
    # final expiry would block every release after it, so accepting is refused unless --short-attestation-ok
    escrowed = ["--terms", ESCROWED_EXAMPLE, "--set", "compliance.policy=1"]
    cli.ok("offer", "create", *escrowed, "--account", "test:2", "--out", d / "esc-offer.json")
    for who, account, extra in (("seller", "test:2", []), ("buyer", "test:1", ["--valid-for", "1d"])):
        cli.ok(
            "kyc", "prove", "--credential", d / f"{who}.cred", "--secret", d / f"{who}.secret", "--offer",
            d / "esc-offer.json", "--policy", "1", "--account", account, *extra, "--out", d / f"esc-{who}.proof",
        )  # fmt: skip
        cli.ok("kyc", "submit", d / f"esc-{who}.proof", "--account", account)
    buyer_address = to_checksum_address(cli.rpc("eth_accounts", [])[1])
    sent = int(cli.rpc("eth_getTransactionCount", [buyer_address, "latest"]), 16)
    refused = cli("offer", "accept", d / "esc-offer.json", "--account", "test:1", "--fund")
    assert_one_line_error(refused, "not accepted: the buyer's attestation", "ESCROWED", "--short-attestation-ok")
    assert int(cli.rpc("eth_getTransactionCount", [buyer_address, "latest"]), 16) == sent
    # ... and the buyer funds the escrowed leg: the deal takes no deposit from a funder attested for less
    refused = cli("offer", "accept", d / "esc-offer.json", "--account", "test:1", "--fund", "--short-attestation-ok")
    assert_one_line_error(refused, "cannot accept and fund this offer: the buyer", "before the deal's final expiry")
    assert int(cli.rpc("eth_getTransactionCount", [buyer_address, "latest"]), 16) == sent
    taken = cli.ok(
        "offer", "accept", d / "esc-offer.json", "--account", "test:1", "--short-attestation-ok", "--json"
    ).json()
    assert taken["phase"] == "funding" and "before the deal's final expiry" in taken["warnings"][0]

    # the audit bundle: the buyer discloses its jurisdiction, nothing else
    # (from the proof of the attestation in force: the renewal)
    cli.ok("kyc", "disclose", d / "renewal.proof", "--field", "jurisdiction", "--out", d / "buyer.disclosure")
    exported = cli.ok(
        "audit", "export", deal, "--disclosure", d / "buyer.disclosure", "--out", d / "bundle.json", "--json"
    ).json()
    assert exported["disclosed"] == {"buyer": {"jurisdiction": 756}} and exported["attested"] == ["buyer", "seller"]
    bundle = json.loads((d / "bundle.json").read_text())
    assert [e["name"] for e in bundle["events"]] == ["DealCreated", "Funded", "Funded"]
    assert set(bundle["disclosures"]["buyer"]["opening"]["opened"]) == {"jurisdiction"}
    verified = cli.ok("audit", "verify", d / "bundle.json", "--json").json()
    assert verified["ok"] is True and verified["mismatches"] == []

    # tampering is named, one mismatch per line, exit 1
    bundle["events"][1]["args"]["amount"] += 1
    bundle["disclosures"]["buyer"]["opening"]["opened"]["jurisdiction"]["value"] = "840"
    bundle["attestations"]["seller"]["expiry"] += 1
    (d / "forged.json").write_text(json.dumps(bundle))
    result = cli("audit", "verify", d / "forged.json")
    assert_one_line_error(result, "the bundle does not match the chain: 3 mismatch(es)")
    lines = [line for line in result.out.splitlines() if line.startswith("mismatch: ")]
    assert len(lines) == 3, result.out
    assert "event 1 (Funded" in lines[0] and "args.amount differs (bundle " in lines[0], lines
    assert "attestation of the seller" in lines[1], lines
    assert "disclosure of the buyer: the opened fields do not reproduce" in lines[2], lines
    report = cli("audit", "verify", d / "forged.json", "--json")
    assert report.code == 1 and len(report.json()["mismatches"]) == 3


def test_terms_files_carry_the_policy(tmp_path):
    """`compliance: {policy: N}` in a terms file sets the deal's policy id; a bad one names the field."""
    from eth_utils import to_checksum_address

    from nexotc_client.spec import SpecError, parse_spec
    from nexotc_client.terms import TermsError

    wbtc, usdt = "0x" + "11" * 20, "0x" + "22" * 20
    names = {f"test:{i}": "0x" + f"{i + 1:02x}" * 20 for i in range(10)}
    kwargs = dict(
        now=1_800_000_000,
        resolve_wallet=lambda alias: to_checksum_address(names[alias]),
        decimals_of=lambda token: 8 if token.lower() == wbtc else 6,
        variables={"WBTC": wbtc, "USDT": usdt},
    )
    spec = parse_spec(DVP_EXAMPLE, sets={"compliance.policy": "3"}, **kwargs)
    assert spec.terms.policy_id == 3
    # packed in bits 224-255 of the platform word (word 2 + 2)
    assert int.from_bytes(spec.terms.pack()[4 * 32 : 5 * 32], "big") >> 224 == 3
    assert parse_spec(DVP_EXAMPLE, **kwargs).terms.policy_id == 0
    with pytest.raises((SpecError, TermsError), match="compliance.policy"):
        parse_spec(DVP_EXAMPLE, sets={"compliance.policy": str(2**32)}, **kwargs)
