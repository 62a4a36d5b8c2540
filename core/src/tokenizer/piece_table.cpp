// Open-addressing vocabulary table (see piece_table.h): linear probing, at most half full, 32-bit hashes
// stored in the slots so that most probes never touch the strings.
#include "tokenizer/piece_table.h"

namespace qpruner {

std::uint32_t PieceTable::hashOf(std::string_view text)
{
    std::uint64_t h = 0xcbf29ce484222325ull; // FNV-1a, then a final avalanche for the low bits
    for (const char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return static_cast<std::uint32_t>(h);
}

void PieceTable::rehash(std::size_t slotCount)
{
    slots_.assign(slotCount, Slot{});
    const std::size_t mask = slotCount - 1;
    for (std::size_t e = 0; e < entries_.size(); ++e) {
        const std::uint32_t h = hashOf(entries_[e].text);
        std::size_t i = h & mask;
        while (slots_[i].entry != kEmpty)
            i = (i + 1) & mask;
        slots_[i] = {h, static_cast<std::uint32_t>(e)};
    }
}

bool PieceTable::insert(std::string_view text, std::int32_t id)
{
    if (find(text) >= 0)
        return false;
    entries_.push_back({text, id});
    if (entries_.size() * 2 > slots_.size()) {
        rehash(slots_.empty() ? 64 : slots_.size() * 2);
        return true;
    }
    const std::uint32_t h = hashOf(text);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i].entry != kEmpty)
        i = (i + 1) & mask;
    slots_[i] = {h, static_cast<std::uint32_t>(entries_.size() - 1)};
    return true;
}

std::int32_t PieceTable::find(std::string_view text) const
{
    if (slots_.empty())
        return -1;
    const std::uint32_t h = hashOf(text);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const Slot& s = slots_[i];
        if (s.entry == kEmpty)
            return -1;
        if (s.hash == h && entries_[s.entry].text == text)
            return entries_[s.entry].id;
    }
}

} // namespace qpruner
