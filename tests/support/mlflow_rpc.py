"""MLflow's own client on request: `python mlflow_rpc.py TRACKING_URI`, one JSON object per line.

Runs inside the MLflow virtualenv (mlflow does not import beside our pandas), so tests and the
benchmark can do what an MLflow user does, with `mlflow.MlflowClient` itself:

    {"op": "register", "name": "churn", "metrics": {"auc": 0.91}, "params": {"depth": "5"}}
        → {"result": {"version": 3, "run_id": "…", "at": <unix seconds after create_model_version returned>}}
    {"op": "set_alias", "name": "churn", "alias": "champion", "version": 3}
    {"op": "delete_alias", "name": "churn", "alias": "champion"}
    {"op": "alias", "name": "churn", "alias": "champion"}      → {"result": 3 or null}  (get_model_version_by_alias)
    {"op": "wait_alias", "name": …, "alias": …, "version": 3, "timeout": 30}
        → {"result": {"at": <unix seconds when first seen>, "polls": n}} or an error on timeout
    {"op": "set_tag", "name": …, "version": 3, "key": "k", "value": "v"}
    {"op": "delete_webhooks"}                                   → {"result": how many were deleted}

Every answer is one line: {"result": …} or {"error": "…"}.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def main() -> None:
    answers = sys.stdout
    sys.stdout = sys.stderr  # MLflow prints ("View run … at …"): keep stdout for answers only
    uri = sys.argv[1]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment: str | None = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            op = request.pop("op")
            if op == "register" and experiment is None:
                experiment = client.create_experiment(f"modelbot-tests-{time.time_ns()}")
            result = handle(client, op, request, experiment)
            answer: dict[str, Any] = {"result": result}
        except Exception as exc:  # report it to the test instead of dying
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def handle(client: MlflowClient, op: str, args: dict[str, Any], experiment: str | None) -> Any:
    if op == "ping":
        return "pong"
    if op == "register":
        name = args["name"]
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        run = client.create_run(experiment, tags={"team": "tests"}).info.run_id
        for key, value in (args.get("metrics") or {}).items():
            client.log_metric(run, key, value)
        for key, value in (args.get("params") or {}).items():
            client.log_param(run, key, value)
        client.set_terminated(run)
        version = client.create_model_version(name, f"runs:/{run}/model", run_id=run, tags=args.get("tags") or {},
                                              description=args.get("description"))
        return {"version": int(version.version), "run_id": run, "at": time.time()}
    if op == "set_alias":
        client.set_registered_model_alias(args["name"], args["alias"], str(args["version"]))
        return None
    if op == "delete_alias":
        client.delete_registered_model_alias(args["name"], args["alias"])
        return None
    if op == "alias":
        return _alias(client, args["name"], args["alias"])
    if op == "wait_alias":
        deadline = time.monotonic() + float(args.get("timeout", 30))
        polls = 0
        while True:
            polls += 1
            if _alias(client, args["name"], args["alias"]) == args["version"]:
                return {"at": time.time(), "polls": polls}
            if time.monotonic() > deadline:
                raise TimeoutError(f"alias {args['alias']} of {args['name']} never pointed at v{args['version']}")
            time.sleep(float(args.get("every", 0.02)))
    if op == "delete_webhooks":
        hooks = list(client.list_webhooks(max_results=100))
        for hook in hooks:
            client.delete_webhook(hook.webhook_id)
        return len(hooks)
    if op == "set_tag":
        client.set_model_version_tag(args["name"], str(args["version"]), args["key"], args["value"])
        return None
    raise ValueError(f"unknown op {op}")


def _alias(client: MlflowClient, name: str, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


if __name__ == "__main__":
    main()
