"""The main job: an end-to-end OTC trade on a local anvil chain.

    make demo          (= ape run demo on the local anvil network)

1. a desk deploys the escrow factory (and mock WBTC / USDT on this local chain);
2. a DVP deal: 200 WBTC against 13,000,000 USDT in 4 tranches, desk fee 25 bps, one introducer at
   10 bps; the seller creates and funds it in one transaction, the buyer funds; each tranche swaps
   both legs atomically when it unlocks, commissions routed on the way;
3. an ESCROWED deal: 10 BTC delivered off chain against 650,000 USDT held in escrow; the seller marks
   a tranche delivered with the BTC transaction id, the buyer approves and releases it; the second
   tranche is disputed and the resolver splits it;
4. signed offers: the seller signs an EIP-712 offer to the buyer, the buyer counters with a lower price,
   the seller accepts the counter and both legs are funded in the same transaction from standing
   approvals to the factory; the desk's 2-of-3 multisig is the release signer and releases each tranche
   with two owners' signatures;
5. a proxy deposit address: a buyer whose USDT sits on an exchange withdraws it with a plain transfer to
   the deal's counterfactual deposit address (known before anything is deployed there); anyone sweeps it
   into the escrow, crediting the buyer;
6. zk compliance: a KYC issuer (granted by the registry admin) issues credentials to both parties and
   publishes its Merkle root; each party proves with a Groth16 proof, from its own wallet, that it meets
   the deal's policy (KYC level, accreditation, no sanctioned jurisdiction) for the deal's address before
   the deal exists; the compliant deal is created, funded and settled; the audit bundle shows an auditor
   the buyer's jurisdiction and nothing else, and re-checks against the chain.
7. the desk engine: a client's RFQ for 200 BTC is quoted two-way from four venues' books, accepted and
   locked on chain (the desk signs an offer carrying the quote id, the client takes it and funds the
   escrow); the desk hedges with a TWAP on simulated venues; the tracker follows the settlement; the
   reconciliation (bookings vs fills vs chain) and TCA come with a CSV and a PNG.
Every step prints its transaction hash and gas; balances are shown before and after.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ape import accounts, chain, project
from ape.logging import logger
from eth_utils import keccak
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from nexotc_client.agreement import build as build_agreement
from nexotc_client.chain.deal import Split, TxResult
from nexotc_client.chain.deployment import Registry, deploy_factory
from nexotc_client.chain.deposit import deposit_address, sweep
from nexotc_client.chain.kyc import KycRecords, PolicyParams, deal_scope, deploy_kyc_registry
from nexotc_client.multisig import Call, Domain, Execution, sign_execution
from nexotc_client.offers import Offer, diff
from nexotc_client.terms import ZERO_ADDRESS, Leg, Terms, TrancheStatus, even_tranches

DAY = 86_400
BTC = 10**8
USD = 10**6

console = Console()


class Demo:
    def __init__(self) -> None:
        a = accounts.test_accounts
        self.desk, self.buyer, self.seller, self.introducer, self.resolver = a[0], a[1], a[2], a[3], a[4]
        self.lawyer, self.officer = a[6], a[7]  # the desk multisig's other owners
        self.actors = {
            "desk (platform)": self.desk,
            "buyer": self.buyer,
            "seller": self.seller,
            "introducer": self.introducer,
            "resolver": self.resolver,
        }
        self.steps: list[tuple[str, str, int]] = []

    # -------------------------------------------------------------- output
    def phase(self, title: str, detail: str = "") -> None:
        console.print()
        console.print(Panel.fit(f"[bold]{title}[/bold]" + (f"\n{detail}" if detail else ""), border_style="cyan"))

    def step(self, what: str, tx_hash: str, gas: int) -> None:
        self.steps.append((what, tx_hash, gas))
        console.print(f"  [green]✓[/green] {what}\n      [dim]gas {gas:,} · tx {tx_hash}[/dim]", highlight=False)

    def tx(self, what: str, result: TxResult) -> TxResult:
        self.step(what, result.tx_hash, result.gas_used)
        return result

    def balances(self, title: str) -> dict[str, tuple[int, int]]:
        table = Table(title=title)
        table.add_column("actor")
        table.add_column("WBTC", justify="right")
        table.add_column("USDT", justify="right")
        snapshot = {}
        for name, acct in self.actors.items():
            b, q = self.wbtc.balanceOf(acct), self.usdt.balanceOf(acct)
            snapshot[name] = (b, q)
            table.add_row(name, f"{b / BTC:,.8f}", f"{q / USD:,.6f}")
        console.print(table)
        return snapshot

    # --------------------------------------------------------------- story
    def deploy(self) -> None:
        self.phase("1 · Deploy", "mock WBTC (8 decimals) and USDT (6 decimals, no return values), the escrow factory")
        self.wbtc = self.desk.deploy(project.MockToken, "Wrapped BTC (mock)", "WBTC", 8, 0)
        self.usdt = self.desk.deploy(project.MockUSDT)
        registry = Registry(Path(tempfile.mkdtemp(prefix="nexotc-demo-")) / "deployments.json")
        # the zk KYC registry (Groth16 verifier inlined) the deals' compliance gate asks (phase 6)
        self.kyc = deploy_kyc_registry(self.desk, records=KycRecords(registry.path.parent / "kyc.json"))
        self.factory = deploy_factory(self.desk, registry=registry, kyc_registry=self.kyc.address)
        receipt = self.factory.contract.creation_metadata.receipt
        self.step(f"EscrowFactory {self.factory.address}", str(receipt.txn_hash), receipt.gas_used)
        console.print(f"  implementation (never usable on its own): {self.factory.implementation}")
        for who, token, amount in (
            (self.seller, self.wbtc, 240 * BTC),
            (self.buyer, self.usdt, 16_250_000 * USD),
        ):
            token.mint(who, amount, sender=self.desk)

    def dvp(self) -> None:
        now = chain.pending_timestamp
        terms = Terms.build(
            base=Leg(self.wbtc.address, 200 * BTC),
            quote=Leg(self.usdt.address, 13_000_000 * USD),
            buyer=self.buyer.address,
            seller=self.seller.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=even_tranches(200 * BTC, 13_000_000 * USD, 4, now + 60, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + 30 * DAY,
            desk_fee_bps=25,
            introducers=[(self.introducer.address, 10)],
            resolver_fee_bps=50,
            dispute_timeout=3 * DAY,
        ).validate(now)
        self.phase(
            "2 · DVP deal: 200 WBTC ⇄ 13,000,000 USDT",
            "4 tranches of 50 WBTC ⇄ 3,250,000 USDT, one a day · desk fee 25 bps + introducer 10 bps on USDT\n"
            "anyone may trigger a tranche once it unlocks: both legs are escrowed, so the swap is atomic",
        )
        deal = self.factory.create(terms, self.seller, salt="demo-quote-0001", fund=True)
        self.step(f"seller creates + funds 200 WBTC → {deal.address}", deal.created.tx_hash, deal.created.gas_used)
        self.tx("buyer funds 13,000,000 USDT", deal.fund(self.buyer))
        for i, tranche in enumerate(terms.tranches):
            chain.pending_timestamp = max(chain.pending_timestamp, tranche.unlock_time)
            self.tx(
                f"tranche {i + 1} swaps (50 WBTC → buyer, USDT → seller/desk/introducer)",
                deal.release(i, self.buyer),
            )
        status = deal.status()
        console.print(f"  deal phase: [bold]{status.phase.name}[/bold], held: {status.held}")

    def escrowed(self) -> None:
        now = chain.pending_timestamp
        terms = Terms.build(
            base=Leg(ZERO_ADDRESS, 10 * BTC, on_chain=False),
            quote=Leg(self.usdt.address, 650_000 * USD),
            buyer=self.buyer.address,
            seller=self.seller.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=even_tranches(10 * BTC, 650_000 * USD, 2, now + 60, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + 30 * DAY,
            markers=[self.seller.address],
            approvers=[self.buyer.address],
            signers=[self.buyer.address],
            desk_fee_bps=25,
            introducers=[(self.introducer.address, 10)],
            resolver_fee_bps=50,
            dispute_timeout=3 * DAY,
        ).validate(now)
        self.phase(
            "3 · ESCROWED deal: 10 BTC (off chain) ⇄ 650,000 USDT (held)",
            "seller marks each tranche delivered with the BTC txid · buyer approves and releases (buyer-driven)\n"
            "a dispute freezes a tranche; the resolver splits it (its fee capped at 50 bps)",
        )
        deal = self.factory.create(terms, self.desk, salt="demo-quote-0002")
        self.step(f"desk creates the deal → {deal.address}", deal.created.tx_hash, deal.created.gas_used)
        self.tx("buyer funds 650,000 USDT", deal.fund(self.buyer))
        chain.pending_timestamp = max(chain.pending_timestamp, terms.tranches[0].unlock_time)
        txid = keccak(text="btc:5 BTC to bc1q-buyer, tx 1")
        self.tx(f"seller marks tranche 1 delivered (evidence {txid.hex()[:12]}…)", deal.mark(0, txid, self.seller))
        self.tx("buyer approves tranche 1", deal.approve(0, self.buyer))
        self.tx("buyer releases tranche 1 (USDT → seller/desk/introducer)", deal.release(0, self.buyer))

        chain.pending_timestamp = max(chain.pending_timestamp, terms.tranches[1].unlock_time)
        txid = keccak(text="btc:5 BTC to bc1q-buyer, tx 2 (short by 1 BTC)")
        self.tx("seller marks tranche 2 delivered", deal.mark(1, txid, self.seller))
        self.tx(
            "buyer disputes tranche 2: received 4 BTC of 5",
            deal.dispute(1, "short delivery: 4 of 5 BTC", self.buyer),
        )
        amount = terms.tranches[1].quote_amount
        fee = amount * terms.resolver_fee_bps // 10_000
        to_seller = (amount - fee) * 4 // 5  # pays what was delivered
        split = Split(to_receiver=to_seller, to_funder=amount - fee - to_seller, to_resolver=fee)
        self.tx(
            "resolver splits: 80% to seller, 20% back to buyer, 50 bps fee",
            deal.resolve(1, Split(), split, self.resolver),
        )
        statuses = [TrancheStatus(t.status).name for t in deal.status().tranches]
        console.print(f"  tranches: {statuses}; phase: [bold]{deal.phase().name}[/bold]")

    def offers(self) -> None:
        self.phase(
            "4 · Signed offers, counter, accept-and-fund; a 2-of-3 desk multisig releases",
            "EIP-712 offer seller → buyer · counter with a lower price · accepted: deal deployed and both legs funded\n"
            "in one transaction from standing approvals to the factory · release needs the desk multisig (2 of 3)",
        )
        msig_factory = self.desk.deploy(
            project.MultiSigFactory, project.MultiSig.contract_type.deployment_bytecode.bytecode
        )
        owners = sorted([self.desk.address, self.lawyer.address, self.officer.address], key=lambda x: int(x, 16))
        receipt = msig_factory.create(owners, 2, b"\x00" * 32, sender=self.desk)
        wallet = project.MultiSig.at(receipt.decode_logs(msig_factory.MultiSigCreated)[0].wallet)
        self.step(f"desk multisig 2-of-3 {wallet.address}", str(receipt.txn_hash), receipt.gas_used)

        now = chain.pending_timestamp
        chain_id = chain.chain_id
        factory = self.factory.address

        def terms_at(quote_total: int) -> Terms:
            return Terms.build(
                base=Leg(self.wbtc.address, 20 * BTC),
                quote=Leg(self.usdt.address, quote_total),
                buyer=self.buyer.address,
                seller=self.seller.address,
                platform=self.desk.address,
                resolver=self.resolver.address,
                tranches=even_tranches(20 * BTC, quote_total, 2, now + 3_600, DAY, DAY),
                funding_deadline=now + DAY,
                final_expiry=now + 30 * DAY,
                signers=[wallet.address],  # the desk multisig signs every release
                desk_fee_bps=20,
                resolver_fee_bps=50,
            ).validate(now)

        # what the chain cannot hold, signed by hash with the terms
        agreement = build_agreement({}, {"reference": "RFQ-2026-0412", "settlement": "2 tranches, daily"})
        opening = Offer(
            terms_at(1_320_000 * USD),
            self.seller.address,
            now + 3_600,
            nonce=1,
            taker=self.buyer.address,
            agreement=agreement,
        )
        opening.sign(self.seller.private_key, chain_id, factory)
        console.print(f"  seller signs offer {opening.offer_hash().hex()[:16]}…: 20 WBTC for 1,320,000 USDT")
        console.print(f"      with its agreement {agreement} (hash 0x{opening.agreement_hash.hex()[:16]}…)")
        counter = opening.counter(
            terms_at(1_300_000 * USD),
            self.buyer.address,
            now + 3_600,
            nonce=1,
            taker=self.seller.address,
            agreement=agreement,
        )
        signed = counter.sign(self.buyer.private_key, chain_id, factory)
        changed = [c for c in diff(opening, counter) if c[0].startswith("terms.")]
        console.print(f"  buyer counters {counter.offer_hash().hex()[:16]}… (references the offer): ")
        for field, old, new in changed:
            console.print(f"      {field}: {old} → {new}")
        for token, who, amount in ((self.wbtc, self.seller, 20 * BTC), (self.usdt, self.buyer, 1_300_000 * USD)):
            token.approve(factory, amount, sender=who)  # one standing approval to the factory
        receipt = self.factory.contract.accept_offer(
            counter.terms.as_struct(), counter.as_struct(), signed.signature, b"", True, sender=self.seller
        )
        accepted = receipt.decode_logs(self.factory.contract.OfferAccepted)[0]
        deal = self.factory.deal(accepted.deal)
        self.step(f"seller accepts the counter; deal {deal.address} funded", str(receipt.txn_hash), receipt.gas_used)

        domain = Domain(chain_id, wallet.address)
        for i, tranche in enumerate(counter.terms.tranches):
            chain.pending_timestamp = max(chain.pending_timestamp, tranche.unlock_time)
            call = Call(deal.address, 0, bytes(deal.contract.release.encode_input(i)))
            execution = Execution.single(call, wallet.call_view_method("nonce"), now + 60 * DAY)
            sigs = sign_execution(execution, domain, [self.desk.private_key, self.officer.private_key])
            receipt = wallet.execute(call.target, 0, execution.deadline, sigs, call.data, sender=self.desk)
            self.step(f"multisig (desk + officer) releases tranche {i + 1}", str(receipt.txn_hash), receipt.gas_used)
        console.print(f"  deal phase: [bold]{deal.phase().name}[/bold]")

    def deposit(self) -> None:
        self.phase(
            "5 · Funding through a proxy deposit address",
            "the buyer's USDT comes from an exchange withdrawal (a plain transfer): it goes to the deal's CREATE2\n"
            "deposit address for (deal, buyer, quote leg); anyone sweeps it into the escrow, crediting the buyer",
        )
        now = chain.pending_timestamp
        terms = Terms.build(
            base=Leg(self.wbtc.address, 20 * BTC),
            quote=Leg(self.usdt.address, 1_300_000 * USD),
            buyer=self.buyer.address,
            seller=self.seller.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=even_tranches(20 * BTC, 1_300_000 * USD, 1, now + 60, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + 30 * DAY,
            desk_fee_bps=20,
        ).validate(now)
        deal = self.factory.create(terms, self.seller, salt="demo-quote-0005", fund=True)
        self.step(f"seller creates + funds 20 WBTC → {deal.address}", deal.created.tx_hash, deal.created.gas_used)
        address = deposit_address(self.factory.address, deal.address, self.buyer.address, 1)
        console.print(f"  buyer's deposit address (nothing deployed there yet): {address}")
        receipt = self.usdt.transfer(address, 1_300_000 * USD, sender=self.buyer)  # the "exchange withdrawal"
        self.step("plain USDT transfer to the deposit address", str(receipt.txn_hash), receipt.gas_used)
        self.tx("desk sweeps it into the escrow, crediting the buyer", sweep(deal, self.buyer.address, self.desk))
        chain.pending_timestamp = max(chain.pending_timestamp, terms.tranches[0].unlock_time)
        self.tx("the tranche swaps", deal.release(0, self.buyer))
        console.print(f"  deal phase: [bold]{deal.phase().name}[/bold]")

    def desk_path(self) -> dict:
        """Phase 7 (desk engine): RFQ → quote → accept → escrow → hedge → settle → reconciliation report."""
        from decimal import Decimal

        from nexotc_client.desk.db import Database
        from nexotc_client.desk.engine import (
            book_settlement,
            fixture_books,
            hedge_plan,
            quote_engine,
            reconcile_quote,
            run_hedge,
        )
        from nexotc_client.desk.exchange import wall_ms
        from nexotc_client.desk.lock import LockParams, accept_lock, lock_amounts, read_quote_id, sign_lock
        from nexotc_client.desk.models import RFQ, Side
        from nexotc_client.desk.settlement import SettlementTracker
        from nexotc_client.desk.store import DeskStore

        self.phase(
            "7 · Desk engine: RFQ 200 BTC → quote → accept → escrow → hedge → settle → reconciliation",
            "two-way quote from binance/coinbase/okx/kraken books (recorded raw responses parsed by ccxt) · the\n"
            "desk's wallet (here the seller account) signs the locked deal, the client (buyer) takes and funds it ·\n"
            "TWAP hedge on simulated venues · settlement tracked · bookings vs fills vs chain, TCA, CSV + PNG",
        )
        work = Path(tempfile.mkdtemp(prefix="nexotc-desk-"))
        store = DeskStore(Database.open(f"sqlite:///{work / 'desk.db'}"))
        books = fixture_books("BTC/USDT")
        engine = quote_engine(books)
        rfq = RFQ("RFQ-DEMO", "client", "BTC/USDT", Side.BUY, Decimal(200), wall_ms())
        store.save_rfq(rfq)
        quote = engine.quote(rfq)
        store.save_quote(quote)
        c = quote.components
        console.print(
            f"  quote {quote.quote_id}: bid {quote.bid} / ask {quote.ask} (mid {quote.mid}) · VWAP {c.vwap:.2f} · "
            f"half-spread {c.spread_bps} bps · vol add-on {c.vol_addon_bps} bps · skew {c.skew_bps} bps"
        )
        engine.accept(quote)
        store.save_quote(quote)
        console.print(f"  client accepts: buys 200 BTC at {quote.price}")

        params = LockParams(
            base_token=self.wbtc.address,
            quote_token=self.usdt.address,
            desk=self.seller.address,
            client=self.buyer.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=2,
            interval_s=3_600,
        )
        amounts = lock_amounts(quote, params)  # the desk's wallet holds the BTC, the client the USDT
        self.wbtc.mint(self.seller, amounts.base_units, sender=self.desk)
        self.usdt.mint(self.buyer, amounts.quote_units, sender=self.desk)
        signed = sign_lock(self.factory, quote, params, self.seller)
        lock, accepted = accept_lock(self.factory, signed, self.buyer, store, fund=True)
        deal = accepted.deal
        self.tx(f"client takes the desk's offer: escrow {deal.address} funded, both legs", accepted.result)
        console.print(
            f"  quote id on chain (offer salt in the accepting calldata): {read_quote_id(self.factory, deal.address)}"
        )

        plan = hedge_plan(quote, clips=8, interval_ms=150, start_ms=wall_ms())
        state = run_hedge(store, plan, work / "exchange", books, quote_id=quote.quote_id, seed=7, console=console)
        console.print(
            f"  hedge {state.plan.parent_id}: bought {state.filled} BTC in {len(state.orders)} child orders, "
            f"avg {state.avg_price:.2f}, per venue { {k: str(v) for k, v in sorted(state.venue_filled.items())} }"
        )

        tracker = SettlementTracker(store, self.factory)
        tracker.track(deal, confirmations=1)
        for i, tranche in enumerate(deal.terms.tranches):
            chain.pending_timestamp = max(chain.pending_timestamp, tranche.unlock_time)
            result = self.tx(
                f"tranche {i + 1} settles (100 WBTC → client, USDT → desk wallet)", deal.release(i, self.buyer)
            )
            ts = max(e.timestamp for e in result.events) * 1000
            book_settlement(store, quote, deal.terms, i, result.tx_hash, ts, 8, 6)
        view = tracker.poll(deal.address)
        console.print(
            f"  settlement: phase {view.phase}, {len(store.settlement_records(deal.address))} records, "
            f"SLA breaches: {len(view.breaches)}"
        )

        recon = reconcile_quote(store, quote.quote_id, work / "reports")
        t = recon.tca
        table = Table(title=f"Reconciliation and TCA of {quote.quote_id}")
        table.add_column("item")
        table.add_column("value", justify="right")
        table.add_row("records matched / compared", f"{recon.report.matched} / {recon.report.compared}")
        table.add_row("breaks", str(recon.report.by_kind() or "none"))
        table.add_row("arrival slippage", f"{t.arrival_slippage_bps:.2f} bps")
        table.add_row("interval-VWAP slippage", f"{t.interval_vwap_slippage_bps:.2f} bps")
        for name, bps in t.components_bps().items():
            table.add_row(f"shortfall: {name}", f"{bps:.2f} bps")
        table.add_row("report PNG", recon.files["png"])
        console.print(table)
        store.db.close()
        return {"quote": quote, "lock": lock, "deal": deal, "hedge": state, "recon": recon, "view": view}

    def compliance(self) -> None:
        from nexotc_client.audit import disclosed_fields, export_bundle, verify_bundle
        from nexotc_client.issuer import HolderSecret, IssuerStore, prove_compliance
        from nexotc_client.zk.credential import ENTITY_BUSINESS, ENTITY_INDIVIDUAL, Credential, Policy

        self.phase(
            "6 · zk compliance: KYC/KYB proofs, a gated deal, a selective-disclosure audit",
            "an issuer publishes its credential tree's root · each party proves (Groth16, from its own wallet) that\n"
            "it meets the deal's policy without revealing who it is · an auditor sees the buyer's jurisdiction only",
        )
        issuer = accounts.test_accounts[9]
        self.tx(
            "registry admin grants the issuer role", self.kyc.set_issuer(issuer.address, True, "Acme KYC", self.desk)
        )
        policy = Policy(min_kyc_level=2, require_accredited=True, deny=(408, 364))  # not North Korea, not Iran
        params = PolicyParams(policy.min_kyc_level, policy.require_accredited, policy.entity_mask, policy.deny)
        policy_id, result = self.kyc.register_policy(params, "EU professional", self.desk)
        self.tx(f"policy #{policy_id}: KYC level >= 2, accredited, not KP/IR", result)

        # holders keep their secrets; the issuer sees only the commitments
        now = chain.pending_timestamp
        store = IssuerStore.open(Path(tempfile.mkdtemp(prefix="nexotc-issuer-")))
        secrets = {"buyer": HolderSecret.generate(), "seller": HolderSecret.generate()}
        issued = {
            "buyer": store.issue(
                Credential(secrets["buyer"].commitment, ENTITY_INDIVIDUAL, 756, 3, 1, now - DAY, now + 365 * DAY),
                "buyer",
            ),
            "seller": store.issue(
                Credential(secrets["seller"].commitment, ENTITY_BUSINESS, 826, 2, 1, now - DAY, now + 365 * DAY),
                "seller",
            ),
        }
        self.tx("issuer publishes its tree's root", self.kyc.publish_root(store.root, issuer))
        self.tx("issuer prepares the root with the policy", self.kyc.prepare(store.root, policy_id, issuer))
        console.print("  credentials: buyer = Swiss individual (KYC 3), seller = UK business (KYB 2), both accredited")

        for token, who, amount in ((self.wbtc, self.seller, 5 * BTC), (self.usdt, self.buyer, 325_000 * USD)):
            token.mint(who, amount, sender=self.desk)
        terms = Terms.build(
            base=Leg(self.wbtc.address, 5 * BTC),
            quote=Leg(self.usdt.address, 325_000 * USD),
            buyer=self.buyer.address,
            seller=self.seller.address,
            platform=self.desk.address,
            resolver=self.resolver.address,
            tranches=even_tranches(5 * BTC, 325_000 * USD, 1, now + 60, DAY, DAY),
            funding_deadline=now + DAY,
            final_expiry=now + 30 * DAY,
            desk_fee_bps=20,
            policy_id=policy_id,
        ).validate(now)
        address = self.factory.predict(terms, self.seller.address, "demo-quote-0006")
        console.print(f"  the deal's address, known before it exists: {address} (the proofs' scope)")
        proofs = {}
        for role, wallet in (("buyer", self.buyer), ("seller", self.seller)):
            holder = store.holder_file(issued[role].index)
            block_time = int(chain.blocks.head.timestamp)
            proofs[role] = prove_compliance(
                holder, secrets[role], policy, policy_id, deal_scope(address), wallet.address,
                block_time, terms.final_expiry, progress=False,
            )  # fmt: skip
            timing = proofs[role].proof.timings_ms
            self.tx(
                f"{role} proves and submits (witness {timing.get('witness', 0):.0f} ms, "
                f"proof {timing.get('prove', 0):.0f} ms)",
                self.kyc.submit_proof(proofs[role].proof, policy_id, wallet),
            )
        deal = self.factory.create(terms, self.seller, salt="demo-quote-0006", fund=True)
        assert deal.address == address
        self.step(
            f"seller creates + funds 5 WBTC (gate passed) → {deal.address}", deal.created.tx_hash, deal.created.gas_used
        )
        self.tx("buyer funds 325,000 USDT (gate passed)", deal.fund(self.buyer))
        chain.pending_timestamp = max(chain.pending_timestamp, terms.tranches[0].unlock_time)
        self.tx("the tranche swaps (both principals still attested)", deal.release(0, self.buyer))

        disclosure = proofs["buyer"].disclose(["jurisdiction"])
        self.kyc_bundle = export_bundle(deal, self.kyc, [disclosure])
        self.kyc_problems = verify_bundle(self.kyc_bundle, self.factory, self.kyc)
        seen = disclosed_fields(self.kyc_bundle)
        console.print(
            f"  audit bundle: {len(self.kyc_bundle['events'])} events, attestations of "
            f"{[r for r, a in self.kyc_bundle['attestations'].items() if a]}; the auditor sees {seen}"
        )
        console.print(
            f"  re-checked against the chain: [bold]{'no mismatch' if not self.kyc_problems else self.kyc_problems}"
            "[/bold]"
        )

    def summary(self, before: dict[str, tuple[int, int]]) -> None:
        after = self.balances("Balances after")
        table = Table(title="Change per actor")
        table.add_column("actor")
        table.add_column("Δ WBTC", justify="right")
        table.add_column("Δ USDT", justify="right")
        for name in after:
            db = after[name][0] - before[name][0]
            dq = after[name][1] - before[name][1]
            table.add_row(name, f"{db / BTC:+,.8f}", f"{dq / USD:+,.6f}")
        console.print(table)
        gas = Table(title="Gas per step")
        gas.add_column("step")
        gas.add_column("gas", justify="right")
        for what, _, used in self.steps:
            gas.add_row(what, f"{used:,}")
        gas.add_row("[bold]total[/bold]", f"[bold]{sum(g for _, _, g in self.steps):,}[/bold]")
        console.print(gas)


def main() -> None:
    logger.set_level("ERROR")
    demo = Demo()
    demo.deploy()
    before = demo.balances("Balances before")
    demo.dvp()
    demo.escrowed()
    demo.offers()
    demo.deposit()
    demo.compliance()
    demo.summary(before)
    demo.desk_path()
    console.print("\n[bold green]Demo complete:[/bold green] every deal settled on chain under its terms.")
