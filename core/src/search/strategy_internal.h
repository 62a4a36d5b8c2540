// Shared by the search strategies (bayes_search.cpp, strategies.cpp): the stored trials indexed by map and
// fidelity, deterministic random streams, and each strategy's proposal function. Internal to the search.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <random>
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

// The candidates as levels: order[i] the candidate at level i (levelOrder), of[k] the level of candidate k.
struct Levels {
    std::vector<int> order;
    std::vector<int> of;
    explicit Levels(const SearchSpace& space);
    int top() const { return int(order.size()) - 1; }
    int shifted(int candidate, int by) const { return order[size_t(of[size_t(candidate)] + by)]; }
    // Lowers random units (drawn from rng) one level at a time until `c` fits the budget or every unit is at the
    // lowest level; true when it fits.
    bool repair(const SearchSpace& space, Choice& c, std::mt19937_64& rng) const;
};

Proposal proposeEvoPress(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options);
Proposal proposeNsga2(const std::vector<store::TrialRecord>& trials, const TrialIndex& index,
                      const SearchProblem& problem, const SearchOptions& options);
Proposal proposeLagrangian(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options);
Proposal proposeApRatio(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options);

} // namespace qpruner::search::detail
