"""Predictive models: membership probability of a segment, and purchase (churn) propensity.

Both are a scikit-learn HistGradientBoostingClassifier (it handles missing values, such as the
recency of someone who never bought, and scales to millions of rows), calibrated on rows it
did not learn from (isotonic regression with 1,000 positives or more, else Platt scaling), and
measured on rows kept out of both (AUC, Brier score, precision / reach curve).

Membership (fine segments). The features the segment's own rules read are left out, or the
model would learn the rule back. A rule segment labels everyone (members satisfy the rules,
the others do not), so its non-members are true negatives. A static list is
positive-unlabelled: the people not on it are not known non-members, so the probability is
corrected as Elkan & Noto (2008) show: with g(x) = p(listed | x) calibrated, c = mean of g
over held-out listed people, p(member | x) = g(x) / c. `pu_correction` forces either way.

Purchase and churn. Features are computed as of past moments from the source tables, so no
row from after a moment is read: trained on features at now - 2H with labels from (now - 2H,
now - H], tested on features at now - H with labels from (now - H, now], then every profile
scored on its features now. Churn is the mirror for customers (one order or more): no
completed order in the next H days.

Scores are written with one binary COPY under a new version, then made current with a
compare-and-set; the version before stays for readers that started earlier.
"""

import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.inspection import permutation_importance
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from core.sql import arrays_copy
from core.statistics import rows_written
from insights.features import (
    Column,
    Matrix,
    defining_columns,
    facet_of_criteria,
    feature_matrix,
    feature_matrix_as_of,
    features_current,
)
from insights.models import PredictiveModel, Score
from segments.criteria import criteria
from segments.membership import current_audience
from segments.models import Segment

# Rows a model learns from at most (a stratified sample beyond): past this, more rows change
# the metrics in the third decimal and cost minutes on two cores.
MAX_TRAIN_ROWS = 300_000
MIN_POSITIVES = 20
THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]
SCORE_CHUNK = 200_000
# A model trains on features at most this old (refreshed first otherwise).
FEATURES_MAX_AGE = timedelta(hours=1)


class NotTrainable(Exception):
    """The data cannot support the model (no audience, too few members...): said to the user as is."""


def _estimator() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.1, early_stopping=True, validation_fraction=0.1, random_state=0
    )


def _informative(X: np.ndarray) -> np.ndarray:
    """The columns with two distinct known values or more (a column that is all missing or
    constant teaches nothing, and the estimator's binning refuses an all-missing one)."""
    low = np.where(np.isnan(X), np.inf, X).min(axis=0, initial=np.inf)
    high = np.where(np.isnan(X), -np.inf, X).max(axis=0, initial=-np.inf)
    return np.isfinite(low) & (low < high)


def _fit_calibrated(X: np.ndarray, y: np.ndarray, *, seed: int = 0):
    """A classifier fitted on 75 % of (X, y) and calibrated on the other 25 %."""
    X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    estimator = _estimator().fit(X_fit, y_fit)
    method = "isotonic" if y_cal.sum() >= 1000 else "sigmoid"
    # One calibrator over the frozen estimator (ensemble=False): scoring costs one prediction, not
    # one per cross-validation fold.
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method=method, ensemble=False).fit(X_cal, y_cal)
    return calibrated, method


def _sample(X: np.ndarray, y: np.ndarray, limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= limit:
        return X, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=y, random_state=seed)
    keep.sort()
    return X[keep], y[keep]


def _predict(model, X: np.ndarray, c: float = 1.0) -> np.ndarray:
    out = np.empty(len(X), dtype=np.float64)
    for start in range(0, len(X), SCORE_CHUNK):
        out[start : start + SCORE_CHUNK] = model.predict_proba(X[start : start + SCORE_CHUNK])[:, 1]
    if c < 1.0:
        out = np.minimum(out / c, 1.0)
    return out


def _curve(p_test: np.ndarray, y_test: np.ndarray, p_all: np.ndarray) -> list[dict[str, Any]]:
    """Per threshold: how many profiles of the base score at or above it (reach), and on held-out
    rows, what share of those are members (precision) and what share of members they hold (recall)."""
    rows = []
    positives = max(int(y_test.sum()), 1)
    for t in THRESHOLDS:
        above = p_test >= t
        n = int(above.sum())
        rows.append(
            {
                "threshold": t,
                "reach": int((p_all >= t).sum()),
                "precision": round(float(y_test[above].mean()), 4) if n else None,
                "recall": round(float(y_test[above].sum()) / positives, 4),
            }
        )
    return rows


def _bands(p_test: np.ndarray, y_test: np.ndarray) -> list[dict[str, Any]]:
    """Held-out rows ranked by score: per band of 1 % to 10 % of them, the share of held-out
    members it recovers and its precision (members / band size)."""
    order = np.lexsort((np.arange(len(p_test)), -p_test))
    ranked = y_test[order]
    members = max(int(y_test.sum()), 1)
    out = []
    for band in range(1, 11):
        size = max(1, len(ranked) * band // 100)
        found = int(ranked[:size].sum())
        out.append(
            {"band": band, "size": size, "recovered": round(found / members, 4), "precision": round(found / size, 4)}
        )
    return out


def _importances(model, X: np.ndarray, y: np.ndarray, columns: list[Column]) -> list[dict[str, Any]]:
    """Permutation importance (loss of AUC when a feature is shuffled) on up to 5,000 held-out rows."""
    if len(np.unique(y)) < 2:
        return []
    X_s, y_s = _sample(X, y, 5000, seed=1)
    result = permutation_importance(model, X_s, y_s, scoring="roc_auc", n_repeats=3, random_state=0)
    order = np.argsort(-result.importances_mean)[:15]
    return [
        {
            "feature": columns[i].name,
            "label": columns[i].label,
            "importance": round(float(result.importances_mean[i]), 4),
        }
        for i in order
        if result.importances_mean[i] > 0
    ]


def _metrics(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    both = len(np.unique(y)) == 2
    return {
        "auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "brier": round(float(brier_score_loss(y, p)), 4),
        "test_rows": int(len(y)),
        "test_positives": int(y.sum()),
    }


def scores_write(*, model: PredictiveModel, ids: np.ndarray, scores: np.ndarray) -> int:
    """Write the scores under a new version (one COPY), then make it current (compare-and-set)."""
    version = (Score.objects.filter(model=model).aggregate(v=Max("version"))["v"] or model.version) + 1
    with transaction.atomic():
        arrays_copy(
            table=Score._meta.db_table,
            columns=["workspace_id", "model_id", "version", "profile_id", "score"],
            arrays=[
                np.full(len(ids), model.workspace_id, dtype=np.int64),
                np.full(len(ids), model.pk, dtype=np.int64),
                np.full(len(ids), version, dtype=np.int32),
                ids.astype(np.int64),
                scores.astype(np.float64),
            ],
        )
    # Read at once (fine targets, lookalike ranking): plans need the new rows counted.
    rows_written(model=Score, rows=len(ids), wait=True)
    with transaction.atomic():
        previous = PredictiveModel.objects.select_for_update().get(pk=model.pk).version
        switched = PredictiveModel.objects.filter(pk=model.pk, version__lt=version).update(version=version)
    if switched:
        Score.objects.filter(model=model, version__lt=previous).delete()
    else:
        Score.objects.filter(model=model, version=version).delete()
    return version


def _fit_and_measure(X_train, y_train, X_test, y_test, *, pu: bool = False) -> tuple[Any, float, dict[str, Any]]:
    """(calibrated model, Elkan & Noto's c, metrics on the test rows) of a model fitted on a
    stratified sample of at most MAX_TRAIN_ROWS training rows."""
    started = time.monotonic()
    X_fit, y_fit = _sample(X_train, y_train, MAX_TRAIN_ROWS)
    model, method = _fit_calibrated(X_fit, y_fit)
    fit_seconds = time.monotonic() - started
    c = 1.0
    if pu:
        c = float(np.clip(_predict(model, X_test)[y_test == 1].mean(), 1e-3, 1.0))
    p_test = _predict(model, X_test, c)
    metrics = {
        **_metrics(p_test, y_test),
        "bands": _bands(p_test, y_test),
        "calibration": method,
        "pu_correction": pu,
        "label_frequency_c": round(c, 4) if pu else None,
        "train_rows": int(len(y_fit)),
        "fit_seconds": round(fit_seconds, 2),
        "p_test": p_test,
    }
    return model, c, metrics


def _result_save(
    model: PredictiveModel,
    *,
    fitted,
    c: float,
    metrics: dict[str, Any],
    X_test: np.ndarray,
    y_test: np.ndarray,
    columns: list[Column],
    ids: np.ndarray,
    X_all: np.ndarray,
    excluded: list[dict[str, str]],
    progress,
) -> PredictiveModel:
    """Score every profile, write the scores, and record what the marketer reads of the model."""
    progress(70, "Scoring every profile")
    p_all = _predict(fitted, X_all, c)
    p_test = metrics.pop("p_test")
    curve = _curve(p_test, y_test, p_all)
    # AUC does not change under the (monotone) calibration: the bare estimator ranks the features alike.
    importances = _importances(fitted.calibrated_classifiers_[0].estimator, X_test, y_test, columns)
    progress(85, "Writing the scores")
    version = scores_write(model=model, ids=ids, scores=p_all)
    PredictiveModel.objects.filter(pk=model.pk).update(
        trained_at=timezone.now(),
        metrics={**metrics, "version": version, "profiles": int(len(ids))},
        curve=curve,
        importances=importances,
        excluded=excluded,
        error="",
    )
    model.refresh_from_db()
    return model


def _features(workspace, progress) -> Matrix:
    features_current(workspace=workspace, max_age=FEATURES_MAX_AGE, progress=progress)
    progress(25, "Reading the feature matrix")
    return feature_matrix(workspace=workspace)


def _use_pu(model: PredictiveModel, segment: Segment) -> bool:
    if model.pu_correction == PredictiveModel.Correction.AUTO:
        return segment.kind == Segment.Kind.STATIC
    return model.pu_correction == PredictiveModel.Correction.ON


def membership_train(*, model: PredictiveModel, progress=lambda pct, step: None) -> PredictiveModel:
    segment = model.segment
    assert segment is not None
    current = current_audience(segment=segment)
    if current is None:
        raise NotTrainable(f"The audience of segment {segment.name!r} has not been computed yet: refresh it first.")
    matrix = _features(model.workspace, progress)
    members = np.fromiter(current.members.values_list("profile_id", flat=True), dtype=np.int64)
    y = np.isin(matrix.ids, members).astype(np.int8)
    if y.sum() < MIN_POSITIVES or (len(y) - y.sum()) < MIN_POSITIVES:
        raise NotTrainable(
            f"A model needs at least {MIN_POSITIVES} members and {MIN_POSITIVES} non-members with features; "
            f"segment {segment.name!r} has {int(y.sum())} members among {len(y)} profiles."
        )
    definitions = dict(Segment.objects.filter(workspace_id=model.workspace_id).values_list("pk", "definition"))
    used = facet_of_criteria(segment.definition, definitions=definitions, families=criteria())
    excluded = defining_columns(matrix.columns, used)
    left_out = {col.name for col, _ in excluded}
    matrix = matrix.select(c.name for c in matrix.columns if c.name not in left_out)
    matrix = matrix.select(c.name for c, keep in zip(matrix.columns, _informative(matrix.X), strict=True) if keep)
    progress(40, "Training the model")
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    fitted, c, metrics = _fit_and_measure(
        matrix.X[train], y[train], matrix.X[test], y[test], pu=_use_pu(model, segment)
    )
    metrics["members"] = int(y.sum())
    return _result_save(
        model,
        fitted=fitted,
        c=c,
        metrics=metrics,
        X_test=matrix.X[test],
        y_test=y[test],
        columns=matrix.columns,
        ids=matrix.ids,
        X_all=matrix.X,
        excluded=[{"feature": col.name, "label": col.label, "why": why} for col, why in excluded],
        progress=progress,
    )


def propensity_train(*, model: PredictiveModel, progress=lambda pct, step: None) -> PredictiveModel:
    """Purchase in the next H days (or churn), with a time-based split: see the module docstring."""
    workspace = model.workspace
    horizon = timedelta(days=model.horizon_days or 30)
    now = timezone.now()
    current = _features(workspace, progress)
    columns = current.columns
    progress(35, "Computing the features of past windows")
    train_at, test_at = now - 2 * horizon, now - horizon
    train = feature_matrix_as_of(workspace=workspace, columns=columns, as_of=train_at)
    test = feature_matrix_as_of(workspace=workspace, columns=columns, as_of=test_at)
    y_train, keep_train = _purchase_labels(model, train, train_at, train_at + horizon)
    y_test, keep_test = _purchase_labels(model, test, test_at, test_at + horizon)
    # Lifecycle stages are today's (a prospect who bought since is a customer now), and so are the
    # current CLV run's scores: they would tell the model the future, so a propensity model never
    # reads them.
    stages = np.array([c.name.startswith("stage_") or c.source[0] == "clv" for c in columns])
    usable = _informative(train.X[keep_train]) & ~stages
    X_train, y_train = train.X[keep_train][:, usable], y_train[keep_train]
    X_test, y_test = test.X[keep_test][:, usable], y_test[keep_test]
    for name, labels in (("training", y_train), ("test", y_test)):
        if labels.sum() < MIN_POSITIVES or len(labels) - labels.sum() < MIN_POSITIVES:
            raise NotTrainable(
                f"Not enough history for a {model.horizon_days}-day horizon: the {name} window has "
                f"{int(labels.sum())} positive and {int(len(labels) - labels.sum())} negative profiles "
                f"(at least {MIN_POSITIVES} of each are needed). Try a shorter horizon."
            )
    progress(50, "Training the model")
    fitted, c, metrics = _fit_and_measure(X_train, y_train, X_test, y_test)
    metrics.update(
        train_window=[train_at.isoformat(), (train_at + horizon).isoformat()],
        test_window=[test_at.isoformat(), (test_at + horizon).isoformat()],
        base_rate_test=round(float(y_test.mean()), 4),
    )
    scored = _scored_rows(model, current)
    return _result_save(
        model,
        fitted=fitted,
        c=c,
        metrics=metrics,
        X_test=X_test,
        y_test=y_test,
        columns=[col for col, keep in zip(columns, usable, strict=True) if keep],
        ids=current.ids[scored],
        X_all=current.X[scored][:, usable],
        excluded=[
            {"feature": col.name, "label": col.label, "why": "today's lifecycle stage would reveal the future"}
            for col, stage in zip(columns, stages, strict=True)
            if stage
        ],
        progress=progress,
    )


def _scored_rows(model: PredictiveModel, matrix: Matrix) -> np.ndarray:
    """The rows a propensity model scores: everyone for a purchase, customers (an order or more) for churn."""
    if model.kind != PredictiveModel.Kind.CHURN:
        return np.ones(len(matrix.ids), dtype=bool)
    orders = [i for i, c in enumerate(matrix.columns) if c.name == "orders_all"]
    return matrix.X[:, orders[0]] > 0 if orders else np.ones(len(matrix.ids), dtype=bool)


def _purchase_labels(model: PredictiveModel, matrix: Matrix, start, end) -> tuple[np.ndarray, np.ndarray]:
    """(label, rows kept): a completed order in (start, end]; churn keeps customers only (an
    order at or before `start`) and labels those without an order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT profile_id FROM customers_order WHERE workspace_id = %s AND status = 'completed' "
            "AND ordered_at > %s AND ordered_at <= %s",
            [
                model.workspace_id,
                connection.ops.adapt_datetimefield_value(start),
                connection.ops.adapt_datetimefield_value(end),
            ],
        )
        buyers = np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)
    bought = np.isin(matrix.ids, buyers)
    label = ~bought if model.kind == PredictiveModel.Kind.CHURN else bought
    return label.astype(np.int8), _scored_rows(model, matrix)


def model_train(*, model: PredictiveModel, progress=lambda pct, step: None) -> PredictiveModel:
    if model.kind == PredictiveModel.Kind.MEMBERSHIP:
        return membership_train(model=model, progress=progress)
    return propensity_train(model=model, progress=progress)
