import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_NETWORK
from torch import nn

from TumorClassifierLib.gradcam import GradCAM, normalise_per_sample
from TumorClassifierLib.network import TumorClassifierNet


class HandWired(nn.Module):
    """Class 0 = "bright": its score is the mean of a 4x-downsampled intensity map.
    Class 1 = "dark": the mean of the negated map."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv3d(1, 2, kernel_size=4, stride=4)
        self.classifier = nn.Linear(2, 2)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0].fill_(1 / 64)  # channel 0: local mean intensity
            self.features.weight[1].fill_(-1 / 64)  # channel 1: its negative
            self.features.bias.zero_()
            self.classifier.weight.copy_(torch.eye(2))
            self.classifier.bias.zero_()

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool3d(F.relu(self.features(x)), 1).flatten(1))


def lesion_volume(centre=(20, 9, 27), radius=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    volume = 0.1 * rng.random((size, size, size)).astype(np.float32)
    k, j, i = np.indices(volume.shape)
    inside = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius ** 2
    volume[inside] = 1.0
    return torch.from_numpy(volume)[None, None], inside


def test_peak_falls_inside_a_planted_bright_lesion():
    x, lesion = lesion_volume()
    network = HandWired().eval()
    with GradCAM(network, network.features) as cam:
        logits, maps = cam(x)
    assert logits.argmax().item() == 0  # "bright"
    assert set(cam.timings) == {"forward", "gradcam"} and min(cam.timings.values()) > 0
    peak = np.unravel_index(maps[0].argmax().item(), maps[0].shape)
    assert lesion[peak]
    assert maps.shape == (1, 32, 32, 32)
    assert maps.max().item() == 1.0 and maps.min().item() == 0.0


def reference_gradcam(network, layer, x, class_index, method="gradcam"):
    """The textbook way: full forward with autograd everywhere, then backward."""
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.update(a=o))
    logits = network(x)
    handle.remove()
    gradients = torch.autograd.grad(logits[0, class_index], store["a"])[0]
    weights = gradients.mean(dim=(2, 3, 4), keepdim=True) if method == "gradcam" else gradients
    cam = F.relu((weights * store["a"]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="trilinear", align_corners=False)
    return normalise_per_sample(cam[:, 0]).detach()


@pytest.mark.parametrize("method,level", [("gradcam", 9), ("hirescam", 9), ("hirescam", 1)])
def test_cheap_backward_equals_the_full_backward_on_the_paper_network(method, level):
    torch.manual_seed(0)
    network = TumorClassifierNet(TINY_NETWORK).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    layer = network.level(level)
    for class_index in (0, 4):
        with GradCAM(network, layer, method) as cam:
            _, maps = cam(x, class_index=class_index)
        expected = reference_gradcam(network, layer, x, class_index, method)
        torch.testing.assert_close(maps, expected, atol=1e-5, rtol=1e-4)
        assert cam.activation_shape == tuple(n // 2 ** list(network.levels).index(layer)
                                             for n in x.shape[2:])


def test_hirescam_is_gradcam_at_the_deepest_level():
    """There the gradient is the dense layer's weights over the voxel count, the same at every
    voxel: spatial averaging changes nothing (Draelos & Carin 2020)."""
    torch.manual_seed(1)
    network = TumorClassifierNet(TINY_NETWORK).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    maps = {}
    for method in ("gradcam", "hirescam"):
        with GradCAM(network, network.gradcam_layer, method) as cam:
            maps[method] = cam(x, class_index=3)[1]
    torch.testing.assert_close(maps["gradcam"], maps["hirescam"], atol=1e-5, rtol=1e-4)


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="hirescam"):
        GradCAM(HandWired(), HandWired().features, "saliency")


def test_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    network = TumorClassifierNet(TINY_NETWORK).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        plain = network(x)
    with GradCAM(network, network.gradcam_layer) as cam:
        logits, _ = cam(x)
        assert len(network.gradcam_layer._forward_hooks) == 1
    assert len(network.gradcam_layer._forward_hooks) == 0  # hook removed on exit
    assert all(p.grad is None for p in network.parameters())  # no gradients left behind
    assert all(p.requires_grad for p in network.parameters())
    assert torch.is_grad_enabled()
    torch.testing.assert_close(logits, plain)


def test_hook_is_removed_even_when_the_block_raises():
    network = HandWired()
    try:
        with GradCAM(network, network.features):
            raise KeyError("boom")
    except KeyError:
        pass
    assert len(network.features._forward_hooks) == 0


def test_batch_and_chosen_class():
    x1, _ = lesion_volume(centre=(8, 8, 8))
    x2, _ = lesion_volume(centre=(24, 24, 24), seed=1)
    network = HandWired().eval()
    with GradCAM(network, network.features) as cam:
        logits, maps = cam(torch.cat([x1, x2]))
        _, dark = cam(x1, class_index=1)
    assert maps.shape == (2, 32, 32, 32)
    assert maps[0, 8, 8, 8] == 1.0 or maps[0, 6:11, 6:11, 6:11].max() == 1.0
    assert maps[1, 22:27, 22:27, 22:27].max() == 1.0
    assert dark.shape == (1, 32, 32, 32) and dark[0, 6:11, 6:11, 6:11].max() < 0.5


def test_normalise_handles_flat_maps():
    maps = torch.stack([torch.zeros(4, 4, 4), torch.arange(64.0).reshape(4, 4, 4)])
    normalised = normalise_per_sample(maps)
    assert torch.all(normalised[0] == 0)
    assert normalised[1].min() == 0 and normalised[1].max() == 1


def _paper_network_map(dtype, autocast_dtype=None, seed=0, method="gradcam", level=9):
    torch.manual_seed(seed)
    network = TumorClassifierNet(TINY_NETWORK).eval().to(dtype)
    x = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(seed)).to(dtype)
    context = (torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype
               else torch.autocast("cpu", enabled=False))
    with context, GradCAM(network, network.level(level), method) as cam:
        _, maps = cam(x, class_index=2)
    return maps[0].double().numpy()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method,level", [("gradcam", 9)])
def test_the_map_is_well_conditioned_in_float32_and_bfloat16(seed, method, level):
    """Regression: at the paper's layer (before an instance norm) Grad-CAM's channel weights
    are zero in exact arithmetic and the map was rounding noise; float32 and float64
    disagreed. Grad-CAM at the deepest level and HiResCAM at a shallower one are stable."""
    exact = _paper_network_map(torch.float64, seed=seed, method=method, level=level)
    assert exact.max() == pytest.approx(1)
    np.testing.assert_allclose(_paper_network_map(torch.float32, seed=seed, method=method,
                                                  level=level), exact, atol=1e-4)
    np.testing.assert_allclose(_paper_network_map(torch.float32, torch.bfloat16, seed=seed,
                                                  method=method, level=level), exact, atol=0.05)


@pytest.mark.slow
def test_the_default_models_heatmap_is_well_conditioned():
    """The shipped map (the bundle's method and level) on a bundled sample: float32 within 1e-4
    of float64, bf16 autocast within 0.05 and with its peak in the same place. (On a random
    tiny network HiResCAM at a shallow level is less stable in bf16 than a trained one.)"""
    from TumorClassifierLib.inference import Classifier
    from TumorClassifierLib.manifest import read_manifest
    from TumorClassifierLib.resources import sample_data_dir
    classifier = Classifier.from_bundle(None, device="cpu")
    settings = classifier.metadata.inference
    case = next(c for c in read_manifest(sample_data_dir() / "manifest.csv") if c.label == "METS")
    tensor = torch.from_numpy(classifier.prepare(case.path).scan.tensor)[None]
    network = classifier.bundle.network

    def heatmap(dtype, autocast_dtype=None):
        model = copy.deepcopy(network).to(dtype)
        context = (torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype
                   else torch.autocast("cpu", enabled=False))
        with context, GradCAM(model, model.level(settings.heatmap_level),
                              settings.heatmap_method) as cam:
            return cam(tensor.to(dtype), class_index=2)[1][0].double().numpy()
    exact = heatmap(torch.float64)
    np.testing.assert_allclose(heatmap(torch.float32), exact, atol=1e-4)
    low = heatmap(torch.float32, torch.bfloat16)
    np.testing.assert_allclose(low, exact, atol=0.05)
    assert np.unravel_index(low.argmax(), low.shape) == np.unravel_index(exact.argmax(),
                                                                         exact.shape)


def test_other_passes_inside_the_block_run_as_usual():
    """Test-time flips run the network inside the block: the hook must leave them alone (it
    switches autocast off behind the explained layer, for the explaining pass only)."""
    torch.manual_seed(2)
    network = TumorClassifierNet(TINY_NETWORK).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        outside = network(x)
        with GradCAM(network, network.level(1), "hirescam") as cam:
            before = network(x)
            cam(x)
            assert torch.is_autocast_enabled("cpu")
            after = network(x)
    assert outside.dtype == torch.bfloat16
    torch.testing.assert_close(before, outside, atol=0, rtol=0)
    torch.testing.assert_close(after, outside, atol=0, rtol=0)
