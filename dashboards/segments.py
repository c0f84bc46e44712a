"""Which deal rows belong to a forecast segment, for the pages that drill from a segment to its
deals (Forecast, Plan). Its own module so the pages' lineage counts star.dim_rep as theirs."""

from __future__ import annotations

from typing import Any

from revintel_assets.rules import UNASSIGNED


def segment_filter(seg_type: str, segment: str) -> tuple[str, list[Any]]:
    """(" AND ..." condition, its parameters) keeping a forecast segment's rows of a deal-level table
    with `rep_id` (and `division`): a rep or division by its column, a region or manager through
    star.dim_rep, the total unfiltered. seg_type is one of the forecast's own segment types."""
    # 'Unassigned' (rules.UNASSIGNED) is the forecast's name for a missing rep, division, region or
    # manager: NULL here, or a rep star.dim_rep does not describe (the filter matched no deal, and a
    # segment with a P50 of 286,927 listed none)
    if seg_type in ("rep", "division"):
        return f" AND coalesce({'rep_id' if seg_type == 'rep' else 'division'}, ?) = ?", [UNASSIGNED, segment]
    if seg_type in ("region", "manager"):
        cond = f"rep_id IN (SELECT rep_id FROM star.dim_rep WHERE coalesce({seg_type}, ?) = ?)"
        if segment == UNASSIGNED:
            return (f" AND ({cond} OR rep_id IS NULL OR rep_id NOT IN (SELECT rep_id FROM star.dim_rep "
                    "WHERE rep_id IS NOT NULL))", [UNASSIGNED, segment])
        return f" AND {cond}", [UNASSIGNED, segment]
    return "", []
