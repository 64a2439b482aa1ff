"""m3cls: fine-tune BGE-M3 (or any Hugging Face encoder) into a text classifier, then use it fast.

Example::

    >>> from m3cls import Classifier
    >>> clf = Classifier.from_pretrained("demo/model")                     # doctest: +SKIP
    >>> clf.predict(["Shares fell after the results."], temperature=1.0)   # doctest: +SKIP
"""

__version__ = "0.1.0"
__all__ = ["Classifier", "Prediction", "TrainConfig", "train", "evaluate", "calibrate", "__version__"]


def __getattr__(name):  # heavy imports (torch, transformers) only when asked for
    if name in ("Classifier", "Prediction"):
        from .inference import classifier as inference

        return getattr(inference, name)
    if name in ("TrainConfig", "train"):
        from . import training

        return getattr(training, name)
    if name == "evaluate":
        from .evaluation.evaluate import evaluate

        return evaluate
    if name == "calibrate":
        from .evaluation.calibrate import calibrate

        return calibrate
    raise AttributeError(f"module 'm3cls' has no attribute {name!r}")
