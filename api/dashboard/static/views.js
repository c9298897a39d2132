// Entities, checks, silences and the cluster.
import * as api from './api.js';
import {
  absoluteTime, h, joinList, moveFocus, pagedTable, paginate, relativeTime, render, statusBadge, table, timeEl,
} from './dom.js';
import {eventFilters} from './events.js';
import {clearSilences, isActive, openSilenceDialog} from './silences.js';

function nameFilter(id, label, state, onChange) {
  return h('form', {class: 'filters', role: 'search', 'aria-label': `Filter ${label}`, onsubmit: (e) => e.preventDefault()},
    h('div', {class: 'field'},
      h('label', {for: id}, 'Name'),
      h('input', {id, type: 'search', autocomplete: 'off', value: state.name, 'data-filter': '',
                  oninput: (e) => { state.name = e.target.value; state.page = 0; onChange(); }})));
}

function byName(a, b) {
  const x = a.metadata?.name ?? '';
  const y = b.metadata?.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

function showEventsOf(changes) {
  Object.assign(eventFilters, {status: 'all', entity: '', check: '', silenced: 'all', page: 0}, changes);
}

function listKeys(body, label) {
  return (ev) => {
    if (ev.key === 'j') return moveFocus(body, '.row-link', 1);
    if (ev.key === 'k') return moveFocus(body, '.row-link', -1);
    const which = ev.key === 'n' ? 'next' : ev.key === 'p' ? 'prev' : null;
    if (!which) return false;
    const button = body.querySelector(`[data-focus-key="${label}:${which}"]`);
    if (!button || button.disabled) return false;
    button.click();
    return true;
  };
}

// ---- entities -------------------------------------------------------------------------

const entityState = {name: '', page: 0};

export function entitiesView(ctx) {
  let entities = null;
  let keepalives = new Map();
  const heading = h('h1', {tabindex: '-1'}, 'Entities');
  const body = h('div', {class: 'table-wrap'}, h('p', {class: 'loading'}, 'Loading entities…'));
  const form = nameFilter('filter-entity-name', 'entities', entityState, draw);
  const el = h('section', {class: 'view'}, heading, form, body);

  function row(entity) {
    const name = entity.metadata.name;
    const keepalive = keepalives.get(name);
    const system = entity.system || {};
    const platform = [system.platform || system.os, system.platform_version].filter(Boolean).join(' ');
    return h('tr', {dataset: {entity: name}},
      h('td', null, h('a', {href: '#/events', class: 'row-link', dataset: {focusKey: `entity:${name}`},
                            title: `Events of ${name}`, onclick: () => showEventsOf({entity: name})}, name)),
      h('td', null, entity.entity_class || '—'),
      h('td', null, joinList(entity.subscriptions)),
      h('td', {class: 'nowrap'}, timeEl(entity.last_seen)),
      h('td', null, keepalive ? statusBadge(keepalive.check?.status) : h('span', {class: 'muted'}, 'none')),
      h('td', null, platform || '—'),
      h('td', null, entity.sensu_agent_version || '—'));
  }

  function draw() {
    if (entities === null) return;
    const needle = entityState.name.toLowerCase();
    const shown = entities.filter((e) => (e.metadata?.name ?? '').toLowerCase().includes(needle)).sort(byName);
    const slice = paginate(shown, entityState.page);
    entityState.page = slice.page;
    render(body, pagedTable(slice, (page) => { entityState.page = page; draw(); }, 'entities',
      table('Entities', ['Name', 'Class', 'Subscriptions', 'Last seen', 'Keepalive', 'Platform', 'Agent'],
        slice.items.map(row), entities.length ? 'No entity matches.' : 'No entities in this namespace.')));
  }

  async function refresh() {
    const [list, events] = await Promise.all([
      api.listAll(api.nsPath(ctx.namespace, 'entities')),
      api.listAll(api.nsPath(ctx.namespace, 'events'), {fieldSelector: 'event.check.name == keepalive'}),
    ]);
    entities = list;
    keepalives = new Map(events.map((e) => [e.entity?.metadata?.name, e]));
    draw();
  }

  return {el, heading, refresh, key: listKeys(body, 'entities'), filter: form.querySelector('input')};
}

// ---- checks ---------------------------------------------------------------------------

const checkState = {name: '', page: 0};

export function checksView(ctx) {
  let checks = null;
  const heading = h('h1', {tabindex: '-1'}, 'Checks');
  const body = h('div', {class: 'table-wrap'}, h('p', {class: 'loading'}, 'Loading checks…'));
  const form = nameFilter('filter-check-name', 'checks', checkState, draw);
  const el = h('section', {class: 'view'}, heading, form, body);

  function row(check) {
    const name = check.metadata.name;
    return h('tr', {dataset: {check: name}},
      h('td', null, h('a', {href: '#/events', class: 'row-link', dataset: {focusKey: `check:${name}`},
                            title: `Events of ${name}`, onclick: () => showEventsOf({check: name})}, name)),
      h('td', {class: 'command'}, h('code', null, check.command || '')),
      h('td', {class: 'nowrap'}, check.cron ? `cron ${check.cron}` : check.interval ? `every ${check.interval} s` : '—'),
      h('td', null, joinList(check.subscriptions)),
      h('td', null, joinList(check.handlers)),
      h('td', null, check.publish ? 'yes' : 'no'),
      h('td', {class: 'nowrap'}, h('button', {
        type: 'button', dataset: {focusKey: `silence-check:${name}`}, 'aria-label': `Silence check ${name}`,
        onclick: async () => { if (await openSilenceDialog({namespace: ctx.namespace, check: name})) ctx.kick(); },
      }, 'Silence…')));
  }

  function draw() {
    if (checks === null) return;
    const needle = checkState.name.toLowerCase();
    const shown = checks.filter((c) => (c.metadata?.name ?? '').toLowerCase().includes(needle)).sort(byName);
    const slice = paginate(shown, checkState.page);
    checkState.page = slice.page;
    render(body, pagedTable(slice, (page) => { checkState.page = page; draw(); }, 'checks',
      table('Checks', ['Name', 'Command', 'Schedule', 'Subscriptions', 'Handlers', 'Published', 'Actions'],
        slice.items.map(row), checks.length ? 'No check matches.' : 'No checks in this namespace.')));
  }

  async function refresh() {
    checks = await api.listAll(api.nsPath(ctx.namespace, 'checks'));
    draw();
  }

  return {el, heading, refresh, key: listKeys(body, 'checks'), filter: form.querySelector('input')};
}

// ---- silences -------------------------------------------------------------------------

function expiry(s) {
  if (!Number(s.expire_at)) return 'never';
  return h('time', {title: absoluteTime(s.expire_at)}, relativeTime(s.expire_at));
}

export function silencesView(ctx) {
  let silences = null;
  const heading = h('h1', {tabindex: '-1'}, 'Silences');
  const create = h('button', {type: 'button', class: 'primary', onclick: async () => {
    if (await openSilenceDialog({namespace: ctx.namespace})) ctx.kick();
  }}, 'New silence…');
  const body = h('div', {class: 'table-wrap'}, h('p', {class: 'loading'}, 'Loading silences…'));
  const el = h('section', {class: 'view'}, h('div', {class: 'view-head'}, heading, create), body);

  function row(s) {
    const name = s.metadata.name;
    const active = isActive(s);
    return h('tr', {dataset: {silence: name}},
      h('td', null, h('code', null, name)),
      h('td', null, s.subscription || h('span', {class: 'muted'}, 'all')),
      h('td', null, s.check || h('span', {class: 'muted'}, 'all')),
      h('td', null, s.reason || '—'),
      h('td', null, s.creator || '—'),
      h('td', {class: 'nowrap'}, active ? timeEl(s.begin) : h('span', null, 'starts ', timeEl(s.begin))),
      h('td', {class: 'nowrap'}, expiry(s)),
      h('td', null, s.expire_on_resolve ? 'yes' : 'no'),
      h('td', null, h('button', {
        type: 'button', class: 'row-link', dataset: {focusKey: `clear:${name}`}, 'aria-label': `Clear silence ${name}`,
        onclick: async () => { if (await clearSilences(ctx.namespace, [name])) ctx.kick(); },
      }, 'Clear')));
  }

  function draw() {
    if (silences === null) return;
    render(body, table('Silences', ['Name', 'Subscription', 'Check', 'Reason', 'Creator', 'Since', 'Expires',
      'Clear on resolve', 'Actions'], silences.map(row), 'Nothing is silenced in this namespace.'));
  }

  async function refresh() {
    const list = await api.get(api.nsPath(ctx.namespace, 'silenced'));
    silences = (Array.isArray(list) ? list : []).sort(byName);
    draw();
  }

  return {el, heading, refresh, key: listKeys(body, 'silences')};
}

// ---- cluster --------------------------------------------------------------------------

export function clusterView() {
  const heading = h('h1', {tabindex: '-1'}, 'Cluster');
  const body = h('div', null, h('p', {class: 'loading'}, 'Loading cluster health…'));
  const el = h('section', {class: 'view'}, heading, body);

  async function refresh() {
    // /health names every member with its health and the leader; it needs no token.
    const health = await api.health();
    const entries = health.ClusterHealth || [];
    const healthy = entries.filter((m) => m.Healthy).length;
    const row = (m) => h('tr', {dataset: {member: m.Name}},
      h('td', null, m.Name),
      h('td', null, h('span', {class: `badge ${m.Healthy ? 'status-ok' : 'status-critical'}`},
        m.Healthy ? 'Healthy' : 'Unhealthy'), m.Err ? h('div', {class: 'muted small'}, m.Err) : null),
      h('td', null, m.IsLeader ? h('strong', null, 'Leader') : 'Follower'),
      h('td', null, h('code', null, m.MemberIDHex || '')),
      h('td', null, joinList(m.PeerURLs)));
    render(body,
      h('dl', {class: 'facts cluster-facts'},
        h('dt', null, 'Leader'), h('dd', null, health.Leader || h('span', {class: 'error-text'}, 'none (no quorum)')),
        h('dt', null, 'Members'), h('dd', null, `${healthy} of ${entries.length} healthy`),
        h('dt', null, 'Raft term'), h('dd', null, String(health.Header?.raft_term ?? '—'))),
      h('div', {class: 'table-wrap'},
        table('Cluster members', ['Name', 'Health', 'Role', 'Member ID', 'Peer URLs'],
          entries.map(row), 'No members reported.')));
  }

  return {el, heading, refresh, key: () => false};
}
