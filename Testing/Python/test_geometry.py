import numpy as np
import SimpleITK as sitk

from TumorClassifierLib.geometry import (
    centre_of,
    grid_around,
    grid_in_box,
    image_index_to_world,
    same_box_new_spacing,
)

OBLIQUE = sitk.Euler3DTransform((0, 0, 0), 0.3, -0.2, 0.5).GetMatrix()


def oblique_image() -> sitk.Image:
    image = sitk.Image([20, 16, 9], sitk.sitkFloat32)
    image.SetSpacing((0.75, 1.5, 3.0))
    image.SetDirection(OBLIQUE)
    image.SetOrigin((-12.0, 30.5, 7.25))
    return image


def test_index_to_world_agrees_with_simpleitk():
    image = oblique_image()
    matrix = image_index_to_world(image)
    for index in ([0, 0, 0], [3.5, 2.0, 8.0], [19, 15, 0]):
        expected = image.TransformContinuousIndexToPhysicalPoint(index)
        assert np.allclose(matrix @ [*index, 1], [*expected, 1])


def test_a_grid_around_a_point_has_its_middle_there():
    grid = grid_around((5.0, -3.0, 40.0), (11, 8, 5), (2.0, 1.0, 0.5), OBLIQUE)
    assert np.allclose(centre_of(grid), (5.0, -3.0, 40.0))
    assert grid.GetSize() == (11, 8, 5) and np.allclose(grid.GetDirection(), OBLIQUE)


def test_a_grid_in_a_box_starts_half_a_voxel_inside_its_corner():
    grid = grid_in_box((10.0, 20.0, 30.0), (4, 4, 4), (2.0, 2.0, 2.0), OBLIQUE)
    assert np.allclose(grid.TransformContinuousIndexToPhysicalPoint([-0.5] * 3),
                       (10.0, 20.0, 30.0))


def test_new_spacing_keeps_the_physical_box():
    image = oblique_image()
    grid = same_box_new_spacing(image, 1.5)
    assert grid.GetSize() == (10, 16, 18) and grid.GetSpacing() == (1.5, 1.5, 1.5)
    for corner in ([-0.5] * 3,):
        assert np.allclose(grid.TransformContinuousIndexToPhysicalPoint(corner),
                           image.TransformContinuousIndexToPhysicalPoint(corner))
    far_image = image.TransformContinuousIndexToPhysicalPoint(np.array(image.GetSize()) - 0.5)
    far_grid = grid.TransformContinuousIndexToPhysicalPoint(np.array(grid.GetSize()) - 0.5)
    assert np.allclose(far_image, far_grid)
