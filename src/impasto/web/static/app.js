// impasto studio: plain JS, no build step. Talks to the JSON API in impasto/web/app.py.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { config: null, images: { content: null, style: null }, jobs: new Map(), order: [],
                current: null, streams: new Map(), shown: new Map(), picked: new Set() };
const FINISHED = ["done", "cancelled", "failed"];

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`);
  return body;
}

// A message goes beside what it is about: a picker ("content", "style"), a field ("size"), or Paint ("form").
function say(text, where = "form") {
  const el = $(`.message[data-for="${where}"]`);
  el.textContent = text || "";
  if (text) el.scrollIntoView({ block: "nearest" });
}

function hushAll() { for (const el of document.querySelectorAll(".message")) el.textContent = ""; }

function fmtSeconds(s) {
  if (s == null || !isFinite(s)) return "–";
  s = Math.round(s);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

// ---- image pickers ------------------------------------------------------------------

// The file name shrinks (ellipsis, the whole name as its tooltip); the pixel size beside it always shows.
function showName(kind, name, dims = "") {
  const box = $(`#pick-${kind}`);
  $(".name .file", box).textContent = name;
  $(".name .dims", box).textContent = dims && ` (${dims})`;
  $(".name", box).title = dims ? `${name} (${dims})` : name;
}

// src null: the picker keeps the name but has no image (an upload the server has forgotten).
function setImage(kind, ref, name, dims, src) {
  const box = $(`#pick-${kind}`), img = $(".drop img", box);
  state.images[kind] = { ref, name, dims };
  if (src) img.src = src; else img.removeAttribute("src");
  img.hidden = !src;
  $(".hint", box).hidden = Boolean(src);
  showName(kind, name, dims);
}

async function upload(kind, file) {
  say("", kind);
  state.picked.add(kind);
  const limit = state.config.max_upload_bytes;
  if (file.size > limit) {
    say(`${file.name}: file is too large (${(file.size / 1048576).toFixed(1)} MB); ` +
        `the limit is ${limit / 1048576} MB`, kind);
    return;
  }
  showName(kind, `Uploading ${file.name}…`);
  try {
    const info = await api(`/api/uploads?name=${encodeURIComponent(file.name)}`, {
      method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
    setImage(kind, info.id, info.name, `${info.width}×${info.height}`, URL.createObjectURL(file));
  } catch (err) {
    say(err.message, kind);
    const previous = state.images[kind];
    showName(kind, previous ? previous.name : "No image chosen", previous?.dims);
  }
}

function setupPicker(kind) {
  const box = $(`#pick-${kind}`), drop = $(".drop", box), input = $("input[type=file]", box);
  input.addEventListener("change", () => { if (input.files[0]) upload(kind, input.files[0]); input.value = ""; });
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) upload(kind, file);
  });
  $(".sample", box).addEventListener("click", () => { say("", kind); state.picked.add(kind); useSample(kind); });
}

// The bundled defaults are offered (and preselected where nothing is chosen) only where this install has them.
function offerSample(kind) {
  const probe = new Image();
  probe.onload = () => { $(`#pick-${kind} .sample`).hidden = false; if (!state.images[kind]) useSample(kind); };
  probe.src = `/api/samples/${kind}`;
}

function useSample(kind) {
  setImage(kind, "sample", kind === "content" ? "Sample photo" : "Sample painting", "", `/api/samples/${kind}`);
}

// After a reload: the pickers show what the last job was painted from, as the strip does (unless the
// user has picked meanwhile).
async function restorePickers(job) {
  for (const kind of ["content", "style"]) {
    const ref = job[kind], name = job[`${kind}_name`];
    if (ref === "sample") { if (!state.picked.has(kind)) useSample(kind); continue; }
    let info = null, problem = "";
    try { info = await api(`/api/uploads/${encodeURIComponent(ref)}`); } catch (err) { problem = err.message; }
    if (state.picked.has(kind)) continue;
    if (info) setImage(kind, info.id, info.name, `${info.width}×${info.height}`, `/api/uploads/${info.id}/image`);
    else { setImage(kind, null, name, "", null); say(`${name}: ${problem}`, kind); }
  }
}

// ---- options ------------------------------------------------------------------------

// The strength slider is log10 of the style weight; two significant digits are plenty.
const styleWeight = () => Number((10 ** Number($("#options").strength.value)).toPrecision(2));

function setupForm() {
  const form = $("#options"), d = state.config.defaults;
  [form.size.min, form.size.max] = state.config.ranges.size;
  form.size.value = d.size;
  form.strength.value = Math.log10(d.style_weight).toFixed(2);
  form.init.value = d.init;
  form.quality.value = "standard";
  const strength = () => { form.strength_out.value = `×${styleWeight()}`; };
  form.strength.addEventListener("input", strength); strength();
  form.preserve_color.value = d.preserve_color || "";
  showLimits(state.config.limits, state.config.max_upload_bytes);
  form.quality.addEventListener("change", () => {
    $("#iterations-field").hidden = form.quality.value !== "custom";
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); start(); });
}

// The server's limits for one painting (impasto serve --max-...), shown so nobody is surprised by a refusal.
function showLimits(limits, uploadBytes) {
  const form = $("#options");
  form.iterations.placeholder = `e.g. 200, 100, 50 (each at most ${limits.max_iterations})`;
  $("#limits").textContent = `This studio paints up to ${limits.max_size} px, ` +
    `${limits.max_iterations} iterations per scale and ${limits.max_scales} scales; ` +
    `uploads up to ${uploadBytes / 1048576} MB and ${limits.max_megapixels} megapixels.`;
}

function readOptions() {
  const form = $("#options");
  const options = { size: Number(form.size.value), init: form.init.value,
                    style_weight: styleWeight(), preserve_color: form.preserve_color.value || null };
  let quality = form.quality.value;
  if (quality === "custom") { options.iterations = form.iterations.value; quality = null; }
  return { options, quality };
}

// The size field's min and max are the server's range; the browser says whether the value is in it.
function sizeProblem() {
  const input = $("#options").size, [low, high] = state.config.ranges.size;
  if (input.checkValidity()) return null;
  return `Size must be a whole number of pixels from ${low} to ${high} in this studio, got ${input.value || "nothing"}`;
}

// On a phone the preview is below the form: bring it up once the painting starts.
function showPreview() {
  const box = $(".stage").getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) $(".canvas").scrollIntoView({ behavior: "smooth" });
}

async function start() {
  hushAll();
  const { content, style } = state.images;
  const missing = ["content", "style"].find((kind) => !state.images[kind]?.ref);
  if (missing) { say(`Choose a ${missing} image first.`, missing); return; }
  const problem = sizeProblem();
  if (problem) { say(problem, "size"); $("#options").size.focus(); return; }
  const { options, quality } = readOptions();
  const button = $("#start");
  button.disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ content: content.ref, style: style.ref, options, quality }) });
    state.current = job.id;
    update(await api(`/api/jobs/${job.id}`));  // show the new job at once, not the last one's stats
    watch(job.id);
    showInStrip(job.id);
    showPreview();
  } catch (err) {
    say(err.message);
  } finally {
    button.disabled = false;
  }
}

// ---- jobs ---------------------------------------------------------------------------

function watch(id) {
  if (state.streams.has(id)) return;
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.streams.set(id, source);
  source.onmessage = (e) => update(JSON.parse(e.data));
  source.onerror = () => {
    source.close(); state.streams.delete(id);
    const job = state.jobs.get(id);
    if (job && !FINISHED.includes(job.status)) setTimeout(() => watch(id), 1500);  // reconnect
  };
}

function update(snap) {
  const old = state.jobs.get(snap.id);
  const losses = (old ? old.losses.slice(0, snap.losses_from) : []).concat(snap.losses);
  const job = { ...snap, losses };
  if (!old) state.order.push(snap.id);
  state.jobs.set(snap.id, job);
  if (FINISHED.includes(job.status)) {
    const source = state.streams.get(job.id);
    if (source) { source.close(); state.streams.delete(job.id); }
  }
  renderStrip();
  if (state.current === job.id) renderCurrent();
}

function imageUrl(job) {
  if (job.result) return `/api/jobs/${job.id}/result`;
  if (job.preview) return `/api/jobs/${job.id}/preview?v=${job.preview}`;
  return null;
}

function statusText(job) {
  const p = job.progress;
  switch (job.status) {
    case "queued": return `Waiting — place ${job.position} in the queue`;
    case "running": return p.scale ? `Painting — scale ${p.scale} of ${p.scales}` : "Preparing…";
    case "done": return `Done in ${fmtSeconds(p.elapsed)}`;
    case "cancelled": return job.result ? "Cancelled — the best image so far is kept" : "Cancelled before it started";
    default: return `Failed: ${job.error}`;
  }
}

function renderCurrent() {
  const job = state.jobs.get(state.current);
  if (!job) return;
  const status = $("#status"), p = job.progress, img = $("#preview");
  status.textContent = statusText(job);
  status.className = `status ${job.status}`;
  const url = imageUrl(job);
  if (url && img.dataset.url !== url) { img.src = url; img.dataset.url = url; img.hidden = false; }
  if (!url) { img.hidden = true; img.removeAttribute("src"); delete img.dataset.url; }
  $("#stats").textContent = p.step ?
    `${p.size[0]}×${p.size[1]} px · iteration ${p.iteration}/${p.iterations} (step ${p.step}/${p.total_steps})` +
    ` · loss ${p.loss.toPrecision(4)} · ${fmtSeconds(p.elapsed)} elapsed` +
    (job.status === "running" ? ` · about ${fmtSeconds(p.eta)} left` : "") : "";
  drawCurve(job.losses);
  $("#cancel").disabled = FINISHED.includes(job.status);
  const download = $("#download");
  download.classList.toggle("disabled", !job.result);
  download.setAttribute("aria-disabled", String(!job.result));
  if (job.result) download.href = `/api/jobs/${job.id}/result?download=1`;
  else download.removeAttribute("href");
  for (const fig of document.querySelectorAll(".strip figure")) {
    fig.classList.toggle("selected", fig.dataset.id === job.id);
  }
}

// The canvas is drawn at its shown size (sharp on any screen); the caption is text below it, not on it.
function drawCurve(losses) {
  const canvas = $("#curve"), ctx = canvas.getContext("2d"), scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * scale); canvas.height = Math.round(canvas.clientHeight * scale);
  const w = canvas.width, h = canvas.height, pad = 6 * scale;
  const values = losses.filter((v) => v > 0 && isFinite(v)).map(Math.log10);
  $("#curve-caption").textContent = values.length < 2 ? "" :
    `Loss (log scale): ${(10 ** values[0]).toPrecision(3)} → ${(10 ** values[values.length - 1]).toPrecision(3)}`;
  if (values.length < 2) return;
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  ctx.strokeStyle = "#b4492d"; ctx.lineWidth = 2 * scale; ctx.beginPath();
  values.forEach((v, i) => {
    const x = pad + (i / (values.length - 1)) * (w - 2 * pad), y = pad + (1 - (v - lo) / span) * (h - 2 * pad);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
}

// A job with no picture (waiting, failed, cancelled before it started) or one the server no longer has
// shows a labelled box, not a broken image.
function thumbnail(job, label) {
  const url = imageUrl(job), empty = document.createElement("div");
  empty.className = "no-image"; empty.setAttribute("role", "img");
  empty.textContent = { queued: "waiting…", running: "preparing…" }[job.status] || "no image";
  empty.setAttribute("aria-label", `${label}: ${empty.textContent}`);
  if (!url) return empty;
  const img = document.createElement("img");
  img.alt = label; img.src = url;
  img.addEventListener("error", () => img.replaceWith(empty));
  return img;
}

// The strip is drawn afresh on every update: where it was scrolled to is kept.
function renderStrip() {
  const strip = $("#strip"), scrolled = strip.scrollLeft;
  strip.textContent = "";
  state.order.forEach((id, index) => {
    const job = state.jobs.get(id), fig = document.createElement("figure");
    fig.dataset.id = id;
    fig.className = id === state.current ? "selected" : "";
    const caption = document.createElement("figcaption");
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = `#${index + 1} ${job.status}`;
    caption.append(badge, ` · ${job.options.size}px · ${job.content_name} × ${job.style_name}`);
    caption.title = caption.textContent;
    fig.append(thumbnail(job, `Result ${index + 1}`), caption);
    fig.addEventListener("click", () => { state.current = id; renderCurrent(); });
    strip.append(fig);
  });
  if (!state.order.length) strip.innerHTML = '<p class="empty">Results will gather here to compare.</p>';
  strip.scrollLeft = scrolled;
}

// Scroll the strip (only the strip, sideways) so that the job's figure is in it, as the newest one may not be.
function showInStrip(id) {
  const strip = $("#strip"), fig = strip.querySelector(`figure[data-id="${id}"]`);
  if (!fig) return;
  const box = fig.getBoundingClientRect(), view = strip.getBoundingClientRect();
  if (box.right > view.right) strip.scrollLeft += box.right - view.right;
  else if (box.left < view.left) strip.scrollLeft -= view.left - box.left;
}

$("#cancel").addEventListener("click", async () => {
  if (!state.current) return;
  try { update(await api(`/api/jobs/${state.current}/cancel`, { method: "POST" })); }
  catch (err) { say(err.message); }
});

// ---- start --------------------------------------------------------------------------

async function main() {
  try {
    state.config = await api("/api/config");
  } catch (err) {
    say(`Cannot reach the impasto server: ${err.message}`);
    return;
  }
  setupForm();
  setupPicker("content");
  setupPicker("style");
  const jobs = await api("/api/jobs");  // earlier results of this server's session
  for (const job of jobs) {
    update(job);
    if (!FINISHED.includes(job.status)) watch(job.id);
  }
  if (jobs.length) {
    const last = jobs[jobs.length - 1];
    state.current = last.id; renderCurrent(); showInStrip(last.id);
    await restorePickers(last);
  }
  offerSample("content");
  offerSample("style");
}

main().finally(() => document.body.removeAttribute("aria-busy"));  // the page is ready for input
