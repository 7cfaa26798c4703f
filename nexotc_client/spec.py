"""Deal terms files: a YAML format for humans, parsed into `Terms`.

Amounts are written in human units ("200", "13000000.50") and converted exactly (Decimal, no
floats) with the token's on-chain decimals; times are relative ("+1d") or absolute; wallets are
addresses or account aliases. Every error names the field it is about.

Format (every key is optional unless marked *required*)::

    name: WBTC/USDT block trade        # a label, shown by the CLI
    salt: RFQ-2024-001                 # CREATE2 salt: hex (<= 32 bytes) or text (hashed); default random

    tokens:                            # symbol => address, used by the legs' `token`
      WBTC: "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
      USDT: ${USDT}                    # a placeholder (see below)

    base:                              # *required*: the asset the seller sells
      token: WBTC                      # a symbol of `tokens:` or an address
      amount: "200"                    # human units; quote it to keep every digit
    quote:                             # *required*: the asset the buyer pays with
      token: USDT
      amount: "13000000"
    # an off-chain leg (ESCROWED deal) has no token; give its label and decimals:
    #   base: {asset: BTC, on_chain: false, decimals: 8, amount: "10"}
    # `units: 1000000000` instead of `amount:` gives an exact integer in base units.

    parties:                           # *required*: buyer, seller, platform, resolver
      buyer: test:1                    # an address, or an account alias (CLI: ape alias or test:N)
      seller: test:2
      platform: test:0                 # the desk
      resolver: test:4                 # settles disputes; holds no other role
      base_receiver: buyer             # optional (default: buyer); may name a party by role
      quote_receiver: 0x...            # optional (default: seller)

    markers: [seller]                  # ESCROWED: who marks off-chain delivery (default: the side
                                       # delivering the off-chain leg); DVP: none
    release_model: buyer               # buyer | seller | platform: that party approves and signs;
                                       # multisig: `signers` approve and sign, `threshold` of them;
                                       # anyone: no approval (DVP only; the DVP default)
    signers: [platform, test:6]        # multisig (or explicit) release signers
    threshold: 2                       # multisig: approvals and signatures needed
    # explicit instead of release_model:
    #   approvers: [buyer]   approval_threshold: 1   signers: [platform]   release_threshold: 1

    fees:
      desk_bps: 25                     # platform commission, on the fee leg
      fee_leg: quote                   # base | quote (default: quote if on chain, else base)
      resolver_bps: 100                # cap of the resolver's fee in a dispute (<= 500)
      introducers:                     # at most 4; desk + introducers <= 1000 bps
        - {wallet: test:3, bps: 10}

    timers:
      funding_deadline: +1d            # *required*: time
      final_expiry: +30d               # time; default: last deadline + approval window
                                       #   + dispute timeout + 1d
      approval_window: 0               # duration (ESCROWED: after a mark, release unless disputed)
      dispute_timeout: 3d              # duration (default 1d): then the default outcome applies
      dispute_default: refund          # refund | release

    compliance:                        # optional zk compliance gate (see `nexotc kyc`)
      policy: 1                        # KYCRegistry policy id both buyer and seller must prove
                                       # in the deal's scope (default 0: none)

    agreement:                         # optional: what the chain cannot hold, agreed with the terms.
      delivery: BTC to bc1q... (1 confirmation)  # A signed offer binds it by hash (EIP-712 field
      reference: RFQ-2026-001          # `agreement`) together with the off-chain legs' asset and
                                       # decimals; any mapping of text, numbers, lists (see
                                       # nexotc_client/agreement.py)

    tranches:                          # *required*: an even split ...
      count: 4
      first_unlock: +1h                # time (default: now)
      interval: 1d                     # duration between unlocks (default 0)
      delivery_window: 2d              # *required*: duration from unlock to deadline
    # ... or an explicit list (amounts in human units; each leg must sum to its amount):
    #   - {base: "50", quote: "3250000", unlock: +1h, deadline: +2d}

Values:
  time      "+1d", "2h", "90m", "1d12h", "now" (relative to the chain's time), a unix time
            (integer), or an ISO 8601 date/time ("2026-03-01T12:00:00Z"; naive = UTC)
  duration  "3d", "+2h", "90m", "45s", "1w", or an integer number of seconds
  wallet    a 0x address, an alias resolved by the caller's callback, or in every field but
            buyer/seller/platform/resolver themselves, one of those role names
  amount    a decimal number in human units, at most the token's decimals (no rounding)

Placeholders: any string value may contain ${NAME} or ${NAME:-default}; NAME comes from the
caller's variables (CLI: `--set NAME=VALUE`, and on a local chain the mock tokens deployed by
`nexotc deploy --mock-tokens`, e.g. WBTC and USDT). `--set` keys whose first part is a top-level
key of this format set that field instead (`--set base.amount=150`, `--set release_model=platform`; under
the free-form `agreement:` at any depth, creating the mappings on the way: `--set agreement.wire.iban=...`).

YAML anchors and aliases (`&name` / `*name`, `<<: *name`) may repeat a value, but a terms file stays a plain
tree: one that refers to itself, nests more than 64 levels or expands to more than 100,000 values (aliases
counted as if expanded, a "billion laughs") is refused before anything walks it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import yaml
from eth_utils import to_checksum_address

from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.terms import (
    ZERO_ADDRESS,
    DisputeDefault,
    Leg,
    LegId,
    Terms,
    TermsError,
    Tranche,
    even_tranches,
)

DAY = 86_400
DEFAULT_DISPUTE_TIMEOUT = DAY
EXPIRY_MARGIN = DAY

TOP_LEVEL_KEYS = (
    "name",
    "salt",
    "tokens",
    "base",
    "quote",
    "parties",
    "markers",
    "release_model",
    "signers",
    "threshold",
    "approvers",
    "approval_threshold",
    "release_threshold",
    "fees",
    "timers",
    "tranches",
    "compliance",
    "agreement",
)
LEG_KEYS = ("token", "asset", "on_chain", "decimals", "amount", "units")
PARTY_KEYS = ("buyer", "seller", "platform", "resolver", "base_receiver", "quote_receiver")
ROLE_REFS = ("buyer", "seller", "platform", "resolver")
FEE_KEYS = ("desk_bps", "fee_leg", "resolver_bps", "introducers")
TIMER_KEYS = ("funding_deadline", "final_expiry", "approval_window", "dispute_timeout", "dispute_default")
EVEN_TRANCHE_KEYS = ("count", "first_unlock", "interval", "delivery_window")
TRANCHE_KEYS = ("base", "quote", "unlock", "deadline")
RELEASE_MODELS = ("anyone", "buyer", "seller", "platform", "multisig")

_UNITS = {"w": 7 * DAY, "d": DAY, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"^\+?\s*((\d+)\s*([wdhms])\s*)+$")
_DURATION_PART = re.compile(r"(\d+)\s*([wdhms])")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_WIDE = Context(prec=200)
MAX_VALUES = 100_000
"""At most this many values in a terms file, counted as if its YAML aliases were expanded."""
MAX_DEPTH = 64
"""At most this many levels of nesting in a terms file."""
_SELF_REFERENCE = "refers to itself through a YAML alias (&anchor / *alias): it must be a plain tree"

WalletResolver = Callable[[str], str]
DecimalsReader = Callable[[str], int]


class SpecError(TermsError):
    """A terms file is wrong; the message starts with the field it is about."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class LegSpec:
    """How a leg is written for humans: its label (token symbol or asset) and decimals."""

    label: str
    decimals: int
    token: str | None

    def format(self, units: int) -> str:
        return f"{format_units(units, self.decimals)} {self.label}"


@dataclass(frozen=True)
class DealSpec:
    """A parsed terms file: the `Terms` plus what is needed to show them to humans."""

    terms: Terms
    base: LegSpec
    quote: LegSpec
    name: str | None = None
    salt: str | None = None
    warnings: tuple[str, ...] = ()
    """Allowed by the contract but probably not meant (e.g. a DVP tranche that delivers one leg free)."""
    agreement: str = ""
    """The canonical agreement document a signed offer binds (nexotc_client/agreement.py): the
    off-chain legs' asset and decimals and the file's `agreement:` mapping; empty when neither."""


# --------------------------------------------------------------- values
_GROUPED = re.compile(r"^[+-]?(\d{1,3}(?:(?P<sep>[,_])\d{3})(?:(?P=sep)\d{3})*)(\.\d+)?$")


def _ungroup(text: str) -> str | None:
    """`text` without its thousands separators when they are proper groups of three in the whole
    part (one kind: `,` or `_`), else None: "1,5", "2_00" and "13,000.000,5" are ambiguous."""
    if not _GROUPED.match(text):
        return None
    return text.replace(",", "").replace("_", "")


def to_units(amount: Any, decimals: int, field: str = "amount") -> int:
    """Exact integer units of a human amount (Decimal/str/int) with `decimals` decimals."""
    if isinstance(amount, bool) or amount is None:
        raise SpecError(field, f"expected a number, got {amount!r}")
    if isinstance(amount, float):
        raise SpecError(field, f"write the amount as a string to keep it exact: '{amount!r}'")
    text = str(amount).strip()
    if "," in text or "_" in text:
        grouped = _ungroup(text)
        if grouped is None:
            raise SpecError(
                field,
                f"ambiguous number {text!r} (separators only between groups of three digits of the whole "
                "part, e.g. 1,000,000.5 or 1_000_000.5)",
            )
        text = grouped
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise SpecError(field, f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise SpecError(field, f"not a finite number: {amount!r}")
    if value <= 0:
        raise SpecError(field, f"must be positive, got {value:f}")
    with localcontext(_WIDE):
        scaled = value.scaleb(decimals)
        if scaled != scaled.to_integral_value():
            raise SpecError(field, f"{value:f} has more than {decimals} decimals")
        return int(scaled)


def format_units(units: int, decimals: int) -> str:
    """Human amount of integer `units` (exact, trailing zeros trimmed, thousands separators)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals) if decimals else (abs(units), 0)
    text = f"{whole:,}"
    if decimals and frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return sign + text


def fmt_time(ts: int, now: int | None = None) -> str:
    """A UTC time like 2026-03-01 12:00:00Z, with (in 1d) or (2h ago) relative to `now` when given."""
    if not ts:
        return "-"
    text = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if now is None:
        return text
    delta = ts - now
    return f"{text} ({'in ' + fmt_duration(delta) if delta > 0 else fmt_duration(-delta) + ' ago'})"


def fmt_duration(seconds: int) -> str:
    """A duration in its two largest units: 1d2h, 45m, 0s."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


def parse_duration(value: Any, field: str = "duration") -> int:
    """Seconds of a duration: "3d", "+2h", "1d12h", "90m", "45s", "1w" or an integer of seconds."""
    if isinstance(value, bool):
        raise SpecError(field, f"expected a duration like '2h', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise SpecError(field, "a duration cannot be negative")
        return value
    if isinstance(value, Decimal):
        if value != value.to_integral_value() or value < 0:
            raise SpecError(field, f"a duration is a whole number of seconds, got {value}")
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text.lstrip("+").isdigit():
            return int(text.lstrip("+"))
        if _DURATION.match(text):
            return sum(int(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))
    raise SpecError(field, f"not a duration: {value!r} (write e.g. '90m', '2h', '3d', '1d12h')")


def parse_time(value: Any, now: int, field: str = "time") -> int:
    """Unix time of a time value: relative ("+1d", "2h", "now") to `now`, a unix time, or ISO 8601."""
    if isinstance(value, bool) or value is None:
        raise SpecError(field, f"expected a time like '+1d', got {value!r}")
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and value != value.to_integral_value():
            raise SpecError(field, f"a unix time is a whole number, got {value}")
        if int(value) < 1_000_000_000:
            raise SpecError(field, f"{value} is not a unix time; write a relative time as '+{value}s'")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            return now
        if text.isdigit():
            return parse_time(int(text), now, field)
        if text.startswith("+") or _DURATION.match(text.lower()):
            return now + parse_duration(text, field)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parse_time(moment, now, field)
    raise SpecError(field, f"not a time: {value!r} (write '+1d', '2h', a unix time or an ISO date)")


def _bps(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise SpecError(field, f"expected a whole number of bps, got {value!r}")
    try:
        text = str(value).strip()
        if "," in text or "_" in text:
            raise InvalidOperation
        number = Decimal(text)
    except InvalidOperation as exc:
        raise SpecError(field, f"expected a whole number of bps, got {value!r}") from exc
    if number != number.to_integral_value() or number < 0:
        raise SpecError(field, f"expected a whole number of bps, got {value!r}")
    return int(number)


def _count(value: Any, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise SpecError(field, f"expected a whole number, got {value!r}")
    text = str(value).strip()
    if not text.isdigit() or int(text) < minimum:
        raise SpecError(field, f"expected a whole number >= {minimum}, got {value!r}")
    return int(text)


# ----------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """Safe YAML where floats are Decimals (exact) and hex numbers stay strings (addresses), and where a merge
    key (`<<: *alias`) can neither merge a mapping into itself nor blow up (merges of merges, each repeated,
    grow exponentially while the file is read, before `_check_tree` could see the result)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._flattening: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if id(node) in self._flattening:
            raise yaml.constructor.ConstructorError(None, None, f"a merge (<<) {_SELF_REFERENCE}", node.start_mark)
        self._flattening.add(id(node))
        try:
            total = len(node.value)
            for key_node, value_node in node.value:
                if key_node.tag != "tag:yaml.org,2002:merge":
                    continue
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for sub in merged:
                    if isinstance(sub, yaml.MappingNode):  # anything else: PyYAML's own error below
                        self.flatten_mapping(sub)
                        total += len(sub.value)
            if total > MAX_VALUES:
                raise yaml.constructor.ConstructorError(
                    None, None, f"merges (<<) expand this mapping to more than {MAX_VALUES:,} entries", node.start_mark
                )
            super().flatten_mapping(node)  # type: ignore[no-untyped-call]
        finally:
            self._flattening.discard(id(node))


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | str:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if "_" in text:  # YAML 1.1 drops underscores anywhere: keep a badly grouped number as text
        grouped = _ungroup(text)
        if grouped is None:
            return text
        text = grouped
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int | str:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.lower().lstrip("+-").startswith(("0x", "0o", "0b")) or (
        len(text) > 1 and text.startswith("0") and text.isdigit()
    ):
        return text
    if "_" in text and _ungroup(text) is None:  # "2_00": not silently 200
        return text
    return int(yaml.SafeLoader.construct_yaml_int(loader, node))


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A mapping that refuses a key given twice (PyYAML keeps the last one silently)."""
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        line = key_node.start_mark.line + 1
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {first})",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_document(source: str | Path) -> dict[str, Any]:
    """Read a terms file (a path, or YAML text when it contains a newline) into a mapping."""
    where = str(source)
    if isinstance(source, Path) or "\n" not in str(source):
        path = Path(source)
        try:
            text = path.read_text()
        except FileNotFoundError as exc:
            raise SpecError("", f"terms file not found: {path}") from exc
        except OSError as exc:
            raise SpecError("", f"cannot read the terms file {path}: {exc.strerror}") from exc
    else:
        text, where = str(source), "<text>"
    try:
        doc = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("", f"{where}: invalid YAML{at}: {problem}") from exc
    if not isinstance(doc, dict):
        raise SpecError("", f"{where}: a terms file is a YAML mapping (key: value), got {type(doc).__name__}")
    _check_tree(doc)
    return doc


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise yaml.YAMLError(f"nested too deeply (a terms file nests at most {MAX_DEPTH} levels)") from exc


def _check_tree(value: Any, field: str = "") -> None:
    """Refuse, without expanding it, a document that is not a plain tree of reasonable size: YAML aliases
    (`&anchor` / `*alias`) may make it contain itself (every walk of it would recurse forever) or repeat a
    collection so often that it expands to millions of values ("billion laughs"). At most MAX_VALUES values
    (a shared collection counts each time it appears), nested at most MAX_DEPTH levels."""
    if not isinstance(value, dict | list):
        return
    what = f"the value of {field}" if field.startswith("--set ") else "the terms file"
    count = 0
    on_path = [id(value)]
    pending: list[Any] = [iter(_children(value, field))]
    while pending:
        step = next(pending[-1], None)
        if step is None:
            pending.pop()
            on_path.pop()
            continue
        where, child = step
        count += 1
        if count > MAX_VALUES:
            raise SpecError(
                field,
                f"{what} expands to more than {MAX_VALUES:,} values (YAML aliases, *alias, repeat what they "
                "name): refused",
            )
        if not isinstance(child, dict | list):
            continue
        if id(child) in on_path:
            raise SpecError(where, f"{what} {_SELF_REFERENCE}")
        if len(on_path) >= MAX_DEPTH:
            shown = where if len(where) <= 60 else f"{where[:57]}..."
            raise SpecError(shown, f"nested more than {MAX_DEPTH} levels")
        on_path.append(id(child))
        pending.append(iter(_children(child, where)))


def _children(value: dict[Any, Any] | list[Any], field: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        return ((_join(field, str(k)), v) for k, v in value.items())
    return ((f"{field}[{i}]", v) for i, v in enumerate(value))


def check_document(doc: Mapping[str, Any]) -> None:
    """Cheap structural check (top-level keys) that needs no chain: run it before connecting."""
    _check_keys(dict(doc), TOP_LEVEL_KEYS, "")


# the dotted paths `--set` may set: a section's keys, or (None) a whole top-level value
_SET_PATHS: dict[str, tuple[str, ...] | None] = {
    "base": LEG_KEYS,
    "quote": LEG_KEYS,
    "parties": PARTY_KEYS,
    "fees": FEE_KEYS,
    "timers": TIMER_KEYS,
    "tranches": EVEN_TRANCHE_KEYS,
    "compliance": ("policy",),
}


def _settable_paths() -> list[str]:
    out = list(TOP_LEVEL_KEYS)
    for section, keys in _SET_PATHS.items():
        out += [f"{section}.{k}" for k in keys or ()]
    return out


def placeholders(value: Any) -> set[str]:
    """The names of the ${NAME} placeholders used anywhere in `value`."""
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    if isinstance(value, str):
        return {m.group(1) for m in _PLACEHOLDER.finditer(value)}
    return set()


def _check_set_path(key: str, parts: list[str]) -> None:
    """A field `--set` may write: a top-level key, a key of a section, a symbol of `tokens` or a key, at any
    depth, of the free-form `agreement` (`agreement.delivery.address`)."""
    head = parts[0]
    if len(parts) == 1:
        return
    if head == "tokens" and len(parts) == 2 and parts[1]:
        return
    if head == "agreement" and all(parts[1:]):
        return
    keys = _SET_PATHS.get(head)
    if keys is not None and len(parts) == 2 and parts[1] in keys:
        return
    raise SpecError(f"--set {key}", f"not a field of the terms format{_closest(key, _settable_paths())}")


def _closest(key: str, candidates: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def apply_sets(doc: dict[str, Any], sets: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split `--set KEY=VALUE` pairs: a KEY whose first part is a top-level key of the format sets
    that field (dotted path, value parsed as YAML; the mappings a path under `agreement` goes through are
    created); any other KEY fills the placeholder ${KEY} of the file. A KEY that is neither a field of the
    format nor a placeholder used in the file is refused (a typo must not be silently ignored). Returns the
    updated document (a copy) and the variables."""
    import copy

    _check_tree(doc)
    out = copy.deepcopy(doc)
    variables: dict[str, str] = {}
    for key, raw in sets.items():
        parts = key.split(".")
        if parts[0] not in TOP_LEVEL_KEYS:
            variables[key] = raw
            continue
        _check_set_path(key, parts)
        try:
            value = _load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _check_tree(value, f"--set {key}")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise SpecError(".".join(parts[: i + 1]), f"cannot set {key}: not a mapping")
            node = child
        node[parts[-1]] = value
    _check_tree(out)  # each part is checked: here only their total size
    used = placeholders(out)
    for key in variables:
        if key not in used:
            known = sorted(used)
            hint = _closest(key, _settable_paths() + known)
            listed = f"; its placeholders: {', '.join(known)}" if known else "; it has no placeholders"
            raise SpecError(
                f"--set {key}",
                f"neither a field of the terms format nor a placeholder of this file{hint}{listed}",
            )
    return out, variables


def substitute(value: Any, variables: Mapping[str, str], field: str = "") -> Any:
    """Replace ${NAME} / ${NAME:-default} placeholders in every string of `value`."""
    if isinstance(value, dict):
        return {k: substitute(v, variables, _join(field, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables, f"{field}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def fill(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables:
            return str(variables[name])
        if default is not None:
            return default
        raise SpecError(field, f"placeholder ${{{name}}} is not set (pass --set {name}=...)")

    return _PLACEHOLDER.sub(fill, value)


# ---------------------------------------------------------------- parse
def parse_spec(
    source: str | Path | Mapping[str, Any],
    *,
    now: int,
    resolve_wallet: WalletResolver | None = None,
    decimals_of: DecimalsReader | None = None,
    variables: Mapping[str, str] | None = None,
    sets: Mapping[str, str] | None = None,
) -> DealSpec:
    """Parse a terms file (path, YAML text or an already loaded mapping) into validated `Terms`.

    `now` is the chain's time (relative times count from it); `resolve_wallet` turns an alias into
    an address; `decimals_of` reads an on-chain token's decimals; `variables` fill placeholders;
    `sets` are `--set KEY=VALUE` pairs (see `apply_sets`). Raises SpecError naming the field, or
    TermsError (a SpecError on field "terms") for a broken deal rule.
    """
    doc = dict(source) if isinstance(source, Mapping) else load_document(source)
    _check_tree(doc)  # a mapping loaded by the caller too: nothing below walks a recursive one
    extra_vars: dict[str, str] = {}
    if sets:
        doc, extra_vars = apply_sets(doc, sets)
    doc = substitute(doc, {**(variables or {}), **extra_vars})
    return _Parser(doc, now, resolve_wallet, decimals_of).parse()


class _Parser:
    def __init__(
        self,
        doc: dict[str, Any],
        now: int,
        resolve_wallet: WalletResolver | None,
        decimals_of: DecimalsReader | None,
    ) -> None:
        self.doc = doc
        self.now = now
        self.resolve_wallet = resolve_wallet
        self.decimals_of = decimals_of
        self.roles: dict[str, str] = {}
        self.tokens: dict[str, str] = {}

    # -- structure helpers
    def section(self, key: str, keys: tuple[str, ...], required: bool = False) -> dict[str, Any]:
        value = self.doc.get(key)
        if value is None:
            if required:
                raise SpecError(key, "missing (required)")
            return {}
        if not isinstance(value, dict):
            raise SpecError(key, f"expected a mapping, got {_kind(value)}")
        _check_keys(value, keys, key)
        return value

    def wallet(self, value: Any, field: str, role_refs: bool = True) -> str:
        if not isinstance(value, str) or not value.strip():
            raise SpecError(field, f"expected an address or an account alias, got {_kind(value)}")
        text = value.strip()
        if is_valid_address(text):
            address = to_checksum_address(text)
            if address == ZERO_ADDRESS:
                raise SpecError(field, "the zero address is not a wallet")
            return address
        if text.startswith("0x") and len(text) > 2 and all(c in "0123456789abcdefABCDEF" for c in text[2:]):
            raise SpecError(field, f"not a valid address (need 40 hex digits, or a valid checksum): {text}")
        if role_refs and text in self.roles:
            return self.roles[text]
        if self.resolve_wallet is None:
            raise SpecError(field, f"{text!r} is not an address (and no account aliases are available)")
        try:
            resolved = self.resolve_wallet(text)
        except Exception as exc:  # the caller's resolver (ape accounts...) raises its own errors
            raise SpecError(field, f"cannot resolve {text!r}: {_message(exc)}") from exc
        if not is_valid_address(resolved):
            raise SpecError(field, f"{text!r} resolved to {resolved!r}, not an address")
        return to_checksum_address(resolved)

    def wallets(self, value: Any, field: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise SpecError(field, f"expected a list of wallets, got {_kind(value)}")
        out = [self.wallet(v, f"{field}[{i}]") for i, v in enumerate(value)]
        for i, w in enumerate(out):
            if w in out[:i]:
                raise SpecError(f"{field}[{i}]", f"{w} is listed twice")
        return out

    # -- the parts
    def parse(self) -> DealSpec:
        _check_keys(self.doc, TOP_LEVEL_KEYS, "")
        name = self.doc.get("name")
        salt = self.doc.get("salt")
        if salt is not None and not isinstance(salt, str | int):
            raise SpecError("salt", f"expected text or hex, got {_kind(salt)}")
        self.parse_tokens()
        base, base_spec = self.parse_leg("base")
        quote, quote_spec = self.parse_leg("quote")
        parties = self.parse_parties()
        dvp = base.on_chain and quote.on_chain
        markers = self.parse_markers(dvp, base, parties)
        release = self.parse_release(dvp)
        fees = self.parse_fees(base, quote)
        timers = self.section("timers", TIMER_KEYS, required=True)
        if "funding_deadline" not in timers:
            raise SpecError("timers.funding_deadline", "missing (required)")
        funding_deadline = parse_time(timers["funding_deadline"], self.now, "timers.funding_deadline")
        if funding_deadline <= self.now:
            raise SpecError("timers.funding_deadline", f"{_iso(funding_deadline)} is not in the future")
        approval_window = parse_duration(timers.get("approval_window", 0), "timers.approval_window")
        dispute_timeout = parse_duration(
            timers.get("dispute_timeout", DEFAULT_DISPUTE_TIMEOUT), "timers.dispute_timeout"
        )
        if dispute_timeout == 0:
            raise SpecError("timers.dispute_timeout", "must be longer than 0")
        default_text = str(timers.get("dispute_default", "refund")).strip().lower()
        if default_text not in ("refund", "release"):
            raise SpecError("timers.dispute_default", f"expected refund or release, got {default_text!r}")
        tranches = self.parse_tranches(base, quote, base_spec, quote_spec)
        last = max([funding_deadline] + [t.deadline for t in tranches])
        earliest_expiry = last + approval_window + dispute_timeout
        if "final_expiry" in timers:
            final_expiry = parse_time(timers["final_expiry"], self.now, "timers.final_expiry")
            if final_expiry < earliest_expiry:
                raise SpecError(
                    "timers.final_expiry",
                    f"{_iso(final_expiry)} is too early: the last tranche deadline + approval window + "
                    f"dispute timeout is {_iso(earliest_expiry)}",
                )
        else:
            final_expiry = earliest_expiry + EXPIRY_MARGIN
        try:
            terms = Terms.build(
                base=base,
                quote=quote,
                buyer=parties["buyer"],
                seller=parties["seller"],
                platform=parties["platform"],
                resolver=parties["resolver"],
                base_receiver=parties.get("base_receiver"),
                quote_receiver=parties.get("quote_receiver"),
                markers=markers,
                tranches=tranches,
                funding_deadline=funding_deadline,
                final_expiry=final_expiry,
                approval_window=approval_window,
                dispute_timeout=dispute_timeout,
                dispute_default=DisputeDefault[default_text.upper()],
                **release,
                **fees,
                policy_id=self.parse_compliance(),
            )
            terms.validate(now=self.now)
        except SpecError:
            raise
        except TermsError as exc:
            raise SpecError("terms", str(exc)) from exc
        warnings = []
        if dvp:
            for k, tr in enumerate(tranches):
                for leg_name, amount, other, spec in (
                    ("base", tr.base_amount, tr.quote_amount, quote_spec),
                    ("quote", tr.quote_amount, tr.base_amount, base_spec),
                ):
                    if amount == 0:
                        warnings.append(
                            f"tranches[{k}] moves no {leg_name}: its {spec.format(other)} is delivered free "
                            "(no exchange against the other leg in that tranche)"
                        )
        return DealSpec(
            terms=terms,
            base=base_spec,
            quote=quote_spec,
            name=str(name) if name is not None else None,
            salt=str(salt) if salt is not None else None,
            warnings=tuple(warnings),
            agreement=self.parse_agreement(base, quote, base_spec, quote_spec),
        )

    def parse_agreement(self, base: Leg, quote: Leg, base_spec: LegSpec, quote_spec: LegSpec) -> str:
        from nexotc_client.agreement import AgreementError, build

        given = self.doc.get("agreement")
        if given is not None and not isinstance(given, dict):
            raise SpecError("agreement", f"expected a mapping, got {_kind(given)}")
        off_chain = {
            key: (spec.label, spec.decimals)
            for key, leg, spec in (("base", base, base_spec), ("quote", quote, quote_spec))
            if not leg.on_chain
        }
        try:
            return build(off_chain, given)
        except AgreementError as exc:  # its message starts with the field (agreement.KEY...)
            raise SpecError("", str(exc)) from exc

    def parse_tokens(self) -> None:
        tokens = self.doc.get("tokens") or {}
        if not isinstance(tokens, dict):
            raise SpecError("tokens", f"expected a mapping of symbol: address, got {_kind(tokens)}")
        for symbol, address in tokens.items():
            field = f"tokens.{symbol}"
            if not isinstance(address, str) or not is_valid_address(address.strip()):
                raise SpecError(field, f"not an address: {address!r}")
            self.tokens[str(symbol)] = to_checksum_address(address.strip())

    def parse_leg(self, key: str) -> tuple[Leg, LegSpec]:
        leg = self.section(key, LEG_KEYS, required=True)
        on_chain = leg.get("on_chain", True)
        if not isinstance(on_chain, bool):
            raise SpecError(f"{key}.on_chain", f"expected true or false, got {on_chain!r}")
        given_decimals = leg.get("decimals")
        if given_decimals is not None:
            given_decimals = _count(given_decimals, f"{key}.decimals")
            if given_decimals > 36:
                raise SpecError(f"{key}.decimals", f"{given_decimals} decimals is not plausible")
        if on_chain:
            if "token" not in leg:
                raise SpecError(f"{key}.token", "missing (or set on_chain: false for an off-chain leg)")
            token, label = self.token(leg["token"], f"{key}.token")
            decimals = self.token_decimals(token, f"{key}.token", given_decimals, f"{key}.decimals")
        else:
            if leg.get("token") not in (None, ZERO_ADDRESS):
                raise SpecError(f"{key}.token", "an off-chain leg has no token (use `asset:` for its name)")
            if given_decimals is None:
                raise SpecError(f"{key}.decimals", "an off-chain leg needs its decimals (e.g. 8 for BTC)")
            token, decimals = ZERO_ADDRESS, given_decimals
            label = str(leg.get("asset") or "units")
        if "amount" in leg and "units" in leg:
            raise SpecError(f"{key}.units", "give either amount (human units) or units, not both")
        if "units" in leg:
            amount = _count(leg["units"], f"{key}.units", minimum=1)
        elif "amount" in leg:
            amount = to_units(leg["amount"], decimals, f"{key}.amount")
        else:
            raise SpecError(f"{key}.amount", "missing (required)")
        return Leg(token, amount, bool(on_chain)), LegSpec(label, decimals, token if on_chain else None)

    def token(self, value: Any, field: str) -> tuple[str, str]:
        if not isinstance(value, str) or not value.strip():
            raise SpecError(field, f"expected a token symbol or address, got {_kind(value)}")
        text = value.strip()
        if is_valid_address(text):
            address = to_checksum_address(text)
            label = next((s for s, a in self.tokens.items() if a == address), address[:10])
            return address, label
        if text in self.tokens:
            return self.tokens[text], text
        known = ", ".join(sorted(self.tokens)) or "none"
        raise SpecError(field, f"unknown token {text!r}: not an address nor a symbol of `tokens:` ({known})")

    def token_decimals(self, token: str, field: str, given: int | None, decimals_field: str) -> int:
        if self.decimals_of is None:
            if given is None:
                raise SpecError(decimals_field, "unknown: give `decimals:` (no chain to read them from)")
            return given
        try:
            decimals = int(self.decimals_of(token))
        except Exception as exc:  # the caller's reader talks to a chain and raises its own errors
            raise SpecError(field, f"cannot read the decimals of {token}: {_message(exc)}") from exc
        if given is not None and given != decimals:
            raise SpecError(decimals_field, f"{given}, but the token {token} has {decimals} decimals")
        return decimals

    def parse_parties(self) -> dict[str, str]:
        parties = self.section("parties", PARTY_KEYS, required=True)
        out: dict[str, str] = {}
        for role in ROLE_REFS:
            if role not in parties:
                raise SpecError(f"parties.{role}", "missing (required)")
            out[role] = self.wallet(parties[role], f"parties.{role}", role_refs=False)
            self.roles[role] = out[role]
        for role in ("base_receiver", "quote_receiver"):
            if parties.get(role) is not None:
                out[role] = self.wallet(parties[role], f"parties.{role}")
        seen: dict[str, str] = {}
        for role in ROLE_REFS:
            if out[role] in seen:
                raise SpecError(f"parties.{role}", f"same wallet as parties.{seen[out[role]]} ({out[role]})")
            seen[out[role]] = role
        return out

    def parse_markers(self, dvp: bool, base: Leg, parties: dict[str, str]) -> list[str]:
        markers = self.wallets(self.doc.get("markers"), "markers")
        if dvp:
            if markers:
                raise SpecError("markers", "a DVP deal (both legs on chain) has no markers")
            return []
        if not markers and self.doc.get("markers") is not None:
            raise SpecError(
                "markers",
                "an escrowed deal needs a marker: list one, or omit `markers` for the default (the side "
                "delivering the off-chain leg)",
            )
        if not markers:
            # the side delivering the off-chain leg states its delivery
            markers = [parties["seller"] if not base.on_chain else parties["buyer"]]
        return markers

    def parse_release(self, dvp: bool) -> dict[str, Any]:
        doc = self.doc
        model = doc.get("release_model")
        explicit = [k for k in ("approvers", "approval_threshold", "release_threshold") if k in doc]
        if model is None:
            if "threshold" in doc:
                raise SpecError("threshold", "only with release_model: multisig")
            if not explicit and "signers" not in doc:
                if not dvp:
                    raise SpecError(
                        "release_model",
                        "an escrowed deal needs approvers: set release_model (buyer | seller | platform | "
                        "multisig) or approvers",
                    )
                return {"approvers": [], "signers": []}
            approvers = self.wallets(doc.get("approvers"), "approvers")
            signers = self.wallets(doc.get("signers"), "signers")
            return {
                "approvers": approvers,
                "signers": signers,
                "approval_threshold": self.threshold(
                    doc.get("approval_threshold"), len(approvers), "approval_threshold"
                ),
                "release_threshold": self.threshold(doc.get("release_threshold"), len(signers), "release_threshold"),
            }
        if not isinstance(model, str) or model.strip().lower() not in RELEASE_MODELS:
            raise SpecError("release_model", f"expected one of {' | '.join(RELEASE_MODELS)}, got {model!r}")
        model = model.strip().lower()
        if explicit:
            raise SpecError(explicit[0], f"set either release_model ({model}) or explicit approvers/thresholds")
        if model == "multisig":
            if "signers" not in doc:
                raise SpecError("signers", "release_model multisig needs signers")
            signers = self.wallets(doc.get("signers"), "signers")
            if not signers:
                raise SpecError("signers", "release_model multisig needs at least one signer")
            if "threshold" not in doc:
                raise SpecError("threshold", f"release_model multisig needs a threshold (1..{len(signers)})")
            threshold = self.threshold(doc["threshold"], len(signers), "threshold")
            return {
                "approvers": signers,
                "signers": signers,
                "approval_threshold": threshold,
                "release_threshold": threshold,
            }
        for key in ("signers", "threshold"):
            if key in doc:
                raise SpecError(key, f"only with release_model: multisig (the model is {model})")
        if model == "anyone":
            if not dvp:
                raise SpecError("release_model", "anyone: only a DVP deal can release without approvals")
            return {"approvers": [], "signers": []}
        wallet = self.roles[model]
        return {"approvers": [wallet], "signers": [wallet], "approval_threshold": 1, "release_threshold": 1}

    @staticmethod
    def threshold(value: Any, holders: int, field: str) -> int:
        if value is None:
            return holders
        number = _count(value, field)
        if holders == 0 and number != 0:
            raise SpecError(field, "a threshold without holders must be 0")
        if holders and not 1 <= number <= holders:
            raise SpecError(field, f"must be between 1 and {holders} (the number of holders), got {number}")
        return number

    def parse_compliance(self) -> int:
        section = self.section("compliance", ("policy",))
        policy = _count(section.get("policy", 0), "compliance.policy")
        if policy > 2**32 - 1:
            raise SpecError("compliance.policy", f"a policy id fits 32 bits, got {policy}")
        return policy

    def parse_fees(self, base: Leg, quote: Leg) -> dict[str, Any]:
        fees = self.section("fees", FEE_KEYS)
        out: dict[str, Any] = {
            "desk_fee_bps": _bps(fees.get("desk_bps", 0), "fees.desk_bps"),
            "resolver_fee_bps": _bps(fees.get("resolver_bps", 0), "fees.resolver_bps"),
        }
        if "fee_leg" in fees:
            text = str(fees["fee_leg"]).strip().lower()
            if text not in ("base", "quote"):
                raise SpecError("fees.fee_leg", f"expected base or quote, got {fees['fee_leg']!r}")
            leg_id = LegId[text.upper()]
            if not (base if leg_id == LegId.BASE else quote).on_chain:
                raise SpecError("fees.fee_leg", f"the {text} leg is off chain: fees are paid from an on-chain leg")
            out["fee_leg"] = leg_id
        introducers = fees.get("introducers") or []
        if not isinstance(introducers, list):
            raise SpecError("fees.introducers", f"expected a list of {{wallet, bps}}, got {_kind(introducers)}")
        pairs = []
        for i, entry in enumerate(introducers):
            field = f"fees.introducers[{i}]"
            if not isinstance(entry, dict):
                raise SpecError(field, f"expected {{wallet: ..., bps: ...}}, got {_kind(entry)}")
            _check_keys(entry, ("wallet", "bps"), field)
            if "wallet" not in entry or "bps" not in entry:
                raise SpecError(field, "needs wallet and bps")
            bps = _bps(entry["bps"], f"{field}.bps")
            if bps == 0:
                raise SpecError(f"{field}.bps", "an introducer needs a commission above 0")
            wallet = self.wallet(entry["wallet"], f"{field}.wallet")
            twice = next((j for j, (w, _) in enumerate(pairs) if w == wallet), None)
            if twice is not None:
                raise SpecError(
                    f"{field}.wallet",
                    f"{wallet} is already fees.introducers[{twice}]: one entry per introducer (give its total bps)",
                )
            pairs.append((wallet, bps))
        out["introducers"] = pairs
        return out

    def parse_tranches(self, base: Leg, quote: Leg, base_spec: LegSpec, quote_spec: LegSpec) -> list[Tranche]:
        value = self.doc.get("tranches")
        if value is None:
            raise SpecError("tranches", "missing (required): give count + delivery_window, or a list")
        if isinstance(value, dict):
            _check_keys(value, EVEN_TRANCHE_KEYS, "tranches")
            if "count" not in value:
                raise SpecError("tranches.count", "missing (required)")
            count = _count(value["count"], "tranches.count", minimum=1)
            if count > 32:
                raise SpecError("tranches.count", f"at most 32 tranches, got {count}")
            if "delivery_window" not in value:
                raise SpecError("tranches.delivery_window", "missing (required): time from unlock to deadline")
            first = parse_time(value.get("first_unlock", "now"), self.now, "tranches.first_unlock")
            interval = parse_duration(value.get("interval", 0), "tranches.interval")
            window = parse_duration(value["delivery_window"], "tranches.delivery_window")
            return even_tranches(base.amount, quote.amount, count, first, interval, window)
        if not isinstance(value, list) or not value:
            raise SpecError("tranches", f"expected a mapping (count, ...) or a non-empty list, got {_kind(value)}")
        out = []
        for i, entry in enumerate(value):
            field = f"tranches[{i}]"
            if not isinstance(entry, dict):
                raise SpecError(field, f"expected {{base, quote, unlock, deadline}}, got {_kind(entry)}")
            _check_keys(entry, TRANCHE_KEYS, field)
            for key in TRANCHE_KEYS:
                if key not in entry:
                    raise SpecError(f"{field}.{key}", "missing (required)")
            b = _tranche_amount(entry["base"], base_spec.decimals, f"{field}.base")
            q = _tranche_amount(entry["quote"], quote_spec.decimals, f"{field}.quote")
            unlock = parse_time(entry["unlock"], self.now, f"{field}.unlock")
            deadline = parse_time(entry["deadline"], self.now, f"{field}.deadline")
            if unlock > deadline:
                raise SpecError(f"{field}.deadline", f"{_iso(deadline)} is before the unlock {_iso(unlock)}")
            out.append(Tranche(b, q, unlock, deadline))
        for name, leg, spec, index in (("base", base, base_spec, 0), ("quote", quote, quote_spec, 1)):
            total = sum(t.base_amount if index == 0 else t.quote_amount for t in out)
            if total != leg.amount:
                raise SpecError(
                    "tranches",
                    f"the {name} amounts sum to {spec.format(total)}, the {name} leg is {spec.format(leg.amount)}",
                )
        return out


def _tranche_amount(value: Any, decimals: int, field: str) -> int:
    """A tranche's share of a leg: like an amount, but 0 is allowed (the other leg moves)."""
    if isinstance(value, int | Decimal | str) and not isinstance(value, bool):
        try:
            if Decimal(str(value).strip()) == 0:
                return 0
        except InvalidOperation:
            pass
    return to_units(value, decimals, field)


def _check_keys(mapping: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SpecError(
                _join(where, str(key)),
                f"unknown key{' at the top level' if not where else ''} (expected one of: {', '.join(allowed)})",
            )


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


__all__ = [
    "DealSpec",
    "LegSpec",
    "SpecError",
    "apply_sets",
    "check_document",
    "fmt_duration",
    "fmt_time",
    "format_units",
    "load_document",
    "parse_duration",
    "parse_spec",
    "parse_time",
    "placeholders",
    "substitute",
    "to_units",
]
