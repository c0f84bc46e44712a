"""Which deal rows belong to a forecast segment, for the pages that drill from a segment to its
deals (Forecast, Plan). Its own module so the pages' lineage counts star.dim_rep as theirs."""

from __future__ import annotations

from typing import Any


def segment_filter(seg_type: str, segment: str) -> tuple[str, list[Any]]:
    """(" AND ..." condition, its parameters) keeping a forecast segment's rows of a deal-level table
    with `rep_id` (and `division`): a rep or division by its column, a region or manager through
    star.dim_rep, the total unfiltered. seg_type is one of the forecast's own segment types."""
    if seg_type in ("rep", "division"):
        return f" AND {'rep_id' if seg_type == 'rep' else 'division'} = ?", [segment]
    if seg_type in ("region", "manager"):
        return f" AND rep_id IN (SELECT rep_id FROM star.dim_rep WHERE {seg_type} = ?)", [segment]
    return "", []
