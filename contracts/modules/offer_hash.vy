# pragma version 0.4.3
"""
@title offer_hash
@notice EIP-712 struct hashes of deal terms and signed offers. The schema is
        the one in nexotc_client/offers.py (tests compare both digests over
        random terms).
@dev Types (referenced types sorted by name after the primary type):
       Offer(Terms terms,address maker,address taker,uint256 expiry,
             uint256 nonce,bytes32 previous,bytes32 salt,uint256 desk_id,
             bytes32 agreement)
       Party(address wallet,uint256 roles,uint256 bps)
       Terms(address base_token,uint256 base_amount,bool base_on_chain,
             address quote_token,uint256 quote_amount,bool quote_on_chain,
             Party[] parties,uint256 approval_threshold,
             uint256 release_threshold,uint256 desk_fee_bps,uint256 fee_leg,
             uint256 resolver_fee_bps,uint256 funding_deadline,
             uint256 approval_window,uint256 dispute_timeout,
             uint256 dispute_default,uint256 final_expiry,Tranche[] tranches,uint256 policy_id)
       Tranche(uint256 base_amount,uint256 quote_amount,uint256 unlock_time,
               uint256 deadline)
@custom:security Pure: the caller binds the digest to its domain (chain id
     and verifying contract) with modules/eip712.vy.
"""

from ..interfaces import IDealEscrow
from ..interfaces import IEscrowFactory
from . import terms_layout as tl

# encodeType strings: the primary type, then referenced types sorted by name
PARTY_TYPEHASH: constant(bytes32) = keccak256("Party(address wallet,uint256 roles,uint256 bps)")
TRANCHE_TYPEHASH: constant(bytes32) = keccak256(
    "Tranche(uint256 base_amount,uint256 quote_amount,uint256 unlock_time,uint256 deadline)"
)
TERMS_TYPE: constant(String[544]) = (
    "Terms(address base_token,uint256 base_amount,bool base_on_chain,address quote_token,"
    "uint256 quote_amount,bool quote_on_chain,Party[] parties,uint256 approval_threshold,"
    "uint256 release_threshold,uint256 desk_fee_bps,uint256 fee_leg,uint256 resolver_fee_bps,"
    "uint256 funding_deadline,uint256 approval_window,uint256 dispute_timeout,"
    "uint256 dispute_default,uint256 final_expiry,Tranche[] tranches,uint256 policy_id)Party(address wallet,"
    "uint256 roles,uint256 bps)Tranche(uint256 base_amount,uint256 quote_amount,"
    "uint256 unlock_time,uint256 deadline)"
)
OFFER_TYPE: constant(String[683]) = (
    "Offer(Terms terms,address maker,address taker,uint256 expiry,uint256 nonce,"
    "bytes32 previous,bytes32 salt,uint256 desk_id,bytes32 agreement)Party(address wallet,uint256 roles,uint256 bps)"
    "Terms(address base_token,uint256 base_amount,bool base_on_chain,address quote_token,"
    "uint256 quote_amount,bool quote_on_chain,Party[] parties,uint256 approval_threshold,"
    "uint256 release_threshold,uint256 desk_fee_bps,uint256 fee_leg,uint256 resolver_fee_bps,"
    "uint256 funding_deadline,uint256 approval_window,uint256 dispute_timeout,"
    "uint256 dispute_default,uint256 final_expiry,Tranche[] tranches,uint256 policy_id)"
    "Tranche(uint256 base_amount,uint256 quote_amount,uint256 unlock_time,uint256 deadline)"
)
TERMS_TYPEHASH: constant(bytes32) = keccak256(TERMS_TYPE)
OFFER_TYPEHASH: constant(bytes32) = keccak256(OFFER_TYPE)


@internal
@pure
def _hash_offer(t: IDealEscrow.Terms, offer: IEscrowFactory.OfferMeta) -> bytes32:
    """
    @notice hashStruct(Offer) for `t` as signed and the offer's metadata.
    """
    return keccak256(
        abi_encode(
            OFFER_TYPEHASH,
            self._hash_terms(t),
            offer.maker,
            offer.taker,
            offer.expiry,
            offer.nonce,
            offer.previous,
            offer.salt,
            offer.desk_id,
            offer.agreement,
        )
    )


@internal
@pure
def _hash_terms(t: IDealEscrow.Terms) -> bytes32:
    parties: DynArray[bytes32, tl.MAX_PARTIES] = []
    for p: IDealEscrow.Party in t.parties:
        parties.append(keccak256(abi_encode(PARTY_TYPEHASH, p.wallet, p.roles, p.bps)))
    tranches: DynArray[bytes32, tl.MAX_TRANCHES] = []
    for x: IDealEscrow.Tranche in t.tranches:
        tranches.append(
            keccak256(abi_encode(TRANCHE_TYPEHASH, x.base_amount, x.quote_amount, x.unlock_time, x.deadline))
        )
    return keccak256(
        abi_encode(
            TERMS_TYPEHASH,
            t.base_token,
            t.base_amount,
            t.base_on_chain,
            t.quote_token,
            t.quote_amount,
            t.quote_on_chain,
            self._hash_parties(parties),
            t.approval_threshold,
            t.release_threshold,
            t.desk_fee_bps,
            t.fee_leg,
            t.resolver_fee_bps,
            t.funding_deadline,
            t.approval_window,
            t.dispute_timeout,
            t.dispute_default,
            t.final_expiry,
            self._hash_tranches(tranches),
            t.policy_id,
        )
    )


@internal
@pure
def _hash_parties(hashes: DynArray[bytes32, tl.MAX_PARTIES]) -> bytes32:
    # EIP-712 array: keccak256 of the concatenated element hashes
    if len(hashes) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(hashes), 64, len(hashes) * 32))


@internal
@pure
def _hash_tranches(hashes: DynArray[bytes32, tl.MAX_TRANCHES]) -> bytes32:
    if len(hashes) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(hashes), 64, len(hashes) * 32))
