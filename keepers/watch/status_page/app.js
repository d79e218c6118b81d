// The status page: reads the keeper's read-only JSON API and redraws every few seconds.
// Plain JS, no build step and nothing from the internet. `?token=` (needed when the API
// has an api_token) is passed on as a bearer token; `?refresh=S` sets the period.
"use strict";

const params = new URLSearchParams(window.location.search);
const token = params.get("token");
const refreshSeconds = Math.max(Number(params.get("refresh")) || 5, 1);
const LAST_TRADES = 8;

async function api(path) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const answer = await fetch(path, { headers });
  if (!answer.ok) {
    throw new Error(`${path}: HTTP ${answer.status}`);
  }
  return answer.json();
}

// Builds an element; children are nodes or text (never parsed as HTML).
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child ?? ""));
  }
  return node;
}

function number(value, digits = 2) {
  return value === null || value === undefined ? "-" : Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
}

function shortTime(iso) {
  return iso ? iso.replace("T", " ").slice(0, 16) : "-";
}

function equityChart(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "equity");
  svg.setAttribute("viewBox", "0 0 500 100");
  svg.setAttribute("preserveAspectRatio", "none");
  if (points.length >= 2) {
    const values = points.map((point) => point.value);
    const low = Math.min(...values);
    const span = Math.max(...values) - low || 1;
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", values.map((value, index) =>
      `${(index / (values.length - 1)) * 500},${95 - ((value - low) / span) * 90}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function userCard(user, equity, trades) {
  const locks = user.locks.map((lock) => el("li", { class: "lock" },
    `${lock.kill_switch ? "KILL SWITCH" : lock.rule} ${lock.asset}: ${lock.reason}`
    + (lock.until ? ` (until ${shortTime(lock.until)})` : "")));
  const positions = user.positions.map((p) => `${number(p.amount, 6)} ${p.asset} (${p.strategy})`).join(", ");
  const cycle = user.last_cycle;
  const rows = trades.map((t) => el("tr", { class: "trade", "data-trade-id": t.trade_id },
    el("td", {}, shortTime(t.bar_time)), el("td", {}, `${t.asset} ${t.strategy}`), el("td", {}, t.side),
    el("td", {}, `${number(t.amount_in, 4)} ${t.token_in} → ${number(t.amount_out, 4)} ${t.token_out}`),
    el("td", {}, t.status)));
  return el("section", { class: "user", id: `user-${user.id}` },
    el("h2", {}, user.id + (user.enabled ? "" : " (disabled)")),
    el("div", { class: "figures" },
      el("div", {}, "vault value", el("b", { class: "vault-value" }, number(user.vault_value_quote))),
      el("div", {}, "realised PnL", el("b", {}, number(user.realised_pnl_quote))),
      el("div", {}, "last cycle", el("b", {}, cycle ? shortTime(cycle.block_time || cycle.started_at) : "never"))),
    cycle && cycle.error ? el("p", { class: "lock" }, `error: ${cycle.error}`) : "",
    equityChart(equity),
    el("p", {}, `positions: ${positions || "none"}`),
    el("p", { class: "balances" }, `vault balances: ${user.balances ? Object.entries(user.balances.tokens)
      .map(([symbol, amount]) => `${number(amount, 4)} ${symbol}`).join(", ") : "not read yet"}`),
    locks.length ? el("ul", { class: "locks" }, ...locks) : el("p", { class: "muted" }, "no locks"),
    el("table", {}, el("thead", {}, el("tr", {}, ...["bar", "trade", "side", "amounts", "status"].map(
      (name) => el("th", {}, name)))), el("tbody", {}, ...rows)));
}

async function refresh() {
  const [health, users] = await Promise.all([api("/api/health"), api("/api/users")]);
  const cards = await Promise.all(users.map(async (user) => userCard(
    user,
    await api(`/api/users/${encodeURIComponent(user.id)}/equity`),
    await api(`/api/trades?user=${encodeURIComponent(user.id)}&limit=${LAST_TRADES}`),
  )));
  const badge = document.getElementById("health");
  badge.textContent = health.alive ? `keepers alive (${health.keepers.length})` : `DEAD MAN: ${health.dead_reason}`;
  badge.className = `badge ${health.alive ? "ok" : "bad"}`;
  const pending = health.admin_operations_pending;
  const admin = document.getElementById("admin-operations");
  admin.textContent = pending ? `${pending} admin operation(s) pending` : "";
  admin.className = `badge ${pending ? "bad" : ""}`;
  document.getElementById("users").replaceChildren(...cards);
  document.getElementById("updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
}

async function loop() {
  const error = document.getElementById("error");
  try {
    await refresh();
    error.hidden = true;
  } catch (failure) {
    error.textContent = `Cannot read the API: ${failure.message}`;
    error.hidden = false;
  }
  window.setTimeout(loop, refreshSeconds * 1000);
}

loop();
