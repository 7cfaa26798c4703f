"""MultiSig and MultiSigFactory: every entry point, positive and negative, with exact revert reasons
and nothing changed on failure.

Wallets are clones made by the factory; owners are ape test accounts signing with their local keys
through nexotc_client.multisig (EIP-712), so these tests also pin the Python encoding to the
contract's.
"""

from __future__ import annotations

from dataclasses import dataclass

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from nexotc_client.multisig import (
    Call,
    Config,
    Domain,
    Execution,
    Kind,
    Signature,
    message_digest,
    pack_signatures,
)

FAR = 2**40
MAGIC = bytes.fromhex("1626ba7e")
ZERO = "0x0000000000000000000000000000000000000000"
AMOUNT = 1_000 * 10**6


# ---------------------------------------------------------------------------------- helpers
@dataclass
class Wallet:
    """A deployed MultiSig with its owners (ape test accounts, or contracts)."""

    contract: object
    owners: list

    @property
    def address(self) -> str:
        return self.contract.address

    def domain(self, chain_id: int | None = None) -> Domain:
        return Domain(ape.chain.chain_id if chain_id is None else chain_id, self.address)

    def nonce(self) -> int:
        # `nonce` is shadowed by ape's account nonce on contract instances
        return self.contract.call_view_method("nonce")

    def execution(self, calls, nonce: int | None = None, deadline: int = FAR) -> Execution:
        calls = calls if isinstance(calls, list | tuple) else [calls]
        return Execution(tuple(calls), self.nonce() if nonce is None else nonce, deadline)

    def sign(self, execution: Execution, signers, domain: Domain | None = None, sort: bool = True) -> bytes:
        digest = execution.digest(domain or self.domain())
        return pack_signatures([Signature.ecdsa(digest, a.private_key) for a in signers], sort=sort)

    def execute(self, call: Call, signers=None, sender=None, deadline: int = FAR, sigs: bytes | None = None, **kw):
        if sigs is None:
            sigs = self.sign(self.execution(call, deadline=deadline), signers)
        return self.contract.execute(call.target, call.value, deadline, sigs, call.data, sender=sender, **kw)

    def execute_batch(self, calls: list[Call], signers=None, sender=None, deadline: int = FAR, sigs=None):
        if sigs is None:
            sigs = self.sign(self.execution(calls, deadline=deadline), signers)
        return self.contract.execute_batch(deadline, sigs, [c.as_tuple() for c in calls], sender=sender)

    def self_call(self, method: str, *args) -> Call:
        return Call(self.address, 0, bytes(getattr(self.contract, method).encode_input(*args)))


def sorted_addrs(*accts) -> list[str]:
    return sorted((a if isinstance(a, str) else a.address for a in accts), key=lambda x: int(x, 16))


def snapshot(wallet: Wallet, token, holders=()) -> dict:
    """Everything a failed call must leave unchanged."""
    c = wallet.contract
    return {
        "nonce": wallet.nonce(),
        "owners": list(c.get_owners()),
        "threshold": c.threshold(),
        "eth": c.balance,
        "balances": [token.balanceOf(h) for h in (wallet.address, *holders)],
    }


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ms_factory(project, desk):
    return desk.deploy(project.MultiSigFactory, project.MultiSig.contract_type.deployment_bytecode.bytecode)


@pytest.fixture(scope="module")
def token(project, desk):
    return desk.deploy(project.MockERC20, "USD (mock)", "USD", 6)


@pytest.fixture(scope="module")
def make_wallet(project, ms_factory, token, desk):
    """Create a wallet of `owners` (accounts or contracts) with `threshold`, funded with tokens."""
    counter = iter(range(1, 1_000_000))

    def make(owners, threshold: int, fund: int = 10 * AMOUNT) -> Wallet:
        salt = next(counter).to_bytes(32, "big")
        receipt = ms_factory.create([o.address for o in owners], threshold, salt, sender=desk)
        contract = project.MultiSig.at(receipt.decode_logs(ms_factory.MultiSigCreated)[0].wallet)
        if fund:
            token.mint(contract.address, fund, sender=desk)
        return Wallet(contract, list(owners))

    return make


@pytest.fixture(scope="module")
def w23(make_wallet, buyer, seller, lawyer):
    """2-of-3: buyer, seller, lawyer."""
    return make_wallet([buyer, seller, lawyer], 2)


@pytest.fixture(scope="module")
def w11(make_wallet, approver):
    """1-of-1: approver."""
    return make_wallet([approver], 1)


@pytest.fixture(scope="module")
def mock1271(project, desk):
    return desk.deploy(project.MockERC1271)


def transfer(token, to, amount: int = AMOUNT) -> Call:
    return Call(token.address, 0, bytes(token.transfer.encode_input(to if isinstance(to, str) else to.address, amount)))


def top_two(wallet: Wallet) -> list:
    """The two owners with the highest addresses (signing order does not matter: packing sorts)."""
    return sorted(wallet.owners, key=lambda a: int(a.address, 16))[-2:]


# ------------------------------------------------------------------------------- factory
def test_create_predicts_address_and_stores_sorted_config(project, ms_factory, buyer, seller, lawyer, desk):
    owners = [buyer.address, seller.address, lawyer.address]
    salt = b"\x07" * 32
    predicted = ms_factory.predict_address(owners, 2, salt)
    offline = Config.build(owners, 2).predict_address(ms_factory.address, ms_factory.implementation(), salt)
    receipt = ms_factory.create(owners, 2, salt, sender=desk)
    event = receipt.decode_logs(ms_factory.MultiSigCreated)[0]
    assert event.wallet == predicted == offline
    assert event.creator == desk.address and event.threshold == 2 and event.salt == salt
    assert list(event.owners) == sorted_addrs(*owners)
    wallet = project.MultiSig.at(predicted)
    assert list(wallet.get_owners()) == sorted_addrs(*owners)
    assert wallet.threshold() == 2 and wallet.call_view_method("nonce") == 0
    assert all(wallet.is_owner(o) for o in owners) and not wallet.is_owner(desk)
    assert wallet.factory() == ms_factory.address and wallet.implementation() == ms_factory.implementation()
    # the clone's code is the EIP-1167 proxy followed by the configuration
    code = bytes(ape.chain.provider.get_code(predicted))
    assert code[45:] == Config.build(owners, 2).encode()


def test_address_binds_configuration_not_owner_order_or_sender(ms_factory, buyer, seller, lawyer, attacker):
    salt = b"\x01" * 32
    a = ms_factory.predict_address([buyer, seller, lawyer], 2, salt)
    assert ms_factory.predict_address([lawyer, buyer, seller], 2, salt) == a
    assert ms_factory.predict_address([buyer, seller, lawyer], 3, salt) != a
    assert ms_factory.predict_address([buyer, seller, attacker], 2, salt) != a
    assert ms_factory.predict_address([buyer, seller, lawyer], 2, b"\x02" * 32) != a
    # anyone may deploy it, and gets exactly that configuration
    receipt = ms_factory.create([lawyer, seller, buyer], 2, salt, sender=attacker)
    assert receipt.decode_logs(ms_factory.MultiSigCreated)[0].wallet == a


def test_create_same_configuration_and_salt_twice_reverts(ms_factory, buyer, desk):
    ms_factory.create([buyer], 1, b"\x09" * 32, sender=desk)
    with ape.reverts("wallet exists"):
        ms_factory.create([buyer], 1, b"\x09" * 32, sender=desk)


@pytest.mark.parametrize(
    "case, reason",
    [
        ("zero owner", "zero owner"),
        ("duplicate", "duplicate owner"),
        ("threshold 0", "threshold out of range"),
        ("threshold above owners", "threshold out of range"),
        ("no owners", "threshold out of range"),
    ],
)
def test_create_rejects_bad_configuration(ms_factory, buyer, seller, lawyer, desk, case, reason):
    owners, threshold = {
        "zero owner": ([buyer.address, ZERO], 1),
        "duplicate": ([buyer.address, seller.address, buyer.address], 2),
        "threshold 0": ([buyer.address, seller.address], 0),
        "threshold above owners": ([buyer.address, seller.address, lawyer.address], 4),
        "no owners": ([], 0),
    }[case]
    with ape.reverts(reason):
        ms_factory.create(owners, threshold, b"\x00" * 32, sender=desk)
    with ape.reverts(reason):
        ms_factory.predict_address(owners, threshold, b"\x00" * 32)


def test_create_accepts_twenty_owners_and_no_more(project, ms_factory, desk):
    owners = [to_checksum_address((0x1000 + i).to_bytes(20, "big")) for i in range(21)]
    receipt = ms_factory.create(owners[:20], 20, b"\x20" * 32, sender=desk)
    wallet = project.MultiSig.at(receipt.decode_logs(ms_factory.MultiSigCreated)[0].wallet)
    assert list(wallet.get_owners()) == owners[:20] and wallet.threshold() == 20
    with ape.reverts():  # the ABI decoder's bound (20) rejects the call before any code runs
        ms_factory.create(owners, 2, b"\x21" * 32, sender=desk)


def test_implementation_is_unusable(project, ms_factory, token, buyer, attacker):
    impl = project.MultiSig.at(ms_factory.implementation())
    assert impl.call_view_method("nonce") == 0
    with ape.reverts("only factory"):
        impl.setup(sender=attacker)
    with ape.reverts("not a wallet"):
        impl.execute(token.address, 0, FAR, b"", b"", sender=attacker)
    with ape.reverts("not a wallet"):
        impl.execute_batch(FAR, b"", [(token.address, 0, b"")], sender=attacker)
    with ape.reverts("not a wallet"):
        impl.isValidSignature(b"\x01" * 32, b"")
    with ape.reverts("not a wallet"):
        impl.approve_hash(b"\x01" * 32, sender=buyer)
    with ape.reverts("not a wallet"):
        impl.threshold()
    with ape.reverts("only the wallet itself"):
        impl.add_owner(attacker, 1, sender=attacker)


def test_clone_is_set_up_once_and_only_by_the_factory(w23, ms_factory, attacker, chain):
    with ape.reverts("only factory"):
        w23.contract.setup(sender=attacker)
    factory_as_sender = ape.accounts[ms_factory.address]  # anvil impersonation
    chain.provider.set_balance(ms_factory.address, 10**18)
    with ape.reverts("already set up"):
        w23.contract.setup(sender=factory_as_sender)


def test_clone_not_made_by_the_factory_is_inert(project, ms_factory, token, buyer, desk, chain):
    """Anyone can deploy an EIP-1167 clone of the implementation with any configuration in its code
    (here: threshold 1, owner buyer), but only the factory sets wallets up."""
    initcode = Config.build([buyer], 1).initcode(ms_factory.implementation())
    web3 = chain.provider.web3
    tx_hash = web3.eth.send_transaction({"from": desk.address, "data": initcode})
    rogue = project.MultiSig.at(web3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"])
    call = transfer(token, desk)
    wallet = Wallet(rogue, [buyer])
    sigs = wallet.sign(Execution.single(call, 0, FAR), [buyer])
    with ape.reverts("not a wallet"):
        rogue.execute(call.target, 0, FAR, sigs, call.data, sender=buyer)
    with ape.reverts("only factory"):
        rogue.setup(sender=buyer)


# ------------------------------------------------------------------------------- execute
def test_execute_single_call(w23, token, desk, attacker):
    before = token.balanceOf(desk)
    call = transfer(token, desk)
    execution = w23.execution(call)
    digest = execution.digest(w23.domain())
    # the contract's view and the Python encoding agree
    assert bytes(w23.contract.execution_digest([call.as_tuple()], 0, FAR)) == digest
    sigs = w23.sign(execution, top_two(w23))
    # anyone may submit: the signatures bind target, value, data, nonce, deadline and wallet
    receipt = w23.contract.execute(call.target, 0, FAR, sigs, call.data, sender=attacker)
    assert token.balanceOf(desk) == before + AMOUNT
    assert w23.nonce() == 1
    assert [bytes(e.digest) for e in receipt.decode_logs(w23.contract.Executed)] == [digest]


def test_execute_batch(w23, token, desk, seller, lawyer):
    calls = [
        transfer(token, desk, 5),
        transfer(token, lawyer, 7),
        Call(token.address, 0, bytes(token.approve.encode_input(seller, 9))),
    ]
    execution = w23.execution(calls)
    assert bytes(w23.contract.execution_digest([c.as_tuple() for c in calls], 0, FAR)) == execution.digest(w23.domain())
    d0, l0 = token.balanceOf(desk), token.balanceOf(lawyer)
    receipt = w23.execute_batch(calls, top_two(w23), sender=desk)
    assert token.balanceOf(desk) == d0 + 5 and token.balanceOf(lawyer) == l0 + 7
    assert token.allowance(w23.address, seller) == 9
    assert w23.nonce() == 1
    assert [bytes(e.digest) for e in receipt.decode_logs(w23.contract.Executed)] == [execution.digest(w23.domain())]


def test_execute_batch_needs_calls(w23, desk):
    with ape.reverts("no calls"):
        w23.contract.execute_batch(FAR, b"", [], sender=desk)
    assert w23.nonce() == 0


def test_receive_eth_and_execute_with_value(w23, buyer, seller, desk):
    buyer.transfer(w23.address, 10**18)
    assert w23.contract.balance == 10**18
    before = desk.balance
    w23.execute(Call(desk.address, 3 * 10**17, b""), top_two(w23), sender=seller)
    assert desk.balance == before + 3 * 10**17
    assert w23.contract.balance == 7 * 10**17


def test_unknown_function_reverts(w23, buyer):
    with ape.reverts("unknown function"):
        buyer.transfer(w23.address, 0, data=b"\xde\xad\xbe\xef")


def test_nonce_replay_rejected(w23, token, desk):
    call = transfer(token, desk)
    sigs = w23.sign(w23.execution(call), top_two(w23))
    w23.execute(call, sigs=sigs, sender=desk)
    snap = snapshot(w23, token, [desk])
    # the same signatures now recover other addresses (the digest binds nonce 0)
    with ape.reverts("not an owner"):
        w23.execute(call, sigs=sigs, sender=desk)
    assert snapshot(w23, token, [desk]) == snap
    # signing a future nonce does not work either
    future = w23.sign(w23.execution(call, nonce=2), top_two(w23))
    with ape.reverts("not an owner"):
        w23.execute(call, sigs=future, sender=desk)


def test_expired_deadline(w23, token, desk, chain):
    call = transfer(token, desk)
    deadline = chain.pending_timestamp + 100
    sigs = w23.sign(w23.execution(call, deadline=deadline), top_two(w23))
    chain.pending_timestamp = deadline + 1
    snap = snapshot(w23, token, [desk])
    with ape.reverts("expired"):
        w23.execute(call, sigs=sigs, deadline=deadline, sender=desk)
    assert snapshot(w23, token, [desk]) == snap


def test_deadline_is_inclusive(w23, token, desk, chain):
    call = transfer(token, desk)
    deadline = chain.pending_timestamp + 100
    sigs = w23.sign(w23.execution(call, deadline=deadline), top_two(w23))
    chain.pending_timestamp = deadline
    w23.execute(call, sigs=sigs, deadline=deadline, sender=desk)
    assert w23.nonce() == 1


def test_deadline_is_signed(w23, token, desk):
    call = transfer(token, desk)
    sigs = w23.sign(w23.execution(call, deadline=FAR), top_two(w23))
    with ape.reverts("not an owner"):
        w23.execute(call, sigs=sigs, deadline=FAR + 1, sender=desk)


@pytest.mark.parametrize("field", ["target", "value", "data"])
def test_every_call_field_is_signed(w23, token, desk, lawyer, field):
    call = transfer(token, desk)
    sigs = w23.sign(w23.execution(call), top_two(w23))
    tampered = {
        "target": Call(lawyer.address, 0, call.data),
        "value": Call(call.target, 1, call.data),
        "data": transfer(token, desk, AMOUNT + 1),
    }[field]
    with ape.reverts("not an owner"):
        w23.execute(tampered, sigs=sigs, sender=desk)


def test_domain_separation(w23, make_wallet, token, desk, buyer, seller, lawyer, chain):
    assert bytes(w23.contract.domain_separator()) == w23.domain().separator()
    call = transfer(token, desk)
    execution = w23.execution(call)
    # another chain id
    other_chain = w23.sign(execution, top_two(w23), domain=w23.domain(chain.chain_id + 1))
    with ape.reverts("not an owner"):
        w23.execute(call, sigs=other_chain, sender=desk)
    # another wallet with the very same owners and threshold
    twin = make_wallet([buyer, seller, lawyer], 2)
    for_twin = twin.sign(twin.execution(call), top_two(twin))
    with ape.reverts("not an owner"):
        w23.execute(call, sigs=for_twin, sender=desk)
    twin.execute(call, sigs=for_twin, sender=desk)  # valid where it was meant
    assert twin.nonce() == 1 and w23.nonce() == 0


def test_high_s_signature_rejected(w23, token, desk):
    call = transfer(token, desk)
    digest = w23.execution(call).digest(w23.domain())
    a, b = top_two(w23)
    good = [Signature.ecdsa(digest, a.private_key), Signature.ecdsa(digest, b.private_key)]
    malleated = [good[0].with_high_s(), good[1]]
    # the malleated twin recovers the same signer for a bare ecrecover ...
    assert Account._recover_hash(digest, vrs=(malleated[0].v, malleated[0].r, malleated[0].s)) == a.address
    # ... but the wallet only accepts the canonical (low-s) one
    with ape.reverts("signature s too high"):
        w23.execute(call, sigs=pack_signatures(malleated), sender=desk)
    w23.execute(call, sigs=pack_signatures(good), sender=desk)


@pytest.mark.parametrize("v", [2, 26, 29, 31, 255])
def test_bad_v_rejected(w23, token, desk, v):
    call = transfer(token, desk)
    digest = w23.execution(call).digest(w23.domain())
    a, b = top_two(w23)
    sig = Signature.ecdsa(digest, a.private_key)
    bad = Signature(sig.signer, sig.kind, sig.r, sig.s, v)
    with ape.reverts("invalid signature v"):
        w23.execute(call, sigs=pack_signatures([bad, Signature.ecdsa(digest, b.private_key)]), sender=desk)


def test_unsorted_signatures_rejected(w23, token, desk):
    call = transfer(token, desk)
    execution = w23.execution(call)
    low, high = top_two(w23)
    unsorted = w23.sign(execution, [high, low], sort=False)
    snap = snapshot(w23, token, [desk])
    with ape.reverts("signers not ascending"):
        w23.execute(call, sigs=unsorted, sender=desk)
    assert snapshot(w23, token, [desk]) == snap


def test_duplicate_signature_rejected(w23, token, desk):
    call = transfer(token, desk)
    owner = top_two(w23)[0]
    twice = w23.sign(w23.execution(call), [owner, owner], sort=False)
    with ape.reverts("signers not ascending"):
        w23.execute(call, sigs=twice, sender=desk)


def test_non_owner_signature_rejected(w23, token, desk, attacker, accounts):
    call = transfer(token, desk)
    execution = w23.execution(call)
    owner = top_two(w23)[0]
    # wherever the non-owner sorts (before, between or after the owners), it is not counted
    for outsider in (attacker, accounts[9], accounts[10], accounts[11]):
        sigs = w23.sign(execution, [owner, outsider])
        with ape.reverts("not an owner"):
            w23.execute(call, sigs=sigs, sender=desk)
    assert w23.nonce() == 0


def test_below_threshold_rejected(w23, token, desk):
    call = transfer(token, desk)
    one = w23.sign(w23.execution(call), top_two(w23)[:1])
    with ape.reverts("not enough signatures"):
        w23.execute(call, sigs=one, sender=desk)
    with ape.reverts("not enough signatures"):
        w23.execute(call, sigs=b"", sender=desk)


def test_signatures_beyond_threshold_are_ignored(w23, token, desk):
    call = transfer(token, desk)
    all_three = w23.sign(w23.execution(call), w23.owners)
    w23.execute(call, sigs=all_three, sender=desk)
    assert w23.nonce() == 1


def test_one_of_one(w11, token, desk, approver, attacker):
    call = transfer(token, desk)
    w11.execute(call, [approver], sender=attacker)
    assert w11.nonce() == 1
    with ape.reverts("not an owner"):
        w11.execute(call, [attacker], sender=attacker)


def test_failing_call_reverts_whole_execution(w23, token, desk):
    # a call that reverts with a reason: the reason is bubbled up and nothing changes
    bad = w23.self_call("change_threshold", 0)
    snap = snapshot(w23, token, [desk])
    with ape.reverts("threshold out of range"):
        w23.execute(bad, top_two(w23), sender=desk)
    assert snapshot(w23, token, [desk]) == snap
    # a call that reverts without a reason (a transfer above the balance)
    with ape.reverts():
        w23.execute(transfer(token, desk, 10**30), top_two(w23), sender=desk)
    assert snapshot(w23, token, [desk]) == snap
    # in a batch, the calls before the failing one are undone too
    with ape.reverts("threshold out of range"):
        w23.execute_batch([transfer(token, desk), bad], top_two(w23), sender=desk)
    assert snapshot(w23, token, [desk]) == snap
    # the nonce was not consumed: the same transfer still executes at nonce 0
    w23.execute(transfer(token, desk), top_two(w23), sender=desk)
    assert w23.nonce() == 1


def test_calls_run_in_the_target_context(w23, token, desk, chain):
    """CALL, never DELEGATECALL: a call that writes storage writes the target's, not the wallet's."""
    slot0 = int.from_bytes(bytes(chain.provider.get_storage(w23.address, 0)), "big")
    before = token.balanceOf(w23.address)
    w23.execute(Call(token.address, 0, bytes(token.mint.encode_input(w23.address, 5))), top_two(w23), sender=desk)
    assert token.balanceOf(w23.address) == before + 5
    assert int.from_bytes(bytes(chain.provider.get_storage(w23.address, 0)), "big") == slot0 + 1  # nonce only
    assert slot0 >> 96 == int(w23.address, 16)  # the configuration source: the wallet's own code


# --------------------------------------------------------------------- on-chain approvals
def test_approve_hash_path(w23, token, desk, buyer, seller, lawyer, attacker):
    call = transfer(token, desk)
    digest = w23.execution(call).digest(w23.domain())
    with ape.reverts("not an owner"):
        w23.contract.approve_hash(digest, sender=attacker)
    receipt = w23.contract.approve_hash(digest, sender=seller)
    assert w23.contract.approved_hashes(seller, digest)
    event = receipt.decode_logs(w23.contract.HashApproved)[0]
    assert event.owner == seller.address and bytes(event.hash) == digest
    # seller approved on chain, lawyer signs; a relayer submits
    sigs = pack_signatures([Signature.approved(seller), Signature.ecdsa(digest, lawyer.private_key)])
    w23.execute(call, sigs=sigs, sender=attacker)
    assert w23.nonce() == 1


def test_approved_entry_without_approval_rejected(w23, token, desk, seller, lawyer, attacker):
    call = transfer(token, desk)
    digest = w23.execution(call).digest(w23.domain())
    sigs = pack_signatures([Signature.approved(seller), Signature.ecdsa(digest, lawyer.private_key)])
    with ape.reverts("hash not approved"):
        w23.execute(call, sigs=sigs, sender=attacker)
    # ... unless the owner itself submits the execution
    w23.execute(call, sigs=sigs, sender=seller)
    assert w23.nonce() == 1


def test_approved_entry_of_a_non_owner_rejected(w23, token, desk, lawyer, attacker):
    call = transfer(token, desk)
    digest = w23.execution(call).digest(w23.domain())
    sigs = pack_signatures([Signature.approved(attacker), Signature.ecdsa(digest, lawyer.private_key)])
    with ape.reverts("not an owner"):
        w23.execute(call, sigs=sigs, sender=attacker)
    zero = pack_signatures(
        [Signature(ZERO, Kind.APPROVED, 0, 0, 1), Signature.ecdsa(digest, lawyer.private_key)], sort=False
    )
    with ape.reverts("invalid signer"):
        w23.execute(call, sigs=zero, sender=attacker)


# ------------------------------------------------------------------ EIP-1271 contract owners
@pytest.fixture(scope="module")
def nested(make_wallet, buyer, seller, lawyer, approver):
    """An outer 2-of-3 whose owners are buyer, seller and an inner 2-of-2 wallet (lawyer, approver)."""
    inner = make_wallet([lawyer, approver], 2, fund=0)
    outer = make_wallet([buyer, seller, inner.contract], 2)
    return outer, inner


def inner_signature(inner: Wallet, outer_digest: bytes, signers) -> Signature:
    """The inner wallet's EIP-1271 signature over the outer digest."""
    d = message_digest(inner.domain(), outer_digest)
    return Signature.contract(inner.address, pack_signatures([Signature.ecdsa(d, a.private_key) for a in signers]))


def test_multisig_owner_signs_through_eip1271(nested, token, desk, buyer, lawyer, approver):
    outer, inner = nested
    call = transfer(token, desk)
    digest = outer.execution(call).digest(outer.domain())
    sigs = pack_signatures(
        [Signature.ecdsa(digest, buyer.private_key), inner_signature(inner, digest, [lawyer, approver])]
    )
    before = token.balanceOf(desk)
    outer.execute(call, sigs=sigs, sender=desk)
    assert token.balanceOf(desk) == before + AMOUNT and outer.nonce() == 1
    # the same in a batch
    call2 = transfer(token, desk, 3)
    digest2 = outer.execution([call2]).digest(outer.domain())
    sigs2 = pack_signatures(
        [Signature.ecdsa(digest2, buyer.private_key), inner_signature(inner, digest2, [lawyer, approver])]
    )
    outer.execute_batch([call2], sigs=sigs2, sender=desk)
    assert outer.nonce() == 2


def test_multisig_owner_with_too_few_inner_signatures_rejected(nested, token, desk, buyer, lawyer):
    outer, inner = nested
    call = transfer(token, desk)
    digest = outer.execution(call).digest(outer.domain())
    sigs = pack_signatures([Signature.ecdsa(digest, buyer.private_key), inner_signature(inner, digest, [lawyer])])
    with ape.reverts("invalid contract signature"):
        outer.execute(call, sigs=sigs, sender=desk)
    assert outer.nonce() == 0


def test_contract_signature_checks(make_wallet, mock1271, token, desk, buyer):
    wallet = make_wallet([buyer, mock1271], 2)
    call = transfer(token, desk)
    digest = wallet.execution(call).digest(wallet.domain())
    blob = b"mock signature"
    sigs = pack_signatures([Signature.ecdsa(digest, buyer.private_key), Signature.contract(mock1271, blob)])
    with ape.reverts("invalid contract signature"):  # the mock answers 0xffffffff
        wallet.execute(call, sigs=sigs, sender=desk)
    mock1271.set_valid(digest, blob, True, sender=desk)
    mock1271.set_mode(2, sender=desk)
    with ape.reverts("invalid contract signature"):  # the mock reverts
        wallet.execute(call, sigs=sigs, sender=desk)
    mock1271.set_mode(0, sender=desk)
    # the offset of the data must point past the entries, inside the signatures
    static = bytearray(sigs[:130])
    for bad_offset in (64, len(sigs), 2**64):
        entry = 65 * (0 if int(mock1271.address, 16) < int(buyer.address, 16) else 1)
        tampered = bytearray(sigs)
        tampered[entry + 32 : entry + 64] = bad_offset.to_bytes(32, "big")
        with ape.reverts("contract signature out of bounds"):
            wallet.execute(call, sigs=bytes(tampered), sender=desk)
    # a length running past the end
    too_long = bytes(static) + (len(blob) + 1).to_bytes(32, "big") + blob
    with ape.reverts("contract signature out of bounds"):
        wallet.execute(call, sigs=too_long, sender=desk)
    wallet.execute(call, sigs=sigs, sender=desk)
    assert wallet.nonce() == 1


def test_contract_signature_of_an_eoa_owner_rejected(w23, token, desk):
    call = transfer(token, desk)
    digest = w23.execution(call).digest(w23.domain())
    low, high = top_two(w23)
    sigs = pack_signatures([Signature.contract(low, b"\x01" * 65), Signature.ecdsa(digest, high.private_key)])
    with ape.reverts("invalid contract signature"):
        w23.execute(call, sigs=sigs, sender=desk)


# ------------------------------------------------------------------------ owner management
@pytest.mark.parametrize(
    "method, args",
    [
        ("add_owner", ("attacker", 1)),
        ("remove_owner", ("buyer", 1)),
        ("replace_owner", ("buyer", "attacker")),
        ("change_threshold", (1,)),
    ],
)
def test_owner_changes_only_through_the_wallet(w23, buyer, attacker, method, args):
    actors = {"attacker": attacker.address, "buyer": buyer.address}
    resolved = [actors.get(a, a) if isinstance(a, str) else a for a in args]
    for sender in (attacker, buyer):  # neither an outsider nor an owner may call directly
        with ape.reverts("only the wallet itself"):
            getattr(w23.contract, method)(*resolved, sender=sender)
    assert w23.contract.threshold() == 2 and list(w23.contract.get_owners()) == sorted_addrs(*w23.owners)


def test_add_owner(w23, token, desk, approver, chain):
    receipt = w23.execute(w23.self_call("add_owner", approver, 3), top_two(w23), sender=desk)
    assert list(w23.contract.get_owners()) == sorted_addrs(*w23.owners, approver)
    assert w23.contract.threshold() == 3 and w23.contract.is_owner(approver)
    assert [e.owner for e in receipt.decode_logs(w23.contract.OwnerAdded)] == [approver.address]
    assert [e.threshold for e in receipt.decode_logs(w23.contract.ThresholdChanged)] == [3]
    # the configuration now lives in a data contract that does nothing when called
    source = int.from_bytes(bytes(chain.provider.get_storage(w23.address, 0)), "big") >> 96
    code = bytes(chain.provider.get_code(to_checksum_address(source.to_bytes(20, "big"))))
    assert code[0] == 0 and code[10:] == Config.build([*w23.owners, approver], 3).encode()
    # the nonce went on; three signatures are needed now, and the new owner counts
    assert w23.nonce() == 1
    call = transfer(token, desk)
    with ape.reverts("not enough signatures"):
        w23.execute(call, top_two(w23), sender=desk)
    w23.execute(call, [*top_two(w23), approver], sender=desk)
    assert w23.nonce() == 2


def test_remove_owner(w23, token, desk, buyer, seller, lawyer):
    receipt = w23.execute(w23.self_call("remove_owner", lawyer, 1), top_two(w23), sender=desk)
    assert list(w23.contract.get_owners()) == sorted_addrs(buyer, seller)
    assert w23.contract.threshold() == 1 and not w23.contract.is_owner(lawyer)
    assert [e.owner for e in receipt.decode_logs(w23.contract.OwnerRemoved)] == [lawyer.address]
    call = transfer(token, desk)
    with ape.reverts("not an owner"):
        w23.execute(call, [lawyer], sender=desk)
    w23.execute(call, [seller], sender=desk)


def test_replace_owner(w23, token, desk, buyer, seller, lawyer, approver):
    receipt = w23.execute(w23.self_call("replace_owner", buyer, approver), top_two(w23), sender=desk)
    assert list(w23.contract.get_owners()) == sorted_addrs(seller, lawyer, approver)
    assert w23.contract.threshold() == 2
    assert [e.owner for e in receipt.decode_logs(w23.contract.OwnerRemoved)] == [buyer.address]
    assert [e.owner for e in receipt.decode_logs(w23.contract.OwnerAdded)] == [approver.address]
    assert receipt.decode_logs(w23.contract.ThresholdChanged) == []
    call = transfer(token, desk)
    with ape.reverts("not an owner"):
        w23.execute(
            call, [buyer, seller] if int(buyer.address, 16) < int(seller.address, 16) else [seller, buyer], sender=desk
        )
    w23.execute(call, [approver, lawyer], sender=desk)


def test_change_threshold(w23, token, desk, buyer, seller, lawyer):
    receipt = w23.execute(w23.self_call("change_threshold", 3), top_two(w23), sender=desk)
    assert w23.contract.threshold() == 3
    assert [e.threshold for e in receipt.decode_logs(w23.contract.ThresholdChanged)] == [3]
    w23.execute(transfer(token, desk), [buyer, seller, lawyer], sender=desk)
    w23.execute(w23.self_call("change_threshold", 1), [buyer, seller, lawyer], sender=desk)
    w23.execute(transfer(token, desk), [lawyer], sender=desk)
    assert w23.nonce() == 4


@pytest.mark.parametrize(
    "method, args, reason",
    [
        ("change_threshold", (0,), "threshold out of range"),
        ("change_threshold", (4,), "threshold out of range"),
        ("add_owner", ("approver", 0), "threshold out of range"),
        ("add_owner", ("approver", 5), "threshold out of range"),
        ("add_owner", ("buyer", 2), "already an owner"),
        ("add_owner", (ZERO, 2), "zero owner"),
        ("remove_owner", ("approver", 1), "not an owner"),
        ("remove_owner", ("buyer", 3), "threshold out of range"),
        ("replace_owner", ("approver", "attacker"), "not an owner"),
        ("replace_owner", ("buyer", "seller"), "already an owner"),
        ("replace_owner", ("buyer", ZERO), "zero owner"),
        ("add_owner", ("wallet", 2), "the wallet cannot own itself"),
        ("replace_owner", ("buyer", "wallet"), "the wallet cannot own itself"),
    ],
)
def test_owner_change_rejections(w23, token, desk, buyer, seller, approver, attacker, method, args, reason):
    actors = {
        "approver": approver.address,
        "buyer": buyer.address,
        "seller": seller.address,
        "attacker": attacker.address,
        "wallet": w23.address,
    }
    resolved = [actors.get(a, a) if isinstance(a, str) else a for a in args]
    snap = snapshot(w23, token, [desk])
    with ape.reverts(reason):
        w23.execute(w23.self_call(method, *resolved), top_two(w23), sender=desk)
    assert snapshot(w23, token, [desk]) == snap


def test_remove_last_owner_rejected(w11, approver, desk):
    with ape.reverts("threshold out of range"):
        w11.execute(w11.self_call("remove_owner", approver, 1), [approver], sender=desk)
    with ape.reverts("threshold out of range"):
        w11.execute(w11.self_call("remove_owner", approver, 0), [approver], sender=desk)


def test_at_most_twenty_owners(make_wallet, accounts, desk):
    keys = [Account.from_key((0xB0B + i).to_bytes(32, "big")) for i in range(21)]

    class Key:  # a signing owner that is not an ape account
        def __init__(self, acct):
            self.address, self.private_key = acct.address, acct.key

    owners = [Key(k) for k in keys[:20]]
    wallet = make_wallet(owners, 1, fund=0)
    signer = sorted(owners, key=lambda o: int(o.address, 16))[-1]  # the last in the scan
    with ape.reverts("too many owners"):
        wallet.execute(wallet.self_call("add_owner", keys[20].address, 1), [signer], sender=desk)
    leaving = sorted(owners, key=lambda o: int(o.address, 16))[0]
    wallet.execute(wallet.self_call("remove_owner", leaving.address, 1), [signer], sender=desk)
    wallet.execute(wallet.self_call("add_owner", keys[20].address, 1), [signer], sender=desk)
    assert len(wallet.contract.get_owners()) == 20


# -------------------------------------------------------------------------------- EIP-1271
def test_is_valid_signature(w23, buyer, seller, lawyer, attacker):
    h = keccak(text="an offer")
    digest = message_digest(w23.domain(), h)
    assert bytes(w23.contract.message_digest(h)) == digest
    sigs = pack_signatures([Signature.ecdsa(digest, buyer.private_key), Signature.ecdsa(digest, lawyer.private_key)])
    assert bytes(w23.contract.isValidSignature(h, sigs)) == MAGIC
    with ape.reverts("not an owner"):  # signatures over another hash
        w23.contract.isValidSignature(keccak(text="another offer"), sigs)
    with ape.reverts("not enough signatures"):
        w23.contract.isValidSignature(h, sigs[:65])
    with ape.reverts("not an owner"):
        w23.contract.isValidSignature(
            h,
            pack_signatures(
                [Signature.ecdsa(digest, buyer.private_key), Signature.ecdsa(digest, attacker.private_key)]
            ),
        )
    # a signature over the raw hash (not the wallet's EIP-712 message) is not valid
    raw = pack_signatures([Signature.ecdsa(h, buyer.private_key), Signature.ecdsa(h, seller.private_key)])
    with ape.reverts("not an owner"):
        w23.contract.isValidSignature(h, raw)


def test_is_valid_signature_with_approved_message(w23, seller, lawyer, attacker):
    h = keccak(text="approve deal 7")
    digest = message_digest(w23.domain(), h)
    sigs = pack_signatures([Signature.approved(seller), Signature.ecdsa(digest, lawyer.private_key)])
    # the msg.sender shortcut does not apply to isValidSignature
    with ape.reverts("hash not approved"):
        w23.contract.isValidSignature(h, sigs, sender=seller)
    w23.contract.approve_hash(digest, sender=seller)
    assert bytes(w23.contract.isValidSignature(h, sigs, sender=attacker)) == MAGIC


def test_nested_wallet_is_valid_signature(nested, buyer, lawyer, approver):
    outer, inner = nested
    h = keccak(text="desk admin action")
    digest = message_digest(outer.domain(), h)
    sigs = pack_signatures(
        [Signature.ecdsa(digest, buyer.private_key), inner_signature(inner, digest, [lawyer, approver])]
    )
    assert bytes(outer.contract.isValidSignature(h, sigs)) == MAGIC
    weak = pack_signatures([Signature.ecdsa(digest, buyer.private_key), inner_signature(inner, digest, [approver])])
    with ape.reverts("invalid contract signature"):
        outer.contract.isValidSignature(h, weak)


# ------------------------------------------------------------------------------- client
def test_typed_data_document_matches_digest(w23, token, desk):
    execution = w23.execution([transfer(token, desk), Call(desk.address, 5, b"\x01\x02")], nonce=3, deadline=1234)
    signable = encode_typed_data(full_message=execution.typed_data(w23.domain()))
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == execution.digest(w23.domain())


# ------------------------------------------------------------- shared signature modules
@pytest.fixture(scope="module")
def checker(project, desk):
    return desk.deploy(project.MockSignatureChecker)


def test_eip712_module(checker, chain):
    domain = Domain(chain.chain_id, checker.address, name="nexotc offers", version="2")
    assert bytes(checker.domain_separator("nexotc offers", "2")) == domain.separator()
    struct_hash = keccak(text="struct")
    assert bytes(checker.digest(domain.separator(), struct_hash)) == domain.digest(struct_hash)


def test_ecdsa_module(checker, buyer):
    digest = keccak(text="offer")
    sig = Signature.ecdsa(digest, buyer.private_key)
    assert checker.ecdsa_signer(digest, sig.v, sig.r, sig.s) == buyer.address
    high = sig.with_high_s()
    with ape.reverts("signature s too high"):
        checker.ecdsa_signer(digest, high.v, high.r, high.s)
    with ape.reverts("invalid signature v"):
        checker.ecdsa_signer(digest, 29, sig.r, sig.s)
    with ape.reverts("invalid signature"):
        checker.ecdsa_signer(digest, 27, 0, 1)


def test_is_valid_now_module(checker, w11, mock1271, buyer, approver, attacker, desk):
    digest = keccak(text="offer")
    sig = Signature.ecdsa(digest, buyer.private_key)
    raw = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v])
    assert checker.is_valid_now(buyer, digest, raw)
    assert not checker.is_valid_now(attacker, digest, raw)  # someone else's signature
    high = sig.with_high_s()
    assert not checker.is_valid_now(
        buyer, digest, high.r.to_bytes(32, "big") + high.s.to_bytes(32, "big") + bytes([high.v])
    )
    assert not checker.is_valid_now(buyer, digest, raw[:64])  # 64 bytes: not accepted
    assert not checker.is_valid_now(ZERO, digest, raw[:64] + b"\x1d")
    assert not checker.erc1271_valid(buyer, digest, raw)  # an EOA answers nothing
    # a contract signer: a MultiSig (its owner signs the wallet's message digest of `digest`)
    inner = pack_signatures([Signature.ecdsa(message_digest(w11.domain(), digest), approver.private_key)])
    assert checker.is_valid_now(w11.address, digest, inner)
    assert not checker.is_valid_now(w11.address, keccak(text="other"), inner)  # the wallet reverts
    # a contract answering a wrong value, then the magic value
    assert not checker.is_valid_now(mock1271, digest, b"blob")
    mock1271.set_valid(digest, b"blob", True, sender=desk)
    assert checker.is_valid_now(mock1271, digest, b"blob")


# ------------------------------------------------------------------- attacks (security review)
def test_reentrant_replay_of_the_current_nonce_is_rejected(make_wallet, token, desk, buyer, seller, attacker):
    w = make_wallet([buyer, seller], 2)
    steal = transfer(token, attacker)
    inner = w.sign(w.execution(steal, nonce=0), [buyer, seller])  # valid for nonce 0
    # the outer execution (also nonce 0) calls execute again with the inner nonce-0 signatures
    outer = Call(w.address, 0, bytes(w.contract.execute.encode_input(steal.target, 0, FAR, inner, steal.data)))
    snap = snapshot(w, token, [attacker])
    with ape.reverts("not an owner"):  # the nonce is already 1 when the inner execution checks
        w.execute(outer, [buyer, seller], sender=desk)
    assert snapshot(w, token, [attacker]) == snap


def test_a_removed_owners_approval_stops_counting(make_wallet, token, desk, buyer, seller, lawyer):
    w = make_wallet([buyer, seller, lawyer], 2)
    pay = transfer(token, desk)
    later = w.execution(pay, nonce=1).digest(w.domain())
    w.contract.approve_hash(later, sender=lawyer)  # approved while still an owner
    w.execute(w.self_call("remove_owner", lawyer.address, 2), [buyer, seller], sender=desk)
    sigs = pack_signatures([Signature.ecdsa(later, buyer.private_key), Signature.approved(lawyer)])
    snap = snapshot(w, token, [desk])
    for sender in (desk, lawyer):  # nor through the sender shortcut
        with ape.reverts("not an owner"):
            w.execute(pay, sigs=sigs, sender=sender)
    assert snapshot(w, token, [desk]) == snap


def test_an_approval_serves_only_its_own_wallet(make_wallet, token, desk, buyer, seller):
    a, b = make_wallet([buyer, seller], 2), make_wallet([buyer, seller], 2)  # twins: same owners, other salt
    pay = transfer(token, desk)
    a_digest = a.execution(pay).digest(a.domain())
    a.contract.approve_hash(a_digest, sender=seller)
    b.contract.approve_hash(a_digest, sender=seller)  # approving A's digest on B does nothing for B either
    b_digest = b.execution(pay).digest(b.domain())
    sigs = pack_signatures([Signature.ecdsa(b_digest, buyer.private_key), Signature.approved(seller)])
    with ape.reverts("hash not approved"):
        b.execute(pay, sigs=sigs, sender=desk)
    assert b.nonce() == 0


def test_execution_and_message_signatures_do_not_cross(make_wallet, token, desk, buyer, seller):
    w = make_wallet([buyer, seller], 2)
    pay = transfer(token, desk)
    digest = w.execution(pay).digest(w.domain())
    with ape.reverts("not an owner"):  # execution signatures are no EIP-1271 signature of the digest
        w.contract.isValidSignature(digest, w.sign(w.execution(pay), [buyer, seller]))
    md = message_digest(w.domain(), digest)
    message_sigs = pack_signatures([Signature.ecdsa(md, o.private_key) for o in (buyer, seller)])
    assert bytes(w.contract.isValidSignature(digest, message_sigs)) == MAGIC
    with ape.reverts("not an owner"):  # and message signatures execute nothing
        w.execute(pay, sigs=message_sigs, sender=desk)
    w.contract.approve_hash(md, sender=seller)  # approving the message digest approves no execution
    with ape.reverts("hash not approved"):
        w.execute(
            pay,
            sigs=pack_signatures([Signature.ecdsa(digest, buyer.private_key), Signature.approved(seller)]),
            sender=desk,
        )
    assert w.nonce() == 0


def test_a_relayers_gas_limit_cannot_use_the_nonce_without_the_call(make_wallet, token, desk, buyer, seller, chain):
    """At every gas limit the execution either happens in full (nonce + 1, transfer made) or changes nothing."""
    w = make_wallet([buyer, seller], 2)
    web3 = chain.provider.web3
    fresh = "0x00000000000000000000000000000000000B0b01"  # a fresh recipient: the token call is the dear part
    pay = transfer(token, fresh)
    sigs = w.sign(w.execution(pay), [buyer, seller])
    data = "0x" + bytes(w.contract.execute.encode_input(pay.target, 0, FAR, sigs, pay.data)).hex()
    needed = web3.eth.estimate_gas({"from": desk.address, "to": w.address, "data": data})
    failures = 0
    for gas in range(needed - 40_000, needed + 1, 1_000):
        balance, nonce = token.balanceOf(fresh), w.nonce()
        tx = web3.eth.send_transaction({"from": desk.address, "to": w.address, "data": data, "gas": gas})
        if web3.eth.wait_for_transaction_receipt(tx)["status"] == 1:
            assert (w.nonce(), token.balanceOf(fresh)) == (nonce + 1, balance + AMOUNT)
            break
        assert (w.nonce(), token.balanceOf(fresh)) == (nonce, balance)
        failures += 1
    assert failures > 10 and w.nonce() == 1
