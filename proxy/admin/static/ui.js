// The /ui page of the kafka-chaos-proxy admin API: groups, the live timeline of one group,
// fault rules (enable, disable, delete, add) and connections.
//
// Why it is this small: the timeline is the server's SVG (/ui/timeline/GROUP.svg, the same
// renderer as the CLI and the matrix evidence); this script only fetches it again when the
// event stream says the group moved. Every request goes to this origin with the admin token,
// if one is set, as `Authorization: Bearer` (kept in sessionStorage: this tab only). The
// event stream is read with fetch(), not EventSource, because EventSource cannot send that
// header and a token in a URL would end up in logs and history.
"use strict";

const TOKEN_KEY = "kcp-admin-token";
const POLL_MS = 2000;
const REFRESH_MIN_MS = 300;
const RECONNECT_MS = 2000;
const ACTIONS = ["error", "error_after_forward", "drop_request", "drop_response", "delay",
                 "close", "throttle", "hold"];

const state = { group: null, stream: null, refreshing: false, dirty: false, lastRefresh: 0,
                events: 0 };

const $ = (sel) => document.querySelector(sel);

class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

function needToken() {
  $("#token-form").classList.remove("hidden");
  setStatus("the proxy wants its admin token");
}

async function api(method, path, body) {
  // POST must say JSON even without a body (the API's CSRF guard).
  const json = method !== "GET" && method !== "DELETE";
  const init = { method, headers: authHeaders(json ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (response.status === 401) needToken();
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch (e) { parsed = null; }
    const message = parsed && (parsed.message || (typeof parsed.detail === "string" && parsed.detail));
    throw new ApiError(response.status, parsed, message || response.statusText);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function setStatus(text) { $("#status").textContent = text; }

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
  return td;
}

function fill(tbody, items, render) {
  tbody.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    render(row, item);
    tbody.appendChild(row);
  }
}

// ------------------------------------------------------------------ groups

async function loadGroups() {
  const groups = await api("GET", "/groups");
  fill($("#groups tbody"), groups, (row, g) => {
    row.dataset.group = g.group_id;
    if (g.group_id === state.group) row.classList.add("selected");
    for (const v of [g.group_id, g.kind, g.state, g.generation, g.member_count,
                     g.rebalance_count, g.last_error]) cell(row, v);
    row.addEventListener("click", () => selectGroup(g.group_id));
  });
}

function selectGroup(group) {
  if (state.group === group) return;
  state.group = group;
  history.replaceState(null, "", "#group=" + encodeURIComponent(group));
  $("#timeline-group").textContent = group;
  for (const row of document.querySelectorAll("#groups tbody tr")) {
    row.classList.toggle("selected", row.dataset.group === group);
  }
  $("#timeline").replaceChildren();
  state.events = 0;
  follow(group);
  scheduleTimeline();
}

// ------------------------------------------------------------------ timeline

function scheduleTimeline() {
  if (state.refreshing) { state.dirty = true; return; }
  const wait = Math.max(0, state.lastRefresh + REFRESH_MIN_MS - Date.now());
  state.refreshing = true;
  setTimeout(refreshTimeline, wait);
}

async function refreshTimeline() {
  const group = state.group;
  try {
    if (group === null) return;
    const text = await api("GET", "/ui/timeline/" + encodeURIComponent(group) + ".svg");
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    if (group === state.group && svg.nodeName === "svg") {
      $("#timeline").replaceChildren(document.importNode(svg, true));
    }
  } catch (e) {
    setStatus("timeline: " + e.message);
  } finally {
    state.lastRefresh = Date.now();
    state.refreshing = false;
    if (state.dirty) { state.dirty = false; scheduleTimeline(); }
  }
}

function showSpan(event) {
  const target = event.target.closest(".span, .rule-mark, .assign, .gen");
  if (!target) return;
  const title = target.querySelector("title");
  $("#span-detail").textContent = title ? title.textContent : "";
}

// The event stream of one group, read with fetch so the token goes in a header.
async function follow(group) {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  const url = "/events/stream?group=" + encodeURIComponent(group);
  while (!controller.signal.aborted) {
    try {
      const response = await fetch(url, { headers: authHeaders({ Accept: "text/event-stream" }),
                                          signal: controller.signal });
      if (response.status === 401) { needToken(); throw new Error("unauthorized"); }
      if (!response.ok || !response.body) throw new Error("stream: HTTP " + response.status);
      $("#live").textContent = "live";
      await readStream(response.body.getReader(), group);
    } catch (e) {
      if (controller.signal.aborted) return;
      $("#live").textContent = "reconnecting…";
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

async function readStream(reader, group) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (/^event: coordination$/m.test(message) && group === state.group) {
        state.events += 1;
        $("#live").textContent = "live: " + state.events + " new events";
        scheduleTimeline();
      }
      end = buffer.indexOf("\n\n");
    }
    if (buffer.length > 1 << 20) buffer = "";  // never hold more than one huge message
  }
}

// ------------------------------------------------------------------ rules

function describeMatch(match) {
  const parts = [];
  for (const [key, value] of Object.entries(match || {})) {
    if (value === null || value === false || (Array.isArray(value) && !value.length)) continue;
    parts.push(key + "=" + (Array.isArray(value) ? value.join(",") : value));
  }
  return parts.join(" ");
}

function describeAction(action) {
  const extra = Object.entries(action).filter(([k, v]) => k !== "type" && v !== null)
    .map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v));
  return [action.type, ...extra].join(" ");
}

function ruleButton(row, label, handler) {
  const button = document.createElement("button");
  button.textContent = label;
  button.dataset.action = label;
  button.addEventListener("click", async () => {
    try { await handler(); } catch (e) { setStatus(label + ": " + e.message); }
    await loadRules();
  });
  row.lastChild.appendChild(button);
}

async function loadRules() {
  const rules = await api("GET", "/faults");
  fill($("#rules tbody"), rules, (row, r) => {
    row.dataset.rule = r.id;
    for (const v of [r.id, r.enabled ? "yes" : "no", describeMatch(r.match),
                     describeAction(r.action), r.stats.matched, r.stats.injected]) cell(row, v);
    cell(row, "");
    const path = "/faults/" + encodeURIComponent(r.id);
    ruleButton(row, r.enabled ? "disable" : "enable",
               () => api("POST", path + (r.enabled ? "/disable" : "/enable")));
    ruleButton(row, "delete", () => api("DELETE", path));
  });
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] = node[key] || {};
  node[keys[keys.length - 1]] = value;
}

function ruleFromForm(form) {
  const rule = {};
  for (const input of form.querySelectorAll("input, select")) {
    const raw = input.value.trim();
    if (!raw) continue;
    let value = raw;
    if (input.name === "match.apis") value = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else if (input.inputMode === "numeric" && /^-?\d+$/.test(raw)) value = Number(raw);
    setPath(rule, input.name, value);  // anything else goes as typed: the API says what is wrong
  }
  return rule;
}

// A 422's `loc` as the form names it: no "body", no discriminator tag (action.delay.x).
function fieldOf(loc) {
  const parts = (loc || []).map(String);
  if (parts[0] === "body") parts.shift();
  if (parts[0] === "action" && ACTIONS.includes(parts[1])) parts.splice(1, 1);
  return parts.join(".");
}

function showErrors(form, error) {
  const general = [];
  const detail = error.body && Array.isArray(error.body.detail) ? error.body.detail : [];
  for (const item of detail) {
    const name = fieldOf(item.loc);
    let box = null;
    for (let n = name; n && !box; n = n.slice(0, Math.max(n.lastIndexOf("."), 0))) {
      box = form.querySelector('[data-field="' + CSS.escape(n) + '"] .err');
    }
    const msg = String(item.msg || "").replace(/^Value error, /, "");
    if (box) box.textContent = (box.textContent ? box.textContent + "; " : "") + msg;
    else general.push((name ? name + ": " : "") + msg);
  }
  if (!detail.length) general.push(error.message);
  $("#rule-form-error").textContent = general.join("; ");
}

async function submitRule(event) {
  event.preventDefault();
  const form = event.target;
  for (const box of form.querySelectorAll(".err")) box.textContent = "";
  try {
    const added = await api("POST", "/faults", ruleFromForm(form));
    $("#rule-form-error").textContent = "added " + added.id;
    form.reset();
  } catch (e) {
    if (e instanceof ApiError) showErrors(form, e); else throw e;
  }
  await loadRules();
}

// ------------------------------------------------------------------ connections

async function loadConnections() {
  const connections = await api("GET", "/connections");
  fill($("#connections tbody"), connections, (row, c) => {
    for (const v of [c.id, c.client, c.node_id, c.broker, c.requests, c.pending_responses,
                     (c.bytes_in || 0) + " / " + (c.bytes_out || 0)]) cell(row, v);
  });
}

// ------------------------------------------------------------------ start

async function poll() {
  try {
    await Promise.all([loadGroups(), loadRules(), loadConnections()]);
    setStatus("connected, " + new Date().toLocaleTimeString());
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) setStatus("admin API: " + e.message);
  }
}

function start() {
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#token").value = "";
    $("#token-form").classList.add("hidden");
    poll();
    if (state.group !== null) { const g = state.group; state.group = null; selectGroup(g); }
  });
  $("#rule-form").addEventListener("submit", submitRule);
  $("#timeline").addEventListener("click", showSpan);
  const wanted = /^#group=(.+)$/.exec(location.hash);
  if (wanted) selectGroup(decodeURIComponent(wanted[1]));
  poll();
  setInterval(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", start);
