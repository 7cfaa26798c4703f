"""The agreement document offline: its canonical form and shape, what a signed offer carries of it, how
`offer diff` / `open`-style rendering shows it (literally, in full, each offer in its own signed units),
and the limits that keep a hostile file or link from crashing or flooding the client."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest
from eth_account import Account

from nexotc_client.agreement import AgreementError, build, canonical, from_json
from nexotc_client.cli import run
from nexotc_client.cli.offer import offer_document
from nexotc_client.offers import INVITE_PREFIX, Offer, OfferError, diff, read_link
from nexotc_client.terms import ZERO_ADDRESS, Leg, Terms, Tranche

FACTORY = "0x" + "33" * 20
KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(4)]


def terms(decimals_units: int = 10 * 10**8) -> Terms:
    return Terms.build(
        base=Leg(ZERO_ADDRESS, decimals_units, on_chain=False),
        quote=Leg("0x" + "22" * 20, 650_000 * 10**6),
        buyer=KEYS[0].address,
        seller=KEYS[1].address,
        platform=KEYS[2].address,
        resolver=KEYS[3].address,
        tranches=[Tranche(decimals_units, 650_000 * 10**6, 2_000_000_000, 2_000_000_100)],
        funding_deadline=1_999_999_999,
        final_expiry=2_100_000_000,
        markers=[KEYS[1].address],
    )


def offer(agreement: str, maker: int = 1, t: Terms | None = None, **kw) -> Offer:
    taker = KEYS[0].address if maker == 1 else KEYS[1].address
    return Offer(t or terms(), KEYS[maker].address, 2_000_000_000, 1, taker=taker, agreement=agreement, **kw)


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = run([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, name: str, o: Offer, key: int = 1) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(offer_document(o.sign(KEYS[key].key, 1, FACTORY))))
    return path


def test_canonical_shape_and_bad_text():
    with pytest.raises(AgreementError, match="has no UTF-8 form"):
        canonical({"x": "\ud800"})
    for bad, message in (
        ({"off_chain": "x", "version": 1}, "off_chain must map"),
        ({"version": 1, "off_chain": {"base": "BTC"}}, "exactly an asset and decimals"),
        ({"version": 1, "off_chain": {"base": {"asset": "BTC", "decimals": -3}}}, "decimals must be 0..36"),
        ({"version": 1, "terms": []}, "terms must be a mapping"),
        ({"version": 2}, "version 2"),
        ({"version": 1, "extra": 1}, "unknown field"),
    ):
        with pytest.raises(AgreementError, match=message):
            from_json(bad)
    # an Offer only ever holds a canonical document of that shape (the Python API included)
    with pytest.raises(OfferError, match="bad agreement document"):
        offer(json.dumps({"off_chain": "x"}))
    with pytest.raises(OfferError, match="not in canonical form"):
        offer('{"version": 1}')


def test_diff_lists_null_and_type_changes_and_whole_documents():
    a = offer(build({}, {"z": 1, "a": None, "l": [1, 2, None]}))
    b = offer(build({}, {"z": 1, "l": [1, 2]}))
    rows = {f: (old, new) for f, old, new in diff(a, b) if f.startswith("agreement")}
    assert rows == {"agreement.terms.a": (None, None), "agreement.terms.l[2]": (None, None)}
    typed = {f for f, _, _ in diff(offer(build({}, {"n": 10})), offer(build({}, {"n": "10"})))}
    assert "agreement.terms.n" in typed
    dropped = {f for f, _, _ in diff(offer(build({"base": ("BTC", 8)}, {"d": "x"})), offer(""))}
    assert {"agreement.version", "agreement.off_chain.base.asset", "agreement.terms.d"} <= dropped


def test_rendering_is_literal_full_and_in_each_offers_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    iban = "EUR by SEPA to IBAN CH93 0076 2011 6238 5295 7, BIC UBSWCHZH80A, ref RFQ-1"
    opening = offer(build({"base": ("BTC", 8)}, {"iban": iban, "memo": "[bold]x[/bold] [/oops]"}))
    first = write(tmp_path, "a.json", opening)
    changed = iban.replace("2011", "2099")
    second_offer = opening.counter(
        terms(10 * 10**6),
        KEYS[0].address,
        2_000_000_000,
        1,
        taker=KEYS[1].address,
        agreement=build({"base": ("XBT", 6)}, {"iban": changed, "memo": "[bold]x[/bold] [/oops]"}),
    )
    second = write(tmp_path, "b.json", second_offer, key=0)
    code, out, err = cli(capsys, "offer", "diff", first, second, "--home", tmp_path)
    assert code == 0, err
    flat = " ".join(out.split())
    assert iban.split("2011")[0].split()[-1] in flat and "2099" in flat and "2011" in flat  # in full, not cut
    assert "10 BTC" in flat and "10 XBT" in flat  # each offer's amount in its own signed asset and decimals
    # markup in a signed value is shown literally and never breaks the output
    code, out, err = cli(capsys, "offer", "thread", first, second, "--offline", "--home", tmp_path)
    assert code == 0, err
    code, out, err = cli(capsys, "offer", "diff", first, second, "--json", "--home", tmp_path)
    assert code == 0 and "agreement.terms.iban" in {c["field"] for c in json.loads(out)["changes"]}


def test_diff_shows_signed_times_and_durations_readably_and_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    opening = offer("")
    later = terms().with_changes(
        final_expiry=2_100_000_005,  # five seconds later: must not look unchanged
        dispute_timeout=terms().dispute_timeout + 3_601,
        tranches=[Tranche(10 * 10**8, 650_000 * 10**6, 2_000_000_000, 2**200)],  # beyond the calendar
    )
    counter = opening.counter(later, KEYS[0].address, 2_000_086_400, 1, taker=KEYS[1].address)
    first, second = write(tmp_path, "a.json", opening), write(tmp_path, "b.json", counter, key=0)
    code, out, err = cli(capsys, "offer", "diff", first, second, "--home", tmp_path)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "2036-07-18 13:20:00Z (2100000000)" in flat and "2036-07-18 13:20:05Z (2100000005)" in flat
    assert "2033-05-18 03:33:20Z (2000000000)" in flat and "2033-05-19 03:33:20Z (2000086400)" in flat
    old_timeout = terms().dispute_timeout
    assert f"({old_timeout:,} s)" in flat and f"({old_timeout + 3_601:,} s)" in flat
    assert str(2**200) in flat  # a time past the calendar is shown as signed, not a crash
    code, out, err = cli(capsys, "offer", "diff", first, second, "--json", "--home", tmp_path)
    rows = {c["field"]: c for c in json.loads(out)["changes"]}
    assert rows["terms.final_expiry"]["new"] == 2_100_000_005  # JSON keeps the signed integers


def test_markup_in_an_agreement_is_shown_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from rich.console import Console

    from nexotc_client.cli.offer import render_agreement

    console = Console(record=True, width=200)
    render_agreement(console, offer(build({"base": ("BTC", 8)}, {"to": "BTC to [bc1qattacker]", "[/x]": "[/oops]"})))
    text = console.export_text()
    assert "BTC to [bc1qattacker]" in text and "[/x]" in text and "[/oops]" in text


def test_links_that_inflate_too_far_are_refused():
    bomb = zlib.compress(b"{" + b" " * (2 * 1024 * 1024) + b"}", 9)
    link = INVITE_PREFIX + base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    with pytest.raises(OfferError, match="inflates to more than"):
        read_link(link)
    with pytest.raises(OfferError, match="characters, more than"):
        read_link(INVITE_PREFIX + "A" * (200 * 1024))


def test_invite_warns_when_the_signature_does_not_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(tmp_path, "a.json", offer(build({"base": ("BTC", 8)}, {"to": "bc1q-buyer"})))
    data = json.loads(path.read_text())
    data["agreement"]["terms"]["to"] = "bc1q-attacker"
    path.write_text(json.dumps(data))
    code, out, err = cli(capsys, "offer", "invite", path, "--json", "--home", tmp_path)
    assert code == 0 and "changed after signing" in json.loads(out)["warnings"][0]
