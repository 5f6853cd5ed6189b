// anyrec's page: plain DOM code over the /v1 API (no framework, nothing fetched from elsewhere).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { user: null, recId: null, variant: null, timings: [] };
window.anyrecTimings = state.timings; // list-update times (ms) after a click, read by the browser tests

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  const resp = await fetch(path, { ...options, headers });
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const detail = Array.isArray(body?.detail) ? body.detail.map((d) => d.msg).join("; ") : JSON.stringify(body);
    throw new Error(`${resp.status}: ${detail}`);
  }
  return body;
}

function say(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

// ---- the user view ----------------------------------------------------------------
function picture(item) {
  // The item's picture: a URL as the catalog gives it, or this service's /v1/items/{id}/image (read with the key,
  // when one is entered: an <img> cannot send it, so the bytes are fetched and shown from memory).
  if (!item.image) return null;
  const img = el("img", { class: "picture", alt: "", loading: "lazy" });
  img.addEventListener("error", () => img.remove());  // a file that is no picture: the card goes without
  const key = $("api-key").value.trim();
  if (item.image.startsWith("/") && key) {
    fetch(item.image, { headers: { Authorization: `Bearer ${key}` } })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(String(r.status)))))
      .then((b) => { img.src = URL.createObjectURL(b); })
      .catch(() => img.remove());
  } else {
    img.src = item.image;
  }
  return img;
}

function card(item, withActions) {
  // This card's own reasons: the history items behind this item, with what the user did ("you rated … 5").
  const because = item.because?.length
    ? el("p", { class: "because", title: item.because.map((b) => `${b.title}: ${b.contribution.toFixed(3)}`).join("\n") },
        item.sentence || `because of: ${item.because.map((b) => `“${b.title}”`).join(" · ")}`)
    : el("p", { class: "because muted" }, item.category ? "" : "");
  const node = el("article", { class: "card", "data-id": item.id },
    ...[picture(item)].filter(Boolean),
    el("h3", {}, el("button", { type: "button", class: "link", onclick: () => openItem(item.id) }, item.title)),
    el("p", { class: "snippet" }, item.snippet || ""),
    el("p", { class: "meta" }, [item.category, `score ${item.score.toFixed(3)}`].filter(Boolean).join(" · ")),
    because);
  if (withActions) {
    const actions = el("div", { class: "actions" });
    for (const [type, label] of [["like", "Like"], ["dislike", "Dislike"], ["click", "Open"]]) {
      actions.append(el("button", { type: "button", "data-action": type, "aria-label": `${label} ${item.title}`,
        onclick: () => feedback(item.id, type) }, label));
    }
    node.append(actions);
  }
  return node;
}

const hasKey = () => $("api-key").value.trim() !== "";
const NEEDS_KEY = { events: [], needsKey: true };  // who did what is read with a key only

async function refresh() {
  const user = state.user;
  if (!user) return;
  const [hist, recs] = await Promise.all([
    hasKey() ? api(`/v1/users/${encodeURIComponent(user)}/history?limit=10`) : NEEDS_KEY,
    api(`/v1/users/${encodeURIComponent(user)}/recommendations?k=10&explain=true`),
  ]);
  if (user !== state.user) return;  // another user was chosen meanwhile: their answer draws the list, not this late one
  $("history").replaceChildren(...(hist.events.length ? hist.events.map((e) => el("li", {}, `${e.title} `,
      el("span", { class: "muted" }, e.type === "rating" && e.value != null ? `rated ${e.value}` : e.type)))
    : [el("li", { class: "muted" }, hist.needsKey ? "enter an API key above to see the history" : "nothing yet")]));
  state.recId = recs.recommendation_id;
  state.variant = recs.variant || null;
  $("list-meta").textContent = `model ${recs.model_version}${recs.variant ? ` (experiment variant ${recs.variant})` : ""}`
    + (recs.cold_start ? " · new visitor: what is popular now" : "");
  $("cards").replaceChildren(...recs.items.map((i) => card(i, true)));
}

async function feedback(item, type) {
  const t0 = performance.now();
  try {
    await api("/v1/events", { method: "POST", body: JSON.stringify({ user: state.user, item, type, recommendation_id: state.recId }) });
    await refresh();
    state.timings.push(performance.now() - t0);
    say(`${type} recorded; the list is updated`);
  } catch (err) {
    say(err.message.startsWith("401") ? "an API key is needed for feedback (top right)" : err.message, true);
  }
}

async function choose(user) {
  state.user = user;
  $("user-input").value = user;
  say(`user ${user}`);
  try { await refresh(); } catch (err) { say(err.message, true); }
}

async function openItem(id) {
  const [item, sim] = await Promise.all([api(`/v1/items/${encodeURIComponent(id)}`), api(`/v1/items/${encodeURIComponent(id)}/similar?k=8`)]);
  $("item-title").textContent = item.fields.title || id;
  $("item-text").textContent = Object.entries(item.fields).filter(([k]) => k !== "title").map(([, v]) => v).join(" · ");
  $("similar").replaceChildren(...sim.items.map((i) => el("li", {}, i.title, el("span", { class: "muted" }, ` ${i.score.toFixed(3)}`))));
  $("item-dialog").showModal();
}

async function search(event) {
  event.preventDefault();
  const query = $("search-input").value.trim();
  if (!query) return;
  const body = { query, k: 10 };
  if ($("search-personal").checked && state.user) body.user = state.user;
  try {
    const res = await api("/v1/search", { method: "POST", body: JSON.stringify(body) });
    $("results-title").hidden = false;
    $("results").replaceChildren(...res.items.map((i) => card(i, false)));
  } catch (err) { say(err.message, true); }
}

// ---- the admin view ---------------------------------------------------------------
function chart(points) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 640, h = 200, pad = 30, top = 48;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const line = (key, colour, label, row) => {
    const max = Math.max(1, ...points.map((p) => p[key]));
    const xs = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
    const ys = (v) => h - pad - (v * (h - pad - top)) / max;
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", points.map((p, i) => `${xs(i)},${ys(p[key])}`).join(" "));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", colour);
    path.setAttribute("stroke-width", "2");
    svg.append(path);
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", pad);
    text.setAttribute("y", 16 + row * 16);
    text.setAttribute("fill", colour);
    text.textContent = `${label} (max ${max.toLocaleString()})`;
    svg.append(text);
  };
  line("events", "#2563eb", "events received", 0);
  line("items", "#16a34a", "catalog items", 1);
  const when = (t) => new Date(t * 1000).toLocaleString();
  for (const [x, anchor, t] of [[pad, "start", points[0]?.time], [w - pad, "end", points[points.length - 1]?.time]]) {
    if (t === undefined) continue;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x);
    label.setAttribute("y", h - 8);
    label.setAttribute("text-anchor", anchor);
    label.setAttribute("fill", "#6b7280");
    label.setAttribute("font-size", "11");
    label.textContent = when(t);
    svg.append(label);
  }
  return svg;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

async function loadAdmin() {
  try {
    const [versions, stats, report, exps] = await Promise.all([api("/v1/models"), api("/v1/stats"), api("/v1/report"), api("/v1/experiments")]);
    $("versions").tBodies[0].replaceChildren(...versions.map((v) => el("tr", { "data-version": v.version },
      el("td", {}, v.version), el("td", {}, v.model),
      el("td", {}, v.metrics["valid_ndcg@10"] !== undefined ? Number(v.metrics["valid_ndcg@10"]).toFixed(4) : "–"),
      el("td", {}, new Date(v.created_at * 1000).toLocaleString()),
      el("td", {}, v.active ? "active" : ""),
      el("td", {}, v.active ? "" : el("button", { type: "button", "data-activate": v.version, onclick: () => activate(v.version) },
        `Activate ${v.version}`)))));
    $("counts").textContent = `${stats.items.toLocaleString()} items · ${stats.users.toLocaleString()} users · ${stats.events.toLocaleString()} events`;
    $("timeline").replaceChildren(chart(stats.timeline));
    const evalBox = $("evaluation");
    if (report.models) {
      const metrics = Object.keys(Object.values(report.models)[0]).filter((m) => /^(ndcg|recall|mrr)@/.test(m));
      const dataset = typeof report.dataset === "string" ? report.dataset : report.dataset?.name ?? "";
      evalBox.replaceChildren(el("p", { class: "meta" }, `${dataset} · ${report.protocol ?? ""} · full ranking`),
        table(["model", ...metrics], Object.entries(report.models).map(([name, m]) => [name, ...metrics.map((k) => Number(m[k]).toFixed(4))])),
        ...(report.plot ? [el("img", { src: "/v1/report/plot", alt: "evaluation plot", class: "plot" })] : []));
    } else {
      evalBox.replaceChildren(el("p", { class: "muted" }, "no evaluation given (anyrec serve --report results/demo.json)"));
    }
    $("experiments").replaceChildren(...(exps.length ? await Promise.all(exps.map(experimentView)) : [el("p", { class: "muted" }, "none running")]));
  } catch (err) { say(err.message, true); }
}

async function experimentView(exp) {
  const rep = await api(`/v1/experiments/${encodeURIComponent(exp.name)}/report`);
  const rows = rep.variants.map((v) => [v.name, v.model_version, v.impressions, v.clicks, v.conversions,
    `${(100 * v.ctr).toFixed(2)} % [${(100 * v.ctr_low).toFixed(2)}, ${(100 * v.ctr_high).toFixed(2)}]`]);
  return el("div", { class: "experiment" }, el("h3", {}, `${exp.name} (${exp.status})`),
    table(["variant", "version", "impressions", "clicks", "conversions", "CTR, 95 % interval"], rows),
    el("p", {}, rep.significant ? `${rep.winner} wins (p = ${rep.p_value.toExponential(2)})` : `no significant difference yet (p = ${rep.p_value.toFixed(3)})`),
    exp.status === "running" ? el("button", { type: "button", onclick: () => promote(exp.name) }, "Promote the winner") : "");
}

async function activate(version) {
  try { await api(`/v1/models/${encodeURIComponent(version)}/activate`, { method: "POST" }); say(`${version} is active`); await loadAdmin(); }
  catch (err) { say(err.message.startsWith("401") ? "an API key is needed (top right)" : err.message, true); }
}

async function promote(name) {
  try { const r = await api(`/v1/experiments/${encodeURIComponent(name)}/promote`, { method: "POST" }); say(`promoted ${r.model_version}`); await loadAdmin(); }
  catch (err) { say(err.message, true); }
}

function show(view) {
  const admin = view === "admin";
  $("view-user").hidden = admin;
  $("view-admin").hidden = !admin;
  $("tab-user").setAttribute("aria-pressed", String(!admin));
  $("tab-admin").setAttribute("aria-pressed", String(admin));
  if (admin) loadAdmin(); else refresh();
}

async function start() {
  $("api-key").value = localStorage.getItem("anyrec-key") || "";
  $("api-key").addEventListener("change", () => { localStorage.setItem("anyrec-key", $("api-key").value.trim()); loadUsers(); });
  $("tab-user").addEventListener("click", () => show("user"));
  $("tab-admin").addEventListener("click", () => show("admin"));
  $("search-form").addEventListener("submit", search);
  $("item-close").addEventListener("click", () => $("item-dialog").close());
  $("new-visitor").addEventListener("click", () => choose(`visitor-${Math.random().toString(36).slice(2, 8)}`));
  $("user-input").addEventListener("change", () => $("user-input").value.trim() && choose($("user-input").value.trim()));
  $("user-select").addEventListener("change", () => choose($("user-select").value));
  await loadUsers();
}

async function loadUsers() {
  // The most active users are listed for a key holder only (GET /v1/users needs a read key).
  if (!hasKey()) {  // without a key: a new visitor's list (what is popular now), until a key or a user id is given
    $("user-select").replaceChildren(el("option", { value: "" }, "enter an API key to list users"));
    if (!state.user) await choose(`visitor-${Math.random().toString(36).slice(2, 8)}`);
    return;
  }
  try {
    const users = await api("/v1/users?limit=30");
    $("user-select").replaceChildren(...users.users.map((u) => el("option", { value: u.id }, `${u.id} (${u.events} events)`)));
    if (users.users.length && !state.user) await choose(users.users[0].id);
  } catch (err) { say(err.message, true); }
}

document.addEventListener("DOMContentLoaded", start);
