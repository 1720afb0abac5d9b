import re
import xml.etree.ElementTree as ET

import pytest

from zoo.config import PackageConfig
from zoo.model_cards import LOSS_PLOT, card_files, card_for, render_readme
from zoo.packaging.export import Geometry

from .fakes import CONFUSION, TRAINER_KINDS, make_checkpoint, make_exported


def render(tmp_path, trainer="unet2d", checkpoint=None, exported=None, config=None) -> str:
    path = render_readme(
        checkpoint or make_checkpoint(trainer),
        exported or make_exported(trainer),
        config or PackageConfig(name="My model"),
        tmp_path / "README.md",
    )
    assert path == tmp_path / "README.md"
    return path.read_text(encoding="utf-8")


def tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of cells (escaped pipes kept inside cells)."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            found.append(current)
            current = []
    return found


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("trainer", TRAINER_KINDS)
def test_readme_for_every_trainer_has_card_run_plot_and_validation(tmp_path, trainer):
    text = render(tmp_path, trainer)
    card = card_for(trainer)
    assert text.startswith("# My model\n")
    for heading in ("Intended use", "Limitations", "Training", "Evaluation", "Usage", "Validation"):
        assert f"\n## {heading}\n" in text
    assert card.intended_use in text and card.failure_modes[0] in text
    assert f"![training and validation loss]({LOSS_PLOT})" in text
    assert "**Diagnosis: good fit.**" in text
    assert "zoo.data.synthetic.make_nuclei` with seed 0" in text
    assert "ran 12 of 20 asked; stopped early: the validation loss had not improved for 5 epochs" in text
    assert "duration 5.2 min" in text and "device cpu" in text
    evaluation = section(text, "Evaluation")
    assert "held-out test split (36 images)" in evaluation
    for label in card.metrics.values():
        assert f"| {label} | **" in evaluation
    for table in tables(text):
        assert len({len(row) for row in table}) == 1, table  # every row has the header's columns
    validation = section(text, "Validation")
    assert "| torchscript | 3.00e-07 | 1.00e-06 | 0 |" in validation
    assert "| pytorch_state_dict | not compared | | |" in validation
    assert "| onnx | not shipped: opset 17 not available | | |" in validation
    assert card_files(tmp_path / "README.md") == [tmp_path / LOSS_PLOT]
    ET.parse(tmp_path / LOSS_PLOT)


def test_machine_local_paths_do_not_leak_into_the_readme(tmp_path):
    text = render(tmp_path)
    assert "/home/someone" not in text
    assert "| lr | 0.002 |" in text and "| batch_size | 4 |" in text


def test_keras_run_names_its_frameworks(tmp_path):
    assert "Keras 3.10.0 on TensorFlow 2.21.0" in render(tmp_path, "unet2d-keras")


def test_user_folder_is_named_with_file_count_and_checksum_not_its_path(tmp_path):
    data = {
        "source": "folder",
        "folder": "/data/private/lab-nuclei",
        "n_files": 48,
        "sha256": "ab" * 32,
        "split": {"train": 16, "validation": 4, "test": 4},
    }
    text = render(tmp_path, checkpoint=make_checkpoint(data=data))
    assert f"the user's folder `lab-nuclei`: 48 files, sha256 of all files `{'ab' * 32}`" in text
    assert "/data/private" not in text
    assert "Split (images): train 16, validation 4, test 4." in text


def test_multiclass_readme_has_a_per_class_table(tmp_path):
    evaluation = section(render(tmp_path, "unet2d-multiclass"), "Evaluation")
    per_class = next(t for t in tables(evaluation) if t[0][0] == "class")
    assert per_class[0] == ["class", "IoU"]
    assert per_class[2:] == [["background", "0.95"], ["nucleus", "0.8"], ["boundary", "0.38"]]
    assert "test_iou_boundary" not in evaluation


def test_classifier_readme_has_the_confusion_matrix_and_a_fixed_size(tmp_path):
    text = render(tmp_path, "classifier2d")
    matrix = next(t for t in tables(section(text, "Evaluation")) if t[0][0] == "true \\ predicted")
    assert matrix[0][1:] == ["interphase", "mitotic"]
    assert [row[1:] for row in matrix[2:]] == [[str(v) for v in row] for row in CONFUSION]
    usage = section(text, "Usage")
    assert "exactly 64 px along each spatial axis" in usage and "halo" not in usage
    assert "Output `class_probabilities`" in usage and "axes b, c." in usage


def test_classifier_without_a_confusion_matrix_degrades_gracefully(tmp_path):
    checkpoint = make_checkpoint("classifier2d", task={"kind": "classification"})
    evaluation = section(render(tmp_path, "classifier2d", checkpoint=checkpoint), "Evaluation")
    assert "Confusion matrix" not in evaluation
    per_class = next(t for t in tables(evaluation) if t[0][0] == "class")
    assert [row[0] for row in per_class[2:]] == ["interphase", "mitotic"]  # from the metric names


def test_ragged_confusion_matrix_is_left_out(tmp_path):
    task = {"kind": "classification", "extra": {"confusion_matrix": [[1, 2], [3]]}}
    text = render(tmp_path, "classifier2d", checkpoint=make_checkpoint("classifier2d", task=task))
    assert "Confusion matrix" not in text


@pytest.mark.parametrize("geometry", [None, Geometry(min_size=96, step=16, halo=0)])
def test_missing_geometry_or_halo_is_handled(tmp_path, geometry):
    usage = section(render(tmp_path, exported=make_exported(geometry=geometry)), "Usage")
    assert "halo" not in usage
    assert ("valid sizes as given in the rdf" if geometry is None else "spatial size 96 + n·16 px") in usage


def test_unet3d_usage_shows_its_volume_axes(tmp_path):
    assert "axes b, c, z, y, x" in section(render(tmp_path, "unet3d"), "Usage")


def test_unknown_trainer_reports_its_raw_metrics(tmp_path):
    checkpoint = make_checkpoint("my-trainer", metrics={"test_dice": 0.9, "best_epoch": 3.0}, task={})
    text = render(tmp_path, checkpoint=checkpoint)
    assert "| test_dice | **0.9** |" in text
    assert "Also recorded: best epoch 3." in text


def test_short_run_with_nan_losses_and_no_metrics_still_renders(tmp_path):
    checkpoint = make_checkpoint(
        history=[{"epoch": 1, "train_loss": float("nan"), "val_loss": 0.5}],
        metrics={},
        environment={},
        data={},
        config={},
    )
    text = render(tmp_path, checkpoint=checkpoint)
    assert "**Diagnosis: too short to tell.**" in text
    assert "No test metrics were recorded for this model." in text
    assert "ran 1 of not recorded asked" in text
    ET.parse(tmp_path / LOSS_PLOT)
