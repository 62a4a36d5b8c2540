#include "progress_line.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstring>

#include <unistd.h>

namespace qpruner::cli {

namespace {

constexpr auto kLiveInterval = std::chrono::milliseconds(200);
constexpr auto kPlainInterval = std::chrono::seconds(10);

std::string duration(double seconds)
{
    if (!std::isfinite(seconds) || seconds < 0)
        return "?";
    const auto s = static_cast<long long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
}

} // namespace

ProgressLine::ProgressLine(bool enabled, int live)
    : enabled_(enabled), live_(live < 0 ? ::isatty(STDERR_FILENO) == 1 : live == 1)
{
}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::finish()
{
    std::lock_guard lock(mutex_);
    if (live_ && drawn_) {
        std::fputc('\n', stderr);
        std::fflush(stderr);
    }
    drawn_ = false;
}

ProgressSink ProgressLine::sink()
{
    return [this](const Progress& p) { update(p); };
}

std::string ProgressLine::format(const Progress& p, double rate, double eta) const
{
    std::string s = p.stage + " " + std::to_string(p.done);
    if (p.total > 0) {
        char pct[16];
        std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * double(p.done) / double(p.total));
        s += "/" + std::to_string(p.total) + pct;
    }
    if (rate > 0) {
        char r[32];
        std::snprintf(r, sizeof r, ", %.3g/s", rate);
        s += r;
        if (p.total > 0)
            s += ", ETA " + duration(eta);
    }
    if (!p.message.empty())
        s += "  " + p.message;
    return s;
}

void ProgressLine::update(const Progress& p)
{
    if (!enabled_)
        return;
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    const bool newStage = p.stage != stage_ || p.done < stageDone0_;
    if (newStage) {
        stage_ = p.stage;
        stageStart_ = now;
        stageDone0_ = p.done;
    }
    const bool last = p.total > 0 && p.done >= p.total;
    const auto interval = live_ ? std::chrono::duration_cast<Clock::duration>(kLiveInterval)
                                : std::chrono::duration_cast<Clock::duration>(kPlainInterval);
    if (!newStage && !last && now - lastPrint_ < interval)
        return;
    lastPrint_ = now;
    const double secs = std::chrono::duration<double>(now - stageStart_).count();
    const double rate = secs > 0.05 && p.done > stageDone0_ ? double(p.done - stageDone0_) / secs : 0.0;
    const double eta = rate > 0 && p.total > 0 ? double(p.total - p.done) / rate : -1.0;
    std::string line = format(p, rate, eta);
    if (live_) {
        if (newStage && drawn_)
            std::fputc('\n', stderr); // keep the finished stage's last line
        const size_t width = line.size();
        if (width < lastWidth_ && !newStage)
            line.append(lastWidth_ - width, ' ');
        lastWidth_ = width;
        std::fprintf(stderr, "\r  %s", line.c_str());
        drawn_ = true;
    } else {
        std::fprintf(stderr, "  %s\n", line.c_str());
    }
    std::fflush(stderr);
}

namespace {

CancelToken gToken;
std::atomic<int> gSignal{0};

extern "C" void onSignal(int sig)
{
    int expected = 0;
    if (!gSignal.compare_exchange_strong(expected, sig))
        ::_exit(128 + sig); // second signal: the user insists
    gToken.cancel();
    static const char msg[] = "\nqpruner: cancelling (finishing the current step; signal again to quit at once)\n";
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}

} // namespace

const CancelToken& signalCancelToken()
{
    static const bool installed = [] {
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_handler = onSignal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        return true;
    }();
    (void)installed;
    return gToken;
}

int cancellingSignal() { return gSignal.load(); }

} // namespace qpruner::cli
