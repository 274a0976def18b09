// The overview (GET /v1/overview): counters the worker keeps, no keyspace scan.

import { $, el, table, when } from './dom.js';
import { call } from './api.js';

function counts(caption, heading, entries, total) {
  return el(
    'table',
    {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, heading), el('th', { scope: 'col' }, 'Count'))),
    el('tbody', {}, entries.length ? table(entries.map(([k, n]) => [k, String(n)])) : table([['none', '0']])),
    total === undefined ? null : el('tfoot', {}, el('tr', {}, el('th', { scope: 'row' }, 'total'), el('td', {}, String(total)))),
  );
}

export async function loadOverview() {
  const o = await call('overview');
  const sizes = Object.entries(o.graph_sizes).map(([size, n]) => [`${size} ${size === '1' ? 'identity' : 'identities'}`, n]);
  $('#overview-body').replaceChildren(
    el('div', { id: 'overview-profiles' }, el('div', { class: 'big' }, String(o.profiles)), 'profiles'),
    el('div', { id: 'overview-quarantined' }, el('div', { class: 'big' }, String(o.quarantined)), 'quarantined identities'),
    counts('Identities by namespace', 'Namespace', Object.entries(o.identities.by_namespace), o.identities.total),
    counts('Graph sizes', 'Profiles of', sizes),
    counts('Dead letters by reason', 'Reason', Object.entries(o.deadletters.by_reason), o.deadletters.total),
    el(
      'p',
      { class: 'muted' },
      o.counted_since ? `Counted since ${when(o.counted_since)}.` : 'Nothing counted yet.',
      o.complete ? '' : ' Graphs made before counting began are not counted.',
    ),
  );
}
