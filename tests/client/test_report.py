"""`nexotc report`: a trade and compliance report over many deals, read from the chain.

One module-scoped set of five deals on the test anvil, created on different days (chain time moves 2 days
between them), with different outcomes:
  #1 DVP, both tranches released (desk fee 25 bps + introducer 10 bps on the quote leg);
  #2 ESCROWED (BTC off chain): tranche 0 marked, approved and released, tranche 1 disputed and resolved
     (to the receiver, the funder and the resolver's fee);
  #3 a desk deal of desk #1 (DVP): tranche 0 refunded after its deadline, tranche 1 still held;
  #4 gated (a KYC policy): the buyer proved in the deal's scope (a real Groth16 proof) and funded, the seller did
     not (phase funding);
  #5 DVP, only the seller funded, cancelled after the funding deadline.
Every token the deals moved was minted for them, so the report's aggregates are checked against the wallets'
and escrows' token balances, not against the report's own arithmetic. The CLI runs as its own process (the fork
server of clikit.py) against the same anvil, with the module's home (its recorded factory) and --rpc.
"""

from __future__ import annotations

import copy
import csv
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clikit import Cli, assert_one_line_error
from kyckit import DAY, EU_PRO, Credentials, params

from nexotc_client.chain.deal import Deal, Split
from nexotc_client.chain.deployment import Registry, deploy_factory
from nexotc_client.chain.desk import DeskRecords, create_desk_deal, desk_registry_of
from nexotc_client.chain.errors import NexotcError
from nexotc_client.chain.factory import Factory
from nexotc_client.chain.kyc import KycRecords, deploy_kyc_registry
from nexotc_client.report import Report, build_report, csv_rows, parse_date, summarize
from nexotc_client.terms import Leg, LegId, Terms, even_tranches
from nexotc_client.zk.prover import Prover

BTC = 10**8
USD6 = 10**6
ZERO = "0x" + "00" * 20


@dataclass
class Trades:
    home: Path
    factory: Factory
    deals: list[Deal]  # #1 .. #5, in creation order
    deltas: dict[tuple[str, str], int]  # (token symbol, role) => balance change over the module's deals
    minted: dict[str, int]  # token symbol => minted (= deposited)
    wbtc: str
    usdt: str
    policy_id: int
    attested_until: int
    rpc: str


@pytest.fixture(scope="module")
def trades(tmp_path_factory, chain, accounts, desk, buyer, seller, resolver, introducer, wbtc, usdt) -> Trades:
    issuer = accounts[9]
    home = tmp_path_factory.mktemp("nexotc-report-home")
    kyc = deploy_kyc_registry(desk, records=KycRecords(home / "kyc.json"))
    factory = deploy_factory(desk, registry=Registry(home / "deployments.json"), kyc_registry=kyc.address)
    t0 = int(chain.blocks.head.timestamp)
    creds = Credentials.build(t0)
    kyc.set_issuer(issuer.address, True, "Acme KYC", desk)
    kyc.publish_root(creds.tree.root, issuer)
    policy_id, _ = kyc.register_policy(params(EU_PRO), "EU professional", desk)
    registry = desk_registry_of(factory.address, DeskRecords(home / "desks.json"))
    desk_id, _ = registry.create_desk(
        desk.address, desk.address, 50, 20, sender=desk, assets=[wbtc.address, usdt.address]
    )
    assert desk_id == 1
    registry.add_member(desk_id, seller.address, "trader", sender=desk)

    roles = {"desk": desk, "buyer": buyer, "seller": seller, "resolver": resolver, "introducer": introducer}
    tokens = {"WBTC": wbtc, "USDT": usdt}
    before = {(s, r): int(t.balanceOf(w)) for s, t in tokens.items() for r, w in roles.items()}
    minted = {"WBTC": 0, "USDT": 0}

    def mint(token, who, amount: int) -> None:
        token.mint(who, amount, sender=who)
        minted["WBTC" if token is wbtc else "USDT"] += amount

    def terms(n: int, base: Leg, quote: Leg, interval: int = 0, **kw: Any) -> Terms:
        now = int(chain.pending_timestamp)
        start = now + 100
        return Terms.build(
            base=base,
            quote=quote,
            buyer=buyer.address,
            seller=seller.address,
            platform=desk.address,
            resolver=resolver.address,
            tranches=even_tranches(base.amount, quote.amount, n, start, interval, DAY),
            funding_deadline=now + DAY,
            final_expiry=start + (n + 10) * DAY + interval * n,
            desk_fee_bps=25,
            introducers=[(introducer.address, 10)],
            resolver_fee_bps=100,
            **kw,
        ).validate(now)

    def later(days: int) -> None:
        chain.pending_timestamp = int(chain.pending_timestamp) + days * DAY
        chain.mine()

    deals: list[Deal] = []
    # 1: DVP, both tranches released
    t1 = terms(2, Leg(wbtc.address, 2 * BTC), Leg(usdt.address, 130_000 * USD6 + 3))
    mint(wbtc, seller, t1.base.amount)
    mint(usdt, buyer, t1.quote.amount)
    d1 = factory.create(t1, seller, salt="report-1", fund=True)
    d1.fund(buyer)
    chain.pending_timestamp = t1.tranches[0].unlock_time
    d1.release(0, desk)
    d1.release(1, desk)
    deals.append(d1)

    # 2: ESCROWED, one tranche released, one disputed and resolved three ways
    later(2)
    t2 = terms(
        2,
        Leg(ZERO, 10 * BTC, on_chain=False),
        Leg(usdt.address, 650_000 * USD6),
        markers=[seller.address],
        approvers=[buyer.address],
        signers=[buyer.address],
        fee_leg=LegId.QUOTE,
    )
    mint(usdt, buyer, t2.quote.amount)
    d2 = factory.create(t2, buyer, salt="report-2", fund=True)
    chain.pending_timestamp = t2.tranches[0].unlock_time
    d2.mark(0, "btc tx 1", seller)
    d2.approve(0, buyer)
    d2.release(0, buyer)
    d2.dispute(1, "short delivery", buyer)
    d2.resolve(1, Split(), Split.proportional(t2.tranches[1].quote_amount, 6_000, 100), resolver)
    deals.append(d2)

    # 3: a desk deal, tranche 0 refunded after its deadline, tranche 1 still held
    later(2)
    t3 = terms(2, Leg(wbtc.address, 3 * BTC), Leg(usdt.address, 195_000 * USD6), interval=5 * DAY)
    d3 = create_desk_deal(factory, desk_id, t3, seller, b"\x03" * 32)
    mint(wbtc, seller, t3.base.amount)
    mint(usdt, buyer, t3.quote.amount)
    d3.fund(seller)
    d3.fund(buyer)
    chain.pending_timestamp = t3.tranches[0].deadline + 1
    d3.refund(0, desk)
    deals.append(d3)

    # 4: gated; the buyer proves in the deal's scope and funds, the seller does not
    later(2)
    t4 = terms(1, Leg(wbtc.address, 1 * BTC), Leg(usdt.address, 65_000 * USD6), policy_id=policy_id)
    address = factory.predict(t4, seller.address, "report-4")
    now = int(chain.blocks.head.timestamp)
    until = now + 30 * DAY
    with Prover(progress=False) as prover:
        proof = creds.prove(prover, "swiss", buyer.address, int(address, 16), now, until)
    kyc.submit_proof(proof, policy_id, buyer)
    d4 = factory.create(t4, seller, salt="report-4")
    assert d4.address == address
    mint(usdt, buyer, t4.quote.amount)
    d4.fund(buyer)
    deals.append(d4)

    # 5: only the seller funds; cancelled after the funding deadline
    t5 = terms(1, Leg(wbtc.address, BTC // 2), Leg(usdt.address, 32_500 * USD6))
    mint(wbtc, seller, t5.base.amount)
    d5 = factory.create(t5, seller, salt="report-5", fund=True)
    chain.pending_timestamp = t5.funding_deadline + 1
    d5.cancel_unfunded(desk)
    deals.append(d5)
    chain.mine()

    deltas = {(s, r): int(t.balanceOf(w)) - before[(s, r)] for s, t in tokens.items() for r, w in roles.items()}
    return Trades(
        home=home,
        factory=factory,
        deals=deals,
        deltas=deltas,
        minted=minted,
        wbtc=wbtc.address,
        usdt=usdt.address,
        policy_id=policy_id,
        attested_until=until,
        rpc=str(chain.provider.uri),
    )


@pytest.fixture(scope="module")
def full(trades) -> Report:
    return build_report(trades.factory)


def cli_at(home: Path, trades: Trades) -> Cli:
    port = int(trades.rpc.rsplit(":", 1)[1].strip("/"))
    return Cli(home=home, port=port, state={})


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def asset(report: Report, token: str) -> dict[str, Any]:
    return next(a for a in report.totals()["assets"] if a["token"] == token)


# ------------------------------------------------------------------ the library
def test_each_deal_is_reported_as_the_chain_has_it(trades, full, chain):
    assert [d.index for d in full.deals] == [1, 2, 3, 4, 5] and full.factory_deals == 5
    assert [d.deal for d in full.deals] == [d.address for d in trades.deals]
    assert [d.phase for d in full.deals] == ["settled", "settled", "active", "funding", "cancelled"]
    assert [d.mode for d in full.deals] == ["dvp", "escrowed", "dvp", "dvp", "dvp"]
    assert [d.desk_id for d in full.deals] == [0, 0, 1, 0, 0]
    for d, deal in zip(full.deals, trades.deals, strict=True):
        assert d.created_at == int(chain.provider.get_block(d.created_block).timestamp)
        assert d.created_tx == deal.created.tx_hash
    assert len({day(d.created_at) for d in full.deals[:4]}) == 4  # four different days
    d1, d2, d3, d4, d5 = full.deals
    assert d1.tranches["released"] == 2 and d2.tranches["released"] == 1 and d2.tranches["resolved"] == 1
    assert (d3.tranches["refunded"], d3.tranches["pending"]) == (1, 1)
    assert (d2.disputes_opened, d2.disputes_resolved, d2.disputes_open) == (1, 1, 0)
    # legs: assets read on chain; the off-chain leg in units, its released units those of the released tranche
    assert (d1.base.symbol, d1.base.decimals, d1.quote.symbol, d1.quote.decimals) == ("WBTC", 8, "USDT", 6)
    assert not d2.base.on_chain and d2.base.token is None and d2.base.released == 5 * BTC
    assert d3.base.held == 3 * BTC // 2 and d3.quote.held == 97_500 * USD6
    assert d3.base.refunded == 3 * BTC // 2 and d3.quote.refunded == 97_500 * USD6
    assert (d5.base.deposited, d5.base.refunded, d5.base.held, d5.quote.deposited) == (BTC // 2, BTC // 2, 0, 0)
    # each on-chain escrow holds what the report says it holds
    for d in full.deals:
        for leg in d.legs:
            if leg.on_chain:
                assert leg.balance == leg.held + leg.owed, (d.index, leg.leg)
    # compliance: only #4 is gated; the buyer's attestation in the deal's scope, the seller has none
    assert [d.gated for d in full.deals] == [False, False, False, True, False]
    assert all(d.compliance is None for d in full.deals if not d.gated)
    gate = d4.compliance
    assert gate["policy_id"] == trades.policy_id and gate["scope"] == str(int(d4.deal, 16))
    buyer, seller = gate["principals"]
    assert (buyer["role"], buyer["attested_until"], buyer["attested_policy"]) == (
        "buyer",
        trades.attested_until,
        trades.policy_id,
    )
    assert buyer["compliant_now"] is True
    assert (seller["role"], seller["attested_until"], seller["compliant_now"]) == ("seller", None, False)


def test_aggregates_equal_what_the_tokens_did(trades, full):
    totals = full.totals()
    assert totals["deals"] == 5
    assert totals["by_phase"] == {"funding": 1, "active": 1, "settled": 2, "cancelled": 1, "expired": 0}
    assert (totals["gated"], totals["ungated"], totals["desk_deals"]) == (1, 4, 1)
    assert totals["disputes"] == {"opened": 1, "resolved": 1, "settled_by_default": 0, "open": 0}
    assert totals["conservation"] == {"ok": True, "failures": []}
    delta = trades.deltas
    usdt, wbtc = asset(full, trades.usdt), asset(full, trades.wbtc)
    # every commission and the resolver's fee are what the desk, the introducer and the resolver received
    assert usdt["fees"] == {
        "desk": delta["USDT", "desk"],
        "introducers": delta["USDT", "introducer"],
        "resolver": delta["USDT", "resolver"],
    }
    assert all(usdt["fees"].values())
    assert wbtc["fees"] == {"desk": 0, "introducers": 0, "resolver": 0}  # the fee leg is the quote leg
    # released volume: what the receivers got, commissions included; refunds: what went back to the funders
    assert usdt["to_receiver"] == delta["USDT", "seller"]
    assert usdt["released"] == delta["USDT", "seller"] + delta["USDT", "desk"] + delta["USDT", "introducer"]
    assert wbtc["released"] == wbtc["to_receiver"] == delta["WBTC", "buyer"] == 2 * BTC
    assert usdt["refunded"] == delta["USDT", "buyer"] and wbtc["refunded"] == delta["WBTC", "seller"]
    assert usdt["deposited"] == trades.minted["USDT"] and wbtc["deposited"] == trades.minted["WBTC"]
    # what the escrows still hold is their token balance
    from nexotc_client.chain.contracts import erc20

    for a, token in ((usdt, trades.usdt), (wbtc, trades.wbtc)):
        assert a["held"] == sum(int(erc20(token).balanceOf(d.address)) for d in trades.deals)
        assert a["deposited"] == a["released"] + a["to_resolver"] + a["refunded"] + a["held"] and a["conserved"]
    # human units, exact: 2 WBTC released; 130,000.000003 + 325,000 + 60% of (325,000 - 1%) USDT
    assert wbtc["amounts"]["released"] == "2"
    assert usdt["released"] == 130_000 * USD6 + 3 + 325_000 * USD6 + 193_050 * USD6
    assert usdt["amounts"]["released"] == "648050.000003"
    assert usdt["amounts"]["fees"]["resolver"] == "3250"


def test_progress_is_reported_per_deal(trades):
    calls: list[tuple[int, int]] = []
    build_report(trades.factory, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_attestations_are_read_as_of_the_snapshot_block(trades, full, chain):
    """The chain moves on while the report runs (here: past the buyer's attestation, right after the first
    deal): deal #4's gate is still reported as of the snapshot, like everything else in it."""

    def move_on(done: int, total: int) -> None:
        if done == 1:
            chain.pending_timestamp = trades.attested_until + 1
            chain.mine()

    report = build_report(trades.factory, progress=move_on)
    assert chain.blocks.head.number > report.block
    buyer = report.deals[3].compliance["principals"][0]
    assert (buyer["attested_until"], buyer["compliant_now"]) == (trades.attested_until, True)
    # at the head the attestation has ended: the snapshot is what kept it
    assert trades.deals[3].compliance()["principals"][0]["compliant_now"] is False


def test_a_dvp_resolution_reports_each_tokens_resolver_fee_apart(
    trades, chain, desk, buyer, seller, resolver, wbtc, usdt
):
    """Both legs escrowed, a tranche disputed and resolved with a resolver's fee on each leg: the payout's
    commissions hold only the fee leg's token; the other leg's fee is reported in its own token."""
    now = int(chain.pending_timestamp)
    t = Terms.build(
        base=Leg(wbtc.address, BTC),
        quote=Leg(usdt.address, 65_000 * USD6),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=even_tranches(BTC, 65_000 * USD6, 1, now + 100, 0, DAY),
        funding_deadline=now + DAY,
        final_expiry=now + 100 + 11 * DAY,
        desk_fee_bps=25,
        resolver_fee_bps=100,
    ).validate(now)
    wbtc.mint(seller, t.base.amount, sender=seller)
    usdt.mint(buyer, t.quote.amount, sender=buyer)
    deal = trades.factory.create(t, seller, salt="report-dvp-dispute", fund=True)
    deal.fund(buyer)
    deal.dispute(0, "late", buyer)
    base_split = Split.proportional(t.base.amount, 5_000, 100)
    quote_split = Split.proportional(t.quote.amount, 5_000, 100)
    deal.resolve(0, base_split, quote_split, resolver)

    report = build_report(trades.factory)
    mine = next(d for d in report.deals if d.deal == deal.address)
    (payout,) = mine.payouts
    assert payout.resolver == {"base": base_split.to_resolver, "quote": quote_split.to_resolver}
    assert payout.fees["resolver"] == quote_split.to_resolver  # the fee leg (quote) only, never a sum of tokens
    assert payout.fees["resolver"] != base_split.to_resolver + quote_split.to_resolver
    assert not mine.problems
    assert (mine.base.to_resolver, mine.quote.to_resolver) == (base_split.to_resolver, quote_split.to_resolver)
    assert mine.base.released + mine.base.to_resolver + mine.base.refunded == t.base.amount


def test_desk_and_date_filters_select_the_deals(trades, full):
    created = [d.created_at for d in full.deals]
    by = {
        "desk 1": build_report(trades.factory, desk_id=1),
        "days of #2..#3": build_report(
            trades.factory, since=parse_date(day(created[1]), "since"), until=parse_date(day(created[2]), "until", True)
        ),
        "from #4's day": build_report(trades.factory, since=parse_date(day(created[3]), "since")),
        "to #1's day": build_report(trades.factory, until=parse_date(day(created[0]), "until", end=True)),
        "exact instants": build_report(trades.factory, since=created[1], until=created[2]),
        "just after #2": build_report(trades.factory, since=created[1] + 1, until=created[2] - 1),
        "desk 1 before #3": build_report(trades.factory, desk_id=1, until=created[2] - 1),
    }
    selected = {name: [d.index for d in r.deals] for name, r in by.items()}
    assert selected == {
        "desk 1": [3],
        "days of #2..#3": [2, 3],
        "from #4's day": [4, 5],
        "to #1's day": [1],
        "exact instants": [2, 3],
        "just after #2": [],
        "desk 1 before #3": [],
    }
    # the aggregates follow the selection
    desk_only = by["desk 1"].totals()
    assert desk_only["deals"] == 1 and desk_only["desk_deals"] == 1 and desk_only["by_phase"]["active"] == 1
    assert asset(by["desk 1"], trades.usdt)["held"] == 97_500 * USD6
    assert by["just after #2"].totals()["assets"] == []
    with pytest.raises(
        NexotcError, match=r"no desk #7 \(the desk registry at 0x[0-9a-fA-F]{40} of this factory has 1\)"
    ):
        build_report(trades.factory, desk_id=7)
    with pytest.raises(NexotcError, match="is after until"):
        build_report(trades.factory, since=created[2], until=created[1])


def test_dates_parse_as_whole_utc_days_or_instants():
    assert parse_date("2026-03-01", "--since") == 1772323200
    assert parse_date("2026-03-01", "--until", end=True) == 1772323200 + DAY - 1
    assert parse_date("2026-03-01T12:00:00Z", "--since") == 1772323200 + 12 * 3600
    assert parse_date("2026-03-01T12:00:00", "--until", end=True) == 1772323200 + 12 * 3600  # naive = UTC
    assert parse_date("2026-03-01T13:00:00+01:00", "--since") == 1772323200 + 12 * 3600
    for bad in ("yesterday", "2026-13-01", "01/03/2026", ""):
        with pytest.raises(NexotcError, match=r"^--since: not a date: .* \(expected YYYY-MM-DD or an ISO 8601"):
            parse_date(bad, "--since")
    assert parse_date("9999-12-31", "--until", end=True) == 253402300799  # the last second there is
    for edge in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):  # shifted out of years 1..9999
        with pytest.raises(NexotcError, match="is out of the range of dates"):
            parse_date(edge, "--until")


def test_a_leg_whose_deposits_are_not_accounted_for_is_flagged(full):
    """Conservation is checked per leg against the deal's own `held` view: a tampered count is named."""
    from nexotc_client.report import _check

    d3 = copy.deepcopy(full.deals[2])
    d3.problems.clear()
    d3.quote.held += 1
    _check(d3)
    assert len(d3.problems) == 2 and d3.problems[0].startswith("quote leg (USDT): deposited 195000000000 != released")
    # ... and the escrow's token balance no longer covers what the deal says it holds
    assert "the escrow's balance 97500000000 is below what it holds and owes (97500000001 + 0)" in d3.problems[1]
    d5 = copy.deepcopy(full.deals[4])
    d5.problems.clear()
    d5.base.balance = -1
    _check(d5)
    assert "the escrow's balance -1 is below what it holds and owes" in d5.problems[0]
    totals = summarize([full.deals[0], d3, d5])
    assert totals["conservation"]["ok"] is False
    assert [(f["index"], f["deal"]) for f in totals["conservation"]["failures"]] == [
        (3, d3.deal),
        (3, d3.deal),
        (5, d5.deal),
    ]
    assert next(a for a in totals["assets"] if a["symbol"] == "USDT")["conserved"] is False


# ------------------------------------------------------------------ the CLI
def test_cli_writes_json_csv_and_png(trades, full, tmp_path):
    cli = cli_at(trades.home, trades)
    out, table, png = tmp_path / "report.json", tmp_path / "deals.csv", tmp_path / "report.png"
    args = ["report", "--out", out, "--csv", table, "--plot", png, "--rpc", trades.rpc]
    printed = cli.ok(*args, "--json").json()
    written = json.loads(out.read_text())
    assert printed.pop("files") == {"out": str(out), "csv": str(table), "plot": str(png)}
    assert printed == written
    assert written["format"] == "nexotc-report/1" and written["factory"] == trades.factory.address
    assert written["totals"] == json.loads(json.dumps(full.totals()))
    assert [d["deal"] for d in written["deals"]] == [d.address for d in trades.deals]
    assert written["deals"][1]["legs"]["quote"]["fees"]["resolver"] == 3_250 * USD6
    assert written["deals"][3]["compliance"]["principals"][0]["attested_until"] == trades.attested_until

    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and rows == [{k: str(v) for k, v in r.items()} for r in csv_rows(full)]
    r1, r2, r3, r4, r5 = rows
    assert (r1["index"], r1["deal"], r1["phase"], r1["desk_id"]) == ("1", trades.deals[0].address, "settled", "")
    assert (r1["quote_asset"], r1["quote_released"], r1["base_released"]) == ("USDT", "130000.000003", "2")
    assert r1["quote_desk_fee"] == "325" and r1["quote_introducer_fees"] == "130"
    assert (r2["base_asset"], r2["base_decimals"], r2["base_released"]) == ("off chain", "", str(5 * BTC))
    assert (r2["disputes_opened"], r2["disputes_resolved"], r2["quote_to_resolver"]) == ("1", "1", "3250")
    assert (r3["desk_id"], r3["phase"], r3["quote_held"], r3["base_refunded"]) == ("1", "active", "97500", "1.5")
    assert (r4["gated"], r4["policy_id"], r4["buyer_compliant"], r4["seller_compliant"]) == (
        "yes",
        str(trades.policy_id),
        "yes",
        "no",
    )
    assert r4["buyer_attested_until"] == datetime.fromtimestamp(trades.attested_until, tz=UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert (r5["phase"], r5["base_deposited"], r5["base_refunded"], r5["conserved"]) == (
        "cancelled",
        "0.5",
        "0.5",
        "yes",
    )

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 600 and len(data) > 20_000

    # nothing is overwritten without --force, and a refusal reads nothing and writes nothing
    before = {p: p.read_bytes() for p in (out, table, png)}
    for option, path in (("--out", out), ("--csv", table), ("--plot", png)):
        refused = cli("report", option, path, "--rpc", trades.rpc)
        assert_one_line_error(refused, f"{path} exists: pass --force to overwrite it")
    assert {p: p.read_bytes() for p in (out, table, png)} == before
    again = cli.ok(*args, "--force", "--desk", "1")
    assert [d["index"] for d in json.loads(out.read_text())["deals"]] == [3]
    assert "report.json" in again.out and len(list(csv.DictReader(table.open()))) == 1


def test_cli_summary_and_filters(trades, full):
    cli = cli_at(trades.home, trades)
    text = cli.ok("report", "--rpc", trades.rpc).out
    for fragment in (
        f"trade report of factory {trades.factory.address}",
        "5 of the factory's 5 deal(s)",
        trades.deals[3].address,
        "phases: 1 funding, 1 active, 2 settled, 1 cancelled",
        "compliance: 1 gated, 4 ungated; desk deals: 1",
        "disputes: 1 opened, 1 resolved by the resolver, 0 settled by default, 0 open",
        "conservation holds",
        "648,050.000003",
        "compliance: each principal's attestation in the deal's scope",
        datetime.fromtimestamp(trades.attested_until, tz=UTC).strftime("until %Y-%m-%dT%H:%M:%SZ"),
    ):
        assert fragment in text, (fragment, text)
    assert "{" not in text
    created = [d.created_at for d in full.deals]
    picked = cli.ok("report", "--since", day(created[1]), "--until", day(created[2]), "--rpc", trades.rpc, "--json")
    assert [d["index"] for d in picked.json()["deals"]] == [2, 3]
    assert picked.json()["filters"]["since"] == parse_date(day(created[1]), "since")
    desk_text = cli.ok("report", "--desk", "1", "--rpc", trades.rpc).out
    assert "1 of the factory's 5 deal(s) (desk #1)" in desk_text and trades.deals[2].address in desk_text
    assert trades.deals[0].address not in desk_text
    empty = cli.ok("report", "--until", "2001-01-01", "--rpc", trades.rpc).out
    assert "no deals match" in empty


def _balance_slot(chain, token: str, holder: str, balance: int) -> int:
    """The storage slot of `holder`'s balance in `token` (a Vyper or Solidity mapping, found by probing)."""
    from eth_abi import encode
    from eth_utils import keccak

    for index in range(16):
        for key in (encode(["uint256", "address"], [index, holder]), encode(["address", "uint256"], [holder, index])):
            slot = int.from_bytes(keccak(key), "big")
            if int(chain.provider.make_request("eth_getStorageAt", [token, hex(slot), "latest"]), 16) == balance:
                return slot
    raise AssertionError(f"no balance slot of {holder} in {token}")


def test_cli_exits_1_when_an_escrow_holds_less_than_it_owes(trades, full, chain):
    """The chain itself is tampered with (anvil_setStorageAt: the desk deal's USDT balance one unit short of what
    it holds; ape's isolation restores it after the test): the report names the deal and exits 1."""
    d3 = full.deals[2]
    slot = _balance_slot(chain, trades.usdt, d3.deal, d3.quote.balance)
    short = (d3.quote.balance - 1).to_bytes(32, "big")
    chain.provider.make_request("anvil_setStorageAt", [trades.usdt, hex(slot), "0x" + short.hex()])
    cli = cli_at(trades.home, trades)
    result = cli("report", "--desk", "1", "--rpc", trades.rpc, "--json")
    assert_one_line_error(
        result,
        "conservation does not hold for 1 leg(s) or check(s): deal #3",
        f"the escrow's balance {d3.quote.balance - 1} is below what it holds and owes ({d3.quote.held} + 0)",
    )
    printed = json.loads(result.out)  # the report is still printed
    assert printed["totals"]["conservation"]["ok"] is False and printed["deals"][0]["conserved"] is False
    text = cli("report", "--desk", "1", "--rpc", trades.rpc)
    assert text.code == 1 and "conservation: deal #3" in text.out and "✗" in text.out


def test_cli_bad_input_is_one_line_and_changes_nothing(trades, tmp_path):
    assert build_report(trades.factory, desk_id=1).deals[0].conserved  # the tampering above was undone
    cli = cli_at(trades.home, trades)
    home_files = sorted(p.name for p in trades.home.iterdir())
    out = tmp_path / "never.json"
    rpc = ("--rpc", trades.rpc, "--out", str(out))
    cases = [
        (("--since", "yesterday"), 1, "--since: not a date: 'yesterday'"),
        (("--until", "2026-02-30"), 1, "--until: not a date: '2026-02-30'"),
        (("--since", "2026-03-02", "--until", "2026-03-01"), 1, "--since 2026-03-02 (2026-03-02T00:00:00Z) is after"),
        (("--desk", "9"), 1, "no desk #9 (the desk registry at"),
        (("--desk", "0"), 2, "Invalid value for '--desk'"),
        (("--csv", str(tmp_path / "missing" / "deals.csv")), 1, "no directory"),
        (("--csv", str(out.with_suffix(".x")), "--plot", str(out.with_suffix(".x"))), 1, "the same file as --csv"),
        (("--csv", "/dev/null", "--force"), 1, "--csv /dev/null is not a regular file"),
        (("--csv", "", "--force"), 1, "names no file"),
    ]
    for args, code, fragment in cases:
        result = cli("report", *args, *rpc)
        assert result.code == code, (args, result)
        assert_one_line_error(result, fragment)
    nowhere = tmp_path / "empty-home"
    nowhere.mkdir()
    result = cli_at(nowhere, trades)("report", "--home", nowhere, *rpc)
    assert_one_line_error(result, "no factory recorded for ethereum:local:", "run `nexotc deploy`")
    assert not out.exists() and list(nowhere.iterdir()) == [] and not (tmp_path / "missing").exists()
    assert sorted(p.name for p in trades.home.iterdir()) == home_files
