"""Registry operations on both backends: register, read, promote, rollback, history."""

from __future__ import annotations

import pytest

from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.registry import NewVersion, Registry
from storage.queries import registry as queries


def register(registry: Registry, model: str = "churn", **metrics: float) -> int:
    return registry.register(
        NewVersion(model=model, artifact_uri=f"s3://b/{model}", actor="ci", metrics=metrics)
    ).version


def counts(registry: Registry) -> dict[str, int]:
    with registry.reading() as session:
        return queries.row_counts(session)


def test_versions_number_per_model(registry: Registry) -> None:
    assert [register(registry, "churn") for _ in range(3)] == [1, 2, 3]
    assert register(registry, "fraud") == 1
    page = registry.list_versions("churn")
    assert [v.version for v in page.items] == [3, 2, 1]
    assert page.total == 3


def test_promote_keeps_previous_and_rollback_swaps(registry: Registry) -> None:
    register(registry)
    register(registry)
    registry.promote("churn", "1", "production", actor="carol")
    registry.promote("churn", "v2", "production", actor="alice")
    move = registry.rollback("churn", "production", actor="bob", reason="auc dropped")
    assert (move.state.stable, move.state.previous) == (1, 2)
    history = registry.history("churn")
    assert [(e.action, e.from_version, e.to_version, e.actor) for e in history] == [
        ("promote", None, 1, "carol"),
        ("promote", 1, 2, "alice"),
        ("rollback", 2, 1, "bob"),
    ]
    assert [e.revision for e in history] == [1, 2, 3]
    assert history[-1].reason == "auc dropped"


def test_refs_resolve_latest_and_environment(registry: Registry) -> None:
    for _ in range(3):
        register(registry)
    registry.promote("churn", "2", "staging", actor="ci")
    assert registry.show("churn", "latest").version == 3
    assert registry.show("churn", "@staging").version == 2
    assert registry.show("CHURN", "v1").version == 1  # lookups ignore case
    assert registry.show("churn", "@staging").serving == ("staging",)


def test_rollback_to_named_version_must_have_served(registry: Registry) -> None:
    for _ in range(3):
        register(registry)
    registry.promote("churn", "1", "production", actor="a")
    registry.promote("churn", "2", "production", actor="a")
    before = counts(registry)
    with pytest.raises(Conflict, match="never served production"):
        registry.rollback("churn", "production", actor="b", to="3")
    assert counts(registry) == before
    move = registry.rollback("churn", "production", actor="b", to="1")
    assert move.state.stable == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda r: r.promote("nope", "1", "production", actor="a"), NotFound),
        (lambda r: r.promote("churn", "9", "production", actor="a"), NotFound),
        (lambda r: r.promote("churn", "1", "moon", actor="a"), InvalidInput),
        (lambda r: r.promote("churn", "one", "production", actor="a"), InvalidInput),
        (lambda r: r.promote("churn", "1", "production", actor=""), InvalidInput),
        (lambda r: r.rollback("churn", "production", actor="a"), Conflict),
        (lambda r: r.promote("churn", "@staging", "production", actor="a"), NotFound),
    ],
)
def test_bad_moves_change_nothing(registry: Registry, call, error) -> None:  # type: ignore[no-untyped-def]
    register(registry)
    before = counts(registry)
    with pytest.raises(error):
        call(registry)
    assert counts(registry) == before


def test_promoting_what_already_serves_is_a_conflict(registry: Registry) -> None:
    register(registry)
    registry.promote("churn", "1", "production", actor="a")
    before = counts(registry)
    with pytest.raises(Conflict, match="already serves"):
        registry.promote("churn", "1", "production", actor="a")
    assert counts(registry) == before


@pytest.mark.parametrize(
    "name",
    ["", "x" * 10_000, "a/b", "a b", "a\x00b", "tab\tname", "<!channel>", "-lead", "ünïcode", "x" * 65],
)
def test_bad_model_names_write_nothing(registry: Registry, name: str) -> None:
    before = counts(registry)
    with pytest.raises(InvalidInput):
        registry.register(NewVersion(model=name, artifact_uri="s3://x", actor="ci"))
    assert counts(registry) == before


def test_names_are_unique_regardless_of_case(registry: Registry) -> None:
    register(registry, "Churn")
    again = registry.register(NewVersion(model="CHURN", artifact_uri="s3://b/2", actor="ci"))
    assert (again.model, again.version) == ("Churn", 2)  # looked up in any case; stored as first typed
    assert registry.get_model("churn").name == "Churn"
    assert registry.list_models().total == 1


@pytest.mark.parametrize(
    "new",
    [
        NewVersion(model="churn", artifact_uri="s3://x", actor="ci", metrics={"auc": "abc"}),
        NewVersion(model="churn", artifact_uri="s3://x", actor="ci", metrics={"": 1.0}),
        NewVersion(model="churn", artifact_uri="s3://x", actor="ci", metrics={"auc": "nan"}),
        NewVersion(model="churn", artifact_uri="s3://x", actor="ci", metrics={"auc": "inf"}),
        NewVersion(model="churn", artifact_uri="s3://x", actor="ci", description="d" * 100_000),
        NewVersion(model="churn", artifact_uri="", actor="ci"),
        NewVersion(model="churn", artifact_uri="s3://x", actor="ci", tags={"t": "line\nbreak"}),
    ],
)
def test_bad_versions_write_nothing(registry: Registry, new: NewVersion) -> None:
    register(registry)
    before = counts(registry)
    with pytest.raises(InvalidInput):
        registry.register(new)
    assert counts(registry) == before


def test_hostile_text_is_stored_verbatim(registry: Registry) -> None:
    text = "<!channel> & <@U123> — “quoted” 🚀"
    registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci", description=text,
                                 tags={"note": text}))
    version = registry.show("churn", "1")
    assert version.description == text and version.tags["note"] == text


def test_environment_state_exposes_artifacts(registry: Registry) -> None:
    register(registry)
    register(registry)
    registry.promote("churn", "1", "production", actor="a")
    registry.promote("churn", "2", "production", actor="a")
    state = registry.environment_state("churn", "production").to_dict()
    assert state["stable"] == 2 and state["previous"] == 1
    assert state["stable_artifact_uri"] == "s3://b/churn" and state["canary"] is None


def test_list_models_pages_and_shows_serving(registry: Registry) -> None:
    for i in range(7):
        register(registry, f"m{i}")
    registry.promote("m3", "1", "production", actor="a")
    first = registry.list_models(limit=5)
    assert [m.name for m in first.items] == ["m0", "m1", "m2", "m3", "m4"]
    assert first.next_offset == 5 and first.total == 7
    assert first.items[3].serving == {"production": 1}
    second = registry.list_models(offset=5, limit=5)
    assert [m.name for m in second.items] == ["m5", "m6"] and second.next_offset is None
