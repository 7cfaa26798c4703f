"""Access control: every role-gated entry point refuses an outsider (and works for the right party in
the same state), the resolver never gets more than its capped fee, and no call redirects funds."""

from __future__ import annotations

import ape
import pytest
from dealkit import EVIDENCE, REASON, RELEASED, RESOLVED, ZERO, events

ZERO_SPLIT = (0, 0, 0)


@pytest.fixture
def staged(mk_escrowed, deploy, fund_all, chain, usdt, desk, seller, buyer):
    """A funded 4-tranche ESCROWED deal at the first unlock: tranche 0 marked and approved,
    tranche 1 marked, tranche 2 disputed by the buyer, tranche 3 pending."""
    terms = mk_escrowed(tranches=4)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.approve(0, sender=buyer)
    deal.mark(1, EVIDENCE, sender=seller)
    deal.dispute(2, REASON, sender=buyer)
    return terms, deal


def _q(terms, i):
    return terms.tranches[i].quote_amount


# (name, call(deal, terms, sender), reason for an outsider, role name that succeeds)
GATED = [
    ("mark", lambda d, t, s: d.mark(3, EVIDENCE, sender=s), "not a marker", "seller"),
    ("approve", lambda d, t, s: d.approve(1, sender=s), "not an approver", "buyer"),
    ("release (signature)", lambda d, t, s: d.release(0, sender=s), "release conditions not met", "buyer"),
    ("dispute", lambda d, t, s: d.dispute(3, REASON, sender=s), "not buyer or seller", "seller"),
    ("resolve", lambda d, t, s: d.resolve(2, ZERO_SPLIT, (_q(t, 2), 0, 0), sender=s), "not the resolver", "resolver"),
    ("credit", lambda d, t, s: d.credit(s, sender=s), "only factory", None),
    ("register", lambda d, t, s: d.register(ZERO, 0, sender=s), "only factory", None),
    ("fund", lambda d, t, s: d.fund(sender=s), "nothing to fund", None),
]


@pytest.mark.parametrize("name,call,reason,role", GATED, ids=[g[0] for g in GATED])
def test_outsider_is_refused_where_the_party_succeeds(
    request, staged, usdt, attacker, unchanged, name, call, reason, role
):
    terms, deal = staged
    with unchanged(deal, [usdt], reason):
        call(deal, terms, attacker)
    if role:
        call(deal, terms, request.getfixturevalue(role))


@pytest.mark.parametrize("who", ["resolver", "desk", "introducer", "lawyer", "approver"])
def test_named_parties_outside_their_roles_are_refused(request, staged, usdt, unchanged, who):
    terms, deal = staged
    party = request.getfixturevalue(who)
    for name, call, reason, role in GATED:
        if role == who or name in ("credit", "register"):
            continue
        with unchanged(deal, [usdt], reason):
            call(deal, terms, party)


def test_paid_side_cannot_approve_or_sign(staged, usdt, seller, unchanged):
    terms, deal = staged
    with unchanged(deal, [usdt], "not an approver"):
        deal.approve(1, sender=seller)
    with unchanged(deal, [usdt], "release conditions not met"):
        deal.release(0, sender=seller)  # the seller's call records no signature
    assert not deal.has_signed(0, seller)


def test_claim_pays_only_the_callers_own_balance(
    mk_dvp, deploy, fund_all, chain, wbtc, usdc, desk, seller, attacker, unchanged
):
    terms = mk_dvp(quote_token=usdc)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdc)
    usdc.set_blocked(seller, True, sender=desk)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=attacker)
    assert deal.claimable(seller, usdc) > 0
    with unchanged(deal, [usdc, wbtc], "nothing to claim"):
        deal.claim(usdc, attacker, sender=attacker)
    assert usdc.balanceOf(attacker) == 0


def test_resolver_gets_nothing_but_its_capped_fee(
    mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, seller, resolver, attacker, tracker
):
    """A whole deal where the resolver takes the maximum on every dispute: its balance is exactly
    the sum of the capped fees, and every other path pays it nothing."""
    terms = mk_dvp(tranches=4, resolver_fee_bps=500)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    track = tracker(deal, [wbtc, usdt])
    trs = terms.tranches
    chain.pending_timestamp = trs[1].unlock_time  # = tranche 0's deadline: dispute it first
    deal.dispute(0, REASON, sender=buyer)
    deal.release(1, sender=attacker)
    deal.dispute(2, REASON, sender=seller)
    fee_b, fee_q = trs[0].base_amount * 5 // 100, trs[0].quote_amount * 5 // 100
    for over in ((fee_b + 1, fee_q), (fee_b, fee_q + 1)):
        with ape.reverts("resolver fee above cap"):
            deal.resolve(
                0,
                (trs[0].base_amount - over[0], 0, over[0]),
                (0, trs[0].quote_amount - over[1], over[1]),
                sender=resolver,
            )
    deal.resolve(0, (trs[0].base_amount - fee_b, 0, fee_b), (0, trs[0].quote_amount - fee_q, fee_q), sender=resolver)
    chain.pending_timestamp = deal.disputed_at(2) + terms.dispute_timeout
    deal.settle_dispute(2, sender=resolver)  # anyone, the resolver included, applies the default: no fee
    chain.pending_timestamp = terms.final_expiry
    deal.expire(sender=resolver)
    changes = track.changes()
    assert changes[wbtc.address][resolver.address] == fee_b
    assert changes[usdt.address][resolver.address] == fee_q
    assert [deal.tranche_status(i) for i in range(4)] == [RESOLVED, RELEASED, RESOLVED, 4]
    # the deal is empty and everything went to named parties
    assert (wbtc.balanceOf(deal), usdt.balanceOf(deal)) == (0, 0)
    named = {p.wallet for p in terms.parties} | {deal.address}
    for bucket in changes.values():
        assert set(bucket) <= named
    assert attacker.address not in changes[wbtc.address] and attacker.address not in changes[usdt.address]


def test_every_transfer_out_goes_to_a_named_party(
    mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, seller, resolver, attacker
):
    """Drive a deal only through permissionless calls made by an outsider (after the parties'
    own dispute) and check every Transfer the deal makes."""
    terms = mk_dvp(tranches=4, dispute_default=1)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    trs = terms.tranches
    receipts = []
    chain.pending_timestamp = trs[0].unlock_time
    receipts.append(deal.release(0, sender=attacker))
    deal.dispute(1, REASON, sender=seller)
    chain.pending_timestamp = trs[2].deadline + 1
    receipts.append(deal.refund(2, sender=attacker))
    assert trs[2].deadline + 1 >= deal.disputed_at(1) + terms.dispute_timeout
    receipts.append(deal.settle_dispute(1, sender=attacker))
    chain.pending_timestamp = terms.final_expiry
    receipts.append(deal.expire(sender=attacker))
    named = {p.wallet for p in terms.parties}
    total = {wbtc.address: 0, usdt.address: 0}
    for receipt in receipts:
        for token in (wbtc, usdt):
            for log in events(receipt, token.Transfer, token):
                assert log["sender"] == deal.address
                assert log["receiver"] in named and log["receiver"] != resolver.address
                total[token.address] += log["value"]
    assert total == {wbtc.address: terms.base.amount, usdt.address: terms.quote.amount}
    assert wbtc.balanceOf(attacker) == 0 and usdt.balanceOf(attacker) == 0


def test_no_entry_point_takes_a_payee(project):
    """The only mutating entry points taking an address are credit (factory-only; it records a leg the
    factory moved in from that party's own allowance), register (factory-only; the accepting party it
    names is only checked against the compliance gate) and claim (pays the caller's own pull balance)."""
    abi = project.DealEscrow.contract_type.abi
    mutating = {a.name: a for a in abi if a.type == "function" and a.stateMutability not in ("view", "pure")}
    assert set(mutating) == {
        "fund",
        "credit",
        "register",
        "cancel_unfunded",
        "mark",
        "approve",
        "release",
        "refund",
        "dispute",
        "resolve",
        "settle_dispute",
        "expire",
        "claim",
    }
    with_address = {name for name, a in mutating.items() if any(i.type == "address" for i in a.inputs)}
    assert with_address == {"credit", "register", "claim"}
    factory_abi = project.EscrowFactory.contract_type.abi
    factory_mutating = {
        a.name for a in factory_abi if a.type == "function" and a.stateMutability not in ("view", "pure")
    }
    assert factory_mutating == {
        "create_deal",
        "create_and_fund",
        "create_desk_deal",
        "fund_deal",
        "accept_offer",
        "cancel_nonces",
        "sweep",
        "return_deposit",
    }
    payee_like = {
        a.name
        for a in factory_abi
        if a.type == "function"
        and a.stateMutability not in ("view", "pure")
        and any(i.type == "address" for i in a.inputs)
    }
    # fund_deal's address is the deal, checked with is_deal; sweep and return_deposit pay only the
    # deal and the funder whose deposit address (derived from deal, funder and leg) holds the funds
    assert payee_like == {"fund_deal", "sweep", "return_deposit"}


def test_resolver_cannot_be_given_another_role(factory, mk_dvp, resolver):
    """The factory refuses terms that would make the resolver a payee."""
    for kw, reason in (
        ({"base_receiver": resolver.address}, "parties[3] must be only the resolver"),
        ({"quote_receiver": resolver.address}, "parties[3] must be only the resolver"),
        ({"introducers": [(resolver.address, 10)]}, "parties[3] must be only the resolver"),
        ({"approvers": [resolver.address]}, "parties[3] must be only the resolver"),
    ):
        with ape.reverts(reason):
            factory.validate(mk_dvp(**kw).as_struct())
