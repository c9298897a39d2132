// DOM building and formatting. Every piece of API data reaches the page as a Text
// node or an attribute value through h(); nothing in the dashboard assigns HTML.

/**
 * h('a', {href: '#/x', class: 'y', onclick: fn}, 'text', child, [more])
 * Strings and numbers become Text nodes; null/undefined/false are skipped.
 * Props: "class", "text", "dataset" (object), on* (function listeners), booleans
 * (true sets the attribute, false leaves it out), anything else setAttribute().
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace a container's content, keeping keyboard focus on the "same" control
 * (same data-focus-key) when it is rendered again. */
export function render(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  container.replaceChildren();
  append(container, children);
  if (key !== undefined) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus({preventScroll: true});
  }
}

// ---- statuses -------------------------------------------------------------------

/** Sensu check statuses: 0 OK, 1 warning, 2 critical, anything else unknown. */
export function statusInfo(status) {
  const s = Number(status) || 0;
  if (s === 0) return {name: 'OK', cls: 'ok', rank: 3};
  if (s === 1) return {name: 'Warning', cls: 'warning', rank: 1};
  if (s === 2) return {name: 'Critical', cls: 'critical', rank: 0};
  return {name: `Unknown (${s})`, cls: 'unknown', rank: 2};
}

export function statusBadge(status) {
  const info = statusInfo(status);
  return h('span', {class: `badge status-${info.cls}`}, info.name);
}

// ---- time -----------------------------------------------------------------------

export function nowSeconds() {
  return Date.now() / 1000;
}

export function absoluteTime(unix) {
  if (!unix) return 'never';
  return new Date(unix * 1000).toLocaleString();
}

/** "12 s ago", "in 5 min", "never". */
export function relativeTime(unix) {
  if (!unix) return 'never';
  const delta = Math.round(unix - nowSeconds());
  const abs = Math.abs(delta);
  let text;
  if (abs < 5) return 'just now';
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

/** A <time> element showing relative time, the absolute time as its tooltip. */
export function timeEl(unix) {
  const props = {title: absoluteTime(unix)};
  if (unix) props.datetime = new Date(unix * 1000).toISOString();
  return h('time', props, relativeTime(unix));
}

export function firstLine(text, max = 200) {
  const line = String(text || '').split('\n', 1)[0];
  return line.length > max ? line.slice(0, max - 1) + '…' : line;
}

export function joinList(list) {
  return Array.isArray(list) && list.length ? list.join(', ') : '—';
}

// ---- tables and paging ----------------------------------------------------------------

export const PAGE_SIZE = 100;

/** The slice of `items` shown on `page` (0-based, clamped) and the page facts. */
export function paginate(items, page, size = PAGE_SIZE) {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const current = Math.min(Math.max(0, page), pages - 1);
  const from = current * size;
  return {page: current, pages, total: items.length, from, items: items.slice(from, from + size)};
}

/** Previous/Next buttons around "1–100 of 5000 events · page 1 of 50"; onPage(newPage).
 * pagers(): the copy above a table, and one below it when the page is long. */
function pager(slice, onPage, label, where) {
  const {page, pages, total, from, items} = slice;
  const range = total ? `${from + 1}–${from + items.length} of ${total} ${label}` : `0 ${label}`;
  const pageOf = pages > 1 ? `page ${page + 1} of ${pages}` : '';
  const text = where === 'top' ? [range, pageOf ? ` · ${pageOf}` : ''] : [pageOf];
  const suffix = where === 'top' ? '' : `:${where}`;
  const paged = pages > 1;
  return h('nav', {class: `pager pager-${where}`, 'aria-label': `${label} pages${where === 'top' ? '' : ' (bottom)'}`},
    paged && h('button', {type: 'button', disabled: page === 0, onclick: () => onPage(page - 1),
                          dataset: {focusKey: `${label}:prev${suffix}`}}, '‹ Previous'),
    h('span', {class: 'pager-text', 'aria-live': where === 'top' ? 'polite' : 'off'}, text),
    paged && h('button', {type: 'button', disabled: page >= pages - 1, onclick: () => onPage(page + 1),
                          dataset: {focusKey: `${label}:next${suffix}`}}, 'Next ›'));
}

/** A table between its pagers: [top pager, table, bottom pager when the page is long]. */
export function pagedTable(slice, onPage, label, tableEl) {
  return [pager(slice, onPage, label, 'top'), tableEl,
          slice.pages > 1 && slice.items.length > 20 ? pager(slice, onPage, label, 'bottom') : null];
}

/** A table with a caption and header row; `rows` are <tr> elements. */
export function table(caption, headers, rows, empty = 'Nothing to show.') {
  return h('table', {class: 'grid'},
    h('caption', {class: 'sr-only'}, caption),
    h('thead', null, h('tr', null, headers.map((label) => h('th', {scope: 'col'}, label)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', {colspan: headers.length, class: 'empty'}, empty))));
}

/** Move focus to the next/previous element matching `selector` inside `root`. */
export function moveFocus(root, selector, step) {
  const all = [...root.querySelectorAll(selector)];
  if (!all.length) return false;
  const at = all.indexOf(document.activeElement);
  const next = at === -1 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
  all[next].focus();
  all[next].scrollIntoView({block: 'nearest'});
  return true;
}
