"""KYC/KYB credentials, compliance policies, wallet binding and the selective-disclosure audit commitment.

Field conventions (all BN254 scalar field elements) follow the circuit (circuits/compliance.circom):

    leaf        = Poseidon([secret_commitment, entity_type, jurisdiction, kyc_level, accredited,
                            issued_at, expires_at, schema_id]),  secret_commitment = Poseidon([secret])
    policy      = min_kyc_level | require_accredited << 8 | entity_mask << 9 | deny_i << (11 + 10 i)
                  (the policy word: an exact packing the registry computes on chain from the parameters)
    nullifier   = Poseidon([secret, scope])
    binding     = wallet | now << 160 | valid_until << 196
    audit       = Poseidon([Poseidon([f, salt_f]) for f in AUDIT_FIELDS])

AUDIT_FIELDS are all seven credential fields. Each has its own salt, so any subset can be opened: an opening
reveals (value, salt) for the chosen fields and only the field hash of the others (`open_fields`,
`verify_opening`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nexotc_client.zk.merkle import MerklePath
from nexotc_client.zk.poseidon import P, poseidon

ENTITY_INDIVIDUAL = 1  # KYC
ENTITY_BUSINESS = 2  # KYB
MASK_INDIVIDUALS = 1
MASK_BUSINESSES = 2
TIME_LIMIT = 1 << 36  # timestamps (seconds) below 2^36: until the year 4147
TIME_SHIFT = 36
DENY_SLOTS = 8
CREDENTIAL_FIELDS = ("entity_type", "jurisdiction", "kyc_level", "accredited", "issued_at", "expires_at", "schema_id")
AUDIT_FIELDS = CREDENTIAL_FIELDS


def random_field() -> int:
    """A uniformly random nonzero scalar field element (secrets, salts)."""
    return secrets.randbelow(P - 1) + 1


def secret_commitment(secret: int) -> int:
    return poseidon([secret])


@dataclass(frozen=True)
class Credential:
    """A credential as the issuer signs it into its tree; `secret` is known to the holder only."""

    secret_commitment: int
    entity_type: int
    jurisdiction: int
    kyc_level: int
    accredited: int
    issued_at: int
    expires_at: int
    schema_id: int = 1
    secret: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.entity_type not in (ENTITY_INDIVIDUAL, ENTITY_BUSINESS):
            raise ValueError("entity_type must be 1 (individual) or 2 (business)")
        if not 0 < self.jurisdiction < 1000:
            raise ValueError("jurisdiction must be an ISO 3166-1 numeric code (1..999)")
        if not 0 <= self.kyc_level < 256:
            raise ValueError("kyc_level must be 0..255")
        if self.accredited not in (0, 1):
            raise ValueError("accredited must be 0 or 1")
        if not 0 <= self.issued_at < self.expires_at < TIME_LIMIT:
            raise ValueError("need 0 <= issued_at < expires_at < 2^36")
        if not 0 <= self.schema_id < P or not 0 <= self.secret_commitment < P:
            raise ValueError("schema_id and secret_commitment must be field elements")
        if self.secret is not None and secret_commitment(self.secret) != self.secret_commitment:
            raise ValueError("secret does not match secret_commitment")

    @classmethod
    def for_holder(cls, secret: int, **fields: int) -> Credential:
        return cls(secret_commitment=secret_commitment(secret), secret=secret, **fields)

    def leaf(self) -> int:
        return poseidon([self.secret_commitment, *(getattr(self, f) for f in CREDENTIAL_FIELDS)])

    def fields(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in CREDENTIAL_FIELDS}

    def nullifier(self, scope: int) -> int:
        if self.secret is None:
            raise ValueError("the nullifier needs the holder's secret")
        return poseidon([self.secret, scope])

    def to_json(self, include_secret: bool = True) -> dict[str, str]:
        d = {k: str(v) for k, v in asdict(self).items() if v is not None}
        if not include_secret:
            d.pop("secret", None)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Credential:
        kw = {k: int(d[k]) for k in ("secret_commitment", *CREDENTIAL_FIELDS)}
        return cls(**kw, secret=int(d["secret"]) if d.get("secret") is not None else None)


@dataclass(frozen=True)
class Policy:
    """A compliance policy: minimum KYC level, accreditation, allowed entity types, denied jurisdictions."""

    min_kyc_level: int = 0
    require_accredited: bool = False
    entity_mask: int = MASK_INDIVIDUALS | MASK_BUSINESSES
    deny: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.min_kyc_level < 256:
            raise ValueError("min_kyc_level must be 0..255")
        if not 1 <= self.entity_mask <= 3:
            raise ValueError("entity_mask must be 1 (individuals), 2 (businesses) or 3 (both)")
        if len(self.deny) > DENY_SLOTS or any(not 0 < j < 1000 for j in self.deny):
            raise ValueError(f"deny lists up to {DENY_SLOTS} ISO 3166-1 numeric codes (1..999)")
        object.__setattr__(self, "deny", tuple(int(j) for j in self.deny))

    def deny_slots(self) -> list[int]:
        return [*self.deny, *([0] * (DENY_SLOTS - len(self.deny)))]

    def word(self) -> int:
        """The policy word the circuit takes as a public signal and KYCRegistry.register_policy computes:
        min_kyc_level | require_accredited << 8 | entity_mask << 9 | deny_i << (11 + 10 i)."""
        w = self.min_kyc_level | int(self.require_accredited) << 8 | self.entity_mask << 9
        for i, j in enumerate(self.deny_slots()):
            w |= j << (11 + 10 * i)
        return w

    @classmethod
    def from_word(cls, word: int) -> Policy:
        """The policy a word encodes (the inverse of `word`; ValueError for a malformed word)."""
        if not 0 <= word < 1 << 91:
            raise ValueError("a policy word has 91 bits")
        deny = tuple(j for i in range(DENY_SLOTS) if (j := (word >> (11 + 10 * i)) & 1023))
        p = cls(word & 255, bool(word >> 8 & 1), word >> 9 & 3, deny)
        if p.word() != word:
            raise ValueError("not a canonical policy word (unused deny slots must come last)")
        return p

    def violations(self, cred: Credential, now: int | None = None) -> list[str]:
        """Why `cred` cannot prove this policy (empty when it can); mirrors the circuit's checks."""
        out = []
        if cred.kyc_level < self.min_kyc_level:
            out.append(f"kyc level {cred.kyc_level} < required {self.min_kyc_level}")
        if self.require_accredited and not cred.accredited:
            out.append("accreditation required")
        if not self.entity_mask & (1 << (cred.entity_type - 1)):
            out.append("entity type not allowed")
        if cred.jurisdiction in self.deny:
            out.append(f"jurisdiction {cred.jurisdiction} denied")
        if now is not None and not cred.issued_at <= now < cred.expires_at:
            out.append("credential not valid at that time (issued later or expired)")
        return out

    def to_json(self) -> dict:
        return {
            "min_kyc_level": self.min_kyc_level,
            "require_accredited": self.require_accredited,
            "entity_mask": self.entity_mask,
            "deny": list(self.deny),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Policy:
        return cls(
            int(d["min_kyc_level"]),
            bool(d["require_accredited"]),
            int(d["entity_mask"]),
            tuple(int(j) for j in d.get("deny", ())),
        )


# --------------------------------------------------------------------------- binding and scopes
def binding(wallet: str | int, now: int, valid_until: int) -> int:
    """wallet | now << 160 | valid_until << 196 (the circuit decomposes it; the contract rebuilds it)."""
    w = int(wallet, 16) if isinstance(wallet, str) else int(wallet)
    if not 0 <= w < 1 << 160:
        raise ValueError("wallet must be a 20-byte address")
    if not 0 <= now < valid_until < TIME_LIMIT:
        raise ValueError("need 0 <= now < valid_until < 2^36")
    return _pack_binding(w, now, valid_until)


def _pack_binding(wallet: int, now: int, valid_until: int) -> int:
    return wallet | now << 160 | valid_until << (160 + TIME_SHIFT)


def unpack_binding(value: int) -> tuple[str, int, int]:
    """(wallet as 0x-hex, now, valid_until)."""
    return f"0x{value & ((1 << 160) - 1):040x}", (value >> 160) & (TIME_LIMIT - 1), value >> (160 + TIME_SHIFT)


def deal_scope(deal_address: str | int) -> int:
    """Scope of a proof for one deal: the deal contract's address as an integer."""
    return int(deal_address, 16) if isinstance(deal_address, str) else int(deal_address)


def desk_scope(desk_id: int) -> int:
    """Scope of a proof for a desk: (1 << 160) | desk_id (never collides with an address)."""
    return (1 << 160) | int(desk_id)


# ----------------------------------------------------------------------------- audit commitment
def new_salts() -> dict[str, int]:
    """Fresh random salts, one per audited field (a new set for every proof keeps proofs unlinkable)."""
    return {f: random_field() for f in AUDIT_FIELDS}


def field_hash(value: int, salt: int) -> int:
    return poseidon([value, salt])


def audit_commitment(cred: Credential, salts: Mapping[str, int]) -> int:
    return poseidon([field_hash(getattr(cred, f), salts[f]) for f in AUDIT_FIELDS])


@dataclass(frozen=True)
class AuditOpening:
    """Selective disclosure: (value, salt) for the opened fields, the field hash for the others."""

    opened: dict[str, tuple[int, int]]
    hidden: dict[str, int]

    def to_json(self) -> dict:
        return {
            "opened": {f: {"value": str(v), "salt": str(s)} for f, (v, s) in self.opened.items()},
            "hidden": {f: str(h) for f, h in self.hidden.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AuditOpening:
        return cls(
            opened={f: (int(o["value"]), int(o["salt"])) for f, o in d.get("opened", {}).items()},
            hidden={f: int(h) for f, h in d.get("hidden", {}).items()},
        )

    @property
    def values(self) -> dict[str, int]:
        return {f: v for f, (v, _) in self.opened.items()}


def open_fields(cred: Credential, salts: Mapping[str, int], fields: Iterable[str]) -> AuditOpening:
    """Open the chosen audited fields (unknown or non-audited names raise ValueError)."""
    chosen = list(dict.fromkeys(fields))
    unknown = [f for f in chosen if f not in AUDIT_FIELDS]
    if unknown:
        raise ValueError(f"not audited fields: {', '.join(unknown)} (audited: {', '.join(AUDIT_FIELDS)})")
    opened = {f: (getattr(cred, f), salts[f]) for f in AUDIT_FIELDS if f in chosen}
    hidden = {f: field_hash(getattr(cred, f), salts[f]) for f in AUDIT_FIELDS if f not in chosen}
    return AuditOpening(opened, hidden)


def verify_opening(commitment: int, opening: AuditOpening) -> bool:
    """True when the opening reproduces the on-chain audit commitment."""
    if set(opening.opened) | set(opening.hidden) != set(AUDIT_FIELDS) or set(opening.opened) & set(opening.hidden):
        return False
    hashes = []
    for f in AUDIT_FIELDS:
        if f in opening.opened:
            v, s = opening.opened[f]
            if not (0 <= v < P and 0 <= s < P):
                return False
            hashes.append(field_hash(v, s))
        else:
            h = opening.hidden[f]
            if not 0 <= h < P:
                return False
            hashes.append(h)
    return poseidon(hashes) == commitment


# ------------------------------------------------------------------------------- circuit inputs
def circuit_inputs(
    cred: Credential,
    path: MerklePath,
    policy: Policy,
    scope: int,
    wallet: str | int,
    now: int,
    valid_until: int,
    salts: Mapping[str, int],
) -> dict[str, Any]:
    """The witness inputs of circuits/compliance.circom (no range checks here: the circuit decides)."""
    if cred.secret is None:
        raise ValueError("proving needs the holder's secret")
    if path.leaf != cred.leaf():
        raise ValueError("the Merkle path is not for this credential")
    w = int(wallet, 16) if isinstance(wallet, str) else int(wallet)
    return {
        "secret": cred.secret,
        **cred.fields(),
        "path_elements": list(path.siblings),
        "path_indices": list(path.indices),
        "audit_salts": [salts[f] for f in AUDIT_FIELDS],
        "root": path.root,
        "policy": policy.word(),
        "scope": scope,
        "binding": _pack_binding(w, now, valid_until),
    }
