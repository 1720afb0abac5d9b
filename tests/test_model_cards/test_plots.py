import math
import xml.etree.ElementTree as ET

import pytest

from zoo.model_cards.diagnosis import Diagnosis, diagnose
from zoo.model_cards.plots import loss_plot_svg

from .fakes import history

SVG = "{http://www.w3.org/2000/svg}"


def parse(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return root


def texts(root) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def polyline_ys(root) -> list[list[float]]:
    return [[float(p.split(",")[1]) for p in line.get("points").split()] for line in root.iter(f"{SVG}polyline")]


def test_plot_has_two_curves_axes_legend_best_epoch_and_diagnosis(tmp_path):
    runs = history(12)
    diagnosis = diagnose(runs)
    root = parse(loss_plot_svg(runs, tmp_path / "loss.svg", diagnosis))
    lines = polyline_ys(root)
    assert len(lines) == 2 and all(len(ys) == 12 for ys in lines)
    labels = texts(root)
    assert {"training loss", "validation loss", "epoch", "loss"} <= set(labels)
    assert f"best epoch 12 ({runs[-1]['val_loss']:.4g})" in labels
    assert f"Diagnosis: {diagnosis.verdict}" in labels
    assert sum(label.isdigit() for label in labels) >= 4  # epoch ticks
    # losses fall: the y coordinate (down is larger) grows along each curve
    assert all(ys[0] < ys[-1] for ys in lines)


def test_losses_spanning_decades_get_a_log_axis(tmp_path):
    runs = [{"epoch": e, "train_loss": 10.0**-e, "val_loss": 2 * 10.0**-e} for e in range(1, 6)]
    root = parse(loss_plot_svg(runs, tmp_path / "loss.svg"))
    labels = texts(root)
    assert "loss (log scale)" in labels
    assert "1e-05" in labels and "1" in labels
    ys = polyline_ys(root)[0]
    steps = [b - a for a, b in zip(ys, ys[1:])]
    assert max(steps) - min(steps) < 0.5  # one decade per epoch: evenly spaced on a log axis


def test_narrow_range_stays_linear(tmp_path):
    root = parse(loss_plot_svg(history(5), tmp_path / "loss.svg"))
    assert "loss (log scale)" not in texts(root)


def test_one_epoch_is_drawn_as_points(tmp_path):
    root = parse(
        loss_plot_svg(
            [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.8}],
            tmp_path / "loss.svg",
            diagnose([{"epoch": 1, "train_loss": 0.7, "val_loss": 0.8}]),
        )
    )
    assert not list(root.iter(f"{SVG}polyline"))
    assert len(list(root.iter(f"{SVG}circle"))) == 3  # two points and the best-epoch marker
    assert "Diagnosis: too short to tell" in texts(root)


def test_nan_losses_break_the_line_and_are_counted(tmp_path):
    runs = history(8)
    runs[3]["val_loss"] = math.nan
    runs[5]["train_loss"] = None
    root = parse(loss_plot_svg(runs, tmp_path / "loss.svg"))
    assert sorted(len(ys) for ys in polyline_ys(root)) == [2, 3, 4, 5]
    assert "2 non-finite loss value(s) not drawn." in texts(root)
    for number in " ".join(line.get("points") for line in root.iter(f"{SVG}polyline")).replace(",", " ").split():
        assert math.isfinite(float(number))


def test_all_nan_and_empty_histories_still_give_valid_svg(tmp_path):
    root = parse(loss_plot_svg([{"epoch": 1, "train_loss": math.nan, "val_loss": math.nan}], tmp_path / "a.svg"))
    assert "no finite loss values recorded" in texts(root)
    root = parse(loss_plot_svg([], tmp_path / "b.svg"))
    assert "The training history is empty." in texts(root)


@pytest.mark.parametrize("value", [0.0, 0.5, -2.0])
def test_equal_values_get_a_padded_axis(tmp_path, value):
    runs = [{"epoch": e, "train_loss": value, "val_loss": value} for e in range(1, 5)]
    root = parse(loss_plot_svg(runs, tmp_path / "loss.svg"))
    ys = polyline_ys(root)[0]
    assert len(set(ys)) == 1 and 36 < ys[0] < 336  # a flat line inside the plot area, not on its border


def test_caption_text_is_escaped(tmp_path):
    diagnosis = Diagnosis("good fit", 'train < val & val > 0 by "a lot"')
    root = parse(loss_plot_svg(history(4), tmp_path / "loss.svg", diagnosis))
    assert 'train < val & val > 0 by "a lot"' in texts(root)
