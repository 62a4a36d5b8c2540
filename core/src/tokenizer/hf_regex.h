// Arbitrary pre-tokenizer / normalizer regexes of tokenizer.json files, run with ICU's regex engine (on a UTF-16
// copy of the text, match positions mapped back to byte offsets of the UTF-8 text). tokenizers compiles these patterns with
// Oniguruma; the two engines agree on the syntax real files use (\p{..}, (?i:..), lookahead, classes), and \s / \S
// are rewritten to the White_Space property, which is what Oniguruma means by them (ICU's \s lacks U+000B, U+0085).
// Two simple shapes skip the regex engine: one property run cut into pieces of at most k characters
// (\p{X}{1,k}, \p{X}+, as DeepSeek-V3's \p{N}{1,3}) and one class of literal characters and ranges repeated
// ([a-z一-龥]+, as DeepSeek-V3's CJK split); both are matched on an ICU UnicodeSet.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct URegularExpression;
struct USet;

namespace qpruner {

// `text` as UTF-16 with malformed bytes as U+FFFD, what the ICU-backed steps (regexes, normalization) work on.
// Throws FormatError when ICU cannot convert it.
std::u16string toUtf16(std::string_view text);

class HfRegex {
public:
    // DeepSeek-V3's word split: [ASCII punctuation][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ |
    // ' '?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
    static const char* const kDeepSeekV3Words;

    // Compiles `pattern`; throws FormatError "<where>: regex '<pattern>' is not valid: <ICU's reason>".
    HfRegex(std::string_view pattern, const std::string& where);
    ~HfRegex();
    HfRegex(const HfRegex&) = delete;
    HfRegex& operator=(const HfRegex&) = delete;

    const std::string& pattern() const { return pattern_; }

    // The byte ranges [begin, end) of the successive non-overlapping matches in `text`, leftmost first, as
    // Oniguruma's search loop finds them (an empty match is skipped and the search goes on one character later).
    // Safe to call from several threads at once.
    std::vector<std::pair<std::size_t, std::size_t>> findAll(std::string_view text) const;

private:
    std::vector<std::pair<std::size_t, std::size_t>> findRuns(std::string_view text) const;
    static std::vector<std::pair<std::size_t, std::size_t>> findDeepSeekV3Words(std::string_view text);

    std::string pattern_;
    URegularExpression* compiled_ = nullptr;
    USet* runSet_ = nullptr;     // the simple shapes: the characters of a run
    std::size_t runMax_ = 0;     // at most this many characters per match, 0: unbounded
    bool asciiInSet_[128] = {};
    bool deepSeekWords_ = false;
    mutable std::mutex mutex_; // guards compiled_, which keeps matching state
};

} // namespace qpruner
