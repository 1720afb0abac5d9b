import numpy as np
import pytest
from scipy import ndimage

from zoo.data.tasks import (
    MULTICLASS_NAMES,
    PHENOTYPE_NAMES,
    make_classification,
    make_multiclass,
    make_restoration_pairs,
    psnr,
)
from zoo.data.tasks_3d import ellipsoid_reach, make_nuclei_3d, place_centres_3d, rotation_yx

GENERATORS = {
    "multiclass": lambda seed: make_multiclass(3, (64, 64), seed),
    "restoration": lambda seed: make_restoration_pairs(3, (64, 64), seed),
    "classification": lambda seed: make_classification(6, 32, seed),
    "nuclei_3d": lambda seed: make_nuclei_3d(2, (16, 32, 32), seed),
}


def arrays_of(result) -> list[np.ndarray]:
    return [part for part in result if isinstance(part, np.ndarray)]


@pytest.mark.parametrize("task", GENERATORS)
def test_same_seed_gives_same_arrays(task):
    first, second = GENERATORS[task](5), GENERATORS[task](5)
    for a, b in zip(arrays_of(first), arrays_of(second), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("task", GENERATORS)
def test_different_seeds_give_different_images(task):
    first, second = GENERATORS[task](0), GENERATORS[task](1)
    assert not np.array_equal(arrays_of(first)[0], arrays_of(second)[0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_multiclass(-1, (32, 32), 0),
        lambda: make_multiclass(1, (32,), 0),
        lambda: make_restoration_pairs(1, (0, 32), 0),
        lambda: make_classification(1, 8, 0),
        lambda: make_classification(1, 32.5, 0),
        lambda: make_nuclei_3d(1, (32, 32), 0),
        lambda: make_nuclei_3d(1, (8, 0, 32), 0),
    ],
)
def test_bad_arguments_are_rejected(call):
    with pytest.raises(ValueError):
        call()


def test_zero_images_give_empty_stacks():
    images, labels, names = make_multiclass(0, (32, 48), 0)
    assert images.shape == labels.shape == (0, 32, 48)
    assert names == list(MULTICLASS_NAMES)
    noisy, clean = make_restoration_pairs(0, (32, 48), 0)
    assert noisy.shape == clean.shape == (0, 32, 48)
    images, labels, _ = make_classification(0, 32, 0)
    assert images.shape == (0, 32, 32)
    assert labels.shape == (0,)
    volumes, masks = make_nuclei_3d(0, (8, 16, 24), 0)
    assert volumes.shape == masks.shape == (0, 8, 16, 24)


# --- multi-class segmentation ---


@pytest.fixture(scope="module")
def multiclass():
    return make_multiclass(12, (128, 128), seed=3)


def test_multiclass_shapes_dtypes_and_names():
    images, labels, names = make_multiclass(3, (48, 80), seed=0)
    assert images.shape == labels.shape == (3, 48, 80)
    assert images.dtype == np.float32
    assert labels.dtype == np.uint8
    assert names == ["background", "nucleus", "rod"]


def test_multiclass_every_image_has_every_class(multiclass):
    _, labels, names = multiclass
    for image_labels in labels:
        assert set(np.unique(image_labels)) == set(range(len(names)))
    fractions = np.bincount(labels.ravel(), minlength=3) / labels.size
    assert 0.5 < fractions[0] < 0.85
    assert 0.1 < fractions[1] < 0.4
    assert 0.02 < fractions[2] < 0.12


def test_multiclass_objects_are_brighter_than_background(multiclass):
    images, labels, _ = multiclass
    for image, image_labels in zip(images, labels, strict=True):
        background = image[image_labels == 0]
        for k in (1, 2):
            assert image[image_labels == k].mean() - background.mean() > 3 * background.std()


def test_rods_keep_clear_of_nuclei(multiclass):
    _, labels, _ = multiclass
    for image_labels in labels:
        assert not (ndimage.binary_dilation(image_labels == 2) & (image_labels == 1)).any()


def test_rods_are_thinner_than_whole_nuclei(multiclass):
    _, labels, _ = multiclass
    widths = {1: [], 2: []}  # largest distance from an object pixel to the object's outside
    for image_labels in labels:
        for k in (1, 2):
            components, count = ndimage.label(image_labels == k)
            depth = ndimage.distance_transform_edt(image_labels == k)
            for index, found in enumerate(ndimage.find_objects(components), start=1):
                rows, cols = found
                if rows.start == 0 or cols.start == 0 or rows.stop == 128 or cols.stop == 128:
                    continue  # cut by the image border
                widths[k].append(depth[components == index].max())
    assert len(widths[2]) > 30
    assert max(widths[2]) <= 4.0
    assert np.percentile(widths[1], 5) >= 4.5


def test_brightness_alone_does_not_tell_nuclei_from_rods(multiclass):
    images, labels, _ = multiclass
    nuclei, rods = images[labels == 1], images[labels == 2]
    thresholds = np.percentile(np.concatenate([nuclei, rods]), np.linspace(1, 99, 99))
    balanced = [((nuclei < t).mean() + (rods >= t).mean()) / 2 for t in thresholds]
    best = max(max(balanced), 1 - min(balanced))
    assert best < 0.65


# --- restoration ---


@pytest.fixture(scope="module")
def restoration():
    return make_restoration_pairs(40, (128, 128), seed=0)


def test_restoration_shapes_and_dtypes():
    noisy, clean = make_restoration_pairs(2, (48, 80), seed=0)
    assert noisy.shape == clean.shape == (2, 48, 80)
    assert noisy.dtype == clean.dtype == np.float32


def test_restoration_noisy_psnr_is_low_light(restoration):
    noisy, clean = restoration
    values = np.array([psnr(c, x) for c, x in zip(clean, noisy, strict=True)])
    assert 17.5 < values.mean() < 20.0
    assert values.min() > 15.0
    assert values.max() < 22.0


def test_restoration_noise_is_unbiased_poisson_gaussian_and_pixel_independent(restoration):
    noisy, clean = restoration
    assert 15 < clean.max() < 30  # photons: a low-light image
    residual = (noisy - clean).astype(np.float64)
    z = residual / np.sqrt(clean + 1.5**2)
    assert abs(z.mean()) < 0.01
    assert 0.97 < z.std() < 1.03
    for axis in (1, 2):  # neighbours share no noise: what Noise2Void's blind spot needs
        a = np.moveaxis(z, axis, -1)
        assert abs(np.corrcoef(a[..., :-1].ravel(), a[..., 1:].ravel())[0, 1]) < 0.01


def test_restoration_clean_images_are_smooth_enough_to_recover(restoration):
    noisy, clean = restoration
    before = np.mean([psnr(c, x) for c, x in zip(clean, noisy, strict=True)])
    smoothed = np.mean([psnr(c, ndimage.gaussian_filter(x, 1.0)) for c, x in zip(clean, noisy, strict=True)])
    assert smoothed - before > 6.0  # even a plain Gaussian filter gains this much


def test_psnr():
    clean = np.array([0.0, 10.0, 0.0, 10.0])
    assert psnr(clean, clean + 1.0) == pytest.approx(20.0)
    assert psnr(clean, clean + 0.1) == pytest.approx(40.0)


# --- classification ---


def test_classification_shapes_dtypes_and_names():
    images, labels, names = make_classification(7, 48, seed=0)
    assert images.shape == (7, 48, 48)
    assert images.dtype == np.float32
    assert labels.shape == (7,)
    assert labels.dtype == np.int64
    assert names == ["interphase", "mitotic", "apoptotic"] == list(PHENOTYPE_NAMES)


@pytest.mark.parametrize("n", [9, 10, 11])
def test_classification_is_balanced_and_shuffled(n):
    _, labels, names = make_classification(n, 32, seed=1)
    counts = np.bincount(labels, minlength=len(names))
    assert counts.max() - counts.min() <= 1
    assert set(labels) == {0, 1, 2}
    _, labels_a, _ = make_classification(30, 32, seed=0)
    _, labels_b, _ = make_classification(30, 32, seed=2)
    assert not np.array_equal(labels_a, labels_b)
    assert not np.array_equal(labels_a, np.arange(30) % 3)


def test_classification_phenotypes_differ_by_the_intended_features():
    """Largest bright blob: big and round (interphase), long (mitotic), small (apoptotic fragments)."""
    images, labels, _ = make_classification(150, 64, seed=4)
    predicted = []
    for image in images:
        smooth = ndimage.gaussian_filter(image, 1.0)
        background = np.median(smooth)
        blobs, _ = ndimage.label(smooth > background + 0.5 * (smooth.max() - background))
        largest = blobs == np.argmax(np.bincount(blobs.ravel())[1:]) + 1
        rows, cols = np.nonzero(largest)
        spread = np.linalg.eigvalsh(np.cov(np.stack([rows, cols])))
        if largest.sum() > 250:
            predicted.append(0)
        elif spread[1] > 9 * spread[0]:  # three times as long as wide
            predicted.append(1)
        else:
            predicted.append(2)
    assert (np.array(predicted) == labels).mean() > 0.9


def test_classification_cell_is_near_the_centre():
    images, _, _ = make_classification(30, 64, seed=0)
    for image in images:
        smooth = ndimage.gaussian_filter(image, 2.0)
        row, col = np.unravel_index(np.argmax(smooth), smooth.shape)
        assert 12 <= row < 52
        assert 12 <= col < 52


# --- 3D nuclei ---


def test_nuclei_3d_shapes_dtypes_and_contrast():
    volumes, masks = make_nuclei_3d(4, (32, 64, 64), seed=0)
    assert volumes.shape == masks.shape == (4, 32, 64, 64)
    assert volumes.dtype == np.float32
    assert masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1}
    assert 0.04 < masks.mean() < 0.3
    for volume, mask in zip(volumes, masks, strict=True):
        inside, outside = volume[mask == 1], volume[mask == 0]
        assert 10 < np.median(outside) < 80  # raw photons, not normalised
        assert inside.mean() - outside.mean() > 3 * outside.std()


def test_nuclei_3d_are_flatter_in_z_voxels():
    _, masks = make_nuclei_3d(4, (32, 64, 64), seed=1)
    extents = []
    for mask in masks:
        components, _ = ndimage.label(mask)
        for found in ndimage.find_objects(components):
            z, y, x = (s.stop - s.start for s in found)
            if found[0].start > 0 and found[0].stop < 32:
                extents.append((z, max(y, x)))
    extents = np.array(extents)
    assert len(extents) > 10
    assert np.median(extents[:, 0]) < 0.8 * np.median(extents[:, 1])


def test_nuclei_3d_some_touch():
    rng = np.random.default_rng(0)
    touching = 0
    for _ in range(10):
        k = 12
        semi_axes = np.stack([rng.uniform(3.5, 6.0, k), rng.uniform(6, 10, k), rng.uniform(6, 10, k)], axis=1)
        rotations = rotation_yx(rng.uniform(0, np.pi, k))
        centres = place_centres_3d(rng, (32, 64, 64), semi_axes, rotations)
        for i in range(k):
            for j in range(i):
                offset = centres[i] - centres[j]
                direction = (offset / np.linalg.norm(offset))[None]
                reach = ellipsoid_reach(semi_axes[[j]], rotations[[j]], direction)
                reach += ellipsoid_reach(semi_axes[[i]], rotations[[i]], -direction)
                touching += int(np.linalg.norm(offset) < reach[0])
    assert touching >= 10


def test_ellipsoid_reach_follows_the_rotation():
    semi_axes = np.array([[2.0, 5.0, 3.0]])
    along_y = np.array([[0.0, 1.0, 0.0]])
    assert ellipsoid_reach(semi_axes, rotation_yx(np.array([0.0])), along_y)[0] == pytest.approx(5.0)
    assert ellipsoid_reach(semi_axes, rotation_yx(np.array([np.pi / 2])), along_y)[0] == pytest.approx(3.0)
    along_z = np.array([[1.0, 0.0, 0.0]])
    assert ellipsoid_reach(semi_axes, rotation_yx(np.array([1.0])), along_z)[0] == pytest.approx(2.0)
