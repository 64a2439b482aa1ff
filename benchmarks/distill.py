"""Distillation on BBC News: the demo's fine-tuned MiniLM as teacher; 3- and 2-layer students cut from it, and
the bundled (untuned) MiniLM as a student that starts from general weights.

The teacher's own split is rebuilt (``m3cls demo``: 10 % stratified validation, seed 42, read as training read
it). Students learn from the teacher's probabilities on the teacher's training texts only (no labels given),
with ``m3cls distill``; everything is scored on the teacher's validation texts against their true labels. Each
run is a fresh ``m3cls`` process; each prediction timing is a fresh Python process that loads the model, warms up
on 16 texts, then times ``Classifier.predict`` over the validation texts ``--repeats`` times (the median is the
figure), in the default precision (``auto``: bf16 autocast where the CPU has it) and in fp32.

    m3cls demo --workdir demo                                        # the teacher (several minutes)
    python benchmarks/distill.py --teacher demo/model --data demo/bbc_messages.json --workdir runs/distill
        [--epochs 2] [--students 3,2,bundled]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TIMER = r"""
import json, statistics, sys, time
from m3cls import Classifier
from m3cls.metrics.classification import classification_report
model, data, precision, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [json.loads(line) for line in open(data)]
texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
clf = Classifier.from_pretrained(model, precision=precision, batch_size=32)
clf.predict(texts[:16])
times = []
for _ in range(repeats):
    start = time.perf_counter()
    predictions = clf.predict(texts)
    times.append(time.perf_counter() - start)
names = clf.labels.names
report = classification_report([names.index(y) for y in labels], [p.label_id for p in predictions], names)
print(json.dumps({"macro_f1": report["macro_f1"], "accuracy": report["accuracy"],
                  "texts_per_s": len(texts) / statistics.median(times), "precision": precision}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teacher", default="demo/model")
    p.add_argument("--data", default="demo/bbc_messages.json")
    p.add_argument("--workdir", default="runs/distill")
    p.add_argument("--epochs", default="2")
    p.add_argument("--students", default="3,2,bundled")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    train_file, val_file = teacher_split(a.teacher, a.data, a.workdir)
    results = {"teacher": {"path": a.teacher, **score(a.teacher, val_file, a.repeats)}}
    for student in a.students.split(","):
        out = os.path.join(a.workdir, f"student-{student}")
        seconds = distil(a.teacher, student, train_file, out, a.epochs)
        results[student] = {"path": out, "distill_seconds": round(seconds, 1), **score(out, val_file, a.repeats)}
        print(json.dumps({student: results[student]}), file=sys.stderr)
    teacher = results["teacher"]
    for name, r in results.items():
        r["f1_share_of_teacher"] = round(r["macro_f1"] / teacher["macro_f1"], 4)
        r["speed_over_teacher"] = round(r["texts_per_s"] / teacher["texts_per_s"], 3)
        r["speed_over_teacher_fp32"] = round(r["fp32"]["texts_per_s"] / teacher["fp32"]["texts_per_s"], 3)
    text = json.dumps(results, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    print(text)
    return 0


def teacher_split(teacher: str, data: str, workdir: str) -> tuple[str, str]:
    """The teacher's training texts (no labels) and validation records, as its training split them."""
    from m3cls.model.folder import read_contract
    from m3cls.training.config import TrainConfig
    from m3cls.training.inputs import prepare_data

    contract = read_contract(teacher)
    config = TrainConfig(data_path=data, max_length=contract.max_length, **contract.read_options)
    prepared = prepare_data(config, 42)
    train_file, val_file = os.path.join(workdir, "train_texts.jsonl"), os.path.join(workdir, "validation.jsonl")
    with open(train_file, "w") as f:
        f.writelines(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in prepared.train.texts)
    with open(val_file, "w") as f:
        f.writelines(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                     for t, y in zip(prepared.validation.texts, prepared.validation.labels))
    print(f"teacher split: {len(prepared.train)} training texts, {len(prepared.validation)} validation",
          file=sys.stderr)
    return train_file, val_file


def distil(teacher: str, student: str, train_file: str, out: str, epochs: str) -> float:
    which = ["--student", "bundled"] if student == "bundled" else ["--student_layers", student]
    command = [sys.executable, "-m", "m3cls", "distill", "--teacher", teacher, *which, "--data_path", train_file,
               "--output_dir", out, "--overwrite_output_dir", "--num_train_epochs", epochs, "--learning_rate",
               "1e-4", "--per_device_train_batch_size", "16", "--save_total_limit", "1", "--no_report",
               "--no_baseline", "--no_ladder"]
    print("running:", " ".join(command), file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def score(model: str, val_file: str, repeats: int) -> dict:
    runs = {}
    for precision in ("auto", "fp32"):
        done = subprocess.run([sys.executable, "-c", TIMER, model, val_file, precision, str(repeats)], check=True,
                              capture_output=True, text=True)
        runs[precision] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**runs["auto"], "fp32": runs["fp32"]}


if __name__ == "__main__":
    sys.exit(main())
