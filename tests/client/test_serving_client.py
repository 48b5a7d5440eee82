"""ServingState against a real server: it follows promotions and canaries, splits traffic by the
current weight, recovers after the server is killed and restarted, and needs only the
standard library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config.settings import Settings
from bot.services import open_services
from modelbot_client import NotServing, ServingState, Snapshot
from tests.web.serving_support import ROOT, Served, ServeProcess, eventually, seed

KEYS = [f"user-{i}" for i in range(20_000)]


def test_the_client_follows_promotions_and_splits_canary_traffic(served: Served) -> None:
    changes: list[Snapshot] = []
    with ServingState(served.url, served.reader, "churn", "production", on_change=changes.append) as state:
        first = state.wait_ready(timeout_s=30)
        assert (first.stable, first.canary) == (1, None)
        assert {state.choose(k).artifact_uri for k in KEYS[:100]} == {"s3://models/churn/1"}

        served.services.deployments.set_canary("churn", "2", "production", 20, actor="ci")
        canary = state.wait_for(lambda s: s.canary == 2, timeout_s=30)
        assert canary.canary_weight == 20
        sides = [state.choose(k) for k in KEYS]
        share = sum(c.side == "canary" for c in sides) / len(KEYS)
        assert abs(share - 0.20) <= 0.01
        assert all(state.choose(k) == c for k, c in zip(KEYS[:500], sides, strict=False))  # stable per key
        assert {c.artifact_uri for c in sides} == {"s3://models/churn/1", "s3://models/churn/2"}

        served.services.registry.promote("churn", "3", "production", actor="ci")  # ends the canary
        promoted = state.wait_for(lambda s: s.stable == 3, timeout_s=30)
        assert promoted.canary is None and state.choose("anyone").artifact_uri == "s3://models/churn/3"
    assert [c.revision for c in changes] == sorted({c.revision for c in changes})  # each state once, in order
    assert state.last_error is None


def test_choose_before_any_state_and_for_nothing_serving_says_why(served: Served) -> None:
    state = ServingState(served.url, served.reader, "churn", "staging", start=False)
    try:
        state.choose("k")
    except NotServing as exc:
        assert "no serving state for churn in staging yet" in str(exc)
    else:
        raise AssertionError("choose() answered before any state arrived")
    with state.start():
        assert state.wait_ready(timeout_s=30).stable is None
        try:
            state.choose("k")
        except NotServing as exc:
            assert str(exc).startswith("churn serves nothing in staging")
        else:
            raise AssertionError("choose() answered with nothing serving")


def test_the_client_recovers_after_the_server_is_killed_and_restarted(sqlite_url: str, policy: Path) -> None:
    services, reader, _ = seed(sqlite_url, policy)
    server = ServeProcess(sqlite_url, policy)
    try:
        with ServingState(server.url, reader, "churn", "production") as state:
            assert state.wait_ready(timeout_s=30).stable == 1
            server.kill()
            eventually(lambda: state.last_error is not None, what="the client noticing the server is gone")
            assert state.choose("k").version == 1  # the last good state keeps serving meanwhile
            services.registry.promote("churn", "2", "production", actor="ci")  # while no server runs
            server = ServeProcess(sqlite_url, policy, server.port)
            assert state.wait_for(lambda s: s.stable == 2, timeout_s=60).previous == 1
            services.registry.promote("churn", "3", "production", actor="ci")  # and the watch resumed
            state.wait_for(lambda s: s.stable == 3, timeout_s=30)
            eventually(lambda: state.last_error is None, what="the error being cleared")
    finally:
        server.stop()
        services.close()


def test_the_client_imports_nothing_but_the_standard_library() -> None:
    probe = ("import sys; before = set(sys.modules); import modelbot_client; "
             "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           check=True).stdout.strip()
    assert found == "['modelbot_client']"


def test_a_wrong_token_is_reported_and_retried(served: Served) -> None:
    with ServingState(served.url, "mbt_wrong", "churn", "production") as state:
        error = eventually(lambda: state.last_error, what="an error for the wrong token")
        assert error.startswith("HTTP 401 unauthorized: That token is unknown or revoked.")
        assert state.current is None


def test_services_survive_a_client_on_a_model_that_does_not_exist_yet(served: Served) -> None:
    with ServingState(served.url, served.reader, "fraud", "production") as state:
        assert "HTTP 404" in eventually(lambda: state.last_error, what="a 404 for an unknown model")
        services = open_services(Settings(database_url=served.services.settings.database_url,
                                          config_path=served.services.settings.config_path))
        try:
            from bot.domain.registry import NewVersion

            services.registry.register(NewVersion(model="fraud", artifact_uri="s3://f/1", actor="ci"))
        finally:
            services.close()
        assert state.wait_ready(timeout_s=60).stable is None  # the retries found it once it existed
