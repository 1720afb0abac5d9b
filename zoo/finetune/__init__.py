"""Fine-tuning: any package zoo can read, trained further on the user's images and shared with its lineage.

`trainable` (the package's weights as a module that trains, and why that format; `onnx_torch` translates ONNX),
`losses` (the loss and metric from the package's output), `processing` and `data` (the user's folder through the
package's own pre-processing), `run` (the run: before, the shared training loop, after), `lineage` and `card` (the
new package with its `parent` link and the record of the run). `zoo.api.finetune` and `zoo finetune` call `run`."""

from zoo.finetune.run import FinetuneResult, finetune_package
from zoo.finetune.settings import FinetuneConfig, finetune_config

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune_config", "finetune_package"]
