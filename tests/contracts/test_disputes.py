"""dispute / resolve / settle_dispute: exact splits, the resolver fee cap, default outcomes."""

from __future__ import annotations

import pytest
from dealkit import (
    DAY,
    DISPUTED,
    EVIDENCE,
    MARKED,
    PENDING,
    REASON,
    RELEASED,
    RESOLVED,
    add_payment,
    events,
    expect_event,
    merge,
    on_chain,
    paid_by,
    release_split,
    split_tuple,
)

from nexotc_client.terms import DisputeDefault


def split_payments(terms, base, quote) -> dict:
    """{token: {payee: amount}} of a resolution: receivers (with commissions on the fee leg),
    funders (seller: base, buyer: quote) and the resolver."""
    out = release_split(terms, base[0], quote[0])
    extra: dict = {}
    add_payment(extra, terms.base.token, terms.seller, base[1])
    add_payment(extra, terms.quote.token, terms.buyer, quote[1])
    add_payment(extra, terms.base.token, terms.resolver, base[2])
    add_payment(extra, terms.quote.token, terms.resolver, quote[2])
    return merge(out, extra)


def resolved_event(receipt, deal) -> dict:
    found = events(receipt, deal.Resolved, deal)
    assert len(found) == 1
    ev = found[0]
    return {**ev, "base": split_tuple(ev["base"]), "quote": split_tuple(ev["quote"])}


def default_event(caller, base: tuple, quote: tuple, tranche: int = 0) -> dict:
    """The Resolved event of settle_dispute (by_default) called by `caller` with these splits."""
    return {"tranche": tranche, "resolver": caller.address, "base": base, "quote": quote, "by_default": True}


# ---------------------------------------------------------------------- dispute
@pytest.mark.parametrize("who", ["buyer", "seller"])
def test_dispute_pending_tranche(request, dvp, chain, wbtc, usdt, tracker, who):
    terms, deal = dvp
    party = request.getfixturevalue(who)
    track = tracker(deal, [wbtc, usdt])
    t = terms.tranches[1].deadline  # a pending tranche may be disputed up to its deadline
    chain.pending_timestamp = t
    receipt = deal.dispute(1, REASON, sender=party)
    expect_event(receipt, deal.Disputed, deal, tranche=1, party=party, reason=REASON)
    assert deal.tranche_status(1) == DISPUTED
    assert deal.disputed_at(1) == t
    assert deal.held(0) == terms.base.amount and deal.held(1) == terms.quote.amount
    assert track.changes() == {}


def test_dispute_marked_tranche(escrowed, chain, usdt, seller, buyer):
    terms, deal = escrowed
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    t = terms.tranches[0].deadline + 3 * 86_400  # a marked tranche has no delivery deadline any more
    chain.pending_timestamp = t
    receipt = deal.dispute(0, REASON, sender=buyer)
    expect_event(receipt, deal.Disputed, deal, tranche=0, party=buyer, reason=REASON)
    assert deal.tranche_status(0) == DISPUTED and deal.disputed_at(0) == t
    assert deal.marked_at(0) == terms.tranches[0].unlock_time


def test_the_approval_window_closes_disputes_of_the_mark(mk_escrowed, deploy, fund_all, chain, usdt, desk, seller,
                                                        buyer, attacker, unchanged):  # fmt: skip
    """ESCROWED with an approval window: silence for the window after the mark accepts the delivery. The buyer
    disputes within it, not after, even before the tranche unlocks (it cannot freeze an accepted delivery and
    take the default refund); anyone then releases at the unlock."""
    terms = mk_escrowed(approval_window=600)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    t0 = terms.tranches[0].unlock_time - 800  # the seller delivers early: the window ends before the unlock
    chain.pending_timestamp = t0
    deal.mark(0, EVIDENCE, sender=seller)
    deal.mark(1, EVIDENCE, sender=seller)
    chain.pending_timestamp = t0 + 599  # the window's last second: tranche 1 may still be disputed
    deal.dispute(1, REASON, sender=buyer)
    assert deal.tranche_status(1) == DISPUTED
    chain.pending_timestamp = t0 + 600
    with unchanged(deal, [usdt], "approval window passed"):
        deal.dispute(0, REASON, sender=buyer)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=attacker)
    assert deal.tranche_status(0) == RELEASED


@pytest.mark.parametrize("who", ["attacker", "desk", "resolver", "introducer", "lawyer"])
def test_dispute_by_outsider_reverts(request, dvp, wbtc, usdt, unchanged, who):
    _, deal = dvp
    with unchanged(deal, [wbtc, usdt], "not buyer or seller"):
        deal.dispute(0, REASON, sender=request.getfixturevalue(who))


def test_dispute_by_approver_or_marker_role_only_reverts(
    mk_escrowed, deploy, fund_all, usdt, desk, lawyer, approver, unchanged
):
    terms = mk_escrowed(markers=[lawyer.address], approvers=[approver.address], signers=[approver.address])
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    for who in (lawyer, approver):
        with unchanged(deal, [usdt], "not buyer or seller"):
            deal.dispute(0, REASON, sender=who)


def test_dispute_pending_after_deadline_reverts(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [wbtc, usdt], "deadline passed"):
        deal.dispute(0, REASON, sender=buyer)


def test_dispute_closed_tranches_reverts(dvp, chain, wbtc, usdt, buyer, seller, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=buyer)
    deal.dispute(1, REASON, sender=seller)
    chain.pending_timestamp = terms.tranches[2].deadline + 1
    deal.refund(2, sender=buyer)
    for tranche in (0, 1, 2):  # released, disputed, refunded
        with unchanged(deal, [wbtc, usdt], "tranche not open"):
            deal.dispute(tranche, REASON, sender=buyer)


def test_dispute_unknown_tranche_reverts(dvp, wbtc, usdt, buyer, unchanged):
    _, deal = dvp
    with unchanged(deal, [wbtc, usdt], "no such tranche"):
        deal.dispute(4, REASON, sender=buyer)


def test_dispute_unfunded_reverts(mk_escrowed, deploy, usdt, desk, buyer, unchanged):
    deal = deploy(mk_escrowed(), desk)
    with unchanged(deal, [usdt], "deal not funded"):
        deal.dispute(0, REASON, sender=buyer)


def test_dispute_after_final_expiry_reverts(escrowed, chain, usdt, seller, buyer, unchanged):
    terms, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [usdt], "deal expired"):
        deal.dispute(0, REASON, sender=buyer)


def test_dispute_too_close_to_final_expiry_reverts(escrowed, chain, usdt, seller, buyer, unchanged):
    terms, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    chain.pending_timestamp = terms.final_expiry - terms.dispute_timeout  # the first second refused
    with unchanged(deal, [usdt], "too close to final expiry"):
        deal.dispute(0, REASON, sender=buyer)


@pytest.mark.parametrize("case", ["escrowed marked tranche", "dvp pending tranche at minimum final expiry"])
def test_latest_dispute_still_reaches_its_default_outcome(
    mk_escrowed, mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, seller, buyer, attacker, tracker, case
):
    """dispute(): "Allowed only while the dispute timeout still ends before the final expiry, so
    the default outcome is always reachable" (README: the final expiry rule exists "so a dispute's
    default outcome is always reachable before expiry"). Whatever the latest accepted dispute is,
    settle_dispute must work once its timeout has passed."""
    if case.startswith("escrowed"):
        terms = mk_escrowed(dispute_default=DisputeDefault.RELEASE)
        deal = deploy(terms, desk)
        fund_all(deal, terms, None, usdt)
        chain.pending_timestamp = terms.tranches[0].unlock_time
        deal.mark(0, EVIDENCE, sender=seller)
        latest = terms.final_expiry - terms.dispute_timeout - 1  # the last second dispute() accepts
    else:
        # the smallest final expiry the factory accepts: last deadline + approval window (0) + timeout + 1
        base = mk_dvp(tranches=1)
        terms = mk_dvp(
            tranches=1,
            dispute_default=DisputeDefault.RELEASE,
            final_expiry=base.tranches[0].deadline + base.dispute_timeout + 1,
        )
        deal = deploy(terms, desk)
        fund_all(deal, terms, wbtc, usdt)
        latest = terms.tranches[0].deadline  # a pending tranche can be disputed up to its deadline
        assert latest == terms.final_expiry - terms.dispute_timeout - 1
    chain.pending_timestamp = latest
    deal.dispute(0, REASON, sender=buyer)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = latest + terms.dispute_timeout  # the dispute timeout is reached
    deal.settle_dispute(0, sender=attacker)  # the timeout ends before the final expiry
    assert deal.tranche_status(0) == RESOLVED
    tr = terms.tranches[0]
    assert track.changes() == paid_by(deal, release_split(terms, *on_chain(terms, tr)))


def test_one_second_earlier_the_default_outcome_is_reachable(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, seller, buyer, attacker, tracker
):
    terms = mk_escrowed(dispute_default=DisputeDefault.RELEASE)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    t = terms.final_expiry - terms.dispute_timeout - 1
    chain.pending_timestamp = t
    deal.dispute(0, REASON, sender=buyer)
    track = tracker(deal, [usdt])
    chain.pending_timestamp = t + terms.dispute_timeout
    deal.settle_dispute(0, sender=attacker)
    assert track.changes() == paid_by(deal, release_split(terms, 0, terms.tranches[0].quote_amount))


def test_disputed_tranche_is_frozen(dvp, chain, wbtc, usdt, buyer, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.dispute(0, REASON, sender=buyer)
    with unchanged(deal, [wbtc, usdt], "tranche not pending"):
        deal.release(0, sender=buyer)
    chain.pending_timestamp = terms.tranches[0].deadline + 1
    with unchanged(deal, [wbtc, usdt], "tranche not pending"):
        deal.refund(0, sender=buyer)


def test_disputed_escrowed_tranche_is_frozen(escrowed, chain, usdt, seller, buyer, unchanged):
    terms, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    deal.dispute(0, REASON, sender=buyer)
    for call, reason in ((deal.approve, "tranche not marked"), (deal.release, "tranche not marked")):
        with unchanged(deal, [usdt], reason):
            call(0, sender=buyer)
    with unchanged(deal, [usdt], "tranche not pending"):
        deal.mark(0, EVIDENCE, sender=seller)


# ---------------------------------------------------------------------- resolve
@pytest.fixture
def disputed_dvp(dvp, chain, buyer):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.dispute(0, REASON, sender=buyer)
    return terms, deal


def test_resolve_exact_split(disputed_dvp, wbtc, usdt, resolver, tracker):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    b_fee, q_fee = tr.base_amount // 100, tr.quote_amount // 100  # exactly the 100 bps cap
    base = (3_000_000_000, tr.base_amount - 3_000_000_000 - b_fee, b_fee)
    quote = (2_000_000_000_001, tr.quote_amount - 2_000_000_000_001 - q_fee, q_fee)
    track = tracker(deal, [wbtc, usdt])
    receipt = deal.resolve(0, base, quote, sender=resolver)
    expected = split_payments(terms, base, quote)
    assert track.changes() == paid_by(deal, expected)
    assert expected[usdt.address][resolver.address] == q_fee
    assert expected[wbtc.address][resolver.address] == b_fee
    assert resolved_event(receipt, deal) == {
        "tranche": 0,
        "resolver": resolver.address,
        "base": base,
        "quote": quote,
        "by_default": False,
    }
    assert deal.tranche_status(0) == RESOLVED
    assert deal.held(0) == terms.base.amount - tr.base_amount
    assert deal.held(1) == terms.quote.amount - tr.quote_amount


def test_resolve_all_to_receivers_pays_commissions(disputed_dvp, wbtc, usdt, resolver, tracker):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    track = tracker(deal, [wbtc, usdt])
    deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=resolver)
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))


def test_resolve_all_back_to_funders(disputed_dvp, wbtc, usdt, resolver, buyer, seller, tracker):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    track = tracker(deal, [wbtc, usdt])
    deal.resolve(0, (0, tr.base_amount, 0), (0, tr.quote_amount, 0), sender=resolver)
    assert track.changes() == {
        wbtc.address: {seller.address: tr.base_amount, deal.address: -tr.base_amount},
        usdt.address: {buyer.address: tr.quote_amount, deal.address: -tr.quote_amount},
    }


@pytest.mark.parametrize("who", ["attacker", "buyer", "seller", "desk", "introducer"])
def test_resolve_by_non_resolver_reverts(request, disputed_dvp, wbtc, usdt, unchanged, who):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    with unchanged(deal, [wbtc, usdt], "not the resolver"):
        deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=request.getfixturevalue(who))


def test_resolve_undisputed_reverts(dvp, wbtc, usdt, resolver, unchanged):
    terms, deal = dvp
    tr = terms.tranches[1]
    with unchanged(deal, [wbtc, usdt], "tranche not disputed"):
        deal.resolve(1, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=resolver)


def test_resolve_twice_reverts(disputed_dvp, wbtc, usdt, resolver, unchanged):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=resolver)
    with unchanged(deal, [wbtc, usdt], "tranche not disputed"):
        deal.resolve(0, (0, tr.base_amount, 0), (0, tr.quote_amount, 0), sender=resolver)


BAD_SPLITS = [
    ("base short", lambda b, q: ((b - 1, 0, 0), (q, 0, 0)), "split must equal the tranche"),
    ("base long", lambda b, q: ((b, 1, 0), (q, 0, 0)), "split must equal the tranche"),
    ("quote short", lambda b, q: ((b, 0, 0), (0, q - 1, 0)), "split must equal the tranche"),
    ("quote long", lambda b, q: ((b, 0, 0), (q, 0, 1)), "split must equal the tranche"),
    (
        "base resolver above cap",
        lambda b, q: ((b - b // 100 - 1, 0, b // 100 + 1), (q, 0, 0)),
        "resolver fee above cap",
    ),
    (
        "quote resolver above cap",
        lambda b, q: ((b, 0, 0), (0, q - q // 100 - 1, q // 100 + 1)),
        "resolver fee above cap",
    ),
    ("everything to the resolver", lambda b, q: ((0, 0, b), (0, 0, q)), "resolver fee above cap"),
]


@pytest.mark.parametrize("case,make,reason", BAD_SPLITS, ids=[c[0] for c in BAD_SPLITS])
def test_resolve_bad_split_reverts(disputed_dvp, wbtc, usdt, resolver, unchanged, case, make, reason):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    base, quote = make(tr.base_amount, tr.quote_amount)
    with unchanged(deal, [wbtc, usdt], reason):
        deal.resolve(0, base, quote, sender=resolver)


def test_resolver_fee_cap_zero(mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, resolver, unchanged, tracker):
    terms = mk_dvp(tranches=1, resolver_fee_bps=0)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.dispute(0, REASON, sender=buyer)
    b, q = terms.base.amount, terms.quote.amount
    with unchanged(deal, [wbtc, usdt], "resolver fee above cap"):
        deal.resolve(0, (b - 1, 0, 1), (q, 0, 0), sender=resolver)
    track = tracker(deal, [wbtc, usdt])
    deal.resolve(0, (b // 2, b - b // 2, 0), (q // 3, q - q // 3, 0), sender=resolver)
    changes = track.changes()
    assert resolver.address not in changes[wbtc.address] and resolver.address not in changes[usdt.address]


def test_resolve_escrowed_quote_only(escrowed, chain, usdt, seller, buyer, resolver, unchanged, tracker):
    terms, deal = escrowed
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(1, EVIDENCE, sender=seller)
    deal.dispute(1, REASON, sender=seller)
    q = tr.quote_amount
    # the off-chain leg must be all zeros
    with unchanged(deal, [usdt], "split must equal the tranche"):
        deal.resolve(1, (tr.base_amount, 0, 0), (q, 0, 0), sender=resolver)
    quote = (q // 2 + 1, q - q // 2 - 1 - q // 100, q // 100)
    track = tracker(deal, [usdt])
    receipt = deal.resolve(1, (0, 0, 0), quote, sender=resolver)
    assert track.changes() == paid_by(deal, split_payments(terms, (0, 0, 0), quote))
    ev = resolved_event(receipt, deal)
    assert ev["base"] == (0, 0, 0) and ev["quote"] == quote and not ev["by_default"]


def test_resolve_after_final_expiry_reverts(disputed_dvp, chain, wbtc, usdt, resolver, unchanged):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [wbtc, usdt], "deal expired"):
        deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=resolver)


# --------------------------------------------------------------- settle_dispute
def test_settle_default_refund(disputed_dvp, chain, wbtc, usdt, buyer, seller, attacker, unchanged, tracker):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    at = deal.disputed_at(0)
    chain.pending_timestamp = at + terms.dispute_timeout - 1
    with unchanged(deal, [wbtc, usdt], "dispute timeout not reached"):
        deal.settle_dispute(0, sender=attacker)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = at + terms.dispute_timeout
    receipt = deal.settle_dispute(0, sender=attacker)
    assert track.changes() == {
        wbtc.address: {seller.address: tr.base_amount, deal.address: -tr.base_amount},
        usdt.address: {buyer.address: tr.quote_amount, deal.address: -tr.quote_amount},
    }
    assert resolved_event(receipt, deal) == {
        "tranche": 0,
        "resolver": attacker.address,
        "base": (0, tr.base_amount, 0),
        "quote": (0, tr.quote_amount, 0),
        "by_default": True,
    }
    assert deal.tranche_status(0) == RESOLVED


def test_settle_default_release_dvp(mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, seller, attacker, tracker):
    terms = mk_dvp(tranches=2, dispute_default=DisputeDefault.RELEASE)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time
    deal.dispute(1, REASON, sender=seller)
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = deal.disputed_at(1) + terms.dispute_timeout
    receipt = deal.settle_dispute(1, sender=attacker)
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))
    ev = resolved_event(receipt, deal)
    assert (ev["base"], ev["quote"], ev["by_default"]) == ((tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), True)


@pytest.fixture(scope="module")
def release_default(mk_escrowed, deploy, fund_all, usdt, desk):
    terms = mk_escrowed(dispute_default=DisputeDefault.RELEASE)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    return terms, deal


def test_settle_default_release_of_marked_escrowed(release_default, chain, usdt, seller, buyer, attacker, tracker):
    """The buyer (payer, sole approver and signer) disputes a marked tranche it never approved nor
    signed: losing its contest, its own consent is all the release lacks, so the default releases.
    Its consent is recorded for settle_dispute only: the approvals / signatures views stay at 0."""
    terms, deal = release_default
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.dispute(0, REASON, sender=buyer)
    assert (deal.approvals(0), deal.signatures(0)) == (0, 0)
    assert not deal.has_approved(0, buyer) and not deal.has_signed(0, buyer)
    track = tracker(deal, [usdt])
    chain.pending_timestamp = deal.disputed_at(0) + terms.dispute_timeout
    receipt = deal.settle_dispute(0, sender=attacker)
    assert track.changes() == paid_by(deal, release_split(terms, 0, tr.quote_amount))
    assert resolved_event(receipt, deal) == default_event(attacker, (0, 0, 0), (tr.quote_amount, 0, 0))
    assert (deal.approvals(0), deal.signatures(0)) == (0, 0)


def test_settle_default_release_of_unmarked_escrowed_refunds(
    release_default, chain, usdt, seller, buyer, attacker, tracker
):
    """A dispute cannot stand in for delivery: a never-marked tranche is refunded."""
    terms, deal = release_default
    tr = terms.tranches[1]
    chain.pending_timestamp = tr.unlock_time
    deal.dispute(1, REASON, sender=seller)
    assert deal.marked_at(1) == 0
    track = tracker(deal, [usdt])
    chain.pending_timestamp = deal.disputed_at(1) + terms.dispute_timeout
    receipt = deal.settle_dispute(1, sender=attacker)
    assert track.changes() == {usdt.address: {buyer.address: tr.quote_amount, deal.address: -tr.quote_amount}}
    ev = resolved_event(receipt, deal)
    assert (ev["base"], ev["quote"], ev["by_default"]) == ((0, 0, 0), (0, tr.quote_amount, 0), True)


def test_settle_undisputed_reverts(dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = dvp
    chain.pending_timestamp = terms.tranches[0].unlock_time + terms.dispute_timeout
    with unchanged(deal, [wbtc, usdt], "tranche not disputed"):
        deal.settle_dispute(0, sender=attacker)


def test_settle_after_resolve_reverts(disputed_dvp, chain, wbtc, usdt, resolver, attacker, unchanged):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=resolver)
    chain.pending_timestamp = deal.disputed_at(0) + terms.dispute_timeout
    with unchanged(deal, [wbtc, usdt], "tranche not disputed"):
        deal.settle_dispute(0, sender=attacker)


def test_resolver_may_still_act_after_the_timeout(disputed_dvp, chain, wbtc, usdt, resolver, tracker):
    terms, deal = disputed_dvp
    tr = terms.tranches[0]
    chain.pending_timestamp = deal.disputed_at(0) + terms.dispute_timeout + 100
    track = tracker(deal, [wbtc, usdt])
    deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount, 0, 0), sender=resolver)
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))


def test_settle_after_final_expiry_reverts(disputed_dvp, chain, wbtc, usdt, attacker, unchanged):
    terms, deal = disputed_dvp
    chain.pending_timestamp = terms.final_expiry
    with unchanged(deal, [wbtc, usdt], "deal expired"):
        deal.settle_dispute(0, sender=attacker)


def test_other_tranches_continue_during_a_dispute(disputed_dvp, chain, wbtc, usdt, buyer, tracker):
    terms, deal = disputed_dvp
    tr = terms.tranches[1]
    track = tracker(deal, [wbtc, usdt])
    chain.pending_timestamp = tr.unlock_time
    deal.release(1, sender=buyer)
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))
    assert [deal.tranche_status(i) for i in range(4)] == [DISPUTED, RELEASED, PENDING, PENDING]


# ------------------------------------------------- default release: the disputant's own consent only
# A default RELEASE stands in for the disputant's consent (it lost its contest), never for anyone
# else's: settle_dispute releases only if the approval and release thresholds are met once the
# disputant's own approval and signature (for the roles it holds) are counted; otherwise it refunds
# the funders. The disputant's bits are recorded for settle_dispute only: the approvals / signatures
# views never count them.
def settle_after_timeout(deal, terms, chain, tranche, caller):
    """settle_dispute(tranche) at the first second the dispute timeout (from the dispute's own block
    time) allows."""
    chain.pending_timestamp = deal.disputed_at(tranche) + terms.dispute_timeout
    return deal.settle_dispute(tranche, sender=caller)


def settle_escrowed_default(deal, terms, chain, track, usdt, buyer, caller, released: bool) -> None:
    """settle_dispute(0) of an ESCROWED deal (USDT held) after the timeout: the whole tranche is released to the
    receiver (commissions taken) or refunded to the buyer, exactly, with the matching Resolved event."""
    receipt = settle_after_timeout(deal, terms, chain, 0, caller)
    q = terms.tranches[0].quote_amount
    if released:
        assert track.changes() == paid_by(deal, release_split(terms, 0, q))
        assert resolved_event(receipt, deal) == default_event(caller, (0, 0, 0), (q, 0, 0))
    else:
        assert track.changes() == {usdt.address: {buyer.address: q, deal.address: -q}}
        assert resolved_event(receipt, deal) == default_event(caller, (0, 0, 0), (0, q, 0))


def settle_dvp_default(deal, terms, chain, track, wbtc, usdt, caller, released: bool) -> None:
    """settle_dispute(0) of a funded DVP deal after the timeout: both legs of the tranche released (commissions
    taken) or refunded to their funders, exactly, with the matching Resolved event."""
    receipt = settle_after_timeout(deal, terms, chain, 0, caller)
    tr = terms.tranches[0]
    b, q = tr.base_amount, tr.quote_amount
    if released:
        assert track.changes() == paid_by(deal, release_split(terms, b, q))
        assert resolved_event(receipt, deal) == default_event(caller, (b, 0, 0), (q, 0, 0))
    else:
        assert track.changes() == refund_changes(deal, terms, wbtc, usdt, tr)
        assert resolved_event(receipt, deal) == default_event(caller, (0, b, 0), (0, q, 0))


def refund_changes(deal, terms, base_token, quote_token, tranche) -> dict:
    """Tracker changes of a refund of `tranche`: each on-chain leg back to its funder."""
    b, q = on_chain(terms, tranche)
    out: dict = {}
    if b:
        out[base_token.address] = {terms.seller: b, deal.address: -b}
    if q:
        out[quote_token.address] = {terms.buyer: q, deal.address: -q}
    return out


@pytest.mark.parametrize("buyer_signs", [True, False], ids=["buyer approves and signs", "buyer approves only"])
def test_seller_disputing_its_own_payment_gets_a_refund_not_a_release(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, buyer, seller, attacker, tracker, buyer_signs
):
    """ESCROWED, default RELEASE: the seller (the side the held USDT pays) marks a delivery and
    disputes its own tranche; the resolver stays idle. The buyer never approved nor signed, and the
    seller may do neither (Terms.validate: the paid side cannot approve or sign its own release), so
    the default refunds the buyer the whole tranche instead of paying the seller (also when the
    buyer's approval is all a release needs: the seller's dispute records no approval)."""
    signers = [buyer.address] if buyer_signs else []
    terms = mk_escrowed(signers=signers, dispute_default=DisputeDefault.RELEASE)
    assert (terms.approval_threshold, terms.release_threshold) == (1, int(buyer_signs))
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.dispute(0, REASON, sender=seller)
    assert (deal.approvals(0), deal.signatures(0)) == (0, 0)
    track = tracker(deal, [usdt])
    receipt = settle_after_timeout(deal, terms, chain, 0, attacker)
    assert track.changes() == {usdt.address: {buyer.address: tr.quote_amount, deal.address: -tr.quote_amount}}
    assert resolved_event(receipt, deal) == default_event(attacker, (0, 0, 0), (0, tr.quote_amount, 0))
    assert deal.tranche_status(0) == RESOLVED
    assert (deal.approvals(0), deal.signatures(0)) == (0, 0)
    assert deal.held(1) == terms.quote.amount - tr.quote_amount


@pytest.mark.parametrize("platform_signed", [False, True], ids=["unsigned", "platform signed"])
def test_default_release_needs_a_third_party_signers_signature(
    mk_escrowed, deploy, fund_all, chain, usdt, desk, buyer, seller, attacker, tracker, platform_signed
):
    """ESCROWED, default RELEASE, the buyer approves but the platform signs the release. The buyer
    disputes a marked tranche: its own approval counts, the platform's signature never does unless the
    platform gave it (a release call short of the conditions records it) before the dispute."""
    terms = mk_escrowed(
        approvers=[buyer.address], signers=[desk.address], release_threshold=1, dispute_default=DisputeDefault.RELEASE
    )
    assert (terms.approval_threshold, terms.release_threshold) == (1, 1)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    if platform_signed:  # no approval yet: the call only records the platform's signature
        receipt = deal.release(0, sender=desk)
        expect_event(receipt, deal.Signed, deal, tranche=0, signer=desk, signatures=1)
        assert not events(receipt, deal.Released, deal)
        assert deal.tranche_status(0) == MARKED
    deal.dispute(0, REASON, sender=buyer)
    assert (deal.approvals(0), deal.signatures(0)) == (0, int(platform_signed))
    assert not deal.has_approved(0, buyer) and deal.has_signed(0, desk) == platform_signed
    settle_escrowed_default(deal, terms, chain, tracker(deal, [usdt]), usdt, buyer, attacker, platform_signed)
    assert deal.tranche_status(0) == RESOLVED


THIRD_PARTY_APPROVALS = [
    # (approvers, threshold, who approves before the dispute, disputant, default, released)
    (["lawyer"], 1, [], "buyer", DisputeDefault.RELEASE, False),
    (["lawyer"], 1, [], "seller", DisputeDefault.RELEASE, False),
    (["lawyer"], 1, ["lawyer"], "buyer", DisputeDefault.RELEASE, True),
    (["lawyer"], 1, ["lawyer"], "seller", DisputeDefault.RELEASE, True),
    (["approver", "lawyer"], 2, ["approver"], "seller", DisputeDefault.RELEASE, False),
    (["approver", "lawyer"], 2, ["approver", "lawyer"], "buyer", DisputeDefault.RELEASE, True),
    (["approver", "lawyer"], 1, ["approver"], "buyer", DisputeDefault.RELEASE, True),
    (["lawyer"], 1, ["lawyer"], "seller", DisputeDefault.REFUND, False),  # a default refund is unchanged
]


@pytest.mark.parametrize(
    "approvers,threshold,approved,disputant,default,released",
    THIRD_PARTY_APPROVALS,
    ids=[
        f"{'+'.join(c[0])}>={c[1]}, approved by [{','.join(c[2])}], {c[3]} disputes, {c[4].name}"
        for c in THIRD_PARTY_APPROVALS
    ],
)
def test_dvp_default_release_needs_the_third_party_approvals(
    request, mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, attacker, tracker,
    approvers, threshold, approved, disputant, default, released,
):  # fmt: skip
    """DVP whose release needs a third-party approver: a principal disputing before the approvals are
    in cannot have the default swap the legs without them (both legs go back to their funders); once
    the approvers approved, the default releases (swaps) as before."""
    actor = request.getfixturevalue
    terms = mk_dvp(
        tranches=2,
        approvers=[actor(a).address for a in approvers],
        approval_threshold=threshold,
        dispute_default=default,
    )
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    for a in approved:
        deal.approve(0, sender=actor(a))
    deal.dispute(0, REASON, sender=actor(disputant))
    assert deal.approvals(0) == len(approved)
    settle_dvp_default(deal, terms, chain, tracker(deal, [wbtc, usdt]), wbtc, usdt, attacker, released)
    assert deal.tranche_status(0) == RESOLVED
    assert deal.approvals(0) == len(approved)
    assert [deal.tranche_status(i) for i in range(2)] == [RESOLVED, PENDING]


PRINCIPAL_CONSENT = [
    # (role the principals hold, who gave it before the dispute, disputant, released)
    ("approvers", ["seller"], "buyer", True),  # the disputant is the only missing approver
    ("approvers", ["buyer"], "seller", True),
    ("approvers", [], "seller", False),  # the buyer's approval is missing
    ("approvers", ["seller"], "seller", False),  # the disputant's own approval counts once
    ("signers", ["seller"], "buyer", True),  # the disputant is the only missing signer
    ("signers", [], "buyer", False),
    ("signers", ["buyer"], "buyer", False),
]


@pytest.mark.parametrize(
    "role,given,disputant,released",
    PRINCIPAL_CONSENT,
    ids=[f"{c[0]}, given by [{','.join(c[1])}], {c[2]} disputes" for c in PRINCIPAL_CONSENT],
)
def test_dvp_default_release_counts_the_disputants_own_consent(
    request, mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, seller, attacker, tracker,
    role, given, disputant, released,
):  # fmt: skip
    """DVP, both principals approve (threshold 2) or sign (release threshold 2): the disputant's own
    approval or signature counts (bit at its party index, or index + 16), counted once even if it
    also gave it before; anyone else's must have been given."""
    actor = request.getfixturevalue
    principals = [buyer.address, seller.address]
    terms = mk_dvp(tranches=2, dispute_default=DisputeDefault.RELEASE, **{role: principals})
    assert (terms.approval_threshold, terms.release_threshold) == ((2, 0) if role == "approvers" else (0, 2))
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    for who in given:
        if role == "approvers":
            deal.approve(0, sender=actor(who))
        else:  # short of the threshold: the call only records the signature
            receipt = deal.release(0, sender=actor(who))
            expect_event(receipt, deal.Signed, deal, tranche=0, signer=actor(who), signatures=1)
    assert deal.tranche_status(0) == PENDING
    deal.dispute(0, REASON, sender=actor(disputant))
    counted = (deal.approvals(0), deal.signatures(0))
    assert counted == ((len(given), 0) if role == "approvers" else (0, len(given)))
    settle_dvp_default(deal, terms, chain, tracker(deal, [wbtc, usdt]), wbtc, usdt, attacker, released)
    assert (deal.approvals(0), deal.signatures(0)) == counted


@pytest.mark.parametrize(
    "window,disputant,released",
    [(DAY, "buyer", True), (DAY, "seller", False), (0, "buyer", False)],
    ids=["window, the payer disputes", "window, the paid side disputes", "no window, the payer disputes"],
)
def test_payers_dispute_within_the_approval_window_accepts_by_default(
    request, mk_escrowed, deploy, fund_all, chain, usdt, desk, buyer, lawyer, seller, attacker, tracker,
    window, disputant, released,
):  # fmt: skip
    """ESCROWED, default RELEASE, a third-party approver (the lawyer) and signer (the platform) who never
    act. With an approval window the payer's (the buyer's) silence would have accepted the delivery for
    all of them (anyone releases once the window has passed), so does the contest it loses within the
    window: the default releases. The paid side's dispute, or the payer's without a window, still needs
    their approval and signature: refund. The views count none of the disputant's recorded consent."""
    terms = mk_escrowed(
        approvers=[lawyer.address],
        signers=[desk.address],
        approval_window=window,
        dispute_default=DisputeDefault.RELEASE,
    )
    assert (terms.approval_threshold, terms.release_threshold) == (1, 1)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.dispute(0, REASON, sender=request.getfixturevalue(disputant))
    assert (deal.approvals(0), deal.signatures(0)) == (0, 0)
    settle_escrowed_default(deal, terms, chain, tracker(deal, [usdt]), usdt, buyer, attacker, released)
    assert (deal.approvals(0), deal.signatures(0)) == (0, 0)
