// What the tokenizer.json component readers (normalizer, pre-tokenizer, decoder) share: tokenizers' nested
// "Sequence" components flattened into their steps, and the GPT-2 byte alphabet as one table for the process.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "qpruner/error.h"
#include "tokenizer/byte_level_alphabet.h"

namespace qpruner {

inline const ByteLevelAlphabet& byteLevelAlphabet()
{
    static const ByteLevelAlphabet alphabet;
    return alphabet;
}

// Calls step(component, type) for each component of `config` that is not a Sequence, in order, descending into
// Sequences, whose parts are listed under `listKey` ("normalizers", "pretokenizers", "decoders"). Throws
// FormatError naming `where` for a component without a string "type", a Sequence without its array, or Sequences
// nested more than 16 deep (real files nest once or twice).
template <class Step>
void forEachHfComponent(const nlohmann::json& config, const char* listKey, const std::string& where, Step&& step,
                        int depth = 0)
{
    if (!config.is_object() || !config.contains("type") || !config["type"].is_string())
        throw FormatError(where + " is not an object with a 'type'");
    if (depth > 16)
        throw FormatError(where + ": Sequence nested too deeply");
    const std::string type = config["type"].get<std::string>();
    if (type != "Sequence") {
        step(config, type);
        return;
    }
    const auto it = config.find(listKey);
    if (it == config.end() || !it->is_array())
        throw FormatError(where + ": Sequence has no '" + std::string(listKey) + "' array");
    for (const nlohmann::json& inner : *it)
        forEachHfComponent(inner, listKey, where, step, depth + 1);
}

} // namespace qpruner
