// Progress of a long command on stderr (also with --json, whose document goes to stdout): one live line (stage,
// done/total, rate, ETA) redrawn in place on a terminal, and a plain line every 10 s (and at each new stage)
// otherwise, so logs of batch jobs stay short.
// SIGINT/SIGTERM cancel the command: the handler sets one CancelToken that every core call of the CLI polls.
#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include "qpruner/progress.h"

namespace qpruner::cli {

class ProgressLine {
public:
    // `enabled` false prints nothing; `live` -1 decides by isatty(stderr).
    explicit ProgressLine(bool enabled = true, int live = -1);
    ~ProgressLine(); // ends a live line with a newline
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    void update(const Progress& p); // thread-safe
    // A sink calling update(); valid while this object lives.
    ProgressSink sink();
    // Ends the live line so other output can follow.
    void finish();

private:
    using Clock = std::chrono::steady_clock;
    std::string format(const Progress& p, double rate, double eta) const;

    std::mutex mutex_;
    bool enabled_;
    bool live_;
    bool drawn_ = false;
    std::string stage_;
    Clock::time_point stageStart_;
    int64_t stageDone0_ = 0;
    Clock::time_point lastPrint_;
    size_t lastWidth_ = 0;
};

// Installs SIGINT and SIGTERM handlers (once) that cancel the token returned; a second signal ends the process at
// once with 128 + signal. The token is what the CLI passes to every cancellable core call.
const CancelToken& signalCancelToken();
// The signal that cancelled the token (0 if none).
int cancellingSignal();

} // namespace qpruner::cli
