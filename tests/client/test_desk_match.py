"""Matchmaking: the ranking agent's filters and transparent scores (pure), reputation read from on-chain deal
history (completed, disputed, refunded deals on anvil), the book in the store, and a chosen match turned into
a private invite link that only the invited taker can accept."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexotc_client.chain import NexotcError, Registry, deploy_factory
from nexotc_client.chain.offers import accept_offer
from nexotc_client.desk.db import Database
from nexotc_client.desk.lock import LockParams
from nexotc_client.desk.match import (
    WEIGHTS,
    MakerOffer,
    MatchBook,
    MatchError,
    Preference,
    Reputation,
    invite_offer,
    rank,
    reputations_from_chain,
)
from nexotc_client.desk.models import Side
from nexotc_client.desk.store import DeskStore
from nexotc_client.offers import SignedOffer
from nexotc_client.terms import Leg, Phase, Terms, even_tranches

BTC = 10**8
USD = 10**6
DAY = 86_400
MAKER_A, MAKER_B, MAKER_C, TAKER = ("0x" + c * 40 for c in "abcd")


def offer(offer_id: str, maker: str = MAKER_A, price: str = "65000", **kw) -> MakerOffer:
    base = dict(
        offer_id=offer_id,
        maker=maker,
        pair="BTC/USDT",
        side=Side.SELL,
        size_min=Decimal("10"),
        size_max=Decimal("200"),
        price=Decimal(price),
        settlement_window_s=3_600,
        kyc_level=2,
    )
    base.update(kw)
    return MakerOffer(**base)


PREF = Preference(
    pref_id="P1",
    taker=TAKER,
    pair="BTC/USDT",
    side=Side.BUY,
    size_min=Decimal("50"),
    size_max=Decimal("200"),
    reference_price=Decimal("65000"),
    price_tolerance_bps=Decimal("20"),
    settlement_window_s=7_200,
    min_kyc_level=1,
    avoid=(MAKER_C,),
)


# ------------------------------------------------------------------ pure ranking
def test_every_exclusion_names_its_reason() -> None:
    offers = [
        offer("pair", pair="ETH/USDT"),
        offer("side", side=Side.BUY),
        offer("self", maker=TAKER),
        offer("avoid", maker=MAKER_C),
        offer("size", size_min=Decimal("201"), size_max=Decimal("300")),
        offer("kyc", kyc_level=0),
        offer("slow", settlement_window_s=7_201),
        offer("price", price="65130.01"),  # 20.0015 bps above the reference: outside ±20
        offer("ok", price="65130"),  # exactly at the edge: kept
    ]
    ranking = rank(PREF, offers)
    reasons = dict(ranking.excluded)
    assert set(reasons) == {"pair", "side", "self", "avoid", "size", "kyc", "slow", "price"}
    assert "avoid list" in reasons["avoid"] and "KYC level 0" in reasons["kyc"] and "bps worse" in reasons["price"]
    assert [c.offer.offer_id for c in ranking.candidates] == ["ok"]
    assert ranking.candidates[0].features[0].value == 0  # at the worst edge of the band


def test_scores_are_the_weighted_sum_of_listed_features() -> None:
    reps = {MAKER_A: Reputation(MAKER_A, completed=8), MAKER_B: Reputation(MAKER_B, completed=1, disputed=3)}
    ranking = rank(PREF, [offer("A", MAKER_A, "65010"), offer("B", MAKER_B, "64990", size_max=Decimal("100"))], reps)
    for c in ranking.candidates:
        names = [f.name for f in c.features]
        assert names == list(WEIGHTS)
        assert c.score == sum(f.value * f.weight for f in c.features)
        assert all(0 <= f.value <= 1 for f in c.features)
    a, b = {c.offer.offer_id: c for c in ranking.candidates}.values()
    # B is 20 bps cheaper and only fills half, but its record (3 disputes of 4) sinks it
    assert [c.offer.offer_id for c in ranking.candidates] == ["A", "B"]
    fa, fb = ({f.name: f for f in c.features} for c in (a, b))
    assert fb["price"].value > fa["price"].value and fb["reputation"].value < fa["reputation"].value
    assert fa["reputation"].value == Decimal(9) / Decimal(10) and fb["reputation"].value == Decimal(2) / Decimal(6)
    assert fb["size"].value == Decimal("0.5") and "fills 100 of 200" in fb["size"].detail
    as_json = ranking.to_dict()
    assert as_json["candidates"][0]["features"]["reputation"]["detail"].startswith("8 completed")
    # a newcomer gets the neutral 1/2; equal offers tie-break by time then id
    tie = rank(PREF, [offer("Y", MAKER_B, created=5), offer("X", MAKER_A, created=5), offer("Z", MAKER_A, created=1)])
    assert [c.offer.offer_id for c in tie.candidates] == ["Z", "X", "Y"]


def test_bad_offers_preferences_and_weights_are_refused() -> None:
    with pytest.raises(MatchError, match="size range"):
        offer("x", size_min=Decimal("5"), size_max=Decimal("4"))
    with pytest.raises(MatchError, match="KYC level 4"):
        offer("x", kyc_level=4)
    with pytest.raises(MatchError, match="price"):
        offer("x", price="0")
    with pytest.raises(MatchError, match="tolerance"):
        replace(PREF, price_tolerance_bps=Decimal(-1))
    with pytest.raises(MatchError, match="weights"):
        rank(PREF, [], weights={"price": Decimal(1)})


@settings(max_examples=60, deadline=None)
@given(
    price=st.integers(min_value=64_870, max_value=65_130),
    better=st.integers(min_value=1, max_value=200),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_a_better_price_never_scores_lower(price: int, better: int, side: Side) -> None:
    pref = replace(PREF, side=side)
    step = -better if side is Side.BUY else better
    o1 = offer("1", price=str(price), side=side.opposite)
    o2 = offer("2", price=str(price + step), side=side.opposite)
    ranking = rank(pref, [o1, o2])
    scores = {c.offer.offer_id: c.score for c in ranking.candidates}
    if "1" in scores and "2" in scores:
        assert scores["2"] >= scores["1"]
    if "1" in scores:  # o1 within tolerance: the better o2 is too
        assert "2" in scores


# ------------------------------------------------------------------ on chain
@pytest.fixture(scope="module")
def nxf(desk, tmp_path_factory):
    """The nexotc Factory of this module (not `nx`: that is conftest's function-scoped CLI runner, and ape's
    chain isolation, which tracks fixtures by name, mis-restores a module fixture sharing its name)."""
    return deploy_factory(desk, registry=Registry(tmp_path_factory.mktemp("nexotc") / "deployments.json"))


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> MatchBook:
    db = Database.open(f"sqlite:///{Path(tmp_path_factory.mktemp('desk')) / 'desk.db'}")
    yield MatchBook(DeskStore(db))
    db.close()


@pytest.fixture(scope="module")
def history(nxf, wbtc, usdt, desk, buyer, seller, lawyer, resolver, chain):
    """On-chain history: buyer/seller completed a DVP deal; buyer/lawyer disputed one and had one refunded."""
    for who in (seller, lawyer):
        wbtc.mint(who, 500 * BTC, sender=desk)
    usdt.mint(buyer, 50_000_000 * USD, sender=desk)
    now = chain.pending_timestamp

    def terms(seller_wallet, on_chain: bool = True) -> Terms:
        extra = (
            {} if on_chain else {"markers": [seller_wallet], "approvers": [buyer.address], "signers": [buyer.address]}
        )
        return Terms.build(
            base=Leg(wbtc.address if on_chain else "0x" + "0" * 40, BTC, on_chain),
            quote=Leg(usdt.address, 65_000 * USD),
            buyer=buyer.address,
            seller=seller_wallet,
            platform=desk.address,
            resolver=resolver.address,
            tranches=even_tranches(BTC, 65_000 * USD, 1, now + 60, 0, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + 30 * DAY,
            **extra,
        )

    completed = nxf.create(terms(seller.address), seller, fund=True)
    completed.fund(buyer)
    disputed = nxf.create(terms(lawyer.address, on_chain=False), desk)
    disputed.fund(buyer)
    refunded = nxf.create(terms(lawyer.address), lawyer, fund=True)
    refunded.fund(buyer)
    chain.pending_timestamp = now + 120
    completed.release(0, buyer)
    disputed.mark(0, "btc txid", lawyer)
    disputed.dispute(0, "never arrived", buyer)
    chain.pending_timestamp = now + 60 + DAY + 10
    refunded.refund(0, buyer)
    return completed, disputed, refunded


def test_reputation_is_read_from_on_chain_deal_outcomes(nxf, history, buyer, seller, lawyer) -> None:
    completed, disputed, refunded = history
    assert completed.phase() is Phase.SETTLED
    reps = reputations_from_chain(nxf)
    s, law, b = reps[seller.address.lower()], reps[lawyer.address.lower()], reps[buyer.address.lower()]
    assert (s.completed, s.disputed, s.refunded) == (1, 0, 0)
    assert (law.completed, law.disputed, law.refunded) == (0, 1, 1)
    assert (b.completed, b.disputed, b.refunded) == (1, 1, 1)
    assert s.score == Decimal(2) / 3 and law.score == Decimal(1) / 4
    only = reputations_from_chain(nxf, [seller.address])
    assert set(only) == {seller.address.lower()}


def test_chosen_match_becomes_a_private_invite_only_the_taker_accepts(
    nxf, history, book, wbtc, usdt, desk, buyer, seller, lawyer, resolver, attacker
) -> None:
    book.post_offer(offer("O-good", seller.address, "65010", created=1))
    book.post_offer(offer("O-cheap", lawyer.address, "64995", created=2))
    book.post_preference(replace(PREF, taker=buyer.address, avoid=(attacker.address,)))
    ranking, rows = book.propose("P1", reputations=reputations_from_chain(nxf), limit=2, now=10)
    assert [c.offer.offer_id for c in ranking.candidates] == ["O-good", "O-cheap"]
    assert [r.offer_id for r in rows] == ["O-good", "O-cheap"] and rows[0].score > rows[1].score
    stored = book.match(rows[0].match_id)
    assert stored.features["features"]["reputation"]["detail"] == "1 completed, 0 disputed, 0 refunded on chain"

    params = LockParams(
        base_token=wbtc.address,
        quote_token=usdt.address,
        desk=seller.address,
        client=buyer.address,
        platform=desk.address,
        resolver=resolver.address,
    )
    with pytest.raises(MatchError, match="only the maker"):
        invite_offer(nxf, book, rows[0].match_id, lawyer, params)
    signed, link = invite_offer(nxf, book, rows[0].match_id, seller, params)
    assert link.startswith("nexotc://offer/")
    opened = SignedOffer.from_link(link)
    assert opened == signed and opened.offer.taker == buyer.address
    assert opened.offer.terms.base.amount == 200 * BTC and opened.offer.terms.quote.amount == 200 * 65_010 * USD
    assert book.match(rows[0].match_id).status == "invited" and book.match(rows[0].match_id).invite == link
    assert [o.offer_id for o in book.offers()] == ["O-cheap"]  # the matched offer left the book
    with pytest.raises(MatchError, match="is invited"):
        book.choose(rows[0].match_id, link)

    with pytest.raises(NexotcError, match="not the invited taker"):
        accept_offer(nxf, opened, attacker)
    accepted = accept_offer(nxf, opened, buyer, fund=True)
    assert accepted.deal.status().funded == (True, True)
