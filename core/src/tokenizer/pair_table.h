// A flat open-addressing hash table from a pair of token ids to a merge (rank, merged id): BPE encoding looks up
// every adjacent pair, and with hundreds of thousands of merges a node-based std::unordered_map spends most of
// the encoding time on cache misses.
#pragma once

#include <cstdint>
#include <vector>

namespace qpruner {

class PairTable {
public:
    struct Entry {
        std::uint64_t key = kEmpty;
        std::int32_t rank = 0;
        std::int32_t id = 0;
    };

    static std::uint64_t key(std::int32_t left, std::int32_t right)
    {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
    }

    void reserve(std::size_t n)
    {
        std::size_t capacity = 16;
        while (capacity < 2 * n)
            capacity *= 2;
        slots_.assign(capacity, Entry{});
        mask_ = capacity - 1;
        size_ = 0;
    }

    // Inserts or overwrites (later merges of the same pair win, as in tokenizers' map).
    void set(std::int32_t left, std::int32_t right, std::int32_t rank, std::int32_t id)
    {
        if (2 * (size_ + 1) > slots_.size()) {
            const std::vector<Entry> old = std::move(slots_);
            reserve(old.size());
            for (const Entry& e : old)
                if (e.key != kEmpty)
                    slot(e.key) = e, ++size_;
        }
        Entry& e = slot(key(left, right));
        if (e.key == kEmpty)
            ++size_;
        e = {key(left, right), rank, id};
    }

    const Entry* find(std::int32_t left, std::int32_t right) const
    {
        if (slots_.empty())
            return nullptr;
        const std::uint64_t k = key(left, right);
        for (std::size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
            const Entry& e = slots_[i];
            if (e.key == k)
                return &e;
            if (e.key == kEmpty)
                return nullptr;
        }
    }

private:
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0}; // key(-1, -1): ids are never negative
    static std::size_t hash(std::uint64_t k)
    {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        return static_cast<std::size_t>(k);
    }
    Entry& slot(std::uint64_t k)
    {
        std::size_t i = hash(k) & mask_;
        while (slots_[i].key != kEmpty && slots_[i].key != k)
            i = (i + 1) & mask_;
        return slots_[i];
    }

    std::vector<Entry> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

} // namespace qpruner
