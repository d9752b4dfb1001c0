"""Detection, as the live ingester runs it, on a small city with one fault of each kind."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from bench.faults import FAULTS, Stream, generate
from bench.quality import DETECTOR_FAULT, Episode, run, score
from ingest.detect import Detection
from processing.state import pack, unpack
from storage.writer import ValueColumns

CITY = (8, 5, 4)


@cache
def _faulty() -> tuple[Stream, list[Episode]]:
    stream = generate(21, devices=CITY)
    return stream, run(stream)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_kind_is_found(fault: str) -> None:
    stream, episodes = _faulty()
    row = score(stream, episodes)[fault]
    assert row["faults"] == 1 and row["found"] == 1, row


def test_the_detectors_meant_for_a_fault_are_right_when_they_speak() -> None:
    stream, episodes = _faulty()
    table = score(stream, episodes)
    assert table["overall"]["precision"] >= 0.8, table["overall"]
    named = {e.detector for e in episodes}
    assert named <= set(DETECTOR_FAULT)


def test_a_healthy_city_raises_next_to_nothing() -> None:
    stream = generate(22, devices=CITY, faults=())
    episodes = run(stream)
    # about 600,000 values over five days: fewer than one episode a day
    assert len(episodes) <= 4, [(e.detector, e.device, e.metric) for e in episodes]
    assert not {e.detector for e in episodes} & {"lamp_out", "dropout", "gateway_silent"}


def test_a_restored_state_scores_as_the_original_would() -> None:
    stream = generate(23, days=3, devices=(2, 1, 1), faults=())
    half = int(np.searchsorted(stream.time_us, stream.time_us[0] + 2 * 86_400_000_000))
    cols = (
        stream.time_us,
        stream.device,
        stream.metric,
        stream.value,
        stream.gateway,
        stream.reading,
    )
    first = ValueColumns(*(c[:half] for c in cols))
    second = ValueColumns(*(c[half:] for c in cols))
    original = Detection(timezone="America/Chicago")
    original.observe(first, gateway=stream.gateway[:half])
    restored = Detection(timezone="America/Chicago")
    restored.load(unpack(pack(original.state())))
    assert original.state().keys() == restored.state().keys()
    a = original.observe(second, gateway=stream.gateway[half:])
    b = restored.observe(second, gateway=stream.gateway[half:])
    assert a == b
    now = int(stream.time_us[-1]) + 3_600_000_000  # an hour of silence: everything drops out
    a, b = original.silence(now), restored.silence(now)
    assert a == b and {c.detector for c in a} == {"gateway_silent"}
