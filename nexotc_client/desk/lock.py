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
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from nexotc_client.chain.errors import NexotcError
from nexotc_client.desk.models import Quote, QuoteState, Side
from nexotc_client.desk.money import CTX, ROUND_CEILING, ROUND_FLOOR, to_minor
from nexotc_client.desk.store import DeskStore, PriceLock
from nexotc_client.offers import Offer, SignedOffer
from nexotc_client.terms import ZERO_ADDRESS, Leg, Terms, even_tranches

if TYPE_CHECKING:
    from ape.api import AccountAPI

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
    """How a quote becomes terms: tokens and decimals, the wallets, tranches and timers."""

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
    base_units = to_minor(size, params.base_decimals)
    if Decimal(base_units).scaleb(-params.base_decimals) != size:
        raise LockError(f"size {size} has more than {params.base_decimals} decimals: not representable on chain")
    notional = CTX.multiply(size, price)
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    quote_units = to_minor(notional, params.quote_decimals, rounding)
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
        **extra,
    ).validate(now)


def lock_offer(quote: Quote, params: LockParams, now: int, nonce: int) -> Offer:
    """The offer the desk signs for an ACCEPTED quote: its terms, invited to the client, the quote id in the salt."""
    if quote.state is not QuoteState.ACCEPTED:
        raise LockError(f"quote {quote.quote_id} is {quote.state.value}: only an accepted quote is locked")
    return Offer(
        terms=lock_terms(quote, params, now),
        maker=to_checksum_address(params.desk),
        expiry=now + params.offer_ttl_s,
        nonce=nonce,
        taker=to_checksum_address(params.client),
        salt=quote_salt(quote.quote_id),
    )


def sign_lock(factory: Factory, quote: Quote, params: LockParams, desk: AccountAPI) -> SignedOffer:
    """The desk signs the lock offer (and approves the factory for its own on-chain leg, if it has one)."""
    from ape import chain

    from nexotc_client.chain.offers import approve_leg, maker_side, next_nonce, sign_offer

    now = int(chain.pending_timestamp)
    offer = lock_offer(quote, params, now, next_nonce(factory, desk.address))
    approve_leg(offer.terms, maker_side(offer)[0], desk, factory.address)
    return sign_offer(offer, desk, int(chain.chain_id), factory.address)


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
    "accept_lock",
    "amounts_for",
    "lock_amounts",
    "lock_offer",
    "lock_terms",
    "quote_id_of",
    "quote_salt",
    "read_quote_id",
    "sign_lock",
    "terms_for",
]
