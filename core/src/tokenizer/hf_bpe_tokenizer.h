// Tokenizer for Hugging Face tokenizer.json files with a BPE model, as the Rust `tokenizers` library encodes:
// added tokens that are not normalized are found first in the input; each stretch between them is normalized,
// normalized added tokens are found in it, the rest is pre-tokenized and each piece is BPE-encoded by merge rank.
// Two kinds of BPE model: byte-level (GPT-2, Llama-3, Qwen2, DeepSeek-V3: the pre-tokenizer ends with ByteLevel,
// words are bytes spelled with the GPT-2 byte alphabet) and SentencePiece-style (Mistral, Gemma: words are
// characters, with byte_fallback to <0xNN> pieces or unk_token for characters outside the vocabulary).
#pragma once

#include "qpruner/tokenizer.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/pair_table.h"
#include "tokenizer/prefix_matcher.h"

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

namespace qpruner {

class HfBpeTokenizer final : public Tokenizer {
public:
    // `config` comes from HfTokenizerJson::parse; `fileName` is used in error messages. Throws FormatError
    // when a byte-level vocabulary cannot spell every byte.
    HfBpeTokenizer(HfTokenizerJson config, std::string fileName);
    HfBpeTokenizer(const HfBpeTokenizer&) = delete;
    HfBpeTokenizer& operator=(const HfBpeTokenizer&) = delete;

    // Reads `path` and, when present, tokenizer_config.json in the same directory.
    static std::unique_ptr<HfBpeTokenizer> fromFile(const std::filesystem::path& path);

    std::vector<std::int32_t> encode(std::string_view text, bool addBos = false,
                                     bool addEos = false) const override;
    // The file's decoder applied to the pieces of `ids` (BOS/EOS dropped); with no decoder, byte-level pieces are
    // turned back into their bytes and other pieces joined with spaces, as tokenizers does. The result is not
    // checked for valid UTF-8.
    std::string decode(const std::vector<std::int32_t>& ids) const override;
    std::int32_t vocabSize() const override { return static_cast<std::int32_t>(pieces_.size()); }
    std::int32_t bosId() const override { return config_.bosId; }
    std::int32_t eosId() const override { return config_.eosId; }
    std::string piece(std::int32_t id) const override;
    // "hf-bpe" for both kinds of BPE model (see byteLevel()).
    std::string kind() const override { return "hf-bpe"; }

    // What the tokenizer was built from (vocabulary, merges, added tokens, normalizer, pre-tokenizer, decoder).
    const HfTokenizerJson& config() const { return config_; }
    bool byteLevel() const { return byteLevel_; }

private:
    using WordCache = std::unordered_map<std::string, std::vector<std::int32_t>>;
    struct AddedSet {
        PrefixMatcher matcher;
        std::unordered_map<std::string, std::size_t> byContent; // matched text -> index into config_.addedTokens
    };

    // Splits `text` at the added tokens of `set` (leftmost longest, honouring lstrip / rstrip / single_word):
    // `onText(stretch, offset)` for the text between them, `onToken(id)` for each token.
    void splitAdded(std::string_view text, const AddedSet& set,
                    const std::function<void(std::string_view, std::size_t)>& onText,
                    const std::function<void(std::int32_t)>& onToken) const;
    void encodeStretch(std::string_view stretch, bool atStart, std::vector<std::int32_t>& ids, WordCache& cache) const;
    void encodeNormalized(std::string_view text, bool atStart, std::vector<std::int32_t>& ids, WordCache& cache) const;
    void encodeWord(std::string_view word, std::vector<std::int32_t>& ids) const;
    void spellChars(std::string_view word, std::vector<std::int32_t>& ids, std::vector<std::size_t>& lengths) const;

    HfTokenizerJson config_;
    std::string fileName_;
    bool byteLevel_ = false;
    std::vector<std::optional<std::string>> pieces_;  // by id: vocabulary entry or added-token content
    std::vector<std::optional<std::string>> decoded_; // by id, byte-level decoding only: the bytes decode() emits
    PairTable merges_; // (left, right) -> rank, merged id
    std::vector<bool> inMerges_; // by id: the piece is the left or right side of some merge
    std::array<std::int32_t, 256> byteIds_{};         // byte-level: the id of each byte's symbol
    std::array<std::int32_t, 256> byteFallbackIds_{}; // <0xNN> pieces, -1 where missing
    std::array<std::int32_t, 128> asciiIds_{};        // character-level: single ASCII characters, -1 where missing
    std::unordered_map<char32_t, std::int32_t> charIds_; // character-level: other single characters
    std::int32_t unkId_ = -1;
    // Character-level: a word may be cut before a U+2581 whose preceding character is none of these (no merge
    // product has that character followed by U+2581), so the merges on either side are independent and the
    // parts can be cached like pre-tokenized words. Off (empty optional) where it does not apply.
    std::optional<std::unordered_map<char32_t, bool>> beforeMetaspace_;
    AddedSet rawAdded_;        // matched in the input
    AddedSet normalizedAdded_; // matched in the normalized text
    ByteLevelAlphabet alphabet_;
};

} // namespace qpruner
