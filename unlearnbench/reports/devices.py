"""A board that holds cells of more than one device type shows each row's device.

Results differ across device types (``cpu``, ``cuda``), so a resumed run refuses
to mix them unless ``--allow-mixed-devices``; when a store does hold both,
:func:`by_device` gives the board a view of it whose architecture labels carry
the device (``mlp on cuda``). Each device then forms its own groups, with its
own reference and original rows, so no row is compared across devices.
"""

from __future__ import annotations

import json
from typing import Any

from unlearnbench.execution.store import ResultStore


def cell_device(provenance: str | None) -> str:
    """The device type a cell ran on, from its recorded provenance ('' if unknown)."""
    try:
        return str(json.loads(provenance or "{}").get("device", "")).split(":")[0]
    except (TypeError, ValueError, AttributeError):
        return ""


class DeviceLabelledStore:
    """A read view of a store whose rows' ``architecture`` names the cell's device."""

    def __init__(self, store: ResultStore, devices: dict[str, str]) -> None:
        self._store = store
        self._devices = devices

    def _label(self, row: dict[str, Any]) -> dict[str, Any]:
        device = self._devices.get(row["cell_id"], "") or "unknown device"
        return {**row, "architecture": f"{row['architecture']} on {device}"}

    def cells(self) -> list[dict[str, Any]]:
        return [self._label(row) for row in self._store.cells()]

    def metric_rows(self) -> list[dict[str, Any]]:
        return [self._label(row) for row in self._store.metric_rows()]

    def series_rows(self, names: Any = None) -> list[dict[str, Any]]:
        return [self._label(row) for row in self._store.series_rows(names)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def by_device(store: ResultStore, cells: Any = None) -> Any:
    """``store`` itself when its cells (those in ``cells``, if given) ran on one device
    type; else a :class:`DeviceLabelledStore` of it."""
    devices = {
        row["cell_id"]: cell_device(row["provenance"])
        for row in store.cells()
        if cells is None or row["cell_id"] in cells
    }
    if len({d for d in devices.values() if d}) <= 1:
        return store
    return DeviceLabelledStore(store, devices)
