"""Tray and app icons, drawn from shapes: one disc per Health, plus the app icon.

This edge owns every pixel the agent shows. Glyphs are drawn as lines, arcs and dots (never with
a font: fonts differ per OS and may be missing), at 4x and downsampled with LANCZOS so they stay
crisp from 16 px to HiDPI. Each state has its own colour AND its own glyph shape, so the states
stay distinguishable without colour (check, "!", "x", "?"). A dark rim around the disc and the
glyph keeps the icon legible on light and dark bars. While notifications are paused a small dark
badge with white pause bars sits at the bottom right; the disc keeps its state colour.

    render_icon(Health.RED, 22)          -> PIL.Image.Image (RGBA 22x22), cached; do not mutate
    render_icon(Health.RED, 22, paused=True)  -> the same with the pause badge
    app_icon_images()                    -> the app icon at APP_ICON_SIZES
    write_app_icon(Path("x.ico"))        -> writes .png / .ico / .icns by suffix
    icon_set()                           -> every committed file of icons/ and its frames
    python -m agent.desktop.icons --write icons/ -> (re)draws all of icons/
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from agent.core.model import Health

__all__ = [
    "APP_ICON_COLOUR",
    "APP_ICON_NAME",
    "APP_ICON_SIZES",
    "HEALTH_COLOURS",
    "ICNS_SIZES",
    "OUTLINE_COLOUR",
    "PNG_SIZES",
    "STATE_ICON_SIZES",
    "app_icon_images",
    "icon_set",
    "main",
    "render_app_icon",
    "render_icon",
    "write_app_icon",
    "write_icon_set",
]

RGB = tuple[int, int, int]

HEALTH_COLOURS: dict[Health, RGB] = {
    Health.GREEN: (0x2E, 0x9D, 0x4A),  # white glyph contrast 3.4:1
    Health.AMBER: (0xEC, 0x97, 0x0F),  # the glyph's dark rim carries the contrast here
    Health.RED: (0xD9, 0x3B, 0x3B),  # 4.3:1
    Health.GREY: (0x8A, 0x8F, 0x98),  # 3.2:1
}
"""Disc colour per state (the tests and the tray-screenshot checks look for these)."""

APP_ICON_COLOUR: RGB = (0x2F, 0x6A, 0xC8)
OUTLINE_COLOUR: RGB = (0x1B, 0x1F, 0x24)
GLYPH_COLOUR: RGB = (0xFF, 0xFF, 0xFF)

APP_ICON_NAME = "tailnet-agent"
APP_ICON_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256)
"""Frames of the Windows .ico; the .png is the 256 px one."""

ICNS_SIZES: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)  # what Pillow's ICNS writer stores
PNG_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
STATE_ICON_SIZES: tuple[int, ...] = (16, 22, 24, 32, 48, 64)  # tray sizes, 1x and 2x

_DISC_RADIUS = 0.47  # of the icon's width, outline included
_DISC_OUTLINE = 0.06  # of the icon's width, at least one final pixel
_GLYPH_RIM = 0.035  # dark rim around the glyph, at least half a final pixel


# ==== shapes ===================================================================
# Coordinates are fractions of the icon's width: (0.5, 0.5) is the centre.


@dataclass(frozen=True, slots=True)
class _Line:
    points: tuple[tuple[float, float], ...]
    width: float


@dataclass(frozen=True, slots=True)
class _Dot:
    centre: tuple[float, float]
    radius: float


@dataclass(frozen=True, slots=True)
class _Arc:
    centre: tuple[float, float]
    radius: float  # of the stroke's centre line
    start: float  # degrees, clockwise from 3 o'clock (Pillow's convention)
    end: float
    width: float


_Shape = _Line | _Dot | _Arc

_GLYPHS: dict[Health, tuple[_Shape, ...]] = {
    Health.GREEN: (_Line(((0.285, 0.515), (0.43, 0.655), (0.715, 0.365)), 0.125),),
    Health.AMBER: (
        _Line(((0.5, 0.245), (0.5, 0.565)), 0.135),
        _Dot((0.5, 0.745), 0.08),
    ),
    Health.RED: (
        _Line(((0.335, 0.335), (0.665, 0.665)), 0.125),
        _Line(((0.665, 0.335), (0.335, 0.665)), 0.125),
    ),
    Health.GREY: (
        _Arc((0.5, 0.385), 0.135, 175.0, 415.0, 0.115),
        _Line(((0.5 + 0.135 * 0.5736, 0.385 + 0.135 * 0.8192), (0.5, 0.555), (0.5, 0.585)), 0.115),
        _Dot((0.5, 0.75), 0.075),
    ),
}

# Notifications paused: a dark badge with two white bars, at the bottom right, clear of the
# state glyphs' centres (the tip of the red cross's arm is the only thing it covers).
_PAUSE_BADGE = _Dot((0.77, 0.77), 0.19)
_PAUSE_BARS: tuple[_Shape, ...] = (  # a gap of about a pixel between them at 16 px
    _Line(((0.71, 0.71), (0.71, 0.83)), 0.075),
    _Line(((0.83, 0.71), (0.83, 0.83)), 0.075),
)

# Three peers joined in a triangle: the app, not a state.
_APP_GLYPH: tuple[_Shape, ...] = (
    _Line(((0.5, 0.29), (0.295, 0.65), (0.705, 0.65), (0.5, 0.29)), 0.065),
    _Dot((0.5, 0.29), 0.095),
    _Dot((0.295, 0.65), 0.095),
    _Dot((0.705, 0.65), 0.095),
)


def _arc_point(arc: _Arc, degrees: float) -> tuple[float, float]:
    rad = math.radians(degrees)
    return (arc.centre[0] + arc.radius * math.cos(rad), arc.centre[1] + arc.radius * math.sin(rad))


def _draw_shapes(
    draw: ImageDraw.ImageDraw,
    shapes: Sequence[_Shape],
    canvas: int,
    grow: float,
    fill: tuple[int, int, int, int],
) -> None:
    """Draw shapes scaled to `canvas` px, each stroke widened by `grow` px on both sides."""

    def px(point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] * canvas, point[1] * canvas)

    def cap(point: tuple[float, float], radius: float) -> None:
        x, y = px(point)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)

    for shape in shapes:
        if isinstance(shape, _Dot):
            cap(shape.centre, shape.radius * canvas + grow)
        elif isinstance(shape, _Line):
            width = shape.width * canvas + 2 * grow
            draw.line([px(p) for p in shape.points], fill=fill, width=round(width), joint="curve")
            for point in shape.points:  # round caps and joints
                cap(point, width / 2)
        else:
            width = shape.width * canvas + 2 * grow
            outer = shape.radius * canvas + width / 2
            cx, cy = px(shape.centre)
            draw.arc(
                (cx - outer, cy - outer, cx + outer, cy + outer),
                shape.start,
                shape.end,
                fill=fill,
                width=round(width),
            )
            for degrees in (shape.start, shape.end):
                cap(_arc_point(shape, degrees), width / 2)


def _render(disc: RGB, glyph: Sequence[_Shape], size: int, *, paused: bool = False) -> Image.Image:
    if size < 8:
        raise ValueError(f"icon size {size} px is too small (at least 8)")
    factor = 4 if size <= 256 else 2
    canvas = size * factor
    image = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    centre = canvas / 2
    radius = _DISC_RADIUS * canvas
    outline = max(_DISC_OUTLINE * canvas, 1.0 * factor)
    draw.ellipse(
        (centre - radius, centre - radius, centre + radius, centre + radius),
        fill=(*OUTLINE_COLOUR, 255),
    )
    inner = radius - outline
    draw.ellipse(
        (centre - inner, centre - inner, centre + inner, centre + inner), fill=(*disc, 255)
    )

    rim = max(_GLYPH_RIM * canvas, 0.5 * factor)
    _draw_shapes(draw, glyph, canvas, rim, (*OUTLINE_COLOUR, 255))
    _draw_shapes(draw, glyph, canvas, 0.0, (*GLYPH_COLOUR, 255))
    if paused:
        _draw_shapes(draw, (_PAUSE_BADGE,), canvas, 0.0, (*OUTLINE_COLOUR, 255))
        _draw_shapes(draw, _PAUSE_BARS, canvas, 0.0, (*GLYPH_COLOUR, 255))
    return image.resize((size, size), Image.Resampling.LANCZOS)


# ==== public ===================================================================


@functools.lru_cache(maxsize=128)
def render_icon(health: Health, size: int = 64, *, paused: bool = False) -> Image.Image:
    """The tray icon for `health`, `size` x `size` RGBA; `paused` adds the pause badge.

    Cached: treat it as read-only.
    """
    return _render(HEALTH_COLOURS[health], _GLYPHS[health], size, paused=paused)


@functools.lru_cache(maxsize=16)
def render_app_icon(size: int = 256) -> Image.Image:
    """The application icon (installers, window lists, notifications). Cached: read-only."""
    return _render(APP_ICON_COLOUR, _APP_GLYPH, size)


def app_icon_images(sizes: Sequence[int] = APP_ICON_SIZES) -> list[Image.Image]:
    """The app icon drawn natively at each size (not scaled from one bitmap)."""
    return [render_app_icon(size) for size in sizes]


def write_app_icon(path: Path) -> Path:
    """Write the app icon to `path`; the suffix picks .png (256 px), .ico or .icns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".png":
        render_app_icon(256).save(path, format="PNG")
    elif suffix == ".ico":
        frames = app_icon_images()
        largest = frames[-1]
        largest.save(
            path,
            format="ICO",
            sizes=[(im.width, im.height) for im in frames],
            append_images=frames[:-1],
        )
    elif suffix == ".icns":
        frames = app_icon_images(ICNS_SIZES)
        frames[-1].save(path, format="ICNS", append_images=frames[:-1])
    else:
        raise ValueError(f"{path}: unknown icon format {suffix!r} (use .png, .ico or .icns)")
    return path


def icon_set() -> dict[str, list[Image.Image]]:
    """Every committed icon file (a path relative to icons/) and the frames it must hold.

    The app icon as .ico (16-256), .icns (32-1024) and .png (256), one PNG per size from 16 to
    1024 in png/, and the tray's per-state icons in tray/ at the sizes trays ask for, plain and
    with the pause badge.
    """
    files: dict[str, list[Image.Image]] = {
        f"{APP_ICON_NAME}.png": [render_app_icon(256)],
        f"{APP_ICON_NAME}.ico": app_icon_images(),
        f"{APP_ICON_NAME}.icns": app_icon_images(ICNS_SIZES),
    }
    for size in PNG_SIZES:
        files[f"png/{APP_ICON_NAME}-{size}.png"] = [render_app_icon(size)]
    for health in Health:
        for size in STATE_ICON_SIZES:
            files[f"tray/{health.value}-{size}.png"] = [render_icon(health, size)]
            files[f"tray/{health.value}-paused-{size}.png"] = [
                render_icon(health, size, paused=True)
            ]
    return files


def write_icon_set(directory: Path) -> list[Path]:
    """Write every file of icon_set() under `directory` (the repository's icons/)."""
    written = []
    for name, frames in icon_set().items():
        path = directory / name
        if len(frames) == 1 and path.suffix == ".png":
            path.parent.mkdir(parents=True, exist_ok=True)
            frames[0].save(path, format="PNG")
        else:
            write_app_icon(path)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m agent.desktop.icons --write DIR`: the whole icon set, as committed in icons/."""
    parser = argparse.ArgumentParser(prog="python -m agent.desktop.icons", description=__doc__)
    parser.add_argument(
        "--write", metavar="DIR", type=Path, required=True, help="where to write (icons/)"
    )
    args = parser.parse_args(argv)
    for path in write_icon_set(args.write):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
