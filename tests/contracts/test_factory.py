"""EscrowFactory: validation rules, packing, CREATE2 addresses, registry, create-and-fund, and the
implementation that can never act as a deal."""

from __future__ import annotations

import ape
import pytest
from dealkit import DAY, EVIDENCE, REASON, ZERO, addr, events, expect_event
from eth_utils import keccak

from nexotc_client.terms import Leg, LegId, Role, Terms, Tranche

FIELDS = (
    "base_token",
    "base_amount",
    "base_on_chain",
    "quote_token",
    "quote_amount",
    "quote_on_chain",
    "parties",
    "approval_threshold",
    "release_threshold",
    "desk_fee_bps",
    "fee_leg",
    "resolver_fee_bps",
    "funding_deadline",
    "approval_window",
    "dispute_timeout",
    "dispute_default",
    "final_expiry",
    "tranches",
    "policy_id",
)
PROXY_HEAD = bytes.fromhex("363d3d373d3d3d363d73")
PROXY_TAIL = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
SALT = b"\x42" * 32


def as_dict(terms: Terms) -> dict:
    d = dict(zip(FIELDS, terms.as_struct(), strict=True))
    d["parties"] = [list(p) for p in d["parties"]]
    d["tranches"] = [list(t) for t in d["tranches"]]
    return d


def as_struct(d: dict) -> tuple:
    return tuple(d[f] for f in FIELDS)


# --------------------------------------------------------------- rule violations
# Party layout of the DVP builder: 0 buyer (BUYER|BASE_RECEIVER), 1 seller (SELLER|QUOTE_RECEIVER),
# 2 desk (PLATFORM), 3 resolver (RESOLVER), 4 introducer (INTRODUCER, 10 bps).
# ESCROWED builder: buyer also APPROVER|SIGNER, seller also MARKER.


def _roles(d, i, roles):
    d["parties"][i][1] = int(roles)


def _add_role(d, i, role):
    d["parties"][i][1] |= int(role)


def _append(d, wallet, roles, bps=0):
    d["parties"].append([addr(wallet), int(roles), bps])


def quote_off_chain(d, a):
    """Turn a DVP dict into an ESCROWED one whose quote leg (fiat) is off chain, base held."""
    d.update(quote_on_chain=False, quote_token=ZERO, fee_leg=0, approval_threshold=1)
    _add_role(d, 0, Role.MARKER)  # the buyer marks the fiat sent
    _append(d, a.approver, Role.APPROVER)


def _five_introducers(d, a):
    for who in (a.attacker, a.lawyer, a.approver, a.introducer2):
        _append(d, who, Role.INTRODUCER, 1)


def _five_markers(d, a):
    for i in (0, 2):
        _add_role(d, i, Role.MARKER)
    for who in (a.lawyer, a.approver, a.introducer2):
        _append(d, who, Role.MARKER)


def _third_party_quote_receiver_signs(d, a):
    _roles(d, 1, Role.SELLER | Role.MARKER)
    _append(d, a.lawyer, Role.QUOTE_RECEIVER | Role.SIGNER)


def _base_held_buyer_approves(d, a):
    quote_off_chain(d, a)
    _add_role(d, 0, Role.APPROVER)


def _escrowed_quote_tranche_empty(d, a):
    # tranche 0 carries only the off-chain base; its quote moves to tranche 1
    d["tranches"][1][1] += d["tranches"][0][1]
    d["tranches"][0][1] = 0


def _final_expiry_one_short(d, a):
    d["approval_window"] = DAY
    last = max(t[3] for t in d["tranches"])
    d["final_expiry"] = last + d["approval_window"] + d["dispute_timeout"]  # equal: still too early


CASES = [
    # ---- legs
    (
        "dvp",
        "no leg on chain",
        lambda d, a: d.update(base_on_chain=False, quote_on_chain=False),
        "one leg must be on chain",
    ),
    ("dvp", "base amount zero", lambda d, a: d.update(base_amount=0), "leg amount out of range"),
    ("dvp", "quote amount above 2**96-1", lambda d, a: d.update(quote_amount=2**96), "leg amount out of range"),
    ("esc", "off-chain amount zero", lambda d, a: d.update(base_amount=0), "leg amount out of range"),
    ("dvp", "token is an EOA", lambda d, a: d.update(base_token=a.attacker.address), "leg token is not a contract"),
    ("dvp", "token is the zero address", lambda d, a: d.update(quote_token=ZERO), "leg token is not a contract"),
    (
        "esc",
        "off-chain leg with a token",
        lambda d, a: d.update(base_token=a.wbtc.address),
        "off-chain leg has no token",
    ),
    ("dvp", "same token both legs", lambda d, a: d.update(base_token=d["quote_token"]), "legs use the same token"),
    # ---- parties
    ("dvp", "three parties", lambda d, a: d.update(parties=d["parties"][:3]), "need buyer, seller, platform, resolver"),
    ("dvp", "seller first", lambda d, a: d["parties"].insert(0, d["parties"].pop(1)), "parties[0] must be the buyer"),
    ("dvp", "parties[1] not seller", lambda d, a: _roles(d, 1, Role.QUOTE_RECEIVER), "parties[1] must be the seller"),
    ("dvp", "parties[2] not platform", lambda d, a: _roles(d, 2, Role.APPROVER), "parties[2] must be the platform"),
    (
        "dvp",
        "resolver with another role",
        lambda d, a: _add_role(d, 3, Role.APPROVER),
        "parties[3] must be only the resolver",
    ),
    ("dvp", "zero wallet", lambda d, a: _append(d, ZERO, Role.APPROVER), "zero party wallet"),
    ("dvp", "no roles", lambda d, a: _append(d, a.attacker, 0), "bad roles"),
    ("dvp", "unknown role bit", lambda d, a: _append(d, a.attacker, 1024), "bad roles"),
    ("dvp", "unknown role bit on the buyer", lambda d, a: _add_role(d, 0, 2048), "bad roles"),
    ("dvp", "duplicate wallet", lambda d, a: _append(d, a.buyer, Role.APPROVER), "duplicate party wallet"),
    ("dvp", "second buyer", lambda d, a: _append(d, a.attacker, Role.BUYER), "only parties[0] is the buyer"),
    ("dvp", "buyer is also seller", lambda d, a: _add_role(d, 0, Role.SELLER), "only parties[1] is the seller"),
    ("dvp", "second seller", lambda d, a: _append(d, a.attacker, Role.SELLER), "only parties[1] is the seller"),
    ("dvp", "second platform", lambda d, a: _append(d, a.attacker, Role.PLATFORM), "only parties[2] is the platform"),
    ("dvp", "second resolver", lambda d, a: _append(d, a.attacker, Role.RESOLVER), "only parties[3] is the resolver"),
    (
        "dvp",
        "introducer also approver",
        lambda d, a: _add_role(d, 4, Role.APPROVER),
        "an introducer holds no other role",
    ),
    (
        "dvp",
        "platform also introducer",
        lambda d, a: _add_role(d, 2, Role.INTRODUCER),
        "an introducer holds no other role",
    ),
    ("dvp", "introducer at 0 bps", lambda d, a: d["parties"][4].__setitem__(2, 0), "introducer without commission"),
    ("dvp", "platform carries bps", lambda d, a: d["parties"][2].__setitem__(2, 5), "only introducers carry bps"),
    (
        "esc",
        "seller approves",
        lambda d, a: _add_role(d, 1, Role.APPROVER),
        "paid side cannot approve or sign its release",
    ),
    ("esc", "seller signs", lambda d, a: _add_role(d, 1, Role.SIGNER), "paid side cannot approve or sign its release"),
    ("esc", "quote receiver signs", _third_party_quote_receiver_signs, "paid side cannot approve or sign its release"),
    ("dvp", "base held, buyer approves", _base_held_buyer_approves, "paid side cannot approve or sign its release"),
    ("dvp", "no base receiver", lambda d, a: _roles(d, 0, Role.BUYER), "exactly one base receiver"),
    ("dvp", "two base receivers", lambda d, a: _append(d, a.lawyer, Role.BASE_RECEIVER), "exactly one base receiver"),
    ("dvp", "no quote receiver", lambda d, a: _roles(d, 1, Role.SELLER), "exactly one quote receiver"),
    ("dvp", "two quote receivers", lambda d, a: _add_role(d, 0, Role.QUOTE_RECEIVER), "exactly one quote receiver"),
    ("dvp", "five introducers", _five_introducers, "too many introducers"),
    ("esc", "five markers", _five_markers, "too many markers"),
    ("dvp", "commissions 1001 bps", lambda d, a: d.update(desk_fee_bps=991), "commissions above cap"),
    ("dvp", "resolver fee 501 bps", lambda d, a: d.update(resolver_fee_bps=501), "resolver fee above cap"),
    (
        "dvp",
        "approval threshold without approvers",
        lambda d, a: d.update(approval_threshold=1),
        "threshold without holders",
    ),
    (
        "dvp",
        "release threshold without signers",
        lambda d, a: d.update(release_threshold=1),
        "threshold without holders",
    ),
    (
        "esc",
        "approval threshold above approvers",
        lambda d, a: d.update(approval_threshold=2),
        "threshold out of range",
    ),
    (
        "esc",
        "approval threshold 0 with an approver",
        lambda d, a: d.update(approval_threshold=0),
        "threshold out of range",
    ),
    ("esc", "release threshold 0 with a signer", lambda d, a: d.update(release_threshold=0), "threshold out of range"),
    ("esc", "release threshold above signers", lambda d, a: d.update(release_threshold=2), "threshold out of range"),
    ("dvp", "marker in DVP", lambda d, a: _add_role(d, 1, Role.MARKER), "no markers in DVP"),
    (
        "esc",
        "escrowed without marker",
        lambda d, a: _roles(d, 1, Role.SELLER | Role.QUOTE_RECEIVER),
        "escrowed deal needs a marker",
    ),
    (
        "esc",
        "escrowed without approver",
        lambda d, a: (_roles(d, 0, Role.BUYER | Role.BASE_RECEIVER | Role.SIGNER), d.update(approval_threshold=0)),
        "escrowed deal needs approvers",
    ),
    ("dvp", "fee leg 2", lambda d, a: d.update(fee_leg=2), "bad fee leg"),
    ("esc", "fee leg off chain (base)", lambda d, a: d.update(fee_leg=0), "fee leg must be on chain"),
    (
        "dvp",
        "fee leg off chain (quote)",
        lambda d, a: (quote_off_chain(d, a), d.update(fee_leg=1)),
        "fee leg must be on chain",
    ),
    # ---- timers
    ("dvp", "dispute default 2", lambda d, a: d.update(dispute_default=2), "bad dispute default"),
    ("dvp", "dispute timeout 0", lambda d, a: d.update(dispute_timeout=0), "bad dispute timeout"),
    ("dvp", "dispute timeout 2**32", lambda d, a: d.update(dispute_timeout=2**32), "bad dispute timeout"),
    ("dvp", "approval window 2**32", lambda d, a: d.update(approval_window=2**32), "bad approval window"),
    (
        "dvp",
        "funding deadline in the past",
        lambda d, a: d.update(funding_deadline=a.t0 - 1),
        "funding deadline passed",
    ),
    ("dvp", "final expiry 2**32", lambda d, a: d.update(final_expiry=2**32), "final expiry out of range"),
    ("dvp", "policy id 2**32", lambda d, a: d.update(policy_id=2**32), "policy id out of range"),
    # ---- tranches
    ("dvp", "no tranches", lambda d, a: d.update(tranches=[]), "no tranches"),
    (
        "dvp",
        "tranche deadline before funding deadline",
        lambda d, a: d["tranches"][0].__setitem__(3, d["funding_deadline"] - 1),
        "tranche deadline before funding deadline",
    ),
    (
        "dvp",
        "unlock after deadline",
        lambda d, a: d["tranches"][0].__setitem__(2, d["tranches"][0][3] + 1),
        "tranche unlocks after its deadline",
    ),
    (
        "dvp",
        "empty DVP tranche",
        lambda d, a: d["tranches"].append([0, 0, d["tranches"][0][2], d["tranches"][0][3]]),
        "tranche moves nothing",
    ),
    ("esc", "escrowed tranche without held amount", _escrowed_quote_tranche_empty, "tranche moves nothing"),
    (
        "dvp",
        "base tranches short",
        lambda d, a: d.update(base_amount=d["base_amount"] + 1),
        "base tranches must sum to the base leg",
    ),
    (
        "esc",
        "off-chain base tranches short",
        lambda d, a: d.update(base_amount=d["base_amount"] - 1),
        "base tranches must sum to the base leg",
    ),
    (
        "dvp",
        "quote tranches short",
        lambda d, a: d.update(quote_amount=d["quote_amount"] + 1),
        "quote tranches must sum to the quote leg",
    ),
    (
        "esc",
        "final expiry equal to last deadline + window + timeout",
        _final_expiry_one_short,
        "final expiry too early",
    ),
]


class Actors:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def actors(t0, wbtc, usdt, buyer, seller, desk, resolver, introducer, attacker, lawyer, approver, introducer2):
    return Actors(
        t0=t0,
        wbtc=wbtc,
        usdt=usdt,
        buyer=buyer,
        seller=seller,
        desk=desk,
        resolver=resolver,
        introducer=introducer,
        attacker=attacker,
        lawyer=lawyer,
        approver=approver,
        introducer2=introducer2,
    )


@pytest.fixture(scope="module")
def valid(mk_dvp, mk_escrowed):
    return {"dvp": mk_dvp(tranches=2), "esc": mk_escrowed(tranches=2)}


@pytest.mark.parametrize("kind,case,mutate,reason", CASES, ids=[c[1] for c in CASES])
def test_validation_rule(factory, valid, actors, attacker, kind, case, mutate, reason):
    d = as_dict(valid[kind])
    factory.validate(as_struct(d))  # the base terms are valid
    mutate(d, actors)
    struct = as_struct(d)
    with ape.reverts(reason):
        factory.validate(struct)
    with ape.reverts(reason):
        factory.predict_address(struct, attacker, SALT, 0)
    with ape.reverts(reason):
        factory.create_deal(struct, SALT, sender=attacker)


def test_funding_deadline_must_be_after_the_creation_block(factory, valid, attacker, chain):
    d = as_dict(valid["dvp"])
    chain.pending_timestamp = d["funding_deadline"] - 1
    deal = factory.create_deal(as_struct(d), SALT, sender=attacker).return_value
    assert factory.is_deal(deal)
    chain.pending_timestamp = d["funding_deadline"]
    with ape.reverts("funding deadline passed"):
        factory.create_deal(as_struct(d), b"\x01" * 32, sender=attacker)


BOUNDARY_CASES = [
    ("commissions exactly 10%", "dvp", lambda d, a: d.update(desk_fee_bps=990)),
    ("resolver fee exactly 5%", "dvp", lambda d, a: d.update(resolver_fee_bps=500)),
    (
        "four introducers",
        "dvp",
        lambda d, a: [_append(d, w, Role.INTRODUCER, 1) for w in (a.attacker, a.lawyer, a.introducer2)],
    ),
    (
        "four markers",
        "esc",
        lambda d, a: [_add_role(d, 0, Role.MARKER), _add_role(d, 2, Role.MARKER), _append(d, a.lawyer, Role.MARKER)],
    ),
    (
        "final expiry exactly the minimum",
        "esc",
        lambda d, a: (_final_expiry_one_short(d, a), d.update(final_expiry=d["final_expiry"] + 1)),
    ),
    (
        "max amounts",
        "dvp",
        lambda d, a: (
            d.update(base_amount=2**96 - 1, quote_amount=2**96 - 1),
            d["tranches"][0].__setitem__(0, 2**96 - 1 - d["tranches"][1][0]),
            d["tranches"][0].__setitem__(1, 2**96 - 1 - d["tranches"][1][1]),
        ),
    ),
    ("max timers", "dvp", lambda d, a: d.update(final_expiry=2**32 - 1, dispute_timeout=2**31, approval_window=2**28)),
    (
        "tranche deadline equals funding deadline",
        "dvp",
        lambda d, a: d["tranches"][0].__setitem__(3, d["funding_deadline"]),
    ),
    ("unlock equals deadline", "dvp", lambda d, a: d["tranches"][0].__setitem__(2, d["tranches"][0][3])),
    (
        "zero amount on the off-chain side of a tranche",
        "esc",
        lambda d, a: (
            d["tranches"][1].__setitem__(0, d["tranches"][1][0] + d["tranches"][0][0]),
            d["tranches"][0].__setitem__(0, 0),
        ),
    ),
    (
        "platform is also a receiver and approver",
        "esc",
        lambda d, a: (
            _roles(d, 0, Role.BUYER | Role.SIGNER | Role.APPROVER),
            _add_role(d, 2, Role.BASE_RECEIVER | Role.APPROVER),
            d.update(approval_threshold=2),
        ),
    ),
]


@pytest.mark.parametrize("case,kind,mutate", BOUNDARY_CASES, ids=[c[0] for c in BOUNDARY_CASES])
def test_validation_accepts_boundaries(factory, project, valid, actors, attacker, case, kind, mutate):
    d = as_dict(valid[kind])
    mutate(d, actors)
    struct = as_struct(d)
    expected = Terms.from_struct(struct)
    assert factory.validate(struct) == keccak(expected.pack())
    receipt = factory.create_deal(struct, SALT, sender=attacker)
    deal = project.DealEscrow.at(events(receipt, factory.DealCreated)[0]["deal"])
    assert Terms.from_struct(deal.terms()) == expected


# ------------------------------------------------------------ create and registry
def test_create_deal_registers_and_emits(factory, project, chain, mk_dvp, attacker):
    terms = mk_dvp()
    predicted = factory.predict_address(terms.as_struct(), attacker, SALT, 0)
    assert not factory.is_deal(predicted)
    receipt = factory.create_deal(terms.as_struct(), SALT, sender=attacker)  # anyone may create
    expect_event(
        receipt, factory.DealCreated, deal=predicted, creator=attacker, terms_hash=keccak(terms.pack()), salt=SALT
    )
    assert receipt.return_value == predicted
    assert factory.is_deal(predicted)
    deal = project.DealEscrow.at(predicted)
    assert deal.factory() == factory.address
    assert deal.registered()
    # the clone is the EIP-1167 proxy to the implementation followed by the packed terms
    impl = bytes.fromhex(factory.implementation()[2:])
    assert bytes(chain.provider.get_code(predicted)) == PROXY_HEAD + impl + PROXY_TAIL + terms.pack()
    assert deal.phase() == 0 and not deal.funded(0) and not deal.funded(1)


def test_same_terms_and_salt_twice_from_same_creator_reverts(factory, mk_dvp, desk):
    terms = mk_dvp()
    deal = factory.create_deal(terms.as_struct(), SALT, sender=desk).return_value
    with ape.reverts():
        factory.create_deal(terms.as_struct(), SALT, sender=desk)
    assert factory.is_deal(deal)


def test_address_depends_on_creator_salt_and_terms(factory, mk_dvp, desk, buyer):
    terms = mk_dvp()
    other_terms = mk_dvp(desk_fee_bps=30)
    a = factory.create_deal(terms.as_struct(), SALT, sender=desk).return_value
    b = factory.create_deal(terms.as_struct(), SALT, sender=buyer).return_value
    c = factory.create_deal(terms.as_struct(), b"\x43" * 32, sender=desk).return_value
    d = factory.create_deal(other_terms.as_struct(), SALT, sender=desk).return_value
    assert len({a, b, c, d}) == 4
    assert b == factory.predict_address(terms.as_struct(), buyer, SALT, 0)
    assert c == factory.predict_address(terms.as_struct(), desk, b"\x43" * 32, 0)
    assert d == factory.predict_address(other_terms.as_struct(), desk, SALT, 0)
    assert all(factory.is_deal(x) for x in (a, b, c, d))


def test_is_deal_false_for_strangers(factory, attacker, usdt):
    for who in (attacker.address, usdt.address, factory.address, factory.implementation(), ZERO):
        assert not factory.is_deal(who)


@pytest.fixture(scope="module")
def complex_terms(t0, wbtc, buyer, seller, desk, resolver, introducer, introducer2, lawyer, approver):
    """ESCROWED with base held (fiat off chain), several roles, two introducers, windows."""
    start = t0 + 1_000
    return Terms.build(
        base=Leg(wbtc.address, 3 * 10**8 + 7),
        quote=Leg(ZERO, 195_000 * 10**6, on_chain=False),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        base_receiver=lawyer.address,
        tranches=[
            Tranche(10**8, 65_000 * 10**6, start, start + DAY),
            Tranche(2 * 10**8 + 7, 130_000 * 10**6, start + DAY, start + 3 * DAY),
        ],
        funding_deadline=t0 + DAY,
        final_expiry=start + 20 * DAY,
        markers=[buyer.address],
        approvers=[seller.address, approver.address],
        approval_threshold=1,
        signers=[seller.address, desk.address],
        release_threshold=2,
        desk_fee_bps=40,
        introducers=[(introducer.address, 15), (introducer2.address, 5)],
        fee_leg=LegId.BASE,
        resolver_fee_bps=250,
        approval_window=2 * DAY,
        dispute_timeout=5 * DAY,
        dispute_default=1,
    )


def deployed_terms(deal) -> bytes:
    """The packed terms in a deal's code: what follows its 45-byte EIP-1167 proxy."""
    return bytes(ape.chain.provider.get_code(deal.address))[45:]


@pytest.mark.parametrize("which", ["dvp", "escrowed", "complex"])
def test_pack_hash_and_terms_round_trip(factory, deploy, mk_dvp, mk_escrowed, complex_terms, desk, which):
    terms = {"dvp": mk_dvp, "escrowed": mk_escrowed}.get(which, lambda: complex_terms)()
    packed = terms.pack()
    assert factory.validate(terms.as_struct()) == keccak(packed)
    deal = deploy(terms, desk)
    assert deal.terms_hash() == keccak(packed)
    assert deployed_terms(deal) == packed
    assert Terms.from_struct(deal.terms()) == terms
    assert deal.mode() == int(terms.mode)
    assert deal.tranche_count() == len(terms.tranches)


def test_max_size_terms_round_trip(factory, deploy, t0, wbtc, usdt, buyer, seller, desk, resolver):
    """16 parties and 32 tranches: the largest terms fit and decode back."""
    others = [f"0x{i:040x}" for i in range(0x1001, 0x100D)]  # 12 approvers
    start = t0 + 1_000
    tranches = [Tranche(i + 1, 1000 + i, start + i * 3600, start + i * 3600 + DAY) for i in range(32)]
    terms = Terms.build(
        base=Leg(wbtc.address, sum(t.base_amount for t in tranches)),
        quote=Leg(usdt.address, sum(t.quote_amount for t in tranches)),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=tranches,
        funding_deadline=t0 + DAY,
        final_expiry=start + 40 * DAY,
        approvers=others,
        approval_threshold=7,
        desk_fee_bps=1000,
    )
    assert len(terms.parties) == 16
    deal = deploy(terms, desk)
    assert deployed_terms(deal) == terms.pack()
    assert Terms.from_struct(deal.terms()) == terms
    assert tuple(deal.tranche(31)) == (32, 1031, start + 31 * 3600, start + 31 * 3600 + DAY)


# --------------------------------------------------------------- create and fund
def test_create_and_fund_by_seller(factory, project, mk_dvp, wbtc, seller):
    terms = mk_dvp()
    predicted = factory.predict_address(terms.as_struct(), seller, SALT, 0)
    wbtc.mint(seller, terms.base.amount, sender=seller)
    wbtc.approve(factory, terms.base.amount, sender=seller)  # one standing approval to the factory
    receipt = factory.create_and_fund(terms.as_struct(), SALT, sender=seller)
    deal = project.DealEscrow.at(predicted)
    expect_event(
        receipt, factory.DealCreated, deal=predicted, creator=seller, terms_hash=keccak(terms.pack()), salt=SALT
    )
    expect_event(receipt, deal.Funded, deal, leg=0, funder=seller, amount=terms.base.amount)
    assert receipt.return_value == predicted
    assert wbtc.balanceOf(seller) == 0
    assert wbtc.balanceOf(deal) == terms.base.amount
    assert deal.funded(0) and not deal.funded(1)
    assert deal.phase() == 0  # still waiting for the buyer
    assert factory.is_deal(deal)


def test_create_and_fund_by_buyer_activates_escrowed(factory, project, mk_escrowed, usdt, buyer):
    terms = mk_escrowed()
    predicted = factory.predict_address(terms.as_struct(), buyer, SALT, 0)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    usdt.approve(factory, terms.quote.amount, sender=buyer)
    receipt = factory.create_and_fund(terms.as_struct(), SALT, sender=buyer)
    deal = project.DealEscrow.at(predicted)
    expect_event(receipt, deal.Funded, deal, leg=1, funder=buyer, amount=terms.quote.amount)
    assert usdt.balanceOf(deal) == terms.quote.amount and usdt.balanceOf(buyer) == 0
    assert deal.phase() == 1  # the only on-chain leg is in: active
    assert deal.held(1) == terms.quote.amount


def test_create_and_fund_by_non_party_reverts(factory, chain, mk_dvp, attacker):
    terms = mk_dvp()
    predicted = factory.predict_address(terms.as_struct(), attacker, SALT, 0)
    with ape.reverts("the creator funds no leg"):
        factory.create_and_fund(terms.as_struct(), SALT, sender=attacker)
    assert len(chain.provider.get_code(predicted)) == 0


def test_create_and_fund_without_allowance_reverts(factory, chain, mk_dvp, wbtc, seller):
    terms = mk_dvp()
    predicted = factory.predict_address(terms.as_struct(), seller, SALT, 0)
    wbtc.mint(seller, terms.base.amount, sender=seller)
    wbtc.approve(factory, terms.base.amount - 1, sender=seller)
    with ape.reverts("token transfer failed"):
        factory.create_and_fund(terms.as_struct(), SALT, sender=seller)
    assert len(chain.provider.get_code(predicted)) == 0
    assert wbtc.balanceOf(seller) == terms.base.amount


def test_create_and_fund_with_invalid_terms_reverts(factory, mk_dvp, seller):
    terms = mk_dvp(desk_fee_bps=991)
    with ape.reverts("commissions above cap"):
        factory.create_and_fund(terms.as_struct(), SALT, sender=seller)


@pytest.mark.parametrize("who", ["attacker", "buyer", "seller", "desk"])
def test_credit_only_by_factory(request, mk_dvp, deploy, wbtc, seller, desk, unchanged, who):
    """credit() records a leg the factory moved in; nobody else can claim a deposit, not even with
    the tokens sitting in the deal."""
    terms = mk_dvp()
    deal = deploy(terms, desk)
    wbtc.mint(deal, terms.base.amount, sender=seller)
    caller = request.getfixturevalue(who)
    with unchanged(deal, [wbtc], "only factory"):
        deal.credit(seller, sender=caller)
    assert not deal.funded(0)


# ------------------------------------------------------------- the implementation
IMPL_TXS = [
    ("fund", lambda d: d.fund),
    ("cancel_unfunded", lambda d: d.cancel_unfunded),
    ("mark", lambda d: lambda sender: d.mark(0, EVIDENCE, sender=sender)),
    ("approve", lambda d: lambda sender: d.approve(0, sender=sender)),
    ("release", lambda d: lambda sender: d.release(0, sender=sender)),
    ("refund", lambda d: lambda sender: d.refund(0, sender=sender)),
    ("dispute", lambda d: lambda sender: d.dispute(0, REASON, sender=sender)),
    ("resolve", lambda d: lambda sender: d.resolve(0, (0, 0, 0), (0, 0, 0), sender=sender)),
    ("settle_dispute", lambda d: lambda sender: d.settle_dispute(0, sender=sender)),
    ("expire", lambda d: d.expire),
]


@pytest.mark.parametrize("name,call", IMPL_TXS, ids=[c[0] for c in IMPL_TXS])
def test_implementation_cannot_act_as_a_deal(factory, project, buyer, name, call):
    impl = project.DealEscrow.at(factory.implementation())
    with ape.reverts("implementation"):
        call(impl)(sender=buyer)


IMPL_VIEWS = [
    ("terms", lambda d, a: d.terms()),
    ("terms_hash", lambda d, a: d.terms_hash()),
    ("mode", lambda d, a: d.mode()),
    ("phase", lambda d, a: d.phase()),
    ("tranche_count", lambda d, a: d.tranche_count()),
    ("tranche", lambda d, a: d.tranche(0)),
    ("tranche_status", lambda d, a: d.tranche_status(0)),
    ("roles_of", lambda d, a: d.roles_of(a)),
    ("has_approved", lambda d, a: d.has_approved(0, a)),
    ("has_signed", lambda d, a: d.has_signed(0, a)),
    ("held", lambda d, a: d.held(0)),
    ("buyer", lambda d, a: d.buyer()),
    ("seller", lambda d, a: d.seller()),
    ("platform", lambda d, a: d.platform()),
    ("resolver", lambda d, a: d.resolver()),
]


@pytest.mark.parametrize("name,view", IMPL_VIEWS, ids=[c[0] for c in IMPL_VIEWS])
def test_implementation_views_revert(factory, project, buyer, name, view):
    impl = project.DealEscrow.at(factory.implementation())
    with ape.reverts("implementation"):
        view(impl, buyer)


def test_implementation_belongs_to_the_factory_and_holds_nothing(factory, project, buyer, attacker, usdt):
    impl = project.DealEscrow.at(factory.implementation())
    assert impl.factory() == factory.address
    assert not factory.is_deal(impl)
    with ape.reverts("only factory"):
        impl.credit(buyer, sender=attacker)
    with ape.reverts("nothing to claim"):
        impl.claim(usdt, attacker, sender=attacker)


# ------------------------------------------------------------------- registration
def _deploy_raw(chain, sender, initcode: bytes) -> str:
    """Deploy raw creation code from `sender` (no factory involved); returns the new address."""
    w3 = chain.provider.web3
    tx_hash = w3.eth.send_transaction({"from": sender.address, "data": initcode, "gas": 10_000_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt.status == 1
    return receipt.contractAddress


def _clone_initcode(implementation: str, data: bytes) -> bytes:
    runtime = PROXY_HEAD + bytes.fromhex(implementation[2:]) + PROXY_TAIL + data
    return b"\x61" + len(runtime).to_bytes(2, "big") + bytes.fromhex("80600a3d393df3") + runtime


def test_register_only_by_factory(mk_dvp, deploy, desk, attacker, wbtc, usdt, unchanged):
    deal = deploy(mk_dvp(), desk)
    with unchanged(deal, [wbtc, usdt], "only factory"):
        deal.register(ZERO, 0, sender=attacker)
    assert deal.registered()


@pytest.fixture
def as_factory(factory, chain):
    """The factory's address as a sender (anvil impersonation), to reach the checks that guard
    `register` against the factory itself."""
    account = ape.accounts[factory.address]
    chain.provider.set_balance(factory.address, 10**18)
    return account


def test_register_only_once_and_never_on_the_implementation(project, factory, mk_dvp, deploy, desk, as_factory):
    deal = deploy(mk_dvp(), desk)
    with ape.reverts("already registered"):
        deal.register(ZERO, 0, sender=as_factory)
    impl = project.DealEscrow.at(factory.implementation())
    with ape.reverts("implementation"):
        impl.register(ZERO, 0, sender=as_factory)
    assert deal.registered() and factory.is_deal(deal)


def test_clone_made_outside_the_factory_is_inert(project, chain, factory, mk_dvp, wbtc, seller, attacker):
    terms = mk_dvp()
    address = _deploy_raw(chain, attacker, _clone_initcode(factory.implementation(), terms.pack()))
    clone = project.DealEscrow.at(address)
    # it reads its terms like a real deal ...
    assert Terms.from_struct(clone.terms()) == terms
    # ... but the factory does not list it and it refuses deposits
    assert not clone.registered()
    assert not factory.is_deal(address)
    wbtc.mint(seller, terms.base.amount, sender=seller)
    wbtc.approve(address, terms.base.amount, sender=seller)
    with ape.reverts("not a registered deal"):
        clone.fund(sender=seller)
    with ape.reverts("only factory"):
        clone.register(ZERO, 0, sender=attacker)
    assert wbtc.balanceOf(seller) == terms.base.amount and not clone.funded(0)


def test_register_records_the_desk_as_the_scope(project, chain, factory, mk_dvp, attacker, as_factory):
    """`register(acceptor, desk_id)` keeps a desk deal's desk (its compliance scope) in the state word, above
    the tranche statuses; a desk id over 64 bits is refused with nothing registered."""
    clone = project.DealEscrow.at(
        _deploy_raw(chain, attacker, _clone_initcode(factory.implementation(), mk_dvp().pack()))
    )
    with ape.reverts("desk id too large"):
        clone.register(ZERO, 2**64, sender=as_factory)
    assert not clone.registered() and clone.desk_id() == 0 and clone.scope() == int(clone.address, 16)
    clone.register(ZERO, 2**64 - 1, sender=as_factory)
    assert clone.registered() and clone.desk_id() == 2**64 - 1 and clone.scope() == (1 << 160) | (2**64 - 1)
    assert [clone.tranche_status(i) for i in range(len(mk_dvp().tranches))] == [0] * len(mk_dvp().tranches)


def test_is_deal_rejects_lookalike_code(chain, factory, mk_dvp, deploy, desk, attacker, project):
    terms = mk_dvp()
    real = deploy(terms, desk)
    assert factory.is_deal(real)
    # the bare 45-byte proxy (no terms)
    bare = _deploy_raw(chain, attacker, _clone_initcode(factory.implementation(), b""))
    # the same terms behind a proxy to another implementation
    other_impl = _deploy_raw(chain, attacker, project.DealEscrow.contract_type.deployment_bytecode.bytecode)
    other = _deploy_raw(chain, attacker, _clone_initcode(other_impl, terms.pack()))
    for address in (bare, other, other_impl):
        assert not factory.is_deal(address)
