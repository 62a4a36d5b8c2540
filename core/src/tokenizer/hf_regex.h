// Arbitrary pre-tokenizer / normalizer regexes of tokenizer.json files, run with ICU's regex engine over the UTF-8
// text itself (a UTF-8 UText, so match positions are byte offsets). tokenizers compiles these patterns with
// Oniguruma; the two engines agree on the syntax real files use (\p{..}, (?i:..), lookahead, classes), and \s / \S
// are rewritten to the White_Space property, which is what Oniguruma means by them (ICU's \s lacks U+000B, U+0085).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct URegularExpression;

namespace qpruner {

class HfRegex {
public:
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
    std::string pattern_;
    URegularExpression* compiled_ = nullptr;
    mutable std::mutex mutex_; // guards compiled_, which keeps matching state
};

} // namespace qpruner
