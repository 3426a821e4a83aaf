import json
import zipfile

import pytest
import torch
from conftest import TINY_NETWORK, TINY_PREPROCESSING, make_tiny_bundle

from TumorClassifierLib.bundle import load_bundle
from TumorClassifierLib.errors import InputError
from TumorClassifierLib.model_metadata import FORMAT_VERSION
from TumorClassifierLib.network import TumorClassifierNet


def outputs(network):
    x = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return network(x)


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "zip"])
def test_round_trip_gives_the_same_network_and_metadata(tmp_path, archive):
    path = make_tiny_bundle(tmp_path / ("m.zip" if archive else "m"), seed=3, archive=archive)
    loaded = load_bundle(path)
    torch.manual_seed(3)
    original = TumorClassifierNet(TINY_NETWORK).eval()  # as make_tiny_bundle built it
    torch.testing.assert_close(outputs(loaded.network), outputs(original))
    assert loaded.metadata.network == TINY_NETWORK
    assert loaded.metadata.preprocessing == TINY_PREPROCESSING
    assert loaded.metadata.software["torch"] == torch.__version__
    assert len(loaded.metadata.weights_sha256) == 64 and not loaded.network.training


def edit_metadata(path, change):
    metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    change(metadata)
    (path / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")


def test_tampered_weights_are_refused(tmp_path):
    path = make_tiny_bundle(tmp_path / "m")
    weights = bytearray((path / "model.safetensors").read_bytes())
    weights[-10] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(InputError, match="sha256"):
        load_bundle(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(surprise=1), "unknown key.*surprise"),
    (lambda m: m["preprocessing"].update(crop=True), "preprocessing: unknown key.*crop"),
    (lambda m: m["network"].update(base_filters=4), "do not fit"),
    (lambda m: m.update(format_version=FORMAT_VERSION + 1), "newer"),
    (lambda m: m.update(atlas_sha256="0" * 64), "different atlas"),
    (lambda m: m.update(format="something-else"), "not TumorClassifier model metadata"),
    (lambda m: m["network"].update(num_classes=3), "class codes"),
], ids=["unknown-key", "unknown-nested-key", "wrong-config", "newer-format", "other-atlas",
        "foreign", "class-count"])
def test_bad_metadata_is_refused_with_a_clear_message(tmp_path, change, message):
    path = make_tiny_bundle(tmp_path / "m")
    edit_metadata(path, change)
    with pytest.raises(InputError, match=message):
        load_bundle(path)


def test_pickles_are_never_loaded(tmp_path):
    pickle_file = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(3)}, pickle_file)
    with pytest.raises(InputError, match="pickle"):
        load_bundle(pickle_file)


def test_truncated_archive_is_refused(tmp_path):
    path = make_tiny_bundle(tmp_path / "m.zip", archive=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="m.zip"):
        load_bundle(path)


def test_archive_without_weights_is_refused(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(InputError, match="not a model bundle"):
        load_bundle(path)


def test_missing_default_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TUMORCLASSIFIER_RESOURCES", str(tmp_path))
    with pytest.raises(InputError, match="no default model is installed"):
        load_bundle(None)


def test_saving_over_an_existing_bundle_replaces_its_files_and_keeps_others(tmp_path):
    path = make_tiny_bundle(tmp_path / "m", seed=1)
    (path / "training").mkdir()
    first = load_bundle(path).metadata.weights_sha256
    make_tiny_bundle(path, seed=2)
    assert sorted(p.name for p in path.iterdir()) == ["metadata.json", "model.safetensors",
                                                      "training"]
    assert load_bundle(path).metadata.weights_sha256 != first


def test_weights_replaced_without_new_metadata_are_refused(tmp_path):
    """What a crash between the two renames would leave behind."""
    path = make_tiny_bundle(tmp_path / "m", seed=1)
    other = make_tiny_bundle(tmp_path / "other", seed=2)
    (path / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(InputError, match="sha256"):
        load_bundle(path)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_weights_with_nan_are_refused_naming_the_tensor(tmp_path, bad):
    from TumorClassifierLib.bundle import save_bundle
    from TumorClassifierLib.model_metadata import ModelMetadata
    torch.manual_seed(0)
    network = TumorClassifierNet(TINY_NETWORK)
    with torch.no_grad():
        network.classifier.weight[0, 0] = float(bad)
    metadata = ModelMetadata(name="diverged", network=TINY_NETWORK,
                             preprocessing=TINY_PREPROCESSING)
    path = save_bundle(network, metadata, tmp_path / "m")
    with pytest.raises(InputError, match=r"NaN or infinite values \(classifier.weight\)"):
        load_bundle(path)


def test_huge_finite_weights_are_not_mistaken_for_infinite_ones(tmp_path):
    from TumorClassifierLib.bundle import save_bundle
    from TumorClassifierLib.model_metadata import ModelMetadata
    network = TumorClassifierNet(TINY_NETWORK)
    with torch.no_grad():
        network.classifier.weight.fill_(3e38)  # their float32 sum would overflow
    path = save_bundle(network, ModelMetadata(name="huge", network=TINY_NETWORK,
                                              preprocessing=TINY_PREPROCESSING), tmp_path / "m")
    assert load_bundle(path).metadata.name == "huge"


def test_float16_weights_halve_the_file_and_load_as_float32(tmp_path):
    from TumorClassifierLib.bundle import save_bundle
    from TumorClassifierLib.model_metadata import ModelMetadata
    torch.manual_seed(5)
    network = TumorClassifierNet(TINY_NETWORK).eval()
    metadata = ModelMetadata(name="half", network=TINY_NETWORK, preprocessing=TINY_PREPROCESSING)
    full = save_bundle(network, metadata, tmp_path / "full")
    half = save_bundle(network, metadata, tmp_path / "half", weights_dtype=torch.float16)
    sizes = [(p / "model.safetensors").stat().st_size for p in (full, half)]
    assert sizes[1] < 0.6 * sizes[0]
    loaded = load_bundle(half).network
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for name, value in network.state_dict().items():
        widened = value.half().float() if value.is_floating_point() else value
        assert torch.equal(loaded.state_dict()[name], widened), name


def test_a_models_metadata_and_card_are_read_without_torch(tiny_bundle):
    from conftest import modules_loaded_by
    code = ("from TumorClassifierLib.model_metadata import read_model_metadata, model_card\n"
            f"card = model_card(read_model_metadata({str(tiny_bundle)!r}))\n"
            "assert card['name'] == 'tiny-test' and len(card['classes']) == 7")
    assert modules_loaded_by(code, ("torch", "monai", "SimpleITK")) == []


def test_metadata_errors_name_the_bundle(tmp_path):
    from TumorClassifierLib.model_metadata import read_model_metadata
    path = make_tiny_bundle(tmp_path / "m")
    (path / "metadata.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=f"{path}: metadata.json is not valid JSON"):
        read_model_metadata(path)
