"""Small SVG pictures for the alert page and the case file, drawn here so that nothing loads from outside.

Text inside them comes from parcel data, which an attacker controls: every string is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

TYPE_COLOURS = {
    "sender_phone": "#1f77b4",
    "sender_account": "#17becf",
    "sender_address": "#2ca02c",
    "pickup_point": "#ff7f0e",
    "recipient": "#d62728",
    "recipient_address": "#9467bd",
}


def _day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M")


def cumulative_chart(
    points: Sequence[tuple[int, float, str]], threshold_kg: float, width: int = 640, height: int = 260
) -> str:
    """Cumulative suspect mass over event time, one dot per parcel, against the rule's threshold.

    ``points``: (event time ms, suspect kg, parcel id), in any order.
    """
    ordered = sorted(points)
    if not ordered:
        return '<svg class="chart" role="img" aria-label="no parcels"></svg>'
    left, right, top, bottom = 56, 12, 12, 34
    t0, t1 = ordered[0][0], ordered[-1][0]
    span = max(t1 - t0, 1)
    total = sum(kg for _, kg, _ in ordered)
    ymax = max(total, threshold_kg) * 1.1 or 1.0

    def x(t: float) -> float:
        return left + (t - t0) / span * (width - left - right)

    def y(kg: float) -> float:
        return height - bottom - kg / ymax * (height - top - bottom)

    running, path, dots = 0.0, [f"M{x(t0):.1f},{y(0):.1f}"], []
    for t, kg, parcel in ordered:
        path.append(f"L{x(t):.1f},{y(running):.1f}")
        running += kg
        path.append(f"L{x(t):.1f},{y(running):.1f}")
        dots.append(
            f'<circle class="parcel" cx="{x(t):.1f}" cy="{y(running):.1f}" r="3.5">'
            f"<title>{escape(parcel)}: {kg:.2f} kg at {_day(t)}</title></circle>"
        )
    ty = y(threshold_kg)
    ticks = "".join(
        f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>' for v in (0, ymax / 2, ymax / 1.1)
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="cumulative suspect mass against the threshold" data-points="{len(ordered)}">'
        f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}"/>'
        f"{ticks}"
        f'<text x="{left}" y="{height - 10}">{_day(t0)}</text>'
        f'<text x="{width - right}" y="{height - 10}" text-anchor="end">{_day(t1)}</text>'
        f'<line class="threshold" x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}"/>'
        f'<text class="threshold-label" x="{width - right}" y="{ty - 4:.1f}" text-anchor="end">'
        f"threshold {threshold_kg:g} kg</text>"
        f'<path class="cumulative" d="{" ".join(path)}"/>'
        f"{''.join(dots)}</svg>"
    )


def identity_graph(parcels: Sequence[dict[str, Any]], max_nodes: int = 30, size: int = 420) -> str:
    """Identifiers of the evidence parcels, linked when one parcel names both; the most shared first."""
    weight: dict[tuple[str, str], int] = {}
    labels: dict[tuple[str, str], str] = {}
    edges: dict[tuple[tuple[str, str], tuple[str, str]], int] = {}
    for parcel in parcels:
        ids = sorted({(kind, key) for kind, key, _ in parcel.get("identifiers", [])})
        for kind, key, label in parcel.get("identifiers", []):
            weight[(kind, key)] = weight.get((kind, key), 0) + 1
            labels[(kind, key)] = label or f"{kind.replace('_', ' ')} {key[:8]}"
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                edges[(a, b)] = edges.get((a, b), 0) + 1
    nodes = sorted(weight, key=lambda n: (-weight[n], n))[:max_nodes]
    if not nodes:
        return '<svg class="graph" role="img" aria-label="no identifiers"></svg>'
    centre, radius = size / 2, size / 2 - 60
    where = {
        node: (
            centre + radius * math.cos(2 * math.pi * i / len(nodes)),
            centre + radius * math.sin(2 * math.pi * i / len(nodes)),
        )
        for i, node in enumerate(nodes)
    }
    lines = "".join(
        f'<line class="link" x1="{where[a][0]:.1f}" y1="{where[a][1]:.1f}" '
        f'x2="{where[b][0]:.1f}" y2="{where[b][1]:.1f}" '
        f'stroke-width="{min(1 + n / 2, 6):.1f}"><title>{n} parcels</title></line>'
        for (a, b), n in edges.items()
        if a in where and b in where
    )
    circles = "".join(
        f'<g class="node"><circle cx="{where[n][0]:.1f}" cy="{where[n][1]:.1f}" r="{min(5 + weight[n], 14)}" '
        f'fill="{TYPE_COLOURS.get(n[0], "#777")}"><title>{escape(labels[n])}: {weight[n]} parcels</title></circle>'
        f'<text x="{where[n][0]:.1f}" y="{where[n][1] - 16:.1f}" text-anchor="middle">'
        f"{escape(labels[n][:28])}</text></g>"
        for n in nodes
    )
    legend = "".join(
        f'<text x="8" y="{16 + 14 * i}" fill="{colour}">● {escape(kind.replace("_", " "))}</text>'
        for i, (kind, colour) in enumerate(TYPE_COLOURS.items())
    )
    return (
        f'<svg class="graph" viewBox="0 0 {size} {size}" role="img" data-nodes="{len(nodes)}" '
        f'aria-label="identifiers shared by the evidence parcels">{lines}{circles}{legend}</svg>'
    )
