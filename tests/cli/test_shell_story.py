"""The demo as a whole story, in-process with a clock the test moves: every message template the bot
has reaches the shell's preview, labelled with where Slack would show it, and no Slack markup
(`:shortcode:`, `<#C…>`, `<@U…>`, `<!…>`) reaches the terminal.

The story is driven like a user drives the shell (lines typed into `Shell`, buttons clicked by the
numbers printed on screen); between lines the test only moves the clock or records monitoring
samples, as time and a metric source would. The database is a real SQLite file; the outbox rows
the preview delivered are read back from it to prove which templates were shown.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import handlers
from bot.blocks import templates
from bot.blocks.text import Names, render
from bot.cli import demo
from bot.cli.console import Directory, Shell
from bot.config.settings import Settings
from bot.domain.mlflow.inbound import Delivery, MlflowSync
from bot.domain.mlflow.settings import SyncSettings
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.services import Services, open_services
from storage.models import OutboxMessage
from tests.domain.test_mlflow_rules import MemoryMlflow

START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
RAW_MARKUP = re.compile(r":[a-z0-9_+'-]+:|<#C[A-Z0-9]*[>|]|<@[UW][A-Z0-9]*[>|]|<![a-z^]")
# Upload rows are files, not messages: the preview writes them to the charts folder.
UPLOADS = {"alert_chart", "digest_chart"}
HOME = "home_refresh"
# Templates only failing deliveries cause: the preview sends nothing, so nothing fails in the story
# (a paused destination's notice; how it reads in a terminal is checked on its own below).
AFTER_FAILURES = {"delivery_paused"}

Step = str | Callable[[], "str | None"]
# MLflow as issue 14's rule tests stand it in (its registry protocol, in memory): its webhooks reach the sync
MLFLOW = SyncSettings(tracking_uri="http://mlflow.test", aliases={"staging": "staging", "production": "champion"},
                      new_version_channel="C0DEPLOYS", models=("recommender",))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Story:
    """A shell fed line by line from a list of steps; a callable step runs (moving time, recording
    samples) and may return the line to type, such as a button number read off the screen."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock(START)
        self.services: Services = open_services(Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}"),
                                                policy=demo.demo_policy(), clock=self.clock)
        demo.seed(self.services)
        self.out = io.StringIO()
        self.memory_mlflow = MemoryMlflow()
        self.charts = tmp_path / "charts"
        self.steps: Iterator[Step] = iter(())
        self.shell = Shell(
            self.services, handlers.Actor(demo.YOU, demo.HOME_CHANNEL), read_line=self.read, out=self.out,
            directory=Directory(Names(users={v: k for k, v in demo.PEOPLE.items()}, channels=demo.CHANNELS),
                                demo.PEOPLE),
            charts_dir=self.charts, preview=True,
        )

    def read(self, prompt: str) -> str | None:
        for step in self.steps:
            line = step() if callable(step) else step
            if line is not None:
                if prompt != self.shell.prompt:  # a question (confirm, modal field): keep it in the transcript
                    print(prompt.rstrip(), line, file=self.out)
                return line
        return None

    def run(self, steps: list[Step]) -> None:
        self.steps = iter(steps)
        self.shell.run()

    def button(self, label: str) -> Callable[[], str]:
        """The number of the newest button whose label starts with `label`, as printed on screen."""

        def find() -> str:
            numbers = re.findall(r"\[(\d+)\] " + re.escape(label), self.out.getvalue())
            assert numbers, f"no button {label!r} on screen"
            return numbers[-1]

        return find

    def later(self, **delta: float) -> Callable[[], str]:
        """Let time pass; the next line (`/as` of whoever acts) gives the shell its turn."""

        def advance() -> str:
            self.clock.advance(**delta)
            return f"/as {self.who}"

        return advance

    @property
    def who(self) -> str:
        return next(name for name, uid in demo.PEOPLE.items() if uid == self.shell.actor.user_id)

    def rule_id(self, prefix: str) -> Callable[[], str]:
        """`/model alert rm N` for the newest listed rule whose line starts with `prefix` after its id."""

        def remove() -> str:
            ids = re.findall(r"#(\d+) " + re.escape(prefix), self.out.getvalue())
            assert ids, f"no rule {prefix!r} listed"
            return f"/model alert rm {ids[-1]}"

        return remove

    def mlflow(self, event: str, change: Callable[[MemoryMlflow], None], **data: str) -> Callable[[], str]:
        """Something changes in MLflow and its webhook arrives; the shell then gets its turn."""

        def deliver() -> str:
            change(self.memory_mlflow)
            MlflowSync(self.services.registry, self.services.policy, MLFLOW, self.memory_mlflow).receive(
                Delivery(delivery_id=f"{event}:{sorted(data.items())}", event=event, data=data))
            return f"/as {self.who}"

        return deliver

    def record(self, model: str, env: str, metric: str, value: float) -> Callable[[], None]:
        def record() -> None:
            version = self.services.registry.environment_state(model, env).stable
            Samples(self.services.registry).record([SampleIn(model, env, metric, value, self.clock(), version=version)],
                                                   source="test")

        return record

    def delivered(self) -> list[tuple[str, str, str]]:
        with self.services.registry.reading() as session:
            return [tuple(r) for r in session.execute(  # type: ignore[misc]
                sa.select(OutboxMessage.kind, OutboxMessage.template, OutboxMessage.status).order_by(OutboxMessage.id))]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    s = Story(tmp_path_factory.mktemp("story"))
    b = s.button
    s.run([
        "/model subscribe churn daily 09:00 UTC",  # its first digest goes out the next morning
        # a promotion with a failing gate, rejected by an approver through the modal's question
        "/model promote churn 3 production",
        "/as bob", b("Reject"), "Latency is why we rolled v3 back.",
        # the four-eyes promotion: you ask, alice approves on the card
        "/as you", "/model promote churn 4 production",
        "/as alice", b("Approve"), "y",
        # rollback with one confirm; a staging promotion is announced without approvals
        "/as you", "/model rollback churn production noisy neighbours", b("Roll back"), "y",
        "/model promote ltv.regressor 2 staging",
        # a canary watched by a canary rule that has no data for it yet: inconclusive
        "/model alert add fraud-detector@production error_rate > 0.02 canary",
        "/model canary fraud-detector 5 production 10", s.later(minutes=1),
        b("Go to 25 %"), b("Keep it running"), b("Abort"), "y",
        # the live incident grows (a second rule fires), repeats, is acknowledged and silenced, then resolves
        "/model alert add fraud-detector@production latency_p95_ms > 1 severity critical", s.later(minutes=6),
        s.later(hours=4, minutes=1),
        b("Acknowledge"), b("Silence…"), "2h", "testing the silence", "/model silences", "/model alerts",
        "/model alert list", s.rule_id("fraud-detector@production `latency_p95_ms"),
        s.record("fraud-detector", "production", "error_rate", 0.004), s.later(minutes=1),
        # the digest now, an App Home, a request that expires (the next morning brings the daily digest)
        "/model digest churn", "/home", "/model promote fraud-detector 5 production", s.later(hours=25),
        # MLflow registers a version (a card) and someone moves an alias there by hand (a notice)
        s.mlflow("model_version.created", lambda m: m.add("recommender", 1), name="recommender", version="1"),
        s.mlflow("model_version_alias.created", lambda m: m.move("recommender", "champion", 1), name="recommender",
                 alias="champion"),
    ])
    yield s
    s.shell.close()
    s.services.close()


def test_every_template_reaches_the_shell(story: Story) -> None:
    templates._load_renderers()
    rows = story.delivered()
    assert {status for _, _, status in rows} == {"delivered"}, rows
    shown = {template for _, template, _ in rows}
    assert set(templates.TEMPLATES) - AFTER_FAILURES <= shown, sorted(set(templates.TEMPLATES) - AFTER_FAILURES - shown)
    assert UPLOADS | {HOME} <= shown
    assert {p.suffix for p in story.charts.iterdir()} == {".png"}
    assert len(list(story.charts.iterdir())) >= 3  # alert charts, the scheduled digest's, the digest now


def test_a_paused_destination_reads_cleanly_in_the_terminal() -> None:
    key = "webhook:https://deploy.internal/hook"
    for facts in ({"state": "paused", "failures": 5, "waiting": 3, "paused_until": "2026-11-02T10:05:00Z",
                   "last_error": "connection refused"}, {"state": "resumed", "resumed_at": "2026-11-02T10:06:00Z"}):
        message = templates.render("delivery_paused", {"circuit": key, "opened_at": "2026-11-02T10:00:00Z", **facts})
        text = render(message.blocks, fallback=message.text).text
        assert key in text and not RAW_MARKUP.search(text.replace(key, "")), text  # `webhook:https:` is no emoji


def test_no_slack_markup_reaches_the_terminal(story: Story) -> None:
    transcript = story.out.getvalue()
    assert "Traceback" not in transcript and "Something went wrong" not in transcript, transcript[-3000:]
    leaks = sorted({m.group(0) for m in RAW_MARKUP.finditer(transcript)})
    assert not leaks, leaks
    # names, not ids: the people and channels of the demo read as Slack shows them
    assert "@alice" in transcript and "#model-approvals" in transcript and "U0ALICE" not in transcript


def test_destinations_are_labelled(story: Story) -> None:
    transcript = story.out.getvalue()
    for label in ("── #model-approvals\nPromotion request #1", "── #model-approvals · thread of “Promotion request #2",
                  "── only @you can see this · #ml-team", "── #model-approvals · message updated",
                  "── #model-alerts · thread of", "── App Home of @you", "── #model-deploys\n",
                  "── modal · Reject request", "── modal · Silence alerts", "── #ml-team\nDaily digest: churn",
                  "── #model-alerts · message updated"):
        assert label in transcript, label


def test_the_story_happened(story: Story) -> None:
    """What the transcript says is what the database holds."""
    registry = story.services.registry
    assert registry.environment_state("churn", "production").stable == 2  # approved v4, then rolled back
    assert registry.environment_state("ltv.regressor", "staging").stable == 2
    fraud = registry.environment_state("fraud-detector", "production")
    assert (fraud.stable, fraud.canary) == (4, None)
    transcript = story.out.getvalue()
    assert "Rejected by @bob" in transcript and "Latency is why we rolled v3 back." in transcript
    assert "Approved by @alice" in transcript
    assert "Expired" in transcript  # request #3 ran out of time
    assert "resolved after" in transcript
