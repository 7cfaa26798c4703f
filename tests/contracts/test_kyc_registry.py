"""KYCRegistry with real Groth16 proofs (contracts/Groth16Verifier.vy): a valid proof records an
attestation; every bad submission reverts with its reason and records nothing; issuers, roots, policies
and the admin, each with a positive and a negative case.

Proofs are made once per module (a warm snarkjs prover) at a clock `NOW` a little ahead of the module's
start; a test moves the chain to NOW + 1 before submitting (the registry accepts a proof's `now` within
5 minutes of block time)."""

from __future__ import annotations

import ape
import pytest
from dealkit import ZERO, addr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kyckit import DAY, EU_PRO, IR, KP, KYB_ONLY, Credentials, R, register_args, submit_args
from zkkit import tampered

from nexotc_client.zk.credential import MASK_BUSINESSES, Policy
from nexotc_client.zk.groth16 import Q
from nexotc_client.zk.prover import Prover, WitnessError

LAX = Policy()  # any KYC level, any entity, no deny list
S1 = 0xA11CE  # a scope (a deal's address in the gate tests)
S2 = 0xB0B
WINDOW = 3_600


@pytest.fixture(scope="module")
def issuer(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def issuer2(accounts):
    return accounts[10]


@pytest.fixture(scope="module")
def t0(chain):
    return chain.pending_timestamp


@pytest.fixture(scope="module")
def NOW(t0):  # noqa: N802
    return t0 + 600


@pytest.fixture(scope="module")
def creds(t0):
    return Credentials.build(t0)


@pytest.fixture(scope="module")
def registry(project, desk, issuer, creds):
    """Admin `desk` (a MultiSig in production), issuer granted, its root published, two policies:
    #1 EU_PRO (level >= 2, accredited, not KP/IR), #2 KYB_ONLY."""
    reg = desk.deploy(project.KYCRegistry, desk, WINDOW)
    reg.set_issuer(issuer, True, "Acme KYC", sender=desk)
    reg.publish_root(creds.tree.root, sender=issuer)
    reg.register_policy(*register_args(EU_PRO, "EU professional"), sender=desk)
    reg.register_policy(*register_args(KYB_ONLY, "KYB only"), sender=issuer)
    return reg


@pytest.fixture(scope="module")
def proofs(creds, NOW, buyer, seller, attacker):  # noqa: N803
    """Five real proofs: the buyer's (Swiss credential) in S1; the same credential bound to the attacker;
    the buyer's renewal (later expiry); the seller's KYB proof of policy #2; a 30-second validity; and one
    whose validity ends before its own clock (the circuit leaves now < valid_until to the registry)."""
    with Prover(progress=False) as prover:
        return {
            "buyer": creds.prove(prover, "swiss", buyer.address, S1, NOW, NOW + DAY),
            "attacker_same_credential": creds.prove(prover, "swiss", attacker.address, S1, NOW, NOW + DAY),
            "buyer_renewal": creds.prove(prover, "swiss", buyer.address, S1, NOW, NOW + 2 * DAY),
            "seller_kyb": creds.prove(prover, "uk_business", seller.address, S1, NOW, NOW + DAY, KYB_ONLY),
            "brief": creds.prove(prover, "swiss", seller.address, S2, NOW, NOW + 30),
            "ends_before_now": creds.prove(prover, "swiss", seller.address, S2, NOW + 200, NOW + 100),
            # the buyer in S1 under the lax policy: while its EU_PRO attestation is in force, and after it
            "buyer_lax": creds.prove(prover, "swiss", buyer.address, S1, NOW, NOW + 3 * DAY, LAX),
            "buyer_lax_later": creds.prove(prover, "swiss", buyer.address, S1, NOW + DAY + 60, NOW + 3 * DAY, LAX),
            # a second credential of the buyer in S1: a 60-second attestation, then one past the first's expiry
            "buyer_second_short": creds.prove(prover, "short", buyer.address, S1, NOW, NOW + 60),
            "buyer_second_longer": creds.prove(prover, "short", buyer.address, S1, NOW, NOW + DAY + 1),
        }


@pytest.fixture(scope="module", autouse=True)
def _setup_first(registry, proofs):
    """Deploy and prove before the first test's snapshot."""


@pytest.fixture
def at(chain):
    def move(timestamp: int) -> None:
        chain.pending_timestamp = timestamp

    return move


def recorded(registry, who, scope=S1) -> tuple:
    return tuple(registry.attestation(who, scope))


@pytest.fixture
def nothing_recorded(registry):
    """Revert with `reason` and leave the subject's attestation and the nullifier's owner as they were."""

    class Check:
        def __init__(self, args, who, reason):
            self.args, self.who, self.reason = args, who, reason

        def __enter__(self):
            scope, nullifier = self.args[0], self.args[3]
            self.before = (recorded(registry, self.who, scope % 2**256), registry.nullifier_owner(scope, nullifier))
            self.ctx = ape.reverts(self.reason)
            self.ctx.__enter__()

        def __exit__(self, *exc):
            result = self.ctx.__exit__(*exc)
            scope, nullifier = self.args[0], self.args[3]
            after = (recorded(registry, self.who, scope % 2**256), registry.nullifier_owner(scope, nullifier))
            assert after == self.before
            return result

    return Check


# ------------------------------------------------------------------ valid proofs
def test_valid_proof_records_the_attestation(registry, proofs, buyer, NOW, at):  # noqa: N803
    args = submit_args(proofs["buyer"], 1)
    at(NOW + 1)
    receipt = registry.submit_proof(*args, sender=buyer)
    [log] = receipt.decode_logs(registry.Attested)
    assert (addr(log.subject), log.scope, log.policy, log.expiry) == (buyer.address, S1, 1, NOW + DAY)
    assert (log.nullifier, log.audit_commitment, log.root) == (args[3], args[4], args[2])
    assert recorded(registry, buyer) == (NOW + DAY, 1)
    assert registry.is_compliant(buyer, S1, 1)
    assert not registry.is_compliant(buyer, S1, 2)  # another policy
    assert not registry.is_compliant(buyer, S2, 1)  # another scope
    assert addr(registry.nullifier_owner(S1, args[3])) == buyer.address


def test_attestation_expires_with_its_validity(registry, proofs, seller, NOW, at):  # noqa: N803
    args = submit_args(proofs["brief"], 1)
    at(NOW + 1)
    registry.submit_proof(*args, sender=seller)
    assert registry.is_compliant(seller, S2, 1)
    at(NOW + 31)
    ape.chain.mine()
    assert not registry.is_compliant(seller, S2, 1)


def test_proof_for_its_own_policy_is_accepted(registry, proofs, seller, NOW, at):  # noqa: N803
    at(NOW + 1)
    registry.submit_proof(*submit_args(proofs["seller_kyb"], 2), sender=seller)
    assert registry.is_compliant(seller, S1, 2) and not registry.is_compliant(seller, S1, 1)


def test_same_wallet_renews_with_a_later_expiry(registry, proofs, buyer, NOW, at, nothing_recorded):  # noqa: N803
    at(NOW + 1)
    registry.submit_proof(*submit_args(proofs["buyer_renewal"], 1), sender=buyer)
    assert recorded(registry, buyer) == (NOW + 2 * DAY, 1)
    # the shorter proof of the same credential cannot shorten or replay it
    args = submit_args(proofs["buyer"], 1)
    with nothing_recorded(args, buyer, "an attestation in force is only extended"):
        registry.submit_proof(*args, sender=buyer)


def test_an_attestation_in_force_cannot_switch_policy(registry, proofs, buyer, desk, NOW, at, nothing_recorded):  # noqa: N803
    """A deal checked the buyer's EU_PRO attestation: the buyer cannot trade it for a laxer policy's (which the
    deal does not accept) while it is in force; after it expired, a new attestation of any policy may follow."""
    lax = registry.register_policy(*register_args(LAX, "anyone"), sender=desk).decode_logs(registry.PolicyRegistered)
    lax_id = lax[0].policy
    at(NOW + 1)
    registry.submit_proof(*submit_args(proofs["buyer"], 1), sender=buyer)
    args = submit_args(proofs["buyer_lax"], lax_id)
    with nothing_recorded(args, buyer, "attested for another policy in this scope"):
        registry.submit_proof(*args, sender=buyer)
    assert registry.is_compliant(buyer, S1, 1)
    at(NOW + DAY + 61)
    registry.submit_proof(*submit_args(proofs["buyer_lax_later"], lax_id), sender=buyer)
    assert recorded(registry, buyer) == (NOW + 3 * DAY, lax_id)


def test_a_second_credential_cannot_shorten_an_attestation_in_force(
    registry,
    proofs,
    buyer,
    NOW,
    at,
    nothing_recorded,  # noqa: N803
):
    at(NOW + 1)
    registry.submit_proof(*submit_args(proofs["buyer"], 1), sender=buyer)
    short = submit_args(proofs["buyer_second_short"], 1)
    assert short[3] != submit_args(proofs["buyer"], 1)[3]  # another credential: another nullifier
    with nothing_recorded(short, buyer, "an attestation in force is only extended"):
        registry.submit_proof(*short, sender=buyer)
    assert recorded(registry, buyer) == (NOW + DAY, 1)
    # the same credential may extend it
    registry.submit_proof(*submit_args(proofs["buyer_second_longer"], 1), sender=buyer)
    assert recorded(registry, buyer) == (NOW + DAY + 1, 1)


# ------------------------------------------------------------ rejected proofs
def test_wrong_wallet_is_rejected(registry, proofs, attacker, NOW, at, nothing_recorded):  # noqa: N803
    args = submit_args(proofs["buyer"], 1)
    at(NOW + 1)
    with nothing_recorded(args, attacker, "invalid proof"):
        registry.submit_proof(*args, sender=attacker)


def test_reused_nullifier_is_rejected(registry, proofs, buyer, attacker, NOW, at, nothing_recorded):  # noqa: N803
    """The buyer's credential attests one wallet per scope: bound to the attacker's wallet it is refused."""
    at(NOW + 1)
    registry.submit_proof(*submit_args(proofs["buyer"], 1), sender=buyer)
    args = submit_args(proofs["attacker_same_credential"], 1)
    assert args[3] == submit_args(proofs["buyer"], 1)[3]  # same credential and scope: same nullifier
    with nothing_recorded(args, attacker, "nullifier used"):
        registry.submit_proof(*args, sender=attacker)
    assert not registry.is_compliant(attacker, S1, 1)
    # an identical resubmission by the buyer extends nothing either
    with nothing_recorded(submit_args(proofs["buyer"], 1), buyer, "an attestation in force is only extended"):
        registry.submit_proof(*submit_args(proofs["buyer"], 1), sender=buyer)


def test_unknown_root_is_rejected(registry, proofs, buyer, NOW, at, nothing_recorded):  # noqa: N803
    args = list(submit_args(proofs["buyer"], 1))
    args[2] = args[2] ^ 1
    at(NOW + 1)
    with nothing_recorded(args, buyer, "unknown root"):
        registry.submit_proof(*args, sender=buyer)


def test_superseded_root_stays_valid_for_the_window(registry, proofs, issuer, buyer, creds, NOW, at):  # noqa: N803
    tree = creds.tree.__class__.from_json(creds.tree.to_json())
    tree.insert(12345)  # a new credential: a new root
    at(NOW)
    registry.publish_root(tree.root, sender=issuer)
    assert registry.current_root(issuer) == tree.root
    at(NOW + 1)
    registry.submit_proof(*submit_args(proofs["buyer"], 1), sender=buyer)  # the old root, within the window
    assert registry.is_compliant(buyer, S1, 1)


def test_expired_root_is_rejected(registry, proofs, issuer, buyer, creds, desk, NOW, at, nothing_recorded):  # noqa: N803
    """Revocation: a new root without the leaf; once the window passed, the old root is refused."""
    registry.set_root_window(0, sender=desk)
    tree = creds.tree.__class__.from_json(creds.tree.to_json())
    tree.remove(creds.index["swiss"])
    at(NOW)
    registry.publish_root(tree.root, sender=issuer)
    at(NOW + 1)
    args = submit_args(proofs["buyer"], 1)
    issuer_of, until = registry.root_status(args[2])
    assert addr(issuer_of) == issuer.address and until == NOW
    with nothing_recorded(args, buyer, "root expired"):
        registry.submit_proof(*args, sender=buyer)


def test_revoking_the_issuer_expires_its_roots(registry, proofs, issuer, buyer, desk, NOW, at, nothing_recorded):  # noqa: N803
    at(NOW)
    receipt = registry.set_issuer(issuer, False, "", sender=desk)
    assert [log.root for log in receipt.decode_logs(registry.RootExpired)] == [submit_args(proofs["buyer"], 1)[2]]
    assert registry.current_root(issuer) == 0
    at(NOW + 1)
    args = submit_args(proofs["buyer"], 1)
    with nothing_recorded(args, buyer, "root expired"):
        registry.submit_proof(*args, sender=buyer)


def test_expired_validity_is_rejected(registry, proofs, seller, NOW, at, nothing_recorded):  # noqa: N803
    args = submit_args(proofs["brief"], 1)
    at(NOW + 31)
    with nothing_recorded(args, seller, "validity already ended"):
        registry.submit_proof(*args, sender=seller)


def test_validity_ending_before_the_proof_time_is_rejected(registry, proofs, seller, NOW, at, nothing_recorded):  # noqa: N803
    """now < valid_until is the registry's half of "not expired at now" (the circuit has valid_until <=
    expires_at): a valid proof with valid_until < now is refused even while both are near block time."""
    args = submit_args(proofs["ends_before_now"], 1)
    assert (args[5], args[6]) == (NOW + 200, NOW + 100)
    at(NOW + 50)
    with nothing_recorded(args, seller, "validity ends before the proof time"):
        registry.submit_proof(*args, sender=seller)


def test_expired_credential_cannot_be_proven(creds, buyer):
    """The circuit has no witness for a credential at or after its expiry (with the registry's
    now < valid_until, that needs valid_until > expires_at), nor for an attestation that would outlive it."""
    expires = creds.creds["short"].expires_at
    with Prover(progress=False) as prover:
        with pytest.raises(WitnessError):
            prover.prove(creds.inputs("short", buyer.address, S1, expires, expires + 1))
        with pytest.raises(WitnessError):
            prover.prove(creds.inputs("short", buyer.address, S1, expires - 100, expires + 1))


def test_policy_not_met_cannot_be_proven(creds, buyer):
    """A North Korean credential cannot prove EU_PRO (denied jurisdiction); a Swiss individual cannot
    prove KYB_ONLY."""
    assert EU_PRO.violations(creds.creds["north_korean"]) == ["jurisdiction 408 denied"]
    with Prover(progress=False) as prover:
        with pytest.raises(WitnessError):
            prover.prove(creds.inputs("north_korean", buyer.address, S1, creds.t0, creds.t0 + DAY))
        with pytest.raises(WitnessError):
            prover.prove(creds.inputs("swiss", buyer.address, S1, creds.t0, creds.t0 + DAY, KYB_ONLY))


def test_proof_for_another_policy_is_rejected(registry, proofs, buyer, seller, NOW, at, nothing_recorded):  # noqa: N803
    at(NOW + 1)
    args = submit_args(proofs["buyer"], 2)  # an EU_PRO proof claimed as KYB_ONLY
    with nothing_recorded(args, buyer, "invalid proof"):
        registry.submit_proof(*args, sender=buyer)
    args = submit_args(proofs["seller_kyb"], 1)  # a KYB_ONLY proof claimed as EU_PRO
    with nothing_recorded(args, seller, "invalid proof"):
        registry.submit_proof(*args, sender=seller)
    args = submit_args(proofs["buyer"], 3)
    with nothing_recorded(args, buyer, "unknown policy"):
        registry.submit_proof(*args, sender=buyer)


@pytest.mark.parametrize(
    "index, label",
    [(0, "another scope (replay)"), (3, "nullifier"), (4, "audit commitment"), (5, "now"), (6, "valid until")],
)
def test_altered_public_input_is_rejected(registry, proofs, buyer, NOW, at, nothing_recorded, index, label):  # noqa: N803
    args = list(submit_args(proofs["buyer"], 1))
    args[index] = S2 if index == 0 else args[index] + 1
    at(NOW + 1)
    with nothing_recorded(args, buyer, "invalid proof"):
        registry.submit_proof(*args, sender=buyer)


def test_malformed_proofs_are_rejected(registry, proofs, buyer, NOW, at, nothing_recorded):  # noqa: N803
    """Off-curve and infinity points, coordinates >= q (the verifier's reasons), wrong but well-formed
    points ("invalid proof"), and a public input >= r."""
    args = submit_args(proofs["buyer"], 1)
    points = list(args[7])
    cases = [(label, bad) for label, bad, inputs in tampered(points, [0] * 6) if "public input" not in label]
    assert len(cases) >= 10
    reasons = {
        "A off the curve": "Groth16: A is not on the curve",
        "C off the curve": "Groth16: C is not on the curve",
        "A at infinity": "Groth16: A is the point at infinity",
        "B at infinity": "Groth16: B is the point at infinity",
        "C at infinity": "Groth16: C is the point at infinity",
        "coordinate >= q": "Groth16: proof coordinate >= q",
        "coordinate = q": "Groth16: proof coordinate >= q",
        # not a G2 point: the pairing precompile itself fails
        "B off the curve": "Groth16: B is not a valid G2 point",
        "B re/im swapped": "Groth16: B is not a valid G2 point",
        "B on the twist but outside G2": "Groth16: B is not a valid G2 point",
    }
    at(NOW + 1)
    for label, bad in cases:
        with nothing_recorded((*args[:7], bad), buyer, reasons.get(label, "invalid proof")):
            registry.submit_proof(*args[:7], bad, sender=buyer)
    over = list(args)
    over[4] = args[4] + R  # the same audit commitment mod r
    with nothing_recorded(over, buyer, "Groth16: public input >= r"):
        registry.submit_proof(*over, sender=buyer)


def test_proof_time_must_be_near_block_time(registry, proofs, buyer, NOW, at, nothing_recorded):  # noqa: N803
    args = submit_args(proofs["buyer"], 1)
    at(NOW - 301)
    with nothing_recorded(args, buyer, "proof time in the future"):
        registry.submit_proof(*args, sender=buyer)
    at(NOW + 301)
    with nothing_recorded(args, buyer, "proof time too old"):
        registry.submit_proof(*args, sender=buyer)


# --------------------------------------------------- prepared (root, policy) bases
def test_prepared_base_verifies_the_same_statement(registry, creds, proofs, buyer, attacker, NOW, at):  # noqa: N803
    """Anyone may prepare a published root with a registered policy; submissions then verify from the
    stored base point and record exactly what an unprepared one records."""
    root = creds.tree.root
    assert not registry.prepared(root, 1)
    receipt = registry.prepare(root, 1, sender=attacker)
    [log] = receipt.decode_logs(registry.Prepared)
    assert (log.root, log.policy, addr(log.caller)) == (root, 1, attacker.address)
    assert registry.prepared(root, 1) and not registry.prepared(root, 2)
    args = submit_args(proofs["buyer"], 1)
    at(NOW + 1)
    [attested] = registry.submit_proof(*args, sender=buyer).decode_logs(registry.Attested)
    assert (attested.policy, attested.expiry, attested.nullifier) == (1, NOW + DAY, args[3])
    assert registry.is_compliant(buyer, S1, 1) and addr(registry.nullifier_owner(S1, args[3])) == buyer.address


def test_prepared_base_rejects_what_the_full_check_rejects(
    registry,
    creds,
    proofs,
    buyer,
    seller,
    NOW,  # noqa: N803
    at,
    nothing_recorded,
):
    registry.prepare(creds.tree.root, 1, sender=seller)
    registry.prepare(creds.tree.root, 2, sender=seller)
    at(NOW + 1)
    good = submit_args(proofs["buyer"], 1)
    for index in (0, 3, 4, 5, 6):  # scope, nullifier, audit commitment, now, valid until
        args = list(good)
        args[index] = S2 if index == 0 else args[index] + 1
        with nothing_recorded(args, buyer, "invalid proof"):
            registry.submit_proof(*args, sender=buyer)
    # a proof of policy #2 submitted as #1 (and #1's as #2): the base commits to the policy word
    with nothing_recorded(submit_args(proofs["seller_kyb"], 1), seller, "invalid proof"):
        registry.submit_proof(*submit_args(proofs["seller_kyb"], 1), sender=seller)
    with nothing_recorded(submit_args(proofs["buyer"], 2), buyer, "invalid proof"):
        registry.submit_proof(*submit_args(proofs["buyer"], 2), sender=buyer)
    off_curve = list(good[7])
    off_curve[1] = (off_curve[1] + 1) % Q
    with nothing_recorded((*good[:7], off_curve), buyer, "Groth16: A is not on the curve"):
        registry.submit_proof(*good[:7], off_curve, sender=buyer)
    over = list(good)
    over[3] = good[3] + R
    with nothing_recorded(over, buyer, "Groth16: public input >= r"):
        registry.submit_proof(*over, sender=buyer)
    registry.submit_proof(*submit_args(proofs["seller_kyb"], 2), sender=seller)
    assert registry.is_compliant(seller, S1, 2)


def test_prepare_refuses_unknown_or_expired_roots_and_policies(registry, creds, desk, attacker, chain):
    root = creds.tree.root
    for bad_root, policy, reason in ((root + 1, 1, "unknown root"), (root, 3, "unknown policy")):
        with ape.reverts(reason):
            registry.prepare(bad_root, policy, sender=attacker)
        assert not registry.prepared(bad_root, policy)
    registry.prepare(root, 1, sender=attacker)
    with ape.reverts("already prepared"):
        registry.prepare(root, 1, sender=attacker)
    registry.expire_root(root, sender=desk)
    chain.mine()
    with ape.reverts("root expired"):
        registry.prepare(root, 2, sender=attacker)
    assert not registry.prepared(root, 2)


# ------------------------------------------------------------ issuers, roots
def test_only_the_admin_grants_and_revokes_issuers(registry, desk, attacker, issuer2):
    with ape.reverts("not the admin"):
        registry.set_issuer(issuer2, True, "", sender=attacker)
    assert not registry.is_issuer(issuer2)
    receipt = registry.set_issuer(issuer2, True, "Beta KYB", sender=desk)
    [log] = receipt.decode_logs(registry.IssuerSet)
    assert (addr(log.issuer), log.active, log.label) == (issuer2.address, True, "Beta KYB")
    with ape.reverts("issuer already set"):
        registry.set_issuer(issuer2, True, "", sender=desk)
    with ape.reverts("zero issuer"):
        registry.set_issuer(ZERO, True, "", sender=desk)


def test_only_issuers_publish_their_own_roots(registry, issuer, issuer2, attacker, desk, creds):
    with ape.reverts("not an issuer"):
        registry.publish_root(777, sender=attacker)
    registry.set_issuer(issuer2, True, "", sender=desk)
    with ape.reverts("root of another issuer"):
        registry.publish_root(creds.tree.root, sender=issuer2)
    with ape.reverts("already the current root"):
        registry.publish_root(creds.tree.root, sender=issuer)
    with ape.reverts("bad root"):
        registry.publish_root(R, sender=issuer2)
    with ape.reverts("bad root"):
        registry.publish_root(0, sender=issuer2)
    receipt = registry.publish_root(777, sender=issuer2)
    [log] = receipt.decode_logs(registry.RootPublished)
    assert (addr(log.issuer), log.root, log.previous) == (issuer2.address, 777, 0)
    assert registry.current_root(issuer2) == 777 and registry.issuer_root_count(issuer2) == 1


def test_admin_expires_a_root(registry, desk, attacker, creds, chain):
    with ape.reverts("not the admin"):
        registry.expire_root(creds.tree.root, sender=attacker)
    with ape.reverts("unknown root"):
        registry.expire_root(4242, sender=desk)
    registry.expire_root(creds.tree.root, sender=desk)
    assert registry.root_status(creds.tree.root)[1] == 0
    with ape.reverts("root already expired"):
        registry.expire_root(creds.tree.root, sender=desk)


def test_admin_bans_a_root_whose_window_ran_out(registry, issuer, issuer2, desk, chain):
    """A superseded root past its window is still banned for good: its issuer cannot make it current again."""
    registry.set_issuer(issuer2, True, "", sender=desk)
    bad, good = 1111, 2222
    registry.publish_root(bad, sender=issuer2)
    registry.publish_root(good, sender=issuer2)  # `bad` stays valid for the window
    chain.pending_timestamp = chain.pending_timestamp + registry.root_window() + 10
    chain.mine()
    until = registry.root_status(bad)[1]
    assert 0 < until < chain.blocks.head.timestamp
    receipt = registry.expire_root(bad, sender=desk)
    assert [log.root for log in receipt.decode_logs(registry.RootExpired)] == [bad]
    assert registry.root_status(bad)[1] == 0
    with ape.reverts("root was expired"):
        registry.publish_root(bad, sender=issuer2)
    with ape.reverts("root already expired"):
        registry.expire_root(bad, sender=desk)
    assert registry.current_root(issuer2) == good


def test_root_window_is_bounded_and_admin_only(registry, desk, attacker):
    with ape.reverts("not the admin"):
        registry.set_root_window(60, sender=attacker)
    with ape.reverts("root window too long"):
        registry.set_root_window(30 * DAY + 1, sender=desk)
    registry.set_root_window(60, sender=desk)
    assert registry.root_window() == 60


# ------------------------------------------------------------------- policies
def test_policy_registration(registry, desk, issuer, attacker):
    assert registry.policy_count() == 2
    # the registry packs the parameters into the word the circuit decomposes, exactly as the client does
    assert registry.policy_word(1) == EU_PRO.word() and registry.policy_of(EU_PRO.word()) == 1
    assert registry.policy_word(2) == KYB_ONLY.word() and registry.policy_word(3) == 0
    level4 = Policy(min_kyc_level=4, entity_mask=MASK_BUSINESSES, deny=(KP, 999))
    args = register_args(level4, "level 4")
    with ape.reverts("not admin or issuer"):
        registry.register_policy(*args, sender=attacker)
    with ape.reverts("policy already registered"):
        registry.register_policy(*register_args(EU_PRO, "again"), sender=desk)
    for index, value, reason in (
        (0, 256, "bad kyc level"),
        (2, 0, "bad entity mask"),
        (2, 4, "bad entity mask"),
        (3, [1000, 0, 0, 0, 0, 0, 0, 0], "bad jurisdiction"),
        (3, [KP, 0, IR, 0, 0, 0, 0, 0], "unused deny slots must come last"),
    ):
        bad = list(args)
        bad[index] = value
        with ape.reverts(reason):
            registry.register_policy(*bad, sender=desk)
    assert registry.policy_count() == 2
    receipt = registry.register_policy(*args, sender=issuer)
    [log] = receipt.decode_logs(registry.PolicyRegistered)
    assert (log.policy, log.policy_word, log.min_kyc_level, log.label) == (3, level4.word(), 4, "level 4")
    assert list(log.deny) == [KP, 999, 0, 0, 0, 0, 0, 0] and Policy.from_word(registry.policy_word(3)) == level4
    assert registry.policy_count() == 3


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    level=st.integers(0, 255),
    accredited=st.booleans(),
    mask=st.integers(1, 3),
    deny=st.lists(st.integers(1, 999), max_size=8),
)
def test_registry_packs_policies_as_the_client_does(registry, desk, level, accredited, mask, deny):
    """For any valid parameters the registry's policy word is the client's `Policy.word()` (the public
    signal the prover puts in the proof), and it decodes back to the same policy."""
    policy = Policy(level, accredited, mask, tuple(deny))
    policy_id = registry.policy_of(policy.word())
    if policy_id == 0:  # an earlier example may have registered the same parameters
        receipt = registry.register_policy(*register_args(policy, "random"), sender=desk)
        [log] = receipt.decode_logs(registry.PolicyRegistered)
        policy_id = log.policy
        assert log.policy_word == policy.word()
    assert registry.policy_word(policy_id) == policy.word()
    assert Policy.from_word(registry.policy_word(policy_id)) == policy


# ---------------------------------------------------------------------- admin
def test_admin_moves_in_two_steps(registry, desk, attacker, lawyer):
    with ape.reverts("not the admin"):
        registry.propose_admin(attacker, sender=attacker)
    registry.propose_admin(lawyer, sender=desk)
    with ape.reverts("not the pending admin"):
        registry.accept_admin(sender=attacker)
    registry.accept_admin(sender=lawyer)
    assert addr(registry.admin()) == lawyer.address and addr(registry.pending_admin()) == ZERO
    with ape.reverts("not the admin"):
        registry.set_root_window(1, sender=desk)
