"""The weekly digest per manager: Markdown and HTML, one section per rep (top movers, new risks,
slipped deals, each linked to its Deal Detail page), and the Slack-compatible webhook payload.
Pure: frames in, text out; the asset writes the files and posts."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import markdown
import polars as pl

from revintel_assets.defs.pipeline.alerts import MODEL_CHANGED

MOVERS = ("won", "lost", "new", "amount_up", "amount_down", "pushed_out", "pulled_in")


# Names, ids and details come from the source folder: they go in as text, never as markup. A rep named
# "<img src=http://host/x.png>" or "[verify](http://phish)" was live HTML and a link in the digest files,
# and "<!channel>" pinged a whole Slack channel (an audit). &, < and > become entities (what HTML and
# Slack's webhook text both need), and the brackets and backslash that make Markdown links are escaped.
_MARKDOWN_LINK = re.compile(r"([\\\[\]])")


def text(value) -> str:
    """A data value as literal text in the digest's Markdown, its HTML and the webhook's text (one line)."""
    flat = " ".join(str(value).split()) if value is not None else ""
    return _MARKDOWN_LINK.sub(r"\\\1", html.escape(flat, quote=False))


def _link(app_url: str, as_of: dt.date, deal: str) -> str:
    query = urllib.parse.urlencode({"as_of": str(as_of), "deal": deal})  # the id percent-encoded: no ( ) or space
    return f"[{text(deal)}]({app_url.rstrip('/')}/deal-detail?{query})"


def manager_digest(manager: str, as_of: dt.date, compare: dt.date | None, changes: pl.DataFrame,
                   new_alerts: pl.DataFrame, app_url: str, top: int = 5) -> str:
    """Markdown for one manager. changes: scores.pipeline_changes rows of the manager's reps on
    as_of; new_alerts: deal_alerts rows of as_of that were not raised on the date before."""
    lines = [f"# Pipeline digest — {text(manager)}, week to {as_of}", ""]
    if compare:
        lines += [f"Changes since {compare}.", ""]
    reps = sorted(set(changes["rep_id"].drop_nulls()) | set(new_alerts["rep_id"].drop_nulls()))
    if not reps:
        return "\n".join(lines + ["Nothing moved this week.", ""])
    for rep in reps:
        lines += [f"## {text(rep)}", ""]
        mine = changes.filter(pl.col("rep_id") == rep)
        movers = (mine.filter(pl.col("category").is_in(MOVERS))
                  .with_columns((pl.col("amount_after").fill_null(0) - pl.col("amount_before").fill_null(0))
                                .alias("delta"))
                  .sort(pl.col("delta").abs(), "opportunity_id", descending=[True, False]).head(top))
        lines += ["**Top movers**", ""]  # a blank line: without it the items ran into one paragraph
        lines += [f"- {_link(app_url, as_of, r['opportunity_id'])}: {r['category'].replace('_', ' ')}, "
                  f"{r['delta']:+,.0f}" for r in movers.iter_rows(named=True)] or ["- none"]
        risks = new_alerts.filter(pl.col("rep_id") == rep).sort("opportunity_id", "alert_type")
        # a score that fell with a change of model fell by the model, not by anything the deal did (an
        # audit: 11 of a rep's 14 "new risks" the week the first model replaced the stage baseline)
        remodelled = risks["detail"].str.contains(MODEL_CHANGED, literal=True)
        lines += ["", "**New risks**", ""]
        listed = [f"- {_link(app_url, as_of, r['opportunity_id'])}: {text(r['detail'])}"
                  for r in risks.filter(~remodelled).iter_rows(named=True)]
        n = int(remodelled.sum())
        if n:
            listed.append(f"- ({'and ' if listed else ''}{n} score drop{'s' * (n != 1)} that came with a change of "
                          "model, not listed as risks: the deal pages show them)")
        lines += listed or ["- none"]
        slipped = mine.filter(pl.col("category") == "pushed_out").sort("opportunity_id")
        lines += ["", "**Slipped deals**", ""]
        lines += [f"- {_link(app_url, as_of, r['opportunity_id'])}: close {r['expected_close_before']} → "
                  f"{r['expected_close_after']}" for r in slipped.iter_rows(named=True)] or ["- none"]
        lines.append("")
    return "\n".join(lines)


def to_html(md: str, title: str) -> str:
    """The digest's Markdown as a page; its data is escaped by manager_digest, the title here."""
    body = markdown.markdown(md)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif;max-width:760px'>{body}</body></html>")


def file_names(managers: list[str]) -> dict[str, str]:
    """Each manager's digest file name: letters and digits kept, anything else "_", and where two managers
    come to one name ("A-B" and "A.B" wrote one file, the second over the first), a short hash of each."""
    slug = {m: "".join(ch if ch.isalnum() else "_" for ch in m) for m in managers}
    shared = {n for n in slug.values() if list(slug.values()).count(n) > 1}
    return {m: f"{n}_{hashlib.sha1(m.encode()).hexdigest()[:8]}" if n in shared else n for m, n in slug.items()}


def redact(url: str) -> str:
    """The webhook URL as messages and logs name it: scheme and host, not the path or query that hold its
    secret (a Slack webhook's token is its path)."""
    try:  # never raises: a port out of range or a broken IPv6 address raised from here (a re-check)
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"
    except ValueError:
        return "(a URL that does not parse)"


class WebhookFailed(RuntimeError):
    """The digest webhook did not take the digest: names the URL and what it answered."""


def post_webhook(url: str, text: str, timeout: float = 10.0) -> int:
    """POST {"text": ...} (Slack's incoming-webhook shape) and return the HTTP status; a refusal
    or an unreachable URL is a WebhookFailed naming the URL (it was a bare urllib error)."""
    named = f"the digest webhook {redact(url)} (REVINTEL_DIGEST_WEBHOOK_URL)"
    if not url.lower().startswith(("http://", "https://")):  # "hooks.slack.com/..." failed the run (a re-check)
        raise WebhookFailed(f"{named} is not an http:// or https:// URL")
    try:
        req = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (a URL the operator configured)
            return resp.status
    except urllib.error.HTTPError as e:
        raise WebhookFailed(f"{named} answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise WebhookFailed(f"{named} could not be reached: {getattr(e, 'reason', e)}") from None
    except Exception as e:  # noqa: BLE001 (an invalid port, a non-HTTP answer: said, never a failed run)
        # the message of a URL error can quote the URL, its secret path included: the kind only
        raise WebhookFailed(f"{named} could not be used: {type(e).__name__}") from None
