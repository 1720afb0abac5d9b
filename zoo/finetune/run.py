"""`zoo finetune`: a package fine-tuned on the user's images, measured before and after on their held-out test split,
and shared as a new package with its lineage only when it improved.

The way through: outputs refused before any work (an existing zip or run without --overwrite / --resume); the
package's trainable weights chosen and proven equal to it (zoo.finetune.trainable); the loss chosen from its output
(zoo.finetune.losses); the folder read, checked, split and pre-processed by the package's own pre-processing
(zoo.finetune.data); the package's metric on the test split before; the shared PyTorch loop of every zoo trainer
(zoo.trainers.loop.fit: augmentation, early stopping, resumable state, progress); the metric after; and, when it
improved, the new package (zoo.finetune.lineage). The input package is never modified."""

from __future__ import annotations

import logging
import math
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.source import open_source, refuse_output_inside
from zoo.config import DataConfig, TrainConfig
from zoo.errors import InputError
from zoo.finetune.data import FinetuneData, Sizes, load_finetune_data, training_batch
from zoo.finetune.losses import Objective, choose_objective
from zoo.finetune.processing import PackageProcessing
from zoo.finetune.settings import MIN_STEPS_PER_EPOCH, RUN_FOLDER, FinetuneConfig, check_record
from zoo.finetune.trainable import Frozen, Trainable, choose_trainable, freeze
from zoo.packaging.parent import convertible_tensors, read_package_rdf
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    source: Path
    weights: str  # the package's weights that were trained
    why: str  # why those
    loss: str
    loss_why: str
    metric: str  # the headline metric, higher is better
    frozen: str
    normalisation: str  # whether the normalisation statistics adapted to the user's images
    data: dict[str, Any]  # provenance: folder name, file count, checksum, split
    before: dict[str, float]  # on the held-out test split, the package as it was
    after: dict[str, float]  # the same, fine-tuned
    history: list[dict[str, float]]
    steps_per_epoch: int  # batches of `batch_size` crops per epoch
    batch_size: int
    best_epoch: int
    stopped_early: bool
    resumed_from: int
    duration_s: float
    device: str
    run_folder: Path
    lineage: Any = None  # zoo.finetune.lineage.Lineage when a package was built
    data_warnings: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        """The fine-tuned model improved the package's metric on the user's test split."""
        return self.after[self.metric] > self.before[self.metric]

    @property
    def verdict(self) -> str:
        change = f"{self.metric} {self.before[self.metric]:.4g} → {self.after[self.metric]:.4g}"
        n = self.data.get("split", {}).get("test", "?")
        if self.kept:
            return f"kept: {change} on your {n} held-out test images"
        return f"not kept: {change} on your {n} held-out test images did not improve, so no package was written"

    @property
    def zip_path(self) -> Path | None:
        return self.lineage.zip_path if self.lineage is not None else None

    @property
    def exit_code(self) -> int:
        """0: improved and the new package was written; 1: not improved, or the new package was not written."""
        return 0 if self.kept and self.zip_path is not None else 1


def finetune_package(
    source: Path,
    data: Path,
    out: Path,
    config: FinetuneConfig,
    *,
    trust: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    formats: list[str] | None = None,
    weights: str | None = None,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune the package at `source` on the folder `data`; the run's state goes to `out/training`, the new zip
    into `out` (only when the metric improved and the package validates). `weights` picks the package's format to
    train (default: the best trainable one); `formats` the formats to write (default: every one the trained
    framework exports to). InputError / DataError lines for what the user must change, raised before any training."""
    from zoo.bioimage.devices import resolve_device
    from zoo.finetune.lineage import package_path
    from zoo.trainers.runs import refuse_overwrite

    progress = progress or SilentProgress()
    source, out, data = Path(source), Path(out), Path(data)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder: give a new or existing folder")
    refuse_output_inside("--out", out, source)
    if not data.is_dir():
        raise InputError(f"--data {data} is not a folder: give the folder of your images (see `zoo trainers`)")
    run = out / RUN_FOLDER
    started = time.perf_counter()
    with open_source(source) as opened:
        rdf = read_package_rdf(opened)
        target = package_path(rdf, out)
        if target.resolve() == source.resolve():
            raise InputError(f"--out {out} would replace the input {source}, which is never changed: choose another")
        if target.exists() and not overwrite:
            raise InputError(f"{target} exists already: pass --overwrite to replace it, or choose another --out")
        refuse_overwrite(run, resume=resume, overwrite=overwrite)
        with tempfile.TemporaryDirectory(prefix="zoo-finetune-") as tmp:
            trainable = choose_trainable(opened, rdf, trust=trust, workdir=Path(tmp), weights=weights)
            inputs, outputs, layout, output_layout = convertible_tensors(opened, rdf)
            _check_tensors(trainable, inputs[0], layout, output_layout)
            processing = PackageProcessing(opened, inputs[0], outputs[0], layout)
            objective = choose_objective(
                config.loss,
                trainable.predict(trainable.parent.example),
                output_layout,
                processing.postprocessing_ids,
                trainable.final_activation,
            )
            sizes = Sizes.of(inputs[0], layout)
            data_config = DataConfig(
                folder=data,
                seed=config.seed,
                validation_fraction=config.validation_fraction,
                test_fraction=config.test_fraction,
            )
            loaded = load_finetune_data(data, objective, processing, sizes, output_layout, data_config)
            check_record(run, _record(opened, trainable, objective, config), resume)
            before = evaluate(trainable, objective, loaded)
            frozen = freeze(trainable.module, config.freeze)
            device = resolve_device(config.device)
            budget = _budget(config, sizes, loaded)
            fitted = _fit(trainable, objective, loaded, budget, layout, output_layout, config, data_config, run, device,
                          resume, progress)  # fmt: skip
            after = evaluate(trainable, objective, loaded)
            result = FinetuneResult(
                source=source,
                weights=trainable.weight_format,
                why=trainable.why,
                loss=objective.loss,
                loss_why=objective.why,
                metric=objective.metric,
                frozen=frozen.text(),
                normalisation=trainable.normalisation,
                data=loaded.provenance,
                before=before,
                after=after,
                history=fitted.history,
                steps_per_epoch=budget.steps,
                batch_size=budget.batch_size,
                best_epoch=fitted.best_epoch,
                stopped_early=fitted.stopped_early,
                resumed_from=fitted.resumed_from,
                duration_s=time.perf_counter() - started,
                device=device,
                run_folder=run,
                data_warnings=loaded.warnings,
            )
            if result.kept:
                from zoo.finetune.lineage import build_lineage

                result.lineage = build_lineage(
                    opened, rdf, trainable, objective, processing, sizes, result, _facts(config, frozen, trust),
                    target, formats=formats, trust=trust, overwrite=overwrite, progress=progress,
                )  # fmt: skip
    return result


def _check_tensors(trainable: Trainable, spec, layout: str, output_layout: str) -> None:
    """What fine-tuning on a folder of grey images needs of the package's tensors."""
    example = trainable.parent.example
    if "b" not in layout or "b" not in output_layout:
        raise InputError(f"input {spec.id} has axes {layout}: zoo finetune trains batches (a batch axis is needed)")
    channels = example.shape[layout.index("c")]
    if channels != 1:
        raise InputError(
            f"input {spec.id} takes {channels} channels: zoo finetune reads one-channel images (the --data layouts)"
        )
    missing = [letter for letter in "zyx" if letter in layout and letter not in output_layout]
    if missing:
        raise InputError(
            f"the output has axes {output_layout} (no {', '.join(missing)}): zoo finetune trains models whose output "
            "is an image of the input's size (segmentation, restoration), not image classifiers"
        )
    shipped = trainable.predict(example)
    for letter in "zyx":
        if letter in layout and shipped.shape[output_layout.index(letter)] != example.shape[layout.index(letter)]:
            raise InputError(
                f"the output is {shipped.shape[output_layout.index(letter)]} px along {letter} for an input of "
                f"{example.shape[layout.index(letter)]} px: zoo finetune trains models whose output is the input's size"
            )


def _record(opened, trainable: Trainable, objective: Objective, config: FinetuneConfig) -> dict[str, Any]:
    from zoo.bioimage.files import sha256_of

    return {
        "package_rdf_sha256": sha256_of(opened.rdf_path),
        "weights": trainable.weight_format,
        "loss": objective.loss,
        "freeze": config.freeze,
    }


def evaluate(trainable: Trainable, objective: Objective, data: FinetuneData) -> dict[str, float]:
    """The package's metric(s) on the held-out test windows, the model run as the package ships it."""
    trainable.module.cpu()
    trainable.module.set_logits(False)
    outputs = [trainable.predict(w.image) for w in data.test]
    return objective.score(outputs, [w.target for w in data.test])


@dataclass(frozen=True)
class Budget:
    side: int  # of the square training crops
    batch_size: int
    steps: int  # per epoch


def _budget(config: FinetuneConfig, sizes: Sizes, data: FinetuneData) -> Budget:
    """Crops of a size the rdf takes, a batch the rdf allows, and an epoch of as many crop pixels as the training split
    has (at least MIN_STEPS_PER_EPOCH batches)."""
    side = sizes.side(config.patch_size, min(min(image.shape) for image in data.train_images))
    batch_size = min(config.batch_size, sizes.batch) if sizes.batch else config.batch_size
    pixels = sum(image.size for image in data.train_images)
    return Budget(
        side, batch_size, max(MIN_STEPS_PER_EPOCH, math.ceil(pixels / (side ** len(sizes.spatial) * batch_size)))
    )


def _fit(trainable, objective, data, budget, layout, output_layout, config, data_config, run, device, resume, progress):
    import torch

    from zoo.trainers.loop import fit

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    side, batch_size, steps = budget.side, budget.batch_size, budget.steps
    train_config = TrainConfig(
        trainer="finetune",
        data=data_config,
        epochs=config.epochs,
        batch_size=batch_size,
        patch_size=max(side, 16),
        lr=config.lr,
        seed=config.seed,
        device=config.device,
        early_stopping_patience=config.early_stopping_patience,
        resume=resume,
        out=run,
    )
    module = trainable.module.to(device)
    module.set_logits(objective.leave_out_activation)

    def validation_loss(model) -> float:
        losses = []
        for window in data.validation:
            x = torch.from_numpy(window.image).to(device)
            losses.append(float(objective.loss_fn(model(x), torch.from_numpy(window.target).to(device))))
        return float(np.mean(losses))

    try:
        return fit(
            module,
            config=train_config,
            device=device,
            rng=rng,
            steps_per_epoch=steps,
            train_step_batch=lambda: training_batch(data, rng, batch_size, side, objective, layout, output_layout),
            loss_fn=objective.loss_fn,
            validation_loss=validation_loss,
            progress=progress,
            label=f"fine-tuning {trainable.weight_format}",
        )
    finally:
        module.set_logits(False)
        module.cpu()
        module.eval()


def _facts(config: FinetuneConfig, frozen: Frozen, trust: bool) -> dict[str, Any]:
    import torch

    return {
        "settings": config.model_dump(mode="json"),
        "frozen": frozen.text(),
        "trust": trust,
        "versions": {"torch": torch.__version__.split("+")[0], "python": platform.python_version()},
    }


__all__ = ["FinetuneResult", "evaluate", "finetune_package"]
