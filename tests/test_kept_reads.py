"""A stack read or page with a remembered token is answered ahead of the framework exactly as its
route answers it, from a kept answer or read after a change; every other request still reaches
the route."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from service.app import create_app
from service.auth import issue_token
from service.db import Database, StackRecord, Tenant, utcnow
from service.deps import get_views
from service.settings import Settings
from service.views import StackViews

ADMIN = "kept-reads-admin-token-0123456789"


class Api:
    """The service's app in this process (its lifespan run, requests through ASGI), with a count
    of the requests that reached a stack route."""

    def __init__(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, roles="api", bootstrap_token=ADMIN, passphrase="kept reads")
        self.app: FastAPI = create_app(settings, toolchain_bin=tmp_path / "no-toolchain")
        self.routed: list[str] = []

        async def counted_views(request: Request) -> StackViews:  # the stack routes' dependency
            self.routed.append(str(request.url))
            views: StackViews = request.app.state.views
            return views

        self.app.dependency_overrides[get_views] = counted_views
        self.globex = ""

    def run(self, scenario: Callable[[httpx.AsyncClient, Api], Coroutine[Any, Any, None]]) -> None:
        async def main() -> None:
            async with self.app.router.lifespan_context(self.app):
                self._populate()
                transport = httpx.ASGITransport(app=self.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                    await scenario(client, self)

        asyncio.run(main())

    @property
    def db(self) -> Database:
        db: Database = self.app.state.db
        return db

    def _populate(self) -> None:
        now = utcnow()
        with self.db.session() as session:
            session.add(Tenant(id="globex"))
            session.flush()
            session.add_all(StackRecord(tenant_id=tenant, name=name, pulumi_stack=f"{tenant}.{name}", case=case,
                                        target="sandbox", args={"n": 1}, secret_arg_names=[], status="ready",
                                        outputs={"url": f"https://{name}"}, resource_count=3, created_at=now,
                                        updated_at=now)
                            for tenant, name, case in [("admin", "alpha", "todo-app"), ("admin", "beta", "blog"),
                                                       ("admin", "gamma", "todo-app"), ("globex", "alpha", "blog")])
        self.globex = issue_token(self.db, "globex")

    def forget_tokens(self) -> None:
        """A committed token change: no token is remembered until the route looks it up again."""
        issue_token(self.db, "globex")

    def touch_stacks(self) -> None:
        """A committed change to stacks that no read here shows (one made and removed in globex)."""
        now = utcnow()
        with self.db.session() as session:
            session.add(StackRecord(tenant_id="globex", name="zz-touch", pulumi_stack="globex.zz-touch",
                                    case="blog", target="sandbox", args={}, secret_arg_names=[], status="ready",
                                    outputs={}, resource_count=0, created_at=now, updated_at=now))
        with self.db.session() as session:
            session.query(StackRecord).filter_by(tenant_id="globex", name="zz-touch").delete()


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path)


def _same(first: Any, second: Any) -> None:
    assert (second.status_code, dict(second.headers), second.content) == \
        (first.status_code, dict(first.headers), first.content)


def test_reads_ahead_of_the_route_answer_exactly_as_the_route_does_kept_or_not(api: Api) -> None:
    api.run(_reads_answer_as_routes)


async def _reads_answer_as_routes(client: httpx.AsyncClient, api: Api) -> None:
    routed, globex = api.routed, api.globex
    admin = {"Authorization": f"Bearer {ADMIN}"}
    first_page = (await client.get("/v1/stacks?limit=2", headers=admin)).json()
    assert [s["name"] for s in first_page["items"]] == ["alpha", "beta"] and first_page["next_cursor"]
    reads = [("/v1/stacks/alpha", admin), ("/v1/stacks/alpha", {"Authorization": f"Bearer {globex}"}),
             ("/v1/stacks", admin), ("/v1/stacks?limit=2", admin),
             (f"/v1/stacks?limit=2&cursor={first_page['next_cursor']}", admin),
             ("/v1/stacks?case=todo-app&status=ready", admin), ("/v1/stacks?limit=1000", admin)]
    for path, headers in reads:
        api.forget_tokens()  # a token not remembered: the route answers
        routed.clear()
        by_route = await client.get(path, headers=headers)
        assert by_route.status_code == 200 and routed, (path, by_route.text)
        routed.clear()
        kept = await client.get(path, headers=headers)
        _same(by_route, kept)
        assert routed == [], f"{path}: a kept read reached the route"
        api.touch_stacks()  # a change elsewhere: every kept answer is dropped, this one reads the same
        missed = await client.get(path, headers=headers)
        _same(by_route, missed)
        assert routed == [], f"{path}: a read after a change reached the route"
    assert (await client.get("/v1/stacks/alpha", headers={"Authorization": f"Bearer {globex}"})).json()["case"] == "blog"


def test_every_other_read_reaches_its_route_and_gets_its_answer(api: Api) -> None:
    api.run(_others_reach_routes)


async def _others_reach_routes(client: httpx.AsyncClient, api: Api) -> None:
    routed = api.routed
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for path in ["/v1/stacks/alpha", "/v1/stacks", "/v1/stacks?limit=2"]:  # keep the answers the fast path could use
        await client.get(path, headers=admin)
    # (path, headers, status, whether a stack route answers it: no route has a trailing slash, and an
    # unauthenticated request stops before the views are asked for)
    answers = [("/v1/stacks/nosuch", admin, 404, True), ("/v1/stacks/nosuch", admin, 404, True),  # not found, twice
               ("/v1/stacks/Alpha", admin, 422, True), ("/v1/stacks/alpha/", admin, 404, False),
               ("/v1/stacks/alpha?x=1", admin, 200, True), ("/v1/stacks?limit=0", admin, 422, True),
               ("/v1/stacks?limit=1001", admin, 422, True), ("/v1/stacks?limit=02", admin, 200, True),
               ("/v1/stacks?limit=abc", admin, 422, True), ("/v1/stacks?cursor=not-a-cursor", admin, 422, True),
               ("/v1/stacks?limit=2&limit=3", admin, 200, True), ("/v1/stacks?case=", admin, 200, True),
               ("/v1/stacks/alpha", {}, 401, False), ("/v1/stacks", {"Authorization": "Bearer wrong"}, 401, False),
               ("/v1/stacks/alpha", {"Authorization": "Basic " + ADMIN}, 401, False),
               ("/v1/stacks/alpha", {**admin, "Content-Length": str(10**9)}, 413, False)]  # the body limit holds
    for path, headers, status, route in answers:
        routed.clear()
        response = await client.get(path, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert bool(routed) == route, f"{path}: reached its route: {bool(routed)}"


def test_a_change_is_seen_by_the_next_kept_read(api: Api) -> None:
    api.run(_change_seen)


async def _change_seen(client: httpx.AsyncClient, api: Api) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for _ in range(2):
        assert (await client.get("/v1/stacks/alpha", headers=admin)).json()["status"] == "ready"
        assert (await client.get("/v1/stacks", headers=admin)).json()["items"][0]["status"] == "ready"
    with api.db.session() as session:
        stack = session.query(StackRecord).filter_by(tenant_id="admin", name="alpha").one()
        stack.status = "updating"
    api.routed.clear()
    assert (await client.get("/v1/stacks/alpha", headers=admin)).json()["status"] == "updating"
    assert (await client.get("/v1/stacks", headers=admin)).json()["items"][0]["status"] == "updating"
    assert api.routed == [], "read ahead of the route, from the database"


def test_readers_that_miss_together_share_one_read_and_none_joins_a_read_older_than_its_arrival(api: Api) -> None:
    api.run(_misses_share_a_read)


async def _misses_share_a_read(client: httpx.AsyncClient, api: Api) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    views: StackViews = api.app.state.views
    assert (await client.get("/v1/stacks/alpha", headers=admin)).status_code == 200  # the token is remembered
    readers = 12
    arrived, reads, release, read_first = [0], {"one": 0, "page": 0}, threading.Event(), [False]
    kept, one, page = views.kept, views._one, views._page

    def counted_kept(key: str) -> tuple[bool, Any]:
        arrived[0] += 1
        if arrived[0] == readers:  # every reader is in: the read(s) may answer
            release.set()
        return kept(key)

    def held(kind: str, read: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            reads[kind] += 1
            answer = read(*args, **kwargs) if read_first[0] else None
            assert release.wait(10), "the readers did not all arrive"
            overlap = time.monotonic() + 0.5  # time for the reads of the others, if each reads its own
            while not read_first[0] and reads[kind] < readers and time.monotonic() < overlap:
                time.sleep(0.01)
            return answer if read_first[0] else read(*args, **kwargs)
        return counted

    views.kept = counted_kept  # type: ignore[method-assign]
    views._one = held("one", one)  # type: ignore[method-assign]
    views._page = held("page", page)  # type: ignore[method-assign]
    for path, kind in [("/v1/stacks/alpha", "one"), ("/v1/stacks?limit=2", "page")]:
        api.touch_stacks()  # nothing is kept: every reader misses
        arrived[0] = 0
        release.clear()
        answers = await asyncio.gather(*(client.get(path, headers=admin) for _ in range(readers)))
        assert all(a.status_code == 200 and a.content == answers[0].content for a in answers), path
        assert reads[kind] == 1, f"{path}: {readers} readers who missed together read {reads[kind]} times"

    # A read in flight that read before a change: a reader arriving after the change reads anew.
    api.touch_stacks()
    arrived[0], read_first[0] = -10**6, True
    release.clear()
    early = asyncio.ensure_future(client.get("/v1/stacks/alpha", headers=admin))
    while reads["one"] < 2:
        await asyncio.sleep(0.01)
    with api.db.session() as session:
        session.query(StackRecord).filter_by(tenant_id="admin", name="alpha").one().status = "updating"
    release.set()
    late = await client.get("/v1/stacks/alpha", headers=admin)
    assert (await early).json()["status"] == "ready"  # read before the change
    assert late.json()["status"] == "updating", "a reader that arrived after a change got an answer read before it"
    assert reads["one"] == 3
