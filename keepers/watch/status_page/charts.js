// The status page's charts, drawn with TradingView's lightweight-charts (served by the
// API from the pinned npm package: no CDN). What they show comes computed from the API:
// the price bars the keeper decided on, every trade as a marker (hover: time, amount,
// price, strategy, reason), the strategies' indicator lines (computed server-side by the
// strategies' own code) with the oscillators (RSI, MACD) in panes below, and the user's
// equity with its peak and the drawdown kill switch's level.
"use strict";

const LWC = window.LightweightCharts;
const PALETTE = ["#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"];
const BASE_OPTIONS = {
  autoSize: true,
  // The library's own logo needs an inline <style>, which the page's CSP refuses: the
  // attribution its license asks for (the NOTICE and a link) is in the page's footer.
  layout: { background: { color: "#ffffff" }, textColor: "#1d2330", fontSize: 11, attributionLogo: false },
  grid: { vertLines: { color: "#eef0f4" }, horzLines: { color: "#eef0f4" } },
  localization: { dateFormat: "yyyy-MM-dd" },
  rightPriceScale: { borderColor: "#d5d9e0" },
  timeScale: { borderColor: "#d5d9e0" },
};

function utcDate(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
}

function amountText(value, digits) {
  return value === null || value === undefined ? "-" : Number(value).toLocaleString("en-US", {
    maximumFractionDigits: digits,
  });
}

function tradeText(trade, data) {
  return `${trade.side} ${amountText(trade.amount, 6)} ${data.token} at ${amountText(trade.price, 2)} ${data.quote}`
    + ` · ${trade.strategy} · ${trade.reason || "-"} · bar ${utcDate(trade.time)} UTC (${trade.status})`;
}

// One user's chart of one token: candles with trade markers and indicator lines, the
// oscillators in panes below. ``legend`` shows what is under the cursor.
class PriceChart {
  constructor(container, legend) {
    this.chart = LWC.createChart(container, { ...BASE_OPTIONS, timeScale: { ...BASE_OPTIONS.timeScale } });
    this.candles = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: "#1f7a3a", downColor: "#b3261e", borderVisible: false,
      wickUpColor: "#1f7a3a", wickDownColor: "#b3261e",
    });
    // A bar of one oracle reading is a flat candle: the line through the closes shows the path.
    this.closes = this.chart.addSeries(LWC.LineSeries, {
      color: "#9aa3b5", lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false,
    });
    this.markers = LWC.createSeriesMarkers(this.candles, []);
    this.lines = new Map();
    this.tradesAt = new Map();
    this.legend = legend;
    this.chart.subscribeCrosshairMove((param) => this.hover(param));
  }

  draw(data) {
    this.data = data;
    this.candles.setData(data.bars);
    this.closes.setData(data.bars.map((bar) => ({ time: bar.time, value: bar.close })));
    const trades = [...data.trades].sort((a, b) => a.time - b.time);
    this.tradesAt = new Map();
    for (const trade of trades) {
      this.tradesAt.set(trade.time, [...(this.tradesAt.get(trade.time) || []), trade]);
    }
    this.markers.setMarkers(trades.map((trade) => ({
      time: trade.time, id: trade.trade_id, text: trade.side,
      position: trade.side === "BUY" ? "belowBar" : "aboveBar",
      shape: trade.side === "BUY" ? "arrowUp" : "arrowDown",
      color: trade.status !== "mined" ? "#8a93a6" : trade.side === "BUY" ? "#1f7a3a" : "#b3261e",
    })));
    const panes = [...new Set(data.indicators.filter((line) => line.pane === "lower").map((line) => line.strategy))];
    data.indicators.forEach((line) => {
      const key = `${line.strategy} ${line.name}`;
      if (!this.lines.has(key)) {
        const kind = line.kind === "histogram" ? LWC.HistogramSeries : LWC.LineSeries;
        const pane = line.pane === "price" ? 0 : 1 + panes.indexOf(line.strategy);
        this.lines.set(key, this.chart.addSeries(kind, {
          color: PALETTE[this.lines.size % PALETTE.length], lineWidth: 1, title: key,
          priceLineVisible: false, lastValueVisible: false,
        }, pane));
      }
      this.lines.get(key).setData(line.points);
    });
    this.chart.panes().forEach((pane, index) => pane.setStretchFactor(index === 0 ? 4 : 1));
    this.legend.textContent = this.summary();
  }

  summary() {
    const last = this.data.bars[this.data.bars.length - 1];
    return last ? `${this.data.token} (${this.data.series}) close ${amountText(last.close, 2)} ${this.data.quote}`
      + ` at bar ${utcDate(last.time)} UTC; ${this.data.trades.length} trade(s); hover a marker for its details`
      : `${this.data.token}: no bars stored yet`;
  }

  hover(param) {
    const trades = param.time === undefined ? undefined : this.tradesAt.get(param.time);
    if (trades) {
      this.legend.textContent = trades.map((trade) => tradeText(trade, this.data)).join(" | ");
      return;
    }
    const bar = param.time === undefined ? undefined : param.seriesData.get(this.candles);
    this.legend.textContent = bar ? `${utcDate(param.time)} UTC  O ${amountText(bar.open, 2)}`
      + `  H ${amountText(bar.high, 2)}  L ${amountText(bar.low, 2)}`
      + `  C ${amountText(bar.close, 2)} ${this.data.quote}` : this.summary();
  }
}

// One user's equity: the vault value per cycle, its peak, and the level at which the
// drawdown kill switch engages.
class EquityChart {
  constructor(container) {
    this.chart = LWC.createChart(container, {
      ...BASE_OPTIONS, timeScale: { ...BASE_OPTIONS.timeScale, timeVisible: true },
    });
    this.value = this.chart.addSeries(LWC.LineSeries, { color: "#2756c5", lineWidth: 2, title: "vault value" });
    this.peak = this.chart.addSeries(LWC.LineSeries, {
      color: "#8a93a6", lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, title: "peak", priceLineVisible: false,
    });
    this.kill = this.chart.addSeries(LWC.LineSeries, {
      color: "#b3261e", lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, title: "kill switch",
      priceLineVisible: false,
    });
  }

  draw(points) {
    this.value.setData(points.map((point) => ({ time: point.time, value: point.value })));
    this.peak.setData(points.map((point) => ({ time: point.time, value: point.peak })));
    this.kill.setData(points.filter((point) => point.kill_level !== null)
      .map((point) => ({ time: point.time, value: point.kill_level })));
  }
}

window.SentinelCharts = { PriceChart, EquityChart };
