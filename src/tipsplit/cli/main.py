"""The `tipsplit` command: serve the API, run the simulator, and operate the store.

Exit codes a script can rely on: 0 done, 1 partly done or refused, 2 bad
input or configuration.
"""

import asyncio
import sys
from pathlib import Path

import typer
import uvicorn

from tipsplit.observability import configure_logging, settings_secrets
from tipsplit.settings import Settings, SettingsError, load_settings

# A crash's traceback is printed without local variables: they hold settings, secrets among them.
app = typer.Typer(
    help="tipsplit: forward Lightning POS payments' base and tips exactly once.", no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
payments_app = typer.Typer(help="Inspect and retry payments.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")
keys_app = typer.Typer(help="API-key encryption.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

JSON_OPTION = typer.Option(False, "--json", help="print JSON for scripts instead of tables")


def settings_or_exit() -> Settings:
    """Load settings, or explain which variable is wrong and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def operator_settings() -> Settings:
    """Settings for a one-shot command: logs to stderr, warnings only unless LOG_LEVEL=DEBUG, so stdout stays clean."""
    settings = settings_or_exit()
    level = "DEBUG" if settings.log_level.upper() == "DEBUG" else "WARNING"
    configure_logging(level, settings.log_format, settings_secrets(settings))
    return settings


@app.command()
def serve(
    host: str | None = typer.Option(None, help="interface to listen on (HOST)"),
    port: int | None = typer.Option(None, help="port to listen on (PORT)"),
) -> None:
    """Run the HTTP service (sandbox mode with the bundled simulator when BLINK_API_URL is unset)."""
    from tipsplit.http.app import create_app

    settings = settings_or_exit()
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update=overrides)
    try:
        settings.require_production_secrets()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format, settings_secrets(settings))
    public = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}"
    typer.echo(f"tipsplit serves {public}: the owner's dashboard (create tills) at {public}/dashboard, a till at"
               f" {public}/till, the sign-in-with-a-key POS at {public}/, the API docs at {public}/docs."
               " Ctrl-C stops it.")
    # Idle keep-alive connections stay open 75 s, longer than the usual 60 s idle timeout of load balancers and
    # HTTP clients, so the server never closes a connection at the moment its client reuses it.
    # uvicorn's own proxy-header handling (which trusts 127.0.0.1) is off: the app trusts TRUSTED_PROXIES only.
    uvicorn.run(
        create_app(settings, public_url=public), host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=10, timeout_keep_alive=75, proxy_headers=False,
    )


@app.command()
def sim(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8100, help="port to listen on"),
    seed: int = typer.Option(0, help="seed for ids, keys and preimages"),
    rate_limits: bool = typer.Option(
        True, "--rate-limits/--no-rate-limits",
        help="Blink's invoice-creation limits (60 a minute per account, then a 5-minute block)",
    ),
    latency_ms: int = typer.Option(0, min=0, help="answer every GraphQL call over HTTP this many ms late"),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log", help="log a line per HTTP request"),
) -> None:
    """Run the Blink simulator alone (a GraphQL server with an in-memory ledger)."""
    from tipsplit.sim.server import run

    configure_logging()
    run(host, port, seed, rate_limits, latency_ms, access_log)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (safe to run from several instances at once)."""
    from tipsplit.store.schema import apply_migrations

    settings = settings_or_exit()
    if not settings.database_url:
        typer.echo("error: DATABASE_URL is not set", err=True)
        raise typer.Exit(2)
    applied = apply_migrations(settings.database_url)
    typer.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@app.command("migrate-to-hybrid")
def migrate_to_hybrid(
    file: Path | None = typer.Option(None, "--file", help="the original app's store file (TIP_STORE_FILE)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check every entry and report; write nothing"),
    legacy_passphrase: str | None = typer.Option(
        None, "--legacy-passphrase", envvar="LEGACY_ENCRYPTION_KEY", show_envvar=True,
        help="the original app's ENCRYPTION_KEY, to open CryptoJS-encrypted API keys",
    ),
) -> None:
    """Import a legacy .tip-store.json into PostgreSQL (idempotent; the source is backed up, never changed)."""
    from tipsplit.cli.legacy_import import run_migration

    settings = operator_settings()
    raise typer.Exit(asyncio.run(run_migration(settings, file or settings.tip_store_file, dry_run, legacy_passphrase)))


@app.command()
def stats(as_json: bool = JSON_OPTION) -> None:
    """Last 24 hours by status, volume and tips, and each recipient's lifetime tips."""
    from tipsplit.cli import payments

    raise typer.Exit(asyncio.run(payments.stats(operator_settings(), as_json)))


@payments_app.command("list")
def payments_list(
    status: str | None = typer.Option(None, "--status", help="pending, processing, completed, failed or expired"),
    since: str | None = typer.Option(None, "--since", help="ISO date/time, or a span back from now: 30m, 2h, 7d"),
    recipient: str | None = typer.Option(None, "--recipient", help="only payments tipping this username"),
    limit: int = typer.Option(50, "--limit", help="at most this many, newest first"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Payments, newest first."""
    from tipsplit.cli import payments

    query = payments.ListQuery(status, since, recipient, limit)
    raise typer.Exit(asyncio.run(payments.list_payments(operator_settings(), query, as_json)))


@payments_app.command("show")
def payments_show(payment_hash: str = typer.Argument(..., help="64 hex digits"), as_json: bool = JSON_OPTION) -> None:
    """One payment with its legs and audit trail (no secrets). Exit 1 if unknown, 2 if the hash is malformed."""
    from tipsplit.cli import payments

    raise typer.Exit(asyncio.run(payments.show_payment(operator_settings(), payment_hash, as_json)))


@payments_app.command("retry")
def payments_retry(payment_hash: str = typer.Argument(..., help="64 hex digits")) -> None:
    """Re-drive a failed payment's failed legs; refuses (exit 1) any other state. Can never pay a leg twice."""
    from tipsplit.cli import payments

    raise typer.Exit(asyncio.run(payments.retry_payment(operator_settings(), payment_hash)))


@keys_app.command("rotate")
def keys_rotate(as_json: bool = JSON_OPTION) -> None:
    """Re-encrypt every stored API key under the newest key of ENCRYPTION_KEYS (the last one)."""
    from tipsplit.cli import keys

    raise typer.Exit(asyncio.run(keys.rotate(operator_settings(), as_json)))


@app.command()
def demo(
    url: str | None = typer.Option(None, "--url", help="a running sandbox service; by default one is started here"),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds to wait for the shift to settle"),
) -> None:
    """Play a short POS shift on the sandbox and show who received what."""
    from tipsplit.cli import demo

    raise typer.Exit(asyncio.run(demo.run_demo(operator_settings(), url, timeout)))


def main() -> None:
    sys.exit(app())
