"""`tipsplit migrate-to-hybrid` as a command: a progress bar while the original app's file is imported, then a summary."""

import asyncio
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tipsplit.cli.output import EXIT_OK, EXIT_PARTIAL, CommandError, connected, err, fail, out
from tipsplit.services.legacy_import import EntryResult, MigrationInputError, Migrator, Summary, read_source
from tipsplit.settings import Settings
from tipsplit.store.schema import pending_migrations

MAX_LISTED_FAILURES = 20


async def run_migration(settings: Settings, path: Path, dry_run: bool, passphrase: str | None) -> int:
    """`tipsplit migrate-to-hybrid`: progress bar, summary table, exit 0/1/2."""
    try:
        summary = await _migrate(settings, path, dry_run, passphrase)
    except CommandError as exc:
        return fail(exc)
    print_summary(summary)
    return EXIT_PARTIAL if summary.failed else EXIT_OK


async def _migrate(settings: Settings, path: Path, dry_run: bool, passphrase: str | None) -> Summary:
    try:
        source = read_source(path)
    except MigrationInputError as exc:
        raise CommandError(str(exc)) from None
    progress = Progress(
        TextColumn("[bold]migrating" if not dry_run else "[bold]checking"),
        BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True,
    )
    task = progress.add_task("entries", total=None)

    def advance(results: list[EntryResult]) -> None:
        progress.advance(task, len(results))

    async with connected(settings, migrate=not dry_run) as opened:
        schema_ready = not dry_run or not await asyncio.to_thread(pending_migrations, opened.settings.database_url or "")
        migrator = Migrator(
            opened.store, opened.keyring, passphrase=passphrase,
            concurrency=max(1, min(4, opened.settings.database_pool_max)), schema_ready=schema_ready,
        )
        with progress:
            return await migrator.run(
                source, dry_run=dry_run, on_start=lambda n: progress.update(task, total=n), on_results=advance
            )


def print_summary(summary: Summary) -> None:
    """The run's counts, its failures with reasons, and where the backup and log are."""
    title = "migration (dry run: nothing written)" if summary.dry_run else "migration"
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    verb = "would migrate" if summary.dry_run else "migrated"
    for label, value in (
        ("total entries", summary.total),
        (verb, summary.migrated),
        ("archived as expired" if not summary.dry_run else "would archive as expired", summary.expired),
        ("skipped (already present)", summary.skipped),
        ("failed", summary.failed),
    ):
        table.add_row(label, str(value))
    table.add_row("entries/s", f"{summary.rate:,.0f}")
    out.print(table)
    for failure in summary.failures[:MAX_LISTED_FAILURES]:
        out.print(f"failed {failure.key[:64]}: {failure.reason}", markup=False)
    if summary.failed > MAX_LISTED_FAILURES:
        out.print(f"… and {summary.failed - MAX_LISTED_FAILURES} more failures (see the log)")
    if summary.backup_path is not None:
        out.print(f"backup: {summary.backup_path}", markup=False)
    if summary.log_path is not None:
        out.print(f"log: {summary.log_path}", markup=False)
