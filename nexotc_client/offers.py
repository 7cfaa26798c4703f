"""Signed offers: EIP-712 typed data over the full deal terms, counters and invite links.

An `Offer` is terms proposed by a maker (the buyer or the seller), optionally bound to one taker (a
private invite), with an expiry and a nonce; a counter-offer references the hash of the offer it answers.
The typed-data schema is defined once here and mirrored by `EscrowFactory` (a Hypothesis test checks that
both produce the same digest for random terms).

Types (EIP-712 `encodeType` of the primary type `Offer`)::

    Offer(Terms terms,address maker,address taker,uint256 expiry,uint256 nonce,bytes32 previous,bytes32 salt,
          uint256 desk_id,bytes32 agreement)
    Party(address wallet,uint256 roles,uint256 bps)
    Terms(address base_token,uint256 base_amount,bool base_on_chain,address quote_token,
          uint256 quote_amount,bool quote_on_chain,Party[] parties,uint256 approval_threshold,
          uint256 release_threshold,uint256 desk_fee_bps,uint256 fee_leg,uint256 resolver_fee_bps,
          uint256 funding_deadline,uint256 approval_window,uint256 dispute_timeout,uint256 dispute_default,
          uint256 final_expiry,Tranche[] tranches,uint256 policy_id)
    Tranche(uint256 base_amount,uint256 quote_amount,uint256 unlock_time,uint256 deadline)

Domain: name "nexotc", version "1", chainId, verifyingContract = the EscrowFactory.

`agreement` is the hash of the agreement document (nexotc_client/agreement.py: the off-chain legs'
asset and delivery, settlement instructions): the document travels with the offer, the chain sees
only its hash.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from nexotc_client.agreement import AgreementError, agreement_hash
from nexotc_client.agreement import canonical as canonical_agreement
from nexotc_client.agreement import check_shape as check_agreement_shape
from nexotc_client.agreement import from_json as agreement_from_json
from nexotc_client.agreement import parse as parse_agreement
from nexotc_client.eip712 import EIP712_DOMAIN_TYPE
from nexotc_client.terms import (
    ZERO_ADDRESS,
    DisputeDefault,
    Leg,
    LegId,
    Party,
    Role,
    Terms,
    TermsError,
    Tranche,
)

DOMAIN_NAME = "nexotc"
DOMAIN_VERSION = "1"
ZERO32 = b"\x00" * 32
INVITE_PREFIX = "nexotc://offer/"

TYPES: dict[str, list[dict[str, str]]] = {
    "Offer": [
        {"name": "terms", "type": "Terms"},
        {"name": "maker", "type": "address"},
        {"name": "taker", "type": "address"},
        {"name": "expiry", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "previous", "type": "bytes32"},
        {"name": "salt", "type": "bytes32"},
        {"name": "desk_id", "type": "uint256"},
        {"name": "agreement", "type": "bytes32"},
    ],
    "Terms": [
        {"name": "base_token", "type": "address"},
        {"name": "base_amount", "type": "uint256"},
        {"name": "base_on_chain", "type": "bool"},
        {"name": "quote_token", "type": "address"},
        {"name": "quote_amount", "type": "uint256"},
        {"name": "quote_on_chain", "type": "bool"},
        {"name": "parties", "type": "Party[]"},
        {"name": "approval_threshold", "type": "uint256"},
        {"name": "release_threshold", "type": "uint256"},
        {"name": "desk_fee_bps", "type": "uint256"},
        {"name": "fee_leg", "type": "uint256"},
        {"name": "resolver_fee_bps", "type": "uint256"},
        {"name": "funding_deadline", "type": "uint256"},
        {"name": "approval_window", "type": "uint256"},
        {"name": "dispute_timeout", "type": "uint256"},
        {"name": "dispute_default", "type": "uint256"},
        {"name": "final_expiry", "type": "uint256"},
        {"name": "tranches", "type": "Tranche[]"},
        {"name": "policy_id", "type": "uint256"},
    ],
    "Party": [
        {"name": "wallet", "type": "address"},
        {"name": "roles", "type": "uint256"},
        {"name": "bps", "type": "uint256"},
    ],
    "Tranche": [
        {"name": "base_amount", "type": "uint256"},
        {"name": "quote_amount", "type": "uint256"},
        {"name": "unlock_time", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


class OfferError(ValueError):
    """An offer, signature or invite link is malformed or does not verify."""


@dataclass(frozen=True)
class Offer:
    """Terms proposed by `maker`. `taker` zero: anyone may accept (their wallet fills the counterparty's
    zero slot in the terms); otherwise only that address. `previous` is the hash of the offer this one
    counters (zero for an opening offer). `desk_id` (zero: none) makes the deal a desk deal: the factory has
    the desk registry check the terms, with a desk trader as maker or taker. `agreement` is the canonical
    agreement document (text; empty: none): the offer signs its hash."""

    terms: Terms
    maker: str
    expiry: int
    nonce: int
    taker: str = ZERO_ADDRESS
    previous: bytes = ZERO32
    salt: bytes = ZERO32
    desk_id: int = 0
    agreement: str = ""

    def __post_init__(self) -> None:
        if self.agreement:  # the canonical text of a document of the shape `agreement.build` makes
            try:
                document = json.loads(self.agreement)
            except ValueError as exc:
                raise OfferError(f"bad agreement document: not JSON ({exc})") from exc
            if not isinstance(document, dict):
                raise OfferError("bad agreement document: not a mapping")
            try:
                check_agreement_shape(document)
                text = canonical_agreement(document)
            except AgreementError as exc:
                raise OfferError(f"bad agreement document: {exc}") from exc
            if text != self.agreement:
                raise OfferError("bad agreement document: not in canonical form (agreement.canonical)")

    @property
    def agreement_hash(self) -> bytes:
        """The signed `agreement` field: keccak256 of the document (zero for none)."""
        return agreement_hash(self.agreement)

    def agreement_document(self) -> dict[str, Any]:
        """The agreement document (empty for none)."""
        return parse_agreement(self.agreement)

    # ------------------------------------------------------------ typed data
    def message(self) -> dict[str, Any]:
        t = self.terms
        return {
            "terms": {
                "base_token": t.base.token,
                "base_amount": t.base.amount,
                "base_on_chain": t.base.on_chain,
                "quote_token": t.quote.token,
                "quote_amount": t.quote.amount,
                "quote_on_chain": t.quote.on_chain,
                "parties": [{"wallet": p.wallet, "roles": int(p.roles), "bps": p.bps} for p in t.parties],
                "approval_threshold": t.approval_threshold,
                "release_threshold": t.release_threshold,
                "desk_fee_bps": t.desk_fee_bps,
                "fee_leg": int(t.fee_leg),
                "resolver_fee_bps": t.resolver_fee_bps,
                "funding_deadline": t.funding_deadline,
                "approval_window": t.approval_window,
                "dispute_timeout": t.dispute_timeout,
                "dispute_default": int(t.dispute_default),
                "final_expiry": t.final_expiry,
                "tranches": [
                    {
                        "base_amount": x.base_amount,
                        "quote_amount": x.quote_amount,
                        "unlock_time": x.unlock_time,
                        "deadline": x.deadline,
                    }
                    for x in t.tranches
                ],
                "policy_id": t.policy_id,
            },
            "maker": self.maker,
            "taker": self.taker,
            "expiry": self.expiry,
            "nonce": self.nonce,
            "previous": self.previous,
            "salt": self.salt,
            "desk_id": self.desk_id,
            "agreement": self.agreement_hash,
        }

    def typed_data(self, chain_id: int, factory: str) -> dict[str, Any]:
        return {
            "types": {
                "EIP712Domain": EIP712_DOMAIN_TYPE,
                **TYPES,
            },
            "primaryType": "Offer",
            "domain": domain(chain_id, factory),
            "message": self.message(),
        }

    def digest(self, chain_id: int, factory: str) -> bytes:
        """The EIP-712 digest a maker signs (keccak256(0x1901 ‖ domain separator ‖ struct hash))."""
        signable = encode_typed_data(full_message=self.typed_data(chain_id, factory))
        return keccak(b"\x19\x01" + signable.header + signable.body)

    def offer_hash(self) -> bytes:
        """The offer's struct hash: what a counter-offer references in `previous` (domain-free)."""
        signable = encode_typed_data(full_message=self.typed_data(1, ZERO_ADDRESS))
        return bytes(signable.body)

    def as_struct(self) -> tuple:
        """The `OfferMeta` tuple the factory takes next to the terms."""
        return (
            self.maker,
            self.taker,
            self.expiry,
            self.nonce,
            self.previous,
            self.salt,
            self.desk_id,
            self.agreement_hash,
        )

    # -------------------------------------------------------------- signing
    def sign(self, private_key: bytes | str, chain_id: int, factory: str) -> SignedOffer:
        signed = Account.sign_message(
            encode_typed_data(full_message=self.typed_data(chain_id, factory)), private_key=private_key
        )
        signer = Account.from_key(private_key).address
        if signer.lower() != self.maker.lower():
            raise OfferError(f"the key signs for {signer}, but the offer's maker is {self.maker}")
        return SignedOffer(self, bytes(signed.signature), chain_id, to_checksum_address(factory))

    def counter(self, terms: Terms, maker: str, expiry: int, nonce: int, **kw: Any) -> Offer:
        """A counter-offer: new terms by the other side, referencing this offer's hash (for the same desk unless
        `desk_id` says otherwise; with the agreement document given in `agreement`, none by default)."""
        kw.setdefault("desk_id", self.desk_id)
        return Offer(terms=terms, maker=maker, expiry=expiry, nonce=nonce, previous=self.offer_hash(), **kw)

    def with_taker_filled(self, taker: str) -> Terms:
        """The terms a public offer becomes when `taker` accepts: the counterparty's zero wallet is
        replaced by `taker` (the contract does the same)."""
        parties = tuple(replace(p, wallet=taker) if p.wallet == ZERO_ADDRESS else p for p in self.terms.parties)
        return replace(self.terms, parties=parties)


@dataclass(frozen=True)
class SignedOffer:
    offer: Offer
    signature: bytes
    chain_id: int
    factory: str
    taker_signature: bytes = b""
    note: str = field(default="", compare=False)

    def signer(self) -> str:
        """Recover the signer of an EOA signature (contract makers sign via EIP-1271 instead)."""
        digest = self.offer.digest(self.chain_id, self.factory)
        return Account._recover_hash(digest, signature=self.signature)

    def verify_eoa(self) -> None:
        if self.signer().lower() != self.offer.maker.lower():
            raise OfferError("the signature is not the maker's")

    # ---------------------------------------------------------------- files
    def to_json(self) -> dict[str, Any]:
        """The signed offer as JSON-friendly data (what an offer file and an invite link carry)."""
        return _encode(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedOffer:
        """Read `to_json` data back; keys it does not know (notes added by tools) are ignored."""
        try:
            return _decode(data)
        except KeyError as exc:
            raise OfferError(f"not a nexotc signed offer: the field {exc.args[0]!r} is missing") from exc
        except (ValueError, TypeError, AttributeError) as exc:
            raise OfferError(f"not a nexotc signed offer: {exc}") from exc

    # ---------------------------------------------------------------- links
    def to_link(self, notes: dict[str, Any] | None = None) -> str:
        """A URL-safe invite link carrying the signed offer (compressed JSON, base64url). `notes` (not signed):
        the offer file's `time_base` (the time its relative terms were read at, so that a counter from the link
        keeps the same absolute times) and `name`."""
        body = _encode(self)
        kept = {k: v for k, v in (notes or {}).items() if k in LINK_NOTES and v is not None}
        if kept:
            body["notes"] = kept
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return INVITE_PREFIX + base64.urlsafe_b64encode(zlib.compress(payload, 9)).decode().rstrip("=")

    @classmethod
    def from_link(cls, link: str) -> SignedOffer:
        return read_link(link)[0]


MAX_LINK_BODY = 256 * 1024
"""Largest JSON an invite link may inflate to (terms, signatures and an 8 KB agreement fit many times)."""
MAX_LINK_CHARS = 128 * 1024

LINK_NOTES = ("time_base", "name")
"""The unsigned notes an invite link may carry besides the signed offer."""


def read_link(link: str) -> tuple[SignedOffer, dict[str, Any]]:
    """The signed offer of an invite link, and its notes (`time_base`, `name`; empty when it has none)."""
    text = link.strip()
    if text.startswith(INVITE_PREFIX):
        text = text[len(INVITE_PREFIX) :]
    if len(text) > MAX_LINK_CHARS:
        raise OfferError(f"not a nexotc offer link: {len(text):,} characters, more than {MAX_LINK_CHARS:,}")
    try:
        inflate = zlib.decompressobj()
        body = inflate.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), MAX_LINK_BODY + 1)
        if len(body) > MAX_LINK_BODY or inflate.unconsumed_tail:
            raise OfferError(f"not a nexotc offer link: it inflates to more than {MAX_LINK_BODY:,} bytes")
        raw = json.loads(body)
        signed = _decode(raw)
    except (ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
        if isinstance(exc, OfferError):
            raise
        raise OfferError(f"not a nexotc offer link: {exc}") from exc
    given = raw.get("notes") if isinstance(raw.get("notes"), dict) else {}
    notes: dict[str, Any] = {}
    if isinstance(given.get("time_base"), int) and not isinstance(given.get("time_base"), bool):
        notes["time_base"] = given["time_base"]
    if isinstance(given.get("name"), str):
        notes["name"] = given["name"]
    return signed, notes


def domain(chain_id: int, factory: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(factory),
    }


_ABSENT = object()
"""A field one side of a diff does not have (unlike a field holding null)."""


def diff(old: Offer, new: Offer) -> list[tuple[str, Any, Any]]:
    """What changed between two offers, field by field (for a negotiation thread)."""
    changes: list[tuple[str, Any, Any]] = []

    def walk(prefix: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in dict.fromkeys([*a, *b]):
                walk(f"{prefix}.{key}" if prefix else key, a.get(key, _ABSENT), b.get(key, _ABSENT))
        elif isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                walk(f"{prefix}[{i}]", a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT)
        elif isinstance(a, dict) and b is _ABSENT and a:  # a mapping added or dropped: field by field
            walk(prefix, a, {})
        elif isinstance(b, dict) and a is _ABSENT and b:
            walk(prefix, {}, b)
        elif a != b or type(a) is not type(b):  # 10 and "10" (or True and 1) are different signed values
            changes.append((prefix, None if a is _ABSENT else a, None if b is _ABSENT else b))

    def view(offer: Offer) -> dict[str, Any]:
        message = offer.message()
        message["agreement"] = offer.agreement_document()
        return message

    walk("", view(old), view(new))
    return changes


@dataclass
class Thread:
    """A negotiation: offers linked by `previous`, in order."""

    offers: list[SignedOffer] = field(default_factory=list)

    def add(self, signed: SignedOffer) -> None:
        if self.offers:
            last = self.offers[-1].offer
            if signed.offer.previous != last.offer_hash():
                raise OfferError("this offer does not counter the thread's last offer")
        elif signed.offer.previous != ZERO32:
            raise OfferError("a thread starts with an opening offer (previous = 0)")
        self.offers.append(signed)

    def changes(self) -> list[list[tuple[str, Any, Any]]]:
        return [diff(a.offer, b.offer) for a, b in zip(self.offers, self.offers[1:], strict=False)]


# ------------------------------------------------------------------ threads
def order_offers(offers: Sequence[SignedOffer]) -> list[SignedOffer]:
    """`offers` in negotiation order, each after the offer it counters (by their `previous` links,
    whatever order they come in; duplicates dropped). They must form one unbroken line: exactly one of
    them counters none of the others (the earliest), and no two counter the same offer."""
    unique: dict[bytes, SignedOffer] = {}
    for signed in offers:
        unique.setdefault(signed.offer.offer_hash(), signed)
    starts = [s for s in unique.values() if s.offer.previous not in unique]
    if len(starts) != 1:
        names = ", ".join("0x" + s.offer.offer_hash().hex()[:10] + "…" for s in starts)
        raise OfferError(f"the offers given are not one negotiation: {names} do not counter one another")
    answers: dict[bytes, list[SignedOffer]] = {}
    for signed in unique.values():
        answers.setdefault(signed.offer.previous, []).append(signed)
    ordered = [starts[0]]
    while True:
        nxt = answers.get(ordered[-1].offer.offer_hash(), [])
        if len(nxt) > 1:
            names = " and ".join("0x" + s.offer.offer_hash().hex()[:10] + "…" for s in nxt)
            raise OfferError(
                f"{names} both counter 0x{ordered[-1].offer.offer_hash().hex()[:10]}…: give one branch at a time"
            )
        if not nxt:
            break
        ordered.append(nxt[0])
    if len(ordered) != len(unique):  # pragma: no cover - hashes cannot form a cycle
        raise OfferError("the offers given are not one negotiation")
    return ordered


def ancestors(signed: SignedOffer, known: Mapping[bytes, SignedOffer]) -> list[SignedOffer]:
    """The offers `signed` answers, oldest first, as far as `known` (offer hash -> offer) has them: the
    walk stops at the opening offer or at the first link `known` lacks."""
    out: list[SignedOffer] = []
    seen = {signed.offer.offer_hash()}
    previous = signed.offer.previous
    while previous != ZERO32 and previous in known and previous not in seen:
        earlier = known[previous]
        out.append(earlier)
        seen.add(previous)
        previous = earlier.offer.previous
    out.reverse()
    return out


def later_by_maker(signed: SignedOffer, known: Iterable[SignedOffer]) -> list[SignedOffer]:
    """The offers in `known` by `signed`'s maker that come later in its negotiation (they answer
    `signed`, directly or through other counters), earliest first: the maker has moved past `signed`."""
    pool = list(known)
    by_hash = {s.offer.offer_hash(): s for s in pool}
    target = signed.offer.offer_hash()
    maker = signed.offer.maker.lower()
    out: list[SignedOffer] = []
    for other in pool:
        if other.offer.maker.lower() != maker or other.offer.offer_hash() == target:
            continue
        if any(a.offer.offer_hash() == target for a in ancestors(other, by_hash)):
            if all(o.offer.offer_hash() != other.offer.offer_hash() for o in out):
                out.append(other)
    by_depth = {o.offer.offer_hash(): len(ancestors(o, by_hash)) for o in out}
    return sorted(out, key=lambda o: by_depth[o.offer.offer_hash()])


# ------------------------------------------------------------------ serialisation
LINK_VERSION = 3
"""Offer files and links: 3 since offers sign an agreement hash (2: a desk id but no agreement; 1: neither;
both signed under other types)."""


def _desk_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise OfferError(f"bad desk id {value!r}")
    return value


def _agreement(value: Any) -> str:
    try:
        return agreement_from_json(value)
    except AgreementError as exc:
        raise OfferError(f"bad agreement document: {exc}") from exc


def _encode(signed: SignedOffer) -> dict[str, Any]:
    o = signed.offer
    return {
        "v": LINK_VERSION,
        "chain_id": signed.chain_id,
        "factory": signed.factory,
        "signature": signed.signature.hex(),
        "taker_signature": signed.taker_signature.hex(),
        "maker": o.maker,
        "taker": o.taker,
        "expiry": o.expiry,
        "nonce": o.nonce,
        "previous": o.previous.hex(),
        "salt": o.salt.hex(),
        "desk_id": o.desk_id,
        "agreement": o.agreement_document() or None,
        "terms": _terms_to_json(o.terms),
    }


def _decode(d: dict[str, Any]) -> SignedOffer:
    if d.get("v") in (1, 2):
        raise OfferError(
            "an offer of an earlier nexotc version (signed without an agreement hash): ask its maker to sign it again"
        )
    if d.get("v") != LINK_VERSION:
        raise OfferError("unsupported offer link version")
    offer = Offer(
        terms=_terms_from_json(d["terms"]),
        maker=to_checksum_address(d["maker"]),
        taker=to_checksum_address(d["taker"]),
        expiry=int(d["expiry"]),
        nonce=int(d["nonce"]),
        previous=bytes.fromhex(d["previous"]),
        salt=bytes.fromhex(d["salt"]),
        desk_id=_desk_id(d["desk_id"]),
        agreement=_agreement(d.get("agreement")),
    )
    return SignedOffer(
        offer,
        bytes.fromhex(d["signature"]),
        int(d["chain_id"]),
        to_checksum_address(d["factory"]),
        bytes.fromhex(d.get("taker_signature", "")),
    )


def _terms_to_json(t: Terms) -> dict[str, Any]:
    d = asdict(t)
    d["parties"] = [[p.wallet, int(p.roles), p.bps] for p in t.parties]
    d["tranches"] = [[x.base_amount, x.quote_amount, x.unlock_time, x.deadline] for x in t.tranches]
    d["fee_leg"] = int(t.fee_leg)
    d["dispute_default"] = int(t.dispute_default)
    return d


def _terms_from_json(d: dict[str, Any]) -> Terms:
    try:
        return Terms(
            base=Leg(**d["base"]),
            quote=Leg(**d["quote"]),
            parties=tuple(Party(to_checksum_address(w), Role(int(r)), int(b)) for w, r, b in d["parties"]),
            tranches=tuple(Tranche(*(int(v) for v in x)) for x in d["tranches"]),
            funding_deadline=int(d["funding_deadline"]),
            final_expiry=int(d["final_expiry"]),
            approval_threshold=int(d["approval_threshold"]),
            release_threshold=int(d["release_threshold"]),
            desk_fee_bps=int(d["desk_fee_bps"]),
            fee_leg=LegId(int(d["fee_leg"])),
            resolver_fee_bps=int(d["resolver_fee_bps"]),
            approval_window=int(d["approval_window"]),
            dispute_timeout=int(d["dispute_timeout"]),
            dispute_default=DisputeDefault(int(d["dispute_default"])),
            policy_id=int(d.get("policy_id", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TermsError(f"offer terms are malformed: {exc}") from exc


__all__ = [
    "Offer",
    "OfferError",
    "SignedOffer",
    "Thread",
    "TYPES",
    "ancestors",
    "diff",
    "domain",
    "later_by_maker",
    "order_offers",
]
