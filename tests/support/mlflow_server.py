"""A real `mlflow server` (3.17.2, SQLite backend) for the tests, and MLflow's own client beside it.

MLflow does not import beside our pandas, so both run from the MLflow virtualenv
(`bash tests/support/mlflow_env.sh` creates it): the server as a child process on
127.0.0.1, and `MlflowRpc`, a child running `tests/support/mlflow_rpc.py` that performs
operations with `mlflow.MlflowClient` when asked over its stdin. Without that virtualenv the
tests skip with the reason; with MODELBOT_REQUIRE_MLFLOW set (CI) they fail instead.

Webhooks: MLflow refuses webhook URLs that resolve to private or loopback addresses, and
plain http, unless its server runs with MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true and
MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https (mlflow/utils/validation.py, mlflow/webhooks/ssrf.py).
The tests' receivers are on 127.0.0.1, so `webhooks=True` sets both; it also sets a fixed
MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY (without one MLflow encrypts webhook secrets with a key
made up at start, so a restarted server could not read them) and MLFLOW_WEBHOOK_CACHE_TTL=0
(MLflow caches the webhook list for 60 s; tests re-point the webhook at each new bot).
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from bench._common import JsonLinesWorker

REPO = Path(__file__).resolve().parents[2]
RPC_SCRIPT = REPO / "tests" / "support" / "mlflow_rpc.py"
SERVER_START_TIMEOUT_S = 120.0


def mlflow_python() -> Path:
    """The MLflow virtualenv's python, or skip (fail in CI) saying how to create it."""
    explicit = os.environ.get("MODELBOT_TEST_MLFLOW_PYTHON")
    venv = Path(os.environ.get("MODELBOT_MLFLOW_VENV") or REPO / "bench" / ".venv-mlflow")
    python = Path(explicit) if explicit else venv / "bin" / "python"
    if python.exists() and (python.parent / "mlflow").exists():
        return python
    reason = (f"no MLflow virtualenv at {python.parent.parent}: run `bash tests/support/mlflow_env.sh` "
              "(installs mlflow==3.17.2 from PyPI) to run the MLflow tests")
    if os.environ.get("MODELBOT_REQUIRE_MLFLOW"):
        pytest.fail(f"MODELBOT_REQUIRE_MLFLOW is set, but there is {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


class MlflowProcess:
    """`mlflow server` on 127.0.0.1:PORT over one SQLite file; stop() and start() keep port and data."""

    def __init__(self, python: Path, root: Path, *, webhooks: bool = False) -> None:
        self.python = python
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**clean_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no eight extra workers
        if webhooks:
            key = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")  # a Fernet key
            self.env.update({"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                             "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key, "MLFLOW_WEBHOOK_CACHE_TTL": "0"})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "server.log"

    def start(self) -> MlflowProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.python.parent / "mlflow"), "server", "--backend-store-uri",
                 f"sqlite:///{self.root / 'mlflow.db'}", "--default-artifact-root", str(self.root / "artifacts"),
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        pause = threading.Event()
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health within {SERVER_START_TIMEOUT_S:.0f} s:\n{self.log()}")
            pause.wait(0.25)  # waiting for an external server to start, not test synchronisation

    def stop(self) -> None:
        """`mlflow server` runs uvicorn as a child: stop the whole process group it leads."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def rest(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change MLflow the way a user would (through its REST API)."""
        response = requests.request(method, f"{self.url}/api/2.0/mlflow/{path}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


class MlflowRpc:
    """MLflow's own Python client, in the MLflow virtualenv, one JSON request per line."""

    def __init__(self, python: Path, tracking_uri: str) -> None:
        self.worker = JsonLinesWorker([str(python), str(RPC_SCRIPT), tracking_uri], env=clean_env())
        self.call("ping")

    def call(self, op: str, **args: Any) -> Any:
        answer = self.worker.request({"op": op, **args})
        if "error" in answer:
            raise RuntimeError(f"MlflowClient {op} failed: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self.worker.close()
