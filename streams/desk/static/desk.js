// parcelwatch desk: the queue polls /api/alerts (new alerts appear without a reload); the alert
// page remembers the analyst's name. No framework, nothing loaded from elsewhere.
"use strict";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;  // textContent: parcel data never becomes markup
  return node;
}

function filterQuery() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) params.set(k, v);
  return params;
}

// When this page first saw each alert (0: it was there when the page opened). An alert that came
// while the page was open stays marked fresh for a minute, not only until the next refresh.
let firstSeen = null;
const FRESH_MS = 60000;

// A pseudonym, shortened; a cluster's key names its root identifier as "type:pseudonym".
function shortKey(key) {
  const cut = key.lastIndexOf(":");
  return cut < 0 ? key.slice(0, 12) : `${key.slice(0, cut).replaceAll("_", " ")} ${key.slice(cut + 1, cut + 9)}`;
}

function renderQueue(data) {
  const counts = document.getElementById("counts");
  counts.replaceChildren();
  counts.append(el("span", {class: "total", id: "count-total"}, `${data.total} alerts`));
  for (const status of ["new", "confirmed", "false_positive"]) {
    counts.append(el("span", {class: "count status-" + status, id: "count-" + status},
      `${status.replace("_", " ")}: ${data.counts.status[status] || 0}`));
  }
  for (const sev of ["critical", "high", "medium", "low"]) {
    if (data.counts.severity[sev]) counts.append(el("span", {class: "count sev-" + sev}, `${sev}: ${data.counts.severity[sev]}`));
  }
  const body = document.querySelector("#queue tbody");
  body.replaceChildren();
  const now = Date.now();
  const opened = firstSeen !== null;
  firstSeen = firstSeen || new Map();
  for (const a of data.alerts) {
    if (!firstSeen.has(a.alert_id)) firstSeen.set(a.alert_id, opened ? now : 0);
    const fresh = now - firstSeen.get(a.alert_id) < FRESH_MS;
    const row = el("tr", {"data-alert-id": a.alert_id, class: fresh ? "fresh" : ""});
    const sev = el("td"); sev.append(el("span", {class: "sev sev-" + a.severity}, a.severity)); row.append(sev);
    const rule = el("td"); rule.append(el("a", {href: "/alerts/" + a.alert_id, class: "open"}, a.rule)); row.append(rule);
    row.append(el("td", {}, `${a.entity_type.replaceAll("_", " ")}: ${a.entity_label || shortKey(a.entity_key)}`));
    row.append(el("td", {class: "num"}, a.episode));
    row.append(el("td", {class: "num"}, a.parcel_count));
    row.append(el("td", {class: "num"}, Number(a.suspect_mass_kg).toFixed(1)));
    row.append(el("td", {}, a.last_event_time.replace("T", " ").slice(0, 16)));
    row.append(el("td", {class: "status-" + a.status}, a.status.replace("_", " ")));
    body.append(row);
  }
  document.getElementById("more").textContent =
    data.total > data.alerts.length ? `showing ${data.alerts.length} of ${data.total}; narrow the filters` : "";
  document.getElementById("csv").setAttribute("href", "/queue.csv?" + filterQuery().toString());
}

async function refreshQueue() {
  const params = filterQuery();
  const response = await fetch("/api/alerts?" + params.toString());
  if (response.ok) renderQueue(await response.json());
}

function startQueue() {
  const form = document.getElementById("filters");
  form.addEventListener("change", () => {
    history.replaceState(null, "", "/?" + filterQuery().toString());
    refreshQueue();
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  refreshQueue();
  setInterval(refreshQueue, 3000);
}

function startAlert() {
  const analyst = document.getElementById("analyst");
  if (!analyst) return;
  analyst.value = localStorage.getItem("parcelwatch.analyst") || "";
  document.getElementById("decide").addEventListener("submit", () => {
    localStorage.setItem("parcelwatch.analyst", analyst.value);
  });
}

if (document.getElementById("queue")) startQueue();
startAlert();
