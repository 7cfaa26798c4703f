"""Stateful fuzzing of the MultiSig against a Python model.

Hypothesis drives random executions signed by random lists of keys (owners and outsiders, any order,
duplicates, too few), replays of executed signatures, and owner / threshold changes made through the
wallet itself (valid and invalid), plus direct owner-change calls that must be refused. After every
step the chain must match the model:
  - the nonce only moves by exactly 1 per successful execution;
  - owners are distinct, ascending, and 1 <= threshold <= owner count;
  - an execution succeeds exactly when its first `threshold` entries are distinct owners in
    ascending order (so nothing executes below threshold or with a non-owner counted), and a failed
    one changes nothing (the revert reason is the model's).
Bounded: 50 examples of up to 30 steps, through web3 (about a minute on 2 cores).
"""

from __future__ import annotations

import ape
import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from nexotc_client.multisig import Call, Domain, Execution, Signature, pack_signatures

FAR = 2**40
POOL = [Account.from_key((0xF00D + i).to_bytes(32, "big")) for i in range(7)]
ADDR = [a.address for a in POOL]


def key(i: int) -> int:
    return int(ADDR[i], 16)


def expected_failure(entries: list[int], owners: set[int], threshold: int) -> str | None:
    """The contract's revert reason for ECDSA `entries` (pool indices, in order), or None."""
    if len(entries) < threshold:
        return "not enough signatures"
    last = 0
    for i in entries[:threshold]:
        if key(i) <= last:
            return "signers not ascending"
        if i not in owners:
            return "not an owner"
        last = key(i)
    return None


def config_failure(owners: list[int], threshold: int) -> str | None:
    if not 1 <= threshold <= len(owners):
        return "threshold out of range"
    return None


def w3_contract(contract):
    """A web3 twin of an ape contract: the machine talks to anvil through web3 (ape's per-call
    tracing would make a few hundred steps take minutes)."""
    abi = [x.model_dump(mode="json", by_alias=True) for x in contract.contract_type.abi]
    return ape.chain.provider.web3.eth.contract(address=contract.address, abi=abi)


class MultiSigMachine(RuleBasedStateMachine):
    # set by the test before the machine runs
    project = None
    factory = None  # web3 contracts
    token = None
    wallet_abi = None
    relayer = None  # addresses
    outsider = None

    def __init__(self) -> None:
        super().__init__()
        self.web3 = ape.chain.provider.web3
        self.snap = self.web3.provider.make_request("evm_snapshot", [])["result"]
        self.wallet = None

    def teardown(self) -> None:
        self.web3.provider.make_request("evm_revert", [self.snap])

    # ------------------------------------------------------------------------- helpers
    def send(self, to: str, data: bytes, expect: str | None, sender: str | None = None) -> dict | None:
        """Send a transaction expected to succeed, or check (eth_call) that it reverts with `expect`."""
        tx = {"from": sender or self.relayer, "to": to, "data": data, "gas": 3_000_000}
        if expect is not None:
            with pytest.raises(ContractLogicError) as failure:
                self.web3.eth.call(tx)
            assert failure.value.message == f"execution reverted: {expect}", failure.value.message
            return None
        receipt = self.web3.eth.wait_for_transaction_receipt(self.web3.eth.send_transaction(tx))
        assert receipt["status"] == 1
        return receipt

    def domain(self) -> Domain:
        return Domain(self.web3.eth.chain_id, self.wallet.address)

    def sign(self, execution: Execution, entries: list[int]) -> bytes:
        digest = execution.digest(self.domain())
        return pack_signatures([Signature.ecdsa(digest, POOL[i].key) for i in entries], sort=False)

    def owner_signers(self, data) -> list[int]:
        """A valid signer list: `threshold` current owners, ascending."""
        chosen = data.draw(st.permutations(sorted(self.owners)))[: self.threshold]
        return sorted(chosen, key=key)

    def submit(self, call: Call, entries: list[int], expect: str | None):
        execution = Execution.single(call, self.model_nonce, FAR)
        sigs = self.sign(execution, entries)
        data = self.wallet.encode_abi("execute", [call.target, call.value, FAR, sigs, call.data])
        receipt = self.send(self.wallet.address, data, expect)
        if receipt is not None:
            logs = self.wallet.events.Executed().process_receipt(receipt, errors=DISCARD)  # skip token logs
            assert [bytes(e.args.digest) for e in logs] == [execution.digest(self.domain())]
            self.model_nonce += 1
            self.last = (data, len(entries))

    def self_call(self, fn: str, *args) -> Call:
        return Call(self.wallet.address, 0, bytes.fromhex(self.wallet.encode_abi(fn, list(args))[2:]))

    # --------------------------------------------------------------------------- setup
    @initialize(
        owners=st.sets(st.integers(0, len(POOL) - 1), min_size=1, max_size=4),
        data=st.data(),
    )
    def create(self, owners, data):
        threshold = data.draw(st.integers(1, len(owners)))
        salt = data.draw(st.binary(min_size=32, max_size=32))
        args = [[ADDR[i] for i in owners], threshold, salt]
        address = self.factory.functions.predict_address(*args).call()
        self.send(self.factory.address, self.factory.encode_abi("create", args), None)
        self.wallet = self.web3.eth.contract(address=address, abi=self.wallet_abi)
        self.send(self.token.address, self.token.encode_abi("mint", [address, 10**12]), None)
        self.owners = set(owners)
        self.threshold = threshold
        self.model_nonce = 0
        self.balance = 10**12
        self.last = None

    # --------------------------------------------------------------------------- rules
    @rule(
        entries=st.lists(st.integers(0, len(POOL) - 1), max_size=6),
        sort=st.booleans(),
        amount=st.integers(1, 10**6),
    )
    def execute_transfer(self, entries, sort, amount):
        if sort:
            entries = sorted(entries, key=key)  # duplicates stay
        transfer = self.token.encode_abi("transfer", [self.relayer, amount])
        call = Call(self.token.address, 0, bytes.fromhex(transfer[2:]))
        expect = expected_failure(entries, self.owners, self.threshold)
        self.submit(call, entries, expect)
        if expect is None:
            self.balance -= amount

    @precondition(lambda self: self.last is not None)
    @rule()
    def replay(self):
        data, entries = self.last
        # the signatures bind the nonce they were made for: they now recover other addresses
        expect = "not enough signatures" if entries < self.threshold else "not an owner"
        self.send(self.wallet.address, data, expect)

    @rule(candidate=st.integers(0, len(POOL) - 1), data=st.data())
    def add_owner(self, candidate, data):
        threshold = data.draw(st.integers(0, len(self.owners) + 2))
        new = self.owners | {candidate}
        expect = "already an owner" if candidate in self.owners else config_failure(sorted(new), threshold)
        self.submit(self.self_call("add_owner", ADDR[candidate], threshold), self.owner_signers(data), expect)
        if expect is None:
            self.owners, self.threshold = new, threshold

    @rule(data=st.data())
    def remove_owner(self, data):
        leaving = data.draw(st.integers(0, len(POOL) - 1))
        threshold = data.draw(st.integers(0, len(self.owners)))
        new = self.owners - {leaving}
        expect = "not an owner" if leaving not in self.owners else config_failure(sorted(new), threshold)
        self.submit(self.self_call("remove_owner", ADDR[leaving], threshold), self.owner_signers(data), expect)
        if expect is None:
            self.owners, self.threshold = new, threshold

    @rule(old=st.integers(0, len(POOL) - 1), new=st.integers(0, len(POOL) - 1), data=st.data())
    def replace_owner(self, old, new, data):
        if new in self.owners:
            expect = "already an owner"
        elif old not in self.owners:
            expect = "not an owner"
        else:
            expect = None
        self.submit(self.self_call("replace_owner", ADDR[old], ADDR[new]), self.owner_signers(data), expect)
        if expect is None:
            self.owners = (self.owners - {old}) | {new}

    @rule(data=st.data())
    def change_threshold(self, data):
        threshold = data.draw(st.integers(0, len(self.owners) + 1))
        expect = config_failure(sorted(self.owners), threshold)
        self.submit(self.self_call("change_threshold", threshold), self.owner_signers(data), expect)
        if expect is None:
            self.threshold = threshold

    @rule(threshold=st.integers(0, 3))
    def direct_change_refused(self, threshold):
        data = self.wallet.encode_abi("change_threshold", [threshold])
        self.send(self.wallet.address, data, "only the wallet itself", sender=self.outsider)

    # ---------------------------------------------------------------------- invariants
    @invariant()
    def chain_matches_model(self):
        if self.wallet is None:
            return
        f = self.wallet.functions
        assert f.nonce().call() == self.model_nonce
        owners = f.get_owners().call()
        assert owners == sorted((ADDR[i] for i in self.owners), key=lambda a: int(a, 16))
        assert len(set(owners)) == len(owners)
        threshold = f.threshold().call()
        assert threshold == self.threshold and 1 <= threshold <= len(owners)
        assert self.token.functions.balanceOf(self.wallet.address).call() == self.balance


def test_multisig_state_machine(project, desk, attacker):
    factory = desk.deploy(project.MultiSigFactory, project.MultiSig.contract_type.deployment_bytecode.bytecode)
    MultiSigMachine.factory = w3_contract(factory)
    MultiSigMachine.token = w3_contract(desk.deploy(project.MockERC20, "USD (mock)", "USD", 6))
    MultiSigMachine.wallet_abi = [x.model_dump(mode="json", by_alias=True) for x in project.MultiSig.contract_type.abi]
    MultiSigMachine.relayer = desk.address
    MultiSigMachine.outsider = attacker.address
    run_state_machine_as_test(
        MultiSigMachine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        ),
    )
