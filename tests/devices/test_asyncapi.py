"""The AsyncAPI document and the code describe the same contract."""

from __future__ import annotations

import re
from pathlib import Path

from devices.catalog import Kind
from devices.contract import CHANNELS, ID_PATTERN, topic
from ingest.formats.senml import CBOR_CHANNEL, JSON_CHANNEL

DOC = (Path(__file__).parents[2] / "docs" / "asyncapi.yaml").read_text()


def test_every_channel_of_the_code_is_in_the_document_and_no_other() -> None:
    documented = set(re.findall(r"address: '(city/v1/gateways/\{gateway_id\}/[a-z/]+)'", DOC))
    # the SenML channels share the gateway's topic root (docs/contract.md)
    channels = (*CHANNELS, JSON_CHANNEL, CBOR_CHANNEL)
    assert documented == {topic("{gateway_id}", c) for c in channels}


def test_id_pattern_and_kinds_match() -> None:
    assert f"pattern: '{ID_PATTERN}'" in DOC
    assert f"enum: [{', '.join(k.value for k in Kind)}]" in DOC
