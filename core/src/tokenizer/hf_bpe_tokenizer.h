// Tokenizer for Hugging Face tokenizer.json files with a byte-level BPE model (GPT-2, Llama-3, Qwen2 style):
// added tokens matched literally first, then the pre-tokenizer (Split regex and/or ByteLevel), the GPT-2
// byte alphabet and BPE by merge rank, as the `tokenizers` library does it.
#pragma once

#include "qpruner/tokenizer.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/prefix_matcher.h"

#include <array>
#include <memory>
#include <optional>
#include <unordered_map>

namespace qpruner {

class HfBpeTokenizer final : public Tokenizer {
public:
    // `config` comes from HfTokenizerJson::parse; `fileName` is used in error messages. Throws FormatError
    // when the vocabulary cannot spell every byte.
    HfBpeTokenizer(HfTokenizerJson config, std::string fileName);
    HfBpeTokenizer(const HfBpeTokenizer&) = delete;
    HfBpeTokenizer& operator=(const HfBpeTokenizer&) = delete;

    // Reads `path` and, when present, tokenizer_config.json in the same directory.
    static std::unique_ptr<HfBpeTokenizer> fromFile(const std::filesystem::path& path);

    std::vector<std::int32_t> encode(std::string_view text, bool addBos = false,
                                     bool addEos = false) const override;
    // Byte-level pieces are turned back into their bytes; the result is not checked for valid UTF-8.
    std::string decode(const std::vector<std::int32_t>& ids) const override;
    std::int32_t vocabSize() const override { return static_cast<std::int32_t>(pieces_.size()); }
    std::int32_t bosId() const override { return config_.bosId; }
    std::int32_t eosId() const override { return config_.eosId; }
    std::string piece(std::int32_t id) const override;
    std::string kind() const override { return "hf-bpe"; }

    // What the tokenizer was built from (vocabulary, merges, added tokens, pre-tokenizer).
    const HfTokenizerJson& config() const { return config_; }

private:
    using WordCache = std::unordered_map<std::string, std::vector<std::int32_t>>;

    void encodeSegment(std::string_view segment, std::vector<std::int32_t>& ids, WordCache& cache) const;
    void encodeWord(std::string_view bytes, std::vector<std::int32_t>& ids) const;

    HfTokenizerJson config_;
    std::string fileName_;
    std::vector<std::optional<std::string>> pieces_;  // by id: vocabulary entry or added-token content
    std::vector<std::optional<std::string>> decoded_; // by id: the bytes decode() emits
    std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_; // (left, right) -> rank, id
    std::array<std::int32_t, 256> byteIds_{};
    PrefixMatcher addedMatcher_;
    std::unordered_map<std::string, std::size_t> addedByContent_; // index into config_.addedTokens
    ByteLevelAlphabet alphabet_;
};

} // namespace qpruner
