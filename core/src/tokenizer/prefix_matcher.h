// Longest-prefix matching against a small set of literal strings: SentencePiece's user-defined symbols and
// Hugging Face added tokens, which must be recognised in the input before any other splitting.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

class PrefixMatcher {
public:
    PrefixMatcher() = default;
    explicit PrefixMatcher(const std::vector<std::string>& words);

    bool empty() const { return count_ == 0; }

    // Length of the longest word that `text` starts with, 0 when none does.
    std::size_t longestMatch(std::string_view text) const;

private:
    // Words bucketed by first byte, longest first, so a lookup only tries plausible candidates.
    std::array<std::vector<std::string>, 256> byFirstByte_;
    std::size_t count_ = 0;
};

} // namespace qpruner
