"""Desk-engine test helpers: an accepted quote saved straight into a store, or made through the CLI."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from clikit import nexotc_command

from nexotc_client.cli import run
from nexotc_client.desk.models import RFQ, Quote, QuoteComponents, QuoteState, Side
from nexotc_client.desk.store import DeskStore

PRICE = Decimal("65150.87654321")


def accepted_quote(
    store: DeskStore, quote_id: str, size: str = "200", side: Side = Side.BUY, client: str = "client-a"
) -> Quote:
    """An ACCEPTED quote `quote_id` of `size` BTC/USDT at PRICE (bid PRICE - 100), with its RFQ (R-<quote_id>)."""
    rfq = RFQ("R-" + quote_id, client, "BTC/USDT", side, Decimal(size), 1)
    store.save_rfq(rfq)
    q = Quote(
        quote_id=quote_id,
        rfq_id=rfq.rfq_id,
        symbol="BTC/USDT",
        side=side,
        size=Decimal(size),
        bid=PRICE - 100,
        ask=PRICE,
        price=PRICE if side is Side.BUY else PRICE - 100,
        mid=PRICE - 50,
        components=QuoteComponents(PRICE - 60, Decimal(10), Decimal(2), Decimal(0)),
        created_ms=1,
        ttl_ms=30_000,
        state=QuoteState.ACCEPTED,
    )
    store.save_quote(q)
    return q


def desk_argv(home: Path, db: str, *args: str) -> list[str]:
    """The console command `nexotc ARGS` on the desk database `db` of `home` (for a process to signal or race)."""
    return [*nexotc_command(), *args, "--home", str(home), "--db", db]


def accept_quote_cli(home: Path, db: str, size: str, capsys: pytest.CaptureFixture[str]) -> None:
    """RFQ R1 (acme buys `size` BTC) quoted and accepted as R1-q1, through the CLI in-process."""
    for argv in (
        ["rfq", "new", "--client", "acme", "--side", "buy", "--size", size, "--id", "R1"],
        ["quote", "new", "R1", "--ttl", "5m"],
        ["quote", "accept", "R1-q1"],
    ):
        assert run([*argv, "--home", str(home), "--db", db]) == 0, capsys.readouterr().err
    capsys.readouterr()
