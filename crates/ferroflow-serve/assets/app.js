// ferroflow explorer: the page. Plain JS on canvas 2D; talks to the server's HTTP API and
// one WebSocket per session (see crates/ferroflow-serve/README.md).
"use strict";

const $ = (id) => document.getElementById(id);
const MAGIC = 0x31574646; // "FFW1"
const LIVE_KEYS = ["sampler", "nfe", "sde_g", "guidance", "cfg_w"];
const TRAJ_PATHS = 64;
const FIELD_T_STEPS = 25;

// Measurements read by the browser test and the bench.
const ff = (window.__ff = {
  fps: 0, frames: 0, draws: 0, trainClick: null, firstLoss: null, firstParticles: null,
  heat: {}, sessions: [], lastError: null,
});

let options = null;
let playing = true;
let tValue = 1;
let lastAnimT = performance.now();
let lastTimebarT = 0;
let comparing = false;
let drawing = { points: [], strokes: [], csv: null };
const views = [];
ff.views = views;

// ---------- HTTP ----------
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : await r.blob();
  if (!r.ok) {
    const e = new Error(data.error || r.statusText);
    e.field = data.field;
    e.status = r.status;
    throw e;
  }
  return data;
}

function showError(e) {
  document.querySelectorAll(".err").forEach((el) => (el.textContent = ""));
  if (!e) return;
  ff.lastError = e.message;
  const el = e.field ? document.querySelector(`.err[data-for="${e.field}"]`) : null;
  (el || $("error")).textContent = e.message;
}

// ---------- settings <-> controls <-> URL ----------
function readControls() {
  const s = {};
  document.querySelectorAll("[data-key]").forEach((el) => {
    const k = el.dataset.key;
    if (el.type === "checkbox") s[k] = el.checked;
    else if (el.type === "number") s[k] = el.value === "" ? undefined : Number(el.value);
    else s[k] = el.value;
  });
  if (s.target === "drawn") {
    if (drawing.csv) s.csv = drawing.csv;
    else s.points = drawing.points;
  }
  return s;
}

function writeControls(s) {
  document.querySelectorAll("[data-key]").forEach((el) => {
    const k = el.dataset.key;
    if (!(k in s)) return;
    if (el.type === "checkbox") el.checked = !!s[k];
    else el.value = s[k];
  });
  $("lr-log").value = Math.log10(Number(s.lr) || 1e-3);
  $("draw-tools").hidden = s.target !== "drawn";
  cfgControl(!!s.conditional);
}

// CFG w acts on a class-conditional model only: off (and 0) otherwise.
function cfgControl(conditional) {
  const w = $("cfg_w");
  w.disabled = !conditional;
  w.title = conditional ? "v = (1 + w)·v(x|c) − w·v(x|∅); 0: plain conditional" : "needs conditional training on a labelled world";
  if (!conditional) w.value = 0;
}

// The URL holds the model and sampler settings, the view ("v." keys: layers, field mode, heat
// map time) and the compare view ("compare": what session B changes).
function settingsToUrl(s) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (k !== "points" && k !== "csv" && v !== undefined) q.set(k, v);
  for (const [k, v] of Object.entries(readView())) q.set("v." + k, v);
  if (comparing) q.set("compare", $("compare-change").value);
  history.replaceState(null, "", "?" + q.toString());
  // A drawn or uploaded target survives a reload through localStorage (not the URL: too big).
  if (s.target === "drawn") localStorage.setItem("ferroflow.drawn", JSON.stringify(drawing.csv ? { csv: drawing.csv } : drawing.points));
}

function readView() {
  const v = {};
  document.querySelectorAll("[data-view]").forEach((el) => (v[el.dataset.view] = el.type === "checkbox" ? el.checked : el.value));
  return v;
}

// Applies the URL's view keys to the view controls; returns the compare view's change, or null.
function viewFromUrl() {
  const q = new URLSearchParams(location.search);
  document.querySelectorAll("[data-view]").forEach((el) => {
    const v = q.get("v." + el.dataset.view);
    if (v === null) return;
    if (el.type === "checkbox") el.checked = v === "true";
    else if ([...el.options].some((o) => o.value === v)) el.value = v;
  });
  const c = q.get("compare");
  return c !== null && [...$("compare-change").options].some((o) => o.value === c) ? c : null;
}

function settingsFromUrl() {
  const q = new URLSearchParams(location.search);
  const s = {};
  for (const [k, v] of q) {
    if (k.startsWith("v.") || k === "compare") continue;
    if (v === "true" || v === "false") s[k] = v === "true";
    else if (v !== "" && !isNaN(Number(v)) && k !== "target" && k !== "source") s[k] = Number(v);
    else s[k] = v;
  }
  if (s.target === "drawn") {
    try {
      const saved = JSON.parse(localStorage.getItem("ferroflow.drawn") || "[]");
      if (Array.isArray(saved)) drawing.points = saved;
      else { drawing.points = []; drawing.csv = typeof saved.csv === "string" ? saved.csv : null; }
    } catch (_) { drawing.points = []; }
    if (drawing.csv) s.csv = drawing.csv;
    else s.points = drawing.points;
  }
  return s;
}

// ---------- a session's view ----------
class View {
  constructor(canvas, title) {
    this.canvas = canvas;
    // Opaque: the compositor need not blend it over the page.
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.title = title;
    this.id = null;
    this.ws = null;
    this.status = null;
    this.traj = null; // {n, k, times: Float32Array, states: Float32Array, step}
    this.data = null; // Float32Array
    this.losses = [];
    this.generation = -1;
    this.field = null;
    this.fieldKey = "";
    this.heat = null; // offscreen canvas
    this.layerPx = null; // the static layer's pixels (Uint32Array), while it is unchanged
    this.launched = [];
    this.view = [-5, 5, -5, 5];
  }

  async open(settings, query = "") {
    const r = await api("POST", "/api/sessions" + query, settings);
    this.id = r.id;
    ff.sessions.push(r.id);
    this.onStatus(r.status);
    this.connect();
    return r;
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/api/sessions/${this.id}/ws`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => (typeof ev.data === "string" ? this.onText(JSON.parse(ev.data)) : this.onFrame(ev.data));
    ws.onclose = async () => {
      if (!this.id) return;
      // Gone for good (dropped after 10 minutes without a client, or a restarted server): say
      // so once instead of retrying forever.
      const r = await fetch(`/api/sessions/${this.id}/status`).catch(() => null);
      if (r && r.status === 404) {
        const id = this.id;
        this.id = null;
        showError({ message: `session ${id} is gone (no client for 10 minutes, or the server restarted): reload the page to start a new one` });
        return;
      }
      setTimeout(() => this.id && this.connect(), 1000);
    };
    this.ws = ws;
  }

  close() {
    const id = this.id;
    this.id = null;
    if (this.ws) this.ws.close();
    if (id) navigator.sendBeacon(`/api/sessions/${id}/close`);
  }

  onText(m) {
    if (m.type === "status") this.onStatus(m.status);
    else if (m.type === "loss") {
      if (m.reset) this.losses = [];
      for (const p of m.points) this.losses.push(p);
      if (this.losses.length > 20000) this.losses = this.losses.filter((_, i) => i % 2 === 0);
      if (m.points.length && ff.trainClick !== null && ff.firstLoss === null && this === views[0])
        ff.firstLoss = performance.now() - ff.trainClick;
    }
  }

  onStatus(st) {
    this.status = st;
    if (st.view) this.view = st.view;
    if (st.generation !== this.generation) {
      this.generation = st.generation;
      this.heat = null;
      this.launched = [];
    }
    // The panel follows at most four times a second (a message comes every 50 ms; each
    // change of its text costs the browser a style, layout and paint pass), at once when the
    // state changes or an error comes.
    if (!this.shown || this.shown.state !== st.state || st.error) updatePanel();
    else panelDirty = true;
  }

  onFrame(buf) {
    const u = new Uint32Array(buf, 0, 8);
    if (u[0] !== MAGIC) return;
    const [kind, n, k] = [u[1], u[2], u[3]];
    const step = u[4] + u[5] * 4294967296;
    const f = new Float32Array(buf, 32);
    if (kind === 2) this.data = f.slice(k, k + 2 * n);
    else if (kind === 1) {
      this.traj = { n, k, step, nfe: u[7], times: f.slice(0, k), states: f.slice(k, k + k * n * 2) };
      this.fieldKey = "";
      if (ff.trainClick !== null && ff.firstParticles === null && step > 0 && this === views[0])
        ff.firstParticles = performance.now() - ff.trainClick;
    }
  }

  // data coordinates -> canvas pixels
  px(x, y) {
    const [x0, x1, y0, y1] = this.view;
    const w = this.canvas.width, h = this.canvas.height;
    return [((x - x0) / (x1 - x0)) * w, h - ((y - y0) / (y1 - y0)) * h];
  }

  unpx(px, py) {
    const [x0, x1, y0, y1] = this.view;
    const w = this.canvas.width, h = this.canvas.height;
    return [x0 + (px / w) * (x1 - x0), y0 + ((h - py) / h) * (y1 - y0)];
  }

  // the particles' positions at time t (linear between recorded states)
  positionsAt(t) {
    const tr = this.traj;
    if (!tr) return null;
    const { times, states, n, k } = tr;
    let j = 0;
    while (j < k - 2 && times[j + 1] < t) j++;
    const ta = times[j], tb = times[Math.min(j + 1, k - 1)];
    const a = tb > ta ? Math.min(Math.max((t - ta) / (tb - ta), 0), 1) : 0;
    const out = new Float32Array(2 * n);
    const o0 = j * n * 2, o1 = Math.min(j + 1, k - 1) * n * 2;
    for (let i = 0; i < 2 * n; i++) out[i] = states[o0 + i] * (1 - a) + states[o1 + i] * a;
    return out;
  }

  async refreshField(t) {
    const mode = $("field-mode").value;
    if (mode === "off" || !this.id || !this.traj) return;
    // t quantised to 1/25: about 10 requests a second while the slider plays.
    const tq = Math.round(t * FIELD_T_STEPS) / FIELD_T_STEPS;
    const key = `${this.traj.step}:${tq}`;
    if (key === this.fieldKey || this.fieldBusy) return;
    this.fieldBusy = true;
    try {
      this.field = await api("GET", `/api/sessions/${this.id}/field?t=${tq.toFixed(3)}&res=20`);
      this.fieldKey = key;
    } catch (_) {
    } finally {
      this.fieldBusy = false;
    }
  }

  async heatMap(t) {
    const started = performance.now();
    ff.heat = {};
    for (const res of [16, 32, 64]) {
      const d = await api("GET", `/api/sessions/${this.id}/density?t=${t}&res=${res}`);
      this.heat = renderHeat(d);
      ff.heat[res] = performance.now() - started;
      $("heat-info").textContent = `${res}×${res}: ${(ff.heat[res] / 1000).toFixed(2)} s (step ${d.step})`;
    }
  }

  // Everything that does not move with t, in two offscreen canvases redrawn only when one of
  // their inputs changes: the base (background, heat map, data, source, drawn points), which
  // changes with a snapshot or a setting, and over it the field, which follows the slider ten
  // times a second while it plays: a field redraw copies the base and draws 400 arrows, not
  // the base's 4,000 dots again.
  baseLayer(W, H) {
    const key = [this.heat, this.data, this.traj, this.view.join(","), $("show-data").checked,
      $("show-source").checked, drawing.points.length, W, H];
    if (this.baseKey && key.every((p, i) => p === this.baseKey[i])) return this.base;
    if (!this.base) this.base = document.createElement("canvas");
    this.base.width = W;
    this.base.height = H;
    const ctx = this.base.getContext("2d", { alpha: false });
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W, H);
    if (this.heat) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.heat, 0, 0, W, H);
    }
    if ($("show-data").checked && this.data) dots(ctx, this, this.data, "rgba(120,120,120,0.35)", 2);
    if ($("show-source").checked && this.traj) dots(ctx, this, this.traj.states.subarray(0, 2 * this.traj.n), "rgba(60,160,90,0.35)", 2);
    if (this === views[0] && $("target").value === "drawn" && drawing.points.length)
      dots(ctx, this, drawing.points.flat(), "rgba(200,60,60,0.6)", 3);
    this.baseKey = key;
    return this.base;
  }

  staticLayer() {
    const W = this.canvas.width, H = this.canvas.height;
    const base = this.baseLayer(W, H);
    const key = [base, this.baseKey, this.field, $("field-mode").value];
    if (this.layerKey && key.every((p, i) => p === this.layerKey[i])) return this.layer;
    if (!this.layer) this.layer = document.createElement("canvas");
    this.layer.width = W;
    this.layer.height = H;
    const ctx = this.layer.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(base, 0, 0);
    this.drawField(ctx);
    this.layerKey = key;
    this.layerPx = null; // its pixels, read back on the next frame that needs them
    return this.layer;
  }

  draw(t) {
    const ctx = this.ctx;
    const layer = this.staticLayer();
    // Nothing moved (paused, no new snapshot, same layers): leave the canvas as it is, so a
    // still page costs the browser no frame at all.
    const key = [t, this.traj, this.layerKey, this.launched.length, this.launched[this.launched.length - 1],
      $("show-particles").checked, $("show-traj").checked];
    if (this.drawnKey && key.every((p, i) => p === this.drawnKey[i])) return;
    this.drawnKey = key;
    ff.draws++;
    const pos = $("show-particles").checked ? this.positionsAt(t) : null;
    if (pos) {
      // The particles are written into the frame's pixels by hand (2×2 squares blended at
      // 0.75) and the frame is put in one call: 2,000 antialiased fillRects a frame took the
      // renderer of headless Chromium 0.1 core more at 60 frames/s (BENCHMARKS.md).
      const W = this.canvas.width, H = this.canvas.height;
      if (!this.frameImg || this.frameImg.width !== W || this.frameImg.height !== H) {
        this.frameImg = ctx.createImageData(W, H);
        this.framePx = new Uint32Array(this.frameImg.data.buffer);
      }
      if (this.layerPx === null) this.layerPx = new Uint32Array(layer.getContext("2d").getImageData(0, 0, W, H).data.buffer);
      this.framePx.set(this.layerPx);
      blendDots(this.framePx, W, H, this.view, pos, PARTICLE_RGB, 0.75);
      ctx.putImageData(this.frameImg, 0, 0);
    } else {
      ctx.drawImage(layer, 0, 0);
    }
    if ($("show-traj").checked && this.traj) this.drawPaths(ctx, t);
    for (const p of this.launched) polyline(ctx, this, p, t, "rgba(230,120,0,0.95)", 2);
  }

  drawPaths(ctx, t) {
    const { n, k, times, states } = this.traj;
    ctx.strokeStyle = "rgba(35,80,200,0.35)";
    ctx.lineWidth = 1;
    const m = Math.min(TRAJ_PATHS, n);
    for (let i = 0; i < m; i++) {
      ctx.beginPath();
      for (let j = 0; j < k && times[j] <= t + 1e-6; j++) {
        const [x, y] = this.px(states[(j * n + i) * 2], states[(j * n + i) * 2 + 1]);
        j === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
  }

  drawField(ctx) {
    const mode = $("field-mode").value;
    const f = this.field;
    if (mode === "off" || !f) return;
    const res = f.res, uv = f.uv, [x0, x1, y0, y1] = f.view;
    const cw = (x1 - x0) / res, ch = (y1 - y0) / res;
    ctx.strokeStyle = "rgba(20,20,20,0.55)";
    ctx.lineWidth = 1;
    if (mode === "stream") {
      const sample = (x, y) => {
        const i = Math.min(res - 1, Math.max(0, Math.floor((x - x0) / cw)));
        const j = Math.min(res - 1, Math.max(0, Math.floor((y - y0) / ch)));
        return [uv[(j * res + i) * 2], uv[(j * res + i) * 2 + 1]];
      };
      for (let a = 0; a < res; a += 2) for (let b = 0; b < res; b += 2) {
        let x = x0 + (a + 0.5) * cw, y = y0 + (b + 0.5) * ch;
        ctx.beginPath();
        ctx.moveTo(...this.px(x, y));
        for (let s = 0; s < 12; s++) {
          const [u, v] = sample(x, y);
          const norm = Math.hypot(u, v) || 1;
          x += (u / norm) * cw * 0.5; y += (v / norm) * ch * 0.5;
          ctx.lineTo(...this.px(x, y));
        }
        ctx.stroke();
      }
      return;
    }
    let maxLen = 1e-9;
    for (let i = 0; i < res * res; i++) maxLen = Math.max(maxLen, Math.hypot(uv[2 * i], uv[2 * i + 1]));
    for (let j = 0; j < res; j++) for (let i = 0; i < res; i++) {
      const u = uv[(j * res + i) * 2], v = uv[(j * res + i) * 2 + 1];
      const len = Math.hypot(u, v) || 1e-9;
      const scale = mode === "norm" ? (0.8 * cw) / len : (0.9 * cw) / maxLen;
      const cx = x0 + (i + 0.5) * cw, cy = y0 + (j + 0.5) * ch;
      arrow(ctx, this.px(cx, cy), this.px(cx + u * scale, cy + v * scale));
    }
  }
}

function dots(ctx, view, xy, color, size) {
  ctx.fillStyle = color;
  const h = size / 2;
  const [x0, x1, y0, y1] = view.view;
  const W = view.canvas.width, H = view.canvas.height;
  const sx = W / (x1 - x0), sy = H / (y1 - y0);
  for (let i = 0; i + 1 < xy.length; i += 2) ctx.fillRect((xy[i] - x0) * sx - h, H - (xy[i + 1] - y0) * sy - h, size, size);
}

const PARTICLE_RGB = [35, 80, 200];

// 2×2 squares of colour `rgb` at opacity `a`, blended into opaque RGBA pixels `px` (a
// Uint32Array over an ImageData: 0xAABBGGRR on the little-endian machines browsers run on).
function blendDots(px, W, H, view, xy, rgb, a) {
  const [x0, x1, y0, y1] = view;
  const sx = W / (x1 - x0), sy = H / (y1 - y0);
  const [cr, cg, cb] = rgb.map((c) => c * a);
  const keep = 1 - a;
  for (let i = 0; i + 1 < xy.length; i += 2) {
    const px0 = Math.round((xy[i] - x0) * sx - 1), py0 = Math.round(H - (xy[i + 1] - y0) * sy - 1);
    if (!(px0 >= 0 && py0 >= 0 && px0 + 1 < W && py0 + 1 < H)) continue;
    for (let o = py0 * W + px0, r = 0; r < 2; r++, o += W) {
      for (let k = o; k < o + 2; k++) {
        const d = px[k];
        const R = cr + (d & 255) * keep, G = cg + ((d >>> 8) & 255) * keep, B = cb + ((d >>> 16) & 255) * keep;
        px[k] = (0xff000000 | ((B + 0.5) << 16) | ((G + 0.5) << 8) | (R + 0.5)) >>> 0;
      }
    }
  }
}

function polyline(ctx, view, path, t, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  for (let j = 0; j < path.times.length && path.times[j] <= t + 1e-6; j++) {
    const [x, y] = view.px(path.points[2 * j], path.points[2 * j + 1]);
    j === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y);
  }
  ctx.stroke();
}

function arrow(ctx, [ax, ay], [bx, by]) {
  ctx.beginPath();
  ctx.moveTo(ax, ay);
  ctx.lineTo(bx, by);
  const a = Math.atan2(by - ay, bx - ax), l = Math.min(5, Math.hypot(bx - ax, by - ay) / 2);
  ctx.lineTo(bx - l * Math.cos(a - 0.5), by - l * Math.sin(a - 0.5));
  ctx.moveTo(bx, by);
  ctx.lineTo(bx - l * Math.cos(a + 0.5), by - l * Math.sin(a + 0.5));
  ctx.stroke();
}

// log-density grid -> an offscreen canvas (rows flipped: j runs up the y axis)
function renderHeat(d) {
  const res = d.res, vals = d.values.map((v) => (v === null ? -Infinity : v));
  const finite = vals.filter(Number.isFinite).sort((a, b) => a - b);
  const hi = finite[finite.length - 1] ?? 0, lo = finite[Math.floor(finite.length * 0.02)] ?? hi - 1;
  const c = document.createElement("canvas");
  c.width = res; c.height = res;
  const g = c.getContext("2d"), img = g.createImageData(res, res);
  for (let j = 0; j < res; j++) for (let i = 0; i < res; i++) {
    const v = vals[j * res + i];
    const s = Number.isFinite(v) ? Math.min(1, Math.max(0, (v - lo) / (hi - lo || 1))) : 0;
    const o = ((res - 1 - j) * res + i) * 4;
    // a light viridis-like ramp: pale yellow-white (low) to deep purple (high)
    img.data[o] = 255 - 200 * s; img.data[o + 1] = 255 - 235 * s * s; img.data[o + 2] = 235 - 95 * s; img.data[o + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  return c;
}

// ---------- loss chart ----------
let lossKey = null;
function drawLoss() {
  // Redrawn only when a series has new points (the frame loop calls it at most 4 times a second).
  const key = views.map((v) => `${v.losses.length}:${v.losses.length ? v.losses[v.losses.length - 1][0] : ""}`).join("|");
  if (key === lossKey) return;
  lossKey = key;
  const c = $("loss"), ctx = c.getContext("2d", { alpha: false }), W = c.width, H = c.height;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  const series = views.filter((v) => v.losses.length);
  if (!series.length) { ctx.fillStyle = "#999"; ctx.fillText("loss (log scale) appears when training starts", 10, 20); return; }
  let lo = Infinity, hi = -Infinity, smax = 1;
  for (const v of series) for (const p of v.losses) { if (p[1] > 0) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); } smax = Math.max(smax, p[0]); }
  const ly0 = Math.log10(lo), ly1 = Math.log10(hi) + 1e-9;
  const X = (s) => 30 + ((W - 36) * s) / smax, Y = (l) => H - 16 - ((H - 26) * (Math.log10(Math.max(l, 1e-12)) - ly0)) / (ly1 - ly0 || 1);
  ctx.fillStyle = "#777"; ctx.font = "10px sans-serif";
  ctx.fillText(hi.toPrecision(2), 2, 12); ctx.fillText(lo.toPrecision(2), 2, H - 18); ctx.fillText(`step ${smax}`, W - 60, H - 4);
  const colors = [["rgba(45,108,223,0.25)", "#2d6cdf"], ["rgba(220,90,30,0.25)", "#dc5a1e"]];
  series.forEach((v, si) => {
    // About two points a pixel column: more only costs the browser time.
    const stride = Math.max(1, Math.floor(v.losses.length / (2 * W)));
    for (const [col, idx] of [[colors[si][0], 1], [colors[si][1], 2]]) {
      ctx.strokeStyle = col; ctx.beginPath();
      for (let i = 0; i < v.losses.length; i += stride) {
        const p = v.losses[i];
        i === 0 ? ctx.moveTo(X(p[0]), Y(p[idx])) : ctx.lineTo(X(p[0]), Y(p[idx]));
      }
      ctx.stroke();
    }
  });
}

// ---------- panel (status, metrics) ----------
// Writes an element's text or value only when it changes: every write costs a layout pass.
function setText(el, s) { if (el.textContent !== s) el.textContent = s; }
function setValue(el, s) { if (el.value !== s) el.value = s; }

function fmt(v, d = 4) { return v === null || v === undefined ? "–" : typeof v === "number" ? (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(d)) : v; }

let panelDirty = false;
let lastPanelT = 0;
function updatePanel() {
  panelDirty = false;
  lastPanelT = performance.now();
  views.forEach((v) => (v.shown = v.status));
  const a = views[0];
  if (!a || !a.status) return;
  const st = a.status;
  setText($("state"), st.state);
  if ($("state").className !== "badge " + st.state) $("state").className = "badge " + st.state;
  if (st.error) { setText($("error"), st.error); ff.lastError = st.error; }
  views.forEach((v, i) => {
    const s = v.status; if (!s) return;
    const p = i === 0 ? "a" : "b";
    setText($(`m-${p}-step`), `${s.step} / ${s.steps}`);
    setText($(`m-${p}-rate`), fmt(s.steps_per_s, 3));
    setText($(`m-${p}-loss`), fmt(s.loss));
    setText($(`m-${p}-ema`), fmt(s.loss_ema));
    setText($(`m-${p}-w2`), fmt(s.w2));
    setText($(`m-${p}-len`), fmt(s.path_length));
    setText($(`m-${p}-nfe`), fmt(s.nfe));
    setText($(`m-${p}-vis`), s.vis_share ? (100 * s.vis_share).toFixed(0) + " %" : "–");
    const set = s.settings || {};
    setText(v.title, `${i === 0 ? "A" : "B"}: ${set.source} → ${set.target}, ${set.coupling}, ${set.scheduler}, ${set.sampler}`);
  });
}

// ---------- animation ----------
function frame(now) {
  const dt = (now - lastAnimT) / 1000;
  lastAnimT = now;
  ff.frames++;
  ff.fps = ff.fps ? 0.95 * ff.fps + 0.05 / Math.max(dt, 1e-3) : 1 / Math.max(dt, 1e-3);
  if (playing) {
    tValue += dt / 2.5;
    if (tValue > 1.2) tValue = 0; // hold at t = 1 for a moment
  }
  const t = Math.min(tValue, 1);
  // The slider and its label follow at most 10 times a second while playing (and at once
  // at t = 1): each change costs headless Chromium a style, layout and paint pass, and at 60
  // a second the two took ≈ 0.2 of a core (BENCHMARKS.md), a core the trainer shares.
  if (!playing || now - lastTimebarT >= 100 || (t === 1 && $("time-label").textContent !== "t = 1.000")) {
    if (playing) setValue($("time"), String(t));
    setText($("time-label"), `t = ${t.toFixed(3)}`);
    lastTimebarT = now;
  }
  for (const v of views) {
    v.draw(t);
    v.refreshField(t);
  }
  if (now - lastPanelT >= 250) {
    if (panelDirty) updatePanel();
    drawLoss();
    setText($("m-fps"), ff.fps.toFixed(0));
    lastPanelT = now;
  }
  requestAnimationFrame(frame);
}

// ---------- actions ----------
async function applySettings() {
  const s = readControls();
  settingsToUrl(s);
  $("draw-tools").hidden = s.target !== "drawn";
  if (s.target === "drawn" && !drawing.used) return; // wait for "Use drawing"
  showError(null);
  try {
    await api("POST", `/api/sessions/${views[0].id}/settings`, s);
    if (comparing && views[1]) {
      const b = compareSettings(s);
      await api("POST", `/api/sessions/${views[1].id}/settings`, b);
    }
  } catch (e) {
    showError(e);
  }
}

function compareSettings(s) {
  const b = { ...s };
  switch ($("compare-change").value) {
    case "coupling": b.coupling = s.coupling === "independent" ? "exact_ot" : "independent"; break;
    case "source": b.source = s.source === "gaussian" ? "8gaussians" : "gaussian"; break;
    case "scheduler": b.scheduler = s.scheduler === "cond_ot" ? "cosine" : "cond_ot"; break;
    case "sampler": b.sampler = s.sampler === "euler" ? "rk4" : "euler"; break;
  }
  return b;
}

async function each(cmd) {
  showError(null);
  try {
    for (const v of views) await api("POST", `/api/sessions/${v.id}/${cmd}`);
  } catch (e) { showError(e); }
}

async function toggleCompare() {
  if (comparing) {
    comparing = false;
    views[1].close();
    views.pop();
    $("panel-b").hidden = true;
    document.body.classList.remove("comparing");
    $("compare").textContent = "Compare";
    settingsToUrl(readControls());
    return;
  }
  try {
    const a = views[0];
    const running = a.status && a.status.state === "running";
    const trained = a.status && a.status.step > 0;
    const b = new View($("canvas-b"), $("title-b"));
    await b.open(compareSettings(readControls()));
    views.push(b);
    comparing = true;
    $("panel-b").hidden = false;
    document.body.classList.add("comparing");
    $("compare").textContent = "Close B";
    settingsToUrl(readControls());
    // A and B train side by side from step 0 (same seed, hence the same x0): A starts afresh.
    if (trained) await api("POST", `/api/sessions/${a.id}/stop`);
    if (running) await each("start");
  } catch (e) { showError(e); }
}

// The picture to export: A's canvas, or A and B side by side under their titles when comparing.
function exportCanvas() {
  if (views.length < 2) return views[0].canvas;
  const gap = 16, head = 24;
  const c = document.createElement("canvas");
  c.width = views.reduce((w, v) => w + v.canvas.width, gap * (views.length - 1));
  c.height = head + Math.max(...views.map((v) => v.canvas.height));
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.fillStyle = "#222";
  ctx.font = "14px sans-serif";
  let x = 0;
  for (const v of views) {
    ctx.fillText(v.title.textContent, x + 4, 17);
    ctx.drawImage(v.canvas, x, head);
    x += v.canvas.width + gap;
  }
  return c;
}
ff.exportCanvas = exportCanvas;

// Downloads `path` of every session shown, named name.ext, or name-A.ext and name-B.ext.
async function exportEach(path, name, ext) {
  try {
    for (const [i, v] of views.entries()) {
      const suffix = views.length > 1 ? "-" + "AB"[i] : "";
      download(await api("GET", `/api/sessions/${v.id}/${path}`), `${name}${suffix}.${ext}`);
    }
  } catch (e) { showError(e); }
}

function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// ---------- drawing ----------
function sprayAt(view, ev) {
  const r = view.canvas.getBoundingClientRect();
  const sx = view.canvas.width / r.width, sy = view.canvas.height / r.height;
  const [x, y] = view.unpx((ev.clientX - r.left) * sx, (ev.clientY - r.top) * sy);
  const radius = Number($("brush").value);
  const stroke = drawing.strokes[drawing.strokes.length - 1];
  for (let i = 0; i < 6; i++) {
    const a = Math.random() * 2 * Math.PI, d = radius * Math.sqrt(Math.random());
    const p = [+(x + d * Math.cos(a)).toFixed(4), +(y + d * Math.sin(a)).toFixed(4)];
    drawing.points.push(p);
    stroke.push(p);
  }
  drawing.csv = null;
  $("draw-count").textContent = `${drawing.points.length} points`;
}

function setupCanvas(c, index) {
  let down = false, moved = false;
  let view = null;
  c.addEventListener("pointerdown", (ev) => {
    view = views[index];
    if (!view) return;
    down = true; moved = false;
    if ($("target").value === "drawn" && view === views[0]) {
      drawing.strokes.push([]);
      sprayAt(view, ev);
      c.setPointerCapture(ev.pointerId);
    }
  });
  c.addEventListener("pointermove", (ev) => {
    if (!down) return;
    moved = true;
    if ($("target").value === "drawn" && view === views[0]) sprayAt(view, ev);
  });
  c.addEventListener("pointerup", async (ev) => {
    if (!down || !view) return;
    down = false;
    if ($("target").value === "drawn" || moved || !view.id) return;
    const r = c.getBoundingClientRect();
    const [x, y] = view.unpx((ev.clientX - r.left) * (c.width / r.width), (ev.clientY - r.top) * (c.height / r.height));
    try {
      const p = await api("POST", `/api/sessions/${view.id}/trajectory`, { x, y });
      view.launched.push(p);
      if (view.launched.length > 16) view.launched.shift();
    } catch (e) { showError(e); }
  });
}

// ---------- start ----------
async function main() {
  options = await api("GET", "/api/options");
  const health = await api("GET", "/api/health");
  const fill = (sel, names) => { $(sel).innerHTML = names.map((n) => `<option value="${n}">${n}</option>`).join(""); };
  fill("target", [...options.worlds, "drawn"]);
  fill("source", options.worlds);
  fill("activation", options.activations);
  const fromUrl = settingsFromUrl();
  const settings = { ...options.defaults, ...fromUrl };
  if (settings.target === "drawn") drawing.used = true;
  writeControls(settings);
  const compareFromUrl = viewFromUrl();
  const a = new View($("canvas-a"), $("title-a"));
  views.push(a);
  setupCanvas($("canvas-a"), 0);
  setupCanvas($("canvas-b"), 1);
  try {
    const query = health.ckpt && !location.search ? "?ckpt=1" : "";
    const r = await a.open(query ? undefined : { ...fromUrl }, query);
    if (query) writeControls(r.status.settings);
  } catch (e) {
    showError(e);
    // Fall back to the defaults so the page still works; the message stays visible.
    if (!a.id && e.status !== 429) { const msg = e; await a.open({}); showError(msg); }
  }
  document.querySelectorAll("[data-key]").forEach((el) => el.addEventListener("change", () => {
    if (el.id === "target") { drawing.used = false; $("draw-tools").hidden = el.value !== "drawn"; if (el.value === "drawn") return; }
    if (el.id === "conditional") cfgControl(el.checked);
    applySettings();
  }));
  $("lr-log").addEventListener("input", () => { $("lr").value = Number(Math.pow(10, Number($("lr-log").value)).toPrecision(3)); });
  $("lr").addEventListener("input", () => { const v = Number($("lr").value); if (v > 0) $("lr-log").value = Math.log10(v); });
  $("lr-log").addEventListener("change", applySettings);
  $("train").addEventListener("click", () => { ff.trainClick = performance.now(); ff.firstLoss = null; ff.firstParticles = null; each("start"); });
  $("pause").addEventListener("click", () => each("pause"));
  $("step").addEventListener("click", () => each("step"));
  $("stop").addEventListener("click", () => each("stop"));
  $("compare").addEventListener("click", toggleCompare);
  $("compare-change").addEventListener("change", () => (comparing ? applySettings() : settingsToUrl(readControls())));
  document.querySelectorAll("[data-view]").forEach((el) => el.addEventListener("change", () => settingsToUrl(readControls())));
  $("play").addEventListener("click", () => { playing = !playing; $("play").textContent = playing ? "||" : "▶"; });
  $("time").addEventListener("input", () => { playing = false; $("play").textContent = "▶"; tValue = Number($("time").value); });
  document.addEventListener("keydown", (ev) => {
    if (ev.code === "Space" && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) {
      ev.preventDefault(); $("play").click();
    }
  });
  $("heat").addEventListener("click", async () => {
    const t = $("heat-t").value === "slider" ? Math.min(tValue, 1).toFixed(3) : "1";
    try { await Promise.all(views.map((v) => v.heatMap(t))); } catch (e) { showError(e); }
  });
  $("heat-off").addEventListener("click", () => views.forEach((v) => (v.heat = null)));
  $("draw-clear").addEventListener("click", () => { drawing.points = []; drawing.strokes = []; drawing.csv = null; $("draw-count").textContent = "0 points"; });
  $("draw-undo").addEventListener("click", () => {
    const s = drawing.strokes.pop();
    if (s) drawing.points.splice(drawing.points.length - s.length, s.length);
    $("draw-count").textContent = `${drawing.points.length} points`;
  });
  $("draw-csv").addEventListener("change", (ev) => {
    const f = ev.target.files[0]; if (!f) return;
    const r = new FileReader();
    r.onload = () => { drawing.csv = String(r.result); $("draw-count").textContent = `${f.name}`; };
    r.readAsText(f);
  });
  $("draw-use").addEventListener("click", () => { drawing.used = true; applySettings(); });
  $("export-png").addEventListener("click", () => exportCanvas().toBlob((b) => download(b, "ferroflow.png")));
  $("export-csv").addEventListener("click", () => exportEach("samples.csv", "samples", "csv"));
  $("export-ckpt").addEventListener("click", () => exportEach("checkpoint", "model", "safetensors"));
  window.addEventListener("pagehide", () => views.forEach((v) => v.close()));
  requestAnimationFrame(frame);
  // A shared link with the compare view opens it (B from the link's change).
  if (compareFromUrl && a.id) {
    $("compare-change").value = compareFromUrl;
    await toggleCompare();
  }
}

main();
