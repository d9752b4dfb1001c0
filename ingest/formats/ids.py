"""Ids and message identities shared by the format parsers."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from devices.contract import ID_PATTERN

_ID: Final = re.compile(ID_PATTERN)
_MASK: Final = (1 << 63) - 1


def valid_id(candidate: str) -> bool:
    """Whether ``candidate`` fits the contract's id pattern (devices/contract.py)."""
    return _ID.fullmatch(candidate) is not None


def identity(*parts: object) -> int:
    """A stable 63-bit non-negative message identity: blake2b of the parts, 8 bytes."""
    text = "\x1f".join(map(str, parts)).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(text, digest_size=8, person=b"citytel-msg-id").digest()
    return int.from_bytes(digest, "big") & _MASK
