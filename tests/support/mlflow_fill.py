"""Fill an MLflow tracking server the way a team would, and print what the MLflow client sees.

Runs inside the MLflow virtualenv (never imported by our test process, whose pandas the
mlflow package does not accept): `python mlflow_fill.py TRACKING_URI OUT.json`. The JSON it
writes is the MLflow client's own view of every version (`get_model_version`, `get_run`,
`get_registered_model`), which the test compares with modelbot field by field, so the
expected values come from MLflow rather than from our client.
"""

from __future__ import annotations

import json
import sys

from mlflow import MlflowClient

# (model, versions, aliases, legacy stages); 3 models x 5 versions plus one whose name modelbot refuses
MODELS = [
    ("churn", 5, {"champion": 3, "challenger": 5}, {}),
    ("fraud-detector", 5, {"champion": 5, "challenger": 4, "shadow": 2}, {}),
    ("ranker.v2", 5, {}, {2: "Production", 4: "Staging"}),
    ("bad name", 1, {}, {}),
]


def fill(client: MlflowClient) -> None:
    experiment = client.create_experiment("modelbot-import-test")
    for name, count, aliases, stages in MODELS:
        client.create_registered_model(name, description=f"{name}: registered by the fill script")
        for n in range(1, count + 1):
            run = client.create_run(experiment, tags={"team": "risk"}).info.run_id
            # logged twice: the run's latest value (step 1) is what the import must keep
            client.log_metric(run, "auc", 0.5, step=0)
            client.log_metric(run, "auc", round(0.80 + n / 100, 4), step=1)
            client.log_metric(run, "log_loss", round(0.40 - n / 50, 4))
            client.log_param(run, "max_depth", str(3 + n))
            client.log_param(run, "learning_rate", "0.1")
            if name == "churn" and n == 2:
                client.log_metric(run, "val loss", 0.3)  # space in the key: not a modelbot metric name
            if name == "fraud-detector" and n == 1:
                client.log_param(run, "notes", "line one\nline two")  # multi-line: not a modelbot param value
            client.set_terminated(run)
            source = f"runs:/{run}/model" if name != "fraud-detector" else f"s3://models/fraud/{n}"
            tags = {"dataset": f"ds-{n}", "stage.hint": "ok"}
            client.create_model_version(name, source, run_id=run, tags=tags,
                                        description=f"{name} v{n}: trained on ds-{n}")
        for alias, version in aliases.items():
            client.set_registered_model_alias(name, alias, str(version))
        for version, stage in stages.items():
            client.transition_model_version_stage(name, str(version), stage)


def view(client: MlflowClient) -> dict[str, object]:
    """What the MLflow client reports, in plain JSON."""
    out: dict[str, object] = {}
    for name, count, _, _ in MODELS:
        model = client.get_registered_model(name)
        versions = []
        for n in range(1, count + 1):
            mv = client.get_model_version(name, str(n))
            run = client.get_run(mv.run_id)
            versions.append({
                "version": int(mv.version), "source": mv.source, "run_id": mv.run_id,
                "description": mv.description, "tags": dict(mv.tags), "status": mv.status,
                "current_stage": mv.current_stage, "creation_timestamp": mv.creation_timestamp,
                "user_id": mv.user_id or None,
                "metrics": dict(run.data.metrics), "params": dict(run.data.params),
            })
        out[name] = {"description": model.description, "aliases": dict(model.aliases), "versions": versions}
    return out


def main() -> None:
    uri, out_path = sys.argv[1], sys.argv[2]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    fill(client)
    with open(out_path, "w") as handle:
        json.dump(view(client), handle, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
