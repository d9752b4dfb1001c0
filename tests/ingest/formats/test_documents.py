"""docs/asyncapi.yaml and docs/contract.md describe every format's topics and reasons."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.formats import FormatReason
from ingest.formats.router import FORMATS

DOCS = Path(__file__).parents[3] / "docs"
ASYNCAPI = (DOCS / "asyncapi.yaml").read_text()
CONTRACT = (DOCS / "contract.md").read_text()


def _matches(address: str, topic_filter: str) -> bool:
    """Whether a channel address ({parameters}) covers an MQTT topic filter."""
    a, f = address.split("/"), topic_filter.split("/")
    if len(a) != len(f):
        return False
    return all(x == y or x.startswith("{") for x, y in zip(a, f, strict=True))


def test_every_subscription_of_every_format_has_a_channel() -> None:
    addresses = re.findall(r"address: '([^']+)'", ASYNCAPI)
    for name, (_, subscriptions) in FORMATS.items():
        for topic_filter in subscriptions():
            assert any(_matches(a, topic_filter) for a in addresses), (name, topic_filter)


def test_every_reason_of_the_formats_is_documented() -> None:
    for reason in FormatReason:
        assert f"| `{reason.value}` |" in CONTRACT, reason
