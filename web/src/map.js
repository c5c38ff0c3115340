// The map: MapLibre over gridscope's own vector tiles (grids, heat, KPI, report points), with
// a heat or KPI choropleth mode, legends, live report points, and clicks that drill down
// through the grid levels or open a report.

import { AttributionControl, Map as MapLibre, NavigationControl, ScaleControl, prewarm, setWorkerUrl } from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';

import { authHeaders, getJson, serverUrl } from './api.js';
import { int, num, pct } from './format.js';

const FONTS = "'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'Microsoft YaHei', 'PingFang SC', sans-serif";

/** Source layer of each level in the `grids` tile set. */
const LAYER_OF_LEVEL = { district: 'districts', 1: 'level1', 2: 'level2', 3: 'level3', exclusive: 'exclusive' };
/** The level below each, for drilling down. */
const CHILD_LEVEL = { city: 'district', district: '1', 1: '2', 2: '3' };

/** The KPI choropleth's metrics: label, colours from bad to good, fixed stops for rates. */
export const METRICS = {
  closure_rate: { label: '结案率', rate: true, stops: [0.85, 0.92, 0.96, 0.99] },
  on_time_rate: { label: '按期结案率', rate: true, stops: [0.7, 0.8, 0.88, 0.95] },
  satisfaction_rate: { label: '满意率', rate: true, stops: [0.85, 0.92, 0.96, 0.99] },
  overdue: { label: '超期件数', rate: false },
  per_km2: { label: '每平方公里事件数', rate: false },
};
const RATE_COLOURS = ['#d7301f', '#fc8d59', '#fee08b', '#1a9850'];
const COUNT_COLOURS = ['#1d3b6a', '#2c7fb8', '#fdae61', '#f46d43', '#ff1f3d'];
const LIVE_MAX = 300;
const LIVE_MAX_AGE_S = 600;

/**
 * Tells MapLibre where its worker module is served and starts the worker now, so that loading
 * and compiling it overlaps fetching the style and building the map instead of following them
 * (no tile can be requested before the worker runs).
 */
export function startWorker() {
  setWorkerUrl(serverUrl('/assets/maplibre-gl-worker.mjs'));
  prewarm();
}

/** Quantile stops of `values` (ascending, distinct, at least two). */
function quantileStops(values, n) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return [0, 1];
  const stops = [];
  for (let i = 0; i < n; i += 1) {
    const q = v[Math.min(v.length - 1, Math.floor((i / (n - 1)) * (v.length - 1)))];
    if (stops.length === 0 || q > stops[stops.length - 1]) stops.push(q);
  }
  if (stops.length === 1) stops.push(stops[0] + 1);
  return stops;
}

function ramp(property, stops, colours) {
  const expr = ['interpolate', ['linear'], ['get', property]];
  stops.forEach((s, i) => expr.push(s, colours[Math.round((i / Math.max(1, stops.length - 1)) * (colours.length - 1))]));
  return expr;
}

/** Tile URL template of `set` with query parameters (the braces must stay unescaped). */
function tileTemplate(set, params) {
  const query = Object.entries(params)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return `${window.location.origin}/tiles/${set}/{z}/{x}/{y}.mvt${query ? `?${query}` : ''}`;
}

export class WallMap {
  /**
   * @param container element for the map
   * @param styleName `dark` or `light`
   * @param full whether this wall may see report points (a key with read rights)
   * @param handlers `{ onGrid(code), onReport(id) }`
   */
  constructor(container, styleName, full, handlers) {
    this.container = container;
    this.styleName = styleName;
    this.full = full;
    this.handlers = handlers;
    this.mode = 'heat';
    this.metric = 'closure_rate';
    this.window = null;
    this.area = { code: null, level: 'city' };
    this.live = new Map();
    /** Tiles that failed to load (the server away, say) by source, to load again. */
    this.failedTiles = new Map();
    /** Sources whose failed tiles are being asked for again (until the map is next idle). */
    this.retrying = new Set();
    /** New tile URLs by source, waiting for the source's retries to be over (see `setTiles`). */
    this.pendingTiles = new Map();
    this.legend = '';
    /** Milliseconds after navigation at which the first view reached each stage. */
    this.timings = {};
  }

  /**
   * Loads the style, puts each tile set's TileJSON in it (heat and KPI with the window `win`),
   * and shows the city; calls `onConstructed` once the map exists (its requests are out) and
   * resolves when the first view is loaded.
   */
  async start(padding, win, onConstructed) {
    const [style, ...sets] = await Promise.all([
      getJson(`/styles/${this.styleName}.json`),
      ...['grids', 'heat', 'kpi', this.full ? 'reports' : null].filter(Boolean).map((s) => getJson(`/tiles/${s}.json`)),
    ]);
    if (!this.full) {
      delete style.sources.reports;
      style.layers = style.layers.filter((l) => l.source !== 'reports' && l.source !== 'live');
    }
    for (const tj of sets) {
      const source = style.sources[tj.name];
      if (!source) continue;
      delete source.url;
      const windowed = tj.name === 'heat' || tj.name === 'kpi';
      Object.assign(source, {
        tiles: windowed ? [tileTemplate(tj.name, { from: win.from, to: win.to })] : tj.tiles,
        minzoom: tj.minzoom,
        maxzoom: tj.maxzoom,
        bounds: tj.bounds,
        attribution: tj.attribution,
      });
    }
    this.window = win;
    const grids = sets[0];
    this.title = style.metadata?.['gridscope:title'];
    this.bounds = grids.bounds;
    const origin = window.location.origin;
    const T = this.timings;
    T.construct = Math.round(performance.now());
    this.map = new MapLibre({
      container: this.container,
      style,
      bounds: this.bounds,
      fitBoundsOptions: { padding },
      attributionControl: false,
      localIdeographFontFamily: FONTS,
      fadeDuration: 0,
      maxPitch: 0,
      dragRotate: false,
      transformRequest: (url) => (url.startsWith(origin) ? { url, headers: authHeaders() } : { url }),
    });
    T.constructed = Math.round(performance.now());
    this.map.once('styledata', () => { T.styledata = Math.round(performance.now()); });
    this.map.once('sourcedata', () => { T.sourcedata = Math.round(performance.now()); });
    this.map.once('render', () => { T.render = Math.round(performance.now()); });
    this.map.addControl(new AttributionControl({ compact: true, customAttribution: 'gridscope' }), 'bottom-right');
    this.map.addControl(new NavigationControl({ showCompass: false }), 'bottom-right');
    this.map.addControl(new ScaleControl({ unit: 'metric' }), 'bottom-right');
    this.padding = padding;
    this.loaded = new Promise((resolve) => this.map.once('load', resolve));
    // A tile that fails stays blank until it is asked for again: note it for
    // `retryFailedTiles`. Anything else MapLibre reports is an error of the page.
    this.map.on('error', (e) => {
      if (e.sourceId && e.tile) {
        const { z, x, y } = e.tile.tileID.canonical;
        if (!this.failedTiles.has(e.sourceId)) this.failedTiles.set(e.sourceId, new Map());
        this.failedTiles.get(e.sourceId).set(`${z}/${x}/${y}`, { z, x, y });
        console.warn(`tiles of ${e.sourceId}: ${e.error?.message ?? e.error}`);
      } else {
        console.error(e.error ?? e);
      }
    });
    if (onConstructed) onConstructed();
    await this.loaded;
    this.map.on('click', (e) => this.click(e));
    this.map.on('mousemove', (e) => {
      const hit = this.map.queryRenderedFeatures(e.point, { layers: this.clickable() });
      this.map.getCanvas().style.cursor = hit.length ? 'pointer' : '';
    });
    this.map.on('idle', () => this.restyle());
    if (this.full) this.liveTimer = setInterval(() => this.refreshLive(), 5000);
    return this.title;
  }

  clickable() {
    const layers = ['districts-hit', 'level1-hit', 'level2-hit', 'level3-hit'];
    if (this.full) layers.push('live-circle', 'reports-circle');
    return layers.filter((id) => this.map.getLayer(id));
  }

  click(e) {
    const reports = this.full
      ? this.map.queryRenderedFeatures(e.point, { layers: ['live-circle', 'reports-circle'] })
      : [];
    if (reports.length) {
      this.handlers.onReport(Number(reports[0].properties.id ?? reports[0].id));
      return;
    }
    const order = [];
    const child = CHILD_LEVEL[this.area.level];
    if (child) order.push(child);
    for (const l of ['3', '2', '1', 'district']) if (!order.includes(l)) order.push(l);
    for (const level of order) {
      const layer = `${LAYER_OF_LEVEL[level]}-hit`;
      if (!this.map.getLayer(layer)) continue;
      const hit = this.map.queryRenderedFeatures(e.point, { layers: [layer] });
      if (hit.length) {
        const code = hit[0].properties.code;
        if (code !== this.area.code) this.handlers.onGrid(code);
        return;
      }
    }
  }

  /** Shows heat (`heat`) or the KPI choropleth (`kpi`). */
  setMode(mode) {
    this.mode = mode;
    this.map.setLayoutProperty('heat-fill', 'visibility', mode === 'heat' ? 'visible' : 'none');
    this.map.setLayoutProperty('kpi-fill', 'visibility', mode === 'kpi' ? 'visible' : 'none');
    this.legend = '';
    this.restyle();
  }

  /** Colours the KPI choropleth by `metric` (a key of METRICS). */
  setMetric(metric) {
    this.metric = metric;
    this.legend = '';
    this.restyle();
  }

  /** Grid tiles of a new grid version (`version` keeps MapLibre from reusing old tiles). */
  reloadGrids(version) {
    this.setTiles('grids', [tileTemplate('grids', { v: version })]);
  }

  /**
   * Asks again for the tiles that failed (after the server has come back, or now and then), so
   * that no part of the wall stays blank after an outage. Only those tiles: reloading their
   * whole source (`setTiles`) leaves a failed vector tile waiting for a load that never comes.
   */
  retryFailedTiles(sources = [...this.failedTiles.keys()]) {
    for (const id of sources) {
      const tiles = this.failedTiles.get(id);
      this.failedTiles.delete(id);
      if (!tiles || !this.map.getSource(id)) continue;
      this.map.refreshTiles(id, [...tiles.values()]);
      this.retrying.add(id);
    }
    if (this.retrying.size === 0) return;
    this.map.once('idle', () => {
      this.retrying.clear();
      this.applyPendingTiles();
    });
    this.map.triggerRepaint();
  }

  /**
   * Points source `id` at new tile URLs. While some of its tiles have failed or are being asked
   * for again, the new URLs wait for those loads to be over (until the next retry, when they
   * fail again): reloading the source then would leave a failed tile waiting for ever (see
   * above) and load a retried one a second time beside the first, whose copy in MapLibre's
   * worker then outlives the tile.
   */
  setTiles(id, tiles) {
    this.pendingTiles.set(id, tiles);
    if (this.failedTiles.has(id)) this.retryFailedTiles([id]);
    else this.applyPendingTiles();
  }

  /** Gives the sources the tile URLs that were waiting, where nothing holds them back any more. */
  applyPendingTiles() {
    for (const [id, tiles] of this.pendingTiles) {
      if (this.retrying.has(id) || this.failedTiles.has(id)) continue;
      this.pendingTiles.delete(id);
      this.map.getSource(id)?.setTiles(tiles);
    }
  }

  /** Heat and KPI tiles for the window `{from, to}` (ISO strings). */
  setWindow(win) {
    this.window = win;
    for (const set of ['heat', 'kpi']) {
      this.setTiles(set, [tileTemplate(set, { from: win.from, to: win.to })]);
    }
  }

  /** Flies to a grid (`{code, level, bbox}`) or back to the city (`null`) and outlines it. */
  focus(grid) {
    this.area = grid ? { code: grid.code, level: grid.level } : { code: null, level: 'city' };
    if (this.map.getLayer('selected-line')) this.map.removeLayer('selected-line');
    const colour = this.styleName === 'dark' ? '#ffe066' : '#e8590c';
    if (grid && LAYER_OF_LEVEL[grid.level]) {
      const before = this.map.getLayer('reports-circle') ? 'reports-circle' : this.map.getLayer('live-halo') ? 'live-halo' : undefined;
      this.map.addLayer(
        {
          id: 'selected-line',
          type: 'line',
          source: 'grids',
          'source-layer': LAYER_OF_LEVEL[grid.level],
          filter: ['==', ['get', 'code'], grid.code],
          paint: { 'line-color': colour, 'line-width': 3.5 },
        },
        before,
      );
    }
    const b = grid?.bbox ?? this.bounds;
    this.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: this.padding, duration: 1200, maxZoom: 17 });
  }

  /** Recomputes colour stops from what is on screen and redraws the legend when they change. */
  restyle() {
    if (!this.map?.isStyleLoaded()) return;
    let title;
    let stops;
    let colours;
    let label;
    if (this.mode === 'heat') {
      const counts = this.map.queryRenderedFeatures({ layers: ['heat-fill'] }).map((f) => f.properties.count);
      stops = quantileStops(counts, 5);
      colours = COUNT_COLOURS;
      title = '事件数 / 六边形';
      label = int;
      this.setPaint('heat-fill', ramp('count', stops, colours));
    } else {
      const m = METRICS[this.metric];
      title = m.label;
      if (m.rate) {
        stops = m.stops;
        colours = RATE_COLOURS;
        label = pct;
      } else {
        const values = this.map.queryRenderedFeatures({ layers: ['kpi-fill'] }).map((f) => f.properties[this.metric]);
        stops = quantileStops(values, 5);
        colours = [...COUNT_COLOURS];
        label = num;
      }
      const nodata = this.styleName === 'dark' ? '#1b2738' : '#e3e7ec';
      this.setPaint('kpi-fill', ['case', ['has', this.metric], ramp(this.metric, stops, colours), nodata]);
    }
    const key = JSON.stringify([this.mode, this.metric, stops]);
    if (key === this.legend) return;
    this.legend = key;
    const used = stops.map((_, i) => colours[Math.round((i / Math.max(1, stops.length - 1)) * (colours.length - 1))]);
    document.getElementById('legend-title').textContent = title;
    document.getElementById('legend-ramp').style.background = `linear-gradient(90deg, ${used.join(', ')})`;
    const labels = document.getElementById('legend-labels');
    labels.replaceChildren(...stops.map((s) => Object.assign(document.createElement('span'), { textContent: label(s) })));
    labels.dataset.stops = JSON.stringify(stops);
  }

  setPaint(layer, value) {
    const now = JSON.stringify(this.map.getPaintProperty(layer, 'fill-color'));
    if (now !== JSON.stringify(value)) this.map.setPaintProperty(layer, 'fill-color', value);
  }

  /** Puts a new report on the map (full view only); it fades after a few minutes. */
  addLive(report) {
    if (!this.full || report.lon === undefined) return;
    this.live.set(report.id, { report, seen: Date.now() });
    while (this.live.size > LIVE_MAX) this.live.delete(this.live.keys().next().value);
    this.refreshLive();
  }

  /** A report moved on: recolour its live point. */
  updateLive(id, status) {
    const entry = this.live.get(id);
    if (entry) {
      entry.report.status = status;
      this.refreshLive();
    }
  }

  refreshLive() {
    const source = this.map?.getSource('live');
    if (!source) return;
    // Nothing shown and nothing to show: leave the map idle.
    if (this.live.size === 0 && !this.liveShown) return;
    const now = Date.now();
    const features = [];
    for (const [id, { report, seen }] of this.live) {
      const age = (now - seen) / 1000;
      if (age > LIVE_MAX_AGE_S) {
        this.live.delete(id);
        continue;
      }
      features.push({
        type: 'Feature',
        id,
        properties: { id, status: report.status, age_s: Math.round(age) },
        geometry: { type: 'Point', coordinates: [report.lon, report.lat] },
      });
    }
    this.liveShown = features.length > 0;
    source.setData({ type: 'FeatureCollection', features });
  }

  /** Points of the live layer now on screen (for checks and the feed's highlight). */
  liveOnScreen() {
    return this.map.queryRenderedFeatures({ layers: ['live-circle'] }).map((f) => f.properties.id);
  }

  /** Flies to a point. */
  flyTo(lon, lat) {
    this.map.flyTo({ center: [lon, lat], zoom: Math.max(this.map.getZoom(), 15), padding: this.padding });
  }
}
