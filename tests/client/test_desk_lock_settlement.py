"""Price lock and settlement tracking on a real anvil.

An accepted quote becomes a deal through the desk's signed offer accepted by the client via the factory; the
quote id is in the offer's salt (read back from the chain alone) and in the desk store. The tracker stores a
deal's events once they have the network's confirmations, reports younger ones as pending, records the
off-chain leg's milestones (an ESCROWED "delivered" also marks on chain) and flags SLA breaches.

Actors: the client is the buyer; the desk's trading wallet is the seller (it sells the BTC the client buys);
the desk's fee wallet is the platform; the resolver is independent.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from deskkit import PRICE, accepted_quote

from nexotc_client.chain import NexotcError, Registry, deploy_factory
from nexotc_client.desk.db import Database
from nexotc_client.desk.lock import (
    LockError,
    LockParams,
    accept_lock,
    lock_amounts,
    quote_id_of,
    quote_salt,
    read_quote_id,
    sign_lock,
)
from nexotc_client.desk.models import Quote, QuoteComponents, QuoteState, Side
from nexotc_client.desk.settlement import SettlementTracker, Sla, confirmations_for
from nexotc_client.desk.store import DeskStore
from nexotc_client.terms import Phase

BTC = 10**8
USD = 10**6


@pytest.fixture(scope="module")
def nxf(desk, tmp_path_factory):
    """The nexotc Factory of this module (not `nx`: that is conftest's function-scoped CLI runner, and ape's
    chain isolation, which tracks fixtures by name, mis-restores a module fixture sharing its name)."""
    return deploy_factory(desk, registry=Registry(tmp_path_factory.mktemp("nexotc") / "deployments.json"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> DeskStore:
    db = Database.open(f"sqlite:///{Path(tmp_path_factory.mktemp('desk')) / 'desk.db'}")
    yield DeskStore(db)
    db.close()


@pytest.fixture(scope="module")
def params(wbtc, usdt, desk, buyer, seller, resolver) -> LockParams:
    wbtc.mint(seller, 1_000 * BTC, sender=desk)
    usdt.mint(buyer, 100_000_000 * USD, sender=desk)
    return LockParams(
        base_token=wbtc.address,
        quote_token=usdt.address,
        desk=seller.address,
        client=buyer.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=2,
        interval_s=3_600,
    )


# ------------------------------------------------------------------ price lock
def test_salt_carries_the_quote_id_and_amounts_round_for_the_desk() -> None:
    assert quote_id_of(quote_salt("Q-2026-0001")) == "Q-2026-0001"
    assert quote_id_of(b"\x00" * 32) is None
    with pytest.raises(LockError, match="fit the salt"):
        quote_salt("Q" * 30)
    q = Quote(
        "Q",
        "R",
        "BTC/USDT",
        Side.BUY,
        Decimal("0.00000003"),
        Decimal(1),
        Decimal("3.3333333"),
        Decimal("3.3333333"),
        Decimal(2),
        QuoteComponents(*[Decimal(0)] * 4),
        0,
        1,
    )
    params = LockParams(
        "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "3" * 40, "0x" + "4" * 40, "0x" + "5" * 40, "0x" + "6" * 40
    )
    # 3e-8 BTC x 3.3333333 = 0.000000099999999 USDT: the client pays 1 micro-USDT (rounded up), never 0
    assert (lock_amounts(q, params).base_units, lock_amounts(q, params).quote_units) == (3, 1)
    # the desk paying rounds down: nothing to pay is no deal
    with pytest.raises(LockError, match="positive"):
        lock_amounts(replace(q, side=Side.SELL), params)
    with pytest.raises(LockError, match="more than 8 decimals"):
        lock_amounts(replace(q, size=Decimal("0.000000001")), params)


def test_accepted_quote_locks_into_a_funded_deal_with_the_quote_id_on_both_sides(
    nxf, store, params, buyer, seller, attacker, wbtc, usdt
) -> None:
    quote = accepted_quote(store, "Q-LOCK-1")
    signed = sign_lock(nxf, quote, params, seller)
    assert signed.offer.taker == buyer.address and quote_id_of(signed.offer.salt) == "Q-LOCK-1"
    # only the invited client can take it: refused before anything is sent
    with pytest.raises(NexotcError, match="not the invited taker"):
        accept_lock(nxf, signed, attacker, store)
    assert store.lock_of("Q-LOCK-1") is None

    seller_btc, buyer_usd = wbtc.balanceOf(seller), usdt.balanceOf(buyer)
    lock, accepted = accept_lock(nxf, signed, buyer, store, fund=True)
    deal = accepted.deal
    expected_usd = -(-200 * PRICE * USD // 1)  # ceiling: the client pays at least the quoted notional
    assert deal.terms.base.amount == 200 * BTC and deal.terms.quote.amount == int(expected_usd)
    assert deal.status().funded == (True, True) and deal.phase() is Phase.ACTIVE
    assert wbtc.balanceOf(seller) == seller_btc - 200 * BTC and usdt.balanceOf(buyer) == buyer_usd - int(expected_usd)
    # both sides: the chain (offer salt in the accepting calldata) and the desk store
    assert read_quote_id(nxf, deal.address) == "Q-LOCK-1"
    assert store.lock_of("Q-LOCK-1") == lock and lock.deal == deal.address and lock.tx_hash == accepted.result.tx_hash
    assert store.quote_for_deal(deal.address).quote_id == "Q-LOCK-1"


def test_only_accepted_quotes_lock(nxf, store, params, seller) -> None:
    quote = accepted_quote(store, "Q-LOCK-2")
    for state in (QuoteState.QUOTED, QuoteState.EXPIRED, QuoteState.REJECTED, QuoteState.COUNTERED):
        with pytest.raises(LockError, match=f"is {state.value}"):
            sign_lock(nxf, replace(quote, state=state), params, seller)


# ------------------------------------------------------------------ settlement
def test_tracker_confirms_events_stores_them_once_and_records_settlement(
    nxf, store, params, buyer, seller, chain
) -> None:
    assert confirmations_for("ethereum:mainnet:node") == 12 and confirmations_for("ethereum:local:foundry") == 1
    quote = accepted_quote(store, "Q-SETTLE-1", size="10")
    _, accepted = accept_lock(nxf, sign_lock(nxf, quote, params, seller), buyer, store, fund=True)
    deal = accepted.deal
    tracker = SettlementTracker(store, nxf, network="ethereum:local")
    tracker.track(deal, sla=Sla(funding_s=600, release_s=7_200), confirmations=2)

    view = tracker.poll(deal.address)
    assert view.quote_id == "Q-SETTLE-1" and view.funded == (True, True)
    # the funding events are in the head block: 1 confirmation of 2 → pending, not stored
    assert {p.name for p in view.pending} >= {"Funded"} and all(p.confirmations == 1 for p in view.pending)
    assert view.new_events == 0
    chain.mine(1)
    view = tracker.poll(deal.address)
    assert view.pending == () and view.new_events >= 2
    assert tracker.poll(deal.address).new_events == 0  # nothing stored twice

    terms = deal.terms
    chain.pending_timestamp = terms.tranches[0].unlock_time + 1
    released = deal.release(0, buyer)
    view = tracker.poll(deal.address)
    assert [p.name for p in view.pending] == ["Released"] and view.tranches[0].settled_tx is None
    chain.mine(1)
    view = tracker.poll(deal.address)
    assert view.tranches[0].status == "released" and view.tranches[0].settled_tx == released.tx_hash
    [record] = store.settlement_records(deal.address)
    assert record.ref == "Q-SETTLE-1/0" and record.tx_hash == released.tx_hash
    assert record.base_amount == Decimal(5) and record.quote_amount == Decimal(terms.tranches[0].quote_amount) / USD
    # tranche 2 unlocks an hour later; past unlock + release SLA it is flagged, released it clears
    chain.pending_timestamp = terms.tranches[1].unlock_time + 7_300
    chain.mine(1)
    kinds = {(b.kind, b.tranche) for b in tracker.poll(deal.address).breaches}
    assert kinds == {("release_late", 1)}
    deal.release(1, buyer)
    chain.mine(1)
    view = tracker.poll(deal.address)
    assert view.breaches == () and view.settled and len(store.settlement_records(deal.address)) == 2


def test_offchain_leg_milestones_mark_on_chain_and_late_legs_are_flagged(
    nxf, store, params, buyer, seller, attacker, chain
) -> None:
    escrowed = replace(params, base_on_chain=False, tranches=1)
    quote = accepted_quote(store, "Q-OTC-1", size="5")
    _, accepted = accept_lock(nxf, sign_lock(nxf, quote, escrowed, seller), buyer, store, fund=True)
    deal = accepted.deal
    tracker = SettlementTracker(store, nxf)
    tracker.track(deal, sla=Sla(funding_s=600, release_s=86_400, offchain_s=3_600))
    unlock = deal.terms.tranches[0].unlock_time
    chain.pending_timestamp = unlock + 3_700
    chain.mine(1)
    assert [(b.kind, b.tranche) for b in tracker.poll(deal.address).breaches] == [("offchain_late", 0)]

    with pytest.raises(NexotcError, match="milestone"):
        tracker.mark_offchain(deal.address, 0, "teleported", "x")
    with pytest.raises(NexotcError, match="no tranche 3"):
        tracker.mark_offchain(deal.address, 3, "sent", "x")
    tracker.mark_offchain(deal.address, 0, "sent", "btc tx broadcast 9f2c…")
    txid = "9f2c" * 16
    mark = tracker.mark_offchain(deal.address, 0, "delivered", txid, marker=seller)
    assert mark.tx_hash and mark.evidence_hash == "0x" + txid
    with pytest.raises(LookupError, match="already has a 'delivered' mark"):
        tracker.mark_offchain(deal.address, 0, "delivered", txid)
    view = tracker.poll(deal.address)
    assert view.tranches[0].status == "marked" and view.tranches[0].offchain == ("sent", "delivered")
    assert view.breaches == ()
    marked = [e for e in store.settlement_events(deal.address) if e.event == "Marked"]
    assert marked and marked[0].args["evidence"] == "0x" + txid
    deal.approve(0, buyer)
    deal.release(0, buyer)
    assert tracker.poll(deal.address).settled


def test_unfunded_lock_breaches_the_funding_sla(nxf, store, params, buyer, seller, chain) -> None:
    quote = accepted_quote(store, "Q-LATE-1", size="1")
    _, accepted = accept_lock(nxf, sign_lock(nxf, quote, params, seller), buyer, store, fund=False)
    tracker = SettlementTracker(store, nxf)
    tracker.track(accepted.deal, sla=Sla(funding_s=60))
    assert tracker.poll(accepted.deal.address).breaches == ()
    chain.pending_timestamp = chain.pending_timestamp + 120
    chain.mine(1)
    [breach] = tracker.poll(accepted.deal.address).breaches
    assert breach.kind == "funding_late" and "base and quote" in breach.detail
