"""Structured logs: structlog for our own loggers, and the standard library's records routed through it.

Every line carries the context bound for the work in progress: `request_id` and `workspace` during a
request (config.middleware), `task_id` and `task_name` in a Celery task (config.observability). In
production mode a line is one JSON object, for a log pipeline to index; on the embedded default it
is a readable console line.

Logs carry ids, never personal data: no e-mail, phone or name in a message, and no local variables
in a traceback (the renderers below print plain tracebacks for that reason).
"""

import re
import sys
from typing import Any

import structlog

# Shared by structlog's own loggers and by the standard library's records ("foreign" to structlog).
_PRE_CHAIN: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    # Of the `extra` that libraries attach, only the status: Django's includes the request object and
    # Celery's the task's arguments and return value.
    structlog.stdlib.ExtraAdder(allow=("status_code",)),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


_ROW_VALUES = re.compile(r"^(\s*DETAIL:).*$", re.MULTILINE)


def row_values_withheld(logger: Any, name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A database error's DETAIL line quotes the row (`Key (external_id)=(C123) already exists`):
    keep the error, withhold the values."""
    for key in ("exception", "event"):
        value = event_dict.get(key)
        if isinstance(value, str) and "DETAIL:" in value:
            event_dict[key] = _ROW_VALUES.sub(r"\1 [row values withheld]", value)
    return event_dict


def _renderer(*, json_lines: bool) -> list[Any]:
    if json_lines:
        return [structlog.processors.format_exc_info, row_values_withheld, structlog.processors.JSONRenderer()]
    return [
        structlog.processors.format_exc_info,
        row_values_withheld,
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # The default (rich, when installed) prints local variables, which may hold personal data.
            exception_formatter=structlog.dev.plain_traceback,
        ),
    ]


def logging_settings(*, json_lines: bool, level: str = "INFO") -> dict[str, Any]:
    """Configure structlog and return Django's LOGGING dict that sends every record through it."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_PRE_CHAIN,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *_renderer(json_lines=json_lines),
                ],
                "foreign_pre_chain": _PRE_CHAIN,
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers (a second console line in DEBUG, mail_admins) give way to the root's.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # Never DEBUG, whatever DJANGO_LOG_LEVEL says: it would print every query with its parameters.
            "django.db.backends": {"level": "INFO"},
        },
    }
