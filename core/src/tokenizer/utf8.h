// UTF-8 decoding with SentencePiece's rules. The tokenizers must treat malformed input byte for byte the way
// the original libraries do, so this is deliberately not a general-purpose (or lenient) decoder.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qpruner {

struct Utf8Char {
    char32_t codepoint = 0; // U+FFFD when the bytes are malformed
    std::size_t length = 1; // bytes consumed, at least 1 (one byte for a malformed sequence)
    bool valid = false;
};

// Decodes the character at the start of `text` (which must not be empty). Overlong forms, surrogates and
// values past U+10FFFF are malformed and consume one byte, exactly as sentencepiece's DecodeUTF8 does.
Utf8Char decodeUtf8(std::string_view text);

// Length of the character that `lead` starts, judged by the lead byte alone (SentencePiece's OneCharLen:
// a stray continuation byte counts as one byte).
std::size_t utf8LengthFromLeadByte(unsigned char lead);

void appendUtf8(std::string& out, char32_t codepoint);

} // namespace qpruner
