// reportsum track page: two reports -> POST /v1/tracks -> one row per commitment; clicking a
// row marks the commitment in the earlier text and the statements cited in the later text.
//
// Spans are Python str offsets (code points) into the texts as sent; JavaScript strings
// index UTF-16 code units, so offsets are converted before slicing (as on the digest page).
"use strict";

const $ = (sel) => document.querySelector(sel);
const STATUS_ZH = { met: "完成", not_met: "未完成", progress_reported: "有进展", not_reported: "未提及" };
const state = { earlier: "", later: "", track: null };

function authHeaders(extra = {}) {
  const token = $("#token").value.trim();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function showError(message) {
  $("#error").textContent = message;
  $("#error").hidden = !message;
}

function unitIndexer(text) {
  if (!/[\uD800-\uDFFF]/.test(text)) return (i) => i;
  const map = [0];
  for (let u = 0; u < text.length; ) {
    u += text.codePointAt(u) > 0xffff ? 2 : 1;
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

// The text with the given spans (code points) marked; returns the first mark.
function renderMarked(pre, text, spans) {
  const toUnits = unitIndexer(text);
  const ranges = spans.map(([a, b]) => [toUnits(a), toUnits(b)]).sort((x, y) => x[0] - y[0]);
  pre.textContent = "";
  let pos = 0;
  let first = null;
  for (const [a, b] of ranges) {
    if (a < pos) continue; // overlapping statements: the first one shown
    pre.append(text.slice(pos, a));
    const mark = el("mark", {}, text.slice(a, b));
    pre.append(mark);
    first = first || mark;
    pos = b;
  }
  pre.append(text.slice(pos));
  return first;
}

function select(index, row) {
  const item = state.track.items[index];
  document.querySelectorAll("#commitments tr.selected").forEach((n) => n.classList.remove("selected"));
  row.classList.add("selected");
  $("#columns").hidden = false;
  const left = renderMarked($("#earlier-src"), state.earlier, [item.commitment.span]);
  const right = renderMarked($("#later-src"), state.later, item.later.map((s) => s.span));
  left.scrollIntoView({ block: "center", inline: "nearest" });
  if (right) right.scrollIntoView({ block: "center", inline: "nearest" });
}

function render(track) {
  state.track = track;
  const counts = Object.entries(STATUS_ZH).map(([k, zh]) => `${zh} ${track.items.filter((i) => i.status === k).length}`);
  $("#counts").textContent = `${track.items.length} 项带数字的承诺:${counts.join(" · ")}`;
  const body = $("#commitments tbody");
  body.textContent = "";
  track.items.forEach((it, i) => {
    const where = it.later.map((s) => `${s.span[0]}–${s.span[1]}`).join("; ") || "—";
    const row = el("tr", { tabIndex: 0, "data-index": String(i) },
      el("td", {}, visibleText(it.commitment.evidence).replace(/\s+/g, " ")), el("td", {}, it.target || ""),
      el("td", {}, it.reported || ""),
      el("td", {}, el("span", { class: `status ${it.status}`, title: it.basis }, `${it.status} ${STATUS_ZH[it.status]}`)),
      el("td", {}, where));
    row.addEventListener("click", () => select(i, row));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") select(i, row); });
    body.append(row);
  });
  const warnings = track.meta.warnings || [];
  $("#warnings").textContent = "";
  warnings.forEach((w) => $("#warnings").append(el("li", {}, w)));
  $("#warnings-box").hidden = !warnings.length;
  $("#result").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const earlier = $("#earlier").value;
  const later = $("#later").value;
  if (!earlier.trim() || !later.trim()) { showError("Paste both reports."); return; }
  sessionStorage.setItem("reportsum-token", $("#token").value.trim());
  $("#submit").disabled = true;
  $("#status").textContent = "reading both reports…";
  try {
    const res = await fetch("/v1/tracks", {
      method: "POST", headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ earlier, later }),
    });
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try { const b = await res.json(); if (b.error) msg = `${res.status} ${b.error.code}: ${b.error.message}`; } catch (_) { /* not JSON */ }
      showError(msg);
      return;
    }
    state.earlier = earlier;
    state.later = later;
    render(await res.json());
    $("#status").textContent = "done";
  } catch (err) {
    showError(String(err));
  } finally {
    $("#submit").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#token").value = sessionStorage.getItem("reportsum-token") || "";
  $("#form").addEventListener("submit", submit);
});
