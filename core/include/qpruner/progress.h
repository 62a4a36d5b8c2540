// Progress reporting and cancellation shared by every long-running core call (torch-free, used by the UI).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "qpruner/error.h"

namespace qpruner {

struct Progress {
    std::string stage;   // e.g. "eval-ppl"
    int64_t done = 0;    // units finished
    int64_t total = 0;   // units in all (0 when unknown)
    std::string message; // short human-readable detail
    // Named numbers of this unit for plots (e.g. {"loss", 2.31}, {"lr", 1e-4}); empty for most stages.
    std::vector<std::pair<std::string, double>> values;
};

// Called from the worker thread; the receiver must not block. May be empty.
using ProgressSink = std::function<void(const Progress&)>;

// Set from any thread, polled by the worker between units of work.
class CancelToken {
public:
    void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
    bool isCancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
    void throwIfCancelled() const {
        if (isCancelled())
            throw CancelledError();
    }

private:
    std::atomic<bool> cancelled_{false};
};

inline void report(const ProgressSink& sink, const std::string& stage, int64_t done, int64_t total,
                   const std::string& message = {}, std::vector<std::pair<std::string, double>> values = {})
{
    if (sink)
        sink(Progress{stage, done, total, message, std::move(values)});
}

} // namespace qpruner
