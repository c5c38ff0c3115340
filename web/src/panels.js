// The side panels: headline KPIs (today and this month, with 环比 and 同比), category and
// channel breakdowns, the ranking of the area's children and the trend chart. Every number
// comes from /api/v1/stats; each panel keeps the URL it showed, so a check can ask the API the
// same question.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { getJson, serverUrl } from './api.js';
import { CHANNELS, change, int, pct } from './format.js';
import { cityMidnight, cityMonthStart, cityTime, nextMinute } from './time.js';

const HEADLINE = [
  { key: 'reports', label: '事件数', value: (k) => k.counts.reports, show: int, higherIsBetter: false },
  { key: 'closure_rate', label: '结案率', value: (k) => k.closure_rate, show: pct, rate: true },
  { key: 'on_time_rate', label: '按期结案率', value: (k) => k.on_time_rate, show: pct, rate: true },
  { key: 'satisfaction_rate', label: '满意率', value: (k) => k.satisfaction_rate, show: pct, rate: true },
  { key: 'overdue', label: '超期', value: (k) => k.counts.overdue, show: int, higherIsBetter: false },
];

/** Ranking keys of the map's metrics (reports per km² ranks by reports). */
const RANK_BY = { closure_rate: 'closure_rate', on_time_rate: 'on_time_rate', satisfaction_rate: 'satisfaction_rate', overdue: 'overdue', per_km2: 'reports' };

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

async function headline(grid, period, from, to) {
  const params = { grid, from: from.toISOString(), to: to.toISOString() };
  const answer = await getJson('/api/v1/stats/kpi', params);
  const box = document.querySelector(`.period[data-period="${period}"]`);
  box.dataset.query = serverUrl('/api/v1/stats/kpi', params);
  const rows = [];
  for (const h of HEADLINE) {
    const now = h.value(answer.current);
    const dd = el('dd', { textContent: h.show(now) });
    dd.dataset.kpi = h.key;
    dd.dataset.value = now === null ? '' : String(now);
    const opts = { rate: h.rate, higherIsBetter: h.higherIsBetter ?? true };
    const cmp = el('span', { className: 'cmp' },
      change('环比', now, h.value(answer.previous_period), opts), ' ',
      change('同比', now, h.value(answer.year_ago), opts));
    dd.append(cmp);
    rows.push(el('dt', { textContent: h.label }), dd);
  }
  box.querySelector('dl').replaceChildren(...rows);
  return answer.area;
}

function bars(section, rows, name) {
  const max = Math.max(1, ...rows.map((r) => r.kpis.counts.reports));
  section.querySelector('ol').replaceChildren(
    ...rows.map((r) => {
      const li = el('li', {},
        el('span', { className: 'name', textContent: name(r), title: name(r) }),
        el('span', { className: 'bar' }),
        el('span', { className: 'n', textContent: int(r.kpis.counts.reports) }));
      li.querySelector('.bar').style.width = `${(100 * r.kpis.counts.reports) / max}%`;
      li.dataset.key = r.key;
      li.dataset.reports = r.kpis.counts.reports;
      return li;
    }),
  );
}

async function breakdowns(grid, win) {
  const base = { grid, from: win.from, to: win.to };
  const [major, channel] = await Promise.all([
    getJson('/api/v1/stats/breakdown', { ...base, by: 'major' }),
    getJson('/api/v1/stats/breakdown', { ...base, by: 'channel' }),
  ]);
  const cats = document.getElementById('categories');
  cats.dataset.query = serverUrl('/api/v1/stats/breakdown', { ...base, by: 'major' });
  bars(cats, major.slice(0, 12), (r) => r.name ?? r.key);
  const chans = document.getElementById('channels');
  chans.dataset.query = serverUrl('/api/v1/stats/breakdown', { ...base, by: 'channel' });
  bars(chans, channel, (r) => CHANNELS[r.key] ?? r.key);
}

async function ranking(grid, level, win, metric, metricLabel, onPick) {
  const box = document.getElementById('ranking');
  const list = box.querySelector('ol');
  if (level === '3' || level === 'micro' || level === 'exclusive') {
    list.replaceChildren(el('li', { textContent: '该区域无下级网格' }));
    box.dataset.query = '';
    return;
  }
  const by = RANK_BY[metric];
  const params = { grid, from: win.from, to: win.to, by, order: 'desc', limit: 10 };
  const rows = await getJson('/api/v1/stats/ranking', params);
  box.dataset.query = serverUrl('/api/v1/stats/ranking', params);
  document.getElementById('ranking-metric').textContent = by === 'reports' ? '事件数' : metricLabel;
  const show = by.endsWith('_rate') ? (k) => pct(k[by]) : (k) => int(k.counts[by]);
  list.replaceChildren(
    ...rows.map((r, i) => {
      const li = el('li', {},
        el('span', { className: 'pos', textContent: String(i + 1) }),
        el('span', { className: 'name', textContent: r.name ?? r.key }),
        el('span', { className: 'v', textContent: show(r.kpis) }));
      li.dataset.code = r.key;
      li.addEventListener('click', () => onPick(r.key));
      return li;
    }),
  );
}

/** The trend chart: reports per bucket and 结案率, over 24 hours (hourly) or 30 days. */
class Trend {
  constructor(container) {
    this.container = container;
    this.plot = null;
  }

  async load(grid, span) {
    const now = new Date();
    const to = nextMinute(now);
    const hourly = span === '24h';
    const stepMs = hourly ? 3600e3 : 86400e3;
    const first = hourly
      ? new Date(Math.floor((to.getTime() - 24 * 3600e3) / 3600e3) * 3600e3 + 3600e3)
      : new Date(cityMidnight(now).getTime() - 29 * 86400e3);
    const params = { grid, from: first.toISOString(), to: to.toISOString(), by: hourly ? 'hour' : 'day' };
    const rows = await getJson('/api/v1/stats/series', params);
    this.container.dataset.query = serverUrl('/api/v1/stats/series', params);
    const byStart = new Map(rows.map((r) => [Date.parse(r.key), r.kpis]));
    const xs = [];
    const reports = [];
    const closure = [];
    for (let t = first.getTime(); t < to.getTime(); t += stepMs) {
      const k = byStart.get(t);
      xs.push(t / 1000);
      reports.push(k ? k.counts.reports : 0);
      closure.push(k && k.closure_rate !== null ? k.closure_rate * 100 : null);
    }
    this.draw([xs, reports, closure], hourly);
  }

  draw(data, hourly) {
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    const size = { width: this.container.clientWidth, height: this.container.clientHeight };
    if (this.plot && this.plot.hourly === hourly) {
      this.plot.setData(data);
      this.plot.setSize(size);
      return;
    }
    this.plot?.destroy();
    const axis = { stroke: '#7f9bb8', grid: { stroke: 'rgba(95,211,255,0.1)' }, ticks: { stroke: 'rgba(95,211,255,0.2)' }, font: `${0.6 * rem}px sans-serif` };
    this.plot = new uPlot(
      {
        ...size,
        legend: { show: false },
        cursor: { show: false },
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Asia/Shanghai'),
        scales: { x: { time: true }, rate: { range: [0, 100] } },
        axes: [
          { ...axis, values: hourly ? '{HH}:00' : '{M}/{D}' },
          { ...axis, size: 3 * rem },
          { ...axis, scale: 'rate', side: 1, size: 2.4 * rem, values: (u, v) => v.map((x) => `${x}%`), grid: { show: false } },
        ],
        series: [
          {},
          { label: '事件数', stroke: '#5fd3ff', fill: 'rgba(95,211,255,0.18)', width: 1.5 },
          { label: '结案率', stroke: '#52c41a', scale: 'rate', width: 1.5, spanGaps: true },
        ],
      },
      data,
      this.container,
    );
    this.plot.hourly = hourly;
  }
}

/** All panels, refreshed together for an area and a window. */
export class Panels {
  constructor({ onPick }) {
    this.onPick = onPick;
    this.trend = new Trend(document.getElementById('trend-chart'));
    this.trendSpan = '24h';
    this.running = null;
    this.again = false;
  }

  /** Refreshes every panel for `ctx = {area: {code, level, name}, win, metric, metricLabel}`. */
  async refresh(ctx) {
    this.ctx = ctx;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.load(ctx).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.refresh(this.ctx);
      }
    });
    return this.running;
  }

  async load({ area, win, metric, metricLabel }) {
    const grid = area.code ?? undefined;
    const now = new Date();
    const to = nextMinute(now);
    document.getElementById('area-name').textContent = area.name ?? '全市';
    for (const s of document.querySelectorAll('.window-label')) s.textContent = win.label;
    const results = await Promise.allSettled([
      headline(grid, 'today', cityMidnight(now), to),
      headline(grid, 'month', cityMonthStart(now), to),
      breakdowns(grid, win),
      ranking(grid, area.level, win, metric, metricLabel, this.onPick),
      this.trend.load(grid, this.trendSpan),
    ]);
    const failed = results.filter((r) => r.status === 'rejected');
    for (const f of failed) console.warn('panel refresh failed:', f.reason?.message ?? f.reason);
    document.body.dataset.panelsAt = cityTime(new Date(), { seconds: true });
  }

  setTrend(span) {
    this.trendSpan = span;
    const grid = this.ctx?.area.code ?? undefined;
    return this.trend.load(grid, span);
  }
}

