"""The inventory: the one source of truth about the centre's equipment, network and people (T6)."""

from akm.inventory.load import Inventory, InventoryError, inventory_files, load_inventory
from akm.inventory.model import Asset

__all__ = ["Asset", "Inventory", "InventoryError", "inventory_files", "load_inventory"]
