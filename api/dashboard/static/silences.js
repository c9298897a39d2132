// Silences: which ones apply to an event, and the dialogs that create and clear them.
import * as api from './api.js';
import {h, nowSeconds} from './dom.js';

/** In force now: begun and not past expire_at (0 = never expires). */
export function isActive(silence, now = nowSeconds()) {
  const begin = Number(silence.begin) || 0;
  const expireAt = Number(silence.expire_at) || 0;
  return begin <= now && (expireAt === 0 || expireAt > now);
}

/**
 * The silences that apply to an event, by the backend's own rule: the subscription
 * is empty, "*", "entity:<entity>" or one of the entity's subscriptions, and the
 * check is empty, "*" or the event's check. Matching here (instead of reading the
 * event's is_silenced, stamped when the result arrived) shows a new silence, or a
 * cleared one, at once.
 */
export function silencesFor(event, silences, now = nowSeconds()) {
  const entity = event.entity?.metadata?.name ?? '';
  const subscriptions = event.entity?.subscriptions || [];
  const check = event.check?.metadata?.name ?? '';
  return silences.filter((s) => {
    if (!isActive(s, now)) return false;
    const sub = s.subscription || '';
    const subOk = sub === '' || sub === '*' || sub === `entity:${entity}` || subscriptions.includes(sub);
    const chk = s.check || '';
    return subOk && (chk === '' || chk === '*' || chk === check);
  });
}

export function silenceName(subscription, check) {
  return `${subscription || '*'}:${check || '*'}`;
}

// ---- dialogs ------------------------------------------------------------------------

function modal(title, ...content) {
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const dialog = h('dialog', {'aria-labelledby': titleId}, h('h2', {id: titleId}, title), ...content);
  // The control that opened the dialog may have been redrawn by a live refresh while the
  // dialog was open: give focus back to its successor (same data-focus-key).
  const openerKey = document.activeElement?.dataset?.focusKey;
  dialog.addEventListener('close', () => {
    dialog.remove();
    setTimeout(() => {
      if (openerKey === undefined || (document.activeElement && document.activeElement !== document.body)) return;
      document.querySelector(`[data-focus-key="${CSS.escape(openerKey)}"]`)?.focus();
    }, 0);
  });
  document.body.appendChild(dialog);
  return dialog;
}

const EXPIRY = [
  ['-1', 'Never'],
  ['900', '15 minutes'],
  ['3600', '1 hour'],
  ['14400', '4 hours'],
  ['86400', '1 day'],
  ['604800', '1 week'],
];

/**
 * Create a silence. With an entity and a check the user picks what to silence
 * (this entity+check, the entity, the check); the subscription and check fields
 * stay editable. Resolves true once the silence is stored, false on cancel.
 */
export function openSilenceDialog({namespace, entity = '', check = '', reason = ''}) {
  return new Promise((resolve) => {
    let done = false;
    const subInput = h('input', {id: 'silence-subscription', name: 'subscription', autocomplete: 'off',
                                 'aria-describedby': 'silence-subscription-help'});
    const checkInput = h('input', {id: 'silence-check', name: 'check', autocomplete: 'off',
                                   'aria-describedby': 'silence-check-help'});
    const reasonInput = h('input', {id: 'silence-reason', name: 'reason', autocomplete: 'off', value: reason});
    const expirySelect = h('select', {id: 'silence-expire', name: 'expire'},
      EXPIRY.map(([value, label]) => h('option', {value, selected: value === '3600'}, label)));
    const resolveBox = h('input', {type: 'checkbox', id: 'silence-expire-on-resolve', name: 'expire_on_resolve'});
    const error = h('p', {class: 'error', role: 'alert'});

    const targets = [];
    if (entity && check) targets.push(['entity-check', `Entity ${entity} and check ${check}`, `entity:${entity}`, check]);
    if (entity) targets.push(['entity', `Entity ${entity} (all checks)`, `entity:${entity}`, '']);
    if (check) targets.push(['check', `Check ${check} (all entities)`, '', check]);

    const setTarget = ([, , sub, chk]) => {
      subInput.value = sub;
      checkInput.value = chk;
    };
    if (targets.length) setTarget(targets[0]);

    const targetField = targets.length > 1 ? h('fieldset', {class: 'targets'},
      h('legend', null, 'Silence'),
      targets.map((t, i) => h('label', {class: 'radio'},
        h('input', {type: 'radio', name: 'target', value: t[0], checked: i === 0, onchange: () => setTarget(t)}),
        ' ', t[1]))) : null;

    const submit = h('button', {type: 'submit', class: 'primary'}, 'Silence');
    const form = h('form', {method: 'dialog', class: 'stack'},
      targetField,
      h('div', {class: 'field'},
        h('label', {for: 'silence-subscription'}, 'Subscription'),
        subInput,
        h('small', {id: 'silence-subscription-help'}, 'entity:NAME for one entity; empty for every entity.')),
      h('div', {class: 'field'},
        h('label', {for: 'silence-check'}, 'Check'),
        checkInput,
        h('small', {id: 'silence-check-help'}, 'Empty for every check.')),
      h('div', {class: 'field'}, h('label', {for: 'silence-reason'}, 'Reason'), reasonInput),
      h('div', {class: 'field'}, h('label', {for: 'silence-expire'}, 'Expires after'), expirySelect),
      h('div', {class: 'field checkbox'}, resolveBox, h('label', {for: 'silence-expire-on-resolve'},
        'Clear when the check resolves')),
      error,
      h('div', {class: 'actions'},
        h('button', {type: 'button', onclick: () => dialog.close()}, 'Cancel'),
        submit));

    const dialog = modal('New silence', form);
    dialog.addEventListener('close', () => resolve(done));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const subscription = subInput.value.trim();
      const chk = checkInput.value.trim();
      if (!subscription && !chk) {
        error.textContent = 'Give a subscription, a check, or both.';
        subInput.focus();
        return;
      }
      const name = silenceName(subscription, chk);
      const body = {
        metadata: {name, namespace},
        expire: Number(expirySelect.value),
        expire_on_resolve: resolveBox.checked,
      };
      if (subscription) body.subscription = subscription;
      if (chk) body.check = chk;
      if (reasonInput.value.trim()) body.reason = reasonInput.value.trim();
      submit.disabled = true;
      error.textContent = '';
      try {
        await api.request('PUT', api.nsPath(namespace, 'silenced', name), {body});
        done = true;
        dialog.close();
      } catch (err) {
        error.textContent = err.message;
        submit.disabled = false;
      }
    });
    dialog.showModal();
    (targetField ? targetField.querySelector('input') : subInput).focus();
  });
}

/** Ask before an action; resolves true when confirmed. */
export function confirmDialog({title, message, items = [], confirmLabel}) {
  return new Promise((resolve) => {
    let confirmed = false;
    const ok = h('button', {type: 'button', class: 'primary danger', onclick: () => { confirmed = true; dialog.close(); }},
      confirmLabel);
    const dialog = modal(title,
      h('p', null, message),
      items.length ? h('ul', {class: 'plain-list'}, items.map((i) => h('li', null, h('code', null, i)))) : null,
      h('div', {class: 'actions'},
        h('button', {type: 'button', onclick: () => dialog.close()}, 'Cancel'),
        ok));
    dialog.addEventListener('close', () => resolve(confirmed));
    dialog.showModal();
    ok.focus();
  });
}

/** Delete silences by name after confirmation; resolves true if any was cleared. */
export async function clearSilences(namespace, names) {
  if (!names.length) return false;
  const many = names.length > 1;
  const yes = await confirmDialog({
    title: many ? 'Clear silences' : 'Clear silence',
    message: many ? `Clear these ${names.length} silences?` : 'Clear this silence?',
    items: names,
    confirmLabel: many ? `Clear ${names.length} silences` : 'Clear silence',
  });
  if (!yes) return false;
  for (const name of names) {
    try {
      await api.request('DELETE', api.nsPath(namespace, 'silenced', name));
    } catch (err) {
      if (err.status !== 404) throw err;  // already gone
    }
  }
  return true;
}
