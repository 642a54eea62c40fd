// reportsum web page: submit an article as a job, follow its progress (Server-Sent Events
// read through fetch, so the token travels in the Authorization header, never the URL),
// then show the three lists; clicking an item marks its evidence in the source text.
//
// Spans in the digest are Python str offsets (Unicode code points) into the decoded text;
// JavaScript strings index UTF-16 code units, so offsets are converted before slicing.
"use strict";

const CATEGORIES = ["achievements", "problems", "plans"];
const $ = (sel) => document.querySelector(sel);

const state = { jobId: null, text: "", digest: null, toUnits: (i) => i, selected: null };

function authHeaders(extra = {}) {
  const token = $("#token").value.trim();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error) return `${res.status} ${body.error.code}: ${body.error.message}`;
  } catch (_) { /* not JSON */ }
  return `${res.status} ${res.statusText}`;
}

function setProgress(job) {
  $("#job").hidden = false;
  const bar = $("#progress");
  const { done, total } = job.progress || { done: 0, total: 0 };
  if (job.status === "done") {
    bar.max = 1; bar.value = 1;
  } else if (total > 0) {
    bar.max = total; bar.value = Math.min(done, total);
  } else {
    bar.removeAttribute("value"); // indeterminate while queued or before the first report
  }
  const words = { queued: "queued", running: total ? `running ${done}/${total}` : "running", done: "done", failed: "failed" };
  $("#status").textContent = words[job.status] || job.status;
  $("#job").dataset.status = job.status;
}

// -- submit ------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  showError("");
  const file = $("#file").files[0];
  const title = $("#title").value.trim();
  let body;
  let headers = authHeaders();
  if (file) {
    body = new FormData();
    body.append("file", file);
    if (title) body.append("title", title);
  } else {
    const text = $("#text").value;
    if (!text.trim()) { showError("Paste an article or choose a file."); return; }
    body = JSON.stringify({ text, title: title || null });
    headers = authHeaders({ "Content-Type": "application/json" });
  }
  sessionStorage.setItem("reportsum-token", $("#token").value.trim());
  $("#submit").disabled = true;
  try {
    const res = await fetch("/v1/jobs", { method: "POST", headers, body });
    if (!res.ok) {
      let msg = await errorMessage(res);
      const retry = res.headers.get("Retry-After");
      if (retry) msg += ` (retry in ${retry} s)`;
      showError(msg);
      return;
    }
    const job = await res.json();
    history.replaceState(null, "", `#job=${job.id}`);
    await follow(job.id);
  } catch (err) {
    showError(`Request failed: ${err.message || err}`);
  } finally {
    $("#submit").disabled = false;
  }
}

// -- progress stream -----------------------------------------------------------------------

async function follow(jobId) {
  state.jobId = jobId;
  $("#result").hidden = true;
  setProgress({ status: "queued", progress: { done: 0, total: 0 } });
  // Reconnect when the stream drops (a server restart re-queues the job; it still finishes).
  for (let attempt = 0; ; attempt++) {
    if (state.jobId !== jobId) return; // another submission took over
    let final = null;
    try {
      final = await streamEvents(jobId);
    } catch (err) {
      if (err.fatal) { showError(err.message); return; }
    }
    if (final === "done") return showJob(jobId);
    if (final === "failed") return showJob(jobId);
    await new Promise((r) => setTimeout(r, Math.min(1000 * (attempt + 1), 5000)));
  }
}

// Reads text/event-stream through fetch; resolves with "done"/"failed" or null if cut off.
async function streamEvents(jobId) {
  const res = await fetch(`/v1/jobs/${jobId}/events`, { headers: authHeaders({ Accept: "text/event-stream" }) });
  if (!res.ok) {
    const err = new Error(await errorMessage(res));
    err.fatal = res.status === 401 || res.status === 404;
    throw err;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const job = JSON.parse(data.join("\n"));
      setProgress(job);
      if (name === "done" || name === "failed") {
        reader.cancel().catch(() => {});
        return name;
      }
    }
  }
}

async function showJob(jobId) {
  const [jobRes, textRes] = await Promise.all([
    fetch(`/v1/jobs/${jobId}`, { headers: authHeaders() }),
    fetch(`/v1/jobs/${jobId}/text`, { headers: authHeaders() }),
  ]);
  if (!jobRes.ok) return showError(await errorMessage(jobRes));
  const job = await jobRes.json();
  setProgress(job);
  if (job.status === "failed") return showError(`Job failed: ${job.error.code}: ${job.error.message}`);
  if (!textRes.ok) return showError(await errorMessage(textRes));
  render(job.digest, await textRes.text());
}

// -- rendering -------------------------------------------------------------------------

// Code-point offset -> UTF-16 index (identity unless the text has astral characters).
function unitIndexer(text) {
  if (!/[\uD800-\uDFFF]/.test(text)) return (i) => i;
  const map = [0];
  for (let u = 0; u < text.length; ) {
    const cp = text.codePointAt(u);
    u += cp > 0xffff ? 2 : 1;
    map.push(u);
  }
  return (i) => map[Math.min(i, map.length - 1)];
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

// Appends `text` with every occurrence of the figures wrapped in <b class="fig">.
function appendWithFigures(parent, text, figures) {
  const figs = [...new Set(figures || [])].filter(Boolean).sort((a, b) => b.length - a.length);
  if (!figs.length) { parent.append(text); return; }
  const escaped = figs.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(escaped.join("|"), "g");
  let pos = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > pos) parent.append(text.slice(pos, m.index));
    parent.append(el("b", { class: "fig" }, m[0]));
    pos = m.index + m[0].length;
  }
  if (pos < text.length) parent.append(text.slice(pos));
}

function render(digest, text) {
  state.digest = digest;
  state.text = text;
  state.toUnits = unitIndexer(text);
  state.selected = null;
  const doc = digest.doc || {};
  $("#doc-title").textContent = doc.title || "(untitled)";
  $("#doc-meta").textContent = [doc.organization, doc.region, doc.period, `${doc.chars} chars`].filter(Boolean).join(" · ");
  $("#overview").textContent = digest.overview || "";
  for (const cat of CATEGORIES) {
    const list = $(`#${cat}`);
    list.textContent = "";
    const items = digest[cat] || [];
    $(`#count-${cat}`).textContent = `(${items.length})`;
    items.forEach((item, index) => {
      // a summary that only restates its evidence is not shown: the quote says it once
      // a quote from web-page source is shown as a reader sees it (the mark in the source
      // pane still covers the exact slice, tags and all)
      const shown = visibleText(item.evidence);
      const quoteOnly = restates(item.summary, shown);
      const summary = el("span", { class: quoteOnly ? "summary quote" : "summary" });
      appendWithFigures(summary, quoteOnly ? `“${shown}”` : item.summary, item.figures);
      const button = el("button", { type: "button", class: "item", "data-category": cat, "data-index": String(index) }, summary);
      if (item.figures && item.figures.length) {
        button.append(el("span", { class: "chips", title: "figures, verbatim" }, ...item.figures.map((f) => el("span", { class: "chip fig" }, f))));
      }
      if (!quoteOnly) button.append(el("span", { class: "evidence" }, `“${shown}”`));
      button.addEventListener("click", () => select(cat, index, button));
      list.append(el("li", {}, button));
    });
  }
  const warnings = (digest.meta && digest.meta.warnings) || [];
  $("#warnings").textContent = "";
  warnings.forEach((w) => $("#warnings").append(el("li", {}, w)));
  $("#warnings-box").hidden = !warnings.length;
  const m = digest.meta || {};
  $("#run-meta").textContent = `${m.backend} · ${m.model} · prompts ${m.prompt_version} · ${m.llm_calls} model calls · ${Number(m.seconds || 0).toFixed(1)} s`;
  $("#result").hidden = false;
  renderSource(null);
}

// Same rule as service/render.py restates(): the summary is the evidence, tidied.
function restates(summary, evidence) {
  const squash = (t) => (t || "").replace(/[\s。！？,，;；:：、]+/gu, "");
  const s = squash(summary), e = squash(evidence);
  return e.includes(s) && e.length - s.length <= 3;
}

// Source text with excluded spans greyed and, when an item is selected, its evidence
// in one <mark> (figures bold inside it), so mark.textContent === item.evidence.
function renderSource(item) {
  const src = $("#source");
  const { text, toUnits } = state;
  const excluded = ((state.digest && state.digest.excluded) || [])
    .map((e) => ({ start: toUnits(e.span[0]), end: toUnits(e.span[1]), reason: e.reason }))
    .sort((a, b) => a.start - b.start);

  function appendRange(parent, a, b) {
    let pos = a;
    for (const e of excluded) {
      if (e.end <= pos || e.start >= b) continue;
      const s = Math.max(e.start, pos);
      const t = Math.min(e.end, b);
      if (s > pos) parent.append(text.slice(pos, s));
      parent.append(el("span", { class: "excluded", title: `left out: ${e.reason}` }, text.slice(s, t)));
      pos = t;
    }
    if (pos < b) parent.append(text.slice(pos, b));
  }

  src.textContent = "";
  if (!item) { appendRange(src, 0, text.length); return null; }
  const a = toUnits(item.span[0]);
  const b = toUnits(item.span[1]);
  appendRange(src, 0, a);
  const mark = el("mark", { title: item.summary });
  appendWithFigures(mark, text.slice(a, b), item.figures);
  src.append(mark);
  appendRange(src, b, text.length);
  return mark;
}

function select(cat, index, button) {
  const item = state.digest[cat][index];
  document.querySelectorAll(".item.selected").forEach((n) => n.classList.remove("selected"));
  button.classList.add("selected");
  state.selected = { cat, index };
  const mark = renderSource(item);
  mark.scrollIntoView({ block: "center", inline: "nearest" });
}

// -- start -----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#token").value = sessionStorage.getItem("reportsum-token") || "";
  $("#form").addEventListener("submit", submit);
  $("#file").addEventListener("change", () => { if ($("#file").files.length) $("#text").value = ""; });
  // A reload (or a shared link) shows the job named in the address again.
  const match = location.hash.match(/job=([0-9a-f]+)/);
  if (match) follow(match[1]);
});
