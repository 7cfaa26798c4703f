"""DeskRegistry: every entry point positive and negative (exact revert reasons, nothing changed on
failure), the two-step admin transfer, a MultiSig as desk admin, and each rule of `check_deal` (the
view the factory calls before creating a desk deal), tested against the view directly.

Desk 1 (module fixture): admin `desk_admin`, fee recipient `desk` (the platform of the mk_dvp /
mk_escrowed terms), desk fee <= 30 bps, introducers <= 20 bps, public, assets WBTC, USDT and
off-chain legs; members: trader (TRADER), checker (APPROVER | COMPLIANCE), buyer (CLIENT).
"""

from __future__ import annotations

from contextlib import contextmanager

import ape
import pytest
from dealkit import ZERO, _w3, addr, events, expect_event
from eth_utils import keccak

from nexotc_client.multisig import Call, Domain, Execution, Signature, pack_signatures

TRADER, APPROVER, COMPLIANCE, CLIENT = 1, 2, 4, 8
POLICY = b"\x5a" * 32
FAR = 2**40


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def desk_admin(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[10]


@pytest.fixture(scope="session")
def checker(accounts):
    """An approver and compliance officer of desk 1 (not a trader)."""
    return accounts[11]


@pytest.fixture(scope="module")
def registry(project, desk):
    return desk.deploy(project.DeskRegistry)


@pytest.fixture(scope="module")
def desk1(registry, desk_admin, desk, trader, checker, buyer, wbtc, usdt) -> int:
    receipt = registry.create_desk(desk_admin, desk, 30, 20, False, POLICY, [wbtc, usdt, ZERO], sender=desk_admin)
    desk_id = receipt.decode_logs(registry.DeskCreated)[0].desk_id
    registry.add_member(desk_id, trader, TRADER, sender=desk_admin)
    registry.add_member(desk_id, checker, APPROVER | COMPLIANCE, sender=desk_admin)
    registry.add_member(desk_id, buyer, CLIENT, sender=desk_admin)
    return desk_id


@pytest.fixture(scope="module")
def ms_factory(project, desk):
    return desk.deploy(project.MultiSigFactory, project.MultiSig.contract_type.deployment_bytecode.bytecode)


@pytest.fixture(scope="module")
def wallet(project, ms_factory, lawyer, approver, introducer2, desk):
    """A 2-of-3 MultiSig (lawyer, approver, introducer2)."""
    receipt = ms_factory.create([lawyer, approver, introducer2], 2, b"\x01" * 32, sender=desk)
    return project.MultiSig.at(receipt.decode_logs(ms_factory.MultiSigCreated)[0].wallet)


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(registry, desk1, wallet, everyone, desk_admin, trader, checker, mk_dvp, mk_escrowed):
    """Set up every session/module fixture before the first test's snapshot (a later one makes ape
    rebase its snapshots, see conftest._tokens_first)."""


# ---------------------------------------------------------------------------------- helpers
def desk_tuple(registry, desk_id) -> tuple:
    d = registry.desk(desk_id)
    return (
        d.admin,
        d.pending_admin,
        d.fee_recipient,
        d.max_desk_fee_bps,
        d.introducer_cap_bps,
        d.invite_only,
        d.suspended,
        bytes(d.policy_id),
        d.member_count,
        d.asset_count,
    )


@pytest.fixture
def state(registry, everyone, desk_admin, trader, checker, wallet, wbtc, usdt, usdc, weth):
    """Everything a failed call must leave no_change: the desk count, every desk's struct (raw
    storage reads, so ids without a desk count too), member roles of every actor and asset flags
    of every token, for desks 0..3 (one batched RPC round trip)."""
    people = [*everyone, desk_admin, trader, checker, wallet]
    tokens = [wbtc, usdt, usdc, weth, ZERO]

    def read() -> dict:
        r = _w3(registry)
        calls = [("count", r.functions.desk_count())]
        for desk_id in range(4):
            for p in people:
                calls.append((f"roles:{desk_id}:{addr(p)}", r.functions.member_roles(desk_id, addr(p))))
            for t in tokens:
                calls.append((f"asset:{desk_id}:{addr(t)}", r.functions.asset_allowed(desk_id, addr(t))))
        with ape.chain.provider.web3.batch_requests() as batch:
            for _, call in calls:
                batch.add(call)
            results = batch.execute()
        out = {name: value for (name, _), value in zip(calls, results, strict=True)}
        for desk_id in range(1, int(out["count"]) + 1):
            out[f"desk:{desk_id}"] = desk_tuple(registry, desk_id)
        return out

    return read


@pytest.fixture
def no_change(state):
    """`with no_change("reason"):` the exact revert reason, and no registry state changed."""

    @contextmanager
    def check(reason):
        before = state()
        with ape.reverts(reason):
            yield
        assert state() == before

    return check


def multisig_execute(wallet, signers, target: str, data: bytes, sender):
    """Sign an execution of one call with `signers` (local keys) and submit it from `sender`."""
    execution = Execution((Call(target, 0, data),), wallet.call_view_method("nonce"), FAR)
    digest = execution.digest(Domain(ape.chain.chain_id, wallet.address))
    sigs = pack_signatures([Signature.ecdsa(digest, a.private_key) for a in signers])
    return wallet.execute(target, 0, FAR, sigs, data, sender=sender)


def encode(registry, method: str, *args) -> bytes:
    return bytes(getattr(registry, method).encode_input(*args))


# ------------------------------------------------------------------------------ create_desk
def test_create_desk_stores_the_desk_and_logs_it(registry, desk1, desk_admin, desk, trader, checker, buyer, wbtc, usdt):
    assert registry.desk_count() == 1 and desk1 == 1
    assert desk_tuple(registry, desk1) == (desk_admin.address, ZERO, desk.address, 30, 20, False, False, POLICY, 3, 3)
    assert [registry.asset_allowed(desk1, t) for t in (wbtc, usdt, ZERO)] == [True, True, True]
    assert registry.member_roles(desk1, trader) == TRADER
    assert registry.member_roles(desk1, checker) == APPROVER | COMPLIANCE
    assert registry.member_roles(desk1, buyer) == CLIENT
    assert registry.member_roles(desk1, desk_admin) == 0  # the admin is no member unless added


def test_anyone_creates_a_desk_with_fresh_id_and_its_own_state(registry, desk1, attacker, lawyer, desk, weth, wbtc):
    receipt = registry.create_desk(lawyer, attacker, 1_000, 0, True, b"\0" * 32, [weth], sender=attacker)
    expect_event(
        receipt,
        registry.DeskCreated,
        desk_id=2,
        admin=lawyer,
        creator=attacker,
        fee_recipient=attacker,
        max_desk_fee_bps=1_000,
        introducer_cap_bps=0,
        invite_only=True,
        policy_id=b"\0" * 32,
    )
    assert events(receipt, registry.AssetSet) == [{"desk_id": 2, "token": weth.address, "allowed": True}]
    assert registry.desk_count() == 2
    assert desk_tuple(registry, 2) == (lawyer.address, ZERO, attacker.address, 1_000, 0, True, False, b"\0" * 32, 0, 1)
    assert registry.asset_allowed(2, weth) and not registry.asset_allowed(2, wbtc)
    assert not registry.asset_allowed(desk1, weth)  # desks are independent
    # an empty asset list is fine
    receipt = registry.create_desk(lawyer, desk, 0, 0, False, POLICY, [], sender=lawyer)
    assert receipt.decode_logs(registry.DeskCreated)[0].desk_id == 3
    assert events(receipt, registry.AssetSet) == []


@pytest.mark.parametrize(
    "case, reason",
    [
        ("zero admin", "zero admin"),
        ("zero fee recipient", "zero fee recipient"),
        ("desk fee cap", "desk fee cap above 1000 bps"),
        ("introducer cap", "introducer cap above 1000 bps"),
        ("EOA asset", "asset is not a contract"),
        ("duplicate asset", "asset already allowed"),
    ],
)
def test_create_desk_rejects(registry, no_change, attacker, desk, lawyer, wbtc, usdt, case, reason):
    args = {
        "admin": lawyer.address,
        "fee_recipient": desk.address,
        "max_fee": 30,
        "cap": 20,
        "assets": [wbtc.address, usdt.address],
    }
    if case == "zero admin":
        args["admin"] = ZERO
    elif case == "zero fee recipient":
        args["fee_recipient"] = ZERO
    elif case == "desk fee cap":
        args["max_fee"] = 1_001
    elif case == "introducer cap":
        args["cap"] = 1_001
    elif case == "EOA asset":
        args["assets"] = [wbtc.address, attacker.address]
    else:
        args["assets"] = [wbtc.address, usdt.address, wbtc.address]
    with no_change(reason):
        registry.create_desk(
            args["admin"],
            args["fee_recipient"],
            args["max_fee"],
            args["cap"],
            False,
            POLICY,
            args["assets"],
            sender=attacker,
        )


def test_desk_view_rejects_ids_without_a_desk(registry):
    for desk_id in (0, 2, 2**256 - 1):
        with ape.reverts("no such desk"):
            registry.desk(desk_id)


# ------------------------------------------------------------------------------- membership
def test_add_member_sets_and_replaces_roles(registry, desk1, desk_admin, lawyer, trader):
    receipt = registry.add_member(desk1, lawyer, TRADER | CLIENT, sender=desk_admin)
    expect_event(receipt, registry.MemberSet, desk_id=desk1, member=lawyer, roles=TRADER | CLIENT, previous_roles=0)
    assert registry.member_roles(desk1, lawyer) == TRADER | CLIENT
    assert registry.desk(desk1).member_count == 4
    # replacing the roles of a member keeps the count
    receipt = registry.add_member(desk1, trader, TRADER | APPROVER | COMPLIANCE | CLIENT, sender=desk_admin)
    expect_event(receipt, registry.MemberSet, desk_id=desk1, member=trader, roles=15, previous_roles=TRADER)
    assert registry.member_roles(desk1, trader) == 15
    assert registry.desk(desk1).member_count == 4


def test_remove_member(registry, desk1, desk_admin, checker):
    receipt = registry.remove_member(desk1, checker, sender=desk_admin)
    expect_event(
        receipt, registry.MemberSet, desk_id=desk1, member=checker, roles=0, previous_roles=APPROVER | COMPLIANCE
    )
    assert registry.member_roles(desk1, checker) == 0
    assert registry.desk(desk1).member_count == 2
    # a removed member may be added again
    registry.add_member(desk1, checker, COMPLIANCE, sender=desk_admin)
    assert registry.desk(desk1).member_count == 3


@pytest.mark.parametrize(
    "member, roles, reason",
    [
        ("zero", TRADER, "zero member"),
        ("lawyer", 0, "bad roles"),
        ("lawyer", 16, "bad roles"),
        ("lawyer", 2**255, "bad roles"),
        ("trader", TRADER, "member already has these roles"),
    ],
)
def test_add_member_rejects(registry, desk1, desk_admin, no_change, lawyer, trader, member, roles, reason):
    who = {"zero": ZERO, "lawyer": lawyer.address, "trader": trader.address}[member]
    with no_change(reason):
        registry.add_member(desk1, who, roles, sender=desk_admin)


def test_remove_member_rejects_a_non_member(registry, desk1, desk_admin, no_change, lawyer):
    with no_change("not a desk member"):
        registry.remove_member(desk1, lawyer, sender=desk_admin)
    with no_change("not a desk member"):
        registry.remove_member(desk1, ZERO, sender=desk_admin)


# ------------------------------------------------------------------------------------ assets
def test_set_assets_allows_then_disallows(registry, desk1, desk_admin, usdc, weth, wbtc):
    receipt = registry.set_assets(desk1, [usdc, weth], [wbtc, ZERO], sender=desk_admin)
    assert events(receipt, registry.AssetSet) == [
        {"desk_id": desk1, "token": usdc.address, "allowed": True},
        {"desk_id": desk1, "token": weth.address, "allowed": True},
        {"desk_id": desk1, "token": wbtc.address, "allowed": False},
        {"desk_id": desk1, "token": ZERO, "allowed": False},
    ]
    assert [registry.asset_allowed(desk1, t) for t in (usdc, weth, wbtc, ZERO)] == [True, True, False, False]
    assert registry.desk(desk1).asset_count == 3
    # only one side
    registry.set_assets(desk1, [], [usdc], sender=desk_admin)
    registry.set_assets(desk1, [ZERO], [], sender=desk_admin)
    assert registry.desk(desk1).asset_count == 3


@pytest.mark.parametrize(
    "allow, disallow, reason",
    [
        ([], [], "no asset to change"),
        (["wbtc"], [], "asset already allowed"),
        (["usdc", "usdc"], [], "asset already allowed"),
        ([], ["weth"], "asset not on the list"),
        (["usdc"], ["weth"], "asset not on the list"),  # the allowed usdc is rolled back too
        ([], ["wbtc", "wbtc"], "asset not on the list"),
        (["usdc", "attacker"], [], "asset is not a contract"),
    ],
)
def test_set_assets_rejects(
    registry, desk1, desk_admin, no_change, wbtc, usdc, weth, attacker, allow, disallow, reason
):
    named = {"wbtc": wbtc.address, "usdc": usdc.address, "weth": weth.address, "attacker": attacker.address}
    with no_change(reason):
        registry.set_assets(desk1, [named[a] for a in allow], [named[d] for d in disallow], sender=desk_admin)


# -------------------------------------------------------------------------- fees and modes
def test_set_fees(registry, desk1, desk_admin, lawyer):
    receipt = registry.set_fees(desk1, lawyer, 1_000, 1_000, sender=desk_admin)
    expect_event(
        receipt, registry.FeesSet, desk_id=desk1, fee_recipient=lawyer, max_desk_fee_bps=1_000, introducer_cap_bps=1_000
    )
    d = registry.desk(desk1)
    assert (d.fee_recipient, d.max_desk_fee_bps, d.introducer_cap_bps) == (lawyer.address, 1_000, 1_000)
    registry.set_fees(desk1, lawyer, 0, 0, sender=desk_admin)
    assert (registry.desk(desk1).max_desk_fee_bps, registry.desk(desk1).introducer_cap_bps) == (0, 0)


@pytest.mark.parametrize(
    "recipient, max_fee, cap, reason",
    [
        (ZERO, 30, 20, "zero fee recipient"),
        ("desk", 1_001, 20, "desk fee cap above 1000 bps"),
        ("desk", 30, 1_001, "introducer cap above 1000 bps"),
        ("desk", 2**256 - 1, 20, "desk fee cap above 1000 bps"),
    ],
)
def test_set_fees_rejects(registry, desk1, desk_admin, desk, no_change, recipient, max_fee, cap, reason):
    with no_change(reason):
        registry.set_fees(desk1, desk.address if recipient == "desk" else recipient, max_fee, cap, sender=desk_admin)


def test_access_mode_policy_and_suspension(registry, desk1, desk_admin):
    expect_event(
        registry.set_invite_only(desk1, True, sender=desk_admin),
        registry.AccessModeSet,
        desk_id=desk1,
        invite_only=True,
    )
    assert registry.desk(desk1).invite_only
    expect_event(
        registry.set_invite_only(desk1, False, sender=desk_admin),
        registry.AccessModeSet,
        desk_id=desk1,
        invite_only=False,
    )
    assert not registry.desk(desk1).invite_only
    new_policy = b"\x01" * 32
    expect_event(
        registry.set_policy_id(desk1, new_policy, sender=desk_admin),
        registry.PolicySet,
        desk_id=desk1,
        policy_id=new_policy,
    )
    assert bytes(registry.desk(desk1).policy_id) == new_policy
    registry.set_policy_id(desk1, b"\0" * 32, sender=desk_admin)
    assert bytes(registry.desk(desk1).policy_id) == b"\0" * 32
    expect_event(
        registry.set_suspended(desk1, True, sender=desk_admin), registry.SuspensionSet, desk_id=desk1, suspended=True
    )
    assert registry.desk(desk1).suspended
    # a suspended desk is still administered (and can be lifted)
    registry.add_member(desk1, desk_admin, TRADER, sender=desk_admin)
    expect_event(
        registry.set_suspended(desk1, False, sender=desk_admin), registry.SuspensionSet, desk_id=desk1, suspended=False
    )
    assert not registry.desk(desk1).suspended


ADMIN_CALLS = [
    ("add_member", lambda a: (a.lawyer, TRADER)),
    ("remove_member", lambda a: (a.trader,)),
    ("set_assets", lambda a: ([a.usdc], [a.wbtc])),
    ("set_fees", lambda a: (a.attacker, 1_000, 1_000)),
    ("set_invite_only", lambda a: (True,)),
    ("set_policy_id", lambda a: (b"\x66" * 32,)),
    ("set_suspended", lambda a: (True,)),
    ("propose_admin", lambda a: (a.attacker,)),
]


class _Actors:
    def __init__(self, **kw):
        self.__dict__.update({k: v.address for k, v in kw.items()})


@pytest.mark.parametrize("method, args", ADMIN_CALLS, ids=[m for m, _ in ADMIN_CALLS])
def test_only_the_admin_changes_a_desk(
    registry, desk1, no_change, attacker, trader, checker, desk, lawyer, usdc, wbtc, method, args
):
    a = _Actors(lawyer=lawyer, trader=trader, attacker=attacker, usdc=usdc, wbtc=wbtc)
    # members, the fee recipient and outsiders alike; desk 1's admin cannot touch other ids either
    for sender in (attacker, trader, checker, desk):
        with no_change("not the desk admin"):
            getattr(registry, method)(desk1, *args(a), sender=sender)
    for desk_id in (0, 2):
        with no_change("no such desk"):
            getattr(registry, method)(desk_id, *args(a), sender=attacker)


# --------------------------------------------------------------------------- admin transfer
def test_admin_transfer_is_two_step(registry, desk1, desk_admin, lawyer, attacker, no_change):
    receipt = registry.propose_admin(desk1, lawyer, sender=desk_admin)
    expect_event(receipt, registry.AdminProposed, desk_id=desk1, admin=desk_admin, pending_admin=lawyer)
    assert registry.desk(desk1).pending_admin == lawyer.address
    # until accepted, the old admin is still the admin and the proposed one is not
    with no_change("not the desk admin"):
        registry.set_suspended(desk1, True, sender=lawyer)
    with no_change("not the pending admin"):
        registry.accept_admin(desk1, sender=attacker)
    with no_change("not the pending admin"):
        registry.accept_admin(desk1, sender=desk_admin)
    receipt = registry.accept_admin(desk1, sender=lawyer)
    expect_event(receipt, registry.AdminTransferred, desk_id=desk1, previous_admin=desk_admin, admin=lawyer)
    d = registry.desk(desk1)
    assert (d.admin, d.pending_admin) == (lawyer.address, ZERO)
    with no_change("not the desk admin"):
        registry.set_suspended(desk1, True, sender=desk_admin)
    registry.set_suspended(desk1, True, sender=lawyer)
    # accepting twice is not possible
    with no_change("not the pending admin"):
        registry.accept_admin(desk1, sender=lawyer)


def test_admin_proposal_is_replaced_and_withdrawn(registry, desk1, desk_admin, lawyer, attacker, no_change):
    registry.propose_admin(desk1, attacker, sender=desk_admin)
    registry.propose_admin(desk1, lawyer, sender=desk_admin)  # replaces the first proposal
    with no_change("not the pending admin"):
        registry.accept_admin(desk1, sender=attacker)
    receipt = registry.propose_admin(desk1, ZERO, sender=desk_admin)  # withdrawn
    expect_event(receipt, registry.AdminProposed, desk_id=desk1, admin=desk_admin, pending_admin=ZERO)
    with no_change("not the pending admin"):
        registry.accept_admin(desk1, sender=lawyer)
    with no_change("already the admin"):
        registry.propose_admin(desk1, desk_admin, sender=desk_admin)
    for desk_id in (0, 2):  # no desk: nobody is pending
        with no_change("not the pending admin"):
            registry.accept_admin(desk_id, sender=attacker)


# ------------------------------------------------------------------------ MultiSig as admin
def test_multisig_administers_a_desk(
    registry, wallet, lawyer, approver, introducer2, attacker, desk, trader, no_change
):
    receipt = registry.create_desk(wallet, desk, 25, 10, True, POLICY, [], sender=attacker)
    desk_id = receipt.decode_logs(registry.DeskCreated)[0].desk_id
    # an owner alone is not the admin: the wallet is
    with no_change("not the desk admin"):
        registry.add_member(desk_id, trader, TRADER, sender=lawyer)
    data = encode(registry, "add_member", desk_id, trader.address, TRADER)
    receipt = multisig_execute(wallet, [lawyer, approver], registry.address, data, sender=attacker)
    expect_event(
        receipt, registry.MemberSet, emitter=registry, desk_id=desk_id, member=trader, roles=TRADER, previous_roles=0
    )
    assert registry.member_roles(desk_id, trader) == TRADER
    # a call the registry refuses reverts the whole execution with the registry's reason
    nonce = wallet.call_view_method("nonce")
    bad = encode(registry, "set_fees", desk_id, desk.address, 1_001, 0)
    with no_change("desk fee cap above 1000 bps"):
        multisig_execute(wallet, [approver, introducer2], registry.address, bad, sender=attacker)
    assert wallet.call_view_method("nonce") == nonce
    # one signature is not enough
    with no_change("not enough signatures"):
        multisig_execute(wallet, [lawyer], registry.address, data, sender=lawyer)


def test_admin_moves_to_a_multisig(
    check, registry, desk1, desk_admin, wallet, lawyer, introducer2, attacker, no_change
):
    registry.propose_admin(desk1, wallet, sender=desk_admin)
    data = encode(registry, "accept_admin", desk1)
    receipt = multisig_execute(wallet, [lawyer, introducer2], registry.address, data, sender=attacker)
    expect_event(
        receipt, registry.AdminTransferred, emitter=registry, desk_id=desk1, previous_admin=desk_admin, admin=wallet
    )
    assert registry.desk(desk1).admin == wallet.address
    with no_change("not the desk admin"):
        registry.set_suspended(desk1, True, sender=desk_admin)
    multisig_execute(
        wallet, [lawyer, introducer2], registry.address, encode(registry, "set_suspended", desk1, True), sender=lawyer
    )
    assert registry.desk(desk1).suspended


# ------------------------------------------------------------------------------ check_deal
def _outcome(call):
    try:
        return bytes(call()), None
    except ape.exceptions.ContractLogicError as err:
        return None, err


def packed_terms(factory, terms) -> bytes:
    """The packed terms a deal created with `terms` carries in its code: the client's packing, which is the
    factory's (the factory's terms hash is keccak256 of them)."""
    data = terms.pack()
    assert keccak(data) == bytes(factory.validate(terms.as_struct()))
    return data


@pytest.fixture
def check(registry, factory):
    """`check(desk_id, creator, terms)`: check_deal(terms) and check_packed(packed terms) give
    the same policy id or the same revert reason (re-raised, for `ape.reverts`)."""

    def both(desk_id, creator, terms):
        by_struct, err = _outcome(lambda: registry.check_deal(desk_id, addr(creator), terms.as_struct()))
        packed = packed_terms(factory, terms)
        by_packed, packed_err = _outcome(lambda: registry.check_packed(desk_id, addr(creator), packed))
        assert (by_struct, err and err.revert_message) == (by_packed, packed_err and packed_err.revert_message)
        if err is not None:
            raise err
        return by_struct

    return both


def test_check_deal_accepts_a_trader_and_returns_the_policy(
    check, registry, desk1, desk_admin, trader, mk_dvp, mk_escrowed
):
    assert check(desk1, trader, mk_dvp()) == POLICY
    assert check(desk1, trader, mk_escrowed()) == POLICY  # off-chain legs are on the list
    # at the schedule exactly: desk fee 30, two introducers summing to 20
    at_schedule = mk_dvp(desk_fee_bps=30, introducers=[(desk_admin.address, 10), (trader.address, 10)])
    assert check(desk1, trader, at_schedule) == POLICY
    registry.set_policy_id(desk1, b"\0" * 32, sender=desk_admin)
    assert check(desk1, trader, mk_dvp()) == b"\0" * 32


def test_check_deal_no_such_desk(check, registry, trader, mk_dvp):
    for desk_id in (0, 2):
        with ape.reverts("no such desk"):
            check(desk_id, trader, mk_dvp())


def test_check_deal_suspended_desk(check, registry, desk1, desk_admin, trader, mk_dvp):
    registry.set_suspended(desk1, True, sender=desk_admin)
    with ape.reverts("desk suspended"):
        check(desk1, trader, mk_dvp())
    registry.set_suspended(desk1, False, sender=desk_admin)
    assert check(desk1, trader, mk_dvp()) == POLICY


def test_check_deal_creator_must_be_a_trader(
    check, registry, desk1, desk_admin, trader, checker, buyer, attacker, mk_dvp
):
    terms = mk_dvp()
    for outsider in (attacker, desk_admin, ZERO):
        with ape.reverts("not a desk member"):
            check(desk1, outsider, terms)
    for member in (checker, buyer):  # approver + compliance officer; client
        with ape.reverts("not a trader"):
            check(desk1, member, terms)
    registry.remove_member(desk1, trader, sender=desk_admin)
    with ape.reverts("not a desk member"):
        check(desk1, trader, terms)
    registry.add_member(desk1, buyer, CLIENT | TRADER, sender=desk_admin)
    assert check(desk1, buyer, terms) == POLICY


def test_check_deal_platform_is_the_fee_recipient(check, registry, desk1, desk_admin, trader, lawyer, mk_dvp):
    with ape.reverts("platform must be the desk's fee recipient"):
        check(desk1, trader, mk_dvp(platform=lawyer.address))
    registry.set_fees(desk1, lawyer, 30, 20, sender=desk_admin)
    assert check(desk1, trader, mk_dvp(platform=lawyer.address)) == POLICY
    with ape.reverts("platform must be the desk's fee recipient"):
        check(desk1, trader, mk_dvp())


def test_check_deal_needs_the_four_fixed_parties(registry, factory, desk1, trader, mk_dvp):
    struct = list(mk_dvp().as_struct())
    struct[6] = struct[6][:3]
    with ape.reverts("need buyer, seller, platform, resolver"):
        registry.check_deal(desk1, trader, tuple(struct))
    packed = packed_terms(factory, mk_dvp())  # 5 parties: header, 5 party words, 4 tranches
    assert registry.check_packed(desk1, trader, packed) == POLICY
    resolver_word = int.from_bytes(packed[5 * 32 : 6 * 32], "big")
    three = (resolver_word & ~(0xFF << 192)) | (3 << 192)
    bad = [b"", packed[:-1], packed[: 6 * 32], packed[: 5 * 32] + three.to_bytes(32, "big") + packed[6 * 32 :]]
    for garbled in bad:
        with ape.reverts("bad packed terms"):
            registry.check_packed(desk1, trader, garbled)


def test_check_deal_desk_fee_above_schedule(check, registry, desk1, desk_admin, trader, mk_dvp):
    with ape.reverts("desk fee above schedule"):
        check(desk1, trader, mk_dvp(desk_fee_bps=31))
    registry.set_fees(desk1, registry.desk(desk1).fee_recipient, 31, 20, sender=desk_admin)
    assert check(desk1, trader, mk_dvp(desk_fee_bps=31)) == POLICY
    registry.set_fees(desk1, registry.desk(desk1).fee_recipient, 0, 20, sender=desk_admin)
    with ape.reverts("desk fee above schedule"):
        check(desk1, trader, mk_dvp(desk_fee_bps=1))
    assert check(desk1, trader, mk_dvp(desk_fee_bps=0)) == POLICY


def test_check_deal_introducers_above_cap(check, registry, desk1, desk_admin, trader, introducer, introducer2, mk_dvp):
    with ape.reverts("introducers above cap"):
        check(desk1, trader, mk_dvp(introducers=[(introducer.address, 21)]))
    with ape.reverts("introducers above cap"):  # the sum counts
        check(desk1, trader, mk_dvp(introducers=[(introducer.address, 10), (introducer2.address, 11)]))
    registry.set_fees(desk1, registry.desk(desk1).fee_recipient, 30, 0, sender=desk_admin)
    with ape.reverts("introducers above cap"):
        check(desk1, trader, mk_dvp())
    assert check(desk1, trader, mk_dvp(introducers=[])) == POLICY


def test_check_deal_asset_outside_the_list(
    check, registry, desk1, desk_admin, trader, mk_dvp, mk_escrowed, weth, usdc, wbtc
):
    with ape.reverts("asset not allowed"):  # base
        check(desk1, trader, mk_dvp(base_token=weth))
    with ape.reverts("asset not allowed"):  # quote
        check(desk1, trader, mk_dvp(quote_token=usdc))
    registry.set_assets(desk1, [], [ZERO], sender=desk_admin)
    with ape.reverts("asset not allowed"):  # an off-chain leg is the zero address on the list
        check(desk1, trader, mk_escrowed())
    registry.set_assets(desk1, [weth], [wbtc], sender=desk_admin)
    assert check(desk1, trader, mk_dvp(base_token=weth)) == POLICY
    with ape.reverts("asset not allowed"):
        check(desk1, trader, mk_dvp())


def test_check_deal_invite_only_counterparties(
    check, registry, desk1, desk_admin, trader, buyer, seller, lawyer, mk_dvp
):
    registry.set_invite_only(desk1, True, sender=desk_admin)
    # buyer is a CLIENT, seller is nobody
    with ape.reverts("counterparty not invited"):
        check(desk1, trader, mk_dvp())
    registry.add_member(desk1, seller, CLIENT, sender=desk_admin)
    with ape.reverts("counterparty not invited"):  # buyer not invited, seller invited
        check(desk1, trader, mk_dvp(buyer=lawyer.address))
    assert check(desk1, trader, mk_dvp()) == POLICY
    # any role invites: the trader itself as the seller
    assert check(desk1, trader, mk_dvp(seller=trader.address)) == POLICY
    # a public desk takes any counterparty (the creator is still a trader)
    registry.set_invite_only(desk1, False, sender=desk_admin)
    assert check(desk1, trader, mk_dvp(buyer=lawyer.address)) == POLICY


def test_check_deal_rules_apply_in_order(check, registry, desk1, desk_admin, attacker, lawyer, weth, mk_dvp):
    """Everything wrong at once: the first rule of the documented order is reported."""
    terms = mk_dvp(platform=lawyer.address, desk_fee_bps=900, introducers=[(attacker.address, 100)], base_token=weth)
    registry.set_invite_only(desk1, True, sender=desk_admin)
    registry.set_suspended(desk1, True, sender=desk_admin)
    expected = [
        ("desk suspended", lambda: registry.set_suspended(desk1, False, sender=desk_admin)),
        ("not a desk member", lambda: registry.add_member(desk1, attacker, CLIENT, sender=desk_admin)),
        ("not a trader", lambda: registry.add_member(desk1, attacker, TRADER, sender=desk_admin)),
        (
            "platform must be the desk's fee recipient",
            lambda: registry.set_fees(desk1, lawyer, 30, 20, sender=desk_admin),
        ),
        ("desk fee above schedule", lambda: registry.set_fees(desk1, lawyer, 900, 20, sender=desk_admin)),
        ("introducers above cap", lambda: registry.set_fees(desk1, lawyer, 900, 100, sender=desk_admin)),
        ("asset not allowed", lambda: registry.set_assets(desk1, [weth], [], sender=desk_admin)),
        ("counterparty not invited", lambda: registry.set_invite_only(desk1, False, sender=desk_admin)),
    ]
    for reason, fix in expected:
        with ape.reverts(reason):
            check(desk1, attacker, terms)
        fix()
    assert check(desk1, attacker, terms) == POLICY


# ------------------------------------------------------------------------------ screening (AML)
def _screened(registry, desk_id, *wallets) -> list[bool]:
    return [registry.screened(desk_id, addr(w)) for w in wallets]


def test_compliance_and_admin_screen_wallets_in_and_out(registry, desk1, desk_admin, checker, attacker, lawyer):
    receipt = registry.set_screened(desk1, [attacker, lawyer], True, sender=checker)  # COMPLIANCE member
    logged = [(e["wallet"], e["screened"], e["by"]) for e in events(receipt, registry.Screened, registry)]
    assert logged == [(addr(attacker), 1, addr(checker)), (addr(lawyer), 1, addr(checker))]
    assert _screened(registry, desk1, attacker, lawyer) == [True, True]
    assert _screened(registry, 2, attacker) == [False]  # per desk
    receipt = registry.set_screened(desk1, [lawyer], False, sender=desk_admin)
    expect_event(receipt, registry.Screened, desk_id=desk1, wallet=lawyer, screened=False, by=desk_admin)
    assert _screened(registry, desk1, attacker, lawyer) == [True, False]


@pytest.mark.parametrize(
    ("who", "desk_id", "wallets", "screened", "reason"),
    [
        ("trader", 1, ["attacker"], True, "not the desk admin or compliance"),
        ("attacker", 1, ["attacker"], True, "not the desk admin or compliance"),
        ("desk_admin", 2, ["attacker"], True, "no such desk"),
        ("checker", 1, ["zero"], True, "zero wallet"),
        ("checker", 1, ["lawyer", "lawyer"], True, "wallet already screened"),
        ("checker", 1, ["attacker"], False, "wallet not screened"),
    ],
)
def test_set_screened_rejects(request, registry, desk1, who, desk_id, wallets, screened, reason):
    def actor(name):
        return ZERO if name == "zero" else request.getfixturevalue(name)

    people = [actor(n) for n in ("attacker", "lawyer")]
    before = _screened(registry, desk_id, *people)
    with ape.reverts(reason):
        registry.set_screened(desk_id, [actor(w) for w in wallets], screened, sender=actor(who))
    assert _screened(registry, desk_id, *people) == before  # the first one of a batch is undone too


def test_check_deal_refuses_a_screened_party(
    check, registry, desk1, desk_admin, checker, trader, buyer, seller, introducer, mk_dvp
):
    terms = mk_dvp(introducers=[(introducer.address, 10)])
    assert check(desk1, trader, terms) == POLICY
    for party in (seller, buyer, introducer):  # a principal or any wallet paid by the deal
        registry.set_screened(desk1, [party], True, sender=checker)
        with ape.reverts("party screened out by the desk"):
            check(desk1, trader, terms)
        registry.set_screened(desk1, [party], False, sender=checker)
    assert check(desk1, trader, terms) == POLICY
    # the last rule: a creator who is no trader is reported first
    registry.set_screened(desk1, [seller], True, sender=checker)
    with ape.reverts("not a trader"):
        check(desk1, checker, terms)
    registry.set_screened(desk1, [seller], False, sender=checker)
    # the trader itself, though no party of the terms
    registry.set_screened(desk1, [trader], True, sender=checker)
    with ape.reverts("trader screened out by the desk"):
        check(desk1, trader, terms)
    registry.set_screened(desk1, [trader], False, sender=checker)
    assert check(desk1, trader, terms) == POLICY


def test_a_screened_officer_screens_nothing_and_cannot_unscreen_itself(registry, desk1, desk_admin, checker, attacker):
    registry.set_screened(desk1, [checker], True, sender=checker)
    for wallets, screened in (([checker], False), ([attacker], True)):
        with ape.reverts("caller screened out by the desk"):
            registry.set_screened(desk1, wallets, screened, sender=checker)
    assert _screened(registry, desk1, checker, attacker) == [True, False]
    registry.set_screened(desk1, [checker], False, sender=desk_admin)  # the admin can
    registry.set_screened(desk1, [attacker], True, sender=checker)
    assert _screened(registry, desk1, checker, attacker) == [False, True]
