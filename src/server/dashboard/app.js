// skiff dashboard: plain JavaScript, no build step. Pages are hash routes. Live updates: the
// server-sent events of /dashboard/events say every second what the figures add up to; the page
// reloads its JSON when that changes (and at least every SLOW_MS, for rates and ages). A lost
// stream or a failed load shows "connection lost" instead of pretending.
"use strict";
const SLOW_MS = 10000;
let session = null, timer = null, view = document.getElementById("view"), lastSummary = "";

function esc(s) {
  return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
    c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function when(unix) { return unix ? new Date(unix * 1000).toLocaleString() : "—"; }
function secs(v) { return v < 0 ? "—" : v < 1 ? (v * 1000).toFixed(v < 0.01 ? 1 : 0) + " ms" : v.toFixed(2) + " s"; }

function setConn(ok, why) {
  const c = document.getElementById("conn");
  c.className = ok ? "ok" : "lost";
  c.textContent = ok ? "live" : "connection lost" + (why ? ": " + why : "");
}

async function get(url) {
  let r;
  try { r = await fetch(url, {credentials: "same-origin", cache: "no-store"}); }
  catch (e) { setConn(false, "the server does not answer"); throw e; }
  if (r.status === 401) { location.reload(); throw new Error("signed out"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok && !(body && body.error)) { setConn(false, "HTTP " + r.status); throw new Error(r.status); }
  setConn(true);
  return body;
}

async function post(url) {
  const r = await fetch(url, {method: "POST", credentials: "same-origin",
                              headers: {"X-Skiff-CSRF": session.csrf}});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) alert((body.error && body.error.message) || ("HTTP " + r.status));
  return r.ok;
}

function table(cols, rows, empty) {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  return `<div class="wrap"><table><thead><tr>${cols.map(c => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>` +
    rows.map(r => `<tr>${r.map(c => `<td>${c}</td>`).join("")}</tr>`).join("") + "</tbody></table></div>";
}

function statusClass(s) { return s === "success" ? "good" : /fail|timeout|terminated|init/.test(s) ? "bad" : ""; }

// --- pages -------------------------------------------------------------------------------------

async function pageApps() {
  const d = await get("/dashboard/api/apps");
  if (d.error) return `<h1>Apps</h1><p class="bad">${esc(d.error.message)}</p>`;
  let h = "<h1>Apps</h1>";
  if (!d.apps.length) return h + '<p class="muted">No apps deployed yet: <code>skiff deploy APP.c</code>.</p>';
  for (const a of d.apps) {
    h += `<h2 data-app="${esc(a.name)}">${esc(a.name)} <span class="muted">v${a.version} · ${esc(a.state)} · deployed ${when(a.created)}</span>`;
    if (session.scope !== "call" && a.state === "deployed")
      h += ` <button class="danger" data-stop="${esc(a.name)}">Stop app</button>`;
    h += "</h2>";
    h += table(["Function", "Kind", "Web URL", "Max containers", "Timeout"],
      a.functions.map(f => [
        `<a href="#/fn/${encodeURIComponent(a.name)}/${encodeURIComponent(f.name)}">${esc(f.name)}</a>`,
        esc(f.kind), f.web_url ? `<a href="${esc(f.web_url)}">${esc(f.web_url)}</a>` : "—",
        esc(f.max_containers), esc(f.timeout) + " s"]), "No functions.");
  }
  return h;
}

function chart(hist) {
  if (!hist.length) return '<p class="muted">No history yet: a point is taken every 10 s.</p>';
  const W = 600, H = 150, max = Math.max(1, ...hist.map(p => Math.max(p[1], p[3])));
  const t0 = hist[0][0], t1 = Math.max(hist[hist.length - 1][0], t0 + 1);
  const line = (i, color) => `<polyline fill="none" stroke="${color}" stroke-width="2" points="` +
    hist.map(p => `${((p[0] - t0) / (t1 - t0) * W).toFixed(1)},${(H - p[i] / max * (H - 10)).toFixed(1)}`).join(" ") + '"/>';
  return `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="inputs, failures and backlog over the last hour">` +
    line(1, "#1f5fbf") + line(2, "#b3261e") + line(3, "#888") + "</svg>" +
    `<p class="muted">Last hour, per 10 s: <span style="color:#1f5fbf">inputs</span>, <span style="color:#b3261e">failures</span>, <span style="color:#666">backlog</span> (max ${max}).</p>`;
}

let lastInputs = null;
async function pageFunction(app, fn) {
  const d = await get(`/dashboard/api/function?app=${encodeURIComponent(app)}&function=${encodeURIComponent(fn)}`);
  if (d.error) return `<h1>${esc(app)}.${esc(fn)}</h1><p class="bad">${esc(d.error.message)}</p>`;
  const now = Date.now();
  let rate = "—";
  if (lastInputs && lastInputs.key === app + "/" + fn)
    rate = ((d.inputs - lastInputs.n) / ((now - lastInputs.t) / 1000)).toFixed(1);
  lastInputs = {key: app + "/" + fn, n: d.inputs, t: now};
  const fail = d.inputs ? (100 * d.failures / d.inputs).toFixed(1) + " %" : "—";
  const card = (k, v) => `<div class="card">${esc(k)}<b>${esc(v)}</b></div>`;
  return `<h1>${esc(app)}.${esc(fn)}</h1><div class="cards">` + card("Backlog", d.backlog) +
    card("Containers", d.containers) + card("Running", d.running) + card("Inputs/s", rate) +
    card("p50", secs(d.p50)) + card("p99", secs(d.p99)) + card("Failure rate", fail) +
    card("Inputs", d.inputs) + "</div>" + chart(d.history) +
    `<p><a href="#/calls?app=${encodeURIComponent(app)}&function=${encodeURIComponent(fn)}">Its recent calls</a></p>`;
}

async function pageContainers() {
  const d = await get("/dashboard/api/containers");
  if (d.error) return `<h1>Containers</h1><p class="bad">${esc(d.error.message)}</p>`;
  return "<h1>Containers</h1>" + table(
    ["Container", "State", "App", "Function", "Params", "Started", "Inputs", "Memory", "CPU", "Kind"],
    d.containers.map(c => [esc(c.container_id), esc(c.state), esc(c.app), esc(c.function),
      c.params ? `<code>${esc(c.params)}</code>` : "—", when(c.started), esc(c.inputs),
      c.memory_bytes >= 0 ? (c.memory_bytes / 1048576).toFixed(1) + " MiB" : "—",
      c.cpu_seconds >= 0 ? c.cpu_seconds.toFixed(2) + " s" : "—",
      c.forked ? "fork" : c.sandboxed ? "sandbox" : "process"]),
    "No containers are running.");
}

async function pageCalls(q) {
  const p = new URLSearchParams(q);
  const d = await get("/dashboard/api/calls?" + p.toString());
  let h = `<h1>Calls</h1><form id="filter">App <input name="app" size="12" value="${esc(p.get("app") || "")}">
    Function <input name="function" size="12" value="${esc(p.get("function") || "")}">
    Status <select name="status">${["", "pending", "running", "success", "failure", "terminated", "timeout", "finished"].map(s =>
      `<option${s === (p.get("status") || "") ? " selected" : ""}>${s}</option>`).join("")}</select>
    <button>Filter</button></form><br>`;
  return h + table(["Call", "App", "Function", "Kind", "Status", "Inputs", "Created", ""],
    d.calls.map(c => [`<a href="#/call/${esc(c.call_id)}">${esc(c.call_id)}</a>`, esc(c.app), esc(c.function),
      esc(c.kind), `<span class="${statusClass(c.status)}">${esc(c.status)}</span>`, esc(c.inputs),
      when(c.created), c.status === "pending" || c.status === "running"
        ? `<button class="danger" data-cancel="${esc(c.call_id)}">Cancel</button>` : ""]),
    "No calls since the server started (or none match).");
}

function tree(nodes) {
  if (!nodes || !nodes.length) return "";
  return '<ul class="tree">' + nodes.map(n => `<li><a href="#/call/${esc(n.call_id)}">${esc(n.function)}</a>
    <span class="${statusClass(String(n.status).toLowerCase())}">${esc(n.status)}</span>
    <span class="muted">${esc(n.input_id)} on ${esc(n.container_id || "—")}</span>${tree(n.children)}</li>`).join("") + "</ul>";
}

function logLines(lines, empty) {
  if (!lines.length) return `<p class="muted">${esc(empty)}</p>`;
  return '<pre class="logs">' + lines.map(l =>
    `<span class="muted">${esc(new Date(l.ts * 1000).toLocaleTimeString())} ${esc(l.function)} ${esc(l.container_id)}${l.input_id ? " " + esc(l.input_id) : ""}</span> ` +
    `<span class="${l.stream === "stderr" ? "bad" : ""}">${esc(l.text)}</span>`).join("\n") + "</pre>";
}

async function pageLogs(app) {
  const apps = session.scope === "call" ? {apps: []} : await get("/dashboard/api/apps");
  if (apps.error) return `<h1>Logs</h1><p class="bad">${esc(apps.error.message)}</p>`;
  if (!app && apps.apps.length) app = apps.apps[0].name;
  let h = "<h1>Logs</h1><p>" + (apps.apps.length ? apps.apps.map(a => a.name === app ? `<b>${esc(a.name)}</b>`
    : `<a href="#/logs/${encodeURIComponent(a.name)}">${esc(a.name)}</a>`).join(" · ") : '<span class="muted">No apps deployed.</span>') + "</p>";
  if (!app) return h;
  const d = await get(`/dashboard/api/logs?app=${encodeURIComponent(app)}&tail=300`);
  if (d.error) return h + `<p class="bad">${esc(d.error.message)}</p>`;
  return h + `<p class="muted">The last ${d.lines.length} lines of ${esc(app)}, newest last, updated live.</p>` +
    logLines(d.lines, "This app's containers have printed nothing yet.");
}

async function pageCall(id) {
  const [res, graph, info] = await Promise.all([
    get(`/api/v1/calls/${encodeURIComponent(id)}?timeout=0`),
    get(`/api/v1/calls/${encodeURIComponent(id)}/graph`),
    get(`/dashboard/api/calls?call_id=${encodeURIComponent(id)}`)]);
  const c = info.calls && info.calls[0];
  let h = `<h1>Call ${esc(id)}</h1>`;
  if (c) h += `<p>${esc(c.app)}.${esc(c.function)} · ${esc(c.kind)} · ${esc(c.inputs)} input(s) · made ${when(c.created)}</p>`;
  if (res.error && res.error.type === "TimeoutError")
    h += `<p>Not finished yet. <button class="danger" data-cancel="${esc(id)}">Cancel</button></p>`;
  else if (res.error)
    h += `<h2 class="bad">${esc(res.error.type)}</h2><pre>${esc(res.error.message)}\n\n${esc(res.error.traceback || "")}</pre>`;
  else
    h += `<h2 class="good">Result</h2><pre>${esc(JSON.stringify(res.result, null, 2))}</pre>`;
  h += "<h2>Call graph</h2>" + (graph.error ? `<p class="bad">${esc(graph.error.message)}</p>` : tree(graph.inputs));
  if (c && session.scope !== "call" && !graph.error) {
    const inputs = (graph.inputs || []).slice(0, 20);
    const logs = await Promise.all(inputs.map(n =>
      get(`/dashboard/api/logs?app=${encodeURIComponent(c.app)}&input=${encodeURIComponent(n.input_id)}`)));
    h += "<h2>Logs of its inputs</h2>" + logLines([].concat(...logs.map(l => l.lines || [])),
      "Its inputs printed nothing (or their lines were not tied to one input).");
  }
  return h;
}

async function pageTokens() {
  const d = await get("/dashboard/api/tokens");
  if (d.error) return `<h1>Tokens</h1><p class="bad">${esc(d.error.message)}</p>`;
  return "<h1>Tokens</h1>" + table(["Token", "Scope", "Created", "Expires", "Last used", ""],
    d.tokens.map(t => [esc(t.token_id) + (t.token_id === session.token_id ? ' <span class="muted">(this session)</span>' : ""),
      esc(t.scope), when(t.created), t.expires ? when(t.expires) : "never", when(t.last_used),
      `<button class="danger" data-revoke="${esc(t.token_id)}">Revoke</button>`]), "No tokens.");
}

// --- routing -----------------------------------------------------------------------------------

async function render() {
  const hash = location.hash || "#/apps";
  const [path, q] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let html;
  try {
    if (parts[0] === "fn") html = await pageFunction(parts[1], parts[2]);
    else if (parts[0] === "containers") html = await pageContainers();
    else if (parts[0] === "calls") html = await pageCalls(q || "");
    else if (parts[0] === "call") html = await pageCall(parts[1]);
    else if (parts[0] === "tokens") html = await pageTokens();
    else if (parts[0] === "logs") html = await pageLogs(parts[1]);
    else html = await pageApps();
  } catch (e) { return; } // the connection badge says what went wrong; keep the last page
  if (document.activeElement && document.activeElement.tagName === "INPUT") return;
  view.innerHTML = html;
}

let rendering = false, again = false;
function schedule() {
  clearTimeout(timer);
  if (rendering) { again = true; return; }
  rendering = true;
  render().finally(() => {
    rendering = false;
    if (again) { again = false; schedule(); return; }
    timer = setTimeout(schedule, SLOW_MS);
  });
}

function listen() {
  const es = new EventSource("/dashboard/events");
  es.onmessage = ev => {
    setConn(true);
    if (ev.data !== lastSummary) { lastSummary = ev.data; schedule(); }
  };
  es.onerror = () => {
    setConn(false, "the live update stream broke; retrying");
    if (es.readyState === EventSource.CLOSED) setTimeout(listen, 2000);
  };
}

view.addEventListener("click", async ev => {
  const b = ev.target.closest("button");
  if (!b) return;
  if (b.dataset.cancel && confirm("Cancel call " + b.dataset.cancel + "?"))
    await post(`/api/v1/calls/${encodeURIComponent(b.dataset.cancel)}/cancel`);
  else if (b.dataset.stop && confirm("Stop app " + b.dataset.stop + "?"))
    await post(`/dashboard/api/apps/${encodeURIComponent(b.dataset.stop)}/stop`);
  else if (b.dataset.revoke && confirm("Revoke token " + b.dataset.revoke + "?"))
    await post(`/dashboard/api/tokens/${encodeURIComponent(b.dataset.revoke)}/revoke`);
  else return;
  schedule();
});
view.addEventListener("submit", ev => {
  ev.preventDefault();
  const p = new URLSearchParams(new FormData(ev.target));
  for (const [k, v] of [...p]) if (!v) p.delete(k);
  location.hash = "#/calls?" + p.toString();
});
window.addEventListener("hashchange", schedule);

get("/dashboard/api/session").then(s => {
  session = s;
  if (s.scope !== "admin") document.getElementById("nav-tokens").style.display = "none";
  schedule();
  listen();
}).catch(() => {});
