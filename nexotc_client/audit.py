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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, reverts_as_errors
from nexotc_client.issuer import Disclosure

if TYPE_CHECKING:
    from ape.contracts import ContractContainer

    from nexotc_client.chain.deal import Deal, DealEvent
    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.kyc import Attestation, KYCRegistry
    from nexotc_client.offers import SignedOffer

FORMAT = "nexotc-audit/1"
PRINCIPALS = ("buyer", "seller")
ZERO_ADDRESS = "0x" + "00" * 20
EVENT_FIELDS = ("name", "address", "block", "timestamp", "args")


# ------------------------------------------------------------ chain checks
def _runs(address: str, kind: ContractContainer) -> bool:
    """Whether `address` runs `kind`'s compiled code (Vyper appends immutables after the runtime code)."""
    from ape import chain
    from hexbytes import HexBytes

    with reverts_as_errors("reading contract code"):
        code = bytes(chain.provider.get_code(address))
    runtime = bytes(HexBytes(kind.contract_type.runtime_bytecode.bytecode))  # type: ignore[union-attr]
    return bool(runtime) and code.startswith(runtime)


def _checked_factory(address: str, start_block: int = 0) -> Factory:
    """The factory at `address`, refused unless it and its deal implementation run nexotc's code."""
    from nexotc_client.chain.contracts import deal_container, factory_container
    from nexotc_client.chain.factory import Factory

    factory = Factory.at(address, start_block)
    if not _runs(factory.address, factory_container()):
        raise NexotcError(f"{factory.address} does not run nexotc's EscrowFactory code")
    implementation = factory.implementation
    if not _runs(implementation, deal_container()):
        raise NexotcError(
            f"the deal implementation {implementation} of factory {factory.address} does not run nexotc's "
            "DealEscrow code"
        )
    return factory


def resolve_deal(address: str, factory: str | None = None, start_block: int = 0) -> Deal:
    """The deal at `address` as the chain defines it. Its factory is `factory`, or (None) the one the deal
    names; either way accepted only if the factory and its implementation run nexotc's code and the factory
    created the deal. `start_block` bounds the factory's event scans (0: from genesis)."""
    from ape import chain

    from nexotc_client.chain.contracts import deal_container, instance
    from nexotc_client.chain.deal import Deal

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
    return Deal.at(address, _checked_factory(factory, start_block))


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
        data = json.loads(Path(path).read_text())
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
    """The registry the deal gates on, read from the deal."""
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
    the deal must be theirs; without them the chain alone decides (see the module's docstring)."""
    from ape import chain

    from nexotc_client.chain.contracts import container
    from nexotc_client.chain.kyc import KYCRegistry, scope_of_deal

    head = int(chain.blocks.head.number)  # type: ignore[arg-type]
    v = Verification(deal=bundle.get("deal"), head_block=head)
    problems = v.problems
    if bundle.get("chain_id") != int(chain.chain_id):
        problems.append(f"chain id: bundle {bundle.get('chain_id')}, connected {int(chain.chain_id)}")
        return v
    stop = _block_number(bundle.get("exported_at_block"))
    if stop is None:
        problems.append(f"snapshot block: {bundle.get('exported_at_block')!r} is not a block number")
        return v
    if stop > head:
        problems.append(f"snapshot block: bundle {stop}, beyond the chain head {head}")
        return v
    v.snapshot_block = stop
    stamp = int(chain.provider.get_block(stop).timestamp)
    if bundle.get("exported_at") != stamp:
        problems.append(f"snapshot time: bundle {bundle.get('exported_at')}, block {stop} has {stamp}")

    # the deal and its factory: as the chain defines them, whatever the bundle says
    try:
        deal = resolve_deal(str(bundle.get("deal")))
    except NexotcError as exc:
        problems.append(f"deal: {exc}")
        return v
    v.deal, v.factory = deal.address, deal.factory.address
    if factory is not None and factory.address == deal.factory.address:
        deal.factory.start_block = factory.start_block  # a known deployment block bounds the event scans
    start = deal.factory.start_block
    if _as_address(bundle.get("factory")) != deal.factory.address:
        problems.append(f"factory: bundle {bundle.get('factory')}, the deal's factory {deal.factory.address}")
    if factory is not None and factory.address != deal.factory.address:
        problems.append(f"factory: expected {factory.address}, the deal's factory {deal.factory.address}")
    if not any(r.deal == deal.address for r in deal.factory.deals(from_block=start)):
        problems.append(f"deal: factory {deal.factory.address} has no DealCreated event for {deal.address}")
    terms_hash = "0x" + deal.terms_hash().hex()
    if bundle.get("terms_hash") != terms_hash:
        problems.append(f"terms hash: bundle {bundle.get('terms_hash')}, chain {terms_hash}")
    if bundle.get("policy_id") != deal.terms.policy_id:
        problems.append(f"policy id: bundle {bundle.get('policy_id')}, chain {deal.terms.policy_id}")
    principals = _principals(deal)
    if bundle.get("principals") != principals:
        problems.append(f"principals: bundle {bundle.get('principals')}, chain {principals}")

    # the kyc registry: the one the deal's code gates on
    gate = registry_address(deal)
    v.kyc_registry = gate
    if _as_address(bundle.get("kyc_registry")) != gate:
        problems.append(f"kyc registry: bundle {bundle.get('kyc_registry')}, deal gates on {gate or 'none'}")
    if registry is not None and registry.address != gate:
        problems.append(f"kyc registry: expected {registry.address}, deal gates on {gate or 'none'}")
    chain_registry: KYCRegistry | None = None
    if gate is not None:
        try:
            chain_registry = KYCRegistry.at(gate, registry.start_block if registry and registry.address == gate else 0)
        except NexotcError as exc:
            problems.append(f"kyc registry: {exc}")
        else:
            if not _runs(gate, container("KYCRegistry")):
                problems.append(f"kyc registry: {gate} does not run nexotc's KYCRegistry code")

    _check_events(bundle, deal, stop, v)

    # attestations: each principal's latest in the deal's scope at the snapshot, from the deal's registry
    chain_atts = _attestations(deal, chain_registry, stop)
    claimed_atts = bundle.get("attestations") if isinstance(bundle.get("attestations"), dict) else {}
    for role in PRINCIPALS:
        claimed = claimed_atts.get(role)  # type: ignore[union-attr]
        actual = chain_atts[role]
        actual_d = actual.to_dict() if actual else None
        if claimed != actual_d:
            problems.append(f"attestation of the {role}: {_differences(claimed, actual_d)}")

    # disclosures: open the chain's attestation of the principal, for the deal's scope
    scope = scope_of_deal(deal.contract)
    raw_disclosures = bundle.get("disclosures")
    for role, raw in raw_disclosures.items() if isinstance(raw_disclosures, dict) else ():
        if not raw:
            continue
        if role not in PRINCIPALS:
            problems.append(f"disclosure {role!r}: not a principal role")
            continue
        try:
            d = Disclosure.from_json(raw)
        except (NexotcError, AttributeError, TypeError) as exc:
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

    _check_offer(bundle, deal, v)
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


def _check_events(bundle: dict[str, Any], deal: Deal, stop: int, v: Verification) -> None:
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
            problems.append(f"event {i}: not an event")
            continue
        index = ev.get("log_index")
        key = (str(ev.get("tx_hash")), index if isinstance(index, int) else repr(index))  # hashable, whatever it is
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
            if ev.get(fld) != actual[fld]:
                problems.append(f"{label}: {fld} differs (bundle {ev.get(fld)!r}, chain {actual[fld]!r})")
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
        f"{k} differs (bundle {claimed.get(k)!r}, chain {actual.get(k)!r})"
        for k in names
        if claimed.get(k) != actual.get(k)
    )


def _short(value: Any) -> str:
    if value is None:
        return "none"
    if not isinstance(value, dict):
        return repr(value)
    return f"tx {value.get('tx_hash')} commitment {value.get('audit_commitment')} expiry {value.get('expiry')}"


__all__ = [
    "FORMAT",
    "Verification",
    "check_bundle",
    "disclosed_fields",
    "export_bundle",
    "load_bundle",
    "registry_address",
    "resolve_deal",
    "save_bundle",
    "verify_bundle",
]
