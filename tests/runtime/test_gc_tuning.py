"""After start-up the collector leaves start-up's objects alone and runs less often on short-lived ones."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from tipsplit.runtime.assembly import GC_YOUNG_THRESHOLD, settle_gc


class Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_live_objects_are_frozen_garbage_is_collected_first_and_the_young_threshold_raised() -> None:
    _, middle, old = gc.get_threshold()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    settle_gc()
    assert gone() is None, "a cycle that was already garbage is collected, never frozen"
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
