"""The PyTorch training loop every zoo trainer shares: epochs of augmented batches, a validation loss per
epoch, early stopping on it, the best weights kept, and a resumable state written after every epoch."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.files import atomic_path
from zoo.config import TrainConfig
from zoo.errors import InputError
from zoo.progress import Progress

logger = logging.getLogger(__name__)

STATE_NAME = "train_state.pt"
# settings that may change between a run and its resumption without changing what is trained
RESUMABLE_CHANGES = {"epochs", "device", "resume", "out", "early_stopping_patience", "smoke_test"}


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    resumed_from: int  # the epoch the run resumed after (0: a fresh run)


def _save_state(path: Path, payload: dict[str, Any]) -> None:
    import torch

    with atomic_path(path) as tmp:  # a crash mid-write leaves the previous epoch's state intact
        torch.save(payload, tmp)


def changed_settings(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The settings of a saved run that differ now and would change what is trained (paths compared resolved)."""
    from zoo.trainers.runs import comparable

    saved, now = comparable(saved), comparable(now)
    return sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))


def _load_state(path: Path, config: TrainConfig) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot resume from {path} ({type(e).__name__}: {e}); delete it to start afresh") from e
    from zoo.trainers.runs import describe_changes

    saved, now = dict(state["config"]), config.model_dump(mode="json")
    changed = changed_settings(saved, now)
    if changed:
        raise InputError(
            f"cannot resume from {path}: the run was started with other settings "
            f"({describe_changes(saved, now, changed)}); resume with `zoo train --resume --out FOLDER` alone to "
            "use the recorded settings, or choose another --out folder"
        )
    return state


def fit(
    model,
    *,
    config: TrainConfig,
    device: str,
    rng: np.random.Generator,
    steps_per_epoch: int,
    train_step_batch: Callable[[], tuple[np.ndarray, np.ndarray]],
    loss_fn: Callable,
    validation_loss: Callable[[Any], float],
    progress: Progress,
    label: str,
) -> FitResult:
    """Train `model` (on `device`, in place) and load the weights of the epoch with the lowest validation loss
    into it. With `config.resume` and a state file in `config.out`, continue that run where it stopped."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_NAME
    history: list[dict[str, float]] = []
    best_loss, best_state, best_epoch, start = math.inf, None, 0, 1
    if config.resume and state_path.is_file():
        state = _load_state(state_path, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scheduler.T_max = config.epochs
        history, best_loss, best_epoch = list(state["history"]), float(state["best_loss"]), int(state["best_epoch"])
        best_state = state["best_model"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        start = int(state["epoch"]) + 1
        logger.info("resuming %s after epoch %d of %d", label, start - 1, config.epochs)
    elif config.resume:
        logger.info("no %s in %s: starting a fresh run", STATE_NAME, out)

    stopped_early = bool(history) and history[-1].get("stopped_early", 0) == 1
    progress.start(label, max(0, config.epochs - start + 1) * steps_per_epoch)
    for epoch in range(start, config.epochs + 1):
        if stopped_early:
            break
        model.train()
        losses = []
        for _ in range(steps_per_epoch):
            x, y = train_step_batch()
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            progress.advance(1, epoch=epoch, loss=round(losses[-1], 4))
        scheduler.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(validation_loss(model))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss})
        logger.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, history[-1]["train_loss"], val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.early_stopping_patience:
            logger.info("early stop at epoch %d: no better validation loss since epoch %d", epoch, best_epoch)
            history[-1]["stopped_early"] = 1
            stopped_early = True
        _save_state(
            state_path,
            {
                "config": config.model_dump(mode="json"),
                "epoch": epoch,
                "history": history,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_model": best_state,
                "best_loss": best_loss,
                "best_epoch": best_epoch,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
            },
        )
    progress.finish()
    if best_state is None:
        raise InputError(f"{label}: no epoch was trained (epochs {config.epochs}, resumed after {start - 1})")
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        [{k: v for k, v in h.items() if k != "stopped_early"} for h in history],
        best_epoch,
        best_loss,
        stopped_early,
        start - 1,
    )
