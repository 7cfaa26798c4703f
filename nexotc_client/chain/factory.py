"""`Factory`: the EscrowFactory that validates terms and deploys deals as CREATE2 clones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from nexotc_client.chain.contracts import container, deal_container, factory_container, instance, runs_code
from nexotc_client.chain.deal import Deal, DealEvent, funding_leg, prepare_funding, read_events, tx_result
from nexotc_client.chain.encoding import is_valid_address, to_salt
from nexotc_client.chain.errors import NexotcError, reverts_as_errors, simulate
from nexotc_client.terms import Terms

if TYPE_CHECKING:
    from ape.api import AccountAPI
    from ape.contracts import ContractInstance


@dataclass(frozen=True)
class DealRecord:
    """One `DealCreated` event of the factory; `index` is the 1-based creation order (counted from
    the factory's deployment block)."""

    deal: str
    creator: str
    terms_hash: str
    salt: str
    index: int
    block: int
    tx_hash: str
    timestamp: int
    event: DealEvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal": self.deal,
            "creator": self.creator,
            "terms_hash": self.terms_hash,
            "salt": self.salt,
            "index": self.index,
            "block": self.block,
            "tx_hash": self.tx_hash,
            "timestamp": self.timestamp,
        }


class Factory:
    """An EscrowFactory. `start_block` (its deployment block, when known) bounds event scans."""

    def __init__(self, contract: ContractInstance, start_block: int = 0) -> None:
        self.contract = contract
        self.start_block = start_block

    @classmethod
    def at(cls, address: str, start_block: int = 0) -> Factory:
        """The factory at `address`; refuses an address without the factory's code."""
        if not isinstance(address, str) or not is_valid_address(address):
            raise NexotcError(f"not an address: {address!r}")
        from ape import chain

        address = to_checksum_address(address)
        with reverts_as_errors("reading the factory"):
            code = chain.provider.get_code(address)
        if not code:
            raise NexotcError(f"no contract at {address}: no factory there on this network")
        factory = cls(instance(address, factory_container()), start_block)
        try:
            factory.implementation  # noqa: B018  (probe: reverts/garbage if not a factory)
        except NexotcError as exc:
            raise NexotcError(f"{address} is not an EscrowFactory") from exc
        return factory

    @classmethod
    def checked(cls, address: str, start_block: int = 0) -> Factory:
        """The factory at `address`, refused unless it and its deal and deposit implementations run the code this
        checkout builds (a factory of another nexotc version, or a look-alike with the same functions, is named:
        an offer from a stranger must not make its taker approve or fund a look-alike)."""
        factory = cls.at(address, start_block)
        if not runs_code(factory.address, factory_container()):
            raise NexotcError(
                f"{factory.address} does not run this nexotc version's EscrowFactory code (another version's "
                "factory, or another contract)"
            )
        for name, implementation, kind in (
            ("deal", factory.implementation, deal_container()),
            ("deposit", factory.deposit_implementation, container("DepositWallet")),
        ):
            if not runs_code(implementation, kind):
                raise NexotcError(
                    f"the {name} implementation {implementation} of factory {factory.address} does not run this "
                    f"nexotc version's {kind.contract_type.name} code"
                )
        return factory

    def __repr__(self) -> str:
        return f"<Factory {self.address}>"

    @property
    def address(self) -> str:
        return str(self.contract.address)

    @property
    def implementation(self) -> str:
        with reverts_as_errors("implementation()"):
            return to_checksum_address(str(self.contract.implementation()))

    @property
    def deposit_implementation(self) -> str:
        """The DepositWallet implementation behind every deposit address (see chain/deposit.py)."""
        with reverts_as_errors("deposit_implementation()"):
            return to_checksum_address(str(self.contract.deposit_implementation()))

    @property
    def deal_count(self) -> int:
        """Number of deals created (counted from the `DealCreated` events)."""
        return len(self.deals())

    # -------------------------------------------------------------- reads
    def is_deal(self, address: str) -> bool:
        if not is_valid_address(address):
            return False
        with reverts_as_errors("is_deal()"):
            return bool(self.contract.is_deal(to_checksum_address(address)))

    def validate(self, terms: Terms) -> bytes:
        """Run the factory's own checks on `terms`; returns the terms hash or raises RevertError."""
        with reverts_as_errors("validate"):
            return bytes(self.contract.validate(terms.as_struct()))

    def predict(self, terms: Terms, creator: str, salt: bytes | str | int, desk_id: int = 0) -> str:
        """The address `create(terms, creator, salt)` deploys to (asked to the factory); with `desk_id`, the
        address of that desk's deal (a desk deal never shares an address with a plain one)."""
        with reverts_as_errors("predict_address"):
            return to_checksum_address(
                str(self.contract.predict_address(terms.as_struct(), creator, to_salt(salt), desk_id))
            )

    def deposit_address(self, deal: str, funder: str, leg: int) -> str:
        """The deposit address of `funder`'s `leg` of `deal` (asked to the factory; chain/deposit.py
        computes the same offline)."""
        for what, value in (("deal", deal), ("funder", funder)):
            if not is_valid_address(value):
                raise NexotcError(f"{what} is not an address: {value!r}")
        with reverts_as_errors("deposit_address"):
            address = self.contract.deposit_address(to_checksum_address(deal), to_checksum_address(funder), int(leg))
        return to_checksum_address(str(address))

    def deals(self, from_block: int | None = None) -> list[DealRecord]:
        """Every deal created by this factory (from its `DealCreated` events), oldest first."""
        abi = [e for e in factory_container().contract_type.events if e.name == "DealCreated"]
        start = self.start_block if from_block is None else from_block
        records = []
        for position, ev in enumerate(read_events(self.address, abi, start), start=1):
            records.append(
                DealRecord(
                    deal=to_checksum_address(ev.args["deal"]),
                    creator=to_checksum_address(ev.args["creator"]),
                    terms_hash=_hex32(ev.args["terms_hash"]),
                    salt=_hex32(ev.args["salt"]),
                    index=position,
                    block=ev.block,
                    tx_hash=ev.tx_hash,
                    timestamp=ev.timestamp,
                    event=ev,
                )
            )
        return records

    def offer_accepted(self, deal: str, from_block: int | None = None) -> DealEvent | None:
        """The `OfferAccepted` event that made `deal` (None for a deal created directly): its
        `offer_hash` binds the signed offer, agreement document included."""
        abi = [e for e in factory_container().contract_type.events if e.name == "OfferAccepted"]
        start = self.start_block if from_block is None else from_block
        wanted = to_checksum_address(deal)
        found = [ev for ev in read_events(self.address, abi, start) if to_checksum_address(ev.args["deal"]) == wanted]
        return found[0] if found else None

    def accepted_offer_hash(self, deal: str) -> str | None:
        """The struct hash (0x…, lower case) of the signed offer that made `deal`, None for a deal created
        directly."""
        return self.accepted_offer_hashes().get(to_checksum_address(deal))

    def accepted_offer_hashes(self) -> dict[str, str]:
        """Every deal made from a signed offer => that offer's struct hash (0x…, lower case), from one scan of
        the factory's `OfferAccepted` events (for reports over many deals)."""
        abi = [e for e in factory_container().contract_type.events if e.name == "OfferAccepted"]
        return {
            to_checksum_address(ev.args["deal"]): _hex32(ev.args["offer_hash"]).lower()
            for ev in read_events(self.address, abi, self.start_block)
        }

    def deal(self, ref: str | int) -> Deal:
        """A deal by address, or by its 1-based creation index (as `deals()` lists it)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.lstrip("#").isdigit()):
            index = int(str(ref).lstrip("#"))
            records = self.deals()
            for record in records:
                if record.index == index:
                    return Deal.at(record.deal, self)
            raise NexotcError(f"no deal #{index} (this factory created {len(records)})")
        return Deal.at(ref, self)

    # ------------------------------------------------------------ actions
    def create(
        self,
        terms: Terms,
        sender: AccountAPI,
        salt: bytes | str | int | None = None,
        fund: bool = False,
    ) -> Deal:
        """Validate and deploy a deal. With `fund=True` the sender (seller or buyer) approves the
        factory for its leg (one standing approval serves every deal) and the factory creates and funds it in one
        transaction.
        `Deal.created` holds the creation's TxResult."""
        from ape import chain

        terms.validate(now=int(chain.pending_timestamp))
        raw_salt = to_salt(salt)
        struct = terms.as_struct()
        if fund:
            funding_leg(terms, sender.address)
            predicted = self.predict(terms, sender.address, raw_salt)
            if chain.provider.get_code(predicted):
                raise NexotcError(f"a deal with these terms, creator and salt already exists at {predicted}")
            prepare_funding(terms, sender, self.address)
            with reverts_as_errors("create_and_fund"):
                simulate(self.contract, "create_and_fund", (struct, raw_salt), sender.address)
                receipt = self.contract.create_and_fund(struct, raw_salt, sender=sender)
        else:
            with reverts_as_errors("create_deal"):
                simulate(self.contract, "create_deal", (struct, raw_salt), sender.address)
                receipt = self.contract.create_deal(struct, raw_salt, sender=sender)
        created = [
            log for log in receipt.decode_logs(self.contract.DealCreated) if log.contract_address == self.address
        ]
        if not created:
            raise NexotcError(f"transaction {receipt.txn_hash} created no deal")
        address = to_checksum_address(str(created[0].deal))
        deal = Deal(instance(address, deal_container()), self)
        deal.created = tx_result(receipt, {self.address, address})
        return deal


def _hex32(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


__all__ = ["DealRecord", "Factory"]


def creation_block(address: str) -> int:
    """The block the contract at `address` was deployed in (a binary search of its code by block), to bound a
    contract's event scans when nothing records it; 0 when the node cannot tell (no state of old blocks)."""
    from ape import chain

    try:
        low, high = 0, int(chain.blocks.height)
        while low < high:
            mid = (low + high) // 2
            if chain.provider.get_code(address, block_id=mid):
                high = mid
            else:
                low = mid + 1
        return low
    except Exception:  # a node without the state of old blocks: scan from genesis
        return 0
