"""The compliance gate on deals: a deal whose terms carry a KYCRegistry policy id requires each principal
(buyer, seller) to hold an attestation of it in the deal's scope (its address; a desk deal's is its desk):
to fund, one that lasts until the final expiry (so no funder can back out by letting it lapse); to accept
an offer (both the taker and the maker) and at every release payout, an unexpired one. An attestation that
expires mid-deal (a principal that funds nothing: an ESCROWED deal's delivering side) blocks releases but
refunds and expiry stay open; one credential cannot attest both sides; desk deals must carry the desk's
policy and are opened by desk-scope attestations.

Real proofs (contracts/Groth16Verifier.vy): made once for the module, for deal addresses predicted before
the deals exist (the parties prove before accepting) and for a desk created before them."""

from __future__ import annotations

import ape
import pytest
from dealkit import BTC, DAY, MARKED, RELEASED, USD6, ZERO, addr
from eth_abi import encode
from eth_utils import keccak
from hexbytes import HexBytes
from kyckit import EU_PRO, Credentials, register_args, submit_args

from nexotc_client.chain.factory import Factory
from nexotc_client.chain.kyc import desk_scope
from nexotc_client.chain.offers import compliance_problems, inspect_offer
from nexotc_client.offers import Offer
from nexotc_client.terms import DisputeDefault
from nexotc_client.zk.prover import Prover

POLICY = 1
SALT_A = b"\xaa" * 32
SALT_C = b"\xcc" * 32
SALT_D = b"\xdd" * 32
SALT_E = b"\xee" * 32
EMPTY = b""
# a deposit needs an attestation that lasts until the final expiry (none at all: the same refusal)
FUNDING_GATE = "party not compliant until final expiry"


@pytest.fixture(scope="module")
def issuer(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def NOW(t0):  # noqa: N802
    return t0 + 120


@pytest.fixture(scope="module")
def creds(t0):
    return Credentials.build(t0)


@pytest.fixture(scope="module")
def kyc(project, desk, issuer, creds):
    reg = desk.deploy(project.KYCRegistry, desk, 3_600)
    reg.set_issuer(issuer, True, "Acme KYC", sender=desk)
    reg.publish_root(creds.tree.root, sender=issuer)
    reg.register_policy(*register_args(EU_PRO, "EU professional"), sender=desk)
    return reg


@pytest.fixture(scope="module")
def desk_registry(project, desk):
    return desk.deploy(project.DeskRegistry)


@pytest.fixture(scope="module")
def gated(project, desk, kyc, desk_registry):
    """An EscrowFactory whose DealEscrow implementation asks `kyc` (constructor argument appended to its
    creation code, as nexotc_client.chain.deployment does)."""
    deal_code = bytes(HexBytes(project.DealEscrow.contract_type.deployment_bytecode.bytecode)) + encode(
        ["address"], [kyc.address]
    )
    wallet_code = project.DepositWallet.contract_type.deployment_bytecode.bytecode
    factory = desk.deploy(project.EscrowFactory, deal_code, wallet_code, desk_registry)
    assert project.DealEscrow.at(factory.implementation()).kyc_registry() == kyc.address
    return factory


def at_least(chain, timestamp):
    """The next block at `timestamp`, or right after the head if the chain is already past it (the proofs'
    `now` tolerates 5 minutes either way)."""
    chain.pending_timestamp = max(timestamp, chain.blocks.head.timestamp + 1)


def mint_and_approve(terms, spender, wbtc, usdt, buyer, seller):
    wbtc.mint(seller, terms.base.amount, sender=seller)
    wbtc.approve(spender, terms.base.amount, sender=seller)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    usdt.approve(spender, 0, sender=buyer)
    usdt.approve(spender, terms.quote.amount, sender=buyer)


@pytest.fixture(scope="module")
def terms_a(mk_dvp):
    """200 WBTC / 13M USDT in 4 tranches (unlocks t0+1000 + k days, one day each to deliver), policy 1;
    an unresolved dispute releases by default (when the principals are still compliant)."""
    return mk_dvp(policy_id=POLICY, dispute_default=DisputeDefault.RELEASE)


@pytest.fixture(scope="module")
def terms_e(mk_escrowed):
    """ESCROWED, 10 BTC off chain against 650,000 USDT held in 4 tranches (unlocks t0+1000 + k days, one day
    each to deliver), policy 1: the buyer funds, the seller marks deliveries (it funds nothing); an unresolved
    dispute releases by default."""
    return mk_escrowed(tranches=4, policy_id=POLICY, dispute_default=DisputeDefault.RELEASE)


@pytest.fixture(scope="module")
def terms_c(mk_dvp):
    return mk_dvp(policy_id=POLICY)


@pytest.fixture(scope="module")
def offer_b(mk_dvp, gated, seller, buyer, t0):
    terms = mk_dvp(policy_id=POLICY, base_amount=2 * BTC, quote_amount=130_000 * USD6)
    return Offer(terms=terms, maker=seller.address, taker=buyer.address, expiry=t0 + DAY, nonce=1)


@pytest.fixture(scope="module")
def desk_id(desk_registry, desk, lawyer, seller, wbtc, usdt):
    """A public desk requiring policy 1, with the seller as a trader."""
    receipt = desk_registry.create_desk(
        lawyer, desk, 30, 20, False, POLICY.to_bytes(32, "big"), [wbtc, usdt, ZERO], sender=lawyer
    )
    desk_id = receipt.decode_logs(desk_registry.DeskCreated)[0].desk_id
    desk_registry.add_member(desk_id, seller, 1, sender=lawyer)
    return desk_id


@pytest.fixture(scope="module")
def terms_d(mk_dvp):
    return mk_dvp(policy_id=POLICY, base_amount=3 * BTC, quote_amount=195_000 * USD6)


@pytest.fixture(scope="module")
def scopes(gated, terms_a, offer_b, terms_c, terms_d, terms_e, buyer, seller, desk_id):
    a = gated.predict_address(terms_a.as_struct(), seller, SALT_A, 0)
    b = gated.predict_address(offer_b.terms.as_struct(), offer_b.maker, offer_b.offer_hash(), offer_b.desk_id)
    c = gated.predict_address(terms_c.as_struct(), seller, SALT_C, 0)
    d = gated.predict_address(terms_d.as_struct(), seller, SALT_D, desk_id)  # created as a desk deal
    e = gated.predict_address(terms_e.as_struct(), buyer, SALT_E, 0)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "desk": desk_scope(desk_id)}


@pytest.fixture(scope="module")
def proofs(creds, NOW, t0, buyer, seller, scopes):  # noqa: N803
    """Attestations for 30 days (beyond every deal's final expiry) unless said: deal A: the buyer (Swiss
    credential), the seller (UK business), and the buyer's credential bound to the seller (one day); deal B:
    both; deal C: the seller for one day only (it ends before C's final expiry); deal E: the buyer, the seller
    until t0 + 1 day + 2000 s (it lapses mid-deal) and its 30-day renewal; the desk: both; desk deal D's own
    address: both, one day."""
    a, b, c, d, e = (int(scopes[k], 16) for k in "abcde")
    desk, month = scopes["desk"], NOW + 30 * DAY
    with Prover(progress=False) as prover:
        return {
            "buyer_a": creds.prove(prover, "swiss", buyer.address, a, NOW, month),
            "seller_a": creds.prove(prover, "uk_business", seller.address, a, NOW, month),
            "seller_with_buyer_credential": creds.prove(prover, "swiss", seller.address, a, NOW, NOW + DAY),
            "buyer_b": creds.prove(prover, "swiss", buyer.address, b, NOW, month),
            "seller_b": creds.prove(prover, "uk_business", seller.address, b, NOW, month),
            "seller_c_short": creds.prove(prover, "uk_business", seller.address, c, NOW, NOW + DAY),
            "buyer_e": creds.prove(prover, "swiss", buyer.address, e, NOW, month),
            "seller_e": creds.prove(prover, "uk_business", seller.address, e, NOW, t0 + DAY + 2_000),
            "seller_e_renewal": creds.prove(prover, "uk_business", seller.address, e, NOW, month),
            "buyer_desk": creds.prove(prover, "swiss", buyer.address, desk, NOW, month),
            "seller_desk": creds.prove(prover, "uk_business", seller.address, desk, NOW, month),
            "buyer_d": creds.prove(prover, "swiss", buyer.address, d, NOW, NOW + DAY),
            "seller_d": creds.prove(prover, "uk_business", seller.address, d, NOW, NOW + DAY),
        }


@pytest.fixture(scope="module")
def deal_a(project, chain, gated, kyc, proofs, terms_a, scopes, wbtc, usdt, buyer, seller, NOW):  # noqa: N803
    """Deal A attested by both principals, created and funded by the seller, funded by the buyer."""
    chain.pending_timestamp = NOW + 1
    kyc.submit_proof(*submit_args(proofs["buyer_a"], POLICY), sender=buyer)
    kyc.submit_proof(*submit_args(proofs["seller_a"], POLICY), sender=seller)
    mint_and_approve(terms_a, gated, wbtc, usdt, buyer, seller)
    gated.create_and_fund(terms_a.as_struct(), SALT_A, sender=seller)
    deal = project.DealEscrow.at(scopes["a"])
    gated.fund_deal(deal, sender=buyer)
    return deal


@pytest.fixture(scope="module")
def deal_e(project, chain, gated, kyc, proofs, terms_e, scopes, usdt, buyer, seller):
    """Deal E attested by both principals (the seller's attestation ends a day in), created and funded by the
    buyer."""
    at_least(chain, chain.blocks.head.timestamp + 1)
    kyc.submit_proof(*submit_args(proofs["buyer_e"], POLICY), sender=buyer)
    kyc.submit_proof(*submit_args(proofs["seller_e"], POLICY), sender=seller)
    usdt.mint(buyer, terms_e.quote.amount, sender=buyer)
    usdt.approve(gated, 0, sender=buyer)
    usdt.approve(gated, terms_e.quote.amount, sender=buyer)
    gated.create_and_fund(terms_e.as_struct(), SALT_E, sender=buyer)
    deal = project.DealEscrow.at(scopes["e"])
    assert deal.phase() == 1
    return deal


@pytest.fixture(scope="module", autouse=True)
def _setup_first(deal_a, deal_e, everyone):
    """Deploy, prove and fund before the first test's snapshot."""


# ------------------------------------------------------------------------ funding
def test_funded_deal_carries_the_policy(deal_a, kyc, terms_a, buyer, seller, attacker):
    assert deal_a.policy_id() == POLICY and deal_a.terms().policy_id == POLICY
    assert deal_a.funded(0) and deal_a.funded(1) and deal_a.phase() == 1
    assert deal_a.compliant(buyer) and deal_a.compliant(seller) and not deal_a.compliant(attacker)
    assert kyc.is_compliant(buyer, int(deal_a.address, 16), POLICY)


def test_funding_requires_an_attestation(gated, mk_dvp, wbtc, usdt, buyer, seller, project):
    """Deal C names the policy but nobody proved for it: creating it is open, funding is not."""
    terms = mk_dvp(policy_id=POLICY)
    mint_and_approve(terms, gated, wbtc, usdt, buyer, seller)
    before = (wbtc.balanceOf(seller), usdt.balanceOf(buyer))
    with ape.reverts(FUNDING_GATE):
        gated.create_and_fund(terms.as_struct(), SALT_C, sender=seller)
    deal = project.DealEscrow.at(gated.create_deal(terms.as_struct(), SALT_C, sender=seller).return_value)
    with ape.reverts(FUNDING_GATE):
        gated.fund_deal(deal, sender=buyer)
    usdt.approve(deal, terms.quote.amount, sender=buyer)
    with ape.reverts(FUNDING_GATE):
        deal.fund(sender=buyer)
    # the leg itself is open (funding_leg leaves compliance to the credit) ...
    assert tuple(deal.funding_leg(seller)) == (0, wbtc.address, terms.base.amount)
    # ... so a deposit made before the funder proves waits for it: a sweep cannot credit it, nobody but
    # the funder can send it back (the funder's lapse is not the end of the leg), the funder can
    target = gated.deposit_address(deal, buyer, 1)
    usdt.transfer(target, terms.quote.amount, sender=buyer)
    with ape.reverts(FUNDING_GATE):
        gated.sweep(deal, buyer, sender=seller)
    with ape.reverts("deposit can still fund the leg"):
        gated.return_deposit(deal, buyer, 1, usdt, sender=seller)
    assert usdt.balanceOf(target) == terms.quote.amount
    gated.return_deposit(deal, buyer, 1, usdt, sender=buyer)
    assert (wbtc.balanceOf(seller), usdt.balanceOf(buyer)) == before and not deal.funded(0) and not deal.funded(1)


def test_funding_needs_an_attestation_until_the_final_expiry(
    gated,
    kyc,
    terms_c,
    proofs,
    scopes,
    chain,
    wbtc,
    usdt,
    buyer,
    seller,
    project,
    NOW,  # noqa: N803
):
    """The seller's attestation in deal C's scope passes the gate now but ends a day in, long before C's final
    expiry: C takes no deposit from it (create-and-fund, fund_deal, fund, a deposit address's sweep), nothing
    moves, and the client names the cause before sending anything."""
    at_least(chain, NOW + 6)
    kyc.submit_proof(*submit_args(proofs["seller_c_short"], POLICY), sender=seller)
    mint_and_approve(terms_c, gated, wbtc, usdt, buyer, seller)
    before = (wbtc.balanceOf(seller), usdt.balanceOf(buyer))
    with ape.reverts(FUNDING_GATE):
        gated.create_and_fund(terms_c.as_struct(), SALT_C, sender=seller)
    deal = project.DealEscrow.at(gated.create_deal(terms_c.as_struct(), SALT_C, sender=seller).return_value)
    assert deal.address == scopes["c"] and deal.compliant(seller)
    with ape.reverts(FUNDING_GATE):
        gated.fund_deal(deal, sender=seller)
    wbtc.approve(deal, terms_c.base.amount, sender=seller)
    with ape.reverts(FUNDING_GATE):
        deal.fund(sender=seller)
    target = gated.deposit_address(deal, seller, 0)
    wbtc.transfer(target, terms_c.base.amount, sender=seller)
    with ape.reverts(FUNDING_GATE):
        gated.sweep(deal, seller, sender=buyer)
    gated.return_deposit(deal, seller, 0, wbtc, sender=seller)
    assert (wbtc.balanceOf(seller), usdt.balanceOf(buyer)) == before and not deal.funded(0)
    # the client names it (`nexotc deal fund`, `deal sweep`, `offer accept --fund` say this before sending)
    [problem] = Factory.at(gated.address).deal(deal.address).coverage_problems(seller.address)
    assert problem.startswith(f"the seller {seller.address}'s attestation in the deal's scope ends at ")
    assert "before the deal's final expiry" in problem and f"kyc prove --deal {deal.address}" in problem


def test_deal_without_policy_is_not_gated(gated, mk_dvp, wbtc, usdt, buyer, seller, project):
    terms = mk_dvp()
    mint_and_approve(terms, gated, wbtc, usdt, buyer, seller)
    deal = project.DealEscrow.at(gated.create_and_fund(terms.as_struct(), SALT_C, sender=seller).return_value)
    gated.fund_deal(deal, sender=buyer)
    assert deal.phase() == 1 and deal.policy_id() == 0 and deal.compliant(buyer)


def test_policy_without_registry_can_never_be_funded(factory, mk_dvp, wbtc, usdt, buyer, seller):
    """The plain factory's implementation has no registry: a deal with a policy refuses every deposit
    (nothing can be trapped)."""
    terms = mk_dvp(policy_id=POLICY)
    mint_and_approve(terms, factory, wbtc, usdt, buyer, seller)
    with ape.reverts("no kyc registry"):
        factory.create_and_fund(terms.as_struct(), SALT_C, sender=seller)
    # the client says so before anything is sent
    [problem] = compliance_problems(Factory.at(factory.address), terms, None, [])
    assert problem.startswith("the factory has no KYC registry")


def test_client_precheck_names_an_unregistered_policy(gated, mk_dvp):
    """A policy id the registry never registered: the gate would refuse every principal."""
    unknown = mk_dvp(policy_id=99)
    [problem] = compliance_problems(Factory.at(gated.address), unknown, None, [])
    assert problem.startswith("compliance policy #99 is not registered")
    assert compliance_problems(Factory.at(gated.address), mk_dvp(policy_id=0), None, []) == []


# ------------------------------------------------------------------------ accepting
def test_accepting_requires_both_principals_attestations(
    gated,
    kyc,
    offer_b,
    proofs,
    scopes,
    chain,
    buyer,
    seller,
    wbtc,
    usdt,
    NOW,  # noqa: N803
):
    """The taker (buyer) accepts the seller's offer: refused while the taker has no attestation in deal B's
    scope ("party not compliant"), then while the maker has none ("maker not compliant"), each time with
    the nonce unused and no deal; accepted once both proved."""
    mint_and_approve(offer_b.terms, gated, wbtc, usdt, buyer, seller)
    signed = offer_b.sign(seller.private_key, chain.chain_id, gated.address)
    args = (offer_b.terms.as_struct(), offer_b.as_struct(), signed.signature, EMPTY, True)
    client = Factory.at(gated.address)

    def gate_problems() -> list[str]:
        # the client's pre-check (`nexotc offer open/accept`) names whom the gate would refuse
        return [p for p in inspect_offer(client, signed, buyer.address).problems if "attestation" in p]

    assert [p.split()[1:3] for p in gate_problems()] == [["seller", seller.address], ["buyer", buyer.address]]
    assert f"nexotc kyc prove --deal {scopes['b']}" in gate_problems()[0]
    with ape.reverts("party not compliant"):
        gated.accept_offer(*args, sender=buyer)
    at_least(chain, NOW + 2)
    kyc.submit_proof(*submit_args(proofs["buyer_b"], POLICY), sender=buyer)
    assert [p.split()[1:3] for p in gate_problems()] == [["seller", seller.address]]
    before = (wbtc.balanceOf(seller), usdt.balanceOf(buyer))
    with ape.reverts("maker not compliant"):
        gated.accept_offer(*args, sender=buyer)
    assert not gated.nonce_used(seller, offer_b.nonce) and not gated.is_deal(scopes["b"])
    assert (wbtc.balanceOf(seller), usdt.balanceOf(buyer)) == before
    kyc.submit_proof(*submit_args(proofs["seller_b"], POLICY), sender=seller)
    assert gate_problems() == []
    receipt = gated.accept_offer(*args, sender=buyer)
    [created] = receipt.decode_logs(gated.DealCreated)
    assert addr(created.deal) == scopes["b"] and gated.nonce_used(seller, offer_b.nonce)
    assert wbtc.balanceOf(seller) == before[0] - offer_b.terms.base.amount


def test_the_client_shows_whose_attestation_ends_before_the_final_expiry(
    gated,
    deal_a,
    deal_e,
    terms_e,
    buyer,
    seller,
    t0,
    NOW,  # noqa: N803
):
    """`Deal.compliance()` (what `nexotc deal show` prints): in deal E the seller's attestation ends a day in,
    long before the final expiry: once it ends no tranche can be released. In deal A both funders' attestations
    last beyond it (the deal took their deposits)."""
    gate = Factory.at(gated.address).deal(deal_e.address).compliance()
    assert gate is not None and gate["policy_id"] == POLICY and int(gate["scope"]) == int(deal_e.address, 16)
    assert gate["scope_name"] == "the deal's own scope"
    by_role = {p["role"]: p for p in gate["principals"]}
    assert by_role["seller"]["wallet"] == seller.address and by_role["seller"]["attested_until"] == t0 + DAY + 2_000
    assert by_role["seller"]["compliant_now"] is True and by_role["seller"]["covers_final_expiry"] is False
    assert by_role["buyer"]["attested_until"] == NOW + 30 * DAY > terms_e.final_expiry
    assert by_role["buyer"]["compliant_now"] is True and by_role["buyer"]["covers_final_expiry"] is True
    gate_a = Factory.at(gated.address).deal(deal_a.address).compliance()
    assert [p["covers_final_expiry"] for p in gate_a["principals"]] == [True, True]


# ------------------------------------------------------------------------ releasing
def test_release_needs_both_attestations_and_lapse_blocks_release_not_refund(
    deal_e, terms_e, chain, t0, usdt, buyer, seller, attacker
):
    """Deal E: a tranche releases while both principals are attested; once the seller's attestation lapsed no
    tranche can be released, but refunds and expiry stay open (the buyer gets its USDT back)."""
    tr = terms_e.tranches
    chain.pending_timestamp = tr[0].unlock_time
    deal_e.mark(0, b"\x0b" * 32, sender=seller)
    deal_e.approve(0, sender=buyer)
    deal_e.release(0, sender=buyer)
    assert deal_e.tranche_status(0) == RELEASED
    # the seller's attestation lapses at t0 + 1 day + 2000, before tranche 1's deadline
    chain.pending_timestamp = t0 + DAY + 3_000
    chain.mine()
    assert tr[1].unlock_time <= t0 + DAY + 3_000 < tr[1].deadline
    assert deal_e.compliant(buyer) and not deal_e.compliant(seller)
    deal_e.mark(1, b"\x0c" * 32, sender=seller)  # a delivery claim is not gated ...
    deal_e.approve(1, sender=buyer)
    with ape.reverts("party not compliant"):  # ... its payout is
        deal_e.release(1, sender=buyer)
    assert deal_e.tranche_status(1) == MARKED
    # refunds stay open: past its deadline a tranche never marked goes back to the buyer
    before = usdt.balanceOf(buyer)
    chain.pending_timestamp = tr[2].deadline + 1
    deal_e.refund(2, sender=attacker)
    assert usdt.balanceOf(buyer) == before + tr[2].quote_amount
    # and so does expiry of the rest (the marked tranche 1 and tranche 3)
    chain.pending_timestamp = terms_e.final_expiry
    deal_e.expire(sender=attacker)
    assert usdt.balanceOf(buyer) == before + tr[1].quote_amount + tr[2].quote_amount + tr[3].quote_amount
    assert deal_e.held(1) == 0


def test_lapsed_attestation_turns_dispute_payouts_into_refunds(
    deal_e, terms_e, chain, t0, usdt, buyer, seller, resolver
):
    """After the seller's attestation lapsed: the resolver cannot split a disputed tranche to the seller (it can
    refund it), and a default release (the buyer disputed a marked tranche) is applied as a refund."""
    tr = terms_e.tranches
    chain.pending_timestamp = t0 + DAY + 3_000
    for i, reason in ((2, b"\x01"), (3, b"\x02")):
        deal_e.mark(i, b"\x0d" * 32, sender=seller)
        deal_e.dispute(i, reason * 32, sender=buyer)
    with ape.reverts("party not compliant"):
        deal_e.resolve(2, (0, 0, 0), (tr[2].quote_amount, 0, 0), sender=resolver)
    before = usdt.balanceOf(buyer)
    deal_e.resolve(2, (0, 0, 0), (0, tr[2].quote_amount, 0), sender=resolver)
    assert usdt.balanceOf(buyer) == before + tr[2].quote_amount
    # from the dispute's own block time: a loaded machine can put it a second or two after the one set
    chain.pending_timestamp = deal_e.disputed_at(3) + terms_e.dispute_timeout
    receipt = deal_e.settle_dispute(3, sender=resolver)
    [resolved] = receipt.decode_logs(deal_e.Resolved)
    assert resolved.by_default and list(resolved.quote) == [0, tr[3].quote_amount, 0]
    assert usdt.balanceOf(buyer) == before + tr[2].quote_amount + tr[3].quote_amount


def test_compliant_default_release_still_releases(kyc, deal_e, terms_e, proofs, chain, usdt, buyer, seller, NOW):  # noqa: N803
    """With both principals compliant (the seller renews for 30 days), a default release after the buyer's
    dispute of a marked tranche pays the seller (less the desk's and the introducer's commissions)."""
    chain.pending_timestamp = NOW + 5
    kyc.submit_proof(*submit_args(proofs["seller_e_renewal"], POLICY), sender=seller)
    tr = terms_e.tranches
    chain.pending_timestamp = tr[1].unlock_time
    deal_e.mark(1, b"\x0e" * 32, sender=seller)
    deal_e.dispute(1, b"\x03" * 32, sender=buyer)
    chain.pending_timestamp = deal_e.disputed_at(1) + terms_e.dispute_timeout
    before = usdt.balanceOf(seller)
    receipt = deal_e.settle_dispute(1, sender=seller)
    [resolved] = receipt.decode_logs(deal_e.Resolved)
    amount = tr[1].quote_amount
    assert resolved.by_default and list(resolved.quote) == [amount, 0, 0]
    assert usdt.balanceOf(seller) == before + amount - amount * 25 // 10_000 - amount * 10 // 10_000


def test_same_credential_cannot_attest_both_sides(kyc, deal_a, proofs, seller, buyer, chain, NOW):  # noqa: N803
    """The buyer's credential already attested the buyer in deal A's scope: bound to the seller it is
    refused (one credential, one wallet per scope)."""
    args = submit_args(proofs["seller_with_buyer_credential"], POLICY)
    chain.pending_timestamp = NOW + 3
    with ape.reverts("nullifier used"):
        kyc.submit_proof(*args, sender=seller)
    assert addr(kyc.nullifier_owner(args[0], args[3])) == buyer.address


# ------------------------------------------------------------------------ desks
def test_desk_deals_must_carry_the_desk_policy(gated, desk_registry, desk, lawyer, mk_dvp, wbtc, usdt, seller):
    receipt = desk_registry.create_desk(
        lawyer, desk, 30, 20, False, POLICY.to_bytes(32, "big"), [wbtc, usdt, ZERO], sender=lawyer
    )
    desk_id = receipt.decode_logs(desk_registry.DeskCreated)[0].desk_id
    desk_registry.add_member(desk_id, seller, 1, sender=lawyer)
    with ape.reverts("deal must carry the desk's policy"):
        gated.create_desk_deal(desk_id, mk_dvp().as_struct(), SALT_C, sender=seller)
    with ape.reverts("deal must carry the desk's policy"):
        desk_registry.check_deal(desk_id, seller, mk_dvp(policy_id=2).as_struct())
    receipt = gated.create_desk_deal(desk_id, mk_dvp(policy_id=POLICY).as_struct(), SALT_C, sender=seller)
    [created] = receipt.decode_logs(gated.DeskDealCreated)
    assert created.policy_id == POLICY.to_bytes(32, "big")


def test_desk_deal_scope_is_its_desk(
    project,
    gated,
    kyc,
    desk_id,
    terms_d,
    proofs,
    scopes,
    chain,
    wbtc,
    usdt,
    buyer,
    seller,
    NOW,  # noqa: N803
):
    """A desk deal's scope is its desk: attestations bound to the deal's own address do not open it,
    desk-scope ones do (a member proves once for every deal of the desk)."""
    at_least(chain, NOW + 4)
    kyc.submit_proof(*submit_args(proofs["buyer_d"], POLICY), sender=buyer)
    kyc.submit_proof(*submit_args(proofs["seller_d"], POLICY), sender=seller)
    mint_and_approve(terms_d, gated, wbtc, usdt, buyer, seller)
    receipt = gated.create_desk_deal(desk_id, terms_d.as_struct(), SALT_D, sender=seller)
    deal = project.DealEscrow.at(receipt.decode_logs(gated.DeskDealCreated)[0].deal)
    assert deal.address == scopes["d"]
    assert deal.desk_id() == desk_id and deal.scope() == scopes["desk"] == (1 << 160) | desk_id
    assert kyc.is_compliant(seller, int(deal.address, 16), POLICY) and not deal.compliant(seller)
    with ape.reverts(FUNDING_GATE):
        gated.fund_deal(deal, sender=seller)
    kyc.submit_proof(*submit_args(proofs["seller_desk"], POLICY), sender=seller)
    assert deal.compliant(seller) and not deal.compliant(buyer)
    gated.fund_deal(deal, sender=seller)
    with ape.reverts(FUNDING_GATE):
        gated.fund_deal(deal, sender=buyer)
    kyc.submit_proof(*submit_args(proofs["buyer_desk"], POLICY), sender=buyer)
    gated.fund_deal(deal, sender=buyer)
    assert deal.phase() == 1 and deal.funded(0) and deal.funded(1)


def test_a_desk_offer_is_gated_in_its_desks_scope(
    gated,
    kyc,
    desk_id,
    terms_d,
    proofs,
    chain,
    wbtc,
    usdt,
    buyer,
    seller,
    NOW,  # noqa: N803
):
    """The client checks a desk offer's principals where its deal will check them: the desk's scope (an
    attestation bound to the deal's own address would not open it), and names `kyc prove --desk`."""
    from nexotc_client.chain.offers import sign_offer

    offer = Offer(terms=terms_d, maker=seller.address, taker=buyer.address, expiry=NOW + DAY, nonce=77, desk_id=desk_id)
    signed = sign_offer(offer, seller, chain.chain_id, gated.address)
    mint_and_approve(terms_d, gated, wbtc, usdt, buyer, seller)
    client = Factory.at(gated.address)
    at_least(chain, NOW + 4)
    kyc.submit_proof(*submit_args(proofs["buyer_d"], POLICY), sender=buyer)  # the deal's own scope: no use
    problems = inspect_offer(client, signed, taker=buyer.address).problems
    assert len(problems) == 2 and all(f"in desk #{desk_id}'s scope" in p for p in problems), problems
    assert all(f"kyc prove --desk {desk_id} --policy {POLICY}" in p for p in problems)
    kyc.submit_proof(*submit_args(proofs["seller_desk"], POLICY), sender=seller)
    kyc.submit_proof(*submit_args(proofs["buyer_desk"], POLICY), sender=buyer)
    assert inspect_offer(client, signed, taker=buyer.address).problems == ()
    o = signed.offer
    receipt = gated.accept_offer(o.terms.as_struct(), o.as_struct(), signed.signature, EMPTY, True, sender=buyer)
    [created] = receipt.decode_logs(gated.DeskDealCreated)
    assert created.desk_id == desk_id


def test_plain_deals_keep_their_own_scope(deal_a):
    assert deal_a.desk_id() == 0 and deal_a.scope() == int(deal_a.address, 16)


# ------------------------------------------------------------------ client parity
def test_python_packs_and_signs_the_policy_like_the_factory(gated, terms_a, offer_b, chain, mk_dvp):
    """The policy id (platform word bits 224-255) and the gated flag (resolver word bit 228) are packed
    identically by nexotc_client.terms, and the EIP-712 offer digest covers the policy."""
    assert bytes(gated.validate(terms_a.as_struct())) == keccak(terms_a.pack())
    words = [int.from_bytes(terms_a.pack()[i : i + 32], "big") for i in range(0, len(terms_a.pack()), 32)]
    assert words[2 + 2] >> 224 == POLICY and (words[2 + 3] >> 228) & 1 == 1
    plain = mk_dvp()
    assert (int.from_bytes(plain.pack()[5 * 32 : 6 * 32], "big") >> 228) & 1 == 0
    assert bytes(gated.offer_digest(offer_b.terms.as_struct(), offer_b.as_struct())) == offer_b.digest(
        chain.chain_id, gated.address
    )
    other = Offer(
        terms=offer_b.terms.with_changes(policy_id=2), maker=offer_b.maker, taker=offer_b.taker, expiry=1, nonce=1
    )
    assert (
        other.offer_hash()
        != Offer(terms=offer_b.terms, maker=offer_b.maker, taker=offer_b.taker, expiry=1, nonce=1).offer_hash()
    )
