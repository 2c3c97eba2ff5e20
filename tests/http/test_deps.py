"""Each route and page names the collaborators it uses; none is handed the whole runtime."""

from collections.abc import Callable, Iterator
from typing import Any, get_args, get_type_hints

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tipsplit.http.app import create_app
from tipsplit.http.pages import dashboard, pos, pwa, receipt, till, till_admin
from tipsplit.http.routes import invoice, ops, status, webhook
from tipsplit.runtime.assembly import Runtime
from tipsplit.settings import Settings


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_no_route_or_dependency_receives_the_runtime() -> None:
    modules = (invoice, ops, status, webhook, dashboard, pos, pwa, receipt, till, till_admin)
    docs = create_app(Settings(_env_file=None)).routes  # type: ignore[call-arg]
    routes = [route for route in (*docs, *(r for m in modules for r in m.router.routes)) if isinstance(route, APIRoute)]
    assert len(routes) > 30
    given_runtime = [
        f"{route.path}: {call.__qualname__}({name})"
        for route in routes for call in _calls(route.dependant)
        for name, hint in get_type_hints(call, include_extras=True).items()
        if name != "return" and Runtime in (hint, *get_args(hint))
    ]
    assert not given_runtime
