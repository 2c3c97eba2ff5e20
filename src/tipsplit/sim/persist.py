"""A simulator's ledger kept in a file, so that a sandbox restart finds its accounts, keys, invoices and balances.

The snapshot is the Ledger object's data, pickled whole, and the clock's
offset. Left out are what binds a ledger to a running simulator (its
listeners and clock, which the fresh simulator brings) and its random
generator: the fresh simulator's seed, new on every start, draws the next
ids and preimages, so no payment hash is handed out twice even when a crash
lost the latest snapshot. A snapshot written by another ledger layout (an
upgrade changed a record's fields) is set aside and never half-applied.

Pickle runs code of the classes it names, so only files this process wrote
are loaded: the snapshot lives in the private data directory (mode 0600),
beside the encryption keys.
"""

import dataclasses
import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

from tipsplit.sim import ledger as ledger_module
from tipsplit.sim.state import SimState

log = logging.getLogger(__name__)

FORMAT = 1
# Ledger attributes that are not data: re-created by the simulator the snapshot is loaded into.
NOT_DATA = frozenset({"_listeners", "_clock", "_rng"})


def _layout(sim: SimState) -> dict[str, tuple[str, ...]]:
    """The ledger's attribute names and every ledger record's field names: a snapshot fits only the same layout."""
    records = {
        name: tuple(f.name for f in dataclasses.fields(obj))
        for name, obj in vars(ledger_module).items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    }
    return {"Ledger": tuple(sorted(set(vars(sim.ledger)) - NOT_DATA)), **records}


def save(sim: SimState, path: Path, extra: dict[str, Any]) -> None:
    """Write the snapshot (with `extra`, e.g. the sandbox's accounts) atomically: a crash leaves the old or the new."""
    data = {name: value for name, value in vars(sim.ledger).items() if name not in NOT_DATA}
    snapshot = {
        "format": FORMAT,
        "layout": _layout(sim),
        "ledger": data,
        "clock_offset": sim.clock.now() - time.time(),
        "extra": extra,
    }
    body = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def load(sim: SimState, path: Path) -> dict[str, Any] | None:
    """Restore a snapshot into a fresh simulator and return its `extra`; None when there is none that fits.

    An unreadable or foreign snapshot is renamed `*.unusable` (kept for a
    look, never loaded again) and the simulator starts empty.
    """
    if not path.exists():
        return None
    try:
        snapshot = pickle.loads(path.read_bytes())
        if snapshot["format"] != FORMAT or snapshot["layout"] != _layout(sim):
            raise ValueError("written by another version of the simulator's ledger")
        data: dict[str, Any] = snapshot["ledger"]
        offset = float(snapshot["clock_offset"])
        extra: dict[str, Any] = snapshot["extra"]
    except Exception as exc:  # any failure to read means: do not use it
        aside = path.with_name(path.name + ".unusable")
        os.replace(path, aside)
        log.warning("simulator snapshot %s not used (%s: %s); set aside as %s", path, type(exc).__name__, exc, aside)
        return None
    vars(sim.ledger).update(data)
    if offset > 0:
        sim.clock.advance(offset)
    return extra
