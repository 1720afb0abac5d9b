"""What a trained model computes, in the words packaging needs: tensor ids, axes, channels, value range.

A trainer records its Task in the checkpoint; export, the rdf, the model card and the cover read it, so a
new trainer needs no change in packaging as long as its task is one of the kinds below."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# "instances": the network gives object probability and ray distances, the rdf's stardist_postprocessing turns them
# into one label per object (extra["stardist"] holds its kwargs)
KINDS = ("segmentation", "multiclass", "restoration", "classification", "instances")


@dataclass(frozen=True)
class Task:
    kind: str = "segmentation"
    spatial: str = "yx"  # "yx" or "zyx": the spatial axes of input and (dense) output
    input_id: str = "raw"
    output_id: str = "probability"
    input_channels: tuple[str, ...] = ("raw",)
    output_channels: tuple[str, ...] = ("foreground",)
    output_range: tuple[float, float] | None = (0.0, 1.0)
    input_description: str = "raw fluorescence image, any intensity range (normalised by the pre-processing)"
    output_description: str = "probability that a pixel belongs to a nucleus"
    fixed_size: tuple[int, ...] | None = None  # an input size the model only accepts (classifiers), per spatial axis
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the confusion matrix of a classifier

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task kind {self.kind!r}, expected one of {', '.join(KINDS)}")
        if self.spatial not in ("yx", "zyx"):
            raise ValueError(f"task spatial axes {self.spatial!r}, expected 'yx' or 'zyx'")

    @property
    def dense(self) -> bool:
        """Whether the output has the input's spatial axes (pixel-wise tasks) or none (image classification)."""
        return self.kind != "classification"

    def input_layout(self, framework: str = "pytorch") -> str:
        return "b" + self.spatial + "c" if framework == "keras" else "bc" + self.spatial

    def output_layout(self, framework: str = "pytorch") -> str:
        if self.kind == "instances":  # channels last: the axes bioimage.io's stardist_postprocessing returns
            return "b" + self.spatial + "c"
        return self.input_layout(framework) if self.dense else "bc"

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("input_channels", "output_channels", "output_range", "fixed_size"):
            if values[key] is not None:
                values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Task:
        """The checkpoint's task; checkpoints from before tasks were recorded are binary 2D segmentation."""
        values = dict(values or {})
        for key in ("input_channels", "output_channels", "output_range", "fixed_size"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)
