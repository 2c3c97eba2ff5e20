"""`tipsplit keys rotate` as a command: run the rotation and report what it did."""

from rich.table import Table

from tipsplit.cli.output import EXIT_OK, EXIT_PARTIAL, CommandError, connected, err, fail, out
from tipsplit.cli.payments import emit_json
from tipsplit.services.key_rotation import rotate_keys
from tipsplit.services.tills import rotate_till_keys
from tipsplit.settings import Settings


async def rotate(settings: Settings, as_json: bool) -> int:
    """`tipsplit keys rotate`: exit 0 when every key is under the newest one, 1 if some could not be opened."""
    try:
        async with connected(settings) as opened:
            report = await rotate_keys(
                opened.pg.api_keys, opened.hot, opened.keyring,
                file_store=opened.store.file_store, journal=opened.store.journal,
            )
            tills = await rotate_till_keys(opened.pg.tills, opened.keyring)
    except CommandError as exc:
        return fail(exc)
    counts = {"keyId": report.key_id, "examined": report.examined, "rotated": report.rotated,
              "changedMeanwhile": report.changed_meanwhile, "unreadable": len(report.unreadable),
              "fileStoreResealed": report.file_store_resealed, "journalWaiting": report.journal_waiting,
              "tillsRotated": tills.rotated, "tillsUnreadable": [till_id for till_id, _ in tills.unreadable]}
    if as_json:
        emit_json({**counts, "unreadablePayments": [{"paymentHash": h, "reason": r} for h, r in report.unreadable]})
    else:
        table = Table(title=f"API keys re-encrypted under key {report.key_id!r}", show_header=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        for label, value in (("not under the newest key", report.examined), ("re-encrypted (Redis entry dropped)",
                             report.rotated), ("changed meanwhile, left alone", report.changed_meanwhile),
                             ("cannot be opened", len(report.unreadable)),
                             ("file-store entries re-sealed", report.file_store_resealed),
                             ("till keys re-encrypted", tills.rotated),
                             ("till keys that cannot be opened", len(tills.unreadable)),
                             ("journal records waiting for PostgreSQL (old key still needed)",
                              report.journal_waiting)):
            table.add_row(label, f"{value:,}")
        out.print(table)
        for payment_hash, reason in report.unreadable[:20]:
            out.print(f"cannot open the key of {payment_hash}: {reason}", markup=False)
        for till_id, reason in tills.unreadable:
            out.print(f"cannot open the key of till {till_id}: {reason}", markup=False)
    if report.unreadable or tills.unreadable:
        err.print("error: some keys are sealed under a key that is not in ENCRYPTION_KEYS; add it and run again",
                  markup=False)
        return EXIT_PARTIAL
    return EXIT_OK
