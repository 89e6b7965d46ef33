// The fleet dashboard: polls GET /v1/dashboard every 2 s and draws it. Every
// action goes through the public API (retry or discard a dead letter, cancel
// a queued job), with the token kept in this browser like the web page's.
// Text from the server is only ever set as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 2000;
const tokenInput = $("token");

tokenInput.value = localStorage.getItem("verdict-token") || "";
tokenInput.addEventListener("change", () => {
  localStorage.setItem("verdict-token", tokenInput.value.trim());
  refresh();
});

function headers() {
  const token = tokenInput.value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// Seconds as people read them: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min.
function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function ago(atMs, nowMs) {
  return `${duration(Math.max(0, nowMs - atMs) / 1000)} ago`;
}

async function failure(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${body.error.code}: ${body.error.message}`;
  } catch (_) { /* not JSON */ }
  return `HTTP ${response.status}`;
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

let lastSnapshot = null;

async function refresh() {
  let response;
  try {
    response = await fetch("/v1/dashboard", { headers: headers(), cache: "no-store" });
  } catch (_) {
    $("updated").textContent = "The api does not answer: is the fleet up?";
    return;
  }
  if (response.status === 401) {
    $("token-box").open = true;
    $("updated").textContent = "This server asks for a token: enter it under API token.";
    return;
  }
  if (!response.ok) {
    $("updated").textContent = `No snapshot: ${await failure(response)}`;
    return;
  }
  const data = await response.json();
  lastSnapshot = data;
  draw(data);
  $("updated").textContent = `Updated ${new Date(data.at_ms).toLocaleTimeString()}.`;
}

function draw(data) {
  const q = data.queue;
  const recent = data.minutes.slice(-5);
  const ended = recent.reduce((n, m) => n + m.done + m.failed, 0);
  const p95s = recent.map((m) => m.end_to_end_p95_s).filter((x) => x != null);
  $("tile-workers").textContent = String(data.workers.length);
  $("tile-workers").classList.toggle("alert", data.workers.length === 0);
  $("tile-queued").textContent = String(q.queued);
  $("tile-in-flight").textContent = String(q.in_flight);
  $("tile-dead").textContent = String(q.dead);
  $("tile-dead").classList.toggle("alert", q.dead > 0);
  $("tile-throughput").textContent = String(ended);
  $("tile-latency").textContent = p95s.length ? duration(Math.max(...p95s)) : "–";

  chart($("chart-queue"), data.minutes, [
    { name: "waiting", color: "#0969da", value: (m) => m.queued_max },
    { name: "in flight", color: "#8250df", value: (m) => m.in_flight_max },
  ], (v) => String(Math.round(v)), "jobs");
  chart($("chart-throughput"), data.minutes, [
    { name: "done", color: "#1a7f37", value: (m) => m.done },
    { name: "failed", color: "#cf222e", value: (m) => m.failed },
  ], (v) => String(Math.round(v)), "jobs a minute");
  chart($("chart-latency"), data.minutes, [
    { name: "median", color: "#1a7f37", value: (m) => m.end_to_end_p50_s },
    { name: "p95", color: "#9a6700", value: (m) => m.end_to_end_p95_s },
  ], duration, "");

  workers(data);
  queued(data);
  dead(data);
  failures(data);
}

// A line chart of the last hour, one line per series; a minute without a
// value (no sample, no job) is a gap. Screen readers get a summary.
function chart(box, minutes, series, format, unit) {
  // Drawn at the box's own width, so that text keeps its shape.
  const width = Math.max(240, Math.round(box.clientWidth || 600));
  const height = 120, left = 4, right = 4, top = 14, bottom = 14;
  const values = series.flatMap((s) => minutes.map(s.value)).filter((v) => v != null);
  const max = Math.max(1e-9, ...values);
  const x = (i) => left + (i * (width - left - right)) / Math.max(1, minutes.length - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const latest = series.map((s) => {
    const last = [...minutes].reverse().map(s.value).find((v) => v != null);
    return `${s.name} ${last == null ? "none" : format(last)}`;
  });
  root.setAttribute("aria-label",
    values.length ? `Largest ${format(Math.max(...values))} ${unit}; latest: ${latest.join(", ")}` : "No data in the last hour");
  root.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }));
  const maxLabel = svg("text", { x: left, y: 10, class: "label" });
  maxLabel.textContent = values.length ? `${format(max)} ${unit}`.trim() : "no data yet";
  root.append(maxLabel);
  for (const [text, anchor, at] of [["60 min ago", "start", left], ["now", "end", width - right]]) {
    const label = svg("text", { x: at, y: height - 2, class: "label", "text-anchor": anchor });
    label.textContent = text;
    root.append(label);
  }
  for (const s of series) {
    let d = "";
    let pen = false;
    minutes.forEach((m, i) => {
      const v = s.value(m);
      if (v == null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    if (d) root.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 2 }));
    minutes.forEach((m, i) => {
      const v = s.value(m);
      if (v != null) root.append(svg("circle", { cx: x(i), cy: y(v), r: 2, fill: s.color }));
    });
  }
  const legend = el("div", { class: "legend", "aria-hidden": "true" },
    ...series.map((s) => el("span", { style: `--swatch: ${s.color}`, text: s.name })));
  box.replaceChildren(root, legend);
}

function rows(table, items, row, emptyText) {
  const body = table.tBodies[0];
  const columns = table.tHead.rows[0].cells.length;
  if (!items.length) {
    body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: columns, text: emptyText })));
    return;
  }
  body.replaceChildren(...items.map(row));
}

function jobLink(id) {
  return el("a", { href: `/v1/jobs/${encodeURIComponent(id)}` }, el("code", { text: id }));
}

function workers(data) {
  rows($("workers"), data.workers, (w) => el("tr", {},
    el("td", {}, el("code", { text: w.name })),
    el("td", { text: `${w.host} (pid ${w.pid})` }),
    el("td", {}, el("span", { class: `state state-${w.state}`, text: w.state })),
    el("td", {}, w.current_job ? jobLink(w.current_job) : "–"),
    el("td", { class: "num", text: String(w.jobs_done) }),
    el("td", { class: "num", text: `${duration(w.heartbeat_age_s)} ago` }),
    el("td", { class: "num", text: duration(w.uptime_s) }),
  ), "No worker is running: queued jobs wait until one starts (fleet scale N, or fleet status to see why).");
}

function queued(data) {
  rows($("queued"), data.queued_jobs, (j) => el("tr", {},
    el("td", {}, jobLink(j.job)),
    el("td", { class: "num", text: duration(Math.max(0, data.at_ms - j.queued_ms) / 1000) }),
    el("td", {}, action("Cancel", `Cancel job ${j.job}`, "danger",
      () => act("POST", `/v1/jobs/${encodeURIComponent(j.job)}/cancel`, `Job ${j.job} cancelled.`))),
  ), "No job is waiting.");
}

function dead(data) {
  rows($("dead"), data.dead, (d) => el("tr", {},
    el("td", {}, jobLink(d.job)),
    el("td", {}, el("code", { text: d.last_error.code }), ` ${d.last_error.message}`),
    el("td", { class: "num", text: String(d.attempts) }),
    el("td", { text: ago(d.at_us / 1000, data.at_ms) }),
    el("td", {},
      action("Retry", `Retry job ${d.job}`, "secondary",
        () => act("POST", `/v1/dead/${encodeURIComponent(d.job)}/retry`, `Job ${d.job} queued again.`)),
      action("Discard", `Discard job ${d.job}`, "danger",
        () => act("DELETE", `/v1/dead/${encodeURIComponent(d.job)}`, `Job ${d.job} discarded.`))),
  ), "No dead letters.");
}

function failures(data) {
  rows($("failures"), data.recent_failures, (f) => el("tr", {},
    el("td", { text: ago(f.at_ms, data.at_ms) }),
    el("td", {}, jobLink(f.job)),
    el("td", {}, el("code", { text: f.code }), ` ${f.message}${f.dead_lettered ? " (dead-lettered)" : ""}`),
    el("td", {}, el("code", { text: f.worker })),
  ), "No job has failed lately.");
}

function action(text, label, style, onClick) {
  const button = el("button", { type: "button", class: style, "aria-label": label, text });
  button.addEventListener("click", async () => {
    button.disabled = true;
    await onClick();
  });
  return button;
}

async function act(method, path, done) {
  let response;
  try {
    response = await fetch(path, { method, headers: headers() });
  } catch (_) {
    showError("The api does not answer: nothing was changed.");
    return;
  }
  if (response.ok) {
    showError("");
    $("status").textContent = done;
  } else {
    showError(`Not done: ${await failure(response)}`);
  }
  await refresh();
}

refresh();
setInterval(refresh, REFRESH_MS);
