"""Header synonyms: the spellings real exports use for revintel's columns, resolved without a
mapping file (issue 13). Compared after `norm` (lower case, letters and digits only), so
'Customer ID', 'customer_id' and 'CustomerID' are one spelling. A mapping file still wins.

Only names that mean the same thing are listed: a synonym never stands for an unrelated column
(a suggested mapping does not propose 'amount: Country').
"""

from __future__ import annotations

import re

SYNONYMS: dict[str, list[str]] = {
    # MavenTech CRM
    "engage_date": ["created_on", "created_date", "create_date", "created", "createdon", "engaged_on",
                    "engagement_date", "start_date", "opened_on", "open_date"],
    "close_date": ["closed_on", "closing_date", "date_closed"],
    "close_value": ["amount", "deal_value", "value", "deal_amount"],
    "deal_stage": ["stage", "stage_name", "status"],
    "sales_agent": ["sales_rep", "rep", "owner", "deal_owner", "agent"],
    "account": ["account_name", "company", "company_name", "customer"],
    "opportunity_id": ["deal_id", "opportunity_number"],
    "office_location": ["country", "location", "office"],
    "revenue": ["annual_revenue"],
    "employees": ["employee_count", "number_of_employees", "headcount"],
    "sector": ["industry"],
    "sales_price": ["list_price", "price", "unit_price"],
    "regional_office": ["region", "office"],
    # HubSpot deals export
    "Record ID": ["Deal ID", "hs_object_id", "Record Id"],
    "Deal Stage": ["dealstage"],
    "Create Date": ["createdate", "Created Date", "Deal Create Date"],
    "Close Date": ["closedate"],
    "Deal owner": ["HubSpot Owner", "Deal Owner Name", "hubspot_owner_id"],
    "Associated Company": ["Associated Company (Primary)", "Associated Company Name", "Company name",
                           "Associated Companies"],
    "Deal probability": ["hs_deal_stage_probability", "Deal Stage Probability"],
    "Is Closed Won": ["hs_is_closed_won"],
    "Is closed": ["hs_is_closed", "Is Deal Closed?"],
    # tidy transactions (UCI Online Retail and Online Retail II, generic order lines)
    "customer_id": ["customerid", "customer_id", "customer_no", "customer_number", "client_id", "cust_id",
                    "account_id", "customer"],
    "order_date": ["invoice_date", "order_date", "date", "transaction_date", "sale_date", "invoicedate"],
    "sku": ["stock_code", "stockcode", "product_code", "item_code", "product_id", "item_id", "sku", "item",
            "item_number", "article", "article_number", "material"],
    "quantity": ["qty", "units", "quantity"],
    "amount": ["line_total", "revenue", "sales", "net_amount", "total", "amount", "line_amount"],
    "order_id": ["invoice", "invoice_no", "invoiceno", "order_no", "order_number", "order_id"],
    "unit_price": ["price", "unit_price", "unitprice"],
    "customer_name": ["customer_name", "client_name"],
    "country": ["country"],
    "division": ["division", "product_division", "product_line", "category", "product_category"],
}


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def resolve(ours: str, columns: list[str]) -> str | None:
    """The one column of `columns` that is `ours` under another spelling, or None."""
    by_key: dict[str, list[str]] = {}
    for c in columns:
        by_key.setdefault(norm(c), []).append(c)
    for key in [norm(ours), *(norm(s) for s in SYNONYMS.get(ours, []))]:
        found = by_key.get(key, [])
        if len(found) == 1:
            return found[0]
    return None


def related(a: str, b: str) -> bool:
    """Plausibly the same column: a synonym, one name inside the other, or a shared 4+ letter start."""
    na, nb = norm(a), norm(b)
    if not na or not nb:
        return False
    if nb in {norm(s) for s in SYNONYMS.get(a, [])} or na in {norm(s) for s in SYNONYMS.get(b, [])}:
        return True
    if na in nb or nb in na:
        return True
    prefix = 0
    for x, y in zip(na, nb):
        if x != y:
            break
        prefix += 1
    return prefix >= 4
