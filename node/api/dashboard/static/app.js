// p2pshare dashboard: polls the daemon's API every second and renders it.
//
// The token comes from the fragment of the login link printed by
// `p2pshare dashboard` (#token=...), which browsers never send to the
// server; it is kept in sessionStorage (this tab only) and sent as
// "Authorization: Bearer" with every API call. Nothing from the API is ever
// inserted as HTML: every value goes in through textContent.
"use strict";

const API = "/api/v1/";
const TOKEN_KEY = "p2pshare-token";
const REFRESH_MS = 1000;

function takeToken() {
  const frag = new URLSearchParams(location.hash.replace(/^#/, ""));
  const t = frag.get("token");
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    // Drop the token from the address bar and the history.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

let token = "";
let selfID = "";

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body, headers) {
  const h = Object.assign({ Authorization: "Bearer " + token }, headers || {});
  const resp = await fetch(API + path, { method, headers: h, body, cache: "no-store", credentials: "omit" });
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try {
      const e = await resp.json();
      if (e && e.error) msg = e.error;
    } catch (_) { /* not JSON */ }
    throw new APIError(resp.status, msg);
  }
  return resp;
}

async function getJSON(path) {
  return (await call("GET", path)).json();
}

// el makes an element with text (or child nodes) and attributes.
function el(tag, content, attrs) {
  const e = document.createElement(tag);
  if (content instanceof Node) e.appendChild(content);
  else if (Array.isArray(content)) content.forEach((c) => e.appendChild(c instanceof Node ? c : document.createTextNode(String(c))));
  else if (content !== undefined && content !== null) e.textContent = String(content);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e.setAttribute(k, v);
  }
  return e;
}

function shortID(id) {
  if (!id) return "";
  return id.length > 16 ? id.slice(0, 8) + "…" + id.slice(-6) : id;
}

function peerCell(id) {
  const c = el("code", shortID(id), { title: id, class: "peer" });
  if (id === selfID) c.classList.add("self");
  return el("td", c);
}

function bytes(n) {
  if (n < 0) return "?";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}

function rtt(ms) {
  return ms > 0 ? ms.toFixed(2) + " ms" : "–";
}

function ago(ts) {
  if (!ts) return "";
  const d = (Date.now() - Date.parse(ts)) / 1000;
  if (!isFinite(d)) return ts;
  if (d < 1) return "now";
  if (d < 60) return Math.floor(d) + " s ago";
  if (d < 3600) return Math.floor(d / 60) + " min ago";
  if (d < 86400) return Math.floor(d / 3600) + " h ago";
  return new Date(ts).toLocaleString();
}

function fill(tableID, rows, empty) {
  const tbody = document.querySelector("#" + tableID + " tbody");
  const cols = document.querySelectorAll("#" + tableID + " thead th").length;
  const frag = document.createDocumentFragment();
  if (rows.length === 0) frag.appendChild(el("tr", el("td", empty, { colspan: String(cols), class: "empty" })));
  rows.forEach((r) => frag.appendChild(r));
  tbody.replaceChildren(frag);
  const count = document.getElementById(tableID + "-count");
  if (count) count.textContent = "(" + rows.length + ")";
}

function stateBadge(state) {
  return el("span", state, { class: "state state-" + state });
}

// offset renders how far a member's clock is ahead of this node's.
function offset(ms) {
  if (ms === undefined || ms === null) return "";
  const sign = ms > 0 ? "+" : ms < 0 ? "-" : "";
  const a = Math.abs(ms);
  if (a >= 60000) return sign + (a / 60000).toFixed(1) + " min";
  if (a >= 1000) return sign + (a / 1000).toFixed(1) + " s";
  return sign + a.toFixed(1) + " ms";
}

function renderMembers(members) {
  const order = { alive: 0, suspect: 1, dead: 2, left: 3 };
  members.sort((a, b) => (b.self ? 1 : 0) - (a.self ? 1 : 0) || (order[a.state] ?? 9) - (order[b.state] ?? 9) || a.id.localeCompare(b.id));
  fill("members", members.map((m) => {
    const peer = peerCell(m.id);
    if (m.self) peer.appendChild(el("span", " (this node)", { class: "note" }));
    return el("tr", [
      peer,
      el("td", stateBadge(m.state)),
      el("td", ago(m.since), { title: m.since }),
      el("td", m.self ? "" : rtt(m.rtt_ms)),
      el("td", m.self ? "" : offset(m.offset_ms), { class: Math.abs(m.offset_ms || 0) > 30000 ? "clock-off" : "" }),
      el("td", m.files),
      el("td", m.free_bytes > 0 ? bytes(m.free_bytes) : ""),
    ], { "data-peer": m.id, "data-state": m.state });
  }), "no members");
}

function renderPeers(peers) {
  peers.sort((a, b) => a.id.localeCompare(b.id));
  fill("peers", peers.map((p) => el("tr", [
    peerCell(p.id),
    el("td", rtt(p.rtt_ms)),
    el("td", p.via || "", { title: p.relay ? "through relay " + p.relay : "" }),
    el("td", el("code", (p.addrs || [])[0] || ""), { title: (p.addrs || []).join("\n") }),
  ], { "data-peer": p.id })), "no connected peers");
}

function renderCatalog(entries) {
  fill("catalog", entries.map((e) => {
    const holders = el("td", null, { class: "holders" });
    (e.holders || []).forEach((h) => {
      const span = el("span", null, { class: "holder", "data-peer": h.peer, "data-state": h.state || "" });
      span.appendChild(el("code", shortID(h.peer), { title: h.peer + (h.custody_for ? " (in custody for " + h.custody_for + ")" : "") }));
      span.appendChild(stateBadge(h.state || "unknown"));
      if (h.custody_for) span.appendChild(el("span", "custody", { class: "note" }));
      holders.appendChild(span);
    });
    const btn = el("button", "Download", { type: "button", class: "download" });
    btn.addEventListener("click", () => download(e.name, btn));
    return el("tr", [
      el("td", e.name, { class: "name" }),
      el("td", bytes(e.size)),
      el("td", el("code", shortID(e.cid), { title: e.cid })),
      peerCell(e.publisher),
      holders,
      el("td", btn),
    ], { "data-name": e.name, "data-cid": e.cid });
  }), "nothing shared yet");
}

function renderKV(entries) {
  fill("kv", entries.map((e) => {
    const v = e.value_base64 ? "(" + e.size + " bytes of binary)" : e.value;
    return el("tr", [
      el("td", el("code", e.key)),
      el("td", v.length > 120 ? v.slice(0, 120) + "…" : v, { title: e.value_base64 ? "" : v, class: "value" }),
      peerCell(e.writer),
      el("td", ago(e.time), { title: e.time }),
      el("td", e.expires ? new Date(e.expires).toLocaleString() : "never"),
    ], { "data-key": e.key });
  }), "no keys");
}

function renderTransfers(transfers) {
  fill("transfers", transfers.map((t) => {
    const pct = t.total > 0 ? Math.min(100, (100 * t.done) / t.total) : 0;
    const bar = el("progress", null, { max: "100", value: String(pct) });
    const label = bytes(t.done) + (t.total >= 0 ? " / " + bytes(t.total) : "");
    return el("tr", [
      el("td", t.kind),
      el("td", t.ref, { class: "name" }),
      el("td", [bar, " " + label]),
      t.peer ? peerCell(t.peer) : el("td", ""),
      el("td", t.seconds.toFixed(1) + " s"),
    ], { "data-id": t.id });
  }), "none");
}

function renderStats(stats, id) {
  const t = stats.total || {};
  const box = document.getElementById("traffic");
  const item = (label, value) => el("span", [el("span", label, { class: "label" }), " " + value]);
  box.replaceChildren(
    item("uptime", Math.floor(stats.uptime_s) + " s"),
    item("in", bytes(t.in_bytes || 0) + " (" + bytes(Math.round(t.in_rate || 0)) + "/s)"),
    item("out", bytes(t.out_bytes || 0) + " (" + bytes(Math.round(t.out_rate || 0)) + "/s)"),
    item("reachability", stats.reachability || "unknown"),
    item("hole punches", (stats.hole_punches || {}).succeeded + " of " + (stats.hole_punches || {}).tried),
    item("API", id.api || location.origin),
  );
}

function showError(msg) {
  const e = document.getElementById("error");
  e.textContent = msg;
  e.hidden = !msg;
}

let idInfo = null;

async function refresh() {
  if (!idInfo) {
    idInfo = await getJSON("id");
    selfID = idInfo.id;
    const s = document.getElementById("self-id");
    s.textContent = selfID;
    s.title = (idInfo.addrs || []).join("\n");
    document.title = "p2pshare " + shortID(selfID);
  }
  const [peers, members, catalog, kv, transfers, stats] = await Promise.all([
    getJSON("peers"), getJSON("members"), getJSON("catalog"), getJSON("kv/ls"), getJSON("transfers"), getJSON("stats"),
  ]);
  renderMembers(members);
  renderPeers(peers);
  renderCatalog(catalog);
  renderKV(kv);
  renderTransfers(transfers);
  renderStats(stats, idInfo);
}

async function loop() {
  const status = document.getElementById("status");
  try {
    await refresh();
    showError("");
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status ok";
  } catch (err) {
    status.textContent = "not updated";
    status.className = "status bad";
    if (err instanceof APIError && err.status === 401) {
      showError("The daemon refused the token (" + err.message + "). Open a fresh link from `p2pshare dashboard`.");
      return; // no point retrying with a wrong token
    }
    showError("Cannot reach the daemon: " + err.message);
  }
  setTimeout(loop, REFRESH_MS);
}

async function upload(ev) {
  ev.preventDefault();
  const input = document.getElementById("file");
  const status = document.getElementById("upload-status");
  const file = input.files && input.files[0];
  if (!file) {
    status.textContent = "choose a file first";
    return;
  }
  const name = document.getElementById("share-name").value.trim() || file.name;
  const button = document.getElementById("upload");
  button.disabled = true;
  status.textContent = "sharing " + name + "…";
  status.dataset.state = "busy";
  try {
    const resp = await call("POST", "share?name=" + encodeURIComponent(name), file, { "Content-Type": "application/octet-stream" });
    const res = await resp.json();
    status.textContent = "shared " + res.name + " (" + bytes(res.size) + ", " + res.cid + ")" +
      (res.replica_error ? "; " + res.replica_error : "");
    status.dataset.state = "done";
    status.dataset.name = res.name;
    input.value = "";
    document.getElementById("share-name").value = "";
  } catch (err) {
    status.textContent = "share failed: " + err.message;
    status.dataset.state = "failed";
  } finally {
    button.disabled = false;
  }
}

async function download(name, button) {
  const status = document.getElementById("download-status");
  button.disabled = true;
  status.textContent = "downloading " + name + "…";
  try {
    const resp = await call("GET", "cat?ref=" + encodeURIComponent(name));
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", null, { href: url, download: name.split("/").pop() || "download" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    status.textContent = "downloaded " + name + " (" + bytes(blob.size) + ", from " +
      shortID(resp.headers.get("X-P2pshare-Provider") || "") + ")";
  } catch (err) {
    status.textContent = "download of " + name + " failed: " + err.message;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  token = takeToken();
  document.getElementById("upload-form").addEventListener("submit", upload);
  document.getElementById("logout").addEventListener("click", (ev) => {
    ev.preventDefault();
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  if (!token) {
    document.getElementById("login").hidden = false;
    document.getElementById("status").textContent = "no token";
    return;
  }
  loop();
});
