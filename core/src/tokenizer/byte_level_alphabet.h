// GPT-2's reversible byte-to-character map ("bytes_to_unicode"): byte-level BPE vocabularies spell every
// byte as a printable character, e.g. the space 0x20 as U+0120 'Ġ'.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qpruner {

class ByteLevelAlphabet {
public:
    ByteLevelAlphabet();

    // The UTF-8 spelling of byte `b`'s character.
    const std::string& symbol(unsigned char b) const { return symbols_[b]; }

    // The bytes a vocabulary entry stands for, or nullopt when it has a character outside the alphabet.
    std::optional<std::string> bytesOf(std::string_view piece) const;

private:
    std::array<std::string, 256> symbols_;
    std::array<std::int16_t, 0x144> byteOfCodepoint_{}; // -1 for code points that spell no byte
};

} // namespace qpruner
