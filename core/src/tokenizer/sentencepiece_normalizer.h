// SentencePiece's text normalizer: the precompiled character map when the model has one (e.g. "nmt_nfkc"; none
// for the "identity" rule), whitespace handling, dummy prefix and escaping of spaces to U+2581, following
// normalizer.cc exactly, including its replacement of malformed UTF-8 bytes by U+FFFD.
#pragma once

#include "tokenizer/prefix_matcher.h"
#include "tokenizer/sentencepiece_charsmap.h"

#include <optional>

#include <string>
#include <string_view>

namespace qpruner {

struct SentencePieceModel;

class SentencePieceNormalizer {
public:
    // `userDefined` (may be empty) holds the user-defined symbols, which pass through unchanged. `fileName`
    // names the model in errors about its character map.
    SentencePieceNormalizer(const SentencePieceModel& model, const PrefixMatcher& userDefined,
                            const std::string& fileName = "SentencePiece model");

    std::string normalize(std::string_view input) const;

private:
    // The next unit of input: a user-defined symbol, the replacement of the longest character-map rule, one
    // valid UTF-8 character, or U+FFFD for one bad byte.
    std::string_view nextUnit(std::string_view input, std::size_t* consumed) const;

    const PrefixMatcher& userDefined_;
    std::optional<PrecompiledCharsMap> charsMap_;
    bool addDummyPrefix_;
    bool removeExtraWhitespaces_;
    bool escapeWhitespaces_;
};

} // namespace qpruner
