"""Round 12 of exploratory testing, KYC: `kyc` commands for a deal use the deal's own registry, not a newer one
`kyc deploy --force` recorded (and `kyc deploy` says that a recorded factory's deals never use a new one); holder
files left stale by issuing before publishing are named with the exact `issuer path` to run (`kyc issue`,
`issuer publish-root`, `kyc prove`); `kyc prove` refuses, before proving, a credential that already attests
another wallet in the scope, and names a wrong secret before a stale path; the secret file stores its commitment
and `kyc secret --show` prints it. Each mistake is one line, and nothing is written. Offline checks run
in-process; the rest on a real anvil, with three real proofs in all."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import Cli, assert_one_line_error, kyc_node_cli

from nexotc_client.cli import run

ROOT = Path(__file__).resolve().parents[2]
DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ADMIN, BUYER, SELLER, OTHER, ISSUER = "test:0", "test:1", "test:2", "test:3", "test:9"


def _fails(capsys: Any, argv: list[Any], *fragments: str, code: int = 1) -> None:
    got = run([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert got == code, (got, captured.out, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------------------------------ offline
def test_the_secret_file_stores_its_commitment_and_secret_show_prints_it(tmp_path, capsys):
    """E: a holder who lost the printed commitment gets it back from the secret file, old files included."""
    from nexotc_client.issuer import HolderSecret

    home = ["--home", str(tmp_path / "home")]
    secret = tmp_path / "holder.secret"
    assert run(["kyc", "secret", "--out", str(secret), "--json", *home]) == 0
    printed = json.loads(capsys.readouterr().out)["commitment"]
    stored = json.loads(secret.read_text())
    assert stored["commitment"] == printed and stored["kind"] == "holder_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert HolderSecret.load(secret).commitment == int(printed)

    assert run(["kyc", "secret", "--show", str(secret), "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out) == {"secret_file": str(secret), "commitment": printed}
    assert run(["kyc", "secret", "--show", str(secret), *home]) == 0
    shown = capsys.readouterr().out
    assert shown.strip() == f"commitment {printed}" and stored["secret"] not in shown  # never the secret itself

    # a file written before the commitment was stored: derived from the secret
    old = tmp_path / "old.secret"
    old.write_text(json.dumps({"format": stored["format"], "kind": "holder_secret", "secret": "12345"}))
    assert run(["kyc", "secret", "--show", str(old), "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out)["commitment"] == str(HolderSecret(12345).commitment)

    # an edited commitment is refused (it would send the issuer the wrong one); nothing is written
    edited = tmp_path / "edited.secret"
    edited.write_text(json.dumps({**stored, "commitment": "7"}))
    _fails(capsys, ["kyc", "secret", "--show", edited, *home], "is inconsistent", "commitment field 7")
    # --out and --show: exactly one
    _fails(capsys, ["kyc", "secret", *home], "--out FILE", "--show FILE", code=2)
    _fails(capsys, ["kyc", "secret", "--out", tmp_path / "x.secret", "--show", secret, *home], "--show", code=2)
    assert not (tmp_path / "x.secret").exists()
    _fails(capsys, ["kyc", "secret", "--out", secret, *home], "never overwritten")


def test_a_wrong_secret_is_named_before_anything_else(tmp_path, capsys):
    """D: the secret is checked against the credential's commitment first (before the chain: a stale path, or no
    node at all, would otherwise be reported instead)."""
    from nexotc_client.issuer import HolderSecret, IssuerStore
    from nexotc_client.zk.credential import Credential

    home = ["--home", str(tmp_path / "home")]
    right, wrong = HolderSecret(111), HolderSecret(222)
    right.save(tmp_path / "right.secret")
    wrong.save(tmp_path / "wrong.secret")
    store = IssuerStore.create(tmp_path / "issuer")
    cred = Credential(secret_commitment=right.commitment, entity_type=1, jurisdiction=756, kyc_level=2,
                      accredited=0, issued_at=1_700_000_000, expires_at=2_500_000_000)  # fmt: skip
    store.issue(cred, "holder").save(tmp_path / "holder.cred")
    _fails(
        capsys,
        ["kyc", "prove", "--credential", tmp_path / "holder.cred", "--secret", tmp_path / "wrong.secret",
         "--policy", "1", "--scope", "777", "--wallet", "0x" + "12" * 20, "--out", tmp_path / "x.proof", *home],
        "this secret does not belong to the credential", f"has commitment {wrong.commitment}",
        f"credential #0 in {tmp_path / 'holder.cred'} was issued to commitment {right.commitment}",
    )  # fmt: skip
    assert not (tmp_path / "x.proof").exists()


# -------------------------------------------------------------------- on a real anvil
@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Factory with a KYC registry and mock tokens; issuer test:9 holds the buyer's credential (#0, published,
    path refreshed); policy #1 (any KYC level)."""
    with kyc_node_cli(tmp_path_factory.mktemp("nexotc-round12-kyc"), ADMIN, ISSUER) as env:
        yield env


def _prove(c: Cli, d: Path, who: str, out: Path, *args: str, secret: str | None = None) -> Any:
    return c("kyc", "prove", "--credential", d / f"{who}.cred", "--secret", d / f"{secret or who}.secret",
             "--policy", "1", *args, "--out", out, "--json", timeout=300)  # fmt: skip


def _commitment(c: Cli, d: Path, who: str) -> str:
    return c.ok("kyc", "secret", "--out", d / f"{who}.secret", "--json").json()["commitment"]


def _issue(c: Cli, d: Path, who: str, commitment: str) -> Any:
    return c.ok("kyc", "issue", "--issuer-dir", d / "issuer", "--commitment", commitment, "--jurisdiction", "756",
                "--kyc-level", "2", "--holder", who, "--out", d / f"{who}.cred", "--json").json()  # fmt: skip


def test_issuing_before_publishing_names_the_stale_holder_files_and_their_refresh(env):
    """B: alice's file is written, then bob's credential changes the tree before it is published: `kyc issue`
    says so, `publish-root` lists the stale holder files with the exact `issuer path` command, and `kyc prove`
    with alice's old file names `nexotc issuer path N` (N: her leaf index). D on chain: with a wrong secret the
    secret is named first."""
    from nexotc_client.issuer import HolderFile

    c, d = env["cli"], env["dir"]
    c.ok("issuer", "path", "0", "--issuer-dir", d / "issuer", "--out", d / "buyer.cred", "--force")
    previous_root = c.ok("issuer", "show", "--issuer-dir", d / "issuer", "--json").json()["root"]
    alice = _issue(c, d, "alice", _commitment(c, d, "alice"))
    assert alice["warnings"] == [] and "provided no other credential is issued or revoked first" in alice["note"]
    bob_commitment = _commitment(c, d, "bob")
    issued = c.ok("kyc", "issue", "--issuer-dir", d / "issuer", "--commitment", bob_commitment, "--jurisdiction",
                  "756", "--kyc-level", "2", "--holder", "bob", "--out", d / "bob.cred")  # fmt: skip
    text = " ".join(issued.out.split())
    index = alice["index"]
    assert f"credential #{index} ({d / 'alice.cred'}) holds a path under a root this tree never published" in text
    assert "warning: " in issued.out

    published = c.ok("issuer", "publish-root", "--issuer-dir", d / "issuer", "--prepare", "1", "--account", ISSUER,
                     "--json").json()  # fmt: skip
    stale = {e["index"]: e for e in published["stale_paths"]}
    assert set(stale) == {0, index}  # bob's file is under this root; the buyer's under the previous one
    assert stale[index]["valid_until"] is None and "never published" in stale[index]["why"]
    assert stale[index]["command"] == (
        f"nexotc issuer path {index} --issuer-dir {d / 'issuer'} --out {d / 'alice.cred'} --force"
    )
    assert stale[0]["path_root"] == previous_root
    assert stale[0]["valid_until"] == published["previous_valid_until"] > 0  # still valid: the root window

    # the holder with the stale file: one line naming the exact refresh, nothing written, nothing proved
    refused = _prove(c, d, "alice", d / "alice.proof", "--scope", "4243", "--account", OTHER)
    assert_one_line_error(
        refused, "the credential's Merkle path is under root", "never published it",
        f"`nexotc issuer path {index} --out FILE` (credential #{index})",
    )  # fmt: skip
    assert not (d / "alice.proof").exists()
    # D: the same stale file with a wrong secret names the secret, not the path
    refused = _prove(c, d, "alice", d / "alice.proof", "--scope", "4243", "--account", OTHER, secret="bob")
    assert_one_line_error(refused, "this secret does not belong to the credential", f"credential #{index}")
    assert "Merkle" not in refused.err and not (d / "alice.proof").exists()

    # the listed command is the refresh: the file's path is then under the published root
    c.ok(*shlex.split(stale[index]["command"])[1:])
    assert str(HolderFile.load(d / "alice.cred").root) == published["root"]
    paths = json.loads((d / "issuer" / "holder_paths.json").read_text())["paths"]
    assert paths[str(index)]["root"] == published["root"]  # recorded: the next publish-root knows it


def test_prove_refuses_a_credential_that_attests_another_wallet_in_the_scope_before_proving(env):
    """C: the nullifier (Poseidon([secret, scope]), computed offline) is looked up before the ~seconds of proving:
    refused in one line, no proof file; the same wallet renewing is allowed (and told that its path is under a
    superseded root once the issuer publishes a newer one)."""
    c, d = env["cli"], env["dir"]
    c.ok("issuer", "path", "0", "--issuer-dir", d / "issuer", "--out", d / "buyer.cred", "--force")
    first = _prove(c, d, "buyer", d / "c1.proof", "--scope", "4242", "--account", BUYER, "--valid-for", "1d")
    assert first.code == 0, first.err
    c.ok("kyc", "submit", d / "c1.proof", "--account", BUYER)
    buyer = c.ok("kyc", "status", BUYER, "--scope", "4242", "--json").json()["wallet"]

    refused = _prove(c, d, "buyer", d / "c2.proof", "--scope", "4242", "--account", OTHER)
    assert_one_line_error(refused, f"this credential already attested {buyer} in this scope", "one wallet per scope")
    assert not (d / "c2.proof").exists()
    assert "zk proof" not in refused.err  # the prover never started

    # a newer root of the issuer (another credential issued and published): the buyer's path is now under the
    # superseded root, still valid for the root window: the renewal proves, and says until when
    _issue(c, d, "carol", _commitment(c, d, "carol"))
    published = c.ok("issuer", "publish-root", "--issuer-dir", d / "issuer", "--account", ISSUER).out
    lines = [" ".join(line.split()) for line in published.splitlines()]
    assert any("holder file(s) hold no path under this root" in line for line in lines), published
    refresh = f"nexotc issuer path 0 --issuer-dir {d / 'issuer'} --out {d / 'buyer.cred'} --force"
    assert any(line.startswith("#0 (buyer): its path is under the superseded root") and line.endswith(refresh)
               for line in lines), published  # fmt: skip
    renewed = _prove(c, d, "buyer", d / "c3.proof", "--scope", "4242", "--account", BUYER)
    assert renewed.code == 0, renewed.err
    warnings = renewed.json()["warnings"]
    assert any("superseded root" in w and "nexotc issuer path 0" in w for w in warnings), warnings
    c.ok("kyc", "submit", d / "c3.proof", "--account", BUYER)


@pytest.fixture(scope="module")
def redeployed(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A gated deal (#1, policy #1) of the recorded factory; the buyer proved for it (not submitted yet)."""
    with kyc_node_cli(tmp_path_factory.mktemp("nexotc-round12-kyc-redeploy"), ADMIN, ISSUER) as env:
        c, d = env["cli"], env["dir"]
        deal = c.ok("deal", "create", "--terms", DVP_EXAMPLE, "--set", "compliance.policy=1", "--account", SELLER,
                    "--json").json()["deal"]  # fmt: skip
        proved = _prove(c, d, "buyer", d / "deal.proof", "--deal", "1", "--account", BUYER)
        assert proved.code == 0, proved.err
        yield {**env, "deal": deal}


def test_kyc_commands_for_a_deal_use_its_own_registry_after_kyc_deploy_force(redeployed):
    """A: `kyc deploy --force` records a new registry, but deal #1 (like every deal of the recorded factory) gates on
    the old one: `kyc submit`, `kyc status --deal` and `kyc prove --deal` use the deal's, and say so."""
    c, d, deal = redeployed["cli"], redeployed["dir"], redeployed["deal"]
    old = redeployed["deployment"]["kyc_registry"]
    factory = redeployed["deployment"]["factory"]

    deployed = c.ok("kyc", "deploy", "--force", "--account", ADMIN, "--json").json()
    new = deployed["address"]
    assert new != old and deployed["factory"] == factory and deployed["factory_kyc_registry"] == old
    (warning,) = deployed["warnings"]
    assert f"the recorded factory {factory}'s deals, existing and future, gate on the kyc registry {old}" in warning
    assert "until `nexotc deploy --force`" in warning
    shown = " ".join(c.ok("kyc", "deploy").out.split())  # already deployed: still says which registry deals use
    assert f"kyc registry already deployed at {new}" in shown and f"gate on the kyc registry {old}" in shown

    # the proof made before is submitted where the deal's gate reads it
    submitted = c.ok("kyc", "submit", d / "deal.proof", "--account", BUYER, "--json").json()
    assert submitted["kyc_registry"] == old and f"deal {deal} gates on the kyc registry {old}" in submitted["note"]
    status = c("kyc", "status", BUYER, "--deal", "1", "--json")
    assert status.code == 0, status.out + status.err
    data = status.json()
    assert data["compliant"] is True and data["kyc_registry"] == old and new in data["note"]
    text = " ".join(c.ok("kyc", "status", BUYER, "--deal", "1").out.split())
    assert f"note: deal {deal} gates on the kyc registry {old}, not on the one this home records ({new})" in text
    assert "compliant with #1: yes" in text
    # the deal's gate agrees (the deal asks its own registry)
    assert c.ok("deal", "show", deal, "--json").json()["compliance"]["principals"][0]["compliant_now"] is True
    # prove --deal reads the deal's registry too: the attestation in force there is named (the new registry has no
    # policy #1 at all), before any proving
    refused = _prove(c, d, "buyer", d / "again.proof", "--deal", "1", "--account", BUYER)
    assert_one_line_error(refused, "already attested for policy #1 in this scope", "only a later expiry extends it")
    assert not (d / "again.proof").exists()
