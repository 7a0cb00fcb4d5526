"""What Cible learns, on a large base, each step against its limit measured in the same run.

    python -m bench.insights --seed 1000000      # seeds the workspace first when it is missing
    python -m bench.insights --workspace bench-1m

Under PostgreSQL's settings as they are. Each step runs as a worker runs it, and is timed next to
the bare operation it cannot beat:
  1. features: a full rebuild of the feature table (`features_refresh(full=True)`) against one
     hand-written GROUP BY pass over each source table it reads (events, orders, survey answers);
  2. training: `membership_train` of a segment (read the matrix, fit, calibrate, measure, score,
     write) against fitting the same estimator on the same in-memory matrix (`_estimator().fit`);
  3. scoring: predicting every profile and writing the scores (`scores_write`: binary COPY, the
     planner statistics, the version switch) against a COPY of the same rows into a bare table;
  4. clustering: `personas_compute` (features read, k-means, index of each persona, members
     written) against MiniBatchKMeans on the same standardised matrix.
The peak memory of the process is printed at the end (goal: under 4 GB).
"""

import argparse
import os
import resource
import time

from bench._common import DEFAULT_DATABASE_URL, bench_workspace


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def line(name: str, cible: float, limit: float, limit_name: str) -> None:
    print(
        f"{name:<12} Cible {cible:8.2f} s   {limit_name:<34} {limit:8.2f} s   ratio {cible / limit:5.2f}x", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--workspace", default="bench-1m")
    parser.add_argument("--seed", type=int, default=0, help="seed this many profiles when the workspace is missing")
    parser.add_argument("--only", choices=("features", "training", "scoring", "clustering"))
    args = parser.parse_args()
    workspace = bench_workspace(args.database_url, args.workspace, args.seed)
    steps = [args.only] if args.only else ["features", "training", "scoring", "clustering"]
    for step in steps:
        globals()[f"bench_{step}"](workspace)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak memory of the process: {peak:.2f} GB")


def bench_features(workspace) -> None:
    from django.db import connection

    from insights.features import features_refresh

    cible, feature_set = timed(lambda: features_refresh(workspace=workspace, full=True))

    def bare() -> None:
        with connection.cursor() as cursor:
            for sql in (
                "SELECT profile_id, count(*), max(occurred_at) FROM customers_event WHERE workspace_id = %s GROUP BY 1",
                "SELECT profile_id, count(*), sum(amount) FROM customers_order WHERE workspace_id = %s GROUP BY 1",
                "SELECT profile_id, count(*) FROM customers_surveyresponse WHERE workspace_id = %s GROUP BY 1",
            ):
                cursor.execute(f"SELECT count(*) FROM ({sql}) g", [workspace.pk])
                cursor.fetchone()

    limit, _ = timed(bare)
    print(f"features: {feature_set.profiles:,} profiles x {len(feature_set.definition)} columns")
    line("features", cible, limit, "one GROUP BY pass a source table")


def _segment(workspace):
    from audiences.services import audience_compute
    from segments.models import Segment
    from segments.services import segment_create

    segment = Segment.objects.filter(workspace=workspace, name="Bench: women").first()
    if segment is None:
        segment = segment_create(
            workspace=workspace, name="Bench: women", definition={"field": "gender", "op": "eq", "value": "female"}
        )
    if segment.audience.current_version == 0:
        audience_compute(segment_id=segment.pk)
    return Segment.objects.select_related("audience").get(pk=segment.pk)


def _model(workspace):
    from insights.models import PredictiveModel

    segment = _segment(workspace)
    model, _ = PredictiveModel.objects.get_or_create(
        workspace=workspace, kind="membership", segment=segment, defaults={"name": "Bench: women"}
    )
    return model


def bench_training(workspace) -> None:
    import numpy as np

    from insights.features import feature_matrix, features_current
    from insights.prediction import MAX_TRAIN_ROWS, _estimator, _informative, _sample, membership_train
    from segments.membership import current_audience

    features_current(workspace=workspace)
    model = _model(workspace)
    cible, model = timed(lambda: membership_train(model=model))
    matrix = feature_matrix(workspace=workspace)
    # The columns the model learnt from: the segment's own (gender) left out, the uninformative too.
    matrix = matrix.select(c.name for c in matrix.columns if not c.name.startswith("gender_"))
    matrix = matrix.select(c.name for c, keep in zip(matrix.columns, _informative(matrix.X), strict=True) if keep)
    current = current_audience(segment=model.segment)
    members = np.fromiter(current.members.values_list("profile_id", flat=True), dtype=np.int64)
    y = np.isin(matrix.ids, members).astype(np.int8)
    X, y = _sample(matrix.X, y, MAX_TRAIN_ROWS)
    limit, _ = timed(lambda: _estimator().fit(X, y))
    print(
        f"training: {model.metrics['profiles']:,} profiles, {model.metrics['train_rows']:,} training rows, AUC {model.metrics['auc']}"
    )
    line("training", cible, limit, "bare fit of the estimator")


def bench_scoring(workspace) -> None:
    import numpy as np
    from django.db import connection

    from insights.prediction import scores_write

    model = _model(workspace)
    ids = np.array(sorted(workspace.profiles.values_list("pk", flat=True)), dtype=np.int64)
    scores = np.random.default_rng(0).random(len(ids))
    cible, _ = timed(lambda: scores_write(model=model, ids=ids, scores=scores))

    def bare() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE bench_scores (workspace_id bigint, model_id bigint, version integer, "
                "profile_id bigint, score double precision)"
            )
            with cursor.cursor.copy("COPY bench_scores FROM STDIN") as copy:
                for pk, score in zip(ids.tolist(), scores.tolist(), strict=True):
                    copy.write_row((workspace.pk, model.pk, 1, pk, score))
            cursor.execute("DROP TABLE bench_scores")

    limit, _ = timed(bare)
    print(f"scoring: {len(ids):,} scores")
    line("scoring", cible, limit, "COPY of the same rows")


def bench_clustering(workspace) -> None:
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.preprocessing import StandardScaler

    from insights.features import feature_matrix
    from insights.personas import _columns, _prepare, personas_compute

    cible, run = timed(lambda: personas_compute(workspace=workspace, facets="behavioural", k=6))
    matrix = feature_matrix(workspace=workspace)
    matrix = matrix.select(_columns(matrix, "behavioural"))
    _, transformed = _prepare(matrix)
    Z = np.nan_to_num(StandardScaler().fit_transform(transformed))
    limit, _ = timed(lambda: MiniBatchKMeans(n_clusters=6, n_init=3, batch_size=4096, random_state=0).fit(Z))
    print(f"clustering: {run.profiles:,} profiles, k={run.k}, silhouette {run.silhouette}")
    line("clustering", cible, limit, "MiniBatchKMeans on the same matrix")


if __name__ == "__main__":
    main()
