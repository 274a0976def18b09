// Privacy deletes from the page: confirmed first, the receipt shown.

import { $, el, keyOf, when } from './dom.js';
import { call, query } from './api.js';

function confirmed(text) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'delete'), { once: true });
  });
}

function renderReceipt(r) {
  const list = (values) => (values && values.length ? values.join(', ') : '—');
  $('#receipt').replaceChildren(
    el(
      'div',
      { class: 'panel', id: 'receipt-panel' },
      el('h4', {}, `Receipt ${r.request_id}`),
      el(
        'dl',
        {},
        ...[
          ['Status', r.status],
          ['Action', r.action],
          ['Identity', `${r.namespace}:${r.id}`],
          ['Deleted identities', list(r.deleted_identities)],
          ['Ceased profiles', list(r.ceased_profile_ids)],
          ['Affected profiles', list(r.affected_profile_ids)],
          ['Reason', r.reason ?? '—'],
          ['Completed', when(r.completed_at)],
        ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]),
      ),
    ),
  );
}

// scope: 'identity' (that identity) or 'profile' (every identity of its profile).
export async function deleteFromPage(identity, scope, after) {
  const what = scope === 'profile'
    ? `the whole profile holding ${keyOf(identity)}: every identity, link and attribute of it`
    : `the identity ${keyOf(identity)}, its links and its data (the rest of the profile may split)`;
  if (!(await confirmed(`Delete ${what}? This cannot be undone; the identity stays suppressed.`))) return;
  const route = scope === 'profile' ? 'profiles' : 'identities';
  renderReceipt(await call(`${route}?${query({ namespace: identity.namespace, id: identity.id })}`, { method: 'DELETE' }));
  await after();
}
