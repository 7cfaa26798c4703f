"""Fixtures and helpers for the contract unit tests.

Deployments and funded deals are module-scoped (ape snapshots the chain around every test, so each
test starts from the same funded deal, clock included). The builders mirror `dvp_terms` and
`escrowed_terms` of tests/conftest.py but take their clock from the module start (`t0`) so they can
be used by module-scoped fixtures. Pure helpers (constants, event and balance checks) live in
dealkit.py. See `_fast_reverts` for why ape's revert tracing is trimmed here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager

import ape
import pytest
from dealkit import BTC, DAY, USD6, ZERO, Tracker, addr, deal_snapshot

from nexotc_client.terms import DisputeDefault, Leg, LegId, Terms, even_tranches


# ---------------------------------------------------------------- deployments, clock
@pytest.fixture(scope="module", autouse=True)
def _tokens_first(wbtc, usdt, usdc, weth, fee_token, reentrant_token, factory):
    """Deploy every module-scoped contract before the first test's snapshot: a module fixture first
    requested from inside a test (request.getfixturevalue) would be deployed in that test's snapshot,
    rolled back after it, yet stay cached for the rest of the module."""


@pytest.fixture(scope="module")
def t0(chain) -> int:
    """The chain clock when the module's fixtures were built."""
    return chain.pending_timestamp


@pytest.fixture(scope="session")
def everyone(desk, buyer, seller, introducer, resolver, attacker, lawyer, approver, introducer2):
    return [desk, buyer, seller, introducer, resolver, attacker, lawyer, approver, introducer2]


# ------------------------------------------------------------------------ builders
@pytest.fixture(scope="module")
def mk_dvp(t0, wbtc, usdt, buyer, seller, desk, resolver, introducer) -> Callable[..., Terms]:
    """Like `dvp_terms`: 200 WBTC against 13,000,000 USDT, desk fee 25 bps, introducer 10 bps,
    resolver fee cap 100 bps, dispute timeout 3 days, anyone releases after unlock."""

    def build(
        tranches: int = 4,
        base_amount: int = 200 * BTC,
        quote_amount: int = 13_000_000 * USD6,
        base_token=None,
        quote_token=None,
        **overrides,
    ) -> Terms:
        start = t0 + 1_000
        kw = dict(
            base=Leg((base_token or wbtc).address, base_amount),
            quote=Leg((quote_token or usdt).address, quote_amount),
            buyer=buyer.address,
            seller=seller.address,
            platform=desk.address,
            resolver=resolver.address,
            tranches=even_tranches(base_amount, quote_amount, tranches, start, DAY, DAY),
            funding_deadline=t0 + DAY,
            final_expiry=start + (tranches + 10) * DAY,
            desk_fee_bps=25,
            introducers=[(introducer.address, 10)],
            resolver_fee_bps=100,
            dispute_timeout=3 * DAY,
        )
        kw.update(overrides)
        return Terms.build(**kw)

    return build


@pytest.fixture(scope="module")
def mk_escrowed(t0, usdt, buyer, seller, desk, resolver, introducer) -> Callable[..., Terms]:
    """Like `escrowed_terms`: 10 BTC off chain against 650,000 USDT held; seller marks, buyer
    approves and signs."""

    def build(
        tranches: int = 2,
        base_amount: int = 10 * BTC,
        quote_amount: int = 650_000 * USD6,
        quote_token=None,
        **overrides,
    ) -> Terms:
        start = t0 + 1_000
        kw = dict(
            base=Leg(ZERO, base_amount, on_chain=False),
            quote=Leg((quote_token or usdt).address, quote_amount),
            buyer=buyer.address,
            seller=seller.address,
            platform=desk.address,
            resolver=resolver.address,
            tranches=even_tranches(base_amount, quote_amount, tranches, start, DAY, DAY),
            funding_deadline=t0 + DAY,
            final_expiry=start + (tranches + 10) * DAY,
            markers=[seller.address],
            approvers=[buyer.address],
            signers=[buyer.address],
            desk_fee_bps=25,
            introducers=[(introducer.address, 10)],
            fee_leg=LegId.QUOTE,
            resolver_fee_bps=100,
            dispute_timeout=3 * DAY,
            dispute_default=DisputeDefault.REFUND,
        )
        kw.update(overrides)
        return Terms.build(**kw)

    return build


@pytest.fixture(scope="module")
def deploy(project, factory):
    """Create a deal from `terms` (as `creator`, default the desk); returns the DealEscrow."""
    counter = iter(range(10_000, 10_000_000))

    def create(terms: Terms, creator, salt: bytes | None = None):
        salt = salt or next(counter).to_bytes(32, "big")
        receipt = factory.create_deal(terms.as_struct(), salt, sender=creator)
        return project.DealEscrow.at(receipt.decode_logs(factory.DealCreated)[0].deal)

    return create


@pytest.fixture(scope="module")
def fund_leg():
    """Mint, approve and fund one party's leg (token, amount and deal given)."""

    def do(deal, token, party, amount):
        token.mint(party, amount, sender=party)
        token.approve(deal.address, amount, sender=party)
        return deal.fund(sender=party)

    return do


@pytest.fixture(scope="module")
def fund_all(fund_leg, buyer, seller):
    """Fund every on-chain leg of `deal` (seller: base, buyer: quote)."""

    def do(deal, terms: Terms, base_token, quote_token):
        if terms.base.on_chain:
            fund_leg(deal, base_token, seller, terms.base.amount)
        if terms.quote.on_chain:
            fund_leg(deal, quote_token, buyer, terms.quote.amount)

    return do


# ------------------------------------------------------------------ common deals
@pytest.fixture(scope="module")
def dvp(mk_dvp, deploy, fund_all, wbtc, usdt, desk):
    """A funded 4-tranche DVP deal (WBTC / USDT): (terms, deal)."""
    terms = mk_dvp()
    deal = deploy(terms, desk)
    fund_all(deal, terms, wbtc, usdt)
    return terms, deal


@pytest.fixture(scope="module")
def escrowed(mk_escrowed, deploy, fund_all, usdt, desk):
    """A funded 2-tranche ESCROWED deal (BTC off chain / USDT held): (terms, deal)."""
    terms = mk_escrowed()
    deal = deploy(terms, desk)
    fund_all(deal, terms, None, usdt)
    return terms, deal


# ----------------------------------------------------------------------- helpers
@pytest.fixture(scope="session")
def unchanged(everyone):
    """`with unchanged(deal, [tokens], "reason"):` asserts the exact revert reason and that no
    deal state, token balance of the deal or of any actor, nor pull balance changed."""

    @contextmanager
    def check(deal, tokens, reason, holders=None):
        holders = everyone if holders is None else holders
        before = deal_snapshot(deal, tokens, holders)
        with ape.reverts(reason):
            yield
        assert deal_snapshot(deal, tokens, holders) == before

    return check


@pytest.fixture(scope="session")
def balances(everyone):
    """`balances(token, deal)` -> {address: balance} for the deal and every actor."""

    def read(token, deal=None):
        who = [*everyone] + ([deal] if deal is not None else [])
        return {addr(w): token.balanceOf(addr(w)) for w in who}

    return read


# --------------------------------------------------------------- revert speed
@pytest.fixture(scope="module", autouse=True)
def _fast_reverts():
    """Skip ape's debugging extras for reverts that carry a reason string.

    On every revert ape (0.8.51 with ape-foundry / ape-vyper) fetches the struct-log trace, prints the
    call tree and maps the revert to a Vyper source line looking for a `dev:` message: 0.3 s to 5 s per
    revert depending on how far the contract ran (the factory's validation loops are the worst). Our
    reverts all carry a reason string, which `ape.reverts(...)` checks from the RPC error alone, so that
    work is skipped for them; reverts without a reason keep the full enrichment. Module-scoped so that
    it never leaks into other test directories. NEXOTC_FULL_REVERT_TRACES=1 keeps ape's behaviour.
    """
    from ape.exceptions import TransactionError
    from ape_ethereum.trace import Trace
    from ape_foundry.provider import FoundryProvider
    from ape_vyper.compiler.api import VyperCompiler

    hooks = (
        (FoundryProvider, "_handle_execution_reverted"),
        (VyperCompiler, "enrich_error"),
        (TransactionError, "with_ape_traceback"),
    )
    if os.environ.get("NEXOTC_FULL_REVERT_TRACES") or not all(hasattr(cls, name) for cls, name in hooks):
        yield
        return

    def has_reason(err) -> bool:
        message = getattr(err, "message", None)
        return bool(message) and message != TransactionError.DEFAULT_MESSAGE

    original_handle = FoundryProvider._handle_execution_reverted
    original_enrich = VyperCompiler.enrich_error
    original_traceback = TransactionError.with_ape_traceback

    def handle(self, exception, revert_message=None, **kwargs):
        show = Trace.show
        if revert_message and revert_message not in ("0x", TransactionError.DEFAULT_MESSAGE):
            Trace.show = lambda *args, **kw: None  # the call tree is fetched lazily by show()
        try:
            return original_handle(self, exception, revert_message, **kwargs)
        finally:
            Trace.show = show

    def enrich(self, err):
        return err if has_reason(err) else original_enrich(self, err)

    def with_ape_traceback(self):
        return self if has_reason(self) else original_traceback(self)

    patch = pytest.MonkeyPatch()
    patch.setattr(FoundryProvider, "_handle_execution_reverted", handle)
    patch.setattr(VyperCompiler, "enrich_error", enrich)
    patch.setattr(TransactionError, "with_ape_traceback", with_ape_traceback)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def tracker(everyone):
    """`tracker(deal, [tokens])` -> Tracker of the deal's and every actor's balances."""

    def make(deal, tokens):
        return Tracker(deal, tokens, everyone)

    return make
