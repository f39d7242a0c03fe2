// llama.cpp (node-llama-cpp's prebuilt CPU backend) on pairs of GGUF files that should be
// the same model: for each pair, the token ids of a text and the next-token probabilities
// (temperature 1, no truncation) on both files, at every position of those ids; with
// vocabularies over 4096 tokens at the last 3 (a full probability map costs ~0.3 s there).
// Prints one line per pair, "same" or what differs (max |dp|), and exits 1 if any differs
// by more than TOLERANCE (0: bit for bit).
// node-llama-cpp is taken from $OKO_LLAMACPP_DIR (default /tmp/oko-llamacpp; install.sh).
// Usage: node gguf_same.mjs TOLERANCE TEXT A.gguf B.gguf [C.gguf D.gguf ...]
import {createRequire} from "node:module";
import {pathToFileURL} from "node:url";

const dir = process.env.OKO_LLAMACPP_DIR || "/tmp/oko-llamacpp";
const {getLlama} = await import(pathToFileURL(createRequire(`${dir}/package.json`).resolve("node-llama-cpp")).href);

const [tolerance, text, ...files] = [+process.argv[2], process.argv[3], ...process.argv.slice(4)];
const llama = await getLlama({gpu: false, build: "never", maxThreads: 1, logLevel: "error"});

async function run(path) {
  const model = await llama.loadModel({modelPath: path, gpuLayers: 0});
  const ids = model.tokenize(text, true);
  const context = await model.createContext({contextSize: 256, batchSize: 256, threads: {ideal: 1, min: 1}});
  const sequence = context.getSequence();
  const options = {generateNext: {probabilities: true, options: {temperature: 1, topK: 0, topP: 1, minP: 0}}};
  const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const first = vocab > 4096 ? Math.max(0, ids.length - 3) : 0;
  const outputs = await sequence.controlledEvaluate(ids.map((id, i) => (i >= first ? [id, options] : id)));
  const probs = outputs.slice(first).map((o) => o.next.probabilities);
  await context.dispose();
  await model.dispose();
  return {ids: Array.from(ids), probs};
}

let failed = false;
for (let i = 0; i + 1 < files.length; i += 2) {
  const [a, b] = [await run(files[i]), await run(files[i + 1])];
  let what = "";
  if (a.ids.join() !== b.ids.join()) {
    what = `token ids differ: [${a.ids}] vs [${b.ids}]`;
  } else {
    let maxDiff = 0;
    for (let t = 0; t < a.probs.length; ++t)
      for (const [token, p] of a.probs[t]) maxDiff = Math.max(maxDiff, Math.abs(p - (b.probs[t].get(token) ?? 0)));
    if (maxDiff > tolerance) what = `max |dp| ${maxDiff} over ${a.ids.length} positions`;
    else what = `same (${a.ids.length} tokens, max |dp| ${maxDiff})`;
  }
  failed ||= !what.startsWith("same");
  console.log(`${files[i]} vs ${files[i + 1]}: ${what}`);
}
process.exit(failed ? 1 : 0);
