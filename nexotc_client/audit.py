"""Post-trade audit trail: a deal's bundle (events, attestations, selective disclosures) and its check.

    bundle = export_bundle(deal, registry, disclosures=[Disclosure.load("buyer.disclosure.json")])
    save_bundle(bundle, "audit.json")
    problems = verify_bundle(load_bundle("audit.json"), factory, registry)   # [] when everything matches

The bundle (JSON, `format: nexotc-audit/1`) holds:
  - the deal: address, factory, chain id, terms hash, compliance policy id, the kyc registry;
  - every event of the deal (its creation by the factory included) with tx hash, block, log index and
    block timestamp, oldest first;
  - per principal (buyer, seller): its latest attestation in the deal's scope (Attested event: policy,
    expiry, nullifier, audit commitment, root, tx) or null;
  - per principal, optionally, a selective disclosure: the audited fields it chose to open (value + salt)
    and the hashes of the others, which together must reproduce the on-chain audit commitment.

`verify_bundle` re-reads everything from the chain (the contract is the authority) and names each
mismatch: an event changed, missing from the bundle or not on chain; an attestation that differs from
the chain's; a disclosure that does not open the attestation's commitment, or names another subject.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from nexotc_client.chain.errors import NexotcError
from nexotc_client.issuer import Disclosure

if TYPE_CHECKING:
    from nexotc_client.chain.deal import Deal, DealEvent
    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.kyc import Attestation, KYCRegistry

FORMAT = "nexotc-audit/1"
PRINCIPALS = ("buyer", "seller")


def _event_dict(ev: DealEvent) -> dict[str, Any]:
    return json.loads(json.dumps(ev.to_dict(), default=str))


def _principals(deal: Deal) -> dict[str, str]:
    parties = deal.terms.parties
    return {"buyer": parties[0].wallet, "seller": parties[1].wallet}


def _attestations(deal: Deal, registry: KYCRegistry | None) -> dict[str, Attestation | None]:
    from nexotc_client.chain.kyc import scope_of_deal

    out: dict[str, Attestation | None] = dict.fromkeys(PRINCIPALS)
    if registry is None:
        return out
    scope = scope_of_deal(deal.contract)
    for role, wallet in _principals(deal).items():
        out[role] = registry.latest_attestation(wallet, scope)
    return out


def export_bundle(
    deal: Deal, registry: KYCRegistry | None = None, disclosures: list[Disclosure] | tuple[Disclosure, ...] = ()
) -> dict[str, Any]:
    """The audit bundle of `deal` as read from the chain now, with the principals' disclosures."""
    from ape import chain

    from nexotc_client.chain.kyc import scope_of_deal

    principals = _principals(deal)
    attestations = _attestations(deal, registry)
    by_subject = {w: r for r, w in principals.items()}
    disclosed: dict[str, Any] = dict.fromkeys(PRINCIPALS)
    for d in disclosures:
        role = by_subject.get(d.subject)
        if role is None:
            raise NexotcError(f"the disclosure of {d.subject} is not of a principal of deal {deal.address}")
        if d.scope != scope_of_deal(deal.contract):
            raise NexotcError(f"the disclosure of {d.subject} is for another scope than deal {deal.address}")
        att = attestations[role]
        if att is None or att.audit_commitment != d.audit_commitment:
            raise NexotcError(f"the disclosure of the {role} does not match its on-chain attestation")
        if not d.verify():
            raise NexotcError(f"the disclosure of the {role} does not open its audit commitment")
        disclosed[role] = d.to_json()
    head = chain.blocks.head
    return {
        "format": FORMAT,
        "chain_id": int(chain.chain_id),
        "deal": deal.address,
        "factory": deal.factory.address,
        "terms_hash": "0x" + deal.terms_hash().hex(),
        "policy_id": deal.terms.policy_id,
        "kyc_registry": registry.address if registry is not None else None,
        "principals": principals,
        "exported_at_block": int(head.number),
        "exported_at": int(head.timestamp),
        "events": [_event_dict(e) for e in deal.events()],
        "attestations": {r: (a.to_dict() if a else None) for r, a in attestations.items()},
        "disclosures": disclosed,
    }


def save_bundle(bundle: dict[str, Any], path: Path | str) -> Path:
    path = Path(path)
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
    for role, d in (bundle.get("disclosures") or {}).items():
        if d:
            out[role] = {f: int(o["value"]) for f, o in d["opening"]["opened"].items()}
    return out


def verify_bundle(bundle: dict[str, Any], factory: Factory, registry: KYCRegistry | None) -> list[str]:
    """Every mismatch between `bundle` and the chain (empty: the bundle is accurate and complete)."""
    from ape import chain

    problems: list[str] = []
    if int(bundle.get("chain_id", -1)) != int(chain.chain_id):
        return [f"chain id: bundle {bundle.get('chain_id')}, connected {int(chain.chain_id)}"]
    try:
        deal = factory.deal(str(bundle["deal"]))
    except (NexotcError, KeyError) as exc:
        return [f"deal: {exc}"]
    if bundle.get("factory") != factory.address:
        problems.append(f"factory: bundle {bundle.get('factory')}, chain {factory.address}")
    terms_hash = "0x" + deal.terms_hash().hex()
    if bundle.get("terms_hash") != terms_hash:
        problems.append(f"terms hash: bundle {bundle.get('terms_hash')}, chain {terms_hash}")
    if bundle.get("policy_id") != deal.terms.policy_id:
        problems.append(f"policy id: bundle {bundle.get('policy_id')}, chain {deal.terms.policy_id}")
    principals = _principals(deal)
    if bundle.get("principals") != principals:
        problems.append(f"principals: bundle {bundle.get('principals')}, chain {principals}")

    # events: the same set, field by field, keyed by (tx hash, log index)
    chain_events = {(e["tx_hash"], e["log_index"]): e for e in (_event_dict(x) for x in deal.events())}
    stop = int(bundle.get("exported_at_block", 0))
    seen: set[tuple[str, int]] = set()
    for i, ev in enumerate(bundle.get("events") or []):
        key = (ev.get("tx_hash"), ev.get("log_index"))
        seen.add(key)  # type: ignore[arg-type]
        actual = chain_events.get(key)  # type: ignore[arg-type]
        if actual is None:
            problems.append(f"event {i} ({ev.get('name')} in tx {ev.get('tx_hash')}): not on chain")
            continue
        for fld in ("name", "address", "block", "timestamp", "args"):
            if ev.get(fld) != actual[fld]:
                problems.append(
                    f"event {i} ({actual['name']} in tx {actual['tx_hash']}): {fld} differs "
                    f"(bundle {ev.get(fld)!r}, chain {actual[fld]!r})"
                )
    for key, actual in chain_events.items():
        if key not in seen and actual["block"] <= stop:
            problems.append(f"event {actual['name']} in tx {actual['tx_hash']} (block {actual['block']}): missing")

    # attestations: the latest on chain up to the export block
    if registry is None and bundle.get("kyc_registry"):
        problems.append("attestations: the bundle names a kyc registry, none given to check against")
    chain_atts = _attestations(deal, registry)
    for role in PRINCIPALS:
        claimed = (bundle.get("attestations") or {}).get(role)
        actual = chain_atts.get(role)
        if actual is not None and actual.block > stop:
            # attested after the export: compare against what was on chain then
            older = [a for a in registry.attestations(actual.subject, actual.scope) if a.block <= stop]  # type: ignore[union-attr]
            actual = older[-1] if older else None
        actual_d = actual.to_dict() if actual else None
        if claimed != actual_d:
            problems.append(f"attestation of the {role}: bundle {_short(claimed)}, chain {_short(actual_d)}")

    # disclosures: open the attestation's audit commitment, for the right subject and scope
    from nexotc_client.chain.kyc import scope_of_deal

    for role, raw in (bundle.get("disclosures") or {}).items():
        if not raw:
            continue
        if role not in PRINCIPALS:
            problems.append(f"disclosure {role!r}: not a principal role")
            continue
        try:
            d = Disclosure.from_json(raw)
        except NexotcError as exc:
            problems.append(f"disclosure of the {role}: {exc}")
            continue
        if d.subject != to_checksum_address(principals[role]):
            problems.append(f"disclosure of the {role}: subject {d.subject} is not the {role} {principals[role]}")
        if d.scope != scope_of_deal(deal.contract):
            problems.append(f"disclosure of the {role}: scope {d.scope} is not the deal's")
        att = (bundle.get("attestations") or {}).get(role)
        if att is None or int(att["audit_commitment"]) != d.audit_commitment:
            problems.append(f"disclosure of the {role}: its audit commitment is not the attestation's")
        if not d.verify():
            problems.append(f"disclosure of the {role}: the opened fields do not reproduce the audit commitment")
    return problems


def _short(value: Any) -> str:
    if value is None:
        return "none"
    return f"tx {value.get('tx_hash')} commitment {value.get('audit_commitment')} expiry {value.get('expiry')}"


__all__ = ["FORMAT", "disclosed_fields", "export_bundle", "load_bundle", "save_bundle", "verify_bundle"]
