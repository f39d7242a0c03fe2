// oko trace viewer: draws the OKO payload (set by the page) on canvases. No network.
// Payload: tokens (turns, roles in a chat), queries/keys (absolute positions), layers, heads, rowlen[q] (keys up to
// the query), attn[layer slot] = base64 bytes [head][query][rowlen[q]], each byte
// round(255*sqrt(p)) (signed: 128 + round(127*sign(d)*sqrt(|d|/scale))), lens, drift.
"use strict";
window.onerror = (msg) => { document.title = "error: " + msg; };

const $ = (id) => document.getElementById(id);
const D = OKO;
const Q = D.queries.length, K = D.keys.length, H = D.heads.length, L = D.layers.length;
const rowStart = new Int32Array(Q + 1);
for (let q = 0; q < Q; q++) rowStart[q + 1] = rowStart[q] + D.rowlen[q];
const perHead = rowStart[Q];
const bytes = D.attn.map((b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
const decode = new Float32Array(256);
for (let b = 0; b < 256; b++) {
  decode[b] = D.signed ? D.scale * Math.sign(b - 128) * ((b - 128) / 127) ** 2 : (b / 255) ** 2;
}
const state = { layer: L - 1, head: -1, query: Q - 1 };
// The layer and head asked for on the command line (--layer/--head, or --diff's pick).
if (D.initial && D.layers.indexOf(D.initial.layer) >= 0) state.layer = D.layers.indexOf(D.initial.layer);
if (D.initial && D.heads.indexOf(D.initial.head) >= 0) state.head = D.heads.indexOf(D.initial.head);

// Value of layer slot l, head slot h (-1: average), query slot q, key slot k.
function value(l, h, q, k) {
  if (k >= D.rowlen[q]) return 0;
  if (h >= 0) return decode[bytes[l][h * perHead + rowStart[q] + k]];
  let s = 0;
  for (let i = 0; i < H; i++) s += decode[bytes[l][i * perHead + rowStart[q] + k]];
  return s / H;
}
function row(l, h, q) {
  const r = new Float32Array(K);
  for (let k = 0; k < D.rowlen[q]; k++) r[k] = value(l, h, q, k);
  return r;
}

const MAGMA = [[20, 14, 40], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]];
function color(v) {
  if (D.signed) {  // blue (B larger) .. dark .. red (A larger), relative to the largest
    const a = Math.min(1, Math.sqrt(Math.abs(v) / D.scale));
    return v >= 0 ? [20 + 235 * a, 14 + 76 * a, 40 + 20 * a] : [20 + 60 * a, 14 + 126 * a, 40 + 215 * a];
  }
  const x = Math.min(1, Math.sqrt(Math.max(0, v))) * 4, i = Math.min(3, Math.floor(x)), f = x - i;
  const a = MAGMA[i], b = MAGMA[i + 1];
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}
function css(v) { const c = color(v); return `rgb(${c[0] | 0},${c[1] | 0},${c[2] | 0})`; }
const fmt = (v) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4));
function label(t, n = 14) {
  const s = t.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "→");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}
const tokenOfKey = (k) => D.tokens[D.keys[k]];
const tokenOfQuery = (q) => D.tokens[D.queries[q]];
// In a chat trace, the message a position belongs to.
const message = (pos) => (D.roles.length ? ` (${D.roles[pos]}, message ${D.turns[pos]})` : "");
const headName = (h) => (h < 0 ? "avg" : "h" + D.heads[h]);

// Renders [rows x cols] into an ImageData, pooling blocks (max of |value|) when larger.
function image(l, h, rows, cols) {
  const img = new ImageData(cols, rows), px = img.data;
  const qs = Q / rows, ks = K / cols;
  for (let r = 0; r < rows; r++) {
    const q0 = Math.floor(r * qs), q1 = Math.max(q0 + 1, Math.floor((r + 1) * qs));
    for (let c = 0; c < cols; c++) {
      const k0 = Math.floor(c * ks), k1 = Math.max(k0 + 1, Math.floor((c + 1) * ks));
      let v = 0;
      for (let q = q0; q < q1; q++) {
        for (let k = k0; k < Math.min(k1, D.rowlen[q]); k++) {
          const x = value(l, h, q, k);
          if (Math.abs(x) > Math.abs(v)) v = x;
        }
      }
      const o = 4 * (r * cols + c), rgb = v === 0 ? [0, 0, 0] : color(v);
      px[o] = rgb[0]; px[o + 1] = rgb[1]; px[o + 2] = rgb[2]; px[o + 3] = 255;
    }
  }
  return img;
}

function drawGrid() {
  const grid = $("grid");
  grid.innerHTML = "";
  grid.style.gridTemplateColumns = `28px repeat(${H + 1}, minmax(40px, 1fr))`;
  grid.appendChild(document.createElement("div"));
  for (let h = 0; h < H; h++) grid.insertAdjacentHTML("beforeend", `<div class="axis">h${D.heads[h]}</div>`);
  grid.insertAdjacentHTML("beforeend", `<div class="axis">avg</div>`);
  const side = Math.min(64, Q, K);
  for (let l = 0; l < L; l++) {
    grid.insertAdjacentHTML("beforeend", `<div class="axis">L${D.layers[l]}</div>`);
    for (let h = 0; h <= H; h++) {
      const hs = h === H ? -1 : h;
      const cell = document.createElement("div");
      cell.className = "thumb";
      cell.dataset.l = l; cell.dataset.h = hs;
      const c = document.createElement("canvas");
      c.width = Math.max(1, Math.round(side * K / Math.max(Q, K)));
      c.height = Math.max(1, Math.round(side * Q / Math.max(Q, K)));
      c.getContext("2d").putImageData(image(l, hs, c.height, c.width), 0, 0);
      cell.appendChild(c);
      const score = D.drift ? D.drift.find((d) => d.layer === D.layers[l] && d.head === D.heads[hs]) : null;
      // Two significant digits: a thumbnail label must fit its cell ("4.5e-7", not "4.45e-7").
      if (score) cell.insertAdjacentHTML("beforeend", `<span>${score.jsd.toPrecision(2)}</span>`);
      cell.onclick = () => { state.layer = l; state.head = hs; syncControls(); drawAll(); };
      grid.appendChild(cell);
    }
  }
}

function markSelected() {
  for (const t of document.querySelectorAll(".thumb"))
    t.classList.toggle("sel", +t.dataset.l === state.layer && +t.dataset.h === state.head);
}

function heatmapGeometry() {
  const zoom = +$("zoom").value;
  const fit = Math.max(1, Math.floor(760 / Math.max(Q, K)));
  const limit = Math.max(1, Math.floor(Math.sqrt(1e8 / (Q * K))));  // canvases have an area limit
  const cell = Math.min(limit, Math.max(fit, zoom));
  const withLabels = cell >= 9;
  const pad = withLabels ? 110 : 0;
  return { cell, pad, withLabels };
}

// The colour bar with values: probabilities 0..1 (square-root scale), or A − B from
// −largest to +largest for a diff.
function drawScale() {
  const c = $("scale"), ctx = c.getContext("2d"), w = 256, h = 12, left = 8;
  c.width = w + 2 * left; c.height = h + 16;
  const lo = D.signed ? -D.scale : 0, hi = D.signed ? D.scale : 1;
  const at = (x) => (D.signed ? lo + (hi - lo) * x : x * x);  // bar position -> value
  for (let x = 0; x < w; x++) { ctx.fillStyle = css(at(x / (w - 1))); ctx.fillRect(left + x, 0, 1, h); }
  ctx.fillStyle = "#e4e4ee"; ctx.font = "10px ui-monospace, monospace"; ctx.textBaseline = "top";
  for (const x of [0, 0.25, 0.5, 0.75, 1]) {
    ctx.textAlign = x === 0 ? "left" : x === 1 ? "right" : "center";
    ctx.fillText(Number(at(x).toPrecision(2)).toString(), left + x * (w - 1), h + 2);
  }
}

function drawHeatmap() {
  const { cell, pad, withLabels } = heatmapGeometry();
  const c = $("heatmap"), ctx = c.getContext("2d");
  c.width = pad + K * cell; c.height = pad + Q * cell;
  ctx.fillStyle = "#000"; ctx.fillRect(pad, pad, K * cell, Q * cell);
  const off = document.createElement("canvas");
  off.width = K; off.height = Q;
  off.getContext("2d").putImageData(image(state.layer, state.head, Q, K), 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, pad, pad, K * cell, Q * cell);
  ctx.fillStyle = "#e4e4ee"; ctx.font = `${Math.min(12, cell)}px ui-monospace, monospace`;
  if (withLabels) {
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let q = 0; q < Q; q++) ctx.fillText(label(tokenOfQuery(q)), pad - 4, pad + (q + 0.5) * cell);
    ctx.save(); ctx.textAlign = "left";
    for (let k = 0; k < K; k++) {
      ctx.setTransform(1, 0, 0, 1, pad + (k + 0.5) * cell, pad - 4); ctx.rotate(-Math.PI / 2);
      ctx.fillStyle = D.sinks[k] ? "#fb8861" : "#e4e4ee";
      ctx.fillText(label(tokenOfKey(k)), 0, 0);
    }
    ctx.restore();
  }
  ctx.strokeStyle = "#fb8861"; ctx.lineWidth = 1;
  ctx.strokeRect(pad, pad + state.query * cell, K * cell, cell);
  $("map-title").textContent = `Heatmap · layer ${D.layers[state.layer]} · ${state.head < 0 ? "head average" : "head " + D.heads[state.head]}` +
    (D.signed ? " · A − B (red: A attends more)" : "");
}

function cellAt(ev) {
  const { cell, pad } = heatmapGeometry();
  const r = $("heatmap").getBoundingClientRect();
  const k = Math.floor((ev.clientX - r.left - pad) / cell), q = Math.floor((ev.clientY - r.top - pad) / cell);
  return q >= 0 && q < Q && k >= 0 && k < K ? { q, k } : null;
}

function drawRowDetail() {
  const q = state.query, r = row(state.layer, state.head, q);
  const order = [...r.keys()].sort((a, b) => Math.abs(r[b]) - Math.abs(r[a])).slice(0, 8);
  let html = `<div>query ${D.queries[q]} <b>${escapeHtml(label(tokenOfQuery(q), 30))}</b>${escapeHtml(message(D.queries[q]))} ${D.signed ? "A − B" : "attends"}: ` +
    order.filter((k) => r[k] !== 0).map((k) => `${escapeHtml(label(tokenOfKey(k)))}@${D.keys[k]} ${fmt(r[k])}`).join(", ") + "</div><div>";
  for (let k = 0; k < Math.min(K, 400); k++) {
    const kk = K > 400 ? K - 400 + k : k;
    html += `<span class="tok" style="background:${r[kk] === 0 ? "transparent" : css(r[kk])};color:${Math.abs(r[kk]) > 0.3 ? "#000" : "#e4e4ee"}" title="${D.keys[kk]}${escapeHtml(message(D.keys[kk]))}: ${fmt(r[kk])}">${escapeHtml(label(tokenOfKey(kk), 20))}</span>`;
  }
  $("row-detail").innerHTML = html + "</div>";
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

// Bertviz-style: queries on the left, keys on the right, lines weighted by attention.
const LINE_ROW = 16, LINE_COL = 180, LINE_GAP = 360;
let hoverLine = null;
function drawLines() {
  const c = $("lines"), ctx = c.getContext("2d"), n = Math.max(Q, K);
  c.width = 2 * LINE_COL + LINE_GAP; c.height = n * LINE_ROW + 8;
  ctx.font = "12px ui-monospace, monospace"; ctx.textBaseline = "middle";
  const yq = (q) => 4 + (q + 0.5) * LINE_ROW, yk = (k) => 4 + (k + 0.5) * LINE_ROW;
  const links = [];
  if (hoverLine && hoverLine.side === "q") {
    const r = row(state.layer, state.head, hoverLine.i);
    for (let k = 0; k < K; k++) if (Math.abs(r[k]) > 0.003) links.push([hoverLine.i, k, r[k]]);
  } else if (hoverLine) {
    for (let q = 0; q < Q; q++) {
      const v = value(state.layer, state.head, q, hoverLine.i);
      if (Math.abs(v) > 0.003) links.push([q, hoverLine.i, v]);
    }
  }
  const weight = new Float32Array(K), qweight = new Float32Array(Q);
  for (const [q, k, v] of links) { weight[k] = Math.max(weight[k], Math.abs(v)); qweight[q] = Math.max(qweight[q], Math.abs(v)); }
  for (const [q, k, v] of links) {
    ctx.strokeStyle = css(v); ctx.globalAlpha = Math.min(1, 0.15 + Math.sqrt(Math.abs(v)));
    ctx.lineWidth = 0.5 + 4 * Math.abs(v);
    ctx.beginPath(); ctx.moveTo(LINE_COL, yq(q)); ctx.bezierCurveTo(LINE_COL + LINE_GAP / 2, yq(q), LINE_COL + LINE_GAP / 2, yk(k), LINE_COL + LINE_GAP, yk(k)); ctx.stroke();
  }
  ctx.globalAlpha = 1;
  for (let q = 0; q < Q; q++) {
    if (qweight[q] > 0 || (hoverLine && hoverLine.side === "q" && hoverLine.i === q)) { ctx.fillStyle = "#3a3050"; ctx.fillRect(0, yq(q) - 7, LINE_COL - 6, 14); }
    ctx.fillStyle = "#e4e4ee"; ctx.textAlign = "right";
    ctx.fillText(label(tokenOfQuery(q), 20) + " " + D.queries[q], LINE_COL - 8, yq(q));
  }
  for (let k = 0; k < K; k++) {
    if (weight[k] > 0) { ctx.fillStyle = css(weight[k]); ctx.globalAlpha = 0.8; ctx.fillRect(LINE_COL + LINE_GAP + 6, yk(k) - 7, LINE_COL - 6, 14); ctx.globalAlpha = 1; }
    ctx.fillStyle = D.sinks[k] ? "#fb8861" : weight[k] > 0.3 ? "#000" : "#e4e4ee"; ctx.textAlign = "left";
    ctx.fillText(D.keys[k] + " " + label(tokenOfKey(k), 20), LINE_COL + LINE_GAP + 8, yk(k));
  }
}

// Token through layers: the selected query's row in every layer (the selected head or the
// average), deepest layer on top, one column per key it could attend.
const DEPTH_ROW = 18, DEPTH_PAD = 48, DEPTH_LABELS = 90;
function depthGeometry() {
  const n = Math.max(1, D.rowlen[state.query]);
  const cell = Math.max(2, Math.min(18, Math.floor(1200 / n)));
  return { n, cell, labels: cell >= 9 };
}
function drawDepth() {
  const q = state.query, { n, cell, labels } = depthGeometry(), c = $("depth"), ctx = c.getContext("2d");
  c.width = DEPTH_PAD + n * cell + 4; c.height = L * DEPTH_ROW + (labels ? DEPTH_LABELS : 4);
  ctx.fillStyle = "#000"; ctx.fillRect(DEPTH_PAD, 0, n * cell, L * DEPTH_ROW);
  ctx.font = "11px ui-monospace, monospace"; ctx.textBaseline = "middle";
  for (let l = 0; l < L; l++) {
    const y = (L - 1 - l) * DEPTH_ROW;
    ctx.fillStyle = l === state.layer ? "#fb8861" : "#8a8aa0"; ctx.textAlign = "right";
    ctx.fillText("L" + D.layers[l], DEPTH_PAD - 6, y + DEPTH_ROW / 2);
    for (let k = 0; k < D.rowlen[q]; k++) {
      const v = value(l, state.head, q, k);
      if (v !== 0) { ctx.fillStyle = css(v); ctx.fillRect(DEPTH_PAD + k * cell, y + 1, cell, DEPTH_ROW - 2); }
    }
  }
  if (labels) {
    ctx.save(); ctx.textAlign = "right";
    for (let k = 0; k < D.rowlen[q]; k++) {
      ctx.setTransform(1, 0, 0, 1, DEPTH_PAD + (k + 0.5) * cell, L * DEPTH_ROW + 4); ctx.rotate(-Math.PI / 2);
      ctx.fillStyle = D.sinks[k] ? "#fb8861" : "#e4e4ee";
      ctx.fillText(label(tokenOfKey(k)), 0, 0);
    }
    ctx.restore();
  }
  $("depth-title").textContent = `Token through layers · query ${D.queries[q]} ${label(tokenOfQuery(q), 30)}${message(D.queries[q])} · ` +
    (state.head < 0 ? "head average" : "head " + D.heads[state.head]);
}

// Logit lens: layers bottom (embeddings) to top, query positions left to right, a window
// of columns around the selected query.
const LENS_W = 64, LENS_H = 18, LENS_PAD = 48, LENS_MAX = 160;
function lensWindow() {
  const n = Math.min(Q, LENS_MAX);
  return [Math.max(0, Math.min(Q - n, state.query - (n >> 1))), n];
}
function drawLens() {
  if (!D.lens) { $("lens-panel").style.display = "none"; return; }
  const ls = D.lens.layers, k = D.lens.k, c = $("lens"), ctx = c.getContext("2d");
  const [first, n] = lensWindow();
  c.width = LENS_PAD + n * LENS_W; c.height = (ls.length + 1) * LENS_H + 4;
  ctx.font = "11px ui-monospace, monospace"; ctx.textBaseline = "middle";
  for (let i = 0; i < ls.length; i++) {
    const y = (ls.length - 1 - i) * LENS_H;
    ctx.fillStyle = "#8a8aa0"; ctx.textAlign = "right";
    ctx.fillText(ls[i] < 0 ? "emb" : "L" + ls[i], LENS_PAD - 6, y + LENS_H / 2);
    for (let q = first; q < first + n; q++) {
      const at = (i * Q + q) * k, p = D.lens.probs[at], x = LENS_PAD + (q - first) * LENS_W;
      ctx.fillStyle = css(p); ctx.fillRect(x + 1, y + 1, LENS_W - 2, LENS_H - 2);
      ctx.fillStyle = p > 0.3 ? "#000" : "#e4e4ee"; ctx.textAlign = "left";
      ctx.fillText(label(D.lens.names[D.lens.ids[at]] ?? "?", 8), x + 3, y + LENS_H / 2);
    }
  }
  const y = ls.length * LENS_H;
  ctx.fillStyle = "#e4e4ee"; ctx.textAlign = "left";
  for (let q = first; q < first + n; q++) ctx.fillText(label(tokenOfQuery(q), 8), LENS_PAD + (q - first) * LENS_W + 3, y + LENS_H / 2);
  ctx.strokeStyle = "#fb8861"; ctx.strokeRect(LENS_PAD + (state.query - first) * LENS_W + 0.5, 0.5, LENS_W - 1, y + LENS_H - 1);
  let html = `<table><tr><th>layer</th><th colspan=${k}>top ${k} next tokens after ${escapeHtml(label(tokenOfQuery(state.query), 30))}@${D.queries[state.query]}</th></tr>`;
  for (let i = ls.length - 1; i >= 0; i--) {
    html += `<tr><th>${ls[i] < 0 ? "emb" : "L" + ls[i]}</th>`;
    for (let j = 0; j < k; j++) {
      const at = (i * Q + state.query) * k + j;
      html += `<td>${escapeHtml(label(D.lens.names[D.lens.ids[at]] ?? "?", 16))} ${D.lens.probs[at].toFixed(3)}</td>`;
    }
    html += "</tr>";
  }
  $("lens-detail").innerHTML = html + "</table>";
}

function drawDrift() {
  if (!D.drift) return;
  let html = "<table><tr><th>rank</th><th>layer</th><th>head</th><th>JSD</th><th>L1</th></tr>";
  D.drift.slice(0, 12).forEach((d, i) => { html += `<tr><td>${i + 1}</td><td>${d.layer}</td><td>${d.head}</td><td>${fmt(d.jsd)}</td><td>${fmt(d.l1)}</td></tr>`; });
  $("drift").innerHTML = html + "</table>";
}

function syncControls() { $("layer").value = state.layer; $("head").value = state.head; }
function drawAll() { markSelected(); drawScale(); drawHeatmap(); drawRowDetail(); drawDepth(); drawLines(); drawLens(); }

function setup() {
  $("title").textContent = D.title;
  $("summary").textContent = `${D.model} · ${D.tokens.length} tokens · ${L} layers × ${H} heads · ${Q} queries × ${K} keys` +
    (D.sinks.some((s) => s) ? " · sink keys in orange" : "") + " · values approximate (8-bit); exact ones in the .safetensors";
  D.layers.forEach((l, i) => $("layer").add(new Option("L" + l, i)));
  $("head").add(new Option("average", -1));
  D.heads.forEach((h, i) => $("head").add(new Option("h" + h, i)));
  syncControls();
  $("layer").onchange = () => { state.layer = +$("layer").value; drawAll(); };
  $("head").onchange = () => { state.head = +$("head").value; drawAll(); };
  $("zoom").oninput = drawHeatmap;
  $("heatmap").onmousemove = (ev) => {
    const at = cellAt(ev);
    $("hover").textContent = at ? `${label(tokenOfQuery(at.q))}@${D.queries[at.q]}${message(D.queries[at.q])} → ${label(tokenOfKey(at.k))}@${D.keys[at.k]}${message(D.keys[at.k])}: ${fmt(value(state.layer, state.head, at.q, at.k))}` : "";
  };
  $("heatmap").onclick = (ev) => { const at = cellAt(ev); if (at) { state.query = at.q; drawAll(); } };
  $("lines").onmousemove = (ev) => {
    const r = $("lines").getBoundingClientRect(), x = ev.clientX - r.left, i = Math.floor((ev.clientY - r.top - 4) / LINE_ROW);
    const side = x < LINE_COL ? "q" : x > LINE_COL + LINE_GAP ? "k" : null;
    const next = side && i >= 0 && i < (side === "q" ? Q : K) ? { side, i } : null;
    if (JSON.stringify(next) !== JSON.stringify(hoverLine)) { hoverLine = next; drawLines(); }
  };
  $("depth").onmousemove = (ev) => {
    const r = $("depth").getBoundingClientRect(), { cell } = depthGeometry();
    const k = Math.floor((ev.clientX - r.left - DEPTH_PAD) / cell), l = L - 1 - Math.floor((ev.clientY - r.top) / DEPTH_ROW);
    const ok = k >= 0 && k < D.rowlen[state.query] && l >= 0 && l < L;
    $("depth-hover").textContent = ok ? `L${D.layers[l]} → ${label(tokenOfKey(k))}@${D.keys[k]}${message(D.keys[k])}: ${fmt(value(l, state.head, state.query, k))}` : "";
  };
  $("lens").onclick = (ev) => {
    const q = lensWindow()[0] + Math.floor((ev.clientX - $("lens").getBoundingClientRect().left - LENS_PAD) / LENS_W);
    if (q >= lensWindow()[0] && q < Q) { state.query = q; drawAll(); }
  };
  hoverLine = { side: "q", i: state.query };
  drawDrift();
  drawGrid();
  drawAll();
}

setup();
// Self-check for tests and users: the heatmap holds drawn (non-black) pixels.
const px = $("heatmap").getContext("2d").getImageData(0, 0, $("heatmap").width, $("heatmap").height).data;
let lit = 0;
for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) lit++;
document.title = lit > 0 ? "ok" : "error: empty heatmap";
