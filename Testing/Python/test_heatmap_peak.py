"""One rule for where a heatmap peaks."""

import numpy as np

from TumorClassifierLib.heatmap_peak import peak_index, peak_world
from TumorClassifierLib.volume import Volume


def test_a_single_hottest_voxel_is_the_peak():
    array = np.zeros((5, 6, 7), np.float32)
    array[1, 2, 3] = 1
    assert peak_index(array) == (1, 2, 3)


def test_tied_hottest_voxels_give_the_one_nearest_their_centre_not_the_first_stored():
    array = np.zeros((9, 9, 9), np.float32)
    array[4, 4, 2:7] = 1  # a ridge of five tied voxels along i
    assert peak_index(array) == (4, 4, 4)  # argmax would say (4, 4, 2)


def test_the_world_peak_is_the_centre_of_the_tied_voxels():
    array = np.zeros((4, 4, 4), np.float32)
    array[1, 1, 1] = array[1, 1, 2] = 1
    volume = Volume(array, spacing=(2.0, 1.0, 1.0), origin=(10.0, 0.0, 0.0),
                    direction=tuple(np.eye(3).ravel()))
    np.testing.assert_allclose(peak_world(volume), [10 + 1.5 * 2, 1, 1])
