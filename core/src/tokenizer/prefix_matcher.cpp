// Longest-prefix matching against literal strings (see prefix_matcher.h).
#include "tokenizer/prefix_matcher.h"

#include <algorithm>

namespace qpruner {

PrefixMatcher::PrefixMatcher(const std::vector<std::string>& words)
{
    for (const std::string& w : words) {
        if (w.empty())
            continue;
        byFirstByte_[static_cast<unsigned char>(w[0])].push_back(w);
        ++count_;
    }
    for (auto& bucket : byFirstByte_)
        std::stable_sort(bucket.begin(), bucket.end(),
                         [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::size_t PrefixMatcher::longestMatch(std::string_view text) const
{
    if (count_ == 0 || text.empty())
        return 0;
    for (const std::string& w : byFirstByte_[static_cast<unsigned char>(text[0])])
        if (text.starts_with(w))
            return w.size();
    return 0;
}

} // namespace qpruner
