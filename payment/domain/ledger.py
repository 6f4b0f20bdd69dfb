"""The double-entry postings for each state change. Every transaction's lines balance by
construction here, and a deferred constraint in PostgreSQL refuses any commit where they
don't (payment/migrations/0001_initial.sql)."""

from __future__ import annotations

from payment.domain.model import LedgerLine

# Chart of accounts (all minor units):
#   clearing:<gateway>   money the gateway holds for us (asset)
#   payable:<store>      what we owe the retailer for its sales (liability)
#   disputed:<store>     amounts the customer's bank clawed back while a dispute runs


def capture(gateway: str, store_id: str, amount: int) -> list[LedgerLine]:
    return [LedgerLine(f"clearing:{gateway}", debit_minor=amount), LedgerLine(f"payable:{store_id}", credit_minor=amount)]


def refund(gateway: str, store_id: str, amount: int) -> list[LedgerLine]:
    return [LedgerLine(f"payable:{store_id}", debit_minor=amount), LedgerLine(f"clearing:{gateway}", credit_minor=amount)]


def dispute(gateway: str, store_id: str, amount: int) -> list[LedgerLine]:
    return [LedgerLine(f"disputed:{store_id}", debit_minor=amount), LedgerLine(f"clearing:{gateway}", credit_minor=amount)]
