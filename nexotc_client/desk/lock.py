"""Price lock: an accepted quote becomes the on-chain deal through a signed offer accepted via the escrow factory.

The desk's trading wallet signs an EIP-712 offer (``nexotc_client.offers``) carrying exactly the quoted terms —
the size in base units and size × price in quote units — invited to the client's wallet only; the client
accepts it through ``EscrowFactory.accept_offer`` (``nexotc_client.chain.offers``), which deploys the escrow
and, with ``fund``, deposits both on-chain legs in the same transaction.

The quote id is recorded on both sides: in the signed offer's ``salt`` (``"nexotc:q:" + quote id``, part of the
signed struct, hence of the offer hash that the factory logs in ``OfferAccepted`` and in the calldata of the
accepting transaction, from which :func:`read_quote_id` reads it back) and in the desk database
(:class:`~nexotc_client.desk.store.PriceLock`: quote id → deal, offer hash, tx).

Sides: a client BUY makes the client the buyer and the desk's wallet the seller (and vice versa). The
platform (desk fee wallet) and the resolver are other wallets, as the factory requires distinct parties.

Nonces: the factory lets one offer per (maker, nonce) be filled, ever. Every offer the desk engine signs is
recorded in the desk store (:class:`~nexotc_client.desk.store.SignedOfferRecord`) before it is handed out, and a
new offer takes a nonce above every nonce the store holds for its maker (and unused on chain), so offers to
different clients never void each other. A quote locked again while its earlier lock offer is untaken re-uses
that offer's nonce (it *supersedes* it: at most one of the two can be filled); once the earlier offer was
accepted, a new lock is refused; once it was cancelled, the new one gets a fresh nonce.
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from nexotc_client.chain.errors import NexotcError
from nexotc_client.desk.models import Quote, QuoteState, Side
from nexotc_client.desk.money import CTX, ROUND_CEILING, ROUND_FLOOR, to_minor
from nexotc_client.desk.store import DeskStore, NonceTakenError, PriceLock, SignedOfferRecord
from nexotc_client.offers import Offer, SignedOffer
from nexotc_client.terms import ZERO_ADDRESS, Leg, Terms, even_tranches

if TYPE_CHECKING:
    from ape.api import AccountAPI

    from nexotc_client.chain.deal import TxResult
    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.offers import Accepted

SALT_PREFIX = b"nexotc:q:"
DAY = 86_400


class LockError(NexotcError):
    """The quote cannot be locked (not accepted, expired, amounts not representable on chain)."""


def quote_salt(quote_id: str) -> bytes:
    """The offer salt naming a quote: ``nexotc:q:<quote id>`` left-aligned in 32 bytes."""
    raw = SALT_PREFIX + quote_id.encode()
    if len(raw) > 32:
        raise LockError(f"quote id {quote_id!r} is longer than {32 - len(SALT_PREFIX)} bytes: it must fit the salt")
    return raw.ljust(32, b"\x00")


def quote_id_of(salt: bytes) -> str | None:
    """The quote id a salt names (None: not a desk quote's salt)."""
    if not salt.startswith(SALT_PREFIX):
        return None
    return salt[len(SALT_PREFIX) :].rstrip(b"\x00").decode(errors="replace")


@dataclass(frozen=True)
class LockParams:
    """How a quote becomes terms: tokens and decimals, the wallets, tranches and timers; `desk_id` (zero: none)
    makes the deal a desk deal of that desk (the maker must be one of its traders, the registry checks the
    terms on acceptance) and `policy_id` (zero: none) gates it on that KYC policy."""

    base_token: str
    quote_token: str
    desk: str  # the desk's trading wallet: the maker, the counterparty of the client
    client: str  # the client's wallet: the only taker the offer admits
    platform: str  # the desk's fee wallet (distinct from the trading wallet)
    resolver: str
    base_decimals: int = 8
    quote_decimals: int = 6
    base_on_chain: bool = True  # False: the base leg (e.g. BTC) settles off chain (an ESCROWED deal)
    tranches: int = 1
    first_unlock_s: int = 60
    interval_s: int = 0
    delivery_window_s: int = DAY
    funding_window_s: int = DAY
    offer_ttl_s: int = 600
    desk_fee_bps: int = 0
    resolver_fee_bps: int = 50
    dispute_timeout_s: int = DAY
    desk_id: int = 0
    policy_id: int = 0


@dataclass(frozen=True)
class LockAmounts:
    base_units: int
    quote_units: int


def lock_amounts(quote: Quote, params: LockParams) -> LockAmounts:
    """On-chain amounts of a quote (see :func:`amounts_for`)."""
    return amounts_for(quote.side, quote.size, quote.price, params)


def amounts_for(side: Side, size: Decimal, price: Decimal, params: LockParams) -> LockAmounts:
    """On-chain amounts of a trade where the client (taker) `side`s `size` at `price`: the size exactly in
    base units (refused if it needs more decimals), the notional size × price in quote units rounded in the
    desk's (maker's) favour: up when the client pays, down when the desk pays."""
    try:
        base_units = to_minor(size, params.base_decimals)
        if Decimal(base_units).scaleb(-params.base_decimals) != size:
            raise LockError(f"size {size} has more than {params.base_decimals} decimals: not representable on chain")
        notional = CTX.multiply(size, price)
        rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
        quote_units = to_minor(notional, params.quote_decimals, rounding)
    except decimal.InvalidOperation:  # more digits than CTX holds: far beyond a leg's 2**96-1 units
        raise LockError(f"size {size} at price {price}: out of range for the chain (2**96-1 units a leg)") from None
    if base_units <= 0 or quote_units <= 0:
        raise LockError("a locked quote needs a positive size and price")
    return LockAmounts(base_units, quote_units)


def lock_terms(quote: Quote, params: LockParams, now: int) -> Terms:
    """The deal terms of an accepted quote (validated against the factory's rules by ``Terms.validate``)."""
    return terms_for(quote.side, quote.size, quote.price, params, now)


def terms_for(side: Side, size: Decimal, price: Decimal, params: LockParams, now: int) -> Terms:
    """Deal terms for the client (`params.client`) `side`-ing `size` at `price` against `params.desk`."""
    amounts = amounts_for(side, size, price, params)
    client_buys = side is Side.BUY
    buyer, seller = (params.client, params.desk) if client_buys else (params.desk, params.client)
    start = now + params.first_unlock_s
    extra: dict[str, object] = {}
    if not params.base_on_chain:
        # ESCROWED: the seller marks the off-chain delivery with its evidence, the buyer approves and signs
        extra = {"markers": [seller], "approvers": [buyer], "signers": [buyer]}
    return Terms.build(
        base=Leg(params.base_token if params.base_on_chain else ZERO_ADDRESS, amounts.base_units, params.base_on_chain),
        quote=Leg(params.quote_token, amounts.quote_units),
        buyer=buyer,
        seller=seller,
        platform=params.platform,
        resolver=params.resolver,
        tranches=even_tranches(
            amounts.base_units, amounts.quote_units, params.tranches, start, params.interval_s, params.delivery_window_s
        ),
        funding_deadline=now + params.funding_window_s,
        final_expiry=start + params.tranches * max(params.interval_s, 1) + params.delivery_window_s + 30 * DAY,
        desk_fee_bps=params.desk_fee_bps,
        resolver_fee_bps=params.resolver_fee_bps,
        dispute_timeout=params.dispute_timeout_s,
        policy_id=params.policy_id,
        **extra,
    ).validate(now)


def lock_offer(quote: Quote, params: LockParams, now: int, nonce: int, previous: str | None = None) -> Offer:
    """The offer the desk signs for an ACCEPTED quote: its terms, invited to the client, the quote id in the salt.
    `previous`: the hash of the untaken lock offer this one re-issues (same nonce); the new offer references it
    as a counter does, so a client holding both sees the earlier one superseded (`nexotc offer open`)."""
    if quote.state is not QuoteState.ACCEPTED:
        raise LockError(f"quote {quote.quote_id} is {quote.state.value}: only an accepted quote is locked")
    return Offer(
        terms=lock_terms(quote, params, now),
        maker=to_checksum_address(params.desk),
        expiry=now + params.offer_ttl_s,
        nonce=nonce,
        taker=to_checksum_address(params.client),
        previous=bytes.fromhex(previous.removeprefix("0x")) if previous else bytes(32),
        salt=quote_salt(quote.quote_id),
        desk_id=params.desk_id,
    )


@dataclass(frozen=True)
class SignedLock:
    """A signed lock offer and the nonce it spends; `supersedes` is the hash of the quote's earlier, untaken lock
    offer re-issued with the same nonce (None: a fresh nonce)."""

    signed: SignedOffer
    supersedes: str | None = None

    @property
    def nonce(self) -> int:
        return self.signed.offer.nonce

    @property
    def offer_hash(self) -> str:
        return "0x" + self.signed.offer.offer_hash().hex()


def sign_lock(
    factory: Factory, quote: Quote, params: LockParams, desk: AccountAPI, store: DeskStore | None = None
) -> SignedOffer:
    """The desk signs the lock offer (and approves the factory for its own on-chain leg, if it has one). With
    a `store`, the offer's nonce is chosen and recorded as :func:`sign_quote_lock` does; without one, it is
    only the first nonce unused on chain (two untaken offers of the desk then share it)."""
    if store is not None:
        return sign_quote_lock(factory, store, quote, params, desk).signed
    from ape import chain

    from nexotc_client.chain.offers import approve_leg, maker_side, next_nonce, sign_offer

    now = int(chain.pending_timestamp)
    offer = lock_offer(quote, params, now, next_nonce(factory, desk.address))
    approve_leg(offer.terms, maker_side(offer)[0], desk, factory.address)
    return sign_offer(offer, desk, int(chain.chain_id), factory.address)


def sign_quote_lock(
    factory: Factory,
    store: DeskStore,
    quote: Quote,
    params: LockParams,
    desk: AccountAPI,
    extra_known: Iterable[int] = (),
) -> SignedLock:
    """The desk signs the lock offer of an accepted quote with a nonce chosen from the store and the chain (see
    :func:`lock_nonce`; `extra_known`: nonces of the wallet's offers kept outside the store, e.g. the home's
    offer files), recorded in the store before it is returned."""
    from ape import chain

    known = store.lock_of(quote.quote_id)
    if known is not None:
        raise LockError(f"quote {quote.quote_id} is already locked into deal {known.deal}: no second offer")
    chain_id = int(chain.chain_id)

    def plan(now: int) -> tuple[Offer, str | None]:
        nonce, supersedes = lock_nonce(factory, store, quote.quote_id, desk.address, chain_id, now, extra_known)
        return lock_offer(quote, params, now, nonce, previous=supersedes), supersedes

    signed, record, new = sign_recorded_offer(factory, store, desk, plan, quote_id=quote.quote_id)
    return SignedLock(signed, record.supersedes if new else None)


def lock_nonce(
    factory: Factory,
    store: DeskStore,
    quote_id: str,
    maker: str,
    chain_id: int,
    now: int,
    extra_known: Iterable[int] = (),
) -> tuple[int, str | None]:
    """The nonce of a new lock offer of `quote_id` by `maker` on `factory`, and the hash of the earlier lock offer
    it re-issues (None: a fresh nonce). Over the quote's lock offers recorded for this chain and factory:

    - one of them was accepted (its nonce is used and the factory logged ``OfferAccepted`` for it): refused,
      naming the deal;
    - one of `maker`'s has its nonce still unused: that nonce, superseding the latest offer holding it;
    - another maker's is still acceptable (nonce unused, not expired): refused (two makers' offers cannot
      void each other), naming the nonce to cancel;
    - else (none, or all cancelled or void): the first nonce above every nonce the store holds for `maker` on
      this factory that is unused on chain."""
    from nexotc_client.chain.offers import next_nonce, nonce_used

    here = factory.address.lower()
    offers = [r for r in store.signed_offers(quote_id=quote_id) if r.chain_id == chain_id and r.factory == here]
    used = {(m, n): nonce_used(factory, m, n) for m, n in {(r.maker, r.nonce) for r in offers}}
    spent = [r for r in offers if used[(r.maker, r.nonce)]]
    for wallet in sorted({r.maker for r in spent}):
        accepted = accepted_offers(factory, wallet, [r.offer_hash for r in spent if r.maker == wallet])
        if accepted:
            offer_hash, deal = next(iter(accepted.items()))
            raise LockError(
                f"quote {quote_id} was already accepted on chain: its lock offer {offer_hash} made deal {deal} "
                "(no second offer)"
            )
    me = maker.lower()
    untaken = [r for r in offers if r.maker == me and not used[(r.maker, r.nonce)]]
    if untaken:
        nonce = untaken[-1].nonce
        same = [r for r in offers if r.maker == me and r.nonce == nonce]
        re_issued = {r.supersedes for r in same}
        tip = [r for r in same if r.offer_hash not in re_issued] or same
        return nonce, tip[-1].offer_hash
    for r in offers:
        if r.maker != me and not used[(r.maker, r.nonce)] and r.expiry >= now:
            from datetime import UTC, datetime

            expires = datetime.fromtimestamp(r.expiry, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            raise LockError(
                f"quote {quote_id} has an untaken lock offer {r.offer_hash} by another wallet (nonce {r.nonce}, "
                f"expires {expires}): that wallet cancels it first (`nexotc offer cancel --nonce {r.nonce} "
                f"--account {to_checksum_address(r.maker)}`), or the offer expires"
            )
    known = [*store.offer_nonces(chain_id, factory.address, maker), *extra_known]
    return next_nonce(factory, maker, known), None


def sign_recorded_offer(
    factory: Factory,
    store: DeskStore,
    account: AccountAPI,
    plan: Callable[[int], tuple[Offer, str | None]],
    quote_id: str | None = None,
    match_id: str | None = None,
    attempts: int = 5,
) -> tuple[SignedOffer, SignedOfferRecord, bool]:
    """Build the offer (`plan(chain time)` picks its nonce and returns the offer and the hash of the earlier
    offer it re-issues with that nonce, if any), record it in the store, then approve the factory for the
    maker's leg and sign. Recording first takes the nonce: when another process took it in the
    meantime, the offer is planned again; when approving or signing fails, the record is dropped. Returns the
    signed offer, its record and whether the record is new (False: this very offer was signed before)."""
    from ape import chain

    from nexotc_client.chain.offers import leg_of, maker_side, sign_offer, validate_offer_terms

    chain_id = int(chain.chain_id)
    for _ in range(attempts):
        now = int(chain.pending_timestamp)
        offer, supersedes = plan(now)
        if offer.desk_id:
            validate_offer_terms(factory, offer)  # the desk's rules, named, before anything is recorded
        leg = leg_of(offer.terms, maker_side(offer)[0])
        record = SignedOfferRecord(
            offer_hash=offer_hash_hex(offer),
            chain_id=chain_id,
            factory=factory.address,
            maker=offer.maker,
            nonce=offer.nonce,
            expiry=offer.expiry,
            created_ms=time.time_ns() // 1_000_000,
            quote_id=quote_id,
            match_id=match_id,
            supersedes=supersedes,
            leg_token=leg[1] if leg else None,
            leg_amount=leg[2] if leg else None,
        )
        try:
            new = store.record_offer(record)
        except NonceTakenError:
            continue  # another process signed an offer with this nonce first: choose again
        try:
            approve_open_legs(factory, store, account, offer, chain_id, now)
            signed = sign_offer(offer, account, chain_id, factory.address)
        except BaseException:
            if new:
                store.forget_offer(record.offer_hash)
            raise
        return signed, record, new
    raise LockError(f"no free nonce for {account.address} after {attempts} attempts (others keep signing): try again")


def approve_open_legs(
    factory: Factory, store: DeskStore, account: AccountAPI, offer: Offer, chain_id: int, now: int
) -> TxResult | None:
    """Approve the factory for the maker's leg of `offer` and of its other open offers in the same token (recorded
    in the store, not expired, nonce unused; per nonce the largest, as at most one offer per nonce fills), so that
    the acceptance of one never leaves another short of allowance. The balance must cover this offer's leg.
    None when the allowance covers them already (or the maker deposits nothing on chain)."""
    from nexotc_client.chain.contracts import erc20
    from nexotc_client.chain.deal import tx_result
    from nexotc_client.chain.errors import reverts_as_errors
    from nexotc_client.chain.offers import fmt_amount, leg_of, maker_side, nonce_used

    leg = leg_of(offer.terms, maker_side(offer)[0])
    if leg is None:
        return None
    leg_id, token, amount = leg
    per_nonce = {offer.nonce: amount}
    for r in store.open_offers(chain_id, factory.address, offer.maker, now):
        if r.leg_token == token.lower() and r.leg_amount is not None:
            per_nonce[r.nonce] = max(per_nonce.get(r.nonce, 0), r.leg_amount)
    needed = sum(a for n, a in per_nonce.items() if n == offer.nonce or not nonce_used(factory, offer.maker, n))
    contract = erc20(token)
    with reverts_as_errors("reading the token"):
        balance = int(contract.balanceOf(account.address))
        allowance = int(contract.allowance(account.address, factory.address))
    if balance < amount:
        raise LockError(
            f"{account.address} holds {fmt_amount(token, balance)}, the {leg_id.name.lower()} leg needs "
            f"{fmt_amount(token, amount)}"
        )
    if allowance >= needed:
        return None
    with reverts_as_errors("approve"):
        if allowance:  # USDT refuses to change a non-zero allowance to another non-zero one
            contract.approve(factory.address, 0, sender=account)
        receipt = contract.approve(factory.address, needed, sender=account)
    return tx_result(receipt, set())


def offer_hash_hex(offer: Offer) -> str:
    return "0x" + offer.offer_hash().hex()


def accepted_offers(factory: Factory, maker: str, offer_hashes: Iterable[str]) -> dict[str, str]:
    """Those of `offer_hashes` (offers of `maker`) the factory logged as accepted (``OfferAccepted``), each with
    the deal it made (lower-case hash -> deal address)."""
    from ape import chain
    from ape.types import LogFilter

    from nexotc_client.chain.contracts import factory_container
    from nexotc_client.chain.errors import reverts_as_errors

    wanted = {h.lower() for h in offer_hashes}
    if not wanted:
        return {}
    [abi] = [e for e in factory_container().contract_type.events if e.name == "OfferAccepted"]
    log_filter = LogFilter.from_event(
        abi,
        search_topics={"maker": to_checksum_address(maker)},
        addresses=[factory.address],
        start_block=factory.start_block,
    )
    found: dict[str, str] = {}
    with reverts_as_errors("reading the factory's accepted offers"):
        for log in chain.provider.get_contract_logs(log_filter):
            raw = log.event_arguments["offer_hash"]
            offer_hash = ("0x" + bytes(raw).hex() if not isinstance(raw, str) else raw).lower()
            if offer_hash in wanted:
                found[offer_hash] = to_checksum_address(str(log.event_arguments["deal"]))
    return found


def accept_lock(
    factory: Factory, signed: SignedOffer, client: AccountAPI, store: DeskStore | None = None, fund: bool = True
) -> tuple[PriceLock, Accepted]:
    """The client accepts the lock offer (the escrow is deployed, both legs funded with `fund`); the lock is
    recorded in the desk store when one is given."""
    from nexotc_client.chain.offers import accept_offer

    quote_id = quote_id_of(signed.offer.salt)
    if quote_id is None:
        raise LockError("this offer does not lock a desk quote (its salt names no quote id)")
    if store is not None:  # checked before the transaction: a lock the store cannot record is not taken
        try:
            known = store.lock_of(quote_id)
        except LookupError:
            raise LockError(f"this offer locks quote {quote_id}, which this desk database does not hold") from None
        if known is not None:
            raise LockError(f"quote {quote_id} is already locked into deal {known.deal}")
    accepted = accept_offer(factory, signed, client, fund=fund)
    lock = PriceLock(
        quote_id=quote_id,
        deal=accepted.deal.address,
        offer_hash="0x" + accepted.status.offer_hash.hex(),
        tx_hash=accepted.result.tx_hash,
        chain_id=signed.chain_id,
    )
    if store is not None:
        store.record_lock(lock)
    return lock, accepted


def read_quote_id(factory: Factory, deal: str) -> str | None:
    """The quote id of a deal, read from the chain alone: the factory's ``OfferAccepted`` event for the deal
    gives the accepting transaction, whose calldata holds the signed offer and its salt."""
    from ape import chain

    from nexotc_client.chain.contracts import factory_container
    from nexotc_client.chain.deal import read_events

    abi = [e for e in factory_container().contract_type.events if e.name == "OfferAccepted"]
    for event in read_events(factory.address, abi, factory.start_block):
        if str(event.args["deal"]).lower() != deal.lower():
            continue
        tx = chain.provider.web3.eth.get_transaction(event.tx_hash)  # type: ignore[attr-defined]
        _, args = factory.contract.decode_input(bytes(tx["input"]))
        meta = args["offer"]
        salt = meta["salt"] if isinstance(meta, dict) else meta[5]
        return quote_id_of(bytes(salt))
    return None


__all__ = [
    "LockAmounts",
    "LockError",
    "LockParams",
    "SignedLock",
    "accept_lock",
    "accepted_offers",
    "amounts_for",
    "approve_open_legs",
    "lock_amounts",
    "lock_nonce",
    "lock_offer",
    "lock_terms",
    "quote_id_of",
    "quote_salt",
    "read_quote_id",
    "sign_lock",
    "sign_quote_lock",
    "sign_recorded_offer",
    "terms_for",
]
