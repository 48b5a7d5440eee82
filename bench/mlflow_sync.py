"""MLflow sync benchmark: how soon MLflow's changes reach Slack, and Slack's decisions reach MLflow.

    python -m bench.mlflow_sync [--versions 100] [--approvals 30] [--poll-interval 5] [--skip-polling]

Why it exists: issue 14, acceptance 2. Teams that keep MLflow as the registry of record
register versions there and load `models:/NAME@champion` in serving; modelbot sits between
the two. What they feel is latency end to end, so that is what is measured, with every part
real except Slack:

* a real `mlflow server` 3.17.2 (SQLite backend) from the MLflow virtualenv, with its
  webhooks allowed to reach 127.0.0.1 (MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true,
  MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https: MLflow refuses loopback and plain http otherwise);
* MLflow's own `MlflowClient` registering versions and reading aliases, in that virtualenv
  (tests/support/mlflow_rpc.py);
* `modelbot serve`'s parts in this process on SQLite: the web app (Slack's request URL and
  `/integrations/mlflow/webhook`) under uvicorn, the outbox delivery thread with its
  production settings (MODELBOT_OUTBOX_*: idle poll 1 s, one post per second per channel),
  and, for the polling run, the leader-elected scheduler running the `mlflow-poll` job;
* the strict fake Slack Web API (tests/slack_fake.py) on 127.0.0.1, which records when each
  card was posted.

Measured (wall clock, both processes on one machine):

1. **MLflow register → card in Slack, webhooks**: `create_model_version` returns → the
   `chat.postMessage` of that version's card reaches the fake. Closed loop, one version at a
   time, `--gap` seconds apart (a CI pipeline registering, not a burst that would measure
   Slack's per-channel pacing instead). Target p95 ≤ 2 s.
2. **The same, polling only** (no webhook; `[mlflow] poll_interval`): each registration waits a
   random part of the interval first, so versions land at every phase of the poll. Target
   p95 ≤ poll interval + 2 s. Polling is also what a user would otherwise run (a cron job
   reading MLflow), so it is the alternative to the webhooks in the same run.
3. **Slack approval → MLflow alias**: the approver's Approve click is posted (signed, as Slack
   does) → `get_model_version_by_alias("champion")` returns the version, polled every 20 ms
   by MLflow's client. Beside it, the floor a user gets setting the alias by hand in the same
   run: `set_registered_model_alias` → visible through the same read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import BENCH_DIR, ensure_venv, percentiles, print_table

SIGNING_SECRET = "bench-signing-secret-0123456789ab"
WEBHOOK_SECRET = "bench-mlflow-webhook-secret-0123"
APPROVALS = "C0APPROVALS"
MODELS = "C0MODELS"
POLICY = """
[environments.staging]
approvals = 0

[environments.production]
approvals = 1
approvers = ["U0APPR"]
approval_channel = "C0APPROVALS"

[mlflow]
tracking_uri = "{tracking_uri}"
webhook_secret_env = "MODELBOT_BENCH_MLFLOW_WEBHOOK_SECRET"
new_version_channel = "C0MODELS"
models = ["{model}"]
aliases = {{ staging = "staging", production = "champion" }}
poll_interval = "{poll}s"
"""


@dataclass
class Bot:
    services: Any
    url: str
    slack: Any
    server: Any
    stop: threading.Event
    delivery: threading.Thread
    scheduler: Any
    http: Any

    def close(self) -> None:
        self.stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.delivery.join(timeout=15)
        self.server.stop()
        self.services.close()


@contextlib.contextmanager
def running_bot(root: Path, slack: Any, tracking_uri: str, model: str, poll: int, *,
                scheduler: bool) -> Iterator[Bot]:
    """modelbot as `modelbot serve` runs it, on its own SQLite file."""
    import requests

    from bot.config.settings import Settings
    from bot.delivery import start_delivery
    from bot.jobs.runner import SchedulerRunner
    from bot.listeners.app import build_app
    from bot.services import open_services
    from bot.web import mlflow_webhook
    from bot.web.app import create_web_app
    from bot.web.server import ServerThread

    root.mkdir(parents=True, exist_ok=True)
    policy = root / "modelbot.toml"
    policy.write_text(POLICY.format(tracking_uri=tracking_uri, model=model, poll=poll))
    env = {"MODELBOT_DATABASE_URL": f"sqlite:///{root / 'modelbot.db'}", "MODELBOT_CONFIG": str(policy),
           "MODELBOT_SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
           "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    services = open_services(Settings.from_env(env))
    app = build_app(services, "http")
    server = ServerThread(create_web_app(services, app, routers=[mlflow_webhook.router(services)])).start()
    stop = threading.Event()
    delivery = start_delivery(services, stop)
    runner = SchedulerRunner(services, interval_s=0.5).start() if scheduler else None
    bot = Bot(services, server.url, slack, server, stop, delivery, runner, requests.Session())
    try:
        yield bot
    finally:
        bot.close()


def card_time(slack: Any, text: str, timeout: float) -> float:
    """When the fake answered the chat.postMessage whose text names `text`."""
    def posted() -> Any:
        return next((c for c in slack.calls_to("chat.postMessage") if c.ok and text in str(c.args.get("text"))), None)

    call = slack.wait_for(posted, timeout=timeout, what=text)
    return float(call.time)


def click(bot: Bot, action_id: str, value: str, user: str, channel: str) -> None:
    from tests.slack_fake import sign_request

    body = bot.slack.block_actions_body(action_id, value, response_name=f"r-{time.time_ns()}", user_id=user,
                                        channel_id=channel)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign_request(SIGNING_SECRET, body)}
    response = bot.http.post(bot.url + "/slack/events", data=body, headers=headers, timeout=10)
    response.raise_for_status()


def button(message: Any, action_id: str) -> str:
    return next(el["value"] for b in message.blocks or [] if b.get("type") == "actions"
                for el in b["elements"] if el.get("action_id") == action_id)


def register_to_card(rpc: Any, bot: Bot, model: str, count: int, *, gap: float, jitter: float,
                     rng: random.Random, log: Any) -> list[float]:
    out = []
    for i in range(count):
        time.sleep(gap + rng.uniform(0, jitter))  # the cadence of registrations, not synchronisation
        answer = rpc.call("register", name=model, metrics={"auc": round(0.8 + i / 1000, 4), "loss": 0.3},
                          params={"depth": "5"})
        posted = card_time(bot.slack, f"{model} v{answer['version']}", timeout=gap + jitter + 60)
        out.append(posted - answer["at"])
        if (i + 1) % 20 == 0:
            log(f"  {i + 1}/{count}: last {out[-1]:.2f} s")
    return out


def approvals_to_alias(rpc: Any, bot: Bot, model: str, versions: list[int], log: Any) -> list[float]:
    from bot.blocks import approvals as cards
    from bot.blocks import mlflow as mlflow_cards

    out = []
    for i, number in enumerate(versions):
        card = next(m for m in bot.slack.messages(MODELS) if f"{model} v{number}" in m.text)
        seen = len(bot.slack.messages(APPROVALS))
        click(bot, mlflow_cards.REQUEST_ACTION, button(card, mlflow_cards.REQUEST_ACTION), "U0ALICE", MODELS)
        bot.slack.wait_for(lambda s=seen: len(bot.slack.messages(APPROVALS)) > s, timeout=30, what="approval card")
        request_card = bot.slack.messages(APPROVALS)[-1]
        started = time.time()
        click(bot, cards.APPROVE_ACTION, button(request_card, cards.APPROVE_ACTION), "U0APPR", APPROVALS)
        seen_at = rpc.call("wait_alias", name=model, alias="champion", version=number, timeout=60)["at"]
        out.append(seen_at - started)
        if (i + 1) % 10 == 0:
            log(f"  {i + 1}/{len(versions)}: last {out[-1]:.2f} s")
    return out


def by_hand(rpc: Any, model: str, versions: list[int]) -> list[float]:
    out = []
    for number in versions:
        started = time.time()
        rpc.call("set_alias", name=model, alias="by-hand", version=number)
        out.append(rpc.call("wait_alias", name=model, alias="by-hand", version=number)["at"] - started)
    return out


def row(label: str, samples: list[float], target: str) -> list[str]:
    p = percentiles(samples, (50, 95))
    return [label, str(p["n"]), f"{p['p50']:.2f} s", f"{p['p95']:.2f} s", f"{max(samples):.2f} s", target]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--approvals", type=int, default=30)
    parser.add_argument("--poll-interval", type=int, default=5, help="[mlflow] poll_interval in seconds (≥ 5)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between one card and the next registration")
    parser.add_argument("--skip-polling", action="store_true")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    from bot.web import mlflow_webhook
    from tests.slack_fake import SlackFake
    from tests.support.mlflow_server import MlflowProcess, MlflowRpc

    def log(message: str) -> None:
        print(message, flush=True)

    venv = Path(os.environ.get("MODELBOT_MLFLOW_VENV") or BENCH_DIR / ".venv-mlflow")
    python = ensure_venv(venv, ["mlflow==3.17.2"], log=log)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="bench-mlflow-sync-"))
    os.environ["MODELBOT_BENCH_MLFLOW_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    rows: list[list[str]] = []
    mlflow = MlflowProcess(python, root / "mlflow", webhooks=True)
    (root / "mlflow").mkdir()
    log(f"starting mlflow server 3.17.2 at {mlflow.url} …")
    mlflow.start()
    rpc = MlflowRpc(python, mlflow.url)
    slack = SlackFake()
    slack.start()
    slack.add_channel(APPROVALS, name="model-approvals")
    slack.add_user("U0APPR", name="appr")
    try:
        model = "bench-webhooks"
        with running_bot(root / "webhooks", slack, mlflow.url, model, args.poll_interval, scheduler=False) as bot:
            from bot.cli.main import main as modelbot

            os.environ.update({"MODELBOT_DATABASE_URL": f"sqlite:///{root / 'webhooks' / 'modelbot.db'}",
                               "MODELBOT_CONFIG": str(root / "webhooks" / "modelbot.toml")})
            if modelbot(["mlflow", "setup", "--public-url", bot.url]) != 0:
                raise SystemExit("modelbot mlflow setup failed")
            log(f"webhooks: registering {args.versions} versions, one at a time …")
            webhook = register_to_card(rpc, bot, model, args.versions, gap=args.gap, jitter=0.0, rng=rng, log=log)
            rows.append(row(f"register → card, webhooks ({mlflow_webhook.WEBHOOK_PATH})", webhook, "p95 ≤ 2 s"))
            approve = list(range(1, min(args.approvals, args.versions) + 1))
            log(f"approving {len(approve)} versions for production in Slack …")
            rows.append(row("Slack approval → alias visible (get_model_version_by_alias)",
                            approvals_to_alias(rpc, bot, model, approve, log), "—"))
            rows.append(row("by hand: set_registered_model_alias → visible (the floor)", by_hand(rpc, model, approve),
                            "—"))
        if not args.skip_polling:
            model = "bench-polling"
            rpc.call("delete_webhooks")  # the poll alone follows MLflow now
            with running_bot(root / "polling", slack, mlflow.url, model, args.poll_interval, scheduler=True) as bot:
                log(f"polling every {args.poll_interval} s: registering {args.versions} versions …")
                polled = register_to_card(rpc, bot, model, args.versions, gap=0.2, jitter=args.poll_interval,
                                          rng=rng, log=log)
                rows.append(row(f"register → card, polling every {args.poll_interval} s", polled,
                                f"p95 ≤ {args.poll_interval + 2} s"))
    finally:
        rpc.close()
        slack.stop()
        mlflow.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(["path", "n", "p50", "p95", "max", "target"], rows)
    print(json.dumps({"rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
