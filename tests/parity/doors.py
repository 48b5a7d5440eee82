"""The parity framework: the same action through every door, and what each door answered,
normalised so the answers, the database state and the audit rows can be compared.

    World   one database, the real web app on 127.0.0.1 (Slack's /slack/events and the REST
            API under /api/v1) talking to the fake Slack, API tokens for the personas, the
            environment the CLI reads; built once per test module and backend
    Door    SlackDoor (signed Slack HTTP requests), ShellDoor (bot.cli.console.Shell),
            CliDoor (bot.cli.main.main in-process), RestDoor (real HTTP with tokens)
    Act     a door-neutral action (Promote, Approve, …); a door `offers` an act by registering
            how to perform it, and raises NotOffered otherwise (the table says so)
    Cell    one (case, door): a model of its own (named after both), so cells never meet
    Answer  what the door showed: error or not, and its text with identities, the model
            name and request ids normalised (`U0ALICE` → alice, the model → M, request 12 → R1)

Other features add their acts the same way (see `Door.offers`), in their own modules:

    @dataclass(frozen=True)
    class Subscribe(Act): ...

    @SlackDoor.offers(Subscribe)
    def _subscribe(door: SlackDoor, act: Subscribe, cell: Cell) -> Answer:
        return door.command(cell, act.who, f"subscribe …")

Nothing is mocked: requests are signed with the real secret and travel over HTTP; the CLI is
`bot.cli.main.main` with its arguments; the shell is the console class `modelbot shell` runs.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
import requests
import sqlalchemy as sa

from bot.blocks import approvals as cards
from bot.cli.console import Shell
from bot.cli.main import main as cli_main
from bot.domain.tokens import Tokens
from bot.handlers.base import Actor
from bot.listeners.app import build_app
from bot.services import Services, open_services
from bot.web.api.app import create_api_app
from bot.web.app import SLACK_EVENTS_PATH, create_web_app
from bot.web.server import ServerThread
from storage.models import AuditEvent, ChangeRequest, Deployment, OutboxMessage, RegisteredModel, RequestVote
from tests.conftest import _postgres_database, skip_without_postgres
from tests.slack_fake import SlackFake, sign_request
from tests.slack_support import SIGNING_SECRET, bot_settings, buttons, section_texts

SLACK_CHANNEL = "C0GENERAL"
SHELL_CHANNEL = "C0SHELL"
ALL_SCOPES = "read,versions:write,promotions:request,promotions:approve,metrics:write"


# ---- people ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """One person, known to Slack and the shell by a user id and to the CLI and REST by a name
    (a token name is lower case). Policies name both: `deployers = ["U0ALICE", "alice"]`."""

    name: str
    slack_id: str
    scopes: str = ALL_SCOPES


PERSONAS: dict[str, Persona] = {p.name: p for p in (
    Persona("alice", "U0ALICE"), Persona("bob", "U0BOB"), Persona("carol", "U0CAROL"), Persona("dave", "U0DAVE"),
    Persona("admin", "U0ADMIN"), Persona("eve", "U0EVE"),
)}


def both(*personas: str, known: Mapping[str, Persona] = PERSONAS) -> str:
    """A TOML list naming each persona by both identities, for a policy file."""
    return json.dumps([i for p in personas for i in (known[p].slack_id, p)])


# ---- answers and acts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a door showed: `error` (a warning, exit code ≠ 0, HTTP ≥ 400) and its text, normalised."""

    error: bool
    text: str


class NotOffered(Exception):
    """This door has no way to do this act."""


@dataclass(frozen=True)
class Act:
    """A door-neutral action by a persona (`who`). Subclasses add what the action needs."""

    who: str


A = TypeVar("A", bound=Act)
Perform = Callable[[Any, Any, "Cell"], Answer]


class Door:
    """A way into modelbot. Subclasses register how they perform each act with `offers`."""

    name: ClassVar[str]
    acts: ClassVar[dict[type[Act], Perform]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.acts = {}

    @classmethod
    def offers(cls, *kinds: type[A]) -> Callable[[Callable[[Any, A, Cell], Answer]], Callable[[Any, A, Cell], Answer]]:
        def register(perform: Callable[[Any, A, Cell], Answer]) -> Callable[[Any, A, Cell], Answer]:
            for kind in kinds:
                cls.acts[kind] = perform
            return perform

        return register

    def __init__(self, world: World) -> None:
        self.world = world

    def identity(self, persona: str) -> str:
        return self.world.personas[persona].slack_id

    def perform(self, act: Act, cell: Cell) -> Answer:
        perform = type(self).acts.get(type(act))
        if perform is None:
            raise NotOffered(f"{self.name} does not offer {type(act).__name__}")
        return perform(self, act, cell)


# ---- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    """Everything the doors talk to, shared by every cell of a test module (one backend)."""

    backend: str
    database_url: str
    policy_path: Path
    services: Services
    slack: SlackFake
    url: str
    tokens: dict[str, str]
    env: dict[str, str]
    personas: Mapping[str, Persona] = field(default_factory=lambda: PERSONAS)
    http: requests.Session = field(default_factory=requests.Session)
    _names: Iterator[int] = field(default_factory=lambda: iter(range(1_000_000)))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def unique(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-{next(self._names)}"

    def doors(self) -> dict[str, Door]:
        return {door.name: door(self) for door in DOORS}

    def cell(self, case: str, door: Door) -> Cell:
        return Cell(self, door, f"{case}-{door.name}"[:64])


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A fresh database for one test module: a SQLite file, or a scratch PostgreSQL database
    (skipped with a reason without one, required in CI)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'parity.db'}"
        return
    skip_without_postgres()
    created = _postgres_database()
    try:
        yield next(created)
    finally:
        created.close()


@contextlib.contextmanager
def running_world(backend: str, policy: str, directory: Path,
                  personas: Mapping[str, Persona] = PERSONAS) -> Iterator[World]:
    """Start the world on a fresh database under `policy` (TOML text); each persona gets a Slack
    user and an API token with its scopes (add personas with fewer scopes to test scopes)."""
    with database(backend, directory) as url, SlackFake() as slack, pytest.MonkeyPatch.context() as patch:
        policy_path = directory / "modelbot.toml"
        policy_path.write_text(policy)
        env = {"MODELBOT_DATABASE_URL": url, "MODELBOT_CONFIG": str(policy_path), "MODELBOT_DB_LOCK_TIMEOUT": "10"}
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "MODELBOT_ACTOR"):
            patch.delenv(name, raising=False)
        for persona in personas.values():
            slack.add_user(persona.slack_id, name=persona.name)
        services = open_services(bot_settings(url, slack, MODELBOT_CONFIG=str(policy_path)))
        app = build_app(services, "http")
        web = create_web_app(services, app, mounts={"/api/v1": create_api_app(services)})
        server = ServerThread(web).start()
        tokens = Tokens(services.registry)
        secrets = {p.name: tokens.create(p.name, p.scopes, actor="parity", now=services.clock())[1]
                   for p in personas.values()}
        world = World(backend, url, policy_path, services, slack, server.url, secrets, env, personas)
        try:
            yield world
        finally:
            world.http.close()
            server.stop()
            app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
            services.close()


# ---- a cell: one case through one door ------------------------------------------------------------


@dataclass
class Cell:
    world: World
    door: Door
    model: str

    @property
    def services(self) -> Services:
        return self.world.services

    def me(self, persona: str) -> str:
        """The persona as this door knows them."""
        return self.door.identity(persona)

    def model_id(self) -> int | None:
        with self.services.db.read() as session:
            return session.execute(sa.select(RegisteredModel.id).where(
                RegisteredModel.name_key == self.model.lower())).scalar()

    def request_ids(self) -> list[int]:
        with self.services.db.read() as session:
            return list(session.execute(
                sa.select(ChangeRequest.id).join(RegisteredModel, RegisteredModel.id == ChangeRequest.model_id)
                .where(RegisteredModel.name_key == self.model.lower()).order_by(ChangeRequest.id)).scalars())

    def request(self, index: int) -> int:
        """The cell's requests in the order they were opened: 0 the first, -1 the newest."""
        ids = self.request_ids()
        assert ids, f"{self.model} has no requests"
        return ids[index]

    def canary_version(self, env: str) -> int | None:
        return self.services.registry.environment_state(self.model, env).canary

    # ---- normalised views -------------------------------------------------------------------

    def request_names(self) -> dict[str, str]:
        """Request id → `R1`, `R2`… in the order the cell's requests were opened."""
        return {str(n): f"R{i}" for i, n in enumerate(self.request_ids(), 1)}

    def normalise(self, text: str, names: Mapping[str, str] | None = None) -> str:
        """Identities become persona names, the model `M`, request ids `R1`…; Slack markup goes."""
        text = html.unescape(text)
        text = re.sub(r"<@([UW][A-Z0-9]+)>", r"\1", text)
        for persona in self.world.personas.values():
            text = text.replace(persona.slack_id, persona.name)
        text = re.sub(rf"(?<![A-Za-z0-9._-]){re.escape(self.model)}(?![A-Za-z0-9_-])", "M", text, flags=re.IGNORECASE)
        ids = self.request_names() if names is None else names
        return re.sub(r"(#|[Rr]equest\s+)(\d+)\b", lambda m: m.group(1) + ids.get(m.group(2), m.group(2)), text)

    def audit(self) -> list[tuple[Any, ...]]:
        """The model's audit rows, oldest first, normalised (times and generated ids left out)."""
        ids = self.request_names()
        with self.services.db.read() as session:
            rows = session.execute(
                sa.select(AuditEvent.actor, AuditEvent.environment, AuditEvent.action, AuditEvent.from_version,
                          AuditEvent.to_version, AuditEvent.revision, AuditEvent.weight, AuditEvent.reason,
                          AuditEvent.request_id)
                .join(RegisteredModel, RegisteredModel.id == AuditEvent.model_id)
                .where(RegisteredModel.name_key == self.model.lower()).order_by(AuditEvent.id)).all()
        return [(self._who(actor), env, action, before, after, revision, weight,
                 self.normalise(reason, ids) if reason else None,
                 ids.get(request_id or "", "*" if request_id else None))
                for actor, env, action, before, after, revision, weight, reason, request_id in rows]

    def state(self) -> dict[str, Any]:
        """What the database holds about the model besides the audit log: pointers, requests,
        votes, and the messages waiting in the outbox (ephemeral replies to the door left out)."""
        model_id = self.model_id()
        names = self.request_names()
        ids = {int(n): name for n, name in names.items()}
        with self.services.db.read() as session:
            deployments = session.execute(
                sa.select(Deployment.environment, Deployment.stable_version, Deployment.previous_version,
                          Deployment.canary_version, Deployment.canary_weight, Deployment.revision)
                .where(Deployment.model_id == model_id).order_by(Deployment.environment)).all()
            requests_ = session.execute(
                sa.select(ChangeRequest).where(ChangeRequest.model_id == model_id).order_by(ChangeRequest.id)
            ).scalars().all()
            votes = session.execute(
                sa.select(RequestVote.request_id, RequestVote.voter, RequestVote.decision, RequestVote.reason)
                .join(ChangeRequest, ChangeRequest.id == RequestVote.request_id)
                .where(ChangeRequest.model_id == model_id).order_by(RequestVote.id)).all()
            outbox = session.execute(
                sa.select(OutboxMessage.kind, OutboxMessage.template, OutboxMessage.channel)
                .where(OutboxMessage.topic == f"model:{model_id}", OutboxMessage.kind != "ephemeral")
                .order_by(OutboxMessage.id)).all()
        return {
            "deployments": [tuple(row) for row in deployments],
            "requests": [(ids[r.id], r.kind, r.version, r.environment, r.status, r.approvals_needed,
                          self._who(r.requester), self._who(r.decided_by), self._who(r.override_by),
                          r.override_reason, r.weight, ids.get(r.superseded_by) if r.superseded_by else None,
                          self.normalise(r.decision_reason, names) if r.decision_reason else None)
                         for r in requests_],
            "votes": [(ids[r], self._who(voter), decision, why) for r, voter, decision, why in votes],
            "outbox": [tuple(row) for row in outbox],
        }

    def _who(self, identity: str | None) -> str | None:
        if identity is None:
            return None
        return next((p.name for p in self.world.personas.values() if identity in (p.slack_id, p.name)), identity)


# ---- the doors ------------------------------------------------------------------------------------


class SlackDoor(Door):
    """Signed Slack requests over HTTP to the real /slack/events: slash commands, button clicks
    (their values taken from the cards the domain wrote to the outbox, rendered as Slack would
    show them) and modal submissions."""

    name = "slack"

    def command(self, cell: Cell, who: str, text: str) -> Answer:
        reply = self._post_command(who, text)
        return self._answer(cell, reply.blocks, reply.text)

    def command_reply(self, who: str, text: str) -> Any:
        return self._post_command(who, text)

    def _post_command(self, who: str, text: str) -> Any:
        slack, name = self.world.slack, self.world.unique("cmd")
        body = slack.slash_command_body(text, response_name=name, user_id=self.identity(who), user_name=who,
                                        channel_id=SLACK_CHANNEL)
        self._signed(body)
        return slack.wait_for_responses(name, 1, 15)[0]

    def click(self, cell: Cell, who: str, action_id: str, value: str) -> Answer | dict[str, Any]:
        """Press a button. Returns its reply, or the modal it opened (a view dict)."""
        slack, name = self.world.slack, self.world.unique("click")
        opened = len(slack.calls_to("views.open"))
        body = slack.block_actions_body(action_id, value, response_name=name, user_id=self.identity(who),
                                        user_name=who, channel_id=SLACK_CHANNEL)
        self._signed(body)
        slack.wait_for(lambda: slack.responses(name) or len(slack.calls_to("views.open")) > opened, 15,
                       f"a reply or a modal for {action_id}")
        if slack.responses(name):
            reply = slack.responses(name)[0]
            return self._answer(cell, reply.blocks, reply.text)
        call = slack.calls_to("views.open")[-1]
        assert call.ok, call.response
        view: dict[str, Any] = call.args["view"]
        return view

    def submit(self, cell: Cell, who: str, view: Mapping[str, Any], reason: str) -> Answer:
        slack = self.world.slack
        body = slack.view_submission_body(
            view["callback_id"], {cards.REASON_BLOCK: {cards.REASON_INPUT: reason}}, user_id=self.identity(who),
            private_metadata=view.get("private_metadata") or "", blocks=view["blocks"])
        response = self._signed(body)
        answer = response.json() if response.content else {}
        if answer.get("response_action") == "errors":
            return Answer(True, cell.normalise(" ".join(answer["errors"].values())))
        if answer.get("response_action") == "update":
            return Answer(False, cell.normalise(json.dumps(answer["view"]["blocks"])))
        return Answer(False, "")

    def card_button(self, cell: Cell, request: int, action_id: str) -> str | None:
        """The value of a button on the request's approval card as first posted (a screen
        that has not refreshed yet still shows it)."""
        with cell.services.db.read() as session:
            data = session.execute(
                sa.select(OutboxMessage.data).where(OutboxMessage.message_key == f"request:{request}",
                                                    OutboxMessage.template == "approval_card",
                                                    OutboxMessage.kind == "post")).scalar()
        if data is None:
            return None
        message = cards.approval_card(data)
        return next((b["value"] for b in buttons(message.blocks) if b["action_id"] == action_id), None)

    def _signed(self, body: bytes) -> requests.Response:
        response = self.world.http.post(self.world.url + SLACK_EVENTS_PATH, data=body, timeout=15, headers={
            "Content-Type": "application/x-www-form-urlencoded", **sign_request(SIGNING_SECRET, body)})
        assert response.status_code == 200, (response.status_code, response.text)
        return response

    @staticmethod
    def _answer(cell: Cell, blocks: Any, text: str | None) -> Answer:
        shown = "\n".join(section_texts(blocks)) or (text or "")
        return Answer(shown.startswith(":warning:"), cell.normalise(shown))


class ShellDoor(Door):
    """`modelbot shell`: the console class, one line at a time, as a person types them
    (a confirmation question is answered yes)."""

    name = "shell"

    def lines(self, cell: Cell, who: str, *lines: str) -> Answer:
        out = io.StringIO()
        answers = iter(["y"] * 10)
        shell = Shell(cell.services, Actor(self.identity(who), SHELL_CHANNEL), read_line=lambda _p: next(answers),
                      out=out)
        shown = ""
        for line in lines:
            start = out.tell()
            shell.handle(line)
            shown = out.getvalue()[start:]
        return Answer("⚠" in shown, cell.normalise(shown))


class CliDoor(Door):
    """`modelbot …` as CI runs it: `bot.cli.main.main` in this process with the world's
    environment, `--json` where the verb has it; stdout and stderr are the answer."""

    name = "cli"

    def identity(self, persona: str) -> str:
        return persona

    def run(self, cell: Cell, *args: str) -> Answer:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_main(list(args))
            except SystemExit as exited:  # argparse's own errors
                code = int(exited.code or 0)
        assert set(self.world.env.items()) <= set(os.environ.items())
        return Answer(code != 0, cell.normalise(out.getvalue() + err.getvalue()))


class RestDoor(Door):
    """The REST API over real HTTP, each persona with a token named after them."""

    name = "rest"

    def identity(self, persona: str) -> str:
        return persona

    def call(self, cell: Cell, who: str, method: str, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        response = self.world.http.request(method, self.world.url + "/api/v1" + path, json=body, timeout=15,
                                           headers={"Authorization": f"Bearer {self.world.tokens[who]}"})
        document = response.json()
        if response.status_code >= 400:
            return Answer(True, cell.normalise(document["error"]["message"]))
        return Answer(False, cell.normalise(json.dumps(document)))


DOORS: tuple[type[Door], ...] = (SlackDoor, ShellDoor, CliDoor, RestDoor)
