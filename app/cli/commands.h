// The `qpruner` subcommands. Each takes its arguments (after the subcommand name) and returns the exit status.
#pragma once

#include <string>
#include <vector>

namespace qpruner::cli {

using Args = std::vector<std::string>;

int runInfo(const Args& args);
int runTokenize(const Args& args);
int runGenerate(const Args& args);
int runEvalPpl(const Args& args);
int runEvalTasks(const Args& args);
int runMakeRandom(const Args& args);
int runPrune(const Args& args);
int runQuantize(const Args& args);
int runMemory(const Args& args);
int runQuantError(const Args& args);
int runImportance(const Args& args);
int runAllocate(const Args& args);
int runSearch(const Args& args);
int runRun(const Args& args);
int runRuns(const Args& args);
int runPareto(const Args& args);
int runFinetune(const Args& args);
int runExport(const Args& args);
int runTrial(const Args& args);
int runWorker(const Args& args);
int runSlurmScript(const Args& args);
int runDb(const Args& args);

} // namespace qpruner::cli
