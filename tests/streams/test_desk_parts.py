"""The desk's pieces without a browser: hostile parcel data stays text, the queue filters and sorts."""

from __future__ import annotations

from streams.desk.charts import cumulative_chart, identity_graph
from streams.desk.index import AlertIndex, Filters
from streams.desk.server import _cell


def test_parcel_data_never_becomes_markup_in_the_pictures() -> None:
    hostile = '<script>alert(1)</script>"'
    chart = cumulative_chart([(1_000, 2.0, hostile), (2_000, 3.0, "ok")], 4.0)
    assert "<script>" not in chart and "&lt;script&gt;" in chart and 'data-points="2"' in chart
    graph = identity_graph([{"identifiers": [["sender_phone", "k1", hostile], ["recipient", "k2", None]]}])
    assert "<script>" not in graph and 'data-nodes="2"' in graph


def test_csv_cells_that_look_like_formulas_are_quoted() -> None:
    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _cell("+1") == "'+1" and _cell("plain") == "plain" and _cell(3.5) == 3.5


def test_the_queue_puts_the_most_severe_then_the_newest_first_and_filters() -> None:
    index = AlertIndex(client=None)

    def summary(i: str, severity: str, when: str, status: str = "new") -> dict[str, object]:
        return {"alert_id": i, "rule": "r", "severity": severity, "entity_type": "cluster", "entity_key": "k",
                "episode": 1, "last_event_time": when, "status": status}  # fmt: skip

    index.summaries = {
        "a": summary("a", "medium", "2026-09-03T00:00:00Z"),
        "b": summary("b", "critical", "2026-09-01T00:00:00Z"),
        "c": summary("c", "medium", "2026-09-05T00:00:00Z", "false_positive"),
    }
    assert [s["alert_id"] for s in index.query(Filters())] == ["b", "c", "a"]
    assert [s["alert_id"] for s in index.query(Filters(status="new", date_from="2026-09-02"))] == ["a"]
    assert index.counts(index.query(Filters()))["status"] == {"new": 2, "false_positive": 1}
