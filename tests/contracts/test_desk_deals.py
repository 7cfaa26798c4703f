"""Desk deals end to end: EscrowFactory.create_desk_deal(desk_id, terms, salt) asks
DeskRegistry.check_deal(desk_id, msg.sender, terms) and then creates the deal as create_deal does.

Needs the factory hook: the whole module skips (cleanly, at setup) while the EscrowFactory ABI
has no `create_desk_deal`. The `desk_factory` fixture deploys the current EscrowFactory: an address
argument of its constructor gets this module's registry (e.g. `(deal_initcode, wallet_initcode,
desk_registry)`); a factory that exposes `desk_registry()` is checked against it. The rules
themselves are tested one by one against the view in test_desk_registry.py; here each adversarial
case goes through the factory and must leave nothing changed: no deal (the factory's CREATE2 nonce
and the predicted address), no registry change, no token balance change.
"""

from __future__ import annotations

from contextlib import contextmanager

import ape
import pytest
from dealkit import ZERO, _w3, addr, events

from nexotc_client.multisig import Call, Domain, Execution, Signature, pack_signatures

TRADER, APPROVER, COMPLIANCE, CLIENT = 1, 2, 4, 8
POLICY = b"\x7c" * 32
FAR = 2**40


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def desk_admin(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[10]


@pytest.fixture(scope="module")
def desk_registry(project, desk):
    return desk.deploy(project.DeskRegistry)


# the implementations the factory deploys itself, by constructor argument name
INITCODES = {"deal_initcode": "DealEscrow", "wallet_initcode": "DepositWallet"}


@pytest.fixture(scope="module")
def desk_factory(project, desk, desk_registry):
    """The current EscrowFactory wired to `desk_registry`.
    Constructor arguments are filled by name and type: each `*_initcode` with its contract's creation
    code, the address (the desk registry) with this module's registry."""
    contract_type = project.EscrowFactory.contract_type
    assert any(m.name == "create_desk_deal" for m in contract_type.mutable_methods)
    args = []
    for arg in contract_type.constructor.inputs if contract_type.constructor else []:
        if str(arg.type) == "bytes" and arg.name in INITCODES:
            args.append(getattr(project, INITCODES[arg.name]).contract_type.deployment_bytecode.bytecode)
        elif str(arg.type) == "address":
            args.append(desk_registry.address)
        else:
            raise AssertionError(f"desk_factory: unknown EscrowFactory constructor argument {arg.name}: {arg.type}")
    factory = desk.deploy(project.EscrowFactory, *args)
    if any(m.name == "desk_registry" for m in contract_type.view_methods):
        assert factory.desk_registry() == desk_registry.address, "the factory is not wired to the registry"
    return factory


@pytest.fixture(scope="module")
def desk_id(desk_registry, desk_admin, desk, trader, buyer, wbtc, usdt) -> int:
    """Public desk: fee recipient `desk` (the platform of mk_dvp terms), desk fee <= 30 bps,
    introducers <= 20 bps, WBTC / USDT / off-chain; trader is a TRADER, buyer a CLIENT."""
    receipt = desk_registry.create_desk(desk_admin, desk, 30, 20, False, POLICY, [wbtc, usdt, ZERO], sender=desk_admin)
    new_id = receipt.decode_logs(desk_registry.DeskCreated)[0].desk_id
    desk_registry.add_member(new_id, trader, TRADER, sender=desk_admin)
    desk_registry.add_member(new_id, buyer, CLIENT, sender=desk_admin)
    return new_id


@pytest.fixture(scope="module")
def ms_wallet(project, desk, lawyer, approver):
    """A 2-of-2 MultiSig (lawyer, approver) used as a desk trader."""
    ms_factory = desk.deploy(project.MultiSigFactory, project.MultiSig.contract_type.deployment_bytecode.bytecode)
    receipt = ms_factory.create([lawyer, approver], 2, b"\x02" * 32, sender=desk)
    return project.MultiSig.at(receipt.decode_logs(ms_factory.MultiSigCreated)[0].wallet)


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(
    desk_factory, desk_registry, desk_id, ms_wallet, everyone, desk_admin, trader, mk_dvp, mk_escrowed
):
    """Set up every session/module fixture before the first test's snapshot (skips first if the
    factory has no hook)."""


# ---------------------------------------------------------------------------------- helpers
_salts = iter(range(1, 10**9))


def next_salt() -> bytes:
    return next(_salts).to_bytes(32, "big")


def create_desk_deal(project, factory, desk_id, terms, creator, salt=None):
    """create_desk_deal from `creator`; returns (DealEscrow, receipt)."""
    receipt = factory.create_desk_deal(desk_id, terms.as_struct(), salt or next_salt(), sender=creator)
    created = events(receipt, factory.DealCreated, factory)
    assert len(created) == 1
    return project.DealEscrow.at(created[0]["deal"]), receipt


def check_desk_event(factory, receipt, deal, desk_id, creator, policy_id) -> None:
    """The factory's desk event, if it declares one (field names it shares with ours are checked)."""
    if not any(e.name == "DeskDealCreated" for e in factory.contract_type.events):
        return
    found = events(receipt, factory.DeskDealCreated, factory)
    assert len(found) == 1
    expected = {"deal": addr(deal), "desk_id": desk_id, "creator": addr(creator), "policy_id": policy_id}
    assert {k: v for k, v in found[0].items() if k in expected} == {k: v for k, v in expected.items() if k in found[0]}


@pytest.fixture
def nothing_changed(desk_factory, desk_registry, desk_id, everyone, desk_admin, trader, ms_wallet, wbtc, usdt, weth):
    """`with nothing_changed(reason, terms, creator, salt):` exact revert reason; afterwards no deal
    exists (factory nonce unchanged, nothing at the predicted address), the desk is unchanged and no
    token balance moved."""
    people = [*everyone, desk_admin, trader, ms_wallet]
    tokens = [wbtc, usdt, weth]

    def snapshot() -> dict:
        r = _w3(desk_registry)
        calls = [("count", r.functions.desk_count()), ("desk", r.functions.desk(desk_id))]
        calls += [(f"roles:{addr(p)}", r.functions.member_roles(desk_id, addr(p))) for p in people]
        calls += [(f"asset:{addr(t)}", r.functions.asset_allowed(desk_id, addr(t))) for t in (*tokens, ZERO)]
        for t in tokens:
            calls += [(f"bal:{t.address}:{addr(p)}", _w3(t).functions.balanceOf(addr(p))) for p in people]
        with ape.chain.provider.web3.batch_requests() as batch:
            for _, call in calls:
                batch.add(call)
            results = batch.execute()
        out = {name: value for (name, _), value in zip(calls, results, strict=True)}
        out["factory_nonce"] = ape.chain.provider.get_nonce(desk_factory.address)
        return out

    @contextmanager
    def check(reason, terms, creator, salt):
        try:
            predicted = desk_factory.predict_address(terms.as_struct(), addr(creator), salt, desk_id)
        except ape.exceptions.ContractLogicError:  # terms the factory refuses have no address
            predicted = None
        before = snapshot()
        with ape.reverts(reason):
            yield
        assert snapshot() == before
        assert predicted is None or not ape.chain.provider.get_code(predicted)

    return check


def multisig_execute(wallet, signers, target: str, data: bytes, sender):
    execution = Execution((Call(target, 0, data),), wallet.call_view_method("nonce"), FAR)
    digest = execution.digest(Domain(ape.chain.chain_id, wallet.address))
    sigs = pack_signatures([Signature.ecdsa(digest, a.private_key) for a in signers])
    return wallet.execute(target, 0, FAR, sigs, data, sender=sender)


# ------------------------------------------------------------------------------ happy paths
def test_a_trader_creates_a_desk_deal_that_settles_with_the_desk_fee(
    project, desk_factory, desk_id, trader, mk_dvp, fund_all, wbtc, usdt, chain, desk, attacker
):
    terms = mk_dvp(desk_fee_bps=30, introducers=[])
    salt = next_salt()
    predicted = desk_factory.predict_address(terms.as_struct(), trader.address, salt, desk_id)
    deal, receipt = create_desk_deal(project, desk_factory, desk_id, terms, trader, salt)
    assert deal.address == predicted
    assert desk_factory.is_deal(deal)
    assert events(receipt, desk_factory.DealCreated, desk_factory)[0]["creator"] == trader.address
    check_desk_event(desk_factory, receipt, deal, desk_id, trader, POLICY)
    assert bytes(deal.terms_hash()) == terms.terms_hash()
    # an ordinary deal from here on: fund, release, the desk's fee recipient is paid
    fund_all(deal, terms, wbtc, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    before = usdt.balanceOf(desk)
    deal.release(0, sender=attacker)
    assert usdt.balanceOf(desk) - before == tr.quote_amount * 30 // 10_000


def test_an_escrowed_desk_deal_with_an_off_chain_leg(project, desk_factory, desk_id, trader, mk_escrowed):
    deal, receipt = create_desk_deal(project, desk_factory, desk_id, mk_escrowed(), trader)
    assert desk_factory.is_deal(deal)
    check_desk_event(desk_factory, receipt, deal, desk_id, trader, POLICY)


def test_a_multisig_trader_creates_a_desk_deal(
    project, desk_factory, desk_registry, desk_id, desk_admin, ms_wallet, lawyer, approver, attacker, mk_dvp
):
    desk_registry.add_member(desk_id, ms_wallet, TRADER, sender=desk_admin)
    terms = mk_dvp()
    salt = next_salt()
    data = bytes(desk_factory.create_desk_deal.encode_input(desk_id, terms.as_struct(), salt))
    receipt = multisig_execute(ms_wallet, [lawyer, approver], desk_factory.address, data, sender=attacker)
    created = events(receipt, desk_factory.DealCreated, desk_factory)
    assert len(created) == 1 and created[0]["creator"] == ms_wallet.address
    assert created[0]["deal"] == desk_factory.predict_address(terms.as_struct(), ms_wallet.address, salt, desk_id)


def test_a_desk_change_never_touches_an_existing_deal(
    project, desk_factory, desk_registry, desk_id, desk_admin, trader, mk_dvp, fund_all, wbtc, usdt, chain, desk, buyer
):
    terms = mk_dvp()
    deal, _ = create_desk_deal(project, desk_factory, desk_id, terms, trader)
    desk_registry.remove_member(desk_id, trader, sender=desk_admin)
    desk_registry.set_assets(desk_id, [], [wbtc], sender=desk_admin)
    desk_registry.set_fees(desk_id, buyer, 0, 0, sender=desk_admin)
    desk_registry.set_suspended(desk_id, True, sender=desk_admin)
    fund_all(deal, terms, wbtc, usdt)
    tr = terms.tranches[0]
    chain.pending_timestamp = tr.unlock_time
    before = usdt.balanceOf(desk)
    deal.release(0, sender=buyer)
    assert usdt.balanceOf(desk) - before == tr.quote_amount * 25 // 10_000  # the fee fixed at creation


def test_a_screened_party_gets_no_new_desk_deal_and_existing_ones_settle(
    project, desk_factory, desk_registry, desk_id, desk_admin, trader, mk_dvp, fund_all, wbtc, usdt, chain, buyer,
    nothing_changed,
):  # fmt: skip
    terms = mk_dvp()
    deal, _ = create_desk_deal(project, desk_factory, desk_id, terms, trader)
    desk_registry.set_screened(desk_id, [buyer], True, sender=desk_admin)
    salt = next_salt()
    with nothing_changed("party screened out by the desk", terms, trader, salt):
        desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=trader)
    # no admin path freezes the deal made before: it is funded and released as agreed
    fund_all(deal, terms, wbtc, usdt)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.release(0, sender=buyer)
    assert deal.tranche_status(0) == 3  # RELEASED
    desk_registry.set_screened(desk_id, [buyer], False, sender=desk_admin)
    create_desk_deal(project, desk_factory, desk_id, terms, trader, next_salt())


# ---------------------------------------------------------------- adversarial: nothing changed
def test_a_non_member_cannot_create_a_desk_deal(desk_factory, desk_id, attacker, buyer, mk_dvp, nothing_changed):
    terms = mk_dvp()
    for outsider, reason in ((attacker, "not a desk member"), (buyer, "not a trader")):  # buyer is a CLIENT
        salt = next_salt()
        with nothing_changed(reason, terms, outsider, salt):
            desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=outsider)


def test_an_asset_outside_the_desk_list_is_rejected(desk_factory, desk_id, trader, mk_dvp, weth, nothing_changed):
    for terms in (mk_dvp(base_token=weth), mk_dvp(quote_token=weth)):
        salt = next_salt()
        with nothing_changed("asset not allowed", terms, trader, salt):
            desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=trader)


def test_a_fee_above_the_desk_schedule_is_rejected(
    desk_factory, desk_id, trader, introducer, introducer2, lawyer, mk_dvp, nothing_changed
):
    cases = [
        ("desk fee above schedule", mk_dvp(desk_fee_bps=31)),
        ("introducers above cap", mk_dvp(introducers=[(introducer.address, 15), (introducer2.address, 6)])),
        ("platform must be the desk's fee recipient", mk_dvp(platform=lawyer.address)),
    ]
    for reason, terms in cases:
        salt = next_salt()
        with nothing_changed(reason, terms, trader, salt):
            desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=trader)


def test_suspended_unknown_and_invite_only_desks(
    desk_factory, desk_registry, desk_id, desk_admin, trader, lawyer, mk_dvp, nothing_changed
):
    terms = mk_dvp()
    salt = next_salt()
    with nothing_changed("no such desk", terms, trader, salt):
        desk_factory.create_desk_deal(desk_id + 1, terms.as_struct(), salt, sender=trader)
    desk_registry.set_suspended(desk_id, True, sender=desk_admin)
    with nothing_changed("desk suspended", terms, trader, salt):
        desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=trader)
    desk_registry.set_suspended(desk_id, False, sender=desk_admin)
    desk_registry.set_invite_only(desk_id, True, sender=desk_admin)
    with nothing_changed("counterparty not invited", terms, trader, salt):  # the seller is not a member
        desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=trader)
    invited = mk_dvp(seller=lawyer.address)
    desk_registry.add_member(desk_id, lawyer, CLIENT, sender=desk_admin)
    deal = desk_factory.create_desk_deal(desk_id, invited.as_struct(), salt, sender=trader)
    assert events(deal, desk_factory.DealCreated, desk_factory)


def test_the_factory_rules_still_apply_to_desk_deals(desk_factory, desk_id, trader, mk_dvp, t0, nothing_changed):
    """Desk rules pass, the factory's own validation still rejects (the desk adds rules, never
    removes one)."""
    terms = mk_dvp(funding_deadline=t0 - 1)
    salt = next_salt()
    with nothing_changed("funding deadline passed", terms, trader, salt):
        desk_factory.create_desk_deal(desk_id, terms.as_struct(), salt, sender=trader)


def test_the_python_client_creates_desk_deals(desk_factory, desk_id, trader, attacker, mk_dvp):
    """nexotc_client.chain.desk.create_desk_deal: simulated first, the registry's reason on refusal."""
    from nexotc_client.chain.desk import create_desk_deal as client_create
    from nexotc_client.chain.errors import RevertError

    terms = mk_dvp()
    deal = client_create(desk_factory, desk_id, terms, trader, next_salt())
    assert desk_factory.is_deal(deal.address) and deal.terms_hash() == terms.terms_hash()
    assert deal.created is not None and "DealCreated" in [e.name for e in deal.created.events]
    nonce = attacker.nonce
    with pytest.raises(RevertError, match="create_desk_deal reverted: not a desk member"):
        client_create(desk_factory, desk_id, terms, attacker, next_salt())
    assert attacker.nonce == nonce


# ------------------------------------------------------------------ desk offers (accept_offer)
def desk_offer(factory, terms, maker, taker, desk_id):
    """`maker`'s signed offer of `terms` on `factory` for desk `desk_id` (0: none), private to `taker`."""
    from nexotc_client.chain.offers import sign_offer
    from nexotc_client.offers import Offer

    offer = Offer(
        terms=terms,
        maker=maker.address,
        taker=taker.address,
        expiry=FAR,
        nonce=next(_salts),
        desk_id=desk_id,
    )
    return sign_offer(offer, maker, ape.chain.chain_id, factory.address)


@pytest.fixture
def funded_parties(desk_factory, wbtc, usdt, desk, trader, buyer, seller, lawyer):
    """Every possible funder holds and has approved the factory for far more than any leg."""
    for who in (trader, buyer, seller, lawyer):
        for token in (wbtc, usdt):
            token.mint(who, 10**30, sender=desk)
            token.approve(desk_factory, 2**256 - 1, sender=who)


def accept(desk_factory, signed, sender, fund=True):
    o = signed.offer
    return desk_factory.accept_offer(o.terms.as_struct(), o.as_struct(), signed.signature, b"", fund, sender=sender)


def test_a_desk_offer_of_a_trader_makes_a_funded_desk_deal(
    project, desk_factory, desk_id, trader, buyer, mk_dvp, funded_parties, wbtc, usdt
):
    terms = mk_dvp(seller=trader.address, desk_fee_bps=30)
    signed = desk_offer(desk_factory, terms, trader, buyer, desk_id)
    receipt = accept(desk_factory, signed, buyer)
    deal = project.DealEscrow.at(events(receipt, desk_factory.DealCreated, desk_factory)[0]["deal"])
    check_desk_event(desk_factory, receipt, deal, desk_id, trader, POLICY)
    assert deal.desk_id() == desk_id and deal.funded(0) and deal.funded(1)
    assert deal.address == desk_factory.predict_address(
        terms.as_struct(), trader.address, signed.offer.offer_hash(), desk_id
    )


def test_a_clients_desk_offer_is_checked_with_the_trader_who_takes_it(
    project, desk_factory, desk_id, trader, buyer, mk_dvp, funded_parties
):
    """The client (a CLIENT member) makes the offer; the desk trader is the taker and the checked trader."""
    signed = desk_offer(desk_factory, mk_dvp(seller=trader.address), buyer, trader, desk_id)
    receipt = accept(desk_factory, signed, trader, fund=False)
    deal = project.DealEscrow.at(events(receipt, desk_factory.DealCreated, desk_factory)[0]["deal"])
    check_desk_event(desk_factory, receipt, deal, desk_id, trader, POLICY)
    assert deal.desk_id() == desk_id


def test_an_offer_without_a_desk_stays_outside_every_desk(
    project, desk_factory, desk_id, trader, buyer, mk_dvp, funded_parties
):
    receipt = accept(desk_factory, desk_offer(desk_factory, mk_dvp(seller=trader.address), trader, buyer, 0), buyer)
    deal = project.DealEscrow.at(events(receipt, desk_factory.DealCreated, desk_factory)[0]["deal"])
    assert deal.desk_id() == 0 and not events(receipt, desk_factory.DeskDealCreated, desk_factory)


def test_desk_offers_breaking_a_desk_rule_are_refused_with_nothing_changed(
    desk_factory, desk_registry, desk_id, desk_admin, trader, buyer, seller, lawyer, mk_dvp, weth, funded_parties,
    nothing_changed,
):  # fmt: skip
    """Each desk rule, through accept_offer: refused, no deal, no balance moved, the maker's nonce unused."""
    cases = [
        # neither side trades for the desk: the client's offer to a non-member
        ("not a desk member", mk_dvp(seller=lawyer.address), buyer, lawyer, desk_id),
        # the taker is a member, but a CLIENT, and the maker no member at all
        ("not a trader", mk_dvp(seller=seller.address), seller, buyer, desk_id),
        ("asset not allowed", mk_dvp(seller=trader.address, quote_token=weth), trader, buyer, desk_id),
        ("desk fee above schedule", mk_dvp(seller=trader.address, desk_fee_bps=31), trader, buyer, desk_id),
        ("platform must be the desk's fee recipient", mk_dvp(seller=trader.address, platform=lawyer.address),
         trader, buyer, desk_id),
        ("no such desk", mk_dvp(seller=trader.address), trader, buyer, desk_id + 7),
    ]  # fmt: skip
    for reason, terms, maker, taker, desk in cases:
        signed = desk_offer(desk_factory, terms, maker, taker, desk)
        o = signed.offer
        with nothing_changed(reason, o.terms, maker, o.offer_hash()):
            accept(desk_factory, signed, taker)
        assert not desk_factory.nonce_used(maker, o.nonce)
    desk_registry.set_suspended(desk_id, True, sender=desk_admin)
    signed = desk_offer(desk_factory, mk_dvp(seller=trader.address), trader, buyer, desk_id)
    with nothing_changed("desk suspended", signed.offer.terms, trader, signed.offer.offer_hash()):
        accept(desk_factory, signed, buyer)
    desk_registry.set_suspended(desk_id, False, sender=desk_admin)
    desk_registry.set_invite_only(desk_id, True, sender=desk_admin)
    signed = desk_offer(desk_factory, mk_dvp(seller=trader.address, buyer=lawyer.address), trader, lawyer, desk_id)
    with nothing_changed("counterparty not invited", signed.offer.terms, trader, signed.offer.offer_hash()):
        accept(desk_factory, signed, lawyer)
    # the invited client's offer passes the same desk
    accept(desk_factory, desk_offer(desk_factory, mk_dvp(seller=trader.address), trader, buyer, desk_id), buyer)


def test_a_desk_offer_needs_a_factory_with_a_desk_registry(factory, trader, buyer, mk_dvp, wbtc, usdt, desk):
    """The suite's plain factory serves no desk registry: a desk offer can never be accepted there."""
    from nexotc_client.chain.offers import sign_offer
    from nexotc_client.offers import Offer

    for who in (trader, buyer):
        for token in (wbtc, usdt):
            token.mint(who, 10**30, sender=desk)
            token.approve(factory, 2**256 - 1, sender=who)
    offer = Offer(terms=mk_dvp(seller=trader.address), maker=trader.address, taker=buyer.address, expiry=FAR,
                  nonce=1, desk_id=1)  # fmt: skip
    signed = sign_offer(offer, trader, ape.chain.chain_id, factory.address)
    with ape.reverts("no desk registry"):
        factory.accept_offer(offer.terms.as_struct(), offer.as_struct(), signed.signature, b"", False, sender=buyer)
    assert not factory.nonce_used(trader, 1)


# ------------------------------------------------------- a desk deal's address binds its desk
def test_a_desk_deal_never_shares_an_address_with_a_plain_deal(project, desk_factory, desk_id, trader, mk_dvp):
    terms, salt = mk_dvp(seller=trader.address), next_salt()
    plain = desk_factory.predict_address(terms.as_struct(), trader.address, salt, 0)
    for_desk = desk_factory.predict_address(terms.as_struct(), trader.address, salt, desk_id)
    assert plain != for_desk
    deal, _ = create_desk_deal(project, desk_factory, desk_id, terms, trader, salt)
    assert deal.address == for_desk
    receipt = desk_factory.create_deal(terms.as_struct(), salt, sender=trader)  # the same terms, creator and salt
    assert events(receipt, desk_factory.DealCreated, desk_factory)[0]["deal"] == plain


def test_a_removed_trader_cannot_take_its_desk_offers_address_with_a_plain_deal(
    project,
    desk_factory,
    desk_registry,
    desk_id,
    desk_admin,
    trader,
    buyer,
    attacker,
    desk,
    mk_dvp,
    usdt,
    funded_parties,
):
    """The client pays its leg ahead, from an exchange, to the deposit address of the desk deal it expects;
    the desk then removes the trader. The trader's plain deal of the very same terms and salt lands elsewhere,
    so the deposit can only ever go into the desk deal (once the desk lets the offer be accepted; the
    acceptance checks that both parties hold their legs)."""
    terms = mk_dvp(seller=trader.address, desk_fee_bps=25)
    signed = desk_offer(desk_factory, terms, trader, buyer, desk_id)
    expected = desk_factory.predict_address(terms.as_struct(), trader.address, signed.offer.offer_hash(), desk_id)
    wallet = desk_factory.deposit_address(expected, buyer, 1)
    usdt.mint(wallet, terms.quote.amount, sender=desk)
    desk_registry.remove_member(desk_id, trader, sender=desk_admin)
    with ape.reverts("not a trader"):
        accept(desk_factory, signed, buyer, fund=False)
    receipt = desk_factory.create_deal(terms.as_struct(), signed.offer.offer_hash(), sender=trader)
    plain = project.DealEscrow.at(events(receipt, desk_factory.DealCreated, desk_factory)[0]["deal"])
    assert plain.address != expected and not ape.chain.provider.get_code(expected)
    assert desk_factory.deposit_address(plain, buyer, 1) != wallet
    with ape.reverts():  # nothing at the expected address to sweep into
        desk_factory.sweep(expected, buyer, sender=attacker)
    assert usdt.balanceOf(wallet) == terms.quote.amount and usdt.balanceOf(plain) == 0
    # back on the desk, the offer is accepted at the expected address and the deposit swept into it
    desk_registry.add_member(desk_id, trader, TRADER, sender=desk_admin)
    deal = project.DealEscrow.at(
        events(accept(desk_factory, signed, buyer, fund=False), desk_factory.DealCreated, desk_factory)[0]["deal"]
    )
    assert deal.address == expected and deal.desk_id() == desk_id
    desk_factory.sweep(deal, buyer, sender=attacker)
    assert deal.funded(1) and usdt.balanceOf(deal) == terms.quote.amount
