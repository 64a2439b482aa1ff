"""TF-IDF baselines, to tell whether the transformer is worth its cost: logistic regression (single-label),
one-vs-rest logistic regression (multi-label, decisions at probability 0.5) and ridge regression.

Training fits each on the run's training split and scores it on the same validation texts as the model.
``evaluate --report`` refits it on the evaluated file itself (:func:`refit_on_file`: a seeded k-fold split, each
text scored by a baseline fitted on the other folds), so the model and the baseline are scored on the same texts;
where the file cannot carry that (too few texts, one class), :func:`training_figure` labels the training run's
figure for what it is.
"""

from __future__ import annotations

import logging

import numpy as np

from ..metrics.classification import classification_report
from .labels import LabelSet

logger = logging.getLogger(__name__)

#: the baseline refit on an evaluated file: folds, the fewest texts it is refit on, the most (a seeded sample
#: above), and the seed of the split and the sample
FILE_FOLDS = 5
MIN_FILE_TEXTS = 10
MAX_FILE_TEXTS = 20_000
FILE_SEED = 0


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
    predicted = logreg_predict(train_texts, np.asarray(labels.encode(train_labels, "train")), val_texts)
    report = classification_report(np.asarray(labels.encode(val_labels, "validation")), predicted, labels.names)
    logger.info("baseline (TF-IDF + logistic regression): accuracy %.4f, macro-F1 %.4f", report["accuracy"],
                report["macro_f1"])
    return {"name": "tfidf_logreg", "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "per_class": report["per_class"]}


def logreg_predict(train_texts: list[str], train_ids: np.ndarray, test_texts: list[str]) -> np.ndarray:
    """Class ids of ``test_texts`` from TF-IDF + logistic regression fitted on the training texts' ids."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(tfidf_features(), LogisticRegression(max_iter=2000, C=10.0))
    return model.fit(train_texts, train_ids).predict(test_texts)


def multilabel_baseline(train_texts: list[str], train_truth: np.ndarray, val_texts: list[str],
                        val_truth: np.ndarray, names: tuple[str, ...]) -> dict:
    """TF-IDF + one logistic regression per label; a label is predicted at probability 0.5 or more."""
    from ..metrics.multilabel import multilabel_report

    report = multilabel_report(val_truth, ovr_predict(train_texts, np.asarray(train_truth), val_texts), names)
    logger.info("baseline (TF-IDF + one-vs-rest logistic regression): micro-F1 %.4f, macro-F1 %.4f",
                report["micro_f1"], report["macro_f1"])
    return {"name": "tfidf_ovr_logreg", **{k: v for k, v in report.items() if k != "label_cardinality"}}


def ovr_predict(train_texts: list[str], columns: np.ndarray, test_texts: list[str]) -> np.ndarray:
    """0/1 label rows of ``test_texts`` from TF-IDF + one logistic regression per label (at probability 0.5);
    a label always or never there in training is that constant."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(tfidf_features(), OneVsRestClassifier(LogisticRegression(max_iter=2000, C=10.0)))
    present = columns.any(axis=0) & ~columns.all(axis=0)
    predicted = np.tile(columns[:1].astype(np.int64) if len(columns) else 0, (len(test_texts), 1))
    if present.any():
        model.fit(train_texts, columns[:, present])
        probabilities = np.asarray(model.predict_proba(test_texts))
        predicted[:, present] = probabilities[:, -int(present.sum()):] >= 0.5  # one label: (no, yes) columns
    return predicted


def regression_baseline(train_texts: list[str], train_targets: list[float], val_texts: list[str],
                        val_targets: list[float]) -> dict:
    """TF-IDF + ridge regression, its strength chosen by leave-one-out cross-validation on train."""
    from ..metrics.regression import regression_report

    report = regression_report(np.asarray(val_targets), ridge_predict(train_texts, np.asarray(train_targets),
                                                                      val_texts))
    logger.info("baseline (TF-IDF + ridge regression): RMSE %.4f, R2 %.4f", report["rmse"], report["r2"])
    return {"name": "tfidf_ridge", **report}


def ridge_predict(train_texts: list[str], train_targets: np.ndarray, test_texts: list[str]) -> np.ndarray:
    """Values of ``test_texts`` from TF-IDF + ridge regression, its strength chosen by leave-one-out on train."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(tfidf_features(), RidgeCV(alphas=(0.1, 0.3, 1.0, 3.0, 10.0)))
    return model.fit(train_texts, np.asarray(train_targets, dtype=np.float64)).predict(test_texts)


def refit_on_file(texts: list[str], truth: np.ndarray, predict, score, name: str, stratified: bool = False,
                  refusal: str | None = None) -> tuple[dict | None, str | None]:
    """The baseline ``name`` refit on a labelled file itself: a seeded :data:`FILE_FOLDS`-fold split (stratified
    by ``truth`` when ``stratified``), each text scored by ``predict(train_texts, train_truth, test_texts)``
    fitted on the other folds, and ``score(truth, out_of_fold)`` over every text (a seeded sample of
    :data:`MAX_FILE_TEXTS` in a larger file). Returns (figures with ``label`` and ``note``, None), or (None, why
    not) when the file has too few texts or ``refusal`` (one class, one value) says it cannot be done."""
    import warnings

    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(texts)
    if n < MIN_FILE_TEXTS:
        return None, f"the file has {n} texts, fewer than the {MIN_FILE_TEXTS} a cross-validated refit needs"
    if refusal:
        return None, refusal
    rng = np.random.default_rng(FILE_SEED)
    used = np.sort(rng.choice(n, MAX_FILE_TEXTS, replace=False)) if n > MAX_FILE_TEXTS else np.arange(n)
    texts, truth = [texts[i] for i in used], np.asarray(truth)[used]
    if stratified:
        folds = min(FILE_FOLDS, int(np.bincount(truth).max()))
        splits = StratifiedKFold(folds, shuffle=True, random_state=FILE_SEED).split(texts, truth)
    else:
        folds = FILE_FOLDS
        splits = KFold(folds, shuffle=True, random_state=FILE_SEED).split(texts)
    predicted = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only 2 members"
        for train, test in splits:
            try:
                fold = predict([texts[i] for i in train], truth[train], [texts[i] for i in test])
            except ValueError as e:  # scikit-learn's "empty vocabulary": punctuation or emoji only
                return None, f"TF-IDF cannot be fitted on its texts ({' '.join(str(e).split())[:120]})"
            if predicted is None:
                predicted = np.zeros((len(texts), *np.shape(fold)[1:]), dtype=np.asarray(fold).dtype)
            predicted[test] = fold
    sample = f"a seeded sample of {len(texts)} of its {n} texts" if len(texts) < n else f"its {n} texts"
    how = "stratified " if stratified else ""
    label = f"{name}, {folds}-fold cross-validated on this file"
    note = (f"The baseline was refit on the evaluated file itself ({sample}): a seeded {how}{folds}-fold split, "
            f"each text scored by a {name} fitted on the other folds. Both rows score the same texts; the model "
            f"was not trained on this file, the baseline was trained on {folds - 1} of its {folds} folds.")
    logger.info("baseline (%s) on this file's own %d-fold split", name, folds)
    return {**score(truth, predicted), "label": label, "note": note}, None


def same_split(figures: dict, name: str, texts: int | None) -> dict:
    """The training run's baseline in its own report: fitted on the same training split, scored on the same
    validation texts as the model."""
    on = f"the same {texts} validation texts" if texts else "the same validation texts"
    return {**figures, "label": f"{name}, same split",
            "note": f"Fitted on the run's training split and scored on {on} as the model."}


def training_figure(figures: dict, texts: int | None, why: str) -> dict:
    """The training run's baseline beside a score on another file, labelled plainly as not comparable."""
    count = f"{texts} texts" if texts else "size not recorded"
    return {**figures, "label": f"TF-IDF baseline on the training run's validation split ({count}), not this file",
            "note": f"Not refit on this file ({why}): this figure comes from training-time validation, so it "
                    f"scores other texts than the model's row."}
