"""Files a user hands over, read without trusting their shape: nesting bombs, missing fields and wrong JSON types
are one sentence naming the problem (never a RecursionError, a crash of the interpreter, or a bare KeyError)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from nexotc_client.chain.desk import DeskRegistryRecord
from nexotc_client.chain.errors import NexotcError
from nexotc_client.chain.kyc import KycRecord
from nexotc_client.issuer import Disclosure, ProofFile
from nexotc_client.offers import Offer, OfferError, SignedOffer
from nexotc_client.safejson import MAX_JSON_DEPTH, load_json
from nexotc_client.terms import Leg, Terms, Tranche

RECORD = {
    "network": "ethereum:local:31337",
    "address": "0x" + "11" * 20,
    "block": 3,
    "block_hash": "0x" + "22" * 32,
    "tx_hash": "0x" + "33" * 32,
    "deployer": "0x" + "44" * 20,
    "timestamp": 1_700_000_000,
}


def test_load_json_refuses_nesting_beyond_the_limit_before_parsing():
    assert load_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(ValueError, match="nested more than"):
        load_json("[" * 100_000 + "]" * 100_000)
    # brackets inside strings are text, not nesting
    assert load_json('{"a": "' + "[" * 1000 + '"}') == {"a": "[" * 1000}


@pytest.mark.parametrize("reader", [Disclosure.load, ProofFile.load])
def test_holder_files_nested_too_deeply_are_one_sentence(tmp_path: Path, reader):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(NexotcError, match="nested more than"):
        reader(path)


@pytest.mark.parametrize("record", [DeskRegistryRecord, KycRecord])
def test_registry_records_name_the_bad_field(record):
    fields = {k: v for k, v in RECORD.items() if k != "tx_hash" or record is DeskRegistryRecord}
    assert record.from_dict(fields).block == 3
    for broken, message in (
        ({**fields, "block": "3"}, 'block must be a non-negative integer, not the string "3"'),
        ({**fields, "block": True}, "block must be a non-negative integer, not the boolean true"),
        ({k: v for k, v in fields.items() if k != "address"}, "the field 'address' is missing"),
        ({**fields, "deployer": "0x1234"}, "deployer must be an address"),
        ([1], "expected an object of fields"),
    ):
        with pytest.raises(NexotcError, match="malformed .* registry record: ") as info:
            record.from_dict(broken)
        assert message in str(info.value)


def test_a_signed_offer_missing_a_field_names_it():
    key = Account.from_key(b"\x01" * 32)
    terms = Terms.build(
        base=Leg("0x" + "55" * 20, 10**8),
        quote=Leg("0x" + "66" * 20, 65_000 * 10**6),
        buyer="0x" + "77" * 20,
        seller=key.address,
        platform="0x" + "88" * 20,
        resolver="0x" + "99" * 20,
        tranches=[Tranche(10**8, 65_000 * 10**6, 2_000_000_000, 2_000_000_100)],
        funding_deadline=1_999_999_999,
        final_expiry=2_100_000_000,
    )
    data = Offer(terms, key.address, 2_000_000_000, 1).sign(key.key, 1, "0x" + "33" * 20).to_json()
    assert SignedOffer.from_json(data).offer.maker == key.address
    del data["maker"]
    with pytest.raises(OfferError, match="not a nexotc signed offer: the field 'maker' is missing"):
        SignedOffer.from_json(data)
