"""The Jinja2 environment of the pages, with the few filters they share."""

from datetime import datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


def sats(value: int | None) -> str:
    """Thousands-separated integer sats; amounts are never shown as floats."""
    return "–" if value is None else f"{value:,}"


def when(value: datetime | None) -> str:
    """UTC to the second, the same on every operator's screen."""
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["sats"] = sats
templates.env.filters["when"] = when
