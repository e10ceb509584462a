// memglass dashboard: node memory pie, a sortable and filterable pods table, a page per
// pod or cgroup (its findings, pie, history, containers, cached files), the findings (what
// is wrong, the figures behind it, what to do), the OOM events, and eviction (kubelet's
// signals and ranking, requests and limits with suggestions). Reads only
// /api/v1 of the agent that served it; a bearer token, when the agent needs one, is
// asked once and kept in this browser's localStorage.
"use strict";
const B = Charts.bytes;
const COLORS = {
  anon: "#4e79a7", active_anon: "#4e79a7", inactive_anon: "#8fb3dc", shmem: "#b07aa1",
  file: "#59a14f", active_file: "#59a14f", inactive_file: "#a6d49b", dirty: "#e15759",
  kernel: "#f28e2b", slab_reclaimable: "#f28e2b", slab_unreclaimable: "#f7b267",
  kernel_stack: "#c9731e", pagetables: "#e9a56b", vmalloc: "#d98b46", percpu: "#f5c89a",
  alloc_page: "#b45f06", unevictable: "#9c755f", hugetlb: "#bab0ac", free: "#d5dae1",
  working_set: "#1f2933", limit: "#d64545", application: "#4e79a7", other: "#c7ccd4",
};
const view = () => document.getElementById("view");
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

async function api(path) {
  const token = localStorage.getItem("memglass-token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const res = await fetch("/api/v1" + path, { headers });
  if (res.status === 401) { throw { login: true }; }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

function login() {
  view().innerHTML = `<div class="card login"><h2>This agent needs a token</h2>
    <p class="muted">Paste the bearer token from the agent's --token-file. It stays in this browser.</p>
    <input id="token" type="password" autocomplete="off"><button class="primary" id="save">Continue</button></div>`;
  document.getElementById("save").onclick = () => {
    localStorage.setItem("memglass-token", document.getElementById("token").value.trim());
    route();
  };
}

function fail(error) {
  if (error && error.login) return login();
  view().innerHTML = `<div class="error">${esc(error.message || error)}</div>`;
}

const label = (row) => row.pod ? `${row.namespace ? row.namespace + "/" : ""}${row.pod}`
  : row.kind === "pod" && row.pod_uid ? `pod ${row.pod_uid}` : row.path;
const cgroupLink = (path) => "#/cgroup" + encodeURI(path);

// ---------------------------------------------------------------- overview
const COLUMNS = [
  ["anon", "anon", (r) => r.memory.anon],
  ["inactive_anon", "inactive anon", (r) => r.memory.inactive_anon],
  ["active_file", "active file", (r) => r.memory.active_file],
  ["inactive_file", "inactive file", (r) => r.memory.inactive_file],
  ["shmem", "shmem", (r) => r.memory.shmem],
  ["file_dirty", "dirty", (r) => r.memory.file_dirty],
  ["kernel", "kernel", (r) => r.memory.kernel],
  ["working_set", "working set", (r) => r.memory.working_set_kubelet],
  ["working_set_seeds", "ws (anon+active file)", (r) => r.memory.working_set],
  ["limit", "limit", (r) => r.memory.limit],
  ["limit_percent", "% of limit", (r) => r.limit_percent],
];
const state = { sort: "working_set", dir: -1, filter: "", kind: null, range: "1h" };

function nodeGroups(n) {
  const v = (x) => x || 0;
  return [
    { label: "application", color: COLORS.application, parts: [
      { label: "active anon", value: v(n.active_anon), color: COLORS.active_anon },
      { label: "inactive anon", value: v(n.inactive_anon), color: COLORS.inactive_anon },
      { label: "active file", value: v(n.active_file), color: COLORS.active_file },
      { label: "inactive file", value: v(n.inactive_file), color: COLORS.inactive_file },
      { label: "unevictable", value: v(n.unevictable), color: COLORS.unevictable },
      { label: "hugetlb", value: v(n.hugetlb), color: COLORS.hugetlb } ] },
    { label: "kernel", color: COLORS.kernel, parts: [
      { label: "slab reclaimable", value: v(n.slab_reclaimable), color: COLORS.slab_reclaimable },
      { label: "slab unreclaimable", value: v(n.slab_unreclaimable), color: COLORS.slab_unreclaimable },
      { label: "kernel stack", value: v(n.kernel_stack), color: COLORS.kernel_stack },
      { label: "page tables", value: v(n.pagetables), color: COLORS.pagetables },
      { label: "vmalloc", value: v(n.vmalloc), color: COLORS.vmalloc },
      { label: "percpu", value: v(n.percpu), color: COLORS.percpu },
      { label: "alloc_page", value: v(n.alloc_page), color: COLORS.alloc_page } ] },
    { label: "free", color: COLORS.free, parts: [{ label: "MemFree", value: v(n.mem_free), color: COLORS.free }] },
  ];
}

function legendTable(groups, total) {
  const pct = (x) => total ? (100 * x / total).toFixed(1) + "%" : "";
  return `<table class="legend">` + groups.map((g) => {
    const gv = g.parts.reduce((s, p) => s + (p.value || 0), 0);
    const parts = g.parts.length > 1 ? g.parts.filter((p) => p.value > 0).map((p) =>
      `<tr><td><span class="swatch" style="background:${p.color}"></span>${esc(p.label)}</td><td class="num">${B(p.value)}</td><td class="num muted">${pct(p.value)}</td></tr>`).join("") : "";
    return `<tr class="group"><td><span class="swatch" style="background:${g.color}"></span>${esc(g.label)}</td><td class="num">${B(gv)}</td><td class="num muted">${pct(gv)}</td></tr>${parts}`;
  }).join("") + `</table>`;
}

async function overview() {
  const [rows, node] = await Promise.all([api("/workloads"), api("/node?range=" + state.range)]);
  const n = rows.node;
  const pods = rows.workloads.filter((r) => r.kind === "pod").length;
  if (state.kind === null) state.kind = pods > 0 ? "pod" : "all";
  const groups = nodeGroups(n);
  view().innerHTML = `
    <div class="kpis">
      <div class="kpi"><div class="label">MemTotal</div><div class="value">${B(n.mem_total)}</div></div>
      <div class="kpi"><div class="label">MemAvailable</div><div class="value">${B(n.mem_available)}</div><div class="sub">the kernel's estimate</div></div>
      <div class="kpi"><div class="label">memory_available (kubelet)</div><div class="value">${B(n.memory_available)}</div><div class="sub">MemTotal − root working set · <a href="#/eviction">eviction</a></div></div>
      <div class="kpi"><div class="label">kernel memory</div><div class="value">${B(n.kernel)}</div><div class="sub">alloc_page ${B(n.alloc_page)}</div></div>
      <div class="kpi"><div class="label">OOM kills since boot</div><div class="value">${n.oom_kill ?? "–"}</div><div class="sub"><a href="#/oom">events</a></div></div>
      <div class="kpi"><div class="label">pods · cgroups listed</div><div class="value">${pods} · ${rows.workloads.length}</div></div>
    </div>
    <div class="grid">
      <div class="card"><h2>Node memory</h2><div class="pie-wrap"><div id="node-pie"></div>${legendTable(groups, n.mem_total)}</div></div>
      <div class="card"><h2>Node over time <span class="seg" id="range">${["15m", "1h", "6h", "24h"].map((r) => `<button data-r="${r}" class="${r === state.range ? "on" : ""}">${r}</button>`).join("")}</span></h2><div class="chart" id="node-chart"></div></div>
    </div>
    <div class="card wide"><h2>Pods by memory type</h2>
      <div class="toolbar">
        <input id="filter" type="search" placeholder="Filter by namespace, pod, container or path" value="${esc(state.filter)}">
        <select id="kind"><option value="pod">pods</option><option value="all">all cgroups</option></select>
        <span class="muted small" id="count"></span>
      </div>
      <div id="table"></div>
    </div>`;
  Charts.donut(document.getElementById("node-pie"), groups, { center: B(n.mem_total), centerLabel: "MemTotal", label: "node memory" });
  const h = node.history;
  Charts.line(document.getElementById("node-chart"), [
    { label: "application", color: COLORS.application, points: h.map((p) => [p.t, p.application]) },
    { label: "kernel", color: COLORS.kernel, points: h.map((p) => [p.t, p.kernel]) },
    { label: "free", color: "#98a2b3", points: h.map((p) => [p.t, p.mem_free]) },
    { label: "memory_available (kubelet)", color: COLORS.limit, dashed: true, points: h.map((p) => [p.t, p.memory_available]) },
  ], { height: 230, label: "node memory over time" });
  document.querySelectorAll("#range button").forEach((b) => b.onclick = () => { state.range = b.dataset.r; route(); });
  const kind = document.getElementById("kind");
  kind.value = state.kind;
  kind.onchange = () => { state.kind = kind.value; drawTable(rows.workloads); };
  const filter = document.getElementById("filter");
  filter.oninput = () => { state.filter = filter.value; drawTable(rows.workloads); };
  drawTable(rows.workloads);
}

function drawTable(all) {
  const f = state.filter.toLowerCase();
  const col = COLUMNS.find((c) => c[0] === state.sort);
  const rows = all
    .filter((r) => state.kind === "all" || r.kind === "pod")
    .filter((r) => !f || [r.namespace, r.pod, r.container, r.path, r.pod_uid].some((x) => x && x.toLowerCase().includes(f)))
    .sort((a, b) => {
      const x = col ? col[2](a) : 0, y = col ? col[2](b) : 0;
      return state.dir * (((x ?? -1) - (y ?? -1)) || label(a).localeCompare(label(b)));
    });
  document.getElementById("count").textContent = `${rows.length} shown`;
  const head = `<tr><th>${state.kind === "pod" ? "pod" : "cgroup"}</th>` + COLUMNS.map(([key, name]) =>
    `<th class="sortable" data-key="${key}" ${key === state.sort ? `aria-sort="${state.dir < 0 ? "descending" : "ascending"}"` : ""}>${name}</th>`).join("") + `</tr>`;
  const body = rows.map((r) => {
    const pct = r.limit_percent;
    const bar = pct === null || pct === undefined ? "" :
      `<span class="bar ${pct >= 90 ? "hot" : pct >= 75 ? "warm" : ""}"><span style="width:${Math.min(100, pct)}%"></span></span>`;
    const sub = r.kind === "pod" ? `${r.qos_class || ""}${r.containers ? ` · ${r.containers} container${r.containers === 1 ? "" : "s"}` : ""}` : r.kind;
    return `<tr class="link" data-path="${esc(r.path)}"><td><div class="name">${esc(label(r))}</div><div class="sub">${esc(sub)}</div></td>` +
      COLUMNS.map(([key, , get]) => key === "limit_percent"
        ? `<td data-key="${key}">${pct === null || pct === undefined ? "–" : pct.toFixed(0) + "%"}${bar}</td>`
        : `<td data-key="${key}" data-value="${get(r) ?? ""}">${key === "limit" && get(r) === null ? "none" : B(get(r))}</td>`).join("") + `</tr>`;
  }).join("");
  const table = document.getElementById("table");
  table.innerHTML = rows.length ? `<table class="data" id="pods"><thead>${head}</thead><tbody>${body}</tbody></table>`
    : `<div class="empty">No ${state.kind === "pod" ? "pods" : "cgroups"} match.</div>`;
  table.querySelectorAll("th.sortable").forEach((th) => th.onclick = () => {
    state.dir = state.sort === th.dataset.key ? -state.dir : -1;
    state.sort = th.dataset.key;
    drawTable(all);
  });
  table.querySelectorAll("tr.link").forEach((tr) => tr.onclick = () => { location.hash = cgroupLink(tr.dataset.path); });
}

// ---------------------------------------------------------------- one pod or cgroup
function cgroupGroups(m) {
  const v = (x) => x || 0;
  const file = Math.max(0, v(m.file) - v(m.shmem));
  const active = Math.min(v(m.active_file), file), inactive = Math.max(0, file - active);
  const known = v(m.anon) + v(m.shmem) + file + v(m.kernel);
  return [
    // Not split by LRU: the anon LRUs also hold shmem, shown on its own below.
    { label: "anon", color: COLORS.anon, parts: [{ label: "anon", value: v(m.anon), color: COLORS.anon }] },
    { label: "shmem (tmpfs)", color: COLORS.shmem, parts: [{ label: "shmem", value: v(m.shmem), color: COLORS.shmem }] },
    { label: "page cache", color: COLORS.file, parts: [
      { label: "active file", value: active, color: COLORS.active_file },
      { label: "inactive file", value: inactive, color: COLORS.inactive_file } ] },
    { label: "kernel", color: COLORS.kernel, parts: [{ label: "kernel", value: v(m.kernel), color: COLORS.kernel }] },
    { label: "other", color: COLORS.other, parts: [{ label: "usage − parts", value: Math.max(0, v(m.usage) - known), color: COLORS.other }] },
  ];
}

async function cgroupPage(path) {
  const d = await api(`/cgroup?path=${encodeURIComponent(path)}&range=${state.range}`);
  const c = d.cgroup, m = c ? c.memory : null;
  const title = c ? (c.pod ? `${c.namespace ? c.namespace + "/" : ""}${c.pod}` : c.kind === "pod" ? `pod ${c.pod_uid}` : c.path) : path;
  const facts = c ? [
    ["kind", `<span class="badge">${esc(c.kind)}</span>`], ["namespace", esc(c.namespace || "–")], ["pod", esc(c.pod || "–")],
    ["pod UID", esc(c.pod_uid || "–")], ["QoS class", esc(c.qos_class || "–")], ["cgroup", `<span class="mono">${esc(c.path)}</span>`],
    ["usage", B(m.usage)], ["limit", m.limit === null ? "none" : B(m.limit)],
    ["working set (kubelet)", `${B(m.working_set_kubelet)} <span class="muted small">usage − inactive_file</span>`],
    ["working set (seeds)", `${B(m.working_set)} <span class="muted small">anon LRUs + active_file</span>`],
    ["anon LRUs active · inactive", `${B(m.active_anon)} · ${B(m.inactive_anon)} <span class="muted small">shmem sits on these lists</span>`],
    ["dirty · writeback", `${B(m.file_dirty)} · ${B(m.file_writeback)}`], ["OOM kills", c.events.oom_kill ?? "–"],
  ] : [["cgroup", `<span class="mono">${esc(path)}</span>`], ["state", "gone: history only"]];
  const groups = m ? cgroupGroups(m) : [];
  view().innerHTML = `
    <p class="small"><a href="#/">← node &amp; pods</a></p>
    <h1 id="title">${esc(title)}</h1>
    <div class="grid">
      <div class="card"><h2>Memory now</h2>${m ? `<div class="pie-wrap"><div id="pie"></div>${legendTable(groups, m.usage)}</div>` : `<div class="empty">This cgroup no longer exists.</div>`}</div>
      <div class="card"><h2>Details</h2><dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl></div>
    </div>
    <div class="card wide" style="margin-bottom:16px"><h2>Over time <span class="seg" id="range">${["15m", "1h", "6h", "24h"].map((r) => `<button data-r="${r}" class="${r === state.range ? "on" : ""}">${r}</button>`).join("")}</span></h2><div class="chart" id="history"></div></div>
    ${d.containers.length ? `<div class="card wide" style="margin-bottom:16px"><h2>Containers</h2><div id="containers"></div></div>` : ""}
    <div class="card wide"><h2>Top cached files</h2><div id="files"><p class="muted">Scanning the page cache…</p></div></div>`;
  if (c) {
    const f = await api(`/findings?cgroup=${encodeURIComponent(path)}`);
    if (f.findings.length) document.getElementById("title").insertAdjacentHTML("afterend",
      `<div class="findings" id="cgroup-findings">${f.findings.map(findingCard).join("")}</div>`);
  }
  if (m) Charts.donut(document.getElementById("pie"), groups, { center: B(m.usage), centerLabel: "usage", label: "cgroup memory" });
  const h = d.history;
  const series = [
    { label: "cache (file)", color: COLORS.file, points: h.map((p) => [p.t, p.file]) },
    { label: "inactive_file", color: COLORS.inactive_file, points: h.map((p) => [p.t, p.inactive_file]) },
    { label: "inactive_anon", color: COLORS.inactive_anon, points: h.map((p) => [p.t, p.inactive_anon]) },
    { label: "dirty", color: COLORS.dirty, points: h.map((p) => [p.t, p.file_dirty]) },
    { label: "working set (kubelet)", color: COLORS.working_set, width: 2.5, points: h.map((p) => [p.t, p.working_set_kubelet]) },
  ];
  if (h.some((p) => p.limit !== null)) series.push({ label: "limit", color: COLORS.limit, dashed: true, points: h.map((p) => [p.t, p.limit]) });
  Charts.line(document.getElementById("history"), series, { label: "cgroup memory over time" });
  document.querySelectorAll("#range button").forEach((b) => b.onclick = () => { state.range = b.dataset.r; route(); });
  if (d.containers.length) {
    document.getElementById("containers").innerHTML = `<table class="data"><thead><tr><th>container</th><th>anon</th><th>page cache</th><th>shmem</th><th>dirty</th><th>kernel</th><th>working set</th><th>limit</th><th>OOM kills</th></tr></thead><tbody>` +
      d.containers.map((k) => `<tr class="link" data-path="${esc(k.path)}"><td><div class="name">${esc(k.container || (k.container_id || k.path).slice(0, 12))}</div><div class="sub mono">${esc(k.path.split("/").pop())}</div></td>
        <td>${B(k.memory.anon)}</td><td>${B(k.memory.file)}</td><td>${B(k.memory.shmem)}</td><td>${B(k.memory.file_dirty)}</td><td>${B(k.memory.kernel)}</td>
        <td>${B(k.memory.working_set_kubelet)}</td><td>${k.memory.limit === null ? "none" : B(k.memory.limit)}</td><td>${k.events.oom_kill ?? "–"}</td></tr>`).join("") + `</tbody></table>`;
    document.querySelectorAll("#containers tr.link").forEach((tr) => tr.onclick = () => { location.hash = cgroupLink(tr.dataset.path); });
  }
  const files = document.getElementById("files");
  if (!c) { files.innerHTML = `<p class="muted">Not available for a cgroup that is gone.</p>`; return; }
  try {
    const fc = await api(`/cache?path=${encodeURIComponent(path)}&limit=15`);
    files.innerHTML = fc.files.length ? `<table class="data" id="cached-files"><thead><tr><th>file</th><th>cached</th><th>dirty</th><th>size</th><th>deleted</th></tr></thead><tbody>` +
      fc.files.map((f) => `<tr><td class="mono">${esc(f.path)}</td><td>${B(f.cached)}</td><td>${B(f.dirty)}</td><td>${B(f.size)}</td><td>${f.deleted ? "yes" : ""}</td></tr>`).join("") +
      `</tbody></table><p class="muted small">Files its processes have open or mapped, by ${esc(fc.method)}; the cgroup's page cache is ${B(fc.cgroup_file)}.</p>`
      : `<p class="muted">No open or mapped file holds more than 64 KiB of cache.</p>`;
  } catch (e) { files.innerHTML = `<p class="muted">${esc(e.message || "not available")}</p>`; }
}

// ---------------------------------------------------------------- findings
const KINDS = {
  oom_killed: "OOM-killed", eviction_next: "evicted next", pending_no_room: "no room to schedule",
  near_limit: "near its limit", leak: "leak", exceeds_request: "above its request",
  under_requested: "under-requested", over_requested: "over-requested", no_request: "no request",
  no_limit: "no limit", page_cache_working_set: "page cache in the working set", tmpfs: "tmpfs",
  dirty_backlog: "dirty backlog", deleted_open_files: "deleted files still open",
  kernel_memory: "kernel memory", dying_cgroups: "memory of removed cgroups",
};
const subject = (f) => f.pod ? `${f.namespace ? f.namespace + "/" : ""}${f.pod}${f.container ? " › " + f.container : ""}`
  : f.cgroup || (f.pod_uid ? `pod ${f.pod_uid}` : "the node");

function figure(e) {
  if (e.unit === "bytes") return B(e.value);
  if (e.unit === "percent") return e.value.toFixed(1) + "%";
  if (e.unit === "bytes_per_second") return B(e.value) + "/s";
  if (e.unit === "seconds") return e.value >= 3600 ? (e.value / 3600).toFixed(1) + " h" : e.value >= 60 ? Math.round(e.value / 60) + " min" : e.value + " s";
  return esc(e.value);
}

function findingCard(f) {
  const set = f.remedy.set.map((s) => `<li><span class="mono">${esc(s.name)}</span> = <b>${esc(s.quantity)}</b>${s.target ? ` <span class="muted small">${esc(s.target)}</span>` : ""}</li>`).join("");
  return `<div class="card finding ${esc(f.severity)}" data-kind="${esc(f.kind)}" data-cgroup="${esc(f.cgroup || "")}">
    <div class="finding-head"><span class="badge sev ${esc(f.severity)}">${esc(f.severity)}</span>
      <b>${esc(KINDS[f.kind] || f.kind)}</b> · ${f.cgroup ? `<a href="${cgroupLink(f.cgroup)}">${esc(subject(f))}</a>` : esc(subject(f))}</div>
    <p class="summary">${esc(f.summary)}</p>
    <details><summary>Evidence (${f.evidence.length})</summary><table class="data evidence"><tbody>${f.evidence.map((e) =>
      `<tr><td class="left mono">${esc(e.name)}</td><td>${figure(e)}</td><td class="left wrap muted small">${esc(e.source)}</td></tr>`).join("")}</tbody></table></details>
    <div class="remedy"><b>What to do:</b> ${esc(f.remedy.text)}${set ? `<ul>${set}</ul>` : ""}${f.remedy.command ? `<div class="mono small">$ ${esc(f.remedy.command)}</div>` : ""}</div>
  </div>`;
}

async function findingsPage() {
  const d = await api("/findings");
  const count = (s) => d.findings.filter((f) => f.severity === s).length;
  view().innerHTML = `<h1>Findings</h1>
    <p class="muted">What memglass found wrong on this node at ${esc(new Date(d.taken_at).toLocaleTimeString())}, most severe first:
      ${count("critical")} critical, ${count("warning")} warning, ${count("info")} info. Each with the figures behind it and what to do.</p>
    <div class="findings" id="findings">${d.findings.length ? d.findings.map(findingCard).join("")
      : `<div class="card empty">Nothing to report: no recent OOM kill, nobody near a limit or next to be evicted, no memory hiding in page cache, tmpfs, dirty pages, deleted files, the kernel or removed cgroups.</div>`}</div>`;
}

// ---------------------------------------------------------------- OOM events
const who = (e) => e.pod ? `${e.namespace ? e.namespace + "/" : ""}${e.pod}${e.container ? " › " + e.container : ""}`
  : e.pod_uid ? `pod ${e.pod_uid}${e.container_id ? " › " + e.container_id.slice(0, 12) : ""}` : (e.cgroup || "node");

async function oomPage() {
  const d = await api("/oom?range=30d");
  const rows = d.events.map((e) => `<tr class="link" data-id="${e.id}"><td>${esc(new Date(e.time * 1000).toLocaleString())}</td>
    <td><span class="badge ${esc(e.scope)}">${esc(e.scope)}</span></td>
    <td class="wrap"><div class="name">${esc(who(e))}</div><div class="sub mono">${esc(e.cgroup || "")}</div></td>
    <td>${esc(e.comm || "–")}${e.pid ? ` <span class="muted">(${e.pid})</span>` : ""}</td>
    <td>${e.cause ? `<span class="badge ${esc(e.cause)}">${esc(e.cause)}</span>` : "–"}</td>
    <td>${e.limit ? B(e.limit) : "–"}</td><td>${B(e.anon_rss)}</td><td class="muted">${esc(e.source.replace("_", " "))}</td></tr>`).join("");
  view().innerHTML = `<h1>OOM events</h1><p class="muted">Source: ${esc(d.source)}. Scope says whose limit was hit; cause, what filled it.</p>
    <div class="card wide">${rows ? `<table class="data" id="oom"><thead><tr><th>time</th><th>scope</th><th class="wrap">victim</th><th>process</th><th>cause</th><th>limit</th><th>anon RSS</th><th>source</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<div class="empty">No OOM kill in the last 30 days.</div>`}</div>`;
  document.querySelectorAll("#oom tr.link").forEach((tr) => tr.onclick = () => { location.hash = "#/oom/" + tr.dataset.id; });
}

async function oomEvent(id) {
  const e = (await api("/oom/" + id)).event;
  const facts = [["time", new Date(e.time * 1000).toLocaleString()], ["scope", `<span class="badge ${esc(e.scope)}">${esc(e.scope)}</span>`],
    ["victim", esc(who(e))], ["process", `${esc(e.comm || "–")} ${e.pid ? "(" + e.pid + ")" : ""}`], ["constraint", esc(e.constraint || "–")],
    ["limit hit in", `<span class="mono">${esc(e.oom_memcg || "–")}</span>`], ["victim cgroup", e.cgroup ? `<a class="mono" href="${cgroupLink(e.cgroup)}">${esc(e.cgroup)}</a>` : "–"],
    ["limit", B(e.limit)], ["cause", esc(e.cause || "–")], ["RSS anon · file · shmem", `${B(e.anon_rss)} · ${B(e.file_rss)} · ${B(e.shmem_rss)}`],
    ["source", esc(e.source.replace("_", " "))], ...(e.note ? [["note", esc(e.note)]] : [])];
  view().innerHTML = `<p class="small"><a href="#/oom">← OOM events</a></p><h1>OOM kill of ${esc(who(e))}</h1>
    <div class="grid"><div class="card"><h2>What happened</h2><dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl></div>
    <div class="card"><h2>Flight recorder: the victim's last minutes</h2><div class="chart" id="flight"></div></div></div>`;
  const f = e.flight || [];
  const series = [
    { label: "usage", color: COLORS.working_set, points: f.map((p) => [p.t, p.usage]) },
    { label: "anon", color: COLORS.anon, points: f.map((p) => [p.t, p.anon]) },
    { label: "shmem", color: COLORS.shmem, points: f.map((p) => [p.t, p.shmem]) },
    { label: "cache (file)", color: COLORS.file, points: f.map((p) => [p.t, p.file]) },
  ];
  if (f.some((p) => p.limit !== null)) series.push({ label: "limit", color: COLORS.limit, dashed: true, points: f.map((p) => [p.t, p.limit]) });
  Charts.line(document.getElementById("flight"), series, { height: 220, label: "flight recorder" });
}

// ---------------------------------------------------------------- eviction
const signed = (v) => v === null || v === undefined ? "–" : (v < 0 ? "−" + B(-v) : B(v));
const podName = (p) => p.pod ? `${p.namespace ? p.namespace + "/" : ""}${p.pod}` : `pod ${p.pod_uid}`;
const VERDICTS = {
  over_requested: "over-requested", under_requested: "under-requested", no_request: "no request",
  no_limit: "no limit", near_limit: "near its limit", fits: "fits",
};
const verdictBadges = (vs) => vs.length ? vs.map((v) => `<span class="badge verdict ${esc(v)}">${esc(VERDICTS[v] || v)}</span>`).join(" ") : `<span class="muted">–</span>`;

async function evictionPage() {
  const [ev, rq] = await Promise.all([api("/eviction"), api("/requests")]);
  const threshold = ev.threshold.bytes !== undefined ? B(ev.threshold.bytes) : `${ev.threshold.percent}% of capacity`;
  const next = ev.next;
  const signals = ev.signals.map((s, i) => `<div class="signal-row" data-signal="${esc(s.signal)}">
      <div class="signal-head"><b>${esc(s.signal)}</b> <span class="mono muted">${esc(s.cgroup)}</span>
        ${s.met ? `<span class="badge met">threshold met: kubelet is evicting</span>` : ""}</div>
      <div class="chart" id="signal-${i}"></div>
      <div class="small">available <b>${B(s.available)}</b> = ${B(s.capacity)} (${esc(s.capacity_source.replace(/_/g, " "))}) − working set ${B(s.working_set)}
        · threshold ${B(s.threshold)} · margin <b class="${s.margin < 0 ? "bad" : "ok"}">${signed(s.margin)}</b></div></div>`).join("");
  const rows = ev.pods.map((p) => {
    const over = p.usage_over_request;
    return `<tr class="${p.cgroup ? "link" : ""} ${p.evictable ? "" : "protected"}" data-rank="${p.rank}" data-uid="${esc(p.pod_uid)}" data-path="${esc(p.cgroup || "")}">
      <td>${p.rank}${next && next.pod_uid === p.pod_uid ? ` <span class="badge next">next</span>` : ""}</td>
      <td class="left"><div class="name">${esc(podName(p))}</div><div class="sub">${esc(p.qos_class || "")}${p.requests_known ? "" : " · request and priority unknown"}</div></td>
      <td data-key="priority">${p.priority}${p.priority_class ? `<div class="sub">${esc(p.priority_class)}</div>` : ""}</td>
      <td data-key="request" data-value="${p.request ?? ""}">${p.request === null ? "none" : B(p.request)}</td>
      <td data-key="working_set" data-value="${p.working_set ?? ""}">${B(p.working_set)}</td>
      <td data-key="over" data-value="${over ?? ""}" class="${over > 0 ? "bad" : ""}">${signed(over)}</td>
      <td class="wrap reason">${esc(p.reason)}</td></tr>`;
  }).join("");
  const n = rq.node;
  const pct = (x) => x === null || x === undefined ? "" : ` (${(100 * x).toFixed(0)}% of allocatable)`;
  const reqBar = n.requests_over_allocatable === null ? "" :
    `<span class="bar wide ${n.requests_over_allocatable >= 1 ? "hot" : n.requests_over_allocatable >= 0.9 ? "warm" : ""}"><span style="width:${Math.min(100, 100 * n.requests_over_allocatable)}%"></span></span>`;
  const sizingRow = (p, child) => `<tr class="${child ? "child" : "parent"}${p.cgroup ? " link" : ""}" data-path="${esc(p.cgroup || "")}" ${child ? "" : `data-uid="${esc(p.pod_uid)}"`}>
      <td><div class="name">${child ? esc(p.container || (p.container_id || "").slice(0, 12) || "container") : esc(podName(p))}</div>
        ${child ? "" : `<div class="sub">${esc(p.qos_class || "")}${p.requests_known ? "" : " · requests unknown"}</div>`}</td>
      <td data-key="request">${p.requests_known ? (p.request === null ? "none" : B(p.request)) : "?"}</td>
      <td data-key="limit">${p.requests_known ? (p.limit === null ? "none" : B(p.limit)) : "?"}</td>
      <td data-key="working_set">${B(p.working_set)}</td>
      <td data-key="peak_working_set">${B(p.peak_working_set)}</td>
      <td class="wrap verdicts">${verdictBadges(p.verdicts)}</td>
      <td data-key="suggested_request" data-value="${p.suggested ? p.suggested.request : ""}">${p.suggested ? B(p.suggested.request) : "–"}</td>
      <td data-key="suggested_limit" data-value="${p.suggested ? p.suggested.limit : ""}">${p.suggested ? B(p.suggested.limit) : "–"}</td></tr>`;
  const sizing = rq.pods.map((p) => sizingRow(p, false) + p.containers.filter((c) => !c.sandbox).map((c) => sizingRow(c, true)).join("")).join("");
  view().innerHTML = `<h1>Eviction</h1>
    <p class="muted">kubelet evicts when a signal's available memory falls below its threshold (${esc(threshold)}), then ranks pods:
      working set above request first, then lower priority, then the larger working set − request.</p>
    <div class="grid">
      <div class="card"><h2>Eviction signals</h2>${signals || `<div class="empty">No signal could be observed (root usage unknown, no kubepods cgroup).</div>`}</div>
      <div class="card"><h2>Next to go ${ev.under_pressure ? `<span class="badge met">now</span>` : `<span class="muted small">when a threshold is crossed</span>`}</h2>
        ${next ? `<div class="next-pod" id="next-pod"><div class="name big">${esc(podName(next))}</div><p>${esc(next.reason)}</p>
          ${next.cgroup ? `<a class="mono" href="${cgroupLink(next.cgroup)}">${esc(next.cgroup)}</a>` : `<span class="muted">no cgroup yet</span>`}</div>`
          : `<div class="empty">${ev.pods.length ? "Nobody: every pod is protected." : "No pods on this node."}</div>`}</div>
    </div>
    <div class="card wide" style="margin-bottom:16px"><h2>kubelet's eviction order</h2>
      ${rows ? `<table class="data" id="eviction-pods"><thead><tr><th>rank</th><th class="left">pod</th><th>priority</th><th>request</th><th>working set</th><th>over request</th><th class="wrap">reason</th></tr></thead><tbody>${rows}</tbody></table>`
        : `<div class="empty">No pods on this node.</div>`}</div>
    <div class="card wide"><h2>Requests and limits</h2>
      <dl class="facts" id="sizing-node">
        <dt>node</dt><dd>${esc(n.name || "unknown (give --node or use the API)")}</dd>
        <dt>allocatable</dt><dd>${B(n.allocatable)} <span class="muted small">the scheduler places a pod when its request fits in allocatable − Σ requests; real usage plays no part</span></dd>
        <dt>Σ requests</dt><dd>${B(n.requests)}${pct(n.requests_over_allocatable)} ${reqBar}</dd>
        <dt>room left</dt><dd>${n.room === null ? "unknown" : n.room >= 0 ? `${B(n.room)} <span class="muted small">a pod requesting more stays Pending</span>` : `none: requests exceed allocatable by ${B(-n.room)}`}</dd>
        <dt>Σ limits</dt><dd>${B(n.limits)}${pct(n.limits_over_allocatable)}${n.pods_without_limit ? ` · ${n.pods_without_limit} pod${n.pods_without_limit === 1 ? "" : "s"} without a limit` : ""}</dd>
        <dt>Σ working set</dt><dd>${B(n.working_set)} <span class="muted small">what the pods really use</span></dd>
        ${n.pods_without_requests_data ? `<dt>unknown</dt><dd>${n.pods_without_requests_data} pod${n.pods_without_requests_data === 1 ? "" : "s"} no source describes (not in the sums)</dd>` : ""}
      </dl>
      ${sizing ? `<table class="data" id="sizing"><thead><tr><th>pod / container</th><th>request</th><th>limit</th><th>working set</th><th>peak ws</th><th class="wrap">verdict</th><th>suggested request</th><th>suggested limit</th></tr></thead><tbody>${sizing}</tbody></table>` : ""}
      <p class="muted small">Suggested request = ${esc(rq.rule.request)}; limit = ${esc(rq.rule.limit)} (${esc(rq.rule.history)}).</p></div>`;
  ev.signals.forEach((s, i) => Charts.signalBar(document.getElementById("signal-" + i), s, { label: s.signal }));
  document.querySelectorAll("tr.link").forEach((tr) => tr.onclick = () => { if (tr.dataset.path) location.hash = cgroupLink(tr.dataset.path); });
}

// ---------------------------------------------------------------- routing
async function status() {
  try {
    const h = await api("/health");
    const at = h.last_collection ? new Date(h.last_collection.taken_at).toLocaleTimeString() : "–";
    document.getElementById("status").textContent = `${h.status} · collected ${at} · every ${h.interval_seconds}s · v${h.version}`;
    const f = await api("/findings?min_severity=warning");
    const n = f.findings.length;
    const badge = document.getElementById("findings-count");
    badge.textContent = n ? String(n) : "";
    badge.className = "count" + (f.findings.some((x) => x.severity === "critical") ? " critical" : n ? " warning" : "");
  } catch (e) { document.getElementById("status").textContent = e.login ? "token needed" : "agent unreachable"; }
}

async function route() {
  const hash = location.hash || "#/";
  const section = hash.startsWith("#/oom") ? "oom" : hash.startsWith("#/eviction") ? "eviction"
    : hash.startsWith("#/findings") ? "findings" : "overview";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === section));
  try {
    if (hash.startsWith("#/cgroup/")) await cgroupPage(decodeURI(hash.slice("#/cgroup".length)));
    else if (hash.startsWith("#/oom/")) await oomEvent(hash.slice("#/oom/".length));
    else if (hash.startsWith("#/oom")) await oomPage();
    else if (hash.startsWith("#/eviction")) await evictionPage();
    else if (hash.startsWith("#/findings")) await findingsPage();
    else await overview();
    document.body.dataset.ready = hash;
  } catch (e) { fail(e); }
  status();
}

window.addEventListener("hashchange", route);
route();
