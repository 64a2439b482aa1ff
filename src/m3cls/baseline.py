"""A TF-IDF + logistic regression baseline, to tell whether the transformer is worth its cost."""

from __future__ import annotations

import logging

import numpy as np

from .labels import LabelSet
from .metrics import classification_report

logger = logging.getLogger(__name__)


def tfidf_baseline(train_texts: list[str], train_labels: list[str], val_texts: list[str],
                   val_labels: list[str], labels: LabelSet) -> dict:
    """Fit word+character TF-IDF and logistic regression on train; score accuracy and macro-F1 on validation."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2), max_features=200_000),
                          TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 4),
                                          max_features=200_000))
    model = make_pipeline(features, LogisticRegression(max_iter=2000, C=10.0))
    model.fit(train_texts, labels.encode(train_labels, "train"))
    predicted = model.predict(val_texts)
    report = classification_report(np.asarray(labels.encode(val_labels, "validation")), predicted, labels.names)
    logger.info("baseline (TF-IDF + logistic regression): accuracy %.4f, macro-F1 %.4f", report["accuracy"],
                report["macro_f1"])
    return {"name": "tfidf_logreg", "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "per_class": report["per_class"]}
