"""m3cls select: the ranking rule on constructed cases, the command end to end, the cache, bad input."""

import json

import numpy as np
import pytest
from conftest import make_texts, write_json

from m3cls.cli import main
from m3cls.errors import ConfigError
from m3cls.evaluation.selection import disagreement, rank
from m3cls.tasks import get_task

ENCODER = ["--max_length", "48", "--pooling", "mean", "--precision", "fp32"]


def test_a_half_half_text_ranks_above_a_sure_one():
    p = np.array([[0.99, 0.01], [0.5, 0.5], [0.7, 0.3]])
    x = np.eye(3)
    for strategy in ("uncertainty", "hybrid"):
        assert [c.index for c in rank(p, x, strategy, 3)] == [1, 2, 0], strategy
    first = rank(p, x, "uncertainty", 1)[0]
    assert first.score == pytest.approx(1.0) and first.numbers["margin"] == pytest.approx(0.0)


def test_hybrid_does_not_choose_two_identical_uncertain_texts():
    p = np.array([[0.5, 0.5], [0.5, 0.5], [0.8, 0.2]])
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert [c.index for c in rank(p, x, "hybrid", 2)] == [0, 2]
    assert [c.index for c in rank(p, x, "uncertainty", 2)] == [0, 1]  # uncertainty alone would
    assert [c.index for c in rank(p, x, "diversity", 2, centers=np.array([[1.0, 0.0]]))][0] == 2


def test_multilabel_uncertainty_and_disagreement():
    p = np.array([[0.95, 0.02], [0.5, 0.9], [0.5, 0.5]])
    assert [c.index for c in rank(p, np.eye(3), "uncertainty", 3, task=get_task("multi_label"))] == [2, 1, 0]
    assert disagreement([["a", "b"], ["a", "a", "a"], ["a"], []], 2).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_each_task_says_how_unsure_it_is():
    u, margin, entropy = get_task("multi_label").uncertainty(np.array([[0.9, 0.5]]))  # each label on its own
    assert (u[0], margin[0]) == pytest.approx((0.6, 0.0))
    assert entropy[0] == pytest.approx((-(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1)) + 1.0) / 2)
    u, margin, entropy = get_task("single_label").uncertainty(np.array([[0.7, 0.2, 0.1]]))
    assert (u[0], margin[0]) == pytest.approx((0.5, 0.5))
    with pytest.raises(ConfigError, match="m3cls select ranks texts by class probabilities"):
        get_task("regression").uncertainty(np.array([[1.0]]))


def _files(tmp_path):
    labelled = make_texts(24, seed=3)
    pool = [t for t, _ in make_texts(30, seed=4)]
    lab = write_json(tmp_path / "labelled.json", [{"text": t, "label": y} for t, y in labelled])
    pool_file = tmp_path / "pool.txt"
    pool_file.write_text("\n".join(pool) + "\n")
    return lab, str(pool_file), labelled, pool


def _run(tiny_xlmr, lab, pool, out, *flags):
    return main(["select", "--model_name_or_path", tiny_xlmr, "--labelled", lab, "--pool", pool, "--output",
                 str(out), *ENCODER, *flags])


def test_select_writes_ranked_lines_and_second_round_embeds_nothing(tiny_xlmr, tmp_path, monkeypatch):
    from m3cls.probe.embeddings import Embedder

    lab, pool_file, _, pool = _files(tmp_path)
    computed = []
    original = Embedder._compute
    monkeypatch.setattr(Embedder, "_compute", lambda self, texts: computed.append(len(texts)) or original(self, texts))
    cache = ["--cache_dir", str(tmp_path / "cache")]
    assert _run(tiny_xlmr, lab, pool_file, tmp_path / "a.jsonl", "--budget", "5", *cache) == 0
    rows = [json.loads(line) for line in open(tmp_path / "a.jsonl")]
    assert len(rows) == 5 and len({r["index"] for r in rows}) == 5
    assert all(pool[r["index"]] == r["text"] for r in rows)
    assert set(rows[0]) >= {"index", "text", "score", "reason", "margin", "entropy", "distance", "probabilities"}
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)
    assert sum(computed) == 24 + 30
    computed.clear()
    assert _run(tiny_xlmr, lab, pool_file, tmp_path / "b.jsonl", "--budget", "5", *cache) == 0
    assert computed == [] and open(tmp_path / "b.jsonl").read() == open(tmp_path / "a.jsonl").read()


def _cosines(model, texts, others):
    from m3cls.evaluation.selection import unit_rows
    from m3cls.probe.embeddings import Embedder

    embed = Embedder(model, max_length=48, pooling="mean", precision="fp32").embed
    return unit_rows(embed(texts)) @ unit_rows(embed(others)).T


def test_exclude_skips_texts_and_their_near_duplicates(tiny_xlmr, tmp_path):
    lab, _, _, pool = _files(tmp_path)
    near = pool[2] + " the"
    pool_file = tmp_path / "pool2.txt"
    pool_file.write_text("\n".join(pool + [near]) + "\n")
    exclude = tmp_path / "exclude.txt"
    exclude.write_text(pool[0].upper() + "\n" + pool[2] + "\n")
    cos = _cosines(tiny_xlmr, pool + [near], [pool[2]])[:, 0]
    others = max(c for i, c in enumerate(cos[:-1]) if i != 2)
    assert cos[-1] > others  # the threshold below separates the near-duplicate from the rest
    out = tmp_path / "next.jsonl"
    assert _run(tiny_xlmr, lab, str(pool_file), out, "--budget", str(len(pool) - 2), "--exclude", str(exclude),
                "--near_duplicate_cosine", str((cos[-1] + others) / 2), "--strategy", "random") == 0
    chosen = {json.loads(line)["index"] for line in open(out)}
    assert chosen == set(range(len(pool) + 1)) - {0, 2, len(pool)}


def test_bad_budget_and_exhausted_pool_exit_2_and_write_nothing(tiny_xlmr, tmp_path, capsys):
    lab, pool_file, labelled, _ = _files(tmp_path)
    out = tmp_path / "next.jsonl"
    for budget in ("0", "31"):
        assert _run(tiny_xlmr, lab, pool_file, out, "--budget", budget) == 2
        assert "--budget" in capsys.readouterr().err.strip() and not out.exists()
    same = tmp_path / "same.txt"
    same.write_text("\n".join(t for t, _ in labelled) + "\n")
    assert _run(tiny_xlmr, lab, str(same), out, "--budget", "3") == 2
    err = capsys.readouterr().err.strip()
    assert "nothing is left to label" in err and len(err.splitlines()) == 1 and not out.exists()


def test_disagreement_ranks_texts_annotators_disagree_on(tiny_xlmr, tmp_path):
    pairs = make_texts(16, seed=5)
    rows = [{"text": t, "label": y, "annotator": "ann1"} for t, y in pairs]
    rows += [{"text": t, "label": y, "annotator": "ann2"} for t, y in pairs[:12]]
    flipped = {"GPT": "Human", "Human": "GPT"}
    rows += [{"text": pairs[i][0], "label": flipped[pairs[i][1]], "annotator": "ann3"} for i in (3, 7)]
    lab = write_json(tmp_path / "votes.json", rows)
    out = tmp_path / "next.jsonl"
    assert main(["select", "--model_name_or_path", tiny_xlmr, "--labelled", lab, "--strategy", "disagreement",
                 "--budget", "2", "--output", str(out), *ENCODER]) == 0
    chosen = [json.loads(line) for line in open(out)]
    assert sorted(r["index"] for r in chosen) == [3, 7]
    assert all(r["disagreement"] > 0 for r in chosen)


def test_saved_multilabel_model_and_cached_logits(multilabel_run, tmp_path, monkeypatch):
    from m3cls.inference.classifier import Classifier

    calls = []
    original = Classifier.logits
    monkeypatch.setattr(Classifier, "logits", lambda self, texts: calls.append(len(texts)) or original(self, texts))
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(multilabel_run["val_texts"]) + "\n")
    args = ["select", "--model_path", multilabel_run["model"], "--pool", str(pool), "--budget", "4",
            "--cache_dir", str(tmp_path / "cache"), "--precision", "fp32"]
    for name in ("a", "b"):
        assert main([*args, "--output", str(tmp_path / f"{name}.jsonl")]) == 0
    assert calls == [40]
    rows = [json.loads(line) for line in open(tmp_path / "a.jsonl")]
    assert len(rows) == 4 and len(rows[0]["probabilities"]) > 1
    assert all(0.0 <= r["uncertainty"] <= 1.0 for r in rows)


def test_regression_model_is_refused_in_one_line(regression_run, tmp_path, capsys):
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(regression_run["val_texts"]) + "\n")
    out = tmp_path / "next.jsonl"
    assert main(["select", "--model_path", regression_run["model"], "--pool", str(pool), "--budget", "2",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "regression" in err and len(err.splitlines()) == 1 and not out.exists()
