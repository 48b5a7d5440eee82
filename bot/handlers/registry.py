"""Registry handlers: help, list, show, compare, history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot import commands
from bot.blocks import compare as compare_blocks
from bot.blocks import help as help_blocks
from bot.blocks import registry as registry_blocks
from bot.blocks.base import Message
from bot.domain import names
from bot.domain.errors import NotFound
from bot.domain.refs import parse_ref
from bot.handlers.base import Actor, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()



@table.handles(commands.Help)
def _help(services: Services, actor: Actor, cmd: commands.Help) -> Message:
    return help_blocks.help_one(cmd.topic) if cmd.topic else help_blocks.help_all()


@table.handles(commands.ListModels)
def _list(services: Services, actor: Actor, cmd: commands.ListModels) -> Message:
    registry = services.registry
    if cmd.model is None:
        page = registry.list_models(offset=cmd.offset, limit=registry_blocks.MODELS_PER_PAGE)
        return registry_blocks.model_list(page, registry.environments)
    page = registry.list_versions(cmd.model, offset=cmd.offset, limit=registry_blocks.VERSIONS_PER_PAGE)
    return registry_blocks.version_list(registry.get_model(cmd.model).name, page)


@table.handles(commands.Show)
def _show(services: Services, actor: Actor, cmd: commands.Show) -> Message:
    message = registry_blocks.version_detail(services.registry.show(cmd.model, cmd.ref))
    environment = parse_ref(cmd.ref).environment
    if environment is None:
        return message
    from bot.config.mlflow import mlflow_config

    settings = mlflow_config(services.policy)
    if settings is None:
        return message
    from bot.blocks.mlflow import with_alias_states
    from bot.domain.mlflow.state import alias_states

    environment = names.environment(environment, services.registry.environments)
    return with_alias_states(message, alias_states(services.registry, settings, cmd.model, environment))


@table.handles(commands.Compare)
def _compare(services: Services, actor: Actor, cmd: commands.Compare) -> Message:
    from bot.domain.compare import compare

    refs: list[Any] = list(cmd.refs)
    if not refs:
        # production against latest: the question people ask before promoting
        try:
            services.registry.show(cmd.model, "@production")
        except NotFound:
            raise NotFound(
                f"Nothing of {cmd.model} serves production yet, so there is no default comparison: "
                f"name two versions, for example `compare {cmd.model} 1 2`."
            ) from None
        refs = ["@production", "latest"]
    versions = services.registry.versions(cmd.model, refs)
    if len(versions) == 2 and versions[0].version == versions[1].version:
        raise NotFound(f"Production already serves the latest version of {cmd.model} (v{versions[0].version}).")
    return compare_blocks.comparison(compare(versions))


@table.handles(commands.History)
def _history(services: Services, actor: Actor, cmd: commands.History) -> Message:
    entries = services.registry.history(cmd.model, cmd.environment, limit=registry_blocks.HISTORY_PER_PAGE)
    return registry_blocks.history(services.registry.get_model(cmd.model).name, cmd.environment, entries)
