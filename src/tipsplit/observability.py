"""Logs and Prometheus metrics, set up once per process.

Logs are structured (structlog) and no secret may reach them, in any format, tracebacks included:
- tracebacks are rendered without local variables (a frame's locals hold request bodies, API keys, settings);
- fields named like secrets are masked, and text is scrubbed of anything shaped like a Blink API key
  (`blink_…`), a webhook secret (`whsec_…`) or a Bearer token;
- every secret value the process knows (OPERATOR_TOKEN, SESSION_SECRET, BLINK_WEBHOOK_SECRET, ENCRYPTION_KEYS,
  BLINKPOS_API_KEY, database and Redis passwords, and those the sandbox generates) is masked in the final,
  rendered line, so a library that logs something it should not still cannot leak it.
"""

import json
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import structlog
from prometheus_client import Counter, Gauge, Histogram

MASK = "[REDACTED]"
SECRET_FIELDS = frozenset({
    "apikey", "api_key", "userapikey", "user_api_key", "x_api_key", "authorization", "password", "secret",
    "token", "operator_token", "session_secret", "webhook_secret", "blink_webhook_secret", "encryption_keys",
    "blinkpos_api_key", "cookie", "set_cookie",
})
SECRET_PATTERNS = (
    re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"),
    re.compile(r"(?i)(apikey['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"),
    re.compile(r"(?i)(bearer\s+)[^'\",\s}]+"),
    re.compile(r"blink_[A-Za-z0-9]{8,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=]{8,}"),
)
MIN_SECRET_LENGTH = 8
_known_secrets: set[str] = set()

REQUEST_LATENCY = Histogram(
    "tipsplit_http_request_seconds", "HTTP request latency", ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SETTLEMENTS = Counter("tipsplit_settlements_total", "Settlement attempts by outcome", ["outcome"])
LEGS_RETRIED = Counter("tipsplit_legs_retried_total", "Outgoing legs tried again after a failure")
CACHE_LOOKUPS = Counter("tipsplit_redis_cache_total", "Hot-store lookups", ["result"])
RECONCILER_BACKLOG = Gauge("tipsplit_reconciler_backlog", "Payments waiting for the reconciler or poller")
WEBHOOKS = Counter("tipsplit_webhooks_total", "Webhook deliveries by result", ["result"])


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these values wherever they appear in a log line (as they are, JSON-escaped, or repr'd)."""
    for value in values:
        if not value or len(value) < MIN_SECRET_LENGTH:
            continue
        _known_secrets.update({value, json.dumps(value)[1:-1], repr(value)[1:-1]})


def settings_secrets(settings: Any) -> list[str]:
    """Every secret value in the settings, including each encryption key and the passwords in URLs."""
    values: list[str | None] = [
        settings.operator_token, settings.session_secret, settings.blink_webhook_secret, settings.blinkpos_api_key,
        settings.redis_password, settings.redis_sentinel_password, settings.encryption_keys,
    ]
    values += [pair.partition(":")[2].strip() for pair in (settings.encryption_keys or "").split(",")]
    values += [api_key for api_key, _ in settings.pos_accounts]
    webhook = settings.blink_webhook_secret or ""
    values.append(webhook.removeprefix("whsec_"))
    for url in (settings.database_url, settings.redis_url):
        if url:
            values.append(urlsplit(url).password)
    return [v for v in values if v]


def redact_text(text: str) -> str:
    """Mask every known secret value and anything shaped like an API key, webhook secret or Bearer token."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower().replace("-", "_") in SECRET_FIELDS:
            event[key] = MASK
        elif isinstance(event[key], str):
            event[key] = redact_text(event[key])
    return event


def _redacting(renderer: Any) -> Any:
    """The renderer, with its finished line (message, fields and traceback text) scrubbed once more."""

    def render(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        line = renderer(logger, name, event)
        return redact_text(line) if isinstance(line, str) else line

    return render


def configure_logging(level: str = "INFO", fmt: str = "console", secrets: Iterable[str] = ()) -> None:
    """Route structlog and stdlib logging through one redacting pipeline to stderr.

    Tracebacks are plain text without local variables in both formats: structlog's console default
    (rich, with locals) would print request bodies and settings, API keys and secrets among them.
    """
    register_secrets(secrets)
    final: list[Any]
    if fmt == "json":
        final = [structlog.processors.format_exc_info, _redacting(structlog.processors.JSONRenderer())]
    else:
        console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        final = [_redacting(console)]
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
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
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
POS_INVOICE_BUDGET = Gauge(
    "tipsplit_pos_invoice_budget_remaining", "Invoices a POS account may still create in Blink's window", ["account"]
)
POS_BALANCE = Gauge("tipsplit_pos_balance_sats", "BTC balance of a POS account (the float legs are paid from)", ["account"])
BLINK_RATE_LIMITED = Counter(
    "tipsplit_blink_rate_limited_total", "Invoice creations Blink refused with TOO_MANY_REQUEST", ["kind"]
)
