// painterly's page: choose two pictures, start a job, watch it, download it. No framework.
"use strict";

const $ = (id) => document.getElementById(id);
const chosen = { content: null, style: null };
let info = null;
let job = null;          // the status of this tab's job, as the server last said
let shownFrame = -1;     // version of the live image on screen
let pollTimer = null;

function setError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Error("The painterly server cannot be reached. Is it still running?");
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    throw new Error((data && data.error) || `The server answered ${response.status}.`);
  }
  return data;
}

function sci(x) {
  if (x === null || x === undefined) return "–";
  return x.toExponential(2).replace("e+", "e");
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

// ---- pictures -------------------------------------------------------------------------------

function showChoice(kind, image, label) {
  chosen[kind] = image ? image.id : null;
  const picker = $(`${kind}-picker`);
  const img = picker.querySelector(".drop img");
  if (image) {
    img.src = image.preview;
    img.hidden = false;
    picker.querySelector(".drop").classList.add("has-image");
    picker.querySelector(".name").textContent = label;
    picker.querySelector(".name").title = label;
  }
  picker.querySelectorAll(".examples button").forEach((b) => {
    b.classList.toggle("chosen", image !== null && b.dataset.id === image.id);
  });
  refreshButton();
}

async function upload(kind, file) {
  setError("");
  if (!file) return;
  const limit = info ? info.limits.upload_mb : 20;
  if (file.size > limit * 1024 * 1024) {
    setError(`${file.name} is too large (${(file.size / 1048576).toFixed(1)} MB); the limit is ${limit} MB.`);
    return;
  }
  const drop = $(`${kind}-picker`).querySelector(".drop");
  drop.classList.add("busy");
  try {
    const image = await api(`/api/images?name=${encodeURIComponent(file.name)}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: file,
    });
    showChoice(kind, image, `${image.name} · ${image.width}×${image.height}`);
  } catch (e) {
    setError(e.message);
  } finally {
    drop.classList.remove("busy");
  }
}

function setUpPicker(kind) {
  const picker = $(`${kind}-picker`);
  const drop = picker.querySelector(".drop");
  const input = $(`${kind}-file`);
  input.addEventListener("change", () => { upload(kind, input.files[0]); input.value = ""; });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) upload(kind, file);
  });
}

function setUpExamples(examples) {
  const list = $("credit-list");
  for (const ex of examples) {
    const row = $(`${ex.kind}-picker`).querySelector(".examples");
    row.hidden = false;
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = ex.id;
    button.title = ex.credit ? `${ex.name}: ${ex.credit}` : ex.name;
    button.setAttribute("aria-label", `example: ${ex.name}`);
    const img = document.createElement("img");
    img.src = ex.preview;
    img.alt = "";
    button.append(img);
    button.addEventListener("click", () => {
      setError("");
      showChoice(ex.kind, { id: ex.id, preview: ex.preview }, `example: ${ex.name}`);
    });
    row.append(button);
    const item = document.createElement("li");
    item.textContent = `${ex.name}: ${ex.credit || "bundled example"}`;
    list.append(item);
  }
}

// ---- settings -------------------------------------------------------------------------------

function strengthText() {
  const s = Number($("strength").value);
  const beta = Math.pow(10, s);
  const exp = Number.isInteger(s) ? `1e${s}` : beta.toPrecision(2).replace("e+", "e");
  const word = s < 2 ? "a light touch" : s < 3 ? "gentle" : s < 3.5 ? "balanced" : s < 4.5 ? "strong" : "very strong";
  $("strength-text").textContent = `${word} — style weight β = ${exp}, α/β = ${(1 / beta).toExponential(0).replace("e-", "e-")}`;
}

function setUpSettings() {
  const { limits, defaults } = info;
  const sizes = [64, 128, 256, 384, 512, 768, 1024].filter((s) => s >= limits.size[0] && s <= limits.size[1]);
  for (const s of sizes) {
    const opt = document.createElement("option");
    opt.value = s;
    opt.textContent = `${s} px${s === defaults.size ? " (quick, good)" : s >= 768 ? " (slow)" : ""}`;
    $("size").append(opt);
  }
  $("size").value = defaults.size;
  const strength = $("strength");
  strength.min = limits.strength[0];
  strength.max = limits.strength[1];
  strength.value = defaults.strength;
  strength.addEventListener("input", strengthText);
  strengthText();
  const it = $("iterations");
  const range = $("iterations-range");
  it.min = limits.iterations[0];
  it.max = limits.iterations[1];
  it.value = range.value = defaults.iterations;
  range.addEventListener("input", () => { it.value = range.value; });
  it.addEventListener("input", () => { range.value = it.value; });
  if (info.preserve_colors) {
    document.querySelectorAll(".preserve").forEach((el) => { el.hidden = false; });
    for (const opt of $("preserve").options) {
      if (opt.value && !info.preserve_colors.includes(opt.value)) opt.remove();
    }
  }
  $("limit-mb").textContent = limits.upload_mb;
  $("limit-mp").textContent = limits.upload_megapixels;
}

// ---- the job --------------------------------------------------------------------------------

const ACTIVE = ["queued", "running"];

function refreshButton() {
  const button = $("start");
  const active = job && ACTIVE.includes(job.state);
  button.classList.toggle("stop", Boolean(active));
  if (active) {
    button.disabled = Boolean(job.stopping);
    button.textContent = job.state === "queued" ? "Cancel" : job.stopping ? "Stopping…" : "Stop";
    $("hint").textContent = job.state === "running" ? "Stopping keeps the best picture so far." : "";
    return;
  }
  button.textContent = "Paint";
  const ready = chosen.content && chosen.style;
  button.disabled = !ready;
  $("hint").textContent = ready ? "" : !chosen.content && !chosen.style
    ? "Choose a photo and a painting to begin."
    : !chosen.content ? "Now choose a photo." : "Now choose a painting.";
}

async function start() {
  setError("");
  if (job && ACTIVE.includes(job.state)) {
    try { job = await api(`/api/jobs/${job.id}/stop`, { method: "POST" }); } catch (e) { setError(e.message); }
    render();
    return;
  }
  const body = {
    content: chosen.content,
    style: chosen.style,
    size: Number($("size").value),
    strength: Number($("strength").value),
    iterations: Number($("iterations").value),
    preserve_colors: info.preserve_colors ? ($("preserve").value || null) : null,
  };
  $("start").disabled = true;
  try {
    job = await api("/api/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    sessionStorage.setItem("painterly-job", job.id);
    shownFrame = -1;
    $("download").hidden = true;
    $("losses-box").hidden = true;
    render();
    poll();
    refreshQueue();
  } catch (e) {
    setError(e.message);
    refreshButton();
  }
}

// The loss curves: redrawn at most every 3 s while painting, and once more at the end.
let lossesShown = "";
let lossesAt = 0;
function drawLosses() {
  if (!job.loss_steps) return;
  const key = `${job.id}:${job.loss_steps}`;
  const now = Date.now();
  const over = ["done", "stopped", "failed", "cancelled"].includes(job.state);
  if (key === lossesShown || (!over && now - lossesAt < 3000)) return;
  lossesShown = key;
  lossesAt = now;
  $("losses").src = `/api/jobs/${job.id}/losses.png?v=${job.loss_steps}`;
  $("losses-box").hidden = false;
}

function render() {
  refreshButton();
  if (!job) return;
  drawQueue();
  const live = $("live");
  if (job.frame !== shownFrame && job.frame > 0) {
    shownFrame = job.frame;
    const url = `/api/jobs/${job.id}/frame?v=${job.frame}`;
    const next = new Image();
    next.onload = () => {
      live.src = url;
      live.dataset.step = job.frame_step;
      live.dataset.version = String(shownFrame);
      live.classList.toggle("small", job.size < 384);
      live.hidden = false;
      $("placeholder").hidden = true;
    };
    next.src = url;
  }
  const fraction = job.total ? job.step / job.total : 0;
  $("bar").style.width = `${job.state === "done" ? 100 : Math.round(fraction * 100)}%`;
  $("step").textContent = job.total ? `${job.step} / ${job.total}` : "–";
  $("content-loss").textContent = sci(job.content_loss);
  $("style-loss").textContent = sci(job.style_loss);
  $("elapsed").textContent = job.step ? duration(job.elapsed) : "–";
  $("eta").textContent = job.state === "running" && job.eta !== null ? duration(job.eta) : "–";
  let words = job.message;
  if (job.state === "queued") words = `Waiting: ${job.position === 1 ? "next in line" : `number ${job.position} in line`}.`;
  else if (job.state === "running" && !words) words = job.stopping ? "Stopping…" : "Painting…";
  $("status").textContent = words || "\u00a0";
  $("status").dataset.state = job.state;
  if (job.state === "failed") setError(job.message);
  drawLosses();
  if (job.has_result) {
    const a = $("download");
    a.href = `/api/jobs/${job.id}/result`;
    a.hidden = false;
  }
}

async function poll() {
  clearTimeout(pollTimer);
  if (!job) return;
  try {
    job = await api(`/api/jobs/${job.id}`);
  } catch (e) {
    if (!job.restored) setError(e.message);  // a job from before a restart is just gone
    job = null;
    sessionStorage.removeItem("painterly-job");
    refreshButton();
    return;
  }
  render();
  if (ACTIVE.includes(job.state)) pollTimer = setTimeout(poll, 350);
  else refreshQueue();  // it has just left the queue
}

let lastQueue = { jobs: [] };

async function refreshQueue() {
  try {
    lastQueue = await api("/api/queue");
    drawQueue();
  } catch (e) { /* the job poll reports a lost server */ }
}

function drawQueue() {
  const list = $("queue-list");
  list.replaceChildren();
  // This tab polls its own job faster than the queue: use its fresher step, drop it once done.
  const rows = lastQueue.jobs.filter((row) => !(job && row.id === job.id && !ACTIVE.includes(job.state)));
  if (!rows.length) {
    const li = document.createElement("li");
    li.className = "muted empty";
    li.textContent = "Nothing is being painted.";
    list.append(li);
  }
  for (const row of rows) {
    const li = document.createElement("li");
    const mine = Boolean(job && row.id === job.id);
    const step = mine ? Math.max(row.step, job.step || 0) : row.step;
    li.classList.toggle("mine", mine);
    const what = `${row.content} in the style of ${row.style}, ${row.size} px`;
    li.textContent = row.state === "running"
      ? `painting${mine ? " (yours)" : ""}: ${what} — step ${step} of ${row.total}`
      : `waiting${mine ? " (yours)" : ""}: ${what}`;
    list.append(li);
  }
}

async function main() {
  // A file dropped beside the drop zones would make the browser open it and leave the page.
  ["dragover", "drop"].forEach((name) => window.addEventListener(name, (e) => e.preventDefault()));
  setUpPicker("content");
  setUpPicker("style");
  $("start").addEventListener("click", start);
  try {
    info = await api("/api/info");
  } catch (e) {
    setError(e.message);
    return;
  }
  setUpSettings();
  setUpExamples(info.examples);
  refreshButton();
  const previous = sessionStorage.getItem("painterly-job");
  if (previous) { job = { id: previous, state: "queued", restored: true }; poll(); }
  refreshQueue();
  setInterval(refreshQueue, 1500);
}

main();
