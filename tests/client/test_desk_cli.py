"""Desks from Python and from the command line.

The `DeskRegistry` wrapper runs in-process on the test chain; the `nexotc desk` commands run as
subprocesses against an anvil started by `nexotc node start` on a free port (as in test_cli.py; a
subprocess costs a few seconds, so the CLI tests are few and each checks several things). Every
failure must be ONE line on stderr with a non-zero exit and no traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from clikit import Cli, assert_one_line_error, free_port, node_cli
from eth_utils import keccak

from nexotc_client.chain import NexotcError, NotDeployedError, RevertError
from nexotc_client.chain.desk import (
    OFF_CHAIN,
    DeskRecords,
    DeskRole,
    deploy_desk_registry,
    get_desk_registry,
    parse_roles,
    to_policy_id,
)
from nexotc_client.cli import run
from nexotc_client.terms import Leg, Terms, even_tranches

DAY = 86_400


# ----------------------------------------------------------------------------- pure helpers
def test_roles_and_policy_ids_parse():
    assert parse_roles("trader,approver") == DeskRole.TRADER | DeskRole.APPROVER
    assert parse_roles(" Client + COMPLIANCE ") == DeskRole.CLIENT | DeskRole.COMPLIANCE
    assert parse_roles("15") == parse_roles(15) == DeskRole(15)
    for bad, message in (("dealer", "unknown desk role 'dealer'"), ("0", "need at least one"), (16, "need at least")):
        with pytest.raises(NexotcError, match=message):
            parse_roles(bad)
    assert to_policy_id(None) == to_policy_id("") == to_policy_id("none") == to_policy_id(0) == b"\0" * 32
    assert to_policy_id(7) == to_policy_id("7") == to_policy_id("0x07") == (7).to_bytes(32, "big")
    assert to_policy_id("eu-mica-v1") == keccak(text="eu-mica-v1")
    with pytest.raises(NexotcError, match="policy id: not hex"):
        to_policy_id("0x" + "1" * 65)


# ---------------------------------------------------------------------- wrapper, in-process
@pytest.fixture(scope="module")
def records(tmp_path_factory) -> DeskRecords:
    return DeskRecords(tmp_path_factory.mktemp("nexotc") / "desks.json")


@pytest.fixture(scope="module")
def reg(desk, records):
    return deploy_desk_registry(desk, records)


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(reg, wbtc, usdt, weth, desk, buyer, seller, resolver, introducer, attacker, lawyer) -> None:
    """Set up every session/module fixture before the first test (ape's isolation snapshots)."""


def dvp(wbtc, usdt, buyer, seller, platform, resolver, now, desk_fee_bps=25, introducers=()) -> Terms:
    start = now + 100
    return Terms.build(
        base=Leg(wbtc.address, 10**8),
        quote=Leg(usdt.address, 65_000 * 10**6),
        buyer=buyer.address,
        seller=seller.address,
        platform=platform.address,
        resolver=resolver.address,
        tranches=even_tranches(10**8, 65_000 * 10**6, 1, start, DAY, DAY),
        funding_deadline=now + DAY,
        final_expiry=start + 10 * DAY,
        desk_fee_bps=desk_fee_bps,
        introducers=list(introducers),
        dispute_timeout=DAY,
    )


def test_wrapper_creates_administers_and_checks_a_desk(
    reg, records, desk, lawyer, attacker, buyer, seller, resolver, introducer, wbtc, usdt, weth, chain
):
    assert get_desk_registry(records).address == reg.address
    desk_id, created = reg.create_desk(
        lawyer, desk, 30, 20, sender=attacker, policy_id="eu-mica-v1", assets=[wbtc.address, usdt.address]
    )
    assert desk_id == 1 and [e.name for e in created.events] == ["DeskCreated", "AssetSet", "AssetSet"]
    result = reg.add_member(desk_id, seller.address, "trader,approver", sender=lawyer)
    assert result.events[0].args == {"desk_id": 1, "member": seller.address, "roles": 3, "previous_roles": 0}
    reg.add_member(desk_id, buyer.address, DeskRole.CLIENT, sender=lawyer)
    reg.set_assets(desk_id, sender=lawyer, allow=[weth.address, OFF_CHAIN], disallow=[usdt.address])
    reg.set_fees(desk_id, sender=lawyer, max_desk_fee_bps=25)  # recipient and cap kept
    reg.remove_member(desk_id, buyer.address, sender=lawyer)
    info = reg.desk(desk_id)
    assert (info.admin, info.fee_recipient, info.max_desk_fee_bps, info.introducer_cap_bps) == (
        lawyer.address,
        desk.address,
        25,
        20,
    )
    assert info.members == {seller.address: DeskRole.TRADER | DeskRole.APPROVER} and info.member_count == 1
    assert info.assets == [wbtc.address, weth.address, OFF_CHAIN] and info.asset_count == 3
    assert info.policy_id == "0x" + keccak(text="eu-mica-v1").hex() and info.has_policy
    assert info.to_dict()["assets"] == [wbtc.address, weth.address, "off-chain"]
    assert info.to_dict()["members"] == {seller.address: ["trader", "approver"]}

    # check_deal: the policy id, or the rule broken
    now = int(chain.pending_timestamp)
    terms = dvp(wbtc, weth, buyer, seller, desk, resolver, now)
    assert reg.check_deal(desk_id, seller.address, terms) == keccak(text="eu-mica-v1")
    with pytest.raises(RevertError, match="check_deal reverted: not a desk member"):
        reg.check_deal(desk_id, attacker.address, terms)
    with pytest.raises(RevertError, match="check_deal reverted: asset not allowed"):
        reg.check_deal(desk_id, seller.address, dvp(wbtc, usdt, buyer, seller, desk, resolver, now))
    with pytest.raises(RevertError, match="check_deal reverted: desk fee above schedule"):
        reg.check_deal(desk_id, seller.address, dvp(wbtc, weth, buyer, seller, desk, resolver, now, 26))

    # the admin moves in two steps; the wrapper simulates first, so a refused call sends nothing
    nonce = attacker.nonce
    with pytest.raises(RevertError, match="add_member reverted: not the desk admin"):
        reg.add_member(desk_id, attacker.address, "trader", sender=attacker)
    assert attacker.nonce == nonce
    reg.propose_admin(desk_id, desk.address, sender=lawyer)
    assert reg.desk(desk_id).pending_admin == desk.address
    reg.accept_admin(desk_id, sender=desk)
    assert reg.desk(desk_id).admin == desk.address and reg.desk(desk_id).pending_admin is None

    # the call a MultiSig admin would execute
    target, data = reg.call(*("set_suspended", *reg.args("set_suspended", desk_id, True)))
    assert target == reg.address
    assert data == bytes(reg.contract.set_suspended.encode_input(desk_id, True))


def test_wrapper_refuses_bad_input_before_sending(reg, desk, lawyer, wbtc):
    for call, message in (
        (lambda: reg.desk(5), r"no desk #5 \(the registry at 0x[0-9a-fA-F]{40} has 0\)"),
        (lambda: reg.desk(0), "desk id: expected a positive integer"),
        (lambda: reg.create_desk("0x1234", desk, 1, 1, sender=desk), "admin: not an address: '0x1234'"),
        (lambda: reg.create_desk(lawyer, desk, 1_001, 1, sender=desk), r"max desk fee: 1001 bps, must be within"),
        (lambda: reg.create_desk(lawyer, desk, 1, 1, sender=desk, assets=[wbtc.address] * 2), "listed twice"),
        (lambda: reg.create_desk(lawyer, desk, 1, 1, sender=desk, assets=[wbtc.address] * 33), "at most 32"),
    ):
        with pytest.raises(NexotcError, match=message):
            call()
    desk_id, _ = reg.create_desk(lawyer, desk, 1, 1, sender=desk)
    with pytest.raises(NexotcError, match="set assets: nothing to allow or disallow"):
        reg.set_assets(desk_id, sender=lawyer)
    with pytest.raises(RevertError, match="create_desk reverted: asset is not a contract"):
        reg.create_desk(lawyer, desk, 1, 1, sender=desk, assets=[lawyer.address])


def test_the_record_is_checked_against_the_chain(reg, records, tmp_path):
    with pytest.raises(NotDeployedError, match=r"no desk registry recorded for .* \(run `nexotc desk deploy`\)"):
        get_desk_registry(DeskRecords(tmp_path / "none.json"))
    stale = json.loads(records.path.read_text())
    for entry in stale.values():
        entry["block_hash"] = "0x" + "00" * 32
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    with pytest.raises(NotDeployedError, match="is not on this chain any more"):
        get_desk_registry(DeskRecords(tmp_path / "stale.json"))


# ------------------------------------------------------------------ CLI, needs no chain
def test_cli_mistakes_without_a_chain(tmp_path, capsys):
    home = ["--home", str(tmp_path)]
    zero = "0x" + "00" * 20

    def check(argv: list[str], code: int, fragment: str) -> None:
        assert run(argv) == code
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], captured.err

    check(["desk", "add-member", "1", zero, "--role", "dealer", *home], 1, "unknown desk role 'dealer'")
    check(["desk", "add-member", "1", zero, *home], 2, "Missing option '--role'")
    check(["desk", "set-fees", "1", *home], 2, "give --fee-recipient, --max-fee-bps and/or --introducer-cap-bps")
    check(["desk", "set-fees", "1", "--max-fee-bps", "1001", *home], 2, "1001 is not in the range 0<=x<=1000")
    check(["desk", "set-assets", "1", *home], 2, "give --allow and/or --disallow")
    check(["desk", "show", "0", *home], 2, "0 is not in the range x>=1")
    check(["desk", "create", "--admin", zero, *home], 2, "Missing option '--fee-recipient'")
    check(["desk", "show", "1", "--rpc", f"http://127.0.0.1:{free_port()}", *home], 1, "no node answers at")


# -------------------------------------------------------------------- CLI on a real anvil
@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-desk-home")) as c:
        yield c


def test_cli_desk_lifecycle(cli):
    """11 subprocesses: deploy, create, administer, refuse, show."""
    tokens = cli.ok("deploy", "--mock-tokens", "--account", "test:0", "--json").json()["tokens"]
    deployed = cli.ok("desk", "deploy", "--account", "test:0", "--json").json()
    # `nexotc deploy` already deployed the registry the factory serves; `desk deploy` finds it
    assert deployed["already_deployed"] is True
    recorded = json.loads((cli.home / "desks.json").read_text())["ethereum:local:31337"]
    assert recorded["address"] == deployed["address"] and recorded["block"] == deployed["block"] > 0

    # test:3 creates desk #1 for admin test:9; WBTC/USDT by symbol, off-chain legs, a policy as text
    created = cli.ok(
        "desk", "create", "--admin", "test:9", "--fee-recipient", "test:0", "--max-fee-bps", "30",
        "--introducer-cap-bps", "20", "--invite-only", "--policy-id", "eu-mica-v1",
        "--asset", "WBTC", "--asset", "usdt", "--asset", "off-chain", "--account", "test:3", "--json",
    ).json()  # fmt: skip
    assert created["desk_id"] == 1 and created["registry"] == deployed["address"]
    assert [e["name"] for e in created["events"]] == ["DeskCreated", "AssetSet", "AssetSet", "AssetSet"]
    added = cli.ok("desk", "add-member", "1", "test:10", "--role", "trader,approver", "--account", "test:9", "--json")
    assert added.json()["events"][0]["args"]["roles"] == 3
    cli.ok("desk", "set-assets", "1", "--allow", "WETH", "--disallow", "off-chain", "--account", "test:9")
    cli.ok("desk", "set-fees", "1", "--max-fee-bps", "50", "--account", "test:9")

    # a MultiSig admin takes the call instead: nothing is sent, no --account needed
    call = cli.ok("desk", "remove-member", "1", "test:10", "--calldata", "--json").json()
    assert call["target"] == deployed["address"] and call["value"] == 0 and call["method"] == "remove_member"
    assert call["data"].startswith("0x") and len(call["data"]) == 2 + 2 * (4 + 32 + 32)

    # mistakes: one line, the contract's reason; nothing sent
    assert_one_line_error(
        cli("desk", "add-member", "1", "test:11", "--role", "client", "--account", "test:5"),
        "add_member reverted: not the desk admin",
    )
    assert_one_line_error(
        cli("desk", "set-assets", "1", "--allow", "DOGE", "--account", "test:9"), "unknown asset 'DOGE'"
    )

    shown = cli.ok("desk", "show", "1", "--json").json()
    assert shown["desk_id"] == 1 and shown["access"] == "invite-only" and not shown["suspended"]
    assert (shown["max_desk_fee_bps"], shown["introducer_cap_bps"]) == (50, 20)
    assert shown["policy_id"] == "0x" + keccak(text="eu-mica-v1").hex()
    assert shown["assets"] == [tokens["WBTC"], tokens["USDT"], tokens["WETH"]] and shown["asset_count"] == 3
    assert list(shown["members"].values()) == [["trader", "approver"]] and shown["member_count"] == 1
    assert shown["pending_admin"] is None
    human = cli.ok("desk", "show", "1").out
    for fragment in ("invite-only", "desk fee <= 50 bps, introducers <= 20 bps", "WBTC", "WETH", "trader, approver"):
        assert fragment in human, human

    # asking for what already holds sends nothing (the contract would revert); a partly done change sends the rest
    def admin_txs() -> int:
        return int(cli.rpc("eth_getTransactionCount", [shown["admin"], "latest"]), 16)

    before = admin_txs()
    member = next(iter(shown["members"]))
    same = cli.ok("desk", "add-member", "1", member, "--role", "trader,approver", "--account", "test:9", "--json")
    assert same.json()["changed"] is False
    assert cli.ok("desk", "set-assets", "1", "--allow", "WBTC", "--account", "test:9").out.strip() == (
        "desk #1: already as asked: WBTC allowed; nothing sent"
    )
    assert admin_txs() == before
    partly = cli.ok("desk", "set-assets", "1", "--allow", "WBTC", "--disallow", "WETH", "--account", "test:9")
    assert "left out, already as asked: WBTC allowed" in partly.err and "disallowed WETH" in partly.out
    assert admin_txs() == before + 1
    assert cli.ok("desk", "show", "1", "--json").json()["assets"] == [tokens["WBTC"], tokens["USDT"]]
    cli.ok("desk", "set-assets", "1", "--allow", "WETH", "--account", "test:9")
