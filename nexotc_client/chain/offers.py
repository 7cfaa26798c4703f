"""Signed offers on chain: verify one against the connected network, accept it through the factory,
cancel nonces. A thin wrapper over `EscrowFactory.accept_offer` / `cancel_nonces` / `nonce_used`.

    status = inspect_offer(factory, signed, taker=buyer.address)   # signature, chain, expiry, nonce, funds
    accepted = accept_offer(factory, signed, buyer, fund=True)     # approves the taker's leg if short
    accepted.deal.phase()

A deal made from an offer lives at `factory.predict_address(filled terms, maker, offer struct hash)`.
The maker signs either with an EOA key (ECDSA, low s) or, for a contract wallet, through EIP-1271
(checked here by calling the wallet, as the factory does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from nexotc_client.chain.contracts import deal_container, erc20, instance
from nexotc_client.chain.deal import PROVE_FILES, Deal, TxResult, tx_result
from nexotc_client.chain.errors import NexotcError, RevertError, reverts_as_errors, simulate
from nexotc_client.multisig import HALF_N
from nexotc_client.offers import ZERO32, Offer, OfferError, SignedOffer
from nexotc_client.terms import ZERO_ADDRESS, LegId, Mode, Terms, TermsError

if TYPE_CHECKING:
    from ape.api import AccountAPI

    from nexotc_client.chain.factory import Factory

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
MAX_CANCEL = 64
# a stand-in for the open counterparty of a public offer, to validate its terms before anyone accepts
PLACEHOLDER_TAKER = "0x000000000000000000000000000000000000dEaD"


# ------------------------------------------------------------------ amounts
def fmt_amount(token: str, units: int) -> str:
    """`units` of `token` for people: "12,900,000 USDT" (symbol and decimals read from the token; raw
    units with the token's address when it has neither)."""
    from nexotc_client.spec import format_units

    try:
        contract = erc20(token)
        symbol, decimals = str(contract.symbol()), int(contract.decimals())
    except Exception:  # a token without symbol()/decimals(), or no code: raw units
        return f"{units:,} units of {token}"
    return f"{format_units(units, decimals)} {symbol}"


# ------------------------------------------------------------------ sides
def maker_side(offer: Offer) -> tuple[str, str]:
    """(`maker`'s side, the counterparty's side): ("seller", "buyer") or ("buyer", "seller")."""
    parties = offer.terms.parties
    if len(parties) < 4:
        raise NexotcError("the offer's terms need buyer, seller, platform and resolver")
    maker = offer.maker.lower()
    if maker != ZERO_ADDRESS and maker == parties[1].wallet.lower():
        return "seller", "buyer"
    if maker != ZERO_ADDRESS and maker == parties[0].wallet.lower():
        return "buyer", "seller"
    raise NexotcError(f"the maker {offer.maker} is neither the buyer nor the seller of the offer's terms")


def counterparty(offer: Offer) -> str:
    """The counterparty's wallet in the signed terms (zero for a public offer)."""
    side = maker_side(offer)[1]
    return offer.terms.parties[0 if side == "buyer" else 1].wallet


def filled_terms(offer: Offer, taker: str | None) -> Terms:
    """The terms the deal gets when `taker` accepts (a public offer's open wallet becomes the taker)."""
    if counterparty(offer) == ZERO_ADDRESS:
        return offer.with_taker_filled(taker or PLACEHOLDER_TAKER)
    return offer.terms


def leg_of(terms: Terms, side: str) -> tuple[LegId, str, int] | None:
    """The on-chain leg `side` ("buyer"/"seller") deposits: (leg, token, amount), or None."""
    if side == "seller" and terms.base.on_chain:
        return LegId.BASE, terms.base.token, terms.base.amount
    if side == "buyer" and terms.quote.on_chain:
        return LegId.QUOTE, terms.quote.token, terms.quote.amount
    return None


# ----------------------------------------------------------------- signing
def sign_offer(offer: Offer, account: AccountAPI, chain_id: int, factory: str) -> SignedOffer:
    """The maker's EIP-712 signature through its ape account (test account, keyfile: it prompts)."""
    if account.address.lower() != offer.maker.lower():
        raise NexotcError(f"the account {account.address} is not the offer's maker {offer.maker}")
    signable = encode_typed_data(full_message=offer.typed_data(chain_id, factory))
    signature = account.sign_message(signable)
    if signature is None:
        raise NexotcError("the account declined to sign the offer")
    raw = _signature_bytes(signature)
    signed = SignedOffer(offer, raw, chain_id, to_checksum_address(factory))
    try:
        signed.verify_eoa()
    except OfferError as exc:
        raise NexotcError(f"the account's signature does not verify: {exc}") from exc
    return signed


def _signature_bytes(signature: Any) -> bytes:
    r = int.from_bytes(bytes(signature.r), "big") if isinstance(signature.r, bytes) else int(signature.r)
    s = int.from_bytes(bytes(signature.s), "big") if isinstance(signature.s, bytes) else int(signature.s)
    v = int(signature.v)
    if v < 27:
        v += 27
    if s > HALF_N:  # the factory accepts only the low-s form
        s, v = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 - s, 55 - v
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


# ------------------------------------------------------------ verification
@dataclass(frozen=True)
class LegFunding:
    """One funder's on-chain leg and whether the factory can move it (balance and allowance)."""

    side: str  # "maker" | "taker"
    role: str  # "seller" | "buyer"
    wallet: str | None  # None: the taker of a public offer, not known yet
    leg: str  # "base" | "quote"
    token: str
    amount: int
    balance: int | None = None
    allowance: int | None = None

    @property
    def balance_ok(self) -> bool | None:
        return None if self.balance is None else self.balance >= self.amount

    @property
    def allowance_ok(self) -> bool | None:
        return None if self.allowance is None else self.allowance >= self.amount

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "role": self.role,
            "wallet": self.wallet,
            "leg": self.leg,
            "token": self.token,
            "amount": self.amount,
            "balance": self.balance,
            "allowance": self.allowance,
            "balance_ok": self.balance_ok,
            "allowance_ok": self.allowance_ok,
        }


@dataclass(frozen=True)
class OfferStatus:
    """A signed offer checked against the connected chain and factory.

    `problems` lists what stops it from being accepted now (empty: acceptable); a short taker
    allowance is not one (accepting approves it)."""

    signed: SignedOffer
    digest: bytes
    offer_hash: bytes
    maker_role: str
    maker_kind: str  # "eoa" | "contract"
    taker: str | None
    terms: Terms
    deal: str | None
    now: int
    expired: bool
    nonce_used: bool
    funding: tuple[LegFunding, ...]
    problems: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # acceptable, but worth knowing first (e.g. a short attestation)
    maker_signed: bool = True  # False: a multisig maker's owner signatures are not all there yet
    account: str | None = None  # who asked (`--account`), when not the one the funding is shown for
    account_can_accept: bool | None = None  # None: nobody asked

    @property
    def void(self) -> bool:
        """The maker's nonce is used or cancelled: this offer can never be accepted."""
        return self.nonce_used

    @property
    def acceptable(self) -> bool:
        return not self.problems

    @property
    def public(self) -> bool:
        return self.signed.offer.taker == ZERO_ADDRESS

    def to_dict(self) -> dict[str, Any]:
        o = self.signed.offer
        return {
            "offer_hash": "0x" + self.offer_hash.hex(),
            "digest": "0x" + self.digest.hex(),
            "chain_id": self.signed.chain_id,
            "factory": self.signed.factory,
            "maker": o.maker,
            "maker_role": self.maker_role,
            "maker_signature": self.maker_kind,
            "maker_signed": self.maker_signed,
            "taker": o.taker,
            "public": self.public,
            "accepting_as": self.taker,
            "account": self.account or self.taker,
            "account_can_accept": self.account_can_accept,
            "expiry": o.expiry,
            "expired": self.expired,
            "nonce": o.nonce,
            "nonce_used": self.nonce_used,
            "void": self.void,
            "previous": "0x" + o.previous.hex() if o.previous != ZERO32 else None,
            "salt": "0x" + o.salt.hex(),
            "desk_id": o.desk_id,
            "deal": self.deal,
            "now": self.now,
            "funding": [f.to_dict() for f in self.funding],
            "acceptable": self.acceptable,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def check_domain(signed: SignedOffer, factory: Factory) -> None:
    """The offer was signed for the connected chain and this factory (else its signature is void)."""
    from ape import chain

    connected = int(chain.chain_id)
    if signed.chain_id != connected:
        raise NexotcError(f"the offer was signed for chain {signed.chain_id}, but the connected chain is {connected}")
    if signed.factory.lower() != factory.address.lower():
        raise NexotcError(
            f"the offer was signed for the factory {signed.factory}, not the one recorded here ({factory.address})"
        )


class WalletSignaturesMissing(NexotcError):
    """A multisig maker's offer carries fewer owner signatures than the wallet's threshold (yet)."""


def verify_maker_signature(signed: SignedOffer) -> str:
    """The kind of maker signature, "eoa" or "contract", when it holds on the connected chain (EOA:
    canonical ECDSA recovery; a maker with code: EIP-1271 `isValidSignature`); else NexotcError."""
    from ape import chain

    maker = signed.offer.maker
    digest = signed.offer.digest(signed.chain_id, signed.factory)
    with reverts_as_errors("reading the maker's code"):
        code = chain.provider.get_code(maker)
    if code:
        if not is_valid_1271(maker, digest, signed.signature):
            held = wallet_offer_signatures(signed)
            if held is not None and held.stray:
                raise NexotcError(
                    f"{held.stray} of the owner signatures on this offer by the multisig {maker} do not verify: the "
                    "offer was changed after they signed it (its terms, agreement document or another signed "
                    "field)"
                )
            if held is not None and len(held.signers) < held.threshold:
                raise WalletSignaturesMissing(
                    f"the maker {maker} is a {held.threshold}-of-{len(held.owners)} multisig and the offer carries "
                    f"{len(held.signers)} of its owners' signatures: another owner adds one with `nexotc offer "
                    "sign FILE --account OWNER`"
                )
            raise NexotcError(f"the maker {maker} is a contract and does not accept this signature (EIP-1271)")
        return "contract"
    sig = signed.signature
    if len(sig) != 65 or sig[64] not in (27, 28) or int.from_bytes(sig[32:64], "big") > HALF_N:
        raise NexotcError("the maker's signature is malformed (need 65 bytes, v 27/28, low s)")
    try:
        recovered = Account._recover_hash(digest, signature=sig)
    except Exception as exc:  # eth-keys raises BadSignature and others for garbage
        raise NexotcError("the maker's signature does not verify") from exc
    if recovered.lower() != maker.lower():
        raise NexotcError(
            f"the signature is not the maker's: it recovers to {recovered}, the maker is {maker} (the offer was "
            "changed after it was signed: its terms, agreement document or another signed field)"
        )
    return "eoa"


@dataclass(frozen=True)
class WalletSignatures:
    """The owners' signatures an offer made by a nexotc MultiSig carries (its EIP-1271 maker signature)."""

    wallet: str
    threshold: int
    owners: tuple[str, ...]
    signers: tuple[str, ...]  # owners with a valid signature of the offer, ascending
    stray: int = 0  # signatures that recover to no owner (the offer changed after they signed, or non-owners)

    @property
    def missing(self) -> int:
        return max(self.threshold - len(self.signers), 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "wallet": self.wallet,
            "threshold": self.threshold,
            "owners": list(self.owners),
            "signers": list(self.signers),
            "missing": self.missing,
            "stray": self.stray,
        }


def wallet_offer_signatures(signed: SignedOffer) -> WalletSignatures | None:
    """For an offer whose maker is a nexotc MultiSig on the connected chain: the owners whose signatures it
    carries (entries that do not verify, or by non-owners, are not counted); None when the maker is not one."""
    from nexotc_client.chain.multisig import MultiSigWallet
    from nexotc_client.multisig import Domain, MultiSigError, message_digest, unpack_ecdsa_signatures

    try:
        wallet = MultiSigWallet.at(signed.offer.maker)
    except NexotcError:
        return None
    owners = wallet.owners()
    digest = message_digest(
        Domain(signed.chain_id, wallet.address), signed.offer.digest(signed.chain_id, signed.factory)
    )
    try:
        entries = unpack_ecdsa_signatures(signed.signature, digest)
    except MultiSigError:
        entries = []
    known = {o.lower() for o in owners}
    signers = sorted({e.signer for e in entries if e.signer.lower() in known}, key=lambda a: int(a, 16))
    stray = sum(1 for e in entries if e.signer.lower() not in known)
    return WalletSignatures(wallet.address, wallet.threshold(), owners, tuple(signers), stray)


def sign_offer_for_wallet(
    signed_or_offer: SignedOffer | Offer, account: AccountAPI, chain_id: int, factory: str
) -> SignedOffer:
    """`account`, an owner of the nexotc MultiSig that makes the offer, adds its signature to the offer's (the
    owners' signatures, packed in signer order, are the maker's EIP-1271 signature once `threshold` of them
    are there). Earlier owners' signatures are kept; the account's own earlier one is replaced."""
    from nexotc_client.chain.multisig import MultiSigWallet, sign_wallet_message
    from nexotc_client.multisig import Domain, MultiSigError, message_digest, pack_signatures, unpack_ecdsa_signatures

    if isinstance(signed_or_offer, SignedOffer):
        offer, earlier = signed_or_offer.offer, signed_or_offer.signature
    else:
        offer, earlier = signed_or_offer, b""
    wallet = MultiSigWallet.at(offer.maker)
    owners = {o.lower() for o in wallet.owners()}
    if account.address.lower() not in owners:
        raise NexotcError(f"{account.address} is not an owner of the multisig {wallet.address}, the offer's maker")
    digest = offer.digest(chain_id, factory)
    try:
        entries = unpack_ecdsa_signatures(earlier, message_digest(Domain(chain_id, wallet.address), digest))
    except MultiSigError as exc:
        raise NexotcError(f"the offer's owner signatures are malformed: {exc}") from exc
    stray = [e for e in entries if e.signer.lower() not in owners]
    if stray:
        raise NexotcError(
            f"{len(stray)} signature(s) on this offer do not verify as an owner's: the offer was changed after they "
            "signed it (its terms, agreement document or another signed field): not signing it"
        )
    kept = [e for e in entries if e.signer.lower() != account.address.lower()]
    kept.append(sign_wallet_message(wallet.address, digest, account))
    return SignedOffer(offer, pack_signatures(kept), chain_id, to_checksum_address(factory))


def is_valid_1271(wallet: str, digest: bytes, signature: bytes) -> bool:
    """`wallet.isValidSignature(digest, signature)` answers the EIP-1271 magic value (a revert: no)."""
    from ape import chain
    from web3.exceptions import Web3Exception

    data = ERC1271_MAGIC + encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = chain.provider.web3.eth.call({"to": wallet, "data": "0x" + data.hex()})  # type: ignore[attr-defined]
    except (Web3Exception, ValueError):
        return False
    return bytes(answer)[:4] == ERC1271_MAGIC


def nonce_used(factory: Factory, maker: str, nonce: int) -> bool:
    with reverts_as_errors("nonce_used"):
        return bool(factory.contract.nonce_used(to_checksum_address(maker), nonce))


def inspect_offer(factory: Factory, signed: SignedOffer, taker: str | None = None) -> OfferStatus:
    """Verify `signed` against the connected chain: chain id and factory of its domain and the
    maker's signature (raise NexotcError: nothing can be trusted otherwise), then list what would
    stop `taker` (default: the invited taker) from accepting it now: expiry, nonce, the terms'
    rules, the funders' balances and allowances to the factory."""
    from ape import chain

    offer = signed.offer
    check_domain(signed, factory)
    maker_role, taker_role = maker_side(offer)
    problems: list[str] = []
    try:
        kind = verify_maker_signature(signed)
    except WalletSignaturesMissing as exc:  # the rest is worth showing to the owners still to sign
        kind, maker_signed = "contract", False
        problems.append(str(exc))
    else:
        maker_signed = True

    account = to_checksum_address(taker) if taker is not None else None
    accepting = account or (offer.taker if offer.taker != ZERO_ADDRESS else None)
    can_accept: bool | None = None
    if account is not None:
        can_accept = True
        if account.lower() == offer.maker.lower():
            problems.append(f"{account} is the maker: the maker cannot accept its own offer")
            can_accept = False
            accepting = offer.taker if offer.taker != ZERO_ADDRESS else None
        elif offer.taker != ZERO_ADDRESS and account.lower() != offer.taker.lower():
            # show the offer as its invited taker would accept it, and say plainly this account cannot
            problems.append(
                f"{account} is not the invited taker of this offer and cannot accept it: only {offer.taker} can"
            )
            can_accept = False
            accepting = offer.taker
    open_wallet = counterparty(offer)
    if offer.taker == ZERO_ADDRESS and open_wallet != ZERO_ADDRESS:
        problems.append("a public offer must leave the counterparty's wallet open (zero) in its terms")
    if offer.taker != ZERO_ADDRESS and open_wallet.lower() != offer.taker.lower():
        problems.append(f"the invited taker {offer.taker} is not the {taker_role} of the terms ({open_wallet})")

    now = int(chain.pending_timestamp)
    expired = now > offer.expiry
    if expired:
        from nexotc_client.spec import fmt_time

        problems.append(f"the offer expired at {fmt_time(offer.expiry, now)} (chain time {fmt_time(now)})")
    used = nonce_used(factory, offer.maker, offer.nonce)
    if used:
        problems.append(
            f"the maker's nonce {offer.nonce} is used or cancelled: this offer is void (it, or another offer of "
            "the maker with the same nonce, was accepted, or the maker withdrew it)"
        )

    terms = filled_terms(offer, accepting)
    try:
        factory.validate(terms)
    except NexotcError as exc:
        problems.append(f"the terms no longer pass the factory's checks: {getattr(exc, 'reason', exc)}")

    deal = None
    if accepting is not None or open_wallet != ZERO_ADDRESS:
        try:
            deal = factory.predict(terms, offer.maker, offer.offer_hash(), offer.desk_id)
        except NexotcError:
            deal = None

    funding: list[LegFunding] = []
    for side, role in (("maker", maker_role), ("taker", taker_role)):
        leg = leg_of(terms, role)
        if leg is None:
            continue
        leg_id, token, amount = leg
        wallet: str | None = offer.maker if side == "maker" else accepting
        balance = allowance = None
        if wallet is not None:
            with reverts_as_errors("reading the token"):
                contract = erc20(token)
                balance = int(contract.balanceOf(wallet))
                allowance = int(contract.allowance(wallet, factory.address))
        entry = LegFunding(side, role, wallet, leg_id.name.lower(), token, amount, balance, allowance)
        funding.append(entry)
        if entry.balance_ok is False:
            problems.append(
                f"the {side} {wallet} holds {fmt_amount(token, balance or 0)}, its {entry.leg} leg needs "
                f"{fmt_amount(token, amount)}"
            )
        if side == "maker" and entry.allowance_ok is False:
            problems.append(
                f"the maker {wallet} has approved the factory for {fmt_amount(token, allowance or 0)}, its "
                f"{entry.leg} leg needs {fmt_amount(token, amount)} ("
                + (
                    multisig_approval_hint(offer.maker, token, factory.address, amount)
                    if kind == "contract"
                    else f"the maker runs `nexotc offer approve FILE|LINK --account {wallet}`"
                )
                + ")"
            )
    if offer.desk_id:
        problems.extend(desk_problems(factory, offer, terms, accepting))
    principals = [(maker_role, offer.maker)] + ([(taker_role, accepting)] if accepting is not None else [])
    problems.extend(compliance_problems(factory, terms, deal, principals, offer.desk_id))
    warnings = compliance_warnings(factory, terms, deal, principals, offer.desk_id)
    return OfferStatus(
        signed=signed,
        digest=offer.digest(signed.chain_id, signed.factory),
        offer_hash=offer.offer_hash(),
        maker_role=maker_role,
        maker_kind=kind,
        taker=accepting,
        terms=terms,
        deal=deal,
        now=now,
        expired=expired,
        nonce_used=used,
        funding=tuple(funding),
        problems=tuple(problems),
        warnings=tuple(warnings),
        maker_signed=maker_signed,
        account=account if account is not None and account != accepting else None,
        account_can_accept=can_accept,
    )


def multisig_approval_hint(wallet: str, token: str, factory: str, amount: int) -> str:
    """How a contract maker (a nexotc MultiSig) approves the factory for its leg: an execution its owners sign."""
    return (
        f"the multisig {wallet} approves it with an execution: `nexotc msig propose {wallet} --call "
        f"'{token}.approve({factory}, {amount})' --out approve.json`, then `nexotc msig sign approve.json "
        "--account OWNER` by its owners and `nexotc msig exec approve.json SIGNATURE_FILES...`"
    )


def desk_problems(factory: Factory, offer: Offer, terms: Terms, accepting: str | None) -> list[str]:
    """What the desk registry would refuse when a desk offer is accepted, asked to the registry itself
    (`check_offer_packed`, the factory's own check): no registry behind the factory, no such desk, or the first
    desk rule the filled terms break with the desk's trader (the maker when it is one, else the taker)."""
    from nexotc_client.chain.desk import DeskRegistry, factory_desk_registry

    desk_id = offer.desk_id
    address = factory_desk_registry(factory.address)
    if address is None:
        return [f"the factory serves no desk registry: a deal for desk #{desk_id} can never be made"]
    registry = DeskRegistry.at(address)
    if not registry.exists(desk_id):
        return [f"desk #{desk_id} does not exist in the desk registry {address}"]
    try:
        registry.check_offer(desk_id, offer.maker, accepting, terms)
    except RevertError as exc:
        public_unknown = offer.taker == ZERO_ADDRESS and accepting is None
        if exc.reason in ("not a desk member", "not a trader"):
            # the maker is no trader, so the taker was checked: for a public offer nobody is known yet
            if public_unknown:
                return []
            return [
                f"desk #{desk_id} refuses this deal: neither the maker {offer.maker} nor the taker {accepting} is a "
                "desk trader"
            ]
        if exc.reason == "counterparty not invited" and public_unknown:
            return []  # a public offer on an invite-only desk: whoever accepts must be a member, checked then
        # the trader checked is the maker or the taker, both parties of the terms: named with their roles
        named = registry.screened_in(desk_id, terms) if "screened out by the desk" in exc.reason else []
        which = f" ({'; '.join(named)})" if named else ""
        return [f"desk #{desk_id} refuses this deal: {exc.reason}{which}"]
    return []


def compliance_problems(
    factory: Factory, terms: Terms, deal: str | None, principals: list[tuple[str, str]], desk_id: int = 0
) -> list[str]:
    """What the deal's compliance gate would refuse on acceptance (the deal checks both principals'
    attestations of the terms' policy in its scope: a desk deal's is its desk, `desk_id`, any other deal's its
    own address): no registry behind the factory, an unregistered policy, or a principal (role, wallet)
    without a current attestation in that scope."""
    if terms.policy_id == 0:
        return []
    registry = _policy_registry(factory, terms.policy_id)
    if isinstance(registry, str):
        return [registry]
    scope, where, how = _gate_scope(deal, desk_id)
    if scope is None:
        return []
    if deal is not None and not desk_id:
        from ape import chain

        if not chain.provider.get_code(deal):  # not created yet: `kyc prove` cannot read its final expiry
            minutes = max(1, -(-(terms.final_expiry - int(chain.pending_timestamp)) // 60))
            how += f" --valid-for {minutes}m"
    policy = terms.policy_id
    return [
        f"the {role} {wallet} has no current attestation of policy #{policy} in {where}: it runs "
        f"`nexotc kyc prove {how} --policy {policy} --account {wallet} {PROVE_FILES}`, then `nexotc kyc submit "
        "PROOF.json`"
        for role, wallet in principals
        if not registry.is_compliant(wallet, scope, policy)
    ]


def coverage_problems(
    factory: Factory, terms: Terms, deal: str | None, funders: list[tuple[str, str]], desk_id: int = 0
) -> list[str]:
    """What the deal would refuse on a deposit: a funder (role, wallet) whose attestation the gate accepts now but
    that ends before the deal's final expiry (a deal takes a deposit only from a funder attested until then, so no
    funder can back out by letting its attestation lapse). A funder with no current attestation is
    `compliance_problems`' to name."""
    from nexotc_client.spec import fmt_time

    return [
        f"the {role} {wallet}'s attestation in {where} ends at {fmt_time(expiry)}, before the deal's final expiry "
        f"({fmt_time(terms.final_expiry)}): the deal takes a deposit only from a funder attested until then; it "
        f"proves again (`nexotc kyc prove {how} --policy {terms.policy_id} --account {wallet} {PROVE_FILES}`, then "
        "`nexotc kyc submit PROOF.json`)"
        for role, wallet, expiry, where, how in _short_attestations(factory, terms, deal, funders, desk_id)
    ]


def compliance_warnings(
    factory: Factory, terms: Terms, deal: str | None, principals: list[tuple[str, str]], desk_id: int = 0
) -> list[str]:
    """Attestations the gate accepts now that end before the deal's final expiry: once one ends no tranche can
    be released (refunds stay open), which a party delivering off chain must know before it delivers."""
    return [
        f"the {role}'s attestation in {where} ends at {expiry}, before the deal's final expiry "
        f"({terms.final_expiry}): after it no tranche can be released (refunds stay open)"
        for role, _wallet, expiry, where, _how in _short_attestations(factory, terms, deal, principals, desk_id)
    ]


def _short_attestations(
    factory: Factory, terms: Terms, deal: str | None, principals: list[tuple[str, str]], desk_id: int
) -> list[tuple[str, str, int, str, str]]:
    """The principals (role, wallet) whose attestation the gate accepts now but that ends before the final
    expiry: (role, wallet, its expiry, how the scope is named, the `kyc prove` option that targets it)."""
    if terms.policy_id == 0:
        return []
    registry = _policy_registry(factory, terms.policy_id)
    scope, where, how = _gate_scope(deal, desk_id)
    if isinstance(registry, str) or scope is None:
        return []
    out = []
    for role, wallet in principals:
        expiry, policy = registry.attestation(wallet, scope)
        if policy == terms.policy_id and registry.is_compliant(wallet, scope, policy) and expiry < terms.final_expiry:
            out.append((role, wallet, expiry, where, how))
    return out


def _gate_scope(deal: str | None, desk_id: int) -> tuple[int | None, str, str]:
    """The scope a deal's principals prove in, how to name it and the `kyc prove` option that targets it."""
    from nexotc_client.chain.kyc import deal_scope, desk_scope

    if desk_id:
        return desk_scope(desk_id), f"desk #{desk_id}'s scope", f"--desk {desk_id}"
    if deal is None:
        return None, "", ""
    return deal_scope(deal), "the deal's scope", f"--deal {deal}"


def _policy_registry(factory: Factory, policy: int) -> Any:
    """The KYC registry the factory's deals ask, or the reason a deal gated on `policy` can never be accepted."""
    from nexotc_client.chain.kyc import KYCRegistry

    with reverts_as_errors("reading the deal implementation's KYC registry"):
        address = str(instance(factory.implementation, deal_container()).kyc_registry())
    if int(address, 16) == 0:
        return f"the factory has no KYC registry: a deal with compliance policy #{policy} can never be accepted"
    registry = KYCRegistry.at(address)
    if registry.policy_word(policy) == 0:
        return f"compliance policy #{policy} is not registered in the KYC registry {address}"
    return registry


# ---------------------------------------------------------------- actions
def approve_leg(terms: Terms, role: str, account: AccountAPI, spender: str) -> TxResult | None:
    """Approve `spender` (the factory) for the leg `account` funds as `role` when the allowance is
    short (reset to 0 first, as USDT requires); None when nothing was needed. Checks the balance."""
    leg = leg_of(terms, role)
    if leg is None:
        return None
    leg_id, token_address, amount = leg
    token = erc20(token_address)
    with reverts_as_errors("reading the token"):
        balance = int(token.balanceOf(account.address))
        allowance = int(token.allowance(account.address, spender))
    if balance < amount:
        raise NexotcError(
            f"{account.address} holds {fmt_amount(token_address, balance)}, the {leg_id.name.lower()} leg needs "
            f"{fmt_amount(token_address, amount)}"
        )
    if allowance >= amount:
        return None
    with reverts_as_errors("approve"):
        if allowance:
            token.approve(spender, 0, sender=account)
        receipt = token.approve(spender, amount, sender=account)
    return tx_result(receipt, set())


@dataclass(frozen=True)
class Accepted:
    """An accepted offer: the deal, the acceptance transaction and the taker's approval, if any."""

    deal: Deal
    result: TxResult
    approval: TxResult | None
    status: OfferStatus

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal": self.deal.address,
            "offer_hash": "0x" + self.status.offer_hash.hex(),
            "approval_tx": self.approval.tx_hash if self.approval else None,
            **self.result.to_dict(),
        }


def require_invited(signed: SignedOffer, taker: str) -> None:
    """Refuse at once (nothing read or sent) the maker itself and an account that is not the invited
    taker."""
    if signed.offer.maker.lower() == taker.lower():
        raise NexotcError(f"{taker} is the maker: the maker cannot accept its own offer")
    invited = signed.offer.taker
    if invited != ZERO_ADDRESS and invited.lower() != taker.lower() and not signed.taker_signature:
        raise NexotcError(f"{taker} is not the invited taker of this offer: only {invited} can accept it")


def short_attestation_refusal(status: OfferStatus) -> str | None:
    """Why accepting is unsafe without being told first: in an ESCROWED deal (one leg delivered off chain), an
    attestation that ends before the final expiry blocks every release after it, so an off-chain delivery made
    then could not be paid (the escrowed leg goes back to its funder at expiry). None when that is not the
    case (a DVP deal only refunds both legs: a warning is enough)."""
    if not status.warnings or status.terms.mode != Mode.ESCROWED:
        return None
    return (
        f"{status.warnings[0]}; in this ESCROWED deal an off-chain delivery after that could not be paid: have "
        "the attestation extended first (`nexotc kyc prove` with a later --valid-for, then `kyc submit`), or "
        "pass --short-attestation-ok"
    )


def accept_offer(
    factory: Factory, signed: SignedOffer, sender: AccountAPI, fund: bool = False, short_attestation_ok: bool = False
) -> Accepted:
    """Accept `signed` as `sender`: verify it (see `inspect_offer`), approve the factory for the
    sender's leg if short, then `accept_offer` (simulated first: nothing failing is sent). With
    `fund`, the factory deposits both legs in the same transaction. An ESCROWED offer with an attestation
    that ends before its final expiry is refused unless `short_attestation_ok` (`short_attestation_refusal`)."""
    require_invited(signed, sender.address)
    status = inspect_offer(factory, signed, taker=sender.address)
    if status.problems:
        raise NexotcError(f"cannot accept this offer: {status.problems[0]}")
    refusal = None if short_attestation_ok else short_attestation_refusal(status)
    if refusal is not None:
        raise NexotcError(f"not accepted: {refusal}")
    offer = signed.offer
    maker_role, taker_role = maker_side(offer)
    if fund:  # both legs are deposited: each funder must be attested until the final expiry
        funders = [(maker_role, offer.maker), (taker_role, sender.address)]
        on_chain = [(role, wallet) for role, wallet in funders if leg_of(status.terms, role) is not None]
        short = coverage_problems(factory, status.terms, status.deal, on_chain, offer.desk_id)
        if short:
            raise NexotcError(f"cannot accept and fund this offer: {short[0]}")
    approval = approve_leg(status.terms, taker_role, sender, factory.address)
    args = (offer.terms.as_struct(), offer.as_struct(), signed.signature, signed.taker_signature, fund)
    with reverts_as_errors("accept_offer"):
        simulate(factory.contract, "accept_offer", args, sender.address)
        receipt = factory.contract.accept_offer(*args, sender=sender)
    accepted = [
        log for log in receipt.decode_logs(factory.contract.OfferAccepted) if log.contract_address == factory.address
    ]
    if not accepted:
        raise NexotcError(f"transaction {receipt.txn_hash} accepted no offer")
    address = to_checksum_address(str(accepted[0].deal))
    deal = Deal(instance(address, deal_container()), factory)
    result = tx_result(receipt, {factory.address, address})
    deal.created = result
    return Accepted(deal, result, approval, status)


def used_nonces(factory: Factory, maker: str, nonces: Iterable[int]) -> list[int]:
    """Those of `nonces` the factory has already marked used or cancelled for `maker`, sorted."""
    return sorted(n for n in set(nonces) if nonce_used(factory, maker, n))


def cancel_nonces(factory: Factory, nonces: Iterable[int], sender: AccountAPI) -> TxResult:
    """Cancel the sender's offers with these nonces (at most 64 per transaction). Those already used or
    cancelled are left out (the factory reverts on them; callers find them with `used_nonces` to report
    them); refuses (nothing sent) when that leaves none."""
    values = sorted(set(nonces))
    if not values:
        raise NexotcError("no nonce to cancel")
    if len(values) > MAX_CANCEL:
        raise NexotcError(f"at most {MAX_CANCEL} nonces per cancellation, got {len(values)}")
    if any(n < 0 or n >= 2**256 for n in values):
        raise NexotcError("a nonce is between 0 and 2**256-1")
    done = used_nonces(factory, sender.address, values)
    if len(done) == len(values):
        listed = ", ".join(map(str, done))
        raise NexotcError(f"nonce(s) {listed} already used or cancelled: nothing left to cancel, nothing sent")
    values = [n for n in values if n not in done]
    with reverts_as_errors("cancel_nonces"):
        simulate(factory.contract, "cancel_nonces", (values,), sender.address)
        receipt = factory.contract.cancel_nonces(values, sender=sender)
    return tx_result(receipt, {factory.address})


def next_nonce(factory: Factory, maker: str, known: Iterable[int] = ()) -> int:
    """The first nonce above every nonce in `known` (the maker's offers seen locally) that the
    factory has not marked used or cancelled."""
    candidate = max(known, default=0) + 1
    while nonce_used(factory, maker, candidate):
        candidate += 1
    return candidate


def approve_maker_leg(factory: Factory, signed: SignedOffer, account: AccountAPI) -> TxResult | None:
    """The maker of an existing offer approves the factory for exactly its leg of that offer (nothing
    signed anew); None when the allowance already covers it. Refuses another account, an offer for
    another chain or factory, a void offer (its nonce used or cancelled: it can never be filled) and a maker
    with no on-chain leg."""
    offer = signed.offer
    if account.address.lower() != offer.maker.lower():
        raise NexotcError(f"{account.address} is not the maker of this offer: only {offer.maker} approves its leg")
    check_domain(signed, factory)
    if nonce_used(factory, offer.maker, offer.nonce):
        raise NexotcError(
            f"the offer is void: the maker's nonce {offer.nonce} is used or cancelled, so it can never be filled "
            "(nothing approved)"
        )
    role = maker_side(offer)[0]
    terms = filled_terms(offer, None)
    if leg_of(terms, role) is None:
        raise NexotcError(f"the maker ({role}) deposits no on-chain leg in this offer: nothing to approve")
    return approve_leg(terms, role, account, factory.address)


def validate_offer_terms(factory: Factory, offer: Offer) -> None:
    """Run the factory's checks on the terms the offer would create (a public offer's open wallet
    filled with a stand-in), and for a desk offer the desk's rules (`desk_problems`); raises NexotcError
    naming the broken rule."""
    terms = filled_terms(offer, None)
    try:
        terms.validate()
    except TermsError as exc:
        raise NexotcError(f"the offer's terms are invalid: {exc}") from exc
    factory.validate(terms)
    if offer.desk_id:
        invited = offer.taker if offer.taker != ZERO_ADDRESS else None
        problems = desk_problems(factory, offer, terms, invited)
        if problems:
            raise NexotcError(problems[0])


__all__ = [
    "Accepted",
    "LegFunding",
    "OfferStatus",
    "accept_offer",
    "approve_leg",
    "approve_maker_leg",
    "cancel_nonces",
    "check_domain",
    "counterparty",
    "compliance_warnings",
    "coverage_problems",
    "desk_problems",
    "filled_terms",
    "fmt_amount",
    "inspect_offer",
    "is_valid_1271",
    "multisig_approval_hint",
    "leg_of",
    "maker_side",
    "next_nonce",
    "nonce_used",
    "require_invited",
    "sign_offer",
    "used_nonces",
    "sign_offer_for_wallet",
    "validate_offer_terms",
    "wallet_offer_signatures",
    "verify_maker_signature",
]
