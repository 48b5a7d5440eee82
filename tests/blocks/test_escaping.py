"""Hostile text in every message modelbot sends (issue 11, defect 5): blocks *and* the top-level
`text` that notifications show go through the one escape function.

Nothing here lists renderers by hand, so renderers added later are covered:

* **Outbox templates** are discovered from the template registry (`bot.blocks.templates`). Each
  has a payload in `template_examples.json` (captured from real outbox rows), or a list of them
  when its states render differently (a moot, rejected or overridden request; an aborted canary);
  a template without one fails the test. Every string in the payload that the renderer shows is found by probing
  (a string it parses, such as a time or a state, is left alone), and hypothesis fills those with
  hostile text: `<!channel>`, `<@U1>`, `<https://x|y>`, `&`, right-to-left marks, 100 KB.
* **Command replies** are discovered from the grammar (`bot.commands.SPECS`): every usage line is
  turned into a command and run through the shell door against a registry whose descriptions,
  tags, reasons and metrics carry hostile text, with the hostile text as the free-text argument.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot import commands, handlers
from bot.blocks import templates
from bot.blocks.base import MAX_FALLBACK_TEXT, Message
from bot.config.settings import Settings
from bot.domain.errors import ModelbotError
from bot.domain.registry import NewVersion
from bot.listeners.replies import error_message
from bot.services import Services, open_services
from storage.models import OutboxMessage

EXAMPLES = json.loads((Path(__file__).with_name("template_examples.json")).read_text())
PIECES = ["<!channel>", "<!here>", "<@U1>", "<#C1>", "<https://x|y>", "&", "&amp;", "<", ">", "\u202e", "\u200f",
          "*bold*", "`code`", "ünï", "🚀", " "]
HOSTILE = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), min_size=1, max_size=8).map("".join)
HUGE = st.sampled_from(PIECES).map(lambda p: (p + "x") * (100_000 // (len(p) + 1)))  # 100 KB
HOSTILE_NAME = st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join)
# keys whose values the domain validates (names of at most 64 characters, time zones) before they are written:
# they get hostile characters, not hostile lengths
NAMES = {"model", "environment", "environments", "metric", "channel", "timezone"}
PROBE = "<!channel> & <@U1>"
# markup modelbot itself writes: mentions of real Slack ids, channel links, links with a label
OURS = re.compile(r"<@[UW][A-Z0-9]{2,}>|<#[CGD][A-Z0-9]+>|<https?://[^\s<>|]+\|[^<>]*>")
# no shrinking: a failing 100 KB example would take minutes to shrink, and the draws name the field
FUZZ = settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def assert_escaped(mrkdwn: str, where: str) -> None:
    """No markup but ours, and every `&` the start of an entity."""
    left = OURS.sub("", mrkdwn)
    assert "<" not in left and ">" not in left, (where, mrkdwn[:300])
    assert not re.search(r"&(?!amp;|lt;|gt;)", mrkdwn), (where, mrkdwn[:300])


def mrkdwn_texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from mrkdwn_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from mrkdwn_texts(value)


def assert_safe(message: Message, where: str) -> None:
    assert message.text and len(message.text) <= MAX_FALLBACK_TEXT
    assert_escaped(message.text, f"{where}: text")
    for text in mrkdwn_texts(message.blocks):
        assert_escaped(text, f"{where}: blocks")


# ---- outbox templates -------------------------------------------------------------------------------


def registered() -> list[str]:
    templates._load_renderers()
    return sorted(templates.TEMPLATES)


def payloads(name: str) -> list[Any]:
    """The example payloads of a template: one, or a list of its states."""
    found = EXAMPLES.get(name, [])
    return found if isinstance(found, list) else [found]


def examples() -> list[Any]:
    return [pytest.param(name, payload, id=f"{name}-{i}")
            for name in registered() for i, payload in enumerate(payloads(name))]


def test_every_template_has_an_example() -> None:
    missing = [name for name in registered() if not payloads(name)]
    assert not missing, f"add a payload for {missing} to tests/blocks/template_examples.json"


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    elif isinstance(node, str):
        yield path


def replaced(data: Any, values: dict[tuple[Any, ...], str]) -> Any:
    out = copy.deepcopy(data)
    for path, value in values.items():
        node = out
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return out


def key_of(path: tuple[Any, ...]) -> str:
    """The key a leaf is under (for a list entry, the list's key)."""
    return next((step for step in reversed(path) if isinstance(step, str)), "")


def shown_leaves(name: str, payload: Any) -> list[tuple[Any, ...]]:
    """The strings the renderer shows rather than parses: those it renders with any text in them."""
    free = []
    for path in leaves(payload):
        try:
            templates.render(name, replaced(payload, {path: PROBE}))
        except (ValueError, KeyError, TypeError):
            continue
        free.append(path)
    return free


@pytest.mark.parametrize(("name", "payload"), examples())
def test_example_renders_escaped(name: str, payload: Any) -> None:
    assert_safe(templates.render(name, payload), name)
    assert shown_leaves(name, payload), f"{name}: no string of its payload is shown?"


@pytest.mark.parametrize(("name", "payload"), examples())
@FUZZ
@given(data=st.data())
def test_hostile_payloads_render_escaped(name: str, payload: Any, data: st.DataObject) -> None:
    shown = shown_leaves(name, payload)
    names = {path for path in shown if key_of(path) in NAMES}
    values = {path: data.draw(HOSTILE_NAME if path in names else HOSTILE, label=str(path)) for path in shown}
    texts = [path for path in shown if path not in names]
    if texts:  # one free-text field 100 KB long (a pasted log as a reason, say)
        values[data.draw(st.sampled_from(texts), label="100 KB in")] = data.draw(HUGE, label="100 KB")
    assert_safe(templates.render(name, replaced(payload, values)), name)


# ---- command replies --------------------------------------------------------------------------------

PLACEHOLDERS = {
    "MODEL": "churn", "MODEL|*": "churn", "REF": "1", "ENV": "production",
    "PERCENT": "10", "REQUEST": "1", "COMMAND": "promote", "RULE": "1", "SILENCE": "1", "METRIC": "error_rate",
    "OP": ">", "THRESHOLD": "0.5", "DURATION": "1h", "D": "5m", "#channel": "C0GENERAL", "#channel|all": "all",
    "DAY": "mon", "HH:MM": "09:00", "TZ": "UTC", "daily|weekly|hourly": "daily", "abort|promote": "abort",
}


def invocation(usage: str, hostile: str) -> str:
    """The first form of a usage line with every placeholder filled and optional parts included;
    free text (`reason…`, `REASON…`) is the hostile text."""
    words = []
    first = usage.split(" | ")[0].replace("MODEL[@ENV]", "churn@production")
    for raw in first.replace("[", " ").replace("]", " ").split():
        word = raw.rstrip(".")
        if word in ("…", "REF…"):
            continue
        if word.lower().startswith("reason"):
            words.append(json.dumps(hostile))
        else:
            words.append(PLACEHOLDERS.get(word, word))
    return " ".join(words)


@pytest.fixture(scope="module")
def hostile_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    path = tmp_path_factory.mktemp("escaping")
    policy = path / "modelbot.toml"
    policy.write_text('announce_channel = "C0GENERAL"\n[environments.staging]\napprovals = 0\n'
                      '[environments.production]\napprovals = 1\napproval_channel = "C0APPROVALS"\n')
    services = open_services(Settings(database_url=f"sqlite:///{path / 'm.db'}", config_path=policy,
                                      config_required=True))
    text = "".join(p for p in PIECES if p.isprintable())  # the registry refuses control characters
    for version in (1, 2):
        services.registry.register(NewVersion(
            model="churn", artifact_uri=f"s3://m/{text}/{version}", actor=f"ci {text}", description=text * 3,
            tags={"team": text, "note": "&" * 50}, metrics={"auc": 0.9 + version / 100},
            params={"p": text}))
    services.deployments.request_promotion("churn", "1", "staging", requester="U0ALICE", reason=text)
    pending = services.deployments.request_promotion("churn", "2", "production", requester="U0ALICE", reason=text)
    assert pending.request is not None
    # audited refusals (shown by `history` and `requests`): four-eyes, and a stranger's cancel
    for refused in (lambda: services.deployments.vote(pending.request.id, "U0ALICE", "approve", reason=text),
                    lambda: services.deployments.cancel(pending.request.id, f"ci {text}", reason=text)):
        with pytest.raises(ModelbotError):
            refused()
    yield services
    services.close()


def run(services: Services, text: str) -> Message:
    try:
        return handlers.run_text(services, handlers.Actor(user_id="U0BOB", channel_id="C0GENERAL"), text)
    except ModelbotError as exc:
        return error_message(exc)[0]


@pytest.mark.parametrize("name", sorted(commands.SPECS))
def test_every_command_reply_is_escaped(hostile_services: Services, name: str) -> None:
    spec = commands.SPECS[name]
    for hostile in ("".join(PIECES), "<!channel> ship it", "&" * 10):
        text = invocation(spec.usage, hostile)
        assert_safe(run(hostile_services, text), text)
    assert_safe(run(hostile_services, f"help {name}"), f"help {name}")


def test_a_promotion_refused_for_a_running_canary_is_escaped(tmp_path: Path) -> None:
    """The refusal that carries its way out as a button (abort the canary, then promote)."""
    policy = tmp_path / "modelbot.toml"
    policy.write_text("[environments.staging]\napprovals = 0\n")
    services = open_services(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", config_path=policy,
                                      config_required=True))
    try:
        for version in (1, 2, 3):
            services.registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/churn/{version}", actor="ci"))
        services.deployments.request_promotion("churn", "1", "staging", requester="U0ALICE")
        services.deployments.set_canary("churn", "2", "staging", 10, actor="U0ALICE")
        for hostile in ("".join(PIECES), "<!channel> ship it", "&" * 2000):
            reply = run(services, f"promote churn 3 staging {json.dumps(hostile)}")
            assert "canary" in reply.text
            assert_safe(reply, "promote during a canary")
    finally:
        services.close()


@FUZZ
@given(hostile=st.one_of(HOSTILE, HUGE))
def test_promote_with_any_reason_is_escaped_in_the_reply_and_the_announcement(hostile_services: Services,
                                                                            hostile: str) -> None:
    """The issue's example, `/model promote churn 1 staging <!channel> ship it`, and worse: the reply
    and every message the promotion causes (rendered from the outbox rows it wrote)."""
    services = hostile_services
    version = 2 if services.registry.environment_state("churn", "staging").stable == 1 else 1
    with services.db.read() as session:
        before = session.exec(select(sa.func.max(OutboxMessage.id))).one() or 0
    reason = json.dumps(hostile[:3000])
    assert_safe(run(services, f"promote churn {version} staging {reason}"), "promote")
    with services.db.read() as session:
        written = session.exec(select(OutboxMessage).where(OutboxMessage.id > before)).all()
    announced = [r for r in written if r.kind in ("post", "update", "thread")]
    if services.registry.environment_state("churn", "staging").stable != version:  # refused (control characters)
        assert not written
    else:
        assert announced, "the promotion was announced"
    for row in announced:
        assert_safe(templates.render(row.template, row.data), row.template)
