"""Shared pieces for the serving tests: a registry with a token, the API in this process or as
real `modelbot serve` processes, and waiting on a condition with a deadline (never a sleep)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import requests

from bot.config.settings import Settings
from bot.domain.registry import NewVersion
from bot.domain.tokens import Tokens
from bot.services import Services, open_services

ROOT = Path(__file__).resolve().parents[2]
POLICY = """
[environments.staging]
approvals = 0
[environments.production]
approvals = 0
"""
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout_s: float = 15.0, what: str = "the condition") -> T:
    """Poll `probe` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(0.02)  # polling interval of a condition, not synchronisation by sleeping


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A registry with `churn` v1…v3 (v1 in production), a read token and a writing token."""

    services: Services
    url: str
    reader: str
    writer: str

    def get(self, query: str = "", token: str | None = None, headers: dict[str, str] | None = None,
            model: str = "churn", environment: str = "production", timeout: float = 90) -> requests.Response:
        return requests.get(f"{self.url}/api/v1/models/{model}/environments/{environment}{query}",
                            headers={"Authorization": f"Bearer {token or self.reader}", **(headers or {})},
                            timeout=timeout)

    def promote(self, version: str, environment: str = "production", url: str | None = None) -> requests.Response:
        return requests.post(f"{url or self.url}/api/v1/models/churn/environments/{environment}/promotions",
                             json={"version": version}, headers={"Authorization": f"Bearer {self.writer}"},
                             timeout=30)

    def watches_held(self, url: str | None = None) -> float:
        text = requests.get(f"{url or self.url}/metrics", timeout=10).text
        return next(float(line.split()[1]) for line in text.splitlines()
                    if line.startswith("modelbot_serving_watches "))


def seed(database_url: str, policy: Path) -> tuple[Services, str, str]:
    """Open services on the database, three versions of churn (v1 serving production), two tokens."""
    services = open_services(Settings(database_url=database_url, config_path=policy))
    for n in (1, 2, 3):
        services.registry.register(NewVersion(model="churn", artifact_uri=f"s3://models/churn/{n}", actor="ci"))
    services.registry.promote("churn", "1", "production", actor="ci")
    tokens = Tokens(services.registry)
    now = services.clock()
    reader = tokens.create("fleet", "read", actor="t", now=now)[1]
    writer = tokens.create("ci", "read,versions:write,promotions:request", actor="t", now=now)[1]
    return services, reader, writer


class ServeProcess:
    """`modelbot serve --http` (no Slack settings: the REST API alone) as a real process."""

    def __init__(self, database_url: str, policy: Path, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
        env.update({"MODELBOT_DATABASE_URL": database_url, "MODELBOT_CONFIG": str(policy),
                    "MODELBOT_SCHEDULER": "off", "MODELBOT_API_RATE_PER_SECOND": "100000",
                    "PYTHONUNBUFFERED": "1"})
        self.log = policy.parent / f"serve-{self.port}-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--http", "--port", str(self.port), *extra],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        eventually(self._healthy, 60, f"modelbot serve on port {self.port} answering /healthz")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"modelbot serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no graceful shutdown."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
