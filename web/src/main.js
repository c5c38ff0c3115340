// The map wall 一屏观全域: wires the map, the panels, the live feed, the time bar and the
// drill-down together. State lives here; the modules draw.

import './wall.css';

import { apiKey, getJson, takeKeyFromAddress } from './api.js';
import { closeReport, showReport } from './detail.js';
import { FeedList, follow } from './feed.js';
import { LEVELS } from './format.js';
import { METRICS, WallMap, startWorker } from './map.js';
import { Panels } from './panels.js';
import { cityTime, fromCityInput, toCityInput, windowFor } from './time.js';

const PANEL_REFRESH_MS = 5000;
const MAP_REFRESH_MS = 30000;

const state = {
  choice: '30d',
  custom: null,
  area: { code: null, level: 'city', name: '全市' },
  chain: [],
  metric: 'closure_rate',
  mode: 'heat',
  full: false,
  dataChanged: false,
  replaying: null,
};
/** What the page exposes for end-to-end checks. */
const wall = { state, ready: false, timings: {}, feed: [], errors: [] };
window.gridscopeWall = wall;

const $ = (id) => document.getElementById(id);

function currentWindow() {
  return windowFor(state.choice, new Date(), state.custom ?? {});
}

/** Screen space the panels cover, so the map centres its view in what is left. */
function padding() {
  const left = $('left').getBoundingClientRect();
  const right = $('right').getBoundingClientRect();
  const top = $('top').getBoundingClientRect();
  const legend = $('legend').getBoundingClientRect();
  const gap = 16;
  return {
    left: left.right + gap,
    right: window.innerWidth - right.left + gap,
    top: top.bottom + gap,
    bottom: window.innerHeight - legend.top + gap,
  };
}

/** Whether the key (if any) may read report points and details. */
async function canReadReports() {
  if (!apiKey()) return false;
  try {
    await getJson('/api/v1/reports', { limit: 1 });
    return true;
  } catch (e) {
    console.warn(`the wall's key cannot read reports (${e.message}); showing public data only`);
    return false;
  }
}

function crumbs(onGo) {
  const nav = $('crumbs');
  const parts = [{ code: null, name: '全市' }, ...state.chain];
  const items = [];
  parts.forEach((p, i) => {
    if (i) items.push(Object.assign(document.createElement('span'), { className: 'sep', textContent: '›' }));
    const last = i === parts.length - 1;
    const a = Object.assign(document.createElement(last ? 'span' : 'a'), { textContent: p.name });
    if (last) a.className = 'here';
    else a.addEventListener('click', () => onGo(p.code));
    a.dataset.code = p.code ?? 'city';
    items.push(a);
  });
  nav.replaceChildren(...items);
}

async function main() {
  startWorker();
  takeKeyFromAddress();
  const params = new URLSearchParams(window.location.search);
  const styleName = params.get('style') === 'light' ? 'light' : 'dark';
  if (styleName === 'light') document.documentElement.classList.add('light');
  state.full = await canReadReports();
  $('feed-view').textContent = state.full ? '' : '（公开视图：不含位置）';

  const map = new WallMap($('map'), styleName, state.full, {
    onGrid: (code) => goTo(code),
    onReport: (id) => openReport(id),
  });
  const panels = new Panels({ onPick: (code) => goTo(code) });
  const feed = new FeedList(document.querySelector('#feed ul'), (r) => openReport(r.id, r));
  wall.map = () => map.map;
  wall.timings.phases = map.timings;

  const refreshPanels = () =>
    panels.refresh({ area: state.area, win: currentWindow(), metric: state.metric, metricLabel: METRICS[state.metric].label });

  async function goTo(code) {
    try {
      if (!code) {
        state.area = { code: null, level: 'city', name: '全市' };
        state.chain = [];
        map.focus(null);
      } else {
        const f = await getJson(`/api/v1/grids/${code}`);
        const p = f.properties;
        state.area = { code: p.code, level: p.level, name: p.name };
        state.chain = [...(p.chain ?? [])].reverse().map((c) => ({ code: c.code, name: c.name, level: c.level }));
        map.focus({ code: p.code, level: p.level, bbox: f.bbox });
      }
      crumbs(goTo);
      document.body.dataset.area = state.area.code ?? 'city';
      document.body.dataset.level = LEVELS[state.area.level] ? state.area.level : 'city';
      await refreshPanels();
    } catch (e) {
      console.warn(`drill-down to ${code}: ${e.message}`);
    }
  }

  async function openReport(id, known) {
    if (!state.full) return;
    try {
      const r = await showReport(id);
      map.flyTo(r.lon ?? known?.lon, r.lat ?? known?.lat);
    } catch (e) {
      console.warn(`report ${id}: ${e.message}`);
    }
  }

  // The panels load while the map does (once the map's own requests are out).
  let firstPanels;
  const title = await map.start(padding(), currentWindow(), () => {
    firstPanels = refreshPanels().then(() => {
      wall.timings.panelsMs = Math.round(performance.now());
    });
  });
  wall.timings.mapLoadMs = Math.round(performance.now());
  if (title) {
    $('title').textContent = title;
    document.title = title;
  }
  crumbs(goTo);

  // Time bar.
  for (const b of document.querySelectorAll('#timebar [data-window]')) {
    b.addEventListener('click', () => {
      const choice = b.dataset.window;
      $('custom-range').hidden = choice !== 'custom';
      if (choice === 'custom') {
        const w = currentWindow();
        $('custom-from').value ||= toCityInput(new Date(w.from));
        $('custom-to').value ||= toCityInput(new Date(w.to));
        return;
      }
      state.choice = choice;
      for (const o of document.querySelectorAll('#timebar [data-window]')) o.classList.toggle('on', o === b);
      map.setWindow(currentWindow());
      refreshPanels();
    });
  }
  $('custom-apply').addEventListener('click', () => {
    const from = fromCityInput($('custom-from').value);
    const to = fromCityInput($('custom-to').value);
    if (!from || !to || from >= to) {
      $('custom-from').setCustomValidity('起始时间须早于结束时间');
      $('custom-from').reportValidity();
      return;
    }
    $('custom-from').setCustomValidity('');
    state.choice = 'custom';
    state.custom = { from, to };
    for (const o of document.querySelectorAll('#timebar [data-window]')) o.classList.toggle('on', o.dataset.window === 'custom');
    map.setWindow(currentWindow());
    refreshPanels();
  });
  $('replay').addEventListener('click', () => (state.replaying ? stopReplay() : startReplay()));

  function startReplay() {
    const end = new Date(Math.ceil(Date.now() / 3600e3) * 3600e3);
    let step = 0;
    setMode('heat');
    $('replay').textContent = '■ 停止回放';
    const show = () => {
      const from = new Date(end.getTime() - (24 - step) * 3600e3);
      const to = new Date(from.getTime() + 3600e3);
      map.setWindow({ from: from.toISOString(), to: to.toISOString() });
      $('replay-clock').textContent = `回放 ${cityTime(from, { day: false })}–${cityTime(to, { day: false })}`;
      step += 1;
      if (step >= 24) step = 0;
    };
    show();
    state.replaying = setInterval(show, 1500);
  }

  function stopReplay() {
    clearInterval(state.replaying);
    state.replaying = null;
    $('replay').textContent = '▶ 回放24小时';
    $('replay-clock').textContent = '';
    map.setWindow(currentWindow());
  }

  // Legend: heat or KPI, and the KPI.
  function setMode(mode) {
    state.mode = mode;
    for (const b of document.querySelectorAll('#mode [data-mode]')) b.classList.toggle('on', b.dataset.mode === mode);
    $('metric').hidden = mode !== 'kpi';
    map.setMode(mode);
  }
  for (const b of document.querySelectorAll('#mode [data-mode]')) b.addEventListener('click', () => setMode(b.dataset.mode));
  $('metric').addEventListener('change', () => {
    state.metric = $('metric').value;
    map.setMetric(state.metric);
    refreshPanels();
  });
  for (const b of document.querySelectorAll('#trend [data-trend]')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('#trend [data-trend]')) o.classList.toggle('on', o === b);
      panels.setTrend(b.dataset.trend);
    });
  }
  $('detail-close').addEventListener('click', closeReport);

  // Clock, and the window moving on with time.
  const tick = () => {
    $('clock').textContent = cityTime(new Date(), { seconds: true });
  };
  tick();
  setInterval(tick, 1000);
  setInterval(() => {
    map.retryFailedTiles();
    if (state.dataChanged && !state.replaying) {
      state.dataChanged = false;
      map.setWindow(currentWindow());
    }
  }, MAP_REFRESH_MS);
  let panelsDue = false;
  setInterval(() => {
    if (panelsDue) {
      panelsDue = false;
      refreshPanels();
    }
  }, PANEL_REFRESH_MS);
  const changed = () => {
    state.dataChanged = true;
    panelsDue = true;
  };

  // Live feed.
  let connectedBefore = false;
  let gridVersion = null;
  const gridsChanged = (v) => {
    if (gridVersion !== null && v !== gridVersion) {
      map.reloadGrids(v);
      changed();
    }
    gridVersion = v;
  };
  follow(
    {
      hello: (h) => {
        document.body.dataset.feedView = h.view;
        if (connectedBefore) {
          // Back after an outage: tiles that failed meanwhile load again.
          map.retryFailedTiles();
          changed();
        }
        connectedBefore = true;
        gridsChanged(h.grid_version);
      },
      report: (r) => {
        const fresh = !feed.items.has(r.id) && wall.ready;
        feed.add(r, fresh);
        if (fresh) {
          map.addLive(r);
          wall.feed.push({ id: r.id, at: Date.now() });
          if (wall.feed.length > 100) wall.feed.shift();
          changed();
        }
      },
      transition: (t) => {
        feed.status(t.id, t.to);
        map.updateLive(t.id, t.to);
        changed();
      },
      version: changed,
      grids: (g) => gridsChanged(g.grid_version),
      lagged: changed,
    },
    (up) => {
      $('conn').className = up ? 'up' : 'down';
      $('conn').textContent = up ? '● 实时' : '● 重连中';
      document.body.dataset.connected = up ? 'yes' : 'no';
    },
  );

  await firstPanels;
  // The first full render: style, tiles of every visible layer and the panels.
  await new Promise((resolve) => {
    const check = () => (map.map.loaded() && map.map.areTilesLoaded() ? resolve() : map.map.once('idle', check));
    check();
  });
  wall.timings.firstRenderMs = Math.round(performance.now());
  wall.ready = true;
  document.body.dataset.ready = 'yes';
}

window.addEventListener('error', (e) => wall.errors.push(String(e.message)));
main().catch((e) => {
  wall.errors.push(String(e.message ?? e));
  console.error('the map wall failed to start:', e);
  document.body.dataset.ready = 'failed';
});
