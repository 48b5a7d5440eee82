"""Real `modelbot serve` processes: a watcher on one replica hears a promotion made through
another (PostgreSQL LISTEN/NOTIFY; SQLite's audit poll), `serve --workers` shares one port
between processes, and without Slack settings the REST API serves alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.web.serving_support import ROOT, ServeProcess, eventually, seed


def test_a_watcher_on_one_replica_hears_a_promotion_made_on_another(database_url: str, policy: Path) -> None:
    services, reader, writer = seed(database_url, policy)
    a = ServeProcess(database_url, policy)
    b = ServeProcess(database_url, policy)
    try:
        headers = {"Authorization": f"Bearer {reader}"}
        path = "/api/v1/models/churn/environments/production"
        revision = requests.get(a.url + path, headers=headers, timeout=10).json()["revision"]
        with ThreadPoolExecutor(1) as pool:
            watch = pool.submit(requests.get, f"{a.url}{path}?revision={revision}&wait=60s", headers=headers,
                                timeout=90)
            eventually(lambda: _held(a.url) >= 1, what="the watch being held on replica A")
            promoted = requests.post(f"{b.url}/api/v1/models/churn/environments/production/promotions",
                                     json={"version": "2"}, headers={"Authorization": f"Bearer {writer}"}, timeout=30)
            assert promoted.status_code == 201 and promoted.json()["outcome"] == "moved"
            answer = watch.result(timeout=30)
        assert answer.status_code == 200
        assert answer.json()["revision"] == revision + 1 and answer.json()["stable"] == 2
    finally:
        assert a.stop() == 0 and b.stop() == 0
        services.close()


def test_serve_without_slack_settings_runs_the_api_alone_on_several_workers(sqlite_url: str, policy: Path) -> None:
    services, reader, _ = seed(sqlite_url, policy)
    server = ServeProcess(sqlite_url, policy, None, "--workers", "2")
    try:
        eventually(lambda: server.log.read_text().count("Application startup complete.") == 2, timeout_s=90,
                   what="two workers serving")
        workers = _children(server.proc.pid)
        assert len(workers) == 2
        state = requests.get(server.url + "/api/v1/models/churn/environments/production",
                             headers={"Authorization": f"Bearer {reader}"}, timeout=10)
        assert state.status_code == 200 and state.json()["stable"] == 1
        slack = requests.post(server.url + "/slack/events", data=b"token=x", timeout=10)
        assert slack.status_code == 503
        assert slack.json()["error"]["message"].startswith("Slack is not configured on this server: set "
                                                           "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
        # a worker that dies is replaced; the port keeps answering
        os.kill(workers[0], signal.SIGKILL)
        eventually(lambda: len(_children(server.proc.pid)) == 2 and workers[0] not in _children(server.proc.pid),
                   timeout_s=90, what="a replacement worker")
        eventually(lambda: requests.get(server.url + "/healthz", timeout=5).status_code == 200)
    finally:
        assert server.stop() == 0
        services.close()
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers[1:])


def test_workers_need_http_mode(sqlite_url: str, policy: Path) -> None:
    env = {**os.environ, "MODELBOT_DATABASE_URL": sqlite_url, "MODELBOT_CONFIG": str(policy),
           "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--socket", "--workers", "2"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "modelbot: --workers needs HTTP mode: add --http (Socket Mode runs one process)."
    refused = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--workers", "0"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "'0' is not a number of workers (1–64)" in refused.stderr


def _held(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("modelbot_serving_watches "))


def _children(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in (entry / "cmdline").read_bytes():
            found.append(int(entry.name))  # workers, not multiprocessing's resource tracker
    return found


pytestmark = pytest.mark.timeout(240)
