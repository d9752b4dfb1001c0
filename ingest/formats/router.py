"""Which parser reads which topic: one registration line per format.

The ingester subscribes to ``Router.subscriptions()`` and hands each delivery whose topic
``Router.parser_for`` recognises to that parser; contract v1 topics stay with its own
decoder. Formats are enabled by name (a setting).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ingest.formats import Parser, chirpstack, senml, sparkplug, tts
from ingest.formats.mapping import MappingFile
from ingest.limits import Limits

_Factory = Callable[..., Parser]
FORMATS: Final[dict[str, tuple[_Factory, Callable[..., list[str]]]]] = {
    "chirpstack": (chirpstack.Parser, chirpstack.subscriptions),
    "tts": (tts.Parser, tts.subscriptions),
    "sparkplug": (sparkplug.Parser, sparkplug.subscriptions),
    "senml": (senml.Parser, senml.subscriptions),
}
"""Format name -> (parser class, its topic filters)."""


class Router:
    """The enabled formats' parsers, picked by topic."""

    def __init__(
        self,
        enabled: Iterable[str],
        *,
        mapping: MappingFile | None = None,
        units: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        prefix: str = "",
    ) -> None:
        """``units``: catalog metric name -> unit of the catalog in force (default: the
        shipped one); build a new Router when the catalog changes."""
        names = list(dict.fromkeys(enabled))
        unknown = sorted(set(names) - set(FORMATS))
        if unknown:
            raise ValueError(f"unknown payload formats {unknown}; known: {sorted(FORMATS)}")
        self._prefix = prefix
        self._parsers: dict[str, Parser] = {
            name: FORMATS[name][0](mapping=mapping, units=units, limits=limits, prefix=prefix)
            for name in names
        }
        self._filters = [f for name in names for f in FORMATS[name][1](prefix=prefix)]

    def subscriptions(self) -> list[str]:
        """The topic filters of every enabled format."""
        return list(self._filters)

    def parser_for(self, topic: str) -> Parser | None:
        """The parser of ``topic``'s format, or None (not an enabled format's topic)."""
        if not topic.startswith(self._prefix):
            return None
        rest = topic[len(self._prefix) :]
        head = rest.partition("/")[0]
        name = {
            "application": "chirpstack",
            "v3": "tts",
            sparkplug.NAMESPACE: "sparkplug",
        }.get(head)
        if name is None and head == "city" and "/senml" in rest:
            name = "senml"
        return self._parsers.get(name) if name is not None else None
