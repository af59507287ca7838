"""The desk's HTTP side (aiohttp, already there through Faust; pages through Jinja2, autoescaped).

Routes: ``/`` the queue; ``/api/alerts`` the queue as JSON (the page polls it, so new alerts
appear without a reload); ``/alerts/{id}`` one alert; ``POST /alerts/{id}/decision``;
``/alerts/{id}/case.html`` a self-contained case file; ``/queue.csv``. Scripts and styles come
from ``/static``; nothing is fetched from elsewhere.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from detectors.alert_store import RedisAlertStore
from detectors.errors import AlertNotFound, FeedbackError
from detectors.feedback import decide
from detectors.parcel_store import RedisParcelStore
from detectors.scoring import REASON_TEXT
from detectors.store import WindowStore
from streams.desk.charts import cumulative_chart, identity_graph
from streams.desk.index import SUMMARY_FIELDS, AlertIndex, Filters

CSV_FIELDS = ("alert_id", "status", *(f for f in SUMMARY_FIELDS if f != "alert_id"))


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _static(name: str) -> str:
    return resources.files("streams.desk").joinpath(f"static/{name}").read_text(encoding="utf-8")


class Desk:
    def __init__(
        self,
        alerts: RedisAlertStore,
        windows: WindowStore,
        parcels: RedisParcelStore,
        index: AlertIndex,
        suppress_days: float = 90.0,
    ) -> None:
        self.alerts, self.windows, self.parcels, self.index = alerts, windows, parcels, index
        self.suppress_days = suppress_days
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("streams.desk", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def render(self, name: str, **context: Any) -> web.Response:
        return web.Response(text=self.templates.get_template(name).render(**context), content_type="text/html")

    async def queue(self, request: web.Request) -> web.Response:
        await self.index.refresh()
        return self.render("queue.html", options=self.index.options(), filters=Filters.from_query(request.query))

    async def api_alerts(self, request: web.Request) -> web.Response:
        await self.index.refresh()
        kept = self.index.query(Filters.from_query(request.query))
        try:
            limit = min(max(int(request.query.get("limit") or 500), 1), 5000)
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be a whole number of alerts") from None
        return web.json_response(
            {
                "total": len(kept),
                "counts": self.index.counts(kept),
                "alerts": kept[:limit],
                "options": self.index.options(),
            }
        )

    async def queue_csv(self, request: web.Request) -> web.Response:
        await self.index.refresh()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for summary in self.index.query(Filters.from_query(request.query)):
            # A cell that starts like a formula would run in a spreadsheet: parcel data is not trusted.
            writer.writerow({k: _cell(summary.get(k)) for k in CSV_FIELDS})
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="parcelwatch-queue.csv"'},
        )

    async def _context(self, alert_id: str) -> dict[str, Any]:
        try:
            alert = await self.alerts.get(alert_id)
        except AlertNotFound as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        await self.index.refresh()
        evidence = alert.get("evidence", [])
        details = await self.parcels.get_many([e["parcel_id"] for e in evidence])
        rows = []
        for e in sorted(evidence, key=lambda e: e["event_time"]):
            d = details.get(e["parcel_id"], {})
            rows.append(
                {
                    "parcel_id": e["parcel_id"],
                    "time": e["event_time"].replace("T", " ")[:16],
                    "courier": d.get("courier", ""),
                    "channel": d.get("channel", ""),
                    "goods": d.get("goods", ""),
                    "declared": d.get("declared_weight_kg"),
                    "measured": d.get("measured_weight_kg"),
                    "density": d.get("density_g_cm3"),
                    "destination": d.get("destination", ""),
                    "mass": e["suspect_mass_kg"],
                    "reasons": e["reasons"],
                }
            )
        points = [
            (
                int(datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")).timestamp() * 1000),
                e["suspect_mass_kg"],
                e["parcel_id"],
            )
            for e in evidence
        ]
        return {
            "alert": alert,
            "rows": rows,
            # The SVG builders escape every string they take from the data (charts.py).
            "chart": Markup(cumulative_chart(points, float(alert.get("threshold_kg") or 0))),  # noqa: S704
            "graph": Markup(identity_graph(list(details.values()))),  # noqa: S704
            "episodes": self.index.episodes(alert["rule"], alert["entity_type"], alert["entity_key"]),
            "reason_text": REASON_TEXT,
            "decided_at": {d["at_ms"]: _iso_ms(d["at_ms"]) for d in alert["decisions"]},
            "shown_parcels": len(evidence),
        }

    async def alert_page(self, request: web.Request) -> web.Response:
        return self.render("alert.html", **await self._context(request.match_info["alert_id"]))

    async def case_file(self, request: web.Request) -> web.Response:
        context = await self._context(request.match_info["alert_id"])
        response = self.render(
            "case.html", css=_static("desk.css"), generated=_iso_ms(int(time.time() * 1000)), **context
        )
        response.headers["Content-Disposition"] = f'attachment; filename="case-{context["alert"]["alert_id"]}.html"'
        return response

    async def decision(self, request: web.Request) -> web.Response:
        alert_id = request.match_info["alert_id"]
        form = await request.post()
        try:
            await decide(
                self.alerts,
                self.windows,
                alert_id,
                str(form.get("decision", "")),
                str(form.get("analyst", "")),
                str(form.get("note", "")),
                now_ms=int(time.time() * 1000),
                suppress_for_s=int(self.suppress_days * 86400),
            )
        except AlertNotFound as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except FeedbackError as exc:
            raise web.HTTPBadRequest(text=f"{exc}; go back and correct it") from None
        await self.index.refresh(force=True)
        raise web.HTTPSeeOther(f"/alerts/{alert_id}")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    # Only our own scripts and styles; inline SVG is markup, not script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def build_app(desk: Desk) -> web.Application:
    app = web.Application(middlewares=[web.middleware(_security_headers)])
    app.router.add_get("/", desk.queue)
    app.router.add_get("/api/alerts", desk.api_alerts)
    app.router.add_get("/queue.csv", desk.queue_csv)
    app.router.add_get("/alerts/{alert_id}", desk.alert_page)
    app.router.add_get("/alerts/{alert_id}/case.html", desk.case_file)
    app.router.add_post("/alerts/{alert_id}/decision", desk.decision)
    app.router.add_static("/static", str(resources.files("streams.desk").joinpath("static")))
    return app
