"""refund after a tranche deadline, expire after the final expiry."""

from __future__ import annotations

import pytest
from dealkit import (
    ACTIVE,
    DISPUTED,
    EVIDENCE,
    EXPIRED,
    MARKED,
    PENDING,
    REASON,
    REFUNDED,
    RELEASED,
    RESOLVED,
    SETTLED,
    expect_event,
)


# ------------------------------------------------------------------------ refund
def test_refund_dvp_tranche_after_deadline(dvp, chain, wbtc, usdt, buyer, seller, attacker, tracker):
    terms, deal = dvp
    tr = terms.tranches[0]
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.deadline + 1
    receipt = deal.refund(0, sender=attacker)  # anyone may call
    expect_event(
        receipt,
        deal.Refunded,
        deal,
        tranche=0,
        caller=attacker,
        base_amount=tr.base_amount,
        quote_amount=tr.quote_amount,
    )
    assert track.changes() == {
        wbtc.address: {seller.address: tr.base_amount, deal.address: -tr.base_amount},
        usdt.address: {buyer.address: tr.quote_amount, deal.address: -tr.quote_amount},
    }
    assert deal.tranche_status(0) == REFUNDED
    assert deal.held(0) == terms.base.amount - tr.base_amount
    assert deal.held(1) == terms.quote.amount - tr.quote_amount
    assert deal.phase() == ACTIVE


def test_refund_unmarked_escrowed_tranche(escrowed, chain, usdt, buyer, desk, tracker):
    terms, deal = escrowed
    tr = terms.tranches[1]
    track = tracker(deal, [usdt])
    chain.pending_timestamp = tr.deadline + 1
    receipt = deal.refund(1, sender=desk)
    expect_event(receipt, deal.Refunded, deal, tranche=1, caller=desk, base_amount=0, quote_amount=tr.quote_amount)
    assert track.changes() == {usdt.address: {buyer.address: tr.quote_amount, deal.address: -tr.quote_amount}}
    assert deal.tranche_status(1) == REFUNDED


def test_refund_at_the_deadline_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[1].deadline
    with unchanged(deal, [wbtc, usdt], "deadline not passed"):
        deal.refund(1, sender=attacker)


def test_refund_released_or_refunded_tranche_reverts(dvp, chain, wbtc, usdt, buyer, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=buyer)
    chain.pending_timestamp = terms.tranches[1].deadline + 1
    deal.refund(1, sender=attacker)
    for tranche in (0, 1):
        with unchanged(deal, [wbtc, usdt], "tranche not pending"):
            deal.refund(tranche, sender=attacker)


def test_refund_marked_tranche_reverts(escrowed, chain, usdt, seller, attacker, unchanged):
    """Once delivery is claimed, only a release, a dispute or the final expiry settle the tranche."""
    terms, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [usdt], "tranche not pending"):
        deal.refund(0, sender=attacker)


def test_refund_unknown_tranche_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[3].deadline + 1
    with unchanged(deal, [wbtc, usdt], "no such tranche"):
        deal.refund(4, sender=attacker)


def test_refund_unfunded_reverts(mk_dvp, deploy, fund_leg, chain, wbtc, usdt, desk, buyer, attacker, unchanged):
    terms = mk_dvp()
    deal = deploy(terms, desk)
    fund_leg(deal, usdt, buyer, terms.quote.amount)
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [wbtc, usdt], "deal not funded"):
        deal.refund(0, sender=attacker)


def test_refund_after_final_expiry_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [wbtc, usdt], "deal expired"):
        deal.refund(0, sender=attacker)


def test_refunds_and_releases_settle_the_deal(dvp, chain, wbtc, usdt, buyer, attacker):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=buyer)
    chain.pending_timestamp = terms.tranches[3].deadline + 1
    for i in (1, 2, 3):
        deal.refund(i, sender=attacker)
    assert deal.phase() == SETTLED
    assert (wbtc.balanceOf(deal), usdt.balanceOf(deal)) == (0, 0)
    assert (deal.held(0), deal.held(1)) == (0, 0)


# ------------------------------------------------------------------------ expire
def test_expire_returns_everything_unreleased_in_one_call(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, buyer, seller, resolver, attacker, tracker
):
    terms = mk_escrowed(tranches=5)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    q = [tr.quote_amount for tr in terms.tranches]
    chain.pending_timestamp = terms.tranches[1].unlock_time
    for i in (0, 1, 2, 3):
        deal.mark(i, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    deal.release(0, sender=buyer)  # 0 released
    deal.dispute(2, REASON, sender=buyer)  # 1 stays marked, 2 disputed
    deal.dispute(3, REASON, sender=seller)
    deal.resolve(3, (0, 0, 0), (0, q[3], 0), sender=resolver)  # 3 resolved, 4 pending
    assert [deal.tranche_status(i) for i in range(5)] == [RELEASED, MARKED, DISPUTED, RESOLVED, PENDING]
    track = tracker(deal, [usdt])
    chain.pending_timestamp = terms.final_expiry
    receipt = deal.expire(sender=attacker)
    back = q[1] + q[2] + q[4]
    expect_event(receipt, deal.Expired, deal, caller=attacker, base_amount=0, quote_amount=back)
    assert track.changes() == {usdt.address: {buyer.address: back, deal.address: -back}}
    assert [deal.tranche_status(i) for i in range(5)] == [RELEASED, REFUNDED, REFUNDED, RESOLVED, REFUNDED]
    assert deal.phase() == EXPIRED
    assert usdt.balanceOf(deal) == 0 and deal.held(1) == 0


def test_expire_dvp_returns_both_legs(dvp, chain, wbtc, usdt, buyer, seller, desk, tracker):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=buyer)
    deal.dispute(1, REASON, sender=seller)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = terms.final_expiry + 1000
    receipt = deal.expire(sender=desk)
    b = sum(tr.base_amount for tr in terms.tranches[1:])
    q = sum(tr.quote_amount for tr in terms.tranches[1:])
    expect_event(receipt, deal.Expired, deal, caller=desk, base_amount=b, quote_amount=q)
    assert track.changes() == {
        wbtc.address: {seller.address: b, deal.address: -b},
        usdt.address: {buyer.address: q, deal.address: -q},
    }
    assert (wbtc.balanceOf(deal), usdt.balanceOf(deal)) == (0, 0)
    assert deal.phase() == EXPIRED


def test_expire_before_final_expiry_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.final_expiry - 1
    with unchanged(deal, [wbtc, usdt], "before final expiry"):
        deal.expire(sender=attacker)


def test_expire_twice_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.final_expiry
    deal.expire(sender=attacker)
    with unchanged(deal, [wbtc, usdt], "deal closed"):
        deal.expire(sender=attacker)


def test_expire_partly_funded_returns_the_deposit(
    mk_dvp, deploy, fund_leg, chain, wbtc, usdt, desk, seller, attacker, tracker
):
    terms = mk_dvp()
    deal = deploy(terms, desk)
    fund_leg(deal, wbtc, seller, terms.base.amount)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = terms.final_expiry
    receipt = deal.expire(sender=attacker)
    expect_event(receipt, deal.Expired, deal, caller=attacker, base_amount=terms.base.amount, quote_amount=0)
    assert track.changes() == {wbtc.address: {seller.address: terms.base.amount, deal.address: -terms.base.amount}}
    assert deal.phase() == EXPIRED


def test_expire_never_funded(mk_escrowed, deploy, chain, usdt, desk, attacker):
    terms = mk_escrowed()
    deal = deploy(terms, desk)
    chain.pending_timestamp = terms.final_expiry
    receipt = deal.expire(sender=attacker)
    expect_event(receipt, deal.Expired, deal, caller=attacker, base_amount=0, quote_amount=0)
    assert deal.phase() == EXPIRED


def test_expire_after_full_settlement_is_refused(dvp, chain, wbtc, usdt, buyer, attacker, unchanged):
    """A settled deal has nothing to expire: expire() reverts and the deal stays SETTLED."""
    terms, deal = dvp
    for i, tr in enumerate(terms.tranches):
        chain.pending_timestamp = tr.unlock_time
        deal.release(i, sender=buyer)
    assert deal.phase() == 2
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [wbtc, usdt], "deal settled"):
        deal.expire(sender=attacker)
    assert deal.phase() == 2


CLOSED_CALLS = [
    ("fund", lambda d, a: d.fund(sender=a["buyer"])),
    ("mark", lambda d, a: d.mark(0, EVIDENCE, sender=a["seller"])),
    ("approve", lambda d, a: d.approve(0, sender=a["buyer"])),
    ("release", lambda d, a: d.release(0, sender=a["buyer"])),
    ("refund", lambda d, a: d.refund(1, sender=a["buyer"])),
    ("dispute", lambda d, a: d.dispute(1, REASON, sender=a["buyer"])),
    ("resolve", lambda d, a: d.resolve(0, (0, 0, 0), (0, 0, 0), sender=a["resolver"])),
    ("settle_dispute", lambda d, a: d.settle_dispute(0, sender=a["buyer"])),
    ("cancel_unfunded", lambda d, a: d.cancel_unfunded(sender=a["buyer"])),
]


@pytest.mark.parametrize("name,call", CLOSED_CALLS, ids=[c[0] for c in CLOSED_CALLS])
def test_expired_deal_is_closed(escrowed, chain, usdt, buyer, seller, resolver, attacker, unchanged, name, call):
    terms, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    chain.pending_timestamp = terms.final_expiry
    deal.expire(sender=attacker)
    assert deal.tranche_status(0) == REFUNDED and deal.phase() == EXPIRED
    usdt.approve(deal, 10**12, sender=buyer)
    with unchanged(deal, [usdt], "deal closed"):
        call(deal, {"buyer": buyer, "seller": seller, "resolver": resolver})
