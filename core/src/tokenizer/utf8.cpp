// UTF-8 decoding with SentencePiece's rules (see utf8.h).
#include "tokenizer/utf8.h"

namespace qpruner {

namespace {

bool isTrailByte(unsigned char c) { return (c & 0xC0) == 0x80; }

bool isValidCodepoint(char32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

} // namespace

Utf8Char decodeUtf8(std::string_view text)
{
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    Utf8Char out;
    if (n == 0)
        return out;
    if (s[0] < 0x80)
        return {s[0], 1, true};
    if (n >= 2 && (s[0] & 0xE0) == 0xC0) {
        const char32_t cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        if (isTrailByte(s[1]) && cp >= 0x80 && isValidCodepoint(cp))
            return {cp, 2, true};
    } else if (n >= 3 && (s[0] & 0xF0) == 0xE0) {
        const char32_t cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if (isTrailByte(s[1]) && isTrailByte(s[2]) && cp >= 0x800 && isValidCodepoint(cp))
            return {cp, 3, true};
    } else if (n >= 4 && (s[0] & 0xF8) == 0xF0) {
        const char32_t cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                            (s[3] & 0x3Fu);
        if (isTrailByte(s[1]) && isTrailByte(s[2]) && isTrailByte(s[3]) && cp >= 0x10000 &&
            isValidCodepoint(cp))
            return {cp, 4, true};
    }
    return {0xFFFD, 1, false};
}

std::size_t utf8LengthFromLeadByte(unsigned char lead)
{
    static constexpr unsigned char kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLengths[lead >> 4];
}

void appendUtf8(std::string& out, char32_t cp)
{
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace qpruner
