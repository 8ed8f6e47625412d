"""Room, camera and layout sampling with rejection, for one sample.

World frame: metres, z up, floor at z = 0. Targets o_1 .. o_K stand on the floor in a chain
going away from the camera: o_{k+1}'s footprint starts behind o_k's (so no two objects
intersect and depth order equals index order), and o_{k+1} is shifted sideways by a random
fraction of their joint angular width so that o_k hides one of its ends or corners. The
camera (1.2-1.8 m high) is then yawed and pitched down (clipped to the configured range) to
look at the group; the room is built around everything, so no wall cuts an object; clutter
stands along the walls and is dropped when it hides any part of a target.
That is the `template` style. The randomised styles (`diverse`, `shifted`; ranges in
data/styles.py) keep the chain, the sideways repair and the rejection rule, and draw the
camera (per-sample intrinsics, roll), room (size, missing walls), lights, materials, object
families and distractors from their table (data/scenes_styled.py). The objects and the
layout record are data/layout.py's.

Rejection rule (checked at reduced resolution first, then again at full resolution):
every target's amodal mask covers at least `min_area` of the image and its vertex bounding
box lies at most `max_outside` outside the frame; in layer k nothing hides o_k;
for k >= 2 the hidden fraction |amodal ∧ ¬visible| / |amodal| lies in [hidden_min,
hidden_max] and o_{k-1} itself hides at least `min_direct` of o_k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal_depth.data.format import Camera
from amodal_depth.data.generator_config import GeneratorConfig
from amodal_depth.data.layout import (
    ROOM_FACES,
    Layout,
    Placed,
    _u,
    aim_at,
    camera_pose,
    room_corners,
)
from amodal_depth.data.objects import ObjectLibrary
from amodal_depth.data.objects import ObjectMesh as ObjectMesh
from amodal_depth.data.parts import TEX_CHECKER, TEX_GRAIN, TEX_PLAIN, TEX_STRIPES
from amodal_depth.data.render import Hits, Renderer, WorldMesh
from amodal_depth.data.scenes_styled import (
    add_room_styled,
    sample_camera,
    sample_distractors,
    sample_layout_styled,
)
from amodal_depth.data.styles import Style
from amodal_depth.errors import UserError

# --------------------------------------------------------------------------- room
_FLOOR_WOOD = np.array([[0.62, 0.45, 0.3], [0.75, 0.6, 0.42], [0.45, 0.32, 0.22]])
_FLOOR_TILE = np.array([[0.8, 0.78, 0.74], [0.6, 0.6, 0.62], [0.7, 0.65, 0.55]])
_WALLS = np.array(
    [[0.9, 0.88, 0.82], [0.8, 0.85, 0.88], [0.85, 0.8, 0.72], [0.7, 0.75, 0.7], [0.92, 0.9, 0.9]]
)


def _attr(colour: np.ndarray, tex: int, scale: float, axis: tuple[float, float, float]):
    return np.array([*colour, tex, scale, *axis], np.float32)


def make_room(
    rng: np.random.Generator, box: tuple[float, float, float, float, float], ceiling: bool
) -> WorldMesh:
    """A box room seen from inside: floor, four walls, optionally a ceiling."""
    v = room_corners(box)
    jit = lambda c, a=0.04: np.clip(c + rng.uniform(-a, a, 3), 0, 1)  # noqa: E731
    r = rng.random()
    if r < 0.5:
        floor = _attr(jit(_FLOOR_WOOD[rng.integers(3)]), TEX_GRAIN, rng.uniform(0.12, 0.25),
                      (1.0, 0.0, 0.0) if rng.random() < 0.5 else (0.0, 1.0, 0.0))  # fmt: skip
    elif r < 0.8:
        floor = _attr(jit(_FLOOR_TILE[rng.integers(3)]), TEX_CHECKER, rng.uniform(0.3, 0.6),
                      (1.0, 0.0, 0.0))  # fmt: skip
    else:  # carpet
        floor = _attr(jit(_FLOOR_TILE[rng.integers(3)] * 0.8, 0.1), TEX_PLAIN, 0.1, (1.0, 0, 0))
    wall_c = jit(_WALLS[rng.integers(len(_WALLS))])
    wall_tex = TEX_STRIPES if rng.random() < 0.3 else TEX_PLAIN
    wall_s = rng.uniform(0.08, 0.3)
    tris, attrs = [], []
    for name, f in ROOM_FACES.items():
        if name == "ceiling" and not ceiling:
            continue
        if name == "floor":
            a = floor
        elif name == "ceiling":
            a = _attr(np.array([0.95, 0.95, 0.93]), TEX_PLAIN, 0.1, (1.0, 0.0, 0.0))
        else:  # wallpaper stripes run along the wall
            axis = (0.0, 1.0, 0.0) if name.startswith("wall_x") else (1.0, 0.0, 0.0)
            a = _attr(wall_c, wall_tex, wall_s, axis)
        tris += f
        attrs += [a, a]
    return WorldMesh(v, np.array(tris, np.int32), np.array(attrs, np.float32))


# ------------------------------------------------------------------------- layout
def sample_layout(
    rng: np.random.Generator, cfg: GeneratorConfig, objects: list[ObjectMesh], camera: Camera
) -> Layout:
    """One random arrangement of `objects` (front to back), camera and room; no clutter yet,
    not yet checked for occlusion."""
    k_n = len(objects)
    h = _u(rng, *cfg.camera_height)
    tan_half = (camera.width / 2) / camera.fx
    targets = [Placed(o, yaw=np.deg2rad(_u(rng, -80, 80))) for o in objects]
    ext = [p.half_extents() for p in targets]
    # The chain, front to back, in a frame whose y axis points away from the camera.
    hx, hy = ext[0]
    targets[0].y = hy + max(_u(rng, 1.0, 2.5), 1.2 * hx / tan_half)
    targets[0].x = 0.0
    for k in range(1, k_n):
        p, q = targets[k - 1], targets[k]
        q.y = p.y + ext[k - 1][1] + ext[k][1] + _u(rng, 0.1, 0.7)
        # Angular offset: a random fraction s of the two objects' joint half-widths, so the
        # front object covers an end or a corner of the one behind. |s| <= 0.75: beyond that
        # too few layouts keep the hidden fraction in range (measured).
        ang = p.x / p.y + _u(rng, -0.75, 0.75) * (ext[k - 1][0] / p.y + ext[k][0] / q.y)
        q.x = ang * q.y
    yaw, pitch = aim_at(rng, targets, h, cfg.pitch_deg)
    cam = camera_pose(h, yaw, pitch)

    return Layout(camera, cam, h, float(np.rad2deg(pitch)), targets)


def add_room(rng: np.random.Generator, cfg: GeneratorConfig, lay: Layout) -> None:
    """Room around the targets, with the camera inside; light and ambient term."""
    targets = lay.targets
    ext = [p.half_extents() for p in targets]
    h = lay.cam_height
    xs = [v for p, e in zip(targets, ext) for v in (p.x - e[0], p.x + e[0])]
    y_far = max(p.y + e[1] for p, e in zip(targets, ext))
    x0 = min(min(xs), -0.3) - _u(rng, 0.3, 1.5)
    x1 = max(max(xs), 0.3) + _u(rng, 0.3, 1.5)
    y0, y1 = -_u(rng, 0.4, 1.5), y_far + _u(rng, 0.3, 1.8)
    top = max(max(p.obj.size[2] for p in targets) + 0.3, h + 0.5)
    room_h = max(_u(rng, 2.5, 3.1), top)
    ceiling = bool(rng.random() < cfg.ceiling_prob)
    lay.room_box = (x0, x1, y0, y1, room_h)
    lay.ceiling = ceiling
    lay.room = make_room(rng, lay.room_box, ceiling)
    lay.light = np.array(
        [
            _u(rng, x0 + 0.2, x1 - 0.2),
            _u(rng, 0.0, 0.5 * (y0 + y1) + 0.5),
            room_h - _u(rng, 0.1, 0.4),
        ]
    )
    lay.ambient = _u(rng, 0.3, 0.5)


def sample_clutter(
    rng: np.random.Generator, cfg: GeneratorConfig, library: ObjectLibrary, layout: Layout
) -> list[Placed]:
    """Objects along the walls that do not overlap a target's footprint (with a margin)."""
    x0, x1, y0, y1, room_h = layout.room_box
    out: list[Placed] = []
    boxes = []
    for p in layout.targets:
        ex, ey = p.half_extents()
        boxes.append((p.x - ex, p.x + ex, p.y - ey, p.y + ey))
    for _ in range(int(rng.integers(0, cfg.max_clutter + 1))):
        obj = library.sample(rng)
        wall = int(rng.integers(3))  # back, left, right
        yaw = [0.0, -np.pi / 2, np.pi / 2][wall] + np.deg2rad(_u(rng, -5, 5))
        p = Placed(obj, yaw=yaw)
        ex, ey = p.half_extents()
        if obj.size[2] > room_h - 0.1 or 2 * ex > x1 - x0 - 0.2 or 2 * ey > y1 - y0 - 0.2:
            continue
        if wall == 0:
            p.x, p.y = _u(rng, x0 + ex + 0.02, x1 - ex - 0.02), y1 - ey - 0.02
        else:
            p.x = x0 + ex + 0.02 if wall == 1 else x1 - ex - 0.02
            p.y = _u(rng, max(y0 + ey + 0.02, 1.0), y1 - ey - 0.02)
        bb = (p.x - ex, p.x + ex, p.y - ey, p.y + ey)
        if p.y - ey < y0 or any(
            bb[0] < b[1] + 0.1 and b[0] < bb[1] + 0.1 and bb[2] < b[3] + 0.1 and b[2] < bb[3] + 0.1
            for b in boxes
        ):
            continue
        boxes.append(bb)
        out.append(p)
    return out


# -------------------------------------------------------------------------- checks
def in_frame(layout: Layout, cam: Camera, max_outside: float) -> bool:
    """Every target lies in front of the camera and at most `max_outside` of its projected
    vertex bounding box falls outside the image."""
    rot, org = layout.cam_to_world[:3, :3], layout.cam_to_world[:3, 3]
    for p in layout.targets:
        v = (p.world().vertices - org) @ rot
        if (v[:, 2] <= 0.1).any():
            return False
        u = cam.fx * v[:, 0] / v[:, 2] + cam.cx
        w = cam.fy * v[:, 1] / v[:, 2] + cam.cy
        area = (u.max() - u.min()) * (w.max() - w.min())
        iu = min(u.max(), cam.width - 0.5) - max(u.min(), -0.5)
        iv = min(w.max(), cam.height - 0.5) - max(w.min(), -0.5)
        if iu <= 0 or iv <= 0 or iu * iv < (1.0 - max_outside) * area:
            return False
    return True


def _shift(a: np.ndarray, du: int) -> np.ndarray:
    """Shift a depth map du pixels to the right (inf enters at the border)."""
    out = np.full_like(a, np.inf)
    if du > 0:
        out[:, du:] = a[:, :-du]
    elif du < 0:
        out[:, :du] = a[:, -du:]
    else:
        out[:] = a
    return out


def repair_lateral(
    rng: np.random.Generator, lay: Layout, depth: np.ndarray, cam: Camera, cfg: GeneratorConfig
) -> bool:
    """Move o_2..o_K sideways (world x, so the front-to-back gaps stay) to a random place where
    its hidden fraction is inside the range with a margin, estimated by shifting its
    low-resolution depth map in the image. True when something moved; the caller renders
    and checks again (a sideways move is only approximately an image shift)."""
    d = depth.copy()
    w = d.shape[2]
    cos_b = abs(float(lay.cam_to_world[0, 0]))  # camera x axis . world x (no roll)
    lo, hi = cfg.hidden_min + 0.03, cfg.hidden_max - 0.03
    moved = False
    for k in range(1, len(lay.targets)):
        am = np.isfinite(d[k])
        area = int(am.sum())
        if area == 0:
            return False
        front = d[:k].min(axis=0)
        # All sideways shifts at once: window s of the padded map is the shift du = m - s.
        m = w // 2
        pad = np.full((d.shape[1], w + 2 * m), np.inf, d.dtype)
        pad[:, m : m + w] = d[k]
        ds = np.lib.stride_tricks.sliding_window_view(pad, w, axis=1)  # [h, 2m+1, w]
        a_s = np.isfinite(ds)
        n = a_s.sum(axis=(0, 2))
        hid = (a_s & (front[:, None, :] < ds)).sum(axis=(0, 2)) / np.maximum(n, 1)
        direct = (a_s & (d[k - 1][:, None, :] < ds)).sum(axis=(0, 2)) / np.maximum(n, 1)
        ok = (n >= 0.95 * area) & (hid >= lo) & (hid <= hi) & (direct >= 2 * cfg.min_direct)
        good = [m - int(i) for i in np.nonzero(ok)[0][::-1]]  # ascending du
        if 0 in good:
            continue
        if not good:
            return False
        du = good[int(rng.integers(len(good)))]
        z = float(np.median(d[k][am]))
        lay.targets[k].x += du * z / (cam.fx * max(cos_b, 0.2))
        d[k] = _shift(d[k], du)
        moved = True
    return moved


def occluding_clutter(depth: np.ndarray, num_targets: int) -> list[int]:
    """Indices (into the clutter list) of clutter that hides part of some target; `depth`
    holds targets then clutter."""
    tg = depth[:num_targets]
    bad = []
    for c in range(num_targets, len(depth)):
        if (np.isfinite(tg) & (depth[c][None] < tg)).any():
            bad.append(c - num_targets)
    return bad


def check_occlusion(
    depth: np.ndarray, num_targets: int, cfg: GeneratorConfig
) -> list[float] | None:
    """Hidden fractions of o_1..o_K when the depth stack (targets first, then everything
    else) meets the rejection rule of this module; None otherwise."""
    k_n = num_targets
    npx = depth.shape[1] * depth.shape[2]
    am = np.isfinite(depth[:k_n])
    fractions = []
    for k in range(k_n):
        area = int(am[k].sum())
        if area < cfg.min_area * npx:
            return None
        dk = np.where(am[k], depth[k], -np.inf)
        if k + 1 < len(depth) and (depth[k + 1 :].min(axis=0) < dk).any():
            return None  # something other than o_1..o_{k-1} hides o_k
        if k == 0:
            fractions.append(0.0)
            continue
        hidden = am[k] & (depth[:k].min(axis=0) < depth[k])
        frac = float(hidden.sum()) / area
        if not cfg.hidden_min <= frac <= cfg.hidden_max:
            return None
        if int((am[k] & (depth[k - 1] < depth[k])).sum()) < cfg.min_direct * area:
            return None
        fractions.append(frac)
    return fractions


_REUSE = 4  # arrangements tried per drawn set of objects
_NEW_CAMERA = 100  # randomised styles: new intrinsics after this many failed layouts


@dataclass
class SceneResult:
    layout: Layout
    renderer: Renderer
    hits: Hits
    hidden: list[float]
    attempts: int
    camera: Camera | None = None  # the intrinsics used (styles may redraw them)


def low_res_camera(cam: Camera, target_width: int = 56) -> Camera:
    step = max(1, cam.width // target_width)
    return cam if step == 1 else cam.scaled(1.0 / step, 1.0 / step)


def sample_scene(
    rng: np.random.Generator,
    cfg: GeneratorConfig,
    library: ObjectLibrary,
    camera: Camera,
    style: Style | None = None,
) -> SceneResult:
    """Sample layouts until one passes the rejection rule at low and at full resolution.
    `style` None: the template; otherwise a randomised style's table (data/styles.py)."""
    low = low_res_camera(camera)
    k_n = cfg.num_objects
    objects: list[ObjectMesh] = []
    for attempt in range(1, cfg.max_attempts + 1):
        if style is not None and attempt % _NEW_CAMERA == 0:  # a lens that rarely works
            camera = sample_camera(rng, cfg, style)
            low = low_res_camera(camera)
        if attempt % _REUSE == 1 or _REUSE == 1:  # new objects now and then; arrangements
            if style is None:  # are cheaper to redraw
                objects = [library.sample(rng) for _ in range(k_n)]
            else:
                objects = [library.sample_styled(rng, style) for _ in range(k_n)]
        if style is None:
            lay = sample_layout(rng, cfg, objects, camera)
        else:
            lay = sample_layout_styled(rng, style, objects, camera)
        if not in_frame(lay, camera, cfg.max_outside):
            continue
        d = lay.renderer().depths(low)
        if check_occlusion(d, k_n, cfg) is None:
            # Rather than drop the layout, slide occluded objects sideways to a place where
            # their hidden fraction fits (most failures are "too much / too little hidden").
            if not repair_lateral(rng, lay, d, low, cfg) or not in_frame(
                lay, camera, cfg.max_outside
            ):
                continue
            d = lay.renderer().depths(low)
            if check_occlusion(d, k_n, cfg) is None:
                continue
        if style is not None:
            add_room_styled(rng, style, lay)
            lay.clutter = sample_distractors(rng, style, library, lay)
            r = lay.renderer()
            hits = r.cast(camera)
            n_c = len(lay.clutter)
            # Distractors that hide any part of a target go, judged at full resolution.
            bad = occluding_clutter(hits.depth[: k_n + n_c], k_n) if n_c else []
            if bad:
                keep = [g for g in range(r.num_geometries) if g - k_n not in bad]
                lay.clutter = [c for i, c in enumerate(lay.clutter) if i not in bad]
                r = lay.renderer()
                hits = Hits(hits.depth[keep], hits.prim[keep])
            hidden = check_occlusion(hits.depth, k_n, cfg)
            if hidden is None:
                continue
            return SceneResult(lay, r, hits, hidden, attempt, camera)
        add_room(rng, cfg, lay)
        lay.clutter = sample_clutter(rng, cfg, library, lay)
        r = lay.renderer()
        if lay.clutter:  # drop clutter in front of a target rather than the whole layout
            dc = r.depths(low, list(range(k_n, k_n + len(lay.clutter))))
            bad = occluding_clutter(np.concatenate([d, dc]), k_n)
            if bad:
                lay.clutter = [c for i, c in enumerate(lay.clutter) if i not in bad]
                r = lay.renderer()
        hits = r.cast(camera)
        hidden = check_occlusion(hits.depth, k_n, cfg)
        if hidden is None:
            continue
        return SceneResult(lay, r, hits, hidden, attempt)
    # A chain of K objects each hiding the next gets rare fast beyond 4 (8 failed all 300
    # attempts at 112x84), so name the count first when it is the likely cause.
    hint = "widen --hidden-min/--hidden-max or use a larger --size"
    if k_n > 4:
        hint = f"--num-objects {k_n} is hard to fit as one chain of occluders (try 2-4), or {hint}"
    raise UserError(
        f"no layout met the occlusion constraints in {cfg.max_attempts} attempts; {hint}"
    )
