"""The weekly digest per manager: Markdown and HTML, one section per rep (top movers, new risks,
slipped deals, each linked to its Deal Detail page), and the Slack-compatible webhook payload.
Pure: frames in, text out; the asset writes the files and posts."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import markdown
import polars as pl

from revintel_assets.defs.pipeline.alerts import MODEL_CHANGED

MOVERS = ("won", "lost", "new", "amount_up", "amount_down", "pushed_out", "pulled_in")


def _link(app_url: str, as_of: dt.date, deal: str) -> str:
    return f"[{deal}]({app_url.rstrip('/')}/deal-detail?as_of={as_of}&deal={deal})"


def manager_digest(manager: str, as_of: dt.date, compare: dt.date | None, changes: pl.DataFrame,
                   new_alerts: pl.DataFrame, app_url: str, top: int = 5) -> str:
    """Markdown for one manager. changes: scores.pipeline_changes rows of the manager's reps on
    as_of; new_alerts: deal_alerts rows of as_of that were not raised on the date before."""
    lines = [f"# Pipeline digest — {manager}, week to {as_of}", ""]
    if compare:
        lines += [f"Changes since {compare}.", ""]
    reps = sorted(set(changes["rep_id"].drop_nulls()) | set(new_alerts["rep_id"].drop_nulls()))
    if not reps:
        return "\n".join(lines + ["Nothing moved this week.", ""])
    for rep in reps:
        lines += [f"## {rep}", ""]
        mine = changes.filter(pl.col("rep_id") == rep)
        movers = (mine.filter(pl.col("category").is_in(MOVERS))
                  .with_columns((pl.col("amount_after").fill_null(0) - pl.col("amount_before").fill_null(0))
                                .alias("delta"))
                  .sort(pl.col("delta").abs(), "opportunity_id", descending=[True, False]).head(top))
        lines.append("**Top movers**")
        lines += [f"- {_link(app_url, as_of, r['opportunity_id'])}: {r['category'].replace('_', ' ')}, "
                  f"{r['delta']:+,.0f}" for r in movers.iter_rows(named=True)] or ["- none"]
        risks = new_alerts.filter(pl.col("rep_id") == rep).sort("opportunity_id", "alert_type")
        # a score that fell with a change of model fell by the model, not by anything the deal did (an
        # audit: 11 of a rep's 14 "new risks" the week the first model replaced the stage baseline)
        remodelled = risks["detail"].str.contains(MODEL_CHANGED, literal=True)
        lines += ["", "**New risks**"]
        listed = [f"- {_link(app_url, as_of, r['opportunity_id'])}: {r['detail']}"
                  for r in risks.filter(~remodelled).iter_rows(named=True)]
        n = int(remodelled.sum())
        if n:
            listed.append(f"- ({'and ' if listed else ''}{n} score drop{'s' * (n != 1)} that came with a change of "
                          "model, not listed as risks: the deal pages show them)")
        lines += listed or ["- none"]
        slipped = mine.filter(pl.col("category") == "pushed_out").sort("opportunity_id")
        lines += ["", "**Slipped deals**"]
        lines += [f"- {_link(app_url, as_of, r['opportunity_id'])}: close {r['expected_close_before']} → "
                  f"{r['expected_close_after']}" for r in slipped.iter_rows(named=True)] or ["- none"]
        lines.append("")
    return "\n".join(lines)


def to_html(md: str, title: str) -> str:
    body = markdown.markdown(md)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;max-width:760px'>{body}</body></html>")


class WebhookFailed(RuntimeError):
    """The digest webhook did not take the digest: names the URL and what it answered."""


def post_webhook(url: str, text: str, timeout: float = 10.0) -> int:
    """POST {"text": ...} (Slack's incoming-webhook shape) and return the HTTP status; a refusal
    or an unreachable URL is a WebhookFailed naming the URL (it was a bare urllib error)."""
    req = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (a URL the operator configured)
            return resp.status
    except urllib.error.HTTPError as e:
        raise WebhookFailed(f"the digest webhook {url} (REVINTEL_DIGEST_WEBHOOK_URL) answered HTTP {e.code} "
                            f"{e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise WebhookFailed(f"the digest webhook {url} (REVINTEL_DIGEST_WEBHOOK_URL) could not be reached: "
                            f"{reason}") from e
