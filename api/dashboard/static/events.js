// The events list (filters, worst first, paged) and one event's detail view.
import * as api from './api.js';
import {
  absoluteTime, firstLine, h, joinList, moveFocus, nowSeconds, pagedTable, paginate, render, statusBadge,
  statusInfo, table, timeEl,
} from './dom.js';
import {clearSilences, openSilenceDialog, silencesFor} from './silences.js';

// Filters and page survive switching views (not a reload).
export const eventFilters = {status: 'all', entity: '', check: '', silenced: 'all', page: 0};

const STATUS_FILTERS = [
  ['all', 'All statuses'],
  ['failing', 'Not OK'],
  ['critical', 'Critical'],
  ['warning', 'Warning'],
  ['unknown', 'Unknown'],
  ['ok', 'OK'],
];
const SILENCED_FILTERS = [['all', 'All'], ['yes', 'Silenced'], ['no', 'Not silenced']];

export function eventHash(entity, check) {
  return `#/events/${encodeURIComponent(entity)}/${encodeURIComponent(check)}`;
}

function describe(event, silences, now) {
  const entity = event.entity?.metadata?.name ?? '';
  const check = event.check?.metadata?.name ?? '';
  const status = Number(event.check?.status) || 0;
  return {event, entity, check, status, info: statusInfo(status), silencedBy: silencesFor(event, silences, now),
          key: `${entity}\u0000${check}`};
}

function matches(row, f) {
  const cls = row.info.cls;
  if (f.status === 'failing' ? cls === 'ok' : f.status !== 'all' && f.status !== cls) return false;
  if (f.entity && !row.entity.toLowerCase().includes(f.entity.toLowerCase())) return false;
  if (f.check && !row.check.toLowerCase().includes(f.check.toLowerCase())) return false;
  if (f.silenced === 'yes' && !row.silencedBy.length) return false;
  if (f.silenced === 'no' && row.silencedBy.length) return false;
  return true;
}

/** Worst first: critical, warning, unknown, OK; then by entity and check, so rows keep their place. */
function worstFirst(a, b) {
  return a.info.rank - b.info.rank || (a.entity < b.entity ? -1 : a.entity > b.entity ? 1 : 0)
    || (a.check < b.check ? -1 : a.check > b.check ? 1 : 0);
}

async function silenceEvent(ctx, entity, check) {
  if (await openSilenceDialog({namespace: ctx.namespace, entity, check})) ctx.kick();
}

async function unsilence(ctx, silences) {
  if (await clearSilences(ctx.namespace, silences.map((s) => s.metadata.name))) ctx.kick();
}

function silencedMarker(silencedBy) {
  if (!silencedBy.length) return null;
  const names = silencedBy.map((s) => s.metadata.name).join(', ');
  return h('span', {class: 'marker-silenced', title: `Silenced by ${names}`}, 'Silenced');
}

export function eventsView(ctx) {
  const f = eventFilters;
  let events = null;
  let silences = [];

  const labelled = (id, label, control) => h('div', {class: 'field'}, h('label', {for: id}, label), control);
  const statusSelect = h('select', {id: 'filter-status', onchange: (e) => update({status: e.target.value})},
    STATUS_FILTERS.map(([v, l]) => h('option', {value: v, selected: f.status === v}, l)));
  const entityInput = h('input', {id: 'filter-entity', type: 'search', value: f.entity, autocomplete: 'off',
                                  'data-filter': '', oninput: (e) => update({entity: e.target.value})});
  const checkInput = h('input', {id: 'filter-check', type: 'search', value: f.check, autocomplete: 'off',
                                 oninput: (e) => update({check: e.target.value})});
  const silencedSelect = h('select', {id: 'filter-silenced', onchange: (e) => update({silenced: e.target.value})},
    SILENCED_FILTERS.map(([v, l]) => h('option', {value: v, selected: f.silenced === v}, l)));
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter events',
                          onsubmit: (e) => e.preventDefault()},
    labelled('filter-status', 'Status', statusSelect),
    labelled('filter-entity', 'Entity', entityInput),
    labelled('filter-check', 'Check', checkInput),
    labelled('filter-silenced', 'Silenced', silencedSelect),
    h('button', {type: 'button', class: 'link-button', onclick: () => {
      entityInput.value = checkInput.value = '';
      statusSelect.value = silencedSelect.value = 'all';
      update({status: 'all', entity: '', check: '', silenced: 'all'});
    }}, 'Clear filters'));

  const heading = h('h1', {tabindex: '-1'}, 'Events');
  const counts = h('div', {class: 'counts'});
  const body = h('div', {class: 'table-wrap'}, h('p', {class: 'loading'}, 'Loading events…'));
  const el = h('section', {class: 'view'}, heading, form, counts, body);

  function update(changes) {
    Object.assign(f, changes, 'page' in changes ? {} : {page: 0});
    draw();
  }

  function countButtons(rows) {
    const by = {critical: 0, warning: 0, unknown: 0, ok: 0};
    let silenced = 0;
    for (const r of rows) {
      by[r.info.cls] += 1;
      if (r.silencedBy.length) silenced += 1;
    }
    const button = (cls, label, n, changes) => h('button', {
      type: 'button', class: `count status-${cls}`, dataset: {focusKey: `count:${cls}`},
      'aria-label': `${n} ${label}: show only these`, onclick: () => {
        Object.assign(f, changes);
        statusSelect.value = f.status;
        silencedSelect.value = f.silenced;
        update({});
      },
    }, h('span', {class: 'count-n'}, String(n)), ` ${label}`);
    return [
      button('critical', 'critical', by.critical, {status: 'critical', silenced: 'all'}),
      button('warning', 'warning', by.warning, {status: 'warning', silenced: 'all'}),
      button('unknown', 'unknown', by.unknown, {status: 'unknown', silenced: 'all'}),
      button('ok', 'OK', by.ok, {status: 'ok', silenced: 'all'}),
      button('silenced', 'silenced', silenced, {status: 'all', silenced: 'yes'}),
    ];
  }

  function row(r) {
    const c = r.event.check || {};
    const id = `${r.entity}/${r.check}`;
    const action = r.silencedBy.length
      ? h('button', {type: 'button', dataset: {focusKey: `unsilence:${id}`}, 'aria-label': `Clear silence of ${id}`,
                     onclick: () => unsilence(ctx, r.silencedBy)}, 'Unsilence')
      : h('button', {type: 'button', dataset: {focusKey: `silence:${id}`}, 'aria-label': `Silence ${id}`,
                     onclick: () => silenceEvent(ctx, r.entity, r.check)}, 'Silence…');
    return h('tr', {class: `event-row status-${r.info.cls}`, dataset: {entity: r.entity, check: r.check}},
      h('td', null, statusBadge(r.status)),
      h('td', null, h('a', {href: eventHash(r.entity, r.check), class: 'row-link', dataset: {focusKey: `event:${id}`}},
        r.entity)),
      h('td', null, r.check),
      h('td', {class: 'output', title: firstLine(c.output, 1000)}, firstLine(c.output)),
      h('td', {class: 'nowrap'}, timeEl(r.event.timestamp)),
      h('td', null, silencedMarker(r.silencedBy)),
      h('td', {class: 'nowrap'}, action));
  }

  function draw() {
    if (events === null) return;
    const now = nowSeconds();
    const all = events.map((e) => describe(e, silences, now));
    render(counts, countButtons(all));
    const shown = all.filter((r) => matches(r, f)).sort(worstFirst);
    const slice = paginate(shown, f.page);
    f.page = slice.page;
    const empty = events.length ? 'No event matches these filters.' : 'No events in this namespace.';
    render(body, pagedTable(slice, (page) => { update({page}); }, 'events',
      table('Events, worst first', ['Status', 'Entity', 'Check', 'Output', 'Last seen', 'Silenced', 'Actions'],
        slice.items.map(row), empty)));
  }

  async function refresh() {
    const [list, silenced] = await Promise.all([
      api.listAll(api.nsPath(ctx.namespace, 'events')),
      api.get(api.nsPath(ctx.namespace, 'silenced')),
    ]);
    events = list;
    silences = Array.isArray(silenced) ? silenced : [];
    draw();
  }

  function key(ev) {
    if (ev.key === 'j') return moveFocus(body, 'a.row-link', 1);
    if (ev.key === 'k') return moveFocus(body, 'a.row-link', -1);
    if (ev.key === 'n') return clickPager('next');
    if (ev.key === 'p') return clickPager('prev');
    return false;
  }

  function clickPager(which) {
    const button = body.querySelector(`[data-focus-key="events:${which}"]`);
    if (!button || button.disabled) return false;
    button.click();
    return true;
  }

  return {el, heading, refresh, key, filter: entityInput};
}

// ---- one event ---------------------------------------------------------------------------

function timeline(history) {
  const items = Array.isArray(history) ? history : [];
  if (!items.length) return h('p', {class: 'muted'}, 'No history yet.');
  return h('div', {class: 'timeline-wrap'},
    h('ol', {class: 'timeline', 'aria-label': `Last ${items.length} results, oldest first`},
      items.map((entry) => {
        const info = statusInfo(entry.status);
        const label = `${info.name} at ${absoluteTime(entry.executed)}`;
        return h('li', {class: `tick status-${info.cls}`, title: label}, h('span', {class: 'sr-only'}, label));
      })),
    h('div', {class: 'timeline-legend', 'aria-hidden': 'true'}, h('span', null, 'oldest'), h('span', null, 'latest')));
}

function facts(pairs) {
  return h('dl', {class: 'facts'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function schedule(check) {
  if (check.cron) return `cron ${check.cron}`;
  if (check.interval) return `every ${check.interval} s`;
  return '—';
}

export function eventView(ctx, entity, check) {
  const heading = h('h1', {tabindex: '-1'}, `${entity} / ${check}`);
  const body = h('div', null, h('p', {class: 'loading'}, 'Loading event…'));
  const el = h('section', {class: 'view'},
    h('p', {class: 'breadcrumb'}, h('a', {href: '#/events'}, '← All events')), heading, body);

  async function refresh() {
    let event;
    try {
      event = await api.get(api.nsPath(ctx.namespace, 'events', entity, check));
    } catch (err) {
      if (err.status !== 404) throw err;
      render(body, h('p', {class: 'notice'}, 'This event does not exist (any more) in this namespace.'));
      return;
    }
    const silenced = await api.get(api.nsPath(ctx.namespace, 'silenced'));
    const silencedBy = silencesFor(event, Array.isArray(silenced) ? silenced : []);
    const c = event.check || {};
    const e = event.entity || {};
    render(body,
      h('div', {class: 'detail-head'},
        statusBadge(c.status), silencedMarker(silencedBy),
        h('span', {class: 'muted'}, 'last seen ', timeEl(event.timestamp)),
        h('span', {class: 'spacer'}),
        h('button', {type: 'button', dataset: {focusKey: 'detail:silence'},
                     onclick: () => silenceEvent(ctx, entity, check)}, 'Silence…')),
      h('section', {class: 'panel'}, h('h2', null, 'History'), timeline(c.history)),
      h('section', {class: 'panel'}, h('h2', null, 'Output'), h('pre', {class: 'output-full'}, c.output || '')),
      h('section', {class: 'panel'}, h('h2', null, 'Silences'),
        silencedBy.length
          ? h('ul', {class: 'plain-list'}, silencedBy.map((s) => h('li', null,
            h('code', null, s.metadata.name), s.reason ? ` — ${s.reason}` : '', ' ',
            h('button', {type: 'button', dataset: {focusKey: `clear:${s.metadata.name}`},
                         onclick: () => unsilence(ctx, [s])}, 'Clear'))))
          : h('p', {class: 'muted'}, 'Not silenced.')),
      h('section', {class: 'panel'}, h('h2', null, 'Details'), facts([
        ['Status', `${statusInfo(c.status).name} (${Number(c.status) || 0})`],
        ['State', c.state || '—'],
        ['Occurrences', String(c.occurrences ?? '—')],
        ['Last seen', absoluteTime(event.timestamp)],
        ['Executed', absoluteTime(c.executed)],
        ['Last OK', absoluteTime(c.last_ok)],
        ['Duration', c.duration ? `${Number(c.duration).toFixed(3)} s` : '—'],
        ['Schedule', schedule(c)],
        ['Command', c.command ? h('code', null, c.command) : '—'],
        ['Check subscriptions', joinList(c.subscriptions)],
        ['Handlers', joinList(c.handlers)],
        ['Processed by', c.processed_by || '—'],
        ['Entity', h('a', {href: '#/events', title: `Events of ${entity}`, onclick: () => Object.assign(eventFilters,
          {status: 'all', entity, check: '', silenced: 'all', page: 0})}, entity)],
        ['Entity class', e.entity_class || '—'],
        ['Entity subscriptions', joinList(e.subscriptions)],
      ])));
  }

  return {el, heading, refresh, key: () => false};
}
