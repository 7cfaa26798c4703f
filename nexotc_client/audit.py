"""Post-trade audit trail: a deal's bundle (events, attestations, selective disclosures) and its check.

    deal = resolve_deal("0x…")                      # the deal, its factory and code checked on chain
    bundle = export_bundle(deal, disclosures=[Disclosure.load("buyer.disclosure.json")])
    save_bundle(bundle, "audit.json")
    report = check_bundle(load_bundle("audit.json"))  # report.problems == [] when everything matches

The bundle (JSON, `format: nexotc-audit/1`) holds:
  - the deal: address, factory, chain id, terms hash, compliance policy id, the kyc registry it gates on;
  - the snapshot: `exported_at_block` (and its timestamp `exported_at`), the block the bundle was read at;
  - every event of the deal up to the snapshot (its creation by the factory included) with tx hash, block,
    log index and block timestamp, oldest first;
  - per principal (buyer, seller): its latest attestation in the deal's scope at the snapshot (Attested
    event: policy, expiry, nullifier, audit commitment, root, tx) or null;
  - per principal, optionally, a selective disclosure: the audited fields it chose to open (value + salt)
    and the hashes of the others, which together must reproduce the on-chain audit commitment;
  - for a deal made from a signed offer, optionally, that offer (`offer`: terms, signatures and its
    agreement document: the off-chain leg's asset and delivery, settlement instructions), which must hash
    to the `offer_hash` of the factory's `OfferAccepted` event for the deal.

The chain is the authority, and the bundle's claims about which contracts are authoritative are checked,
never trusted. `check_bundle` needs only the bundle and a connection: the deal's factory is the one the
deal names on chain, accepted only if it runs this project's EscrowFactory code, its implementation runs
DealEscrow's code and it created the deal (a registered clone, with its DealCreated event); the kyc
registry is the one the deal's code gates on (`kyc_registry()`), and the policy and scope are the deal's.
It names each mismatch: a contract the bundle names that is not the deal's; an event changed, duplicated,
out of order, missing from the bundle, after its snapshot or not on chain; an attestation field that
differs from the chain's; a disclosure that does not open the chain's attestation (commitment, nullifier)
or names another subject or scope; an offer that did not make the deal (its hash, agreement included,
differs from the one the factory recorded). Events after the snapshot are reported (`later_events`), not failed:
a bundle is a snapshot.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import is_hex_address, to_checksum_address

from nexotc_client.chain.deployment import describe_json, load_json
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, reverts_as_errors
from nexotc_client.issuer import FORMAT as DISCLOSURE_FORMAT
from nexotc_client.issuer import Disclosure

if TYPE_CHECKING:
    from nexotc_client.chain.deal import Deal, DealEvent
    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.kyc import Attestation, KYCRegistry
    from nexotc_client.offers import SignedOffer

FORMAT = "nexotc-audit/1"
PRINCIPALS = ("buyer", "seller")
ZERO_ADDRESS = "0x" + "00" * 20
EVENT_FIELDS = ("name", "address", "block", "timestamp", "args")


# ------------------------------------------------------------ chain checks
def resolve_deal(address: str, factory: str | None = None, start_block: int = 0) -> Deal:
    """The deal at `address` as the chain defines it. Its factory is `factory`, or (None) the one the deal
    names; either way accepted only if the factory and its implementation run nexotc's code and the factory
    created the deal. `start_block` bounds the factory's event scans (0: from genesis)."""
    from ape import chain

    from nexotc_client.chain.contracts import deal_container, instance
    from nexotc_client.chain.deal import Deal
    from nexotc_client.chain.factory import Factory

    if not isinstance(address, str) or not is_valid_address(address):
        raise NexotcError(f"not an address: {address!r}")
    address = to_checksum_address(address)
    if factory is None:
        with reverts_as_errors("reading the deal"):
            code = chain.provider.get_code(address)
        if not code:
            raise NexotcError(f"no contract at {address}: no deal there on this network")
        try:
            factory = str(instance(address, deal_container()).factory())
        except Exception as exc:  # any contract may sit there: a revert or garbage means "not a deal"
            raise NexotcError(f"{address} is not a nexotc deal") from exc
    return Deal.at(address, Factory.checked(factory, start_block))


def registry_address(deal: Deal) -> str | None:
    """The KYCRegistry the deal's code gates on (None: none)."""
    with reverts_as_errors("kyc_registry()"):
        address = to_checksum_address(str(deal.contract.kyc_registry()))
    return None if address == ZERO_ADDRESS else address


def _registry_of(deal: Deal, hint: KYCRegistry | None = None) -> KYCRegistry | None:
    """The deal's registry; `hint` (a registry the caller knows) only lends its start block, and must be it."""
    from nexotc_client.chain.kyc import KYCRegistry

    address = registry_address(deal)
    if hint is not None and hint.address != address:
        raise NexotcError(f"deal {deal.address} gates on the kyc registry {address or 'none'}, not {hint.address}")
    if address is None:
        return None
    return KYCRegistry.at(address, hint.start_block if hint is not None else 0)


# ------------------------------------------------------------------ reading
def _event_dict(ev: DealEvent) -> dict[str, Any]:
    return json.loads(json.dumps(ev.to_dict(), default=str))


def _principals(deal: Deal) -> dict[str, str]:
    parties = deal.terms.parties
    return {"buyer": parties[0].wallet, "seller": parties[1].wallet}


def _attestations(deal: Deal, registry: KYCRegistry | None, stop: int) -> dict[str, Attestation | None]:
    """Each principal's latest attestation in the deal's scope at block `stop`."""
    from nexotc_client.chain.kyc import scope_of_deal

    out: dict[str, Attestation | None] = dict.fromkeys(PRINCIPALS)
    if registry is None:
        return out
    in_scope = [a for a in registry.attestations(scope=scope_of_deal(deal.contract)) if a.block <= stop]
    for role, wallet in _principals(deal).items():
        mine = [a for a in in_scope if a.subject == to_checksum_address(wallet)]
        out[role] = mine[-1] if mine else None
    return out


def export_bundle(
    deal: Deal,
    registry: KYCRegistry | None = None,
    disclosures: list[Disclosure] | tuple[Disclosure, ...] = (),
    offer: SignedOffer | None = None,
) -> dict[str, Any]:
    """The audit bundle of `deal` as read from the chain at its head, with the principals' disclosures and
    the signed offer that made it (`offer`: refused unless it is that offer). The kyc registry is the one
    the deal gates on; `registry`, if given, must be that one."""
    from ape import chain

    from nexotc_client.chain.kyc import scope_of_deal

    head = chain.blocks.head
    stop = int(head.number)  # type: ignore[arg-type]
    registry = _registry_of(deal, registry)
    principals = _principals(deal)
    attestations = _attestations(deal, registry, stop)
    by_subject = {to_checksum_address(w): r for r, w in principals.items()}
    scope = scope_of_deal(deal.contract)
    disclosed: dict[str, Any] = dict.fromkeys(PRINCIPALS)
    for d in disclosures:
        role = by_subject.get(to_checksum_address(d.subject))
        if role is None:
            raise NexotcError(f"the disclosure of {d.subject} is not of a principal of deal {deal.address}")
        if d.scope != scope:
            raise NexotcError(f"the disclosure of {d.subject} is for another scope than deal {deal.address}")
        att = attestations[role]
        if att is None or att.audit_commitment != d.audit_commitment or att.nullifier != d.nullifier:
            raise NexotcError(f"the disclosure of the {role} does not match its on-chain attestation")
        if not d.verify():
            raise NexotcError(f"the disclosure of the {role} does not open its audit commitment")
        disclosed[role] = d.to_json()
    if offer is not None:
        problem = _offer_problem(deal, offer)
        if problem:
            raise NexotcError(problem)
    return {
        "format": FORMAT,
        "chain_id": int(chain.chain_id),
        "deal": deal.address,
        "factory": deal.factory.address,
        "terms_hash": "0x" + deal.terms_hash().hex(),
        "policy_id": deal.terms.policy_id,
        "kyc_registry": registry.address if registry is not None else None,
        "principals": principals,
        "exported_at_block": stop,
        "exported_at": int(head.timestamp),
        "events": [_event_dict(e) for e in deal.events() if e.block <= stop],
        "attestations": {r: (a.to_dict() if a else None) for r, a in attestations.items()},
        "disclosures": disclosed,
        "offer": offer.to_json() if offer is not None else None,
    }


def _offer_problem(deal: Deal, offer: SignedOffer) -> str | None:
    """Why `offer` is not the signed offer that made `deal` (None: it is)."""
    recorded = deal.factory.accepted_offer_hash(deal.address)
    if recorded is None:
        return f"offer: deal {deal.address} was not made from a signed offer"
    given = "0x" + offer.offer.offer_hash().hex()
    if given != recorded:
        return f"offer: {given} (agreement included) is not the offer that made the deal ({recorded})"
    return None


def save_bundle(bundle: dict[str, Any], path: Path | str, force: bool = False) -> Path:
    """Write `bundle` to `path`; an existing file is refused unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise NexotcError(f"{path} exists: pass --force to overwrite it")
    if path.is_dir():
        raise NexotcError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle, indent=2) + "\n")
    return path


def load_bundle(path: Path | str) -> dict[str, Any]:
    try:
        data = load_json(Path(path).read_text())
    except FileNotFoundError:
        raise NexotcError(f"no such bundle {path}") from None
    except (OSError, ValueError) as exc:
        raise NexotcError(f"cannot read the bundle {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NexotcError(f"{path} is not an audit bundle ({FORMAT})")
    return data


def disclosed_fields(bundle: dict[str, Any]) -> dict[str, dict[str, int]]:
    """role => {field: value} of what each principal disclosed (what an auditor sees)."""
    out: dict[str, dict[str, int]] = {}
    disclosures = bundle.get("disclosures")
    for role, d in disclosures.items() if isinstance(disclosures, dict) else ():
        try:
            if d:
                out[str(role)] = {str(f): int(o["value"]) for f, o in d["opening"]["opened"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a malformed disclosure: check_bundle names it
    return out


# -------------------------------------------------------------------- shape
BUNDLE_FIELDS = (
    "format",
    "chain_id",
    "deal",
    "factory",
    "terms_hash",
    "policy_id",
    "kyc_registry",
    "principals",
    "exported_at_block",
    "exported_at",
    "events",
    "attestations",
    "disclosures",
    "offer",
)
OPTIONAL_FIELDS = ("offer",)  # bundles exported before offers were carried have none
EVENT_KEYS = ("name", "args", "address", "tx_hash", "block", "log_index", "timestamp")
ATTESTATION_KEYS = {
    "subject": "address",
    "scope": "decimal",
    "policy_id": "uint",
    "nullifier": "decimal",
    "audit_commitment": "decimal",
    "expiry": "uint",
    "root": "decimal",
    "tx_hash": "hash",
    "block": "uint",
    "timestamp": "uint",
    "log_index": "uint",
}
DISCLOSURE_KEYS = {
    "format": "text",
    "kind": "text",
    "subject": "address",
    "scope": "decimal",
    "audit_commitment": "decimal",
    "nullifier": "decimal",
    "opening": "opening",
}
_EXPECTED = {
    "uint": "a non-negative integer",
    "decimal": "a non-negative integer written as a decimal string",
    "address": "an address (0x and 40 hex digits)",
    "hash": "a 32-byte hash (0x and 64 hex digits)",
    "text": "a string",
}


class _Shape:
    """The bundle's structure and JSON types checked strictly against what `export_bundle` writes (a boolean is
    not an integer, 1.0 is not 1, "5" is not 5): each problem names its field. `bad` holds the paths whose
    content is not to be compared with the chain (already named here)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.bad: set[str] = set()

    def fail(self, path: str, message: str) -> bool:
        self.problems.append(f"{path}: {message}")
        self.bad.add(path)
        return False

    def value(self, path: str, value: Any, kind: str) -> bool:
        if kind == "uint":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif kind == "decimal":
            ok = isinstance(value, str) and value.isascii() and value.isdigit()
        elif kind == "address":
            if isinstance(value, str) and is_hex_address(value) and not is_valid_address(value):
                return self.fail(path, f"bad checksum in the address {value} (a mixed-case address must be EIP-55)")
            ok = is_valid_address(value)
        elif kind == "hash":
            ok = isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{64}", value) is not None
        elif kind == "text":
            ok = isinstance(value, str)
        else:  # pragma: no cover - a typo in the tables above
            raise AssertionError(kind)
        return ok or self.fail(path, f"expected {_EXPECTED[kind]}, got {describe_json(value)}")

    def keys(self, path: str, value: Any, what: str, expected: tuple[str, ...], optional: tuple[str, ...] = ()) -> bool:
        """`value` is an object with exactly the `expected` keys (`optional` ones may be absent)."""
        if not isinstance(value, dict):
            return self.fail(path or "bundle", f"expected {what}, got {describe_json(value)}")
        ok = True
        for key in value:
            if key not in expected:
                ok = self.fail(f"{path}.{key}" if path else str(key), "unknown field")
        for key in expected:
            if key not in value and key not in optional:
                ok = self.fail(f"{path}.{key}" if path else key, "missing")
        if not ok:
            self.bad.add(path)
        return ok

    def record(self, path: str, value: Any, what: str, fields: dict[str, str]) -> bool:
        if not self.keys(path, value, what, tuple(fields)):
            return False
        ok = True
        for key, kind in fields.items():
            if kind == "opening":
                ok = self.opening(f"{path}.{key}", value[key]) and ok
            else:
                ok = self.value(f"{path}.{key}", value[key], kind) and ok
        if not ok:
            self.bad.add(path)
        return ok

    def opening(self, path: str, value: Any) -> bool:
        if not self.keys(path, value, "an object (opened, hidden)", ("opened", "hidden")):
            return False
        ok = True
        opened, hidden = value["opened"], value["hidden"]
        if not isinstance(opened, dict):
            ok = self.fail(
                f"{path}.opened", f"expected an object (field => value and salt), got {describe_json(opened)}"
            )
        else:
            for name, item in opened.items():
                where = f"{path}.opened.{name}"
                if self.keys(where, item, "an object (value, salt)", ("value", "salt")):
                    ok = self.value(f"{where}.value", item["value"], "decimal") and ok
                    ok = self.value(f"{where}.salt", item["salt"], "decimal") and ok
                else:
                    ok = False
        if not isinstance(hidden, dict):
            ok = self.fail(f"{path}.hidden", f"expected an object (field => hash), got {describe_json(hidden)}")
        else:
            for name, item in hidden.items():
                ok = self.value(f"{path}.hidden.{name}", item, "decimal") and ok
        if not ok:
            self.bad.add(path)
        return ok

    def by_role(self, path: str, value: Any, what: str, fields: dict[str, str]) -> None:
        """An object with an entry per principal (buyer, seller): null or a record of `fields`."""
        if not isinstance(value, dict):
            self.fail(path, f"expected an object (buyer, seller => {what} or null), got {describe_json(value)}")
            return
        for role in value:
            if role not in PRINCIPALS:
                self.fail(f"{path}.{role}", f"unknown role (a bundle holds only the buyer's and the seller's {what})")
        for role in PRINCIPALS:
            if role not in value:
                self.fail(f"{path}.{role}", "missing (null when there is none)")
            elif value[role] is not None:
                self.record(
                    f"{path}.{role}",
                    value[role],
                    f"{'an' if what[0] in 'aeiou' else 'a'} {what} (an object) or null",
                    fields,
                )


def bundle_shape(bundle: Any) -> tuple[list[str], set[str]]:
    """The bundle's structural problems (each a sentence naming the field) and the paths they make unusable."""
    shape = _Shape()
    if not shape.keys("", bundle, "an audit bundle (a JSON object)", BUNDLE_FIELDS, OPTIONAL_FIELDS):
        if not isinstance(bundle, dict):
            return shape.problems, shape.bad | set(BUNDLE_FIELDS)
    if bundle.get("format", FORMAT) != FORMAT:
        shape.fail("format", f"expected {json.dumps(FORMAT)}, got {describe_json(bundle.get('format'))}")
    for name, kind in (
        ("chain_id", "uint"),
        ("deal", "address"),
        ("factory", "address"),
        ("terms_hash", "hash"),
        ("policy_id", "uint"),
        ("exported_at_block", "uint"),
        ("exported_at", "uint"),
    ):
        if name in bundle:
            shape.value(name, bundle[name], kind)
    if bundle.get("kyc_registry") is not None:
        shape.value("kyc_registry", bundle["kyc_registry"], "address")
    if "principals" in bundle:
        principals = bundle["principals"]
        if shape.keys("principals", principals, "an object (buyer, seller => address)", PRINCIPALS):
            for role in PRINCIPALS:
                if not shape.value(f"principals.{role}", principals[role], "address"):
                    shape.bad.add("principals")
    if "events" in bundle:
        events = bundle["events"]
        if not isinstance(events, list):
            shape.fail("events", f"expected a list of events, got {describe_json(events)}")
        else:
            for i, ev in enumerate(events):
                path = f"events[{i}]"
                if not shape.keys(path, ev, "an event (an object)", EVENT_KEYS):
                    continue
                ok = shape.value(f"{path}.name", ev["name"], "text")
                if not isinstance(ev["args"], dict):
                    ok = shape.fail(f"{path}.args", f"expected an object, got {describe_json(ev['args'])}")
                ok = shape.value(f"{path}.address", ev["address"], "address") and ok
                ok = shape.value(f"{path}.tx_hash", ev["tx_hash"], "hash") and ok
                for name in ("block", "log_index", "timestamp"):
                    ok = shape.value(f"{path}.{name}", ev[name], "uint") and ok
                if not ok:
                    shape.bad.add(path)
    if "attestations" in bundle:
        shape.by_role("attestations", bundle["attestations"], "attestation", ATTESTATION_KEYS)
    if "disclosures" in bundle:
        shape.by_role("disclosures", bundle["disclosures"], "disclosure", DISCLOSURE_KEYS)
        for role in PRINCIPALS:
            d = bundle["disclosures"].get(role) if isinstance(bundle["disclosures"], dict) else None
            if isinstance(d, dict) and f"disclosures.{role}" not in shape.bad:
                if d["format"] != DISCLOSURE_FORMAT or d["kind"] != "disclosure":
                    shape.fail(
                        f"disclosures.{role}",
                        f"not a disclosure (format {json.dumps(d['format'])}, kind {json.dumps(d['kind'])})",
                    )
    offer = bundle.get("offer")
    if offer is not None and not isinstance(offer, dict):
        shape.fail("offer", f"expected a signed offer (an object) or null, got {describe_json(offer)}")
    return shape.problems, shape.bad


def same(a: Any, b: Any) -> bool:
    """JSON equality that keeps types apart (Python's == holds False == 0 and 1.0 == 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ----------------------------------------------------------------- verifying
@dataclass
class Verification:
    """What `check_bundle` found: the contracts as the chain defines them, the snapshot, the mismatches."""

    deal: str | None
    head_block: int
    snapshot_block: int | None = None
    factory: str | None = None
    """The deal's factory, checked on chain (None: the deal could not be resolved)."""
    kyc_registry: str | None = None
    """The registry the deal's code asks, read from the deal (it gates the deal only when `policy_id` is not 0)."""
    policy_id: int | None = None
    """The deal's compliance policy (0: not gated; None: the deal could not be resolved)."""
    later_events: int = 0
    """Events of the deal on chain after the snapshot block (not in the bundle, not a mismatch)."""
    offer: str | None = None
    """The signed offer that made the deal: "checked" (in the bundle and it matches), "absent" (the deal was
    made from an offer the bundle does not carry: its agreement cannot be shown), "mismatch", or None (the
    deal was created directly)."""
    offer_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal": self.deal,
            "factory": self.factory,
            "kyc_registry": self.kyc_registry,
            "policy_id": self.policy_id,
            "gated": None if self.policy_id is None else self.policy_id != 0,
            "snapshot_block": self.snapshot_block,
            "head_block": self.head_block,
            "later_events": self.later_events,
            "offer": self.offer,
            "offer_hash": self.offer_hash,
            "ok": self.ok,
            "mismatches": list(self.problems),
        }


def _block_number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _as_address(value: Any) -> Any:
    return to_checksum_address(value) if isinstance(value, str) and is_valid_address(value) else value


def check_bundle(
    bundle: dict[str, Any], factory: Factory | None = None, registry: KYCRegistry | None = None
) -> Verification:
    """Check `bundle` against the chain. `factory` / `registry`: contracts the caller trusts (optional):
    the deal must be theirs; without them the chain alone decides (see the module's docstring). The bundle's
    shape is checked first, strictly (`bundle_shape`): a field of the wrong structure or JSON type is a
    mismatch named as such, and is not compared further."""
    from ape import chain

    from nexotc_client.chain.contracts import container, runs_code
    from nexotc_client.chain.kyc import KYCRegistry, scope_of_deal

    head = int(chain.blocks.head.number)  # type: ignore[arg-type]
    shape_problems, bad = bundle_shape(bundle)
    if not isinstance(bundle, dict):
        return Verification(deal=None, head_block=head, problems=shape_problems)
    v = Verification(deal=bundle.get("deal") if "deal" not in bad else None, head_block=head)
    problems = v.problems
    problems.extend(shape_problems)
    if bad & {"chain_id", "deal", "exported_at_block"}:
        return v  # nothing to anchor the rest on: named above
    if not same(bundle["chain_id"], int(chain.chain_id)):
        problems.append(f"chain id: bundle {bundle['chain_id']}, connected {int(chain.chain_id)}")
        return v
    stop = bundle["exported_at_block"]
    if stop > head:
        problems.append(f"snapshot block: bundle {stop}, beyond the chain head {head}")
        return v
    v.snapshot_block = stop
    stamp = int(chain.provider.get_block(stop).timestamp)
    if "exported_at" not in bad and not same(bundle["exported_at"], stamp):
        problems.append(f"snapshot time: bundle {bundle['exported_at']}, block {stop} has {stamp}")

    # the deal and its factory: as the chain defines them, whatever the bundle says
    try:
        deal = resolve_deal(bundle["deal"])
    except NexotcError as exc:
        problems.append(f"deal: {exc}")
        return v
    v.deal, v.factory = deal.address, deal.factory.address
    v.policy_id = deal.terms.policy_id
    if factory is not None and factory.address == deal.factory.address:
        deal.factory.start_block = factory.start_block  # a known deployment block bounds the event scans
    start = deal.factory.start_block
    if "factory" not in bad and _as_address(bundle["factory"]) != deal.factory.address:
        problems.append(f"factory: bundle {bundle['factory']}, the deal's factory {deal.factory.address}")
    if factory is not None and factory.address != deal.factory.address:
        problems.append(f"factory: expected {factory.address}, the deal's factory {deal.factory.address}")
    if not any(r.deal == deal.address for r in deal.factory.deals(from_block=start)):
        problems.append(f"deal: factory {deal.factory.address} has no DealCreated event for {deal.address}")
    terms_hash = "0x" + deal.terms_hash().hex()
    if "terms_hash" not in bad and bundle["terms_hash"] != terms_hash:
        problems.append(f"terms hash: bundle {bundle['terms_hash']}, chain {terms_hash}")
    if "policy_id" not in bad and not same(bundle["policy_id"], deal.terms.policy_id):
        problems.append(f"policy id: bundle {bundle['policy_id']}, chain {deal.terms.policy_id}")
    principals = _principals(deal)
    if "principals" not in bad:
        claimed_principals = {r: _as_address(w) for r, w in bundle["principals"].items()}
        if claimed_principals != {r: _as_address(w) for r, w in principals.items()}:
            problems.append(f"principals: bundle {bundle['principals']}, chain {principals}")

    # the kyc registry: the one the deal's code gates on
    gate = registry_address(deal)
    v.kyc_registry = gate
    if "kyc_registry" not in bad and _as_address(bundle["kyc_registry"]) != gate:
        problems.append(f"kyc registry: bundle {bundle['kyc_registry']}, deal gates on {gate or 'none'}")
    if registry is not None and registry.address != gate:
        problems.append(f"kyc registry: expected {registry.address}, deal gates on {gate or 'none'}")
    chain_registry: KYCRegistry | None = None
    if gate is not None:
        try:
            chain_registry = KYCRegistry.at(gate, registry.start_block if registry and registry.address == gate else 0)
        except NexotcError as exc:
            problems.append(f"kyc registry: {exc}")
        else:
            if not runs_code(gate, container("KYCRegistry")):
                problems.append(f"kyc registry: {gate} does not run nexotc's KYCRegistry code")

    if "events" not in bad:
        _check_events(bundle, deal, stop, v, bad)

    # attestations: each principal's latest in the deal's scope at the snapshot, from the deal's registry
    chain_atts = _attestations(deal, chain_registry, stop)
    if "attestations" not in bad:
        for role in PRINCIPALS:
            if f"attestations.{role}" in bad:
                continue
            claimed = bundle["attestations"][role]
            actual = chain_atts[role]
            actual_d = actual.to_dict() if actual else None
            if not same(claimed, actual_d):
                problems.append(f"attestation of the {role}: {_differences(claimed, actual_d)}")

    # disclosures: open the chain's attestation of the principal, for the deal's scope
    scope = scope_of_deal(deal.contract)
    for role in PRINCIPALS if "disclosures" not in bad else ():
        raw = bundle["disclosures"][role]
        if raw is None or f"disclosures.{role}" in bad:
            continue
        try:
            d = Disclosure.from_json(raw)
        except (NexotcError, AttributeError, TypeError, ValueError) as exc:  # the shape was checked: not expected
            problems.append(f"disclosure of the {role}: {exc}")
            continue
        if d.subject != to_checksum_address(principals[role]):
            problems.append(f"disclosure of the {role}: subject {d.subject} is not the {role} {principals[role]}")
        if d.scope != scope:
            problems.append(f"disclosure of the {role}: scope {d.scope} is not the deal's {scope}")
        att = chain_atts[role]
        if att is None:
            problems.append(f"disclosure of the {role}: the {role} has no attestation in the deal's scope on chain")
        else:
            for name, disclosed, attested in (
                ("audit commitment", d.audit_commitment, att.audit_commitment),
                ("nullifier", d.nullifier, att.nullifier),
            ):
                if disclosed != attested:
                    problems.append(
                        f"disclosure of the {role}: {name} differs (disclosure {disclosed}, attestation on chain "
                        f"{attested})"
                    )
        if not d.verify():
            problems.append(f"disclosure of the {role}: the opened fields do not reproduce the audit commitment")

    if "offer" not in bad:
        _check_offer(bundle, deal, v)
    else:
        v.offer_hash = deal.factory.accepted_offer_hash(deal.address)
        v.offer = "mismatch"
    return v


def _check_offer(bundle: dict[str, Any], deal: Deal, v: Verification) -> None:
    """The signed offer, agreement document included: the one whose hash the factory recorded for the deal,
    signed for the deal's chain and factory by its maker (EOA signature, or EIP-1271 asked to the maker now)."""
    from nexotc_client.chain.offers import verify_maker_signature
    from nexotc_client.offers import OfferError, SignedOffer

    v.offer_hash = deal.factory.accepted_offer_hash(deal.address)
    raw = bundle.get("offer")
    if raw is None:
        v.offer = "absent" if v.offer_hash is not None else None
        return
    problems_before = len(v.problems)
    try:
        signed = SignedOffer.from_json(raw) if isinstance(raw, dict) else None
    except OfferError as exc:
        v.problems.append(f"offer: {exc}")
        signed = None
    else:
        if signed is None:
            v.problems.append("offer: not an offer")
    if signed is not None:
        problem = _offer_problem(deal, signed)
        if problem:
            v.problems.append(problem)
        if (signed.chain_id, signed.factory) != (bundle.get("chain_id"), deal.factory.address):
            v.problems.append(
                f"offer: signed for chain {signed.chain_id} and factory {signed.factory}, not the deal's "
                f"(chain {bundle.get('chain_id')}, factory {deal.factory.address})"
            )
        else:
            try:
                verify_maker_signature(signed)
            except NexotcError as exc:
                v.problems.append(f"offer: {exc}")
    v.offer = "checked" if len(v.problems) == problems_before else "mismatch"


def _check_events(
    bundle: dict[str, Any], deal: Deal, stop: int, v: Verification, bad: set[str] | frozenset[str] = frozenset()
) -> None:
    """The bundle's events against the chain's up to the snapshot: each one on chain, unchanged, once, in
    chain order; none missing. Chain events after the snapshot are counted in `v.later_events`."""
    problems = v.problems
    on_chain = [_event_dict(e) for e in deal.events()]
    position = {(e["tx_hash"], e["log_index"]): i for i, e in enumerate(on_chain)}
    events = bundle.get("events")
    if not isinstance(events, list):
        problems.append("events: not a list")
        events = []
    seen: dict[tuple[str, Any], int] = {}
    previous: tuple[int, int] | None = None  # (bundle index, chain position) of the last event in order
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            if f"events[{i}]" not in bad:
                problems.append(f"event {i}: not an event")
            continue
        index = ev.get("log_index")
        key = (str(ev.get("tx_hash")), index if isinstance(index, int) else repr(index))  # hashable, whatever it is
        if f"events[{i}]" in bad:  # named by the shape check; still the event it stands for, if it is one
            seen.setdefault(key, i)
            continue
        label = f"event {i} ({ev.get('name')} in tx {ev.get('tx_hash')}, log index {ev.get('log_index')})"
        if key in seen:
            problems.append(f"{label}: duplicate of event {seen[key]}")
            continue
        seen[key] = i
        pos = position.get(key)
        if pos is None:
            problems.append(f"{label}: not on chain")
            continue
        actual = on_chain[pos]
        label = f"event {i} ({actual['name']} in tx {actual['tx_hash']})"
        if actual["block"] > stop:
            problems.append(f"{label}: in block {actual['block']}, after the bundle's snapshot block {stop}")
        for fld in EVENT_FIELDS:
            claimed = ev.get(fld)
            if same(claimed, actual[fld]):
                continue
            if isinstance(claimed, dict) and isinstance(actual[fld], dict):  # the args: name each one that differs
                for name in [*actual[fld], *(k for k in claimed if k not in actual[fld])]:
                    if name not in claimed:
                        problems.append(f"{label}: {fld}.{name} missing (chain {actual[fld][name]!r})")
                    elif name not in actual[fld]:
                        problems.append(f"{label}: {fld}.{name} is not in the chain's event (bundle {claimed[name]!r})")
                    elif not same(claimed[name], actual[fld][name]):
                        problems.append(
                            f"{label}: {fld}.{name} differs (bundle {_typed(claimed[name])}, chain "
                            f"{_typed(actual[fld][name])})"
                        )
            else:
                problems.append(f"{label}: {fld} differs (bundle {_typed(claimed)}, chain {_typed(actual[fld])})")
        if previous is not None and pos < previous[1]:
            problems.append(
                f"{label}: out of order (older on chain than event {previous[0]}, listed before it; "
                "events go oldest first)"
            )
        else:
            previous = (i, pos)
    for key, pos in position.items():
        actual = on_chain[pos]
        if key in seen:
            continue
        if actual["block"] <= stop:
            problems.append(f"event {actual['name']} in tx {actual['tx_hash']} (block {actual['block']}): missing")
        else:
            v.later_events += 1


def verify_bundle(
    bundle: dict[str, Any], factory: Factory | None = None, registry: KYCRegistry | None = None
) -> list[str]:
    """Every mismatch between `bundle` and the chain (empty: the bundle is accurate and complete as of its
    snapshot block). See `check_bundle`."""
    return check_bundle(bundle, factory, registry).problems


def _differences(claimed: Any, actual: dict[str, Any] | None) -> str:
    """The fields in which a bundle's attestation differs from the chain's, each with both values."""
    if actual is None:
        return f"bundle {_short(claimed)}, chain none"
    if not isinstance(claimed, dict):
        return f"bundle {_short(claimed)}, chain {_short(actual)}"
    names = list(actual) + [k for k in claimed if k not in actual]
    return "; ".join(
        f"{k} differs (bundle {_typed(claimed.get(k))}, chain {_typed(actual.get(k))})"
        for k in names
        if not same(claimed.get(k), actual.get(k))
    )


def _typed(value: Any) -> str:
    """A value in a mismatch: its repr, with its JSON type when that is what differs (False vs 0, 1.0 vs 1)."""
    if isinstance(value, bool) or isinstance(value, float):
        return describe_json(value)
    return repr(value)


def _short(value: Any) -> str:
    if value is None:
        return "none"
    if not isinstance(value, dict):
        return repr(value)
    return f"tx {value.get('tx_hash')} commitment {value.get('audit_commitment')} expiry {value.get('expiry')}"


__all__ = [
    "FORMAT",
    "Verification",
    "bundle_shape",
    "check_bundle",
    "disclosed_fields",
    "export_bundle",
    "load_bundle",
    "registry_address",
    "resolve_deal",
    "same",
    "save_bundle",
    "verify_bundle",
]
