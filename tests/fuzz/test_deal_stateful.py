"""Property-based (Hypothesis stateful) test of the deal escrow.

Each example creates one deal with random terms (DVP, or ESCROWED with either leg held on chain;
1-6 tranches, random amounts, fees, introducers, approvers/signers/markers and thresholds, optional
approval window, random dispute default and timers; WBTC base, USDT or USDC quote) and then runs a
random sequence of every entry point (fund, mark, approve, release, dispute, resolve with valid and
invalid splits, settle_dispute, refund, cancel_unfunded, expire, claim) called by random actors,
parties or not, interleaved with blocklisting payees (or the deal itself) on the tokens and with time
travel, including to the exact second around every deadline, unlock, approval window end, dispute
timeout, dispute cut-off and final expiry. Three rules also walk one tranche down an honest path
(deliver and release; dispute and resolve or settle; give part of the approvals and signatures a
release needs, then dispute and settle by default) through the same checked calls, since random
calls rarely line a whole flow up.

The machine keeps a reference model of the escrow (the rules the contract documents) and checks:
  * every call that succeeds was allowed, and every call that reverts should have (exact outcome);
    a reverted call leaves every balance and every state view unchanged;
  * conservation, per token: balanceOf(deal) == deposited - paid out (from the Transfer events the
    transactions emitted) == held(base) + held(quote) on that token + unclaimed(token);
  * no tranche is paid twice: a final status (released, refunded, resolved) never changes, and what a
    leg paid out or owes never exceeds what was deposited, which never exceeds the leg total;
  * only actors named in the terms receive funds: no other actor's balance ever increases (except the
    wallet a payee itself directed a claim to), and no token leaves the set of tracked wallets;
  * every payout is exact (fees floor(amount * bps / 10000), remainder to the receiver; refunds to the
    funder; splits as given; pull balances for blocked payees): every tracked balance, claimable,
    unclaimed, held, phase, tranche status, approvals, signatures and timestamps match the model;
  * a dispute's default outcome (settle_dispute) is a release only with a delivery claim (DVP, or a
    marked ESCROWED tranche) and the approvals and release signatures the terms require, the
    disputant's own counted (a default stands in for the loser's consent, never anyone else's;
    ESCROWED: the payer's dispute within an approval window counts as everyone's, as its silence
    would have); else a refund to the funders. The approvals / signatures views never count the
    disputant's;
  * no funds stuck forever: once the final expiry is reached (and at the end of every example), one
    permissionless expire() (unless the deal is already closed, or settled) leaves the escrow holding
    exactly the unclaimed pull balances, and once unblocked, the payees' claims empty it. This runs in
    a chain snapshot that is reverted afterwards, so the random sequence continues unaffected.

Chain state is reset between examples with chain snapshots (tokens and factory are deployed once).
Each call is first made as an eth_call on the pending block, which says whether it reverts and why
(cheap: ape's revert handling costs ~50 ms a call); a call that passes is sent through ape as a
transaction (a revert there is caught as ape's ContractLogicError). Every transaction is mined at the
machine's clock exactly (evm_setNextBlockTimestamp), so boundary seconds are exact.

Knobs: NEXOTC_FUZZ_EXAMPLES (per mode), NEXOTC_FUZZ_STEPS, NEXOTC_FUZZ_STATS=1 (print how often each
call passed or reverted, and why), NEXOTC_FUZZ_NO_SHRINK=1. With CI set, runs are derandomized.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import pytest
import requests
from ape.exceptions import ContractLogicError
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak
from hypothesis import HealthCheck, event, settings
from hypothesis import Phase as HypothesisPhase
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from nexotc_client.terms import (
    BPS,
    ZERO_ADDRESS,
    DisputeDefault,
    Leg,
    LegId,
    Phase,
    Role,
    Terms,
    Tranche,
    TrancheStatus,
)

DAY = 86_400
EXAMPLES = int(os.environ.get("NEXOTC_FUZZ_EXAMPLES", "30"))
STEPS = int(os.environ.get("NEXOTC_FUZZ_STEPS", "30"))
STATS: Counter = Counter()  # NEXOTC_FUZZ_STATS=1: printed after each mode

PENDING, MARKED, DISPUTED, RELEASED, REFUNDED, RESOLVED = (int(s) for s in TrancheStatus)
FINAL = (RELEASED, REFUNDED, RESOLVED)

# Every wallet the machine tracks. buyer_custody / seller_treasury are named in some deals as the
# base / quote receiver; cold_wallet is never named (payees may direct their claims to it).
ACTORS = (
    "desk",
    "buyer",
    "seller",
    "introducer",
    "resolver",
    "attacker",
    "lawyer",
    "approver",
    "introducer2",
    "buyer_custody",
    "seller_treasury",
    "cold_wallet",
)
ANY_ACTOR = st.sampled_from(ACTORS)


def biased(*likely: str):
    """Mostly a likely caller (a name, or "role#k": the k-th holder of a role in the terms, "owed#k":
    the k-th wallet with a pull balance), else anybody."""
    return st.one_of(st.sampled_from(likely), st.sampled_from(likely), ANY_ACTOR)


# A tranche argument: "pick" is the first tranche in a status the rule can act on, "final" the first
# already paid out (released, refunded or resolved: acting on it again must fail), else 0; an int is
# taken modulo (number of tranches + 1), the extra value being an invalid index.
TRANCHE = st.one_of(st.just("pick"), st.just("pick"), st.just("final"), st.integers(0, 6))
# Approvers or signers who consent before a dispute: positions among the role's holders in the terms.
CONSENT = st.lists(st.integers(0, 2), max_size=3).map(tuple)


# ---------------------------------------------------------------------------------- deal terms
@dataclass(frozen=True)
class DealConfig:
    """Random deal terms, with times relative to the creation time t0."""

    mode: str  # "dvp" | "escrowed"
    on_chain: str  # "both" (DVP) | "quote" | "base" (ESCROWED: the leg held on chain)
    quote_token: str  # "usdt" (no return values) | "usdc" (blocklists sender and recipient)
    # (base amount, quote amount, unlock - funding deadline, deadline - unlock); deadlines are
    # clamped to the funding deadline at least
    tranches: tuple[tuple[int, int, int, int], ...]
    funding_window: int
    approval_window: int
    dispute_timeout: int
    expiry_slack: int  # final expiry - (last deadline + approval window + dispute timeout), > 0
    dispute_default: int
    desk_fee_bps: int
    introducers: tuple[tuple[str, int], ...]
    resolver_fee_bps: int
    fee_leg: int
    markers: tuple[str, ...]
    approvers: tuple[str, ...]
    approval_threshold: int
    signers: tuple[str, ...]
    release_threshold: int
    base_receiver: str
    quote_receiver: str
    creator: str
    create_and_fund: bool
    prefund: str  # legs funded right after creation: "none" | "first" | "all"
    fund_via: str  # ... with deal.fund() ("deal") or factory.fund_deal(deal) ("factory")
    blocked: tuple[str, ...]  # wallets blocklisted on the deal's tokens after that (payouts deferred)


BLOCKABLE = ("seller", "buyer", "seller_treasury", "buyer_custody", "desk", "introducer", "resolver", "deal")
AMOUNT = st.one_of(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 10**15))


@st.composite
def deal_configs(draw, mode: str) -> DealConfig:
    on_chain = "both" if mode == "dvp" else draw(st.sampled_from(["quote", "base"]))
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        b, q = draw(AMOUNT), draw(AMOUNT)
        if on_chain == "quote":
            q = max(q, 1)
        elif on_chain == "base":
            b = max(b, 1)
        elif b == q == 0:
            b = 1
        rows.append([b, q, draw(st.integers(-DAY, 7 * DAY)), draw(st.integers(0, 3 * DAY))])
    if sum(r[0] for r in rows) == 0:
        rows[0][0] = 1
    if sum(r[1] for r in rows) == 0:
        rows[0][1] = 1

    desk_fee = draw(st.one_of(st.just(0), st.integers(1, 1_000)))
    introducers = []
    room = 1_000 - desk_fee
    for name in draw(st.lists(st.sampled_from(["introducer", "introducer2"]), unique=True, max_size=2)):
        if room >= 1:
            bps = draw(st.integers(1, room))
            introducers.append((name, bps))
            room -= bps

    if on_chain == "both":
        markers: list[str] = []
        approvers = draw(
            st.lists(st.sampled_from(["buyer", "seller", "approver", "lawyer", "desk"]), unique=True, max_size=3)
        )
        signers = draw(
            st.lists(st.sampled_from(["lawyer", "approver", "buyer", "seller", "desk"]), unique=True, max_size=3)
        )
        fee_leg = draw(st.sampled_from([0, 1]))
    else:
        # the side paid by the escrowed leg can neither approve nor sign its own release
        deliverer, payer = ("seller", "buyer") if on_chain == "quote" else ("buyer", "seller")
        markers = draw(st.lists(st.sampled_from([deliverer, "lawyer", "desk"]), unique=True, min_size=1, max_size=2))
        approvers = draw(
            st.lists(st.sampled_from([payer, "approver", "lawyer", "desk"]), unique=True, min_size=1, max_size=3)
        )
        signers = draw(st.lists(st.sampled_from([payer, "lawyer", "approver", "desk"]), unique=True, max_size=3))
        fee_leg = 1 if on_chain == "quote" else 0

    return DealConfig(
        mode=mode,
        on_chain=on_chain,
        quote_token=draw(st.sampled_from(["usdt", "usdc"])),
        tranches=tuple(tuple(r) for r in rows),
        funding_window=draw(st.integers(1, 3 * DAY)),
        approval_window=draw(st.one_of(st.just(0), st.integers(1, 3 * DAY))),
        dispute_timeout=draw(st.integers(1, 5 * DAY)),
        expiry_slack=draw(st.one_of(st.just(1), st.integers(1, 5 * DAY))),
        # RELEASE twice as often: its default outcome depends on the consent given before the dispute
        dispute_default=draw(st.sampled_from([0, 1, 1])),
        desk_fee_bps=desk_fee,
        introducers=tuple(introducers),
        resolver_fee_bps=draw(st.one_of(st.just(0), st.just(500), st.integers(0, 500))),
        fee_leg=fee_leg,
        markers=tuple(markers),
        approvers=tuple(approvers),
        # thresholds: often every holder (then each one's consent, the disputant's included, matters)
        approval_threshold=draw(st.one_of(st.just(len(approvers)), st.integers(1, len(approvers)))) if approvers else 0,
        signers=tuple(signers),
        release_threshold=draw(st.one_of(st.just(len(signers)), st.integers(1, len(signers)))) if signers else 0,
        base_receiver=draw(st.sampled_from(["buyer", "buyer_custody"])),
        quote_receiver=draw(st.sampled_from(["seller", "seller_treasury"])),
        creator=draw(st.sampled_from(["desk", "buyer", "seller", "attacker"])),
        create_and_fund=draw(st.booleans()),
        prefund=draw(st.one_of(st.just("all"), st.just("all"), st.just("all"), st.sampled_from(["first", "none"]))),
        fund_via=draw(st.sampled_from(["deal", "factory"])),
        blocked=draw(
            st.one_of(
                st.just(()),
                st.lists(st.sampled_from(BLOCKABLE), unique=True, min_size=1, max_size=2).map(tuple),
            )
        ),
    )


# ------------------------------------------------------------------------------ chain access
@dataclass
class Ctx:
    chain: object
    project: object
    factory: object
    tokens: dict  # name -> contract
    accounts: dict  # actor name -> account


def _sel(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


SEL_BALANCE = _sel("balanceOf(address)")
SEL_CLAIMABLE = _sel("claimable(address,address)")
SEL_UNCLAIMED = _sel("unclaimed(address)")
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


class Rpc:
    """Reads many views in one JSON-RPC batch (web3's batching is an order of magnitude slower)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.session = requests.Session()

    def read(self, items: list[tuple[object, str, bytes]]) -> dict:
        payload = [
            {
                "jsonrpc": "2.0",
                "id": k,
                "method": "eth_call",
                "params": [{"to": to, "data": "0x" + data.hex()}, "latest"],
            }
            for k, (_, to, data) in enumerate(items)
        ]
        replies = sorted(self.session.post(self.uri, json=payload, timeout=60).json(), key=lambda r: r["id"])
        out = {}
        for (key, _, _), reply in zip(items, replies, strict=True):
            assert "error" not in reply, f"view {key} failed: {reply['error']}"
            out[key] = int(reply["result"], 16)
        return out

    def revert_reason(self, sender: str, to: str, data: bytes) -> str | None:
        """eth_call on the pending block (at the next block's timestamp): None if it would succeed,
        else the revert reason."""
        call = {"from": sender, "to": to, "data": "0x" + bytes(data).hex()}
        reply = self.session.post(
            self.uri,
            json={"jsonrpc": "2.0", "id": 0, "method": "eth_call", "params": [call, "pending"]},
            timeout=60,
        ).json()
        if "error" not in reply:
            return None
        error = reply["error"]
        payload = error.get("data") or ""
        if isinstance(payload, str) and payload.startswith("0x08c379a0"):  # Error(string)
            return decode(["string"], bytes.fromhex(payload[10:]))[0]
        assert "revert" in error.get("message", ""), f"eth_call failed: {error}"
        return error["message"]


def _diff(a: dict, b: dict) -> str:
    return ", ".join(f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k))


# ------------------------------------------------------------------------------ the machine
class DealMachine(RuleBasedStateMachine):
    """One deal per example; see the module docstring. Subclassed per mode by `machine_for`."""

    ctx: Ctx

    def __init__(self):
        super().__init__()
        self.ready = False
        self.steps = 0  # rules run
        self.checked = 0  # rules whose post-state passed every invariant
        self.drained: set = set()
        self.snapshot = self.ctx.chain.snapshot()

    def teardown(self):
        try:
            # The no-stuck-funds check at final expiry, unless a rule or invariant already failed
            # (its error must not be masked).
            if self.ready and self.checked == self.steps:
                self._drain_check()
        finally:
            self.ctx.chain.restore(self.snapshot)

    # ------------------------------------------------------------------------- setup
    def _create(self, cfg: DealConfig):
        c = self.ctx
        self.cfg = cfg
        self.now = c.chain.pending_timestamp
        self.addr = {name: c.accounts[name].address for name in ACTORS}
        self.base_on = cfg.on_chain in ("both", "base")
        self.quote_on = cfg.on_chain in ("both", "quote")
        self.leg_tok = {0: "wbtc" if self.base_on else None, 1: cfg.quote_token if self.quote_on else None}
        self.toks = [t for t in (self.leg_tok[0], self.leg_tok[1]) if t]

        fd = self.now + cfg.funding_window
        tranches = [Tranche(b, q, fd + u, max(fd, fd + u + w)) for b, q, u, w in cfg.tranches]
        last = max([fd] + [tr.deadline for tr in tranches])
        a = self.addr
        terms = Terms.build(
            base=Leg(
                c.tokens["wbtc"].address if self.base_on else ZERO_ADDRESS,
                sum(tr.base_amount for tr in tranches),
                self.base_on,
            ),
            quote=Leg(
                c.tokens[cfg.quote_token].address if self.quote_on else ZERO_ADDRESS,
                sum(tr.quote_amount for tr in tranches),
                self.quote_on,
            ),
            buyer=a["buyer"],
            seller=a["seller"],
            platform=a["desk"],
            resolver=a["resolver"],
            tranches=tranches,
            funding_deadline=fd,
            final_expiry=last + cfg.approval_window + cfg.dispute_timeout + cfg.expiry_slack,
            base_receiver=a[cfg.base_receiver],
            quote_receiver=a[cfg.quote_receiver],
            markers=[a[m] for m in cfg.markers],
            approvers=[a[m] for m in cfg.approvers],
            approval_threshold=cfg.approval_threshold,
            signers=[a[m] for m in cfg.signers],
            release_threshold=cfg.release_threshold,
            desk_fee_bps=cfg.desk_fee_bps,
            introducers=[(a[m], bps) for m, bps in cfg.introducers],
            fee_leg=LegId(cfg.fee_leg),
            resolver_fee_bps=cfg.resolver_fee_bps,
            approval_window=cfg.approval_window,
            dispute_timeout=cfg.dispute_timeout,
            dispute_default=DisputeDefault(cfg.dispute_default),
        ).validate(now=self.now)
        self.terms = terms
        self.n = len(tranches)
        self.fd, self.fe = terms.funding_deadline, terms.final_expiry
        self.leg_total = {0: terms.base.amount, 1: terms.quote.amount}
        name_of = {v: k for k, v in a.items()}
        self.roles = {name_of[p.wallet]: p.roles for p in terms.parties}
        self.named = set(self.roles)
        self.holders = {
            "marker": list(cfg.markers),
            "approver": list(cfg.approvers),
            "signer": list(cfg.signers),
        }
        # fee takers in party order, as the contract pays them: (name, bps)
        self.fee_takers = [
            (name_of[p.wallet], terms.desk_fee_bps if i == 2 else p.bps)
            for i, p in enumerate(terms.parties)
            if i == 2 or p.roles & Role.INTRODUCER
        ]
        self.base_receiver = name_of[terms.base_receiver]
        self.quote_receiver = name_of[terms.quote_receiver]

        # model state
        self.status = [PENDING] * self.n
        self.marked_at = [0] * self.n
        self.disputed_at = [0] * self.n
        self.disputant: list[str | None] = [None] * self.n  # who disputed each tranche
        self.approvals: list[set] = [set() for _ in range(self.n)]
        self.sigs: list[set] = [set() for _ in range(self.n)]
        self.funded = {0: False, 1: False}
        self.closed: str | None = None
        self.blocked = {tok: set() for tok in self.toks}
        self.claimable: dict[tuple[str, str], int] = {}
        self.allowance: dict[tuple[str, str, str], int] = {}  # (token, owner, "deal" | "factory")
        self.ev_in = dict.fromkeys(self.toks, 0)  # Transfer events into the deal
        self.ev_out = dict.fromkeys(self.toks, 0)  # Transfer events out of the deal
        self.claimed_to_cold = dict.fromkeys(self.toks, 0)

        # mint twice each on-chain leg to its funder, who approves both the (predicted) deal address
        # and the factory for twice the leg: only the escrow's rules stand in the way of a 2nd deposit
        struct = terms.as_struct()
        salt = keccak(text=f"nexotc-fuzz-{self.now}")
        creator = c.accounts[cfg.creator]
        predicted = c.factory.predict_address(struct, creator, salt, 0)
        desk = c.accounts["desk"]
        for leg, funder in ((0, "seller"), (1, "buyer")):
            tok = self.leg_tok[leg]
            if tok:
                self._tx(c.tokens[tok].mint, self.addr[funder], 2 * self.leg_total[leg], sender=desk)
                for spender, address in (("deal", predicted), ("factory", c.factory.address)):
                    self._tx(c.tokens[tok].approve, address, 2 * self.leg_total[leg], sender=c.accounts[funder])
                    self.allowance[(tok, funder, spender)] = 2 * self.leg_total[leg]
        self.deal_addr = predicted
        self.baseline = self.ctx_rpc.read(self._balance_items())
        self.bal = dict(self.baseline)

        funding_leg = {"seller": 0, "buyer": 1}.get(cfg.creator) if cfg.create_and_fund else None
        if funding_leg is not None and self.leg_tok[funding_leg]:
            receipt = self._tx(c.factory.create_and_fund, struct, salt, sender=creator)
            self._apply_fund(cfg.creator, funding_leg, "factory")
        else:
            receipt = self._tx(c.factory.create_deal, struct, salt, sender=creator)
        self._ledger(receipt)
        self.deal = c.project.DealEscrow.at(predicted)
        assert bytes(self.deal.terms_hash()) == terms.terms_hash(), "deal carries other terms"
        self.items = self._view_items()
        self.obs = self.ctx_rpc.read(self.items)
        self.ready = True
        self._check()  # creation itself must satisfy every invariant

        legs = [leg for leg in (0, 1) if self.leg_tok[leg]]
        for leg in legs[: {"none": 0, "first": 1, "all": 2}[cfg.prefund]]:
            self.fund({0: "seller", 1: "buyer"}[leg], cfg.fund_via)
            self._check()
        for wallet in cfg.blocked:
            for leg in legs:
                self.set_blocked(leg, wallet, True)
        self.steps = self.checked = 0
        STATS[
            f"example: {cfg.on_chain} on chain, funded={self._funded_all()}, blocked={bool(cfg.blocked)}, "
            f"default {DisputeDefault(cfg.dispute_default).name}"
        ] += 1

    @property
    def ctx_rpc(self) -> Rpc:
        rpc = getattr(type(self), "_rpc", None)
        if rpc is None or rpc.uri != self.ctx.chain.provider.uri:
            rpc = type(self)._rpc = Rpc(self.ctx.chain.provider.uri)
        return rpc

    def _balance_items(self):
        items = []
        for tok in self.toks:
            token = self.ctx.tokens[tok].address
            for name in (*ACTORS, "deal"):
                who = self.deal_addr if name == "deal" else self.addr[name]
                items.append((("bal", tok, name), token, SEL_BALANCE + encode(["address"], [who])))
        return items

    def _view_items(self):
        d = self.deal_addr
        items = self._balance_items()
        for tok in self.toks:
            token = self.ctx.tokens[tok].address
            items.append((("unclaimed", tok), d, SEL_UNCLAIMED + encode(["address"], [token])))
            for name in ACTORS:
                items.append(
                    (
                        ("claimable", name, tok),
                        d,
                        SEL_CLAIMABLE + encode(["address", "address"], [self.addr[name], token]),
                    )
                )
        items.append((("phase",), d, _sel("phase()")))
        for leg in (0, 1):
            items.append((("held", leg), d, _sel("held(uint256)") + encode(["uint256"], [leg])))
            items.append((("funded", leg), d, _sel("funded(uint256)") + encode(["uint256"], [leg])))
        for view in ("tranche_status", "approvals", "signatures", "marked_at", "disputed_at"):
            for i in range(self.n):
                items.append(((view, i), d, _sel(f"{view}(uint256)") + encode(["uint256"], [i])))
        return items

    # ------------------------------------------------------------------ transactions
    def _set_time(self, t: int | None = None):
        self.ctx.chain.pending_timestamp = self.now if t is None else t

    def _tx(self, method, *args, sender):
        self._set_time()
        return method(*args, sender=sender)

    def _ledger(self, receipt):
        """Accumulate the token Transfer events into and out of the deal."""
        by_address = {self.ctx.tokens[t].address.lower(): t for t in self.toks}
        deal = self.deal_addr.lower()
        for log in receipt.logs:
            tok = by_address.get(str(log["address"]).lower())
            topics = [bytes(t) for t in log["topics"]]
            if tok is None or len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
                continue
            frm, to = ("0x" + topics[1][-20:].hex()), ("0x" + topics[2][-20:].hex())
            value = int.from_bytes(bytes(log["data"]), "big")
            if to == deal:
                self.ev_in[tok] += value
            if frm == deal:
                self.ev_out[tok] += value

    def _call(self, fn: str, *args, who: str, on=None):
        """Call deal.fn(*args) (or `on`.fn) from `who` at the machine's clock. Returns the receipt, or
        None and the revert reason. The call is first made as an eth_call on the pending block (cheap;
        ape's error enrichment costs ~50 ms a revert); only a call that passes is sent, through ape,
        as a transaction (a revert there raises ape's ContractLogicError)."""
        contract = self.deal if on is None else on
        self._last = f"{fn}{args} from {who}"
        method = getattr(contract, fn)
        sender = self.ctx.accounts[who]
        self._set_time()
        reason = self.ctx_rpc.revert_reason(sender.address, contract.address, method.encode_input(*args))
        if reason is not None:
            return None, reason
        try:
            receipt = method(*args, sender=sender)
        except ContractLogicError as err:
            return None, f"{err.message} (mined)"
        self._ledger(receipt)
        return receipt, None

    def _outcome(self, receipt, reason, expected: tuple[bool, str]) -> bool:
        """Check the call's outcome against the model's prediction; True if it succeeded."""
        ok, why = expected
        label = f"{self._last.split('(')[0]}: " + ("ok" if receipt is not None else f"reverted ({reason})")
        event(label)
        STATS[label] += 1
        if receipt is None:
            after = self.ctx_rpc.read(self.items)
            assert after == self.obs, f"{self._last} reverted ({reason}) but changed state: " + _diff(self.obs, after)
            assert not ok, f"{self._last} reverted with {reason!r} although allowed ({why})"
            return False
        assert ok, f"{self._last} succeeded although it must revert: {why}"
        return True

    # ------------------------------------------------------------------ model helpers
    def _who(self, name: str) -> str:
        """An actor name, or "role#k": the k-th holder of the role in the terms (else the attacker)."""
        if "#" not in name:
            return name
        role, k = name.split("#")
        holders = self.holders[role]
        return holders[int(k) % len(holders)] if holders else "attacker"

    def _idx(self, tranche: int | str, statuses: tuple[int, ...], timely=lambda i: True) -> int:
        """The tranche index a rule acts on. "pick": the first tranche in one of `statuses` whose
        timing suits the rule (`timely`), else the first in one of `statuses`; "final": likewise among
        the tranches already paid out; else 0. An int is taken modulo n + 1 (n: an invalid index)."""
        if tranche in ("pick", "final"):
            wanted = statuses if tranche == "pick" else FINAL
            candidates = [i for i in range(self.n) if self.status[i] in wanted]
            return next((i for i in candidates if timely(i)), candidates[0] if candidates else 0)
        return tranche % (self.n + 1)

    def _before_deadline(self, i: int) -> bool:
        return self.now <= self._tr(i).deadline

    def _disputable_time(self, i: int) -> bool:
        if self.status[i] == MARKED:
            return not self._window_passed(i)
        return self._before_deadline(i)

    def _window_passed(self, i: int) -> bool:
        """ESCROWED with an approval window: it has passed since tranche `i` was marked (disputes are closed,
        anyone may release)."""
        window = self.terms.approval_window
        return self.cfg.mode == "escrowed" and window > 0 and self.now >= self.marked_at[i] + window

    def _releasable_time(self, i: int) -> bool:
        """Timing under which a release could pay (DVP: between unlock and deadline)."""
        tr = self._tr(i)
        return self.cfg.mode == "escrowed" or tr.unlock_time <= self.now <= tr.deadline

    @property
    def _open(self) -> int:
        """The status a tranche is approved and released from."""
        return MARKED if self.cfg.mode == "escrowed" else PENDING

    def _has(self, who: str, role: Role) -> bool:
        return bool(self.roles.get(who, 0) & role)

    def _funded_all(self) -> bool:
        return (self.funded[0] or not self.base_on) and (self.funded[1] or not self.quote_on)

    def _active(self) -> tuple[bool, str]:
        if self.closed:
            return False, f"deal {self.closed}"
        if not self._funded_all():
            return False, "deal not funded"
        if self.now >= self.fe:
            return False, "final expiry reached"
        return True, "active"

    def _tr(self, i: int) -> Tranche:
        return self.terms.tranches[i]

    def _on_chain_amounts(self, i: int) -> tuple[int, int]:
        tr = self._tr(i)
        return (tr.base_amount if self.base_on else 0), (tr.quote_amount if self.quote_on else 0)

    def _releasable(self, i: int) -> tuple[bool, str]:
        if self.cfg.mode == "escrowed":
            return (self.status[i] == MARKED), f"status {self.status[i]} (must be marked)"
        if self.status[i] != PENDING:
            return False, f"status {self.status[i]} (must be pending)"
        return self.now <= self._tr(i).deadline, "delivery deadline"

    def _transfer_fails(self, tok: str, frm: str, to: str) -> bool:
        blocked = self.blocked[tok]
        if tok == "usdt":  # MockUSDT only checks the sender
            return frm in blocked
        return frm in blocked or to in blocked

    def _pay(self, tok: str, to: str, amount: int):
        """DealEscrow._pay: push, or credit a pull balance when the transfer fails."""
        if amount == 0:
            return
        if self._transfer_fails(tok, "deal", to):
            STATS[f"payment deferred ({tok})"] += 1
            self.claimable[(to, tok)] = self.claimable.get((to, tok), 0) + amount
        else:
            self.bal[("bal", tok, to)] += amount
            self.bal[("bal", tok, "deal")] -= amount

    def _pay_funders(self, base_amount: int, quote_amount: int):
        if base_amount:
            self._pay(self.leg_tok[0], "seller", base_amount)
        if quote_amount:
            self._pay(self.leg_tok[1], "buyer", quote_amount)

    def _pay_receivers(self, base_amount: int, quote_amount: int):
        fee_leg = int(self.terms.fee_leg)
        fee_base = base_amount if fee_leg == 0 else quote_amount
        fees = 0
        if fee_base > 0:
            for name, bps in self.fee_takers:
                cut = fee_base * bps // BPS
                fees += cut
                self._pay(self.leg_tok[fee_leg], name, cut)
        if fee_leg == 0:
            self._pay(self.leg_tok[0], self.base_receiver, base_amount - fees)
            if quote_amount:
                self._pay(self.leg_tok[1], self.quote_receiver, quote_amount)
        else:
            if base_amount:
                self._pay(self.leg_tok[0], self.base_receiver, base_amount)
            self._pay(self.leg_tok[1], self.quote_receiver, quote_amount - fees)

    def _pay_split(self, base: tuple[int, int, int], quote: tuple[int, int, int]):
        """Split = (to_receiver, to_funder, to_resolver)."""
        if base[2]:
            self._pay(self.leg_tok[0], "resolver", base[2])
        if quote[2]:
            self._pay(self.leg_tok[1], "resolver", quote[2])
        self._pay_funders(base[1], quote[1])
        if base[0] or quote[0]:
            self._pay_receivers(base[0], quote[0])

    def _return_deposits(self):
        self._pay_funders(self.leg_total[0] if self.funded[0] else 0, self.leg_total[1] if self.funded[1] else 0)

    def _apply_fund(self, who: str, leg: int, via: str):
        tok, amount = self.leg_tok[leg], self.leg_total[leg]
        self.funded[leg] = True
        self.bal[("bal", tok, who)] -= amount
        self.bal[("bal", tok, "deal")] += amount
        self.allowance[(tok, who, via)] -= amount

    def _expected_views(self) -> dict:
        exp = dict(self.bal)
        for tok in self.toks:
            exp[("unclaimed", tok)] = sum(v for (_, t), v in self.claimable.items() if t == tok)
            for name in ACTORS:
                exp[("claimable", name, tok)] = self.claimable.get((name, tok), 0)
        if self.closed == "cancelled":
            phase = Phase.CANCELLED
        elif self.closed == "expired":
            phase = Phase.EXPIRED
        elif not self._funded_all():
            phase = Phase.FUNDING
        elif any(s < RELEASED for s in self.status):
            phase = Phase.ACTIVE
        else:
            phase = Phase.SETTLED
        exp[("phase",)] = int(phase)
        for leg in (0, 1):
            exp[("funded", leg)] = int(self.funded[leg])
            held = 0
            if self.funded[leg] and not self.closed:
                held = sum(
                    (self._tr(i).base_amount, self._tr(i).quote_amount)[leg]
                    for i in range(self.n)
                    if self.status[i] < RELEASED
                )
            exp[("held", leg)] = held
        for i in range(self.n):
            exp[("tranche_status", i)] = self.status[i]
            exp[("approvals", i)] = len(self.approvals[i])
            exp[("signatures", i)] = len(self.sigs[i])
            exp[("marked_at", i)] = self.marked_at[i]
            exp[("disputed_at", i)] = self.disputed_at[i]
        return exp

    # ------------------------------------------------------------------ rules: funding
    @rule(who=biased("buyer", "seller"), via=st.sampled_from(["deal", "factory"]))
    def fund(self, who, via="deal"):
        """Deposit the caller's leg: deal.fund() from an allowance to the deal, or
        factory.fund_deal(deal) from an allowance to the factory (the deal is credited)."""
        self.steps += 1
        expected = self._predict_fund(who, via)
        if via == "deal":
            receipt, reason = self._call("fund", who=who)
        else:
            receipt, reason = self._call("fund_deal", self.deal_addr, who=who, on=self.ctx.factory)
        if self._outcome(receipt, reason, expected):
            self._apply_fund(who, 0 if who == "seller" else 1, via)

    def _predict_fund(self, who, via):
        if self.closed:
            return False, "deal closed"
        if self.now > self.fd:
            return False, "funding closed"
        if who == "seller" and self.base_on:
            leg = 0
        elif who == "buyer" and self.quote_on:
            leg = 1
        else:
            return False, "nothing to fund"
        if self.funded[leg]:
            return False, "already funded"
        tok, amount = self.leg_tok[leg], self.leg_total[leg]
        if self._transfer_fails(tok, who, "deal"):
            return False, "funder or deal blocked"
        if self.bal[("bal", tok, who)] < amount or self.allowance[(tok, who, via)] < amount:
            return False, "balance or allowance"
        return True, "funder before the funding deadline"

    @rule(who=ANY_ACTOR)
    def cancel_unfunded(self, who):
        self.steps += 1
        if self.closed:
            expected = False, "deal closed"
        elif self._funded_all():
            expected = False, "deal is funded"
        elif self.now <= self.fd:
            expected = False, "funding open"
        else:
            expected = True, "unfunded after the funding deadline"
        receipt, reason = self._call("cancel_unfunded", who=who)
        if self._outcome(receipt, reason, expected):
            self.closed = "cancelled"
            self._return_deposits()

    # ------------------------------------------------------------------ rules: tranche flow
    @precondition(lambda self: self.cfg.mode == "escrowed")
    @rule(who=biased("marker#0", "marker#1"), tranche=TRANCHE)
    def mark(self, who, tranche):
        self.steps += 1
        who, i = self._who(who), self._idx(tranche, (PENDING,), self._before_deadline)
        if self.cfg.mode != "escrowed":
            expected = False, "no marks in DVP"
        elif not self._has(who, Role.MARKER):
            expected = False, "not a marker"
        elif not (act := self._active())[0]:
            expected = act
        elif i >= self.n:
            expected = False, "no such tranche"
        elif self.status[i] != PENDING:
            expected = False, "tranche not pending"
        elif self.now > self._tr(i).deadline:
            expected = False, "delivery deadline passed"
        else:
            expected = True, "marker, pending, before the deadline"
        receipt, reason = self._call("mark", i, keccak(text=f"evidence {i}"), who=who)
        if self._outcome(receipt, reason, expected):
            self.status[i] = MARKED
            self.marked_at[i] = self.now

    @rule(who=biased("approver#0", "approver#1", "approver#2"), tranche=TRANCHE)
    def approve(self, who, tranche):
        self.steps += 1
        who, i = self._who(who), self._idx(tranche, (self._open,), self._releasable_time)
        if not self._has(who, Role.APPROVER):
            expected = False, "not an approver"
        elif not (act := self._active())[0]:
            expected = act
        elif i >= self.n:
            expected = False, "no such tranche"
        elif not (rel := self._releasable(i))[0]:
            expected = rel
        elif who in self.approvals[i]:
            expected = False, "already approved"
        else:
            expected = True, "approver, releasable"
        receipt, reason = self._call("approve", i, who=who)
        if self._outcome(receipt, reason, expected):
            self.approvals[i].add(who)

    @rule(who=biased("signer#0", "signer#1", "signer#2"), tranche=TRANCHE)
    def release(self, who, tranche):
        self.steps += 1
        who, i = self._who(who), self._idx(tranche, (self._open,), self._releasable_time)
        expected, signs, payout = self._predict_release(who, i)
        receipt, reason = self._call("release", i, who=who)
        if self._outcome(receipt, reason, expected):
            if signs and not payout:  # a paying call leaves its signature in the Signed event only
                self.sigs[i].add(who)
            if payout:
                self.status[i] = RELEASED
                self._pay_receivers(*self._on_chain_amounts(i))

    def _predict_release(self, who: str, i: int) -> tuple[tuple[bool, str], bool, bool]:
        """(expected outcome, the call records a new signature, the call pays out)."""
        if not (act := self._active())[0]:
            return act, False, False
        if i >= self.n:
            return (False, "no such tranche"), False, False
        if not (rel := self._releasable(i))[0]:
            return rel, False, False
        tr = self._tr(i)
        signs = self.terms.release_threshold > 0 and self._has(who, Role.SIGNER) and who not in self.sigs[i]
        window_passed = self._window_passed(i)
        quorum = self._quorum(self.approvals[i], self.sigs[i] | ({who} if signs else set()))
        payout = (window_passed or quorum) and self.now >= tr.unlock_time
        why = (
            f"payout={payout} (window passed {window_passed}, quorum {quorum}, "
            f"unlocked {self.now >= tr.unlock_time}), new signature={signs}"
        )
        return ((payout or signs), why), signs, payout

    def _quorum(self, approvals: set, sigs: set) -> bool:
        """DealEscrow._quorum: approvals and release signatures meet the terms' thresholds. Keyed by
        actor name, as the contract keys them by party index: Terms.build makes one party of each
        wallet (validate() and the factory refuse a wallet twice), so a name is one party index."""
        return len(approvals) >= self.terms.approval_threshold and len(sigs) >= self.terms.release_threshold

    @rule(who=ANY_ACTOR, tranche=TRANCHE)
    def refund(self, who, tranche):
        self.steps += 1
        i = self._idx(tranche, (PENDING,), lambda i: not self._before_deadline(i))
        if not (act := self._active())[0]:
            expected = act
        elif i >= self.n:
            expected = False, "no such tranche"
        elif self.status[i] != PENDING:
            expected = False, "tranche not pending"
        elif self.now <= self._tr(i).deadline:
            expected = False, "deadline not passed"
        else:
            expected = True, "pending after its deadline"
        receipt, reason = self._call("refund", i, who=who)
        if self._outcome(receipt, reason, expected):
            self.status[i] = REFUNDED
            self._pay_funders(*self._on_chain_amounts(i))

    # ------------------------------------------------------------------ rules: disputes
    @rule(who=biased("buyer", "seller"), tranche=TRANCHE)
    def dispute(self, who, tranche):
        self.steps += 1
        i = self._idx(tranche, (PENDING, MARKED), self._disputable_time)
        if who not in ("buyer", "seller"):
            expected = False, "not buyer or seller"
        elif not (act := self._active())[0]:
            expected = act
        elif i >= self.n:
            expected = False, "no such tranche"
        elif self.status[i] == PENDING and self.now > self._tr(i).deadline:
            expected = False, "deadline passed"
        elif self.status[i] not in (PENDING, MARKED):
            expected = False, "tranche not open"
        elif self.status[i] == MARKED and self._window_passed(i):
            expected = False, "approval window passed"
        elif self.now + self.terms.dispute_timeout >= self.fe:
            expected = False, "too close to final expiry"
        else:
            expected = True, "party, open tranche"
        receipt, reason = self._call("dispute", i, keccak(text="reason"), who=who)
        if self._outcome(receipt, reason, expected):
            self.status[i] = DISPUTED
            self.disputed_at[i] = self.now
            self.disputant[i] = who

    def _split(self, amount: int, kind: str, to_resolver: int, to_receiver: int, perturb: bool):
        cap = amount * self.terms.resolver_fee_bps // BPS
        res = cap * to_resolver // BPS
        recv = (amount - res) * to_receiver // BPS
        split = [recv, amount - res - recv, res]
        if perturb:
            if kind == "over":
                split[1] += 1
            elif kind == "under" and split[1] > 0:
                split[1] -= 1
            elif kind == "under" and split[0] > 0:
                split[0] -= 1
            elif kind == "fee_above_cap":
                split[2] = cap + 1
                split[1] = amount - split[0] - split[2]
                if split[1] < 0:
                    split[0] += split[1]
                    split[1] = 0
        return tuple(max(0, v) for v in split)

    def _valid_split(self, split, amount: int) -> bool:
        return sum(split) == amount and split[2] * BPS <= amount * self.terms.resolver_fee_bps

    @rule(
        who=biased("resolver"),
        tranche=TRANCHE,
        kind=st.one_of(st.just("valid"), st.sampled_from(["over", "under", "fee_above_cap", "off_chain_leg"])),
        to_resolver=st.integers(0, BPS),
        to_receiver=st.integers(0, BPS),
        bad_leg=st.sampled_from([0, 1]),
    )
    def resolve(self, who, tranche, kind, to_resolver, to_receiver, bad_leg):
        """Split the tranche: the resolver's part is a fraction of its cap, the receiver's a fraction
        of the rest, the funder's the remainder; `kind` perturbs one leg to make the split invalid."""
        self.steps += 1
        i = self._idx(tranche, (DISPUTED,))
        amounts = self._on_chain_amounts(i) if i < self.n else (1, 1)
        splits = [self._split(amounts[leg], kind, to_resolver, to_receiver, leg == bad_leg) for leg in (0, 1)]
        if kind == "off_chain_leg":  # a non-zero part on a leg the deal does not hold
            splits[bad_leg] = (splits[bad_leg][0] + 1, *splits[bad_leg][1:])
        if who != "resolver":
            expected = False, "not the resolver"
        elif not (act := self._active())[0]:
            expected = act
        elif i >= self.n or self.status[i] != DISPUTED:
            expected = False, "tranche not disputed"
        elif not all(self._valid_split(splits[leg], amounts[leg]) for leg in (0, 1)):
            expected = False, f"invalid split {splits} of {amounts}"
        else:
            expected = True, "resolver, disputed, valid split"
        receipt, reason = self._call("resolve", i, splits[0], splits[1], who=who)
        if self._outcome(receipt, reason, expected):
            self.status[i] = RESOLVED
            self._pay_split(splits[0], splits[1])

    def _default_release(self, i: int) -> bool:
        """The default outcome releases only with a delivery claim: DVP swaps both legs; an
        ESCROWED tranche must have been marked before the dispute (else the default refunds). And
        only if the release rules allow it with the disputant's own consent counted (its approval if
        it is an approver, its signature if it is a signer): a default stands in for the disputant
        (it lost its contest), never for anyone else's approval or signature. Except the payer's
        (the escrowed leg's funder's) dispute of a marked tranche within an approval window: its
        silence would have accepted for everyone (anyone releases once the window has passed), so
        does the contest it loses."""
        return self._default_outcome(i).startswith("release")

    def _default_outcome(self, i: int) -> str:
        """The default outcome of disputed tranche `i`: "release ...", or why it refunds."""
        if self.terms.dispute_default != DisputeDefault.RELEASE:
            return "refund (terms)"
        if self.cfg.mode == "dvp":
            payer = None
        else:
            if self.marked_at[i] == 0:
                return "refund (never marked)"
            payer = "buyer" if self.quote_on else "seller"
        d = self.disputant[i]
        own_approval = {d} if self._has(d, Role.APPROVER) else set()
        own_signature = {d} if self._has(d, Role.SIGNER) else set()
        consented = self._quorum(self.approvals[i] | own_approval, self.sigs[i] | own_signature)
        if self.terms.approval_window > 0 and d == payer:  # (only a marked tranche gets here)
            why = "" if consented else ", though consent beyond the payer's is missing"
            return f"release (the payer's silence within the approval window would have accepted{why})"
        if not consented:
            return "refund (consent missing beyond the disputant's)"
        if not self._quorum(self.approvals[i], self.sigs[i]):
            return "release (the disputant's own consent completes it)"
        return "release"

    @rule(who=ANY_ACTOR, tranche=TRANCHE)
    def settle_dispute(self, who, tranche):
        self.steps += 1
        i = self._idx(tranche, (DISPUTED,), lambda i: self.now >= self.disputed_at[i] + self.terms.dispute_timeout)
        if not (act := self._active())[0]:
            expected = act
        elif i >= self.n or self.status[i] != DISPUTED:
            expected = False, "tranche not disputed"
        elif self.now < self.disputed_at[i] + self.terms.dispute_timeout:
            expected = False, "dispute timeout not reached"
        elif self._default_release(i) and self.now < self._tr(i).unlock_time:
            expected = False, "tranche locked"
        else:
            expected = True, "disputed, timeout reached"
        receipt, reason = self._call("settle_dispute", i, who=who)
        if self._outcome(receipt, reason, expected):
            b, q = self._on_chain_amounts(i)
            outcome = self._default_outcome(i)
            event(f"settle_dispute: {outcome}")
            STATS[f"settle_dispute: {outcome}"] += 1
            self.status[i] = RESOLVED
            if self._default_release(i):
                self._pay_split((b, 0, 0), (q, 0, 0))
            else:
                self._pay_split((0, b, 0), (0, q, 0))

    # ------------------------------------------------------------------ rules: honest paths
    # Swarm testing (Hypothesis disables a random subset of rules in each example) and random callers
    # rarely line up a whole flow, so these three rules walk one tranche down an honest path through the
    # same checked calls, checking every invariant after each call.
    def _then(self, rule_method, *args):
        rule_method(*args)
        self._check()

    def _block_everywhere(self, wallet: str | None):
        for leg in (0, 1):
            if wallet and self.leg_tok[leg]:
                self.set_blocked(leg, wallet, True)

    @rule(tranche=TRANCHE, block=st.one_of(st.none(), st.sampled_from(BLOCKABLE)))
    def deliver_and_release(self, tranche, block):
        """Optionally blocklist a wallet (a payee: its payment is deferred), mark (ESCROWED), approve
        up to the threshold, wait for the unlock time if it is still before the deadline (DVP), then
        sign up to the threshold (the last call pays out)."""
        self._block_everywhere(block)
        i = self._idx(tranche, (PENDING, MARKED), self._before_deadline) % self.n
        if self.cfg.mode == "escrowed" and self.status[i] == PENDING:
            self._then(self.mark, self.holders["marker"][0], i)
        for who in self.holders["approver"][: self.terms.approval_threshold]:
            self._then(self.approve, who, i)
        if self.now < self._tr(i).unlock_time <= self._tr(i).deadline:
            self.now = self._tr(i).unlock_time
        for who in self.holders["signer"][: self.terms.release_threshold] or ["attacker"]:
            self._then(self.release, who, i)

    @rule(
        tranche=TRANCHE,
        party=st.sampled_from(["buyer", "seller"]),
        resolver_acts=st.booleans(),
        to_resolver=st.integers(0, BPS),
        to_receiver=st.integers(0, BPS),
        first_split=st.sampled_from(["valid", "over", "under", "fee_above_cap"]),
        when=st.sampled_from(["now", "now", "before cut-off", "at cut-off"]),
        block=st.one_of(st.none(), st.sampled_from(BLOCKABLE)),
        approvals=st.one_of(st.just(()), CONSENT),
        signatures=st.one_of(st.just(()), CONSENT),
    )
    def dispute_and_settle(
        self, tranche, party, resolver_acts, to_resolver, to_receiver, first_split, when, block, approvals, signatures
    ):
        """Optionally blocklist a wallet; optionally let some approvers approve and some signers sign
        (see `_consent`); dispute now, or (ESCROWED, once marked) one second before or at the dispute
        cut-off (final expiry - dispute timeout: too late); then either the resolver splits the
        tranche (first maybe with an invalid split, then a valid one) or, once the dispute timeout has
        passed, anyone applies the default outcome."""
        self._block_everywhere(block)
        i = self._idx(tranche, (PENDING, MARKED), self._disputable_time) % self.n
        if (when != "now" or approvals or signatures) and self.cfg.mode == "escrowed" and self.status[i] == PENDING:
            self._then(self.mark, self.holders["marker"][0], i)
        self._consent(i, approvals, signatures)
        if when != "now" and self.cfg.mode == "escrowed":
            cutoff = self.fe - self.terms.dispute_timeout - (when == "before cut-off")
            self.now = max(self.now, cutoff)
        self._then(self.dispute, party, i)
        if resolver_acts:
            amounts = self._on_chain_amounts(i)
            bad_leg = 0 if amounts[0] else 1
            self._then(self.resolve, "resolver", i, first_split, to_resolver, to_receiver, bad_leg)
            if self.status[i] == DISPUTED:
                self._then(self.resolve, "resolver", i, "valid", to_resolver, to_receiver, 0)
        else:
            self._settle_after_timeout(i)

    @precondition(
        lambda self: (
            self._active()[0]
            and any(self.status[i] in (PENDING, MARKED) and self._disputable_time(i) for i in range(self.n))
        )
    )
    @rule(
        tranche=st.one_of(st.just("pick"), st.just("pick"), st.integers(0, 5)),
        party=st.sampled_from(["buyer", "seller", "consenting"]),
        approvals=CONSENT,
        signatures=CONSENT,
        all_but_party=st.booleans(),
        wait=st.sampled_from([0, 0, 1, 3_600, DAY]),
    )
    def consent_dispute_default(self, tranche, party, approvals, signatures, all_but_party, wait):
        """The default outcome of a dispute raised with part of the release's consent given: mark
        (ESCROWED), let some approvers approve and some signers sign (see `_consent`; `all_but_party`:
        every approver and signer but the disputant), maybe wait, then a principal (maybe the paid
        side; "consenting": one that is an approver or signer itself, else the payer) disputes and
        the resolver stays idle: once the timeout has passed anyone settles. A default release must
        not stand in for anyone's consent but the disputant's, and does stand in for the disputant's
        (and, ESCROWED, for everyone's when the payer disputes within an approval window)."""
        if party == "consenting":
            consenting = [p for p in ("buyer", "seller") if self._has(p, Role.APPROVER | Role.SIGNER)]
            party = consenting[0] if consenting else "seller" if self.cfg.on_chain == "base" else "buyer"
        i = self._idx(tranche, (self._open, PENDING), self._disputable_time) % self.n
        if self.cfg.mode == "escrowed" and self.status[i] == PENDING:
            self._then(self.mark, self.holders["marker"][0], i)
        if all_but_party:
            approvals, signatures = (
                tuple(k for k, who in enumerate(self.holders[role]) if who != party) for role in ("approver", "signer")
            )
        self._consent(i, approvals, signatures)
        self.now += wait
        self._then(self.dispute, party, i)
        self.now = max(self.now, self._tr(i).unlock_time)  # a default release waits for the unlock
        self._settle_after_timeout(i)

    def _consent(self, i: int, approvals: tuple[int, ...], signatures: tuple[int, ...]):
        """The approvers, then the signers, at these positions (modulo their number) approve and sign
        tranche `i`, a signature that would pay the tranche out excepted: the consent a later
        dispute finds."""
        for role, picks in (("approver", approvals), ("signer", signatures)):
            holders = self.holders[role]
            for who in dict.fromkeys(holders[k % len(holders)] for k in picks) if holders else ():
                if role == "approver":
                    self._then(self.approve, who, i)
                elif not self._predict_release(who, i)[2]:
                    self._then(self.release, who, i)

    def _settle_after_timeout(self, i: int):
        self.now = max(self.now, self.disputed_at[i] + self.terms.dispute_timeout)
        self._then(self.settle_dispute, "attacker", i)

    # ------------------------------------------------------------------ rules: expiry, claims
    @rule(who=ANY_ACTOR)
    def expire(self, who):
        self.steps += 1
        if self.closed:
            expected = False, "deal closed"
        elif self.now < self.fe:
            expected = False, "before final expiry"
        elif self._settled():
            expected = False, "deal settled"
        else:
            expected = True, "after final expiry"
        receipt, reason = self._call("expire", who=who)
        if self._outcome(receipt, reason, expected):
            self._apply_expire()

    def _settled(self) -> bool:
        """Funded, and every tranche paid out: nothing left to expire."""
        return self._funded_all() and all(s in FINAL for s in self.status)

    def _apply_expire(self):
        self.closed = "expired"
        if not self._funded_all():
            self._return_deposits()
            return
        back = [0, 0]
        for i in range(self.n):
            if self.status[i] in (PENDING, MARKED, DISPUTED):
                self.status[i] = REFUNDED
                b, q = self._on_chain_amounts(i)
                back[0] += b
                back[1] += q
        self._pay_funders(*back)

    @rule(
        who=biased("owed#0", "owed#1"),
        leg=st.sampled_from([0, 1]),
        recipient=st.sampled_from(["self", "unblocked self", "cold_wallet", "zero", "deal", "factory"]),
    )
    def claim(self, who, leg, recipient):
        """A payee withdraws its pull balance ("owed#k": the k-th (payee, token) owed, whatever
        `leg` says) to itself, to itself once taken off the token's blocklist, to a wallet of its
        choice, or to the zero address."""
        self.steps += 1
        tok = self.leg_tok[leg] or self.leg_tok[1 - leg]
        if who.startswith("owed#"):
            owed = sorted(key for key, amount in self.claimable.items() if amount > 0)
            who, tok = owed[int(who[5:]) % len(owed)] if owed else ("attacker", tok)
        if recipient == "unblocked self" and who in self.blocked[tok]:
            self.set_blocked(0 if self.leg_tok[0] == tok else 1, who, False)
        to = who if recipient.endswith("self") else recipient
        amount = self.claimable.get((who, tok), 0)
        if amount == 0:
            expected = False, "nothing to claim"
        elif to == "zero":
            expected = False, "zero recipient"
        elif to in ("deal", "factory"):
            expected = False, "recipient would lock the funds"
        elif self._transfer_fails(tok, "deal", to):
            expected = False, "transfer failed (blocked)"
        else:
            expected = True, "payee with a pull balance"
        recipient_addr = {"zero": ZERO_ADDRESS, "deal": self.deal_addr, "factory": self.ctx.factory.address}.get(
            to
        ) or self.addr[to]
        receipt, reason = self._call("claim", self.ctx.tokens[tok].address, recipient_addr, who=who)
        if self._outcome(receipt, reason, expected):
            del self.claimable[(who, tok)]
            self.bal[("bal", tok, to)] += amount
            self.bal[("bal", tok, "deal")] -= amount
            if to == "cold_wallet":
                self.claimed_to_cold[tok] += amount

    @precondition(lambda self: any(self.claimable.values()))
    @rule(k=st.integers(0, 3), recipient=st.sampled_from(["self", "unblocked self", "cold_wallet"]))
    def claim_owed(self, k, recipient):
        """While something is owed, the k-th payee owed claims it (see `claim`)."""
        self.claim(f"owed#{k}", 0, recipient)

    # ------------------------------------------------------------------ rules: environment
    @rule(
        leg=st.sampled_from([0, 1]),
        wallet=st.one_of(st.sampled_from(BLOCKABLE), ANY_ACTOR),
        flag=st.booleans(),
    )
    def set_blocked(self, leg, wallet, flag):
        """Blocklist (or clear) a wallet, or the deal itself, on one of the deal's tokens."""
        self.steps += 1
        tok = self.leg_tok[leg] or self.leg_tok[1 - leg]
        who = self.deal_addr if wallet == "deal" else self.addr[wallet]
        self._tx(self.ctx.tokens[tok].set_blocked, who, flag, sender=self.ctx.accounts["desk"])
        (self.blocked[tok].add if flag else self.blocked[tok].discard)(wallet)

    @rule(seconds=st.one_of(st.integers(1, 3_600), st.integers(1, 2 * DAY)))
    def advance(self, seconds):
        self.steps += 1
        self.now += seconds
        self._set_time()

    def _events(self, i: int) -> dict[str, int]:
        tr, m, d = self._tr(i), self.marked_at[i], self.disputed_at[i]
        return {
            "funding_deadline": self.fd,
            "unlock": tr.unlock_time,
            "deadline": tr.deadline,
            "approval_window_end": m + self.terms.approval_window if m else 0,
            "dispute_timeout_end": d + self.terms.dispute_timeout if d else 0,
            "dispute_cutoff": self.fe - self.terms.dispute_timeout,  # first second a dispute is late
            "final_expiry": self.fe,
        }

    @rule(
        event=st.sampled_from(
            [
                "next",
                "next",
                "unlock",
                "deadline",
                "funding_deadline",
                "approval_window_end",
                "dispute_timeout_end",
                "dispute_cutoff",
                "final_expiry",
            ]
        ),
        tranche=TRANCHE,
        delta=st.sampled_from([0, 1, -1]),
    )
    def travel_to(self, event, tranche, delta):
        """Jump to one second before, at or after an event of the deal, if still ahead ("next": the
        nearest event of any tranche ahead)."""
        self.steps += 1
        if event == "next":
            ahead = [t for i in range(self.n) for t in self._events(i).values() if t + delta > self.now]
            target = min(ahead, default=self.now) + delta
        else:
            statuses = {"approval_window_end": (MARKED,), "dispute_timeout_end": (DISPUTED,)}.get(
                event, (PENDING, MARKED, DISPUTED)
            )
            target = self._events(self._idx(tranche, statuses) % self.n)[event] + delta
        if target > self.now:
            self.now = target
            self._set_time()

    # ------------------------------------------------------------------ invariants
    @invariant()
    @precondition(lambda self: self.ready)
    def invariants_hold(self):
        self._check()
        self.checked = self.steps

    def _check(self):
        prev = self.obs
        obs = self.obs = self.ctx_rpc.read(self.items)

        # conservation, per token, read from the chain and the Transfer events
        for tok in self.toks:
            balance, deposited, paid = obs[("bal", tok, "deal")], self.ev_in[tok], self.ev_out[tok]
            assert balance == deposited - paid, f"{tok}: escrow holds {balance} != {deposited} in - {paid} out"
            held = sum(obs[("held", leg)] for leg in (0, 1) if self.leg_tok[leg] == tok)
            assert balance == held + obs[("unclaimed", tok)], (
                f"{tok}: escrow balance {balance} != held {held} + unclaimed {obs[('unclaimed', tok)]}"
            )
            owed = sum(obs[("claimable", name, tok)] for name in ACTORS)
            assert obs[("unclaimed", tok)] == owed, f"{tok}: unclaimed != sum of claimable {owed}"

        # no tranche paid twice; no leg pays out more than deposited, nor deposits more than its total
        for i in range(self.n):
            before, now = prev[("tranche_status", i)], obs[("tranche_status", i)]
            assert before not in FINAL or now == before, f"tranche {i} left final status {before} for {now}"
        for leg in (0, 1):
            tok = self.leg_tok[leg]
            if tok:
                settled = self.ev_out[tok] + obs[("unclaimed", tok)]
                assert settled <= self.ev_in[tok] <= self.leg_total[leg], (
                    f"leg {leg}: paid or owed {settled}, in {self.ev_in[tok]}, total {self.leg_total[leg]}"
                )

        # only actors named in the terms receive funds; no token leaves the tracked wallets
        for tok in self.toks:
            for name in ACTORS:
                key = ("bal", tok, name)
                if name == "cold_wallet":
                    assert obs[key] == self.baseline[key] + self.claimed_to_cold[tok], (
                        f"{tok}: cold wallet received more than the claims directed to it"
                    )
                elif name not in self.named:
                    assert obs[key] <= self.baseline[key], f"{tok}: non-party {name} received funds"
            total = sum(obs[("bal", tok, name)] for name in (*ACTORS, "deal"))
            assert total == sum(self.baseline[("bal", tok, name)] for name in (*ACTORS, "deal")), (
                f"{tok}: tokens left the tracked wallets"
            )

        # exact payouts and state: every view matches the reference model
        expected = self._expected_views()
        assert obs == expected, f"after {getattr(self, '_last', 'setup')}: chain != model: " + _diff(expected, obs)

        if self.now >= self.fe:
            self._drain_check()

    def _drain_key(self):
        return (
            self.closed,
            tuple(self.status),
            tuple(sorted(self.claimable.items())),
            tuple((t, tuple(sorted(b))) for t, b in self.blocked.items()),
            self.now >= self.fe,
        )

    def _drain_check(self):
        """After final expiry, one permissionless expire() (unless the deal is already closed, or
        settled: every tranche paid out) leaves only the unclaimed pull balances in the escrow, and
        the payees' claims empty it. Runs in a snapshot that is reverted."""
        key = self._drain_key()
        if key in self.drained:
            return
        c, rpc = self.ctx, self.ctx_rpc
        snap = c.chain.snapshot()
        try:
            self._set_time(max(self.now, self.fe))
            STATS["drain check"] += 1
            if not self.closed and not self._settled():
                STATS["drain check: expire()"] += 1
                try:
                    self.deal.expire(sender=c.accounts["attacker"])
                except ContractLogicError as err:
                    raise AssertionError(f"funds stuck: expire() after final expiry reverted: {err.message}") from err
            obs = rpc.read(self.items)
            for tok in self.toks:
                assert obs[("bal", tok, "deal")] == obs[("unclaimed", tok)], (
                    f"funds stuck: after final expiry and expire() the escrow holds "
                    f"{obs[('bal', tok, 'deal')]} {tok} but owes only {obs[('unclaimed', tok)]}"
                )
            assert obs[("held", 0)] == obs[("held", 1)] == 0, "escrow still holds a leg after expiry"
            for tok, wallets in self.blocked.items():
                for target in wallets:
                    who = self.deal_addr if target == "deal" else self.addr[target]
                    c.tokens[tok].set_blocked(who, False, sender=c.accounts["desk"])
            for name in ACTORS:
                for tok in self.toks:
                    if obs[("claimable", name, tok)]:
                        STATS["drain check: claim()"] += 1
                        try:
                            self.deal.claim(c.tokens[tok].address, self.addr[name], sender=c.accounts[name])
                        except ContractLogicError as err:
                            raise AssertionError(f"funds stuck: {name} cannot claim {tok}: {err.message}") from err
            obs = rpc.read(self.items)
            for tok in self.toks:
                assert obs[("bal", tok, "deal")] == 0 == obs[("unclaimed", tok)], (
                    f"funds stuck: {obs[('bal', tok, 'deal')]} {tok} left in the escrow after all claims"
                )
                for name in ACTORS:
                    if name not in self.named and name != "cold_wallet":
                        key_ = ("bal", tok, name)
                        assert obs[key_] <= self.baseline[key_], f"non-party {name} received {tok}"
        finally:
            c.chain.restore(snap)
        self.drained.add(key)


def machine_for(mode: str, ctx: Ctx) -> type[DealMachine]:
    class DealEscrowMachine(DealMachine):
        @initialize(cfg=deal_configs(mode))
        def create(self, cfg):
            self._create(cfg)

    DealEscrowMachine.ctx = ctx
    DealEscrowMachine.__name__ = DealEscrowMachine.__qualname__ = f"Deal{mode.upper()}Machine"
    return DealEscrowMachine


@pytest.mark.parametrize("mode", ["dvp", "escrowed"])
def test_deal_escrow_state_machine(
    mode,
    chain,
    project,
    factory,
    wbtc,
    usdt,
    usdc,
    desk,
    buyer,
    seller,
    introducer,
    resolver,
    attacker,
    lawyer,
    approver,
    introducer2,
    buyer_custody,
    seller_treasury,
    cold_wallet,
    quiet_reverts,
):
    ctx = Ctx(
        chain=chain,
        project=project,
        factory=factory,
        tokens={"wbtc": wbtc, "usdt": usdt, "usdc": usdc},
        accounts=dict(
            zip(
                ACTORS,
                (
                    desk,
                    buyer,
                    seller,
                    introducer,
                    resolver,
                    attacker,
                    lawyer,
                    approver,
                    introducer2,
                    buyer_custody,
                    seller_treasury,
                    cold_wallet,
                ),
                strict=True,
            )
        ),
    )
    run_state_machine_as_test(
        machine_for(mode, ctx),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=bool(os.environ.get("CI")),
            # NEXOTC_FUZZ_NO_SHRINK=1: report the first failure as found (e.g. when mutation testing)
            phases=[
                p
                for p in HypothesisPhase
                if not (os.environ.get("NEXOTC_FUZZ_NO_SHRINK") and p == HypothesisPhase.shrink)
            ],
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
            ],
        ),
    )
    if os.environ.get("NEXOTC_FUZZ_STATS"):
        print(f"\n{mode}: " + "\n".join(f"{count:6d}  {label}" for label, count in sorted(STATS.items())))
        STATS.clear()
