"""Why a page's model is not there: the reason the run recorded, instead of "Not built yet — run
revintel demo" (which a user who just ran it cannot act on)."""

from __future__ import annotations

import streamlit as st

from dashboards import db
from dashboards.safe import md


def _count(table: str, where: str = "TRUE") -> int | None:
    return db.scalar(f"SELECT count(*) FROM {table} WHERE {where}") if db.table_exists(table) else None


def icp_reasons() -> list[str]:
    """Why there are no ICP scores, from what the ICP runs recorded (empty: nothing recorded)."""
    reasons = []
    transactions = _count("star.fact_transactions")
    if transactions == 0:
        reasons.append("The loaded source has no transactions (order lines): the ICP models learn who buys "
                       "from which division from them, so there is nothing to learn from.")
    if _count("features.icp_divisions") == 0:
        reasons.append("No product division was found in `star.dim_product`: there is no division to model.")
    if _count("features.icp_cutoffs") == 0 and transactions != 0:
        reasons.append("Not enough transaction history for any model: a model needs a few months of orders before "
                       "a cutoff and a full label window after it.")
    if db.table_exists("validation.icp_models"):
        skipped = db.query("SELECT division, cutoff_date, message FROM validation.icp_models "
                           "WHERE status <> 'trained' ORDER BY cutoff_date DESC, division LIMIT 20")
        trained = _count("validation.icp_models", "status = 'trained'") or 0
        if skipped.height and not trained:
            reasons.append("No ICP model could be trained: " + "; ".join(
                f"{md(r['division'])} at {r['cutoff_date']}: {md(r['message'])}" for r in skipped.iter_rows(named=True)))
    return reasons


def stop_unless_icp(table: str) -> None:
    """Stop the page with the recorded reason when `table` (an ICP output) is missing or empty."""
    db.require_data()
    if db.table_exists(table) and (_count(table) or 0) > 0:
        return
    reasons = icp_reasons()
    if not reasons:
        db.require_tables(table)  # nothing recorded: the generic "not built yet"
        st.info(f"`{table}` has no rows yet.", icon=":material/hourglass_empty:")
        st.stop()
    st.warning("**No ICP model for this data.** " + " ".join(reasons), icon=":material/block:")
    st.stop()
