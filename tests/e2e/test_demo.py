"""The main job (scripts/demo.py) runs end to end, and its outcome is exactly what the terms say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BTC = 10**8
USD = 10**6


@pytest.fixture(scope="module")
def demo_module():
    path = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
    spec = importlib.util.spec_from_file_location("nexotc_demo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_settles_every_deal_exactly(demo_module):
    demo = demo_module.Demo()
    demo.deploy()
    before = demo.balances("before")
    demo.dvp()
    demo.escrowed()
    demo.offers()
    demo.deposit()
    after = demo.balances("after")

    def delta(name: str) -> tuple[int, int]:
        return after[name][0] - before[name][0], after[name][1] - before[name][1]

    # DVP: 4 tranches of 3,250,000 USDT, 25 bps desk + 10 bps introducer each (floor per tranche)
    dvp_desk = 4 * (3_250_000 * USD * 25 // 10_000)
    dvp_intro = 4 * (3_250_000 * USD * 10 // 10_000)
    # ESCROWED tranche 1: 325,000 USDT released; tranche 2 disputed: 50 bps to the resolver,
    # 80% of the rest to the seller (commissions on that part), the remainder back to the buyer
    t = 325_000 * USD
    fee = t * 50 // 10_000
    to_seller = (t - fee) * 4 // 5
    esc_desk = t * 25 // 10_000 + to_seller * 25 // 10_000
    esc_intro = t * 10 // 10_000 + to_seller * 10 // 10_000

    # signed offers: 20 WBTC for 1,300,000 USDT (the counter), 2 tranches, desk 20 bps, no introducer
    off_desk = 2 * (650_000 * USD * 20 // 10_000)
    # deposit-address deal: 20 WBTC for 1,300,000 USDT in one tranche, desk 20 bps
    dep_desk = 1_300_000 * USD * 20 // 10_000

    assert delta("buyer")[0] == 240 * BTC
    assert delta("seller")[0] == -240 * BTC
    assert delta("desk (platform)") == (0, dvp_desk + esc_desk + off_desk + dep_desk)
    assert delta("introducer") == (0, dvp_intro + esc_intro)
    assert delta("resolver") == (0, fee)
    assert delta("buyer")[1] == -(13_000_000 * USD) - 2 * t + (t - fee - to_seller) - 2 * 1_300_000 * USD
    assert delta("seller")[1] == (
        13_000_000 * USD - dvp_desk - dvp_intro + 2 * t - fee - (t - fee - to_seller) - esc_desk - esc_intro
    ) + (1_300_000 * USD - off_desk) + (1_300_000 * USD - dep_desk)
    # conservation: nothing created or lost, nothing left in any escrow
    assert sum(d[1] for d in (delta(n) for n in after)) == 0
    assert sum(d[0] for d in (delta(n) for n in after)) == 0
    # every printed step is a mined transaction with its hash and gas
    receipts = [demo_module.chain.provider.get_receipt(tx) for _, tx, _ in demo.steps]
    assert [r.gas_used for r in receipts] == [gas for _, _, gas in demo.steps]
    assert all(r.status == 1 for r in receipts)


def test_demo_desk_path_locks_hedges_settles_and_reconciles(demo_module):
    """Phase 6: the RFQ for 200 BTC ends as a settled escrow, a finished hedge and a break-free reconciliation."""
    from nexotc_client.desk.lock import read_quote_id
    from nexotc_client.terms import Phase

    demo = demo_module.Demo()
    demo.deploy()
    buyer_btc, seller_usd = demo.wbtc.balanceOf(demo.buyer), demo.usdt.balanceOf(demo.seller)
    out = demo.desk_path()
    deal, quote, recon = out["deal"], out["quote"], out["recon"]
    assert quote.size == 200 and quote.state.value == "accepted" and quote.price == quote.ask
    assert deal.phase() is Phase.SETTLED and out["view"].settled and out["view"].breaches == ()
    assert read_quote_id(demo.factory, deal.address) == quote.quote_id == out["lock"].quote_id
    # the client received 200 BTC; the desk's wallet received the locked notional (no desk fee on this deal)
    assert demo.wbtc.balanceOf(demo.buyer) - buyer_btc == 200 * BTC
    assert demo.usdt.balanceOf(demo.seller) - seller_usd == deal.terms.quote.amount
    assert deal.terms.quote.amount == -(-200 * quote.price * USD // 1)
    hedge = out["hedge"]
    # done, or partial when the immediate-or-cancel clips left a (small) residual
    assert hedge.status.value == ("done" if hedge.filled == 200 else "partial") and 190 < hedge.filled <= 200
    assert recon.report.breaks == [] and recon.report.matched == len(hedge.fills) + 2
    with open(recon.files["png"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_demo_kyc_phase_gates_the_deal_and_discloses_one_field(demo_module):
    """Phase 6: both parties attested by real proofs for the deal's address, the gated deal settled, and
    the audit bundle re-checks against the chain and opens the buyer's jurisdiction and nothing else."""
    demo = demo_module.Demo()
    demo.deploy()
    demo.compliance()
    bundle = demo.kyc_bundle
    assert demo.kyc_problems == []
    assert bundle["policy_id"] == 1 and bundle["kyc_registry"] == demo.kyc.address
    assert [e["name"] for e in bundle["events"]] == ["DealCreated", "Funded", "Funded", "Released"]
    assert {r: a["subject"] for r, a in bundle["attestations"].items()} == {
        "buyer": demo.buyer.address,
        "seller": demo.seller.address,
    }
    opened = bundle["disclosures"]["buyer"]["opening"]["opened"]
    assert {f: o["value"] for f, o in opened.items()} == {"jurisdiction": "756"}
    assert bundle["disclosures"]["seller"] is None
    # nothing else of a credential is in the bundle: the buyer's other fields are hashes only, and the only
    # field named anywhere with a value is the buyer's jurisdiction
    assert set(bundle["disclosures"]["buyer"]["opening"]["hidden"]) == {
        "entity_type",
        "kyc_level",
        "accredited",
        "issued_at",
        "expires_at",
        "schema_id",
    }
    assert json.dumps(bundle).count('"value"') == 1
