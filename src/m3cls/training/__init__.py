"""Training: ``TrainConfig`` (m3cls' flags), ``train`` (the run), and the pieces it is made of.

- ``config``: TrainConfig and its checks;
- ``request``: TrainRequest, one run as asked (TrainConfig, TrainingArguments values, typed flags), checked when
  built; what train, the probe, cv, audit and tune take;
- ``inputs``: reading, splitting and tokenizing the data;
- ``args``: TrainingArguments built once with the final precision and cadence;
- ``trainer``: the Trainer, its callbacks and metrics;
- ``checkpoints``: resume and Ctrl-C;
- ``save``: the output folder and the staged final save;
- ``run``: ``train`` itself.
"""

from .config import TrainConfig, TrainResult
from .request import TrainRequest
from .run import train

__all__ = ["TrainConfig", "TrainRequest", "TrainResult", "train"]
