
import pytest

from TumorClassifierLib.errors import InputError
from TumorClassifierLib.manifest import cases_from_paths, read_manifest
from TumorClassifierLib.results_table import ResultsTable


def test_manifest_csv_and_tsv_with_relative_paths(tmp_path):
    (tmp_path / "a.csv").write_text("path,label,patient_id\nscans/one.nii.gz,HGG,p1\n"
                                    "/abs/two.nrrd,LGG,p2\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("path\tcase\tbrain_mask\nscans/one.nii.gz\tcase1\tmask.nii\n",
                                    encoding="utf-8")
    cases = read_manifest(tmp_path / "a.csv")
    assert [c.name for c in cases] == ["one", "two"]
    assert cases[0].path == tmp_path / "scans" / "one.nii.gz" and cases[0].label == "HGG"
    assert str(cases[1].path) == "/abs/two.nrrd" and cases[1].patient_id == "p2"
    tsv = read_manifest(tmp_path / "b.tsv")
    assert tsv[0].name == "case1" and tsv[0].brain_mask == tmp_path / "mask.nii"


@pytest.mark.parametrize("text, message", [
    ("file,label\nx.nii,HGG\n", "needs a 'path' column"),
    ("path,colour\nx.nii,red\n", "unknown column"),
    ("path\n", "lists no cases"),
    ("path,label\n,HGG\n", ":2: empty path"),
])
def test_bad_manifests_are_refused(tmp_path, text, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_manifest(manifest)


def test_cases_sharing_a_file_name_get_their_folder_as_prefix():
    cases = cases_from_paths(["/data/pat1/t1c.nii.gz", "/data/pat2/t1c.nii.gz", "/x/solo.nrrd"])
    assert [c.name for c in cases] == ["pat1_t1c", "pat2_t1c", "solo"]
    with pytest.raises(InputError, match="both called"):
        cases_from_paths(["/a/p/t1c.nii.gz", "/b/p/t1c.nii.gz"])


def test_non_ascii_names_survive_a_c_locale(tmp_path):
    """Reading DICOM through GDCM switches the process to the C locale, after which Python's
    default file encoding is ASCII; manifests and results must not depend on it."""
    import locale
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        manifest = tmp_path / "cases.csv"
        manifest.write_bytes("path,label\nscans/zweite_ü.nii.gz,HGG\n".encode())
        case = read_manifest(manifest)[0]
        assert case.name == "zweite_ü"
        table = ResultsTable(tmp_path / "results.csv", ["case", "status"])
        table.append({"case": case.name, "status": "ok"})
        assert table.finished_cases() == {"zweite_ü"}
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
