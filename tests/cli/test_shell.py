"""`modelbot shell`: the newcomer's path and the scripted path, through real processes.

The shell is driven as users drive it: `python -m bot.cli shell` with piped stdin against a
temporary SQLite file. The block→text renderer is tested on blocks from the real renderers.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import commands, handlers
from bot.blocks import compare as compare_blocks
from bot.blocks import help as help_blocks
from bot.blocks import registry as registry_blocks
from bot.blocks.base import Message, actions, button, confirm, section
from bot.blocks.text import ANSI, render
from bot.cli.console import Shell
from bot.cli.demo import DEMO_MODELS
from bot.cli.terminal import piped_reader
from bot.commands.grammar import CommandSpec
from bot.config.settings import Settings
from bot.domain.compare import compare
from bot.domain.entities import ModelSummary, Page, Version
from bot.domain.registry import NewVersion, Registry
from bot.listeners.replies import error_message
from bot.services import open_services
from storage.db import Database, DatabaseSettings
from storage.queries import registry as queries

HOSTILE = "<!channel> & <@U123>"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'modelbot.db'}"


def shell(db_url: str, stdin: str, *args: str, cwd: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    """Run `modelbot shell ARGS` with STDIN piped in; returns the finished process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBOT_", "SLACK_"))}
    environment.update({"MODELBOT_DATABASE_URL": db_url, "PYTHONIOENCODING": "utf-8", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell", *args], input=stdin, capture_output=True, text=True,
        encoding="utf-8", cwd=cwd, env=environment, timeout=120, check=False,
    )


def row_counts(url: str) -> dict[str, int]:
    db = Database(DatabaseSettings(url=url))
    try:
        with db.read() as session:
            return queries.row_counts(session)
    finally:
        db.dispose()


# ---- through real processes -------------------------------------------------------------


def test_demo_then_list_shows_the_demo_models(db_url: str, tmp_path: Path) -> None:
    done = shell(db_url, "/model list\n", "--demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for model in DEMO_MODELS:
        assert model.name in done.stdout
    assert "production v2" in done.stdout  # churn was rolled back from v3 to v2
    assert "modelbot (" not in done.stdout  # piped: no prompt, no banner, only answers
    assert "── only @you can see this · #ml-team\nModels (4)\n" in done.stdout
    assert "Traceback" not in done.stderr


def test_compare_prints_a_side_by_side_table(db_url: str, tmp_path: Path) -> None:
    done = shell(db_url, "/model compare churn 2 3\ncompare churn 2 3\n", "--demo", "--no-preview", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("\n\n")[:2]
    assert first == second  # with or without `/model`, the same answer
    assert "churn: v2 vs v3" in first
    table = [line for line in first.splitlines() if line.startswith("  ")]
    assert table[0].split() == ["metric", "v2", "v3", "Δv3"]
    rows = {line.split()[0]: line for line in table[2:]}
    assert rows["auc"].rstrip().endswith("▲")
    assert rows["latency_p95_ms"].rstrip().endswith("▼")  # slower is worse
    assert "max_depth: v2 `6`  v3 `8`" in first


def test_demo_twice_does_not_duplicate(db_url: str, tmp_path: Path) -> None:
    assert shell(db_url, "", "--demo", cwd=tmp_path).returncode == 0
    once = row_counts(db_url)
    assert once["registered_models"] == len(DEMO_MODELS)
    assert once["model_versions"] == sum(len(m.versions) for m in DEMO_MODELS)
    again = shell(db_url, "", "--demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already present" in again.stderr
    assert row_counts(db_url) == once


def test_bad_commands_print_the_error_and_usage_and_the_shell_goes_on(db_url: str, tmp_path: Path) -> None:
    done = shell(db_url, '/model show\nfrobnicate now\nshow "unclosed\nshow nosuchmodel\n/model list\n',
                 cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answers = done.stdout.strip().split("\n\n")
    assert len(answers) == 5
    assert "⚠️ Missing the model name" in answers[0]
    assert "Usage: `/model show MODEL [REF]`" in answers[0]
    assert "There is no command 'frobnicate'" in answers[1] and "Usage: `/model help`" in answers[1]
    assert "A quote is not closed" in answers[2]
    assert "There is no model named 'nosuchmodel'" in answers[3]
    assert "No models registered yet." in answers[4]
    assert "Traceback" not in done.stderr


def test_next_page_button_is_clicked_by_its_number(db_url: str, tmp_path: Path) -> None:
    db = Database(DatabaseSettings(url=db_url))
    db.upgrade()
    registry = Registry(db)
    names = [f"model-{i:02d}" for i in range(23)]
    for name in names:
        registry.register(NewVersion(model=name, artifact_uri=f"s3://b/{name}/1", actor="ci"))
    db.dispose()

    done = shell(db_url, "/model list\n1\nclick 1\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, clicked, no_more = done.stdout.strip().split("\n\n")
    assert "Showing 1–20 of 23." in first and "[1] Next page" in first
    assert all(name in first for name in names[:20]) and names[20] not in first
    assert clicked.startswith("── only @you can see this · #shell · message updated\nModels (23)")
    assert all(name in clicked for name in names[20:]) and names[0] not in clicked
    assert "Next page" not in clicked
    assert no_more == "There is no button to click: 1 would click a numbered button like [1]."


def test_user_and_channel_flags_set_the_actor(db_url: str, tmp_path: Path) -> None:
    done = shell(db_url, "list share\nlist\n", "--user", "U123", "--channel", "C042", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "── #C042 · posted for @U123" in done.stdout
    assert "── only @U123 can see this · #C042" in done.stdout
    from_env = shell(db_url, "list\n", cwd=tmp_path, env={"MODELBOT_SHELL_USER": "U777"})
    assert from_env.stdout.startswith("── only @U777 can see this · #shell")


def test_exit_ends_the_shell(db_url: str, tmp_path: Path) -> None:
    done = shell(db_url, "help\nexit\nlist\n", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.count("can see this") == 1


# ---- the actor reaches dispatch, and confirm dialogs (in-process, real services) --------


@dataclass(frozen=True)
class _WhoAmI(commands.Command):
    @property
    def name(self) -> str:
        return "whoami"


WHOAMI_ACTION = "modelbot_test_whoami"


@pytest.fixture
def whoami() -> Iterator[None]:
    """A test-only command with a confirm button, plugged in the way feature modules add theirs."""

    def handler(services: object, actor: handlers.Actor, cmd: _WhoAmI) -> Message:
        button_ = button("Approve", WHOAMI_ACTION, "v7",
                         confirm=confirm("Approve v7?", "This *moves* production.", "Approve", danger=True))
        return Message.build("whoami", [section(f"command from {actor.user_id} in {actor.channel_id}"),
                                        actions(button_)])

    def clicked(services: object, event: handlers.Click) -> handlers.ClickResult:
        note = Message.build("ok", [section(f"clicked {event.value} by {event.actor.user_id}")])
        return handlers.ClickResult(ephemeral=note)

    commands.SPECS["whoami"] = CommandSpec("whoami", "whoami", "test only", lambda args: _WhoAmI())
    handlers.HANDLERS[_WhoAmI] = handler
    handlers.CLICK_HANDLERS[WHOAMI_ACTION] = clicked
    try:
        yield
    finally:
        del commands.SPECS["whoami"], handlers.HANDLERS[_WhoAmI], handlers.CLICK_HANDLERS[WHOAMI_ACTION]


def test_actor_reaches_commands_and_clicks_and_confirm_is_asked(whoami: None, db_url: str) -> None:
    services = open_services(Settings(database_url=db_url))
    out = io.StringIO()
    try:
        stdin = io.StringIO("/model whoami\n1\nn\n1\nyes\n")
        Shell(services, handlers.Actor("U123", "C9"), read_line=piped_reader(stdin, echo=out), out=out).run()
    finally:
        services.close()
    text = out.getvalue()
    assert "command from U123 in C9\n[1] Approve" in text
    assert "Approve v7? — This moves production.\nConfirm? [y/N] n\nCancelled; nothing changed." in text
    assert text.count("clicked v7 by U123") == 1
    assert "── only @U123 can see this · #C9\nclicked v7 by U123" in text


# ---- block → text on the real renderers ---------------------------------------------------


def _version(number: int, **changes: object) -> Version:
    base: dict[str, object] = dict(
        model="churn", version=number, artifact_uri=f"s3://b/churn/{number}", created_by="ci",
        created_at=datetime(2025, 1, number, tzinfo=UTC), metrics={"auc": 0.8, "latency_p95_ms": 20.0},
        params={"max_depth": "6"},
    )
    base.update(changes)
    return Version(**base)  # type: ignore[arg-type]


def test_hostile_description_reads_literally() -> None:
    detail = registry_blocks.version_detail(_version(1, description=HOSTILE, created_by="<@U999>"))
    assert "&lt;!channel&gt;" in str(detail.blocks)  # escaped for Slack …
    text = render(detail.blocks).text
    assert HOSTILE in text.splitlines()  # … and literal in the terminal
    assert "By: <@U999>" in text
    summary = ModelSummary("churn", HOSTILE, "ci", datetime(2025, 1, 1, tzinfo=UTC), 3, {"production": 2})
    listed = render(registry_blocks.model_list(Page((summary,), 1, 0, 20), ("staging", "production")).blocks)
    assert listed.text.splitlines()[2:] == ["churn  latest v3  ·  staging – · production v2", HOSTILE]


def test_version_detail_fields_header_and_emphasis() -> None:
    blocks = registry_blocks.version_detail(_version(3, run_id="run-1", source="git@abc")).blocks
    lines = render(blocks).text.splitlines()
    assert lines[:2] == ["churn v3", "────────"]
    assert "Artifact `s3://b/churn/3`" in lines
    assert "Status: ready" in lines and "Run: `run-1`" in lines and "Source: `git@abc`" in lines
    assert "Metrics" in lines and "auc = 0.8" in lines and "*" not in "\n".join(lines)
    assert "\x1b[1mMetrics\x1b[0m" in render(blocks, style=ANSI).text


def test_comparison_table_stays_monospace() -> None:
    message = compare_blocks.comparison(compare([_version(2), _version(3, metrics={"auc": 0.85,
                                                                                    "latency_p95_ms": 25.0},
                                                                       params={"max_depth": "8"})]))
    text = render(message.blocks).text
    table = [line for line in text.splitlines() if line.startswith("  ")]
    code = message.blocks[2]["text"]["text"].strip("`").splitlines()
    assert table == ["  " + line for line in code]  # column alignment kept, character for character
    assert table[0].split() == ["metric", "v2", "v3", "Δv3"]
    assert "+0.05 ▲" in table[2] and "+5 ▼" in table[3]
    assert "Params that differ\n• max_depth: v2 `6`  v3 `8`" in text


def test_error_and_help_messages() -> None:
    message, outcome = error_message(commands.UsageError("No model 'x & y'.", "/model show MODEL [REF]"))
    assert outcome == "usage_error"
    assert render(message.blocks).text == (
        "⚠️ No model 'x & y'.\nUsage: `/model show MODEL [REF]`")
    assert "`/model list [MODEL]` — models" in render(help_blocks.help_all().blocks).text


def test_pager_buttons_are_numbered_from_the_given_start() -> None:
    summaries = tuple(ModelSummary(f"m{i}", None, None, datetime(2025, 1, 1, tzinfo=UTC), 1) for i in range(20))
    message = registry_blocks.model_list(Page(summaries, 45, 0, 20), ("staging", "production"))
    rendered = render(message.blocks, first_button=4)
    assert rendered.text.endswith("Showing 1–20 of 45.\n[4] Next page")
    (only,) = rendered.buttons
    assert (only.number, only.action_id, only.value) == (4, registry_blocks.PAGE_ACTION, '{"c":"list","o":20}')
    assert only.confirm is None


def test_mrkdwn_markup_and_entities() -> None:
    blocks = Message.build("fallback", [
        section("*bold* _it_ ~gone~ snake_case_name 2*3*4 <@U1|alice> <#C1|ml> <!here> "
                "<https://x.test/a|docs> :warning: `a &amp; *b*` &lt;b&gt;"),
        actions(button("Roll back", "modelbot_rollback", "1",
                       confirm=confirm("Roll back?", "Back to *v2*", "Roll back", danger=True))),
    ]).blocks
    rendered = render(blocks)
    assert rendered.text.splitlines()[0] == (
        "bold it gone snake_case_name 2*3*4 @alice #ml @here docs (https://x.test/a) ⚠️ `a & *b*` <b>")
    (rollback,) = rendered.buttons
    assert rollback.confirm is not None and rollback.confirm.text == "Back to v2"
    assert render([], fallback="only *text*").text == "only text"
