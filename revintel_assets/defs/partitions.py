"""The one helper that registers the keys of a dynamic partition (as-of dates, training cutoffs,
transaction months, ICP cutoffs and divisions).

All of them come from the data, never from the wall clock: the import registers the months,
as-of dates and training cutoffs of its source, the ICP plan its cutoffs and divisions. When a
data directory switches to another source, revintel_assets/source_switch.py empties every one
of them first, so the new source's runs see its keys only.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def register(instance: dg.DagsterInstance, definition: dg.DynamicPartitionsDefinition, keys: Iterable[str],
             *, exact: bool = False) -> list[str]:
    """Add the `keys` not registered yet; returns them. With `exact`, also delete every registered
    key not in `keys` (a plan recomputed from the data replaces the previous one). Without it the
    earlier keys stay, e.g. the as-of dates of an earlier, shorter export of the same source."""
    wanted = list(dict.fromkeys(keys))  # ordered, no duplicates
    known = set(instance.get_dynamic_partitions(definition.name))
    new = [k for k in wanted if k not in known]
    if new:
        instance.add_dynamic_partitions(definition.name, new)
    if exact:
        for stale in sorted(known - set(wanted)):
            instance.delete_dynamic_partition(definition.name, stale)
    return new
