// tokenizer.json normalizers (see hf_normalizer.h). Unicode normalization and case mapping use ICU; ASCII text,
// which every normalization form leaves as it is, skips ICU entirely.
#include "tokenizer/hf_normalizer.h"

#include "qpruner/error.h"
#include "tokenizer/hf_component.h"
#include "tokenizer/hf_regex.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

#include <nlohmann/json.hpp>
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

namespace qpruner {

namespace {

using nlohmann::json;


bool isAscii(std::string_view text)
{
    for (const char c : text)
        if (static_cast<unsigned char>(c) >= 0x80)
            return false;
    return true;
}


std::string toUtf8(std::u16string_view text)
{
    std::string out(text.size() * 3 + 1, '\0');
    int32_t length = 0;
    UErrorCode status = U_ZERO_ERROR;
    u_strToUTF8WithSub(out.data(), static_cast<int32_t>(out.size()), &length, text.data(),
                       static_cast<int32_t>(text.size()), 0xFFFD, nullptr, &status);
    if (U_FAILURE(status))
        throw FormatError(std::string("cannot convert text to UTF-8: ") + u_errorName(status));
    out.resize(static_cast<std::size_t>(length));
    return out;
}

std::string unicodeForm(std::string_view text, HfNormalizer::Kind kind)
{
    if (isAscii(text))
        return std::string(text);
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2* n = nullptr;
    switch (kind) {
    case HfNormalizer::Kind::Nfc: n = unorm2_getNFCInstance(&status); break;
    case HfNormalizer::Kind::Nfd: n = unorm2_getNFDInstance(&status); break;
    case HfNormalizer::Kind::Nfkc: n = unorm2_getNFKCInstance(&status); break;
    default: n = unorm2_getNFKDInstance(&status); break;
    }
    const std::u16string in = toUtf16(text);
    std::u16string out(in.size() * 3 + 16, u'\0');
    int32_t length = n ? unorm2_normalize(n, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                          static_cast<int32_t>(out.size()), &status)
                       : 0;
    if (status == U_BUFFER_OVERFLOW_ERROR) {
        out.resize(static_cast<std::size_t>(length));
        status = U_ZERO_ERROR;
        length = unorm2_normalize(n, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                  static_cast<int32_t>(out.size()), &status);
    }
    if (U_FAILURE(status))
        throw FormatError(std::string("Unicode normalization failed: ") + u_errorName(status));
    return toUtf8(std::u16string_view(out.data(), static_cast<std::size_t>(length)));
}

// Each character lower-cased on its own (Rust's char::to_lowercase: full mappings, no context).
std::string lowercase(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x80) {
            out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
            ++i;
            continue;
        }
        const Utf8Char c = decodeUtf8(text.substr(i));
        i += c.length;
        UChar in[2];
        int32_t inLength = 0;
        U16_APPEND_UNSAFE(in, inLength, static_cast<UChar32>(c.codepoint));
        UChar lower[8];
        UErrorCode status = U_ZERO_ERROR;
        const int32_t n = u_strToLower(lower, 8, in, inLength, "", &status);
        if (U_FAILURE(status))
            out += toUtf8(std::u16string_view(reinterpret_cast<const char16_t*>(in), static_cast<std::size_t>(inLength)));
        else
            out += toUtf8(std::u16string_view(reinterpret_cast<const char16_t*>(lower), static_cast<std::size_t>(n)));
    }
    return out;
}

// Drops non-spacing marks (Rust's is_combining_mark).
std::string stripAccents(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const Utf8Char c = decodeUtf8(text.substr(i));
        if (!(c.valid && u_charType(static_cast<UChar32>(c.codepoint)) == U_NON_SPACING_MARK))
            out.append(text.substr(i, c.length));
        i += c.length;
    }
    return out;
}

std::string strip(std::string_view text, bool left, bool right)
{
    if (left) {
        while (!text.empty()) {
            const Utf8Char c = decodeUtf8(text);
            if (!c.valid || !unicode::isWhitespace(c.codepoint))
                break;
            text.remove_prefix(c.length);
        }
    }
    if (right) {
        while (!text.empty()) {
            std::size_t start = text.size() - 1;
            while (start > 0 && text.size() - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
                --start;
            const Utf8Char c = decodeUtf8(text.substr(start));
            if (!c.valid || c.length != text.size() - start || !unicode::isWhitespace(c.codepoint))
                break;
            text.remove_suffix(c.length);
        }
    }
    return std::string(text);
}

std::string replace(std::string_view text, const HfNormalizer::Step& step)
{
    std::string out;
    std::size_t last = 0;
    if (step.regex) {
        for (const auto& [begin, end] : step.regex->findAll(text)) {
            out.append(text.substr(last, begin - last));
            out += step.content;
            last = end;
        }
    } else {
        for (std::size_t hit; (hit = text.find(step.text, last)) != std::string_view::npos;) {
            out.append(text.substr(last, hit - last));
            out += step.content;
            last = hit + step.text.size();
        }
    }
    out.append(text.substr(last));
    return out;
}

std::string base64Decode(std::string_view text, const std::string& where)
{
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
        return -1;
    };
    std::string out;
    std::uint32_t bits = 0;
    int count = 0;
    for (const char c : text) {
        if (c == '=')
            break;
        const int v = value(c);
        if (v < 0)
            throw FormatError(where + ": precompiled_charsmap is not base64");
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++count == 4) {
            out += static_cast<char>((bits >> 16) & 0xFF);
            out += static_cast<char>((bits >> 8) & 0xFF);
            out += static_cast<char>(bits & 0xFF);
            bits = 0;
            count = 0;
        }
    }
    if (count == 2) {
        out += static_cast<char>((bits >> 4) & 0xFF);
    } else if (count == 3) {
        out += static_cast<char>((bits >> 10) & 0xFF);
        out += static_cast<char>((bits >> 2) & 0xFF);
    } else if (count == 1) {
        throw FormatError(where + ": precompiled_charsmap is not base64");
    }
    return out;
}

// The Precompiled normalizer: each extended grapheme cluster shorter than 6 bytes that starts with a rule's key
// becomes that (shortest) rule's replacement; otherwise each character that starts with a rule's key does
// (tokenizers' normalizers/precompiled.rs).
std::string precompiled(std::string_view text, const PrecompiledCharsMap& map)
{
    const std::u16string text16 = toUtf16(text);
    // The UTF-8 offset of each UTF-16 unit of the (U+FFFD-substituted) text.
    const std::string utf8 = toUtf8(text16);
    std::vector<std::size_t> offsets;
    offsets.reserve(text16.size() + 1);
    for (std::size_t i = 0, byte = 0; i < text16.size(); ++i) {
        offsets.push_back(byte);
        const char16_t u = text16[i];
        if (U16_IS_LEAD(u) && i + 1 < text16.size() && U16_IS_TRAIL(text16[i + 1])) {
            offsets.push_back(byte);
            ++i;
            byte += 4;
        } else {
            byte += u < 0x80 ? 1 : u < 0x800 ? 2 : 3;
        }
    }
    offsets.push_back(utf8.size());
    UErrorCode status = U_ZERO_ERROR;
    UBreakIterator* it = ubrk_open(UBRK_CHARACTER, "", reinterpret_cast<const UChar*>(text16.data()),
                                   static_cast<int32_t>(text16.size()), &status);
    if (U_FAILURE(status))
        throw FormatError(std::string("cannot find grapheme clusters: ") + u_errorName(status));
    std::string out;
    out.reserve(utf8.size());
    const std::string_view all(utf8);
    for (int32_t start = ubrk_first(it), end = ubrk_next(it); end != UBRK_DONE; start = end, end = ubrk_next(it)) {
        const std::string_view grapheme = all.substr(offsets[static_cast<std::size_t>(start)],
                                                     offsets[static_cast<std::size_t>(end)] -
                                                         offsets[static_cast<std::size_t>(start)]);
        if (grapheme.size() < 6)
            if (const auto m = map.shortestPrefix(grapheme)) {
                out += m->replacement;
                continue;
            }
        for (std::size_t i = 0; i < grapheme.size();) {
            const std::size_t length = decodeUtf8(grapheme.substr(i)).length;
            const std::string_view c = grapheme.substr(i, length);
            if (const auto m = map.shortestPrefix(c))
                out += m->replacement;
            else
                out += c;
            i += length;
        }
    }
    ubrk_close(it);
    return out;
}

} // namespace

HfNormalizer HfNormalizer::parse(const json& config, const std::string& where)
{
    HfNormalizer n;
    forEachHfComponent(config, "normalizers", where,
                       [&](const json& c, const std::string& type) { n.addStep(c, type, where); });
    return n;
}

void HfNormalizer::addStep(const json& config, const std::string& type, const std::string& where)
{
    Step step{};
    if (type == "NFC") {
        step.kind = Kind::Nfc;
    } else if (type == "NFD") {
        step.kind = Kind::Nfd;
    } else if (type == "NFKC") {
        step.kind = Kind::Nfkc;
    } else if (type == "NFKD") {
        step.kind = Kind::Nfkd;
    } else if (type == "Lowercase") {
        step.kind = Kind::Lowercase;
    } else if (type == "StripAccents") {
        step.kind = Kind::StripAccents;
    } else if (type == "Strip") {
        step.kind = Kind::Strip;
        step.left = config.value("strip_left", true);
        step.right = config.value("strip_right", true);
    } else if (type == "Prepend") {
        step.kind = Kind::Prepend;
        step.text = config.at("prepend").get<std::string>();
    } else if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
    } else if (type == "Precompiled") {
        step.kind = Kind::Precompiled;
        const auto it = config.find("precompiled_charsmap");
        if (it == config.end() || it->is_null() || it->get<std::string>().empty())
            return; // no map: nothing to do
        step.charsMap = std::make_shared<PrecompiledCharsMap>(base64Decode(it->get<std::string>(), where + ": Precompiled"),
                                                              where + ": Precompiled");
    } else if (type == "Replace") {
        step.kind = Kind::Replace;
        step.content = config.at("content").get<std::string>();
        const json& pattern = config.at("pattern");
        if (pattern.contains("Regex")) {
            step.regex = std::make_shared<HfRegex>(pattern["Regex"].get<std::string>(), where + ": Replace");
        } else if (pattern.contains("String")) {
            step.text = pattern["String"].get<std::string>();
            if (step.text.empty())
                return; // replacing the empty string changes nothing in tokenizers
        } else {
            throw FormatError(where + ": Replace pattern is neither String nor Regex");
        }
    } else {
        throw FormatError(where + " type '" + type +
                          "' is not supported (only Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, "
                          "Replace, Prepend, ByteLevel, Precompiled)");
    }
    steps_.push_back(std::move(step));
}

std::string HfNormalizer::normalize(std::string_view input) const
{
    std::string text(input);
    for (const Step& step : steps_) {
        switch (step.kind) {
        case Kind::Nfc:
        case Kind::Nfd:
        case Kind::Nfkc:
        case Kind::Nfkd: text = unicodeForm(text, step.kind); break;
        case Kind::Lowercase: text = lowercase(text); break;
        case Kind::StripAccents:
            if (!isAscii(text))
                text = stripAccents(text);
            break;
        case Kind::Strip: text = strip(text, step.left, step.right); break;
        case Kind::Replace: text = replace(text, step); break;
        case Kind::Prepend:
            if (!text.empty())
                text.insert(0, step.text);
            break;
        case Kind::Precompiled: text = precompiled(text, *step.charsMap); break;
        case Kind::ByteLevel: {
            std::string mapped;
            mapped.reserve(text.size() * 2);
            for (const char c : text)
                mapped += byteLevelAlphabet().symbol(static_cast<unsigned char>(c));
            text = std::move(mapped);
            break;
        }
        }
    }
    return text;
}

} // namespace qpruner
