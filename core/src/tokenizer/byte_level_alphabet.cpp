// GPT-2's byte-to-character map (see byte_level_alphabet.h).
#include "tokenizer/byte_level_alphabet.h"

#include "tokenizer/utf8.h"

namespace qpruner {

ByteLevelAlphabet::ByteLevelAlphabet()
{
    byteOfCodepoint_.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are moved to U+0100 and up, in byte order.
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
        const char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
        appendUtf8(symbols_[b], cp);
        byteOfCodepoint_[cp] = static_cast<std::int16_t>(b);
    }
}

std::optional<std::string> ByteLevelAlphabet::bytesOf(std::string_view piece) const
{
    std::string out;
    out.reserve(piece.size());
    while (!piece.empty()) {
        const Utf8Char c = decodeUtf8(piece);
        if (!c.valid || c.codepoint >= byteOfCodepoint_.size() || byteOfCodepoint_[c.codepoint] < 0)
            return std::nullopt;
        out += static_cast<char>(byteOfCodepoint_[c.codepoint]);
        piece.remove_prefix(c.length);
    }
    return out;
}

} // namespace qpruner
