"""`audit verify` takes its authority from the chain, not from the bundle: on a real anvil with real proofs,
a gated deal (buyer and seller attested in the desk's KYCRegistry, the buyer disclosing its jurisdiction)
and an attacker's own KYCRegistry where the buyer's wallet holds a US credential the attacker issued.

- a bundle pointed at the attacker's registry (with its attestation and disclosure), at another factory, or
  at something that is not a nexotc deal is named mismatch by mismatch;
- the events list: a duplicate, a reordering, an event after the snapshot are mismatches; a bundle cut at
  an earlier snapshot verifies "as of block N" and reports the later events;
- an altered attestation names the field with both values; an altered disclosure nullifier is flagged;
- the CLI verifies from an empty home (only --rpc), prints human text, and `export --out` never overwrites
  silently.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clikit import Cli, assert_one_line_error
from kyckit import DAY, EU_PRO, US, Credentials, params

from nexotc_client.audit import export_bundle, verify_bundle
from nexotc_client.chain.deal import Deal
from nexotc_client.chain.deployment import Registry, deploy_factory
from nexotc_client.chain.factory import Factory
from nexotc_client.chain.kyc import KycRecords, KYCRegistry, deploy_kyc_registry
from nexotc_client.issuer import Disclosure, ProofFile
from nexotc_client.terms import Leg, Terms, even_tranches
from nexotc_client.zk.credential import ENTITY_INDIVIDUAL, new_salts
from nexotc_client.zk.prover import Prover

BTC = 10**8
USD6 = 10**6


@dataclass
class World:
    home: Path
    factory: Factory
    kyc: KYCRegistry
    rogue_kyc: KYCRegistry
    deal: Deal
    bundle: dict[str, Any]
    rogue_attestation: dict[str, Any]
    rogue_disclosure: Disclosure
    rpc: str


def _prove(prover: Prover, creds: Credentials, name: str, wallet: str, scope: int, policy_id: int, now: int):
    salts = new_salts()
    until = now + 30 * DAY
    proof = prover.prove(creds.inputs(name, wallet, scope, now, until, EU_PRO, salts))
    return ProofFile(proof, policy_id, wallet, scope, now, until, creds.creds[name], salts)


@pytest.fixture(scope="module")
def world(tmp_path_factory, chain, accounts, desk, buyer, seller, resolver, attacker, wbtc, usdt) -> World:
    issuer = accounts[9]
    home = tmp_path_factory.mktemp("nexotc-audit-home")
    t0 = int(chain.blocks.head.timestamp)

    # the desk's registry and the factory whose deals gate on it (recorded in `home`, as `nexotc deploy`)
    kyc = deploy_kyc_registry(desk, records=KycRecords(home / "kyc.json"))
    factory = deploy_factory(desk, registry=Registry(home / "deployments.json"), kyc_registry=kyc.address)
    creds = Credentials.build(t0)
    kyc.set_issuer(issuer.address, True, "Acme KYC", desk)
    kyc.publish_root(creds.tree.root, issuer)
    policy_id, _ = kyc.register_policy(params(EU_PRO), "EU professional", desk)

    # the attacker's own registry: it grants itself issuer and issues the buyer's wallet a US credential
    rogue_kyc = deploy_kyc_registry(attacker, records=KycRecords(home / "attacker" / "kyc.json"))
    rogue_creds = Credentials.build(t0, seed=99)
    year = dict(issued_at=t0 - 30 * DAY, expires_at=t0 + 365 * DAY)
    rogue_creds.add(
        "american", random.Random(7), entity_type=ENTITY_INDIVIDUAL, jurisdiction=US, kyc_level=3, accredited=1, **year
    )
    rogue_kyc.set_issuer(attacker.address, True, "Totally Legit KYC", attacker)
    rogue_kyc.publish_root(rogue_creds.tree.root, attacker)
    rogue_policy, _ = rogue_kyc.register_policy(params(EU_PRO), "EU professional", attacker)

    now = int(chain.pending_timestamp)
    terms = Terms.build(
        base=Leg(wbtc.address, 5 * BTC),
        quote=Leg(usdt.address, 325_000 * USD6),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=even_tranches(5 * BTC, 325_000 * USD6, 1, now + 600, DAY, DAY),
        funding_deadline=now + DAY,
        final_expiry=now + 30 * DAY,
        policy_id=policy_id,
    ).validate(now)
    address = factory.predict(terms, seller.address, "audit-0001")
    scope = int(address, 16)
    block_time = int(chain.blocks.head.timestamp)
    with Prover(progress=False) as prover:
        buyer_proof = _prove(prover, creds, "swiss", buyer.address, scope, policy_id, block_time)
        seller_proof = _prove(prover, creds, "uk_business", seller.address, scope, policy_id, block_time)
        rogue_proof = _prove(prover, rogue_creds, "american", buyer.address, scope, rogue_policy, block_time)
    kyc.submit_proof(buyer_proof.proof, policy_id, buyer)
    kyc.submit_proof(seller_proof.proof, policy_id, seller)
    rogue = rogue_kyc.submit_proof(rogue_proof.proof, rogue_policy, buyer)
    assert [e.name for e in rogue.events] == ["Attested"]

    wbtc.mint(seller, terms.base.amount, sender=seller)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    deal = factory.create(terms, seller, salt="audit-0001", fund=True)  # DealCreated + Funded, one block
    assert deal.address == address
    chain.mine()
    deal.fund(buyer)  # Funded, a later block

    bundle = export_bundle(deal, kyc, [buyer_proof.disclose(["jurisdiction"])])
    assert [e["name"] for e in bundle["events"]] == ["DealCreated", "Funded", "Funded"]
    assert bundle["events"][1]["block"] < bundle["events"][2]["block"]
    rogue_attestation = rogue_kyc.latest_attestation(buyer.address, scope)
    assert rogue_attestation is not None
    return World(
        home=home,
        factory=factory,
        kyc=kyc,
        rogue_kyc=rogue_kyc,
        deal=deal,
        bundle=bundle,
        rogue_attestation=rogue_attestation.to_dict(),
        rogue_disclosure=rogue_proof.disclose(["jurisdiction"]),
        rpc=str(chain.provider.uri),
    )


def forged(world: World) -> dict[str, Any]:
    return copy.deepcopy(world.bundle)


def cli_at(home: Path, world: World) -> Cli:
    port = int(world.rpc.rsplit(":", 1)[1].strip("/"))
    return Cli(home=home, port=port, state={})


# ----------------------------------------------------------------- baseline
def test_the_exported_bundle_verifies(world):
    assert verify_bundle(world.bundle, world.factory, world.kyc) == []
    assert world.bundle["kyc_registry"] == world.kyc.address
    assert world.bundle["disclosures"]["buyer"]["opening"]["opened"]["jurisdiction"]["value"] == "756"


# ------------------------------------------------ item 1: contracts from the chain
def test_a_bundle_pointed_at_the_attackers_registry_is_named(world):
    """The attacker swaps in its own registry, its attestation of the buyer and a disclosure opening it: the
    deal gates on the desk's registry, and the chain's attestation is checked, not the bundle's."""
    bundle = forged(world)
    bundle["kyc_registry"] = world.rogue_kyc.address
    bundle["attestations"]["buyer"] = world.rogue_attestation
    bundle["disclosures"]["buyer"] = world.rogue_disclosure.to_json()
    assert bundle["disclosures"]["buyer"]["opening"]["opened"]["jurisdiction"]["value"] == str(US)
    # what the old `audit verify` did: take the bundle's registry to check against
    problems = verify_bundle(bundle, world.factory, world.rogue_kyc)
    assert f"kyc registry: bundle {world.rogue_kyc.address}, deal gates on {world.kyc.address}" in problems
    assert f"kyc registry: expected {world.rogue_kyc.address}, deal gates on {world.kyc.address}" in problems
    assert any(p.startswith("attestation of the buyer: ") and "nullifier differs" in p for p in problems), problems
    assert any(p.startswith("disclosure of the buyer: audit commitment differs") for p in problems), problems
    assert any(p.startswith("disclosure of the buyer: nullifier differs") for p in problems), problems


def test_the_export_takes_the_registry_from_the_deal(world):
    from nexotc_client.chain.errors import NexotcError

    with pytest.raises(NexotcError, match=f"gates on the kyc registry {world.kyc.address}"):
        export_bundle(world.deal, world.rogue_kyc)
    assert export_bundle(world.deal)["kyc_registry"] == world.kyc.address


def test_a_bundle_naming_another_factory_is_named(world, desk, tmp_path):
    other = deploy_factory(desk, registry=Registry(tmp_path / "deployments.json"), kyc_registry=world.kyc.address)
    bundle = forged(world)
    bundle["factory"] = other.address
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert problems == [f"factory: bundle {other.address}, the deal's factory {world.factory.address}"]
    # an auditor who pins the other factory is told the deal is not of it
    problems = verify_bundle(world.bundle, other, world.kyc)
    assert problems == [f"factory: expected {other.address}, the deal's factory {world.factory.address}"]


def test_something_that_is_not_a_nexotc_deal_is_refused(world, wbtc):
    from nexotc_client.audit import resolve_deal
    from nexotc_client.chain.errors import NexotcError

    bundle = forged(world)
    bundle["deal"] = wbtc.address
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert problems == [f"deal: {wbtc.address} is not a nexotc deal"], problems
    # a factory address that does not run EscrowFactory's code is not believed
    with pytest.raises(NexotcError, match="not an EscrowFactory|does not run nexotc's EscrowFactory"):
        resolve_deal(world.deal.address, factory=wbtc.address)
    assert resolve_deal(world.deal.address).factory.address == world.factory.address


# --------------------------------------------------------- item 2: the events list
def test_a_duplicated_event_is_named(world):
    bundle = forged(world)
    bundle["events"].append(copy.deepcopy(bundle["events"][1]))
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert len(problems) == 1 and problems[0].startswith("event 3 (Funded in tx ")
    assert problems[0].endswith(": duplicate of event 1"), problems


def test_a_reordered_events_list_is_named(world):
    bundle = forged(world)
    bundle["events"].reverse()
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert problems and all("out of order" in p for p in problems), problems
    assert problems[0].startswith("event 1 (Funded in tx ")


def test_an_event_after_the_snapshot_is_named(world, chain):
    bundle = forged(world)
    first = bundle["events"][0]["block"]
    bundle["exported_at_block"] = first
    bundle["exported_at"] = int(chain.provider.get_block(first).timestamp)
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert len(problems) == 1 and problems[0].startswith("event 2 (Funded in tx "), problems
    assert f"after the bundle's snapshot block {first}" in problems[0]
    # the snapshot's time is the chain's
    bundle["exported_at"] += 1
    assert any(p.startswith("snapshot time: ") for p in verify_bundle(bundle, world.factory, world.kyc))


def test_a_truncated_bundle_verifies_as_of_its_snapshot_and_reports_later_events(world, chain, tmp_path):
    """Truncation is not forgery: the bundle is accurate as of its snapshot, and the verifier says how far
    the chain has moved (snapshot, head, the later events it does not hold) in text and JSON."""
    bundle = forged(world)
    first = bundle["events"][0]["block"]
    bundle["exported_at_block"] = first
    bundle["exported_at"] = int(chain.provider.get_block(first).timestamp)
    bundle["events"] = bundle["events"][:2]
    assert verify_bundle(bundle, world.factory, world.kyc) == []
    path = tmp_path / "truncated.json"
    path.write_text(json.dumps(bundle))
    cli = cli_at(world.home, world)
    head = int(chain.blocks.head.number)
    out = cli.ok("audit", "verify", path, "--rpc", world.rpc).out
    assert f"match the chain as of block {first} (chain head {head}, 1 later event not in the bundle)" in out, out
    report = cli.ok("audit", "verify", path, "--rpc", world.rpc, "--json").json()
    assert (report["snapshot_block"], report["head_block"], report["later_events"]) == (first, head, 1)
    assert report["ok"] is True and report["kyc_registry"] == world.kyc.address


# ----------------------------------------------- item 3: which field differs
@pytest.mark.parametrize("name", ["nullifier", "root"])
def test_an_altered_attestation_field_is_named_with_both_values(world, name):
    bundle = forged(world)
    real = bundle["attestations"]["seller"][name]
    bundle["attestations"]["seller"][name] = str(int(real) + 1)
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert problems == [f"attestation of the seller: {name} differs (bundle {str(int(real) + 1)!r}, chain {real!r})"], (
        problems
    )


def test_an_altered_disclosure_nullifier_is_flagged(world):
    bundle = forged(world)
    real = int(bundle["disclosures"]["buyer"]["nullifier"])
    bundle["disclosures"]["buyer"]["nullifier"] = str(real + 1)
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert problems == [
        f"disclosure of the buyer: nullifier differs (disclosure {real + 1}, attestation on chain {real})"
    ]


# ------------------------------------------------- items 4 and 5: the CLI
def test_an_auditor_verifies_from_an_empty_home(world, tmp_path, chain):
    empty = tmp_path / "auditor-home"
    empty.mkdir()
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(world.bundle))
    auditor = cli_at(empty, world)
    out = auditor.ok("audit", "verify", path, "--home", empty, "--rpc", world.rpc).out
    snapshot, head = world.bundle["exported_at_block"], int(chain.blocks.head.number)
    assert f"as of block {snapshot} (chain head {head}, 0 later events not in the bundle)" in out, out
    assert f"gated by kyc registry {world.kyc.address}" in out
    assert list(empty.iterdir()) == []  # nothing recorded, nothing needed
    # the attacker's registry is named from an empty home too, and pins are honoured
    bundle = forged(world)
    bundle["kyc_registry"] = world.rogue_kyc.address
    bundle["attestations"]["buyer"] = world.rogue_attestation
    bundle["disclosures"]["buyer"] = world.rogue_disclosure.to_json()
    path.write_text(json.dumps(bundle))
    result = auditor("audit", "verify", path, "--home", empty, "--rpc", world.rpc)
    assert_one_line_error(result, "the bundle does not match the chain")
    assert f"mismatch: kyc registry: bundle {world.rogue_kyc.address}, deal gates on {world.kyc.address}" in result.out
    pinned = auditor(
        "audit", "verify", tmp_path / "bundle.json", "--home", empty, "--rpc", world.rpc,
        "--kyc-registry", world.rogue_kyc.address, "--json",
    )  # fmt: skip
    assert pinned.code == 1
    assert (
        f"kyc registry: expected {world.rogue_kyc.address}, deal gates on {world.kyc.address}"
        in (pinned.json()["mismatches"])
    )


def test_export_prints_fields_and_refuses_to_overwrite(world, tmp_path):
    cli = cli_at(world.home, world)
    disclosure = tmp_path / "buyer.disclosure"
    Disclosure.from_json(world.bundle["disclosures"]["buyer"]).save(disclosure)
    out = tmp_path / "bundle.json"
    args = ["audit", "export", world.deal.address, "--disclosure", disclosure, "--out", out, "--rpc", world.rpc]
    shown = cli.ok(*args).out
    assert "buyer discloses jurisdiction: 756" in shown and "{" not in shown, shown
    first = out.read_text()
    assert_one_line_error(cli(*args), f"{out} exists: pass --force to overwrite it")
    assert out.read_text() == first
    exported = cli.ok(*args, "--force", "--json").json()
    assert exported["disclosed"] == {"buyer": {"jurisdiction": 756}}
    assert exported["kyc_registry"] == world.kyc.address and exported["factory"] == world.factory.address
    # an auditor exports from an empty home too: the deal names its factory, checked on chain
    empty = tmp_path / "empty"
    empty.mkdir()
    again = cli_at(empty, world).ok(
        "audit", "export", world.deal.address, "--out", tmp_path / "b2.json", "--home", empty, "--rpc", world.rpc
    )
    assert "kyc registry " + world.kyc.address in again.out


# ------------------------------------------- the bundle's shape: strict, each problem named
def _set(path: str, value: Any) -> Any:
    """A forgery that sets the field at dotted `path` (list items by index) to `value`."""

    def change(bundle: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = bundle
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value

    return change


UINT = "expected a non-negative integer, got"
BY_ROLE = "expected an object (buyer, seller => {} or null), got a list of 1 item"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("attestations.platform", {"subject": "0x" + "11" * 20}, "attestations.platform: unknown role"),
        ("attestations", [1], "attestations: " + BY_ROLE.format("attestation")),
        ("disclosures", ["x"], "disclosures: " + BY_ROLE.format("disclosure")),
        ("disclosures.buyer", "x", 'disclosures.buyer: expected a disclosure (an object) or null, got the string "x"'),
        ("disclosures.buyer", {}, "disclosures.buyer.subject: missing"),
        ("disclosures.buyer.opening", None, "disclosures.buyer.opening: expected an object (opened, hidden), got null"),
        ("attestations.seller.expiry", 1.0e10, f"attestations.seller.expiry: {UINT} the number 10000000000.0"),
        ("attestations.seller.policy_id", True, f"attestations.seller.policy_id: {UINT} the boolean true"),
        ("chain_id", 31337.0, f"chain_id: {UINT} the number 31337.0 (not an integer)"),
        ("chain_id", "31337", f'chain_id: {UINT} the string "31337"'),
        ("policy_id", False, f"policy_id: {UINT} the boolean false"),
        ("events.1.block", "1", f'events[1].block: {UINT} the string "1"'),
        ("events.1.args.leg", False, "args.leg differs (bundle the boolean false, chain 0)"),
        ("events.2.args.leg", True, "args.leg differs (bundle the boolean true, chain 1)"),
        ("events.1.args.amount", 5e8, "args.amount differs (bundle the number 500000000.0 (not an integer), chain"),
        ("principals.buyer", 5, "principals.buyer: expected an address (0x and 40 hex digits), got the integer 5"),
        ("signature", "trust me", "signature: unknown field"),
    ],
)
def test_malformed_or_retyped_bundle_content_is_a_mismatch(world, path, value, expected):
    """Content of the wrong structure or JSON type is named, never read as matching: a boolean is not an integer,
    1.0 is not 1, "31337" is not 31337, and a role other than buyer or seller is not ignored."""
    bundle = forged(world)
    _set(path, value)(bundle)
    problems = verify_bundle(bundle, world.factory, world.kyc)
    assert any(expected in p for p in problems), problems
    raw = ("NoneType", "string indices", "has no attribute", "malformed disclosure: '")
    assert not any(r in p for p in problems for r in raw), problems


def test_retyped_content_fails_the_cli_with_named_mismatches(world, tmp_path):
    bundle = forged(world)
    bundle["chain_id"] = "31337"
    path = tmp_path / "retyped.json"
    path.write_text(json.dumps(bundle))
    result = cli_at(world.home, world)("audit", "verify", path, "--rpc", world.rpc)
    assert_one_line_error(result, "the bundle does not match the chain: 1 mismatch(es)")
    assert 'mismatch: chain_id: expected a non-negative integer, got the string "31337"' in result.out, result.out
    assert "connected 31337" not in result.out


def test_a_deeply_nested_bundle_is_refused_in_one_line(tmp_path, capsys):
    from nexotc_client.cli import run

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert run(["audit", "verify", str(path), "--home", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: cannot read the bundle {path}: its JSON is nested more than 200 levels deep"], lines


def test_an_ungated_deal_is_not_described_as_gated(world, tmp_path, chain, desk, buyer, seller, resolver, wbtc, usdt):
    """The factory's deals can all ask its kyc registry, but a deal with policy 0 is gated by nothing."""
    now = int(chain.pending_timestamp)
    terms = Terms.build(
        base=Leg(wbtc.address, 1 * BTC),
        quote=Leg(usdt.address, 65_000 * USD6),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=even_tranches(1 * BTC, 65_000 * USD6, 1, now + 600, DAY, DAY),
        funding_deadline=now + DAY,
        final_expiry=now + 30 * DAY,
    ).validate(now)
    deal = world.factory.create(terms, seller, salt="audit-ungated")
    bundle = export_bundle(deal)
    assert bundle["policy_id"] == 0 and bundle["kyc_registry"] == world.kyc.address
    path = tmp_path / "ungated.json"
    path.write_text(json.dumps(bundle))
    cli = cli_at(world.home, world)
    out = cli.ok("audit", "verify", path, "--rpc", world.rpc).out
    assert f"deal {deal.address} of factory {world.factory.address}, not gated (no compliance policy)" in out, out
    assert "gated by" not in out
    report = cli.ok("audit", "verify", path, "--rpc", world.rpc, "--json").json()
    assert (report["policy_id"], report["gated"], report["ok"]) == (0, False, True)
    gated = tmp_path / "gated.json"
    gated.write_text(json.dumps(world.bundle))
    shown = cli.ok("audit", "verify", gated, "--rpc", world.rpc).out
    assert f"gated by kyc registry {world.kyc.address} (policy #{world.bundle['policy_id']})" in shown, shown
    assert shown.count("match the chain") == 1 and ": checked as of" not in shown  # one verdict line
