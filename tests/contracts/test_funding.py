"""fund / credit (via the factory) and cancel_unfunded."""

from __future__ import annotations

import pytest
from dealkit import ACTIVE, CANCELLED, DAY, EVIDENCE, FUNDING, REASON, ZERO, expect_event

from nexotc_client.terms import Leg, LegId, Terms, Tranche


@pytest.fixture(scope="module")
def fresh(mk_dvp, deploy, desk):
    """An unfunded 4-tranche DVP deal (WBTC / USDT)."""
    terms = mk_dvp()
    return terms, deploy(terms, desk)


@pytest.fixture(scope="module")
def fresh_escrowed(mk_escrowed, deploy, desk):
    terms = mk_escrowed()
    return terms, deploy(terms, desk)


def _prepare(token, party, deal, amount):
    token.mint(party, amount, sender=party)
    token.approve(deal, amount, sender=party)


# ------------------------------------------------------------------------ fund
def test_seller_funds_base(fresh, wbtc, usdt, seller):
    terms, deal = fresh
    _prepare(wbtc, seller, deal, terms.base.amount)
    receipt = deal.fund(sender=seller)
    expect_event(receipt, deal.Funded, deal, leg=0, funder=seller, amount=terms.base.amount)
    assert wbtc.balanceOf(seller) == 0
    assert wbtc.balanceOf(deal) == terms.base.amount
    assert wbtc.allowance(seller, deal) == 0
    assert (deal.funded(0), deal.funded(1)) == (True, False)
    assert (deal.held(0), deal.held(1)) == (terms.base.amount, 0)
    assert deal.phase() == FUNDING
    assert usdt.balanceOf(deal) == 0


def test_both_legs_funded_activate_the_deal(fresh, wbtc, usdt, buyer, seller):
    terms, deal = fresh
    _prepare(usdt, buyer, deal, terms.quote.amount)
    receipt = deal.fund(sender=buyer)  # the buyer may fund first
    expect_event(receipt, deal.Funded, deal, leg=1, funder=buyer, amount=terms.quote.amount)
    assert deal.phase() == FUNDING
    _prepare(wbtc, seller, deal, terms.base.amount)
    deal.fund(sender=seller)
    assert deal.phase() == ACTIVE
    assert (deal.funded(0), deal.funded(1)) == (True, True)
    assert (deal.held(0), deal.held(1)) == (terms.base.amount, terms.quote.amount)
    assert (wbtc.balanceOf(deal), usdt.balanceOf(deal)) == (terms.base.amount, terms.quote.amount)
    assert (usdt.balanceOf(buyer), wbtc.balanceOf(seller)) == (0, 0)


def test_escrowed_buyer_funding_activates(fresh_escrowed, usdt, buyer):
    terms, deal = fresh_escrowed
    assert deal.phase() == FUNDING
    _prepare(usdt, buyer, deal, terms.quote.amount)
    receipt = deal.fund(sender=buyer)
    expect_event(receipt, deal.Funded, deal, leg=1, funder=buyer, amount=terms.quote.amount)
    assert deal.phase() == ACTIVE
    assert (deal.funded(0), deal.funded(1)) == (False, True)
    assert (deal.held(0), deal.held(1)) == (0, terms.quote.amount)


@pytest.mark.parametrize("who", ["seller", "buyer"])
def test_fund_twice_reverts(request, fresh, wbtc, usdt, unchanged, who):
    terms, deal = fresh
    party = request.getfixturevalue(who)
    token, amount = (wbtc, terms.base.amount) if who == "seller" else (usdt, terms.quote.amount)
    _prepare(token, party, deal, amount)
    deal.fund(sender=party)
    _prepare(token, party, deal, amount)  # the allowance was used up: USDT accepts a new approve
    with unchanged(deal, [wbtc, usdt], "already funded"):
        deal.fund(sender=party)


@pytest.mark.parametrize("who", ["attacker", "desk", "resolver", "introducer", "lawyer"])
def test_non_funders_have_nothing_to_fund(request, fresh, wbtc, usdt, unchanged, who):
    _, deal = fresh
    caller = request.getfixturevalue(who)
    for token in (wbtc, usdt):
        token.mint(caller, 10**20, sender=caller)
        token.approve(deal, 10**20, sender=caller)
    with unchanged(deal, [wbtc, usdt], "nothing to fund"):
        deal.fund(sender=caller)


def test_seller_has_nothing_to_fund_when_base_is_off_chain(fresh_escrowed, usdt, seller, unchanged):
    _, deal = fresh_escrowed
    with unchanged(deal, [usdt], "nothing to fund"):
        deal.fund(sender=seller)


def test_buyer_has_nothing_to_fund_when_quote_is_off_chain(
    t0, deploy, wbtc, usdt, buyer, seller, desk, resolver, unchanged
):
    start = t0 + 1_000
    terms = Terms.build(
        base=Leg(wbtc.address, 10**8),
        quote=Leg(ZERO, 65_000 * 10**6, on_chain=False),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=[Tranche(10**8, 65_000 * 10**6, start, start + DAY)],
        funding_deadline=t0 + DAY,
        final_expiry=start + 10 * DAY,
        markers=[buyer.address],
        approvers=[seller.address],
        fee_leg=LegId.BASE,
    )
    deal = deploy(terms, desk)
    usdt.mint(buyer, 65_000 * 10**6, sender=buyer)
    usdt.approve(deal, 65_000 * 10**6, sender=buyer)
    with unchanged(deal, [wbtc, usdt], "nothing to fund"):
        deal.fund(sender=buyer)


def test_funding_deadline_is_inclusive(fresh, chain, wbtc, usdt, buyer, seller, unchanged):
    terms, deal = fresh
    _prepare(wbtc, seller, deal, terms.base.amount)
    _prepare(usdt, buyer, deal, terms.quote.amount)
    chain.pending_timestamp = terms.funding_deadline
    deal.fund(sender=seller)
    chain.pending_timestamp = terms.funding_deadline + 1
    with unchanged(deal, [wbtc, usdt], "funding closed"):
        deal.fund(sender=buyer)
    assert deal.phase() == FUNDING


def test_fund_without_enough_allowance_reverts(fresh, wbtc, usdt, seller, buyer, unchanged):
    terms, deal = fresh
    wbtc.mint(seller, terms.base.amount, sender=seller)
    wbtc.approve(deal, terms.base.amount - 1, sender=seller)
    with unchanged(deal, [wbtc, usdt], "token transfer failed"):
        deal.fund(sender=seller)
    # USDT (no return value) without balance
    usdt.approve(deal, terms.quote.amount, sender=buyer)
    with unchanged(deal, [wbtc, usdt], "token transfer failed"):
        deal.fund(sender=buyer)


def test_fund_after_cancel_reverts(fresh, chain, wbtc, usdt, seller, buyer, attacker, unchanged):
    terms, deal = fresh
    chain.pending_timestamp = terms.funding_deadline + 1
    deal.cancel_unfunded(sender=attacker)
    _prepare(wbtc, seller, deal, terms.base.amount)
    with unchanged(deal, [wbtc, usdt], "deal closed"):
        deal.fund(sender=seller)


def test_fund_after_expire_reverts(fresh, chain, wbtc, usdt, seller, attacker, unchanged):
    terms, deal = fresh
    chain.pending_timestamp = terms.final_expiry
    deal.expire(sender=attacker)
    _prepare(wbtc, seller, deal, terms.base.amount)
    with unchanged(deal, [wbtc, usdt], "deal closed"):
        deal.fund(sender=seller)


# -------------------------------------------------------------- cancel_unfunded
def test_cancel_returns_the_only_deposit(fresh, chain, wbtc, usdt, seller, attacker):
    terms, deal = fresh
    _prepare(wbtc, seller, deal, terms.base.amount)
    deal.fund(sender=seller)
    chain.pending_timestamp = terms.funding_deadline + 1
    receipt = deal.cancel_unfunded(sender=attacker)  # anyone may call
    expect_event(receipt, deal.Cancelled, deal, caller=attacker, base_amount=terms.base.amount, quote_amount=0)
    assert wbtc.balanceOf(seller) == terms.base.amount
    assert wbtc.balanceOf(deal) == 0 and usdt.balanceOf(deal) == 0
    assert wbtc.balanceOf(attacker) == 0
    assert deal.phase() == CANCELLED
    assert (deal.held(0), deal.held(1)) == (0, 0)


def test_cancel_returns_the_buyers_deposit(fresh, chain, usdt, buyer, desk):
    terms, deal = fresh
    _prepare(usdt, buyer, deal, terms.quote.amount)
    deal.fund(sender=buyer)
    chain.pending_timestamp = terms.funding_deadline + 1
    receipt = deal.cancel_unfunded(sender=desk)
    expect_event(receipt, deal.Cancelled, deal, caller=desk, base_amount=0, quote_amount=terms.quote.amount)
    assert usdt.balanceOf(buyer) == terms.quote.amount and usdt.balanceOf(deal) == 0
    assert deal.phase() == CANCELLED


def test_cancel_with_nothing_deposited(fresh_escrowed, chain, buyer):
    terms, deal = fresh_escrowed
    chain.pending_timestamp = terms.funding_deadline + 1
    receipt = deal.cancel_unfunded(sender=buyer)
    expect_event(receipt, deal.Cancelled, deal, caller=buyer, base_amount=0, quote_amount=0)
    assert deal.phase() == CANCELLED


def test_cancel_while_funding_is_open_reverts(fresh, chain, wbtc, usdt, seller, attacker, unchanged):
    terms, deal = fresh
    _prepare(wbtc, seller, deal, terms.base.amount)
    deal.fund(sender=seller)
    chain.pending_timestamp = terms.funding_deadline
    with unchanged(deal, [wbtc, usdt], "funding open"):
        deal.cancel_unfunded(sender=attacker)


def test_cancel_funded_deal_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.funding_deadline + 1
    with unchanged(deal, [wbtc, usdt], "deal is funded"):
        deal.cancel_unfunded(sender=attacker)


def test_cancel_twice_reverts(fresh, chain, wbtc, usdt, seller, attacker, unchanged):
    terms, deal = fresh
    _prepare(wbtc, seller, deal, terms.base.amount)
    deal.fund(sender=seller)
    chain.pending_timestamp = terms.funding_deadline + 1
    deal.cancel_unfunded(sender=attacker)
    with unchanged(deal, [wbtc, usdt], "deal closed"):
        deal.cancel_unfunded(sender=attacker)
    assert wbtc.balanceOf(seller) == terms.base.amount  # paid back once


def test_cancel_after_expire_reverts(fresh, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = fresh
    chain.pending_timestamp = terms.final_expiry
    deal.expire(sender=attacker)
    with unchanged(deal, [wbtc, usdt], "deal closed"):
        deal.cancel_unfunded(sender=attacker)


CLOSED_CALLS = [
    ("mark", lambda d, s: d.mark(0, EVIDENCE, sender=s)),
    ("approve", lambda d, s: d.approve(0, sender=s)),
    ("release", lambda d, s: d.release(0, sender=s)),
    ("refund", lambda d, s: d.refund(0, sender=s)),
    ("dispute", lambda d, s: d.dispute(0, REASON, sender=s)),
    ("resolve", lambda d, s: d.resolve(0, (0, 0, 0), (0, 0, 0), sender=s)),
    ("settle_dispute", lambda d, s: d.settle_dispute(0, sender=s)),
    ("expire", lambda d, s: d.expire(sender=s)),
]


@pytest.mark.parametrize("name,call", CLOSED_CALLS, ids=[c[0] for c in CLOSED_CALLS])
def test_cancelled_deal_is_closed(fresh_escrowed, chain, usdt, buyer, seller, resolver, unchanged, name, call):
    terms, deal = fresh_escrowed
    chain.pending_timestamp = terms.funding_deadline + 1
    deal.cancel_unfunded(sender=buyer)
    sender = {"mark": seller, "resolve": resolver}.get(name, buyer)
    if name == "expire":
        chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [usdt], "deal closed"):
        call(deal, sender)
