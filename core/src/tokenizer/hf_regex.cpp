// ICU-backed regexes for tokenizer.json (see hf_regex.h).
#include "tokenizer/hf_regex.h"

#include "qpruner/error.h"

#include <unicode/uregex.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>

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

struct UTextCloser {
    void operator()(UText* t) const { utext_close(t); }
};

std::vector<std::pair<std::size_t, std::size_t>> matchAll(URegularExpression* re, std::string_view text,
                                                          const std::string& pattern)
{
    std::vector<std::pair<std::size_t, std::size_t>> out;
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<UText, UTextCloser> ut(
        utext_openUTF8(nullptr, text.data(), static_cast<int64_t>(text.size()), &status));
    uregex_setUText(re, ut.get(), &status);
    if (U_FAILURE(status))
        throw FormatError("regex '" + pattern + "': cannot match: " + u_errorName(status));
    const auto size = static_cast<int64_t>(text.size());
    int64_t from = 0;
    while (from <= size && uregex_find64(re, from, &status) && U_SUCCESS(status)) {
        const int64_t begin = uregex_start64(re, 0, &status);
        const int64_t end = uregex_end64(re, 0, &status);
        if (U_FAILURE(status))
            break;
        if (end > begin) {
            out.emplace_back(static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
            from = end;
        } else {
            // Empty match: go on after the next whole character.
            from = end + 1;
            while (from < size && (static_cast<unsigned char>(text[static_cast<std::size_t>(from)]) & 0xC0) == 0x80)
                ++from;
        }
    }
    // Detach the UText before it is closed.
    UErrorCode ignored = U_ZERO_ERROR;
    uregex_setText(re, u"", 0, &ignored);
    if (U_FAILURE(status))
        throw FormatError("regex '" + pattern + "': matching failed: " + u_errorName(status));
    return out;
}

} // namespace

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
}

HfRegex::~HfRegex()
{
    if (compiled_)
        uregex_close(compiled_);
}

std::vector<std::pair<std::size_t, std::size_t>> HfRegex::findAll(std::string_view text) const
{
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

} // namespace qpruner
