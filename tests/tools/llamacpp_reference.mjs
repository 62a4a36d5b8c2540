// Real llama.cpp (node-llama-cpp's prebuilt CPU binaries) as the reference forward pass for our GGUF exports:
//   node llamacpp_reference.mjs MODEL.gguf IDS_JSON STEPS
// IDS_JSON is a JSON array of prompt token ids (BOS included when wanted). Prints one JSON object:
//   greedy:   the STEPS token ids llama.cpp picks greedily after the prompt (argmax of its logits),
//   logprobs: for every position t of prompt + greedy except the last, log p(token t+1 | tokens 0..t) under
//             llama.cpp's logits (softmax over the whole vocabulary, no sampling options),
//   top:      per position, llama.cpp's argmax token.
// The KV cache is kept in F32 so that only the weights' and activations' arithmetic differs from ours.
// NODE_MODULES names the node_modules directory that holds node-llama-cpp (installed into the build directory).
import path from "node:path";
import {pathToFileURL} from "node:url";

const modules = process.env.NODE_MODULES ?? "node_modules";
const {getLlama} = await import(pathToFileURL(path.join(path.resolve(modules), "node-llama-cpp", "dist", "index.js")).href);

const [modelPath, idsJson, stepsArg] = process.argv.slice(2);
const prompt = JSON.parse(idsJson);
const steps = Number(stepsArg ?? 16);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const total = prompt.length + steps;
const context = await model.createContext({
    contextSize: Math.max(64, total + 8), batchSize: Math.max(64, total + 8), threads: 1, sequences: 1,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();

// Greedy continuation, token by token, probabilities of every position recorded.
const tokens = [...prompt];
const probs = [];
let input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, {generateNext: {probabilities: true}}] : t));
for (let s = 0; s <= steps; ++s) {
    const out = await sequence.controlledEvaluate(input);
    const last = out[out.length - 1];
    const p = last.next.probabilities;
    probs.push(p);
    if (s === steps)
        break;
    let best = -1, bestP = -1;
    for (const [tok, pr] of p)
        if (pr > bestP || (pr === bestP && tok < best)) {
            best = tok;
            bestP = pr;
        }
    tokens.push(best);
    input = [[best, {generateNext: {probabilities: true}}]];
}
const greedy = tokens.slice(prompt.length);
// Teacher-forced: a fresh pass over the whole sequence with probabilities at every position.
await sequence.clearHistory();
const tf = await sequence.controlledEvaluate(tokens.map(t => [t, {generateNext: {probabilities: true}}]));
const logprobs = [], top = [];
for (let t = 0; t + 1 < tokens.length; ++t) {
    const p = tf[t].next.probabilities;
    logprobs.push(Math.log(p.get(tokens[t + 1]) ?? 0));
    let best = -1, bestP = -1;
    for (const [tok, pr] of p)
        if (pr > bestP) {
            best = tok;
            bestP = pr;
        }
    top.push(best);
}
console.log(JSON.stringify({greedy, tokens, logprobs, top, vocab: p0size(probs[0])}));
function p0size(p) { return p.size; }
await context.dispose();
await model.dispose();
await llama.dispose();
