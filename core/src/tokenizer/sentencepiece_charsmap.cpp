// SentencePiece's precompiled character map (see sentencepiece_charsmap.h). The unit layout follows darts-clone's
// DoubleArrayUnit: label in bits 0-7 (bit 31 marks a value unit), has_leaf in bit 8, offset in bits 10-31
// (shifted left by 8 more when bit 9 is set); a value unit holds the value in bits 0-30.
#include "tokenizer/sentencepiece_charsmap.h"

#include "qpruner/error.h"

namespace qpruner {

namespace {

std::uint32_t offsetOf(std::uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }
std::uint32_t labelOf(std::uint32_t unit) { return unit & ((1u << 31) | 0xFFu); }
bool hasLeaf(std::uint32_t unit) { return ((unit >> 8) & 1u) == 1u; }
std::uint32_t valueOf(std::uint32_t unit) { return unit & ((1u << 31) - 1); }

} // namespace

PrecompiledCharsMap::PrecompiledCharsMap(std::string_view blob, const std::string& where)
{
    if (blob.size() < 4)
        throw FormatError(where + ": precompiled_charsmap of " + std::to_string(blob.size()) + " bytes is too short");
    const auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(blob[i])); };
    const std::uint32_t trieSize = byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24;
    if (trieSize >= blob.size() - 4 + 1 || trieSize % 4 != 0 || trieSize == 0)
        throw FormatError(where + ": precompiled_charsmap trie size " + std::to_string(trieSize) +
                          " does not fit its " + std::to_string(blob.size()) + " bytes");
    units_.resize(trieSize / 4);
    for (std::size_t u = 0; u < units_.size(); ++u) {
        const std::size_t at = 4 + 4 * u;
        units_[u] = byte(at) | byte(at + 1) << 8 | byte(at + 2) << 16 | byte(at + 3) << 24;
    }
    normalized_ = std::string(blob.substr(4 + trieSize));
}

std::optional<PrecompiledCharsMap::Match> PrecompiledCharsMap::longestPrefix(std::string_view input) const
{
    return search(input, true);
}

std::optional<PrecompiledCharsMap::Match> PrecompiledCharsMap::shortestPrefix(std::string_view input) const
{
    return search(input, false);
}

std::optional<PrecompiledCharsMap::Match> PrecompiledCharsMap::search(std::string_view input, bool wantLongest) const
{
    // Darts::DoubleArray::commonPrefixSearch, keeping the longest result.
    std::size_t longest = 0;
    std::uint32_t value = 0;
    std::uint32_t id = 0;
    std::uint32_t unit = units_[0];
    id ^= offsetOf(unit);
    for (std::size_t i = 0; i < input.size(); ++i) {
        const auto label = static_cast<std::uint32_t>(static_cast<unsigned char>(input[i]));
        id ^= label;
        if (id >= units_.size())
            break;
        unit = units_[id];
        if (labelOf(unit) != label)
            break;
        id ^= offsetOf(unit);
        if (hasLeaf(unit)) {
            if (id >= units_.size())
                break;
            longest = i + 1;
            value = valueOf(units_[id]);
            if (!wantLongest)
                break;
        }
    }
    if (longest == 0)
        return std::nullopt;
    if (value >= normalized_.size())
        throw FormatError("precompiled_charsmap: replacement offset " + std::to_string(value) + " is past the " +
                          std::to_string(normalized_.size()) + " bytes of replacement strings");
    const std::size_t end = normalized_.find('\0', value);
    return Match{std::string_view(normalized_).substr(value, (end == std::string::npos ? normalized_.size() : end) - value),
                 longest};
}

} // namespace qpruner
