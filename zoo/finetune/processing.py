"""The package's own pre- and post-processing on whole images, through the operators `zoo predict` runs
(bioimageio.core's, set up by zoo.inference.model.processing_ops, statistics computed once over the whole image by
zoo.inference.stats), and the one way a 2D or 3D image is laid out in a tensor's axes."""

from __future__ import annotations

import numpy as np

from zoo.bioimage.source import OpenedSource
from zoo.bioimage.tensors import TensorSpec
from zoo.errors import InputError, ZooError

STATISTICS_BUDGET = 512 * 1024**2


def to_layout(image: np.ndarray, layout: str) -> np.ndarray:
    """A spatial image (y, x or z, y, x) as one tensor of `layout` (letters among b, c, z, y, x): batch and channel
    of one, spatial axes in the layout's order."""
    spatial = [a for a in layout if a in "zyx"]
    natural = [a for a in "zyx" if a in spatial]
    if image.ndim != len(spatial):
        raise InputError(f"an image of {image.ndim} dimensions does not fit the axes {layout}")
    array = np.transpose(image, [natural.index(a) for a in spatial])
    shape, source = [], iter(array.shape)
    for letter in layout:
        shape.append(next(source) if letter in "zyx" else 1)
    return np.ascontiguousarray(array.reshape(shape))


class PackageProcessing:
    """The rdf's pre-processing of its (one) input and post-processing of its (one) output, set up once."""

    def __init__(self, opened: OpenedSource, input_spec: TensorSpec, output_spec: TensorSpec, input_layout: str):
        from zoo.inference.model import load_description, processing_ops

        try:
            self.descr = load_description(opened)
            self.pre_ops, self.post_ops, self.measures = processing_ops(self.descr)
        except ZooError:
            raise
        except Exception as e:  # bioimageio.core cannot set up this package's processing
            raise InputError(f"the processing of {opened.source} cannot be set up ({type(e).__name__}: {e})") from e
        self.input_spec, self.output_spec, self.layout = input_spec, output_spec, input_layout

    @property
    def postprocessing_ids(self) -> list[str]:
        """The ids of the output's post-processing steps (sigmoid, binarize, ...), in the package's format version."""
        tensor = self.descr.outputs[0]
        steps = getattr(tensor, "postprocessing", None) or []
        return [str(getattr(step, "id", None) or getattr(step, "name", "")) for step in steps]

    def preprocess(self, image: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
        """A raw spatial image pre-processed as `zoo predict` does it (statistics over the whole image; over `like`'s
        when given, e.g. a clean target normalised with its noisy input's numbers), as a spatial float32 image."""
        tensor = to_layout(np.asarray(image, dtype=np.float32), self.layout)
        statistics_of = tensor if like is None else to_layout(np.asarray(like, dtype=np.float32), self.layout)
        processed = self._run(self.pre_ops, self.input_spec, tensor, statistics_of)
        return processed.reshape([s for s, a in zip(processed.shape, self.layout) if a in "zyx"])

    def postprocess(self, output: np.ndarray) -> np.ndarray:
        """A model output (the output tensor's axes) after the rdf's post-processing."""
        if not self.post_ops:
            return np.asarray(output, dtype=np.float32)
        return self._run(self.post_ops, self.output_spec, np.asarray(output), np.asarray(output))

    def _run(self, ops: list, spec: TensorSpec, tensor: np.ndarray, statistics_of: np.ndarray) -> np.ndarray:
        from bioimageio.core import Sample, Tensor
        from bioimageio.core.axis import AxisId
        from bioimageio.core.common import MemberId

        from zoo.inference.axes import ArrayImage
        from zoo.inference.stats import compute_statistics

        wanted = {m for m in self.measures if str(m.member_id) == spec.id}
        stats = compute_statistics(wanted, {spec.id: [ArrayImage(statistics_of, spec.axis_ids)]}, STATISTICS_BUDGET)
        dims = [AxisId(a) for a in spec.axis_ids]
        sample = Sample(
            members={MemberId(spec.id): Tensor.from_numpy(tensor, dims=dims)},
            stat={m: value.window({}, {}) for m, value in stats.items()},
            id=None,
        )
        for op in ops:
            op(sample)
        result = sample.members[MemberId(spec.id)].transpose(dims).data.to_numpy()
        return np.ascontiguousarray(result, dtype=np.float32)


__all__ = ["PackageProcessing", "to_layout"]
