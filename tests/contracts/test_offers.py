"""Signed offers on the factory: EIP-712 digests identical to Python's, acceptance (private, public,
relayed, EIP-1271 maker), counters, the balance check, accept-and-fund, and every rejection with
nothing changed (no deal deployed, nonce unused, balances untouched)."""

from __future__ import annotations

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexotc_client.agreement import build
from nexotc_client.offers import ZERO32, Offer, SignedOffer, Thread, diff
from nexotc_client.terms import ZERO_ADDRESS, Leg, Party, Role, Terms, Tranche

DAY = 86_400
SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EMPTY = b""


@pytest.fixture(scope="module")
def chain_id(chain):
    return chain.chain_id


@pytest.fixture
def make_offer(dvp_terms, seller, now):
    """A private DVP offer made by the seller to the buyer (the terms' counterparty)."""

    def build(terms: Terms | None = None, maker=None, nonce: int = 1, **kw) -> Offer:
        terms = terms or dvp_terms()
        maker = maker or seller
        kw.setdefault("taker", terms.buyer if maker.address == terms.seller else terms.seller)
        return Offer(terms=terms, maker=maker.address, expiry=now + DAY, nonce=nonce, **kw)

    return build


def sign(offer: Offer, account, chain_id: int, factory) -> bytes:
    return offer.sign(account.private_key, chain_id, factory.address).signature


def approve_legs(terms: Terms, factory, wbtc, usdt, buyer, seller):
    """Mint both legs and approve the factory (one standing approval serves every deal)."""
    wbtc.mint(seller, terms.base.amount, sender=seller)
    wbtc.approve(factory.address, terms.base.amount, sender=seller)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    usdt.approve(factory.address, 0, sender=buyer)
    usdt.approve(factory.address, terms.quote.amount, sender=buyer)


def predicted(factory, offer: Offer, terms: Terms | None = None) -> str:
    return factory.predict_address((terms or offer.terms).as_struct(), offer.maker, offer.offer_hash(), offer.desk_id)


@pytest.fixture
def nothing_changed(chain, wbtc, usdt, buyer, seller):
    """`with nothing_changed(factory, offer, reason):` the exact revert, no deal at the predicted
    address, the nonce still unused, both parties' balances untouched."""
    from contextlib import contextmanager

    @contextmanager
    def check(factory, offer: Offer, reason: str, terms: Terms | None = None):
        address = predicted(factory, offer, terms) if (terms or offer.terms).buyer != ZERO_ADDRESS else None
        before = [t.balanceOf(a) for t in (wbtc, usdt) for a in (buyer, seller)]
        with ape.reverts(reason):
            yield
        if address:
            assert chain.provider.get_code(address) in (b"", None) or len(chain.provider.get_code(address)) == 0
        assert not factory.nonce_used(offer.maker, offer.nonce)
        assert [t.balanceOf(a) for t in (wbtc, usdt) for a in (buyer, seller)] == before

    return check


# ----------------------------------------------------------------- digests
def _random_terms(draw_ints, tokens, parties):
    base_amount, quote_amount, n = draw_ints
    tranches = []
    per_b, per_q = base_amount // n, quote_amount // n
    for i in range(n):
        b = per_b if i < n - 1 else base_amount - per_b * (n - 1)
        q = per_q if i < n - 1 else quote_amount - per_q * (n - 1)
        tranches.append(Tranche(b, q, 1_000 + i, 2_000 + i))
    return Terms(
        base=Leg(tokens[0], base_amount),
        quote=Leg(tokens[1], quote_amount),
        parties=parties,
        tranches=tuple(tranches),
        funding_deadline=900,
        final_expiry=10**6,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    base=st.integers(1, 2**96 - 1),
    quote=st.integers(1, 2**96 - 1),
    n=st.integers(1, 8),
    bps=st.lists(st.integers(1, 200), max_size=4),
    nonce=st.integers(0, 2**256 - 1),
    expiry=st.integers(0, 2**64),
    taker_public=st.booleans(),
    previous=st.binary(min_size=32, max_size=32),
    salt=st.binary(min_size=32, max_size=32),
    desk_id=st.one_of(st.just(0), st.integers(1, 2**256 - 1)),
    agreement=st.one_of(
        st.none(), st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=16), min_size=1, max_size=3)
    ),
)
def test_python_and_contract_hash_offers_identically(
    factory, wbtc, usdt, chain_id, base, quote, n, bps, nonce, expiry, taker_public, previous, salt, desk_id, agreement
):
    wallets = [Account.create().address for _ in range(4 + len(bps))]
    parties = (
        Party(wallets[0], Role.BUYER | Role.BASE_RECEIVER),
        Party(wallets[1], Role.SELLER | Role.QUOTE_RECEIVER),
        Party(wallets[2], Role.PLATFORM),
        Party(wallets[3], Role.RESOLVER),
        *(Party(w, Role.INTRODUCER, b) for w, b in zip(wallets[4:], bps, strict=True)),
    )
    terms = _random_terms((base, quote, n), (wbtc.address, usdt.address), parties)
    offer = Offer(
        terms=terms,
        maker=wallets[1],
        taker=ZERO_ADDRESS if taker_public else wallets[0],
        expiry=expiry,
        nonce=nonce,
        previous=previous,
        salt=salt,
        desk_id=desk_id,
        agreement=build({}, agreement),
    )
    assert (offer.agreement_hash == ZERO32) == (agreement is None)
    assert bytes(factory.offer_struct_hash(terms.as_struct(), offer.as_struct())) == offer.offer_hash()
    assert bytes(factory.offer_digest(terms.as_struct(), offer.as_struct())) == offer.digest(chain_id, factory.address)


# --------------------------------------------------------------- acceptance
def test_taker_accepts_private_offer_and_funds_both_legs(
    factory, make_offer, chain_id, project, wbtc, usdt, buyer, seller
):
    offer = make_offer()
    terms = offer.terms
    approve_legs(terms, factory, wbtc, usdt, buyer, seller)
    address = predicted(factory, offer)
    receipt = factory.accept_offer(
        terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY, True, sender=buyer
    )
    event = receipt.decode_logs(factory.OfferAccepted)[0]
    assert to_checksum_address(event.deal) == address
    assert bytes(event.offer_hash) == offer.offer_hash()
    assert event.maker == seller.address and event.taker == buyer.address and event.funded
    deal = project.DealEscrow.at(address)
    assert factory.is_deal(address)
    assert bytes(deal.terms_hash()) == terms.terms_hash()  # exactly the signed terms
    assert deal.phase() == 1  # both legs deposited in the same transaction
    assert wbtc.balanceOf(address) == terms.base.amount and usdt.balanceOf(address) == terms.quote.amount
    assert factory.nonce_used(seller.address, offer.nonce)


def test_accept_without_funding_checks_balances_and_leaves_funding_open(
    factory, make_offer, chain_id, project, wbtc, usdt, buyer, seller
):
    offer = make_offer(nonce=2)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    factory.accept_offer(
        offer.terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY, False, sender=buyer
    )
    deal = project.DealEscrow.at(predicted(factory, offer))
    assert deal.phase() == 0
    factory.fund_deal(deal.address, sender=seller)  # later, from the standing approval to the factory
    assert deal.funded(0) and not deal.funded(1)


def test_public_offer_counterparty_is_whoever_accepts(
    factory, dvp_terms, chain_id, project, wbtc, usdt, buyer, seller, now
):
    open_terms = dvp_terms()
    parties = tuple(Party(ZERO_ADDRESS, p.roles, p.bps) if p.wallet == buyer.address else p for p in open_terms.parties)
    open_terms = open_terms.with_changes(parties=parties)
    offer = Offer(terms=open_terms, maker=seller.address, expiry=now + DAY, nonce=3)
    filled = offer.with_taker_filled(buyer.address)
    approve_legs(filled, factory, wbtc, usdt, buyer, seller)
    factory.accept_offer(
        open_terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY, True, sender=buyer
    )
    deal = project.DealEscrow.at(predicted(factory, offer, filled))
    assert deal.buyer() == buyer.address
    assert bytes(deal.terms_hash()) == filled.terms_hash()


def test_relayer_submits_both_signatures(factory, make_offer, chain_id, project, wbtc, usdt, buyer, seller, desk):
    offer = make_offer(nonce=4)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    maker_sig = sign(offer, seller, chain_id, factory)
    taker_sig = Account.sign_message(
        encode_typed_data(full_message=offer.typed_data(chain_id, factory.address)), buyer.private_key
    ).signature
    factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), maker_sig, taker_sig, True, sender=desk)
    assert project.DealEscrow.at(predicted(factory, offer)).phase() == 1


def test_contract_wallet_maker_signs_with_eip1271(factory, escrowed_terms, chain_id, project, usdt, buyer, desk, now):
    """A contract wallet (EIP-1271) makes an ESCROWED offer as the seller; the buyer accepts and funds."""
    wallet = desk.deploy(project.MockERC1271)
    terms = escrowed_terms(seller=wallet.address, markers=[wallet.address])
    offer = Offer(terms=terms, maker=wallet.address, taker=buyer.address, expiry=now + DAY, nonce=5)
    digest = offer.digest(chain_id, factory.address)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    usdt.approve(factory.address, 0, sender=buyer)
    usdt.approve(factory.address, terms.quote.amount, sender=buyer)
    with ape.reverts("invalid maker signature"):  # the wallet has not approved this digest
        factory.accept_offer(terms.as_struct(), offer.as_struct(), b"wallet-ok", EMPTY, True, sender=buyer)
    wallet.set_valid(digest, b"wallet-ok", True, sender=desk)
    factory.accept_offer(terms.as_struct(), offer.as_struct(), b"wallet-ok", EMPTY, True, sender=buyer)
    deal = project.DealEscrow.at(predicted(factory, offer))
    assert deal.seller() == wallet.address and deal.phase() == 1


def test_counter_offer_references_the_previous_offer(factory, make_offer, chain_id, project, wbtc, usdt, buyer, seller):
    opening = make_offer(nonce=6)
    countered_terms = opening.terms.with_changes(desk_fee_bps=20)
    counter = opening.counter(countered_terms, buyer.address, opening.expiry, nonce=1, taker=seller.address)
    thread = Thread()
    thread.add(opening.sign(seller.private_key, chain_id, factory.address))
    thread.add(counter.sign(buyer.private_key, chain_id, factory.address))
    assert [c[0] for c in thread.changes()[0] if c[0].startswith("terms")] == ["terms.desk_fee_bps"]
    approve_legs(countered_terms, factory, wbtc, usdt, buyer, seller)
    receipt = factory.accept_offer(
        countered_terms.as_struct(),
        counter.as_struct(),
        sign(counter, buyer, chain_id, factory),
        EMPTY,
        True,
        sender=seller,
    )
    event = receipt.decode_logs(factory.OfferAccepted)[0]
    assert bytes(event.previous) == opening.offer_hash()


def test_invite_link_round_trips(make_offer, chain_id, factory, seller):
    signed = make_offer(nonce=7).sign(seller.private_key, chain_id, factory.address)
    link = signed.to_link()
    assert link.startswith("nexotc://offer/") and " " not in link
    back = SignedOffer.from_link(link)
    assert back == signed and back.signer() == seller.address
    assert diff(back.offer, signed.offer) == []


# ---------------------------------------------------------------- rejections
def test_signature_for_another_chain_is_rejected(
    factory, make_offer, chain_id, wbtc, usdt, buyer, seller, nothing_changed
):
    offer = make_offer(nonce=10)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id + 1, factory)
    with nothing_changed(factory, offer, "invalid maker signature"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_signature_for_another_factory_is_rejected(
    factory, make_offer, chain_id, wbtc, usdt, buyer, seller, nothing_changed, desk, project
):
    other = desk.deploy(
        project.EscrowFactory,
        project.DealEscrow.contract_type.deployment_bytecode.bytecode,
        project.DepositWallet.contract_type.deployment_bytecode.bytecode,
        "0x0000000000000000000000000000000000000000",
    )
    offer = make_offer(nonce=11)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, other)
    with nothing_changed(factory, offer, "invalid maker signature"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_expired_offer_is_rejected(factory, make_offer, chain_id, chain, wbtc, usdt, buyer, seller, nothing_changed):
    offer = make_offer(nonce=12)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    chain.pending_timestamp = offer.expiry + 1
    with nothing_changed(factory, offer, "offer expired"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_cancelled_nonce_is_rejected(factory, make_offer, chain_id, wbtc, usdt, buyer, seller):
    offer = make_offer(nonce=300)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    receipt = factory.cancel_nonces([300, 301], sender=seller)
    assert [(e.word, e.mask) for e in receipt.decode_logs(factory.NoncesCancelled)] == [(1, 1 << 44), (1, 1 << 45)]
    assert factory.nonce_used(seller.address, 300) and factory.nonce_used(seller.address, 301)
    with ape.reverts("nonce used or cancelled"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_cancelling_a_used_or_cancelled_nonce_reverts(factory, make_offer, chain_id, wbtc, usdt, buyer, seller):
    """A cancellation that lands proves none of its offers was filled: a used (or cancelled) nonce reverts
    the whole call, nothing cancelled."""
    offer = make_offer(nonce=310)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY,
                         False, sender=buyer)  # fmt: skip
    for nonces in ([310], [311, 310]):
        with ape.reverts("nonce used or cancelled"):
            factory.cancel_nonces(nonces, sender=seller)
        assert not factory.nonce_used(seller.address, 311)
    factory.cancel_nonces([311], sender=seller)
    with ape.reverts("nonce used or cancelled"):
        factory.cancel_nonces([311], sender=seller)
    with ape.reverts("nonce used or cancelled"):  # the same nonce twice in one call
        factory.cancel_nonces([312, 312], sender=seller)
    assert not factory.nonce_used(seller.address, 312)


def test_a_counter_filled_ahead_of_its_cancellation_stops_the_taker(
    project, factory, mk_dvp, chain_id, wbtc, usdt, buyer, seller, now
):
    """The taker cancels its counter before accepting the maker's offer; the maker, seeing the cancellation
    pending, fills the counter first: the cancellation then reverts, and the taker (its client) stops."""
    for who, token in ((seller, wbtc), (buyer, usdt)):  # standing approvals, enough for two deals
        token.mint(who, 10**30, sender=who)
        token.approve(factory, 2**256 - 1, sender=who)
    opening_terms = mk_dvp()
    opening = Offer(terms=opening_terms, maker=seller.address, taker=buyer.address, expiry=now + 86_400, nonce=320)
    counter_terms = mk_dvp(quote_amount=opening_terms.quote.amount - 1)
    counter = opening.counter(counter_terms, buyer.address, opening.expiry, nonce=321, taker=seller.address)
    counter_sig = sign(counter, buyer, chain_id, factory)
    factory.accept_offer(counter_terms.as_struct(), counter.as_struct(), counter_sig, EMPTY, True, sender=seller)
    with ape.reverts("nonce used or cancelled"):
        factory.cancel_nonces([321], sender=buyer)


def test_accepted_offer_cannot_be_replayed(factory, make_offer, chain_id, wbtc, usdt, buyer, seller):
    offer = make_offer(nonce=13)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, False, sender=buyer)
    with ape.reverts("nonce used or cancelled"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, False, sender=buyer)


def test_wrong_taker_cannot_accept_a_private_invite(
    factory, make_offer, chain_id, wbtc, usdt, buyer, seller, attacker, nothing_changed
):
    offer = make_offer(nonce=14)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    with nothing_changed(factory, offer, "invalid taker signature"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=attacker)
    # nor by presenting its own signature as the taker's
    forged = sign(offer, seller, chain_id, factory)
    with nothing_changed(factory, offer, "invalid taker signature"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, forged, True, sender=attacker)


def test_high_s_signature_is_rejected(factory, make_offer, chain_id, wbtc, usdt, buyer, seller, nothing_changed):
    offer = make_offer(nonce=15)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    malleable = r + (SECP_N - s).to_bytes(32, "big") + bytes([55 - v])  # the same signature, high s
    with nothing_changed(factory, offer, "invalid maker signature"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), malleable, EMPTY, True, sender=buyer)


def test_altered_terms_are_rejected(factory, make_offer, chain_id, wbtc, usdt, buyer, seller, nothing_changed):
    offer = make_offer(nonce=16)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    altered = offer.terms.with_changes(desk_fee_bps=0)
    with nothing_changed(factory, offer, "invalid maker signature", terms=altered):
        factory.accept_offer(altered.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_agreement_is_bound_by_the_offer_hash(factory, make_offer, chain_id, wbtc, usdt, buyer, seller):
    agreement = build({}, {"delivery": "WBTC to the buyer's custody account", "reference": "RFQ-7"})
    offer = make_offer(nonce=18, agreement=agreement)
    assert offer.agreement_hash != ZERO32
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    receipt = factory.accept_offer(
        offer.terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY, False, sender=buyer
    )
    event = receipt.decode_logs(factory.OfferAccepted)[0]
    assert bytes(event.offer_hash) == offer.offer_hash()  # the recorded hash covers the agreement
    assert offer.offer_hash() != Offer(**{**offer.__dict__, "agreement": ""}).offer_hash()


def test_altered_agreement_is_rejected(factory, make_offer, chain_id, wbtc, usdt, buyer, seller, nothing_changed):
    offer = make_offer(nonce=19, agreement=build({}, {"delivery": "to bc1q-seller"}))
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    sig = sign(offer, seller, chain_id, factory)
    for altered in (Offer(**{**offer.__dict__, "agreement": build({}, {"delivery": "to bc1q-attacker"})}),
                    Offer(**{**offer.__dict__, "agreement": ""})):  # fmt: skip
        with nothing_changed(factory, offer, "invalid maker signature"):
            factory.accept_offer(offer.terms.as_struct(), altered.as_struct(), sig, EMPTY, False, sender=buyer)


def test_maker_must_be_buyer_or_seller(factory, make_offer, chain_id, desk, buyer, nothing_changed):
    offer = make_offer(nonce=17, maker=desk, taker=buyer.address)
    sig = sign(offer, desk, chain_id, factory)
    with nothing_changed(factory, offer, "maker is not the buyer or the seller"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_public_offer_must_leave_the_counterparty_open(factory, make_offer, chain_id, buyer, seller, nothing_changed):
    offer = make_offer(nonce=18, taker=ZERO_ADDRESS)
    sig = sign(offer, seller, chain_id, factory)
    with nothing_changed(factory, offer, "a public offer leaves the counterparty open"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, True, sender=buyer)


def test_balance_check_rejects_short_funders(factory, make_offer, chain_id, wbtc, usdt, buyer, seller, nothing_changed):
    offer = make_offer(nonce=19)
    sig = sign(offer, seller, chain_id, factory)
    wbtc.mint(seller, offer.terms.base.amount - 1, sender=seller)
    wbtc.approve(factory.address, offer.terms.base.amount, sender=seller)
    with nothing_changed(factory, offer, "funder balance below its leg"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, False, sender=buyer)
    wbtc.mint(seller, 1, sender=seller)
    usdt.mint(buyer, offer.terms.quote.amount, sender=buyer)
    with nothing_changed(factory, offer, "funder allowance below its leg"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), sig, EMPTY, False, sender=buyer)


def test_fund_deal_refuses_non_deals_and_non_funders(
    factory, make_offer, chain_id, wbtc, usdt, buyer, seller, attacker, project
):
    with ape.reverts("not a deal of this factory"):
        factory.fund_deal(attacker.address, sender=attacker)
    offer = make_offer(nonce=20)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    factory.accept_offer(
        offer.terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY, False, sender=buyer
    )
    deal = predicted(factory, offer)
    with ape.reverts("nothing to fund"):
        factory.fund_deal(deal, sender=attacker)
    factory.fund_deal(deal, sender=buyer)
    with ape.reverts("already funded"):
        factory.fund_deal(deal, sender=buyer)


def test_credit_is_factory_only(factory, make_offer, chain_id, wbtc, usdt, buyer, seller, attacker, project):
    offer = make_offer(nonce=21)
    approve_legs(offer.terms, factory, wbtc, usdt, buyer, seller)
    factory.accept_offer(
        offer.terms.as_struct(), offer.as_struct(), sign(offer, seller, chain_id, factory), EMPTY, False, sender=buyer
    )
    deal = project.DealEscrow.at(predicted(factory, offer))
    wbtc.mint(deal.address, offer.terms.base.amount, sender=attacker)
    with ape.reverts("only factory"):
        deal.credit(seller.address, sender=attacker)
    assert not deal.funded(0)
