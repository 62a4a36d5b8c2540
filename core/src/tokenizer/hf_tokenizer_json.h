// Reading a Hugging Face tokenizer.json (plus the optional tokenizer_config.json beside it) into plain data
// for HfBpeTokenizer. Whatever the byte-level BPE encoder does not implement is refused here with a
// FormatError naming the file and the part, so that a file which loads is encoded as `tokenizers` would.
#pragma once

#include "tokenizer/hf_split_pattern.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qpruner {

struct HfTokenizerJson {
    struct AddedToken {
        std::string content;
        std::int32_t id = -1;
        bool lstrip = false;
        bool rstrip = false;
        bool singleWord = false;
        bool special = false; // "special": a control token (GGUF export)
    };
    struct Merge {
        std::int32_t left = -1; // vocabulary ids; a merge's rank is its position in `merges`
        std::int32_t right = -1;
        std::int32_t merged = -1;
    };
    struct PreTokenizerStep {
        std::optional<HfSplitPattern> pattern; // Split with a regex, or ByteLevel with use_regex
        std::string literal;                   // Split with a plain string
        bool byteLevel = false;
        bool addPrefixSpace = false;
    };

    std::unordered_map<std::string, std::int32_t> vocab;
    std::vector<Merge> merges;
    bool ignoreMerges = false;
    std::vector<AddedToken> addedTokens;
    std::vector<PreTokenizerStep> preTokenizer; // its last step is ByteLevel
    std::int32_t bosId = -1;
    std::int32_t eosId = -1;

    // Throws FormatError naming `fileName` for bad JSON, wrong types and unsupported features.
    static HfTokenizerJson parse(std::string_view json, const std::string& fileName, std::string_view configJson);
};

} // namespace qpruner
