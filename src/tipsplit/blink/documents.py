"""The GraphQL documents tipsplit sends to Blink, one `.graphql` file per operation.

Keeping them as files lets a test validate every one against Blink's schema,
so a typo fails in CI rather than in front of a customer.
"""

from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable

OPERATIONS_DIR = "operations"


def _operations_dir() -> Traversable:
    return files("tipsplit.blink").joinpath(OPERATIONS_DIR)


def operation_names() -> list[str]:
    """Names of all shipped operations (the file names without `.graphql`)."""
    return sorted(
        entry.name.removesuffix(".graphql")
        for entry in _operations_dir().iterdir()
        if entry.name.endswith(".graphql")
    )


@lru_cache(maxsize=None)
def document(name: str) -> str:
    """The text of the operation `name`; its operation name equals the file name."""
    return _operations_dir().joinpath(f"{name}.graphql").read_text(encoding="utf-8")
