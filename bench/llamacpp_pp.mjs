// Prompt-processing throughput of real llama.cpp (node-llama-cpp's prebuilt CPU binaries) on a GGUF file: the
// same protocol as `qpruner eval-ppl` (windows of SEQ tokens, each from an empty context), random token ids.
//   node bench/llamacpp_pp.mjs MODEL.gguf [--seq 256] [--windows 4] [--reps 3] [--threads 2]
// Prints one JSON line: tokens/s per rep and their median. Run from a directory whose node_modules has
// node-llama-cpp (bench/scale.sh installs it into the build directory).
import {getLlama} from "node-llama-cpp";

const args = process.argv.slice(2);
const opt = (name, def) => {
    const i = args.indexOf("--" + name);
    return i >= 0 ? Number(args[i + 1]) : def;
};
const modelPath = args[0];
const seq = opt("seq", 256), windows = opt("windows", 4), reps = opt("reps", 3), threads = opt("threads", 2);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: seq, batchSize: seq, threads, sequences: 1});
const sequence = context.getSequence();
const vocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 32000;
let state = 12345; // a fixed LCG: the same ids on every run
const nextId = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return 3 + (state % (vocab - 3));
};
const window = () => Array.from({length: seq}, nextId);

const rates = [];
await sequence.evaluateWithoutGeneratingNewTokens(window()); // warm-up
await sequence.clearHistory();
for (let r = 0; r < reps; ++r) {
    const batches = Array.from({length: windows}, window);
    const t0 = process.hrtime.bigint();
    for (const w of batches) {
        await sequence.evaluateWithoutGeneratingNewTokens(w);
        await sequence.clearHistory();
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push((windows * seq) / s);
}
rates.sort((a, b) => a - b);
console.log(JSON.stringify({bench: "llamacpp_pp", model: modelPath, seq, windows, threads, reps,
                            tokens_per_second: rates, tokens_per_second_median: rates[Math.floor(rates.length / 2)]}));
await context.dispose();
await model.dispose();
await llama.dispose();
