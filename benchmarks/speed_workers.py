"""The measured sides of benchmarks/speed.py, one per fresh process, all timed the same way.

``python benchmarks/speed_workers.py KIND --args JSON`` prints one JSON line. Every worker reports
``setup_s`` (from its first line, imports included, until the model is loaded and ready) and ``work_s``
(from the first read of the input file until the last output is written and closed), so both sides pay for
tokenizing, batching, writing and any warm-up of their own, and nothing is run twice. Quality figures
(accuracy, macro-F1) are computed after the clock stops.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import that a side needs: setup starts here

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

BATCH = 32


def read_rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_labels(path: str, labels: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"index": i, "label": y}) + "\n" for i, y in enumerate(labels))


def quality(predicted: list[str], path: str) -> dict:
    from m3cls.metrics.classification import classification_report

    truth = [r["label"] for r in read_rows(path)]
    names = sorted(set(truth) | set(predicted))
    report = classification_report([names.index(y) for y in truth], [names.index(p) for p in predicted], names)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


def _timed_calls(module, name: str, spent: list) -> None:
    """Wrap ``module.name`` so the seconds spent in it are added to ``spent`` (model loading = setup)."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    setattr(module, name, wrapper)


# -- prediction ----------------------------------------------------------------------------------------------
def pipeline_predict(a: dict) -> dict:
    """transformers.pipeline("text-classification"), batch 32 (or ``batch``), truncation at max_length; fp32 or
    bf16 weights."""
    import torch
    from transformers import pipeline

    dtype = torch.bfloat16 if a["precision"] == "bf16" else None
    pipe = pipeline("text-classification", model=a["model"], tokenizer=a["model"], device="cpu", dtype=dtype)
    setup = time.perf_counter() - T0
    start = time.perf_counter()
    texts = [r["text"] for r in read_rows(a["test"])]
    labels = [o["label"] for o in pipe(texts, batch_size=a.get("batch", BATCH), truncation=True, max_length=a["max_length"])]
    write_labels(a["out"], labels)
    return {"setup_s": setup, "work_s": time.perf_counter() - start, "n": len(texts), "labels": labels}


def onnxruntime_predict(a: dict) -> dict:
    """A hand export run with onnxruntime the plain way: tokenizer with padding=True, batches of 32, in order."""
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(a["model"])
    id2label = AutoConfig.from_pretrained(a["model"]).id2label
    session = ort.InferenceSession(a["onnx"], providers=["CPUExecutionProvider"])
    setup = time.perf_counter() - T0
    start = time.perf_counter()
    texts = [r["text"] for r in read_rows(a["test"])]
    labels = []
    for i in range(0, len(texts), BATCH):
        enc = tokenizer(texts[i: i + BATCH], padding=True, truncation=True, max_length=a["max_length"],
                        return_tensors="np")
        feed = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
        labels += [id2label[int(k)] for k in session.run(None, feed)[0].argmax(-1)]
    write_labels(a["out"], labels)
    return {"setup_s": setup, "work_s": time.perf_counter() - start, "n": len(texts), "labels": labels}


def crossencoder_predict(a: dict) -> dict:
    """sentence-transformers' CrossEncoder (fp32, batch 32, sorted by length by CrossEncoder itself).

    In sentence-transformers 6, ``CrossEncoder.predict`` reads a list of strings as one text pair, so the
    texts go to ``CrossEncoder._inference``, the batched loop that ``predict`` runs for a list of inputs.
    """
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(a["model"], device="cpu", max_length=a["max_length"])
    id2label = model.config.id2label
    setup = time.perf_counter() - T0
    start = time.perf_counter()
    texts = [r["text"] for r in read_rows(a["test"])]
    scores = model._inference(texts, prompt=None, batch_size=BATCH, show_progress_bar=False, activation_fn=None,
                              apply_softmax=True)
    labels = [id2label[int(k)] for k in scores.argmax(-1)]
    write_labels(a["out"], labels)
    return {"setup_s": setup, "work_s": time.perf_counter() - start, "n": len(texts), "labels": labels}


def m3cls_predict(a: dict) -> dict:
    """``m3cls predict --input --output`` through the CLI; setup is the imports plus ``load_classifier``."""
    import m3cls.cli.predict as predict_cli
    from m3cls.cli import main

    spent: list[float] = []
    _timed_calls(predict_cli, "load_classifier", spent)
    start = time.perf_counter()
    if main(["predict", "--model_path", a["model"], "--input", a["test"], "--output", a["out"], "--max_length",
             str(a["max_length"]), *a.get("flags", [])]) != 0:
        raise SystemExit("m3cls predict failed")
    work = time.perf_counter() - start - sum(spent)
    rows = read_rows(a["out"])
    return {"setup_s": start - T0 + sum(spent), "work_s": work, "n": len(rows), "labels": [r["label"] for r in rows],
            "probabilities": [r["probabilities"] for r in rows] if a.get("keep_probabilities") else None}


# -- training ------------------------------------------------------------------------------------------------
def reference_train(a: dict) -> dict:
    """The reference approach: every text padded to max_length, the model's dropout, Trainer defaults; fp32 or
    ``bf16=True``. Timed work: read and tokenize, train, score the validation file once, save the model."""
    import numpy as np
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from m3cls.model.loading import resolve_model_name  # "bundled" -> the packaged model's folder

    names, base = a["labels"], resolve_model_name(a["base"])
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    setup = time.perf_counter() - T0
    start = time.perf_counter()

    def encode(rows):
        enc = tokenizer([r["text"] for r in rows], padding="max_length", truncation=True, max_length=a["max_length"])
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": names.index(r["label"])} for i, r in enumerate(rows)]

    train, val = encode(read_rows(a["train"])), encode(read_rows(a["test"]))
    out = tempfile.mkdtemp(prefix="m3cls-ref-")
    args = TrainingArguments(output_dir=out, num_train_epochs=a["epochs"], per_device_train_batch_size=16,
                             learning_rate=1e-4, save_strategy="no", report_to="none", disable_tqdm=True,
                             logging_strategy="no", seed=42, dataloader_pin_memory=False, use_cpu=True,
                             bf16=a["precision"] == "bf16")
    trainer = Trainer(model=model, args=args, train_dataset=train)
    loop = trainer.train().metrics["train_runtime"]
    predicted = trainer.predict(val).predictions.argmax(-1)
    trainer.save_model(out)
    work = time.perf_counter() - start
    labels = [names[int(k)] for k in np.asarray(predicted)]
    return {"setup_s": setup, "work_s": work, "n": len(train) * a["epochs"], "loop_s": loop,
            "steps": trainer.state.global_step, "labels": labels}


def m3cls_train(a: dict) -> dict:
    """``m3cls train`` through the CLI with its defaults; setup is the imports plus loading the model.

    Timed work: read and tokenize, train, score and calibrate on the validation file, save the model folder.
    """
    import m3cls.model.loading as modeling
    import m3cls.training.run  # noqa: F401  (imports are setup, as on the reference side)
    from m3cls.cli import main

    spent: list[float] = []
    _timed_calls(modeling, "load_model", spent)
    out = a.get("out_model") or tempfile.mkdtemp(prefix="m3cls-train-")
    flags = ["--model_name_or_path", a["base"], "--data_path", a["train"], "--validation_path", a["test"],
             "--output_dir", out, "--overwrite_output_dir", "--max_length", str(a["max_length"]),
             "--num_train_epochs", str(a["epochs"]), "--learning_rate", "1e-4", "--per_device_train_batch_size",
             "16", "--eval_strategy", "no", "--save_strategy", "no", "--no_baseline", "--no_report",
             *a.get("flags", [])]
    start = time.perf_counter()
    if main(["train", *flags]) != 0:
        raise SystemExit("m3cls train failed")
    work = time.perf_counter() - start - sum(spent)
    meta = json.load(open(os.path.join(out, "m3cls.json"), encoding="utf-8"))
    training = meta["training"]
    rows = [json.loads(line) for line in open(os.path.join(out, "validation_predictions.jsonl"), encoding="utf-8")]
    labels = [max(r["probabilities"], key=r["probabilities"].get) for r in rows]
    return {"setup_s": start - T0 + sum(spent), "work_s": work, "n": len(read_rows(a["train"])) * a["epochs"],
            "loop_s": training["train_runtime"], "precision": meta["precision"],
            "steps": round(training["train_steps_per_second"] * training["train_runtime"]), "labels": labels}


def onnx_hand_export(a: dict) -> dict:
    """What a user does by hand: torch.onnx.export of the transformers model (its default attention), fp32."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(a["model"]).eval()
    sample = AutoTokenizer.from_pretrained(a["model"])(["an example", "another example text"], padding=True,
                                                        return_tensors="pt")
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"]), a["onnx"],
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return {"setup_s": 0.0, "work_s": time.perf_counter() - T0, "n": 0, "labels": []}


WORKERS = {f.__name__: f for f in (pipeline_predict, onnxruntime_predict, crossencoder_predict, m3cls_predict,
                                   reference_train, m3cls_train, onnx_hand_export)}


def main() -> None:
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    result = WORKERS[kind](args)
    if args.get("test") and result["labels"]:
        result.update(quality(result["labels"], args["test"]))
    if not args.get("keep_labels"):
        result.pop("labels")
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
