"""The camera a point cloud is rendered with: orthographic, JSON-serialisable, fixed per class.

A reference and a query of the same class must render from the same view, at the same scale and
with the same depth colours, or the comparison shows the camera instead of the defect. So the
first reference scans of a class fix its camera in a small store on disk (`CameraStore`); a query
is rendered with that camera and never fixes one itself (in an evaluation the first cloud
rendered is often a query).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from tools import vocabulary

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class Camera:
    """An orthographic view: looking along `direction` at `centre`, `span` world units across the width."""

    direction: Vector  # from the eye into the scene (unit vector)
    up: Vector  # image up, orthogonal to direction (unit vector)
    centre: Vector  # the world point at the image centre
    span: float  # the scale: world units covered by the image width
    size: tuple[int, int] = (512, 512)  # width, height in pixels
    depth_range: tuple[float, float] = (-1.0, 1.0)  # near, far along direction, relative to the centre
    follow: bool = False  # the centre follows each cloud (parts scanned in any place), the rest stays fixed

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit vectors right, up, forward (forward = viewing direction)."""
        forward, up = np.asarray(self.direction, np.float64), np.asarray(self.up, np.float64)
        return np.cross(forward, up), up, forward

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns, rows (float pixels) and depth (world units, larger = farther) of each point."""
        right, up, forward = self.basis()
        frame = np.stack([right, up, forward], axis=1).astype(np.float32)
        local = (np.asarray(points, np.float32) - np.asarray(self.centre, np.float32)) @ frame
        pixels_per_unit = self.size[0] / self.span
        cols = local[:, 0] * pixels_per_unit + self.size[0] / 2
        rows = self.size[1] / 2 - local[:, 1] * pixels_per_unit
        return cols, rows, local[:, 2]

    def turned(self, azimuth: float, elevation: float) -> Camera:
        """The same centre and scale seen from another side; elevation 90 is this camera's own view.

        Elevation 0 looks across the part from the bottom edge of this view (azimuth 0) or from
        its right edge (azimuth 90); elevation -90 looks at it from behind.
        """
        right, up, forward = self.basis()
        az, el = np.radians(azimuth), np.radians(elevation)
        eye = np.cos(el) * (np.sin(az) * right - np.cos(az) * up) - np.sin(el) * forward
        new_up = up if abs(elevation) >= 89.9 else -forward - np.dot(-forward, eye) * eye
        new_up /= np.linalg.norm(new_up)
        radius = max(abs(self.depth_range[0]), abs(self.depth_range[1]), self.span / 2)
        return replace(self, direction=_vec(-eye), up=_vec(new_up), depth_range=(-radius, radius))

    def resized(self, width: int, height: int) -> Camera:
        """The same view at another image size (the span stays, so the scale per pixel changes)."""
        return replace(self, size=(int(width), int(height)))

    def to_dict(self) -> dict:
        """Plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Camera:
        """The inverse of to_dict."""
        return cls(direction=_vec(data["direction"]), up=_vec(data["up"]), centre=_vec(data["centre"]),
                   span=float(data["span"]), size=(int(data["size"][0]), int(data["size"][1])),
                   depth_range=(float(data["depth_range"][0]), float(data["depth_range"][1])),
                   follow=bool(data.get("follow", False)))

    def for_cloud(self, points: np.ndarray, *, whole: bool = False) -> Camera:
        """This camera for a cloud: as it is while it shows a quarter of the cloud or more (a part off its place shows
        it), or all of it (whole); else, and always for a follow camera, centred on the cloud's robust middle and
        widened until it holds it.

        A free part in a new pose can lie far from where the references lay, or turn its long side
        along the view: a fixed frame would show a corner of it.
        """
        local = self._local(points)
        low, high = np.percentile(local, [0.5, 99.5], axis=0)
        inside = self._inside(local)
        if not self.follow and inside.mean() >= (WHOLE_SHARE if whole else KEEP_SHARE):
            return self
        right, up, forward = self.basis()
        middle = (low + high) / 2
        half = (high - low) / 2 * (1 + 2 * FRAME_MARGIN)
        span = max(self.span, 2 * half[0], 2 * half[1] * self.size[0] / self.size[1])
        depth = max(-self.depth_range[0], self.depth_range[1], half[2])
        return replace(self, centre=_vec(middle[0] * right + middle[1] * up + middle[2] * forward), span=float(span),
                       depth_range=(-float(depth), float(depth)))

    def _local(self, points: np.ndarray) -> np.ndarray:
        """A sample of the points in the camera's axes (right, up, forward)."""
        right, up, forward = self.basis()
        return _sample(np.asarray(points, np.float64), 50_000) @ np.stack([right, up, forward], axis=1)

    def _inside(self, local: np.ndarray) -> np.ndarray:
        """Which points (in the camera's axes) fall inside the picture (nothing is cut away in depth)."""
        centre = self._local(np.asarray(self.centre, np.float64)[None, :])[0]
        half = np.array([self.span / 2, self.span * self.size[1] / self.size[0] / 2])
        return np.all(np.abs(local[:, :2] - centre[:2]) <= half, axis=1)


FRAME_MARGIN = 0.08  # empty border around the part, a share of its extent on each side
KEEP_SHARE = 0.25  # a fixed class camera that shows less of a part than this is re-centred on it
WHOLE_SHARE = 0.99  # "the whole part": all but stray points
LONG_SIDE = 512  # pixels along the longer side of a cloud's picture
MAX_ASPECT = 2.0  # a long part gets a picture up to this much longer than wide, not a square with empty sides


def camera_for(points: np.ndarray, size: tuple[int, int] | None = None, margin: float = FRAME_MARGIN) -> Camera:
    """A camera that frames the cloud: looking at its face, the robust extent filling the image.

    A scan in sensor coordinates (in front of the origin along +z, far off compared with its extent)
    is seen as the sensor saw it, along +z with image rows along +y. Any other cloud is seen along
    its thinnest direction (PCA), from above (+z side) when that is ambiguous, with +z up in the
    picture when the view is sideways. Without a size, the picture's shape follows the part's.
    """
    sample = _sample(np.asarray(points, np.float64), 50_000)
    direction, up = _view_axes(sample)
    right = np.cross(direction, up)
    local = sample @ np.stack([right, up, direction], axis=1)
    low, high = np.percentile(local, [0.5, 99.5], axis=0)
    middle = (low + high) / 2
    centre = middle[0] * right + middle[1] * up + middle[2] * direction
    extent = np.maximum(high - low, 1e-9)
    size = size or _fitting_size(extent[0] / extent[1])
    span = max(extent[0], extent[1] * size[0] / size[1]) * (1 + 2 * margin)
    half_depth = extent[2] / 2 * (1 + 2 * margin) + 1e-9
    return Camera(_vec(direction), _vec(up), _vec(centre), float(span), (int(size[0]), int(size[1])),
                  (-float(half_depth), float(half_depth)))


PLACES_VARY = 0.25  # reference scans whose middles lie this share of their size apart were not scanned in one place


def camera_for_references(clouds: list[np.ndarray]) -> Camera:
    """The camera reference scans fix for their class.

    Scanned in one place (a station): the camera framing all of them, so a part that lies off its
    place shows it. Scanned anywhere (a free part, random poses): the view and scale of the largest
    one, whose centre then follows each scan (`follow`). Either way a scan that would not fit is
    re-centred and widened (`for_cloud`), so a picture never shows only a corner of the part.
    """
    middles = np.array([np.percentile(c, [0.5, 99.5], axis=0).mean(axis=0) for c in clouds])
    sizes = [float(np.linalg.norm(np.ptp(c, axis=0))) for c in clouds]
    if len(clouds) > 1 and np.linalg.norm(middles - middles.mean(axis=0), axis=1).max() > PLACES_VARY * np.median(sizes):
        return replace(camera_for(clouds[int(np.argmax([len(c) for c in clouds]))]), follow=True)
    return camera_for(np.vstack(clouds))


def _fitting_size(aspect: float) -> tuple[int, int]:
    """(width, height) with the long side LONG_SIDE and the part's width / height ratio, clamped to MAX_ASPECT."""
    aspect = float(np.clip(aspect, 1 / MAX_ASPECT, MAX_ASPECT))
    return int(round(LONG_SIDE * min(1.0, aspect))), int(round(LONG_SIDE * min(1.0, 1 / aspect)))


def _view_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from tools.inputs.prepared import sensor_at_origin

    centroid = points.mean(axis=0)
    if sensor_at_origin(points):
        return np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])  # a sensor at the origin
    _, vectors = np.linalg.eigh(np.cov((points - centroid).T))
    direction = vectors[:, 0] * (-1.0 if vectors[2, 0] > 0 else 1.0)  # look down on it, from +z
    if abs(direction[2]) < 1e-6 and direction[np.argmax(np.abs(direction))] < 0:
        direction = -direction
    hint = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([0.0, 1.0, 0.0])  # z up, as most scans
    up = hint - np.dot(hint, direction) * direction
    return direction, up / np.linalg.norm(up)


def _sample(points: np.ndarray, count: int) -> np.ndarray:
    if len(points) <= count:
        return points
    return points[np.random.default_rng(0).choice(len(points), count, replace=False)]


def _vec(values) -> Vector:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def class_key(class_name: str) -> str:
    """A class name as a file-name-safe key: 'Metal Nut' -> 'metal_nut' (tools.vocabulary's form, made safe)."""
    key = re.sub(r"[^a-z0-9_]", "", vocabulary.class_key(class_name)).strip("_")
    return key or "unnamed"


class CameraStore:
    """One JSON camera per class in a directory, fixed by the class's reference scans (never by a query)."""

    FIXED_BY = "references"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def path_for(self, class_name: str) -> Path:
        """Where the camera of a class is kept."""
        return self.directory / f"{class_key(class_name)}.json"

    def get(self, class_name: str) -> Camera | None:
        """The stored camera of a class, or None."""
        data = self._read(class_name)
        return Camera.from_dict(data) if data else None

    def fix(self, class_name: str, references: list[np.ndarray]) -> Camera:
        """The class's camera; when none was fixed by references yet, the one these reference scans give becomes it."""
        data = self._read(class_name)
        if data is not None and data.get("fixed_by") == self.FIXED_BY:
            return Camera.from_dict(data)
        return self._write(class_name, camera_for_references(list(references)), replace=data is not None)

    def _read(self, class_name: str) -> dict | None:
        try:
            data = json.loads(self.path_for(class_name).read_text())
            Camera.from_dict(data)
            return data
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return {}  # a damaged file: replaced by the next fix

    def _write(self, class_name: str, camera: Camera, *, replace: bool) -> Camera:
        """Write atomically; if another process fixed the camera first, its camera wins."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(class_name)
        handle, temp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump({**camera.to_dict(), "fixed_by": self.FIXED_BY}, out)
        try:
            if replace:
                os.replace(temp, target)  # a damaged file, or one an older version fixed from any first render
            else:
                os.link(temp, target)  # fails if a camera appeared meanwhile
        except FileExistsError:
            pass
        finally:
            Path(temp).unlink(missing_ok=True)
        return self.get(class_name) or camera
