"""The overlay PNG: three views through the heatmap's peak, the heat drawn where it is."""

import numpy as np
from PIL import Image

from TumorClassifierLib.overlay import (
    GAP,
    LABEL_HEIGHT,
    PANEL_HEIGHT,
    TITLE_HEIGHT,
    write_overlay_png,
)
from TumorClassifierLib.volume import Volume


def test_the_heat_sits_where_the_peak_is_in_the_axial_view(tmp_path):
    rng = np.random.default_rng(0)
    shape = (20, 30, 40)  # (k, j, i) = (S, P, L): stored in LPS order already
    scan = Volume(rng.uniform(100, 200, shape).astype(np.float32), (1.0, 1.0, 1.0),
                  (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    heat = np.zeros(shape, np.float32)
    heat[10, 4:7, 29:32] = 1.0  # peak around (k 10, j 5, i 30)
    path = write_overlay_png(scan, scan.with_array(heat), tmp_path / "overlay.png", "a title")
    picture = np.asarray(Image.open(path).convert("RGB")).astype(int)
    axial_width = round(PANEL_HEIGHT * 40 / 30)
    assert picture.shape[0] == TITLE_HEIGHT + LABEL_HEIGHT + PANEL_HEIGHT + GAP
    top = TITLE_HEIGHT + LABEL_HEIGHT
    axial = picture[top:top + PANEL_HEIGHT, GAP:GAP + axial_width]
    warm = (axial[..., 0] - axial[..., 2]) > 40  # inferno over grey: red to yellow
    rows, columns = np.nonzero(warm)
    assert len(rows) > 50
    # Patient left (larger i in LPS) on the image's right; anterior (smaller j) at the top.
    assert abs(rows.mean() - 5.5 / 30 * PANEL_HEIGHT) < 10
    assert abs(columns.mean() - 30.5 / 40 * axial_width) < 10
    assert not ((picture[top:, :GAP, 0] - picture[top:, :GAP, 2]) > 40).any()  # nothing off-panel
