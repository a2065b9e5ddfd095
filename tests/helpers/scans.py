"""Simulated 3-D scans of small objects, with defects of known size, for the 3-D expert's tests and benchmarks.

An object is a triangle mesh built from open3d primitives (sizes in millimetres, largest extent
SIZE), finely subdivided so that a defect can be pressed into it. Defects: a dent or a bulge (a
smooth cap `depth` deep, `radius` wide, along the surface normal), a hole (the surface cut away), a
missing part (a sub-part left out) and an extra part (a small lump added). A scan casts rays at
the posed mesh (open3d's RaycastingScene, on the CPU):

- `station` scans: the part lies on a table in a random pose (any turn about the vertical, a few
  degrees of tilt, a shift) and a sensor above it sees only its upper side: an organised H x W x 3
  grid as MVTec 3D-AD stores it (pinhole sensor at the origin looking along +z, zeros = no point,
  the table visible around the part), or an unordered cloud from a line scanner (parallel rays).
- `free` scans: the part in a random 3-D orientation, scanned from eight sides and merged into one
  unordered cloud, as Real3D-AD and Anomaly-ShapeNet provide.

Sensor noise is Gaussian along the ray. Every generator is seeded and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIZE = 100.0  # mm: the largest extent of every object
OBJECTS = ("sphere", "bracket", "cup")
DEFECTS = ("dent", "bulge", "hole", "missing", "extra")
NOISE = 0.05  # mm, 0.05 % of the object's size (a good structured-light sensor)


@dataclass
class Defect:
    """What was done to the object, where (object frame, mm) and how big."""

    kind: str
    centre: np.ndarray
    radius: float
    depth: float = 0.0


@dataclass
class Scan:
    """A simulated scan: points (N x 3, or H x W x 3 for a grid), the defect mask per point/cell, the pose."""

    points: np.ndarray
    defect_mask: np.ndarray  # bool, same leading shape as points (True = within the defect)
    pose: np.ndarray  # 4 x 4, object frame -> scan frame
    defect: Defect | None = None
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------- objects
def _o3d():
    import open3d as o3d

    return o3d


def _fine(mesh, edge: float):
    """The mesh subdivided until no edge is longer than `edge` (so defects can be pressed in)."""
    o3d = _o3d()
    for _ in range(8):
        vertices, triangles = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
        longest = np.linalg.norm(vertices[triangles] - vertices[np.roll(triangles, 1, axis=1)], axis=2).max()
        if longest <= edge:
            break
        mesh = mesh.subdivide_midpoint(1)
    mesh.compute_vertex_normals()
    return o3d.geometry.TriangleMesh(mesh)


def _parts(name: str) -> dict[str, object]:
    """The named parts of an object (mm), the part that may go missing listed as 'detachable'."""
    o3d = _o3d()
    if name == "sphere":
        return {"body": o3d.geometry.TriangleMesh.create_sphere(SIZE / 2, 80)}
    if name == "bracket":
        plate = o3d.geometry.TriangleMesh.create_box(SIZE, 0.6 * SIZE, 0.12 * SIZE).translate((-SIZE / 2, -0.3 * SIZE, 0))
        boss = o3d.geometry.TriangleMesh.create_cylinder(0.14 * SIZE, 0.22 * SIZE, 48, 4).translate((0.22 * SIZE, 0, 0.2 * SIZE))
        rib = o3d.geometry.TriangleMesh.create_box(0.5 * SIZE, 0.08 * SIZE, 0.1 * SIZE).translate((-0.4 * SIZE, -0.04 * SIZE, 0.12 * SIZE))
        return {"body": plate, "rib": rib, "detachable": boss}
    if name == "cup":
        body = o3d.geometry.TriangleMesh.create_cylinder(0.3 * SIZE, 0.7 * SIZE, 64, 6)
        handle = o3d.geometry.TriangleMesh.create_torus(0.16 * SIZE, 0.04 * SIZE, 40, 16)
        handle.rotate(handle.get_rotation_matrix_from_xyz((np.pi / 2, 0, 0)), center=(0, 0, 0)).translate((0.36 * SIZE, 0, 0))
        return {"body": body, "detachable": handle}
    raise ValueError(f"unknown object {name!r}; choose one of {OBJECTS}")


def object_mesh(name: str, defect: str | None = None, *, depth: float = 0.01 * SIZE, radius: float = 0.08 * SIZE,
                seed: int = 0, facing: np.ndarray | None = None):
    """(mesh, Defect or None): the object, with the defect pressed into a random spot of its surface.

    depth is the dent's or bulge's depth (default 1 % of the object's size); radius its half-width.
    facing (object frame): the defect is put where the surface faces that way, so a scan sees it.
    """
    o3d = _o3d()
    parts = {key: _fine(part, radius / 3) for key, part in _parts(name).items()}
    if defect == "missing":
        if "detachable" not in parts:
            raise ValueError(f"a {name} has no part that can go missing")
        box = parts.pop("detachable").get_axis_aligned_bounding_box()
        return _joined(parts.values()), Defect("missing", np.asarray(box.get_center()), float(np.linalg.norm(box.get_extent()) / 2))
    if defect is None:
        return _joined(parts.values()), None
    body = parts.pop("body")
    centre, normal = _defect_spot(body, seed, facing, radius)
    if defect in ("dent", "bulge"):
        body = _pressed(body, centre, radius, depth * (-1 if defect == "dent" else 1))
        found = Defect(defect, centre, radius, depth)
    elif defect == "hole":
        body, found = _cut(body, centre, radius / 2), Defect("hole", centre, radius / 2)
    elif defect == "extra":
        lump = o3d.geometry.TriangleMesh.create_sphere(radius / 2, 24).translate(centre + normal * radius / 4)
        parts["extra"], found = lump, Defect("extra", centre + normal * radius / 4, radius / 2)
    else:
        raise ValueError(f"unknown defect {defect!r}; choose one of {DEFECTS}")
    return _joined([body, *parts.values()]), found


def _joined(meshes):
    o3d = _o3d()
    joined = o3d.geometry.TriangleMesh()
    for mesh in meshes:
        joined += mesh
    joined.compute_vertex_normals()
    return joined


def _defect_spot(mesh, seed: int, facing: np.ndarray | None, radius: float = 0.08 * SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A random vertex whose surroundings (within radius) are smooth: no sharp edge under the defect."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    vertices, normals = np.asarray(mesh.vertices), np.asarray(mesh.vertex_normals)
    candidates = np.arange(len(vertices))
    if facing is not None:
        candidates = candidates[normals @ (np.asarray(facing) / np.linalg.norm(facing)) > 0.7]
    tree = cKDTree(vertices)
    for index in rng.permutation(candidates)[:400]:
        around = tree.query_ball_point(vertices[index], 1.2 * radius)
        if (normals[around] @ normals[index]).min() > 0.8:
            return vertices[index].copy(), normals[index].copy()
    raise ValueError("no smooth spot for a defect on this object")


def _pressed(mesh, centre: np.ndarray, radius: float, depth: float):
    """Move vertices within radius of centre along their normals by a smooth cap of the given depth."""
    vertices, normals = np.asarray(mesh.vertices), np.asarray(mesh.vertex_normals)
    distance = np.linalg.norm(vertices - centre, axis=1)
    profile = np.where(distance < radius, 0.5 * (1 + np.cos(np.pi * np.clip(distance / radius, 0, 1))), 0.0)
    mesh.vertices = _o3d().utility.Vector3dVector(vertices + normals * (depth * profile)[:, None])
    mesh.compute_vertex_normals()
    return mesh


def _cut(mesh, centre: np.ndarray, radius: float):
    vertices, triangles = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
    mesh.remove_triangles_by_mask(np.linalg.norm(vertices[triangles].mean(axis=1) - centre, axis=1) < radius)
    mesh.remove_unreferenced_vertices()
    mesh.compute_vertex_normals()
    return mesh


# ---------------------------------------------------------------- poses and scans
def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _turn(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def station_pose(rng: np.random.Generator, tilt_deg: float = 2.0) -> np.ndarray:
    """Lying on a table: any turn about the vertical, a small tilt, a shift of a few mm."""
    turn = _turn(np.array([0.0, 0.0, 1.0]), rng.uniform(0, 2 * np.pi))
    tilt = _turn(np.r_[rng.normal(size=2), 0.0], np.radians(rng.uniform(0, tilt_deg)))
    pose = np.eye(4)
    pose[:3, :3] = tilt @ turn
    pose[:2, 3] = rng.uniform(-0.05, 0.05, 2) * SIZE
    return pose


def free_pose(rng: np.random.Generator) -> np.ndarray:
    """Any 3-D orientation and a shift."""
    pose = np.eye(4)
    pose[:3, :3] = random_rotation(rng)
    pose[:3, 3] = rng.uniform(-0.5, 0.5, 3) * SIZE
    return pose


def _posed(mesh, pose: np.ndarray):
    o3d = _o3d()
    moved = o3d.geometry.TriangleMesh(mesh)
    moved.transform(pose)
    return moved


def _cast(meshes: list, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hit distance along each ray (inf for a miss) and which mesh was hit (-1 for none)."""
    o3d = _o3d()
    scene = o3d.t.geometry.RaycastingScene()
    for mesh in meshes:
        scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    answer = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
    hit = answer["t_hit"].numpy()
    return hit, np.where(np.isfinite(hit), answer["geometry_ids"].numpy().astype(np.int64), -1)


def _table(height: float, half: float):
    o3d = _o3d()
    return o3d.geometry.TriangleMesh.create_box(2 * half, 2 * half, 1.0).translate((-half, -half, height - 1.0))


def _mask_for(points: np.ndarray, defect: Defect | None, pose: np.ndarray, margin: float = 1.0) -> np.ndarray:
    if defect is None:
        return np.zeros(len(points), bool)
    margin = 1.5 if defect.kind == "hole" else margin  # a hole has no points: mark its rim
    centre = pose[:3, :3] @ defect.centre + pose[:3, 3]
    return np.linalg.norm(points - centre, axis=1) < defect.radius * margin


def station_scan(mesh, defect: Defect | None, *, seed: int, grid: bool = True, shape: tuple[int, int] = (240, 240),
                 points: int = 60_000, noise: float = NOISE, table: bool = True) -> Scan:
    """The part on a table in a random pose, seen from above (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pose = station_pose(rng)
    pose[2, 3] = -np.asarray(mesh.vertices)[:, 2].min()  # resting on the table (z = 0)
    meshes = [_posed(mesh, pose)] + ([_table(0.0, 0.9 * SIZE)] if table else [])
    if grid:
        return _pinhole_scan(meshes, defect, pose, rng, shape, noise)
    return _line_scan(meshes, defect, pose, rng, points, noise)


def _pinhole_scan(meshes, defect, pose, rng, shape, noise) -> Scan:
    """MVTec 3D-AD style: a sensor 4 object sizes above the table, looking down; camera frame +z into the scene."""
    height, width = shape
    distance = 4.0 * SIZE
    focal = 0.5 * width / np.tan(np.radians(10.5))
    u, v = np.meshgrid(np.arange(width) - width / 2 + 0.5, np.arange(height) - height / 2 + 0.5)
    directions = np.stack([u / focal, v / focal, np.ones_like(u)], axis=2)
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    to_world = np.diag([1.0, -1.0, -1.0])  # camera (x right, y down, z forward) -> world (z up)
    world_dirs = directions.reshape(-1, 3) @ to_world.T
    origin = np.array([0.0, 0.0, distance])
    rays = np.hstack([np.broadcast_to(origin, world_dirs.shape), world_dirs])
    hit, _ = _cast(meshes, rays)
    hit = hit + rng.normal(0, noise, hit.shape)
    camera_points = directions.reshape(-1, 3) * hit[:, None]
    world = origin + world_dirs * hit[:, None]
    valid = np.isfinite(hit)
    grid_points = np.where(valid[:, None], camera_points, 0.0).reshape(height, width, 3).astype(np.float32)
    mask = np.zeros(height * width, bool)
    mask[valid] = _mask_for(world[valid], defect, pose)
    return Scan(grid_points, mask.reshape(height, width), pose, defect, {"kind": "grid", "frame": "camera"})


def _line_scan(meshes, defect, pose, rng, count, noise) -> Scan:
    """A line scanner over the table: parallel rays straight down at random places, points in table coordinates."""
    xy = rng.uniform(-0.75 * SIZE, 0.75 * SIZE, (int(count * 1.6), 2))
    rays = np.hstack([xy, np.full((len(xy), 1), 3.0 * SIZE), np.zeros((len(xy), 2)), -np.ones((len(xy), 1))])
    hit, _ = _cast(meshes, rays)
    valid = np.isfinite(hit)
    hit = hit[valid] + rng.normal(0, noise, valid.sum())
    cloud = np.c_[xy[valid], 3.0 * SIZE - hit][:count]
    return Scan(cloud.astype(np.float32), _mask_for(cloud, defect, pose), pose, defect, {"kind": "unordered"})


def free_scan(mesh, defect: Defect | None, *, seed: int, points: int = 60_000, noise: float = NOISE,
              sides: int = 8) -> Scan:
    """The part in a random orientation, scanned from `sides` directions and merged (unordered)."""
    rng = np.random.default_rng(seed)
    pose = free_pose(rng)
    posed = _posed(mesh, pose)
    centre = np.asarray(posed.get_axis_aligned_bounding_box().get_center())
    directions, per_side, cloud = _sphere_directions(sides, rng), int(points * 2.2 / sides), np.empty((0, 3))
    for _ in range(3):  # a thin part catches fewer rays: scan again, denser, until there are enough points
        cloud = np.vstack([_parallel_scan(posed, centre, d, per_side, rng, noise) for d in directions])
        if len(cloud) >= points:
            break
        per_side = int(per_side * 1.2 * points / max(len(cloud), 1))
    cloud = cloud[rng.permutation(len(cloud))[:points]]
    return Scan(cloud.astype(np.float32), _mask_for(cloud, defect, pose), pose, defect, {"kind": "unordered"})


def _sphere_directions(count: int, rng: np.random.Generator) -> np.ndarray:
    golden = np.pi * (3 - np.sqrt(5))
    k = np.arange(count) + 0.5
    z = 1 - 2 * k / count
    ring = np.sqrt(1 - z * z)
    directions = np.c_[ring * np.cos(golden * k), ring * np.sin(golden * k), z]
    return directions @ random_rotation(rng).T


def _parallel_scan(mesh, centre, direction, count, rng, noise) -> np.ndarray:
    helper = np.array([1.0, 0, 0]) if abs(direction[0]) < 0.9 else np.array([0, 1.0, 0])
    right = np.cross(direction, helper)
    right /= np.linalg.norm(right)
    up = np.cross(direction, right)
    offsets = rng.uniform(-0.75 * SIZE, 0.75 * SIZE, (count, 2))
    origins = centre - 2 * SIZE * direction + offsets[:, :1] * right + offsets[:, 1:] * up
    rays = np.hstack([origins, np.broadcast_to(direction, origins.shape)])
    hit, _ = _cast([mesh], rays)
    valid = np.isfinite(hit)
    hit = hit[valid] + rng.normal(0, noise, valid.sum())
    return origins[valid] + direction * hit[:, None]


# ---------------------------------------------------------------- a whole set
def scan_set(name: str, *, references: int = 4, defects=DEFECTS, good: int = 4, style: str = "free",
             seed: int = 0, **scan_options) -> dict:
    """{"references": [Scan], "queries": [(label, Scan)]}: reference scans and labelled queries of one object.

    style: "free" (random 3-D pose, complete unordered scans), "station" (on a table, organised grid)
    or "line" (on a table, unordered line-scanner cloud).
    """
    base, _ = object_mesh(name)
    scan = _scanner(style, **scan_options)
    refs = [scan(base, None, seed=seed * 1000 + i) for i in range(references)]
    queries = [("good", scan(base, None, seed=seed * 1000 + 100 + i)) for i in range(good)]
    for j, kind in enumerate(defects):
        if kind == "missing" and "detachable" not in _parts(name):
            continue
        facing = np.array([0.0, 0.0, 1.0]) if style != "free" else None
        mesh, defect = object_mesh(name, kind, seed=seed * 1000 + 200 + j, facing=facing)
        queries.append((kind, scan(mesh, defect, seed=seed * 1000 + 300 + j)))
    return {"references": refs, "queries": queries}


def _scanner(style: str, **options):
    if style == "free":
        return lambda mesh, defect, seed: free_scan(mesh, defect, seed=seed, **options)
    if style in ("station", "line"):
        return lambda mesh, defect, seed: station_scan(mesh, defect, seed=seed, grid=style == "station", **options)
    raise ValueError(f"unknown scan style {style!r}; use free, station or line")


def pose_point(scan: Scan, point: np.ndarray) -> np.ndarray:
    """A point of the object frame (a defect's centre) where it is in the scan (station grids: camera frame)."""
    moved = scan.pose[:3, :3] @ np.asarray(point, np.float64) + scan.pose[:3, 3]
    if scan.meta.get("frame") == "camera":
        moved = np.array([moved[0], -moved[1], 4.0 * SIZE - moved[2]])  # the pinhole sensor's frame
    return moved.astype(np.float32)
