// The dashboard shell: login, navigation, namespace switcher, live refresh, keys.
import * as api from './api.js';
import {h, render} from './dom.js';
import {eventFilters, eventView, eventsView} from './events.js';
import {checksView, clusterView, entitiesView, silencesView} from './views.js';

// Live refresh: the current view reloads every POLL_MS, or four times as long as its
// last load took when that is longer (so 5,000 events never pile up requests), and
// not at all while the tab is hidden.
const POLL_MS = 2000;

const NAV = [
  ['events', 'Events'],
  ['entities', 'Entities'],
  ['checks', 'Checks'],
  ['silences', 'Silences'],
  ['cluster', 'Cluster'],
];

const state = {
  namespace: 'default',
  namespaces: ['default'],
  view: null,        // the mounted view object
  route: '',
  generation: 0,     // bumps on every navigation; stale loops and loads stop
  wake: null,        // resolves the poll loop's current wait
};

const root = document.getElementById('app');

// ---- routing ------------------------------------------------------------------------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => {
    try { return decodeURIComponent(p); } catch (_) { return p; }
  });
  if (parts[0] === 'events' && parts.length === 3 && parts[1] && parts[2]) return {name: 'event', args: [parts[1], parts[2]]};
  if (NAV.some(([n]) => n === parts[0]) && parts.length === 1) return {name: parts[0], args: []};
  return {name: 'events', args: []};
}

function makeView(route, ctx) {
  switch (route.name) {
    case 'event': return eventView(ctx, ...route.args);
    case 'entities': return entitiesView(ctx);
    case 'checks': return checksView(ctx);
    case 'silences': return silencesView(ctx);
    case 'cluster': return clusterView(ctx);
    default: return eventsView(ctx);
  }
}

// ---- login --------------------------------------------------------------------------

function showLogin(message = '', isError = false) {
  state.generation += 1;
  state.view = null;
  document.title = 'Log in · Sensu';
  const user = h('input', {id: 'login-username', name: 'username', autocomplete: 'username', required: true,
                           autocapitalize: 'none', spellcheck: 'false'});
  const password = h('input', {id: 'login-password', name: 'password', type: 'password', required: true,
                               autocomplete: 'current-password'});
  const note = h('p', {class: isError ? 'error' : 'notice', role: isError ? 'alert' : 'status', id: 'login-message'},
    message);
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Log in');
  const form = h('form', {class: 'login stack', 'aria-labelledby': 'login-title'},
    h('h1', {id: 'login-title'}, 'Sensu'),
    h('p', {class: 'muted'}, 'Log in to the monitoring dashboard.'),
    h('div', {class: 'field'}, h('label', {for: 'login-username'}, 'Username'), user),
    h('div', {class: 'field'}, h('label', {for: 'login-password'}, 'Password'), password),
    note,
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    note.className = 'notice';
    note.setAttribute('role', 'status');
    note.textContent = 'Logging in…';
    const username = user.value.trim();
    // The password goes straight from the field into one request and is not kept.
    const attempt = api.login(username, password.value);
    password.value = '';
    try {
      await attempt;
    } catch (err) {
      note.className = 'error';
      note.setAttribute('role', 'alert');
      note.textContent = err.message;
      submit.disabled = false;
      password.focus();
      return;
    }
    await startSession();
  });
  render(root, h('main', {class: 'login-page', id: 'main'}, form));
  user.focus();
}

api.onSessionExpired(() => showLogin('Your session has expired; please log in again.', true));

async function loadNamespaces() {
  try {
    const list = await api.listAll('/api/core/v2/namespaces');
    const names = list.map((n) => n.name).filter(Boolean).sort();
    if (names.length) state.namespaces = names;
  } catch (err) {
    if (err instanceof api.SessionExpired) throw err;
    state.namespaces = [state.namespace];  // may not list namespaces: stay in the current one
  }
  if (!state.namespaces.includes(state.namespace)) state.namespace = state.namespaces[0];
}

async function startSession() {
  try {
    await loadNamespaces();
  } catch (_) {
    return;  // expired again: the login form is showing
  }
  renderShell();
  navigate();
}

// ---- the shell ----------------------------------------------------------------------

const shell = {};

function renderShell() {
  const nsSelect = h('select', {id: 'namespace', onchange: (e) => {
    state.namespace = e.target.value;
    Object.assign(eventFilters, {page: 0});
    navigate();
  }}, state.namespaces.map((n) => h('option', {value: n, selected: n === state.namespace}, n)));
  shell.nav = h('nav', {class: 'mainnav', 'aria-label': 'Main'},
    NAV.map(([name, label], i) => h('a', {href: `#/${name}`, dataset: {nav: name}, title: `${label} (${i + 1})`}, label)));
  shell.alert = h('p', {class: 'error banner', role: 'alert', hidden: true});
  shell.live = h('span', {class: 'live'});
  shell.main = h('main', {id: 'main', tabindex: '-1'});
  const skip = h('a', {class: 'skip', href: '#main', onclick: (e) => {
    e.preventDefault();
    (state.view?.heading || shell.main).focus();
  }}, 'Skip to content');
  render(root,
    skip,
    h('header', {class: 'topbar'},
      h('span', {class: 'brand'}, 'Sensu'),
      shell.nav,
      h('div', {class: 'field inline'}, h('label', {for: 'namespace'}, 'Namespace'), nsSelect),
      h('span', {class: 'user', title: 'Logged in user'}, api.currentUser()),
      h('button', {type: 'button', id: 'logout', onclick: logout}, 'Log out')),
    shell.alert,
    shell.main,
    h('footer', {class: 'footer'},
      shell.live,
      h('span', {class: 'keys'},
        'Keys: ', h('kbd', null, '/'), ' filter · ', h('kbd', null, 'j'), ' ', h('kbd', null, 'k'), ' rows · ',
        h('kbd', null, 'n'), ' ', h('kbd', null, 'p'), ' pages · ', h('kbd', null, '1'), '–', h('kbd', null, '5'),
        ' views · ', h('kbd', null, 'r'), ' refresh')));
}

async function logout() {
  state.generation += 1;
  await api.logout();
  showLogin('You are logged out.');
}

function setAlert(message) {
  if (!shell.alert) return;
  shell.alert.textContent = message || '';
  shell.alert.hidden = !message;
}

function navigate() {
  if (!api.currentUser()) {
    showLogin();
    return;
  }
  if (!shell.main || !shell.main.isConnected) renderShell();
  const route = parseRoute();
  // Focus moves to the new heading when the route changes, not on a namespace switch
  // (arrow keys on the switcher change it, and focus must stay there).
  const routeKey = `${route.name}/${route.args.join('/')}`;
  const generation = ++state.generation;
  const ctx = {
    namespace: state.namespace,
    kick: () => { if (state.wake) state.wake(); },
  };
  const view = makeView(route, ctx);
  const navName = route.name === 'event' ? 'events' : route.name;
  for (const a of shell.nav.querySelectorAll('a')) {
    if (a.dataset.nav === navName) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const moved = state.route !== routeKey;
  state.view = view;
  state.route = routeKey;
  document.title = `${view.heading.textContent} · Sensu`;
  setAlert('');
  render(shell.main, view.el);
  if (moved) view.heading.focus({preventScroll: true});
  pollLoop(view, generation);
}

async function pollLoop(view, generation) {
  while (generation === state.generation) {
    const started = performance.now();
    try {
      await view.refresh();
      if (generation !== state.generation) return;
      setAlert('');
      shell.live.textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
      shell.live.classList.remove('stale');
    } catch (err) {
      if (generation !== state.generation || err instanceof api.SessionExpired) return;
      setAlert(`Could not load: ${err.message}`);
      shell.live.textContent = 'Not updated: retrying';
      shell.live.classList.add('stale');
    }
    const took = performance.now() - started;
    await pause(Math.max(POLL_MS, took * 4));
    while (document.hidden && generation === state.generation) await pause(60000);
  }
}

function pause(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      if (state.wake === done) state.wake = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    state.wake = done;
  });
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.wake) state.wake();
});

window.addEventListener('hashchange', () => {
  if (api.currentUser()) navigate();
});

// ---- keyboard -----------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName));
}

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
  if (document.querySelector('dialog[open]')) return;  // the dialog owns the keyboard
  const view = state.view;
  if (!view) return;
  if (typing(ev.target)) {
    if (ev.key === 'Escape' && ev.target.matches('[data-filter]')) {
      ev.target.blur();
      view.heading.focus();
    }
    return;
  }
  let handled = false;
  if (ev.key === '/' && view.filter) {
    view.filter.focus();
    view.filter.select();
    handled = true;
  } else if (/^[1-9]$/.test(ev.key) && Number(ev.key) <= NAV.length) {
    location.hash = `#/${NAV[Number(ev.key) - 1][0]}`;
    handled = true;
  } else if (ev.key === 'r') {
    if (state.wake) state.wake();
    handled = true;
  } else {
    handled = view.key(ev);
  }
  if (handled) ev.preventDefault();
});

showLogin();
