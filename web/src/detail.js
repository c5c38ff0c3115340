// A report's card: what, where, who is responsible, deadline, and its whole history.

import { getJson } from './api.js';
import { ACTIONS, CHANNELS, STATUSES } from './format.js';
import { cityTime } from './time.js';

function row(label, value) {
  const tr = document.createElement('tr');
  tr.append(Object.assign(document.createElement('td'), { textContent: label }), Object.assign(document.createElement('td'), { textContent: value ?? '—' }));
  return tr;
}

let categories = null;

async function categoryName(id) {
  categories ??= getJson('/api/v1/categories').then((list) => new Map(list.map((c) => [c.id, `${c.major_name} · ${c.name}`])));
  return (await categories).get(id) ?? id;
}

/** Opens the card of report `id`; returns the report (for flying to it). */
export async function showReport(id) {
  const box = document.getElementById('detail');
  const body = document.getElementById('detail-body');
  const report = await getJson(`/api/v1/reports/${id}`);
  const history = report.history ?? [];
  const p = report.placement ?? {};
  const table = document.createElement('table');
  table.append(
    row('状态', STATUSES[report.status] ?? report.status),
    row('类别', await categoryName(report.category)),
    row('渠道', CHANNELS[report.channel] ?? report.channel),
    row('描述', report.description),
    row('上报时间', cityTime(new Date(report.reported_at), { seconds: true })),
    row('处置时限', `${cityTime(new Date(report.deadline))}${report.overdue ? '（已超期）' : ''}`),
    row('责任网格', p.responsible),
    row('所属', [p.district, p.grid_l1, p.grid_l2, p.grid_l3].filter(Boolean).join(' / ')),
  );
  const steps = document.createElement('ol');
  for (const h of history) {
    const li = document.createElement('li');
    const step = ACTIONS[h.action] ?? h.action;
    const to = STATUSES[h.to_status] ?? h.to_status;
    li.textContent = `${cityTime(new Date(h.at), { seconds: true })} ${step} → ${to}（${h.actor}${h.reason ? `：${h.reason}` : ''}）`;
    steps.append(li);
  }
  body.replaceChildren(
    Object.assign(document.createElement('h3'), { textContent: `事件 #${report.id}` }),
    table,
    Object.assign(document.createElement('h3'), { textContent: '处置过程' }),
    steps,
  );
  box.dataset.id = report.id;
  box.hidden = false;
  return report;
}

export function closeReport() {
  document.getElementById('detail').hidden = true;
}
