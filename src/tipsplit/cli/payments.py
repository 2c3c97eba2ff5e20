"""`tipsplit stats` and `tipsplit payments list|show|retry`: the store as an operator sees it.

Nothing here prints an API key: records carry only the sealed key, and the
views below leave even that out.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import typer
from rich.table import Table

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import BlinkError
from tipsplit.cli.output import EXIT_OK, EXIT_PARTIAL, CommandError, connected, err, fail, out
from tipsplit.domain.models import check_payment_hash
from tipsplit.domain.records import EventRecord, LegRecord, PaymentRecord
from tipsplit.domain.states import LegStatus, PaymentStatus
from tipsplit.runtime.assembly import assemble_settler
from tipsplit.runtime.sandbox import SandboxNotRunning, running_sandbox
from tipsplit.services.merchant_keys import PosKeyError, require_settling_key
from tipsplit.services.operator_retry import RetryRefused, retry_failed_payment
from tipsplit.services.pos_accounts import open_pos_accounts
from tipsplit.settings import Settings
from tipsplit.store.payments import Payments

RELATIVE_RE = re.compile(r"^(\d+)\s*([smhdw])$")
MIN_PREFIX = 8
HASH_SHOWN = 12
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an ISO date/time (UTC if no zone) or a span back from now such as 30m, 2h, 7d."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    relative = RELATIVE_RE.fullmatch(value.strip())
    if relative:
        return now - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"--since {value!r}: expected an ISO date/time or a span like 30m, 2h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_status(value: str | None) -> PaymentStatus | None:
    if value is None:
        return None
    try:
        return PaymentStatus(value.lower())
    except ValueError:
        choices = ", ".join(s.value for s in PaymentStatus)
        raise CommandError(f"--status {value!r}: expected one of {choices}") from None


def parse_hash(value: str) -> str:
    try:
        return check_payment_hash(value)
    except ValueError as exc:
        raise CommandError(f"{value[:80]!r}: {exc}") from None


def parse_hash_or_prefix(value: str) -> str:
    """A whole payment hash, or its first 8 to 63 hexadecimal characters (as `payments list` shows them)."""
    lowered = value.strip().lower()
    if len(lowered) < 64 and len(lowered) >= MIN_PREFIX and all(c in "0123456789abcdef" for c in lowered):
        return lowered
    if len(lowered) < MIN_PREFIX:
        raise CommandError(f"{value[:80]!r}: give the payment hash or at least its first {MIN_PREFIX} characters")
    return parse_hash(value)


async def resolve_hash(payments: Payments, value: str) -> str:
    """The one stored payment whose hash starts with `value`; CommandError when none or several do."""
    if len(value) == 64:
        return value
    found = await payments.hashes_starting_with(value)
    if not found:
        raise CommandError(f"no stored payment hash starts with {value}", EXIT_PARTIAL)
    if len(found) > 1:
        raise CommandError(f"several payment hashes start with {value}; give more characters")
    return found[0]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def payment_view(payment: PaymentRecord) -> dict[str, Any]:
    """A payment for people and scripts: amounts, recipients, state; never the API key."""
    return {
        "paymentHash": payment.payment_hash,
        "status": payment.status.value,
        "totalAmount": payment.total_amount,
        "baseAmount": payment.base_amount,
        "tipAmount": payment.tip_amount,
        "tipPercent": _plain(payment.tip_percent),
        "tipRecipients": [{"username": r.username, "share": _plain(r.share)} for r in payment.tip_recipients],
        "merchantWalletId": payment.user_wallet_id,
        "displayCurrency": payment.display_currency,
        "createdAt": _plain(payment.created_at),
        "expiresAt": _plain(payment.expires_at),
        "paidAt": _plain(payment.paid_at),
        "processedAt": _plain(payment.processed_at),
        "settleAttempts": payment.settle_attempts,
        "error": payment.error_message,
    }


def leg_view(leg: LegRecord) -> dict[str, Any]:
    return {
        "leg": leg.leg,
        "status": leg.status.value,
        "amount": leg.amount,
        "destination": leg.destination_username or leg.destination_wallet_id,
        "currency": leg.destination_currency.value,
        "destPaymentHash": leg.dest_payment_hash,
        "attempts": leg.attempts,
        "lastError": leg.last_error,
        "completedAt": _plain(leg.completed_at),
    }


def event_view(event: EventRecord) -> dict[str, Any]:
    return {"at": _plain(event.timestamp), "type": event.event_type, "data": event.event_data}


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_plain))


async def stats(settings: Settings, as_json: bool) -> int:
    """Last 24 hours by status and the recipients' lifetime tips."""
    try:
        async with connected(settings) as opened:
            summary = await opened.store.stats.get_stats()
            recipients = await opened.pg.reports.recipient_stats()
    except CommandError as exc:
        return fail(exc)
    tippees = [
        {"username": r.recipient_username, "totalTipsReceived": r.total_tips_received,
         "totalTipsCount": r.total_tips_count, "averageTipAmount": _plain(r.average_tip_amount)}
        for r in recipients
    ]
    if as_json:
        emit_json({**summary, "recipients": tippees})
        return EXIT_OK
    last = summary.get("last24Hours") or {}
    table = Table(title="last 24 hours")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in last.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    out.print(table)
    people = Table(title="tip recipients (lifetime)")
    for column in ("recipient", "tips", "sats", "average"):
        people.add_column(column, justify="left" if column == "recipient" else "right")
    for r in tippees:
        people.add_row(r["username"], str(r["totalTipsCount"]), f"{r['totalTipsReceived']:,}", str(r["averageTipAmount"]))
    out.print(people)
    return EXIT_OK


@dataclass(frozen=True)
class ListQuery:
    status: str | None
    since: str | None
    recipient: str | None
    limit: int


async def list_payments(settings: Settings, query: ListQuery, as_json: bool) -> int:
    """Newest payments first, filtered."""
    try:
        status, since = parse_status(query.status), parse_since(query.since)
        if query.limit < 1:
            raise CommandError("--limit must be at least 1")
        async with connected(settings) as opened:
            payments = await opened.pg.payments.page(
                status=status, since=since, recipient=query.recipient, limit=query.limit
            )
    except CommandError as exc:
        return fail(exc)
    if as_json:
        emit_json([payment_view(p) for p in payments])
        return EXIT_OK
    table = Table(title=f"payments ({len(payments)})", caption="hash: the first 12 characters; --json: whole",
                  caption_justify="left")
    table.add_column("hash", no_wrap=True)
    for column in ("status", "total", "base", "tip", "recipients", "created (UTC)"):
        table.add_column(column, justify="right" if column in ("total", "base", "tip") else "left",
                         no_wrap=column != "recipients", overflow="fold")
    for p in payments:
        table.add_row(
            p.payment_hash[:HASH_SHOWN], p.status.value, f"{p.total_amount:,}", f"{p.base_amount:,}",
            f"{p.tip_amount:,}", ", ".join(r.username for r in p.tip_recipients),
            p.created_at.strftime("%m-%d %H:%M"),
        )
    out.print(table)
    return EXIT_OK


async def show_payment(settings: Settings, payment_hash: str, as_json: bool) -> int:
    """One payment with its legs and audit trail."""
    try:
        payment_hash = parse_hash_or_prefix(payment_hash)
        async with connected(settings) as opened:
            payment_hash = await resolve_hash(opened.pg.payments, payment_hash)
            payment = await opened.pg.payments.get(payment_hash)
            events = await opened.pg.events.of_payment(payment_hash) if payment else []
        if payment is None:
            raise CommandError(f"payment {payment_hash} is not stored", EXIT_PARTIAL)
    except CommandError as exc:
        return fail(exc)
    view = {**payment_view(payment), "legs": [leg_view(leg) for leg in payment.legs],
            "events": [event_view(e) for e in events]}
    if as_json:
        emit_json(view)
        return EXIT_OK
    head = Table(title=f"payment {payment.payment_hash}", show_header=False)
    head.add_column("field")
    head.add_column("value")
    for key, value in payment_view(payment).items():
        if key != "paymentHash" and value not in (None, []):
            head.add_row(key, json.dumps(value) if isinstance(value, list) else str(value))
    out.print(head)
    legs = Table(title="legs")
    for column in ("leg", "status", "amount", "destination", "attempts", "last error"):
        legs.add_column(column, justify="right" if column in ("amount", "attempts") else "left")
    for leg in view["legs"]:
        legs.add_row(leg["leg"], leg["status"], f"{leg['amount']:,}", str(leg["destination"]),
                     str(leg["attempts"]), leg["lastError"] or "")
    out.print(legs)
    trail = Table(title="events")
    for column in ("at", "event", "data"):
        trail.add_column(column)
    for event in view["events"]:
        trail.add_row(event["at"][:23], event["type"], json.dumps(event["data"], default=str))
    out.print(trail)
    return EXIT_OK


def blink_of(settings: Settings) -> Settings:
    """The settings with Blink as configured, or in sandbox mode the simulator of the sandbox running here."""
    if settings.sandbox:
        try:
            running = running_sandbox(settings.data_dir)
        except SandboxNotRunning as exc:
            raise CommandError(str(exc)) from None
        return settings.model_copy(update={
            "blink_api_url": running.graphql_url, "blinkpos_api_key": running.pos_api_key,
            "blinkpos_btc_wallet_id": running.pos_wallet_id,
        })
    if not (settings.blink_api_url and settings.pos_accounts):
        raise CommandError(
            "payments retry talks to Blink: set BLINK_API_URL and BLINKPOS_ACCOUNTS (or BLINKPOS_API_KEY and"
            " BLINKPOS_BTC_WALLET_ID)"
        )
    return settings


async def _check_pos_key(pos: BlinkClient, settings: Settings) -> None:
    """Before touching any leg: Blink answers, and the POS key can settle."""
    try:
        await require_settling_key(pos)
    except PosKeyError as exc:
        raise CommandError(str(exc)) from None
    except BlinkError as exc:
        hint = (" Is the sandbox service (`tipsplit serve`) still running with this data directory?"
                if settings.sandbox else "")
        raise CommandError(f"Blink at {pos.url} cannot be asked ({exc.detail}); nothing was retried.{hint}") from None


async def retry_payment(settings: Settings, payment_hash: str) -> int:
    """Give a failed payment's failed legs fresh attempts and settle it now; refuse every other state.

    The same path as the dashboard's Retry button (`payment_retry`): it can finish a payment but never pay a
    leg twice. If a leg fails again, the payment stays queued and the service's reconciler retries it with
    backoff.
    """
    try:
        payment_hash = parse_hash(payment_hash)
        blink = blink_of(settings)
        async with connected(settings) as opened:
            accounts, pos = open_pos_accounts(blink, opened.hot)
            async with pos:
                payment = await opened.pg.payments.get(payment_hash, with_legs=False)
                account = accounts.for_payment(payment.pos_wallet_id) if payment else accounts.default
                if account is None:
                    raise CommandError(f"payment {payment_hash} was received by a POS account not configured here")
                await _check_pos_key(account.client, settings)
                settler = assemble_settler(opened.pg, opened.hot, accounts, opened.settings)
                try:
                    retried = await retry_failed_payment(opened.pg, settler, payment_hash, "tipsplit payments retry")
                except RetryRefused as exc:
                    raise CommandError(str(exc), EXIT_PARTIAL) from None
    except CommandError as exc:
        return fail(exc)
    after = retried.payment
    out.print(f"retried {payment_hash}: {retried.outcome.value}, now {after.status.value}", markup=False)
    for leg in after.legs:
        out.print(f"  {leg.leg}: {leg.status.value} {leg.amount:,} sats"
                  + (f" ({leg.last_error})" if leg.status is LegStatus.FAILED and leg.last_error else ""), markup=False)
    if retried.completed:
        return EXIT_OK
    if after.status is PaymentStatus.PROCESSING:
        err.print(f"payment {payment_hash} is not completed yet: its failed legs are queued again and the"
                  " service retries them with backoff; check with `tipsplit payments show`", markup=False)
    else:
        err.print(f"payment {payment_hash} is {after.status.value}", markup=False)
    return EXIT_PARTIAL
