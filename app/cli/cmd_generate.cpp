// qpruner generate MODEL: greedy (--temperature 0) or sampled generation with a KV cache.
#include <iostream>

#include "cli_context.h"
#include "commands.h"
#include "eval/generation.h"
#include "quant/model_quantizer.h"

namespace qpruner::cli {

int runGenerate(const Args& args)
{
    ArgParser p("generate", "Generate text. --steps counts positions including BOS and the prompt (llama2.c's -n).");
    p.positional("MODEL", "checkpoint file or directory");
    addTokenizerOption(p);
    addModelOptions(p);
    addAdapterOption(p);
    p.option("map", "FILE", "apply this precision map to the (dense) model first");
    p.option("format", "F", "apply one format to every decoder linear first (as --map)");
    p.option("prompt", "TEXT", "prompt text (BOS is always prepended)", "");
    p.option("steps", "N", "positions to run, prompt included", "256");
    p.option("temperature", "T", "0 for greedy", "1.0");
    p.option("top-p", "P", "nucleus sampling threshold (1: off)", "0.9");
    p.option("seed", "N", "random seed for sampling", "0");
    p.flag("json", "print one JSON object: prompt_ids, ids (after BOS), generated_ids, logprobs (of each generated "
                   "token, before temperature / top-p), text, tokens_per_second");
    p.example("qpruner generate ../shared/data/models/stories260K/stories260K.bin "
              "--tokenizer ../shared/data/models/stories260K/tok512.model --steps 64 --temperature 0 --json");
    if (!p.parse(args))
        return 0;
    // Options first, so a bad value fails before the model is loaded.
    eval::GenerateOptions o;
    o.steps = p.getInt("steps");
    o.temperature = p.getDouble("temperature");
    o.topP = p.getDouble("top-p");
    o.seed = static_cast<uint64_t>(p.getInt64("seed"));
    const std::string prompt = p.find("prompt").value_or("");

    const auto model = loadModelOrAdaptedFromArgs(p);
    if (!p.find("adapter") && (p.find("map") || p.find("format")))
        quant::quantizeModel(*model, precisionMapFromArgs(p));
    const auto tok = loadTokenizerFromArgs(p);
    const std::vector<int32_t> ids = eval::promptTokens(*model, *tok, prompt, &o);
    const auto r = eval::generate(*model, ids, o);
    const std::vector<int32_t> afterBos(r.tokens.begin() + 1, r.tokens.end());
    const std::string text = tok->decode(r.tokens);
    if (p.isSet("json")) {
        printJson({{"prompt_ids", ids}, {"ids", afterBos}, {"generated_ids", r.generated},
                   {"logprobs", r.logprobs}, {"text", text},
                   {"steps", o.steps}, {"temperature", o.temperature}, {"top_p", o.topP}, {"seed", o.seed},
                   {"seconds", r.seconds}, {"tokens_per_second", r.tokensPerSecond}});
    } else {
        std::cout << text << "\n";
        std::cerr << "[" << r.generated.size() << " tokens, " << r.tokensPerSecond << " tok/s]\n";
    }
    return 0;
}

} // namespace qpruner::cli
