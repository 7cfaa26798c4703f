"""The agreement document: what both sides of a signed offer agree to that the chain cannot hold.

An escrow holds tokens; it cannot hold "10 BTC to bc1q… with one confirmation" or "EUR by SEPA to
IBAN …". Those terms are written in the terms file's `agreement:` mapping; the document also names
every off-chain leg's asset and decimals (the chain stores only its units). The offer's EIP-712
`agreement` field is keccak256 of the document's canonical JSON, so the maker's signature, the
taker's acceptance and the factory's `OfferAccepted(offer_hash)` event all bind it, while only its
hash is public: the document itself travels with the offer file or invite link, and an auditor or
resolver checks it against the offer hash the deal was made from.

Canonical form: UTF-8 JSON with sorted keys and no whitespace. Values are text, integers,
booleans, lists and mappings with text keys (a YAML decimal number becomes text in plain decimal form:
1.50 stays "1.50", 1.0e+3 becomes "1000"; quote it to keep it exactly as written).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eth_utils import keccak

VERSION = 1
ZERO32 = b"\x00" * 32
MAX_BYTES = 8_192
"""Largest canonical document (it travels in invite links)."""
MAX_DEPTH = 6


class AgreementError(ValueError):
    """An agreement document that cannot be signed (a value of an unsupported type, too large)."""


def _plain(value: Any, path: str, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise AgreementError(f"{path}: nested more than {MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise AgreementError(f"{path}: keys are non-empty text, not {key!r}")
            out[key] = _plain(item, f"{path}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise AgreementError(f"{path}: {type(value).__name__} values cannot be signed (use text)")


def canonical(document: Mapping[str, Any], path: str = "agreement") -> str:
    """The canonical JSON text of `document` (what is hashed); errors name the field under `path`."""
    text = json.dumps(_plain(document, path), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 for it, so no hash either
        raise AgreementError(f"{path}: not valid text (character {exc.object[exc.start]!r} has no UTF-8 form)") from exc
    if size > MAX_BYTES:
        raise AgreementError(f"{path}: the document is {size:,} bytes, more than {MAX_BYTES:,}")
    return text


def check_shape(document: Mapping[str, Any]) -> None:
    """The document's shape as `build` makes it: `version` 1, `off_chain` legs (base/quote) each with an
    `asset` text and `decimals` 0..36, `terms` a mapping; nothing else. A signed document of another shape
    (made by other tools) is refused rather than shown wrongly."""
    unknown = sorted(set(document) - {"version", "off_chain", "terms"})
    if unknown:
        raise AgreementError(f"unknown field(s) {', '.join(map(repr, unknown))}")
    if document.get("version") != VERSION or isinstance(document.get("version"), bool):
        raise AgreementError(f"version {document.get('version')!r}, not {VERSION}")
    legs = document.get("off_chain", {})
    if not isinstance(legs, dict) or set(legs) - {"base", "quote"}:
        raise AgreementError("off_chain must map base/quote to an asset and decimals")
    for leg, entry in legs.items():
        if not isinstance(entry, dict) or set(entry) != {"asset", "decimals"}:
            raise AgreementError(f"off_chain.{leg} must have exactly an asset and decimals")
        decimals = entry["decimals"]
        if not isinstance(entry["asset"], str) or not entry["asset"]:
            raise AgreementError(f"off_chain.{leg}.asset must be a name")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
            raise AgreementError(f"off_chain.{leg}.decimals must be 0..36, not {decimals!r}")
    if not isinstance(document.get("terms", {}), dict):
        raise AgreementError("terms must be a mapping")


def agreement_hash(text: str) -> bytes:
    """The offer's `agreement` field for the canonical text `text` (zero for no document)."""
    return keccak(text.encode()) if text else ZERO32


def build(off_chain: Mapping[str, tuple[str, int]], terms: Mapping[str, Any] | None) -> str:
    """The canonical document of a terms file: its off-chain legs (`{"base": ("BTC", 8)}`) and its
    `agreement:` mapping. Empty text (no document, zero hash) when there is neither."""
    if not off_chain and not terms:
        return ""
    document: dict[str, Any] = {"version": VERSION}
    if off_chain:
        document["off_chain"] = {leg: {"asset": a, "decimals": d} for leg, (a, d) in sorted(off_chain.items())}
    if terms:
        document["terms"] = _plain(terms, "agreement")  # errors name the terms file's own fields
    return canonical(document)


def parse(text: str) -> dict[str, Any]:
    """The document of canonical text `text` (empty mapping for none)."""
    return json.loads(text) if text else {}


def off_chain_leg(text: str, leg: str) -> tuple[str, int] | None:
    """The asset label and decimals the document gives the off-chain leg `leg` ("base"/"quote")."""
    entry = parse(text).get("off_chain", {}).get(leg)
    if not isinstance(entry, dict):
        return None
    asset, decimals = entry.get("asset"), entry.get("decimals")
    if not isinstance(asset, str) or isinstance(decimals, bool) or not isinstance(decimals, int):
        return None
    return asset, decimals


def rows(text: str) -> list[tuple[str, str]]:
    """The document as (dotted key, value) rows, for display: off-chain legs first, then the terms."""
    document = parse(text)
    out: list[tuple[str, str]] = []
    for leg, entry in document.get("off_chain", {}).items():
        out.append((f"{leg} leg (off chain)", f"{entry.get('asset')} ({entry.get('decimals')} decimals)"))

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)
        else:
            out.append((prefix, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))

    if document.get("terms"):
        walk("", document["terms"])
    return out


def from_json(value: Any) -> str:
    """The canonical text of a document read from an offer file or link (`None`: no document)."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise AgreementError("the agreement is not a mapping")
    check_shape(value)
    return canonical(value)


__all__ = [
    "AgreementError",
    "agreement_hash",
    "build",
    "canonical",
    "check_shape",
    "from_json",
    "off_chain_leg",
    "parse",
    "rows",
]
