"""Constants and pure helpers shared by the contract tests (imported by conftest and tests)."""

from __future__ import annotations

import ape

from nexotc_client.terms import Terms

DAY = 86_400
BTC = 10**8
USD6 = 10**6
ZERO = "0x0000000000000000000000000000000000000000"
EVIDENCE = b"\x11" * 32
REASON = b"\x22" * 32

# tranche statuses / phases (see DealEscrow)
PENDING, MARKED, DISPUTED, RELEASED, REFUNDED, RESOLVED = range(6)
FUNDING, ACTIVE, SETTLED, CANCELLED, EXPIRED = range(5)


def addr(x) -> str:
    return x if isinstance(x, str) else x.address


def events(receipt, event, emitter=None) -> list[dict]:
    """Decoded `event` logs of `receipt` (only those emitted by `emitter` if given) as dicts."""
    out = []
    for log in receipt.decode_logs(event):
        if emitter is not None and log.contract_address != addr(emitter):
            continue
        out.append(dict(log.event_arguments))
    return out


def expect_event(receipt, event, emitter=None, **fields) -> None:
    """Exactly one `event` in `receipt` (from `emitter` if given), with exactly these fields."""
    found = events(receipt, event, emitter)
    assert len(found) == 1, f"expected one {event.name}, got {found}"
    expected = {k: addr(v) if hasattr(v, "address") else v for k, v in fields.items()}
    assert found[0] == expected


def split_tuple(s) -> tuple[int, int, int]:
    """A decoded Split (struct or tuple) as (to_receiver, to_funder, to_resolver)."""
    if hasattr(s, "to_receiver"):
        return (s.to_receiver, s.to_funder, s.to_resolver)
    if isinstance(s, dict):
        return (s["to_receiver"], s["to_funder"], s["to_resolver"])
    return tuple(s)


_W3_CONTRACTS: dict = {}


def _w3(contract):
    """A web3 twin of an ape contract (for batched reads)."""
    # keyed by type too: snapshots roll deployments back, so an address can be reused by another contract
    # and made anew when the provider's web3 changed (a test file that reconnects runs first on this worker)
    key = (contract.address, contract.contract_type.name)
    w3 = ape.chain.provider.web3
    if key not in _W3_CONTRACTS or _W3_CONTRACTS[key].w3 is not w3:
        abi = [a.model_dump(mode="json", by_alias=True) for a in contract.contract_type.abi]
        _W3_CONTRACTS[key] = w3.eth.contract(address=contract.address, abi=abi)
    return _W3_CONTRACTS[key]


def deal_snapshot(deal, tokens=(), holders=()) -> dict:
    """Every piece of deal state and every relevant balance (one batched RPC round trip), to prove
    that a revert changed nothing."""
    n = deal.tranche_count()
    d = _w3(deal)
    calls: list[tuple[str, object]] = [
        ("phase", d.functions.phase()),
        ("funded0", d.functions.funded(0)),
        ("funded1", d.functions.funded(1)),
        ("held0", d.functions.held(0)),
        ("held1", d.functions.held(1)),
    ]
    for i in range(n):
        calls += [
            (f"status{i}", d.functions.tranche_status(i)),
            (f"approvals{i}", d.functions.approvals(i)),
            (f"signatures{i}", d.functions.signatures(i)),
            (f"marked_at{i}", d.functions.marked_at(i)),
            (f"disputed_at{i}", d.functions.disputed_at(i)),
        ]
    for token in tokens:
        t = _w3(token)
        calls.append((f"unclaimed:{token.address}", d.functions.unclaimed(token.address)))
        for h in (deal, *holders):
            calls.append((f"balance:{token.address}:{addr(h)}", t.functions.balanceOf(addr(h))))
            calls.append((f"claimable:{token.address}:{addr(h)}", d.functions.claimable(addr(h), token.address)))
    with ape.chain.provider.web3.batch_requests() as batch:
        for _, call in calls:
            batch.add(call)
        results = batch.execute()
    return {name: value for (name, _), value in zip(calls, results, strict=True)}


def delta(before: dict, after: dict) -> dict:
    """Non-zero balance changes between two `balances` readings."""
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def _batch(calls: list) -> list:
    with ape.chain.provider.web3.batch_requests() as batch:
        for call in calls:
            batch.add(call)
        return batch.execute()


class Tracker:
    """Token balances of the deal and every actor; `changes()` gives the non-zero deltas since
    creation (or the last `changes()`), as {token: {holder: delta}}."""

    def __init__(self, deal, tokens, holders):
        self.tokens = [addr(t) for t in tokens]
        self.holders = [addr(h) for h in (deal, *holders)]
        self.contracts = {addr(t): _w3(t) for t in tokens}
        self.last = self._read()

    def _read(self) -> dict:
        keys = [(t, h) for t in self.tokens for h in self.holders]
        values = _batch([self.contracts[t].functions.balanceOf(h) for t, h in keys])
        return dict(zip(keys, values, strict=True))

    def changes(self) -> dict:
        now = self._read()
        out: dict = {}
        for (t, h), value in now.items():
            if value != self.last[(t, h)]:
                out.setdefault(t, {})[h] = value - self.last[(t, h)]
        self.last = now
        return out


def add_payment(out: dict, token, to, amount: int) -> dict:
    if amount:
        bucket = out.setdefault(addr(token), {})
        bucket[addr(to)] = bucket.get(addr(to), 0) + amount
    return out


def release_split(terms: Terms, base_amount: int, quote_amount: int) -> dict:
    """{token: {payee: amount}} paid by a release of these on-chain amounts: the fee leg pays
    floor(amount * bps / 10000) to the platform and each introducer, the receiver the remainder."""
    out: dict = {}
    fee_amount = base_amount if terms.fee_leg == 0 else quote_amount
    fee_token = terms.base.token if terms.fee_leg == 0 else terms.quote.token
    cuts = terms.commissions(fee_amount) if fee_amount else {}
    for who, cut in cuts.items():
        add_payment(out, fee_token, who, cut)
    fees = sum(cuts.values())
    add_payment(out, terms.base.token, terms.base_receiver, base_amount - (fees if terms.fee_leg == 0 else 0))
    add_payment(out, terms.quote.token, terms.quote_receiver, quote_amount - (fees if terms.fee_leg == 1 else 0))
    return out


def paid_by(deal, payments: dict) -> dict:
    """`payments` plus the deal's matching outflow: the expected `Tracker.changes()`."""
    out = {t: dict(p) for t, p in payments.items()}
    for t, p in payments.items():
        out[t][addr(deal)] = out[t].get(addr(deal), 0) - sum(p.values())
    return {t: {h: v for h, v in p.items() if v} for t, p in out.items()}


def merge(*payments: dict) -> dict:
    out: dict = {}
    for p in payments:
        for t, bucket in p.items():
            for h, v in bucket.items():
                add_payment(out, t, h, v)
    return out


def on_chain(terms: Terms, tranche) -> tuple[int, int]:
    """The on-chain (base, quote) amounts of a tranche."""
    return (tranche.base_amount if terms.base.on_chain else 0, tranche.quote_amount if terms.quote.on_chain else 0)
