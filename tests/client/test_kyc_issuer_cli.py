"""`nexotc issuer ...` and `nexotc kyc ...` refusals and outputs found by exploratory testing: a wrong
--issuer-dir never passes for an empty tree, publishing an empty or foreign tree needs --force, revocation
names the root window, the registry admin's commands (expire-root, set-root-window, the two-step admin
transfer), malformed or edited proof files, scopes outside the field, issuing mistakes, clearer errors and
one-line --calldata. Offline checks run in-process; the rest on a real anvil with real proofs."""

from __future__ import annotations

import json
import os
import pty
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, nexotc_command, node_cli

from nexotc_client.cli import run

R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
ISSUER, HOLDER, BUYER, OUTSIDER, ADMIN, NEW_ADMIN = "test:9", "test:1", "test:2", "test:7", "test:0", "test:4"
HEX = re.compile(r"0x[0-9a-f]{64,}")


# ------------------------------------------------------------------------------------------ offline
def _run(capsys: Any, *argv: str | Path) -> tuple[int, str, str]:
    code = run([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fails(capsys: Any, *argv: str | Path, fragments: tuple[str, ...], code: int = 1) -> None:
    got, out, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert got == code, (got, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _issue_args(issuer_dir: Path, commitment: str, out: Path, *extra: str) -> list[str | Path]:
    return ["kyc", "issue", "--issuer-dir", issuer_dir, "--commitment", commitment, "--jurisdiction", "756",
            "--kyc-level", "2", "--out", out, *extra]  # fmt: skip


def test_a_wrong_issuer_dir_is_refused_and_only_init_creates_a_tree(tmp_path, capsys):
    home = ["--home", str(tmp_path / "home")]
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.mkdir()
    for where, why in ((missing, "does not exist"), (empty, "holds no issuer tree")):
        for argv in (
            ["issuer", "show", "--issuer-dir", where],
            ["issuer", "path", "0", "--issuer-dir", where, "--out", tmp_path / "p.json"],
            ["issuer", "revoke-credential", "0", "--issuer-dir", where],
            _issue_args(where, "5", tmp_path / "c.json"),
        ):
            _fails(capsys, *argv, *home, fragments=(why, "nexotc issuer init"))
        assert not (where / "tree.json").exists() and not (tmp_path / "c.json").exists()
    # the default directory (<home>/issuer) too
    _fails(capsys, "issuer", "show", *home, fragments=("does not exist",))
    code, out, _ = _run(capsys, "issuer", "init", "--issuer-dir", empty, "--json", *home)
    assert code == 0 and json.loads(out)["directory"] == str(empty)
    _fails(capsys, "issuer", "init", "--issuer-dir", empty, *home, fragments=("already holds an issuer tree",))
    code, out, _ = _run(capsys, "issuer", "show", "--issuer-dir", empty, "--json", *home)
    assert code == 0 and json.loads(out)["live_credentials"] == 0


def test_issue_refuses_overwrites_expired_credentials_bad_commitments_and_duplicates(tmp_path, capsys):
    from nexotc_client.issuer import HolderFile

    home = ["--home", str(tmp_path / "home")]
    issuer_dir = tmp_path / "issuer"
    issuer_address = "0x" + "ab" * 20
    assert _run(capsys, "issuer", "init", "--issuer-dir", issuer_dir, "--issuer", issuer_address, *home)[0] == 0
    cred = tmp_path / "holder.cred"
    assert _run(capsys, *_issue_args(issuer_dir, "12345", cred, "--holder", "holder"), *home)[0] == 0
    # the holder file names the issuer when the tree knows it
    holder = HolderFile.load(cred)
    assert holder.issuer is not None and holder.issuer.lower() == issuer_address
    before = (issuer_dir / "tree.json").read_text()

    other = tmp_path / "other.cred"
    _fails(capsys, *_issue_args(issuer_dir, "777", cred), *home, fragments=("exists", "--force"))
    _fails(capsys, *_issue_args(issuer_dir, "777", other, "--expires", "2001-01-01"), *home,
           fragments=("--expires", "not in the future"))  # fmt: skip
    _fails(capsys, *_issue_args(issuer_dir, "0", other), *home, fragments=("--commitment", "non-zero"))
    _fails(capsys, *_issue_args(issuer_dir, str(R), other), *home, fragments=("--commitment", "field element"))
    _fails(capsys, *_issue_args(issuer_dir, "12345abc", other), *home,
           fragments=("--commitment", "decimal integer", "nexotc kyc secret"))  # fmt: skip
    # the same holder commitment with other attributes: the holder could pick which one to prove
    dup = ["kyc", "issue", "--issuer-dir", issuer_dir, "--commitment", "12345", "--jurisdiction", "840",
           "--kyc-level", "3", "--out", other]  # fmt: skip
    _fails(capsys, *dup, *home, fragments=("already has a live credential (#0)", "--replace"))
    assert (issuer_dir / "tree.json").read_text() == before and not other.exists()

    # --replace revokes the earlier leaf in the same step; --force overwrites the holder file
    code, out, _ = _run(capsys, *dup, "--replace", "--json", *home)
    assert code == 0 and json.loads(out)["replaced"] == [0] and json.loads(out)["index"] == 1
    code, out, _ = _run(capsys, "issuer", "show", "--issuer-dir", issuer_dir, "--json", *home)
    shown = json.loads(out)
    assert [c["revoked"] for c in shown["credentials"]] == [True, False] and shown["live_credentials"] == 1
    assert _run(capsys, *_issue_args(issuer_dir, "4242", cred, "--force"), *home)[0] == 0
    # issuer show: ISO dates in the human output (the --json keeps unix times)
    code, out, _ = _run(capsys, "issuer", "show", "--issuer-dir", issuer_dir, *home)
    assert code == 0 and re.search(r"expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", out), out


def _proof_json(scope: int = 777, wallet: str = "0x" + "12" * 20, now: int = 1_800_000_000) -> dict[str, Any]:
    """A proof file as `kyc prove` writes it (the points are not a real proof: only disclose reads it offline)."""
    from nexotc_client.issuer import ProofFile
    from nexotc_client.zk.credential import Credential, audit_commitment, binding, new_salts
    from nexotc_client.zk.prover import Proof

    cred = Credential(secret_commitment=99, entity_type=1, jurisdiction=756, kyc_level=2, accredited=1,
                      issued_at=now - 10, expires_at=now + 86_400)  # fmt: skip
    salts = new_salts()
    until = now + 3_600
    signals = (5, audit_commitment(cred, salts), 6, 7, scope, binding(wallet, now, until))
    proof = Proof(a=(1, 2), b=((3, 4), (5, 6)), c=(7, 8), public_signals=signals)
    return ProofFile(proof, 1, wallet, scope, now, until, cred, salts).to_json()


def test_malformed_or_edited_proof_files_are_refused(tmp_path, capsys):
    home = ["--home", str(tmp_path / "home")]
    good = tmp_path / "good.proof"
    good.write_text(json.dumps(_proof_json()))
    disclosure = tmp_path / "d.json"
    code, out, err = _run(capsys, "kyc", "disclose", good, "--field", "jurisdiction", "--out", disclosure, *home)
    assert code == 0, err

    def variant(name: str, edit: Any) -> Path:
        data = _proof_json()
        edit(data)
        path = tmp_path / f"{name}.proof"
        path.write_text(json.dumps(data))
        return path

    cases = {
        "seven": (lambda d: d["proof"]["proof"].pop(), "7 elements, expected 8"),
        "huge": (lambda d: d["proof"]["proof"].__setitem__(3, str(2**256 + 1)), "proof.proof[3]"),
        "negative": (lambda d: d["proof"]["proof"].__setitem__(0, "-1"), "outside the base field"),
        "signal": (lambda d: d["proof"]["public_signals"].__setitem__("scope", str(R)), "public_signals.scope"),
        "letters": (lambda d: d["proof"]["proof"].__setitem__(1, "12ab"), "not an integer"),
        "nosignals": (lambda d: d["proof"].pop("public_signals"), "public_signals"),
        "nosalt": (lambda d: d["private"]["salts"].pop("kyc_level"), "no salt for kyc_level"),
    }
    for name, (edit, fragment) in cases.items():
        path = variant(name, edit)
        _fails(capsys, "kyc", "disclose", path, "--field", "jurisdiction", "--out", tmp_path / "x.json", *home,
               fragments=(f"proof file {path} is malformed", fragment))  # fmt: skip
    # the file's own fields must agree with the public signals (what the registry checks)
    edits = {
        "scope": (lambda d: d.__setitem__("scope", "888"), "its scope field says 888"),
        "wallet": (lambda d: d.__setitem__("wallet", "0x" + "34" * 20), "its wallet field"),
        "now": (lambda d: d.__setitem__("now", d["now"] + 1), "its now field"),
        "until": (lambda d: d.__setitem__("valid_until", d["valid_until"] + 1), "its valid_until field"),
        # the private part must open the proof's audit commitment, or every disclosure from it fails later
        "salt": (lambda d: d["private"]["salts"].__setitem__("jurisdiction", "5"), "do not open the proof's audit"),
        "field": (
            lambda d: d["private"]["credential"].__setitem__("jurisdiction", 826),
            "do not open the proof's audit",
        ),
    }
    for name, (edit, fragment) in edits.items():
        path = variant(name, edit)
        _fails(capsys, "kyc", "disclose", path, "--field", "jurisdiction", "--out", tmp_path / "x.json", *home,
               fragments=("is inconsistent", fragment))  # fmt: skip
    # disclose never overwrites silently
    before = disclosure.read_text()
    _fails(capsys, "kyc", "disclose", good, "--field", "kyc_level", "--out", disclosure, *home,
           fragments=("exists", "--force"))  # fmt: skip
    assert disclosure.read_text() == before
    assert _run(capsys, "kyc", "disclose", good, "--field", "kyc_level", "--out", disclosure, "--force", *home)[0] == 0
    assert disclosure.read_text() != before


# ------------------------------------------------------------------------------------------- chain
@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A registry (root window 1h) with an issuer (test:9) whose tree holds the holder's credential
    (published), and policy #1 (any KYC level, no deny list)."""
    d = tmp_path_factory.mktemp("nexotc-kyc-issuer")
    with node_cli(d / "home") as c:
        c.ok("kyc", "deploy", "--account", ADMIN)
        c.ok("issuer", "grant", ISSUER, "--label", "Acme KYC", "--account", ADMIN)
        c.ok("issuer", "init", "--issuer-dir", d / "issuer", "--issuer", ISSUER)
        commitments = {}
        for who in ("holder", "buyer"):
            commitments[who] = c.ok("kyc", "secret", "--out", d / f"{who}.secret", "--json").json()["commitment"]
            c.ok("kyc", "issue", "--issuer-dir", d / "issuer", "--commitment", commitments[who], "--jurisdiction",
                 "756", "--kyc-level", "2", "--holder", who, "--out", d / f"{who}.cred")  # fmt: skip
        c.ok("issuer", "publish-root", "--issuer-dir", d / "issuer", "--account", ISSUER)
        for who in ("holder", "buyer"):
            index = "0" if who == "holder" else "1"
            # the refreshed path replaces the holder file `kyc issue` wrote: only with --force
            assert_one_line_error(
                c("issuer", "path", index, "--issuer-dir", d / "issuer", "--out", d / f"{who}.cred"),
                "exists", "--force",
            )  # fmt: skip
            c.ok("issuer", "path", index, "--issuer-dir", d / "issuer", "--out", d / f"{who}.cred", "--force")
        c.ok("kyc", "policy", "register", "--label", "any", "--account", ADMIN)
        yield {"cli": c, "dir": d}


def _prove(c: Cli, d: Path, who: str, account: str, scope: str, out: Path, *extra: str) -> Any:
    return c("kyc", "prove", "--credential", d / f"{who}.cred", "--secret", d / f"{who}.secret", "--policy", "1",
             "--scope", scope, "--account", account, "--out", out, *extra, timeout=300)  # fmt: skip


def test_publish_root_refuses_an_empty_or_foreign_tree_and_names_the_window(env):
    c, d = env["cli"], env["dir"]
    c.ok("issuer", "grant", "test:8", "--account", ADMIN)
    # a new issuer with an empty tree: refused (it would revoke everything it ever issued), --force publishes
    c.ok("issuer", "init", "--issuer-dir", d / "empty", "--issuer", "test:8")
    assert_one_line_error(
        c("issuer", "publish-root", "--issuer-dir", d / "empty", "--account", "test:8"),
        "no live credential", "--force",
    )  # fmt: skip
    # the main issuer publishing another (non-empty) tree than the one that published its current root
    c.ok("issuer", "init", "--issuer-dir", d / "stray")
    c.ok("kyc", "issue", "--issuer-dir", d / "stray", "--commitment", "31337", "--jurisdiction", "756",
         "--kyc-level", "1", "--out", d / "stray.cred")  # fmt: skip
    current = c.ok("issuer", "show", "--issuer-dir", d / "issuer", "--json").json()["root"]
    result = c("issuer", "publish-root", "--issuer-dir", d / "stray", "--account", ISSUER)
    assert_one_line_error(result, f"current root on chain ({current}) is not this tree's", "wrong --issuer-dir")
    # ... a tree recorded as another issuer's
    assert_one_line_error(
        c("issuer", "publish-root", "--issuer-dir", d / "issuer", "--account", "test:8"), "is issuer", "not"
    )
    # the right tree, after a revocation: the output names the window (read from chain)
    c.ok("kyc", "secret", "--out", d / "third.secret")
    third = json.loads((d / "third.secret").read_text())["secret"]
    from nexotc_client.zk.credential import secret_commitment

    c.ok("kyc", "issue", "--issuer-dir", d / "issuer", "--commitment", str(secret_commitment(int(third))),
         "--jurisdiction", "756", "--kyc-level", "1", "--out", d / "third.cred")  # fmt: skip
    # (a fourth credential, so that revoking the third gives a root never published)
    c.ok("kyc", "issue", "--issuer-dir", d / "issuer", "--commitment", "4444", "--jurisdiction", "756",
         "--kyc-level", "1", "--out", d / "fourth.cred")  # fmt: skip
    revoked = c.ok("issuer", "revoke-credential", "2", "--issuer-dir", d / "issuer")
    assert "root window, 1h" in revoked.out and "attestations already recorded stay until their expiry" in revoked.out
    published = c.ok("issuer", "publish-root", "--issuer-dir", d / "issuer", "--prepare", "1", "--account", ISSUER)
    text = " ".join(published.out.split())
    assert f"the previous root {current} stays valid until" in text and "root window, 1h" in text, text
    assert "prepared for policy #1 tx 0x" in text, text  # the prepare transactions are shown too
    data = c.ok("issuer", "show", "--issuer-dir", d / "issuer", "--json").json()
    assert data["live_credentials"] == 3 and list(data["published"].values())[0]["root"] == data["root"]
    help_text = " ".join(c.ok("issuer", "revoke-credential", "--help").out.split())
    assert "root window" in help_text and "until their own expiry" in help_text
    # --force publishes the empty tree
    forced = c.ok("issuer", "publish-root", "--issuer-dir", d / "empty", "--force", "--account", "test:8", "--json")
    assert forced.json()["live_credentials"] == 0


def test_issuer_grant_and_revoke_are_checked_and_an_expired_root_is_explained(env):
    c, d = env["cli"], env["dir"]
    assert_one_line_error(c("issuer", "revoke", OUTSIDER, "--account", ADMIN), "is not an issuer")
    assert_one_line_error(c("issuer", "revoke", OUTSIDER, "--calldata"), "is not an issuer")
    assert_one_line_error(c("issuer", "grant", ISSUER, "--account", ADMIN), "is already an issuer")
    assert_one_line_error(c("issuer", "grant", OUTSIDER, "--account", OUTSIDER), "is not the registry admin")
    # a revoked and re-granted issuer: its tree's root was expired by the revocation
    c.ok("issuer", "grant", "test:6", "--account", ADMIN)
    c.ok("issuer", "init", "--issuer-dir", d / "six", "--issuer", "test:6")
    c.ok("kyc", "issue", "--issuer-dir", d / "six", "--commitment", "6006", "--jurisdiction", "756",
         "--kyc-level", "1", "--out", d / "six.cred")  # fmt: skip
    c.ok("issuer", "publish-root", "--issuer-dir", d / "six", "--account", "test:6")
    c.ok("issuer", "revoke", "test:6", "--account", ADMIN)
    assert_one_line_error(c("issuer", "revoke", "test:6", "--account", ADMIN), "is not an issuer")
    c.ok("issuer", "grant", "test:6", "--account", ADMIN)
    assert_one_line_error(
        c("issuer", "publish-root", "--issuer-dir", d / "six", "--account", "test:6"),
        "was expired on chain", "a changed tree gives a new root",
    )  # fmt: skip


def test_calldata_is_one_plain_line(env):
    c = env["cli"]
    for argv in (("issuer", "grant", OUTSIDER, "--label", "a label long enough to fold a line"),
                 ("issuer", "set-root-window", "2h"), ("kyc", "policy", "register", "--deny", "408")):  # fmt: skip
        result = c.ok(*argv, "--calldata")
        lines = result.out.strip().splitlines()
        assert len(lines) == 1 and HEX.search(lines[0]), result.out
        data = c.ok(*argv, "--calldata", "--json").json()["data"]
        assert data in lines[0]


def _in_a_terminal(c: Cli, *args: str | Path) -> tuple[int, str]:
    """Run nexotc with a pseudo-terminal as stdout and stderr (spinners on); returns (exit code, output)."""
    env = {**os.environ, "NEXOTC_HOME": str(c.home), "COLUMNS": "400"}
    env.pop("NEXOTC_DEBUG", None)
    env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    argv = [*nexotc_command(), *map(str, args)]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(ROOT)
        os.execvpe(argv[0], argv, env)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def test_scopes_outside_the_field_are_refused_and_status_exits_3_when_not_compliant(env):
    c, d = env["cli"], env["dir"]
    for scope in ("-5", str(R), str(2**254), str(2**256 + 3), "12ab"):
        assert_one_line_error(c("kyc", "status", BUYER, "--scope", scope), "--scope")
        result = _prove(c, d, "buyer", BUYER, scope, d / "never.proof")
        assert_one_line_error(result, "--scope")
        assert not (d / "never.proof").exists()
    result = c("kyc", "status", BUYER, "--scope", "777", "--json")
    assert result.code == 3 and result.json()["compliant"] is False
    assert c("kyc", "status", BUYER, "--scope", "777").code == 3
    help_text = " ".join(c.ok("kyc", "status", "--help").out.split())
    assert "3 when not" in help_text


def test_prove_and_submit_name_the_problem(env):
    c, d = env["cli"], env["dir"]
    for who, index in (("holder", "0"), ("buyer", "1")):  # paths under the issuer's current root
        c.ok("issuer", "path", index, "--issuer-dir", d / "issuer", "--out", d / f"{who}.cred", "--force")
    no_wallet = c("kyc", "prove", "--credential", d / "holder.cred", "--secret", d / "holder.secret", "--policy",
                  "1", "--scope", "777", "--out", d / "x.proof")  # fmt: skip
    assert_one_line_error(no_wallet, "--wallet")
    assert "sends a transaction" not in no_wallet.err
    assert_one_line_error(_prove(c, d, "holder", HOLDER, "777", d / "x.proof", "--valid-for", "0"), "--valid-for")

    # one spinner while proving on a terminal (the prover's stages), not two fighting over the line
    code, output = _in_a_terminal(
        c, "kyc", "prove", "--credential", d / "holder.cred", "--secret", d / "holder.secret", "--policy", "1",
        "--scope", "777", "--account", HOLDER, "--out", d / "holder.proof",
    )  # fmt: skip
    assert code == 0, output
    assert "zk proof" in output and "proving (Groth16, snarkjs)" not in output, output
    assert re.search(r"valid until \d{4}-\d\d-\d\d", output), output

    # a proof file holds the salts that open its audit commitment: never overwritten without --force
    before = (d / "holder.proof").read_text()
    assert_one_line_error(_prove(c, d, "holder", HOLDER, "777", d / "holder.proof"), "exists", "--force")
    assert (d / "holder.proof").read_text() == before

    # a file whose scope was edited (the proof says 777): refused, nothing sent
    data = json.loads((d / "holder.proof").read_text())
    data["scope"] = "888"
    (d / "edited.proof").write_text(json.dumps(data))
    assert_one_line_error(c("kyc", "submit", d / "edited.proof", "--account", HOLDER), "inconsistent", "888")
    assert c("kyc", "status", HOLDER, "--scope", "888").code == 3

    submitted = c.ok("kyc", "submit", d / "holder.proof", "--account", HOLDER, "--json").json()
    assert submitted["scope"] == "777" and [e["name"] for e in submitted["events"]] == ["Attested"]
    status = c.ok("kyc", "status", HOLDER, "--scope", "777")
    assert re.search(r"expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", status.out), status.out
    assert isinstance(c.ok("kyc", "status", HOLDER, "--scope", "777", "--json").json()["expiry"], int)
    # the same proof again: already attested until its expiry (not "nullifier used")
    again = c("kyc", "submit", d / "holder.proof", "--account", HOLDER)
    assert_one_line_error(again, "already attested", "until 20", "only a later expiry extends it")

    # a proof submitted more than 5 minutes after it was made: re-prove
    assert _prove(c, d, "buyer", BUYER, "778", d / "buyer.proof").code == 0
    c.rpc("evm_increaseTime", [601])
    c.rpc("evm_mine", [])
    late = c("kyc", "submit", d / "buyer.proof", "--account", BUYER)
    assert_one_line_error(late, "proof time too old", "re-run `nexotc kyc prove`")


def test_policies_show_entity_names_and_the_word_as_an_int(env):
    c = env["cli"]
    registered = c.ok("kyc", "policy", "register", "--entities", "business", "--min-kyc-level", "1",
                      "--account", ADMIN, "--json").json()  # fmt: skip
    assert registered["policy_word"] == 1 | 2 << 9
    listed = {p["policy_id"]: p for p in c.ok("kyc", "policy", "list", "--json").json()}
    assert listed[registered["policy_id"]]["policy_word"] == registered["policy_word"]
    assert listed[registered["policy_id"]]["params"]["entities"] == ["business"]
    text = c.ok("kyc", "policy", "list").out
    assert "entities individual and business" in text and "entities business," in text and "mask" not in text


def test_registry_admin_expires_roots_sets_the_window_and_transfers_in_two_steps(env):
    c, d = env["cli"], env["dir"]
    # set-root-window
    assert_one_line_error(c("issuer", "set-root-window", "2h", "--account", OUTSIDER), "is not the registry admin")
    assert_one_line_error(c("issuer", "set-root-window", "31d", "--account", ADMIN), "at most 30 days")
    done = c.ok("issuer", "set-root-window", "7200", "--account", ADMIN, "--json").json()
    assert done["root_window"] == 7200 and [e["name"] for e in done["events"]] == ["RootWindowSet"]
    called = c.ok("issuer", "set-root-window", "1h", "--calldata", "--json").json()
    assert called["method"] == "set_root_window" and called["data"].endswith(f"{3600:064x}")
    # expire-root: a root never published, one expired by its issuer's revocation, the current one
    unpublished = c.ok("issuer", "show", "--issuer-dir", d / "stray", "--json").json()["root"]
    assert_one_line_error(c("issuer", "expire-root", unpublished, "--account", ADMIN), "unknown to the kyc registry")
    root = c.ok("issuer", "show", "--issuer-dir", d / "six", "--json").json()["root"]  # expired by the revocation
    assert_one_line_error(c("issuer", "expire-root", root, "--account", ADMIN), "already expired")
    current = c.ok("issuer", "show", "--issuer-dir", d / "issuer", "--json").json()["root"]
    assert_one_line_error(c("issuer", "expire-root", current, "--account", OUTSIDER), "is not the registry admin")
    assert_one_line_error(c("issuer", "expire-root", "nope", "--account", ADMIN), "root: not an integer")
    assert c.ok("issuer", "expire-root", current, "--calldata", "--json").json()["method"] == "expire_root"
    expired = c.ok("issuer", "expire-root", current, "--account", ADMIN, "--json").json()
    assert [e["name"] for e in expired["events"]] == ["RootExpired"]
    assert_one_line_error(c("issuer", "expire-root", current, "--account", ADMIN), "already expired")
    # two-step admin transfer
    assert_one_line_error(c("issuer", "propose-admin", NEW_ADMIN, "--account", OUTSIDER), "is not the registry admin")
    assert_one_line_error(c("issuer", "accept-admin", "--account", NEW_ADMIN), "no registry admin is proposed")
    assert_one_line_error(c("issuer", "propose-admin", ADMIN, "--account", ADMIN), "already the registry admin")
    # withdrawing a proposal when none is pending, or proposing the pending admin again, sends nothing
    assert c.ok("issuer", "propose-admin", "none", "--account", ADMIN).out.strip() == (
        "no admin proposal is pending; nothing sent"
    )
    c.ok("issuer", "propose-admin", NEW_ADMIN, "--account", ADMIN)
    assert c.ok("issuer", "propose-admin", NEW_ADMIN, "--account", ADMIN, "--json").json()["changed"] is False
    accept = c.ok("issuer", "accept-admin", "--calldata", "--json").json()
    new_admin_address = c.rpc("eth_accounts", [])[int(NEW_ADMIN[5:])]
    assert accept["method"] == "accept_admin" and accept["executor"].lower() == new_admin_address.lower()
    assert_one_line_error(c("issuer", "accept-admin", "--account", OUTSIDER), "is not the proposed registry admin")
    moved = c.ok("issuer", "accept-admin", "--account", NEW_ADMIN, "--json").json()
    assert [e["name"] for e in moved["events"]] == ["AdminTransferred"]
    assert_one_line_error(c("issuer", "set-root-window", "1h", "--account", ADMIN), "is not the registry admin")
    c.ok("issuer", "set-root-window", "1h", "--account", NEW_ADMIN)
    c.ok("issuer", "propose-admin", ADMIN, "--account", NEW_ADMIN)  # back, for the tests after this one
    c.ok("issuer", "accept-admin", "--account", ADMIN)
