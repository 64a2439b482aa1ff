"""TF-IDF baselines, to tell whether the transformer is worth its cost: logistic regression (single-label),
one-vs-rest logistic regression (multi-label, decisions at probability 0.5) and ridge regression."""

from __future__ import annotations

import logging

import numpy as np

from ..metrics.classification import classification_report
from .labels import LabelSet

logger = logging.getLogger(__name__)


def tfidf_features():
    """Word (1-2 grams) and character (2-4 grams) TF-IDF, as every baseline here uses."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    return make_union(TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2), max_features=200_000),
                      TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 4),
                                      max_features=200_000))


def tfidf_baseline(train_texts: list[str], train_labels: list[str], val_texts: list[str],
                   val_labels: list[str], labels: LabelSet) -> dict:
    """Fit word+character TF-IDF and logistic regression on train; score accuracy and macro-F1 on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(tfidf_features(), LogisticRegression(max_iter=2000, C=10.0))
    model.fit(train_texts, labels.encode(train_labels, "train"))
    predicted = model.predict(val_texts)
    report = classification_report(np.asarray(labels.encode(val_labels, "validation")), predicted, labels.names)
    logger.info("baseline (TF-IDF + logistic regression): accuracy %.4f, macro-F1 %.4f", report["accuracy"],
                report["macro_f1"])
    return {"name": "tfidf_logreg", "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "per_class": report["per_class"]}


def multilabel_baseline(train_texts: list[str], train_truth: np.ndarray, val_texts: list[str],
                        val_truth: np.ndarray, names: tuple[str, ...]) -> dict:
    """TF-IDF + one logistic regression per label; a label is predicted at probability 0.5 or more."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    from ..metrics.multilabel import multilabel_report

    model = make_pipeline(tfidf_features(), OneVsRestClassifier(LogisticRegression(max_iter=2000, C=10.0)))
    columns = np.asarray(train_truth)
    present = columns.any(axis=0) & ~columns.all(axis=0)  # a label always or never there is a constant
    predicted = np.tile(columns[:1].astype(np.int64) if len(columns) else 0, (len(val_texts), 1))
    if present.any():
        model.fit(train_texts, columns[:, present])
        probabilities = np.asarray(model.predict_proba(val_texts))
        predicted[:, present] = probabilities[:, -int(present.sum()):] >= 0.5  # one label: (no, yes) columns
    report = multilabel_report(val_truth, predicted, names)
    logger.info("baseline (TF-IDF + one-vs-rest logistic regression): micro-F1 %.4f, macro-F1 %.4f",
                report["micro_f1"], report["macro_f1"])
    return {"name": "tfidf_ovr_logreg", **{k: v for k, v in report.items() if k != "label_cardinality"}}


def regression_baseline(train_texts: list[str], train_targets: list[float], val_texts: list[str],
                        val_targets: list[float]) -> dict:
    """TF-IDF + ridge regression, its strength chosen by leave-one-out cross-validation on train."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    from ..metrics.regression import regression_report

    model = make_pipeline(tfidf_features(), RidgeCV(alphas=(0.1, 0.3, 1.0, 3.0, 10.0)))
    model.fit(train_texts, np.asarray(train_targets, dtype=np.float64))
    report = regression_report(np.asarray(val_targets), model.predict(val_texts))
    logger.info("baseline (TF-IDF + ridge regression): RMSE %.4f, R2 %.4f", report["rmse"], report["r2"])
    return {"name": "tfidf_ridge", **report}
