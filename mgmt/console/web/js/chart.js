// Time-series charts with uPlot (vendor/uPlot.iife.min.js, pinned in mgmt/console/package-lock.json).
// The API gives current rates; the console keeps the samples it has seen (the last 10 minutes),
// taken at each refresh of the overview, so a chart fills up while the overview is shown.
const KEEP_MS = 10 * 60 * 1000;
const COLORS = ['#2b6cb0', '#d97706', '#15803d', '#b91c1c', '#7c3aed', '#0e7490'];

export class History {
  constructor(names) {
    this.names = names;
    this.t = [];
    this.v = names.map(() => []);
  }
  add(values) {
    const now = Date.now() / 1000;
    this.t.push(now);
    values.forEach((x, i) => this.v[i].push(x ?? 0));
    while (this.t.length && this.t[0] < now - KEEP_MS / 1000) {
      this.t.shift();
      this.v.forEach((s) => s.shift());
    }
  }
  data() { return [this.t, ...this.v]; }
}

// Axis labels: 1.5k, 20M.
function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e3) return +(v / 1e3).toFixed(1) + 'k';
  return +v.toFixed(2) + '';
}

export class Chart {
  constructor(container, title, history, unit) {
    this.history = history;
    this.el = container;
    const fmt = (u, v) => (v == null ? '' : unit === '/s' ? `${v.toFixed(v < 10 ? 1 : 0)}/s` : v.toLocaleString('en-US'));
    this.plot = new globalThis.uPlot({
      title,
      width: Math.max(300, container.clientWidth || 500),
      height: 200,
      series: [{}, ...history.names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 2, value: fmt }))],
      axes: [{}, { values: (u, ticks) => ticks.map((v) => compact(v) + (unit || '')), size: 64 }],
      // At least the last minute on the time axis, so the first samples do not span years.
      scales: { x: { time: true, range: (u, min, max) => [Math.min(min, max - 60), max] },
        y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    }, history.data(), container);
    this.onResize = () => this.plot.setSize({ width: Math.max(300, container.clientWidth), height: 200 });
    window.addEventListener('resize', this.onResize);
  }
  update() { this.plot.setData(this.history.data()); }
  destroy() {
    window.removeEventListener('resize', this.onResize);
    this.plot.destroy();
  }
}
