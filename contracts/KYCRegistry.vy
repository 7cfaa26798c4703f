# pragma version 0.4.3
"""
@title KYCRegistry
@notice Zero-knowledge KYC/KYB attestations. Issuers (granted by the admin,
        usually a MultiSig) keep Poseidon Merkle trees of credentials off chain
        and publish their roots here; compliance policies are registered by
        their parameters, packed here into the policy word proofs carry, and
        get a small id; a holder proves with a Groth16 proof that
        a credential in a published tree meets a policy, bound to its wallet
        and to a scope (a deal, a desk), and the registry records an
        attestation (subject, scope, policy, expiry) that deals read with
        `is_compliant`. Nothing identifying is revealed: the proof's public
        signals are a nullifier, an audit commitment, the root, the policy
        word, the scope and the wallet binding.
@dev Public signals, in the verifier's order (snarkjs: outputs first):
       [0] nullifier = Poseidon(secret, scope)
       [1] audit_commitment (Poseidon of the 7 fields' salted hashes)
       [2] root  [3] policy word  [4] scope
       [5] binding = wallet | now << 160 | valid_until << 196
     `binding` is rebuilt here from msg.sender and the caller's `now` and
     `valid_until`, so only the wallet the proof names can submit it. The
     circuit checks issued_at <= now and valid_until <= expires_at; this
     contract checks now < valid_until (so the credential is not expired at
     `now`) and that `now` is within MAX_CLOCK_SKEW of block time. The
     attestation expires at `valid_until`.
     Roots: an issuer's current root is valid until it publishes another;
     the superseded root stays valid for `root_window` seconds (proofs in
     flight still land); revocation of a credential is a new root without
     its leaf. Revoking an issuer expires its current root and the roots it
     superseded within the window (the newest MAX_REVOKE_SCAN of them; the
     admin can expire any other root with `expire_root`).
     Uniqueness: one slot per (scope, nullifier) holds the wallet that used
     it: a credential attests exactly one wallet per scope (the same entity
     cannot be both sides of a deal with one credential). That wallet may
     submit again with the same nullifier (a renewed credential). Proof
     bytes are never a key (Groth16 proofs are malleable).
     Attestations only grow: while a wallet's attestation in a scope is in
     force, a new submission there (any credential) must carry the same
     policy and a later expiry, so a party cannot cut short or switch the
     attestation a deal relies on mid-deal (which would block its releases
     and hand it the refund); once it has expired, anything goes.
     Policies: the admin or any active issuer registers a policy by its
     parameters; the registry packs them into the policy word
     min_kyc_level | require_accredited << 8 | entity_mask << 9 |
     deny[i] << (11 + 10 i) (91 bits), the public signal the circuit
     decomposes, so what a policy enforces is exactly what was registered
     and emitted. Ids are 1, 2, 3, ...
     Gas: a first submission writes two fresh slots (nullifier owner,
     attestation word expiry | policy << 40); the audit commitment lives
     only in the event. Root and policy word are the same for every proof
     against one issuer root and one policy, so their part of the
     verifier's vk_x (IC0 + root * IC3 + policy_word * IC4) can be
     precomputed once with `prepare(root, policy)` (anyone may call it;
     issuers do after publishing a root): a prepared submission reads the
     root and that point (three slots) instead of computing two ecMul
     (~12k gas) and reading the policy. Unprepared pairs still verify, in
     full. The point is a pure function of (root, policy word), so no
     caller can make it wrong; roots keep their own validity.
@custom:security No funds and no external call: the generated
     Groth16Verifier (contracts/Groth16Verifier.vy) is imported as a module
     and its `_verify` runs inline (only precompile calls), so submit_proof
     needs no re-entrancy lock; every check runs before the verification
     and every write after it. The admin can grant
     and revoke issuers, expire roots and set the root window; it cannot
     write or erase attestations. The admin moves in two steps (propose,
     accept).
"""

from interfaces import IKYCRegistry
import Groth16Verifier as groth16

implements: IKYCRegistry


# BN254 scalar field: every public signal is below it.
SNARK_FIELD: constant(uint256) = (
    21888242871839275222246405745257275088548364400416034343698204186575808495617
)
# how far the proof's `now` may be from block time, either way
MAX_CLOCK_SKEW: constant(uint256) = 300
MAX_ROOT_WINDOW: constant(uint256) = 30 * 86400
# roots walked back when an issuer is revoked
MAX_REVOKE_SCAN: constant(uint256) = 64
MAX_POLICIES: constant(uint256) = 2**32 - 1
# ISO 3166-1 numeric codes are three digits (10 bits in the policy word)
MAX_JURISDICTION: constant(uint256) = 999
DENY_SHIFT: constant(uint256) = 11
DENY_BITS: constant(uint256) = 10

# timestamps in the binding have 36 bits (until the year 4147)
MASK_36: constant(uint256) = 2**36 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_160: constant(uint256) = 2**160 - 1
VALID_SHIFT: constant(uint256) = 160
POLICY_SHIFT: constant(uint256) = 40
NOW_SHIFT: constant(uint256) = 160
UNTIL_SHIFT: constant(uint256) = 196

admin: public(address)
pending_admin: public(address)
is_issuer: public(HashMap[address, bool])
# seconds a superseded root stays valid
root_window: public(uint256)
# root => issuer (bits 0-159) | valid until (160-223); zero: unknown root
_roots: HashMap[uint256, uint256]
current_root: public(HashMap[address, uint256])
# issuer => index => root it published (for revocation), and their count
_issuer_roots: HashMap[address, HashMap[uint256, uint256]]
issuer_root_count: public(HashMap[address, uint256])
# policy id => policy word, and back
_policies: HashMap[uint256, uint256]
_policy_ids: HashMap[uint256, uint256]
policy_count: public(uint256)
# root => policy id => the verifier's base point for them (x, y; zeros: not
# prepared)
_bases: HashMap[uint256, HashMap[uint256, uint256[2]]]
# scope => nullifier => the wallet that used it
_nullifiers: HashMap[uint256, HashMap[uint256, address]]
# subject => scope => expiry (bits 0-39) | policy id (40-71)
_attestations: HashMap[address, HashMap[uint256, uint256]]


@deploy
def __init__(admin: address, root_window: uint256):
    """
    @param admin The registry admin (usually a MultiSig).
    @param root_window Seconds a superseded root stays valid.
    """
    assert admin != empty(address), "zero admin"
    assert root_window <= MAX_ROOT_WINDOW, "root window too long"
    self.admin = admin
    self.root_window = root_window
    log IKYCRegistry.AdminTransferred(previous_admin=empty(address), admin=admin)
    log IKYCRegistry.RootWindowSet(window=root_window)


# ------------------------------------------------------------------ proofs


@external
def submit_proof(
    scope: uint256,
    policy: uint256,
    root: uint256,
    nullifier: uint256,
    audit_commitment: uint256,
    now: uint256,
    valid_until: uint256,
    proof: uint256[8],
):
    """
    @notice Record that the caller meets `policy` in `scope` until
            `valid_until`, from a proof bound to the caller's wallet.
    @param now The proof's clock (within MAX_CLOCK_SKEW of block time).
    @param valid_until The attestation's expiry (at most the credential's).
    """
    # cannot overflow: block.timestamp < 2**64
    assert now <= unsafe_add(block.timestamp, MAX_CLOCK_SKEW), "proof time in the future"
    assert unsafe_add(now, MAX_CLOCK_SKEW) >= block.timestamp, "proof time too old"
    assert valid_until >= block.timestamp, "validity already ended"
    assert valid_until > now, "validity ends before the proof time"
    assert valid_until <= MASK_36, "validity out of range"
    info: uint256 = self._roots[root]
    assert info != 0, "unknown root"
    assert block.timestamp <= info >> VALID_SHIFT, "root expired"
    # a prepared (root, policy) implies a registered policy: read its base
    # point instead of the policy word (x == 0: not prepared)
    base_x: uint256 = self._bases[root][policy][0]
    policy_word: uint256 = 0
    if base_x == 0:
        policy_word = self._policies[policy]
        assert policy_word != 0, "unknown policy"
    owner: address = self._nullifiers[scope][nullifier]
    assert owner == empty(address) or owner == msg.sender, "nullifier used"
    # an attestation in force is only ever extended, whichever credential
    # proves: a deal that checked it cannot see it cut short or switched
    # (the cold read makes the write below warm: no extra gas)
    previous: uint256 = self._attestations[msg.sender][scope]
    if block.timestamp <= previous & MASK_40:
        assert previous >> POLICY_SHIFT == policy, "attested for another policy in this scope"
        assert valid_until > previous & MASK_40, "an attestation in force is only extended"
    binding: uint256 = (
        convert(msg.sender, uint256) | (now << NOW_SHIFT) | (valid_until << UNTIL_SHIFT)
    )
    # the generated verifier's checks and pairing, inlined (no external call)
    if base_x == 0:
        assert groth16._verify(proof, [nullifier, audit_commitment, root, policy_word, scope, binding]), "invalid proof"
    else:
        base: Bytes[64] = concat(convert(base_x, bytes32), convert(self._bases[root][policy][1], bytes32))
        assert groth16._verify_from(proof, base, [nullifier, audit_commitment, scope, binding]), "invalid proof"
    if owner == empty(address):
        self._nullifiers[scope][nullifier] = msg.sender
    self._attestations[msg.sender][scope] = valid_until | (policy << POLICY_SHIFT)
    log IKYCRegistry.Attested(
        subject=msg.sender,
        scope=scope,
        policy=policy,
        nullifier=nullifier,
        audit_commitment=audit_commitment,
        expiry=valid_until,
        root=root,
    )


@view
@external
def is_compliant(subject: address, scope: uint256, policy: uint256) -> bool:
    """
    @notice True while `subject` holds an unexpired attestation of `policy`
            in `scope`.
    """
    word: uint256 = self._attestations[subject][scope]
    return word != 0 and word >> POLICY_SHIFT == policy and block.timestamp <= word & MASK_40


@view
@external
def attestation(subject: address, scope: uint256) -> (uint256, uint256):
    """
    @notice `subject`'s latest attestation in `scope`: (expiry, policy id);
            zeros if none. The audit commitment is in its Attested event.
    """
    word: uint256 = self._attestations[subject][scope]
    return word & MASK_40, word >> POLICY_SHIFT


@view
@external
def nullifier_owner(scope: uint256, nullifier: uint256) -> address:
    return self._nullifiers[scope][nullifier]


# ------------------------------------------------------------------ issuers


@external
def publish_root(root: uint256):
    """
    @notice Issuer-only: make `root` the caller's current root. The previous
            one stays valid for `root_window` seconds. Re-publishing one of
            the caller's own earlier roots (a tree back in an earlier state)
            is allowed; another issuer's root is not.
    """
    assert self.is_issuer[msg.sender], "not an issuer"
    assert root != 0 and root < SNARK_FIELD, "bad root"
    info: uint256 = self._roots[root]
    if info != 0:
        assert info & MASK_160 == convert(msg.sender, uint256), "root of another issuer"
        assert info >> VALID_SHIFT != 0, "root was expired"
    previous: uint256 = self.current_root[msg.sender]
    assert previous != root, "already the current root"
    previous_until: uint256 = 0
    if previous != 0:
        # cannot overflow: both terms are below 2**64
        previous_until = min(unsafe_add(block.timestamp, self.root_window), self._roots[previous] >> VALID_SHIFT)
        self._roots[previous] = convert(msg.sender, uint256) | (previous_until << VALID_SHIFT)
    self._roots[root] = convert(msg.sender, uint256) | (MASK_64 << VALID_SHIFT)
    self.current_root[msg.sender] = root
    n: uint256 = self.issuer_root_count[msg.sender]
    self._issuer_roots[msg.sender][n] = root
    # cannot overflow: one per transaction
    self.issuer_root_count[msg.sender] = unsafe_add(n, 1)
    log IKYCRegistry.RootPublished(
        issuer=msg.sender, root=root, previous=previous, previous_valid_until=previous_until
    )


@external
def prepare(root: uint256, policy: uint256):
    """
    @notice Anyone: precompute the verifier's part fixed by (`root`,
            `policy`) so that every later submit_proof against them costs
            two ecMul less (issuers call it for the policies they serve
            after publishing a root).
    """
    info: uint256 = self._roots[root]
    assert info != 0, "unknown root"
    assert block.timestamp <= info >> VALID_SHIFT, "root expired"
    policy_word: uint256 = self._policies[policy]
    assert policy_word != 0, "unknown policy"
    assert self._bases[root][policy][0] == 0, "already prepared"
    base: Bytes[64] = groth16._base([root, policy_word])
    # x == 0 (the point at infinity, or x = 0 on the curve) is never stored:
    # submissions then verify in full, which is always correct
    assert extract32(base, 0, output_type=uint256) != 0, "base not storable"
    self._bases[root][policy] = [extract32(base, 0, output_type=uint256), extract32(base, 32, output_type=uint256)]
    log IKYCRegistry.Prepared(root=root, policy=policy, caller=msg.sender)


@view
@external
def prepared(root: uint256, policy: uint256) -> bool:
    """
    @notice Whether (`root`, `policy`) was prepared (see `prepare`).
    """
    return self._bases[root][policy][0] != 0


@view
@external
def root_status(root: uint256) -> (address, uint256):
    """
    @notice The issuer of `root` and the last second it is valid (2**64-1
            while current; 0: expired at once; zero issuer: unknown root).
    """
    info: uint256 = self._roots[root]
    return convert(convert(info & MASK_160, uint160), address), info >> VALID_SHIFT


# ----------------------------------------------------------------- policies


@external
def register_policy(
    min_kyc_level: uint256,
    require_accredited: bool,
    entity_mask: uint256,
    deny: uint256[8],
    label: String[64],
) -> uint256:
    """
    @notice Admin or issuer: register a policy and return its id. Proofs
            of it carry its policy word (see the contract's @dev).
    @param min_kyc_level Lowest KYC level accepted (0..255).
    @param entity_mask 1 individuals (KYC), 2 businesses (KYB), 3 both.
    @param deny Denied ISO 3166-1 numeric jurisdictions (1..999); unused
           slots are 0 and come after the used ones.
    """
    assert msg.sender == self.admin or self.is_issuer[msg.sender], "not admin or issuer"
    assert min_kyc_level <= 255, "bad kyc level"
    assert entity_mask >= 1 and entity_mask <= 3, "bad entity mask"
    word: uint256 = min_kyc_level | (convert(require_accredited, uint256) << 8) | (entity_mask << 9)
    at: uint256 = DENY_SHIFT
    unused: bool = False
    for j: uint256 in deny:
        assert j <= MAX_JURISDICTION, "bad jurisdiction"
        if j == 0:
            unused = True
        else:
            assert not unused, "unused deny slots must come last"
        word = word | (j << at)
        # cannot overflow: at most 11 + 8 * 10
        at = unsafe_add(at, DENY_BITS)
    assert self._policy_ids[word] == 0, "policy already registered"
    # cannot overflow: bounded by MAX_POLICIES just below
    policy: uint256 = unsafe_add(self.policy_count, 1)
    assert policy <= MAX_POLICIES, "too many policies"
    self.policy_count = policy
    self._policies[policy] = word
    self._policy_ids[word] = policy
    log IKYCRegistry.PolicyRegistered(
        policy=policy,
        policy_word=word,
        registrar=msg.sender,
        min_kyc_level=min_kyc_level,
        require_accredited=require_accredited,
        entity_mask=entity_mask,
        deny=deny,
        label=label,
    )
    return policy


@view
@external
def policy_word(policy: uint256) -> uint256:
    """
    @notice The word of policy `policy` (zero: no such policy).
    """
    return self._policies[policy]


@view
@external
def policy_of(policy_word: uint256) -> uint256:
    """
    @notice The id of the policy with `policy_word` (zero: not registered).
    """
    return self._policy_ids[policy_word]


# -------------------------------------------------------------------- admin


@external
def set_issuer(issuer: address, active: bool, label: String[64]):
    """
    @notice Admin-only: grant or revoke the issuer role. Revoking expires the
            issuer's roots that are still valid (see the contract's @dev).
    """
    assert msg.sender == self.admin, "not the admin"
    assert issuer != empty(address), "zero issuer"
    assert self.is_issuer[issuer] != active, "issuer already set"
    self.is_issuer[issuer] = active
    if not active:
        self.current_root[issuer] = 0
        n: uint256 = self.issuer_root_count[issuer]
        for k: uint256 in range(MAX_REVOKE_SCAN):
            if k >= n:
                break
            # cannot underflow: k < n
            root: uint256 = self._issuer_roots[issuer][unsafe_sub(unsafe_sub(n, k), 1)]
            self._expire(root)
    log IKYCRegistry.IssuerSet(issuer=issuer, active=active, label=label)


@external
def expire_root(root: uint256):
    """
    @notice Admin-only: invalidate `root` at once and for good (e.g. a
            compromised tree): its issuer cannot publish it again, even once
            its root window has run out.
    """
    assert msg.sender == self.admin, "not the admin"
    assert self._roots[root] != 0, "unknown root"
    assert self._expire(root), "root already expired"


@external
def set_root_window(window: uint256):
    """
    @notice Admin-only: how long a superseded root stays valid (applies to
            roots superseded from now on).
    """
    assert msg.sender == self.admin, "not the admin"
    assert window <= MAX_ROOT_WINDOW, "root window too long"
    self.root_window = window
    log IKYCRegistry.RootWindowSet(window=window)


@external
def propose_admin(new_admin: address):
    """
    @notice Admin-only: propose `new_admin`, who becomes admin by calling
            `accept_admin`. The zero address withdraws a proposal.
    """
    assert msg.sender == self.admin, "not the admin"
    assert new_admin != msg.sender, "already the admin"
    self.pending_admin = new_admin
    log IKYCRegistry.AdminProposed(admin=msg.sender, pending_admin=new_admin)


@external
def accept_admin():
    """
    @notice The proposed admin takes over.
    """
    assert msg.sender == self.pending_admin and msg.sender != empty(address), "not the pending admin"
    previous: address = self.admin
    self.admin = msg.sender
    self.pending_admin = empty(address)
    log IKYCRegistry.AdminTransferred(previous_admin=previous, admin=msg.sender)


# ----------------------------------------------------------------- internal


@internal
def _expire(root: uint256) -> bool:
    """
    @dev Ban `root`: validity 0, so its issuer can never publish it again
         (also a root whose window already ran out); false if it already was.
    """
    info: uint256 = self._roots[root]
    if info >> VALID_SHIFT == 0:
        return False
    self._roots[root] = info & MASK_160
    log IKYCRegistry.RootExpired(root=root, issuer=convert(convert(info & MASK_160, uint160), address))
    return True
