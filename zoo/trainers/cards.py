"""Over 400 lines on purpose: declarative data, one Card and Citation per trainer, best read side by side.

What is said about each trainer's models whatever the run: its model card and the paper its rdf cites.
zoo.trainers registers each trainer with its Card and Citation from here.

The run-specific facts (data, hyper-parameters, metrics, curves) come from the checkpoint; a Card holds what
does not change from run to run: what the model is for, what goes in and out, where it fails and how its
metrics are named. Metric labels are at most 16 characters: bioimage.io's `evaluations` needs that.

A card describes the model as trained on the trainer's synthetic data (which shows, e.g., fluorescent nuclei).
`Card.for_data` gives the card for the data a run was actually trained on: for the user's own data, whose content
zoo does not know, the wording in `user_data` and no target structure or modality."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

COMMON_METRICS = {"best_val_loss": "best val. loss", "best_epoch": "best epoch"}
DATASET_SHIFT = (
    "Dataset shift: images from another microscope, stain, magnification, noise level or sample "
    "preparation than the training data can give confident but wrong outputs. Check a few of your "
    "own images against a manual result before trusting it."
)
# tags that say what the synthetic training data shows; a model trained on the user's data does not get them from
# the trainer (the user may give them)
DATA_TAGS = ("nuclei", "nucleus", "cell-phenotype", "fluorescence-light-microscopy", "fluorescence", "synthetic")


# what the trainers' tensor descriptions (recorded in the checkpoint's task) say of the synthetic data's content
_DATA_CLAIMS = (
    (re.compile(r"\bfluorescen(ce|t)\s+", re.IGNORECASE), ""),
    (re.compile(r"\s+of one cell\b"), ""),
    (re.compile(r"\ba nucleus\b"), "the foreground"),
    (re.compile(r"\bnuclei\b"), "objects"),
    (re.compile(r"\bnucleus\b"), "object"),
)


def without_data_claims(text: str) -> str:
    """`text` (a tensor description) without what it says of the synthetic data's content: "raw fluorescence
    image" → "raw image", "belongs to a nucleus" → "belongs to the foreground"."""
    for pattern, replacement in _DATA_CLAIMS:
        text = pattern.sub(replacement, text)
    return text


def is_synthetic(data: Mapping[str, Any] | None) -> bool:
    """Whether a run's training data is zoo's synthetic data, as its recorded provenance says. Anything else (the
    user's folder, an unrecorded source) gets no claim about what the images show."""
    return bool(data) and data.get("source") == "synthetic"


@dataclass(frozen=True)
class Citation:
    """The paper a trainer's models cite in their rdf (bioimage.io's `cite`: a text and a DOI or URL)."""

    text: str
    doi: str | None = None
    url: str | None = None

    def __post_init__(self):
        if not self.text or not (self.doi or self.url):
            raise ValueError(
                f"citation {self.text!r} (doi {self.doi!r}, url {self.url!r}): give a text and a DOI or URL"
            )

    def as_dict(self) -> dict[str, str]:
        """The rdf's cite entry: text and the DOI or URL given."""
        return {k: v for k, v in {"text": self.text, "doi": self.doi, "url": self.url}.items() if v}


UNET_PAPER = Citation(
    "Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI 2015.",
    doi="10.1007/978-3-319-24574-4_28",
)
UNET3D_PAPER = Citation(
    "Çiçek, Abdulkadir, Lienkamp, Brox, Ronneberger. 3D U-Net: Learning Dense Volumetric Segmentation from Sparse "
    "Annotation. MICCAI 2016.",
    doi="10.1007/978-3-319-46723-8_49",
)
DEEP_LEARNING_PAPER = Citation(
    "LeCun, Bengio, Hinton. Deep learning. Nature 521, 436–444 (2015).", doi="10.1038/nature14539"
)
CARE_PAPER = Citation(
    "Weigert et al. Content-aware image restoration: pushing the limits of fluorescence microscopy. Nature Methods "
    "15, 1090–1097 (2018).",
    doi="10.1038/s41592-018-0216-7",
)
STARDIST_PAPER = Citation(
    "Schmidt, Weigert, Broaddus, Myers. Cell Detection with Star-Convex Polygons. MICCAI 2018.",
    doi="10.1007/978-3-030-00934-2_30",
)
N2V_PAPER = Citation(
    "Krull, Buchholz, Jug. Noise2Void - Learning Denoising From Single Noisy Images. CVPR 2019.",
    doi="10.1109/CVPR.2019.00223",
)


@dataclass(frozen=True)
class Card:
    """The fixed part of a trainer's model card."""

    trainer: str
    title: str
    task: str  # bioimage.io task word: segmentation, classification, denoising, ...
    summary: str  # one sentence: what the model computes
    intended_use: str
    inputs: str
    outputs: str
    limitations: tuple[str, ...]
    failure_modes: tuple[str, ...]
    metrics: dict[str, str]  # metric name in checkpoint.metrics -> label (≤ 16 characters)
    metric_descriptions: dict[str, str] = field(default_factory=dict)  # metric name -> one-line definition
    # test metric -> the value below which the model has not learned its task (far below the trainer's target;
    # recorded in the package and judged by the validator's QUA002)
    quality_floor: dict[str, float] = field(default_factory=dict)
    # overall metric -> (name prefix of its per-class metrics, their label): test_mean_iou -> (test_iou_, IoU)
    per_class: dict[str, tuple[str, str]] = field(default_factory=dict)
    architecture: str = ""  # ≤ 32 characters (bioimage.io architecture_type)
    architecture_description: str = ""
    modality: str = "fluorescence light microscopy"
    target_structure: tuple[str, ...] = ()
    out_of_scope: str = ""
    loss: str = ""
    optimizer: str = "Adam"
    lr_schedule: str = ""
    augmentation: str = ""
    preprocessing: str = "zero mean, unit variance per image"
    # field -> wording for a model trained on the user's own data, where the synthetic data's content (nuclei,
    # fluorescence) must not be claimed; target_structure and modality are emptied for such data in any case
    user_data: dict[str, Any] = field(default_factory=dict)

    def metric_label(self, name: str) -> str:
        return {**COMMON_METRICS, **self.metrics}.get(name, name)

    def for_data(self, data: Mapping[str, Any] | None) -> Card:
        """This card for a run trained on `data` (its recorded provenance): itself for zoo's synthetic data, else
        the neutral wording of `user_data`, without target structure and modality."""
        if is_synthetic(data):
            return self
        return replace(self, target_structure=(), modality="", **self.user_data)

    def data_tags(self) -> set[str]:
        """Tags that describe the synthetic training data, not the model (dropped for the user's data)."""
        return {*DATA_TAGS, *(t.lower().replace(" ", "-") for t in self.target_structure)}


def _foreground_wording(title: str, dims: str = "2D") -> dict[str, Any]:
    """The U-Net segmentation cards' wording for the user's data: the structures marked in the masks, not nuclei."""
    return dict(
        title=title,
        summary=f"A {dims} U-Net that gives, for every pixel, the probability that it belongs to the foreground "
        "structures it was trained on.",
        intended_use=f"Foreground/background segmentation of the structures marked in the training masks, in "
        f"one-channel {dims} images like the training images. Threshold the probability map at 0.5; split touching "
        "objects downstream (e.g. watershed) if instances are needed.",
        limitations=(
            "Trained on the data described under Training only.",
            "Semantic, not instance, segmentation: touching objects are not separated.",
        ),
        failure_modes=(
            DATASET_SHIFT,
            "Touching or overlapping objects merge into one foreground region.",
            "Out-of-focus, saturated or very dim objects are missed or only partly segmented.",
            "Objects much larger than the training objects (or than the halo) are segmented unevenly across tiles.",
        ),
        out_of_scope="Instance counting without a separation step; images unlike the training images (another "
        "modality, stain or magnification); measuring object sizes on such images.",
    )


UNET2D = Card(
    trainer="unet2d",
    title="2D nuclei segmentation (U-Net, PyTorch)",
    task="segmentation",
    summary="A 2D U-Net that gives, for every pixel, the probability that it belongs to a nucleus.",
    intended_use="Foreground/background segmentation of nuclei in 2D fluorescence microscopy images (one "
    "channel). Threshold the probability map at 0.5; split touching nuclei downstream (e.g. "
    "watershed) if instances are needed.",
    inputs="one-channel 2D image, any intensity range (normalised by the pre-processing)",
    outputs="one-channel foreground probability map in [0, 1], same size as the input",
    limitations=(
        "Trained on the data described under Training only.",
        "Semantic, not instance, segmentation: touching nuclei are not separated.",
    ),
    failure_modes=(
        DATASET_SHIFT,
        "Touching or overlapping nuclei merge into one foreground region.",
        "Out-of-focus, saturated or very dim nuclei are missed or only partly segmented.",
        "Objects much larger than the training objects (or than the halo) are segmented unevenly across tiles.",
    ),
    metrics={"test_iou": "IoU"},
    quality_floor={"test_iou": 0.5},
    metric_descriptions={
        "test_iou": "intersection over union of the thresholded (0.5) output with the true mask, "
        "pooled over all test pixels"
    },
    architecture="2D U-Net",
    architecture_description="U-Net (Ronneberger et al. 2015) with one sigmoid output channel.",
    target_structure=("nuclei",),
    out_of_scope="Instance counting without a separation step; brightfield or electron microscopy images; "
    "quantifying nuclear size on images unlike the training data.",
    loss="binary cross-entropy + Dice",
    lr_schedule="cosine annealing over the asked epochs",
    augmentation="random crops, flips, 90° rotations, intensity jitter",
    user_data=_foreground_wording("2D foreground segmentation (U-Net, PyTorch)"),
)

UNET2D_MULTICLASS = Card(
    trainer="unet2d-multiclass",
    title="2D pixel classification (U-Net, K classes)",
    task="semantic segmentation",
    summary="A 2D U-Net that gives, for every pixel, the probability of each of K classes.",
    intended_use="Semantic segmentation of 2D microscopy images into the classes it was trained on (e.g. "
    "background, nucleus, boundary). Take the arg-max over the channel axis for a label image.",
    inputs="one-channel 2D image, any intensity range (normalised by the pre-processing)",
    outputs="K-channel map of class probabilities (soft-max, summing to 1 per pixel), same size as the input",
    limitations=(
        "Trained on the data described under Training only.",
        "Knows only the training classes: every pixel is assigned to one of them, including pixels of unseen "
        "structures.",
    ),
    failure_modes=(
        DATASET_SHIFT,
        "Class imbalance: rare classes (thin boundaries, small organelles) are under-segmented; the mean IoU can "
        "hide this, so read the per-class IoU.",
        "Pixels at class boundaries get split probabilities; the arg-max there is unstable.",
    ),
    metrics={"test_mean_iou": "mean IoU"},
    quality_floor={"test_mean_iou": 0.5},
    metric_descriptions={
        "test_mean_iou": "intersection over union per class of the arg-max output, averaged over "
        "the classes (per-class values in the columns)"
    },
    per_class={"test_mean_iou": ("test_iou_", "IoU")},
    architecture="2D U-Net",
    architecture_description="U-Net (Ronneberger et al. 2015) with a K-channel soft-max output.",
    loss="cross-entropy + soft Dice averaged over the classes",
    lr_schedule="cosine annealing over the asked epochs",
    augmentation="random crops, flips, 90° rotations, intensity jitter",
    user_data={
        "intended_use": "Semantic segmentation of 2D images like the training images into the classes it was "
        "trained on (the output channels, named in the rdf). Take the arg-max over the channel axis for a label "
        "image."
    },
)

_RESTORATION_METRICS = {
    "test_psnr": "PSNR (dB)",
    "test_psnr_input": "PSNR input (dB)",
    "test_psnr_gain": "PSNR gain (dB)",
    "test_ssim": "SSIM",
}
_RESTORATION_DESCRIPTIONS = {
    "test_psnr": "peak signal-to-noise ratio of the restored test images against the clean ground truth",
    "test_psnr_input": "the same PSNR for the noisy inputs (the baseline)",
    "test_psnr_gain": "PSNR of the output minus PSNR of the input",
    "test_ssim": "structural similarity of the restored test images to the clean ground truth",
}
_HALLUCINATION = (
    "Hallucination: the network can produce plausible-looking structures (or remove real faint "
    "ones) that are not in the sample. Do not measure intensities or count objects on restored "
    "images without checking them against the raw data."
)

CARE2D = Card(
    trainer="care2d",
    title="2D denoising (CARE, supervised)",
    task="denoising",
    summary="A 2D U-Net trained on pairs of noisy and clean images to restore noisy images.",
    intended_use="Denoising 2D microscopy images acquired like the noisy training images, for visualisation "
    "and as a pre-processing step for segmentation.",
    inputs="one-channel noisy 2D image, any intensity range (normalised by the pre-processing)",
    outputs="one-channel restored image, same size as the input, in the normalised intensity scale",
    limitations=(
        "Trained on the data described under Training only; needs pairs of noisy and clean images to retrain.",
        "The output intensity is in the normalised scale of the input, not in photon counts.",
    ),
    failure_modes=(
        _HALLUCINATION,
        DATASET_SHIFT + " A different noise level than in training is the most common cause.",
        "Structures finer than in the training data are smoothed away.",
    ),
    metrics=_RESTORATION_METRICS,
    quality_floor={"test_psnr_gain": 1.0},
    metric_descriptions=_RESTORATION_DESCRIPTIONS,
    architecture="2D U-Net (CARE)",
    architecture_description="U-Net with a linear output, trained as in CARE (Weigert et al. 2018).",
    out_of_scope="Quantitative intensity measurements on restored images; images with another noise model.",
    loss="mean squared error to the clean image",
    lr_schedule="cosine annealing over the asked epochs",
    augmentation="random crops, flips, 90° rotations, intensity jitter (the same for input and target)",
)

N2V2D = replace(
    CARE2D,
    trainer="n2v2d",
    title="2D denoising (Noise2Void, self-supervised)",
    summary="A 2D U-Net trained with Noise2Void on noisy images alone to remove pixel-wise independent noise.",
    intended_use="Denoising 2D microscopy images with pixel-wise independent noise (shot and read noise) when no "
    "clean images exist; retrain on the images to denoise.",
    limitations=(
        "Removes only noise that is independent from pixel to pixel; it cannot tell such noise from signal of "
        "one-pixel size.",
        "The reported PSNR/SSIM need clean ground truth, so they are only as representative as the (synthetic) "
        "test images they were measured on.",
    ),
    failure_modes=(
        "Structured noise (stripes, correlated camera noise, scan lines) is kept or turned into artefacts.",
        _HALLUCINATION,
        "Fine one-pixel details are blurred.",
        DATASET_SHIFT,
    ),
    architecture="2D U-Net (Noise2Void)",
    architecture_description="U-Net with a linear output, trained with blind-spot masking (Krull et al. 2019).",
    loss="mean squared error on masked (blind-spot) pixels",
    user_data={
        "limitations": (
            "Removes only noise that is independent from pixel to pixel; it cannot tell such noise from signal of "
            "one-pixel size.",
            "The reported PSNR/SSIM need clean ground truth, so they are only as representative as the test "
            "images they were measured on.",
        )
    },
)

CLASSIFIER2D = Card(
    trainer="classifier2d",
    title="2D image classification",
    task="classification",
    summary="A 2D convolutional network that assigns each image (or crop) to one of the training classes.",
    intended_use="Classifying single-object crops or whole 2D images of the size and kind it was trained on "
    "into the training classes.",
    inputs="one-channel 2D image of the fixed size the model was trained on (normalised by the pre-processing)",
    outputs="one probability per class (soft-max, summing to 1)",
    limitations=(
        "Trained on the data described under Training only.",
        "There is no 'unknown' class: every image is assigned to one of the training classes.",
        "Takes only the training image size; crop or resize images to it.",
    ),
    failure_modes=(
        "Class imbalance: accuracy can be high by favouring the majority class; read the per-class accuracy and the "
        "confusion matrix.",
        "Out-of-distribution images (debris, empty fields, other cell types) are confidently given a known class.",
        DATASET_SHIFT,
    ),
    metrics={"test_accuracy": "accuracy"},
    quality_floor={"test_accuracy": 0.6},
    metric_descriptions={
        "test_accuracy": "share of test images whose arg-max class is the true class (per-class "
        "values: share of each true class recognised, i.e. recall)"
    },
    per_class={"test_accuracy": ("test_accuracy_", "accuracy")},
    architecture="2D CNN classifier",
    architecture_description="Convolutional feature extractor, global pooling and a soft-max classification head.",
    loss="cross-entropy",
    lr_schedule="cosine annealing over the asked epochs",
    augmentation="flips, 90° rotations, intensity jitter",
)

UNET3D = Card(
    trainer="unet3d",
    title="3D segmentation (U-Net 3D)",
    task="segmentation",
    summary="A 3D U-Net that gives, for every voxel, the probability that it belongs to the foreground.",
    intended_use="Foreground/background segmentation of objects (e.g. nuclei) in 3D fluorescence stacks with a "
    "voxel size like the training data's.",
    inputs="one-channel 3D stack (z, y, x), any intensity range (normalised by the pre-processing)",
    outputs="one-channel foreground probability volume in [0, 1], same size as the input",
    limitations=(
        "Trained on the data described under Training only.",
        "Semantic, not instance, segmentation: touching objects are not separated.",
        "Memory grows with the cube of the tile size; predict large stacks tiled.",
    ),
    failure_modes=(
        "Anisotropy: stacks whose z-spacing relative to xy differs from the training data's are segmented "
        "poorly (elongated or broken objects); resample them to the training voxel size first.",
        "The first and last slices see less context and are less reliable.",
        DATASET_SHIFT,
    ),
    metrics={"test_iou": "IoU"},
    quality_floor={"test_iou": 0.5},
    metric_descriptions={
        "test_iou": "intersection over union of the thresholded (0.5) output with the true mask, "
        "pooled over all test voxels"
    },
    architecture="3D U-Net",
    architecture_description="3D U-Net (Çiçek et al. 2016) with one sigmoid output channel.",
    target_structure=("nuclei",),
    loss="binary cross-entropy + Dice",
    lr_schedule="cosine annealing over the asked epochs",
    augmentation="random crops, 90° rotations and flips in the y-x plane, z flips, intensity jitter",
    user_data={
        "intended_use": "Foreground/background segmentation of the structures marked in the training masks, in 3D "
        "stacks with a voxel size like the training data's.",
        "out_of_scope": "Instance counting without a separation step; stacks unlike the training stacks (another "
        "modality, stain or voxel size).",
    },
)

UNET2D_KERAS = replace(
    UNET2D,
    trainer="unet2d-keras",
    title="2D nuclei segmentation (U-Net, Keras)",
    user_data=_foreground_wording("2D foreground segmentation (U-Net, Keras)"),
)

_INSTANCE_METRICS = {
    "test_ap_50": "AP@0.5",
    "test_ap_60": "AP@0.6",
    "test_ap_70": "AP@0.7",
    "test_ap_75": "AP@0.75",
    "test_ap_80": "AP@0.8",
    "test_ap_90": "AP@0.9",
    "test_mean_ap": "mean AP 0.5-0.9",
    "test_f1_50": "F1@0.5",
    "test_f1_75": "F1@0.75",
    "test_f1_90": "F1@0.9",
    "test_panoptic_quality": "PQ",
    "test_matched_iou": "matched IoU",
    "test_objects_true": "objects (true)",
    "test_objects_found": "objects (found)",
    "test_count_error": "count error",
}
_INSTANCE_DESCRIPTIONS = {
    **{
        f"test_ap_{k}": f"average precision at IoU {t}: matched / (matched + missed + spurious) objects, pooled over "
        "the test images (a predicted and a true object match when their IoU is at least the threshold)"
        for k, t in (("50", 0.5), ("60", 0.6), ("70", 0.7), ("75", 0.75), ("80", 0.8), ("90", 0.9))
    },
    "test_mean_ap": "average precision averaged over the IoU thresholds 0.5, 0.55, ..., 0.9",
    **{
        f"test_f1_{k}": f"F1 score of object detection at IoU {t}: 2 matched / (2 matched + missed + spurious)"
        for k, t in (("50", 0.5), ("75", 0.75), ("90", 0.9))
    },
    "test_panoptic_quality": "panoptic quality at IoU 0.5: summed IoU of matched objects / (matched + missed/2 + "
    "spurious/2)",
    "test_matched_iou": "mean IoU of the objects matched at IoU 0.5",
    "test_objects_true": "objects in the true label images of the test split",
    "test_objects_found": "objects the model found on the test split",
    "test_count_error": "(found - true) / true objects: how far a count from this model is off",
}

STARDIST2D = Card(
    trainer="stardist2d",
    title="2D nuclei instance segmentation (StarDist, PyTorch)",
    task="instance segmentation",
    summary="A StarDist 2D network that outlines every nucleus as a star-convex polygon and gives one label per "
    "nucleus, so touching nuclei are counted, not merged.",
    intended_use="Counting and measuring nuclei in 2D fluorescence microscopy images (one channel), touching ones "
    "included. The package's stardist_postprocessing (run by bioimageio.core with the stardist package installed) "
    "turns the network's probability and ray distances into a label image: 0 background, one number per nucleus.",
    inputs="one-channel 2D image, any intensity range (normalised by the pre-processing)",
    outputs="instance label image, same size as the input (after stardist_postprocessing); the network itself "
    "gives 1 + n_rays channels: object probability, then the distances to the boundary along each ray",
    limitations=(
        "Trained on the data described under Training only.",
        "Objects are star-convex polygons around their centre: strongly concave shapes (kidney-shaped, branched "
        "cells) are cut short at the concavity.",
        "The probability and overlap thresholds were chosen on the validation split; another data set may need "
        "others (change prob_threshold / nms_threshold in the rdf's post-processing).",
        "Fiji (deepImageJ) stops at the stardist_postprocessing step, which JDLL does not implement: `zoo validate "
        "--target deepimagej` says so (DIJ27) and how to get the labels in Fiji instead.",
    ),
    failure_modes=(
        DATASET_SHIFT,
        "Nuclei much larger than the training nuclei, or than the halo, are split or cut short: the rays reach only "
        "as far as the network has seen.",
        "Heavily overlapping nuclei: the overlap goes to one of them, and a nucleus mostly hidden can be missed.",
        "Dim or out-of-focus nuclei fall under the probability threshold and are not counted.",
    ),
    metrics=_INSTANCE_METRICS,
    quality_floor={"test_ap_50": 0.5},
    metric_descriptions=_INSTANCE_DESCRIPTIONS,
    architecture="StarDist 2D (U-Net backbone)",
    architecture_description="U-Net (Ronneberger et al. 2015) with a feature layer and two heads as in StarDist "
    "(Schmidt et al. 2018): a 3x3 feature layer of 8 x the base filters (128 with the default 16), then a sigmoid "
    "object probability and linear distances along 32 rays.",
    target_structure=("nuclei",),
    out_of_scope="Cells with strongly concave or branched outlines; 3D stacks (use a 3D model); brightfield or "
    "electron microscopy images; counting on images unlike the training data without checking a few by hand.",
    loss="binary cross-entropy on the object probability + 0.2 x distance error weighted by it (StarDist's)",
    lr_schedule="cosine annealing over the asked epochs",
    augmentation="random crops, flips, 90° rotations, intensity jitter",
    user_data={
        "title": "2D instance segmentation (StarDist, PyTorch)",
        "summary": "A StarDist 2D network that outlines every object it was trained on as a star-convex polygon "
        "and gives one label per object.",
        "intended_use": "Counting and measuring the objects labelled in the training masks, in one-channel 2D "
        "images like the training images; touching objects get separate labels.",
        "out_of_scope": "Objects with strongly concave or branched outlines; images unlike the training images "
        "(another modality, stain or magnification).",
    },
)


def fallback_card(trainer: str) -> Card:
    """A card for a trainer without one: honest about what is not known."""
    return Card(
        trainer=trainer,
        title=f"model trained with zoo trainer {trainer}",
        task="",
        summary=f"A model trained with the zoo trainer `{trainer}`.",
        intended_use="Not described for this trainer: see the training data and evaluation below and test the "
        "model on your own images before use.",
        inputs="see the rdf's input description",
        outputs="see the rdf's output description",
        limitations=("Trained on the data described under Training only.",),
        failure_modes=(DATASET_SHIFT,),
        metrics={},
    )
