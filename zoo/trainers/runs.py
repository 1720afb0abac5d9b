"""A run folder: what an earlier (maybe interrupted) run left in it, the settings it recorded, and the rule that
nothing in it is replaced unless asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.config import TrainConfig
from zoo.errors import InputError

STATE_FILES = ("train_state.pt", "train_state.npz")  # the PyTorch loop's, the Keras trainer's
CHECKPOINT_NAME = "checkpoint.pt"


def saved_state(out: Path) -> Path | None:
    """The resumable state an earlier run left in `out`, if any."""
    return next((Path(out) / name for name in STATE_FILES if (Path(out) / name).is_file()), None)


def recorded_settings(out: Path) -> dict[str, Any] | None:
    """The TrainConfig (as JSON values) the run in `out` was started with; None when `out` holds no state."""
    state = saved_state(out)
    if state is None:
        return None
    try:
        if state.suffix == ".npz":
            import numpy as np

            with np.load(state, allow_pickle=False) as stored:
                return dict(json.loads(str(stored["meta"]))["config"])
        import torch

        return dict(torch.load(state, map_location="cpu", weights_only=True)["config"])
    except Exception as e:
        raise InputError(f"cannot read {state} ({type(e).__name__}: {e}); delete it to start afresh") from e


def resumed_config(out: Path, **changes) -> TrainConfig | None:
    """The settings recorded in `out` with `resume` on and `changes` (e.g. more epochs) over them; None when `out`
    holds no state to resume (then the run starts afresh with the settings given)."""
    recorded = recorded_settings(out)
    if recorded is None:
        return None
    recorded.update(changes, resume=True, out=str(out))
    from pydantic import ValidationError

    from zoo.config.base import describe_validation_error

    try:
        return TrainConfig(**recorded)
    except ValidationError as e:
        raise InputError(f"cannot resume the run in {out}: {describe_validation_error(e)}") from e


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with their paths resolved, so that `runs/a` and `/home/me/runs/a` are the same folder."""
    values = dict(settings)
    if values.get("out") is not None:
        values["out"] = str(Path(values["out"]).expanduser().resolve())
    data = values.get("data")
    if isinstance(data, dict) and data.get("folder") is not None:
        values["data"] = {**data, "folder": str(Path(data["folder"]).expanduser().resolve())}
    return values


def refuse_overwrite(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Before any work: a run folder that holds an earlier run's checkpoint or state is not replaced silently."""
    out = Path(out)
    if overwrite or not out.is_dir():
        return
    state = saved_state(out)
    if resume and state is not None:
        return
    existing = [p.name for p in (out / CHECKPOINT_NAME, state) if p is not None and p.is_file()]
    if existing:
        hint = " pass --resume to continue it," if state is not None else ""
        raise InputError(
            f"{out} already holds {' and '.join(existing)} of an earlier run:{hint} pass --overwrite to replace it, "
            "or choose another --out folder"
        )


def describe_changes(saved: dict[str, Any], now: dict[str, Any], keys: list[str]) -> str:
    """`lr: 0.002 then, 0.001 now; data.folder: 'a' then, 'b' now`: the changed values only, never whole dicts."""
    saved, now = comparable(saved), comparable(now)
    parts = []
    for key in keys:
        before, after = saved.get(key), now.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            parts += [
                f"{key}.{sub}: {before.get(sub)!r} then, {after.get(sub)!r} now"
                for sub in sorted(set(before) | set(after))
                if before.get(sub) != after.get(sub)
            ]
        else:
            parts.append(f"{key}: {before!r} then, {after!r} now")
    return "; ".join(parts)
