// The profile document, its attribute sources and its events, as tables.

import { $, el, keyOf, plural, shown, table, when } from './dom.js';

export function renderHead(doc) {
  $('#profile-id').textContent = doc.profile_id;
  $('#profile-version').textContent = doc.version;
  $('#profile-updated').textContent = when(doc.updated_at);
  $('#profile-size').textContent = doc.identities.length;
  $('#profile-events').textContent = doc.events.count;
}

// onDelete is null when the page may not delete (see main.js).
export function renderIdentities(doc, quarantined, onDelete) {
  $('#identities tbody').replaceChildren(
    ...doc.identities.map((i) => {
      const key = keyOf(i);
      const held = quarantined.has(key);
      return el(
        'tr',
        { 'data-key': key },
        el('td', {}, i.namespace),
        el('td', {}, el('code', {}, i.id)),
        el('td', {}, when(i.first_seen)),
        el('td', {}, when(i.last_seen)),
        el('td', { class: `state${held ? ' quarantined' : ''}` }, held ? '⚠ quarantined' : 'linked'),
        el('td', {}, onDelete && el('button', { type: 'button', class: 'danger', 'aria-label': `Delete identity ${key}`, onclick: () => onDelete(i) }, 'Delete…')),
      );
    }),
  );
}

function sourceCells(source) {
  return [el('code', {}, shown(source.value)), source.channel, when(source.timestamp), keyOf(source.identity)];
}

export function renderAttributes(sources) {
  const body = $('#attributes tbody');
  body.replaceChildren();
  for (const p of sources.paths) {
    const cells = (source) => sourceCells(source).map((c) => el('td', {}, c));
    const losers = p.losers.map((l) => el('tr', { class: 'loser', hidden: true }, el('td', {}, 'lost'), ...cells(l), el('td')));
    const label = (open) => `${open ? 'Hide' : 'Show'} ${plural(p.losers.length, 'losing value', 'losing values')}`;
    const toggle = p.losers.length
      ? el('button', {
          type: 'button', class: 'secondary', 'aria-expanded': 'false',
          onclick: (event) => {
            const button = event.currentTarget;
            const open = button.getAttribute('aria-expanded') !== 'true';
            button.setAttribute('aria-expanded', String(open));
            button.textContent = label(open);
            for (const row of losers) row.hidden = !open;
          },
        }, label(false))
      : el('span', { class: 'muted' }, 'none');
    body.append(el('tr', { 'data-path': p.path }, el('th', { scope: 'row' }, el('code', {}, p.path)), ...cells(p), el('td', {}, toggle)), ...losers);
  }
  if (!sources.paths.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No attributes yet.')));
}

export function renderEvents(doc) {
  const counts = (obj) => table(Object.entries(obj).map(([k, n]) => [k, String(n)]));
  $('#by-channel tbody').replaceChildren(...counts(doc.events.by_channel));
  $('#by-type tbody').replaceChildren(...counts(doc.events.by_type));
  $('#timeline').replaceChildren(
    ...doc.events.recent.map((e) =>
      el('li', { 'data-event-id': e.event_id }, el('time', {}, when(e.timestamp)), ` · ${e.channel} · ${e.type} · `, el('code', {}, e.event_id)),
    ),
  );
}
