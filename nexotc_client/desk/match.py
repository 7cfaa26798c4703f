"""Matchmaking: an offer book where makers post offers and takers post preferences, a ranking agent that
proposes the best counterparties and shows why, reputation read from on-chain deal history, and a chosen
match turned into a private invite (a signed offer bound to the taker, as `nexotc offer invite` links).

Ranking is transparent: hard filters first, each exclusion with its reason (pair, side, size range, KYC
level, avoided counterparty, price outside the tolerance, settlement too slow); then every candidate's
score is ``Σ weight × feature`` over features in [0, 1], listed with their values and contributions:

    price       ``(tolerance − adverse bps) / (2 × tolerance)``: 1 at the best edge of the band, ½ at the
                reference, 0 at the worst edge
    reputation  ``(completed + 1) / (completed + disputed + refunded + 2)`` over the maker's on-chain deals (a
                Beta(1, 1) posterior mean: ½ for a newcomer)
    size        the share of the taker's maximum the maker can fill
    speed       ``1 − maker's settlement window / taker's window``
    kyc         how far the maker's KYC level is above the taker's minimum (levels 0..3)

Exact arithmetic (Decimal) throughout; ties break by earlier offer, then offer id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nexotc_client.desk.db import BookOfferRow, MatchRow, PreferenceRow
from nexotc_client.desk.models import Side
from nexotc_client.desk.money import CTX, D
from nexotc_client.desk.store import DeskStore, StoreError

if TYPE_CHECKING:
    from nexotc_client.chain.factory import Factory

MAX_KYC = 3
ONE = Decimal(1)
ZERO = Decimal(0)
#: default weights of the ranking features (they sum to 1)
WEIGHTS: dict[str, Decimal] = {
    "price": Decimal("0.35"),
    "reputation": Decimal("0.30"),
    "size": Decimal("0.15"),
    "speed": Decimal("0.10"),
    "kyc": Decimal("0.10"),
}
SCORE_DP = Decimal("0.000001")


class MatchError(ValueError):
    """A malformed offer or preference, or an unknown one."""


@dataclass(frozen=True)
class MakerOffer:
    """A maker's standing offer: `side` is the maker's (SELL: the maker sells the base asset)."""

    offer_id: str
    maker: str
    pair: str
    side: Side
    size_min: Decimal
    size_max: Decimal
    price: Decimal
    settlement_window_s: int
    kyc_level: int
    created: int = 0

    def __post_init__(self) -> None:
        _check_range(self.size_min, self.size_max)
        if D(self.price) <= 0:
            raise MatchError("price: must be positive")
        _check_kyc(self.kyc_level)
        if self.settlement_window_s <= 0:
            raise MatchError("settlement window: must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_id": self.offer_id,
            "maker": self.maker,
            "pair": self.pair,
            "side": self.side.value,
            "size_min": str(self.size_min),
            "size_max": str(self.size_max),
            "price": str(self.price),
            "settlement_window_s": self.settlement_window_s,
            "kyc_level": self.kyc_level,
            "created": self.created,
        }


@dataclass(frozen=True)
class Preference:
    """A taker's preferences: `side` is the taker's (BUY: wants to buy the base asset) around
    `reference_price` within `price_tolerance_bps`; settlement within `settlement_window_s`; makers of at
    least `min_kyc_level`; never the wallets in `avoid`."""

    pref_id: str
    taker: str
    pair: str
    side: Side
    size_min: Decimal
    size_max: Decimal
    reference_price: Decimal
    price_tolerance_bps: Decimal
    settlement_window_s: int
    min_kyc_level: int = 0
    avoid: tuple[str, ...] = ()
    created: int = 0

    def __post_init__(self) -> None:
        _check_range(self.size_min, self.size_max)
        if D(self.reference_price) <= 0:
            raise MatchError("reference price: must be positive")
        if D(self.price_tolerance_bps) < 0:
            raise MatchError("price tolerance: must not be negative")
        _check_kyc(self.min_kyc_level)
        if self.settlement_window_s <= 0:
            raise MatchError("settlement window: must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {
            "pref_id": self.pref_id,
            "taker": self.taker,
            "pair": self.pair,
            "side": self.side.value,
            "size_min": str(self.size_min),
            "size_max": str(self.size_max),
            "reference_price": str(self.reference_price),
            "price_tolerance_bps": str(self.price_tolerance_bps),
            "settlement_window_s": self.settlement_window_s,
            "min_kyc_level": self.min_kyc_level,
            "avoid": list(self.avoid),
            "created": self.created,
        }


@dataclass(frozen=True)
class Reputation:
    """A wallet's on-chain deal history as buyer or seller."""

    wallet: str
    completed: int = 0
    disputed: int = 0
    refunded: int = 0
    active: int = 0

    @property
    def score(self) -> Decimal:
        failures = self.disputed + self.refunded
        return CTX.divide(Decimal(self.completed + 1), Decimal(self.completed + failures + 2))

    def to_dict(self) -> dict[str, Any]:
        return {
            "wallet": self.wallet,
            "completed": self.completed,
            "disputed": self.disputed,
            "refunded": self.refunded,
            "active": self.active,
            "score": str(self.score.quantize(SCORE_DP)),
        }


@dataclass(frozen=True)
class Feature:
    name: str
    value: Decimal
    weight: Decimal
    detail: str

    @property
    def contribution(self) -> Decimal:
        return CTX.multiply(self.value, self.weight)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": str(self.value.quantize(SCORE_DP)),
            "weight": str(self.weight),
            "contribution": str(self.contribution.quantize(SCORE_DP)),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Candidate:
    offer: MakerOffer
    features: tuple[Feature, ...]
    fill_size: Decimal

    @property
    def score(self) -> Decimal:
        return sum((f.contribution for f in self.features), ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_id": self.offer.offer_id,
            "maker": self.offer.maker,
            "price": str(self.offer.price),
            "fill_size": str(self.fill_size),
            "score": str(self.score.quantize(SCORE_DP)),
            "features": {f.name: f.to_dict() for f in self.features},
        }


@dataclass(frozen=True)
class Ranking:
    preference: Preference
    candidates: tuple[Candidate, ...]
    excluded: tuple[tuple[str, str], ...]  # (offer id, reason)
    weights: dict[str, Decimal] = field(default_factory=lambda: dict(WEIGHTS))

    def to_dict(self) -> dict[str, Any]:
        return {
            "pref_id": self.preference.pref_id,
            "weights": {k: str(v) for k, v in self.weights.items()},
            "candidates": [c.to_dict() for c in self.candidates],
            "excluded": [{"offer_id": o, "reason": r} for o, r in self.excluded],
        }


# ------------------------------------------------------------------ ranking
def exclusion(offer: MakerOffer, pref: Preference) -> str | None:
    """Why `offer` cannot serve `pref` (None: it can)."""
    if offer.pair != pref.pair:
        return f"pair {offer.pair} is not {pref.pair}"
    if offer.side is pref.side:
        return f"the maker also wants to {offer.side.value}"
    if offer.maker.lower() == pref.taker.lower():
        return "the maker is the taker"
    if offer.maker.lower() in {a.lower() for a in pref.avoid}:
        return "counterparty on the taker's avoid list"
    if offer.size_max < pref.size_min or pref.size_max < offer.size_min:
        return f"size range {offer.size_min}-{offer.size_max} does not meet {pref.size_min}-{pref.size_max}"
    if offer.kyc_level < pref.min_kyc_level:
        return f"KYC level {offer.kyc_level} below the minimum {pref.min_kyc_level}"
    if offer.settlement_window_s > pref.settlement_window_s:
        return f"settles in {offer.settlement_window_s}s, the taker needs {pref.settlement_window_s}s at most"
    if adverse_bps(offer, pref) > pref.price_tolerance_bps:
        return (
            f"price {offer.price} is {adverse_bps(offer, pref).quantize(Decimal('0.01'))} bps worse than the reference"
        )
    return None


def adverse_bps(offer: MakerOffer, pref: Preference) -> Decimal:
    """How many bps the offer's price is worse for the taker than its reference (negative: better)."""
    sign = 1 if pref.side is Side.BUY else -1
    return CTX.divide(
        CTX.multiply(Decimal(sign) * (offer.price - pref.reference_price), Decimal(10_000)), pref.reference_price
    )


def features(
    offer: MakerOffer, pref: Preference, reputation: Reputation, weights: dict[str, Decimal] = WEIGHTS
) -> tuple[Feature, ...]:
    tol = D(pref.price_tolerance_bps)
    adverse = adverse_bps(offer, pref)
    if tol == 0:
        price = ONE if adverse <= 0 else ZERO
    else:
        price = _clip(CTX.divide(tol - adverse, 2 * tol))
    fill = min(offer.size_max, pref.size_max)
    size = _clip(CTX.divide(fill, pref.size_max))
    speed = _clip(ONE - CTX.divide(Decimal(offer.settlement_window_s), Decimal(pref.settlement_window_s)))
    span = MAX_KYC - pref.min_kyc_level
    kyc = ONE if span == 0 else _clip(CTX.divide(Decimal(offer.kyc_level - pref.min_kyc_level), Decimal(span)))
    rep = reputation
    return (
        Feature("price", price, weights["price"], f"{adverse.quantize(Decimal('0.01'))} bps vs reference, band ±{tol}"),
        Feature(
            "reputation",
            rep.score,
            weights["reputation"],
            f"{rep.completed} completed, {rep.disputed} disputed, {rep.refunded} refunded on chain",
        ),
        Feature("size", size, weights["size"], f"fills {fill} of {pref.size_max}"),
        Feature("speed", speed, weights["speed"], f"{offer.settlement_window_s}s of {pref.settlement_window_s}s"),
        Feature("kyc", kyc, weights["kyc"], f"level {offer.kyc_level}, minimum {pref.min_kyc_level}"),
    )


def rank(
    pref: Preference,
    offers: Iterable[MakerOffer],
    reputations: dict[str, Reputation] | None = None,
    weights: dict[str, Decimal] | None = None,
    limit: int | None = None,
) -> Ranking:
    """Rank `offers` for `pref`: exclusions with reasons, candidates best first."""
    weights = dict(weights or WEIGHTS)
    if set(weights) != set(WEIGHTS) or any(w < 0 for w in weights.values()):
        raise MatchError(f"weights: one non-negative weight for each of {', '.join(WEIGHTS)}")
    reputations = {k.lower(): v for k, v in (reputations or {}).items()}
    candidates: list[Candidate] = []
    excluded: list[tuple[str, str]] = []
    for offer in offers:
        reason = exclusion(offer, pref)
        if reason is not None:
            excluded.append((offer.offer_id, reason))
            continue
        rep = reputations.get(offer.maker.lower(), Reputation(offer.maker))
        candidates.append(Candidate(offer, features(offer, pref, rep, weights), min(offer.size_max, pref.size_max)))
    candidates.sort(key=lambda c: (-c.score, c.offer.created, c.offer.offer_id))
    return Ranking(pref, tuple(candidates[:limit] if limit else candidates), tuple(excluded), weights)


# ------------------------------------------------------------------ reputation
def reputations_from_chain(factory: Factory, wallets: Iterable[str] | None = None) -> dict[str, Reputation]:
    """Every buyer's and seller's record over the factory's deals, read from the chain: a deal SETTLED with
    no disputed or refunded tranche is completed; a tranche disputed or resolved counts a dispute; a refunded
    tranche, a cancelled (unfunded) or expired deal counts a refund; anything else is active."""
    from nexotc_client.terms import Phase, TrancheStatus

    wanted = {w.lower() for w in wallets} if wallets is not None else None
    tallies: dict[str, dict[str, int]] = {}
    for record in factory.deals():
        deal = factory.deal(record.deal)
        terms = deal.terms
        sides = [terms.buyer, terms.seller]
        if wanted is not None and not any(s.lower() in wanted for s in sides):
            continue
        phase = deal.phase()
        statuses = {deal.tranche_status(i) for i in range(len(terms.tranches))}
        disputed = bool(statuses & {TrancheStatus.DISPUTED, TrancheStatus.RESOLVED})
        refunded = TrancheStatus.REFUNDED in statuses or phase in (Phase.CANCELLED, Phase.EXPIRED)
        outcome = (
            "disputed" if disputed else "refunded" if refunded else "completed" if phase is Phase.SETTLED else "active"
        )
        for wallet in sides:
            tally = tallies.setdefault(wallet.lower(), {"completed": 0, "disputed": 0, "refunded": 0, "active": 0})
            tally[outcome] += 1
    return {w: Reputation(w, **t) for w, t in tallies.items() if wanted is None or w in wanted}


# ------------------------------------------------------------------ the book
class MatchBook:
    """The offer book, preferences and proposed matches, persisted in the desk store."""

    def __init__(self, store: DeskStore) -> None:
        self.store = store

    def _insert(self, row: BookOfferRow | PreferenceRow, what: str, key: str) -> None:
        """Insert a new offer or preference; an existing id is refused (never overwritten), atomically."""
        from sqlalchemy.exc import IntegrityError

        try:
            with self.store.db.session() as s:
                if s.get(type(row), key) is not None:
                    raise MatchError(f"{what} {key} exists")
                s.add(row)
        except IntegrityError:
            raise MatchError(f"{what} {key} exists") from None

    def post_offer(self, offer: MakerOffer) -> MakerOffer:
        _check_wallet(offer.maker, "maker")
        self._insert(
            BookOfferRow(
                offer_id=offer.offer_id,
                maker=offer.maker,
                pair=offer.pair,
                side=offer.side.value,
                size_min=offer.size_min,
                size_max=offer.size_max,
                price=offer.price,
                settlement_window_s=offer.settlement_window_s,
                kyc_level=offer.kyc_level,
                created=offer.created,
                status="open",
            ),
            "offer",
            offer.offer_id,
        )
        return offer

    def withdraw(self, offer_id: str) -> None:
        self.store.set_status(BookOfferRow, offer_id, "withdrawn")

    def post_preference(self, pref: Preference) -> Preference:
        _check_wallet(pref.taker, "taker")
        for wallet in pref.avoid:
            _check_wallet(wallet, "avoid")
        self._insert(
            PreferenceRow(
                pref_id=pref.pref_id,
                taker=pref.taker,
                pair=pref.pair,
                side=pref.side.value,
                size_min=pref.size_min,
                size_max=pref.size_max,
                reference_price=pref.reference_price,
                price_tolerance_bps=pref.price_tolerance_bps,
                settlement_window_s=pref.settlement_window_s,
                min_kyc_level=pref.min_kyc_level,
                avoid=list(pref.avoid),
                created=pref.created,
            ),
            "preference",
            pref.pref_id,
        )
        return pref

    def offers(self, pair: str | None = None) -> list[MakerOffer]:
        return [_offer(r) for r in self.store.book_offers(pair)]

    def offer(self, offer_id: str) -> MakerOffer:
        return _offer(self.store.get(BookOfferRow, offer_id))

    def preference(self, pref_id: str) -> Preference:
        return _pref(self.store.get(PreferenceRow, pref_id))

    def preferences(self) -> list[Preference]:
        return [_pref(r) for r in self.store.preferences()]

    def propose(
        self,
        pref_id: str,
        reputations: dict[str, Reputation] | None = None,
        weights: dict[str, Decimal] | None = None,
        limit: int = 3,
        now: int = 0,
    ) -> tuple[Ranking, list[MatchRow]]:
        """Rank the open offers for a preference and record the best `limit` as proposed matches. Idempotent: a
        proposal (preference, offer) always has the same match id (:func:`match_id`); ranking again refreshes a
        proposed match's score and features and leaves an invited one as it is."""
        pref = self.preference(pref_id)
        ranking = rank(pref, self.offers(pref.pair), reputations, weights, limit)
        rows = []
        for candidate in ranking.candidates:
            key = match_id(pref.pref_id, candidate.offer.offer_id)
            with self.store.db.session() as s:
                row = s.get(MatchRow, key)
                if row is None:
                    row = MatchRow(
                        match_id=key,
                        pref_id=pref.pref_id,
                        offer_id=candidate.offer.offer_id,
                        status="proposed",
                        created=now,
                    )
                    s.add(row)
                if row.status == "proposed":
                    row.score = candidate.score.quantize(SCORE_DP)
                    row.features = candidate.to_dict()
                s.flush()
                s.expunge(row)
            rows.append(row)
        return ranking, rows

    def live_invite(self, offer_id: str) -> MatchRow | None:
        """The match already invited for an offer (one live invite per offer), if any."""
        return next((m for m in self.store.matches() if m.offer_id == offer_id and m.status == "invited"), None)

    def match(self, match_id: str) -> MatchRow:
        try:
            return self.store.get(MatchRow, match_id)
        except StoreError:
            raise MatchError(f"no match {match_id!r}") from None

    def choose(self, match_id: str, invite: str) -> MatchRow:
        """Record the private invite sent for a chosen match; the offer leaves the book."""
        row = self.match(match_id)
        if row.status != "proposed":
            raise MatchError(f"match {match_id} is {row.status}, not proposed")
        live = self.live_invite(row.offer_id)
        if live is not None:
            raise MatchError(f"offer {row.offer_id} already has a live invite (match {live.match_id})")
        self.store.set_status(MatchRow, match_id, "invited", invite=invite)
        self.store.set_status(BookOfferRow, row.offer_id, "matched")
        return self.match(match_id)


def invite_offer(
    factory: Factory,
    book: MatchBook,
    match_id: str,
    maker_account: Any,
    params: Any,
    extra_known: Iterable[int] = (),
) -> tuple[Any, str]:
    """The maker of a chosen match signs a private offer to the taker at the offer's price for the matched
    size (`params`: a :class:`~nexotc_client.desk.lock.LockParams` with desk = maker, client = taker); returns
    the signed offer and its invite link (``nexotc://offer/…``, as `nexotc offer invite`), recorded on the match.
    The offer is recorded in the store with a nonce above every nonce the store holds for the maker (see
    :func:`~nexotc_client.desk.lock.sign_recorded_offer`), so it never voids another of the maker's offers."""
    from ape import chain

    from nexotc_client.chain.offers import next_nonce
    from nexotc_client.desk.lock import sign_recorded_offer, terms_for
    from nexotc_client.offers import Offer

    row = book.match(match_id)
    if row.status != "proposed":
        raise MatchError(f"match {match_id} is {row.status}, not proposed")
    live = book.live_invite(row.offer_id)
    if live is not None:
        raise MatchError(f"offer {row.offer_id} already has a live invite (match {live.match_id})")
    offer = book.offer(row.offer_id)
    pref = book.preference(row.pref_id)
    if maker_account.address.lower() != offer.maker.lower():
        raise MatchError(f"only the maker {offer.maker} can invite for offer {offer.offer_id}")
    if params.desk.lower() != offer.maker.lower() or params.client.lower() != pref.taker.lower():
        raise MatchError("the invite's parties must be the match's maker and taker")
    size = D(row.features["fill_size"])
    salt = (b"nexotc:m:" + match_id.encode()).ljust(32, b"\x00")[:32]
    chain_id = int(chain.chain_id)
    store = book.store

    def plan(now: int) -> tuple[Offer, None]:
        known = [*store.offer_nonces(chain_id, factory.address, maker_account.address), *extra_known]
        return Offer(
            terms=terms_for(pref.side, size, offer.price, params, now),
            maker=maker_account.address,
            expiry=now + params.offer_ttl_s,
            nonce=next_nonce(factory, maker_account.address, known),
            taker=pref.taker,
            salt=salt,
            desk_id=params.desk_id,
        ), None

    signed, record, new = sign_recorded_offer(factory, store, maker_account, plan, match_id=match_id)
    link = signed.to_link()
    try:
        book.choose(match_id, link)
    except BaseException:
        if new:  # never handed out (another process invited first): its nonce is free again
            store.forget_offer(record.offer_hash)
        raise
    return signed, link


# ------------------------------------------------------------------ helpers
def match_id(pref_id: str, offer_id: str) -> str:
    """The id of the proposal of `offer_id` for `pref_id`: the same pair always gets the same id."""
    digest = hashlib.sha256(f"{pref_id}\x00{offer_id}".encode()).hexdigest()[:12]
    return f"M-{digest}"


def _clip(value: Decimal) -> Decimal:
    return max(ZERO, min(ONE, value))


def _check_range(low: Decimal, high: Decimal) -> None:
    if D(low) <= 0 or D(high) < D(low):
        raise MatchError(f"size range {low}-{high}: need 0 < min <= max")


def _check_wallet(wallet: str, what: str) -> None:
    """A wallet posted to the book: never the zero address (no one signs for it; an offer to it is public)."""
    if wallet.lower() == "0x" + "0" * 40:
        raise MatchError(f"{what}: the zero address is not a wallet")


def _check_kyc(level: int) -> None:
    if not 0 <= level <= MAX_KYC:
        raise MatchError(f"KYC level {level}: between 0 and {MAX_KYC}")


def _offer(r: BookOfferRow) -> MakerOffer:
    return MakerOffer(
        r.offer_id,
        r.maker,
        r.pair,
        Side(r.side),
        r.size_min,
        r.size_max,
        r.price,
        r.settlement_window_s,
        r.kyc_level,
        r.created,
    )


def _pref(r: PreferenceRow) -> Preference:
    return Preference(
        r.pref_id,
        r.taker,
        r.pair,
        Side(r.side),
        r.size_min,
        r.size_max,
        r.reference_price,
        r.price_tolerance_bps,
        r.settlement_window_s,
        r.min_kyc_level,
        tuple(r.avoid),
        r.created,
    )


__all__ = [
    "WEIGHTS",
    "Candidate",
    "Feature",
    "MakerOffer",
    "MatchBook",
    "MatchError",
    "Preference",
    "Ranking",
    "Reputation",
    "StoreError",
    "adverse_bps",
    "exclusion",
    "features",
    "invite_offer",
    "match_id",
    "rank",
    "reputations_from_chain",
]
