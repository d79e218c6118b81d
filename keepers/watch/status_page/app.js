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
const LAST_DECISIONS = 12;
const LAST_ACTIONS = 10;

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

// The charts of each user (keepers/watch/status_page/charts.js), kept across refreshes so
// a zoom stays; "user/token" -> PriceChart, user -> EquityChart. Tests read them.
const priceCharts = new Map();
const equityCharts = new Map();
window.statusPage = { priceCharts, equityCharts };

function table(className, headings, rows) {
  return el("table", { class: className }, el("thead", {}, el("tr", {}, ...headings.map((name) => el("th", {}, name)))),
    el("tbody", {}, ...rows));
}

// A user's card: made once (the charts live in it), its figures and tables redrawn each refresh.
function userCard(user) {
  let card = document.getElementById(`user-${user.id}`);
  if (card) {
    return card;
  }
  const tokenCharts = user.tokens.map((symbol) => el("div", { class: "price", "data-token": symbol },
    el("p", { class: "legend" }), el("div", { class: "chart" })));
  card = el("section", { class: "user", id: `user-${user.id}` }, el("h2", {}, user.id),
    el("div", { class: "summary" }), el("div", { class: "charts" }, ...tokenCharts,
      el("div", { class: "equity" }, el("p", { class: "legend" }, "vault value, its peak and the kill switch's level"),
        el("div", { class: "chart" }))),
    el("h3", {}, "latest decisions"), el("div", { class: "decisions" }),
    el("h3", {}, "latest trades"), el("div", { class: "trades" }));
  document.getElementById("users").append(card);
  for (const box of tokenCharts) {
    priceCharts.set(`${user.id}/${box.dataset.token}`,
      new window.SentinelCharts.PriceChart(box.querySelector(".chart"), box.querySelector(".legend")));
  }
  equityCharts.set(user.id, new window.SentinelCharts.EquityChart(card.querySelector(".equity .chart")));
  return card;
}

function summary(user) {
  const locks = user.locks.map((lock) => el("li", { class: "lock" },
    `${lock.kill_switch ? "KILL SWITCH" : lock.rule} ${lock.asset}: ${lock.reason}`
    + (lock.until ? ` (until ${shortTime(lock.until)})` : "")));
  const positions = user.positions.map((p) => `${number(p.amount, 6)} ${p.asset} (${p.strategy})`).join(", ");
  const cycle = user.last_cycle;
  return [
    el("div", { class: "figures" },
      el("div", {}, "vault value", el("b", { class: "vault-value" }, number(user.vault_value_quote))),
      el("div", {}, "realised PnL", el("b", {}, number(user.realised_pnl_quote))),
      el("div", {}, "last cycle", el("b", {}, cycle ? shortTime(cycle.block_time || cycle.started_at) : "never")),
      user.enabled ? "" : el("div", { class: "lock" }, "disabled")),
    cycle && cycle.error ? el("p", { class: "lock" }, `error: ${cycle.error}`) : "",
    el("p", {}, `positions: ${positions || "none"}`),
    el("p", { class: "balances" }, `vault balances: ${user.balances ? Object.entries(user.balances.tokens)
      .map(([symbol, amount]) => `${number(amount, 4)} ${symbol}`).join(", ") : "not read yet"}`),
    locks.length ? el("ul", { class: "locks" }, ...locks) : el("p", { class: "muted" }, "no locks"),
    controls(user),
  ];
}

function indicatorText(indicators) {
  return Object.entries(indicators || {}).filter(([name]) => name !== "close")
    .map(([name, value]) => `${name} ${value === null ? "-" : Number(value).toPrecision(4)}`).join(", ");
}

function decisionsTable(signals) {
  return table("decisions", ["bar", "token", "strategy", "signal", "reason", "indicators", "outcome"],
    signals.map((s) => el("tr", { class: `decision ${s.outcome && s.outcome.includes(" trade 0x") ? "traded" : ""}` },
      el("td", {}, shortTime(s.bar_time)), el("td", {}, s.asset), el("td", {}, s.strategy),
      el("td", {}, `${s.action} ${number(s.confidence, 2)}`), el("td", {}, s.reason),
      el("td", { class: "muted" }, indicatorText(s.indicators)),
      el("td", { class: "outcome" }, s.outcome || "not acted on yet"))));
}

function tradesTable(trades) {
  return table("trades", ["bar", "trade", "side", "amounts", "status"], trades.map((t) => el("tr",
    { class: "trade", "data-trade-id": t.trade_id },
    el("td", {}, shortTime(t.bar_time)), el("td", {}, `${t.asset} ${t.strategy}`), el("td", {}, t.side),
    el("td", {}, `${number(t.amount_in, 4)} ${t.token_in} → ${number(t.amount_out, 4)} ${t.token_out}`),
    el("td", {}, t.status))));
}

async function refreshUser(user) {
  const id = encodeURIComponent(user.id);
  const [equity, trades, signals, ...tokenCharts] = await Promise.all([
    api(`/api/users/${id}/equity`), api(`/api/trades?user=${id}&limit=${LAST_TRADES}`),
    api(`/api/signals?user=${id}&limit=${LAST_DECISIONS}`),
    ...user.tokens.map((symbol) => api(`/api/users/${id}/chart?token=${encodeURIComponent(symbol)}`))]);
  const card = userCard(user);
  card.querySelector(".summary").replaceChildren(...summary(user));
  card.querySelector(".decisions").replaceChildren(decisionsTable(signals));
  card.querySelector(".trades").replaceChildren(tradesTable(trades));
  tokenCharts.forEach((data) => priceCharts.get(`${user.id}/${data.token}`).draw(data));
  equityCharts.get(user.id).draw(equity);
}

function actionsTable(actions) {
  return table("actions", ["asked", "action", "user", "operator", "from", "status", "outcome"], actions.map((a) =>
    el("tr", { class: "action" }, el("td", {}, shortTime(a.requested_at)),
      el("td", {}, `${a.action}${a.token ? ` ${a.token}` : ""}`), el("td", {}, a.user), el("td", {}, a.operator),
      el("td", {}, a.client_address), el("td", {}, a.status), el("td", { class: "outcome" }, a.outcome || ""))));
}

async function refresh() {
  const [health, users, actions] = await Promise.all([api("/api/health"), api("/api/users"),
    api(`/api/control-actions?limit=${LAST_ACTIONS}`)]);
  users.forEach(userCard); // in the API's order, before any of their data arrives
  await Promise.all(users.map(refreshUser));
  document.getElementById("actions").replaceChildren(...(actions.length
    ? [el("h3", {}, "operators' actions"), actionsTable(actions)] : []));
  const badge = document.getElementById("health");
  badge.textContent = health.alive ? `keepers alive (${health.keepers.length})` : `DEAD MAN: ${health.dead_reason}`;
  badge.className = `badge ${health.alive ? "ok" : "bad"}`;
  const pending = health.admin_operations_pending;
  const admin = document.getElementById("admin-operations");
  admin.textContent = pending ? `${pending} admin operation(s) pending` : "";
  admin.className = `badge ${pending ? "bad" : ""}`;
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
