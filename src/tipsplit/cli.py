"""The `tipsplit` command: serve the API, run the simulator, and operate the store.

Exit codes a script can rely on: 0 done, 1 partly done or refused, 2 bad
input or configuration.
"""

import asyncio
import sys
from pathlib import Path

import typer
import uvicorn

from tipsplit.config import Settings, SettingsError, load_settings
from tipsplit.observability import configure_logging

app = typer.Typer(help="tipsplit: forward Lightning POS payments' base and tips exactly once.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def settings_or_exit() -> Settings:
    """Load settings, or explain which variable is wrong and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: str | None = typer.Option(None, help="interface to listen on (HOST)"),
    port: int | None = typer.Option(None, help="port to listen on (PORT)"),
) -> None:
    """Run the HTTP service (sandbox mode with the bundled simulator when BLINK_API_URL is unset)."""
    from tipsplit.api.app import create_app

    settings = settings_or_exit()
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update=overrides)
    try:
        settings.require_production_secrets()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    public = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}"
    uvicorn.run(
        create_app(settings, public_url=public), host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=10,
    )


@app.command()
def sim(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8100, help="port to listen on"),
    seed: int = typer.Option(0, help="seed for ids, keys and preimages"),
) -> None:
    """Run the Blink simulator alone (a GraphQL server with an in-memory ledger)."""
    from tipsplit.sim.server import run

    configure_logging()
    run(host, port, seed)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (safe to run from several instances at once)."""
    from tipsplit.store.migrate import apply_migrations

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
    from tipsplit.ops_cli import run_migration

    settings = settings_or_exit()
    raise typer.Exit(asyncio.run(run_migration(settings, file or settings.tip_store_file, dry_run, legacy_passphrase)))


def main() -> None:
    sys.exit(app())
