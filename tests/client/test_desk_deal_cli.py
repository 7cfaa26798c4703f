"""Desks from the CLI, on a real anvil (subprocesses, as in test_desk_cli.py): the registry the desk
commands use is the one the recorded factory serves, desk deals are created and refused under the
desk's rules (`nexotc deal create --desk`), and admin actions report what they did (or that the desk
already is as asked, sending nothing). The tests share one node and run in order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import ROOT, Cli, Result, assert_one_line_error, node_cli
from eth_utils import keccak, to_checksum_address

DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ADMIN = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # test:9
TRADER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # test:2, the example's seller
KEY = "ethereum:local:31337"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-desk-deals"), deploy=True) as c:
        yield c


def factory_registry(cli: Cli) -> str:
    """The factory's desk_registry(), asked to the node directly."""
    selector = "0x" + keccak(text="desk_registry()")[:4].hex()
    word = cli.rpc("eth_call", [{"to": cli.state["deployment"]["factory"], "data": selector}, "latest"])
    return to_checksum_address("0x" + word[-40:])


def nonce(cli: Cli, address: str) -> int:
    return int(cli.rpc("eth_getTransactionCount", [address, "latest"]), 16)


def test_desk_commands_use_the_registry_the_factory_serves(cli: Cli) -> None:
    bound = factory_registry(cli)
    desks = cli.home / "desks.json"
    assert json.loads(desks.read_text())[KEY]["address"] == bound
    before = desks.read_text()

    # a new registry would never serve desk deals: refused, nothing recorded or deployed
    sent = nonce(cli, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    refused = cli("desk", "deploy", "--force", "--account", "test:0")
    assert_one_line_error(refused, f"serves the desk registry {bound}", "nexotc deploy --force --new-desk-registry")
    assert desks.read_text() == before and nonce(cli, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266") == sent

    created = cli.ok(
        "desk", "create", "--admin", "test:9", "--fee-recipient", "test:0", "--max-fee-bps", "30",
        "--introducer-cap-bps", "20", "--invite-only", "--asset", "WBTC", "--account", "test:3", "--json",
    ).json()  # fmt: skip
    assert created["desk_id"] == 1 and created["registry"] == bound and "warnings" not in created

    # the registry is read from the factory, not from desks.json
    desks.unlink()
    shown = cli.ok("desk", "show", "1", "--json").json()
    assert shown["registry"] == bound and shown["admin"] == ADMIN
    again = cli.ok("desk", "deploy", "--account", "test:0", "--json").json()
    assert again["already_deployed"] is True and again["address"] == bound and again["recorded"] is False
    assert not desks.exists()


def test_desk_deals_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    def create(*extra: str, account: str = "test:2", terms: Path = DVP_EXAMPLE) -> Result:
        return cli("deal", "create", "--terms", terms, "--desk", "1", "--account", account, *extra)

    outsider = cli("deal", "create", "--terms", DVP_EXAMPLE, "--desk", "1", "--account", "test:5")
    assert_one_line_error(outsider, "desk #1 refuses this deal from", "not a desk member")
    assert_one_line_error(create("--fund"), "--fund is not available with --desk")
    cli.ok("desk", "add-member", "1", "test:2", "--role", "trader", "--account", "test:9")
    sent = nonce(cli, TRADER)

    high_fee = tmp_path / "high-fee.yaml"
    high_fee.write_text(DVP_EXAMPLE.read_text().replace("desk_bps: 25", "desk_bps: 40"))
    assert_one_line_error(create(terms=high_fee), "desk #1 refuses this deal", "desk fee above schedule")
    assert_one_line_error(create(), "desk #1 refuses this deal", "asset not allowed")  # USDT is not listed
    cli.ok("desk", "set-assets", "1", "--allow", "USDT", "--account", "test:9")
    assert_one_line_error(create(), "desk #1 refuses this deal", "counterparty not invited")  # buyer test:1
    cli.ok("desk", "add-member", "1", "test:1", "--role", "client", "--account", "test:9")
    cli.ok("desk", "suspend", "1", "--account", "test:9")
    assert_one_line_error(create(), "desk #1 refuses this deal", "desk suspended")
    assert_one_line_error(create("--dry-run"), "desk suspended")
    assert_one_line_error(
        cli("deal", "create", "--terms", DVP_EXAMPLE, "--desk", "7", "--account", "test:2"), "no desk #7"
    )
    # nothing was sent by the refused creations, and no deal exists
    assert nonce(cli, TRADER) == sent
    assert cli.ok("deal", "list", "--json").json() == []

    cli.ok("desk", "unsuspend", "1", "--account", "test:9")
    checked = create("--dry-run", "--json")
    assert checked.code == 0, checked.err
    assert checked.json()["dry_run"] is True and checked.json()["desk_id"] == 1
    assert nonce(cli, TRADER) == sent
    made = create("--json")
    assert made.code == 0, made.err
    deal = made.json()
    assert deal["desk_id"] == 1 and deal["desk_registry"] == factory_registry(cli)
    assert [e["name"] for e in deal["events"]] == ["DealCreated", "DeskDealCreated"]
    assert deal["events"][1]["args"]["desk_id"] == 1
    assert [d["deal"] for d in cli.ok("deal", "list", "--json").json()] == [deal["deal"]]


def test_compliance_screens_wallets_out_of_new_desk_deals(cli: Cli, tmp_path: Path) -> None:
    buyer = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # test:1, the example's buyer
    officer = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # test:3
    existing = cli.ok("deal", "list", "--json").json()[-1]["deal"]
    # only the admin or a compliance member screens; nothing is sent otherwise
    sent = nonce(cli, officer)
    assert_one_line_error(cli("desk", "screen", "1", "test:1", "--account", "test:3"), "neither desk #1's admin nor")
    assert nonce(cli, officer) == sent
    cli.ok("desk", "add-member", "1", "test:3", "--role", "compliance", "--account", "test:9")
    listing = tmp_path / "sanctions.txt"
    listing.write_text(f"# a screening list\n{buyer}  # test:1\n\n0x{'ab' * 20}\n")
    screened = cli.ok("desk", "screen", "1", "--file", listing, "--account", "test:3", "--json").json()
    assert [e["name"] for e in screened["events"]] == ["Screened", "Screened"]
    shown = cli.ok("desk", "show", "1", "--json").json()
    assert shown["screened"] == [buyer, to_checksum_address("0x" + "ab" * 20)]
    # a new deal with the buyer is refused, named, nothing sent; the existing deal is untouched
    sent = nonce(cli, TRADER)
    refused = cli("deal", "create", "--terms", DVP_EXAMPLE, "--desk", "1", "--account", "test:2")
    assert_one_line_error(refused, "desk #1 refuses this deal", "party screened out by the desk", f"({buyer} (buyer")
    assert nonce(cli, TRADER) == sent
    assert cli.ok("deal", "show", existing, "--json").json()["desk_id"] == 1
    # already as asked: left out and named, or nothing sent at all; bad list lines are named
    again = cli.ok("desk", "screen", "1", "test:1", "--account", "test:3", "--json").json()
    assert again["changed"] is False and buyer in again["state"]
    bad = tmp_path / "bad.txt"
    bad.write_text("0x1234\n")
    assert_one_line_error(cli("desk", "screen", "1", "--file", bad, "--account", "test:3"), "line 1: not an address")
    bad.write_bytes(f"{buyer}\n".encode("utf-16"))
    assert_one_line_error(cli("desk", "screen", "1", "--file", bad, "--account", "test:3"), "not UTF-8 text")
    # a long list goes in several transactions, reported as one JSON document
    many = tmp_path / "many.txt"
    many.write_text("\ufeff" + "\n".join(f"0x{i:040x}" for i in range(1, 71)))  # with a byte-order mark
    sent = cli.ok("desk", "screen", "1", "--file", many, "--account", "test:3", "--json").json()
    assert len(sent["transactions"]) == 2 and len(sent["events"]) == 70 and len(sent["wallets"]) == 70
    # the trader itself: it creates no desk deal while screened (and the officer is told)
    trader_screened = cli("desk", "screen", "1", "test:2", "--account", "test:3")
    assert trader_screened.code == 0 and "is a trader of the desk" in trader_screened.err
    refused = cli("deal", "create", "--terms", DVP_EXAMPLE, "--desk", "1", "--dry-run", "--account", "test:2")
    assert_one_line_error(refused, "trader screened out by the desk", f"{TRADER} (the trader)")
    cli.ok("desk", "screen", "1", "test:2", "--unscreen", "--account", "test:3")
    cli.ok("desk", "screen", "1", "test:1", "--unscreen", "--account", "test:9")
    still = cli.ok("desk", "show", "1", "--json").json()["screened"]
    assert buyer not in still and len(still) == 71 and still[0] == to_checksum_address("0x" + "ab" * 20)
    assert cli("deal", "create", "--terms", DVP_EXAMPLE, "--desk", "1", "--dry-run", "--account", "test:2").code == 0


def test_admin_headlines_repeats_fee_warning_and_calldata(cli: Cli) -> None:
    public = cli.ok("desk", "set-access", "1", "public", "--account", "test:9").out
    assert "desk #1: access: public" in public and "invite" not in public.splitlines()[0]
    sent = nonce(cli, ADMIN)
    again = cli.ok("desk", "set-access", "1", "public", "--account", "test:9")
    assert again.out.strip() == "desk #1: already public; nothing sent"
    repeat = cli.ok("desk", "unsuspend", "1", "--account", "test:9", "--json").json()
    assert repeat == {"desk_id": 1, "method": "set_suspended", "changed": False, "state": "active (not suspended)"}
    assert nonce(cli, ADMIN) == sent

    suspended = cli.ok("desk", "suspend", "1", "--account", "test:9").out
    assert suspended.startswith("desk #1: suspended")
    unsuspended = cli.ok("desk", "unsuspend", "1", "--account", "test:9").out
    assert unsuspended.startswith("desk #1: unsuspended") and "SuspensionSet(desk_id=1, suspended=False)" in unsuspended


def test_a_fee_schedule_that_cannot_be_used_in_full_is_warned_about(cli: Cli) -> None:
    # the registry accepts each cap up to 1000 bps; the factory caps their sum per deal: a warning
    fees = cli.ok("desk", "set-fees", "1", "--max-fee-bps", "900", "--introducer-cap-bps", "200", "--account", "test:9")
    warning = fees.err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: ") and "1100 bps" in warning[0], fees.err
    assert "desk #1: fees: desk fee <= 900 bps, introducers <= 200 bps" in fees.out
    shown = cli.ok("desk", "show", "1", "--json").json()
    assert (shown["max_desk_fee_bps"], shown["introducer_cap_bps"]) == (900, 200)


def test_calldata_prints_the_msig_command_unfolded_with_the_admin(cli: Cli) -> None:
    # --calldata for a desk whose admin is an account: the call, and no msig command (it sends it itself)
    sent = nonce(cli, ADMIN)
    call = cli.ok("desk", "suspend", "1", "--calldata", "--json").json()
    assert call["admin"] == ADMIN and call["propose"] is None and call["data"].startswith("0x")
    human = cli.ok("desk", "suspend", "1", "--calldata").out
    assert f"the desk's admin {ADMIN} is an account, not a multisig" in human and "msig propose" not in human
    assert nonce(cli, ADMIN) == sent
    # a multisig admin: the msig command on one unfolded line, with the desk's real admin
    wallet = cli.ok(
        "msig", "create", "--owner", "test:1", "--owner", "test:2", "--threshold", "1", "--account", "test:0", "--json"
    ).json()["wallet"]
    desk_id = cli.ok(
        "desk", "create", "--admin", wallet, "--fee-recipient", "test:0", "--max-fee-bps", "30",
        "--introducer-cap-bps", "20", "--account", "test:3", "--json",
    ).json()["desk_id"]  # fmt: skip
    call = cli.ok("desk", "suspend", str(desk_id), "--calldata", "--json").json()
    assert call["admin"] == wallet and call["propose"].startswith(f"nexotc msig propose {wallet} --to ")
    human = cli.ok("desk", "suspend", str(desk_id), "--calldata").out
    lines = [line.strip() for line in human.splitlines()]
    assert call["propose"] in lines and "WALLET" not in human


def test_desk_offers_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    """`offer create --desk`: the desk's rules are checked when the offer is signed and again on acceptance,
    which makes a desk deal; a counter keeps the desk. Desk #1 is public by now, test:2 its trader, test:1 a
    client."""
    # a maker outside the desk offering to a client: neither side trades for the desk
    outsider = cli(
        "offer", "create", "--terms", DVP_EXAMPLE, "--set", "SELLER=test:5", "--desk", "1", "--account", "test:5",
    )  # fmt: skip
    assert_one_line_error(
        outsider, "desk #1 refuses this deal", "neither the maker", "nor the taker", "is a desk trader"
    )
    assert_one_line_error(
        cli("offer", "create", "--terms", DVP_EXAMPLE, "--desk", "7", "--account", "test:2"), "desk #7 does not exist"
    )
    made = cli.ok(
        "offer", "create", "--terms", DVP_EXAMPLE, "--desk", "1", "--account", "test:2", "--approve",
        "--out", tmp_path / "desk-offer.json", "--json",
    ).json()  # fmt: skip
    assert made["desk_id"] == 1
    link = cli.ok("offer", "invite", tmp_path / "desk-offer.json").out.splitlines()[0]
    shown = cli.ok("offer", "open", link, "--account", "test:1", "--json").json()
    assert shown["desk_id"] == 1 and shown["acceptable"] is True, shown["problems"]
    assert "#1: a desk deal" in cli.ok("offer", "open", link).out
    # the desk suspends: the offer cannot be accepted (named before anything is sent), then it can again
    cli.ok("desk", "suspend", "1", "--account", "test:9")
    refused = cli("offer", "accept", link, "--account", "test:1", "--fund")
    assert_one_line_error(refused, "desk #1 refuses this deal: desk suspended")
    cli.ok("desk", "unsuspend", "1", "--account", "test:9")
    deal = cli.ok("offer", "accept", link, "--account", "test:1", "--fund", "--json").json()["deal"]
    shown_deal = cli.ok("deal", "show", deal, "--json").json()
    assert shown_deal["desk_id"] == 1
    assert "desk: #1" in cli.ok("deal", "show", deal).out
    # a public desk offer on an invite-only desk: open to its members, refused (named) for anyone else
    cli.ok("desk", "set-access", "1", "invite-only", "--account", "test:9")
    public = cli.ok(
        "offer", "create", "--terms", DVP_EXAMPLE, "--desk", "1", "--public", "--account", "test:2", "--approve",
        "--json",
    ).json()  # fmt: skip
    link = cli.ok("offer", "invite", public["file"]).out.splitlines()[0]
    assert cli.ok("offer", "open", link, "--json").json()["problems"] == []
    assert_one_line_error(cli("offer", "open", link, "--account", "test:5"), "desk #1 refuses", "not invited")
    cli.ok("desk", "set-access", "1", "public", "--account", "test:9")
