"""One process per weight format that runs the model for the isolated validation, beside the child that runs the
checks.

The child (bioimageio.spec, bioimageio.core, the rdf's pre- and post-processing, the checks) and the runtime
(torch, onnxruntime) cost seconds of imports each: in separate processes they load side by side, and two weight
formats compute side by side. The worker loads the weight file with zoo's own backend, the one `zoo predict` runs
(zoo.bioimage.runtimes); the child reaches it through a bioimageio.core model adapter, so that a prediction
pipeline still does the processing, the axes and the batch handling. Only formats whose backend needs nothing but
the weight file run here (no package code, no external data), on the CPU."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

# weight formats a worker runs, with the module its runtime needs
WORKER_FORMATS = {"torchscript": "torch", "onnx": "onnxruntime"}


def worker_formats(rdf: dict, device: str) -> list[str]:
    """The weight formats of a raw rdf (any format version) that get a worker on `device`."""
    weights = rdf.get("weights") if isinstance(rdf, dict) else None
    if device != "cpu" or not isinstance(weights, dict):
        return []
    named = {"pytorch_script": "torchscript"}  # format 0.3's name
    present = {named.get(str(key), str(key)) for key, entry in weights.items() if isinstance(entry, dict)}
    return [wf for wf in WORKER_FORMATS if wf in present]


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def serve(weight_format: str, workers: int, connection, confined: tuple | None = None) -> None:
    """The worker's main loop: import the runtime at once, then answer ("load", path, device) and ("run", arrays)
    with ("ok", value) or ("error", module, type name, message) until the child closes the connection.
    `confined` (package root, scratch folder, device): the worker enters the sandbox first, so that weights that
    act (a TorchScript writing files) reach nothing outside the package and the scratch folder."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if confined is not None:
        from zoo.bioimage.sandbox import enter_sandbox

        root, scratch, device = confined
        os.chdir(scratch)
        enter_sandbox([Path(root)], [Path(scratch)], device)
    # TorchScript is the slower runtime of the two here: it gets every core, onnxruntime its share, so that the
    # TorchScript runs (the last to finish) use the cores onnxruntime leaves idle once its runs are done
    threads = (os.cpu_count() or 1) if weight_format == "torchscript" else _threads(workers)
    gc.disable()  # while the runtime imports (torch's: a tenth less CPU), see zoo.validators._garbage_collection_paused
    try:
        runtime = __import__(WORKER_FORMATS[weight_format])
        if weight_format == "torchscript":
            runtime.set_num_threads(threads)
    except BaseException:  # the load request reports it
        pass
    finally:
        gc.freeze()  # this process ends with the validation: the collector need not scan the runtime's objects again
        gc.enable()
    backend = None
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            break
        try:
            if request[0] == "load":
                from zoo.bioimage.runtimes import load_backend

                options = {"threads": threads} if weight_format == "onnx" else {}
                backend = load_backend(weight_format, Path(request[1]), device=request[2], **options)
                reply: tuple = ("ok", None)
            else:
                reply = ("ok", backend.predict(*request[1]))
        except BaseException as e:  # every failure goes back as the child's exception
            reply = ("error", type(e).__module__, type(e).__name__, str(e))
        try:
            connection.send(reply)
        except (OSError, ValueError):
            break
    connection.close()
    os._exit(0)  # skip tearing down the runtime


class WorkerClient:
    """The child's end of one worker: load a weight file, run arrays through it."""

    def __init__(self, weight_format: str, pid: int, connection) -> None:
        self.weight_format = weight_format
        self.pid = pid
        self._connection = connection

    def _call(self, *request) -> Any:
        try:
            self._connection.send(request)
            reply = self._connection.recv()
        except (EOFError, OSError) as e:
            raise RuntimeError(
                f"the {self.weight_format} runtime process ended without answering (a native crash or the "
                "system's out-of-memory killer)"
            ) from e
        if reply[0] == "ok":
            return reply[1]
        _, module, name, message = reply
        raise _remote_error(module, name)(message)

    def load(self, path: Path, device: str) -> None:
        self._call("load", str(path), device)

    def run(self, arrays: list) -> list:
        return self._call("run", list(arrays))


_ERRORS: dict[tuple[str, str], type] = {}


def _remote_error(module: str, name: str) -> type:
    """An exception class with the worker's exception's name (findings quote it), raised in the child."""
    if (module, name) not in _ERRORS:
        _ERRORS[(module, name)] = type(name, (RuntimeError,), {"__module__": module})
    return _ERRORS[(module, name)]


def worker_adapter(descr, client: WorkerClient, device: str):
    """A bioimageio.core model adapter whose forward runs in the worker: bioimageio.core still orders the axes,
    names the outputs and restores the batch as for its own adapters. None when the worker cannot run this
    description's weights (a file not on disk, ONNX external data, optional inputs): bioimageio.core's adapter
    runs them in the child then."""
    from bioimageio.core._model_adapter import LocalModelAdapter

    weights = getattr(descr.weights, client.weight_format, None)
    path = local_weight_file(weights)
    if path is None or getattr(weights, "external_data", None) is not None:
        return None
    if any(getattr(t, "optional", False) for t in descr.inputs):
        return None

    class WorkerModelAdapter(LocalModelAdapter):
        def _parse_devices(self, devices):
            return [device]

        def _init_model_on_device(self, device_):
            client.load(path, device_)
            return client

        def _forward_impl(self, device_, model, input_arrays):
            return model.run(input_arrays)

        def _cleanup_pre_model_deletion(self, device_, model) -> None:
            return

        def _cleanup_post_model_deletion(self, device_) -> None:
            return

    return WorkerModelAdapter(model_description=descr, devices=[device])


def local_weight_file(weights) -> Path | None:
    """The weight entry's file on disk, None when it is a URL or absent."""
    source = getattr(weights, "source", None)
    if source is None:
        return None
    try:
        path = source.absolute() if hasattr(source, "absolute") else None
    except Exception:
        return None
    if isinstance(path, Path) and path.is_file():
        return path
    return None


def tree_pids(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc; just `pid` elsewhere)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                    todo.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def worker_clients(job) -> dict[str, WorkerClient]:
    """The child's clients of the workers the parent started for `job` (none without isolation)."""
    return {wf: WorkerClient(wf, pid, connection) for wf, (pid, connection) in getattr(job, "workers", {}).items()}


__all__ = [
    "WORKER_FORMATS",
    "WorkerClient",
    "serve",
    "tree_pids",
    "worker_adapter",
    "worker_clients",
    "worker_formats",
]
