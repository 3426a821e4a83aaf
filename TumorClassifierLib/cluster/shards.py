"""Shards of a case list for clusters without Ray (`classify --num-shards N --shard-id I`, e.g.
one SLURM array task each), each with its own results table, and their merge into one table
that says which cases are missing. Every shard writes its cases' files into the same output
folder; the tables are what is merged."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..manifest import Case
from ..results_table import TABLE_NAME, latest_rows, succeeded, write_rows

_TABLE = re.compile(r"results\.shard-(\d+)-of-(\d+)\.csv")


def shard_of(cases: list[Case], num_shards: int, shard_id: int) -> list[Case]:
    """Shard `shard_id` (0-based, as SLURM_ARRAY_TASK_ID) of `num_shards`: every
    `num_shards`-th case in the order of case names, so that the split depends only on which
    cases there are, and the shards differ in size by one case at most."""
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise InputError(f"--shard-id must be from 0 to {num_shards - 1} for {num_shards} "
                         f"shard(s), not {shard_id}")
    ordered = sorted(cases, key=lambda case: case.name)
    return ordered[shard_id::num_shards]


def shard_table(out: Path, num_shards: int, shard_id: int) -> Path:
    return Path(out) / f"results.shard-{shard_id}-of-{num_shards}.csv"


@dataclass(frozen=True)
class MergeSummary:
    table: Path
    num_shards: int
    finished: int  # cases with an "ok" row
    failed: list[str]  # cases whose every row is an error
    missing_shards: list[int]  # shards without a table
    missing_cases: list[str]  # cases of the manifest in no table (only with a manifest)

    @property
    def complete(self) -> bool:
        return not (self.failed or self.missing_shards or self.missing_cases)


def merge_shard_tables(out: Path, cases: list[Case] | None = None,
                       table: Path | None = None) -> MergeSummary:
    """Join the shard tables in `out` into `table` (default out/results.csv), one row per case:
    its last "ok" row, else its last error row. `cases` (the manifest): also name the cases
    that no table holds."""
    out = Path(out)
    found = {}
    for path in sorted(out.glob("results.shard-*-of-*.csv")):
        match = _TABLE.fullmatch(path.name)
        if match:
            found[(int(match[2]), int(match[1]))] = path
    if not found:
        raise InputError(f"{out}: holds no shard tables (results.shard-I-of-N.csv)")
    counts = sorted({num_shards for num_shards, _ in found})
    if len(counts) > 1:
        raise InputError(f"{out}: holds shard tables of {' and '.join(map(str, counts))} "
                         "shards; move the tables of the other split away first")
    num_shards = counts[0]
    columns, rows = [], []
    for shard_id in range(num_shards):
        path = found.get((num_shards, shard_id))
        if path is None:
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
            rows += list(reader)
    rows = {row["case"]: row for row in latest_rows(rows)}
    table = Path(table) if table else out / TABLE_NAME
    write_rows(table, [rows[name] for name in sorted(rows)], columns)
    return MergeSummary(
        table, num_shards,
        finished=sum(succeeded(row) for row in rows.values()),
        failed=sorted(name for name, row in rows.items() if not succeeded(row)),
        missing_shards=[i for i in range(num_shards) if (num_shards, i) not in found],
        missing_cases=sorted({case.name for case in cases or []} - set(rows)))
