"""Logs and Prometheus metrics, set up once per process.

Logs are structured (structlog) and pass through a redactor so that an API
key can never reach them, even when a library logs a request it should not.
"""

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

SECRET_FIELDS = frozenset({"apikey", "api_key", "userapikey", "x-api-key", "authorization", "password", "secret"})
SECRET_PATTERNS = (
    re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"),
    re.compile(r"(?i)(apikey['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"),
    re.compile(r"blink_[A-Za-z0-9]{8,}"),
)

REQUEST_LATENCY = Histogram(
    "tipsplit_http_request_seconds", "HTTP request latency", ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SETTLEMENTS = Counter("tipsplit_settlements_total", "Settlement attempts by outcome", ["outcome"])
LEGS_RETRIED = Counter("tipsplit_legs_retried_total", "Outgoing legs tried again after a failure")
CACHE_LOOKUPS = Counter("tipsplit_redis_cache_total", "Hot-store lookups", ["result"])
RECONCILER_BACKLOG = Gauge("tipsplit_reconciler_backlog", "Payments waiting for the reconciler or poller")
WEBHOOKS = Counter("tipsplit_webhooks_total", "Webhook deliveries by result", ["result"])


def redact_text(text: str) -> str:
    """Mask anything shaped like an API key in free text."""
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower().replace("-", "_") in SECRET_FIELDS or key.lower() in SECRET_FIELDS:
            event[key] = "[REDACTED]"
        elif isinstance(event[key], str):
            event[key] = redact_text(event[key])
    return event


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Route structlog and stdlib logging through one redacting pipeline to stderr."""
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared[:-1], structlog.stdlib.ExtraAdder(), _redact],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
INVOICE_BUDGET_WAITS = Counter(
    "tipsplit_invoice_budget_waits_total",
    "Invoice creations put off because a Blink account's invoice budget was spent (pos: sales refused with 503;"
    " leg: legs left waiting)",
    ["kind"],
)
BLINK_RATE_LIMITED = Counter(
    "tipsplit_blink_rate_limited_total", "Invoice creations Blink refused with TOO_MANY_REQUEST", ["kind"]
)
