"""Views of a deal: parties and roles, tranches, statuses, phase, held, approvals and signatures."""

from __future__ import annotations

import ape
import pytest
from dealkit import (
    ACTIVE,
    CANCELLED,
    DISPUTED,
    EVIDENCE,
    EXPIRED,
    FUNDING,
    MARKED,
    PENDING,
    REASON,
    REFUNDED,
    RELEASED,
    RESOLVED,
    SETTLED,
    ZERO,
)
from eth_utils import keccak

from nexotc_client.terms import Role


def test_party_views(dvp, factory, buyer, seller, desk, resolver, introducer, attacker):
    terms, deal = dvp
    assert (deal.buyer(), deal.seller(), deal.platform(), deal.resolver()) == (
        buyer.address,
        seller.address,
        desk.address,
        resolver.address,
    )
    assert deal.factory() == factory.address
    assert deal.registered()
    assert deal.roles_of(buyer) == Role.BUYER | Role.BASE_RECEIVER
    assert deal.roles_of(seller) == Role.SELLER | Role.QUOTE_RECEIVER
    assert deal.roles_of(desk) == Role.PLATFORM
    assert deal.roles_of(resolver) == Role.RESOLVER
    assert deal.roles_of(introducer) == Role.INTRODUCER
    assert deal.roles_of(attacker) == 0
    assert deal.roles_of(ZERO) == 0
    assert deal.mode() == 0
    assert deal.terms_hash() == keccak(terms.pack()) == factory.validate(terms.as_struct())


def test_escrowed_role_views(escrowed, buyer, seller, lawyer):
    _, deal = escrowed
    assert deal.mode() == 1
    assert deal.roles_of(buyer) == Role.BUYER | Role.BASE_RECEIVER | Role.APPROVER | Role.SIGNER
    assert deal.roles_of(seller) == Role.SELLER | Role.QUOTE_RECEIVER | Role.MARKER
    assert deal.roles_of(lawyer) == 0


def test_tranche_views(dvp):
    terms, deal = dvp
    assert deal.tranche_count() == 4
    for i, tr in enumerate(terms.tranches):
        assert tuple(deal.tranche(i)) == (tr.base_amount, tr.quote_amount, tr.unlock_time, tr.deadline)
        assert deal.tranche_status(i) == PENDING
        assert (deal.approvals(i), deal.signatures(i), deal.marked_at(i), deal.disputed_at(i)) == (0, 0, 0, 0)
    for view in (deal.tranche, deal.tranche_status):
        with ape.reverts("no such tranche"):
            view(4)


@pytest.mark.parametrize("view", ["funded", "held"])
def test_bad_leg(dvp, view):
    _, deal = dvp
    with ape.reverts("bad leg"):
        getattr(deal, view)(2)


def test_pull_balances_start_empty(dvp, wbtc, usdt, seller):
    _, deal = dvp
    assert deal.claimable(seller, usdt) == 0 and deal.unclaimed(usdt) == 0 and deal.unclaimed(wbtc) == 0


def test_has_approved_and_signed_for_strangers(gated, chain, approver, lawyer, attacker, buyer):
    terms, deal = gated
    deal.approve(0, sender=approver)
    chain.pending_timestamp = terms.tranches[0].unlock_time - 10
    deal.release(0, sender=lawyer)
    assert deal.has_approved(0, approver) and deal.has_signed(0, lawyer)
    assert not deal.has_approved(0, lawyer) and not deal.has_signed(0, approver)
    # the buyer is party 0: a stranger must not alias to index 0
    assert not deal.has_approved(0, attacker) and not deal.has_signed(0, attacker)
    assert not deal.has_approved(0, buyer) and not deal.has_signed(0, buyer)
    assert (deal.approvals(0), deal.signatures(0)) == (1, 1)


@pytest.fixture(scope="module")
def gated(mk_dvp, deploy, fund_all, wbtc, usdt, desk, buyer, approver, lawyer):
    terms = mk_dvp(approvers=[approver.address, buyer.address], approval_threshold=2, signers=[lawyer.address])
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    return terms, deal


def test_approvals_count_up(gated, approver, buyer):
    _, deal = gated
    deal.approve(2, sender=buyer)
    deal.approve(2, sender=approver)
    assert deal.approvals(2) == 2 and deal.approvals(1) == 0


def test_phase_and_held_through_a_deal(
    mk_escrowed, deploy, fund_leg, chain, usdt, desk, buyer, seller, resolver, attacker
):
    terms = mk_escrowed(tranches=4)
    deal = deploy(terms, desk)
    q = [tr.quote_amount for tr in terms.tranches]
    assert deal.phase() == FUNDING and (deal.held(0), deal.held(1)) == (0, 0)
    assert (deal.funded(0), deal.funded(1)) == (False, False)
    fund_leg(deal, usdt, buyer, terms.quote.amount)
    assert deal.phase() == ACTIVE and deal.held(1) == terms.quote.amount and deal.held(0) == 0
    chain.pending_timestamp = terms.tranches[1].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.mark(1, EVIDENCE, sender=seller)
    assert deal.held(1) == terms.quote.amount  # marked amounts are still held
    deal.approve(0, sender=buyer)
    deal.release(0, sender=buyer)
    deal.dispute(1, REASON, sender=buyer)
    assert deal.held(1) == terms.quote.amount - q[0]  # disputed amounts are still held
    deal.resolve(1, (0, 0, 0), (q[1], 0, 0), sender=resolver)
    chain.pending_timestamp = terms.tranches[2].deadline + 1
    deal.refund(2, sender=attacker)
    assert [deal.tranche_status(i) for i in range(4)] == [RELEASED, RESOLVED, REFUNDED, PENDING]
    assert deal.held(1) == q[3] == usdt.balanceOf(deal)
    assert deal.phase() == ACTIVE
    chain.pending_timestamp = terms.tranches[3].deadline + 1
    deal.refund(3, sender=attacker)
    assert deal.phase() == SETTLED and deal.held(1) == 0 == usdt.balanceOf(deal)


def test_phase_cancelled_and_expired(mk_dvp, deploy, chain, desk, attacker):
    terms = mk_dvp()
    a, b = deploy(terms, desk), deploy(terms, desk)
    chain.pending_timestamp = terms.funding_deadline + 1
    a.cancel_unfunded(sender=attacker)
    assert a.phase() == CANCELLED and b.phase() == FUNDING
    chain.pending_timestamp = terms.final_expiry
    b.expire(sender=attacker)
    assert b.phase() == EXPIRED and a.phase() == CANCELLED


def test_status_numbering(escrowed, chain, seller, buyer):
    terms, deal = escrowed
    deal.mark(0, EVIDENCE, sender=seller)
    assert deal.tranche_status(0) == MARKED == 1
    deal.dispute(1, REASON, sender=buyer)
    assert deal.tranche_status(1) == DISPUTED == 2


def test_approval_count_with_ten_approvers(
    mk_dvp,
    deploy,
    fund_all,
    chain,
    accounts,
    wbtc,
    usdt,
    desk,
    buyer,
    seller,
    attacker,
    lawyer,
    approver,
    introducer2,
    unchanged,
):
    """Approval bits sit at each approver's party index (here 0-2 and 5-11): the count is exact at
    every step and the threshold of 10 is met only by the tenth approval."""
    extra = [attacker, lawyer, approver, introducer2, accounts[9], accounts[10], accounts[11]]
    approvers = [buyer, seller, desk, *extra]
    terms = mk_dvp(tranches=1, approvers=[a.address for a in approvers])
    assert terms.approval_threshold == 10 and len(terms.parties) == 12
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    for n, who in enumerate(approvers, start=1):
        if n == 10:
            with unchanged(deal, [wbtc, usdt], "release conditions not met"):
                deal.release(0, sender=buyer)
        receipt = deal.approve(0, sender=who)
        assert receipt.decode_logs(deal.Approved)[0].approvals == n
        assert deal.approvals(0) == n and deal.has_approved(0, who)
    deal.release(0, sender=buyer)
    assert deal.tranche_status(0) == RELEASED
