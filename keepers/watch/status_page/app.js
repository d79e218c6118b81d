// The status page: reads the keeper's JSON API and redraws every few seconds. Plain JS,
// no build step and nothing from the internet. `?token=` (needed when the API has an
// api_token) is passed on as a bearer token, in the header (never a cookie); `?refresh=S`
// sets the period. With a token the page shows the controls (kill, resume, exit now):
// each asks for a confirmation and sends the operator's name, stored with the action.
"use strict";

const params = new URLSearchParams(window.location.search);
const token = params.get("token");
const refreshSeconds = Math.max(Number(params.get("refresh")) || 5, 1);
const LAST_TRADES = 8;

async function api(path, body = undefined) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const request = body === undefined ? { headers } : {
    method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const answer = await fetch(path, request);
  if (!answer.ok) {
    const detail = await answer.json().then((value) => value.error, () => "");
    throw new Error(`${path}: HTTP ${answer.status}${detail ? ` (${detail})` : ""}`);
  }
  return answer.json();
}

// A control button: what it asks the API (action, user, token) rides on data attributes.
function controlButton(label, action, user, tokenSymbol = "") {
  return el("button", { type: "button", class: `control ${action}`, "data-action": action, "data-user": user,
    "data-token": tokenSymbol }, label);
}

function controls(user) {
  if (!token) {
    return "";
  }
  return el("div", { class: "controls" }, controlButton("Kill", "kill", user.id),
    controlButton("Resume", "resume", user.id),
    ...user.tokens.map((symbol) => controlButton(`Exit ${symbol} now`, "exit-now", user.id, symbol)));
}

const CONFIRM = {
  kill: (user) => (user === "*" ? "Engage the GLOBAL kill switch: no user trades until it is resumed?"
    : `Engage ${user}'s kill switch: no trade of ${user} until it is resumed?`),
  resume: (user) => (user === "*" ? "Clear the global kill switch?" : `Clear ${user}'s kill switch?`),
  "exit-now": (user, symbol) => `Sell ${user}'s ${symbol} at the next cycle (reason "operator exit")?`,
};

async function control(button) {
  const { action, user } = button.dataset;
  const symbol = button.dataset.token;
  const operator = document.getElementById("operator").value.trim();
  const result = document.getElementById("control-result");
  if (!operator) {
    result.textContent = "Type your name as operator first: it is stored with the action.";
    return;
  }
  if (!window.confirm(CONFIRM[action](user, symbol))) {
    return;
  }
  const body = action === "exit-now" ? { user, token: symbol, operator } : { user, operator };
  try {
    const done = await api(`/api/control/${action}`, body);
    result.textContent = `${done.action} ${done.user}${done.token ? ` ${done.token}` : ""}: ${done.outcome
      || "requested; the next cycle acts on it"}`;
  } catch (failure) {
    result.textContent = `Refused: ${failure.message}`;
  }
  await refresh().catch(() => {});
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) {
    control(button);
  }
});

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
    controls(user),
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
  document.getElementById("global-controls").hidden = !token;
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
