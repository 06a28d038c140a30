// classmood student page: this browser reads this student's face and sends only numbers.
//
// Nothing starts before consent. Then, once per interval: one webcam frame is drawn to a canvas
// in memory, the face detector (YuNet-s, the network inside the server's libfacedetection) and
// the expression model run here with onnxruntime-web (WASM), and one JSON text message goes to
// the class: {type, class, pseudonym, t, face, probs, facing}. No pixel, crop, box or landmark leaves
// the page (facing is one number: toward, away, looking down or unclear); the
// "What is sent" panel shows each message exactly as sent.
//
// The reading follows the Python pipeline step for step (classmood/vision/yunet.py for the
// detector, vision/crops.py for the 48x48 crop, expression/readout.py for the size and detail
// checks), so the same frame gives the same probabilities here and on the server (tested).

import * as ort from "./vendor/onnxruntime-web/ort.wasm.min.mjs";

const BASE = new URL("../", import.meta.url); // the hub's root, also behind a reverse proxy's sub-path
ort.env.wasm.wasmPaths = new URL("./vendor/onnxruntime-web/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // one thread: no cross-origin isolation needed, and 1-2 readings/s are cheap
ort.env.wasm.proxy = false;

const STRIDES = [8, 16, 32];
const NMS_IOU = 0.3;
const FACE = 48;

const state = {
  phase: "consent", // consent -> starting -> running | paused -> left | closed | error
  config: null,
  pseudonym: null,
  code: null,
  ws: null,
  stream: null,
  timer: null,
  smoothed: null,
  sent: 0,
  inferMs: [],
  lastMessage: null,
  busy: false,
  classInfo: null,
};
const CAN_START = ["consent", "left", "closed", "error"];
let detector = null;
let classifier = null;

const $ = (id) => document.getElementById(id);

function setStatus(text) {
  $("status").textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Reading one frame (RGBA pixels) -> {box, probs, readable}
// ---------------------------------------------------------------------------------------------

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

let loadedModel = null;

// The detector once; the expression model the class asks for (config.json names it)
async function loadModels() {
  const cfg = state.config || (await loadConfig());
  const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  if (!detector) detector = await ort.InferenceSession.create(new URL("models/face.onnx", BASE).href, opts);
  if (!classifier || loadedModel !== cfg.model) {
    classifier = await ort.InferenceSession.create(new URL(`models/expression/${cfg.model}.onnx`, BASE).href, opts);
    loadedModel = cfg.model;
  }
  return cfg;
}

async function loadConfig() {
  const url = new URL("config.json", BASE);
  if (state.code) url.searchParams.set("class", state.code);
  const response = await fetch(url.href, { cache: "no-store" });
  if (!response.ok) {
    // 429 after too many wrong codes from this address (the hub says how long to wait), 403 from another site
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `the class server answered ${response.status}`);
  }
  state.config = await response.json();
  return state.config;
}

// YuNet input: BGR values 0..255 in planes, zero-padded to a multiple of 32 (vision/yunet.pad_to_32).
function detectorInput(rgba, width, height) {
  const hp = Math.ceil(height / 32) * 32;
  const wp = Math.ceil(width / 32) * 32;
  const data = new Float32Array(3 * hp * wp);
  const plane = hp * wp;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 4;
      const d = y * wp + x;
      data[d] = rgba[s + 2]; // B
      data[plane + d] = rgba[s + 1]; // G
      data[2 * plane + d] = rgba[s]; // R
    }
  }
  return { tensor: new ort.Tensor("float32", data, [1, 3, hp, wp]), hp, wp };
}

function decode(outputs, hp, wp, threshold) {
  const boxes = [];
  STRIDES.forEach((stride) => {
    const cls = outputs[`cls_${stride}`].data;
    const obj = outputs[`obj_${stride}`].data;
    const reg = outputs[`bbox_${stride}`].data;
    const kps = outputs[`kps_${stride}`].data;
    const cols = Math.floor(wp / stride);
    for (let i = 0; i < cls.length; i++) {
      const c = Math.min(Math.max(cls[i], 0), 1);
      const o = Math.min(Math.max(obj[i], 0), 1);
      const score = Math.fround(Math.sqrt(Math.fround(c * o)));
      if (score < threshold) continue;
      const cx = ((i % cols) + reg[i * 4]) * stride;
      const cy = (Math.floor(i / cols) + reg[i * 4 + 1]) * stride;
      const w = Math.exp(reg[i * 4 + 2]) * stride;
      const h = Math.exp(reg[i * 4 + 3]) * stride;
      const marks = [];
      for (let k = 0; k < 5; k++) {
        marks.push([(kps[i * 10 + 2 * k] + (i % cols)) * stride, (kps[i * 10 + 2 * k + 1] + Math.floor(i / cols)) * stride]);
      }
      boxes.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, order: boxes.length, marks });
    }
  });
  return boxes;
}

function nms(boxes) {
  const sorted = [...boxes].sort((a, b) => b.score - a.score || a.order - b.order);
  const kept = [];
  for (const b of sorted) {
    const area = (b.x2 - b.x1) * (b.y2 - b.y1);
    const clash = kept.some((k) => {
      const iw = Math.min(b.x2, k.x2) - Math.max(b.x1, k.x1);
      const ih = Math.min(b.y2, k.y2) - Math.max(b.y1, k.y1);
      const inter = Math.max(0, iw) * Math.max(0, ih);
      const areaK = (k.x2 - k.x1) * (k.y2 - k.y1);
      return inter / Math.max(area + areaK - inter, 1e-6) > NMS_IOU;
    });
    if (!clash) kept.push(b);
  }
  // libfacedetection's integer boxes: x, y, width and height each truncated
  return kept.map((b) => {
    const x = Math.trunc(b.x1);
    const y = Math.trunc(b.y1);
    const x2 = x + Math.trunc(b.x2 - b.x1);
    return { x1: x, y1: y, x2, y2: y + Math.trunc(b.y2 - b.y1), score: b.score, marks: b.marks };
  });
}

// OpenCV's BGR2GRAY for 8-bit images (fixed point, 14 bits)
function grey(rgba, width, height) {
  const g = new Uint8Array(width * height);
  for (let i = 0, s = 0; i < g.length; i++, s += 4) {
    g[i] = (rgba[s + 2] * 1868 + rgba[s + 1] * 9617 + rgba[s] * 4899 + 8192) >> 14;
  }
  return g;
}

// OpenCV's INTER_AREA weights along one axis (computeResizeAreaTab)
function areaTab(ssize, dsize) {
  const scale = ssize / dsize;
  const tab = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cell = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1);
    let sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    const row = [];
    if (sx1 - fsx1 > 1e-3) row.push([sx1 - 1, (sx1 - fsx1) / cell]);
    for (let sx = sx1; sx < sx2; sx++) row.push([sx, 1 / cell]);
    if (fsx2 - sx2 > 1e-3) row.push([sx2, Math.min(Math.min(fsx2 - sx2, 1), cell) / cell]);
    tab.push(row);
  }
  return tab;
}

// The 48x48 crop of vision/crops.face_crops: the square of side 1.01 x box height around the box
// centre, edge pixels replicated outside the frame, INTER_AREA when shrinking, bilinear otherwise.
function faceCrop(g, width, height, box, cropScale) {
  const f32 = Math.fround;
  const cx = f32(f32(box.x1 + box.x2) / 2);
  const cy = f32(f32(box.y1 + box.y2) / 2);
  const half = f32(f32(f32(box.y2 - box.y1) * f32(cropScale)) / 2);
  const x1 = roundHalfEven(f32(cx - half));
  const y1 = roundHalfEven(f32(cy - half));
  const x2 = Math.max(roundHalfEven(f32(cx + half)), x1 + 1);
  const y2 = Math.max(roundHalfEven(f32(cy + half)), y1 + 1);
  const rw = x2 - x1;
  const rh = y2 - y1;
  const px = (x, y) =>
    g[Math.min(Math.max(y1 + y, 0), height - 1) * width + Math.min(Math.max(x1 + x, 0), width - 1)];
  const out = new Float32Array(FACE * FACE);
  const entirelyOutside = x2 <= 0 || y2 <= 0 || x1 >= width || y1 >= height;
  if (entirelyOutside) return out;
  if (rh > FACE) {
    const tx = areaTab(rw, FACE);
    const ty = areaTab(rh, FACE);
    for (let dy = 0; dy < FACE; dy++) {
      for (let dx = 0; dx < FACE; dx++) {
        let sum = 0;
        for (const [sy, wy] of ty[dy]) {
          let rowSum = 0;
          for (const [sx, wx] of tx[dx]) rowSum += px(sx, sy) * wx;
          sum += rowSum * wy;
        }
        out[dy * FACE + dx] = Math.min(255, Math.max(0, roundHalfEven(sum)));
      }
    }
  } else {
    const sx = rw / FACE;
    const sy = rh / FACE;
    for (let dy = 0; dy < FACE; dy++) {
      let fy = (dy + 0.5) * sy - 0.5;
      let y0 = Math.floor(fy);
      fy -= y0;
      if (y0 < 0) { y0 = 0; fy = 0; }
      if (y0 >= rh - 1) { y0 = rh - 1; fy = 0; }
      const ya = Math.min(y0 + 1, rh - 1);
      for (let dx = 0; dx < FACE; dx++) {
        let fx = (dx + 0.5) * sx - 0.5;
        let x0 = Math.floor(fx);
        fx -= x0;
        if (x0 < 0) { x0 = 0; fx = 0; }
        if (x0 >= rw - 1) { x0 = rw - 1; fx = 0; }
        const xa = Math.min(x0 + 1, rw - 1);
        const top = px(x0, y0) * (1 - fx) + px(xa, y0) * fx;
        const bottom = px(x0, ya) * (1 - fx) + px(xa, ya) * fx;
        out[dy * FACE + dx] = Math.min(255, Math.max(0, Math.round(top * (1 - fy) + bottom * fy)));
      }
    }
  }
  return out;
}

// expression/readout.detail: Laplacian energy of the crop relative to its contrast
function detail(crop) {
  const std = (values) => {
    let mean = 0;
    for (const v of values) mean += v;
    mean /= values.length;
    let sq = 0;
    for (const v of values) sq += (v - mean) * (v - mean);
    return Math.sqrt(sq / values.length);
  };
  const lap = [];
  for (let y = 2; y < FACE - 2; y++) {
    for (let x = 2; x < FACE - 2; x++) {
      const i = y * FACE + x;
      lap.push(crop[i - FACE] + crop[i + FACE] + crop[i - 1] + crop[i + 1] - 4 * crop[i]);
    }
  }
  return std(lap) / Math.max(std(crop), 4);
}

// ---------------------------------------------------------------------------------------------
// Apparent head pose from the detector's five landmarks, as vision/pose.py estimates it: the same
// generic face (config face_3d), the same camera (a focal length of focal_boxes box widths, centred on
// the box) and the same rule (config facing_rule). The server solves it with OpenCV's SQPnP; without
// OpenCV here, a weak-perspective start is refined by Levenberg-Marquardt on the reprojection error
// under that camera. On the 278 real faces of bench/realfaces that YuNet finds, the two are a median
// 0.17 degree apart (95th percentile 1.7) and give the same facing number for 98.9 % (tested).
// ---------------------------------------------------------------------------------------------

function rodrigues(w) {
  const th = Math.hypot(w[0], w[1], w[2]);
  if (th < 1e-12) return [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const [x, y, z] = w.map((v) => v / th);
  const s = Math.sin(th);
  const c = 1 - Math.cos(th);
  return [
    [1 - c * (y * y + z * z), -s * z + c * x * y, s * y + c * x * z],
    [s * z + c * x * y, 1 - c * (x * x + z * z), -s * x + c * y * z],
    [-s * y + c * x * z, s * x + c * y * z, 1 - c * (x * x + y * y)],
  ];
}

const mul3 = (a, b) => a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
const apply3 = (m, v) => m.map((row) => row[0] * v[0] + row[1] * v[1] + row[2] * v[2]);
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

function solve(a, b) {
  // Gaussian elimination with partial pivoting: a (n x n) x = b
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    if (Math.abs(m[col][col]) < 1e-300) return null;
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let c = col; c <= n; c++) m[r][c] -= f * m[col][c];
    }
  }
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let v = m[r][n];
    for (let c = r + 1; c < n; c++) v -= m[r][c] * x[c];
    x[r] = v / m[r][r];
  }
  return x;
}

function headPose(marks, box, cfg) {
  if (!marks || marks.some((p) => !Number.isFinite(p[0]) || !Number.isFinite(p[1]))) return null;
  // the model's y is up and the image's y is down: flip the model, as vision/pose.py does
  const model = cfg.face_3d.map(([x, y, z]) => [x, -y, -z]);
  const f = cfg.focal_boxes * Math.max(1, box[2] - box[0]);
  const c = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
  const mean = [0, 1, 2].map((j) => model.reduce((s, p) => s + p[j], 0) / model.length);
  const xc = model.map((p) => p.map((v, j) => v - mean[j]));
  const xm = [0, 1].map((j) => marks.reduce((s, p) => s + p[j], 0) / marks.length);
  // weak perspective: the 2x3 map A from the centred model to the centred points (least squares), its
  // nearest rows with orthonormal directions (A A^T)^(-1/2) A, and the depth from its scale
  const g = [0, 1, 2].map((i) => [0, 1, 2].map((j) => xc.reduce((s, p) => s + p[i] * p[j], 0)));
  const a = [0, 1].map((r) => solve(g, [0, 1, 2].map((j) => xc.reduce((s, p, i) => s + p[j] * (marks[i][r] - xm[r]), 0))));
  if (a.some((row) => row === null)) return null;
  const m00 = a[0].reduce((s, v) => s + v * v, 0);
  const m11 = a[1].reduce((s, v) => s + v * v, 0);
  const m01 = a[0].reduce((s, v, j) => s + v * a[1][j], 0);
  const sd = Math.sqrt(Math.max(m00 * m11 - m01 * m01, 0));
  const tr = Math.sqrt(m00 + m11 + 2 * sd);
  if (!(tr > 0)) return null;
  const [s00, s01, s11] = [(m00 + sd) / tr, m01 / tr, (m11 + sd) / tr];
  const det = s00 * s11 - s01 * s01;
  const inv = [[s11 / det, -s01 / det], [-s01 / det, s00 / det]];
  const r0 = [0, 1, 2].map((j) => inv[0][0] * a[0][j] + inv[0][1] * a[1][j]);
  const r1 = [0, 1, 2].map((j) => inv[1][0] * a[0][j] + inv[1][1] * a[1][j]);
  let rot = [r0, r1, cross(r0, r1)];
  const depth = f / (tr / 2);
  const rm = apply3(rot, mean);
  let t = [((xm[0] - c[0]) * depth) / f - rm[0], ((xm[1] - c[1]) * depth) / f - rm[1], depth - rm[2]];
  const residuals = (r, tt) => {
    const out = [];
    for (const p of model) {
      const q = apply3(r, p).map((v, j) => v + tt[j]);
      out.push((f * q[0]) / q[2] + c[0]);
    }
    for (const p of model) {
      const q = apply3(r, p).map((v, j) => v + tt[j]);
      out.push((f * q[1]) / q[2] + c[1]);
    }
    return out.map((v, i) => v - (i < 5 ? marks[i][0] : marks[i - 5][1]));
  };
  const sq = (e) => e.reduce((s, v) => s + v * v, 0);
  let e = residuals(rot, t);
  let cost = sq(e);
  let lambda = 1e-3;
  for (let iter = 0; iter < 50; iter++) {
    const jac = [];
    for (let j = 0; j < 6; j++) {
      const d = [0, 0, 0, 0, 0, 0];
      const h = j < 3 ? 1e-6 : 1e-6 * Math.max(1, Math.abs(t[2]));
      d[j] = h;
      const moved = residuals(mul3(rodrigues(d.slice(0, 3)), rot), t.map((v, k) => v + d[3 + k]));
      jac.push(moved.map((v, i) => (v - e[i]) / h));
    }
    const grad = jac.map((col) => col.reduce((s, v, i) => s + v * e[i], 0));
    const hess = jac.map((ci) => jac.map((cj) => ci.reduce((s, v, i) => s + v * cj[i], 0)));
    let step = null;
    let improved = false;
    while (lambda <= 1e9) {
      const damped = hess.map((row, i) => row.map((v, j) => (i === j ? v + lambda * (v + 1e-12) : v)));
      step = solve(damped, grad.map((v) => -v));
      if (step === null) break;
      const r2 = mul3(rodrigues(step.slice(0, 3)), rot);
      const t2 = t.map((v, k) => v + step[3 + k]);
      const e2 = residuals(r2, t2);
      const c2 = sq(e2);
      if (c2 < cost) {
        [rot, t, e, cost] = [r2, t2, e2, c2];
        lambda = Math.max(lambda / 10, 1e-9);
        improved = true;
        break;
      }
      lambda *= 10;
    }
    if (!improved || Math.max(...step.map(Math.abs)) < 1e-10) break;
  }
  // yaw, pitch, roll of the face's forward and up axes in camera coordinates (vision/pose.py's _angles)
  const fwd = [-rot[0][2], -rot[1][2], -rot[2][2]];
  const up = [-rot[0][1], -rot[1][1], -rot[2][1]];
  const deg = 180 / Math.PI;
  return [
    Math.atan2(fwd[0], -fwd[2]) * deg,
    Math.atan2(-fwd[1], Math.hypot(fwd[0], fwd[2])) * deg,
    Math.atan2(up[0], -up[1]) * deg,
  ];
}

// The facing number sent: 1 toward the screen, 0 turned away, -1 turned away looking down, null unclear.
function facingOf(pose, rule) {
  if (!pose || !rule) return null; // no rule: the class estimates no head orientation (classmood app --no-facing)
  const [yaw, pitch] = pose;
  const inside = Math.min(rule.max_yaw - Math.abs(yaw), rule.max_down + pitch, rule.max_up - pitch);
  if (inside > rule.margin) return 1;
  if (inside < -rule.margin) return pitch < -(rule.max_down + rule.margin) ? -1 : 0;
  return null;
}

// One frame -> the largest face's reading. Exposed as classmood.analyse for the tests.
async function analyse(rgba, width, height) {
  const cfg = await loadModels();
  const started = performance.now();
  const { tensor, hp, wp } = detectorInput(rgba, width, height);
  const outputs = await detector.run({ input: tensor });
  const faces = nms(decode(outputs, hp, wp, cfg.face_threshold));
  let result = {
    face: false,
    box: null,
    probs: null,
    readable: false,
    detail: null,
    faces: faces.length,
    pose: null,
    facing: null,
  };
  if (faces.length) {
    const box = faces.reduce((a, b) => ((b.x2 - b.x1) * (b.y2 - b.y1) > (a.x2 - a.x1) * (a.y2 - a.y1) ? b : a));
    const crop = faceCrop(grey(rgba, width, height), width, height, box, cfg.crop_scale);
    const input = new ort.Tensor("float32", crop, [1, 1, FACE, FACE]);
    const out = await classifier.run({ [classifier.inputNames[0]]: input });
    const probs = Array.from(out[classifier.outputNames[0]].data);
    const d = detail(crop);
    // A model with the learnt unreadable head (FER+'s unknown / not-a-face votes) says how likely people
    // would fail to read this face; the readout's max_unreadable decides, as the server's pipeline does.
    const unreadable = out.unreadable ? out.unreadable.data[0] : null;
    const learnt = !cfg.max_unreadable || unreadable === null || unreadable <= cfg.max_unreadable;
    const readable = box.y2 - box.y1 >= cfg.min_face_px && d >= cfg.min_detail && learnt;
    const boxList = [box.x1, box.y1, box.x2, box.y2];
    const pose = cfg.facing_rule ? headPose(box.marks, boxList, cfg) : null;
    const facing = facingOf(pose, cfg.facing_rule);
    result = { face: true, box: boxList, probs, readable, detail: d, faces: faces.length, pose, facing };
  }
  result.ms = performance.now() - started;
  return result;
}

// ---------------------------------------------------------------------------------------------
// The session: consent -> camera -> loop -> pause / leave
// ---------------------------------------------------------------------------------------------

function showSent(message) {
  $("sent").textContent = message;
  const msg = JSON.parse(message);
  const table = $("sentProbs");
  table.textContent = "";
  if (msg.probs) {
    state.config.labels.forEach((label, i) => {
      const row = table.insertRow();
      row.insertCell().textContent = label;
      row.insertCell().textContent = msg.probs[i].toFixed(3);
    });
  }
}

function grab() {
  const video = $("video");
  const w0 = video.videoWidth;
  const h0 = video.videoHeight;
  if (!w0 || !h0) return null;
  const s = Math.min(1, state.config.max_side / Math.max(w0, h0));
  const w = Math.round(w0 * s);
  const h = Math.round(h0 * s);
  const canvas = grab.canvas || (grab.canvas = document.createElement("canvas")); // never attached, never exported
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  return { rgba: ctx.getImageData(0, 0, w, h).data, w, h };
}

async function step() {
  if (state.phase !== "running" || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  if (state.busy) return; // a slow device: skip this tick rather than pile readings up
  const frame = grab();
  if (!frame) return;
  state.busy = true;
  let r;
  try {
    r = await analyse(frame.rgba, frame.w, frame.h);
  } finally {
    state.busy = false;
  }
  state.inferMs.push(r.ms);
  if (state.inferMs.length > 600) state.inferMs.shift();
  let probs = null;
  if (r.face && r.readable) {
    const a = state.config.smoothing;
    state.smoothed = state.smoothed ? r.probs.map((p, i) => a * p + (1 - a) * state.smoothed[i]) : r.probs;
    probs = state.smoothed.map((p) => Math.round(p * 10000) / 10000);
    const sum = probs.reduce((x, y) => x + y, 0);
    probs = probs.map((p) => Math.round((p / sum) * 10000) / 10000);
  }
  if (state.phase !== "running") return; // paused or left while the frame was being read
  const message = JSON.stringify({
    type: "update",
    class: state.code,
    pseudonym: state.pseudonym,
    t: Date.now() / 1000,
    face: r.face,
    probs,
    facing: r.face ? r.facing : null,
  });
  state.ws.send(message);
  state.sent += 1;
  state.lastMessage = message;
  showSent(message);
  $("reading").textContent = r.face
    ? r.readable
      ? `Face found; read in ${r.ms.toFixed(0)} ms on this device.`
      : "Face found but too small or blurred to read: sent as present, without probabilities."
    : "No face in view: sent as 'no face'.";
}

function stopCamera() {
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  $("video").srcObject = null;
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

function finish(phase, text) {
  state.phase = phase;
  stopCamera();
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.close(1000);
  state.ws = null;
  setStatus(text);
  $("controls").hidden = true;
  $("consent").checked = false; // joining again needs consent again
  $("start").disabled = true;
  $("pause").textContent = "Pause";
}

function cameraError(err) {
  const name = (err && err.name) || "";
  if (name === "NotAllowedError" || name === "SecurityError")
    return "the camera permission was denied (allow the camera for this page and try again)";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no camera was found on this device";
  if (name === "NotReadableError") return "the camera is in use by another program (close it and try again)";
  if (!navigator.mediaDevices) return "this page has no camera access: it must be opened over HTTPS";
  return (err && err.message) || String(err);
}

function backToConsent(text) {
  stopCamera();
  state.phase = "consent";
  $("consent").checked = false;
  $("start").disabled = true;
  setStatus(text);
}

async function start() {
  if (!CAN_START.includes(state.phase) || !$("consent").checked) return;
  state.code = $("code").value.trim().toUpperCase();
  if (!state.code) {
    setStatus("Enter the class code your teacher gave you.");
    return;
  }
  state.phase = "starting";
  state.smoothed = null;
  $("start").disabled = true;
  setStatus("Checking the class code...");
  try {
    await loadConfig();
  } catch (err) {
    backToConsent(`Could not reach the class: ${err.message || err}. Nothing was sent.`);
    return;
  }
  if (!state.config.open) {
    showClassInfo();
    backToConsent(`There is no open class with the code ${state.code}. Check it with your teacher. Nothing was sent.`);
    return;
  }
  try {
    setStatus("Loading the models (they run on this device)...");
    await loadModels();
    setStatus("Asking for the camera...");
    if (!navigator.mediaDevices) throw new Error("no camera access");
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    backToConsent(`Could not start: ${cameraError(err)}. Nothing was sent.`);
    return;
  }
  $("video").srcObject = state.stream;
  await $("video").play().catch(() => {});
  const url = new URL("ws/student", BASE);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("class", state.code);
  const ws = new WebSocket(url.href);
  state.ws = ws;
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "welcome") {
      state.pseudonym = msg.pseudonym;
      state.phase = "running";
      $("session").hidden = false;
      $("controls").hidden = false;
      $("pseudonym").textContent = msg.pseudonym;
      setStatus(`Taking part in class ${state.code} as ${msg.pseudonym} (a name for this session only).`);
      state.timer = setInterval(() => step().catch((e) => setStatus(`Error: ${e.message || e}`)), msg.interval_s * 1000);
      step();
    } else if (msg.type === "error") {
      state.phase = "error"; // a wrong code, a full class, too many seats from this address, too many wrong codes
      backToConsent(`${msg.message}. Nothing was sent.`);
    } else if (msg.type === "closed") {
      finish("closed", "The teacher ended the class. The camera is off.");
    } else if (msg.type === "refused") {
      setStatus(`The class refused a message: ${msg.reason}`);
    }
  };
  ws.onclose = () => {
    if (state.phase === "starting") {
      backToConsent("Could not connect to the class (the server refused the connection). The camera is off; nothing was sent.");
    } else if (state.phase === "running" || state.phase === "paused") {
      finish("closed", "Disconnected from the class. The camera is off. Tick the box and press Start to join again.");
    }
  };
}

function pause() {
  if (state.phase === "running") {
    state.phase = "paused";
    state.ws.send(JSON.stringify({ type: "pause" }));
    showSent('{"type":"pause"}');
    state.stream.getVideoTracks().forEach((t) => (t.enabled = false));
    $("pause").textContent = "Resume";
    setStatus("Paused: nothing is read or sent; you do not count as a face present.");
  } else if (state.phase === "paused") {
    state.phase = "running";
    state.ws.send(JSON.stringify({ type: "resume" }));
    showSent('{"type":"resume"}');
    state.stream.getVideoTracks().forEach((t) => (t.enabled = true));
    $("pause").textContent = "Pause";
    setStatus(`Taking part in class ${state.code} as ${state.pseudonym}.`);
  }
}

function leave() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "leave" }));
    showSent('{"type":"leave"}');
  }
  finish("left", "You left the class. The camera is off and you are no longer counted. Tick the box and press Start to join again.");
}

// What the student reads before consenting: the class's k and whether its numbers are saved
function showClassInfo() {
  const cfg = state.config;
  const el = $("classinfo");
  // a class that estimates no head orientation (classmood app --no-facing) does not say it does
  for (const part of document.querySelectorAll(".facing-only")) part.hidden = Boolean(cfg && !cfg.facing_rule);
  if (!cfg || !state.code) {
    el.textContent = "";
  } else if (!cfg.open) {
    el.textContent = `No open class has the code ${state.code}.`;
  } else {
    const alone =
      cfg.k === 1
        ? " With k = 1 your teacher can see your numbers when yours is the only face in view."
        : cfg.k === 2
          ? " With k = 2 the numbers can describe just two students."
          : "";
    el.textContent =
      `Class ${state.code}: class numbers need the faces of at least ${cfg.k} students read (k = ${cfg.k}; ` +
      `the teacher may raise it, not lower it).${alone} ` +
      (cfg.saved
        ? "The teacher saves the class-level numbers (per time bin, never per student) as a session."
        : "The class numbers are not saved.");
  }
}

async function lookUpClass() {
  state.code = $("code").value.trim().toUpperCase();
  if (!state.code) return showClassInfo();
  try {
    await loadConfig();
  } catch (err) {
    state.config = null;
    showClassInfo();
    $("classinfo").textContent = `Could not check the code: ${err.message || err}.`;
    return;
  }
  showClassInfo();
}

function init() {
  const parts = location.pathname.split("/").filter(Boolean);
  let code = parts[parts.length - 1] !== "join" ? parts[parts.length - 1] || "" : "";
  try {
    code = decodeURIComponent(code);
  } catch {
    code = "";
  }
  $("code").value = code.toUpperCase().slice(0, 16);
  lookUpClass();
  $("code").addEventListener("change", lookUpClass);
  $("consent").addEventListener("change", () => {
    const running = state.phase === "running" || state.phase === "paused";
    if (running && !$("consent").checked) {
      leave(); // withdrawing consent is leaving
      return;
    }
    $("start").disabled = !$("consent").checked || !CAN_START.includes(state.phase);
  });
  $("start").addEventListener("click", start);
  $("pause").addEventListener("click", pause);
  $("leave").addEventListener("click", leave);
  window.addEventListener("pagehide", () => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "leave" }));
  });
}

// for the tests and the benchmark: the reading pipeline on given pixels, and the session's state
window.classmood = {
  state,
  analyse: async (width, height, base64) => {
    const bytes = Uint8ClampedArray.from(atob(base64), (c) => c.charCodeAt(0));
    return analyse(bytes, width, height);
  },
  // the head pose and facing number of five landmarks in a box, with this class's rule
  facing: async (marks, box) => {
    const cfg = state.config || (await loadConfig());
    const pose = headPose(marks, box, cfg);
    return { pose, facing: facingOf(pose, cfg.facing_rule) };
  },
};

init();
