// The identity graph drawn with cytoscape.js (vendor/): shape and colour by namespace
// kind, so it reads without colour too; edges carry their first/last seen times.

import { el, keyOf } from './dom.js';

export const KINDS = {
  person: { color: '#1f5fbf', shape: 'round-rectangle', name: 'rounded box' },
  partner: { color: '#7b3fa0', shape: 'diamond', name: 'diamond' },
  device: { color: '#c25e00', shape: 'hexagon', name: 'hexagon' },
  cookie: { color: '#6b7280', shape: 'ellipse', name: 'circle' },
};
// Above this many links, an edge's label shows on hover or selection only (the links
// table lists them all): 50 identities stay readable.
const LABELLED_LINKS = 12;

const RING = { person: 3, partner: 2, device: 1, cookie: 0 };
// Long values (device ids, cookies) are cut in the drawing; the table has them whole.
const short = (value) => (value.length > 22 ? `${value.slice(0, 20)}…` : value);
const day = (iso) => iso.slice(5, 16).replace('T', ' ');

function style(labelAll) {
  const kinds = Object.entries(KINDS).map(([kind, k]) => ({
    selector: `node[kind = "${kind}"]`,
    style: { 'background-color': k.color, shape: k.shape },
  }));
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)', 'text-wrap': 'wrap', 'text-valign': 'bottom', 'text-margin-y': 4,
        'font-size': 12, width: 22, height: 22, 'border-width': 1, 'border-color': '#222',
        'text-background-color': '#fff', 'text-background-opacity': 0.8, 'text-background-padding': 1,
      },
    },
    ...kinds,
    { selector: 'node.quarantined', style: { 'border-width': 4, 'border-style': 'dashed', 'border-color': '#b3261e' } },
    { selector: 'node.picked', style: { 'border-width': 4, 'border-color': '#ffb000', 'border-style': 'double' } },
    {
      selector: 'edge',
      style: {
        width: 2, 'line-color': '#9aa3b5', 'curve-style': 'bezier', 'font-size': 10,
        label: labelAll ? 'data(label)' : '', 'text-wrap': 'wrap', color: '#333',
        'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-rotation': 'autorotate',
      },
    },
    { selector: 'edge.hover, edge:selected', style: { label: 'data(label)', width: 4, 'line-color': '#1f5fbf' } },
    { selector: '.on-path', style: { 'line-color': '#e09b00', width: 6, 'line-style': 'dashed' } },
    { selector: '.faded', style: { opacity: 0.2 } },
  ];
}

export const linkId = (link) => `${keyOf(link.a)}\u0000${keyOf(link.b)}`;

export class GraphView {
  constructor(container, { onLink, onNode }) {
    this.container = container;
    this.onLink = onLink;
    this.onNode = onNode;
    this.cy = null;
  }

  render(graph, kindOf, quarantined) {
    const nodes = graph.identities.map((i) => ({
      data: { id: keyOf(i), label: `${quarantined.has(keyOf(i)) ? '⚠ ' : ''}${i.namespace}\n${short(i.id)}`, kind: kindOf(i.namespace) },
      classes: quarantined.has(keyOf(i)) ? 'quarantined' : '',
    }));
    const edges = graph.links.map((link, index) => ({
      data: {
        id: linkId(link), source: keyOf(link.a), target: keyOf(link.b), index,
        label: `first ${day(link.first_seen)}\nlast ${day(link.last_seen)}`,
      },
    }));
    if (this.cy) this.cy.destroy();
    // Room grows with the graph, so labels of a 50-identity graph stay legible at fit.
    this.container.style.height = `${Math.min(860, 360 + 10 * nodes.length)}px`;
    this.cy = cytoscape({
      container: this.container,
      elements: [...nodes, ...edges],
      style: style(edges.length <= LABELLED_LINKS),
      // Rings by kind, people in the middle: deterministic, and a 50-identity graph
      // (mostly devices and cookies around a few people) keeps its labels apart.
      layout: {
        name: 'concentric', concentric: (n) => RING[n.data('kind')] ?? 0, levelWidth: () => 1,
        minNodeSpacing: 6, spacingFactor: 0.8, nodeDimensionsIncludeLabels: true, animate: false, padding: 12,
      },
      minZoom: 0.3,
      maxZoom: 3,
      selectionType: 'single',
    });
    this.cy.on('tap', 'edge', (event) => this.onLink(graph.links[event.target.data('index')]));
    this.cy.on('tap', 'node', (event) => this.onNode(event.target.id()));
    this.cy.on('mouseover', 'edge', (event) => event.target.addClass('hover'));
    this.cy.on('mouseout', 'edge', (event) => event.target.removeClass('hover'));
    this.container.setAttribute(
      'aria-label',
      `Identity graph: ${nodes.length} identities, ${edges.length} links; the table beside it lists the same identities.`,
    );
  }

  select(link) {
    this.cy.edges().unselect();
    this.cy.getElementById(linkId(link)).select();
  }

  mark(picked, path) {
    this.cy.nodes().forEach((n) => n.toggleClass('picked', picked.includes(n.id())));
    this.cy.elements().removeClass('on-path');
    for (const link of path) {
      this.cy.getElementById(linkId(link)).addClass('on-path');
    }
  }

  filter(namespace) {
    this.cy.nodes().forEach((n) => n.toggleClass('faded', Boolean(namespace) && !n.id().startsWith(`${namespace}:`)));
  }
}

export function legend(list) {
  list.replaceChildren(
    ...Object.entries(KINDS).map(([kind, k]) =>
      el('li', {}, el('span', { class: 'swatch', style: `background:${k.color}`, 'aria-hidden': 'true' }), `${kind}: ${k.name}`),
    ),
    el('li', {}, '⚠ dashed red border: quarantined'),
    el('li', {}, 'dashed orange link: the path /v1/explain found'),
  );
}
