"""Convert public labelled corpora into the layout ``bench.realworld`` reads.

    python -m bench.corpora skab SKAB_DATA_DIR OUT_DIR
    python -m bench.corpora tsb-ecg TSB_UAD_ECG_DIR OUT_DIR

The corpora themselves are fetched by hand, outside the repository, and never committed
(docs/quality.md says where from). The layout written (see ``bench.realworld``):
``OUT_DIR/<family>/<stream>.csv`` of ``timestamp,value`` and ``OUT_DIR/windows.json``
mapping each ``<family>/<stream>.csv`` to its labelled windows ``[[start, end], ...]``
(time stamps as in the CSV, both ends inside the window).

- **skab** (Skoltech Anomaly Benchmark: a water-circulation test rig, 1-second readings
  of 8 sensors; ``anomaly`` = 1 while a fault is induced): every sensor of every
  experiment is a stream (the fault does not show on every sensor: those streams count
  all the same, as a user would meet them), family = the experiment group (valve1,
  valve2, other); each run of ``anomaly`` = 1 is a window. ``anomaly-free`` has no label
  column and is skipped.
- **tsb-ecg** (TSB-UAD's MBA ECG records: ``value,label`` per line, 250 values a second):
  each record one stream of family ``ecg``, time stamps from 2020-01-01 at 4 ms steps;
  each run of label 1 is a window.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

SKAB_SENSORS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
ECG_START_S = 1_577_836_800  # 2020-01-01 00:00 UTC
ECG_STEP_S = 0.004


def runs(label: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    edges = np.diff(np.concatenate([[0], label.astype(np.int8), [0]]))
    return list(
        zip(
            np.flatnonzero(edges == 1).tolist(),
            (np.flatnonzero(edges == -1) - 1).tolist(),
            strict=True,
        )
    )


def _write(path: Path, stamps: list[str], values: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["timestamp", "value"])
        out.writerows(zip(stamps, values, strict=True))


def skab(source: Path, target: Path) -> dict[str, list[list[str]]]:
    windows: dict[str, list[list[str]]] = {}
    for family in ("valve1", "valve2", "other"):
        for path in sorted((source / family).glob("*.csv"), key=lambda p: int(p.stem)):
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f, delimiter=";"))
            stamps = [r["datetime"] for r in rows]
            label = np.array([float(r["anomaly"]) > 0 for r in rows])
            spans = [[stamps[a], stamps[b]] for a, b in runs(label)]
            for sensor in SKAB_SENSORS:
                name = f"{family}/{path.stem}_{sensor.replace(' ', '_')}.csv"
                _write(target / name, stamps, [r[sensor] for r in rows])
                windows[name] = spans
    return windows


def tsb_ecg(source: Path, target: Path) -> dict[str, list[list[str]]]:
    windows: dict[str, list[list[str]]] = {}
    for path in sorted(source.glob("*.out")):
        data = np.loadtxt(path, delimiter=",")
        stamps = [f"{ECG_START_S + i * ECG_STEP_S:.3f}" for i in range(len(data))]
        name = f"ecg/{path.stem}.csv"
        _write(target / name, stamps, [repr(float(x)) for x in data[:, 0]])
        windows[name] = [[stamps[a], stamps[b]] for a, b in runs(data[:, 1] > 0)]
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("corpus", choices=["skab", "tsb-ecg"])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    convert = skab if args.corpus == "skab" else tsb_ecg
    windows = convert(args.source, args.target)
    (args.target / "windows.json").write_text(json.dumps(windows, indent=1) + "\n")
    print(f"{len(windows)} streams, {sum(map(len, windows.values()))} windows in {args.target}")


if __name__ == "__main__":
    main()
