// The profile viewer: look-up, the profile, its graph, live updates, privacy, overview.

import { $, el, keyOf, plural, when } from './dom.js';
import { ApiError, call, hasToken, query, setToken } from './api.js';
import { GraphView, legend } from './graph.js';
import { loadOverview } from './overview.js';
import { deleteFromPage } from './privacy.js';
import { renderAttributes, renderEvents, renderHead, renderIdentities } from './profile.js';

const POLL_MS = 1500;
const PROFILE_ID = 'profile_id'; // the look-up's pseudo-namespace for a profile id

const state = {
  kinds: {}, // namespace -> kind
  mayDelete: false, // only with CDP_API_TOKEN set and given: see README "Profile viewer"
  query: null, // {namespace, id} or {profile}
  policy: '',
  anchor: null, // the identity the page follows through merges and splits
  doc: null,
  graph: null,
  quarantined: new Set(),
  picks: [],
  polling: false,
};
const view = new GraphView($('#graph'), { onLink: showEvidence, onNode: togglePick });
window.viewer = { state, view }; // for the browser tests (read-only use)

function showError(text) {
  $('#message').textContent = text;
  $('#message').hidden = false;
}

const clearError = () => { $('#message').hidden = true; };

function say(text) {
  $('#live').replaceChildren(el('strong', {}, new Date().toISOString().slice(11, 19), ' UTC '), text);
}

// --- look-up and the URL ------------------------------------------------------------

function fromUrl() {
  const params = new URLSearchParams(location.search);
  state.policy = params.get('merge_policy') || '';
  if (params.get('profile')) state.query = { profile: params.get('profile') };
  else if (params.get('namespace') && params.get('id')) state.query = { namespace: params.get('namespace'), id: params.get('id') };
  else state.query = null;
  if (state.query) {
    $('#namespace').value = state.query.profile ? PROFILE_ID : state.query.namespace;
    $('#value').value = state.query.profile ?? state.query.id;
  }
}

function toUrl(push) {
  const params = state.query?.profile ? { profile: state.query.profile } : { ...state.query };
  if (state.policy) params.merge_policy = state.policy;
  const url = `${location.pathname}?${query(params)}`;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

const policyParam = () => (state.policy ? `?${query({ merge_policy: state.policy })}` : '');

async function readDocument() {
  if (state.query.profile) return call(`profiles/${encodeURIComponent(state.query.profile)}${policyParam()}`);
  const params = { namespace: state.query.namespace, id: state.query.id };
  if (state.policy) params.merge_policy = state.policy;
  return call(`profiles?${query(params)}`);
}

async function lookUp() {
  clearError();
  $('#live').replaceChildren();
  $('#receipt').replaceChildren();
  try {
    const doc = await readDocument();
    state.anchor = state.query.profile ? doc.identities[0] : state.query;
    await show(doc);
  } catch (error) {
    state.doc = null;
    $('#profile').hidden = true;
    showError(error instanceof ApiError && error.status === 404 ? `Not found: ${error.message}.` : `${error.message}.`);
  }
}

// --- the profile ----------------------------------------------------------------------

async function show(doc) {
  const first = doc.identities[0];
  const [sources, graph, quarantine] = await Promise.all([
    call(`profiles/${doc.profile_id}/attributes${policyParam()}`),
    call(`graph?${query({ namespace: first.namespace, id: first.id })}`),
    call('quarantine'),
  ]);
  state.doc = doc;
  state.graph = graph;
  state.quarantined = new Set(quarantine.identities.map(keyOf));
  state.picks = [];
  for (const radio of document.querySelectorAll('#policy input')) radio.checked = radio.value === sources.merge_policy;
  $('#profile').hidden = false;
  renderHead(doc);
  renderIdentities(doc, state.quarantined, state.mayDelete ? (i) => remove(i, 'identity') : null);
  renderAttributes(sources);
  renderEvents(doc);
  renderGraph();
  $('#delete-profile').hidden = !state.mayDelete;
  $('#privacy-note').textContent = state.mayDelete
    ? 'Deletes are privacy requests: confirmed first, answered with a receipt, also written to cdp.privacy-receipts.'
    : 'Deleting from this page is off: the worker has no CDP_API_TOKEN, and the page makes no changing call without one.';
}

// --- the graph, its tables, evidence and explain ----------------------------------------

function renderGraph() {
  const graph = state.graph;
  view.render(graph, (ns) => state.kinds[ns] ?? 'partner', state.quarantined);
  const degree = {};
  for (const l of graph.links) for (const end of [l.a, l.b]) degree[keyOf(end)] = (degree[keyOf(end)] ?? 0) + 1;
  const namespaces = [...new Set(graph.identities.map((i) => i.namespace))].sort();
  const filter = $('#ns-filter');
  const kept = namespaces.includes(filter.value) ? filter.value : '';
  filter.replaceChildren(el('option', { value: '' }, 'all'), ...namespaces.map((ns) => el('option', { value: ns }, ns)));
  filter.value = kept;
  $('#graph-identities tbody').replaceChildren(
    ...graph.identities.map((i) => {
      const key = keyOf(i);
      const held = state.quarantined.has(key);
      return el(
        'tr',
        { 'data-key': key, 'data-namespace': i.namespace },
        el('td', {}, el('input', { type: 'checkbox', 'aria-label': `Pick ${key} to explain`, onchange: () => togglePick(key) })),
        el('td', {}, i.namespace),
        el('td', {}, el('code', {}, i.id), held ? ' ⚠ quarantined' : ''),
        el('td', {}, state.kinds[i.namespace] ?? 'unknown'),
        el('td', {}, String(degree[key] ?? 0)),
      );
    }),
  );
  $('#links tbody').replaceChildren(
    ...graph.links.map((l) =>
      el(
        'tr',
        { 'data-link': `${keyOf(l.a)} ${keyOf(l.b)}` },
        el('td', {}, keyOf(l.a)),
        el('td', {}, keyOf(l.b)),
        el('td', {}, when(l.first_seen)),
        el('td', {}, when(l.last_seen)),
        el('td', {}, el('button', { type: 'button', class: 'secondary', onclick: () => showEvidence(l) }, 'Show evidence')),
      ),
    ),
  );
  applyFilter();
  $('#evidence').replaceChildren(el('p', { class: 'muted' }, 'No link selected.'));
  $('#explain').replaceChildren(el('p', { class: 'muted' }, 'No pair picked.'));
}

function applyFilter() {
  const ns = $('#ns-filter').value;
  for (const row of document.querySelectorAll('#graph-identities tbody tr')) row.hidden = Boolean(ns) && row.dataset.namespace !== ns;
  view.filter(ns);
}

function facts(pairs) {
  return el('dl', {}, ...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function showEvidence(link) {
  view.select(link);
  $('#evidence').replaceChildren(
    el('h4', {}, 'Link evidence'),
    facts([
      ['Between', keyOf(link.a)],
      ['And', keyOf(link.b)],
      ['First seen', when(link.first_seen)],
      ['Last seen', when(link.last_seen)],
      ['Event id', link.event.event_id],
      ['Topic', link.event.topic],
      ['Partition', String(link.event.partition)],
      ['Offset', String(link.event.offset)],
    ]),
  );
}

function togglePick(key) {
  state.picks = state.picks.includes(key) ? state.picks.filter((k) => k !== key) : [...state.picks, key].slice(-2);
  for (const box of document.querySelectorAll('#graph-identities tbody tr')) {
    box.querySelector('input').checked = state.picks.includes(box.dataset.key);
  }
  markPath([]);
  if (state.picks.length < 2) {
    $('#explain').replaceChildren(el('p', { class: 'muted' }, state.picks.length ? `Picked ${state.picks[0]}; pick one more.` : 'No pair picked.'));
    return;
  }
  explain(...state.picks).catch((error) => showError(`explain: ${error.message}`));
}

function markPath(path) {
  view.mark(state.picks, path);
  const onPath = new Set(path.map((l) => `${keyOf(l.a)} ${keyOf(l.b)}`));
  for (const row of document.querySelectorAll('#links tbody tr')) row.classList.toggle('on-path', onPath.has(row.dataset.link));
}

async function explain(a, b) {
  const answer = await call(`explain?${query({ a, b })}`);
  if (!answer.linked) {
    $('#explain').replaceChildren(el('h4', {}, `Why ${a} and ${b}?`), el('p', {}, `Not one profile: ${answer.reason}.`));
    return;
  }
  markPath(answer.path);
  $('#explain').replaceChildren(
    el('h4', {}, `Why ${a} and ${b} are one profile`),
    el('p', {}, `${plural(answer.path.length, 'link joins', 'links join')} them (highlighted):`),
    el('ol', { id: 'explain-path' }, ...answer.path.map((l) => el('li', {}, `${keyOf(l.a)} — ${keyOf(l.b)}, by event `, el('code', {}, l.event.event_id), ` (${l.event.topic}, partition ${l.event.partition}, offset ${l.event.offset}), first seen ${when(l.first_seen)}`))),
  );
}

// --- live: poll on version --------------------------------------------------------------

async function whereIs(identity) {
  try {
    return (await call(`profiles?${query({ namespace: identity.namespace, id: identity.id })}`)).profile_id;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

// The shown profile id ceased: follow the identity the page was opened for.
async function ceased(old) {
  for (const identity of [state.anchor, ...old.identities]) {
    const pid = await whereIs(identity);
    if (pid) {
      say(`Profile ${old.profile_id} was merged into ${pid} (its id ceased; the older id survives a merge). Now showing ${pid}.`);
      state.query = { profile: pid };
      state.anchor = identity;
      toUrl(false);
      await show(await readDocument());
      return;
    }
  }
  state.doc = null;
  $('#profile').hidden = true;
  say(`Profile ${old.profile_id} no longer exists: its identities were deleted.`);
}

async function changed(old, doc) {
  const before = new Set(old.identities.map(keyOf));
  const after = new Set(doc.identities.map(keyOf));
  const joined = [...after].filter((k) => !before.has(k));
  const left = old.identities.filter((i) => !after.has(keyOf(i)));
  const notes = [`Updated to version ${doc.version}.`];
  if (joined.length) notes.push(`Merged: ${plural(joined.length, 'identity', 'identities')} joined this profile (${joined.join(', ')}).`);
  if (left.length) {
    const moved = {};
    for (const identity of left.slice(0, 10)) {
      const pid = (await whereIs(identity)) ?? 'deleted';
      (moved[pid] ??= []).push(keyOf(identity));
    }
    notes.push(`Split: ${Object.entries(moved).map(([pid, keys]) => (pid === 'deleted' ? `${keys.join(', ')} deleted` : `${keys.join(', ')} moved to ${pid}`)).join('; ')}.`);
  }
  await show(doc);
  say(notes.join(' '));
}

async function poll() {
  const old = state.doc;
  if (!old || state.polling) return;
  state.polling = true;
  try {
    const doc = await call(`profiles/${old.profile_id}${policyParam()}`);
    if (state.doc === old && doc.version !== old.version) await changed(old, doc);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && state.doc === old) await ceased(old);
    else say(`Live updates: ${error.message}; retrying.`);
  } finally {
    state.polling = false;
  }
}

// --- privacy ----------------------------------------------------------------------------

async function remove(identity, scope) {
  try {
    await deleteFromPage(identity, scope, poll);
  } catch (error) {
    showError(`delete: ${error.message}`);
  }
}

// --- start: the token, the configuration, the URL ----------------------------------------

async function configure() {
  const config = await call('namespaces');
  state.kinds = Object.fromEntries(config.namespaces.map((n) => [n.name, n.kind]));
  $('#namespace').replaceChildren(
    ...config.namespaces.map((n) => el('option', { value: n.name }, `${n.name} (${n.kind})`)),
    el('option', { value: PROFILE_ID }, 'profile id (p_…)'),
  );
  legend($('#legend'));
  $('#graph-title').textContent = `Identity graph (up to ${config.max_graph_size} identities)`;
  fromUrl();
  await Promise.all([state.query ? lookUp() : null, loadOverview().catch((e) => showError(`overview: ${e.message}`))]);
}

// Without a token the worker answers or says 401: that tells whether CDP_API_TOKEN is set.
async function start() {
  if (typeof cytoscape !== 'function') {
    showError('the graph library (vendor/cytoscape.min.js) did not load');
    return;
  }
  try {
    await call('namespaces', { auth: false });
    setToken('');
    state.mayDelete = false;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) throw error;
    state.mayDelete = true;
    if (!hasToken() || !(await call('namespaces').then(() => true, () => false))) {
      $('#auth').hidden = false;
      $('#token').focus();
      return;
    }
  }
  $('#auth').hidden = true;
  await configure();
}

$('#token-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  setToken($('#token').value);
  try {
    await call('namespaces');
  } catch (error) {
    showError(error.status === 401 ? 'That token is not the worker\'s CDP_API_TOKEN.' : error.message);
    return;
  }
  clearError();
  $('#auth').hidden = true;
  await configure();
});

$('#lookup').addEventListener('submit', (event) => {
  event.preventDefault();
  const namespace = $('#namespace').value;
  const value = $('#value').value;
  state.query = namespace === PROFILE_ID ? { profile: value.trim() } : { namespace, id: value };
  toUrl(true);
  lookUp();
});

$('#policy').addEventListener('change', (event) => {
  state.policy = event.target.value;
  toUrl(false);
  // Re-read the profile under the other policy: the API applies it, not the page.
  if (state.query) lookUp();
});

$('#ns-filter').addEventListener('change', applyFilter);
$('#delete-profile').addEventListener('click', () => remove(state.anchor, 'profile'));
$('#overview-refresh').addEventListener('click', () => loadOverview().catch((e) => showError(`overview: ${e.message}`)));
window.addEventListener('popstate', () => {
  fromUrl();
  if (state.query) lookUp();
});
window.addEventListener('unhandledrejection', (event) => showError(String(event.reason?.message ?? event.reason)));

setInterval(poll, POLL_MS);
start().catch((error) => showError(error.message));
