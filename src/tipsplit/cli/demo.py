"""`tipsplit demo` as a command: start or find the sandbox, play the shift, print the tables."""

import httpx

from tipsplit.cli.demo_shift import DemoError, local_sandbox, play, render
from tipsplit.cli.output import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL, err, out
from tipsplit.runtime.embedded import EmbeddedServerError
from tipsplit.settings import Settings


async def run_demo(settings: Settings, url: str | None, timeout: float) -> int:
    """Exit 0 when every sale settled and the wallets add up to what customers paid, 1 otherwise."""
    try:
        if url:
            report = await play(url.rstrip("/"), timeout)
        else:
            err.print("starting a sandbox (simulator, service, and embedded servers if no URLs are set)…")
            async with local_sandbox(settings) as service_url:
                report = await play(service_url, timeout)
    except (httpx.HTTPError, EmbeddedServerError) as exc:
        err.print(f"error: cannot reach the sandbox: {exc}", markup=False)
        return EXIT_BAD_INPUT
    except DemoError as exc:
        err.print(f"error: {exc}", markup=False)
        return EXIT_PARTIAL
    render(report, out)
    if report.total_received != report.total_paid or any(p.get("status") != "completed" for p in report.payments):
        err.print("error: the shift did not settle completely", markup=False)
        return EXIT_PARTIAL
    out.print(f"all {len(report.payments)} sales settled: {report.total_paid:,} sats paid, "
              f"{report.total_received:,} sats received by the merchant and staff")
    return EXIT_OK
