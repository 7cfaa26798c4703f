"""Token quirks: USDT (no return values), 6/8/18 decimals, fee-on-transfer rejection, blocklisted payees
(pull payments and claim), and re-entrant tokens hitting the re-entrancy lock."""

from __future__ import annotations

import ape
import pytest
from dealkit import (
    ACTIVE,
    DAY,
    EVIDENCE,
    FUNDING,
    MARKED,
    PENDING,
    REASON,
    REFUNDED,
    RELEASED,
    expect_event,
    paid_by,
    release_split,
)

from nexotc_client.terms import LegId

SALT = b"\x07" * 32


# ---------------------------------------------------------------- decimals, USDT
PAIRS = [
    # base token, base units, quote token, quote units, fee leg
    ("wbtc", 12 * 10**8 + 34_567_891, "usdc", 812_345 * 10**6 + 678_901, LegId.QUOTE),  # 8 / 6
    ("weth", 1_234 * 10**18 + 567_890_123_456_789_012, "usdt", 4_321_987 * 10**6 + 1, LegId.QUOTE),  # 18 / 6
    ("wbtc", 7 * 10**8 + 3, "weth", 123 * 10**18 + 456_789, LegId.BASE),  # 8 / 18
    ("usdt", 9_876_543 * 10**6 + 21, "weth", 2_500 * 10**18 + 1, LegId.BASE),  # USDT base, fee in USDT
    ("weth", 79_000_000_000 * 10**18, "usdc", 10**12, LegId.QUOTE),  # near the 2**96 amount cap
]


@pytest.mark.parametrize(
    "base_name,base_amount,quote_name,quote_amount,fee_leg", PAIRS, ids=[f"{p[0]}-{p[2]}-fee{int(p[4])}" for p in PAIRS]
)
def test_decimals_and_usdt_payouts(
    request,
    mk_dvp,
    deploy,
    fund_all,
    chain,
    desk,
    buyer,
    attacker,
    tracker,
    base_name,
    base_amount,
    quote_name,
    quote_amount,
    fee_leg,
):
    base_token = request.getfixturevalue(base_name)
    quote_token = request.getfixturevalue(quote_name)
    terms = mk_dvp(
        tranches=3,
        base_amount=base_amount,
        quote_amount=quote_amount,
        base_token=base_token,
        quote_token=quote_token,
        fee_leg=fee_leg,
    )
    deal = deploy(terms, desk)
    fund_all(deal, terms, base_token, quote_token)
    assert (base_token.balanceOf(deal), quote_token.balanceOf(deal)) == (base_amount, quote_amount)
    track = tracker(deal, [base_token, quote_token])
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.release(0, sender=buyer)
    assert track.changes() == paid_by(deal, release_split(terms, tr.base_amount, tr.quote_amount))
    # refunds and expiry pay back through the same transfer path
    tr1 = terms.tranches[1]
    chain.pending_timestamp = tr1.deadline + 1
    deal.refund(1, sender=attacker)
    chain.pending_timestamp = terms.final_expiry
    deal.expire(sender=attacker)
    rest_base = tr1.base_amount + terms.tranches[2].base_amount
    rest_quote = tr1.quote_amount + terms.tranches[2].quote_amount
    assert track.changes() == {
        base_token.address: {terms.seller: rest_base, deal.address: -rest_base},
        quote_token.address: {terms.buyer: rest_quote, deal.address: -rest_quote},
    }
    assert (base_token.balanceOf(deal), quote_token.balanceOf(deal)) == (0, 0)


def test_usdt_resolve_pays_every_part(mk_dvp, deploy, fund_all, chain, wbtc, usdt, desk, buyer, resolver, tracker):
    terms = mk_dvp(tranches=1)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.dispute(0, REASON, sender=buyer)
    q = terms.quote.amount
    quote = (q // 2, q - q // 2 - q // 100, q // 100)
    track = tracker(deal, [usdt])
    deal.resolve(0, (terms.base.amount, 0, 0), quote, sender=resolver)
    changes = track.changes()[usdt.address]
    assert changes[resolver.address] == q // 100
    assert changes[buyer.address] == quote[1]
    assert changes[deal.address] == -q


# ------------------------------------------------------------------ fee on transfer
def test_fee_on_transfer_quote_rejected(mk_dvp, deploy, fund_leg, wbtc, fee_token, desk, buyer, seller, unchanged):
    terms = mk_dvp(quote_token=fee_token, quote_amount=10**21)
    deal = deploy(terms, desk)
    fund_leg(deal, wbtc, seller, terms.base.amount)
    fee_token.mint(buyer, terms.quote.amount, sender=buyer)
    fee_token.approve(deal, terms.quote.amount, sender=buyer)
    with unchanged(deal, [wbtc, fee_token], "fee-on-transfer token"):
        deal.fund(sender=buyer)
    assert not deal.funded(1) and deal.phase() == FUNDING
    assert fee_token.balanceOf(buyer) == terms.quote.amount


def test_fee_on_transfer_base_rejected_in_create_and_fund(factory, chain, mk_dvp, fee_token, seller):
    terms = mk_dvp(base_token=fee_token, base_amount=10**20)
    predicted = factory.predict_address(terms.as_struct(), seller, SALT, 0)
    fee_token.mint(seller, terms.base.amount, sender=seller)
    fee_token.approve(factory, terms.base.amount, sender=seller)
    with ape.reverts("fee-on-transfer token"):
        factory.create_and_fund(terms.as_struct(), SALT, sender=seller)
    assert len(chain.provider.get_code(predicted)) == 0
    assert fee_token.balanceOf(seller) == terms.base.amount


def test_fee_on_transfer_escrowed_rejected(mk_escrowed, deploy, fee_token, desk, buyer, unchanged):
    terms = mk_escrowed(quote_token=fee_token, quote_amount=10**20)
    deal = deploy(terms, desk)
    fee_token.mint(buyer, terms.quote.amount, sender=buyer)
    fee_token.approve(deal, terms.quote.amount, sender=buyer)
    with unchanged(deal, [fee_token], "fee-on-transfer token"):
        deal.fund(sender=buyer)


# ------------------------------------------------------------------------ blocklist
@pytest.fixture(scope="module")
def usdc_dvp(mk_dvp, deploy, fund_all, wbtc, usdc, desk):
    """A funded DVP deal WBTC / USDC (USDC blocklists senders and recipients)."""
    terms = mk_dvp(quote_token=usdc)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdc)
    return terms, deal


def test_blocked_receiver_does_not_block_the_release(
    usdc_dvp, chain, wbtc, usdc, buyer, seller, desk, introducer, attacker, tracker
):
    terms, deal = usdc_dvp
    tr = terms.tranches[0]
    usdc.set_blocked(seller, True, sender=desk)
    track = tracker(deal, [wbtc, usdc])
    chain.pending_timestamp = tr.unlock_time
    receipt = deal.release(0, sender=attacker)
    cuts = terms.commissions(tr.quote_amount)
    owed = tr.quote_amount - sum(cuts.values())
    # everyone else is paid; the seller's part stays in the deal as a pull balance
    assert track.changes() == {
        wbtc.address: {buyer.address: tr.base_amount, deal.address: -tr.base_amount},
        usdc.address: {
            desk.address: cuts[desk.address],
            introducer.address: cuts[introducer.address],
            deal.address: -sum(cuts.values()),
        },
    }
    expect_event(receipt, deal.PaymentDeferred, deal, payee=seller, token=usdc, amount=owed)
    expect_event(
        receipt,
        deal.Released,
        deal,
        tranche=0,
        caller=attacker,
        base_amount=tr.base_amount,
        quote_amount=tr.quote_amount,
        fees=sum(cuts.values()),
    )
    assert deal.tranche_status(0) == RELEASED
    assert deal.claimable(seller, usdc) == owed
    assert deal.unclaimed(usdc) == owed
    assert usdc.balanceOf(deal) == deal.held(1) + owed  # the escrow still holds what it owes


def test_blocked_payee_claims_to_another_wallet(
    usdc_dvp, chain, usdc, seller, lawyer, desk, attacker, tracker, unchanged
):
    terms, deal = usdc_dvp
    usdc.set_blocked(seller, True, sender=desk)
    owed = 0
    for i in (0, 1):  # two deferred payouts accumulate
        tr = terms.tranches[i]
        chain.pending_timestamp = tr.unlock_time
        deal.release(i, sender=attacker)
        owed += tr.quote_amount - sum(terms.commissions(tr.quote_amount).values())
    assert deal.claimable(seller, usdc) == owed == deal.unclaimed(usdc)
    with unchanged(deal, [usdc], "transfer failed"):
        deal.claim(usdc, seller, sender=seller)  # still blocked: no loss, balance kept
    with unchanged(deal, [usdc], "zero recipient"):
        deal.claim(usdc, "0x0000000000000000000000000000000000000000", sender=seller)
    # the deal itself or its factory: nothing could ever pay the tokens out of there
    for trap in (deal.address, deal.factory()):
        with unchanged(deal, [usdc], "recipient would lock the funds"):
            deal.claim(usdc, trap, sender=seller)
    track = tracker(deal, [usdc])
    receipt = deal.claim(usdc, lawyer, sender=seller)
    expect_event(receipt, deal.Claimed, deal, payee=seller, token=usdc, recipient=lawyer, amount=owed)
    assert track.changes() == {usdc.address: {lawyer.address: owed, deal.address: -owed}}
    assert deal.claimable(seller, usdc) == 0 and deal.unclaimed(usdc) == 0
    assert usdc.balanceOf(deal) == deal.held(1)
    with unchanged(deal, [usdc], "nothing to claim"):
        deal.claim(usdc, lawyer, sender=seller)


def test_claim_after_unblock_to_self(usdc_dvp, chain, usdc, seller, desk, attacker):
    terms, deal = usdc_dvp
    tr = terms.tranches[0]
    usdc.set_blocked(seller, True, sender=desk)
    chain.pending_timestamp = tr.unlock_time
    deal.release(0, sender=attacker)
    owed = deal.claimable(seller, usdc)
    usdc.set_blocked(seller, False, sender=desk)
    deal.claim(usdc, seller, sender=seller)
    assert usdc.balanceOf(seller) == owed > 0


@pytest.mark.parametrize("who", ["attacker", "buyer", "resolver", "desk"])
def test_claim_with_nothing_owed_reverts(request, usdc_dvp, chain, usdc, wbtc, seller, desk, attacker, unchanged, who):
    terms, deal = usdc_dvp
    usdc.set_blocked(seller, True, sender=desk)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=attacker)  # the seller is owed; nobody else is
    caller = request.getfixturevalue(who)
    for token in (usdc, wbtc):
        with unchanged(deal, [usdc, wbtc], "nothing to claim"):
            deal.claim(token, caller, sender=caller)


def test_blocked_introducer_is_deferred(usdc_dvp, chain, usdc, seller, desk, introducer, attacker):
    terms, deal = usdc_dvp
    tr = terms.tranches[0]
    usdc.set_blocked(introducer, True, sender=desk)
    chain.pending_timestamp = tr.unlock_time
    receipt = deal.release(0, sender=attacker)
    cut = tr.quote_amount * 10 // 10_000
    expect_event(receipt, deal.PaymentDeferred, deal, payee=introducer, token=usdc, amount=cut)
    assert deal.claimable(introducer, usdc) == cut
    assert usdc.balanceOf(seller) == tr.quote_amount - cut - tr.quote_amount * 25 // 10_000
    assert usdc.balanceOf(introducer) == 0


def test_blocked_funder_refund_is_deferred(usdc_dvp, chain, usdc, wbtc, buyer, seller, desk, attacker, tracker):
    terms, deal = usdc_dvp
    usdc.set_blocked(buyer, True, sender=desk)
    track = tracker(deal, [wbtc, usdc])
    chain.pending_timestamp = terms.final_expiry
    receipt = deal.expire(sender=attacker)
    expect_event(receipt, deal.PaymentDeferred, deal, payee=buyer, token=usdc, amount=terms.quote.amount)
    assert track.changes() == {wbtc.address: {seller.address: terms.base.amount, deal.address: -terms.base.amount}}
    assert deal.claimable(buyer, usdc) == terms.quote.amount == deal.unclaimed(usdc)
    assert deal.held(1) == 0  # expired: nothing held for the deal, only the pull balance owed


def test_blocked_resolver_fee_is_deferred(usdc_dvp, chain, usdc, buyer, desk, resolver):
    terms, deal = usdc_dvp
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    deal.dispute(0, REASON, sender=buyer)
    usdc.set_blocked(resolver, True, sender=desk)
    fee = tr.quote_amount // 100
    receipt = deal.resolve(0, (tr.base_amount, 0, 0), (tr.quote_amount - fee, 0, fee), sender=resolver)
    expect_event(receipt, deal.PaymentDeferred, deal, payee=resolver, token=usdc, amount=fee)
    assert deal.claimable(resolver, usdc) == fee


def test_blocked_seller_on_cancel_is_deferred(mk_dvp, deploy, fund_leg, chain, usdc, wbtc, seller, desk, attacker):
    terms = mk_dvp(base_token=usdc, base_amount=10**12, quote_token=wbtc, quote_amount=10**9)
    deal = deploy(terms, desk)
    fund_leg(deal, usdc, seller, terms.base.amount)
    usdc.set_blocked(seller, True, sender=desk)
    chain.pending_timestamp = terms.funding_deadline + 1
    receipt = deal.cancel_unfunded(sender=attacker)
    expect_event(receipt, deal.PaymentDeferred, deal, payee=seller, token=usdc, amount=terms.base.amount)
    expect_event(receipt, deal.Cancelled, deal, caller=attacker, base_amount=terms.base.amount, quote_amount=0)
    assert deal.claimable(seller, usdc) == terms.base.amount


# ---------------------------------------------------------------------- re-entrancy
@pytest.fixture(scope="module")
def reentrant_dvp(mk_dvp, deploy, fund_all, wbtc, reentrant_token, desk):
    """A funded DVP deal WBTC / re-entrant token (the fee leg)."""
    terms = mk_dvp(quote_token=reentrant_token, quote_amount=10**24)
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, reentrant_token)
    return terms, deal


def test_reentrant_release_during_payout_is_blocked(
    reentrant_dvp, chain, wbtc, reentrant_token, buyer, attacker, desk, tracker
):
    terms, deal = reentrant_dvp
    tr0, tr1 = terms.tranches[0], terms.tranches[1]
    assert tr0.deadline == tr1.unlock_time  # at this moment both tranches are releasable
    reentrant_token.set_hook(deal, deal.release.encode_input(1), sender=attacker)
    track = tracker(deal, [wbtc, reentrant_token])
    chain.pending_timestamp = tr1.unlock_time
    deal.release(0, sender=buyer)
    assert reentrant_token.hook_result() is False  # the nested release(1) hit the lock
    assert [deal.tranche_status(i) for i in range(4)] == [RELEASED, PENDING, PENDING, PENDING]
    assert track.changes() == paid_by(deal, release_split(terms, tr0.base_amount, tr0.quote_amount))
    assert reentrant_token.balanceOf(deal) == deal.held(1)
    # control: outside the deal's lock the very same call goes through
    reentrant_token.mint(attacker, 1, sender=attacker)
    reentrant_token.transfer(desk, 1, sender=attacker)
    assert reentrant_token.hook_result() is True
    assert deal.tranche_status(1) == RELEASED


def test_reentrant_release_during_funding_is_blocked(
    mk_dvp, deploy, fund_leg, chain, wbtc, reentrant_token, desk, buyer, seller, attacker
):
    terms = mk_dvp(quote_token=reentrant_token, quote_amount=10**24)
    deal = deploy(terms, desk)
    fund_leg(deal, wbtc, seller, terms.base.amount)
    chain.pending_timestamp = terms.tranches[0].unlock_time  # tranche 0 unlocked, funding still open
    reentrant_token.set_hook(deal, deal.release.encode_input(0), sender=attacker)
    receipt = fund_leg(deal, reentrant_token, buyer, terms.quote.amount)
    expect_event(receipt, deal.Funded, deal, leg=1, funder=buyer, amount=terms.quote.amount)
    assert reentrant_token.hook_result() is False
    assert deal.tranche_status(0) == PENDING and deal.phase() == ACTIVE
    assert (wbtc.balanceOf(deal), reentrant_token.balanceOf(deal)) == (terms.base.amount, terms.quote.amount)
    assert wbtc.balanceOf(buyer) == 0
    # control
    reentrant_token.mint(attacker, 1, sender=attacker)
    reentrant_token.transfer(desk, 1, sender=attacker)
    assert reentrant_token.hook_result() is True and deal.tranche_status(0) == RELEASED


def test_reentrant_refund_during_claim_is_blocked(reentrant_dvp, chain, reentrant_token, seller, desk, attacker):
    terms, deal = reentrant_dvp
    tr0 = terms.tranches[0]
    reentrant_token.set_blocked(seller, True, sender=desk)
    chain.pending_timestamp = tr0.unlock_time
    deal.release(0, sender=attacker)
    owed = deal.claimable(seller, reentrant_token)
    assert owed > 0
    reentrant_token.set_blocked(seller, False, sender=desk)
    chain.pending_timestamp = terms.tranches[1].deadline + 1
    reentrant_token.set_hook(deal, deal.refund.encode_input(1), sender=attacker)
    receipt = deal.claim(reentrant_token, seller, sender=seller)
    expect_event(receipt, deal.Claimed, deal, payee=seller, token=reentrant_token, recipient=seller, amount=owed)
    assert reentrant_token.hook_result() is False
    assert deal.tranche_status(1) == PENDING
    assert reentrant_token.balanceOf(seller) == owed
    assert deal.claimable(seller, reentrant_token) == 0 == deal.unclaimed(reentrant_token)
    assert reentrant_token.balanceOf(deal) == deal.held(1)
    # control
    reentrant_token.transfer(desk, 1, sender=seller)
    assert reentrant_token.hook_result() is True and deal.tranche_status(1) == REFUNDED


def test_reentrant_claim_during_release_is_blocked(reentrant_dvp, chain, reentrant_token, seller, desk, attacker):
    """A token callback trying to claim during a payout gets nothing: claim() only pays the caller's own
    pull balance (the seller's stays intact and the attacker receives nothing)."""
    terms, deal = reentrant_dvp
    reentrant_token.set_blocked(seller, True, sender=desk)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=attacker)
    owed = deal.claimable(seller, reentrant_token)
    reentrant_token.set_blocked(seller, False, sender=desk)
    reentrant_token.set_hook(deal, deal.claim.encode_input(reentrant_token.address, attacker.address), sender=attacker)
    chain.pending_timestamp = terms.tranches[1].unlock_time
    deal.release(1, sender=attacker)
    assert reentrant_token.hook_result() is False
    assert deal.claimable(seller, reentrant_token) == owed
    assert reentrant_token.balanceOf(attacker) == 0


def test_reentrant_escrowed_release_is_blocked(
    mk_escrowed, deploy, fund_all, chain, reentrant_token, desk, seller, attacker, tracker
):
    """ESCROWED with a re-entrant held token: both tranches marked and past the approval window (so
    anyone may release either); a hook re-entering release(1) during tranche 0's payout fails."""
    terms = mk_escrowed(quote_token=reentrant_token, quote_amount=10**22, approval_window=DAY)
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, reentrant_token)
    chain.pending_timestamp = terms.tranches[1].unlock_time
    deal.mark(0, EVIDENCE, sender=seller)
    deal.mark(1, EVIDENCE, sender=seller)
    reentrant_token.set_hook(deal, deal.release.encode_input(1), sender=attacker)
    track = tracker(deal, [reentrant_token])
    chain.pending_timestamp = deal.marked_at(1) + DAY  # both windows have passed
    deal.release(0, sender=attacker)
    assert reentrant_token.hook_result() is False
    assert (deal.tranche_status(0), deal.tranche_status(1)) == (RELEASED, MARKED)
    assert track.changes() == paid_by(deal, release_split(terms, 0, terms.tranches[0].quote_amount))
    # control
    chain.pending_timestamp = deal.marked_at(1) + DAY + 60
    reentrant_token.mint(attacker, 1, sender=attacker)
    reentrant_token.transfer(desk, 1, sender=attacker)
    assert reentrant_token.hook_result() is True and deal.tranche_status(1) == RELEASED
    assert reentrant_token.balanceOf(deal) == 0
