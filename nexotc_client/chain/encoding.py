"""Conversions of user inputs to the contracts' bytes32 fields (salts, evidence, dispute reasons)."""

from __future__ import annotations

import os
import re

from eth_utils import is_checksum_address, is_hex_address, keccak

from nexotc_client.chain.errors import NexotcError

_HEX32 = re.compile(r"^(0[xX])?[0-9a-fA-F]{64}$")


def is_valid_address(value: object) -> bool:
    """A 0x-prefixed 20-byte hex address whose mixed case, if any, is a valid EIP-55 checksum
    (eth_utils' `is_address` accepts a wrong checksum)."""
    if not isinstance(value, str) or not value.startswith("0x") or not is_hex_address(value):
        return False
    body = value[2:]
    return body == body.lower() or body == body.upper() or is_checksum_address(value)


def to_salt(value: bytes | str | int | None) -> bytes:
    """A CREATE2 salt: random when None; an int (big-endian); hex up to 32 bytes (left-padded);
    any other text is hashed (keccak256), e.g. an RFQ id."""
    if value is None:
        return os.urandom(32)
    if isinstance(value, bool):
        raise NexotcError("salt: expected bytes, hex, an integer or text")
    if isinstance(value, int):
        if not 0 <= value < 2**256:
            raise NexotcError("salt: integer out of range (0 .. 2**256-1)")
        return value.to_bytes(32, "big")
    if isinstance(value, bytes):
        if len(value) > 32:
            raise NexotcError(f"salt: {len(value)} bytes, at most 32")
        return value.rjust(32, b"\0")
    text = value.strip()
    if text[:2].lower() == "0x" and _HEXISH.match(text):
        raw = text[2:]
        if len(raw) > 64:
            raise NexotcError(f"salt: {text} is {(len(raw) + 1) // 2} bytes of hex, at most 32")
        return bytes.fromhex(raw.rjust(64, "0"))
    if not text:
        raise NexotcError("salt: empty")
    return keccak(text=text)


_HEXISH = re.compile(r"^(0x)?[0-9a-fA-F]+$")
TEXT_PREFIX = "text:"


def to_evidence(value: bytes | str) -> bytes:
    """Evidence of delivery: 32 raw bytes, or exactly 64 hex digits (with or without 0x, e.g. a BTC
    txid) taken as is; text that does not look like hex (a wire reference, a document name) is
    hashed (keccak256). Anything that looks like hex but is not 64 digits is refused: it is most
    likely a mistyped txid. `text:` forces hashing (`text:0x1234`, `text:20240301`)."""
    if isinstance(value, bytes):
        if len(value) != 32:
            raise NexotcError(f"evidence: {len(value)} bytes, need 32 (or pass text to hash)")
        return value
    text = value.strip()
    if text.lower().startswith(TEXT_PREFIX):
        body = text[len(TEXT_PREFIX) :].strip()
        if not body:
            raise NexotcError("evidence: empty text after 'text:'")
        return keccak(text=body)
    if not text:
        raise NexotcError("evidence: empty")
    if _HEX32.match(text):
        return bytes.fromhex(text[2:] if text[:2].lower() == "0x" else text)
    if _HEXISH.match(text) or (text[:2].lower() == "0x" and len(text) > 2):
        digits = text[2:] if text[:2].lower() == "0x" else text
        size = f"has {len(digits)} digits" if _HEXISH.match(text) else "has non-hex digits"
        raise NexotcError(
            f"evidence: {text!r} looks like hex but {size}, not 64 (a BTC txid is 64 hex digits); "
            f"to hash it as text, write 'text:{text}'"
        )
    return keccak(text=text)


def to_reason(value: bytes | str) -> bytes:
    """A dispute reason: 32 raw bytes or 0x + 64 hex digits as is; text up to 32 bytes stored as
    text (readable in events), longer text hashed."""
    if isinstance(value, bytes):
        if len(value) > 32:
            raise NexotcError(f"reason: {len(value)} bytes, at most 32")
        return value.ljust(32, b"\0")
    text = value.strip()
    if not text:
        raise NexotcError("reason: empty")
    if text.startswith("0x") and _HEX32.match(text):
        return bytes.fromhex(text[2:])
    raw = text.encode()
    return raw.ljust(32, b"\0") if len(raw) <= 32 else keccak(raw)


def bytes32_text(value: bytes) -> str | None:
    """The text stored in a bytes32 (printable ASCII, zero-padded), or None."""
    stripped = value.rstrip(b"\0")
    if not stripped or b"\0" in stripped:
        return None
    try:
        text = stripped.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


__all__ = ["bytes32_text", "is_valid_address", "to_evidence", "to_reason", "to_salt"]
