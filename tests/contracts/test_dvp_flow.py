"""DVP: both legs on chain, each release swaps a tranche atomically with commissions on the fee leg."""

from __future__ import annotations

import pytest
from dealkit import (
    ACTIVE,
    BTC,
    DAY,
    PENDING,
    RELEASED,
    SETTLED,
    events,
    expect_event,
    paid_by,
    release_split,
)

from nexotc_client.terms import LegId


# ------------------------------------------------------------------- release
def test_release_swaps_the_tranche_with_commissions(
    dvp, chain, wbtc, usdt, attacker, buyer, seller, desk, introducer, tracker
):
    terms, deal = dvp
    tr = terms.tranches[0]
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.unlock_time
    receipt = deal.release(0, sender=attacker)  # thresholds 0: anyone triggers after unlock
    cuts = terms.commissions(tr.quote_amount)
    assert cuts == {desk.address: tr.quote_amount * 25 // 10_000, introducer.address: tr.quote_amount * 10 // 10_000}
    fees = sum(cuts.values())
    assert track.changes() == {
        wbtc.address: {buyer.address: tr.base_amount, deal.address: -tr.base_amount},
        usdt.address: {
            seller.address: tr.quote_amount - fees,
            desk.address: cuts[desk.address],
            introducer.address: cuts[introducer.address],
            deal.address: -tr.quote_amount,
        },
    }
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=attacker,
        base_amount=tr.base_amount,
        quote_amount=tr.quote_amount,
        fees=fees,
    )
    assert not events(receipt, deal.Signed)
    assert deal.tranche_status(0) == RELEASED
    assert [deal.tranche_status(i) for i in range(1, 4)] == [PENDING] * 3
    assert deal.held(0) == terms.base.amount - tr.base_amount
    assert deal.held(1) == terms.quote.amount - tr.quote_amount
    assert deal.phase() == ACTIVE


def test_releasing_every_tranche_settles_the_deal(
    dvp, chain, wbtc, usdt, attacker, buyer, seller, desk, introducer, tracker
):
    terms, deal = dvp
    track = tracker(deal, [wbtc, usdt])
    for i, tr in enumerate(terms.tranches):
        chain.pending_timestamp = tr.deadline  # the deadline itself is still in time
        deal.release(i, sender=buyer)
    fees = sum(sum(terms.commissions(t.quote_amount).values()) for t in terms.tranches)
    desk_fee = sum(t.quote_amount * 25 // 10_000 for t in terms.tranches)
    changes = track.changes()
    assert changes[wbtc.address] == {buyer.address: terms.base.amount, deal.address: -terms.base.amount}
    assert changes[usdt.address] == {
        seller.address: terms.quote.amount - fees,
        desk.address: desk_fee,
        introducer.address: fees - desk_fee,
        deal.address: -terms.quote.amount,
    }
    assert (wbtc.balanceOf(deal), usdt.balanceOf(deal)) == (0, 0)
    assert deal.phase() == SETTLED
    assert (deal.held(0), deal.held(1)) == (0, 0)


def test_release_before_unlock_reverts(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[1].unlock_time - 1
    with unchanged(deal, [wbtc, usdt], "release conditions not met"):
        deal.release(1, sender=buyer)


def test_release_after_deadline_reverts(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [wbtc, usdt], "deadline passed"):
        deal.release(0, sender=buyer)


def test_release_twice_reverts(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=buyer)
    with unchanged(deal, [wbtc, usdt], "tranche not pending"):
        deal.release(0, sender=buyer)


def test_release_unknown_tranche_reverts(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    with unchanged(deal, [wbtc, usdt], "no such tranche"):
        deal.release(4, sender=buyer)


def test_release_on_partly_funded_deal_reverts(
    mk_dvp, deploy, fund_leg, chain, wbtc, usdt, desk, seller, buyer, unchanged
):
    terms = mk_dvp()
    deal = deploy(terms, desk)
    fund_leg(deal, wbtc, seller, terms.base.amount)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    with unchanged(deal, [wbtc, usdt], "deal not funded"):
        deal.release(0, sender=buyer)


def test_release_after_final_expiry_reverts(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [wbtc, usdt], "deal expired"):
        deal.release(3, sender=buyer)


# ------------------------------------------------------------------ fee legs
@pytest.fixture(scope="module")
def base_fee_dvp(mk_dvp, deploy, fund_all, wbtc, usdt, desk, introducer, introducer2):
    """Commissions on the base leg, odd amounts so that every commission rounds down."""
    terms = mk_dvp(
        tranches=3,
        base_amount=12 * BTC + 345_679,
        quote_amount=802_469_129_151,
        fee_leg=LegId.BASE,
        desk_fee_bps=33,
        introducers=[(introducer.address, 17), (introducer2.address, 9)],
    )
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    return terms, deal


def test_base_fee_leg_pays_commissions_in_base(
    base_fee_dvp, chain, wbtc, usdt, buyer, seller, desk, introducer, introducer2, tracker
):
    terms, deal = base_fee_dvp
    tr = terms.tranches[2]
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.unlock_time
    receipt = deal.release(2, sender=seller)
    b = tr.base_amount
    cuts = {desk.address: b * 33 // 10_000, introducer.address: b * 17 // 10_000, introducer2.address: b * 9 // 10_000}
    assert sum(cuts.values()) < b * 59 / 10_000  # the floors dropped something: the buyer gets it
    assert track.changes() == {
        wbtc.address: {**cuts, buyer.address: b - sum(cuts.values()), deal.address: -b},
        usdt.address: {seller.address: tr.quote_amount, deal.address: -tr.quote_amount},
    }
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=2,
        caller=seller,
        base_amount=b,
        quote_amount=tr.quote_amount,
        fees=sum(cuts.values()),
    )


def test_all_commissions_zero(mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, seller, tracker):
    terms = mk_dvp(tranches=1, desk_fee_bps=0, introducers=[])
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = terms.tranches[0].unlock_time
    receipt = deal.release(0, sender=desk)
    assert track.changes() == {
        wbtc.address: {buyer.address: terms.base.amount, deal.address: -terms.base.amount},
        usdt.address: {seller.address: terms.quote.amount, deal.address: -terms.quote.amount},
    }
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=desk,
        base_amount=terms.base.amount,
        quote_amount=terms.quote.amount,
        fees=0,
    )
    assert deal.phase() == SETTLED


def test_commissions_at_the_ten_percent_cap(
    mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, introducer, introducer2, lawyer, approver, buyer, tracker
):
    """Four introducers and the desk at exactly 10%: the receiver still gets the exact remainder."""
    intros = [(introducer.address, 100), (introducer2.address, 200), (lawyer.address, 300), (approver.address, 1)]
    terms = mk_dvp(tranches=2, quote_amount=1_000_003, desk_fee_bps=399, introducers=intros)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    track = tracker(deal, [wbtc, usdt])
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time
    deal.release(1, sender=buyer)
    expected = release_split(terms, tr.base_amount, tr.quote_amount)
    assert track.changes() == paid_by(deal, expected)
    assert sum(expected[usdt.address].values()) == tr.quote_amount
    assert expected[usdt.address][approver.address] == tr.quote_amount * 1 // 10_000


# --------------------------------------------------------- approvers and signers
@pytest.fixture(scope="module")
def gated_dvp(mk_dvp, deploy, fund_all, wbtc, usdt, desk, approver, lawyer):
    """DVP where a third-party approver must approve and the lawyer must sign each release."""
    terms = mk_dvp(approvers=[approver.address], signers=[lawyer.address])
    assert (terms.approval_threshold, terms.release_threshold) == (1, 1)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    return terms, deal


def test_dvp_approve(gated_dvp, approver):
    terms, deal = gated_dvp
    receipt = deal.approve(0, sender=approver)  # DVP approvals need no unlock
    expect_event(receipt, deal.Approved, deal, tranche=0, approver=approver, approvals=1)
    assert deal.approvals(0) == 1 and deal.has_approved(0, approver)
    assert deal.approvals(1) == 0 and not deal.has_approved(1, approver)
    assert deal.tranche_status(0) == PENDING


def test_dvp_sign_then_approve_then_anyone_releases(gated_dvp, chain, wbtc, usdt, lawyer, approver, attacker, tracker):
    terms, deal = gated_dvp
    tr = terms.tranches[0]
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.unlock_time
    receipt = deal.release(0, sender=lawyer)  # signature recorded, approval missing: no payout
    expect_event(receipt, deal.Signed, deal, tranche=0, signer=lawyer, signatures=1)
    assert not events(receipt, deal.Released)
    assert deal.signatures(0) == 1 and deal.has_signed(0, lawyer)
    assert deal.tranche_status(0) == PENDING and track.changes() == {}
    deal.approve(0, sender=approver)
    receipt = deal.release(0, sender=attacker)  # conditions hold: anyone completes it
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=attacker,
        base_amount=tr.base_amount,
        quote_amount=tr.quote_amount,
        fees=sum(terms.commissions(tr.quote_amount).values()),
    )
    assert not events(receipt, deal.Signed)
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))
    assert deal.tranche_status(0) == RELEASED


def test_dvp_signer_completes_the_release(gated_dvp, chain, wbtc, usdt, lawyer, approver, tracker):
    terms, deal = gated_dvp
    tr = terms.tranches[1]
    deal.approve(1, sender=approver)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.unlock_time
    receipt = deal.release(1, sender=lawyer)  # signs and pays out in one call
    expect_event(receipt, deal.Signed, deal, tranche=1, signer=lawyer, signatures=1)
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=1,
        caller=lawyer,
        base_amount=tr.base_amount,
        quote_amount=tr.quote_amount,
        fees=sum(terms.commissions(tr.quote_amount).values()),
    )
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))
    assert deal.tranche_status(1) == RELEASED


def test_dvp_signature_before_unlock_waits(gated_dvp, chain, wbtc, usdt, lawyer, approver, attacker, tracker):
    terms, deal = gated_dvp
    tr = terms.tranches[2]
    deal.approve(2, sender=approver)
    chain.pending_timestamp = tr.unlock_time - 10
    receipt = deal.release(2, sender=lawyer)
    expect_event(receipt, deal.Signed, deal, tranche=2, signer=lawyer, signatures=1)
    assert not events(receipt, deal.Released) and deal.tranche_status(2) == PENDING
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.unlock_time
    deal.release(2, sender=attacker)
    assert deal.tranche_status(2) == RELEASED
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))


@pytest.mark.parametrize("who", ["attacker", "buyer", "approver"])
def test_dvp_release_without_signature_reverts(request, gated_dvp, chain, wbtc, usdt, approver, unchanged, who):
    terms, deal = gated_dvp
    deal.approve(0, sender=approver)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    with unchanged(deal, [wbtc, usdt], "release conditions not met"):
        deal.release(0, sender=request.getfixturevalue(who))


def test_dvp_signing_twice_reverts(gated_dvp, chain, wbtc, usdt, lawyer, unchanged):
    terms, deal = gated_dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=lawyer)
    with unchanged(deal, [wbtc, usdt], "release conditions not met"):
        deal.release(0, sender=lawyer)
    assert deal.signatures(0) == 1


@pytest.mark.parametrize("who", ["attacker", "buyer", "seller", "lawyer", "desk", "resolver"])
def test_dvp_approve_by_non_approver_reverts(request, gated_dvp, wbtc, usdt, unchanged, who):
    _, deal = gated_dvp
    with unchanged(deal, [wbtc, usdt], "not an approver"):
        deal.approve(0, sender=request.getfixturevalue(who))


def test_dvp_approve_twice_reverts(gated_dvp, wbtc, usdt, approver, unchanged):
    _, deal = gated_dvp
    deal.approve(0, sender=approver)
    with unchanged(deal, [wbtc, usdt], "already approved"):
        deal.approve(0, sender=approver)


def test_dvp_approve_after_deadline_reverts(gated_dvp, chain, wbtc, usdt, approver, unchanged):
    terms, deal = gated_dvp
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [wbtc, usdt], "deadline passed"):
        deal.approve(0, sender=approver)


def test_dvp_approve_released_tranche_reverts(gated_dvp, chain, wbtc, usdt, approver, lawyer, unchanged):
    terms, deal = gated_dvp
    deal.approve(0, sender=approver)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=lawyer)
    with unchanged(deal, [wbtc, usdt], "tranche not pending"):
        deal.approve(0, sender=approver)


def test_dvp_approve_unknown_tranche_reverts(gated_dvp, wbtc, usdt, approver, unchanged):
    _, deal = gated_dvp
    with unchanged(deal, [wbtc, usdt], "no such tranche"):
        deal.approve(7, sender=approver)


def test_dvp_approve_unfunded_reverts(mk_dvp, deploy, wbtc, usdt, desk, approver, lawyer, unchanged):
    deal = deploy(mk_dvp(approvers=[approver.address], signers=[lawyer.address]), desk)
    with unchanged(deal, [wbtc, usdt], "deal not funded"):
        deal.approve(0, sender=approver)


def test_dvp_approve_after_final_expiry_reverts(gated_dvp, chain, wbtc, usdt, approver, unchanged):
    terms, deal = gated_dvp
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [wbtc, usdt], "deal expired"):
        deal.approve(3, sender=approver)


def test_dvp_two_of_three_approvers(
    mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, seller, approver, attacker, unchanged, tracker
):
    """In DVP the buyer and the seller may approve too (the swap is atomic)."""
    terms = mk_dvp(tranches=1, approvers=[buyer.address, seller.address, approver.address], approval_threshold=2)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    receipt = deal.approve(0, sender=seller)
    expect_event(receipt, deal.Approved, deal, tranche=0, approver=seller, approvals=1)
    with unchanged(deal, [wbtc, usdt], "release conditions not met"):
        deal.release(0, sender=attacker)
    receipt = deal.approve(0, sender=approver)
    expect_event(receipt, deal.Approved, deal, tranche=0, approver=approver, approvals=2)
    assert deal.approvals(0) == 2 and not deal.has_approved(0, buyer)
    track = tracker(deal, [wbtc, usdt])
    deal.release(0, sender=attacker)
    assert track.changes() == paid_by(deal, release_split(terms, terms.base.amount, terms.quote.amount))
    assert deal.phase() == SETTLED


# ------------------------------------------------------------------- receivers
def test_receivers_other_than_buyer_and_seller(
    mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, lawyer, introducer2, introducer, attacker, tracker
):
    terms = mk_dvp(tranches=2, base_receiver=lawyer.address, quote_receiver=introducer2.address)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    track = tracker(deal, [wbtc, usdt])
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.release(0, sender=attacker)
    cuts = terms.commissions(tr.quote_amount)
    assert track.changes() == {
        wbtc.address: {lawyer.address: tr.base_amount, deal.address: -tr.base_amount},
        usdt.address: {
            introducer2.address: tr.quote_amount - sum(cuts.values()),
            desk.address: cuts[desk.address],
            introducer.address: cuts[introducer.address],
            deal.address: -tr.quote_amount,
        },
    }


def test_platform_as_quote_receiver_gets_fee_and_remainder(
    mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, introducer, tracker
):
    terms = mk_dvp(tranches=1, quote_receiver=desk.address)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = terms.tranches[0].unlock_time + DAY // 2
    deal.release(0, sender=buyer)
    q = terms.quote.amount
    intro = q * 10 // 10_000
    assert track.changes() == {
        wbtc.address: {buyer.address: terms.base.amount, deal.address: -terms.base.amount},
        usdt.address: {desk.address: q - intro, introducer.address: intro, deal.address: -q},
    }
