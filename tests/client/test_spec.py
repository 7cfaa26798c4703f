"""The YAML terms format: exact amounts, times, presets, and one clear message per mistake."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from nexotc_client.spec import (
    SpecError,
    apply_sets,
    format_units,
    load_document,
    parse_duration,
    parse_spec,
    parse_time,
    to_units,
)
from nexotc_client.terms import ZERO_ADDRESS, DisputeDefault, LegId, Mode, Role

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000
DAY = 86_400
WBTC = "0x" + "11" * 20
USDT = "0x" + "22" * 20
ALIASES = {
    "desk": "0x" + "a0" * 20,
    "alice": "0x" + "a1" * 20,
    "bob": "0x" + "a2" * 20,
    "intro": "0x" + "a3" * 20,
    "judge": "0x" + "a4" * 20,
    "lawyer": "0x" + "a5" * 20,
    "ops": "0x" + "a6" * 20,
}
ALIASES.update({f"test:{i}": "0x" + f"{i + 1:02x}" * 20 for i in range(10)})
ALIASES = {k: to_checksum_address(v) for k, v in ALIASES.items()}
DECIMALS = {WBTC.lower(): 8, USDT.lower(): 6}


def resolve(alias: str) -> str:
    if alias not in ALIASES:
        raise KeyError(f"unknown alias {alias}")
    return ALIASES[alias]


def decimals_of(token: str) -> int:
    return DECIMALS[token.lower()]


def parse(doc: dict[str, Any] | str | Path, **kwargs: Any):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("resolve_wallet", resolve)
    kwargs.setdefault("decimals_of", decimals_of)
    return parse_spec(doc, **kwargs)


def dvp_doc() -> dict[str, Any]:
    return {
        "name": "test dvp",
        "tokens": {"WBTC": WBTC, "USDT": USDT},
        "base": {"token": "WBTC", "amount": "200"},
        "quote": {"token": "USDT", "amount": "13000000.5"},
        "parties": {"buyer": "alice", "seller": "bob", "platform": "desk", "resolver": "judge"},
        "fees": {"desk_bps": 25, "resolver_bps": 100, "introducers": [{"wallet": "intro", "bps": 10}]},
        "timers": {"funding_deadline": "+1d", "dispute_timeout": "3d"},
        "tranches": {"count": 3, "first_unlock": "+1h", "interval": "1d", "delivery_window": "2d"},
    }


def escrowed_doc() -> dict[str, Any]:
    doc = dvp_doc()
    doc["base"] = {"asset": "BTC", "on_chain": False, "decimals": 8, "amount": "10"}
    doc["quote"] = {"token": USDT, "amount": "650000"}
    doc["release_model"] = "buyer"
    doc["timers"]["approval_window"] = "1d"
    return doc


def with_changes(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for path, value in changes.items():
        node = out
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return out


DELETE = object()


# ------------------------------------------------------------------ values
@pytest.mark.parametrize(
    ("amount", "decimals", "units"),
    [
        ("200", 8, 200 * 10**8),
        ("13000000.123456", 6, 13_000_000_123_456),
        ("0.1", 18, 10**17),
        (Decimal("0.30"), 6, 300_000),
        ("123456789012345678901234.5", 18, 123456789012345678901234500000000000000000),
        ("1_000.25", 2, 100_025),
        (7, 0, 7),
    ],
)
def test_to_units_is_exact(amount, decimals, units):
    assert to_units(amount, decimals) == units


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0.000000001", "0.000000001 has more than 8 decimals"),
        ("0", "must be positive"),
        ("-1", "must be positive"),
        ("abc", "not a number: 'abc'"),
        (0.1, "write the amount as a string"),
        (True, "expected a number"),
        ("inf", "not a finite number"),
    ],
)
def test_to_units_errors_name_the_field(amount, message):
    with pytest.raises(SpecError, match="^base.amount: ") as err:
        to_units(amount, 8, "base.amount")
    assert message in str(err.value)


def test_format_units_round_trips():
    assert format_units(13_000_000_500_000, 6) == "13,000,000.5"
    assert format_units(5 * 10**9, 8) == "50"
    assert format_units(1, 18) == "0.000000000000000001"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("+1d", DAY), ("2h", 7200), ("90m", 5400), ("45s", 45), ("1w", 7 * DAY), ("1d12h", 36 * 3600), (600, 600)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-1h", "1.5h", -5, True, "1y"])
def test_parse_duration_rejects(bad):
    with pytest.raises(SpecError, match="^timers.dispute_timeout: "):
        parse_duration(bad, "timers.dispute_timeout")


def test_parse_time_relative_and_absolute():
    assert parse_time("+1d", NOW) == NOW + DAY
    assert parse_time("2h", NOW) == NOW + 7200
    assert parse_time("now", NOW) == NOW
    assert parse_time(1_900_000_000, NOW) == 1_900_000_000
    assert parse_time("2027-01-01T00:00:00Z", NOW) == int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert parse_time("2027-01-01T00:00:00", NOW) == int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert parse_time(datetime(2027, 1, 1).date(), NOW) == int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    with pytest.raises(SpecError, match="3600 is not a unix time; write a relative time as '\\+3600s'"):
        parse_time(3600, NOW, "timers.final_expiry")
    with pytest.raises(SpecError, match="^timers.final_expiry: not a time: 'tomorrow'"):
        parse_time("tomorrow", NOW, "timers.final_expiry")


# ------------------------------------------------------------------ files
def test_example_dvp_file_parses_to_exact_terms():
    spec = parse(ROOT / "examples" / "dvp-wbtc-usdt.yaml", variables={"WBTC": WBTC, "USDT": USDT})
    t = spec.terms
    assert t.mode == Mode.DVP
    assert (t.base.token, t.base.amount) == (WBTC, 200 * 10**8)
    assert (t.quote.token, t.quote.amount) == (USDT, 13_000_000 * 10**6)
    assert t.buyer == resolve("test:1") and t.seller == resolve("test:2")
    assert t.platform == resolve("test:0") and t.resolver == resolve("test:4")
    assert t.introducers == [(resolve("test:3"), 10)]
    assert (t.approval_threshold, t.release_threshold) == (0, 0)
    assert len(t.tranches) == 4
    assert sum(x.base_amount for x in t.tranches) == t.base.amount
    assert sum(x.quote_amount for x in t.tranches) == t.quote.amount
    assert [x.unlock_time for x in t.tranches] == [NOW + i * DAY for i in range(4)]
    assert all(x.deadline == x.unlock_time + 2 * DAY for x in t.tranches)
    assert t.funding_deadline == NOW + DAY
    # default final expiry: last deadline + approval window + dispute timeout + 1 day
    assert t.final_expiry == t.tranches[-1].deadline + 0 + 3 * DAY + DAY
    assert (spec.base.label, spec.base.decimals, spec.quote.label) == ("WBTC", 8, "USDT")
    assert spec.name == "WBTC/USDT block trade (DVP)"


def test_example_escrowed_file_parses_with_buyer_release():
    spec = parse(ROOT / "examples" / "escrowed-btc-usdt.yaml", variables={"USDT": USDT})
    t = spec.terms
    assert t.mode == Mode.ESCROWED
    assert t.base.on_chain is False and t.base.token == ZERO_ADDRESS and t.base.amount == 10 * 10**8
    assert t.quote.amount == 650_000 * 10**6
    assert t.roles_of(t.buyer) & Role.APPROVER and t.roles_of(t.buyer) & Role.SIGNER
    assert t.roles_of(t.seller) & Role.MARKER
    assert (t.approval_threshold, t.release_threshold) == (1, 1)
    assert t.approval_window == DAY and t.dispute_default == DisputeDefault.REFUND
    assert t.fee_leg == LegId.QUOTE
    assert spec.base.label == "BTC" and spec.base.format(t.base.amount) == "10 BTC"


def test_agreement_document_binds_off_chain_legs_and_the_files_mapping():
    from nexotc_client.agreement import agreement_hash, canonical, off_chain_leg
    from nexotc_client.agreement import parse as parse_agreement

    spec = parse(
        ROOT / "examples" / "escrowed-btc-usdt.yaml",
        variables={"USDT": USDT},
        sets={"BTC_ADDRESS": "bc1q-buyer", "agreement.iban": "none"},
    )
    document = parse_agreement(spec.agreement)
    assert document["off_chain"] == {"base": {"asset": "BTC", "decimals": 8}}
    assert document["terms"]["delivery"] == "bc1q-buyer, 1 confirmation per tranche"
    assert document["terms"]["iban"] == "none"
    assert off_chain_leg(spec.agreement, "base") == ("BTC", 8) and off_chain_leg(spec.agreement, "quote") is None
    # canonical: key order and layout do not change the hash; a value does
    assert canonical({"b": 1, "a": [True, "x"]}) == '{"a":[true,"x"],"b":1}'
    assert agreement_hash(canonical({"b": 1, "a": 2})) == agreement_hash(canonical({"a": 2, "b": 1}))
    assert agreement_hash(canonical({"a": 2})) != agreement_hash(canonical({"a": "2"}))
    # an all on-chain deal without `agreement:` has none (zero hash); decimals in YAML stay as written
    assert parse(dvp_doc()).agreement == "" and agreement_hash("") == b"\x00" * 32
    doc = dvp_doc() | {"agreement": {"price_ref": Decimal("65000.50")}}
    assert parse_agreement(parse(doc).agreement)["terms"] == {"price_ref": "65000.50"}


@pytest.mark.parametrize(
    ("agreement", "message"),
    [
        ("deliver to bc1q", "^agreement: expected a mapping, got 'deliver to bc1q'"),
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "^agreement.when: datetime values cannot be signed"),
        ({"memo": "x" * 9_000}, "^agreement: the document is 9,0.. bytes, more than 8,192"),
    ],
)
def test_bad_agreement_is_named(agreement: Any, message: str):
    with pytest.raises(SpecError, match=message):
        parse(dvp_doc() | {"agreement": agreement})


def test_placeholders_defaults_and_overrides():
    spec = parse(
        ROOT / "examples" / "dvp-wbtc-usdt.yaml",
        variables={"WBTC": WBTC, "USDT": USDT},
        sets={"BUYER": "lawyer", "base.amount": "150", "tranches.count": "3", "release_model": "buyer"},
    )
    t = spec.terms
    assert t.buyer == resolve("lawyer")
    assert t.base.amount == 150 * 10**8
    assert len(t.tranches) == 3
    assert t.holders(Role.APPROVER) == [resolve("lawyer")]


def test_apply_sets_splits_paths_and_variables():
    doc, variables = apply_sets(
        {"base": {"amount": "1"}, "tokens": {"USDT": "${USDT}"}},
        {"base.amount": "2.5", "USDT": "0xabc", "fees.desk_bps": "5"},
    )
    assert doc == {"base": {"amount": Decimal("2.5")}, "tokens": {"USDT": "${USDT}"}, "fees": {"desk_bps": 5}}
    assert variables == {"USDT": "0xabc"}


def test_yaml_keeps_amounts_exact_and_addresses_as_text():
    text = f"""
tokens: {{WBTC: {WBTC}, USDT: {USDT}}}
base: {{token: WBTC, amount: 0.12345678}}
quote: {{token: {USDT}, amount: 1234567.891011}}
parties: {{buyer: alice, seller: bob, platform: desk, resolver: judge}}
timers: {{funding_deadline: +1d}}
tranches: {{count: 1, delivery_window: 2d}}
"""
    spec = parse(text)
    assert spec.terms.base.amount == 12_345_678
    assert spec.terms.quote.amount == 1_234_567_891_011
    assert spec.terms.quote.token == USDT


def test_explicit_tranches_and_receivers():
    doc = with_changes(
        dvp_doc(),
        tranches=[
            {"base": "150", "quote": "0", "unlock": "+1h", "deadline": "+2d"},
            {"base": "50", "quote": "13000000.5", "unlock": "2027-02-01", "deadline": "2027-02-02T00:00:00Z"},
        ],
        parties__base_receiver="lawyer",
        parties__quote_receiver="ops",
    )
    t = parse(doc).terms
    assert [(x.base_amount, x.quote_amount) for x in t.tranches] == [(150 * 10**8, 0), (50 * 10**8, 13_000_000_500_000)]
    assert t.base_receiver == resolve("lawyer") and t.quote_receiver == resolve("ops")


def test_multisig_and_explicit_release():
    multisig = parse(with_changes(dvp_doc(), release_model="multisig", signers=["platform", "lawyer"], threshold=2))
    assert multisig.terms.holders(Role.SIGNER) == [resolve("desk"), resolve("lawyer")]
    assert multisig.terms.holders(Role.APPROVER) == [resolve("desk"), resolve("lawyer")]
    assert (multisig.terms.approval_threshold, multisig.terms.release_threshold) == (2, 2)
    explicit = parse(
        with_changes(
            escrowed_doc(),
            release_model=DELETE,
            approvers=["alice", "ops"],
            approval_threshold=1,
            signers=["platform"],
            markers=["seller", "lawyer"],
        )
    )
    t = explicit.terms
    assert (t.approval_threshold, t.release_threshold) == (1, 1)
    assert t.holders(Role.MARKER) == [resolve("bob"), resolve("lawyer")]
    assert t.holders(Role.SIGNER) == [resolve("desk")]


def test_escrowed_default_marker_is_the_off_chain_deliverer():
    t = parse(escrowed_doc()).terms
    assert t.holders(Role.MARKER) == [resolve("bob")]


# ----------------------------------------------------------------- errors
ERROR_CASES: list[tuple[str, Any, str]] = [
    ("missing base", {"base": DELETE}, "base: missing (required)"),
    ("unknown top key", {"fess": 1}, "fess: unknown key at the top level (expected one of: name, salt"),
    ("unknown leg key", {"base__amout": "1"}, "base.amout: unknown key (expected one of: token, asset"),
    ("leg not a mapping", {"base": "WBTC"}, "base: expected a mapping, got 'WBTC'"),
    ("unknown token", {"base__token": "WETH"}, "base.token: unknown token 'WETH': not an address nor a symbol"),
    ("bad tokens entry", {"tokens__WBTC": "0x1234"}, "tokens.WBTC: not an address: '0x1234'"),
    ("too many decimals", {"quote__amount": "1.0000001"}, "quote.amount: 1.0000001 has more than 6 decimals"),
    ("not a number", {"quote__amount": "lots"}, "quote.amount: not a number: 'lots'"),
    ("zero amount", {"base__amount": "0"}, "base.amount: must be positive"),
    ("amount and units", {"base__units": 5}, "base.units: give either amount (human units) or units"),
    ("no amount", {"base__amount": DELETE}, "base.amount: missing (required)"),
    ("decimals mismatch", {"base__decimals": 18}, "base.decimals: 18, but the token"),
    ("no token", {"base__token": DELETE}, "base.token: missing (or set on_chain: false"),
    ("on_chain not bool", {"base__on_chain": "maybe"}, "base.on_chain: expected true or false"),
    ("missing buyer", {"parties__buyer": DELETE}, "parties.buyer: missing (required)"),
    ("unknown alias", {"parties__seller": "mallory"}, "parties.seller: cannot resolve 'mallory': "),
    ("bad checksum", {"parties__seller": "0x" + "aB" * 20}, "parties.seller: not a valid address"),
    ("same wallet", {"parties__seller": "alice"}, "parties.seller: same wallet as parties.buyer"),
    ("zero address", {"parties__platform": ZERO_ADDRESS}, "parties.platform: the zero address"),
    ("markers in dvp", {"markers": ["seller"]}, "markers: a DVP deal (both legs on chain) has no markers"),
    ("bad model", {"release_model": "dao"}, "release_model: expected one of anyone | buyer"),
    ("multisig no threshold", {"release_model": "multisig", "signers": ["platform"]}, "threshold: release_model"),
    (
        "multisig threshold too high",
        {"release_model": "multisig", "signers": ["platform", "lawyer"], "threshold": 3},
        "threshold: must be between 1 and 2",
    ),
    (
        "signers with preset",
        {"release_model": "buyer", "signers": ["ops"]},
        "signers: only with release_model: multisig",
    ),
    ("model and explicit", {"release_model": "buyer", "approvers": ["ops"]}, "approvers: set either release_model"),
    ("threshold alone", {"threshold": 1}, "threshold: only with release_model: multisig"),
    ("duplicate signer", {"signers": ["ops", "ops"]}, "signers[1]: 0x"),
    ("fractional bps", {"fees__desk_bps": "2.5"}, "fees.desk_bps: expected a whole number of bps"),
    ("unknown fee key", {"fees__desk": 5}, "fees.desk: unknown key"),
    ("bad fee leg", {"fees__fee_leg": "both"}, "fees.fee_leg: expected base or quote"),
    ("introducers not list", {"fees__introducers": "intro"}, "fees.introducers: expected a list"),
    ("introducer zero bps", {"fees__introducers": [{"wallet": "intro", "bps": 0}]}, "fees.introducers[0].bps: "),
    ("introducer no wallet", {"fees__introducers": [{"bps": 5}]}, "fees.introducers[0]: needs wallet and bps"),
    ("fees above cap", {"fees__desk_bps": 2000}, "terms: desk fee + introducers above 1000 bps"),
    ("missing timers", {"timers": DELETE}, "timers: missing (required)"),
    ("missing funding deadline", {"timers__funding_deadline": DELETE}, "timers.funding_deadline: missing"),
    ("funding deadline past", {"timers__funding_deadline": 1_700_000_000}, "timers.funding_deadline: 2023-"),
    ("bad duration", {"timers__dispute_timeout": "a while"}, "timers.dispute_timeout: not a duration"),
    ("zero timeout", {"timers__dispute_timeout": 0}, "timers.dispute_timeout: must be longer than 0"),
    ("bad default", {"timers__dispute_default": "split"}, "timers.dispute_default: expected refund or release"),
    ("expiry too early", {"timers__final_expiry": "+2d"}, "timers.final_expiry: "),
    ("missing tranches", {"tranches": DELETE}, "tranches: missing (required)"),
    ("zero tranches", {"tranches__count": 0}, "tranches.count: expected a whole number >= 1"),
    ("too many tranches", {"tranches__count": 40}, "tranches.count: at most 32 tranches"),
    ("no window", {"tranches__delivery_window": DELETE}, "tranches.delivery_window: missing (required)"),
    ("tranche key", {"tranches__every": "1d"}, "tranches.every: unknown key"),
    (
        "explicit sums",
        {"tranches": [{"base": "100", "quote": "13000000.5", "unlock": "+1h", "deadline": "+2d"}]},
        "tranches: the base amounts sum to 100 WBTC, the base leg is 200 WBTC",
    ),
    (
        "deadline before unlock",
        {"tranches": [{"base": "200", "quote": "13000000.5", "unlock": "+3d", "deadline": "+2d"}]},
        "tranches[0].deadline: ",
    ),
    ("tranche missing key", {"tranches": [{"base": "200", "quote": "1"}]}, "tranches[0].unlock: missing (required)"),
    ("placeholder", {"parties__buyer": "${BUYER}"}, "parties.buyer: placeholder ${BUYER} is not set (pass --set"),
]


@pytest.mark.parametrize(("case", "changes", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_every_mistake_names_its_field(case, changes, message):
    with pytest.raises(SpecError) as err:
        parse(with_changes(dvp_doc(), **changes))
    text = str(err.value)
    assert message in text, text
    assert "\n" not in text


ESCROWED_ERRORS: list[tuple[str, Any, str]] = [
    ("no release model", {"release_model": DELETE}, "release_model: an escrowed deal needs approvers"),
    ("anyone escrowed", {"release_model": "anyone"}, "release_model: anyone: only a DVP deal"),
    ("off-chain decimals", {"base__decimals": DELETE}, "base.decimals: an off-chain leg needs its decimals"),
    ("off-chain token", {"base__token": WBTC}, "base.token: an off-chain leg has no token"),
    ("off-chain fee leg", {"fees__fee_leg": "base"}, "fees.fee_leg: the base leg is off chain"),
    ("seller approves own release", {"release_model": "seller"}, "terms: the side paid by the escrowed leg"),
]


@pytest.mark.parametrize(("case", "changes", "message"), ESCROWED_ERRORS, ids=[c[0] for c in ESCROWED_ERRORS])
def test_escrowed_mistakes(case, changes, message):
    with pytest.raises(SpecError) as err:
        parse(with_changes(escrowed_doc(), **changes))
    assert message in str(err.value)


def test_alias_without_resolver_and_decimals_without_chain():
    with pytest.raises(SpecError, match="parties.buyer: 'alice' is not an address \\(and no account aliases"):
        parse(dvp_doc(), resolve_wallet=None)
    with pytest.raises(SpecError, match="base.decimals: unknown: give `decimals:`"):
        parse(
            with_changes(dvp_doc(), parties={k: ALIASES[v] for k, v in dvp_doc()["parties"].items()}),
            resolve_wallet=None,
            decimals_of=None,
        )


def test_decimals_reader_failure_is_a_spec_error():
    def broken(token: str) -> int:
        raise RuntimeError(f"no contract at {token}")

    with pytest.raises(SpecError, match=f"base.token: cannot read the decimals of {WBTC}: no contract at"):
        parse(dvp_doc(), decimals_of=broken)


def test_document_errors(tmp_path):
    with pytest.raises(SpecError, match="terms file not found: .*missing.yaml"):
        load_document(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: [1,\n")
    with pytest.raises(SpecError, match="bad.yaml: invalid YAML at line 2"):
        load_document(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="a terms file is a YAML mapping"):
        load_document(listing)


# ------------------------------------------------ silent rewrites refused
@pytest.mark.parametrize("amount", ["1,5", "13,000.000,5", "2_00", "1,000_000", "1,0000", "12,34.5"])
def test_badly_grouped_amounts_are_ambiguous(amount):
    """Separators anywhere used to be stripped: '1,5' became 15, '2_00' 200."""
    with pytest.raises(SpecError, match=f"^quote.amount: ambiguous number '{amount}'"):
        to_units(amount, 6, "quote.amount")


@pytest.mark.parametrize(
    ("amount", "units"), [("13,000,000.5", 13_000_000_500_000), ("1_000", 10**9), ("999", 999 * 10**6)]
)
def test_grouped_amounts_are_accepted(amount, units):
    assert to_units(amount, 6, "quote.amount") == units


def test_set_with_a_badly_grouped_amount_is_refused():
    """`--set quote.amount=1,5` (YAML: the text '1,5') and `--set quote.amount=2_00` (YAML 1.1: the int 200)."""
    for raw in ("1,5", "2_00"):
        with pytest.raises(SpecError, match=f"quote.amount: ambiguous number '{raw}'"):
            parse(dvp_doc(), sets={"quote.amount": raw})
    assert parse(dvp_doc(), sets={"quote.amount": "1_000"}).terms.quote.amount == 1_000 * 10**6


def test_yaml_badly_grouped_number_stays_text(tmp_path):
    doc = load_document("a: 2_00\nb: 1_000\nc: 1_0.5\nd: 1_000.5\n")
    assert doc == {"a": "2_00", "b": 1000, "c": "1_0.5", "d": Decimal("1000.5")}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "fee.desk_bps",
            "--set fee.desk_bps: neither a field of the terms format nor a placeholder of this file "
            "(did you mean fees.desk_bps?)",
        ),
        ("bogus", "--set bogus: neither a field of the terms format nor a placeholder of this file"),
        ("fees.desk", "--set fees.desk: not a field of the terms format (did you mean fees.desk_bps?)"),
        (
            "timers.funding",
            "--set timers.funding: not a field of the terms format (did you mean timers.funding_deadline?)",
        ),
    ],
)
def test_set_of_an_unknown_key_is_refused(key, message):
    with pytest.raises(SpecError) as err:
        parse(dvp_doc(), sets={key: "50"})
    assert str(err.value).startswith(message), str(err.value)


def test_set_of_a_used_placeholder_and_of_fields_is_accepted():
    doc = with_changes(dvp_doc(), parties__buyer="${BUYER:-alice}")
    spec = parse(doc, sets={"BUYER": "lawyer", "fees.desk_bps": "50", "tokens.USDT": USDT})
    assert spec.terms.buyer == resolve("lawyer") and spec.terms.desk_fee_bps == 50
    with pytest.raises(SpecError, match=r"did you mean BUYER\?\); its placeholders: BUYER"):
        parse(doc, sets={"BUYR": "lawyer"})


def test_duplicate_introducer_is_refused():
    """Two entries for one introducer used to be merged into one at the sum of their bps."""
    doc = with_changes(dvp_doc(), fees__introducers=[{"wallet": "intro", "bps": 10}, {"wallet": "intro", "bps": 10}])
    with pytest.raises(SpecError, match=r"^fees.introducers\[1\].wallet: .* is already fees.introducers\[0\]"):
        parse(doc)


def test_duplicate_yaml_key_is_refused_with_its_line(tmp_path):
    terms = tmp_path / "dup.yaml"
    terms.write_text("name: x\ntranches:\n  count: 2\nbase: {}\ntranches:\n  count: 3\n")
    with pytest.raises(
        SpecError, match=r"invalid YAML at line 5, column 1: duplicate key 'tranches' \(first at line 2\)"
    ):
        load_document(terms)
    with pytest.raises(SpecError, match="duplicate key 'amount'"):
        load_document("base: {amount: 1, amount: 2}\n")


def test_empty_markers_list_is_refused():
    with pytest.raises(SpecError, match="^markers: an escrowed deal needs a marker"):
        parse(with_changes(escrowed_doc(), markers=[]))
    assert parse(with_changes(escrowed_doc(), markers=None)).terms.holders(Role.MARKER) == [resolve("bob")]


def test_dvp_tranche_with_one_leg_zero_warns():
    """The contract allows a DVP tranche that moves one leg only (free delivery): allowed, with a warning."""
    doc = with_changes(
        dvp_doc(),
        tranches=[
            {"base": "150", "quote": "0", "unlock": "+1h", "deadline": "+2d"},
            {"base": "50", "quote": "13000000.5", "unlock": "+1h", "deadline": "+2d"},
        ],
    )
    spec = parse(doc)
    assert spec.warnings == (
        "tranches[0] moves no quote: its 150 WBTC is delivered free (no exchange against the other leg in that "
        "tranche)",
    )
    assert parse(dvp_doc()).warnings == ()


# ------------------------------------------------------------- evidence
def test_evidence_refuses_hex_that_is_not_a_txid():
    from eth_utils import keccak

    from nexotc_client.chain.encoding import to_evidence
    from nexotc_client.chain.errors import NexotcError

    txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    assert to_evidence(txid) == bytes.fromhex(txid) == to_evidence("0x" + txid)
    for bad in (txid[:-1], "0x1234", "0x" + txid + "00", "0xzz"):
        with pytest.raises(NexotcError, match="looks like hex but"):
            to_evidence(bad)
    assert to_evidence("text:0x1234") == keccak(text="0x1234")
    assert to_evidence("wire ref ABC-42") == keccak(text="wire ref ABC-42")
    with pytest.raises(NexotcError, match="empty text after 'text:'"):
        to_evidence("text:  ")


# ------------------------------------------------ YAML aliases: self-reference, billion laughs, depth
RECURSIVE = "agreement:\n  a: &r [1, *r]\n"


def _laughs(width: int = 25, levels: int = 8) -> str:
    """A small file whose `agreement` expands to width ** levels values through aliases of aliases."""
    lines = ["agreement:", f"  l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_terms_file_that_refers_to_itself_is_refused(tmp_path):
    """`a: &r [1, *r]` used to load, then every walk of it (placeholders, substitute, the agreement) recursed:
    RecursionError (exit 70), or with --set a segfault (exit 139) in `placeholders`."""
    expected = r"^agreement\.a\[1\]: the terms file refers to itself through a YAML alias \(&anchor / \*alias\)"
    terms = tmp_path / "self.yaml"
    terms.write_text(yaml_dvp() + RECURSIVE)
    with pytest.raises(SpecError, match=expected):
        load_document(terms)
    for sets in (None, {"base.amount": "1"}, {"BOGUS": "1"}):
        with pytest.raises(SpecError, match=expected):
            parse(terms, variables={"WBTC": WBTC, "USDT": USDT}, sets=sets)
    # a merge key that merges the mapping it is in
    with pytest.raises(SpecError, match=r"line 1, column 12: a merge \(<<\) refers to itself through a YAML alias"):
        load_document("agreement: &r {<<: *r}\n")
    # a mapping loaded by the caller is checked too, and so is the value of a --set
    loaded = dvp_doc() | {"agreement": {"a": 1}}
    loaded["agreement"]["doc"] = loaded
    for sets in (None, {"base.amount": "1"}):
        with pytest.raises(SpecError, match=r"^agreement\.doc\.agreement: the terms file refers to itself"):
            parse(loaded, sets=sets)
    with pytest.raises(SpecError, match=r"^--set agreement\.x\[0\]: the value of --set agreement\.x refers to itself"):
        parse(dvp_doc(), sets={"agreement.x": "&r [*r]"})


def test_a_billion_laughs_is_refused_quickly(tmp_path):
    """A 1.2 KB file expanding to 25 ** 9 values used to take seconds and hundreds of MB before being refused."""
    import time

    terms = tmp_path / "laughs.yaml"
    terms.write_text(yaml_dvp() + _laughs())
    assert len(_laughs()) < 1_300
    expected = r"^the terms file expands to more than 100,000 values \(YAML aliases, \*alias, repeat what they name\)"
    started = time.monotonic()
    with pytest.raises(SpecError, match=expected):
        load_document(terms)
    with pytest.raises(SpecError, match=expected):
        parse(yaml_dvp() + _laughs(), variables={"WBTC": WBTC, "USDT": USDT})
    with pytest.raises(SpecError, match=r"^--set agreement\.x: the value of --set agreement\.x expands to more"):
        parse(dvp_doc(), sets={"agreement.x": _laughs()})

    # merges of merges grow while the file is read (each one's keys repeated 25 times): refused there
    def merges(level: int) -> str:
        if level == 0:
            return "&b0 {k: 1}"
        return f"&b{level} {{<<: [{merges(level - 1)}, {', '.join([f'*b{level - 1}'] * 24)}]}}"

    bomb = f"x: {{<<: [{merges(4)}, {', '.join(['*b4'] * 24)}]}}\n"
    with pytest.raises(SpecError, match=r"line 1, column \d+: merges \(<<\) expand this mapping to more than 100,000"):
        load_document(bomb)
    assert time.monotonic() - started < 5
    # sharing a value through an alias is fine while the file stays small
    shared = load_document("agreement:\n  a: &a [1, 2]\n  b: *a\n  c: {<<: {x: 1}, y: 2}\n")
    assert shared == {"agreement": {"a": [1, 2], "b": [1, 2], "c": {"x": 1, "y": 2}}}


def test_a_terms_file_nested_too_deeply_is_refused():
    """Deep nesting used to be a RecursionError in PyYAML (exit 70) or in the walks of the document."""
    # PyYAML recurses as deep as the file nests: depending on the recursion limit, refused while reading
    with pytest.raises(
        SpecError, match=r"^(<text>: invalid YAML: nested too deeply|agreement.a.*: nested more than 64)"
    ):
        load_document("agreement:\n  a: " + "[" * 5_000 + "]" * 5_000 + "\n")
    with pytest.raises(SpecError, match=r"^agreement\.a\[0\]\[0\].*\.\.\.: nested more than 64 levels$"):
        load_document("agreement:\n  a: " + "[" * 70 + "]" * 70 + "\n")
    assert load_document("a: " + "[" * 60 + "]" * 60 + "\n")["a"]


def yaml_dvp() -> str:
    """The example DVP file's text (placeholders WBTC and USDT)."""
    return (ROOT / "examples" / "dvp-wbtc-usdt.yaml").read_text().rstrip("\n") + "\n"


def test_set_writes_nested_agreement_keys():
    """`--set agreement.a.b=1` used to be refused as "not a field of the terms format": `agreement:` is free-form."""
    from nexotc_client.agreement import parse as parse_agreement

    doc, variables = apply_sets(
        {"agreement": {"wire": {"bank": "X"}}},
        {"agreement.wire.iban": "CH93", "agreement.delivery.btc.address": "bc1q", "agreement.memo": "hi"},
    )
    assert variables == {}
    assert doc == {
        "agreement": {"wire": {"bank": "X", "iban": "CH93"}, "delivery": {"btc": {"address": "bc1q"}}, "memo": "hi"}
    }
    # no `agreement:` in the file (or an empty one): the mappings on the way are created
    for base in (dvp_doc(), dvp_doc() | {"agreement": None}):
        spec = parse(base, sets={"agreement.a.b": "1"})
        assert parse_agreement(spec.agreement)["terms"] == {"a": {"b": 1}}
    # a path through a value that is not a mapping, or with an empty part, is still refused
    with pytest.raises(SpecError, match=r"^agreement\.wire: cannot set agreement\.wire\.iban\.x: not a mapping$"):
        apply_sets({"agreement": {"wire": "cash"}}, {"agreement.wire.iban.x": "1"})
    with pytest.raises(SpecError, match=r"^agreement: cannot set agreement\.a: not a mapping$"):
        apply_sets({"agreement": "text"}, {"agreement.a": "1"})
    for key in ("agreement.a..b", "agreement.a.", "tokens.USDT.x", "fees.desk_bps.x"):
        with pytest.raises(SpecError, match=rf"^--set {re.escape(key)}: not a field of the terms format"):
            apply_sets(dvp_doc(), {key: "1"})


def test_cli_refuses_a_self_referring_or_exploding_terms_file_in_one_line(tmp_path, capsys):
    """`deal create --dry-run` and `offer create` exited 70 (RecursionError), or 139 (segfault) with --set."""
    from nexotc_client.cli import run

    for name, text, fragment in (
        ("self.yaml", RECURSIVE, "agreement.a[1]: the terms file refers to itself through a YAML alias"),
        ("laughs.yaml", _laughs(), "the terms file expands to more than 100,000 values"),
    ):
        terms = tmp_path / name
        terms.write_text(yaml_dvp() + text)
        for argv in (
            ["deal", "create", "--terms", str(terms), "--dry-run"],
            ["deal", "create", "--terms", str(terms), "--dry-run", "--set", "base.amount=1"],
            ["offer", "create", "--terms", str(terms), "--set", "WBTC=0x" + "11" * 20],
        ):
            assert run([*argv, "--home", str(tmp_path / "home")]) == 1, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
