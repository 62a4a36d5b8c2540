// The merge loop shared by the three BPE encoders: a doubly linked list of symbols (slices of one buffer)
// and a priority queue of candidate adjacent pairs, so a whole document is encoded in O(n log n) instead of
// the O(n^2) rescans of llama2.c. The caller decides which pairs may merge and with what priority.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace qpruner {

struct MergeSymbol {
    std::size_t begin = 0;   // slice of the caller's buffer
    std::size_t size = 0;    // 0 once merged into its left neighbour
    std::int32_t id = -1;    // caller's id of the slice (may be -1 when the caller works on text only)
    std::int32_t prev = -1;  // neighbours within the merged span, -1 at its ends
    std::int32_t next = -1;
    bool frozen = false;     // never merged (SentencePiece user-defined symbols)
};

struct MergeChoice {
    double score = 0; // higher merges first; ties go to the leftmost pair
    std::int32_t id = -1;
};

// How a queued candidate is recognised as stale once its neighbours have changed.
enum class StaleCheck {
    BySize,   // SentencePiece: both sides still alive and their sizes add up to the queued size
    ByLookup, // Hugging Face: the left symbol and its current right neighbour still merge into the same id
};

class PairMerger {
public:
    // Merges pairs within `symbols` (in order, covering a stretch of the buffer) until no candidate is left.
    // `find(left, right)` returns the merge of two neighbours or nullopt; it is called in the same order as
    // the reference implementations call their lookups (all initial bigrams left to right, then after each
    // merge the pair on the left of the merged symbol before the one on its right), which matters to
    // callers that record something per lookup. Afterwards the surviving symbols, in order, are those with
    // size > 0. Callers may merge independent stretches separately: symbols that can never merge with any
    // neighbour split a text into stretches whose merges cannot interact, and small queues are much faster.
    template <class FindMerge>
    void merge(std::span<MergeSymbol> symbols, StaleCheck check, FindMerge&& find)
    {
        const auto n = static_cast<std::int32_t>(symbols.size());
        for (std::int32_t i = 0; i < n; ++i) {
            symbols[i].prev = i - 1;
            symbols[i].next = i + 1 < n ? i + 1 : -1;
        }
        queue_.clear();
        auto consider = [&](std::int32_t left, std::int32_t right) {
            if (left < 0 || right < 0 || symbols[left].frozen || symbols[right].frozen)
                return;
            if (const std::optional<MergeChoice> m = find(symbols[left], symbols[right])) {
                const auto size = static_cast<std::uint32_t>(symbols[left].size + symbols[right].size);
                queue_.push_back({m->score, left, right, size, m->id, symbols[left].id, symbols[right].id});
                std::push_heap(queue_.begin(), queue_.end(), Lower{});
            }
        };
        for (std::int32_t i = 1; i < n; ++i)
            consider(i - 1, i);

        while (!queue_.empty()) {
            std::pop_heap(queue_.begin(), queue_.end(), Lower{});
            const Candidate top = queue_.back();
            queue_.pop_back();
            MergeSymbol& left = symbols[top.left];
            std::int32_t rightIndex = top.right;
            if (check == StaleCheck::BySize) {
                const MergeSymbol& right = symbols[rightIndex];
                if (left.size == 0 || right.size == 0 || left.size + right.size != top.size)
                    continue;
            } else {
                if (left.size == 0 || left.next < 0)
                    continue;
                rightIndex = left.next;
                // The same two ids merge the same way: only a changed pair needs a new lookup.
                if (left.id != top.leftId || symbols[rightIndex].id != top.rightId) {
                    const std::optional<MergeChoice> m = find(left, symbols[rightIndex]);
                    if (!m || m->id != top.id)
                        continue;
                }
            }
            MergeSymbol& right = symbols[rightIndex];
            left.size += right.size;
            left.id = top.id;
            left.next = right.next;
            if (right.next >= 0)
                symbols[right.next].prev = top.left;
            right.size = 0;
            consider(left.prev, top.left);
            consider(top.left, left.next);
        }
    }

    // Merges each stretch between barrier symbols separately. A barrier is a symbol that can never take part in
    // a merge (a newline's byte token, say), so the result equals one merge over the whole span, with smaller heaps.
    template <class IsBarrier, class FindMerge>
    void mergeStretches(std::span<MergeSymbol> symbols, StaleCheck check, IsBarrier&& isBarrier, FindMerge&& find)
    {
        std::size_t start = 0;
        for (std::size_t i = 0; i <= symbols.size(); ++i) {
            if (i < symbols.size() && !isBarrier(symbols[i]))
                continue;
            if (i > start)
                merge(symbols.subspan(start, i - start), check, find);
            start = i + 1;
        }
    }

private:
    struct Candidate {
        double score;
        std::int32_t left;
        std::int32_t right;
        std::uint32_t size; // symbols are short: a merged piece never approaches 4 GB
        std::int32_t id;
        std::int32_t leftId; // the ids of the pair when it was queued
        std::int32_t rightId;
    };
    struct Lower {
        bool operator()(const Candidate& a, const Candidate& b) const
        {
            return a.score < b.score || (a.score == b.score && a.left > b.left);
        }
    };
    std::vector<Candidate> queue_; // a binary max-heap, kept between calls to reuse its memory
};

} // namespace qpruner
