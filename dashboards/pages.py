"""The app's pages, declared once: the Streamlit navigation (app.py) and the Dagster lineage of
each page (revintel_assets/lineage.py: which tables it reads) both come from this list."""

from __future__ import annotations

from pathlib import Path

VIEWS = Path(__file__).resolve().parent / "views"

# (file in dashboards/views, title, material icon, url_path) — one line per page; first is the default.
PAGES: list[tuple[str, str, str, str]] = [
    ("home.py", "Home", ":material/home:", "home"),
    ("pipeline_risk.py", "Pipeline Risk", ":material/crisis_alert:", "pipeline-risk"),
    ("what_changed.py", "What Changed", ":material/waterfall_chart:", "what-changed"),
    ("deal_detail.py", "Deal Detail", ":material/handshake:", "deal-detail"),
    ("icp.py", "ICP", ":material/target:", "icp"),
    ("whitespace.py", "Whitespace", ":material/add_business:", "whitespace"),
    ("model_health.py", "Model Health", ":material/monitor_heart:", "model-health"),
    ("forecast.py", "Forecast", ":material/query_stats:", "forecast"),
    ("plan.py", "Plan", ":material/flag:", "plan"),
    ("forecast_accuracy.py", "Forecast Accuracy", ":material/rule:", "forecast-accuracy"),
]

# helper modules a page reads tables through (their queries count as the page's)
HELPERS = {"pipeline_risk.py": ["deals_data.py", "as_of.py", "fmt.py"],
           "deal_detail.py": ["deals_data.py", "as_of.py", "fmt.py", "deal_trend.py"],
           "forecast.py": ["as_of.py", "fmt.py", "forecast_whatif.py", "segments.py"], "home.py": ["as_of.py"],
           "model_health.py": ["fmt.py"], "icp.py": ["fmt.py", "why.py"], "whitespace.py": ["fmt.py", "why.py"],
           "plan.py": ["as_of.py", "segments.py"]}
