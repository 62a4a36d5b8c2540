// Tokenizer for SentencePiece BPE models (.model files), reproducing libsentencepiece's ids exactly:
// normalizer, bpe_model.cc merge order, unused-piece resegmentation and byte fallback.
#pragma once

#include "qpruner/tokenizer.h"
#include "tokenizer/piece_table.h"
#include "tokenizer/prefix_matcher.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/sentencepiece_normalizer.h"

#include <array>
#include <memory>
#include <unordered_set>

namespace qpruner {

class SentencePieceTokenizer final : public Tokenizer {
public:
    // Checks the model as libsentencepiece does on load; throws FormatError naming `fileName` when it is not
    // a BPE model this class can reproduce (unigram, unsupported normalization rule, broken vocabulary).
    SentencePieceTokenizer(SentencePieceModel model, std::string fileName);
    SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
    SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

    static std::unique_ptr<SentencePieceTokenizer> fromFile(const std::filesystem::path& path);

    std::vector<std::int32_t> encode(std::string_view text, bool addBos = false,
                                     bool addEos = false) const override;
    std::string decode(const std::vector<std::int32_t>& ids) const override;
    std::int32_t vocabSize() const override { return static_cast<std::int32_t>(model_.pieces.size()); }
    std::int32_t bosId() const override { return bosId_; }
    std::int32_t eosId() const override { return eosId_; }
    std::string piece(std::int32_t id) const override;
    std::string kind() const override { return "sentencepiece"; }

    // The parsed model (pieces with scores and types, normalizer flags).
    const SentencePieceModel& model() const { return model_; }

    // The model's normalization of `text` (what the BPE merges run on), e.g. for round-trip checks.
    std::string normalize(std::string_view text) const { return normalizer_->normalize(text); }

private:
    std::int32_t pieceToId(std::string_view piece) const;
    std::int32_t checkedSpecialId(std::int32_t id) const;
    // Whether a one-character symbol could ever merge with a neighbour (it starts or ends a longer piece).
    bool isExtendable(std::string_view symbol) const;

    SentencePieceModel model_;
    std::string fileName_;
    // As in model_interface.cc: normal, user-defined and unused pieces take part in merges; the others
    // (unknown, control, byte) are only found by exact lookup.
    PieceTable mergeable_;
    PieceTable reserved_;
    PrefixMatcher userDefined_;
    std::unique_ptr<SentencePieceNormalizer> normalizer_;
    std::array<std::int32_t, 256> byteIds_{};
    std::array<bool, 256> extendableBytes_{};
    std::unordered_set<std::string> extendableChars_;
    // Characters that some mergeable piece has right before a U+2581: before any other character's U+2581 no
    // merge can reach across, so the text is cut there into words that merge independently and are cached.
    std::unordered_set<std::string> beforeSpaceSymbol_;
    std::int32_t unkId_ = -1;
    std::int32_t bosId_ = -1;
    std::int32_t eosId_ = -1;
    bool hasUnused_ = false;
};

} // namespace qpruner
