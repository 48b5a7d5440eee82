"""The serving-state watch over real HTTP, on SQLite and PostgreSQL: a stale revision answers
at once, a current one is held until a promotion (made through another connection) or the
end of `wait`, ETag/If-None-Match round trips, reads after writes, and the fast path answers
exactly what the route answers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bot.domain.tokens import Tokens
from bot.web.api.serving import MAX_WAIT_S
from bot.web.api.token_cache import TTL_S
from tests.web.serving_support import Served, eventually


def test_a_stale_revision_answers_at_once_with_the_current_state(served: Served) -> None:
    first = served.get()
    assert first.status_code == 200 and first.json()["stable"] == 1
    revision = first.json()["revision"]
    assert first.headers["X-Modelbot-Revision"] == str(revision)
    for stale in (0, revision + 7):  # older, or newer than the database has (a restored backup)
        started = time.monotonic()
        answer = served.get(f"?revision={stale}&wait={MAX_WAIT_S:g}s")
        assert answer.status_code == 200 and answer.json()["revision"] == revision
        assert time.monotonic() - started < MAX_WAIT_S / 2  # not held


def test_a_watch_is_held_until_a_promotion_made_elsewhere(served: Served) -> None:
    revision = served.get().json()["revision"]
    held_before = served.watches_held()
    with ThreadPoolExecutor(1) as pool:
        watch = pool.submit(served.get, f"?revision={revision}&wait=60s")
        eventually(lambda: served.watches_held() > held_before, what="the watch being held")
        assert not watch.done()
        # another connection than the server's: the feed (NOTIFY / audit poll) must carry it
        served.services.registry.promote("churn", "2", "production", actor="someone")
        answer = watch.result(timeout=30)
    assert answer.status_code == 200
    state = answer.json()
    assert state["revision"] == revision + 1 and state["stable"] == 2 and state["previous"] == 1
    assert state["stable_artifact_uri"] == "s3://models/churn/2"
    assert answer.headers["X-Modelbot-Revision"] == str(revision + 1)


def test_wait_is_bounded_and_checked(served: Served) -> None:
    revision = served.get().json()["revision"]
    started = time.monotonic()
    unchanged = served.get(f"?revision={revision}&wait=1s")
    elapsed = time.monotonic() - started
    assert unchanged.status_code == 200 and unchanged.json()["revision"] == revision  # Consul: same state, 200
    assert 1.0 <= elapsed < 1.0 + 1 / 16 + 5  # held for the wait (plus at most 1/16 jitter), then answered
    before = served.services.registry.history("churn", "production")
    for bad in ("61s", "2m", "-1s", "soon", "1e9s"):
        refused = served.get(f"?revision={revision}&wait={bad}")
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["message"] == (
            f"wait={bad} is not a duration from 0s to 60s: write one like 30s.")
    assert served.get("?revision=-1").status_code == 422
    assert served.services.registry.history("churn", "production") == before


def test_etag_and_if_none_match_round_trip(served: Served) -> None:
    first = served.get()
    etag = first.headers["ETag"]
    assert served.get().headers["ETag"] == etag  # the same state, the same tag (cached or not)
    unchanged = served.get(headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["ETag"] == etag
    assert served.get(headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304  # weak comparison
    assert served.get(headers={"If-None-Match": '"1-0000000000000000"'}).status_code == 200
    # a held watch that ends unchanged answers 304 too when it named the tag
    revision = first.json()["revision"]
    assert served.get(f"?revision={revision}&wait=0.2s", headers={"If-None-Match": etag}).status_code == 304
    served.promote("3")
    moved = served.get(headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["ETag"] != etag and moved.json()["stable"] == 3


def test_a_read_after_a_write_through_the_same_server_sees_the_write(served: Served) -> None:
    for version in ("2", "3", "1", "2", "3"):
        assert served.get().status_code == 200  # cached now
        assert served.promote(version).status_code == 201
        assert served.get().json()["stable"] == int(version)


def test_the_fast_path_answers_what_the_route_answers(served: Served) -> None:
    through_route = served.get()  # nothing cached, token not cached: the FastAPI route
    from_cache = served.get()  # both cached: answered before the framework
    assert through_route.content == from_cache.content
    for header in ("ETag", "X-Modelbot-Revision", "Cache-Control", "Content-Type", "Content-Length"):
        assert through_route.headers[header] == from_cache.headers[header]
    # everything the fast path cannot decide goes to the route, which says what is wrong
    assert served.get("?revision=abc").status_code == 422
    assert served.get("?wait=forever").status_code == 400
    assert served.get(token="mbt_unknown").status_code == 401
    assert served.get(model="nope").json()["error"]["code"] == "not_found"
    assert served.get(environment="moon").status_code == 400
    spelled = served.get(model="CHURN", environment="Production")
    assert spelled.status_code == 200 and spelled.content == from_cache.content


def test_a_revoked_token_stops_working_within_the_cache_lifetime(served: Served) -> None:
    assert served.get().status_code == 200 and served.get().status_code == 200  # cached
    Tokens(served.services.registry).revoke("fleet", actor="t", now=served.services.clock())
    revoked_at = time.monotonic()
    eventually(lambda: served.get().status_code == 401, timeout_s=10, what="a 401 for the revoked token")
    assert time.monotonic() - revoked_at < TTL_S + 2


def test_many_watchers_of_one_state_all_hear_one_promotion(served: Served) -> None:
    revision = served.get().json()["revision"]
    held_before = served.watches_held()
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def watch() -> None:
        answer = served.get(f"?revision={revision}&wait=60s")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=watch) for _ in range(40)]
    for t in threads:
        t.start()
    eventually(lambda: served.watches_held() >= held_before + 40, what="forty watches being held")
    assert served.promote("3").status_code == 201
    for t in threads:
        t.join(timeout=30)
    assert len(answers) == 40
    assert {(a.status_code, a.json()["revision"], a.json()["stable"]) for a in answers} == {(200, revision + 1, 3)}
