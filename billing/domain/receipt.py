"""The receipt: a self-contained HTML document (prints to PDF from any browser)."""

from __future__ import annotations

from html import escape

from billing.domain.bill import rupees
from billing.domain.model import Session


def render_receipt(session: Session) -> bytes:
    bill = session.bill
    rows = "".join(
        f"<tr><td>{escape(l.item.name)}</td><td>{l.quantity}</td><td>{rupees(l.item.unit_price_minor)}</td>"
        f"<td>{rupees(l.discount)}</td><td>{l.item.gst_rate_bp / 100:.2f}%</td><td>{rupees(l.total)}</td></tr>"
        for l in bill.lines)
    when = session.exited_at.isoformat(timespec="seconds") if session.exited_at else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GaitPay receipt</title>
<style>body{{font-family:sans-serif;max-width:40em}}td,th{{padding:.2em .6em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>Receipt</h1>
<p>Store {escape(session.store_id)} &middot; {escape(when)} &middot; session {escape(session.session_id)}</p>
<table><tr><th>Item</th><th>Qty</th><th>Price</th><th>Discount</th><th>GST</th><th>Amount</th></tr>{rows}</table>
<p>Subtotal {rupees(bill.subtotal)}<br>Discount {rupees(bill.discount)}<br>GST {rupees(bill.tax)}<br>
<strong>Total {rupees(bill.total)}</strong></p>
<p>Paid with GaitPay (payment {escape(session.payment_id)}).</p>
</body></html>
""".encode()
