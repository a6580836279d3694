"""desktop.icons: per state and size the colour, the glyph, the rim, transparency, app icons."""

from __future__ import annotations

import colorsys
import itertools
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from agent.core.model import Health
from agent.desktop import icons
from agent.desktop.icons import HEALTH_COLOURS, OUTLINE_COLOUR, render_icon

SIZES = (16, 22, 24, 32, 48, 64, 128)
REPO = Path(__file__).resolve().parents[1]

CASES = [pytest.param(h, s, id=f"{h.value}-{s}") for h in Health for s in SIZES]


def _pixels(image: Image.Image) -> list[tuple[int, int, int, int]]:
    data = image.convert("RGBA").tobytes()
    return [(data[i], data[i + 1], data[i + 2], data[i + 3]) for i in range(0, len(data), 4)]


def _dist(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum((x - y) ** 2 for x, y in zip(a[:3], b[:3], strict=True))


def _lum(p: tuple[int, ...]) -> float:
    return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]


def _glyph_mask(image: Image.Image) -> set[tuple[int, int]]:
    """Positions of near-white opaque pixels: the glyph, whatever the disc colour."""
    w = image.width
    return {
        (i % w, i // w) for i, p in enumerate(_pixels(image)) if p[3] >= 250 and min(p[:3]) >= 215
    }


HUES = {  # (hue range in degrees, minimum saturation) a person calls by that name
    Health.GREEN: ((100.0, 160.0), 0.45),
    Health.AMBER: ((28.0, 48.0), 0.6),
    Health.RED: ((-12.0, 8.0), 0.5),
}


@pytest.mark.parametrize("health", list(Health), ids=lambda h: h.value)
def test_state_colours_are_named_right(health: Health) -> None:
    r, g, b = (c / 255 for c in HEALTH_COLOURS[health])
    hue, _light, sat = colorsys.rgb_to_hls(r, g, b)
    degrees = hue * 360 if hue * 360 < 348 else hue * 360 - 360
    if health is Health.GREY:
        assert sat < 0.12
        return
    (lo, hi), min_sat = HUES[health]
    assert lo <= degrees <= hi and sat >= min_sat, (degrees, sat)


@pytest.mark.parametrize(("health", "size"), CASES)
def test_size_and_mode_are_exact(health: Health, size: int) -> None:
    image = render_icon(health, size)
    assert image.size == (size, size)
    assert image.mode == "RGBA"


@pytest.mark.parametrize(("health", "size"), CASES)
def test_dominant_disc_colour_is_the_state_colour(health: Health, size: int) -> None:
    # Each opaque pixel close to a palette colour (states, white glyph, dark rim) votes for it;
    # anti-aliased blends between two colours are too far from all of them to vote.
    palette: dict[str, tuple[int, ...]] = {h.value: c for h, c in HEALTH_COLOURS.items()}
    palette["white"] = (255, 255, 255)
    palette["outline"] = OUTLINE_COLOUR
    votes = dict.fromkeys(palette, 0)
    for p in _pixels(render_icon(health, size)):
        nearest = min(palette, key=lambda k: _dist(palette[k], p))
        if p[3] == 255 and _dist(palette[nearest], p) <= 3 * 24**2:
            votes[nearest] += 1
    state_votes = {h.value: votes[h.value] for h in Health}
    assert max(state_votes, key=state_votes.__getitem__) == health.value, state_votes
    assert state_votes[health.value] >= size * size * 0.08, state_votes
    runner_up = max(v for k, v in state_votes.items() if k != health.value)
    assert state_votes[health.value] >= 3 * runner_up, state_votes


@pytest.mark.parametrize(("health", "size"), CASES)
def test_glyph_is_drawn_in_white_at_the_centre(health: Health, size: int) -> None:
    lo, hi = round(size * 0.2), round(size * 0.8)
    centre = {(x, y) for x, y in _glyph_mask(render_icon(health, size)) if lo <= x < hi}
    centre = {(x, y) for x, y in centre if lo <= y < hi}
    assert len(centre) >= size * size * 0.04


@pytest.mark.parametrize(("health", "size"), CASES)
def test_corners_are_transparent(health: Health, size: int) -> None:
    image = render_icon(health, size)
    for corner in ((0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)):
        assert image.getpixel(corner)[3] == 0, corner  # type: ignore[index]


@pytest.mark.parametrize(("health", "size"), CASES)
def test_dark_rim_reads_on_light_bars(health: Health, size: int) -> None:
    # Walking in from each edge, one of the first opaque pixels is dark.
    image = render_icon(health, size)
    c = size // 2
    rays = {
        "top": [(c, y) for y in range(c)],
        "bottom": [(c, y) for y in range(size - 1, c, -1)],
        "left": [(x, c) for x in range(c)],
        "right": [(x, c) for x in range(size - 1, c, -1)],
    }
    for side, ray in rays.items():
        opaque = [image.getpixel(xy) for xy in ray if image.getpixel(xy)[3] >= 200]  # type: ignore[index]
        assert min(_lum(p) for p in opaque[:3]) < 80, side  # type: ignore[arg-type]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}px")
def test_states_differ_without_colour(size: int) -> None:
    # For colour-blind users: the glyph shapes alone tell the states apart.
    masks = {h: _glyph_mask(render_icon(h, size)) for h in Health}
    for a, b in itertools.combinations(Health, 2):
        union = masks[a] | masks[b]
        differ = masks[a] ^ masks[b]
        assert len(differ) >= 0.35 * len(union), (a, b, len(differ), len(union))


# ==== paused notifications: a mark on the icon ==================================


def _badge_region(size: int) -> set[tuple[int, int]]:
    lo = int(size * 0.56)  # the badge spans 0.6 to 1.0 of the width, plus anti-aliasing
    return {(x, y) for x in range(lo, size) for y in range(lo, size)}


@pytest.mark.parametrize(("health", "size"), CASES)
def test_paused_icon_keeps_the_state_colour_and_adds_a_pause_mark(
    health: Health, size: int
) -> None:
    plain, paused = render_icon(health, size), render_icon(health, size, paused=True)
    assert paused.size == (size, size) and paused.mode == "RGBA"
    # The mark sits at the bottom right: it changes pixels there and nowhere else.
    changed = {
        (i % size, i // size)
        for i, (a, b) in enumerate(zip(_pixels(plain), _pixels(paused), strict=True))
        if _dist(a, b) > 3 * 24**2
    }
    corner = _badge_region(size)
    assert changed and changed <= corner, sorted(changed - corner)
    # White bars on a dark badge: both there, in the corner.
    white = _glyph_mask(paused) & corner
    dark = {xy for xy in corner if _lum(paused.getpixel(xy)) < 60 and paused.getpixel(xy)[3] > 200}  # type: ignore[arg-type,index]
    assert len(white) >= max(2, size * size * 0.008), len(white)
    assert len(dark) >= size * size * 0.03, len(dark)
    # The state colour is still most of the disc.
    colour = HEALTH_COLOURS[health]
    plain_count = sum(1 for p in _pixels(plain) if p[3] == 255 and _dist(p, colour) <= 3 * 24**2)
    paused_count = sum(1 for p in _pixels(paused) if p[3] == 255 and _dist(p, colour) <= 3 * 24**2)
    assert paused_count >= 0.75 * plain_count, (paused_count, plain_count)
    assert paused.getpixel((size - 1, size - 1))[3] < 8  # type: ignore[index]  # invisible


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}px")
def test_paused_states_still_differ_without_colour(size: int) -> None:
    masks = {h: _glyph_mask(render_icon(h, size, paused=True)) for h in Health}
    for a, b in itertools.combinations(Health, 2):
        union = masks[a] | masks[b]
        assert len(masks[a] ^ masks[b]) >= 0.3 * len(union), (a, b)


def test_icons_are_cached_per_state_and_size() -> None:
    assert render_icon(Health.RED, 32) is render_icon(Health.RED, 32)
    assert render_icon(Health.RED, 32) is not render_icon(Health.RED, 22)
    assert render_icon(Health.RED, 32) is not render_icon(Health.GREEN, 32)


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        render_icon(Health.GREEN, 4)


def test_app_icon_differs_from_every_state() -> None:
    app = _pixels(icons.render_app_icon(64))
    for health in Health:
        state = _pixels(render_icon(health, 64))
        differing = sum(1 for a, b in zip(app, state, strict=True) if _dist(a, b) > 900)
        assert differing > 64 * 64 * 0.2, health


def test_app_icon_images_are_native_sizes() -> None:
    frames = icons.app_icon_images()
    assert [im.size for im in frames] == [(s, s) for s in icons.APP_ICON_SIZES]


def _frames(path: Path) -> dict[int, Image.Image]:
    """Each frame stored in a .png, .ico or .icns file, by its width in pixels."""
    with Image.open(path) as im:
        if im.format == "PNG":
            return {im.width: im.convert("RGBA")}
        if im.format == "ICO":
            return {w: im.ico.getimage((w, h)).convert("RGBA") for w, h in im.ico.sizes()}
        assert im.format == "ICNS", path
        entries = im.info["sizes"]
    frames = {}
    for width, height, scale in entries:
        with Image.open(path) as im:
            im.size = (width, height)
            im.load(scale=scale)
            frames[width * scale] = im.convert("RGBA")
    return frames


def _max_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return max(high for _low, high in ImageChops.difference(a, b.convert("RGBA")).getextrema())


def test_write_app_icon_png_ico_icns(tmp_path: Path) -> None:
    png = icons.write_app_icon(tmp_path / "a.png")
    ico = icons.write_app_icon(tmp_path / "a.ico")
    icns = icons.write_app_icon(tmp_path / "a.icns")
    assert set(_frames(png)) == {256}
    assert set(_frames(ico)) == set(icons.APP_ICON_SIZES)
    assert set(_frames(icns)) == set(icons.ICNS_SIZES)
    # Each frame is the native render at its size, not a scaled copy of another.
    for path in (ico, icns):
        for width, frame in _frames(path).items():
            assert _pixels(frame) == _pixels(icons.render_app_icon(width)), (path, width)


def test_unknown_icon_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown icon format"):
        icons.write_app_icon(tmp_path / "x.bmp")


def test_the_set_covers_every_size_packaging_and_trays_ask_for() -> None:
    files = icons.icon_set()
    assert {f"png/tailnet-agent-{s}.png" for s in (16, 32, 64, 128, 256, 512, 1024)} <= set(files)
    assert {16, 256} <= set(icons.APP_ICON_SIZES)  # the .ico: 16 to 256
    assert min(icons.ICNS_SIZES) <= 32 and max(icons.ICNS_SIZES) == 1024
    for health in Health:
        for size in (16, 22, 32, 64):
            (frame,) = files[f"tray/{health.value}-{size}.png"]
            assert _pixels(frame) == _pixels(render_icon(health, size))
            (frame,) = files[f"tray/{health.value}-paused-{size}.png"]
            assert _pixels(frame) == _pixels(render_icon(health, size, paused=True))


def test_cli_writes_the_whole_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert icons.main(["--write", str(out)]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(icons.icon_set())
    assert str(out / "tailnet-agent.ico") in capsys.readouterr().out.splitlines()


def test_cli_without_a_folder_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        icons.main([])
    assert exc.value.code == 2


# Pillow's resampling may round a level differently from one release to the next; a change
# of the drawing moves far more than this. Past it: run the script and commit (icons/README).
COMMITTED_TOLERANCE = 2


def test_committed_icons_are_what_the_script_draws_today() -> None:
    folder = REPO / "icons"
    committed = {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    expected = icons.icon_set()
    assert committed == set(expected), "run: python -m agent.desktop.icons --write icons/"
    for name, frames in expected.items():
        stored = _frames(folder / name)
        assert set(stored) == {frame.width for frame in frames}, name
        for frame in frames:
            difference = _max_difference(stored[frame.width], frame)
            assert difference <= COMMITTED_TOLERANCE, (name, frame.width, difference)
