// A small layered layout for the console's graphs: nodes in columns (left to right), each column centred vertically,
// edges as curves between the right side of one node and the left side of the next. Returns SVG text.
"use strict";
window.SluiceGraph = (function () {
  const W = 176, H = 50, GAP_X = 48, GAP_Y = 14, PAD = 8;

  function esc(s) {
    return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function clip(s, n) { s = String(s ?? ""); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // columns: [[{ id, label, sub, health: ok|warn|bad|idle, href, title }]], edges: [[fromId, toId]]
  function render(columns, edges, name) {
    const pos = {};
    const tallest = Math.max(1, ...columns.map(c => c.length));
    const height = PAD * 2 + tallest * H + (tallest - 1) * GAP_Y;
    const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X;
    columns.forEach((col, ci) => {
      const colHeight = col.length * H + (col.length - 1) * GAP_Y;
      const top = (height - colHeight) / 2;
      col.forEach((n, ri) => { pos[n.id] = { x: PAD + ci * (W + GAP_X), y: top + ri * (H + GAP_Y), n }; });
    });
    const out = [];
    out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(name)}">`);
    out.push('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9aa6b4"/></marker></defs>');
    for (const [a, b] of edges) {
      const p = pos[a], q = pos[b];
      if (!p || !q) continue;
      const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x - 2, y2 = q.y + H / 2, mx = (x1 + x2) / 2;
      out.push(`<path class="edge" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}"/>`);
    }
    for (const id in pos) {
      const { x, y, n } = pos[id];
      const body = `<g class="node h-${esc(n.health || "idle")}" data-node="${esc(n.id)}"><title>${esc(n.title || n.label)}</title>` +
        `<rect x="${x}" y="${y}" width="${W}" height="${H}"/>` +
        `<text x="${x + 10}" y="${y + 20}">${esc(clip(n.label, 24))}</text>` +
        `<text class="sub" x="${x + 10}" y="${y + 38}">${esc(clip(n.sub, 28))}</text></g>`;
      out.push(n.href ? `<a href="${esc(n.href)}">${body}</a>` : body);
    }
    out.push("</svg>");
    return out.join("");
  }

  return { render, esc };
})();
