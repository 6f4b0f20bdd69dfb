"""Bills in exact integer paise. Per line: gross = unit price x quantity; the discount is a
basis-point share of gross; GST is a basis-point share of what remains. Each rounding is
half-up to the paisa on the line (the way Indian tax invoices show it), so the bill's totals
are sums of what the receipt prints."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    unit_price_minor: int
    gst_rate_bp: int = 0
    discount_bp: int = 0


@dataclass(frozen=True)
class Line:
    item: Item
    quantity: int

    @property
    def gross(self) -> int:
        return self.item.unit_price_minor * self.quantity

    @property
    def discount(self) -> int:
        return share(self.gross, self.item.discount_bp)

    @property
    def tax(self) -> int:
        return share(self.gross - self.discount, self.item.gst_rate_bp)

    @property
    def total(self) -> int:
        return self.gross - self.discount + self.tax


@dataclass(frozen=True)
class Bill:
    lines: tuple[Line, ...]

    @property
    def subtotal(self) -> int:
        return sum(l.gross for l in self.lines)

    @property
    def discount(self) -> int:
        return sum(l.discount for l in self.lines)

    @property
    def tax(self) -> int:
        return sum(l.tax for l in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.tax


def share(amount_minor: int, basis_points: int) -> int:
    """amount x bp / 10,000, rounded half-up to a whole paisa, in exact arithmetic."""
    return int((Decimal(amount_minor) * basis_points / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rupees(minor: int) -> str:
    return f"Rs {Decimal(minor) / 100:,.2f}"
