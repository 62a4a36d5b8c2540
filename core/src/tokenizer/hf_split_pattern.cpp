// Hand-written GPT-2 / Llama-3 pre-tokenizer regexes (see hf_split_pattern.h). matchAt() tries the
// alternatives in the pattern's order and returns the length (in characters) of the first that matches.
#include "tokenizer/hf_split_pattern.h"

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

#include <cstdint>

namespace qpruner {

namespace {

constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum : std::uint8_t { kLetter = 1, kNumber = 2, kSpace = 4, kNewline = 8 }; // kNewline: \r or \n

} // namespace

struct HfSplitPattern::Char {
    std::size_t offset;
    char32_t cp;
    std::uint8_t cls;

    bool is(std::uint8_t c) const { return (cls & c) != 0; }
    bool other() const { return (cls & (kLetter | kNumber | kSpace)) == 0; } // [^\s\p{L}\p{N}]
};

std::optional<HfSplitPattern> HfSplitPattern::fromRegex(std::string_view regex)
{
    if (regex == kGpt2Regex)
        return gpt2();
    if (regex == kLlama3Regex)
        return llama3();
    if (regex == kQwen2Regex)
        return qwen2();
    return std::nullopt;
}

HfSplitPattern HfSplitPattern::gpt2() { return HfSplitPattern(Family::Gpt2, 0, kGpt2Regex); }

HfSplitPattern HfSplitPattern::llama3() { return HfSplitPattern(Family::Llama3, 3, kLlama3Regex); }

HfSplitPattern HfSplitPattern::qwen2() { return HfSplitPattern(Family::Llama3, 1, kQwen2Regex); }

std::size_t HfSplitPattern::matchContraction(const std::vector<Char>& chars, std::size_t i) const
{
    if (chars[i].cp != '\'')
        return 0;
    const bool fold = family_ == Family::Llama3;
    auto at = [&](std::size_t k, char lower) {
        if (i + k >= chars.size())
            return false;
        const char32_t c = chars[i + k].cp;
        if (c == static_cast<char32_t>(lower))
            return true;
        if (!fold)
            return false;
        // Unicode simple case folding: the uppercase letter, and U+017F LONG S for 's'.
        return c == static_cast<char32_t>(lower - 'a' + 'A') || (lower == 's' && c == 0x17F);
    };
    // Alternatives in the pattern's order: 's|'t|'re|'ve|'m|'ll|'d
    if (at(1, 's') || at(1, 't') || at(1, 'm') || at(1, 'd'))
        return 2;
    if ((at(1, 'r') && at(2, 'e')) || (at(1, 'v') && at(2, 'e')) || (at(1, 'l') && at(2, 'l')))
        return 3;
    return 0;
}

std::size_t HfSplitPattern::matchAt(const std::vector<Char>& chars, std::size_t i) const
{
    const std::size_t n = chars.size();
    auto run = [&](std::size_t from, auto pred) {
        std::size_t j = from;
        while (j < n && pred(chars[j]))
            ++j;
        return j - from;
    };
    auto letter = [](const Char& c) { return c.is(kLetter); };
    auto number = [](const Char& c) { return c.is(kNumber); };
    auto other = [](const Char& c) { return c.other(); };
    auto space = [](const Char& c) { return c.is(kSpace); };
    auto newline = [](const Char& c) { return c.is(kNewline); };
    const bool nextExists = i + 1 < n;

    if (const std::size_t k = matchContraction(chars, i))
        return k;

    if (family_ == Family::Gpt2) {
        // ` ?X+` for X in \p{L}, \p{N}, [^\s\p{L}\p{N}]: the optional space only if X follows it.
        for (const auto& cls : {+letter, +number, +other}) {
            if (chars[i].cp == ' ' && nextExists && cls(chars[i + 1]))
                return 1 + run(i + 1, cls);
            if (cls(chars[i]))
                return run(i, cls);
        }
    } else {
        // [^\r\n\p{L}\p{N}]?\p{L}+
        const Char& c = chars[i];
        if (!c.is(kNewline | kLetter | kNumber) && nextExists && letter(chars[i + 1]))
            return 1 + run(i + 1, letter);
        if (letter(c))
            return run(i, letter);
        // \p{N}{1,3}
        if (number(c)) {
            const std::size_t k = run(i, number);
            return maxDigits_ > 0 && k > static_cast<std::size_t>(maxDigits_) ? maxDigits_ : k;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        std::size_t j = i;
        if (c.cp == ' ' && nextExists && other(chars[i + 1]))
            ++j;
        if (other(chars[j])) {
            j += run(j, other);
            j += run(j, newline);
            return j - i;
        }
        // \s*[\r\n]+ : up to the last \r or \n inside the whitespace run
        if (space(c)) {
            const std::size_t k = run(i, space);
            for (std::size_t p = i + k; p > i; --p)
                if (newline(chars[p - 1]))
                    return p - i;
        }
    }
    // \s+(?!\S) then \s+
    const std::size_t k = run(i, space);
    if (k == 0)
        return 1; // unreachable: every character is a letter, number, space or other
    if (i + k == n || k == 1)
        return k;
    return k - 1;
}

std::vector<std::string_view> HfSplitPattern::split(std::string_view text) const
{
    std::vector<Char> chars;
    chars.reserve(text.size());
    for (std::size_t pos = 0; pos < text.size();) {
        const Utf8Char u = decodeUtf8(text.substr(pos));
        std::uint8_t cls = 0;
        if (u.valid) {
            if (unicode::isLetter(u.codepoint))
                cls |= kLetter;
            else if (unicode::isNumber(u.codepoint))
                cls |= kNumber;
            else if (unicode::isWhitespace(u.codepoint))
                cls |= kSpace;
            if (u.codepoint == '\r' || u.codepoint == '\n')
                cls |= kNewline;
        }
        chars.push_back({pos, u.valid ? u.codepoint : 0xFFFFFFFF, cls});
        pos += u.length;
    }
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < chars.size();) {
        const std::size_t k = matchAt(chars, i);
        const std::size_t begin = chars[i].offset;
        const std::size_t end = i + k < chars.size() ? chars[i + k].offset : text.size();
        pieces.push_back(text.substr(begin, end - begin));
        i += k;
    }
    return pieces;
}

} // namespace qpruner
