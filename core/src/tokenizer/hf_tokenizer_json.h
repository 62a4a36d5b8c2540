// Reading a Hugging Face tokenizer.json (plus the optional tokenizer_config.json beside it) into plain data
// for HfBpeTokenizer: a BPE model (byte-level, or SentencePiece-style with byte_fallback / unk_token), added
// tokens, normalizer, pre-tokenizer and decoder. Whatever the encoder does not implement is refused here with a
// FormatError naming the file and the part, so that a file which loads is encoded as `tokenizers` would.
#pragma once

#include "tokenizer/hf_decoder.h"
#include "tokenizer/hf_normalizer.h"
#include "tokenizer/hf_pre_tokenizer.h"

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
        bool normalized = false; // matched in the normalized text (else in the input as given)
    };
    struct Merge {
        std::int32_t left = -1; // vocabulary ids; a merge's rank is its position in `merges`
        std::int32_t right = -1;
        std::int32_t merged = -1;
    };

    std::unordered_map<std::string, std::int32_t> vocab;
    std::vector<Merge> merges;
    bool ignoreMerges = false;
    bool byteFallback = false;          // characters missing from the vocabulary become <0xNN> pieces
    std::string unkToken;               // empty: none (unknown characters are dropped)
    bool fuseUnk = false;
    std::string continuingSubwordPrefix; // e.g. "##"; empty: none
    std::string endOfWordSuffix;         // e.g. "</w>"; empty: none
    std::vector<AddedToken> addedTokens;
    std::optional<HfNormalizer> normalizer;
    std::optional<HfPreTokenizer> preTokenizer;
    std::optional<HfDecoder> decoder;
    std::int32_t bosId = -1;
    std::int32_t eosId = -1;

    // Byte-level BPE: the pre-tokenizer ends with ByteLevel, so words are raw bytes spelled with the byte
    // alphabet. Otherwise words are characters (SentencePiece-style BPE).
    bool byteLevel() const { return preTokenizer && preTokenizer->bytesOut(); }

    // Throws FormatError naming `fileName` for bad JSON, wrong types and unsupported features.
    static HfTokenizerJson parse(std::string_view json, const std::string& fileName, std::string_view configJson);
};

} // namespace qpruner
