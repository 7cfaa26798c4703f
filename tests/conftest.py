"""Shared fixtures: role-named actors, quirky mock tokens, the factory, terms builders.

Actors (ape test accounts): desk (the platform), buyer, seller, introducer, resolver, attacker,
lawyer (a second release signer), approver (a third-party approver), introducer2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nexotc_client.terms import DisputeDefault, Leg, LegId, Terms, Tranche, even_tranches

DAY = 86_400
BTC = 10**8
USD6 = 10**6

# The files that take longest (seconds each, from `--durations=0`), heaviest first. `make test` spreads whole
# files over the machine's cores (pytest-xdist, `--dist loadfile --no-loadscope-reorder`): a long file handed
# out last would keep one worker busy after the others ran dry, so these are handed out first.
SLOW_FILES = (
    "tests/client/test_desk_nonces.py",
    "tests/client/test_desk_deal_cli.py",
    "tests/client/test_desk_hedge_lifecycle.py",
    "tests/client/test_kyc_cli.py",
    "tests/client/test_desk_engine_cli_guards2.py",
    "tests/e2e/test_desk_e2e.py",
    "tests/client/test_kyc_issuer_cli.py",
    "tests/fuzz/test_deal_stateful.py",
    "tests/client/test_desk_engine_guards_chain.py",
    "tests/client/test_deposit_cli.py",
    "tests/client/test_deal_cli_guards.py",
    "tests/client/test_desk_hedge_live.py",
    "tests/client/test_desk_hedge_kill.py",
    "tests/client/test_offer_cli.py",
    "tests/fuzz/test_multisig_stateful.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow files first (a stable sort: every other file, and the tests within a file, keep their order)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(SLOW_FILES)))


@pytest.fixture(scope="session")
def desk(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def buyer(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def seller(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def introducer(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def resolver(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def attacker(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def lawyer(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def approver(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def introducer2(accounts):
    return accounts[8]


# ------------------------------------------------------------------ tokens
@pytest.fixture(scope="module")
def wbtc(project, desk):
    """8 decimals, standard return values."""
    return desk.deploy(project.MockToken, "Wrapped BTC (mock)", "WBTC", 8, 0)


@pytest.fixture(scope="module")
def usdt(project, desk):
    """6 decimals, no return values (Tether)."""
    return desk.deploy(project.MockUSDT)


@pytest.fixture(scope="module")
def usdc(project, desk):
    """6 decimals, blocklist on sender and recipient (Circle)."""
    return desk.deploy(project.MockToken, "USD Coin (mock)", "USDC", 6, 0)


@pytest.fixture(scope="module")
def weth(project, desk):
    """18 decimals."""
    return desk.deploy(project.MockToken, "Wrapped Ether (mock)", "WETH", 18, 0)


@pytest.fixture(scope="module")
def fee_token(project, desk):
    """Burns 1% of every transfer."""
    return desk.deploy(project.MockToken, "Fee on transfer (mock)", "FOT", 18, 2)


@pytest.fixture(scope="module")
def reentrant_token(project, desk):
    """Calls a configured hook during every transfer."""
    return desk.deploy(project.MockToken, "Re-entrant (mock)", "REEN", 18, 3)


# ------------------------------------------------------------------ factory
@pytest.fixture(scope="module")
def factory(project, desk):
    return desk.deploy(
        project.EscrowFactory,
        project.DealEscrow.contract_type.deployment_bytecode.bytecode,
        project.DepositWallet.contract_type.deployment_bytecode.bytecode,
        "0x0000000000000000000000000000000000000000",
    )


@pytest.fixture
def now(chain) -> int:
    return chain.pending_timestamp


@pytest.fixture
def dvp_terms(wbtc, usdt, buyer, seller, desk, resolver, introducer, now) -> Callable[..., Terms]:
    """DVP terms builder: 200 WBTC against 13,000,000 USDT in `tranches` tranches, desk fee 25 bps,
    one introducer at 10 bps, anyone may release after unlock (no approvers or signers)."""

    def build(
        tranches: int = 4,
        base_amount: int = 200 * BTC,
        quote_amount: int = 13_000_000 * USD6,
        base_token=None,
        quote_token=None,
        **overrides,
    ) -> Terms:
        start = now + 100
        kw = dict(
            base=Leg((base_token or wbtc).address, base_amount),
            quote=Leg((quote_token or usdt).address, quote_amount),
            buyer=buyer.address,
            seller=seller.address,
            platform=desk.address,
            resolver=resolver.address,
            tranches=even_tranches(base_amount, quote_amount, tranches, start, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=start + (tranches + 10) * DAY,
            desk_fee_bps=25,
            introducers=[(introducer.address, 10)],
            resolver_fee_bps=100,
            dispute_timeout=3 * DAY,
        )
        kw.update(overrides)
        return Terms.build(**kw)

    return build


@pytest.fixture
def escrowed_terms(usdt, buyer, seller, desk, resolver, introducer, now) -> Callable[..., Terms]:
    """ESCROWED terms builder: BTC off chain (satoshi record) against USDT held in escrow;
    seller marks, buyer approves and signs (buyer-driven release)."""

    def build(
        tranches: int = 2,
        base_amount: int = 10 * BTC,
        quote_amount: int = 650_000 * USD6,
        quote_token=None,
        **overrides,
    ) -> Terms:
        start = now + 100
        kw = dict(
            base=Leg("0x0000000000000000000000000000000000000000", base_amount, on_chain=False),
            quote=Leg((quote_token or usdt).address, quote_amount),
            buyer=buyer.address,
            seller=seller.address,
            platform=desk.address,
            resolver=resolver.address,
            tranches=even_tranches(base_amount, quote_amount, tranches, start, DAY, DAY),
            funding_deadline=now + DAY,
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


@pytest.fixture
def create_deal(project, factory):
    """Create a deal from `terms` as `creator`; returns the DealEscrow contract."""
    counter = iter(range(1, 1_000_000))

    def create(terms: Terms, creator, salt: bytes | None = None):
        salt = salt or next(counter).to_bytes(32, "big")
        receipt = factory.create_deal(terms.as_struct(), salt, sender=creator)
        event = receipt.decode_logs(factory.DealCreated)[0]
        return project.DealEscrow.at(event.deal)

    return create


@pytest.fixture
def fund(chain):
    """Mint and approve each party's on-chain leg, then fund it from that party."""

    def do_fund(deal, terms: Terms, base_token, quote_token, buyer, seller):
        if terms.base.on_chain:
            base_token.mint(seller, terms.base.amount, sender=seller)
            base_token.approve(deal.address, terms.base.amount, sender=seller)
            deal.fund(sender=seller)
        if terms.quote.on_chain:
            quote_token.mint(buyer, terms.quote.amount, sender=buyer)
            quote_token.approve(deal.address, terms.quote.amount, sender=buyer)
            deal.fund(sender=buyer)

    return do_fund


__all__ = ["BTC", "DAY", "USD6", "Tranche"]


# ------------------------------------------------------------------ desk database (PostgreSQL server)
from pgserver import pg_database, pg_server  # noqa: E402,F401  (session-scoped real PostgreSQL, see tests/pgserver.py)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The desk store's database, once on a SQLite file and once on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.db'}"
    return request.getfixturevalue("pg_database")
