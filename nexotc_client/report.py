"""A trade and compliance report over many deals, read from the chain (nothing is mirrored).

    report = build_report(factory, desk_id=2, since=parse_date("2026-03-01", "since"))
    report.totals()                      # deals per phase, volume and fees per asset, disputes, conservation
    write_json(report, "report.json"); write_csv(report, "deals.csv"); write_plot(report, "report.png")

Everything is read as of one block (the snapshot, `report.block`): the factory's `DealCreated` events select the
deals (oldest first, numbered as `nexotc deal list` numbers them), each deal's own events give what moved and
when, and its views at the snapshot block give its phase, tranche statuses, holdings, pull balances and, for a
gated deal, its principals' attestations (`Deal.compliance(block)`).

Per on-chain leg, every unit deposited is accounted for by the deal's events and its holdings:

    deposited (Funded) = released + to_resolver + refunded + held (the deal's `held(leg)` view)

- released: what left the escrow towards the receiver's side, commissions included: `Released`, and the
  `to_receiver` part of a `Resolved` split (commissions are taken from the fee leg of both, as the contract does:
  each floor(amount * bps / 10 000), the receiver gets the remainder);
- to_resolver: the resolver's fee of `Resolved` splits;
- refunded: back to the funder: `Refunded`, `Cancelled`, `Expired`, the `to_funder` part of `Resolved`;
- held: what the escrow still holds for open tranches.

A payment that failed and became a pull balance (`PaymentDeferred`) counts as paid: it is owed to its payee
(`owed`, the deal's `unclaimed(token)`). A leg where the equation does not hold, whose escrow's token balance is
below held + owed, or whose `Released` commissions differ from the terms' split is flagged (`problems`).

An off-chain leg never moves on chain: its `released` is the units of the tranches released (delivery accepted);
its other amounts are 0 and it has no conservation check.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from nexotc_client.chain.errors import NexotcError, reverts_as_errors
from nexotc_client.terms import BPS, LegId, Phase, TrancheStatus

if TYPE_CHECKING:
    from nexotc_client.chain.deal import Deal, DealEvent
    from nexotc_client.chain.factory import DealRecord, Factory

FORMAT = "nexotc-report/1"
LEGS = ("base", "quote")
FEE_ROLES = ("desk", "introducers", "resolver")
PHASES = tuple(p.name.lower() for p in Phase)
STATUSES = tuple(s.name.lower() for s in TrancheStatus)
_OPEN = (TrancheStatus.PENDING, TrancheStatus.MARKED, TrancheStatus.DISPUTED)

Progress = Callable[[int, int], None]
"""`progress(done, total)`: called once per deal selected (total = number of deals to read)."""


# ------------------------------------------------------------------ dates
def parse_date(text: str, field_name: str, end: bool = False) -> int:
    """A unix time from `YYYY-MM-DD` (UTC; the day's first second, or with `end` its last, so a day is
    inclusive) or an ISO 8601 date/time (`2026-03-01T12:00:00Z`; naive = UTC)."""
    value = (text or "").strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    try:
        if day is not None:
            moment = datetime.combine(day, time(23, 59, 59) if end else time.min, tzinfo=UTC)
            return _representable(int(moment.timestamp()))
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise NexotcError(
                f"{field_name}: not a date: {text!r} (expected YYYY-MM-DD or an ISO 8601 date/time such as "
                "2026-03-01T12:00:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return _representable(int(moment.timestamp()))
    except (OverflowError, ValueError) as exc:  # years 1 and 9999 shifted out of range by a time zone
        raise NexotcError(f"{field_name}: {text!r} is out of the range of dates ({exc})") from None


def _representable(ts: int) -> int:
    """`ts`, if it is a UTC date/time between years 1 and 9999 (a time zone can shift one out); ValueError else."""
    datetime.fromtimestamp(ts, tz=UTC)
    return ts


def iso(ts: int | None) -> str | None:
    """A unix time as ISO 8601 UTC (`2026-03-01T12:00:00Z`)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human(units: int, decimals: int | None) -> str:
    """Exact human units without separators ("13000000.5"); raw units when the decimals are unknown."""
    if decimals is None:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals) if decimals else (abs(units), 0)
    text = str(whole)
    if decimals and frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return sign + text


# ----------------------------------------------------------------- results
@dataclass
class LegReport:
    """One leg of one deal: its asset, and where each deposited unit went (raw units of the token)."""

    leg: str
    token: str | None
    on_chain: bool
    symbol: str | None
    decimals: int | None
    amount: int
    deposited: int = 0
    released: int = 0
    desk_fee: int = 0
    introducer_fees: dict[str, int] = field(default_factory=dict)
    to_resolver: int = 0
    refunded: int = 0
    held: int = 0
    owed: int = 0
    balance: int | None = None

    @property
    def introducers_total(self) -> int:
        return sum(self.introducer_fees.values())

    @property
    def to_receiver(self) -> int:
        """What the receiver's side got net of commissions."""
        return self.released - self.desk_fee - self.introducers_total

    @property
    def accounted(self) -> int:
        return self.released + self.to_resolver + self.refunded + self.held

    @property
    def conserved(self) -> bool | None:
        """deposited = released + to_resolver + refunded + held (None for an off-chain leg)."""
        return self.deposited == self.accounted if self.on_chain else None

    def fmt(self, units: int) -> str:
        return human(units, self.decimals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leg": self.leg,
            "token": self.token,
            "on_chain": self.on_chain,
            "symbol": self.symbol,
            "decimals": self.decimals,
            "amount": self.amount,
            "deposited": self.deposited,
            "released": self.released,
            "to_receiver": self.to_receiver,
            "fees": {"desk": self.desk_fee, "introducers": self.introducers_total, "resolver": self.to_resolver},
            "introducer_fees": dict(self.introducer_fees),
            "to_resolver": self.to_resolver,
            "refunded": self.refunded,
            "held": self.held,
            "owed": self.owed,
            "balance": self.balance,
            "conserved": self.conserved,
        }


@dataclass
class Payout:
    """One tranche paid out towards the receivers: a release, or a resolution with a receiver part."""

    tranche: int
    kind: str  # "release" | "resolve"
    block: int
    timestamp: int
    tx_hash: str
    base: int
    quote: int
    fees: dict[str, int]  # role => commission in the fee leg's token (desk, introducers, the resolver's fee on it)
    resolver: dict[str, int]  # leg => the resolver's fee

    def to_dict(self) -> dict[str, Any]:
        return {
            "tranche": self.tranche,
            "kind": self.kind,
            "block": self.block,
            "timestamp": self.timestamp,
            "tx_hash": self.tx_hash,
            "base": self.base,
            "quote": self.quote,
            "fees": dict(self.fees),
            "to_resolver": dict(self.resolver),
        }


@dataclass
class DealReport:
    index: int
    deal: str
    creator: str
    created_block: int
    created_at: int
    created_tx: str
    desk_id: int
    mode: str
    phase: str
    fee_leg: str
    tranches: dict[str, int]
    """tranche status => count (every status listed)."""
    policy_id: int
    compliance: dict[str, Any] | None
    buyer: str
    seller: str
    platform: str
    resolver: str
    base: LegReport
    quote: LegReport
    disputes_opened: int = 0
    disputes_resolved: int = 0
    disputes_settled_by_default: int = 0
    payouts: list[Payout] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def gated(self) -> bool:
        return self.policy_id != 0

    @property
    def legs(self) -> tuple[LegReport, LegReport]:
        return (self.base, self.quote)

    @property
    def disputes_open(self) -> int:
        return self.tranches.get("disputed", 0)

    @property
    def conserved(self) -> bool:
        return not self.problems

    def attestation(self, role: str) -> dict[str, Any] | None:
        if self.compliance is None:
            return None
        for p in self.compliance.get("principals", []):
            if p["role"] == role:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "deal": self.deal,
            "creator": self.creator,
            "created_block": self.created_block,
            "created_at": self.created_at,
            "created_at_utc": iso(self.created_at),
            "created_tx": self.created_tx,
            "desk_id": self.desk_id,
            "mode": self.mode,
            "phase": self.phase,
            "fee_leg": self.fee_leg,
            "tranches": dict(self.tranches),
            "policy_id": self.policy_id,
            "gated": self.gated,
            "compliance": self.compliance,
            "parties": {
                "buyer": self.buyer,
                "seller": self.seller,
                "platform": self.platform,
                "resolver": self.resolver,
            },
            "legs": {leg.leg: leg.to_dict() for leg in self.legs},
            "disputes": {
                "opened": self.disputes_opened,
                "resolved": self.disputes_resolved,
                "settled_by_default": self.disputes_settled_by_default,
                "open": self.disputes_open,
            },
            "payouts": [p.to_dict() for p in self.payouts],
            "conserved": self.conserved,
            "problems": list(self.problems),
        }


@dataclass
class Report:
    """The deals selected (oldest first) as of `block`, and the filters that selected them."""

    chain_id: int
    factory: str
    block: int
    timestamp: int
    desk_id: int | None
    since: int | None
    until: int | None
    deals: list[DealReport]
    factory_deals: int
    """how many deals the factory had created by the snapshot (before filtering)."""

    def totals(self) -> dict[str, Any]:
        return summarize(self.deals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "chain_id": self.chain_id,
            "factory": self.factory,
            "as_of_block": self.block,
            "as_of": self.timestamp,
            "as_of_utc": iso(self.timestamp),
            "filters": {
                "desk_id": self.desk_id,
                "since": self.since,
                "since_utc": iso(self.since),
                "until": self.until,
                "until_utc": iso(self.until),
            },
            "factory_deals": self.factory_deals,
            "totals": self.totals(),
            "deals": [d.to_dict() for d in self.deals],
        }


# -------------------------------------------------------------- aggregates
def summarize(deals: Iterable[DealReport]) -> dict[str, Any]:
    """Aggregates over `deals`: deals per phase and mode, gated/ungated, disputes, per on-chain asset the volume
    (deposited, released, refunded, held), fees per recipient role, and conservation (the legs that break it)."""
    deals = list(deals)
    by_phase = dict.fromkeys(PHASES, 0)
    by_mode: dict[str, int] = {"dvp": 0, "escrowed": 0}
    disputes = {"opened": 0, "resolved": 0, "settled_by_default": 0, "open": 0}
    assets: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    for d in deals:
        by_phase[d.phase] = by_phase.get(d.phase, 0) + 1
        by_mode[d.mode] = by_mode.get(d.mode, 0) + 1
        disputes["opened"] += d.disputes_opened
        disputes["resolved"] += d.disputes_resolved
        disputes["settled_by_default"] += d.disputes_settled_by_default
        disputes["open"] += d.disputes_open
        for problem in d.problems:
            failures.append({"index": d.index, "deal": d.deal, "problem": problem})
        for leg in d.legs:
            if not leg.on_chain or leg.token is None:
                continue
            a = assets.setdefault(
                leg.token,
                {
                    "token": leg.token,
                    "symbol": leg.symbol,
                    "decimals": leg.decimals,
                    "deals": 0,
                    "deposited": 0,
                    "released": 0,
                    "to_receiver": 0,
                    "refunded": 0,
                    "to_resolver": 0,
                    "held": 0,
                    "owed": 0,
                    "fees": dict.fromkeys(FEE_ROLES, 0),
                    "conserved": True,
                },
            )
            a["deals"] += 1
            for key in ("deposited", "released", "to_receiver", "refunded", "to_resolver", "held", "owed"):
                a[key] += getattr(leg, key)
            a["fees"]["desk"] += leg.desk_fee
            a["fees"]["introducers"] += leg.introducers_total
            a["fees"]["resolver"] += leg.to_resolver
            a["conserved"] = a["conserved"] and bool(leg.conserved)
    for a in assets.values():
        decimals = a["decimals"]
        a["amounts"] = {
            key: human(a[key], decimals) for key in ("deposited", "released", "to_receiver", "refunded", "held")
        }
        a["amounts"]["fees"] = {role: human(v, decimals) for role, v in a["fees"].items()}
        # the set's own equation, summed over its legs
        a["conserved"] = a["conserved"] and a["deposited"] == (
            a["released"] + a["to_resolver"] + a["refunded"] + a["held"]
        )
    gated = sum(1 for d in deals if d.gated)
    return {
        "deals": len(deals),
        "by_phase": by_phase,
        "by_mode": by_mode,
        "gated": gated,
        "ungated": len(deals) - gated,
        "desk_deals": sum(1 for d in deals if d.desk_id),
        "disputes": disputes,
        "assets": sorted(assets.values(), key=lambda a: (str(a["symbol"] or "~"), a["token"])),
        "conservation": {"ok": not failures, "failures": failures},
    }


# ----------------------------------------------------------------- reading
class _Tokens:
    """Symbol and decimals per token (read once)."""

    def __init__(self) -> None:
        self._meta: dict[str, tuple[str | None, int | None]] = {}

    def meta(self, token: str) -> tuple[str | None, int | None]:
        if token not in self._meta:
            from nexotc_client.chain.contracts import erc20

            contract = erc20(token)
            try:
                symbol: str | None = str(contract.symbol())
            except Exception:  # a token without symbol()
                symbol = None
            try:
                decimals: int | None = int(contract.decimals())
            except Exception:  # a token without decimals(): raw units
                decimals = None
            self._meta[token] = (symbol, decimals)
        return self._meta[token]


def check_desk(factory: Factory, desk_id: int) -> None:
    """Refuse a desk id that is no desk of the registry `factory` serves."""
    from nexotc_client.chain.desk import DeskRegistry, factory_desk_registry

    if isinstance(desk_id, bool) or not isinstance(desk_id, int) or desk_id < 1:
        raise NexotcError(f"desk id: expected a positive integer, got {desk_id!r}")
    address = factory_desk_registry(factory.address)
    if address is None:
        raise NexotcError(f"no desk #{desk_id}: the factory at {factory.address} serves no desk registry")
    registry = DeskRegistry.at(address)
    count = registry.desk_count
    if desk_id > count:
        raise NexotcError(f"no desk #{desk_id} (the desk registry at {address} of this factory has {count})")


def build_report(
    factory: Factory,
    desk_id: int | None = None,
    since: int | None = None,
    until: int | None = None,
    progress: Progress | None = None,
    agreement_of: Callable[[Deal], str] | None = None,
) -> Report:
    """The report over the deals of `factory` created within [since, until] (unix times, inclusive; None: open)
    and, with `desk_id`, of that desk only; as of the chain head when called. `agreement_of(deal)`: the
    agreement document of the signed offer that made a deal, if known (it names an off-chain leg's asset and
    decimals; the chain stores only units)."""
    from ape import chain

    if since is not None and until is not None and since > until:
        raise NexotcError(f"since ({iso(since)}) is after until ({iso(until)}): no deal can match")
    if desk_id is not None:
        check_desk(factory, desk_id)
    with reverts_as_errors("reading the chain head"):
        head = chain.provider.get_block("latest")
        block = int(head.number or 0)
        timestamp = int(head.timestamp)
        chain_id = int(chain.chain_id)
    records = [r for r in factory.deals() if r.block <= block]
    selected = [
        r for r in records if (since is None or r.timestamp >= since) and (until is None or r.timestamp <= until)
    ]
    tokens = _Tokens()
    deals: list[DealReport] = []
    total = len(selected)
    if progress is not None:
        progress(0, total)
    for done, record in enumerate(selected, start=1):
        report = _deal_report(factory, record, block, tokens, desk_id, agreement_of)
        if report is not None:
            deals.append(report)
        if progress is not None:
            progress(done, total)
    return Report(
        chain_id=chain_id,
        factory=factory.address,
        block=block,
        timestamp=timestamp,
        desk_id=desk_id,
        since=since,
        until=until,
        deals=deals,
        factory_deals=len(records),
    )


def _deal_report(
    factory: Factory,
    record: DealRecord,
    block: int,
    tokens: _Tokens,
    desk_filter: int | None,
    agreement_of: Callable[[Deal], str] | None = None,
) -> DealReport | None:
    """One deal as of `block` (None when it is not of the desk `desk_filter`)."""
    from nexotc_client.chain.contracts import deal_container, erc20
    from nexotc_client.chain.deal import Deal, read_events

    deal = Deal.at(record.deal, factory)
    c = deal.contract

    def call(name: str, *args: Any) -> Any:
        return getattr(c, name)(*args, block_id=block)

    with reverts_as_errors(f"reading deal #{record.index}"):
        desk_id = int(call("desk_id"))
        if desk_filter is not None and desk_id != desk_filter:
            return None
        terms = deal.terms
        phase = Phase(int(call("phase")))
        statuses = [TrancheStatus(int(call("tranche_status", i))) for i in range(len(terms.tranches))]
        legs: list[LegReport] = []
        for leg_id, leg in ((LegId.BASE, terms.base), (LegId.QUOTE, terms.quote)):
            name = leg_id.name.lower()
            if not leg.on_chain:
                released = sum(
                    (t.base_amount if leg_id == LegId.BASE else t.quote_amount)
                    for t, s in zip(terms.tranches, statuses, strict=True)
                    if s == TrancheStatus.RELEASED
                )
                from nexotc_client.agreement import off_chain_leg

                named = off_chain_leg(agreement_of(deal), name) if agreement_of is not None else None
                label, decimals = named if named is not None else (None, None)
                legs.append(LegReport(name, None, False, label, decimals, leg.amount, released=released))
                continue
            token = to_checksum_address(leg.token)
            symbol, decimals = tokens.meta(token)
            legs.append(
                LegReport(
                    name,
                    token,
                    True,
                    symbol,
                    decimals,
                    leg.amount,
                    held=int(call("held", int(leg_id))),
                    owed=int(call("unclaimed", token)),
                )
            )
        balances: dict[str, int] = {}
        for leg in legs:
            if leg.token is not None and leg.token not in balances:
                balances[leg.token] = int(erc20(leg.token).balanceOf(deal.address, block_id=block))
            if leg.token is not None:
                leg.balance = balances[leg.token]
    events = read_events(deal.address, deal_container().contract_type.events, record.block, block)
    base, quote = legs
    report = DealReport(
        index=record.index,
        deal=deal.address,
        creator=record.creator,
        created_block=record.block,
        created_at=record.timestamp,
        created_tx=record.tx_hash,
        desk_id=desk_id,
        mode=terms.mode.name.lower(),
        phase=phase.name.lower(),
        fee_leg=terms.fee_leg.name.lower(),
        tranches={s: sum(1 for x in statuses if x.name.lower() == s) for s in STATUSES},
        policy_id=terms.policy_id,
        compliance=deal.compliance(block) if terms.policy_id else None,
        buyer=terms.buyer,
        seller=terms.seller,
        platform=terms.platform,
        resolver=terms.resolver,
        base=base,
        quote=quote,
    )
    _account(report, deal, events)
    _check(report)
    return report


def _account(report: DealReport, deal: Deal, events: list[DealEvent]) -> None:
    """Add up the deal's events into its legs: deposits, payouts (commissions split as the contract does),
    resolver fees, refunds; count its disputes."""
    terms = deal.terms
    fee_leg = terms.fee_leg
    legs = {LegId.BASE: report.base, LegId.QUOTE: report.quote}

    def commissions(amount: int, leg: LegReport) -> dict[str, int]:
        """Credit the commissions of a fee-leg payout of `amount` to `leg`; returns them by role."""
        desk = amount * terms.desk_fee_bps // BPS if amount else 0
        leg.desk_fee += desk
        introducers = 0
        for wallet, bps in terms.introducers:
            cut = amount * bps // BPS if amount else 0
            leg.introducer_fees[wallet] = leg.introducer_fees.get(wallet, 0) + cut
            introducers += cut
        return {"desk": desk, "introducers": introducers}

    for ev in events:
        a = ev.args
        if ev.name == "Funded":
            legs[LegId(int(a["leg"]))].deposited += int(a["amount"])
        elif ev.name == "Released":
            amounts = {LegId.BASE: int(a["base_amount"]), LegId.QUOTE: int(a["quote_amount"])}
            for leg_id, amount in amounts.items():
                if legs[leg_id].on_chain:
                    legs[leg_id].released += amount
            fees = commissions(amounts[fee_leg], legs[fee_leg])
            if fees["desk"] + fees["introducers"] != int(a["fees"]):
                report.problems.append(
                    f"tranche {int(a['tranche'])}: Released paid {int(a['fees'])} in commissions, the terms' split "
                    f"is {fees['desk'] + fees['introducers']}"
                )
            report.payouts.append(
                Payout(
                    int(a["tranche"]),
                    "release",
                    ev.block,
                    ev.timestamp,
                    ev.tx_hash,
                    amounts[LegId.BASE],
                    amounts[LegId.QUOTE],
                    {**fees, "resolver": 0},
                    {"base": 0, "quote": 0},
                )
            )
        elif ev.name == "Resolved":
            splits = {LegId.BASE: a["base"], LegId.QUOTE: a["quote"]}
            for leg_id, split in splits.items():
                leg = legs[leg_id]
                if not leg.on_chain:
                    continue
                leg.released += int(split["to_receiver"])
                leg.refunded += int(split["to_funder"])
                leg.to_resolver += int(split["to_resolver"])
            if a.get("by_default"):
                report.disputes_settled_by_default += 1
            else:
                report.disputes_resolved += 1
            received = {k: int(s["to_receiver"]) for k, s in splits.items()}
            if any(received.values()) or any(int(s["to_resolver"]) for s in splits.values()):
                fees = commissions(received[fee_leg], legs[fee_leg])
                to_resolver = {k.name.lower(): int(s["to_resolver"]) for k, s in splits.items()}
                report.payouts.append(
                    Payout(
                        int(a["tranche"]),
                        "resolve",
                        ev.block,
                        ev.timestamp,
                        ev.tx_hash,
                        received[LegId.BASE],
                        received[LegId.QUOTE],
                        {**fees, "resolver": to_resolver[fee_leg.name.lower()]},  # one token: the fee leg's
                        to_resolver,
                    )
                )
        elif ev.name in ("Refunded", "Cancelled", "Expired"):
            for leg_id, key in ((LegId.BASE, "base_amount"), (LegId.QUOTE, "quote_amount")):
                if legs[leg_id].on_chain:
                    legs[leg_id].refunded += int(a[key])
        elif ev.name == "Disputed":
            report.disputes_opened += 1


def _check(report: DealReport) -> None:
    """Flag each on-chain leg where the deposits are not accounted for, or the escrow holds less than it owes."""
    for leg in report.legs:
        if not leg.on_chain:
            continue
        name = f"{leg.leg} leg ({leg.symbol or leg.token})"
        if not leg.conserved:
            report.problems.append(
                f"{name}: deposited {leg.deposited} != released {leg.released} + resolver {leg.to_resolver} + "
                f"refunded {leg.refunded} + held {leg.held} (= {leg.accounted})"
            )
    by_token: dict[str, tuple[int, int]] = {}
    for leg in report.legs:
        if leg.on_chain and leg.token is not None and leg.balance is not None:
            held, _ = by_token.get(leg.token, (0, 0))
            by_token[leg.token] = (held + leg.held, leg.balance)
    for token, (held, balance) in by_token.items():
        owed = next(leg.owed for leg in report.legs if leg.token == token)
        if balance < held + owed:
            report.problems.append(
                f"token {token}: the escrow's balance {balance} is below what it holds and owes ({held} + {owed})"
            )


# ------------------------------------------------------------------ output
def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file next to `path` (a symlink's target), then rename: never a half-written
    file. Only a regular file is replaced: a device, a FIFO or a directory there is refused."""
    path = Path(path)
    check_output_path(path)
    path = path.resolve()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise NexotcError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def check_output_path(path: Path) -> None:
    """Refuse an output path that names no file (empty, a directory) or something other than a regular file."""
    if not str(path) or not path.name or path.name in (".", ".."):
        raise NexotcError(f"{str(path)!r} names no file")
    target = path.resolve()
    if target.exists() and not target.is_file():
        raise NexotcError(f"{path} is not a regular file (a device, a pipe or a directory): not written")


def write_json(report: Report, path: str | Path) -> Path:
    """The full report (amounts in raw units as exact JSON integers; per asset also in human units)."""
    text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    return _atomic_write(Path(path), lambda p: p.write_text(text))


CSV_COLUMNS = (
    "index",
    "deal",
    "created_at",
    "created_block",
    "creator",
    "desk_id",
    "mode",
    "phase",
    "tranches",
    "tranches_released",
    "tranches_refunded",
    "tranches_resolved",
    "tranches_open",
    "disputes_opened",
    "disputes_resolved",
    "disputes_settled_by_default",
    "policy_id",
    "gated",
    "buyer",
    "seller",
    "buyer_attested_until",
    "seller_attested_until",
    "buyer_compliant",
    "seller_compliant",
    "fee_leg",
    *(
        f"{leg}_{key}"
        for leg in LEGS
        for key in (
            "asset",
            "token",
            "decimals",
            "amount",
            "deposited",
            "released",
            "to_receiver",
            "desk_fee",
            "introducer_fees",
            "to_resolver",
            "refunded",
            "held",
        )
    ),
    "conserved",
    "problems",
)


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """One row per deal. Amounts of on-chain legs in exact human units (the token's decimals); of an off-chain
    leg in raw units (its decimals column empty). Times in ISO 8601 UTC."""
    rows = []
    for d in report.deals:
        row: dict[str, Any] = {
            "index": d.index,
            "deal": d.deal,
            "created_at": iso(d.created_at),
            "created_block": d.created_block,
            "creator": d.creator,
            "desk_id": d.desk_id or "",
            "mode": d.mode,
            "phase": d.phase,
            "tranches": sum(d.tranches.values()),
            "tranches_released": d.tranches["released"],
            "tranches_refunded": d.tranches["refunded"],
            "tranches_resolved": d.tranches["resolved"],
            "tranches_open": d.tranches["pending"] + d.tranches["marked"] + d.tranches["disputed"],
            "disputes_opened": d.disputes_opened,
            "disputes_resolved": d.disputes_resolved,
            "disputes_settled_by_default": d.disputes_settled_by_default,
            "policy_id": d.policy_id,
            "gated": "yes" if d.gated else "no",
            "buyer": d.buyer,
            "seller": d.seller,
            "fee_leg": d.fee_leg,
            "conserved": "yes" if d.conserved else "no",
            "problems": "; ".join(d.problems),
        }
        for role in ("buyer", "seller"):
            att = d.attestation(role)
            until = att.get("attested_until") if att else None
            row[f"{role}_attested_until"] = iso(until) if until else ""
            row[f"{role}_compliant"] = ("yes" if att.get("compliant_now") else "no") if att else ""
        for leg in d.legs:
            p = leg.leg
            row[f"{p}_asset"] = (leg.symbol or "") if leg.on_chain else (leg.symbol or "off chain")
            row[f"{p}_token"] = leg.token or ""
            row[f"{p}_decimals"] = "" if leg.decimals is None else leg.decimals
            for key in (
                "amount",
                "deposited",
                "released",
                "to_receiver",
                "desk_fee",
                "to_resolver",
                "refunded",
                "held",
            ):
                row[f"{p}_{key}"] = leg.fmt(getattr(leg, key))
            row[f"{p}_introducer_fees"] = leg.fmt(leg.introducers_total)
        rows.append(row)
    return rows


def write_csv(report: Report, path: str | Path) -> Path:
    rows = csv_rows(report)

    def write(p: Path) -> None:
        with p.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
            w.writeheader()
            w.writerows(rows)

    return _atomic_write(Path(path), write)


def _asset_labels(assets: list[dict[str, Any]]) -> dict[str, str]:
    """token => its symbol, or the symbol and a short address when two tokens share one."""
    symbols = [a["symbol"] for a in assets]
    out = {}
    for a in assets:
        short = f"{a['token'][:6]}…{a['token'][-4:]}"
        symbol = a["symbol"]
        out[a["token"]] = short if not symbol else symbol if symbols.count(symbol) == 1 else f"{symbol} {short}"
    return out


def write_plot(report: Report, path: str | Path) -> Path:
    """A PNG: per on-chain asset, the cumulative volume released over time (top) and the fees paid per recipient
    role (bottom), in the asset's units (matplotlib, Agg backend). Floats appear only as plot coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from nexotc_client.spec import format_units

    totals = report.totals()
    assets = [a for a in totals["assets"] if a["released"] or any(a["fees"].values()) or a["deposited"]]
    labels = _asset_labels(assets)
    series: dict[str, list[tuple[int, int]]] = {a["token"]: [] for a in assets}
    for d in report.deals:
        for p in d.payouts:
            for leg, units in ((d.base, p.base), (d.quote, p.quote)):
                if leg.on_chain and leg.token in series and units:
                    series[leg.token].append((p.timestamp, units))

    def scale(units: int, decimals: int | None) -> float:
        return float(Decimal(units).scaleb(-(decimals or 0)))

    grouped = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.4g}")
    scope = [f"{totals['deals']} deal{'' if totals['deals'] == 1 else 's'}"]
    if report.desk_id is not None:
        scope.append(f"desk #{report.desk_id}")
    if report.since is not None or report.until is not None:
        scope.append(f"created {iso(report.since) or '…'} to {iso(report.until) or '…'}")
    title = f"nexotc trade report: {', '.join(scope)}"
    subtitle = (
        f"factory {report.factory}, chain {report.chain_id}, as of block {report.block} ({iso(report.timestamp)})"
    )

    columns = max(1, len(assets))
    fig, axes = plt.subplots(2, columns, figsize=(5.2 * columns + 0.8, 7.6), squeeze=False)
    if not assets:
        for ax in axes[:, 0]:
            ax.axis("off")
        axes[0, 0].text(0.5, 0.5, "no on-chain volume in this selection", ha="center", va="center", fontsize=12)
    for col, a in enumerate(assets):
        token, decimals, label = a["token"], a["decimals"], labels[a["token"]]
        unit = label if decimals is not None else f"{label} (raw units)"
        ax = axes[0, col]
        points = sorted(series[token])
        if points:
            times = [datetime.fromtimestamp(ts, tz=UTC) for ts, _ in points]
            running, cumulative = 0, []
            for _, units in points:
                running += units
                cumulative.append(scale(running, decimals))
            start = times[0] - timedelta(minutes=30)
            end = max(times[-1], datetime.fromtimestamp(report.timestamp, tz=UTC)) + timedelta(minutes=30)
            ax.step([start, *times, end], [0.0, *cumulative, cumulative[-1]], where="post", color="tab:blue", lw=2)
            ax.plot(times, cumulative, "o", color="tab:blue", ms=5, label="a release (or a resolution's receiver part)")
            ax.legend(loc="lower right", fontsize=8)
            ax.set_ylim(0, cumulative[-1] * 1.18)
            locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        else:
            ax.text(0.5, 0.5, "nothing released", ha="center", va="center", transform=ax.transAxes, color="grey")
            ax.set_xticks([])
        ax.yaxis.set_major_formatter(grouped)
        total = format_units(a["released"], decimals) if decimals is not None else f"{a['released']:,}"
        ax.set_title(f"{label}: released volume, cumulative (total {total})", fontsize=11)
        ax.set_ylabel(f"released ({unit})")
        ax.set_xlabel("release time (UTC)")
        ax.grid(True, alpha=0.3)

        ax = axes[1, col]
        values = [a["fees"][role] for role in FEE_ROLES]
        bars = ax.bar(
            ["desk", "introducers", "resolver"],
            [scale(v, decimals) for v in values],
            color=["tab:green", "tab:orange", "tab:red"],
        )
        shown = [format_units(v, decimals) if decimals is not None else f"{v:,}" for v in values]
        ax.bar_label(bars, labels=shown, padding=2, fontsize=9)
        top = max(scale(v, decimals) for v in values)
        ax.set_ylim(0, top * 1.2 if top else 1)
        if not top:
            ax.set_yticks([])
            ax.text(
                0.5, 0.5, f"no fees paid in {label}", ha="center", va="center", transform=ax.transAxes, color="grey"
            )
        ax.yaxis.set_major_formatter(grouped)
        ax.set_title(f"{label}: fees paid per recipient role", fontsize=11)
        ax.set_ylabel(f"fees ({unit})")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    fig.text(0.5, 0.925, subtitle, ha="center", fontsize=8, color="dimgrey")
    fig.tight_layout(rect=(0, 0, 1, 0.92))

    def write(p: Path) -> None:
        fig.savefig(p, dpi=100, format="png")

    try:
        return _atomic_write(Path(path), write)
    finally:
        plt.close(fig)


__all__ = [
    "CSV_COLUMNS",
    "FORMAT",
    "DealReport",
    "LegReport",
    "Payout",
    "Report",
    "build_report",
    "check_desk",
    "csv_rows",
    "iso",
    "parse_date",
    "summarize",
    "write_csv",
    "write_json",
    "write_plot",
]
