// ICU-backed regexes for tokenizer.json (see hf_regex.h).
#include "tokenizer/hf_regex.h"

#include "qpruner/error.h"

#include "tokenizer/utf8.h"

#include <unicode/uchar.h>
#include <unicode/uregex.h>
#include <unicode/uset.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace qpruner {

namespace {

// \s -> \p{White_Space}, \S -> \P{White_Space}, outside and inside classes; other escapes are kept as written.
std::string toIcuSyntax(std::string_view pattern)
{
    std::string out;
    out.reserve(pattern.size() + 16);
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '\\' || i + 1 == pattern.size()) {
            out += pattern[i];
            continue;
        }
        const char next = pattern[i + 1];
        if (next == 's')
            out += "\\p{White_Space}";
        else if (next == 'S')
            out += "\\P{White_Space}";
        else {
            out += '\\';
            out += next;
        }
        ++i;
    }
    return out;
}

// Matches on UTF-16 (ICU's fast path for text in memory), with each UTF-16 unit's byte offset in the UTF-8 text.
// A malformed byte reads as U+FFFD, one per byte (as decodeUtf8 takes it).
std::vector<std::pair<std::size_t, std::size_t>> matchAll(URegularExpression* re, std::string_view text,
                                                          const std::string& pattern)
{
    thread_local std::u16string units;
    thread_local std::vector<std::uint32_t> offsets;
    units.clear();
    offsets.clear();
    units.reserve(text.size() + 1);
    offsets.reserve(text.size() + 1);
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x80) {
            units.push_back(static_cast<char16_t>(b));
            offsets.push_back(static_cast<std::uint32_t>(i));
            ++i;
            continue;
        }
        const Utf8Char c = decodeUtf8(text.substr(i));
        const char32_t cp = c.valid ? c.codepoint : 0xFFFD;
        if (cp >= 0x10000) {
            units.push_back(static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10)));
            offsets.push_back(static_cast<std::uint32_t>(i));
            units.push_back(static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
            offsets.push_back(static_cast<std::uint32_t>(i));
        } else {
            units.push_back(static_cast<char16_t>(cp));
            offsets.push_back(static_cast<std::uint32_t>(i));
        }
        i += c.length;
    }
    offsets.push_back(static_cast<std::uint32_t>(text.size()));

    std::vector<std::pair<std::size_t, std::size_t>> out;
    UErrorCode status = U_ZERO_ERROR;
    uregex_setText(re, units.data(), static_cast<int32_t>(units.size()), &status);
    if (U_FAILURE(status))
        throw FormatError("regex '" + pattern + "': cannot match: " + u_errorName(status));
    const auto size = static_cast<int32_t>(units.size());
    int32_t from = 0;
    while (from <= size && uregex_find(re, from, &status) && U_SUCCESS(status)) {
        const int32_t begin = uregex_start(re, 0, &status);
        const int32_t end = uregex_end(re, 0, &status);
        if (U_FAILURE(status))
            break;
        if (end > begin) {
            out.emplace_back(offsets[static_cast<std::size_t>(begin)], offsets[static_cast<std::size_t>(end)]);
            from = end;
        } else {
            // Empty match: go on after the next whole character.
            from = end + 1;
            if (from < size && U16_IS_TRAIL(units[static_cast<std::size_t>(from)]))
                ++from;
        }
    }
    UErrorCode ignored = U_ZERO_ERROR;
    uregex_setText(re, u"", 0, &ignored);
    if (U_FAILURE(status))
        throw FormatError("regex '" + pattern + "': matching failed: " + u_errorName(status));
    return out;
}


// The UnicodeSet pattern and run limit of a simple pattern, or an empty set pattern when it is not one:
//   \p{Name}{1,k} / \p{Name}+     ->  [\p{Name}], k / 0
//   [literal characters and a-b ranges]+  ->  the class itself, 0
std::pair<std::string, std::size_t> simpleRun(std::string_view pattern)
{
    auto isNameChar = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '='; };
    if (pattern.starts_with("\\p{")) {
        const std::size_t close = pattern.find('}');
        if (close == std::string_view::npos)
            return {};
        const std::string_view name = pattern.substr(3, close - 3);
        if (name.empty() || !std::all_of(name.begin(), name.end(), isNameChar))
            return {};
        const std::string_view rest = pattern.substr(close + 1);
        const std::string set = "[\\p{" + std::string(name) + "}]";
        if (rest == "+")
            return {set, 0};
        if (rest.starts_with("{1,") && rest.ends_with("}") && rest.size() > 4) {
            const std::string_view digits = rest.substr(3, rest.size() - 4);
            if (digits.size() <= 3 && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return {set, static_cast<std::size_t>(std::stoul(std::string(digits)))};
        }
        return {};
    }
    if (pattern.size() < 4 || pattern.front() != '[' || !pattern.ends_with("]+"))
        return {};
    const std::string_view body = pattern.substr(1, pattern.size() - 3);
    if (body.empty() || body.front() == '-' || body.back() == '-')
        return {};
    for (const char c : body) {
        const auto u = static_cast<unsigned char>(c);
        // Only literal characters and ranges: no escapes, negation, nested classes or set operators.
        if (u < 0x80 && !std::isalnum(u) && c != '-')
            return {};
    }
    if (body.find("--") != std::string_view::npos)
        return {};
    return {"[" + std::string(body) + "]", 0};
}

// Character classes for the DeepSeek-V3 word regex.
enum : std::uint8_t {
    kL = 1,        // \p{L}
    kM = 2,        // \p{M}
    kP = 4,        // \p{P}
    kS = 8,        // \p{S}
    kSpace = 16,   // \s (White_Space)
    kCrLf = 32,    // [\r\n]
    kAsciiPunct = 64,
    kAsciiLetter = 128,
};

std::uint8_t classOf(char32_t c)
{
    std::uint8_t k = 0;
    const auto gc = static_cast<std::uint32_t>(U_MASK(u_charType(static_cast<UChar32>(c))));
    if (gc & U_GC_L_MASK)
        k |= kL;
    if (gc & U_GC_M_MASK)
        k |= kM;
    if (gc & U_GC_P_MASK)
        k |= kP;
    if (gc & U_GC_S_MASK)
        k |= kS;
    if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE))
        k |= kSpace;
    if (c == '\r' || c == '\n')
        k |= kCrLf;
    if (c >= 0x21 && c <= 0x7E && !std::isalnum(static_cast<int>(c)))
        k |= kAsciiPunct;
    if (c < 0x80 && std::isalpha(static_cast<int>(c)))
        k |= kAsciiLetter;
    return k;
}

const std::array<std::uint8_t, 128>& asciiClasses()
{
    static const std::array<std::uint8_t, 128> table = [] {
        std::array<std::uint8_t, 128> t{};
        for (char32_t c = 0; c < 128; ++c)
            t[c] = classOf(c);
        return t;
    }();
    return table;
}

} // namespace

const char* const HfRegex::kDeepSeekV3Words =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+"
    "[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

std::vector<std::pair<std::size_t, std::size_t>> HfRegex::findDeepSeekV3Words(std::string_view text)
{
    // The characters with their classes and byte offsets (malformed bytes read as U+FFFD, one per byte).
    thread_local std::vector<std::uint8_t> cls;
    thread_local std::vector<std::uint32_t> at;
    cls.clear();
    at.clear();
    const auto& ascii = asciiClasses();
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        at.push_back(static_cast<std::uint32_t>(i));
        if (b < 0x80) {
            cls.push_back(ascii[b]);
            ++i;
            continue;
        }
        const Utf8Char c = decodeUtf8(text.substr(i));
        cls.push_back(classOf(c.valid ? c.codepoint : 0xFFFD));
        i += c.length;
    }
    const std::size_t n = cls.size();
    at.push_back(static_cast<std::uint32_t>(text.size()));
    auto runOf = [&](std::size_t i, std::uint8_t mask) {
        std::size_t j = i;
        while (j < n && (cls[j] & mask))
            ++j;
        return j;
    };
    // The end of the leftmost alternative matching at i (backtracking as the regex engine does), or i.
    auto matchAt = [&](std::size_t i) -> std::size_t {
        const std::uint8_t c = cls[i];
        // [ASCII punctuation][A-Za-z]+
        if ((c & kAsciiPunct) && i + 1 < n && (cls[i + 1] & kAsciiLetter))
            return runOf(i + 1, kAsciiLetter);
        // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
        if (!(c & (kCrLf | kL | kP | kS)) && i + 1 < n && (cls[i + 1] & (kL | kM)))
            return runOf(i + 1, kL | kM);
        if (c & (kL | kM))
            return runOf(i, kL | kM);
        // ' '?[\p{P}\p{S}]+[\r\n]*
        {
            std::size_t j = i;
            if (text[at[j]] == ' ' && j + 1 < n && (cls[j + 1] & (kP | kS)))
                ++j;
            if (cls[j] & (kP | kS))
                return runOf(runOf(j, kP | kS), kCrLf);
        }
        if (c & kSpace) {
            const std::size_t end = runOf(i, kSpace);
            // \s*[\r\n]+: up to the last CR/LF of the whitespace run
            for (std::size_t k = end; k > i; --k)
                if (cls[k - 1] & kCrLf)
                    return k;
            // \s+(?!\S): the run, less its last character when a non-space follows
            if (end == n)
                return end;
            if (end - i >= 2)
                return end - 1;
            // \s+
            return end;
        }
        return i;
    };
    std::vector<std::pair<std::size_t, std::size_t>> out;
    for (std::size_t i = 0; i < n;) {
        const std::size_t end = matchAt(i);
        if (end > i) {
            out.emplace_back(at[i], at[end]);
            i = end;
        } else {
            ++i;
        }
    }
    return out;
}

HfRegex::HfRegex(std::string_view pattern, const std::string& where) : pattern_(pattern)
{
    const std::string icu = toIcuSyntax(pattern);
    UErrorCode status = U_ZERO_ERROR;
    UParseError parseError{};
    std::u16string utf16(icu.size() + 1, u'\0');
    int32_t length = 0;
    u_strFromUTF8WithSub(utf16.data(), static_cast<int32_t>(utf16.size()), &length, icu.data(),
                         static_cast<int32_t>(icu.size()), 0xFFFD, nullptr, &status);
    if (U_SUCCESS(status))
        compiled_ = uregex_open(utf16.data(), length, 0, &parseError, &status);
    if (U_FAILURE(status) || !compiled_)
        throw FormatError(where + ": regex '" + pattern_ + "' is not valid: " + u_errorName(status) +
                          (parseError.offset >= 0 ? " at offset " + std::to_string(parseError.offset) : ""));
    deepSeekWords_ = pattern_ == kDeepSeekV3Words;
    if (const auto [setPattern, maxRun] = simpleRun(pattern_); !setPattern.empty()) {
        const std::u16string set16 = toUtf16(setPattern);
        UErrorCode setStatus = U_ZERO_ERROR;
        USet* set = uset_openPattern(set16.data(), static_cast<int32_t>(set16.size()), &setStatus);
        if (U_SUCCESS(setStatus) && set) {
            uset_freeze(set);
            runSet_ = set;
            runMax_ = maxRun;
            for (UChar32 c = 0; c < 128; ++c)
                asciiInSet_[c] = uset_contains(set, c);
        } else if (set) {
            uset_close(set);
        }
    }
}

std::vector<std::pair<std::size_t, std::size_t>> HfRegex::findRuns(std::string_view text) const
{
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::size_t start = 0, count = 0;
    bool inRun = false;
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        bool member;
        std::size_t length = 1;
        if (b < 0x80) {
            member = asciiInSet_[b];
        } else {
            const Utf8Char c = decodeUtf8(text.substr(i));
            length = c.length;
            member = uset_contains(runSet_, c.valid ? static_cast<UChar32>(c.codepoint) : 0xFFFD);
        }
        if (member) {
            if (inRun && runMax_ > 0 && count == runMax_) {
                out.emplace_back(start, i);
                inRun = false;
            }
            if (!inRun) {
                inRun = true;
                start = i;
                count = 0;
            }
            ++count;
        } else if (inRun) {
            out.emplace_back(start, i);
            inRun = false;
        }
        i += length;
    }
    if (inRun)
        out.emplace_back(start, text.size());
    return out;
}

HfRegex::~HfRegex()
{
    if (compiled_)
        uregex_close(compiled_);
    if (runSet_)
        uset_close(runSet_);
}

std::vector<std::pair<std::size_t, std::size_t>> HfRegex::findAll(std::string_view text) const
{
    if (runSet_)
        return findRuns(text);
    if (deepSeekWords_)
        return findDeepSeekV3Words(text);
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (lock.owns_lock())
        return matchAll(compiled_, text, pattern_);
    // Another thread is matching: use a private clone rather than wait.
    UErrorCode status = U_ZERO_ERROR;
    URegularExpression* clone = uregex_clone(compiled_, &status);
    if (U_FAILURE(status) || !clone)
        throw FormatError("regex '" + pattern_ + "': cannot clone: " + u_errorName(status));
    try {
        auto out = matchAll(clone, text, pattern_);
        uregex_close(clone);
        return out;
    } catch (...) {
        uregex_close(clone);
        throw;
    }
}

std::u16string toUtf16(std::string_view text)
{
    std::u16string out(text.size() + 1, u'\0');
    int32_t length = 0;
    UErrorCode status = U_ZERO_ERROR;
    u_strFromUTF8WithSub(out.data(), static_cast<int32_t>(out.size()), &length, text.data(),
                         static_cast<int32_t>(text.size()), 0xFFFD, nullptr, &status);
    if (U_FAILURE(status))
        throw FormatError(std::string("cannot convert text to UTF-16: ") + u_errorName(status));
    out.resize(static_cast<std::size_t>(length));
    return out;
}

} // namespace qpruner
