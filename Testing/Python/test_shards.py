"""Shards for clusters without Ray: the split is a partition that depends only on which cases
there are, and the merge keeps one row per case and names what is missing."""

import csv
import random
from pathlib import Path

import pytest

from TumorClassifierLib.cli import EXIT_INCOMPLETE, main
from TumorClassifierLib.cluster.shards import merge_shard_tables, shard_of, shard_table
from TumorClassifierLib.errors import InputError
from TumorClassifierLib.manifest import Case

CASES = [Case(f"case_{index:03d}", Path(f"/scans/{index}.nii.gz")) for index in range(23)]
COLUMNS = ["case", "source", "status", "predicted_class", "error"]


@pytest.mark.parametrize("num_shards", [1, 2, 5, 23, 40])
def test_shards_partition_the_cases_evenly_whatever_their_order(num_shards):
    shards = [shard_of(CASES, num_shards, shard_id) for shard_id in range(num_shards)]
    names = [case.name for shard in shards for case in shard]
    assert sorted(names) == sorted(case.name for case in CASES)  # each case in one shard
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1
    shuffled = CASES[:]
    random.Random(4).shuffle(shuffled)
    assert [shard_of(shuffled, num_shards, i) for i in range(num_shards)] == shards


@pytest.mark.parametrize("num_shards, shard_id", [(3, 3), (3, -1), (0, 0)])
def test_impossible_shards_are_refused(num_shards, shard_id):
    with pytest.raises(InputError, match="--shard-id must be"):
        shard_of(CASES, num_shards, shard_id)


def write_table(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def row(name, status="ok", predicted="HGG"):
    return {"case": name, "source": f"/scans/{name}", "status": status,
            "predicted_class": predicted if status == "ok" else "",
            "error": "" if status == "ok" else "it broke"}


def test_merge_keeps_each_cases_ok_row_and_names_what_is_missing(tmp_path):
    write_table(shard_table(tmp_path, 3, 0), [row("a", "error"), row("a", predicted="LGG"),
                                              row("b", "error")])
    write_table(shard_table(tmp_path, 3, 2), [row("c"), row("c", "error"), row("d")])
    manifest_cases = [Case(name, Path(name)) for name in "abcde"]
    summary = merge_shard_tables(tmp_path, manifest_cases)
    with open(summary.table, newline="", encoding="utf-8") as handle:
        merged = list(csv.DictReader(handle))
    assert [(r["case"], r["status"], r["predicted_class"]) for r in merged] == [
        ("a", "ok", "LGG"), ("b", "error", ""), ("c", "ok", "HGG"), ("d", "ok", "HGG")]
    assert (summary.finished, summary.failed, summary.missing_shards,
            summary.missing_cases, summary.complete) == (3, ["b"], [1], ["e"], False)


def test_merge_refuses_tables_of_two_splits_and_an_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no shard tables"):
        merge_shard_tables(tmp_path)
    write_table(shard_table(tmp_path, 2, 0), [row("a")])
    write_table(shard_table(tmp_path, 4, 1), [row("b")])
    with pytest.raises(InputError, match="2 and 4 shards"):
        merge_shard_tables(tmp_path)


def test_merge_command_exits_incomplete_until_every_shard_is_in(tmp_path, capsys):
    write_table(shard_table(tmp_path, 2, 0), [row("a")])
    assert main(["merge", "--out", str(tmp_path)]) == EXIT_INCOMPLETE
    assert "1 shard(s) without a table: 1" in capsys.readouterr().err
    write_table(shard_table(tmp_path, 2, 1), [row("b")])
    assert main(["merge", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("flags, message", [
    (["--shard-id", "1"], "--num-shards and --shard-id go together"),
    (["--num-shards", "2", "--shard-id", "2"], "--shard-id must be from 0 to 1"),
    (["--num-shards", "2", "--shard-id", "0", "--ray"], "leave out --num-shards"),
])
def test_shard_option_mistakes_exit_2_with_one_line(tmp_path, capsys, flags, message):
    assert main(["classify", "x.nii.gz", "--out", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


@pytest.mark.slow
def test_shards_classified_apart_merge_into_the_table_of_one_run(head, tiny_bundle, tmp_path):
    from conftest import plant_lesion

    from TumorClassifierLib.volume import write_volume
    paths = [write_volume(plant_lesion(head, (150.0 + 10 * i, -100.0, 90.0), 12.0, 3000.0),
                          tmp_path / f"scan_{i}.nii.gz") for i in range(3)]
    common = [*map(str, paths), "--model", str(tiny_bundle), "--no-overlay"]
    assert main(["classify", *common, "--out", str(tmp_path / "whole")]) == 0
    for shard_id in (0, 1):
        assert main(["classify", *common, "--out", str(tmp_path / "split"),
                     "--num-shards", "2", "--shard-id", str(shard_id)]) == 0
    assert main(["merge", "--out", str(tmp_path / "split")]) == 0

    def table(folder):
        with open(tmp_path / folder / "results.csv", newline="", encoding="utf-8") as handle:
            return {r["case"]: {k: v for k, v in r.items() if k != "seconds"}
                    for r in csv.DictReader(handle)}
    assert table("split") == table("whole") and len(table("whole")) == 3
    assert sorted(p.name for p in (tmp_path / "split").glob("*_heatmap.nii.gz")) == sorted(
        p.name for p in (tmp_path / "whole").glob("*_heatmap.nii.gz"))
