"""The request's log context: a request id that follows the request, and the workspace it is about."""

import re
import uuid
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it is a plain token: it goes into every log line and back out in
# a header, so nothing else (spaces, quotes, control characters, kilobytes) is taken from outside.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestContextMiddleware:
    """First in MIDDLEWARE, so that every line logged while a request is served carries its id.

    The context is cleared when the next request starts on the thread, not when the response
    leaves this middleware: Django logs a 4xx or 5xx answer ("Not Found: ...") after the whole
    middleware chain has returned, and that line should carry the id too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = supplied if _SANE_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict) -> None:
        # The API's workspace routes are /api/workspaces/<slug:workspace>/...: the slug, not a name.
        workspace = view_kwargs.get("workspace")
        if workspace:
            structlog.contextvars.bind_contextvars(workspace=workspace)
        return None
