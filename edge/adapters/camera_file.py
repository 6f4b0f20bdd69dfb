"""The store's cameras, from a TOML file an installer writes once per store:

    [[camera]]
    id = "entrance"
    source = "rtsp://10.0.0.21/stream1"     # a file, an rtsp:// or http:// stream, or "0"
    entry_line = "0.75,1,0.75,0"            # x0,y0,x1,y1 in 0..1 (see edge.domain.zones)
    exit_line = "0.25,1,0.25,0"
    zones = { "aisle-3" = "0.5,0.2,0.5,0.8" }   # named lines inside the store: ZONE events
    tile = 0.5                              # detector tile side, fraction of the frame height
    realtime = false                        # pace a file at its own frame rate
    # Floor calibration: four or more taped points, on the image (0..1) and the floor plan (m).
    image_points = [[0.1, 0.95], [0.9, 0.95], [0.8, 0.55], [0.2, 0.55]]
    floor_points = [[0.0, 0.0], [4.0, 0.0], [4.0, 6.0], [0.0, 6.0]]

Every mistake is reported with the camera and the key it concerns."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from edge.domain.floor import FloorCalibration
from edge.domain.zones import Line
from edge.runtime import CameraConfig
from edge.vision.tracker import TrackerConfig

_KEYS = {"id", "source", "entry_line", "exit_line", "zones", "tile", "realtime", "image_points", "floor_points"}
_RESERVED = {"entry", "exit"}


class CameraFileError(ValueError):
    pass


def _camera(i: int, entry: dict[str, Any], base: Path) -> CameraConfig:
    where = f"camera {entry.get('id') or i + 1}"
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise CameraFileError(f"{where}: unknown keys {unknown} (known: {sorted(_KEYS)})")
    for key in ("id", "source"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise CameraFileError(f"{where}: '{key}' must be a non-empty string")
    source = entry["source"]
    if "://" not in source and not source.isdigit() and not Path(source).is_absolute():
        source = str(base / source)  # a file named relative to the cameras file
    try:
        lines = {name: Line.parse(name, entry[f"{name}_line"]) if entry.get(f"{name}_line") else None
                 for name in ("entry", "exit")}
        zones = entry.get("zones", {})
        if not isinstance(zones, dict):
            raise ValueError("zones must be a table of name = \"x0,y0,x1,y1\"")
        if _RESERVED & set(zones):
            raise ValueError("a zone cannot be named entry or exit (those are entry_line and exit_line)")
        zone_lines = tuple(Line.parse(f"zone {name}", str(text)) for name, text in zones.items())
        zone_lines = tuple(Line(name, z.a, z.b) for name, z in zip(zones, zone_lines))
        if any(not 1 <= len(z.name) <= 64 for z in zone_lines):
            raise ValueError("zone names must hold 1 to 64 characters")
        floor = None
        if "image_points" in entry or "floor_points" in entry:
            floor = FloorCalibration(tuple(tuple(p) for p in entry.get("image_points", ())),
                                     tuple(tuple(p) for p in entry.get("floor_points", ())))
        tile = float(entry.get("tile", 0.5))
        if not 0.0 <= tile <= 1.0:
            raise ValueError(f"tile must be within 0..1, got {tile}")
    except (ValueError, TypeError) as exc:
        raise CameraFileError(f"{where}: {exc}") from None
    return CameraConfig(entry["id"], source, lines["entry"], lines["exit"], TrackerConfig(tile_fraction=tile),
                        bool(entry.get("realtime", False)), floor, zone_lines)


def load(path: Path) -> list[CameraConfig]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CameraFileError(f"{path}: {exc}") from None
    entries = data.get("camera")
    if not isinstance(entries, list) or not entries:
        raise CameraFileError(f"{path}: no [[camera]] tables")
    cameras = [_camera(i, e, path.parent) for i, e in enumerate(entries)]
    ids = [c.camera_id for c in cameras]
    if len(set(ids)) != len(ids):
        raise CameraFileError(f"{path}: camera ids must differ, got {ids}")
    return cameras
