// Shared by the search strategies (bayes_search.cpp, strategies.cpp): the stored trials indexed by map and
// fidelity, deterministic random streams, and each strategy's proposal function. Internal to the search.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "search/bayes_search.h"

namespace qpruner::search::detail {

// splitmix64 over the combined words: independent streams per (seed, trial or generation, purpose).
uint64_t mix(uint64_t seed, uint64_t a, uint64_t b = 0);

// The searched (non-manual) trials by (encoding, fidelity). A key's state: complete when any of its trials
// completed (its objective), else running when one runs, else failed (a map whose retries are used up scores
// +infinity for the strategies), else missing.
struct TrialIndex {
    enum class State { Missing, Running, Complete, Failed };
    struct Entry {
        State state = State::Missing;
        double value = std::numeric_limits<double>::infinity();
    };
    std::map<std::pair<std::string, double>, Entry> entries;
    std::unordered_set<std::string> held; // every trial's encoding, any fidelity, any state

    explicit TrialIndex(const std::vector<store::TrialRecord>& trials);
    Entry at(const std::string& encoding, double fidelity) const;
};

// Candidate indices of the space ordered from the least to the most precise (by position, then bytes of unit 0).
std::vector<int> levelOrder(const SearchSpace& space);

Proposal proposeEvoPress(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options);
Proposal proposeNsga2(const std::vector<store::TrialRecord>& trials, const TrialIndex& index,
                      const SearchProblem& problem, const SearchOptions& options);
Proposal proposeLagrangian(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options);
Proposal proposeApRatio(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options);

} // namespace qpruner::search::detail
