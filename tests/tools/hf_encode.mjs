// Reference encoder for tests/core/test_tokenizer_reference.cpp: Hugging Face's own JavaScript tokenizers
// (npm @huggingface/tokenizers), which load a tokenizer.json as is.
//   node hf_encode.mjs <node_modules dir> <tokenizer dir> <texts.json> <ids.json>
// texts.json holds a JSON array of strings; ids.json receives {"version": ..., "ids": [[...], ...]}, the ids of
// each text encoded with add_special_tokens false.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, dir, textsPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: node hf_encode.mjs <node_modules dir> <tokenizer dir> <texts.json> <ids.json>");
    process.exit(2);
}
const pkgDir = join(modules, "@huggingface", "tokenizers");
const { Tokenizer } = await import(pathToFileURL(join(pkgDir, "dist", "tokenizers.mjs")).href);
const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
const tokenizerJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
let config = {};
try {
    config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
} catch {
    // no tokenizer_config.json: the defaults
}
const tokenizer = new Tokenizer(tokenizerJson, config);
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
const ids = texts.map((t) => tokenizer.encode(t, { add_special_tokens: false }).ids);
writeFileSync(outPath, JSON.stringify({ version, ids }));
