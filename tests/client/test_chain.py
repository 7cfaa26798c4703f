"""The chain wrappers on a real anvil: registry, Factory, Deal actions, status and events."""

from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from nexotc_client.chain import (
    Deal,
    Factory,
    NexotcError,
    NotADealError,
    NotDeployedError,
    Registry,
    RevertError,
    Split,
    deploy_factory,
    get_deployment,
    get_factory,
    network_key,
)
from nexotc_client.terms import LegId, Mode, Phase, TermsError, TrancheStatus

DAY = 86_400


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    return Registry(tmp_path_factory.mktemp("nexotc") / "deployments.json")


@pytest.fixture(scope="module")
def nxf(desk, registry) -> Factory:
    """The nexotc Factory of this module (not `nx`: that is conftest's function-scoped CLI runner, and ape's
    chain isolation, which tracks fixtures by name, mis-restores a module fixture sharing its name)."""
    return deploy_factory(desk, registry=registry)


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(nxf, factory, wbtc, usdt, usdc, buyer, seller, resolver, introducer, attacker, lawyer) -> None:
    """Set up every session/module fixture before the first test (ape's isolation snapshots)."""


def mint_legs(terms, wbtc, usdt, buyer, seller, base_token=None, quote_token=None) -> None:
    if terms.base.on_chain:
        (base_token or wbtc).mint(seller, terms.base.amount, sender=seller)
    if terms.quote.on_chain:
        (quote_token or usdt).mint(buyer, terms.quote.amount, sender=buyer)


def names(result) -> list[str]:
    return [e.name for e in result.events]


# ---------------------------------------------------------------- registry
def test_registry_records_the_deployment(nxf, registry, desk, chain):
    key = network_key()
    assert key == f"ethereum:local:{chain.chain_id}"
    raw = json.loads(registry.path.read_text())
    entry = raw[key]
    assert entry["factory"] == nxf.address
    assert entry["implementation"] == nxf.implementation
    assert entry["block"] == nxf.start_block > 0
    assert entry["block_hash"] == "0x" + bytes(chain.provider.get_block(entry["block"]).hash).hex()
    assert entry["deployer"] == desk.address
    assert get_factory(registry=registry).address == nxf.address
    assert get_factory(key, registry=registry).start_block == nxf.start_block


def test_registry_refuses_missing_foreign_and_reset_chains(nxf, registry, tmp_path):
    with pytest.raises(
        NotDeployedError, match=r"no factory recorded for ethereum:local:\d+ in .*empty.json \(run `nexotc deploy`\)"
    ):
        get_deployment(registry=Registry(tmp_path / "empty.json"))
    with pytest.raises(NexotcError, match="the registry entry ethereum:sepolia:11155111 is for another chain"):
        get_deployment("ethereum:sepolia:11155111", registry=registry)
    # same chain id, other history (a reset node): the recorded block hash no longer matches
    stale = json.loads(registry.path.read_text())
    stale[network_key()]["block_hash"] = "0x" + "00" * 32
    copy = Registry(tmp_path / "stale.json")
    copy.path.write_text(json.dumps(stale))
    with pytest.raises(NotDeployedError, match="is not on this chain any more \\(chain reset\\?\\)"):
        get_factory(registry=copy)
    copy.remove(network_key())
    assert copy.load() == {}
    bad = Registry(tmp_path / "bad.json")
    bad.path.write_text("{not json")
    with pytest.raises(NexotcError, match="cannot read the deployment registry"):
        bad.load()


# ----------------------------------------------------------- address checks
def test_deal_at_refuses_what_is_not_a_deal(nxf, factory, create_deal, dvp_terms, desk, wbtc):
    real = create_deal(dvp_terms(), desk)  # a deal of ANOTHER factory (the conftest one)
    for address in (desk.address, wbtc.address, nxf.implementation, real.address):
        with pytest.raises(NotADealError, match=f"{address} is not a deal of the factory at {nxf.address}"):
            Deal.at(address, nxf)
    with pytest.raises(NexotcError, match="not an address: '0x1234'"):
        Deal.at("0x1234", nxf)
    other = Factory(factory)
    assert Deal.at(real.address, other).address == real.address
    with pytest.raises(NexotcError, match="no contract at"):
        Factory.at(desk.address)
    with pytest.raises(NexotcError, match="is not an EscrowFactory"):
        Factory.at(wbtc.address)


# ------------------------------------------------------------------ create
def test_create_predicts_funds_and_lists(nxf, dvp_terms, wbtc, usdt, buyer, seller):
    terms = dvp_terms()
    mint_legs(terms, wbtc, usdt, buyer, seller)
    predicted = nxf.predict(terms, seller.address, "rfq-0001")
    deal = nxf.create(terms, seller, salt="rfq-0001", fund=True)
    assert deal.address == predicted
    assert deal.terms == terms
    assert deal.terms_hash() == terms.terms_hash()
    created = deal.created
    assert created is not None and names(created) == ["DealCreated", "Funded"]
    assert created.gas_used > 0 and created.tx_hash.startswith("0x")
    assert created.events[1].args == {"leg": 0, "funder": seller.address, "amount": terms.base.amount}
    status = deal.status()
    assert (status.phase, status.mode) == (Phase.FUNDING, Mode.DVP)
    assert status.funded == (True, False)
    assert status.held == (terms.base.amount, 0)
    assert wbtc.balanceOf(deal.address) == terms.base.amount

    records = nxf.deals()
    record = records[-1]
    assert (record.deal, record.creator) == (deal.address, seller.address)
    assert record.terms_hash == "0x" + terms.terms_hash().hex()
    assert record.salt == "0x" + keccak(text="rfq-0001").hex()
    assert record.block == created.block and record.tx_hash == created.tx_hash
    assert [r.index for r in records] == list(range(1, len(records) + 1))
    assert nxf.deal(record.index).address == deal.address
    assert nxf.deal(f"#{record.index}").address == deal.address
    with pytest.raises(NexotcError, match="no deal #999"):
        nxf.deal(999)
    with pytest.raises(NexotcError, match=f"already exists at {deal.address}"):
        nxf.create(terms, seller, salt="rfq-0001", fund=True)
    with pytest.raises(RevertError, match="^create_deal reverted: "):
        nxf.create(terms, seller, salt="rfq-0001")


def test_create_checks_terms_before_sending(nxf, dvp_terms, desk, now):
    with pytest.raises(TermsError, match="funding deadline passed"):
        nxf.create(dvp_terms(funding_deadline=now - 1), desk)
    with pytest.raises(NexotcError, match="funds nothing in this deal"):
        nxf.create(dvp_terms(), desk, fund=True)


# ---------------------------------------------------------------- DVP flow
def test_dvp_release_refund_dispute_resolve(
    nxf, dvp_terms, wbtc, usdt, buyer, seller, desk, introducer, resolver, chain
):
    terms = dvp_terms(tranches=4)
    mint_legs(terms, wbtc, usdt, buyer, seller)
    deal = nxf.create(terms, desk, salt=1)
    assert names(deal.fund(seller)) == ["Funded"]
    usdt.approve(deal.address, 5, sender=buyer)  # a short, non-zero allowance: USDT needs a reset to 0
    funded = deal.fund(buyer)
    assert funded.events[0].args["amount"] == terms.quote.amount
    assert usdt.allowance(buyer, deal.address) == 0
    assert deal.phase() == Phase.ACTIVE

    t0, t1, t2, t3 = terms.tranches
    chain.pending_timestamp = t0.unlock_time
    released = deal.release(0, buyer)
    assert names(released) == ["Released"]
    cuts = terms.commissions(t0.quote_amount)
    assert released.events[0].args["fees"] == sum(cuts.values())
    assert wbtc.balanceOf(buyer) == t0.base_amount
    assert usdt.balanceOf(seller) == t0.quote_amount - sum(cuts.values())
    assert usdt.balanceOf(introducer) == cuts[introducer.address]

    with pytest.raises(NexotcError, match="^release: tranche 0 is released$"):
        deal.release(0, buyer)

    with pytest.raises(RevertError, match="deadline not passed"):
        deal.refund(1, desk)
    chain.pending_timestamp = t1.deadline + 1
    assert names(deal.refund(1, desk)) == ["Refunded"]
    assert wbtc.balanceOf(seller) == t1.base_amount

    disputed = deal.dispute(2, "late", buyer)
    assert disputed.events[0].args["reason"] == "0x" + b"late".ljust(32, b"\0").hex()
    base_split = Split.proportional(t2.base_amount, 5_000, 100)
    quote_split = Split.proportional(t2.quote_amount, 5_000, 100)
    assert base_split.total == t2.base_amount and quote_split.total == t2.quote_amount
    resolver_before = (wbtc.balanceOf(resolver), usdt.balanceOf(resolver))
    resolved = deal.resolve(2, base_split, quote_split, resolver)
    assert resolved.events[0].args["base"] == {
        "to_receiver": base_split.to_receiver,
        "to_funder": base_split.to_funder,
        "to_resolver": base_split.to_resolver,
    }
    assert resolved.events[0].args["by_default"] is False
    assert wbtc.balanceOf(resolver) - resolver_before[0] == base_split.to_resolver
    assert usdt.balanceOf(resolver) - resolver_before[1] == quote_split.to_resolver

    status = deal.status()
    assert [t.status for t in status.tranches] == [
        TrancheStatus.RELEASED,
        TrancheStatus.REFUNDED,
        TrancheStatus.RESOLVED,
        TrancheStatus.PENDING,
    ]
    assert status.tranches[2].disputed_at > 0
    assert status.held == (t3.base_amount, t3.quote_amount)
    assert status.phase == Phase.ACTIVE
    assert status.to_dict()["tranches"][0]["status"] == "released"

    events = deal.events()
    assert [e.name for e in events] == [
        "DealCreated",
        "Funded",
        "Funded",
        "Released",
        "Refunded",
        "Disputed",
        "Resolved",
    ]
    assert events[3].tx_hash == released.tx_hash and events[3].block == released.block
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert events[0].args["deal"] == deal.address


# ----------------------------------------------------------- ESCROWED flow
def test_escrowed_mark_approve_release_and_default_settlement(
    nxf, escrowed_terms, wbtc, usdt, buyer, seller, desk, chain
):
    terms = escrowed_terms(tranches=2)
    mint_legs(terms, wbtc, usdt, buyer, seller)
    deal = nxf.create(terms, buyer, salt="escrowed-1", fund=True)
    assert deal.status().phase == Phase.ACTIVE  # the only on-chain leg is funded
    t0, t1 = terms.tranches
    chain.pending_timestamp = t0.unlock_time

    marked = deal.mark(0, "btc tx 1 to bc1q-buyer", seller)
    assert marked.events[0].args["evidence"] == "0x" + keccak(text="btc tx 1 to bc1q-buyer").hex()
    txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    with pytest.raises(RevertError, match="tranche not pending"):
        deal.mark(0, txid, seller)
    status = deal.status()
    assert status.tranches[0].status == TrancheStatus.MARKED and status.tranches[0].marked_at > 0

    approved = deal.approve(0, buyer)
    assert approved.events[0].args["approvals"] == 1
    assert deal.status().tranches[0].approved_by == (buyer.address,)
    released = deal.release(0, buyer)
    assert names(released) == ["Signed", "Released"]
    # the paying call does not store its own signature bit: the status takes it from the Signed event
    paid = deal.status().tranches[0]
    assert paid.status == TrancheStatus.RELEASED and (paid.signatures, paid.signed_by) == (1, (buyer.address,))
    assert paid.approved_by == (buyer.address,)
    cuts = terms.commissions(t0.quote_amount)
    assert usdt.balanceOf(seller) == t0.quote_amount - sum(cuts.values())

    deal.dispute(1, "no delivery", seller)
    with pytest.raises(NexotcError, match=r"^settle: tranche 1 was disputed at .*: settleable from .* \(in 3d\)$"):
        deal.settle_dispute(1, desk)
    chain.pending_timestamp = chain.pending_timestamp + terms.dispute_timeout
    buyer_before = usdt.balanceOf(buyer)
    settled = deal.settle_dispute(1, desk)
    assert settled.events[0].args["by_default"] is True
    assert usdt.balanceOf(buyer) - buyer_before == t1.quote_amount  # default: refund
    assert deal.status().phase == Phase.SETTLED


def test_prechecks_give_clear_messages(nxf, escrowed_terms, dvp_terms, wbtc, usdt, buyer, seller, resolver, attacker):
    terms = escrowed_terms()
    mint_legs(terms, wbtc, usdt, buyer, seller)
    deal = nxf.create(terms, buyer, fund=True)
    with pytest.raises(NexotcError, match=f"{buyer.address} is not a marker of this deal"):
        deal.mark(0, "x", buyer)
    with pytest.raises(NexotcError, match=f"{seller.address} is not an approver of this deal"):
        deal.approve(0, seller)
    with pytest.raises(NexotcError, match=r"no tranche 5: this deal has 2 \(0..1\)"):
        deal.mark(5, "x", seller)
    with pytest.raises(NexotcError, match="is not the buyer or the seller"):
        deal.dispute(0, "x", attacker)
    with pytest.raises(NexotcError, match="is not the resolver of this deal"):
        deal.resolve(0, Split(), Split(), buyer)
    with pytest.raises(NexotcError, match="the base split must sum to 0 .*off chain.*got 1"):
        deal.resolve(0, Split(1, 0, 0), Split(), resolver)
    with pytest.raises(NexotcError, match="the quote split must sum to"):
        deal.resolve(0, Split(), Split(1, 0, 0), resolver)
    with pytest.raises(NexotcError, match=r"^release: tranche 0 is pending \(not marked delivered yet"):
        deal.release(0, buyer)
    with pytest.raises(NexotcError, match="funds nothing in this deal"):
        deal.fund(attacker)
    with pytest.raises(NexotcError, match="claim: token is not an address"):
        deal.claim("usdt", buyer.address, buyer)
    with pytest.raises(NexotcError, match=f"has no pull balance of .*{usdt.address}"):
        deal.claim(usdt.address, buyer.address, buyer)
    dvp = nxf.create(dvp_terms(), seller)
    with pytest.raises(NexotcError, match="a DVP deal has no marks"):
        dvp.mark(0, "x", seller)
    with pytest.raises(
        NexotcError, match=rf"{buyer.address} holds 0 \w+, the quote leg needs .*\(token {usdt.address}\)"
    ):
        dvp.fund(buyer)


# ------------------------------------------------- cancel, expire and claim
def test_cancel_unfunded_and_expire(nxf, dvp_terms, escrowed_terms, wbtc, usdt, buyer, seller, attacker, chain):
    terms = dvp_terms()
    mint_legs(terms, wbtc, usdt, buyer, seller)
    deal = nxf.create(terms, seller, fund=True)
    escrowed = escrowed_terms()
    usdt.mint(buyer, escrowed.quote.amount, sender=buyer)
    deal2 = nxf.create(escrowed, buyer, fund=True)
    with pytest.raises(RevertError, match="funding open"):
        deal.cancel_unfunded(attacker)
    chain.pending_timestamp = terms.funding_deadline + 1
    cancelled = deal.cancel_unfunded(attacker)
    assert cancelled.events[0].name == "Cancelled"
    assert cancelled.events[0].args["base_amount"] == terms.base.amount
    assert wbtc.balanceOf(seller) == terms.base.amount
    assert deal.status().phase == Phase.CANCELLED

    with pytest.raises(RevertError, match="before final expiry"):
        deal2.expire(attacker)
    chain.pending_timestamp = escrowed.final_expiry
    expired = deal2.expire(attacker)
    assert expired.events[0].args["quote_amount"] == escrowed.quote.amount
    status = deal2.status()
    assert status.phase == Phase.EXPIRED and status.held == (0, 0)


def test_blocked_payee_claims_its_pull_balance(nxf, dvp_terms, wbtc, usdc, buyer, seller, lawyer, chain):
    terms = dvp_terms(tranches=1, quote_token=usdc, fee_leg=LegId.BASE)
    mint_legs(terms, wbtc, usdc, buyer, seller, quote_token=usdc)
    deal = nxf.create(terms, seller, fund=True)
    deal.fund(buyer)
    usdc.set_blocked(seller, True, sender=seller)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    released = deal.release(0, buyer)
    assert "PaymentDeferred" in names(released)
    status = deal.status()
    assert status.claimable == {seller.address: {usdc.address: terms.quote.amount}}
    claimed = deal.claim(usdc.address, lawyer.address, seller)
    assert claimed.events[0].args["recipient"] == lawyer.address
    assert usdc.balanceOf(lawyer) == terms.quote.amount
    assert deal.status().claimable == {}
