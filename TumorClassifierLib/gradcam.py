"""Class activation maps of the Grad-CAM family, at a chosen layer of the network.

- "gradcam" (Selvaraju et al. 2017; what Chakrabarty et al., Radiology: AI 2021 show):
  weights = spatial mean of d(score)/d(A); map = ReLU(sum_c weights_c * A_c).
- "hirescam" (Draelos & Carin 2020): map = ReLU(sum_c d(score)/d(A_c) * A_c), element-wise,
  without Grad-CAM's spatial averaging of the gradient. At the deepest level of this network
  (global average pooling, then one dense layer) the gradient is constant over space, so the two
  are the same map; at shallower levels only HiResCAM is well defined here: every shallower
  layer feeds a convolution and an instance norm, which makes the spatial mean of the gradient
  (Grad-CAM's weight) vanish (see TumorClassifierNet.gradcam_layer).

The map is upsampled to the input size and min-max normalised so that the hottest voxel is 1.
`score` is the class score before softmax and A the output of the chosen layer.

Everything before the layer runs without autograd: the forward hook re-enables it at the layer
and hands on a detached copy of A, so the backward pass only goes through the few layers after
it. `torch.autograd.grad` is used so that no `.grad` of the caller's model is touched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .device import synchronized_clock
from .settings import HEATMAP_METHODS

METHODS = HEATMAP_METHODS


class GradCAM:
    """Context manager that owns its forward hook on `layer` and removes it on exit.

        with GradCAM(network, network.gradcam_layer) as cam:
            logits, maps = cam(x)                  # predicted class
            logits, maps = cam(x, class_index=3)   # a chosen class
            logits, maps = cam(x, class_index=lambda logits: ...)  # chosen from the logits

    x: (B, C, D, H, W); logits: (B, num_classes) float32; maps: (B, D, H, W) float32 in [0, 1].
    After each call `timings` holds the seconds of the forward pass ("forward") and of the
    backward pass and map ("gradcam").
    """

    def __init__(self, network: nn.Module, layer: nn.Module, method: str = "gradcam") -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self.network = network
        self.layer = layer
        self.method = method
        self._handle = None
        self._activation: torch.Tensor | None = None
        self._autocast_paused: str | None = None
        self._explaining = False
        self.timings: dict[str, float] = {}
        self.activation_shape: tuple[int, ...] = ()  # (D, H, W) of the explained layer

    def __enter__(self) -> GradCAM:
        self._handle = self.layer.register_forward_hook(self._capture)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._activation = None

    def _capture(self, module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        if not self._explaining:  # other passes inside the block (test-time flips) run as usual
            return None
        torch.set_grad_enabled(True)  # undone when the caller's no_grad block exits
        device_type = output.device.type
        if torch.is_autocast_enabled(device_type):
            # The map sums gradient x activation over channels, which partly cancels; bf16's
            # 8-bit mantissa would show through. So this layer is recomputed in float32 and
            # the rest of the network (the small, coarse levels behind it) runs in float32 too;
            # __call__ turns autocast back on.
            with torch.autocast(device_type, enabled=False):
                output = module(*(x.float() for x in inputs))
            torch.set_autocast_enabled(device_type, False)
            self._autocast_paused = device_type
        self._activation = output.detach().requires_grad_(True)
        return self._activation

    def __call__(self, x: torch.Tensor,
                 class_index: int | torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
        if self._handle is None:
            raise RuntimeError("use GradCAM inside a 'with' block")
        self._activation = None
        start = synchronized_clock(x.device)
        self._autocast_paused = None
        self._explaining = True
        try:
            with torch.no_grad():
                logits = self.network(x)
        finally:
            self._explaining = False
            if self._autocast_paused:
                torch.set_autocast_enabled(self._autocast_paused, True)
        after_forward = synchronized_clock(x.device)
        activation = self._activation
        if activation is None:
            raise RuntimeError("the Grad-CAM layer was not reached by the forward pass")
        self.activation_shape = tuple(activation.shape[2:])
        if callable(class_index):  # chosen from the logits, e.g. after test-time augmentation
            class_index = class_index(logits)
        if class_index is None:
            target = logits.argmax(dim=1)
        else:
            target = torch.as_tensor(class_index, device=logits.device).reshape(-1)
            target = target.expand(logits.shape[0])
        with torch.enable_grad():  # also when the caller is in a no_grad block
            score = logits.gather(1, target[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, activation)
        gradients = gradients.float()
        if self.method == "gradcam":
            gradients = gradients.mean(dim=(2, 3, 4), keepdim=True)  # (B, C, 1, 1, 1)
        cam = F.relu((gradients * activation.detach().float()).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[2:], mode="trilinear", align_corners=False)
        self._activation = None
        maps = normalise_per_sample(cam[:, 0])
        self.timings = {"forward": after_forward - start,
                        "gradcam": synchronized_clock(x.device) - after_forward}
        return logits.detach().float(), maps


def normalise_per_sample(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of (B, ...) to [0, 1]; an all-flat map becomes zeros."""
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return scaled.reshape(maps.shape)
