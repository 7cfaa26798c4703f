"""`nexotc deploy` and the record files: a user mistake sends nothing and changes nothing.

- a home that is a regular file, or a home (or record file) that cannot be written: one line, exit 1, no
  transaction sent (the deployer's nonce is unchanged), checked before anything is sent;
- each contract is recorded as it lands: a deploy killed midway keeps what it deployed;
- a malformed record (`"tokens": 5`, a bare missing field, a bad address, a boolean block...) is named field
  by field, for every command, and never overwritten;
- a record whose factory is not an EscrowFactory is detected by `deploy`, which says to use --force;
- `--new-desk-registry` without `--force` is a usage error;
- an address with a bad checksum or the wrong length is named as such, not looked up as an account alias.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, nexotc_command, node_cli

from nexotc_client.chain.deployment import Deployment, Registry
from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli import run

DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # test:0
KEY = "ethereum:local:31337"
DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
GOOD = {
    "network": KEY,
    "factory": "0x" + "11" * 20,
    "implementation": "0x" + "22" * 20,
    "block": 5,
    "block_hash": "0x" + "ab" * 32,
    "tx_hash": "",
    "deployer": DEPLOYER,
    "timestamp": 1_700_000_000,
    "tokens": {"WBTC": "0x" + "44" * 20},
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A node of its own, nothing deployed in its home."""
    with node_cli(tmp_path_factory.mktemp("nexotc-deploy-guards")) as c:
        yield c


def nonce(cli: Cli) -> int:
    return int(cli.rpc("eth_getTransactionCount", [DEPLOYER, "latest"]), 16)


def rpc(cli: Cli) -> str:
    return f"http://127.0.0.1:{cli.port}"


def code(cli: Cli, address: str) -> str:
    return str(cli.rpc("eth_getCode", [address, "latest"]))


# ------------------------------------------------------------- no chain needed
def test_new_desk_registry_without_force_is_a_usage_error(tmp_path, capsys):
    assert run(["deploy", "--new-desk-registry", "--account", "test:0", "--home", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --new-desk-registry is used with --force"), lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tokens": 5}, "tokens must be an object (symbol => token address), not the integer 5"),
        ({"network": None}, "the field 'network' is missing"),
        ({"factory": "0xzz"}, 'factory must be an address (0x and 40 hex digits), not the string "0xzz"'),
        ({"block": True}, "block must be a non-negative integer, not the boolean true"),
        ({"block": "5"}, 'block must be a non-negative integer, not the string "5"'),
        ({"timestamp": 1.5}, "timestamp must be a non-negative integer, not the number 1.5"),
        ({"block_hash": "0x12"}, 'block_hash must be a block hash (0x and 64 hex digits), not the string "0x12"'),
        ({"previous": [5]}, "previous[0] must be an object with exactly factory and block, not the integer 5"),
        ({"kyc_registry": 7}, "kyc_registry must be an address (0x and 40 hex digits), not the integer 7"),
        ({"tokens": {"WBTC": "0x" + "aA" * 20}}, "tokens.WBTC has a bad checksum"),
        ({"kyc_regsitry": None}, 'unknown field "kyc_regsitry"'),
    ],
)
def test_a_malformed_deployment_record_is_named_field_by_field(tmp_path, change, message):
    record = {**copy.deepcopy(GOOD), **change}
    if change.get("network", "") is None:
        del record["network"]
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({KEY: record}))
    with pytest.raises(NexotcError) as caught:
        Registry(path).load()
    text = str(caught.value)
    assert text.startswith(f"malformed deployment record: {message}"), text
    assert text.endswith(f'(entry "{KEY}" of {path})'), text
    assert "Got:" not in text and "KeyError" not in text


def test_record_file_shapes_that_are_not_records(tmp_path):
    path = tmp_path / "deployments.json"
    assert Registry(path).load() == {}
    path.write_text(json.dumps({KEY: GOOD}))
    assert Registry(path).load()[KEY] == Deployment.from_dict(GOOD)
    path.write_text(json.dumps({"ethereum:local:1": GOOD}))
    with pytest.raises(NexotcError, match=r'entry "ethereum:local:1" holds a record of another network'):
        Registry(path).load()
    path.write_text(json.dumps({KEY: [1]}))
    with pytest.raises(NexotcError, match="malformed deployment record: expected an object of fields, got a list"):
        Registry(path).load()
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(
        NexotcError, match="cannot read the deployment registry .*: its JSON is nested more than 200 levels deep"
    ):
        Registry(path).load()


def test_check_writable_refuses_what_record_could_not_write(tmp_path):
    homefile = tmp_path / "homefile"
    homefile.write_text("not a directory\n")
    with pytest.raises(NexotcError, match=f"{homefile} is not a directory"):
        Registry(homefile / "deployments.json").check_writable()
    with pytest.raises(NexotcError, match=f"{homefile} is not a directory"):
        Registry(homefile / "sub" / "deployments.json").check_writable()
    (tmp_path / "home" / "deployments.json").mkdir(parents=True)
    with pytest.raises(NexotcError, match="it is not a regular file"):
        Registry(tmp_path / "home" / "deployments.json").check_writable()
    Registry(tmp_path / "new" / "home" / "deployments.json").check_writable()  # created when recording
    assert not (tmp_path / "new").exists()
    # record() itself never lets an OSError through
    with pytest.raises(NexotcError, match="cannot write the deployment registry"):
        Registry(homefile / "deployments.json").record(Deployment.from_dict(GOOD))


# ---------------------------------------------------------------- a read-only home
def _lock(path: Path) -> bool:
    """Make `path` unwritable for this process: chattr +i as root (root ignores permission bits), else
    chmod. False when that is not possible here."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        return chattr is not None and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0
    path.chmod(0o555)
    return True


def _unlock(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run([shutil.which("chattr") or "chattr", "-i", str(path)], capture_output=True)
    else:
        path.chmod(0o755)


def test_a_home_that_is_a_file_sends_nothing(cli, tmp_path):
    homefile = tmp_path / "homefile"
    homefile.write_text("precious\n")
    before = nonce(cli)
    result = cli("deploy", "--account", "test:0", "--home", homefile, "--rpc", rpc(cli))
    assert_one_line_error(result, "cannot write the deployment registry", f"{homefile} is not a directory")
    assert result.code == 1
    assert nonce(cli) == before and homefile.read_text() == "precious\n"


def test_a_read_only_home_sends_nothing(cli, tmp_path):
    home = tmp_path / "readonly"
    home.mkdir()
    (home / "notes.txt").write_text("kept\n")
    if not _lock(home):
        pytest.skip("cannot make a directory read-only here (chattr unavailable)")
    try:
        before = nonce(cli)
        result = cli("deploy", "--mock-tokens", "--kyc", "--account", "test:0", "--home", home, "--rpc", rpc(cli))
        assert_one_line_error(result, "cannot write the deployment registry", "does not take new files")
        assert result.code == 1 and nonce(cli) == before
    finally:
        _unlock(home)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


def test_an_immutable_record_file_sends_nothing(cli, tmp_path):
    """The directory takes files but the record cannot be replaced (chattr +i on the file: root only)."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr")
    home = tmp_path / "home"
    home.mkdir()
    registry = home / "deployments.json"
    registry.write_text("{}\n")
    if not _lock(registry):
        pytest.skip("this file system has no immutable attribute")
    try:
        before = nonce(cli)
        result = cli("deploy", "--account", "test:0", "--home", home, "--rpc", rpc(cli))
        assert_one_line_error(result, f"cannot write the deployment registry {registry}", "immutable")
        assert nonce(cli) == before
    finally:
        _unlock(registry)


# ------------------------------------------------------------ malformed records, every command
def test_a_malformed_record_stops_every_command_and_is_kept(cli, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    registry = home / "deployments.json"
    registry.write_text(json.dumps({KEY: {**GOOD, "tokens": 5}}, indent=2))
    before, text = nonce(cli), registry.read_text()
    fragment = "malformed deployment record: tokens must be an object (symbol => token address), not the integer 5"
    for argv in (
        ["deal", "list"],
        ["deploy", "--account", "test:0"],
        ["deploy", "--force", "--mock-tokens", "--account", "test:0"],
    ):
        result = cli(*argv, "--home", home, "--rpc", rpc(cli))
        assert_one_line_error(result, fragment)
        assert result.code == 1, (argv, result.err)
    assert nonce(cli) == before and registry.read_text() == text
    # a malformed desks.json is not read as "no desk registry" (which deployed a new one)
    registry.unlink()
    (home / "desks.json").write_text(json.dumps({KEY: {"network": KEY}}))
    result = cli("deploy", "--account", "test:0", "--home", home, "--rpc", rpc(cli))
    assert_one_line_error(result, "malformed desk registry record")
    assert nonce(cli) == before and not registry.exists()


# ------------------------------------------------------ recorded as each contract lands
def test_an_interrupted_deploy_keeps_what_it_deployed(cli, tmp_path):
    """Killed while minting the mock tokens: the factory, the MultiSigFactory and each token deployed so far are
    in the record (they used to be recorded all at once, after the last mint)."""
    home = tmp_path / "home"
    env = {**os.environ, "NEXOTC_HOME": str(home)}
    env.pop("NEXOTC_DEBUG", None)
    argv = [*nexotc_command(), "deploy", "--mock-tokens", "--account", "test:0", "--rpc", rpc(cli), "--json"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: list[dict[str, Any]] = []  # the record's successive states
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            path = home / "deployments.json"
            record = json.loads(path.read_text()).get(KEY) if path.exists() else None
            if record is not None and (not seen or record != seen[-1]):
                seen.append(record)
            if record is not None and 0 < len(record.get("tokens", {})) < 3:
                proc.send_signal(signal.SIGKILL)  # mid-deploy: a token landed, the others not yet
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the deploy ended before any token was recorded on its own"
    record = json.loads((home / "deployments.json").read_text())[KEY]
    landed = [record["factory"], record["implementation"], record["multisig_factory"], *record["tokens"].values()]
    assert all(code(cli, a) not in ("0x", "0x0") for a in landed), record
    again = cli.ok("deploy", "--account", "test:0", "--home", home, "--rpc", rpc(cli), "--json").json()
    assert again["already_deployed"] is True and again["tokens"] == record["tokens"]


# ---------------------------------------------------------- a recorded non-factory
def test_a_recorded_factory_that_is_not_one_is_detected(cli, tmp_path):
    home = tmp_path / "home"
    deployed = cli.ok("deploy", "--mock-tokens", "--account", "test:0", "--home", home, "--rpc", rpc(cli), "--json")
    data = deployed.json()
    registry = home / "deployments.json"
    record = json.loads(registry.read_text())
    token = data["tokens"]["WBTC"]
    record[KEY]["factory"] = token
    registry.write_text(json.dumps(record, indent=2))
    before, text = nonce(cli), registry.read_text()
    result = cli("deploy", "--account", "test:0", "--home", home, "--rpc", rpc(cli))
    assert_one_line_error(result, f"the factory recorded for {KEY}", f"({token}) is not an EscrowFactory", "--force")
    assert result.code == 1 and nonce(cli) == before and registry.read_text() == text
    assert_one_line_error(cli("deal", "list", "--home", home, "--rpc", rpc(cli)), "is not an EscrowFactory")
    # what it says to do works, and the token does not become a "replaced factory"
    fresh = cli.ok("deploy", "--force", "--account", "test:0", "--home", home, "--rpc", rpc(cli), "--json").json()
    assert fresh["already_deployed"] is False and "previous" not in fresh
    assert fresh["desk_registry"] == data["desk_registry"]  # the recorded desk registry stays in use
    assert fresh["tokens"] == data["tokens"] and fresh["multisig_factory"] == data["multisig_factory"]
    assert "no deals yet" in cli.ok("deal", "list", "--home", home, "--rpc", rpc(cli)).out


def test_a_recorded_factory_of_another_version_is_named_with_the_way_out(cli, tmp_path, project):
    """A factory whose code is not what this checkout builds (here: one whose deal implementation is another
    contract, as after an upgrade of the checkout) is refused in one line naming the way out, not called with a
    wrong ABI."""
    from eth_abi import encode

    home = tmp_path / "home"
    cli.ok("deploy", "--account", "test:0", "--home", home, "--rpc", rpc(cli))
    wallet_code = bytes.fromhex(project.DepositWallet.contract_type.deployment_bytecode.bytecode[2:])
    args = encode(["bytes", "bytes", "address"], [wallet_code, wallet_code, "0x" + "00" * 20])
    factory_code = project.EscrowFactory.contract_type.deployment_bytecode.bytecode
    receipt = cli.send({"from": DEPLOYER, "data": factory_code + args.hex(), "gas": hex(29_000_000)})
    other = receipt["contractAddress"]
    registry = home / "deployments.json"
    record = json.loads(registry.read_text())
    record[KEY]["factory"] = other
    registry.write_text(json.dumps(record, indent=2))
    result = cli("deal", "list", "--home", home, "--rpc", rpc(cli))
    assert_one_line_error(
        result,
        f"the factory recorded for {KEY}",
        "does not run this nexotc version's DealEscrow code",
        "`nexotc deploy --force`",
    )


# -------------------------------------------------------- malformed addresses
def test_a_malformed_address_is_named_not_looked_up_as_an_alias(cli, tmp_path):
    from eth_utils import is_checksum_address, to_checksum_address

    from nexotc_client.cli.app import load_account, wallet_address

    bad_checksum = "0x23618E81E3f5cdF7f54C3d65f7FBc0aBf5B21E8F"
    assert not is_checksum_address(bad_checksum)
    for resolve in (wallet_address, load_account):
        with pytest.raises(NexotcError, match=f"^bad checksum in the address {bad_checksum}: "):
            resolve(bad_checksum)
        with pytest.raises(NexotcError, match=r"^not an address: '0x1234' \(4 hex digits; an address has 40\)$"):
            resolve("0x1234")
        with pytest.raises(NexotcError, match=r"^not an address: '0xzz12' \(nor an ape account alias\)$"):
            resolve("0xzz12")
    assert wallet_address(bad_checksum.lower()) == to_checksum_address(bad_checksum.lower()) != bad_checksum

    home = tmp_path / "home"
    cli.ok("deploy", "--mock-tokens", "--account", "test:0", "--home", home, "--rpc", rpc(cli))
    at = ["--home", home, "--rpc", rpc(cli)]
    cli.ok("deal", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", *at)
    claim = cli("deal", "claim", "1", "--token", "base", "--to", bad_checksum, "--account", "test:1", *at)
    assert_one_line_error(claim, f"--to: bad checksum in the address {bad_checksum}")
    funder = cli("deal", "deposit-address", "1", "--funder", "0x1234", *at)
    assert_one_line_error(funder, "not an address: '0x1234'")
    assert "no ape account" not in claim.err + funder.err
    assert_one_line_error(cli("deal", "fund", "1", "--account", bad_checksum, *at), "bad checksum in the address")
