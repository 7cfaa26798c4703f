"""Fixtures for the property-based tests in tests/fuzz (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

import ape.exceptions
import ape_ethereum.trace
import pytest


@pytest.fixture
def quiet_reverts(monkeypatch):
    """The state machines make the deal revert on purpose hundreds of times per run. For each revert
    ape-foundry prints the full call trace, and ape builds a Vyper source traceback for the error,
    both slow (most of a revert's cost). Skip both; the revert message is unaffected."""
    monkeypatch.setattr(ape_ethereum.trace.Trace, "show", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(ape.exceptions.TransactionError, "with_ape_traceback", lambda self: self)


@pytest.fixture(scope="session")
def buyer_custody(accounts):
    """A separate wallet of the buyer that some deals name as base receiver."""
    return accounts[9]


@pytest.fixture(scope="session")
def seller_treasury(accounts):
    """A separate wallet of the seller that some deals name as quote receiver."""
    return accounts[10]


@pytest.fixture(scope="session")
def cold_wallet(accounts):
    """A wallet named in no deal: payees may direct their pull-balance claims to it."""
    return accounts[11]
