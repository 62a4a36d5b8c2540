// SentencePiece's precompiled character map (NormalizerSpec.precompiled_charsmap, e.g. the "nmt_nfkc" rule):
// a darts-clone double-array trie over UTF-8 byte strings whose values index NUL-terminated replacement strings,
// laid out as <uint32 LE trie size><trie units (uint32 LE)><replacement strings> (normalizer.cc,
// DecodePrecompiledCharsMap). The longest rule matching a prefix of the input wins, as in
// Normalizer::NormalizePrefix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

class PrecompiledCharsMap {
public:
    // Parses the blob; throws FormatError naming `where` when its sizes are inconsistent.
    PrecompiledCharsMap(std::string_view blob, const std::string& where);

    struct Match {
        std::string_view replacement; // what the matched bytes become (may be empty: the text is dropped)
        std::size_t length = 0;       // bytes of input matched
    };
    // The longest rule matching a prefix of `input`, or nullopt when none does.
    std::optional<Match> longestPrefix(std::string_view input) const;
    // The shortest rule matching a prefix of `input` (what the Rust tokenizers' Precompiled normalizer applies to
    // a whole grapheme), or nullopt.
    std::optional<Match> shortestPrefix(std::string_view input) const;

private:
    std::optional<Match> search(std::string_view input, bool longest) const;

    std::vector<std::uint32_t> units_;
    std::string normalized_;
};

} // namespace qpruner
