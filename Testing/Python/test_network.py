import math

import pytest
import torch
from conftest import TINY_NETWORK
from torch import nn

from TumorClassifierLib.network import NetworkConfig, TumorClassifierNet, count_parameters


def test_default_network_has_the_papers_parameter_count():
    assert count_parameters(TumorClassifierNet()) == 5_895_719


def test_output_shape_and_deepest_feature_map_at_128():
    network = TumorClassifierNet().eval()
    captured = {}
    network.gradcam_layer.register_forward_hook(lambda m, i, o: captured.update(shape=o.shape))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        output = network(torch.zeros(1, 1, 128, 128, 128))
    assert output.shape == (1, 7)
    assert captured["shape"] == (1, 256, 8, 8, 8)


def test_batch_of_two_gives_seven_scores_each():
    network = TumorClassifierNet().eval()
    with torch.no_grad():
        assert network(torch.randn(2, 1, 32, 32, 32)).shape == (2, 7)


def test_configurable_sizes():
    config = NetworkConfig(base_filters=4, depth=3, num_classes=3, in_channels=2)
    network = TumorClassifierNet(config).eval()
    assert config.downsampling == 4
    with torch.no_grad():
        assert network(torch.randn(1, 2, 16, 16, 16)).shape == (1, 3)
    assert network.gradcam_layer.context.conv2.conv.out_channels == 16


def test_glorot_uniform_kernels_and_zero_biases():
    torch.manual_seed(0)
    network = TumorClassifierNet(TINY_NETWORK)
    for module in network.modules():
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            fan_in = module.weight[0].numel()
            fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert module.weight.abs().max() <= bound
            assert module.weight.abs().max() > 0.5 * bound  # uniform, not a tiny init
            assert torch.all(module.bias == 0)


def test_kernel_l2_counts_conv_and_dense_kernels_only():
    network = TumorClassifierNet(TINY_NETWORK)
    expected = sum(m.weight.pow(2).sum() for m in network.modules()
                   if isinstance(m, (nn.Conv3d, nn.Linear)))
    assert torch.allclose(network.kernel_l2(), expected)
    with torch.no_grad():
        for m in network.modules():
            if isinstance(m, nn.InstanceNorm3d):
                m.weight.fill_(100.0)  # norms must not count
    assert torch.allclose(network.kernel_l2(), expected)


def test_paper_blocks_instance_norm_leaky_relu_spatial_dropout():
    network = TumorClassifierNet()
    norms = [m for m in network.modules() if isinstance(m, nn.InstanceNorm3d)]
    acts = [m for m in network.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(norms) == 15 and all(n.affine and n.eps == 1e-3 for n in norms)
    assert len(acts) == 15 and all(a.negative_slope == 0.3 for a in acts)
    dropouts = [m for m in network.modules() if isinstance(m, nn.Dropout3d)]
    assert len(dropouts) == 5 and all(d.p == 0.3 for d in dropouts)
    assert not any(isinstance(m, nn.MaxPool3d) for m in network.modules())


def test_eval_mode_is_deterministic_and_train_mode_drops_channels():
    torch.manual_seed(0)
    network = TumorClassifierNet(TINY_NETWORK)
    x = torch.randn(1, 1, 16, 16, 16)
    network.eval()
    with torch.no_grad():
        assert torch.equal(network(x), network(x))
    network.train()
    with torch.no_grad():
        assert not torch.equal(network(x), network(x))


@pytest.mark.parametrize("kwargs", [{"base_filters": 0}, {"dropout": 1.0}, {"depth": -1}])
def test_invalid_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        NetworkConfig(**kwargs)
