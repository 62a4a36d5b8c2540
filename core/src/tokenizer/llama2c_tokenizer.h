// Tokenizer for llama2.c's tokenizer.bin: a flat list of (score, bytes) entries whose ids are their
// positions. Encoding reproduces run.c encode() exactly (no normalization, a " " dummy prefix, byte tokens
// at id = byte + 3, greedy best-score merges), but with a priority queue instead of its O(n^2) rescans.
#pragma once

#include "qpruner/tokenizer.h"
#include "tokenizer/piece_table.h"

#include <memory>

namespace qpruner {

class Llama2cTokenizer final : public Tokenizer {
public:
    // Parses the bytes of a tokenizer.bin; `fileName` is used in error messages. Throws FileError when an
    // entry runs past the end of the data, FormatError when the content is not a llama2.c vocabulary.
    Llama2cTokenizer(std::string_view bytes, std::string fileName);
    Llama2cTokenizer(const Llama2cTokenizer&) = delete;
    Llama2cTokenizer& operator=(const Llama2cTokenizer&) = delete;

    static std::unique_ptr<Llama2cTokenizer> fromFile(const std::filesystem::path& path);

    std::vector<std::int32_t> encode(std::string_view text, bool addBos = false,
                                     bool addEos = false) const override;
    std::string decode(const std::vector<std::int32_t>& ids) const override;
    std::int32_t vocabSize() const override { return static_cast<std::int32_t>(vocab_.size()); }
    std::int32_t bosId() const override { return 1; }
    std::int32_t eosId() const override { return 2; }
    std::string piece(std::int32_t id) const override;
    std::string kind() const override { return "llama2c"; }

    std::int32_t maxTokenLength() const { return maxTokenLength_; }
    // The file's merge score of entry `id` (0 <= id < vocabSize()).
    float score(std::int32_t id) const { return scores_[static_cast<std::size_t>(id)]; }

private:
    std::int32_t lookup(std::string_view text) const;

    std::string fileName_;
    std::int32_t maxTokenLength_ = 0;
    std::vector<std::string> vocab_;
    std::vector<float> scores_;
    PieceTable ids_;
    std::vector<bool> extendable_; // by id: whether the entry is a proper prefix or suffix of another
    std::int32_t dummyPrefixId_ = -1;
};

} // namespace qpruner
