"""ESCROWED: one leg off chain; mark with evidence -> approve -> release by the signers (buyer-driven,
2-of-2, platform-driven), approval window, unlock time, release threshold 0, base held."""

from __future__ import annotations

import pytest
from dealkit import (
    ACTIVE,
    DAY,
    EVIDENCE,
    MARKED,
    PENDING,
    RELEASED,
    SETTLED,
    ZERO,
    events,
    expect_event,
    merge,
    paid_by,
    release_split,
)

from nexotc_client.terms import Leg, LegId, Terms, Tranche


def _quote_payout(terms, deal, tranche):
    return paid_by(deal, release_split(terms, 0, terms.tranches[tranche].quote_amount))


# ----------------------------------------------------------------------- mark
def test_mark(escrowed, chain, usdt, seller, tracker):
    terms, deal = escrowed
    track = tracker(deal, [usdt])
    t = terms.tranches[0].unlock_time - 500  # a mark may come before the unlock time
    chain.pending_timestamp = t
    receipt = deal.mark(0, EVIDENCE, sender=seller)
    expect_event(receipt, deal.Marked, deal, tranche=0, marker=seller, evidence=EVIDENCE)
    assert deal.tranche_status(0) == MARKED
    assert deal.marked_at(0) == t
    assert deal.tranche_status(1) == PENDING and deal.marked_at(1) == 0
    assert deal.held(1) == terms.quote.amount  # marked is still held
    assert deal.phase() == ACTIVE
    assert track.changes() == {}


def test_mark_at_the_deadline(escrowed, chain, seller):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[1].deadline
    deal.mark(1, EVIDENCE, sender=seller)
    assert deal.tranche_status(1) == MARKED


@pytest.mark.parametrize("who", ["buyer", "attacker", "desk", "resolver", "introducer"])
def test_mark_by_non_marker_reverts(request, escrowed, usdt, unchanged, who):
    _, deal = escrowed
    with unchanged(deal, [usdt], "not a marker"):
        deal.mark(0, EVIDENCE, sender=request.getfixturevalue(who))


def test_mark_twice_reverts(escrowed, usdt, seller, unchanged):
    _, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    with unchanged(deal, [usdt], "tranche not pending"):
        deal.mark(0, b"\x33" * 32, sender=seller)


def test_mark_after_deadline_reverts(escrowed, chain, usdt, seller, unchanged):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [usdt], "delivery deadline passed"):
        deal.mark(0, EVIDENCE, sender=seller)


def test_mark_unknown_tranche_reverts(escrowed, usdt, seller, unchanged):
    _, deal = escrowed
    with unchanged(deal, [usdt], "no such tranche"):
        deal.mark(2, EVIDENCE, sender=seller)


def test_mark_unfunded_reverts(mk_escrowed, deploy, usdt, desk, seller, unchanged):
    deal = deploy(mk_escrowed(), desk)
    with unchanged(deal, [usdt], "deal not funded"):
        deal.mark(0, EVIDENCE, sender=seller)


def test_mark_after_final_expiry_reverts(escrowed, chain, usdt, seller, unchanged):
    terms, deal = escrowed
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [usdt], "deal expired"):
        deal.mark(0, EVIDENCE, sender=seller)


def test_mark_in_dvp_reverts(dvp, wbtc, usdt, seller, unchanged):
    _, deal = dvp
    with unchanged(deal, [wbtc, usdt], "no marks in DVP"):
        deal.mark(0, EVIDENCE, sender=seller)


# -------------------------------------------------------------------- approve
def test_approve_marked_tranche(escrowed, usdt, seller, buyer, tracker):
    _, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    track = tracker(deal, [usdt])
    receipt = deal.approve(0, sender=buyer)
    expect_event(receipt, deal.Approved, deal, tranche=0, approver=buyer, approvals=1)
    assert deal.approvals(0) == 1 and deal.has_approved(0, buyer) and not deal.has_approved(0, seller)
    assert deal.tranche_status(0) == MARKED and track.changes() == {}


def test_approve_unmarked_tranche_reverts(escrowed, usdt, buyer, unchanged):
    _, deal = escrowed
    with unchanged(deal, [usdt], "tranche not marked"):
        deal.approve(0, sender=buyer)


@pytest.mark.parametrize("who", ["seller", "attacker", "desk", "resolver", "lawyer"])
def test_approve_by_non_approver_reverts(request, escrowed, usdt, seller, unchanged, who):
    _, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    with unchanged(deal, [usdt], "not an approver"):
        deal.approve(0, sender=request.getfixturevalue(who))


def test_approve_twice_reverts(escrowed, usdt, seller, buyer, unchanged):
    _, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    with unchanged(deal, [usdt], "already approved"):
        deal.approve(0, sender=buyer)


def test_approve_released_tranche_reverts(escrowed, chain, usdt, seller, buyer, unchanged):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    deal.release(0, sender=buyer)
    with unchanged(deal, [usdt], "tranche not marked"):
        deal.approve(0, sender=buyer)


# ------------------------------------------------------- buyer-driven release
def test_buyer_driven_release(escrowed, chain, usdt, seller, buyer, desk, introducer, tracker):
    terms, deal = escrowed
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    track = tracker(deal, [usdt])
    receipt = deal.release(0, sender=buyer)
    cuts = terms.commissions(tr.quote_amount)
    fees = sum(cuts.values())
    assert track.changes() == {
        usdt.address: {
            seller.address: tr.quote_amount - fees,
            desk.address: cuts[desk.address],
            introducer.address: cuts[introducer.address],
            deal.address: -tr.quote_amount,
        }
    }
    expect_event(receipt, deal.Signed, deal, tranche=0, signer=buyer, signatures=1)
    expect_event(
        receipt, deal.Released, deal, tranche=0, caller=buyer, base_amount=0, quote_amount=tr.quote_amount, fees=fees
    )
    assert deal.tranche_status(0) == RELEASED
    assert deal.held(1) == terms.quote.amount - tr.quote_amount
    assert deal.phase() == ACTIVE


def test_both_tranches_released_settle(escrowed, chain, usdt, seller, buyer, tracker):
    terms, deal = escrowed
    track = tracker(deal, [usdt])
    for i, tr in enumerate(terms.tranches):
        chain.pending_timestamp = tr.unlock_time
        deal.mark(i, EVIDENCE, sender=seller)
        deal.approve(i, sender=buyer)
        deal.release(i, sender=buyer)
    per_tranche = [release_split(terms, 0, tr.quote_amount) for tr in terms.tranches]
    assert track.changes() == paid_by(deal, merge(*per_tranche))
    assert usdt.balanceOf(deal) == 0 and deal.phase() == SETTLED and deal.held(1) == 0


def test_signature_first_then_approval_then_anyone_completes(escrowed, chain, usdt, seller, buyer, attacker, tracker):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    receipt = deal.release(0, sender=buyer)  # signs; approval missing
    expect_event(receipt, deal.Signed, deal, tranche=0, signer=buyer, signatures=1)
    assert not events(receipt, deal.Released)
    assert deal.signatures(0) == 1 and deal.has_signed(0, buyer) and deal.tranche_status(0) == MARKED
    deal.approve(0, sender=buyer)
    track = tracker(deal, [usdt])
    receipt = deal.release(0, sender=attacker)
    assert not events(receipt, deal.Signed)
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=attacker,
        base_amount=0,
        quote_amount=terms.tranches[0].quote_amount,
        fees=sum(terms.commissions(terms.tranches[0].quote_amount).values()),
    )
    assert track.changes() == _quote_payout(terms, deal, 0)


@pytest.mark.parametrize("who", ["attacker", "seller", "desk"])
def test_release_without_signature_reverts(request, escrowed, chain, usdt, seller, buyer, unchanged, who):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(0, sender=request.getfixturevalue(who))


def test_signer_repeating_before_approval_reverts(escrowed, chain, usdt, seller, buyer, unchanged):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.release(0, sender=buyer)
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(0, sender=buyer)


def test_release_unmarked_reverts(escrowed, chain, usdt, buyer, unchanged):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    with unchanged(deal, [usdt], "tranche not marked"):
        deal.release(0, sender=buyer)


def test_release_unknown_tranche_reverts(escrowed, usdt, buyer, unchanged):
    _, deal = escrowed
    with unchanged(deal, [usdt], "tranche not marked"):
        deal.release(5, sender=buyer)


def test_marked_tranche_releases_after_its_deadline(escrowed, chain, usdt, seller, buyer, tracker):
    """The deadline bounds delivery (the mark), not the release of a delivered tranche."""
    terms, deal = escrowed
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.deadline
    deal.mark(0, EVIDENCE, sender=seller)
    track = tracker(deal, [usdt])
    chain.pending_timestamp = tr.deadline + 5 * DAY
    deal.approve(0, sender=buyer)
    deal.release(0, sender=buyer)
    assert track.changes() == _quote_payout(terms, deal, 0)


def test_unlock_time_holds_the_payout(escrowed, chain, usdt, seller, buyer, attacker, unchanged, tracker):
    terms, deal = escrowed
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time - 3600
    deal.mark(1, EVIDENCE, sender=seller)
    deal.approve(1, sender=buyer)
    receipt = deal.release(1, sender=buyer)  # signs, but locked until unlock_time
    expect_event(receipt, deal.Signed, deal, tranche=1, signer=buyer, signatures=1)
    assert not events(receipt, deal.Released) and deal.tranche_status(1) == MARKED
    chain.pending_timestamp = tr.unlock_time - 1
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(1, sender=attacker)
    track = tracker(deal, [usdt])
    chain.pending_timestamp = tr.unlock_time
    deal.release(1, sender=attacker)
    assert deal.tranche_status(1) == RELEASED
    assert track.changes() == _quote_payout(terms, deal, 1)


def test_release_after_final_expiry_reverts(escrowed, chain, usdt, seller, buyer, unchanged):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [usdt], "deal expired"):
        deal.release(0, sender=buyer)


# --------------------------------------------------------------- 2-of-2 signers
@pytest.fixture(scope="module")
def two_signers(mk_escrowed, deploy, fund_all, usdt, desk, buyer, lawyer):
    terms = mk_escrowed(signers=[buyer.address, lawyer.address])
    assert terms.release_threshold == 2
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    return terms, deal


def test_two_of_two_buyer_and_lawyer(two_signers, chain, usdt, seller, buyer, lawyer, tracker):
    terms, deal = two_signers
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    receipt = deal.release(0, sender=buyer)
    expect_event(receipt, deal.Signed, deal, tranche=0, signer=buyer, signatures=1)
    assert not events(receipt, deal.Released) and deal.tranche_status(0) == MARKED
    assert (deal.has_signed(0, buyer), deal.has_signed(0, lawyer)) == (True, False)
    track = tracker(deal, [usdt])
    receipt = deal.release(0, sender=lawyer)
    expect_event(receipt, deal.Signed, deal, tranche=0, signer=lawyer, signatures=2)
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=lawyer,
        base_amount=0,
        quote_amount=terms.tranches[0].quote_amount,
        fees=sum(terms.commissions(terms.tranches[0].quote_amount).values()),
    )
    assert track.changes() == _quote_payout(terms, deal, 0)


def test_two_of_two_one_signature_is_not_enough(two_signers, chain, usdt, seller, buyer, lawyer, attacker, unchanged):
    terms, deal = two_signers
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    deal.release(0, sender=lawyer)
    assert deal.signatures(0) == 1
    for who in (attacker, lawyer):
        with unchanged(deal, [usdt], "release conditions not met"):
            deal.release(0, sender=who)


def test_lawyer_cannot_approve(two_signers, usdt, seller, lawyer, unchanged):
    _, deal = two_signers
    deal.mark(0, EVIDENCE, sender=seller)
    with unchanged(deal, [usdt], "not an approver"):
        deal.approve(0, sender=lawyer)


# --------------------------------------------------------- platform-driven release
@pytest.fixture(scope="module")
def platform_driven(mk_escrowed, deploy, fund_all, usdt, desk):
    terms = mk_escrowed(approvers=[desk.address], signers=[desk.address])
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    return terms, deal


def test_platform_driven_release(platform_driven, chain, usdt, seller, desk, introducer, tracker):
    terms, deal = platform_driven
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(1, EVIDENCE, sender=seller)
    receipt = deal.approve(1, sender=desk)
    expect_event(receipt, deal.Approved, deal, tranche=1, approver=desk, approvals=1)
    track = tracker(deal, [usdt])
    receipt = deal.release(1, sender=desk)
    expect_event(receipt, deal.Signed, deal, tranche=1, signer=desk, signatures=1)
    cuts = terms.commissions(tr.quote_amount)
    assert track.changes() == {
        usdt.address: {
            seller.address: tr.quote_amount - sum(cuts.values()),
            desk.address: cuts[desk.address],
            introducer.address: cuts[introducer.address],
            deal.address: -tr.quote_amount,
        }
    }


def test_platform_driven_buyer_has_no_say(platform_driven, chain, usdt, seller, buyer, desk, unchanged):
    terms, deal = platform_driven
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    with unchanged(deal, [usdt], "not an approver"):
        deal.approve(0, sender=buyer)
    deal.approve(0, sender=desk)
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(0, sender=buyer)


# ------------------------------------------------------------- approval window
@pytest.fixture(scope="module")
def windowed(mk_escrowed, deploy, fund_all, usdt, desk):
    terms = mk_escrowed(approval_window=2 * DAY)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    return terms, deal


def test_anyone_releases_after_the_approval_window(windowed, chain, usdt, seller, attacker, unchanged, tracker):
    terms, deal = windowed
    t = terms.tranches[0].unlock_time + 100
    chain.pending_timestamp = t
    deal.mark(0, EVIDENCE, sender=seller)
    chain.pending_timestamp = t + 2 * DAY - 1
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(0, sender=attacker)
    track = tracker(deal, [usdt])
    chain.pending_timestamp = t + 2 * DAY
    receipt = deal.release(0, sender=attacker)  # no approval, no signature
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=attacker,
        base_amount=0,
        quote_amount=terms.tranches[0].quote_amount,
        fees=sum(terms.commissions(terms.tranches[0].quote_amount).values()),
    )
    assert deal.approvals(0) == 0
    assert track.changes() == _quote_payout(terms, deal, 0)


def test_approval_window_still_waits_for_unlock(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, seller, attacker, unchanged
):
    terms = mk_escrowed(approval_window=3600)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    tr = terms.tranches[1]
    t = tr.unlock_time - 2 * 3600
    chain.pending_timestamp = t
    deal.mark(1, EVIDENCE, sender=seller)
    chain.pending_timestamp = tr.unlock_time - 1  # the window has passed, the unlock has not
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(1, sender=attacker)
    chain.pending_timestamp = tr.unlock_time
    deal.release(1, sender=attacker)
    assert deal.tranche_status(1) == RELEASED


def test_within_the_window_the_normal_path_works(windowed, chain, usdt, seller, buyer, tracker):
    terms, deal = windowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    track = tracker(deal, [usdt])
    deal.release(0, sender=buyer)
    assert track.changes() == _quote_payout(terms, deal, 0)


# --------------------------------------------------------- release threshold 0
def test_release_threshold_zero_anyone_releases_after_approval(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, seller, buyer, attacker, unchanged, tracker
):
    terms = mk_escrowed(signers=[])
    assert terms.release_threshold == 0
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(0, sender=attacker)  # the approval is still required
    deal.approve(0, sender=buyer)
    track = tracker(deal, [usdt])
    receipt = deal.release(0, sender=attacker)
    assert not events(receipt, deal.Signed)
    assert track.changes() == _quote_payout(terms, deal, 0)


# ------------------------------------------------------------------ base held
@pytest.fixture(scope="module")
def base_held(t0, deploy, fund_all, wbtc, buyer, seller, desk, resolver, introducer):
    """WBTC held on chain, the fiat (quote) paid off chain: the buyer marks the wire sent, the
    seller (not paid by the held leg) approves and signs; commissions on the base leg."""
    start = t0 + 1_000
    terms = Terms.build(
        base=Leg(wbtc.address, 5 * 10**8 + 1),
        quote=Leg(ZERO, 325_000 * 10**6, on_chain=False),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=[
            Tranche(2 * 10**8, 130_000 * 10**6, start, start + DAY),
            Tranche(3 * 10**8 + 1, 195_000 * 10**6, start + DAY, start + 2 * DAY),
        ],
        funding_deadline=t0 + DAY,
        final_expiry=start + 12 * DAY,
        markers=[buyer.address],
        approvers=[seller.address],
        signers=[seller.address],
        desk_fee_bps=25,
        introducers=[(introducer.address, 10)],
        fee_leg=LegId.BASE,
        resolver_fee_bps=100,
        dispute_timeout=3 * DAY,
    )
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, None)
    return terms, deal


def test_base_held_release_pays_the_buyer(base_held, chain, wbtc, buyer, seller, desk, introducer, tracker):
    terms, deal = base_held
    assert deal.mode() == 1 and deal.phase() == ACTIVE
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(1, EVIDENCE, sender=buyer)
    deal.approve(1, sender=seller)
    track = tracker(deal, [wbtc])
    receipt = deal.release(1, sender=seller)
    b = tr.base_amount
    cuts = {desk.address: b * 25 // 10_000, introducer.address: b * 10 // 10_000}
    assert track.changes() == {wbtc.address: {**cuts, buyer.address: b - sum(cuts.values()), deal.address: -b}}
    expect_event(
        receipt, deal.Released, deal, tranche=1, caller=seller, base_amount=b, quote_amount=0, fees=sum(cuts.values())
    )
    assert deal.held(0) == terms.base.amount - b and deal.held(1) == 0


def test_base_held_roles(base_held, wbtc, buyer, seller, unchanged):
    _, deal = base_held
    with unchanged(deal, [wbtc], "not a marker"):
        deal.mark(0, EVIDENCE, sender=seller)
    deal.mark(0, EVIDENCE, sender=buyer)
    with unchanged(deal, [wbtc], "not an approver"):
        deal.approve(0, sender=buyer)


def test_escrowed_third_party_quote_receiver(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, seller, buyer, introducer, introducer2, tracker
):
    """The held USDT goes to the quote receiver named in the terms (here not the seller)."""
    terms = mk_escrowed(quote_receiver=introducer2.address)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    track = tracker(deal, [usdt])
    deal.release(0, sender=buyer)
    cuts = terms.commissions(tr.quote_amount)
    assert track.changes() == {
        usdt.address: {
            introducer2.address: tr.quote_amount - sum(cuts.values()),
            desk.address: cuts[desk.address],
            introducer.address: cuts[introducer.address],
            deal.address: -tr.quote_amount,
        }
    }
    assert usdt.balanceOf(seller) == 0
