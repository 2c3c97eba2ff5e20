"""`tipsplit demo` plays a shift whose printed takings add up to what the customers paid."""

import asyncio
import re

from tests.cli.conftest import Cli
from tipsplit.cli.demo_shift import local_sandbox
from tipsplit.settings import load_settings

ROW = re.compile(r"^[│|]\s*(?P<party>[^│|]+?)\s*[│|]\s*(?P<sats>[\d,]+)\s*[│|]\s*$")


def takings(stdout: str) -> dict[str, int]:
    """The rows of the takings table, the first table printed."""
    section = stdout.split("payments", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match["party"]] = int(match["sats"].replace(",", ""))
    return rows


def test_demo_shift_settles_and_adds_up(cli: Cli) -> None:
    result = cli("demo", "--timeout", "60")
    assert result.exit_code == 0, result.output
    rows = takings(result.stdout)
    paid = rows.pop("total paid by customers")
    received = rows.pop("total received")
    assert set(rows) >= {"merchant", "alice_tips", "carol_tips"}
    assert any("failed once, retried" in name for name in rows)
    assert len(rows) == 4 and all(sats > 0 for sats in rows.values())
    assert sum(rows.values()) == received == paid
    assert result.stdout.count("completed") >= 12
    assert "all 12 sales settled" in result.stdout


async def test_demo_against_a_running_sandbox_reports_only_its_own_shift(cli: Cli) -> None:
    settings = load_settings(**{"database_url": cli.env["DATABASE_URL"], "redis_url": cli.env["REDIS_URL"],
                                "redis_key_prefix": cli.prefix, "log_level": "WARNING"})
    async with local_sandbox(settings) as url:
        for _ in range(2):
            result = await asyncio.to_thread(cli, "demo", "--url", url)
            assert result.exit_code == 0, result.output
            rows = takings(result.stdout)
            assert rows.pop("total paid by customers") == rows.pop("total received") == sum(rows.values())


def test_demo_refuses_a_service_that_is_not_there(cli: Cli) -> None:
    result = cli("demo", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "cannot reach" in result.stderr
