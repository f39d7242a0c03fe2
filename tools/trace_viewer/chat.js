// oko serve's chat page: streams answers from /v1/chat/completions (or /v1/completions for
// a model without a chat template) and, beside them, draws where each answer token looked
// with the trace viewer (viewer.js), in a frame redrawn as the rows arrive. No network but
// this server. The server sets OKO_SERVER {model, layers, heads, chat} and VIEWER_PAGE (the
// viewer's page, its payload left as "__OKO_PAYLOAD__").
// State for tests and users: body[data-state] is idle, streaming, answered or error;
// body[data-heatmap] is what the last drawn frame reported ("ok": a drawn heatmap).
"use strict";
window.onerror = (msg) => { setStatus("error: " + msg); document.body.dataset.state = "error"; };

const $ = (id) => document.getElementById(id);
const S = OKO_SERVER;
const conversation = [];  // {role, content} of the turns so far (chat models)
let controller = null;    // aborts the streaming request (Stop)
let answers = 0;

function setStatus(text) { $("status").textContent = text; }

function setup() {
  $("model").textContent = `${S.model} · ${S.layers} layers × ${S.heads} heads` + (S.chat ? "" : " · no chat template: text continues");
  for (let l = 0; l < S.layers; l++) $("layer").add(new Option("L" + l, l));
  $("layer").value = S.layers - 1;
  $("head").add(new Option("every head", -1));
  for (let h = 0; h < S.heads; h++) $("head").add(new Option("h" + h, h));
  $("composer").onsubmit = (ev) => { ev.preventDefault(); send(); };
  $("input").onkeydown = (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); send(); }
  };
  $("stop").onclick = () => controller && controller.abort();
  $("clear").onclick = () => { conversation.length = 0; $("messages").innerHTML = ""; setStatus(""); };
  document.body.dataset.state = "idle";
  $("input").focus();
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "message " + role;
  div.innerHTML = '<span class="thinking"></span><span class="content"></span><span class="meta"></span>';
  div.querySelector(".content").textContent = text;
  $("messages").appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function requestBody(text) {
  const body = {
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: Math.max(1, +$("max-tokens").value || 200),
    oko: { attention: { layer: +$("layer").value, head: +$("head").value } },
  };
  if ($("temperature").value !== "") body.temperature = +$("temperature").value;
  if (S.chat) body.messages = conversation.slice();
  else body.prompt = text;
  return body;
}

async function send() {
  const text = $("input").value;
  if (!text.trim() || controller) return;
  $("input").value = "";
  bubble("user", text);
  if (S.chat) conversation.push({ role: "user", content: text });
  const answer = bubble("assistant", "");
  const attention = newAttention(+$("head").value, ++answers);
  const headers = { "Content-Type": "application/json" };
  if ($("api-key").value) headers.Authorization = "Bearer " + $("api-key").value;
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  document.body.dataset.state = "streaming";
  setStatus("waiting for a slot…");
  const started = performance.now();
  let tokens = 0, failed = false;
  try {
    const res = await fetch(S.chat ? "/v1/chat/completions" : "/v1/completions",
      { method: "POST", headers, body: JSON.stringify(requestBody(text)), signal: controller.signal });
    if (!res.ok) throw new Error(await errorText(res));
    await readEvents(res, (event) => {
      if (event.error) throw new Error(event.error.message);
      if (event.oko && event.oko.attention) { addRows(attention, event.oko.attention); scheduleDraw(attention); }
      if (event.usage) tokens = event.usage.completion_tokens;
      const choice = event.choices && event.choices[0];
      if (!choice) return;
      const delta = choice.delta || { content: choice.text };
      if (delta.reasoning_content) answer.querySelector(".thinking").textContent += delta.reasoning_content;
      if (delta.content) answer.querySelector(".content").textContent += delta.content;
      if (choice.finish_reason) answer.querySelector(".meta").textContent = "finish: " + choice.finish_reason;
      answer.scrollIntoView({ block: "end" });
      setStatus("streaming…");
    });
  } catch (e) {
    failed = e.name !== "AbortError";
    answer.querySelector(".meta").textContent = e.name === "AbortError" ? "stopped" : "";
    if (failed) {
      const error = document.createElement("span");
      error.className = "error";
      error.textContent = "error: " + e.message;
      answer.appendChild(error);
    }
  }
  if (S.chat) conversation.push({ role: "assistant", content: answer.querySelector(".content").textContent });
  const seconds = (performance.now() - started) / 1000;
  setStatus(failed ? "the request failed" : tokens ? `${tokens} tokens in ${seconds.toFixed(1)} s` : "");
  controller = null;
  $("send").disabled = false; $("stop").disabled = true;
  await draw(attention);
  document.body.dataset.state = failed ? "error" : "answered";
}

async function errorText(res) {
  try { return (await res.json()).error.message; } catch { return `HTTP ${res.status}`; }
}

// Calls onEvent with each server-sent event's JSON, until [DONE] or the end of the body.
async function readEvents(res, onEvent) {
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") return;
      onEvent(JSON.parse(data));
    }
  }
}

// ---- The answer's attention: rows from the server, drawn by the trace viewer. ----

function newAttention(head, n) {
  return { n, head, layer: -1, heads: [], tokens: [], queries: [], rows: [], timer: null, drawn: -1 };
}

// A batch of rows ({"pos", "token", "probs"}; the first batch also layer, heads and
// prompt_tokens: tools/attention_stream.h).
function addRows(a, part) {
  if (part.prompt_tokens) { a.layer = part.layer; a.heads = part.heads; a.tokens = part.prompt_tokens.slice(); }
  for (const r of part.rows) {
    a.queries.push(r.pos);
    a.rows.push(Uint8Array.from(atob(r.probs), (c) => c.charCodeAt(0)));
    a.tokens[r.pos] = r.token;
  }
}

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// The viewer's payload (viewer.js): one layer, keys 0..the last query, rows head-major.
function payload(a) {
  const Q = a.queries.length, H = a.heads.length, K = a.queries[Q - 1] + 1;
  const rowlen = a.queries.map((q) => q + 1);
  const perHead = rowlen.reduce((x, y) => x + y, 0);
  const bytes = new Uint8Array(H * perHead);
  for (let h = 0, at = 0; h < H; h++)
    for (let i = 0; i < Q; i++) { bytes.set(a.rows[i].subarray(h * rowlen[i], (h + 1) * rowlen[i]), at); at += rowlen[i]; }
  const keys = [...Array(K).keys()];
  return {
    title: `answer ${a.n}`, model: S.model, tokens: keys.map((p) => a.tokens[p] ?? ""), turns: [], roles: [],
    queries: a.queries, keys, sinks: keys.map(() => 0), layers: [a.layer], heads: a.heads, rowlen,
    attn: [base64(bytes)], signed: false, scale: 1, lens: null, drift: null,
    initial: { layer: a.layer, head: a.head },
  };
}

// At most a frame every 400 ms while streaming: each is a whole viewer page.
function scheduleDraw(a) {
  if (a.timer === null) a.timer = setTimeout(() => { a.timer = null; draw(a); }, 400);
}

// Draws into a hidden frame and swaps it in once drawn, so the view never blinks empty.
// Resolves when the frame has loaded.
function draw(a) {
  if (a.timer !== null) { clearTimeout(a.timer); a.timer = null; }
  if (!a.queries.length || a.drawn === a.queries.length) return Promise.resolve();
  a.drawn = a.queries.length;
  const data = JSON.stringify(payload(a)).replace(/<\//g, "<\\/");
  const frame = document.createElement("iframe");
  frame.className = "pending";
  frame.title = "attention of answer " + a.n;
  const loaded = new Promise((resolve) => frame.addEventListener("load", resolve));
  frame.onload = () => {
    if (frame !== $("frames").lastElementChild) { frame.remove(); return; }  // a newer one is coming
    for (const old of [...$("frames").querySelectorAll("iframe")]) if (old !== frame) old.remove();
    $("placeholder")?.remove();
    frame.classList.remove("pending");
    document.body.dataset.heatmap = frame.contentDocument.title;
    $("attention-info").textContent = `answer ${a.n} · layer ${a.layer} · ${a.heads.length === 1 ? "head " + a.heads[0] : a.heads.length + " heads"} · ${a.queries.length} tokens`;
  };
  frame.srcdoc = VIEWER_PAGE.replace("__OKO_PAYLOAD__", () => data);
  $("frames").appendChild(frame);
  return loaded;
}

setup();
