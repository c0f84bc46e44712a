"""Which tables each Streamlit page reads, as Dagster lineage: one external asset per page
(`dashboards/<url_path>`, kind streamlit) depending on the assets that produce those tables.

Derived, not declared: the tables are the `schema.table` names in the page's source (and the
helper modules it reads through, dashboards/pages.py), the producers are the assets whose key or
`table` / `tables` metadata names them. A page that starts reading a new table shows the new edge
without anyone editing a list.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg

from dashboards.pages import HELPERS, PAGES, VIEWS

TABLE = re.compile(r"\b(star|features|scores|forecast|validation|meta)\.([a-z_]+)\b")


def producers(defs: dg.Definitions) -> dict[str, set[dg.AssetKey]]:
    """table name -> keys of the assets that write it."""
    out: dict[str, set[dg.AssetKey]] = {}
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        names = {".".join(key.path)} if len(key.path) == 2 else set()
        for field in ("table", "tables"):
            value = (node.metadata or {}).get(field)
            value = getattr(value, "value", None) or getattr(value, "text", None) or value
            if value:
                names |= {t.strip() for t in str(value).split(",")}
        for name in names:
            out.setdefault(name, set()).add(key)
    out.setdefault("scores.whitespace_by_rep", set()).update(out.get("scores.whitespace", set()))  # its view
    return out


def tables_read(page_file: str) -> set[str]:
    sources = [VIEWS / page_file, *(VIEWS.parent / h for h in HELPERS.get(page_file, []))]
    return {".".join(m) for src in sources for m in TABLE.findall(Path(src).read_text())}


def dashboard_specs(defs: dg.Definitions) -> list[dg.AssetSpec]:
    made_by = producers(defs)
    specs = []
    for file, title, _, url in PAGES:
        deps = sorted({k for t in tables_read(file) for k in made_by.get(t, ())}, key=lambda k: k.to_user_string())
        specs.append(dg.AssetSpec(["dashboards", url.replace("-", "_")], deps=deps, kinds={"streamlit"},
                                  group_name="dashboards", owners=["team:revenue-data-science"],
                                  description=f"The Streamlit page '{title}' (/{url}): reads the tables of the "
                                              "assets upstream of it.",
                                  metadata={"page": f"dashboards/views/{file}"}))
    return specs


START, END = "<!-- asset-graph:start (generated: python -m revintel_assets.lineage) -->", "<!-- asset-graph:end -->"


def mermaid(defs: dg.Definitions) -> str:
    """The asset graph as a mermaid flowchart, one subgraph per group (the README's graph)."""
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    ident = {k: "_".join(k.path) for k in keys}
    groups: dict[str, list[dg.AssetKey]] = {}
    for k in keys:
        groups.setdefault(graph.get(k).group_name, []).append(k)
    lines = ["```mermaid", "flowchart LR"]
    for group, members in sorted(groups.items()):
        lines.append(f"  subgraph {group}")
        for k in members:
            node = graph.get(k)
            label = k.to_user_string() + ("<br/><i>partitioned</i>" if node.partitions_def else "")
            lines.append(f'    {ident[k]}["{label}"]')
        lines.append("  end")
    for k in keys:
        for parent in sorted(graph.get(k).parent_keys, key=lambda p: p.to_user_string()):
            if parent in ident:
                lines.append(f"  {ident[parent]} --> {ident[k]}")
    lines.append("```")
    return "\n".join(lines)


def readme_block(defs: dg.Definitions) -> str:
    return f"{START}\n{mermaid(defs)}\n{END}"


if __name__ == "__main__":
    from revintel_assets.definitions import load

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + readme_block(load()) + tail)
    print(f"wrote the asset graph into {readme}")
