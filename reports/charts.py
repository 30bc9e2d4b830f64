"""PNG charts for the owner's reports, drawn from the values in ``reports.chart_data``.

Only matplotlib's object API is used (a ``Figure`` with its own Agg canvas, never ``pyplot``), so a render
touches no global state and can run in a worker thread (``asyncio.to_thread``). Matplotlib is imported on
the first render: the CLI and the ingest path import ``reports`` without paying for it.

Strings that come from outside (locations, names, refusal reasons) are drawn as plain text: every text
is created with mathtext and TeX off, and control and formatting characters are stripped first.
"""

from __future__ import annotations

import functools
import io
import math
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from reports.chart_data import ChartPeriod, DailyTrend, FunnelData, LatencyDistribution, WeekHourHeatmap
from reports.texts import charts as texts
from reports.texts.numbers import format_compact, format_int, format_percent
from storage.aggregates import HOURS, ClientJourney, WeekHourGrid
from storage.event_types import EventType

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

WIDTH_PX, HEIGHT_PX, DPI = 1200, 800, 150
ZERO_WIDTH_JOINER = "\u200d"

# A calm palette, one meaning per colour across all charts.
INK = "#2E3440"
MUTED = "#6B7280"
GRID = "#E5E7EB"
BLUE = "#4C78A8"
TEAL = "#72B7B2"
GREEN = "#59A14F"
PURPLE = "#8E6C8A"
GOLD = "#E3A857"
ORANGE = "#D98032"
RED = "#D4604D"
DARK_RED = "#9C3B2E"
GREY = "#A0A7B4"

# Passed to every text we create, so a "$" in user data is a dollar sign, not a formula.
PLAIN: dict[str, Any] = {"parse_math": False, "usetex": False}

TITLE_SIZE = 17
LABEL_SIZE = 14
TICK_SIZE = 13
_LABEL: dict[str, Any] = {"fontsize": 12, "color": INK, **PLAIN}  # cell labels of the heatmap

# (event, lane name, colour, marker) of the journey chart, top to bottom.
JOURNEY_LANES: tuple[tuple[str, str, str, str], ...] = tuple(
    (event, texts.JOURNEY_LANE_NAMES[event], colour, marker)
    for event, colour, marker in (
        (EventType.MESSAGE_RECEIVED, BLUE, "o"),
        (EventType.ASSISTANT_RESPONSE, TEAL, "s"),
        (EventType.LEAD_CREATED, GOLD, "D"),
        (EventType.APPOINTMENT_BOOKED, GREEN, "^"),
        (EventType.VISIT, GOLD, "*"),
        (EventType.PAYMENT_STATUS, PURPLE, "h"),
        (EventType.NO_SHOW, RED, "X"),
        (EventType.REFUSAL, DARK_RED, "v"),
    )
)
OTHER_LANE = ("", texts.JOURNEY_OTHER_LANE, GREY, "P")


@functools.cache
def _drawable_codepoints() -> frozenset[int]:
    """What the charts' font has glyphs for: matplotlib draws anything else as an empty box."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap())


def plain_text(text: str, limit: int = 40) -> str:
    """User text made safe to draw: no control or bidi/format characters, one line, at most ``limit``.

    Characters the font cannot draw (emoji, common in clients' Telegram names) are left out, with what an
    emoji sequence joins or adds to them (💇‍♀️ is 💇, a zero-width joiner, ♀ and a variation selector).
    """
    drawable = _drawable_codepoints()
    kept: list[str] = []
    left_out = joined = False  # the last character was left out; a zero-width joiner followed it
    for char in text:
        category = unicodedata.category(char)
        if char == ZERO_WIDTH_JOINER:
            joined = left_out
            continue
        # A mark (e.g. the emoji variation selector) goes with the character it modifies.
        marks_left_out = left_out and category.startswith("M")
        left_out = joined or marks_left_out or (category != "Cc" and ord(char) not in drawable)
        joined = False
        if category == "Cc":
            kept.append(" ")
        elif not (left_out or category.startswith("C")):
            kept.append(char)
    line = " ".join("".join(kept).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def period_caption(period: ChartPeriod) -> str:
    location = plain_text(period.location, 30) if period.location else None
    return texts.period_caption(period.first_day, period.last_day, location)


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins rather than a layout engine: the size never changes, and constrained layout
    # measured every tick label again on each render, doubling the time.
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    figure.set_facecolor("white")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # Light compression: zlib's default level costs a tenth of the render time to save ~15 % of the bytes.
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white", pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def _fit(text: Text, width_px: float) -> None:
    """Shorten a drawn text with "…" until it fits: letters differ too much in width (Ж vs i) to count."""
    full = text.get_text()
    if text.get_window_extent().width <= width_px:
        return
    fits, too_long = 0, len(full)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        text.set_text(full[:middle].rstrip() + "…")
        if text.get_window_extent().width <= width_px:
            fits = middle
        else:
            too_long = middle
    text.set_text(full[:fits].rstrip() + "…")


def _title(figure: Figure, title: str, caption: str) -> None:
    """The title on the left and the period (with the location) on the right of one line, both fitted."""
    room = WIDTH_PX * 0.96
    if caption:
        period = figure.text(0.98, 0.97, caption, ha="right", va="top", fontsize=14, color=MUTED, **PLAIN)
        _fit(period, room * 0.45)
        room -= period.get_window_extent().width + 30
    drawn = figure.suptitle(
        title,
        x=0.02,
        y=0.975,
        ha="left",
        va="top",
        fontsize=TITLE_SIZE,
        fontweight="bold",
        color=INK,
        **PLAIN,
    )
    _fit(drawn, room)


def _no_data(title: str, caption: str) -> bytes:
    figure = _figure()
    _title(figure, title, caption)
    figure.text(0.5, 0.5, texts.NO_DATA, ha="center", va="center", fontsize=24, color=MUTED, **PLAIN)
    return _png(figure)


def _style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GREY)
    ax.tick_params(labelsize=TICK_SIZE, colors=INK)
    ax.set_axisbelow(True)


def render_funnel(data: FunnelData) -> bytes:
    """Clients → leads → bookings → visits → paid, each with its share of the step before; no-shows in red."""
    title, caption = texts.FUNNEL_TITLE, period_caption(data.period)
    if data.is_empty:
        return _no_data(title, caption)
    figure = _figure()
    _title(figure, title, caption)
    ax = figure.add_axes((0.14, 0.04, 0.84, 0.84))
    _style(ax)
    values = (data.clients, data.leads, data.bookings, data.visits, data.paid)
    steps = tuple(zip(texts.FUNNEL_STEPS, values, (BLUE, TEAL, GREEN, GOLD, PURPLE), strict=True))
    positions = list(range(len(steps) - 1, -1, -1))
    widest = max(value for _, value, _ in steps) or 1
    ax.barh(positions, [value for _, value, _ in steps], height=0.6, color=[color for *_, color in steps])
    previous: int | None = None
    for (_, value, _), y in zip(steps, positions, strict=True):
        label = texts.funnel_step(value, previous)
        lift = 0.14 if y == positions[2] and data.no_shows else 0.0
        ax.text(value + widest * 0.015, y + lift, label, va="center", fontsize=15, color=INK, **PLAIN)
        previous = value
    if data.no_shows:
        booked_y, marked = positions[2], min(data.no_shows, data.bookings)
        ax.barh([booked_y], [marked], left=[data.bookings - marked], height=0.6, color=RED)
        ax.text(
            data.bookings + widest * 0.015,
            booked_y - 0.2,
            texts.funnel_no_shows(data.no_shows, data.bookings),
            va="center",
            fontsize=13,
            color=RED,
            fontweight="bold",
            **PLAIN,
        )
    ax.set_yticks(positions, [name for name, _, _ in steps], fontsize=16, **PLAIN)
    ax.set_xlim(0, widest * 1.75)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return _png(figure)


def render_daily_trend(data: DailyTrend) -> bytes:
    """Bars of clients, leads and bookings per local day, with the dialog → lead conversion as a line."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    title, caption = texts.TREND_TITLE, period_caption(data.period)
    if data.is_empty:
        return _no_data(title, caption)
    figure = _figure()
    _title(figure, title, caption)
    ax = figure.add_axes((0.09, 0.16, 0.81, 0.74))
    _style(ax)
    days = data.days
    width = 0.27
    slots = range(len(days))
    clients_label, leads_label, bookings_label = texts.TREND_SERIES
    series = (
        (clients_label, [d.clients for d in days], BLUE, -width),
        (leads_label, [d.leads for d in days], TEAL, 0.0),
        (bookings_label, [d.bookings for d in days], GREEN, width),
    )
    for label, values, color, shift in series:
        ax.bar([slot + shift for slot in slots], values, width, color=color, label=label)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", color=GRID)
    ax.set_ylabel(texts.TREND_AXIS, fontsize=LABEL_SIZE, color=INK, **PLAIN)
    step = max(1, math.ceil(len(days) / 10))
    ax.set_xticks(list(slots)[::step], [f"{d.day:%d.%m}" for d in days][::step], **PLAIN)
    ax.set_xlim(-0.6, len(days) - 0.4)

    conversion = ax.twinx()
    shares = [math.nan if d.conversion is None else d.conversion * 100 for d in days]
    known = [share for share in shares if not math.isnan(share)]
    conversion.plot(
        list(slots),
        shares,
        color=ORANGE,
        linewidth=2.5,
        marker="o",
        markersize=5,
        label=texts.TREND_CONVERSION,
    )
    conversion.set_ylim(0, min(100.0, max(10.0, math.ceil(max(known, default=0) * 1.25 / 10) * 10)))
    conversion.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_percent(value / 100, 0)))
    conversion.tick_params(labelsize=TICK_SIZE, colors=ORANGE)
    for side in ("top", "left", "bottom"):
        conversion.spines[side].set_visible(False)
    conversion.spines["right"].set_color(ORANGE)
    handles, labels = ax.get_legend_handles_labels()
    line_handles, line_labels = conversion.get_legend_handles_labels()
    figure.legend(
        handles + line_handles,
        labels + line_labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=4,
        fontsize=12,
        frameon=False,
    )
    return _png(figure)


def _bin_width(span: float) -> float:
    """A round bin width giving about 40 bins over ``span`` seconds."""
    raw = span / 40
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(magnitude * m for m in (1, 2, 2.5, 5, 10) if magnitude * m >= raw)


def render_latency(data: LatencyDistribution) -> bytes:
    """Histogram of AI answer times with the SLA line and p50/p95; answers past SLA coloured."""
    from matplotlib.ticker import FuncFormatter

    sla = data.sla_seconds
    title, caption = texts.LATENCY_TITLE, period_caption(data.period)
    p50, p95, over = data.percentile(0.5), data.percentile(0.95), data.over_sla_share
    if p50 is None or p95 is None:
        return _no_data(title, caption)
    figure = _figure()
    _title(figure, texts.latency_title(over, sla), caption)
    ax = figure.add_axes((0.09, 0.13, 0.88, 0.72))
    _style(ax)
    largest = data.seconds[-1]
    # The axis ends at twice p95, not at the largest value: one stuck two-minute answer would otherwise
    # squeeze everything else into a single bar.
    upper = max(sla * 1.5, min(largest, p95 * 2), 1.0)
    width = _bin_width(upper)
    upper = math.ceil(upper / width) * width
    edges = [n * width for n in range(round(upper / width) + 1)]
    # Bins are (left, right] (a hair wider, against rounding), so a gold bin (left ≥ SLA) holds only
    # answers over the SLA, as the title counts them; whatever lies beyond the axis joins the last bin.
    at_most = [0, *(data.count_at_most((n + 1e-9) * width) for n in range(1, len(edges) - 1)), data.total]
    heights = [high - low for low, high in pairwise(at_most)]
    clipped = data.total - data.count_at_most(upper)
    ax.bar(
        edges[:-1],
        heights,
        width,
        align="edge",
        color=[GOLD if left >= sla else BLUE for left in edges[:-1]],
        edgecolor="white",
    )
    sla_mark, p50_mark, p95_mark = texts.latency_marks(sla, p50, p95)
    ax.axvline(sla, color=RED, linewidth=3, linestyle="--", label=sla_mark)
    ax.axvline(p50, color=INK, linewidth=2, linestyle=":", label=p50_mark)
    ax.axvline(p95, color=PURPLE, linewidth=2, linestyle="-.", label=p95_mark)
    legend = ax.legend(fontsize=13, frameon=False, loc="upper right")
    for text in legend.get_texts():
        text.set_parse_math(False)
    ax.set_title(
        texts.latency_subtitle(data.total, p50, p95),
        loc="left",
        fontsize=LABEL_SIZE,
        color=MUTED,
        **PLAIN,
    )
    ax.set_xlabel(texts.latency_axis(clipped, upper), fontsize=LABEL_SIZE, color=INK, **PLAIN)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_compact(value, 2)))
    ax.set_ylabel(texts.LATENCY_COUNT_AXIS, fontsize=LABEL_SIZE, color=INK, **PLAIN)
    ax.set_xlim(0, upper)
    ax.grid(axis="y", color=GRID)
    return _png(figure)


def _peak(grid: WeekHourGrid) -> tuple[int, int, int]:
    """(count, weekday, hour) of the busiest cell; the earliest one on ties."""
    return max(
        ((count, day, hour) for day, row in enumerate(grid) for hour, count in enumerate(row)),
        key=lambda cell: (cell[0], -cell[1], -cell[2]),
    )


def _heat_panel(
    figure: Figure, ax: Axes, colour_bar: Axes, grid: WeekHourGrid, colours: str, name: str, unit: str
) -> None:
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    peak, peak_day, peak_hour = _peak(grid)
    image = ax.imshow(grid, aspect="auto", cmap=colours, vmin=0, vmax=max(1, peak), interpolation="nearest")
    bar = figure.colorbar(image, cax=colour_bar)
    bar.locator = MaxNLocator(nbins=4, integer=True)
    bar.ax.tick_params(labelsize=11)
    bar.set_label(unit, fontsize=12, **PLAIN)
    bar.outline.set_visible(False)
    # Labels as plain texts beside the cells: 31 Tick objects per panel (two markers, two labels and a
    # grid line each) were a third of the chart's drawing time.
    ax.set_xticks([])
    ax.set_yticks([])
    for day, weekday in enumerate(texts.WEEKDAY_NAMES):
        ax.text(-0.01, day, weekday, transform=ax.get_yaxis_transform(), ha="right", va="center", **_LABEL)
    for hour in range(HOURS):
        ax.text(hour, -0.03, str(hour), transform=ax.get_xaxis_transform(), ha="center", va="top", **_LABEL)
    # Cell borders as two line collections: minor ticks would cost a Tick object per line.
    ax.vlines([hour + 0.5 for hour in range(HOURS - 1)], -0.5, len(grid) - 0.5, color="white", linewidth=1)
    ax.hlines([day + 0.5 for day in range(len(grid) - 1)], -0.5, HOURS - 0.5, color="white", linewidth=1)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if peak == 0:
        ax.set_title(texts.heat_panel_empty(name), loc="left", fontsize=LABEL_SIZE, color=MUTED, **PLAIN)
        return
    ax.add_patch(Rectangle((peak_hour - 0.5, peak_day - 0.5), 1, 1, fill=False, edgecolor=INK, linewidth=2.5))
    ax.text(
        peak_hour, peak_day, format_int(peak), ha="center", va="center", fontsize=10, color="white", **PLAIN
    )
    ax.set_title(
        texts.heat_panel_peak(name, peak_day, peak_hour, peak),
        loc="left",
        fontsize=LABEL_SIZE,
        color=INK,
        **PLAIN,
    )


def render_heatmap(data: WeekHourHeatmap) -> bytes:
    """Weekday × hour of client messages and, below, of refusals: where demand meets no free slot."""
    title, caption = texts.HEATMAP_TITLE, period_caption(data.period)
    if data.is_empty:
        return _no_data(title, caption)
    figure = _figure()
    _title(figure, title, caption)
    (demand_name, demand_unit), (refusals_name, refusals_unit) = texts.HEATMAP_PANELS
    panels = (
        (0.555, data.demand, "Blues", demand_name, demand_unit),
        (0.11, data.refusals, "Oranges", refusals_name, refusals_unit),
    )
    for bottom, grid, colours, name, unit in panels:
        # Room on the right for the colour bar's four-digit labels and its title.
        ax = figure.add_axes((0.06, bottom, 0.81, 0.31))
        colour_bar = figure.add_axes((0.885, bottom, 0.018, 0.31))
        _heat_panel(figure, ax, colour_bar, grid, colours, name, unit)
    ax.text(
        0.5,
        -0.17,
        texts.HEATMAP_AXIS,
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=LABEL_SIZE,
        color=INK,
        **PLAIN,
    )
    return _png(figure)


def _lane(event: str) -> tuple[str, str, str, str]:
    return next((lane for lane in JOURNEY_LANES if lane[0] == event), OTHER_LANE)


def _time_axis(moments: Sequence[datetime]) -> list[float]:
    """Matplotlib date numbers of the local wall-clock times, labelled later as they are (zone UTC)."""
    from matplotlib.dates import date2num

    naive = [moment.replace(tzinfo=None) for moment in moments]
    return [float(x) for x in date2num(naive)]  # type: ignore[no-untyped-call]


def render_client_journey(data: ClientJourney) -> bytes:
    """One client's events on a time axis, one lane per event type; refusals show their reason."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    title = texts.journey_title(plain_text(data.name or "", 40), data.client_id)
    if data.is_empty:
        return _no_data(title, "")
    figure = _figure()
    _title(figure, title, "")
    left, bottom, width, height = 0.17, 0.2, 0.79, 0.67
    ax = figure.add_axes((left, bottom, width, height))
    _style(ax)
    first, last = data.events[0].at, data.events[-1].at
    low, high = _time_axis([first, last])
    # Half an hour either side of a journey shorter than a minute, else a 4 % margin.
    pad = (high - low) * 0.04 if last - first >= timedelta(minutes=1) else 1 / 48
    x_min, x_max = low - pad, high + pad
    lanes = [
        lane for lane in (*JOURNEY_LANES, OTHER_LANE) if any(_lane(e.event) == lane for e in data.events)
    ]
    # Limits first: an annotation outside them measures as empty, and _fit would not shorten it.
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    for y, lane in enumerate(reversed(lanes)):
        _, label, colour, marker = lane
        events = [e for e in data.events if _lane(e.event) == lane]
        when = _time_axis([e.at for e in events])
        ax.scatter(
            when,
            [y] * len(events),
            s=140,
            marker=marker,
            color=colour,
            edgecolor="white",
            zorder=3,
            label=label,
        )
        for event, x in zip(events, when, strict=True):
            if event.detail:
                # A reason runs towards the wider side and is shortened to the room left on it.
                share = (x - x_min) / (x_max - x_min)
                leftward = share > 0.5
                reason = ax.annotate(
                    plain_text(event.detail, 60),
                    (x, y),
                    xytext=(-8 if leftward else 8, 10),
                    textcoords="offset points",
                    ha="right" if leftward else "left",
                    fontsize=12,
                    color=colour,
                    **PLAIN,
                )
                _fit(reason, (share if leftward else 1 - share) * width * WIDTH_PX - 24)
    ax.set_yticks(range(len(lanes)), [label for _, label, _, _ in reversed(lanes)], **PLAIN)
    ax.grid(axis="y", color=GRID)
    ax.grid(axis="x", color=GRID, linestyle=":")
    # matplotlib.dates has no annotations yet, hence the ignores below.
    locator = AutoDateLocator(tz=UTC, minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        ConciseDateFormatter(  # type: ignore[no-untyped-call]
            locator,
            tz=UTC,
            formats=["%Y", "%d.%m", "%d.%m", "%H:%M", "%H:%M", "%S"],
            zero_formats=["", "%Y", "%d.%m", "%d.%m", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "%m.%Y", "%d.%m.%Y", "%d.%m.%Y", "%d.%m.%Y %H:%M"],
        )
    )
    ax.xaxis.get_offset_text().set_fontsize(12)
    count = len(data.events)
    ax.set_title(
        texts.journey_subtitle(count, first, last),
        loc="left",
        fontsize=LABEL_SIZE,
        color=MUTED,
        **PLAIN,
    )
    handles, labels = ax.get_legend_handles_labels()
    rows = math.ceil(len(lanes) / 4)
    legend = figure.legend(
        handles[::-1],
        labels[::-1],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=math.ceil(len(lanes) / rows),
        fontsize=12,
        frameon=False,
    )
    for text in legend.get_texts():
        text.set_parse_math(False)
    return _png(figure)
