// An open-addressing hash table from vocabulary strings to ids. BPE encoding does one lookup per candidate
// pair (millions for a 1 MB document); std::unordered_map's node chains made those lookups the bottleneck.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace qpruner {

class PieceTable {
public:
    // Adds `text` -> `id` unless `text` is already present (then returns false). The table keeps a view:
    // `text` must outlive it.
    bool insert(std::string_view text, std::int32_t id);

    // The id of `text`, or -1.
    std::int32_t find(std::string_view text) const;

    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::string_view text;
        std::int32_t id;
    };
    struct Slot {
        std::uint32_t hash = 0;
        std::uint32_t entry = kEmpty; // index into entries_
    };
    static constexpr std::uint32_t kEmpty = 0xFFFFFFFF;

    static std::uint32_t hashOf(std::string_view text);
    void rehash(std::size_t slotCount);

    std::vector<Entry> entries_;
    std::vector<Slot> slots_;
};

} // namespace qpruner
