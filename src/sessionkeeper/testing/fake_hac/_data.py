"""The fake HAC's small in-memory type system, shared by FlexibleSearch and Impex."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ItemTable:
    """One item type: its database table, attributes and rows (attribute -> value)."""

    type_code: str
    table: str
    attributes: list[str]
    unique: str
    rows: list[dict[str, str]] = field(default_factory=list)
    next_pk: int = 8796093022209

    def column(self, attribute: str) -> str:
        """The SQL column of ``attribute`` (``PK`` or ``p_<attribute>``)."""
        return "PK" if attribute.lower() == "pk" else f"p_{attribute.lower()}"

    def attribute_named(self, name: str) -> str | None:
        """Resolve ``name`` case-insensitively to an attribute (or ``pk``)."""
        if name.lower() == "pk":
            return "pk"
        for attribute in self.attributes:
            if attribute.lower() == name.lower():
                return attribute
        return None

    def attribute_of_column(self, column: str) -> str | None:
        """Resolve an SQL column name back to its attribute."""
        lowered = column.lower()
        if lowered == "pk":
            return "pk"
        if lowered.startswith("p_"):
            return self.attribute_named(lowered[2:])
        return None

    def add(self, values: dict[str, str]) -> dict[str, str]:
        """Insert a row, giving it a PK."""
        row = {"pk": str(self.next_pk), **values}
        self.next_pk += 32
        self.rows.append(row)
        return row


# Types Impex accepts; only those with a table also store rows.
KNOWN_TYPES = frozenset(
    {
        "Product",
        "User",
        "Employee",
        "Customer",
        "UserGroup",
        "Language",
        "Currency",
        "Country",
        "Title",
        "Catalog",
        "CatalogVersion",
        "Category",
        "Unit",
        "MediaFolder",
        "Media",
        "CronJob",
    }
)


class HacDatabase:
    """Item tables guarded by one lock; seeded with a handful of rows."""

    def __init__(self) -> None:
        self.guard = threading.RLock()
        self.tables: dict[str, ItemTable] = {}
        products = self._define("Product", "products", ["code", "name"], "code")
        for code, name in [
            ("P-1000", "Camera"),
            ("P-1001", "Tripod"),
            ("P-1002", 'Lens <b>&"Pro"'),
            ("P-1003", "Battery"),
            ("P-1004", "Memory Card"),
        ]:
            products.add({"code": code, "name": name})
        users = self._define("User", "users", ["uid", "name"], "uid")
        for uid, name in [("admin", "Administrator"), ("anonymous", "Anonymous")]:
            users.add({"uid": uid, "name": name})
        languages = self._define("Language", "languages", ["isocode"], "isocode")
        for isocode in ["en", "de", "fr"]:
            languages.add({"isocode": isocode})

    def _define(self, type_code: str, table: str, attributes: list[str], unique: str) -> ItemTable:
        item_table = ItemTable(type_code, table, attributes, unique)
        self.tables[type_code.lower()] = item_table
        return item_table

    def by_type(self, type_code: str) -> ItemTable | None:
        """The table of a type code (case-insensitive), if it has one."""
        return self.tables.get(type_code.lower())

    def by_sql_table(self, name: str) -> ItemTable | None:
        """The table with SQL name ``name`` (case-insensitive)."""
        for item_table in self.tables.values():
            if item_table.table.lower() == name.lower():
                return item_table
        return None

    def is_known_type(self, type_code: str) -> bool:
        """True when Impex may address ``type_code``."""
        return type_code in KNOWN_TYPES or self.by_type(type_code) is not None
