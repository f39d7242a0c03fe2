// Drives oko serve's chat page (GET /) in headless Chromium as a person would, through
// the DevTools protocol over a pipe (no npm package): types a message and presses Enter,
// waits for the streamed answer and the drawn attention heatmap, then sends a second turn
// with the Send button. Fails on any JavaScript exception or console error, in the page
// or in the viewer's frame. Usage: node drive.mjs URL SCREENSHOT.png
// Prints what it saw; exits 0 when everything held, 1 otherwise.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, screenshot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "oko-chat-page-"));
const chromium = spawn("chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", `--user-data-dir=${profile}`,
  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--window-size=1400,1000", "about:blank",
], { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });

// ---- The protocol: JSON messages ended by a NUL byte, fd 3 to Chromium, fd 4 back. ----
let nextId = 1, received = Buffer.alloc(0);
const waiting = new Map(), problems = [];
chromium.stdio[4].on("data", (data) => {
  received = Buffer.concat([received, data]);
  for (let end; (end = received.indexOf(0)) >= 0; received = received.subarray(end + 1)) {
    const m = JSON.parse(received.subarray(0, end).toString("utf8"));
    if (m.id !== undefined && waiting.has(m.id)) {
      const { resolve, reject } = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error) reject(new Error(m.error.message)); else resolve(m.result);
    } else {
      onEvent(m);
    }
  }
});
function call(method, params = {}, sessionId = undefined) {
  const id = nextId++;
  chromium.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}
function onEvent(m) {
  if (m.method === "Runtime.exceptionThrown") {
    const d = m.params.exceptionDetails;
    problems.push(`exception: ${d.exception?.description ?? d.text} (${d.url ?? ""}:${d.lineNumber})`);
  } else if (m.method === "Runtime.consoleAPICalled" && (m.params.type === "error" || m.params.type === "assert")) {
    problems.push("console error: " + m.params.args.map((a) => a.value ?? a.description).join(" "));
  } else if (m.method === "Log.entryAdded" && m.params.entry.level === "error") {
    problems.push(`log error: ${m.params.entry.text} ${m.params.entry.url ?? ""}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let session;
const page = (method, params) => call(method, params, session);
async function evaluate(expression) {
  const r = await page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description}`);
  return r.result.value;
}
async function until(what, expression, seconds) {
  for (const end = Date.now() + seconds * 1000; Date.now() < end; await sleep(100)) {
    const v = await evaluate(expression);
    if (v) return v;
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

// What the page shows after an answer: its state, the answer, and the viewer frame's.
const SEEN = `(() => {
  const answers = document.querySelectorAll(".message.assistant");
  const last = answers[answers.length - 1];
  const frame = document.querySelector("#frames iframe:not(.pending)");
  const heatmap = frame && frame.contentDocument.getElementById("heatmap");
  let lit = 0;
  if (heatmap && heatmap.width > 0) {
    const px = heatmap.getContext("2d").getImageData(0, 0, heatmap.width, heatmap.height).data;
    for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) lit++;
  }
  return { state: document.body.dataset.state, heatmap: document.body.dataset.heatmap,
           answers: answers.length, answer: last ? last.querySelector(".content").textContent : "",
           meta: last ? last.querySelector(".meta").textContent : "",
           info: document.getElementById("attention-info").textContent, lit,
           frameTitle: frame ? frame.contentDocument.title : "" };
})()`;

function check(seen, turn) {
  console.log(`turn ${turn}:`, JSON.stringify(seen));
  if (seen.state !== "answered") problems.push(`turn ${turn}: the page is '${seen.state}', not 'answered'`);
  if (seen.answers !== turn) problems.push(`turn ${turn}: ${seen.answers} answers shown`);
  if (!seen.answer) problems.push(`turn ${turn}: the answer is empty`);
  if (!seen.meta.startsWith("finish:")) problems.push(`turn ${turn}: no finish reason shown ('${seen.meta}')`);
  if (seen.heatmap !== "ok" || seen.frameTitle !== "ok") problems.push(`turn ${turn}: the viewer reported '${seen.heatmap}'`);
  if (seen.lit === 0) problems.push(`turn ${turn}: the heatmap has no drawn pixel`);
  if (!seen.info.startsWith(`answer ${turn} `)) problems.push(`turn ${turn}: the view shows '${seen.info}'`);
}

async function main() {
  const { targetId } = await call("Target.createTarget", { url: "about:blank" });
  ({ sessionId: session } = await call("Target.attachToTarget", { targetId, flatten: true }));
  await Promise.all([page("Runtime.enable"), page("Log.enable"), page("Page.enable")]);
  await page("Page.navigate", { url });
  await until("the page to load", `document.readyState === "complete" && document.body.dataset.state === "idle"`, 30);

  // Turn 1: typed into the box, Enter sends (40 tokens: the test's time is the sanitizers' too).
  await evaluate(`document.getElementById("max-tokens").value = "40"; document.getElementById("input").focus()`);
  await page("Input.insertText", { text: "Tell me where you look." });
  for (const type of ["keyDown", "keyUp"])
    await page("Input.dispatchKeyEvent", { type, key: "Enter", code: "Enter", windowsVirtualKeyCode: 13 });
  await until("the first answer", `document.body.dataset.state === "answered" || document.body.dataset.state === "error"`, 120);
  check(await evaluate(SEEN), 1);

  // Turn 2: one head chosen, the Send button clicked.
  await evaluate(`document.getElementById("head").value = "1"; document.getElementById("input").value = "And now?"`);
  const box = await evaluate(`(() => { const r = document.getElementById("send").getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`);
  for (const type of ["mousePressed", "mouseReleased"])
    await page("Input.dispatchMouseEvent", { type, x: box[0], y: box[1], button: "left", clickCount: 1 });
  await until("the second answer", `document.querySelectorAll(".message.assistant").length === 2 && document.body.dataset.state !== "streaming"`, 120);
  const second = await evaluate(SEEN);
  check(second, 2);
  if (!second.info.includes("head 1")) problems.push(`turn 2: the view is not of head 1: '${second.info}'`);

  const shot = await page("Page.captureScreenshot", { format: "png" });
  writeFileSync(screenshot, Buffer.from(shot.data, "base64"));
  console.log("screenshot:", screenshot);
}

let failed = false;
try {
  await Promise.race([main(), sleep(280 * 1000).then(() => { throw new Error("the whole drive took over 280 s"); })]);
} catch (e) {
  problems.push(String(e.message ?? e));
}
for (const p of problems) { console.log("FAIL", p); failed = true; }
await Promise.race([call("Browser.close").catch(() => {}), sleep(5000)]);
if (chromium.exitCode === null) chromium.kill();
await new Promise((resolve) => (chromium.exitCode !== null ? resolve() : chromium.once("exit", resolve)));
// Its helper processes may still write to the profile for a moment.
try { rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); } catch {}
process.exit(failed ? 1 : 0);
