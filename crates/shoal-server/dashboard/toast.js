// Toasts: short messages stacked in a corner, one per result.

import { h } from './dom.js';

const LIFETIME_MS = 6000;

/**
 * Shows a toast. `kind` is `success`, `info`, `warn` or `error`; `title` is
 * optional bold text before the message.
 */
export function toast(message, kind = 'info', title = null) {
  const root = document.getElementById('toasts');
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const node = h(
    'div',
    { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'toast', 'data-kind': kind },
    h('div', { class: 'toast-body' }, title ? h('strong', {}, title) : null, h('span', { 'data-testid': 'toast-message' }, message)),
    close,
  );
  const dismiss = () => {
    node.classList.add('leaving');
    setTimeout(() => node.remove(), 200);
  };
  close.addEventListener('click', dismiss);
  root.append(node);
  // Keep the stack short.
  while (root.children.length > 4) root.firstElementChild.remove();
  setTimeout(dismiss, kind === 'error' ? LIFETIME_MS * 1.5 : LIFETIME_MS);
  return node;
}
