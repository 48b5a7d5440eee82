"""Issue 11, defect 5, through `modelbot serve` as a process: `/model promote churn 1 staging
<!channel> ship it` used to post an announcement whose top-level `text` (what notifications
show) carried the raw `<!channel>`. Here hostile text travels as people type it (signed slash
commands and a button click over HTTP) and everything the server then sends to Slack (replies,
the announcement, the approval card, its update, the thread reply, the ephemeral link) is checked
as Slack receives it: `text` and every mrkdwn block escaped, with the text still there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlmodel import select

from bot.blocks.approvals import APPROVE_ACTION
from bot.config.settings import Settings
from bot.domain.registry import NewVersion
from bot.services import open_services
from storage.models import ChangeRequest
from tests.blocks.test_escaping import assert_escaped, mrkdwn_texts
from tests.slack_fake import RESPONSE_URL_METHOD, ResponsePost, SlackFake, sign_request
from tests.slack_support import REPO, SIGNING_SECRET, stderr_lines, wait_for_line

GENERAL, APPROVALS = "C0GENERAL", "C0APPROVALS"
STAGING_REASON = "<!channel> ship it"
PRODUCTION_REASON = "<!here> & <@U1> <https://evil.example|click> \u202e"
POLICY = f"""
announce_channel = "{GENERAL}"
[environments.staging]
approvals = 0
[environments.production]
approvals = 1
approvers = ["U0APPR1"]
approval_channel = "{APPROVALS}"
"""
SENDING = ("chat.postMessage", "chat.update", "chat.postEphemeral", RESPONSE_URL_METHOD)


@dataclass
class Served:
    url: str
    slack: SlackFake
    database_url: str
    counter: int = 0

    def post(self, body: bytes) -> None:
        response = requests.post(self.url + "/slack/events", data=body, timeout=10, headers={
            **sign_request(SIGNING_SECRET, body), "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200, response.text

    def command(self, text: str, user: str) -> ResponsePost:
        self.counter += 1
        name = f"cmd-{self.counter}"
        self.post(self.slack.slash_command_body(text, response_name=name, user_id=user, channel_id=GENERAL))
        return self.slack.wait_for_responses(name, 1, 30)[0]

    def click(self, action_id: str, value: str, user: str) -> ResponsePost:
        self.counter += 1
        name = f"click-{self.counter}"
        self.post(self.slack.block_actions_body(action_id, value, response_name=name, user_id=user,
                                                channel_id=APPROVALS))
        return self.slack.wait_for_responses(name, 1, 30)[0]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    channels = {GENERAL: {"name": "general"}, APPROVALS: {"name": "model-approvals"}}
    with SlackFake(channels=channels) as slack:
        for user in ("U0DEPLOY", "U0APPR1"):
            slack.add_user(user)
        policy = tmp_path / "modelbot.toml"
        policy.write_text(POLICY)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
        env.update({"MODELBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "MODELBOT_CONFIG": str(policy),
                    "MODELBOT_SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                    "SLACK_SIGNING_SECRET": SIGNING_SECRET, "MODELBOT_OUTBOX_POST_INTERVAL": "0"})
        services = open_services(Settings.from_env(env))
        for version in (1, 2):
            services.registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/churn/{version}", actor="ci"))
        services.close()
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--http", "--port", "0"], cwd=REPO,
                                env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        seen: list[str] = []
        try:
            url = wait_for_line(stderr_lines(proc), r"listening on (http://\S+)", seen).group(1)
            yield Served(url, slack, env["MODELBOT_DATABASE_URL"])
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_hostile_reasons_reach_slack_escaped_in_text_and_blocks(served: Served) -> None:
    slack = served.slack
    served.command(f"promote churn 1 staging {STAGING_REASON}", "U0DEPLOY")
    served.command(f"promote churn 2 production {json.dumps(PRODUCTION_REASON)}", "U0DEPLOY")
    card = slack.wait_for(lambda: (slack.messages(APPROVALS) or [None])[0], timeout=30, what="the approval card")
    services = open_services(Settings(database_url=served.database_url))
    try:
        with services.db.read() as session:
            [request] = session.exec(select(ChangeRequest)).all()
    finally:
        services.close()
    served.click(APPROVE_ACTION, json.dumps({"r": request.id}), "U0APPR1")
    slack.wait_for(lambda: slack.thread(APPROVALS, card.ts), timeout=30, what="the outcome in the card's thread")
    slack.wait_for(lambda: slack.messages(APPROVALS)[0].history, timeout=30, what="the card's update")

    [announcement] = slack.messages(GENERAL)
    assert "&lt;!channel&gt; ship it" in announcement.text  # the reason is shown, escaped, in the notification
    sent = [c for c in slack.calls if c.method in SENDING]
    assert {c.method for c in sent} == set(SENDING), [c.method for c in sent]
    for call in sent:
        text = call.args.get("text")
        assert text, (call.method, call.args)
        assert_escaped(text, f"{call.method}: text")
        for mrkdwn in mrkdwn_texts(call.args.get("blocks") or []):
            assert_escaped(mrkdwn, f"{call.method}: blocks")
    card_texts = json.dumps([c.args.get("blocks") for c in sent if c.method in ("chat.postMessage", "chat.update")])
    assert "&lt;!here&gt; &amp; &lt;@U1&gt; &lt;https://evil.example|click&gt;" in card_texts
