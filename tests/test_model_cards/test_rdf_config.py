import math

import numpy as np
import pytest
from bioimageio.spec.model import v0_5

from zoo.errors import InputError
from zoo.model_cards import bioimageio_config
from zoo.model_cards.rdf_config import UNPUBLISHED_EVALUATIONS

from .fakes import TRAINER_KINDS, make_checkpoint

URL = "https://zenodo.org/records/123456"


def validate(values: dict):
    """`config.bioimageio` as bioimageio.spec parses it, without reaching for the URL (tests stay offline)."""
    from bioimageio.spec import ValidationContext

    with ValidationContext(perform_io_checks=False):
        return v0_5.BioimageioConfig.model_validate(values)


@pytest.mark.parametrize("trainer", TRAINER_KINDS)
def test_config_validates_as_bioimageio_config_for_every_trainer(trainer):
    values = bioimageio_config(make_checkpoint(trainer))
    parsed = validate(values)
    training = parsed.training
    assert isinstance(training, v0_5.TrainingDetails)
    assert (training.training_epochs, training.training_batch_size, training.initial_learning_rate) == (12, 4, 0.002)
    assert training.training_duration == pytest.approx(312.4 / 3600)
    assert training.loss_function and training.optimizer == "Adam"
    extra = training.model_extra
    assert extra["trainer"] == trainer and extra["epochs_requested"] == 20 and extra["early_stopped"] is True
    assert extra["diagnosis"]["verdict"] == "good fit"
    assert extra["data"]["generator"] == "zoo.data.synthetic.make_nuclei" and extra["data"]["seed"] == 0
    assert extra["device"] == "cpu" and "python" in extra["software_versions"]
    assert parsed.evaluations == []  # no dataset URL: the spec's Evaluation cannot be filled
    unpublished = values[UNPUBLISHED_EVALUATIONS][0]
    assert unpublished["dataset_role"] == "test" and unpublished["sample_count"] == 36
    assert parsed.task


@pytest.mark.parametrize("trainer", TRAINER_KINDS)
def test_with_a_dataset_url_the_evaluation_is_typed(trainer):
    parsed = validate(bioimageio_config(make_checkpoint(trainer), dataset_source=URL))
    (evaluation,) = parsed.evaluations
    assert str(evaluation.dataset_source).rstrip("/") == URL
    assert evaluation.dataset_role == "test" and evaluation.sample_count == 36
    assert len(evaluation.results) == len(evaluation.metrics)
    assert str(evaluation.dataset_id) == "zoo-synthetic-make_nuclei-seed-0"


def test_per_class_metrics_become_evaluation_factors():
    values = bioimageio_config(make_checkpoint("unet2d-multiclass"), dataset_source=URL)
    (evaluation,) = validate(values).evaluations
    assert evaluation.evaluation_factors == ["overall", "background", "nucleus", "boundary"]
    assert evaluation.metrics == ["IoU"]
    assert evaluation.results == [[0.71, 0.95, 0.8, 0.38]]


def test_restoration_metrics_are_rows_of_one_factor():
    values = bioimageio_config(make_checkpoint("care2d"), dataset_source=URL)
    (evaluation,) = validate(values).evaluations
    assert evaluation.metrics == ["PSNR (dB)", "PSNR input (dB)", "PSNR gain (dB)", "SSIM"]
    assert evaluation.results == [[31.2], [22.5], [8.7], [0.88]]


def test_long_class_names_are_cut_to_unique_16_character_factors():
    metrics = {
        "test_accuracy": 0.5,
        "test_accuracy_prometaphase-early-stage": 0.4,
        "test_accuracy_prometaphase-early-stage-b": 0.6,
    }
    checkpoint = make_checkpoint("classifier2d", metrics=metrics, task={"kind": "classification"})
    (evaluation,) = validate(bioimageio_config(checkpoint, URL)).evaluations
    factors = evaluation.evaluation_factors
    assert len(set(factors)) == 3 and all(len(f) <= 16 for f in factors)
    assert evaluation.evaluation_factors_long[2] == "class prometaphase-early-stage-b"


def test_non_finite_values_become_yaml_safe():
    history = [{"epoch": 1, "train_loss": 0.9, "val_loss": math.nan}, {"epoch": 2, "train_loss": 0.8, "val_loss": 0.7}]
    checkpoint = make_checkpoint(history=history, metrics={"test_iou": math.nan, "best_epoch": np.float64(2)})
    values = bioimageio_config(checkpoint, URL)
    assert values["training"]["history"][0] == {"epoch": 1, "train_loss": 0.9, "val_loss": None}
    assert validate(values).evaluations[0].results == [["n/a"]]


def test_folder_data_reports_its_name_and_checksum_not_its_path():
    data = {
        "source": "folder",
        "folder": "/data/private/lab-nuclei",
        "n_files": 48,
        "sha256": "ab" * 32,
        "split": {"train": 16, "validation": 4, "test": 4},
    }
    values = bioimageio_config(make_checkpoint(data=data))
    assert values["training"]["data"]["folder_name"] == "lab-nuclei"
    assert "/data/private" not in str(values)
    assert values[UNPUBLISHED_EVALUATIONS][0]["dataset_id"] == "user-folder-lab-nuclei"


def test_a_dataset_source_that_is_not_a_url_is_refused():
    with pytest.raises(InputError, match="not an http"):
        bioimageio_config(make_checkpoint(), dataset_source="/data/nuclei")


def test_config_survives_a_full_model_description(tmp_path):
    """Built into a ModelDescr and dumped as the rdf would be, the typed and the extra keys are all kept."""
    from bioimageio.spec import ValidationContext

    np.save(tmp_path / "in.npy", np.random.default_rng(0).normal(size=(1, 1, 16, 16)).astype(np.float32))
    np.save(tmp_path / "out.npy", np.random.default_rng(1).uniform(size=(1, 1, 16, 16)).astype(np.float32))
    (tmp_path / "README.md").write_text("# model\n\n## Validation\nok\n")
    (tmp_path / "cover.png").write_bytes(b"")
    (tmp_path / "weights.pt").write_bytes(b"not really weights")
    values = bioimageio_config(make_checkpoint("unet2d-multiclass"), dataset_source=URL)
    space = {a: v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=16) for a in "yx"}
    with ValidationContext(root=tmp_path, perform_io_checks=False):
        descr = v0_5.ModelDescr(
            name="config test",
            description="a model description that carries the run's config",
            authors=[v0_5.Author(name="zoo")],
            cite=[v0_5.CiteEntry(text="zoo", doi="10.1007/978-3-319-24574-4_28")],
            license="MIT",
            documentation=v0_5.FileDescr(source="README.md"),
            inputs=[
                v0_5.InputTensorDescr(
                    id=v0_5.TensorId("raw"),
                    axes=[v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier("raw")]), *space.values()],
                    test_tensor=v0_5.FileDescr(source="in.npy"),
                )
            ],
            outputs=[
                v0_5.OutputTensorDescr(
                    id=v0_5.TensorId("out"),
                    axes=[
                        v0_5.BatchAxis(),
                        v0_5.ChannelAxis(channel_names=[v0_5.Identifier("p")]),
                        *(v0_5.SpaceOutputAxis(id=v0_5.AxisId(a), size=16) for a in "yx"),
                    ],
                    test_tensor=v0_5.FileDescr(source="out.npy"),
                )
            ],
            weights=v0_5.WeightsDescr(
                torchscript=v0_5.TorchscriptWeightsDescr(source="weights.pt", pytorch_version=v0_5.Version("2.13.0"))
            ),
            config=v0_5.Config(bioimageio=values, zoo={"trainer": "unet2d-multiclass"}),
        )
    dumped = descr.model_dump(mode="json", exclude_unset=True)["config"]["bioimageio"]
    assert dumped["training"]["trainer"] == "unet2d-multiclass"
    assert dumped["training"]["training_epochs"] == 12
    assert dumped["evaluations"][0]["results"] == [[0.71, 0.95, 0.8, 0.38]]
    assert dumped["training"]["diagnosis"]["verdict"] == "good fit"
