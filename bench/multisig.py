"""nexotc MultiSig against Safe v1.4.1, side by side on the same anvil (ape-foundry).

    .venv/bin/python bench/multisig.py [--markdown | --json] [--breakdown]

Safe comes from its npm build artifacts (@safe-global/safe-contracts 1.4.1, `npm ci`): this script
deploys the Safe singleton (L1 `Safe`, not `SafeL2`), SafeProxyFactory and
CompatibilityFallbackHandler itself, no network. Both wallets are created the usual way (Safe:
createProxyWithNonce + setup with the fallback handler; ours: MultiSigFactory.create) and execute
the same MockERC20 transfer, submitted by a non-owner relayer, signed by ECDSA owner keys.
Every figure is a receipt's gasUsed. "Steady state": the wallet already executed once (a Safe's
first transaction pays +17,100 for its nonce going 0 -> 1; ours sets its state slot at creation, so
its first transaction is already steady). "holder": the recipient already holds the token; "fresh":
its balance goes from 0. Signers are the `t` owners with the highest addresses (the worst case for
our sorted owner scan; Safe's cost does not depend on which owners sign).

--breakdown traces the steady-state 1/1 transfer to a fresh recipient of both wallets
(debug_traceTransaction on anvil) and splits its gas into the parts no wallet can avoid (21,000 base,
calldata, the token's own transfer, the signature's ecrecover, the nonce slot, the execution event) and
the rest (the proxy hop and the wallet's own code), to show how much of each wallet's gas is its own.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from ape import accounts, chain, networks, project
from ape.contracts import ContractContainer
from ape.logging import logger
from eth_account import Account
from eth_utils import to_checksum_address
from ethpm_types import ContractType
from rich.console import Console
from rich.table import Table

from nexotc_client.multisig import Call, Domain, Execution, sign_execution

ROOT = Path(__file__).resolve().parent.parent
SAFE_ARTIFACTS = ROOT / "node_modules/@safe-global/safe-contracts/build/artifacts/contracts"
ZERO = "0x0000000000000000000000000000000000000000"
SHAPES = ((1, 1), (2, 3), (3, 5))
TRANSFER_TARGET = 0.85

# shared/ANCHORS.md (Safe 1.4.1, anvil 1.7.1): create, transfer holder / fresh (steady state)
ANCHORS = {
    (1, 1): (258_895, 65_675, 82_775),
    (2, 3): (305_847, 72_729, 89_841),
    (3, 5): (352_800, 79_809, 96_897),
}


# trace buckets, in print order
BUCKETS = (
    "intrinsic (21,000 + calldata)",
    "token call (CALL + the token's transfer)",
    "ecrecover (precompile call)",
    "storage (nonce and other wallet slots)",
    "events",
    "proxy hop (DELEGATECALL to the singleton/implementation)",
    "wallet code (everything else)",
)


def breakdown(receipt) -> dict[str, int]:
    """Split a wallet execution's gas into BUCKETS from anvil's struct-log trace."""
    provider = chain.provider.web3.provider
    trace = provider.make_request(
        "debug_traceTransaction", [receipt.txn_hash, {"disableStorage": True, "disableMemory": True}]
    )["result"]
    logs = trace["structLogs"]
    out = dict.fromkeys(BUCKETS, 0)
    out[BUCKETS[0]] = receipt.gas_used - trace["gas"] + (receipt.transaction.gas_limit - logs[0]["gas"])
    proxy_depth = None
    i = 0
    while i < len(logs):
        step = logs[i]
        op, depth = step["op"], step["depth"]
        nxt = logs[i + 1] if i + 1 < len(logs) else None
        if op in ("CALL", "DELEGATECALL", "STATICCALL", "CALLCODE"):
            # the step's total: from its gas to the next step back at this depth
            j = i + 1
            while j < len(logs) and logs[j]["depth"] > depth:
                j += 1
            total = step["gas"] - logs[j]["gas"] if j < len(logs) else step["gasCost"]
            entered = nxt is not None and nxt["depth"] == depth + 1
            if op == "DELEGATECALL" and entered and proxy_depth is None:
                # the proxy hop: the call's own cost; the callee's steps are walked normally
                used_inside = nxt["gas"] - (logs[j - 1]["gas"] - logs[j - 1]["gasCost"])
                out[BUCKETS[5]] += total - used_inside
                proxy_depth = depth
                i += 1
                continue
            if op == "STATICCALL" and not entered:
                out[BUCKETS[2]] += total  # precompile (ecrecover)
            elif op == "STATICCALL":
                out[BUCKETS[6]] += total
            else:
                out[BUCKETS[1]] += total  # the token call and everything the token does
            i = j
            continue
        if op in ("SLOAD", "SSTORE"):
            out[BUCKETS[3]] += step["gasCost"]
        elif op.startswith("LOG"):
            out[BUCKETS[4]] += step["gasCost"]
        elif depth == 1 and proxy_depth is None and op != "DELEGATECALL":
            out[BUCKETS[5]] += step["gasCost"]  # proxy code before the hop
        elif depth == (proxy_depth or 0) and proxy_depth is not None:
            out[BUCKETS[5]] += step["gasCost"]  # proxy code after the hop (return data)
        else:
            out[BUCKETS[6]] += step["gasCost"]
        i += 1
    assert sum(out.values()) == receipt.gas_used, (out, receipt.gas_used)
    return out


@dataclass
class Row:
    operation: str
    ours: int
    safe: int | None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.safe else self.ours / self.safe

    @property
    def met(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        return "yes" if self.ratio <= self.target else "NO"


def safe_container(path: str) -> ContractContainer:
    artifact = json.loads((SAFE_ARTIFACTS / path).read_text())
    contract_type = ContractType.model_validate(
        {
            "contractName": artifact["contractName"],
            "abi": artifact["abi"],
            "deploymentBytecode": {"bytecode": artifact["bytecode"]},
            "runtimeBytecode": {"bytecode": artifact["deployedBytecode"]},
        }
    )
    return ContractContainer(contract_type)


class Bench:
    def __init__(self) -> None:
        test = accounts.test_accounts
        self.relayer = test[0]
        self.funder = test[1]
        # owner keys: fresh local accounts, so owner sets of up to 5 never collide with the relayer
        self.keys = [Account.from_key((0xA11CE + i).to_bytes(32, "big")) for i in range(5)]
        self.token = self.relayer.deploy(project.MockERC20, "USD (mock)", "USD", 6)
        self.holder = test[2].address
        self.token.mint(self.holder, 1, sender=self.relayer)
        self.fresh_counter = 0

        self.factory = self.relayer.deploy(
            project.MultiSigFactory, project.MultiSig.contract_type.deployment_bytecode.bytecode
        )
        self.Safe = safe_container("Safe.sol/Safe.json")
        self.singleton = self.relayer.deploy(self.Safe)
        self.proxy_factory = self.relayer.deploy(safe_container("proxies/SafeProxyFactory.sol/SafeProxyFactory.json"))
        self.handler = self.relayer.deploy(
            safe_container("handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json")
        )
        self.salt = 0

    def fresh(self) -> str:
        self.fresh_counter += 1
        return to_checksum_address((0xF2E5400000 + self.fresh_counter).to_bytes(20, "big"))

    def owners(self, n: int) -> list:
        return self.keys[:n]

    @staticmethod
    def signers(owners: list, t: int) -> list:
        return sorted(owners, key=lambda a: int(a.address, 16))[-t:]

    # ----------------------------------------------------------------------------- ours
    def create_ours(self, t: int, n: int):
        self.salt += 1
        owners = [o.address for o in self.owners(n)]
        receipt = self.factory.create(owners, t, self.salt.to_bytes(32, "big"), sender=self.relayer)
        wallet = project.MultiSig.at(receipt.decode_logs(self.factory.MultiSigCreated)[0].wallet)
        return wallet, receipt

    def transfer_ours(self, wallet, t: int, n: int, to: str, amount: int = 1):
        data = self.token.transfer.encode_input(to, amount)
        deadline = chain.pending_timestamp + 3600  # a realistic deadline (4 non-zero calldata bytes)
        execution = Execution.single(Call(self.token.address, 0, data), wallet.call_view_method("nonce"), deadline)
        domain = Domain(chain.chain_id, wallet.address)
        sigs = sign_execution(execution, domain, [k.key for k in self.signers(self.owners(n), t)])
        return wallet.execute(self.token.address, 0, deadline, sigs, data, sender=self.relayer)

    # ----------------------------------------------------------------------------- Safe
    def create_safe(self, t: int, n: int):
        self.salt += 1
        owners = [o.address for o in self.owners(n)]
        setup = self.singleton.setup.encode_input(owners, t, ZERO, b"", self.handler.address, ZERO, 0, ZERO)
        receipt = self.proxy_factory.createProxyWithNonce(self.singleton.address, setup, self.salt, sender=self.relayer)
        proxy = receipt.decode_logs(self.proxy_factory.ProxyCreation)[0].proxy
        return self.Safe.at(proxy), receipt

    def transfer_safe(self, safe, t: int, n: int, to: str, amount: int = 1):
        data = self.token.transfer.encode_input(to, amount)
        args = (self.token.address, 0, data, 0, 0, 0, 0, ZERO, ZERO)
        tx_hash = bytes(safe.getTransactionHash(*args, safe.call_view_method("nonce")))
        sigs = b""
        for key in self.signers(self.owners(n), t):
            signed = Account.unsafe_sign_hash(tx_hash, key.key)
            sigs += signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
        return safe.execTransaction(*args, sigs, sender=self.relayer)

    # ------------------------------------------------------------------------------ run
    def run(self) -> list[Row]:
        rows: list[Row] = []
        safe_steady: dict[tuple[int, int, str], int] = {}
        for t, n in SHAPES:
            ours, r_ours = self.create_ours(t, n)
            safe, r_safe = self.create_safe(t, n)
            rows.append(Row(f"create {t}-of-{n}", r_ours.gas_used, r_safe.gas_used, 1.0))
            for wallet in (ours, safe):
                self.token.mint(wallet.address, 10**12, sender=self.funder)
            first_ours = self.transfer_ours(ours, t, n, self.holder)
            first_safe = self.transfer_safe(safe, t, n, self.holder)
            rows.append(Row(f"{t}/{n} first transfer, holder", first_ours.gas_used, first_safe.gas_used))
            for label, to in (("holder", self.holder), ("fresh", None)):
                a = self.transfer_ours(ours, t, n, to or self.fresh())
                b = self.transfer_safe(safe, t, n, to or self.fresh())
                rows.append(Row(f"{t}/{n} ERC-20 transfer, {label}", a.gas_used, b.gas_used, TRANSFER_TARGET))
                safe_steady[(t, n, label)] = b.gas_used
        # our trade-off, shown: after an owner change the configuration is read from a data contract
        ours, _ = self.create_ours(2, 3)
        self.token.mint(ours.address, 10**12, sender=self.funder)
        keys = self.signers(self.owners(3), 2)
        call = Call(ours.address, 0, bytes(ours.change_threshold.encode_input(2)))
        deadline = chain.pending_timestamp + 3600
        execution = Execution.single(call, ours.call_view_method("nonce"), deadline)
        sigs = sign_execution(execution, Domain(chain.chain_id, ours.address), [k.key for k in keys])
        r = ours.execute(call.target, 0, deadline, sigs, call.data, sender=self.relayer)
        rows.append(Row("ours: change threshold (2/3, new config contract)", r.gas_used, None))
        a = self.transfer_ours(ours, 2, 3, self.holder)
        rows.append(
            Row(
                "ours: 2/3 transfer, holder, after a config change",
                a.gas_used,
                safe_steady[(2, 3, "holder")],
                TRANSFER_TARGET,
            )
        )
        return rows


def render(rows: list[Row]) -> list[tuple[str, ...]]:
    out = []
    for row in rows:
        out.append(
            (
                row.operation,
                f"{row.ours:,}",
                f"{row.safe:,}" if row.safe else "",
                f"{row.ratio:.3f}" if row.ratio is not None else "",
                (f"<= {row.target:.2f}" if row.target and row.target < 1 else "< 1") if row.target else "",
                row.met,
            )
        )
    return out


HEADER = ("operation", "nexotc MultiSig", "Safe 1.4.1", "ours / Safe", "target", "met")


@click.command()
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--breakdown", "show_breakdown", is_flag=True, help="Split the 1/1 fresh transfer's gas (trace).")
@click.option("--network", default="ethereum:local:foundry", show_default=True)
def main(markdown: bool, as_json: bool, show_breakdown: bool, network: str) -> None:
    logger.set_level("ERROR")
    if not SAFE_ARTIFACTS.exists():
        raise click.ClickException(
            "Safe artifacts missing: run `npm ci` (package.json pins @safe-global/safe-contracts)"
        )
    with networks.parse_network_choice(network):
        if show_breakdown:
            print_breakdown(Bench(), markdown, as_json)
            return
        rows = Bench().run()
    if as_json:
        json.dump([{**row.__dict__, "ratio": row.ratio} for row in rows], sys.stdout, indent=2)
        print()
    elif markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|---|---:|---:|---:|---|---|")
        for cells in render(rows):
            print("| " + " | ".join(cells) + " |")
    else:
        table = Table(title="nexotc MultiSig vs Safe 1.4.1 (tx gas, anvil)")
        for i, h in enumerate(HEADER):
            table.add_column(h, justify="right" if 0 < i < 4 else "left", no_wrap=True)
        for cells in render(rows):
            table.add_row(*cells)
        Console(width=140).print(table)
        print(
            "Safe anchors (shared/ANCHORS.md): "
            + "; ".join(f"{t}/{n}: {a[0]:,} / {a[1]:,} / {a[2]:,}" for (t, n), a in ANCHORS.items())
        )


def print_breakdown(bench: Bench, markdown: bool, as_json: bool) -> None:
    ours, _ = bench.create_ours(1, 1)
    safe, _ = bench.create_safe(1, 1)
    for wallet in (ours, safe):
        bench.token.mint(wallet.address, 10**12, sender=bench.funder)
    bench.transfer_ours(ours, 1, 1, bench.holder)
    bench.transfer_safe(safe, 1, 1, bench.holder)
    a = breakdown(bench.transfer_ours(ours, 1, 1, bench.fresh()))
    b = breakdown(bench.transfer_safe(safe, 1, 1, bench.fresh()))
    rows = [(k, a[k], b[k]) for k in BUCKETS] + [("total", sum(a.values()), sum(b.values()))]
    if as_json:
        json.dump([{"part": k, "ours": x, "safe": y} for k, x, y in rows], sys.stdout, indent=2)
        print()
        return
    if markdown:
        print("| 1/1 transfer to a fresh recipient | nexotc MultiSig | Safe 1.4.1 |")
        print("|---|---:|---:|")
        for k, x, y in rows:
            print(f"| {k} | {x:,} | {y:,} |")
        return
    table = Table(title="Where the gas goes: 1/1 ERC-20 transfer to a fresh recipient (trace)")
    for h in ("part", "nexotc MultiSig", "Safe 1.4.1"):
        table.add_column(h, justify="left" if h == "part" else "right")
    for k, x, y in rows:
        table.add_row(k, f"{x:,}", f"{y:,}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
