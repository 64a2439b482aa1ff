"""Two or three examples at the end of each command's ``--help`` (and on the docs' reference page).

Each example is a ``("# what it does", "the command")`` pair; every flag in them is checked against the
command's parser by the test suite, so an example cannot name a flag that does not exist.
"""

EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (
        ("# fine-tune on a CSV with text and label columns", "m3cls train --data_path data.csv --output_dir model"),
        ("# minutes on a CPU: a probe on the frozen encoder",
         "m3cls train --data_path data.csv --output_dir model --method probe"),
        ("# the reference workflow: BGE-M3, messages JSON, Human/GPT",
         "m3cls train --model_name_or_path BAAI/bge-m3 --data_path train.json --labels Human,GPT "
         "--output_dir detector --num_train_epochs 3 --learning_rate 2e-5"),
    ),
    "cv": (
        ("# 5-fold cross-validation of the probe", "m3cls cv --data_path data.csv --output_dir cv --method probe"),
        ("# fine-tuning, folds kept by source document",
         "m3cls cv --data_path data.jsonl --group_column doc_id --output_dir cv --folds 3"),
    ),
    "audit": (
        ("# rank likely label errors (probe folds)", "m3cls audit --data_path data.csv --output_dir audit"),
        ("# with fine-tuned folds", "m3cls audit --data_path data.csv --output_dir audit --method finetune"),
    ),
    "predict": (
        ("# one text, printed for a person", "m3cls predict --model_path model --text \"Some text\""),
        ("# a file to JSONL, bad records skipped",
         "m3cls predict --model_path model --input texts.txt --output out.jsonl --on_error skip"),
        ("# long documents in windows, to CSV", "m3cls predict --model_path model --input docs.jsonl "
                                                "--long_text chunks --output out.csv"),
    ),
    "evaluate": (
        ("# the scores and an HTML report", "m3cls evaluate --model_path model --data_path test.csv --report rep"),
        ("# each record's probabilities too", "m3cls evaluate --model_path model --data_path test.csv "
                                              "--predictions test_predictions.jsonl"),
    ),
    "calibrate": (
        ("# refit the temperature", "m3cls calibrate --model_path model --data_path validation.csv"),
        ("# a threshold with at most 1 % false positives",
         "m3cls calibrate --model_path model --data_path validation.csv --positive_label GPT --target_fpr 0.01"),
    ),
    "inspect": (
        ("# balance, duplicates, leakage", "m3cls inspect --data_path data.csv"),
        ("# with token lengths for a model", "m3cls inspect --data_path data.csv --model_name_or_path bundled"),
    ),
    "serve": (
        ("# on loopback, port 8000", "m3cls serve --model_path model"),
        ("# on every interface, with an API key",
         "M3CLS_API_KEY=secret m3cls serve --model_path model --host 0.0.0.0 --port 8080"),
    ),
    "export": (
        ("# ONNX", "m3cls export --model_path model --output model-onnx"),
        ("# ONNX with static int8", "m3cls export --model_path model --output model-int8 --quantize int8"),
    ),
    "tune": (
        ("# 20 trials around a config file", "m3cls tune --config train_config.yaml --output_dir tuned"),
        ("# ten trials, an hour at most", "m3cls tune --data_path data.csv --output_dir tuned --n_trials 10 "
                                          "--timeout 3600"),
    ),
    "stress": (
        ("# every perturbation, detection of GPT at 1% and 5% FPR",
         "m3cls stress --model_path detector --data_path test.json --positive_label GPT --output stress.json"),
        ("# two perturbations, with a report page",
         "m3cls stress --model_path model --data_path test.csv --perturbations homoglyphs,zero_width "
         "--report stress"),
    ),
    "select": (
        ("# the next 100 texts to label, by the saved model",
         "m3cls select --model_path model --pool unlabelled.txt --budget 100 --output next.jsonl"),
        ("# a probe fitted on the fly on what is labelled so far",
         "m3cls select --model_name_or_path bundled --labelled labelled.csv --pool pool.txt --budget 50 "
         "--output next.jsonl"),
    ),
    "distill": (
        ("# a 3-layer student from the teacher's own encoder",
         "m3cls distill --teacher big --student_layers 3 --data_path texts.jsonl --output_dir small"),
        ("# the bundled MiniLM as the student",
         "m3cls distill --teacher big --student bundled --data_path texts.jsonl --output_dir small"),
    ),
    "demo": (
        ("# the bundled MiniLM on BBC News", "m3cls demo"),
        ("# one epoch, in another folder", "m3cls demo --workdir /tmp/demo --num_train_epochs 1"),
    ),
}
