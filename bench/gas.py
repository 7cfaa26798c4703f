"""Gas benchmark of the deal escrow on a local anvil (ape-foundry), printed as a table.

    make bench            (or: .venv/bin/python bench/gas.py [--json])

Every figure is a receipt's gasUsed ("tx": what a user pays) and the same minus the intrinsic cost
(21,000 + calldata: "exec", comparable to in-contract `gasleft()` deltas such as Sablier's published
figures). "holder": the payees already hold the token; "fresh": their balance goes from 0.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import click
from ape import accounts, chain, networks, project
from ape.logging import logger
from rich.console import Console
from rich.table import Table

from nexotc_client.terms import Leg, Terms, even_tranches

DAY = 86_400
BTC = 10**8
USD = 10**6
ZERO = "0x0000000000000000000000000000000000000000"

# Anchors (shared/ANCHORS.md; anvil 1.7.1, measured from the anchors' npm artifacts).
SABLIER_CREATE2_TX = 246_434
SABLIER_CREATE2_PUBLISHED = 188_819
SABLIER_WITHDRAW_TX = 100_996
SABLIER_WITHDRAW_PUBLISHED = 30_209


@dataclass
class Row:
    operation: str
    tx: int
    exec: int
    target: str = ""


def intrinsic(receipt) -> int:
    data = bytes(chain.provider.web3.eth.get_transaction(receipt.txn_hash)["input"])
    zeros = data.count(0)
    return 21_000 + 4 * zeros + 16 * (len(data) - zeros)


def measure(name: str, receipt, target: str = "") -> Row:
    return Row(name, receipt.gas_used, receipt.gas_used - intrinsic(receipt), target)


class Bench:
    def __init__(self) -> None:
        a = accounts.test_accounts
        self.desk, self.buyer, self.seller, self.introducer, self.resolver = a[0], a[1], a[2], a[3], a[4]
        self.wbtc = self.desk.deploy(project.MockERC20, "Wrapped BTC (mock)", "WBTC", 8)
        self.usdt = self.desk.deploy(project.MockERC20, "USD (mock)", "USD", 6)
        self.factory = self.desk.deploy(
            project.EscrowFactory,
            project.DealEscrow.contract_type.deployment_bytecode.bytecode,
            project.DepositWallet.contract_type.deployment_bytecode.bytecode,
            "0x0000000000000000000000000000000000000000",
        )
        self.salt = 0
        # make every actor a holder of both tokens (steady state), and keep one deal created so the
        # factory's counter is warm as it is for every deal after the first
        for who in (self.desk, self.buyer, self.seller, self.introducer, self.resolver):
            self.wbtc.mint(who, 1, sender=self.desk)
            self.usdt.mint(who, 1, sender=self.desk)
        self.create(self.dvp(2))

    def next_salt(self) -> bytes:
        self.salt += 1
        return self.salt.to_bytes(32, "big")

    def dvp(self, tranches: int, **kw) -> Terms:
        now = chain.pending_timestamp
        return Terms.build(
            base=Leg(self.wbtc.address, 200 * BTC),
            quote=Leg(self.usdt.address, 13_000_000 * USD),
            buyer=self.buyer.address,
            seller=self.seller.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=even_tranches(200 * BTC, 13_000_000 * USD, tranches, now + 10, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + (tranches + 10) * DAY,
            desk_fee_bps=25,
            introducers=[(self.introducer.address, 10)],
            resolver_fee_bps=50,
            **kw,
        )

    def escrowed(self, tranches: int) -> Terms:
        now = chain.pending_timestamp
        return Terms.build(
            base=Leg(ZERO, 10 * BTC, on_chain=False),
            quote=Leg(self.usdt.address, 650_000 * USD),
            buyer=self.buyer.address,
            seller=self.seller.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=even_tranches(10 * BTC, 650_000 * USD, tranches, now + 10, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + (tranches + 10) * DAY,
            markers=[self.seller.address],
            approvers=[self.buyer.address],
            signers=[self.buyer.address],
            desk_fee_bps=25,
            introducers=[(self.introducer.address, 10)],
            resolver_fee_bps=50,
        )

    def create(self, terms: Terms, creator=None):
        receipt = self.factory.create_deal(terms.as_struct(), self.next_salt(), sender=creator or self.desk)
        return project.DealEscrow.at(receipt.decode_logs(self.factory.DealCreated)[0].deal), receipt

    def fund_side(self, deal, terms: Terms, who):
        if who == self.seller:
            self.wbtc.mint(self.seller, terms.base.amount, sender=self.desk)
            self.wbtc.approve(deal.address, terms.base.amount, sender=self.seller)
        else:
            self.usdt.mint(self.buyer, terms.quote.amount, sender=self.desk)
            self.usdt.approve(deal.address, terms.quote.amount, sender=self.buyer)
        return deal.fund(sender=who)

    def create_and_fund(self, terms: Terms):
        salt = self.next_salt()
        addr = self.factory.predict_address(terms.as_struct(), self.seller.address, salt, 0)
        self.wbtc.mint(self.seller, terms.base.amount, sender=self.desk)
        self.wbtc.approve(self.factory.address, terms.base.amount, sender=self.seller)
        receipt = self.factory.create_and_fund(terms.as_struct(), salt, sender=self.seller)
        return project.DealEscrow.at(addr), receipt

    def run(self) -> list[Row]:
        rows: list[Row] = []
        t2 = self.dvp(2)
        _, r = self.create(t2)
        rows.append(measure("create DVP, 2 tranches", r))
        _, r = self.create(self.dvp(10))
        rows.append(measure("create DVP, 10 tranches", r))
        _, r = self.create(self.escrowed(2))
        rows.append(measure("create ESCROWED, 2 tranches", r))

        deal, r = self.create_and_fund(t2)
        rows.append(
            measure(
                "create+fund DVP, 2 tranches",
                r,
                f"< {SABLIER_CREATE2_PUBLISHED:,} exec (Sablier tx {SABLIER_CREATE2_TX:,})",
            )
        )
        r = self.fund_side(deal, t2, self.buyer)
        rows.append(measure("fund (second leg of a DVP)", r))

        # DVP release: base to buyer, quote to seller + desk + introducer (all holders)
        chain.pending_timestamp = t2.tranches[0].unlock_time
        r = deal.release(0, sender=self.buyer)
        rows.append(measure("release DVP tranche (4 payees, holders)", r))

        # ESCROWED release to 3 payees (seller, desk, introducer), holders
        te = self.escrowed(2)
        deal_e, _ = self.create(te)
        self.fund_side(deal_e, te, self.buyer)
        chain.pending_timestamp = te.tranches[0].unlock_time
        deal_e.mark(0, b"\x11" * 32, sender=self.seller)
        r = deal_e.approve(0, sender=self.buyer)
        rows.append(measure("approve (ESCROWED)", r))
        r = deal_e.release(0, sender=self.buyer)
        rows.append(
            measure(
                "release to 3 payees, holders",
                r,
                f"< 60,000 (Sablier withdraw tx {SABLIER_WITHDRAW_TX:,}, exec {SABLIER_WITHDRAW_PUBLISHED:,})",
            )
        )
        # same with fresh payees: new wallets as seller/desk/introducer
        fresh = [accounts.test_accounts[i] for i in (9, 10, 11)]
        now = chain.pending_timestamp
        tf = Terms.build(
            base=Leg(ZERO, 10 * BTC, on_chain=False),
            quote=Leg(self.usdt.address, 650_000 * USD),
            buyer=self.buyer.address,
            seller=fresh[0].address,
            platform=fresh[1].address,
            resolver=self.resolver.address,
            tranches=even_tranches(10 * BTC, 650_000 * USD, 2, now + 10, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + 12 * DAY,
            markers=[fresh[0].address],
            approvers=[self.buyer.address],
            signers=[self.buyer.address],
            desk_fee_bps=25,
            introducers=[(fresh[2].address, 10)],
        )
        deal_f, _ = self.create(tf)
        self.fund_side(deal_f, tf, self.buyer)
        chain.pending_timestamp = tf.tranches[0].unlock_time
        r = deal_f.mark(0, b"\x22" * 32, sender=fresh[0])
        rows.append(measure("mark (ESCROWED, evidence hash)", r))
        deal_f.approve(0, sender=self.buyer)
        r = deal_f.release(0, sender=self.buyer)
        rows.append(measure("release to 3 payees, fresh", r))

        # dispute + resolve on the second escrowed tranche
        deal_e.mark(1, b"\x33" * 32, sender=self.seller)
        r1 = deal_e.dispute(1, b"\x44" * 32, sender=self.buyer)
        amount = te.tranches[1].quote_amount
        fee = amount * 50 // 10_000
        half = (amount - fee) // 2
        r2 = deal_e.resolve(1, (0, 0, 0), (half, amount - fee - half, fee), sender=self.resolver)
        rows.append(measure("dispute", r1))
        rows.append(measure("resolve (split 3 ways + commissions)", r2))
        rows.append(Row("dispute + resolve", r1.gas_used + r2.gas_used, measure("", r1).exec + measure("", r2).exec))

        # refund after a missed deadline (DVP tranche 1 of the first deal: both legs back)
        chain.pending_timestamp = t2.tranches[1].deadline + 1
        r = deal.refund(1, sender=self.desk)
        rows.append(measure("refund after deadline (DVP, both legs)", r))
        chain.pending_timestamp = max(chain.pending_timestamp, tf.tranches[1].deadline + 1)
        r = deal_f.refund(1, sender=self.desk)
        rows.append(measure("refund after deadline (ESCROWED)", r))
        return rows


def print_table(rows: list[Row]) -> None:
    table = Table(title="nexotc deal escrow gas (anvil, prague)")
    table.add_column("operation")
    table.add_column("tx gas", justify="right")
    table.add_column("exec gas", justify="right")
    table.add_column("target / anchor")
    for row in rows:
        table.add_row(row.operation, f"{row.tx:,}", f"{row.exec:,}", row.target)
    Console().print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (as in the README).")
@click.option("--network", default="ethereum:local:foundry", show_default=True)
def main(as_json: bool, markdown: bool, network: str) -> None:
    logger.set_level("ERROR")
    with networks.parse_network_choice(network):
        rows = Bench().run()
    if markdown:
        print("| operation | tx gas | exec gas | target / anchor |")
        print("|---|---:|---:|---|")
        for row in rows:
            print(f"| {row.operation} | {row.tx:,} | {row.exec:,} | {row.target} |")
    elif as_json:
        json.dump([row.__dict__ for row in rows], sys.stdout, indent=2)
        print()
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
