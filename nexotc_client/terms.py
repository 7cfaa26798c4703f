"""Deal terms: the typed model, its validation and its packed on-chain encoding.

The contract (`EscrowFactory`) is the authority on every rule; `Terms.validate` mirrors those rules
so that a user gets a clear message before sending a transaction. `Terms.pack` reproduces the
factory's packing byte for byte (tested), which gives the terms hash and the CREATE2 address offline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag

from eth_utils import keccak, to_checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

MAX_PARTIES = 16
MAX_TRANCHES = 32
MAX_INTRODUCERS = 4
MAX_MARKERS = 4
MAX_TOTAL_FEE_BPS = 1_000
MAX_RESOLVER_FEE_BPS = 500
BPS = 10_000
MAX_AMOUNT = 2**96 - 1
MAX_TIME = 2**32 - 1
MAX_POLICY_ID = 2**32 - 1


class TermsError(ValueError):
    """A rule of the terms is broken; the message names it."""


class Role(IntFlag):
    BUYER = 1
    SELLER = 2
    PLATFORM = 4
    RESOLVER = 8
    BASE_RECEIVER = 16
    QUOTE_RECEIVER = 32
    MARKER = 64
    APPROVER = 128
    SIGNER = 256
    INTRODUCER = 512


ROLE_ALL = 1023


def role_names(roles: int) -> list[str]:
    """The names of the role flags in `roles`, lower case (`["buyer", "base_receiver"]`)."""
    return [r.name.lower() for r in Role if r.name and int(roles) & r]


class LegId(IntEnum):
    BASE = 0
    QUOTE = 1


class DisputeDefault(IntEnum):
    REFUND = 0
    RELEASE = 1


class Mode(IntEnum):
    DVP = 0
    ESCROWED = 1


class TrancheStatus(IntEnum):
    PENDING = 0
    MARKED = 1
    DISPUTED = 2
    RELEASED = 3
    REFUNDED = 4
    RESOLVED = 5


class Phase(IntEnum):
    FUNDING = 0
    ACTIVE = 1
    SETTLED = 2
    CANCELLED = 3
    EXPIRED = 4


@dataclass(frozen=True)
class Leg:
    """One side's asset. An off-chain leg has no token; its amount is a record (e.g. satoshi)."""

    token: str
    amount: int
    on_chain: bool = True


@dataclass(frozen=True)
class Party:
    wallet: str
    roles: Role
    bps: int = 0


@dataclass(frozen=True)
class Tranche:
    base_amount: int
    quote_amount: int
    unlock_time: int
    deadline: int


@dataclass(frozen=True)
class Terms:
    """Everything fixed at a deal's creation.

    `parties[0..3]` are buyer, seller, platform (desk) and resolver, in that order; further parties
    hold receiver, marker, approver, signer or introducer roles. Use `Terms.build` to assemble terms
    from named roles.
    """

    base: Leg
    quote: Leg
    parties: tuple[Party, ...]
    tranches: tuple[Tranche, ...]
    funding_deadline: int
    final_expiry: int
    approval_threshold: int = 0
    release_threshold: int = 0
    desk_fee_bps: int = 0
    fee_leg: LegId = LegId.QUOTE
    resolver_fee_bps: int = 0
    approval_window: int = 0
    dispute_timeout: int = 86_400
    dispute_default: DisputeDefault = DisputeDefault.REFUND
    policy_id: int = 0
    """KYCRegistry compliance policy both principals must hold in the deal's scope (0: none)."""

    # ----------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        *,
        base: Leg,
        quote: Leg,
        buyer: str,
        seller: str,
        platform: str,
        resolver: str,
        tranches: list[Tranche] | tuple[Tranche, ...],
        funding_deadline: int,
        final_expiry: int,
        base_receiver: str | None = None,
        quote_receiver: str | None = None,
        markers: list[str] | None = None,
        approvers: list[str] | None = None,
        approval_threshold: int | None = None,
        signers: list[str] | None = None,
        release_threshold: int | None = None,
        desk_fee_bps: int = 0,
        introducers: list[tuple[str, int]] | None = None,
        fee_leg: LegId | None = None,
        resolver_fee_bps: int = 0,
        approval_window: int = 0,
        dispute_timeout: int = 86_400,
        dispute_default: DisputeDefault = DisputeDefault.REFUND,
        policy_id: int = 0,
    ) -> Terms:
        """Assemble terms from named roles; wallets holding several roles become one party."""
        roles: dict[str, Role] = {}
        bps: dict[str, int] = {}
        order: list[str] = []

        def add(wallet: str, role: Role, commission: int = 0) -> None:
            key = _checksum(wallet, str(role.name).lower())
            if key not in roles:
                roles[key] = Role(0)
                order.append(key)
            roles[key] |= role
            if commission:
                bps[key] = bps.get(key, 0) + commission

        add(buyer, Role.BUYER)
        add(seller, Role.SELLER)
        add(platform, Role.PLATFORM)
        add(resolver, Role.RESOLVER)
        add(base_receiver or buyer, Role.BASE_RECEIVER)
        add(quote_receiver or seller, Role.QUOTE_RECEIVER)
        for m in markers or []:
            add(m, Role.MARKER)
        for a in approvers or []:
            add(a, Role.APPROVER)
        for s in signers or []:
            add(s, Role.SIGNER)
        for wallet, commission in introducers or []:
            add(wallet, Role.INTRODUCER, commission)
        parties = tuple(Party(w, roles[w], bps.get(w, 0)) for w in order)
        if fee_leg is None:
            fee_leg = LegId.QUOTE if quote.on_chain else LegId.BASE
        n_approvers = len(set(approvers or []))
        n_signers = len(set(signers or []))
        return cls(
            base=base,
            quote=quote,
            parties=parties,
            tranches=tuple(tranches),
            funding_deadline=funding_deadline,
            final_expiry=final_expiry,
            approval_threshold=n_approvers if approval_threshold is None else approval_threshold,
            release_threshold=n_signers if release_threshold is None else release_threshold,
            desk_fee_bps=desk_fee_bps,
            fee_leg=fee_leg,
            resolver_fee_bps=resolver_fee_bps,
            approval_window=approval_window,
            dispute_timeout=dispute_timeout,
            dispute_default=dispute_default,
            policy_id=policy_id,
        )

    # ---------------------------------------------------------------- accessors
    @property
    def mode(self) -> Mode:
        return Mode.DVP if self.base.on_chain and self.quote.on_chain else Mode.ESCROWED

    def _wallet_at(self, index: int) -> str:
        return self.parties[index].wallet

    @property
    def buyer(self) -> str:
        return self._wallet_at(0)

    @property
    def seller(self) -> str:
        return self._wallet_at(1)

    @property
    def platform(self) -> str:
        return self._wallet_at(2)

    @property
    def resolver(self) -> str:
        return self._wallet_at(3)

    def holders(self, role: Role) -> list[str]:
        return [p.wallet for p in self.parties if p.roles & role]

    @property
    def base_receiver(self) -> str:
        return self.holders(Role.BASE_RECEIVER)[0]

    @property
    def quote_receiver(self) -> str:
        return self.holders(Role.QUOTE_RECEIVER)[0]

    @property
    def introducers(self) -> list[tuple[str, int]]:
        return [(p.wallet, p.bps) for p in self.parties if p.roles & Role.INTRODUCER]

    def roles_of(self, wallet: str) -> Role:
        for p in self.parties:
            if p.wallet.lower() == wallet.lower():
                return p.roles
        return Role(0)

    def commissions(self, amount: int) -> dict[str, int]:
        """The exact split of a fee-leg payout: each fee floor(amount * bps / 10000), remainder to
        the receiver (the contract's rule)."""
        cuts: dict[str, int] = {}
        if self.desk_fee_bps:
            cuts[self.platform] = amount * self.desk_fee_bps // BPS
        for wallet, bps in self.introducers:
            cuts[wallet] = cuts.get(wallet, 0) + amount * bps // BPS
        return cuts

    # --------------------------------------------------------------- validation
    def validate(self, now: int | None = None) -> Terms:
        """Raise TermsError naming the first broken rule (the factory enforces the same rules)."""
        _require(self.base.on_chain or self.quote.on_chain, "one leg must be on chain")
        for name, leg in (("base", self.base), ("quote", self.quote)):
            _require(0 < leg.amount <= MAX_AMOUNT, f"{name} leg amount out of range (1 .. 2**96-1)")
            if leg.on_chain:
                _require(leg.token != ZERO_ADDRESS, f"{name} leg on chain needs a token")
            else:
                _require(leg.token == ZERO_ADDRESS, f"{name} leg is off chain: it has no token")
        dvp = self.mode == Mode.DVP
        if dvp:
            _require(self.base.token.lower() != self.quote.token.lower(), "legs use the same token")
        n = len(self.parties)
        _require(4 <= n <= MAX_PARTIES, f"need 4 to {MAX_PARTIES} parties (buyer, seller, platform, resolver ...)")
        _require(bool(self.parties[0].roles & Role.BUYER), "parties[0] must be the buyer")
        _require(bool(self.parties[1].roles & Role.SELLER), "parties[1] must be the seller")
        _require(bool(self.parties[2].roles & Role.PLATFORM), "parties[2] must be the platform")
        _require(self.parties[3].roles == Role.RESOLVER, "the resolver holds no other role (never a payee)")
        paid_side = Role(0)
        if not dvp:
            paid_side = Role.SELLER | Role.QUOTE_RECEIVER if self.quote.on_chain else Role.BUYER | Role.BASE_RECEIVER
        seen: set[str] = set()
        counts = dict.fromkeys(("marker", "approver", "signer", "introducer", "base", "quote"), 0)
        fee_bps = self.desk_fee_bps
        for i, p in enumerate(self.parties):
            _require(p.wallet != ZERO_ADDRESS, f"party {i} has the zero address")
            _require(0 < int(p.roles) and int(p.roles) & ~ROLE_ALL == 0, f"party {i} has bad roles")
            _require(p.wallet.lower() not in seen, f"wallet {p.wallet} appears twice")
            seen.add(p.wallet.lower())
            for idx, role in ((0, Role.BUYER), (1, Role.SELLER), (2, Role.PLATFORM), (3, Role.RESOLVER)):
                if i != idx:
                    _require(not p.roles & role, f"only parties[{idx}] is the {role.name.lower()}")
            if p.roles & Role.INTRODUCER:
                _require(p.roles == Role.INTRODUCER, "an introducer holds no other role")
                _require(p.bps > 0, "introducer without commission")
                fee_bps += p.bps
                counts["introducer"] += 1
            else:
                _require(p.bps == 0, "only introducers carry bps")
            if p.roles & (Role.APPROVER | Role.SIGNER):
                _require(
                    not p.roles & paid_side,
                    "the side paid by the escrowed leg cannot approve or sign its own release",
                )
            for key, role in (
                ("marker", Role.MARKER),
                ("approver", Role.APPROVER),
                ("signer", Role.SIGNER),
                ("base", Role.BASE_RECEIVER),
                ("quote", Role.QUOTE_RECEIVER),
            ):
                if p.roles & role:
                    counts[key] += 1
        _require(counts["base"] == 1, "exactly one base receiver")
        _require(counts["quote"] == 1, "exactly one quote receiver")
        _require(counts["introducer"] <= MAX_INTRODUCERS, f"at most {MAX_INTRODUCERS} introducers")
        _require(counts["marker"] <= MAX_MARKERS, f"at most {MAX_MARKERS} markers")
        _require(fee_bps <= MAX_TOTAL_FEE_BPS, f"desk fee + introducers above {MAX_TOTAL_FEE_BPS} bps")
        _require(self.resolver_fee_bps <= MAX_RESOLVER_FEE_BPS, f"resolver fee above {MAX_RESOLVER_FEE_BPS} bps")
        for name, thr, holders in (
            ("approval", self.approval_threshold, counts["approver"]),
            ("release", self.release_threshold, counts["signer"]),
        ):
            if holders == 0:
                _require(thr == 0, f"{name} threshold without holders")
            else:
                _require(1 <= thr <= holders, f"{name} threshold must be 1..{holders}")
        if dvp:
            _require(counts["marker"] == 0, "no markers in DVP")
        else:
            _require(counts["marker"] > 0, "escrowed deal needs a marker")
            _require(self.approval_threshold > 0, "escrowed deal needs approvers")
        fee_on_chain = self.base.on_chain if self.fee_leg == LegId.BASE else self.quote.on_chain
        _require(fee_on_chain, "fee leg must be on chain")
        _require(self.dispute_default in (0, 1), "bad dispute default")
        _require(0 < self.dispute_timeout <= MAX_TIME, "bad dispute timeout")
        _require(0 <= self.approval_window <= MAX_TIME, "bad approval window")
        if now is not None:
            _require(self.funding_deadline > now, "funding deadline passed")
        _require(self.final_expiry <= MAX_TIME, "final expiry out of range")
        _require(0 <= self.policy_id <= MAX_POLICY_ID, "policy id out of range")
        _require(1 <= len(self.tranches) <= MAX_TRANCHES, f"need 1 to {MAX_TRANCHES} tranches")
        last = self.funding_deadline
        for k, tr in enumerate(self.tranches):
            _require(tr.deadline >= self.funding_deadline, f"tranche {k}: deadline before funding deadline")
            _require(tr.unlock_time <= tr.deadline, f"tranche {k}: unlocks after its deadline")
            moves = (tr.base_amount if self.base.on_chain else 0) + (tr.quote_amount if self.quote.on_chain else 0)
            _require(moves > 0, f"tranche {k}: moves nothing")
            _require(tr.base_amount >= 0 and tr.quote_amount >= 0, f"tranche {k}: negative amount")
            last = max(last, tr.deadline)
        _require(
            sum(t.base_amount for t in self.tranches) == self.base.amount,
            "base tranches must sum to the base leg",
        )
        _require(
            sum(t.quote_amount for t in self.tranches) == self.quote.amount,
            "quote tranches must sum to the quote leg",
        )
        _require(
            self.final_expiry > last + self.approval_window + self.dispute_timeout,
            "final expiry too early (must be after last deadline + approval window + dispute timeout)",
        )
        return self

    # ----------------------------------------------------------------- encoding
    def as_struct(self) -> tuple:
        """The `Terms` tuple the contracts take (field order of IDealEscrow.Terms)."""
        return (
            self.base.token,
            self.base.amount,
            self.base.on_chain,
            self.quote.token,
            self.quote.amount,
            self.quote.on_chain,
            [(p.wallet, int(p.roles), p.bps) for p in self.parties],
            self.approval_threshold,
            self.release_threshold,
            self.desk_fee_bps,
            int(self.fee_leg),
            self.resolver_fee_bps,
            self.funding_deadline,
            self.approval_window,
            self.dispute_timeout,
            int(self.dispute_default),
            self.final_expiry,
            [(t.base_amount, t.quote_amount, t.unlock_time, t.deadline) for t in self.tranches],
            self.policy_id,
        )

    def pack(self) -> bytes:
        """The packed words a deal carries in its code (identical to EscrowFactory.pack)."""
        # configuration rides in the spare bits (192-255) of the four fixed parties' words
        extra = [
            self.funding_deadline | (self.final_expiry << 32),
            self.approval_window | (self.dispute_timeout << 32),
            self.desk_fee_bps | (self.resolver_fee_bps << 16) | (self.policy_id << 32),
            len(self.parties)
            | (len(self.tranches) << 8)
            | (self.approval_threshold << 16)
            | (self.release_threshold << 24)
            | (int(self.base.on_chain) << 32)
            | (int(self.quote.on_chain) << 33)
            | (int(self.fee_leg) << 34)
            | (int(self.dispute_default) << 35)
            | (int(self.policy_id != 0) << 36),
        ]
        words = [
            int(self.base.token, 16) | (self.base.amount << 160),
            int(self.quote.token, 16) | (self.quote.amount << 160),
        ]
        words += [
            int(p.wallet, 16) | (int(p.roles) << 160) | (p.bps << 176) | ((extra[i] if i < 4 else 0) << 192)
            for i, p in enumerate(self.parties)
        ]
        words += [
            t.base_amount | (t.quote_amount << 96) | (t.unlock_time << 192) | (t.deadline << 224) for t in self.tranches
        ]
        return b"".join(w.to_bytes(32, "big") for w in words)

    def terms_hash(self) -> bytes:
        return keccak(self.pack())

    def with_changes(self, **changes: object) -> Terms:
        return replace(self, **changes)

    @classmethod
    def from_struct(cls, s: object) -> Terms:
        """Rebuild terms from the contract's `terms()` view (a struct or tuple)."""
        v = list(s) if not hasattr(s, "base_token") else [getattr(s, f) for f in _STRUCT_FIELDS]
        parties = tuple(Party(_checksum(p[0]), Role(int(p[1])), int(p[2])) for p in v[6])
        tranches = tuple(Tranche(*(int(x) for x in t)) for t in v[17])
        return cls(
            base=Leg(_checksum(v[0]), int(v[1]), bool(v[2])),
            quote=Leg(_checksum(v[3]), int(v[4]), bool(v[5])),
            parties=parties,
            approval_threshold=int(v[7]),
            release_threshold=int(v[8]),
            desk_fee_bps=int(v[9]),
            fee_leg=LegId(int(v[10])),
            resolver_fee_bps=int(v[11]),
            funding_deadline=int(v[12]),
            approval_window=int(v[13]),
            dispute_timeout=int(v[14]),
            dispute_default=DisputeDefault(int(v[15])),
            final_expiry=int(v[16]),
            tranches=tranches,
            policy_id=int(v[18]) if len(v) > 18 else 0,
        )


_STRUCT_FIELDS = (
    "base_token",
    "base_amount",
    "base_on_chain",
    "quote_token",
    "quote_amount",
    "quote_on_chain",
    "parties",
    "approval_threshold",
    "release_threshold",
    "desk_fee_bps",
    "fee_leg",
    "resolver_fee_bps",
    "funding_deadline",
    "approval_window",
    "dispute_timeout",
    "dispute_default",
    "final_expiry",
    "tranches",
    "policy_id",
)


def split_evenly(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` integers summing exactly to it (the last takes the remainder)."""
    if parts <= 0:
        raise TermsError("need at least one tranche")
    each = total // parts
    return [each] * (parts - 1) + [total - each * (parts - 1)]


def even_tranches(
    base_total: int, quote_total: int, count: int, first_unlock: int, interval: int, delivery_window: int
) -> list[Tranche]:
    """`count` tranches of equal size, unlocking every `interval` seconds from `first_unlock`, each
    with `delivery_window` seconds after its unlock as deadline."""
    bases = split_evenly(base_total, count)
    quotes = split_evenly(quote_total, count)
    return [
        Tranche(b, q, first_unlock + i * interval, first_unlock + i * interval + delivery_window)
        for i, (b, q) in enumerate(zip(bases, quotes, strict=True))
    ]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise TermsError(message)


def _checksum(address: str, what: str = "address") -> str:
    try:
        return to_checksum_address(address)
    except (ValueError, TypeError) as exc:
        raise TermsError(f"{what}: not an address: {address!r}") from exc


__all__ = [
    "role_names",
    "BPS",
    "DisputeDefault",
    "Leg",
    "LegId",
    "Mode",
    "Party",
    "Phase",
    "Role",
    "Terms",
    "TermsError",
    "Tranche",
    "TrancheStatus",
    "ZERO_ADDRESS",
    "even_tranches",
    "split_evenly",
]
