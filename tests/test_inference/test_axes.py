"""Mapping image axes onto a model input: what fits is placed, what cannot fit is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zoo.bioimage.tensors import AxisSpec, TensorSpec
from zoo.errors import ImageError
from zoo.inference.axes import MappedImage, map_axes
from zoo.inference.image_io import ImageSource
from zoo.inference.tiling import ValidSizes


def spec(*kinds: str, channels: int = 1) -> TensorSpec:
    axes = []
    for kind in kinds:
        if kind == "batch":
            axes.append(AxisSpec("batch", "batch"))
        elif kind == "channel":
            axes.append(
                AxisSpec(
                    "channel", "channel", ValidSizes(channels), channel_names=tuple(f"c{i}" for i in range(channels))
                )
            )
        else:
            axes.append(AxisSpec(kind, "space", ValidSizes(16, 8)))
    return TensorSpec("raw", tuple(axes))


def image(shape, axes=None, name="img.tif") -> ImageSource:
    return ImageSource(Path(name), np.arange(np.prod(shape), dtype=np.float32).reshape(shape), axes, "tiff")


def test_2d_image_gets_batch_and_channel_of_one():
    mapped = MappedImage(image((20, 30), "YX"), map_axes(image((20, 30), "YX"), spec("batch", "channel", "y", "x")))
    assert mapped.shape == {"batch": 1, "channel": 1, "y": 20, "x": 30}
    assert mapped.read({"y": (2, 5), "x": (0, 4)}).shape == (1, 1, 3, 4)


def test_stack_of_pages_becomes_the_batch_and_keeps_its_letter():
    source = image((3, 20, 30), "QYX")
    mapping = map_axes(source, spec("batch", "channel", "y", "x"))
    assert mapping.letters["batch"] == "Q"
    data = MappedImage(source, mapping).read({"batch": (1, 2)})
    assert data.shape == (1, 1, 20, 30) and data[0, 0, 0, 0] == 600


def test_pages_become_z_for_a_3d_model():
    mapping = map_axes(image((5, 20, 30), "QYX"), spec("batch", "channel", "z", "y", "x"))
    assert mapping.letters["z"] == "Q"


def test_channels_last_image_is_transposed_into_channels_first():
    source = image((20, 30, 3), "YXS")
    data = MappedImage(source, map_axes(source, spec("batch", "channel", "y", "x", channels=3))).read({})
    assert data.shape == (1, 3, 20, 30)
    assert (data[0, :, 0, 1] == source.data[0, 1, :]).all()


def test_rgb_into_a_one_channel_model_names_file_count_and_model_channels():
    with pytest.raises(ImageError) as error:
        map_axes(image((20, 30, 3), "YXS", name="photo.png"), spec("batch", "channel", "y", "x"))
    message = str(error.value)
    assert "photo.png" in message and "3 channels" in message and "RGB" in message and "takes 1" in message


def test_2d_image_into_a_3d_model_is_refused():
    with pytest.raises(ImageError, match="no Z axis"):
        map_axes(image((20, 30), "YX"), spec("batch", "channel", "z", "y", "x"))


def test_two_stack_axes_cannot_both_become_the_batch():
    with pytest.raises(ImageError, match="T and Z"):
        map_axes(image((2, 3, 20, 30), "TZYX"), spec("batch", "channel", "y", "x"))


def test_unknown_4d_array_asks_for_axes_and_accepts_them():
    source = ImageSource(Path("a.npy"), np.zeros((2, 3, 20, 30), np.float32), None, "npy")
    with pytest.raises(ImageError, match="--axes"):
        map_axes(source, spec("batch", "channel", "z", "y", "x"))
    assert map_axes(source, spec("batch", "channel", "y", "x", channels=3), axes="bcyx").source["channel"] == 1


def test_array_in_the_models_own_axis_order_needs_no_axes():
    source = ImageSource(Path("t.npy"), np.zeros((1, 1, 20, 30), np.float32), None, "npy")
    mapping = map_axes(source, spec("batch", "channel", "y", "x"))
    assert [mapping.source[a] for a in ("batch", "channel", "y", "x")] == [0, 1, 2, 3]
