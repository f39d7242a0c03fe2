// llama.cpp on a GGUF file through node-llama-cpp's prebuilt CPU backend: prompt (pp) and
// generation (tg) tokens per second, mean ± stddev over repetitions, as `oko bench` reports
// them (synthetic token ids; tg starts right after the prompt).
// Usage: node bench.mjs MODEL.gguf THREADS N_PROMPT N_GEN [REPETITIONS]
import {getLlama} from "node-llama-cpp";

const [modelPath, threads, nPrompt, nGen, reps] = [
  process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5], +(process.argv[6] ?? 3)];
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads});
console.log(`llama.cpp backend: ${llama.buildType}: ${llama.systemInfo}`);
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({
  contextSize: nPrompt + nGen + 16, batchSize: Math.max(nPrompt, 1),
  threads: {ideal: threads, min: threads}});
const sequence = context.getSequence();
const prompt = Array.from({length: nPrompt}, (_, i) => (i * 7919) % 150000 + 1);

const pp = [], tg = [];
for (let r = 0; r < reps; ++r) {
  await sequence.clearHistory();
  let t0 = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  pp.push(nPrompt / ((performance.now() - t0) / 1000));
  let generated = 0;
  t0 = performance.now();
  for await (const _ of sequence.evaluate([prompt[nPrompt - 1] + 1], {temperature: 0})) {
    if (++generated >= nGen) break;
  }
  tg.push(nGen / ((performance.now() - t0) / 1000));
}
const summary = (a) => {
  const mean = a.reduce((x, y) => x + y) / a.length;
  const sd = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, a.length - 1));
  return `${mean.toFixed(1)} ± ${sd.toFixed(1)}`;
};
console.log(`llama.cpp threads ${threads}: pp${nPrompt} ${summary(pp)} tok/s | tg${nGen} ${summary(tg)} tok/s`);
process.exit(0);
