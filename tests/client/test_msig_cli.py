"""`nexotc msig ...`: a 2-of-3 wallet on a real anvil started by `nexotc node start` (subprocesses):
created through the MultiSigFactory that `nexotc deploy` records, an ERC-20 transfer proposed,
signed by two owners to files (in-process: signing needs no node), refused below the threshold,
executed; then a batch signed on the spot with --sign-with. The wrappers
(nexotc_client.chain.multisig) and the --call helper are tested directly on ape's test network."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, free_port, node_cli
from eth_abi import encode

from nexotc_client.chain import Deployment, NexotcError, Registry, deploy_factory
from nexotc_client.chain.multisig import (
    MultiSigWallet,
    Proposal,
    WalletFactory,
    deploy_wallet_factory,
    erc20_transfer,
    sign_proposal,
    signature_from_json,
    signature_to_json,
)
from nexotc_client.cli import run
from nexotc_client.cli.msig import build_call, erc20_transfer_call
from nexotc_client.multisig import Execution

OWNERS = {
    "test:1": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "test:2": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "test:3": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
}
TEST6 = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
TEST7 = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
USD = 10**6


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    state = {"dir": tmp_path_factory.mktemp("msig-files")}
    with node_cli(tmp_path_factory.mktemp("nexotc-msig"), state, deploy=True) as c:
        yield c


# ------------------------------------------------------------------- CLI
def test_deploy_records_the_multisig_factory_backward_compatibly(cli: Cli) -> None:
    deployed = cli.state["deployment"]
    registry_path = cli.home / "deployments.json"
    entry = json.loads(registry_path.read_text())["ethereum:local:31337"]
    assert entry["multisig_factory"] == deployed["multisig_factory"] and entry["multisig_factory_block"] > 0
    # a record written before the multisig existed: `deploy` adds the MultiSigFactory, keeps the rest
    old = {k: v for k, v in entry.items() if not k.startswith("multisig_factory")}
    registry_path.write_text(json.dumps({"ethereum:local:31337": old}))
    again = cli.ok("deploy", "--account", "test:0", "--json").json()
    assert again["already_deployed"] is True and again["multisig_factory_deployed"] is True
    assert again["factory"] == deployed["factory"] and again["tokens"] == deployed["tokens"]
    updated = json.loads(registry_path.read_text())["ethereum:local:31337"]
    assert updated["multisig_factory"] == again["multisig_factory"] != deployed["multisig_factory"]
    assert {k: v for k, v in updated.items() if not k.startswith("multisig_factory")} == old


def test_create_propose_sign_to_files_and_exec(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    files: Path = cli.state["dir"]
    usdt = cli.state["deployment"]["tokens"]["USDT"]
    owners_args = [arg for ref in OWNERS for arg in ("--owner", ref)]
    created = cli.ok(
        "msig", "create", *owners_args, "--threshold", "2", "--salt", "desk-1", "--account", "test:0", "--json"
    ).json()
    wallet = created["wallet"]
    ascending = sorted(OWNERS.values(), key=lambda a: int(a, 16))
    assert created["owners"] == ascending and created["threshold"] == 2
    assert [e["name"] for e in created["events"]] == ["MultiSigCreated"]
    shown = cli.ok("msig", "owners", wallet, "--json").json()
    assert (shown["owners"], shown["threshold"], shown["nonce"]) == (ascending, 2, 0)

    # fund the wallet: test:1 sends it 5,000 USDT (an unlocked anvil account)
    data = "0xa9059cbb" + encode(["address", "uint256"], [wallet, 5_000 * USD]).hex()
    cli.send({"from": OWNERS["test:1"], "to": usdt, "data": data})

    proposal_file = files / "p1.json"
    proposed = cli.ok(
        "msig", "propose", wallet, "--erc20-transfer", "USDT:test:6:1000.5", "--out", proposal_file, "--json"
    ).json()
    assert proposed["nonce"] == 0 and proposed["calls"][0]["target"] == usdt
    assert proposed["digest"] == json.loads(proposal_file.read_text())["digest"]

    # a non-owner is refused when the chain is reachable: no signature file
    stray = files / "sig-9.json"
    refused = cli("msig", "sign", proposal_file, "--account", "test:9", "--out", stray)
    assert_one_line_error(refused, "is not an owner of the wallet", wallet, "nothing written")
    assert not stray.exists()
    online = cli.ok("msig", "sign", proposal_file, "--account", "test:3", "--out", files / "sig-3.json", "--json")
    assert online.json()["ownership_checked"] is True

    # two owners sign, one file each (offline: in-process, no node: signed, but not checked)
    sig_files = []
    nowhere = f"http://127.0.0.1:{free_port()}"
    for ref in ("test:1", "test:2"):
        out = files / f"sig-{ref[-1]}.json"
        argv = ["msig", "sign", str(proposal_file), "--account", ref, "--out", str(out), "--rpc", nowhere, "--json"]
        assert run(argv) == 0
        signed = json.loads(capsys.readouterr().out)
        assert signed["signer"] == OWNERS[ref] and signed["digest"] == proposed["digest"]
        assert signed["ownership_checked"] is False and "no node answers" in signed["not_checked_because"]
        sig_files.append(out)

    below = cli("msig", "exec", proposal_file, sig_files[0], "--account", "test:9")
    assert_one_line_error(below, "1 owner signature(s) of the 2 the wallet needs", OWNERS["test:1"])
    assert cli.balance_of(usdt, TEST6) == 100_000_000 * USD  # nothing moved

    done = cli.ok("msig", "exec", proposal_file, *reversed(sig_files), "--account", "test:9", "--json").json()
    assert [e["name"] for e in done["events"]] == ["Executed", "Transfer"]
    assert done["events"][1]["args"]["value"] == 1_000_500_000
    # what the owners signed, decoded for them: the amount in human units and in base units
    assert proposed["summaries"] == [f"USDT {usdt}: transfer 1,000.5 USDT (1000500000 units) to {TEST6}"]
    assert cli.balance_of(usdt, TEST6) == 100_000_000 * USD + 1_000_500_000
    used = cli("msig", "sign", proposal_file, "--account", "test:3", "--out", stray)
    assert_one_line_error(used, "the proposal is for wallet nonce 0, the wallet is at 1: already executed")
    assert not stray.exists()

    # a batch signed on the spot by two local accounts (the first relays): a transfer and a self-call
    batch_file = files / "p2.json"
    batch_proposed = cli.ok(
        "msig", "propose", wallet, "--call", "USDT.transfer(test:7, 2000000)", "--call",
        "wallet.change_threshold(3)", "--call", "USDT.approve(test:8, 5)", "--deadline", "+1h", "--out", batch_file,
    ).out  # fmt: skip
    # --call amounts are raw units: the summary shows them decoded, in both forms
    assert f"transfer 2 USDT (2000000 units) to {TEST7}" in batch_proposed, batch_proposed
    assert f"wallet {wallet}: change_threshold(threshold=3)" in batch_proposed
    assert "to spend 0.000005 USDT (5 units)" in batch_proposed
    batch = cli.ok("msig", "exec", batch_file, "--sign-with", "test:3", "--sign-with", "test:1", "--json").json()
    assert batch["relayer"] == OWNERS["test:3"] and batch["nonce"] == 1
    assert [e["name"] for e in batch["events"]] == ["Executed", "Transfer", "ThresholdChanged", "Approval"]
    assert batch["events"][1]["args"]["receiver"] == TEST7
    assert cli.balance_of(usdt, TEST7) == 100_000_000 * USD + 2 * USD


def test_a_multisig_makes_an_offer_its_owners_sign(cli: Cli) -> None:
    """`offer create --maker MSIG`: the first owner's signature goes into the offer, `offer sign` adds the
    others'; below the threshold the offer is named incomplete, at it the taker accepts and the deal is funded
    from the multisig (which approved the factory with an execution)."""
    files: Path = cli.state["dir"]
    wbtc, factory = cli.state["deployment"]["tokens"]["WBTC"], cli.state["deployment"]["factory"]
    owners_args = [arg for ref in OWNERS for arg in ("--owner", ref)]
    wallet = cli.ok(
        "msig", "create", *owners_args, "--threshold", "2", "--salt", "offer-maker", "--account", "test:0", "--json"
    ).json()["wallet"]
    transfer = "0xa9059cbb" + encode(["address", "uint256"], [wallet, 10**8]).hex()
    cli.send({"from": OWNERS["test:2"], "to": wbtc, "data": transfer})
    offer_file = files / "msig-offer.json"
    terms = ["--terms", ROOT / "examples" / "dvp-wbtc-usdt.yaml", "--set", f"SELLER={wallet}", "--set", "BUYER=test:5",
             "--set", "base.amount=1", "--set", "quote.amount=65000"]  # fmt: skip

    assert_one_line_error(cli("offer", "create", *terms, "--maker", wallet, "--account", "test:9"), "is not an owner")
    assert_one_line_error(cli("offer", "create", *terms, "--maker", "test:4", "--account", "test:1"), "no contract at")
    made = cli.ok("offer", "create", *terms, "--maker", wallet, "--account", "test:1", "--out", offer_file, "--json")
    held = made.json()["multisig"]
    assert made.json()["maker"] == wallet and (held["signers"], held["missing"]) == ([OWNERS["test:1"]], 1)
    below = cli("offer", "open", offer_file, "--account", "test:5")
    assert_one_line_error(below, "2-of-3 multisig", "carries 1 of its owners'")
    assert "owner signatures incomplete" in below.out  # the report is shown to the owners still to sign
    # the multisig has not approved the factory yet: the hint is a complete msig command
    problems = cli("offer", "open", offer_file, "--account", "test:5", "--json").json()["problems"]
    hint = f"nexotc msig propose {wallet} --call '{wbtc}.approve({factory}, 100000000)' --out approve.json"
    assert any(hint in p for p in problems), problems
    # a copy changed after the first owner signed: its signature no longer verifies, and that is said
    changed = json.loads(offer_file.read_text())
    changed["expiry"] += 1
    (files / "msig-changed.json").write_text(json.dumps(changed))
    refused = cli("offer", "sign", files / "msig-changed.json", "--account", "test:3")
    assert_one_line_error(refused, "1 signature(s) on this offer do not verify as an owner's", "changed after")
    opened = cli("offer", "open", files / "msig-changed.json", "--account", "test:5")
    assert_one_line_error(opened, "owner signatures on this offer by the multisig", "changed after they signed")
    approval = files / "approve-factory.json"
    cli.ok("msig", "propose", wallet, "--call", f"WBTC.approve({factory}, 100000000)", "--out", approval)
    cli.ok("msig", "exec", approval, "--sign-with", "test:1", "--sign-with", "test:2")
    assert_one_line_error(cli("offer", "sign", offer_file, "--account", "test:9"), "is not an owner of the multisig")
    signed = cli.ok("offer", "sign", offer_file, "--account", "test:3", "--json").json()
    assert signed["multisig"]["missing"] == 0 and signed["file"] == str(offer_file)
    assert_one_line_error(cli("offer", "sign", offer_file, "--account", "test:3"), "has already signed this offer")
    shown = cli.ok("offer", "open", signed["link"], "--account", "test:5", "--json").json()
    assert shown["maker_signature"] == "contract" and shown["acceptable"] is True, shown["problems"]
    deal = cli.ok("offer", "accept", offer_file, "--account", "test:5", "--fund", "--json").json()["deal"]
    assert cli.balance_of(wbtc, deal) == 10**8 and cli.balance_of(wbtc, wallet) == 0


def test_offline_mistakes_print_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def check(argv: list[str], code: int, fragment: str) -> None:
        assert run([*argv, "--home", str(tmp_path)]) == code
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines

    check(["msig", "sign", str(tmp_path / "missing.json"), "--account", "test:1"], 1, "file not found")
    (tmp_path / "p.json").write_text('{"type": "something-else"}')
    check(["msig", "sign", str(tmp_path / "p.json"), "--account", "test:1"], 1, "not a nexotc multisig proposal")
    check(["msig", "exec", str(tmp_path / "p.json")], 1, "not a nexotc multisig proposal")
    check(["msig", "create", "--threshold", "2"], 2, "Missing option '--owner'")


# ------------------------------------------------- chain wrappers, in-process
@pytest.fixture(scope="module")
def wf(desk: Any) -> WalletFactory:
    return deploy_wallet_factory(desk)


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(
    wf: Any,
    usdt: Any,
    wbtc: Any,
    desk: Any,
    buyer: Any,
    seller: Any,
    lawyer: Any,
    attacker: Any,
    resolver: Any,
    introducer: Any,
) -> None:
    """Set up module fixtures before the first test (ape's isolation snapshots)."""


def _wallet(wf: WalletFactory, owners: list[Any], threshold: int, desk: Any, salt: str = "w") -> MultiSigWallet:
    return wf.create([o.address for o in owners], threshold, salt, desk)[0]


def test_wallet_create_sign_and_execute(wf, usdt, desk, buyer, seller, lawyer, attacker, chain, now):
    owners = [buyer, seller, lawyer]
    predicted = wf.predict([o.address for o in owners], 2, "w")
    wallet = _wallet(wf, owners, 2, desk)
    assert wallet.address == predicted and wallet.threshold() == 2 and wallet.nonce() == 0
    assert set(wallet.owners()) == {o.address for o in owners}
    with pytest.raises(NexotcError, match=f"already exists at {predicted}"):
        _wallet(wf, owners, 2, desk)
    with pytest.raises(NexotcError, match="invalid wallet configuration: threshold out of range"):
        _wallet(wf, [buyer], 2, desk)
    with pytest.raises(NexotcError, match="not a nexotc multisig wallet"):
        MultiSigWallet.at(usdt.address)

    usdt.mint(wallet.address, 10 * USD, sender=desk)
    call = erc20_transfer(usdt.address, attacker.address, 3 * USD)
    proposal = Proposal(chain.chain_id, wallet.address, Execution((call,), 0, now + 3_600), "pay")
    assert Proposal.from_json(json.loads(json.dumps(proposal.to_json()))) == proposal
    tampered = {**proposal.to_json(), "deadline": now + 7_200}
    with pytest.raises(NexotcError, match="does not match its digest"):
        Proposal.from_json(tampered)

    sigs = [sign_proposal(proposal, buyer), sign_proposal(proposal, seller)]
    document = signature_to_json(sigs[0], proposal)
    assert signature_from_json(document, proposal) == sigs[0]
    other = replace(proposal, execution=replace(proposal.execution, nonce=1))
    with pytest.raises(NexotcError, match="signs another proposal"):
        signature_from_json(document, other)
    with pytest.raises(NexotcError, match="is not over this proposal"):
        signature_from_json({**document, "signer": seller.address}, proposal)

    with pytest.raises(NexotcError, match=r"1 owner signature\(s\) of the 2 the wallet needs"):
        wallet.execute(proposal.execution, [sigs[0], sigs[0]], attacker)  # a duplicate counts once
    with pytest.raises(NexotcError, match=f"{attacker.address} is not an owner"):
        wallet.execute(proposal.execution, [sigs[0], sign_proposal(proposal, attacker)], attacker)
    result = wallet.execute(proposal.execution, list(reversed(sigs)), attacker)
    assert [e.name for e in result.events] == ["Executed", "Transfer"]
    assert usdt.balanceOf(attacker) == 3 * USD and wallet.nonce() == 1
    with pytest.raises(NexotcError, match="nonce 0, the wallet is at 1: already executed"):
        wallet.execute(proposal.execution, sigs, attacker)

    big = Proposal(
        chain.chain_id, wallet.address, Execution((erc20_transfer(usdt.address, desk.address, 8 * USD),), 1, now + 60)
    )
    big_sigs = [sign_proposal(big, buyer), sign_proposal(big, lawyer)]
    with pytest.raises(
        NexotcError, match="the wallet holds 7 USDT of token 0x[0-9a-fA-F]{40}, the transfers need 8 USDT"
    ):
        wallet.execute(big.execution, big_sigs, attacker)
    chain.pending_timestamp = now + 61
    with pytest.raises(NexotcError, match="deadline .* has passed"):
        wallet.execute(big.execution, big_sigs, attacker)


def test_call_helper_encodes_deal_wallet_and_token_calls(wf, usdt, dvp_terms, desk, buyer, seller, lawyer, tmp_path):
    from nexotc_client.chain.contracts import deal_container, instance

    wallet = _wallet(wf, [buyer, seller, lawyer], 2, desk, salt="calls")
    tokens = {"USDT": usdt.address}
    threshold = build_call("wallet.change_threshold(1)", wallet.address, tokens)
    assert threshold.target == wallet.address
    assert threshold.data == bytes(wallet.contract.change_threshold.encode_input(1))
    # the wallet named by its own address is the wallet, not a token
    assert build_call(f"{wallet.address.lower()}.change_threshold(1)", wallet.address, tokens) == threshold
    approve = build_call("USDT.approve(test:1, 1_000)", wallet.address, tokens)
    assert approve.target == usdt.address and approve.data == bytes(usdt.approve.encode_input(buyer.address, 1000))
    factory = deploy_factory(desk, registry=Registry(tmp_path / "deployments.json"))
    deal = factory.create(dvp_terms(), seller)
    release = build_call(f"{deal.address}.release(0)", wallet.address, tokens, factory)
    assert release.data == bytes(instance(deal.address, deal_container()).release.encode_input(0))
    assert build_call("#1.dispute(1, 'late delivery')", wallet.address, tokens, factory).target == deal.address
    by_address = build_call(f"{factory.address}.fund_deal({deal.address})", wallet.address, tokens, factory)
    assert by_address == build_call(f"factory.fund_deal({deal.address})", wallet.address, tokens, factory)
    transfer = erc20_transfer_call("USDT:test:3:1.5", tokens)
    assert transfer.data == bytes(usdt.transfer.encode_input("0x90F79bf6EB2c4f870365E785982E1f101E93b906", 1_500_000))
    for expr, message in (
        ("wallet.frobnicate()", "has no method 'frobnicate'"),
        ("wallet.change_threshold(1, 2)", "change_threshold takes 1 argument(s), got 2"),
        ("USDT.transfer", "expected TARGET.method(args)"),
        ("USDT.transfer(test:1, lots)", "'lots' is not a whole number"),
    ):
        with pytest.raises(NexotcError, match=re.escape(message)):
            build_call(expr, wallet.address, tokens, factory)
    with pytest.raises(NexotcError, match="expected TOKEN:TO:AMOUNT"):
        erc20_transfer_call("USDT:1", tokens)
    with pytest.raises(NexotcError, match="has more than 6 decimals"):
        erc20_transfer_call("USDT:test:3:0.0000001", tokens)


def test_deployment_records_without_the_multisig_read_and_write_unchanged() -> None:
    old = {
        "network": "ethereum:local:31337",
        "factory": "0x" + "11" * 20,
        "implementation": "0x" + "22" * 20,
        "block": 3,
        "block_hash": "0x" + "33" * 32,
        "tx_hash": "0x" + "44" * 32,
        "deployer": "0x" + "55" * 20,
        "timestamp": 1_700_000_000,
        "tokens": {},
    }
    record = Deployment.from_dict(old)
    assert record.multisig_factory is None and record.to_dict() == {
        **old,
        "factory": record.factory,
        "implementation": record.implementation,
        "deployer": record.deployer,
    }
    with_msig = replace(record, multisig_factory="0x" + "66" * 20, multisig_factory_block=4)
    assert Deployment.from_dict(with_msig.to_dict()) == with_msig


def test_call_summaries_decode_known_calls() -> None:
    from eth_abi import encode as abi_encode

    from nexotc_client.chain.contracts import container
    from nexotc_client.chain.multisig import TokenMeta, describe_call
    from nexotc_client.multisig import Call

    registry = "0x" + "11" * 20
    token = "0x" + "22" * 20
    known = {registry: ("desk registry", container("DeskRegistry").contract_type)}
    suspend = Call(registry, 0, bytes.fromhex("54f8cc84") + abi_encode(["uint256", "bool"], [1, True]))
    assert describe_call(suspend, known).endswith(": set_suspended(desk_id=1, suspended=True)")
    approve = Call(token, 0, bytes.fromhex("095ea7b3") + abi_encode(["address", "uint256"], [TEST7, 5]))
    assert describe_call(approve, known).endswith(f"approve {TEST7} to spend 5 units (raw, decimals unknown)")
    meta = TokenMeta("USDT", 6)
    assert describe_call(approve, known, lambda _: meta).endswith("to spend 0.000005 USDT (5 units)")
    unlimited = Call(token, 0, bytes.fromhex("095ea7b3") + abi_encode(["address", "uint256"], [TEST7, 2**256 - 1]))
    assert describe_call(unlimited, known, lambda _: meta).endswith("to spend unlimited")
    raw = Call(token, 7, b"\x12\x34")
    assert describe_call(raw, known) == f"{token} value 7 data 0x1234… (2 bytes)"
