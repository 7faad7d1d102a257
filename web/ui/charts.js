// charts.js — what the page draws: sparklines (a canvas each, the last SPARK_POINTS samples kept
// in the page) and a memory pool as a bar of segments (each model, other use, free, memory not
// free now, the reserve). Drawing only: no fetches, no state but the samples it is given.
import { bytes, el } from './api.js';

export const SPARK_POINTS = 150; // 5 minutes at one sample every 2 s

// A series of numbers (null: no value at that time) drawn into canvas; label shows the last value.
export class Spark {
  constructor(canvas, label, fmt) {
    this.c = canvas; this.label = label; this.fmt = fmt; this.v = [];
  }
  push(x) {
    this.v.push(x);
    if (this.v.length > SPARK_POINTS) this.v.shift();
    this.draw();
  }
  draw() {
    const { c } = this, g = c.getContext('2d'), w = c.width, h = c.height;
    g.clearRect(0, 0, w, h);
    const vals = this.v.filter((x) => x != null);
    const max = Math.max(1e-9, ...vals);
    const step = w / (SPARK_POINTS - 1), x0 = w - (this.v.length - 1) * step;
    g.strokeStyle = getComputedStyle(c).color; g.lineWidth = 1.5; g.beginPath();
    let pen = false;
    this.v.forEach((y, i) => {
      if (y == null) { pen = false; return; }
      const px = x0 + i * step, py = h - 2 - (y / max) * (h - 4);
      if (pen) g.lineTo(px, py); else g.moveTo(px, py);
      pen = true;
    });
    g.stroke();
    const last = [...this.v].reverse().find((x) => x != null);
    this.label.textContent = last == null ? '–' : this.fmt(last) + ' (max ' + this.fmt(max) + ')';
  }
}

// Model colours: distinct for the first few models of the matrix (by their index), then hues.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#9c755f'];
export function colourOf(i) { return i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 47) % 360} 55% 55%)`; }

// One pool's bar. segs: [{name, bytes, cache, colour}] per resident model (cache: what its prompt
// cache may hold, counted in host RAM); total: the device's memory (0 when unknown). The scale is
// the larger of the budget and the device.
export function poolBar(pool, segs, total) {
  const budget = pool.budget, now = Math.min(pool.budget_now || budget, budget), used = pool.used;
  const scale = Math.max(budget, total || 0, used, 1);
  const models = segs.reduce((a, s) => a + s.bytes + (s.cache || 0), 0);
  const parts = [];
  for (const s of segs) {
    parts.push({ cls: 'seg model', name: s.name, b: s.bytes, colour: s.colour });
    if (s.cache) parts.push({ cls: 'seg model cache', name: s.name + ' prompt cache (limit)', b: s.cache, colour: s.colour });
  }
  if (used > models) parts.push({ cls: 'seg other', name: 'other (loading, unloading)', b: used - models });
  parts.push({ cls: 'seg free', name: 'free', b: Math.max(0, now - used) });
  if (budget > now) parts.push({ cls: 'seg held', name: 'not free now (other programs)', b: budget - Math.max(now, used) });
  if (total > budget) parts.push({ cls: 'seg reserve', name: 'reserve (outside the budget)', b: total - budget });
  const bar = el('div', { class: 'bar', role: 'img', dataset: { pool: pool.device, used: String(used), budget: String(budget) } });
  for (const p of parts) {
    if (p.b <= 0) continue;
    const s = el('div', { class: p.cls, title: p.name + ': ' + bytes(p.b) });
    s.style.width = (100 * p.b / scale).toFixed(3) + '%';
    if (p.colour) s.style.backgroundColor = p.colour;
    if (p.cls === 'seg model') s.dataset.model = p.name;
    bar.append(s);
  }
  const legend = el('div', { class: 'legend' },
    el('b', { text: pool.device }),
    ` used ${bytes(used)} of budget ${bytes(budget)}` +
    (now < budget ? ` (${bytes(now)} usable now)` : '') + (total ? `, device ${bytes(total)}` : ''));
  for (const s of segs) {
    const sw = el('span', { class: 'swatch' });
    sw.style.backgroundColor = s.colour;
    legend.append(' ', sw, ` ${s.name} ${bytes(s.bytes)}` + (s.cache ? ` + cache ${bytes(s.cache)}` : ''));
  }
  return el('div', { class: 'pool' }, legend, bar);
}
