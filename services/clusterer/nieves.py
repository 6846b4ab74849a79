"""Fields of view of the Nieves et al. (2023) cluster-analysis benchmark, in its file layout.

A scenario directory holds one CSV per field (`..._MoleculeList_K.csv` or
`..._DetectionListK.csv`, K = 1..50) with columns "x","y","index" in nm; index 0 is
non-clustered, 1..C the true cluster. Directories are `ground-truth-scenario-N` and
`multiple-blinking-scenario-N`. This module only reads that layout; nothing in the
package needs the data to be present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointillist.core.errors import NotFound
from pointillist.core.io import read_csv_table

_FIELD_RE = re.compile(r"(\d+)\.csv$")


@dataclass(frozen=True)
class Field:
    """One labelled field: x, y (n, 2) nm and labels (n,) with 0 = non-clustered."""

    number: int
    points_nm: np.ndarray
    labels: np.ndarray


def scenario_dir(data_dir: str | Path, scenario: int | str, blinking: bool) -> Path:
    """Directory of a scenario (`scenario` as 8 or "scenario8")."""
    n = str(scenario).removeprefix("scenario")
    kind = "multiple-blinking" if blinking else "ground-truth"
    path = Path(data_dir) / f"{kind}-scenario-{n}"
    if not path.is_dir():
        raise NotFound(f"Nieves benchmark directory not found: {path}")
    return path


def field_paths(directory: str | Path) -> dict[int, Path]:
    """Field number → CSV path, for every field file in `directory`."""
    found = {}
    for path in Path(directory).glob("*.csv"):
        match = _FIELD_RE.search(path.name)
        if match:
            found[int(match.group(1))] = path
    if not found:
        raise NotFound(f"no field CSV files in {directory}")
    return dict(sorted(found.items()))


def read_field(path: str | Path, number: int = 0) -> Field:
    """One field file as a `Field` (labels from its "index" column)."""
    table = read_csv_table(path, columns={"index": "label"})
    xy = np.stack([table["x"], table["y"]], axis=1).astype(np.float64)
    return Field(number, xy, np.asarray(table["label"], dtype=np.int64))


def read_fields(
    data_dir: str | Path, scenario: int | str, blinking: bool, numbers: list[int] | None = None
) -> list[Field]:
    """The fields `numbers` (default: all) of a scenario, in field-number order."""
    paths = field_paths(scenario_dir(data_dir, scenario, blinking))
    wanted = sorted(paths) if numbers is None else list(numbers)
    missing = [n for n in wanted if n not in paths]
    if missing:
        raise NotFound(f"fields {missing} not in scenario {scenario} (blinking={blinking})")
    return [read_field(paths[n], n) for n in wanted]
