"""`classify --ray` on one machine under the faults of a cluster: a model worker SIGKILLed, the
driver killed, a node removed, bad inputs mixed in. Each run classifies 16 small scans with a
tiny random model; the results table must end with every case exactly once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import plant_lesion

from TumorClassifierLib.manifest import Case
from TumorClassifierLib.volume import write_volume

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra, which the "
                                        "test extra brings)")
from TumorClassifierLib.cluster.ray_batch import RayOptions, classify_cases_on_ray  # noqa: E402

SCANS = 16
WAIT_S = 300


@pytest.fixture(scope="module")
def scans(head, tmp_path_factory) -> list[Case]:
    folder = tmp_path_factory.mktemp("ray_scans")
    return [Case(f"scan_{i:02d}", write_volume(
        plant_lesion(head, (130.0 + 5 * i, -110.0 + 3 * i, 90.0), 10.0, 2500.0),
        folder / f"scan_{i:02d}.nii.gz")) for i in range(SCANS)]


def table_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def wait_for_rows(path: Path, count: int) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = len(table_rows(path))
        if rows >= count:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{path}: fewer than {count} rows after {WAIT_S} s")


def assert_every_case_once(path: Path, cases: list[Case]) -> None:
    rows = table_rows(path)
    assert sorted(r["case"] for r in rows) == sorted(c.name for c in cases)
    assert {r["status"] for r in rows} == {"ok"}


def in_background(function, *args, **kwargs) -> threading.Thread:
    failure = []

    def target():
        try:
            function(*args, **kwargs)
        except BaseException as error:  # re-raised by finish()
            failure.append(error)
    thread = threading.Thread(target=target, daemon=True)
    thread.failure = failure
    thread.start()
    return thread


def finish(thread: threading.Thread) -> None:
    thread.join(WAIT_S)
    assert not thread.is_alive(), f"the run did not end within {WAIT_S} s"
    if thread.failure:
        raise thread.failure[0]


def model_worker_pids(busy: bool = False) -> list[int]:
    """Processes of this machine that Ray titled as our model workers (`busy`: running a
    case, which Ray's title shows as ".submit")."""
    title_part = b"MapWorker(Map(_ModelWorker))" + (b".submit" if busy else b"")
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and title_part in title:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def local_ray():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_table_matches_the_local_batch_and_bad_inputs_get_error_rows(scans, tiny_bundle,
                                                                        tmp_path):
    from TumorClassifierLib.batch import classify_cases
    from TumorClassifierLib.inference import Classifier
    text = tmp_path / "text.nii.gz"
    text.write_text("not an image", encoding="utf-8")
    cases = scans[:6] + [Case("text", text), Case("missing", tmp_path / "missing.nii.gz")]
    local = classify_cases(Classifier.from_bundle(tiny_bundle, "cpu"), cases, tmp_path / "local",
                           overlay=False, show_progress=False, echo=False)
    # No Ray running: the runner starts a local instance and stops it, as for a user.
    on_ray = classify_cases_on_ray(cases, tmp_path / "ray", tiny_bundle,
                                   RayOptions(workers=2), device="cpu", overlay=False,
                                   echo=False)
    assert (on_ray.attempted, on_ray.failures, on_ray.internal_errors) == (8, 2, 0)
    assert not ray.is_initialized()

    def by_case(summary):
        return {r["case"]: {k: v for k, v in r.items() if k != "seconds"}
                for r in table_rows(summary.table)}
    assert by_case(on_ray) == by_case(local)
    assert by_case(on_ray)["missing"]["error"] == f"{cases[-1].path}: no such file or folder"
    for case in scans[:6]:
        assert (tmp_path / "ray" / f"{case.name}_heatmap.nii.gz").is_file()
    # A re-run skips what is finished and retries only the failed cases.
    again = classify_cases_on_ray(cases, tmp_path / "ray", tiny_bundle, device="cpu",
                                  overlay=False, echo=False)
    assert (again.skipped, again.attempted) == (6, 2)


def test_a_model_worker_killed_mid_run_has_its_cases_retried(scans, tiny_bundle, tmp_path,
                                                            local_ray):
    table = tmp_path / "out" / "results.csv"
    run = in_background(classify_cases_on_ray, scans, tmp_path / "out", tiny_bundle,
                        device="cpu", overlay=False, echo=False)
    assert wait_for_rows(table, 2) < SCANS
    victims = model_worker_pids()
    assert len(victims) == 1
    os.kill(victims[0], signal.SIGKILL)
    finish(run)  # the only model worker died with cases left: Ray restarted it
    assert_every_case_once(table, scans)


def test_a_case_that_kills_its_worker_every_time_is_given_up(scans, tiny_bundle, tmp_path,
                                                             local_ray):
    from TumorClassifierLib.cluster.ray_batch import RETRIES
    run = in_background(classify_cases_on_ray, scans[:1], tmp_path / "out", tiny_bundle,
                        device="cpu", overlay=False, echo=False)
    killed = set()
    while run.is_alive() and len(killed) <= RETRIES + 1:  # every try, killed as it works
        for pid in set(model_worker_pids(busy=True)) - killed:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.01)
    finish(run)
    [row] = table_rows(tmp_path / "out" / "results.csv")
    assert row["status"] == "error" and row["error"].startswith(
        f"internal error: no result after {RETRIES + 1} tries")
    assert len(killed) == RETRIES + 1


def test_a_killed_driver_leaves_a_table_that_a_rerun_completes(scans, tiny_bundle, tmp_path):
    manifest = tmp_path / "cases.csv"
    manifest.write_text("path,case\n" + "".join(f"{c.path},{c.name}\n" for c in scans),
                        encoding="utf-8")
    table = tmp_path / "out" / "results.csv"
    command = [sys.executable, "-m", "TumorClassifierLib.cli", "classify", "--manifest",
               str(manifest), "--out", str(tmp_path / "out"), "--model", str(tiny_bundle),
               "--device", "cpu", "--no-overlay", "--ray"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        finished_before = wait_for_rows(table, 3)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        driver.wait()
    assert finished_before < SCANS
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=WAIT_S)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "skipped" in rerun.stderr
    assert_every_case_once(table, scans)


def test_a_node_removed_mid_run_the_run_completes_on_the_other(scans, tiny_bundle, tmp_path):
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    doomed = cluster.add_node(num_cpus=2)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        table = tmp_path / "out" / "results.csv"
        run = in_background(classify_cases_on_ray, scans, tmp_path / "out", tiny_bundle,
                            device="cpu", overlay=False, echo=False)
        assert wait_for_rows(table, 2) < SCANS
        cluster.remove_node(doomed)
        finish(run)
        assert_every_case_once(table, scans)
    finally:
        ray.shutdown()
        cluster.shutdown()
