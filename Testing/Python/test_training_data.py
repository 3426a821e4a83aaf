import shutil

from TumorClassifierLib import training_data
from TumorClassifierLib.preprocessing import PreprocessingConfig
from TumorClassifierLib.training_data import content_hash_function


def test_cache_key_follows_content_settings_and_code_revision(tmp_path, monkeypatch):
    first = tmp_path / "a.nii.gz"
    first.write_bytes(b"scan bytes")
    renamed = tmp_path / "renamed.nii.gz"
    shutil.copy(first, renamed)
    changed = tmp_path / "changed.nii.gz"
    changed.write_bytes(b"other bytes")
    key = content_hash_function(PreprocessingConfig())
    assert key({"image": str(first)}) == key({"image": str(renamed)})
    assert key({"image": str(first)}) != key({"image": str(changed)})
    other_settings = content_hash_function(PreprocessingConfig(input_shape=(64, 64, 64)))
    assert other_settings({"image": str(first)}) != key({"image": str(first)})
    monkeypatch.setattr(training_data, "PREPROCESSING_REVISION",
                        training_data.PREPROCESSING_REVISION + 1)
    assert content_hash_function(PreprocessingConfig())({"image": str(first)}) != \
        key({"image": str(first)})

