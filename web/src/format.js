// How numbers read on the wall: rates as percentages, counts with separators, changes with
// arrows coloured by whether they are good news.

const count = new Intl.NumberFormat('zh-CN');

/** A rate in [0, 1] as `93.7%`, or `—` when there is none. */
export function pct(rate) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)}%`;
}

/** A count as `12,345`. */
export function int(n) {
  return n === null || n === undefined ? '—' : count.format(n);
}

/** A number with at most one decimal. */
export function num(n) {
  return n === null || n === undefined ? '—' : count.format(Math.round(n * 10) / 10);
}

/**
 * The change from `before` to `now` as an element: rates in percentage points, counts in
 * percent. `higherIsBetter` colours the arrow.
 */
export function change(label, now, before, { rate = false, higherIsBetter = true } = {}) {
  const span = document.createElement('span');
  if (now === null || now === undefined || before === null || before === undefined) {
    span.textContent = `${label} —`;
    return span;
  }
  let delta;
  let text;
  if (rate) {
    delta = (now - before) * 100;
    text = `${Math.abs(delta).toFixed(1)}pt`;
  } else if (before === 0) {
    delta = now;
    text = now === 0 ? '0%' : '新增';
  } else {
    delta = ((now - before) / before) * 100;
    text = `${Math.abs(delta).toFixed(0)}%`;
  }
  const arrow = delta > 0 ? '↑' : delta < 0 ? '↓' : '→';
  span.append(`${label}`);
  const mark = document.createElement('span');
  mark.textContent = `${arrow}${text}`;
  if (delta !== 0) mark.className = (delta > 0) === higherIsBetter ? 'up' : 'down';
  span.append(mark);
  return span;
}

/** Channel names as the city says them. */
export const CHANNELS = {
  app: '市民随手拍',
  hotline_12345: '12345热线',
  police_110: '110联动',
  patrol: '网格员巡查',
  video_ai: '视频智能发现',
  iot: '物联感知',
};

/** Lifecycle statuses. */
export const STATUSES = {
  reported: '上报',
  accepted: '立案',
  rejected: '不予立案',
  dispatched: '派遣',
  handled: '处置',
  closed: '结案',
};

/** Grid levels. */
export const LEVELS = { city: '全市', district: '区县', 1: '街道', 2: '社区', 3: '网格', micro: '微网格', exclusive: '专属网格' };

/** Lifecycle steps. */
export const ACTIONS = {
  report: '上报',
  accept: '立案',
  reject: '不予立案',
  dispatch: '派遣',
  handle: '处置',
  check: '核查',
  extend: '延期',
  send_back: '回退',
  escalate: '上报上级',
  rate: '评价',
};
