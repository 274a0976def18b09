// Small DOM helpers: data always goes in as text, never as HTML.

export const $ = (selector) => document.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

export const keyOf = (ref) => `${ref.namespace}:${ref.id}`;

// "2026-11-30T05:01:02.123Z" -> "2026-11-30 05:01:02 UTC".
export const when = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—');

// An attribute value as people read it: strings bare, anything else as JSON.
export const shown = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

export function table(rows) {
  return rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c))));
}
