// qpruner: the headless command line (no Qt). Dispatches to one subcommand; errors print one line to stderr.
// Exit status: 0 success, 1 error (bad file, bad config, failed stage), 2 bad command line, 128 + N cancelled by
// signal N (130 for SIGINT, 143 for SIGTERM).
#include <iostream>
#include <string>
#include <vector>

#include "arg_parser.h"
#include "commands.h"
#include "progress_line.h"
#include "qpruner/error.h"
#include "qpruner/process_tuning.h"

namespace {

struct Command {
    const char* name;
    int (*run)(const qpruner::cli::Args&);
    const char* summary;
};

const Command kCommands[] = {
    {"info", qpruner::cli::runInfo, "show a checkpoint's configuration, shapes and sizes"},
    {"tokenize", qpruner::cli::runTokenize, "encode text (or decode ids) with a tokenizer"},
    {"generate", qpruner::cli::runGenerate, "generate text (greedy or sampled) with a KV cache"},
    {"eval-ppl", qpruner::cli::runEvalPpl, "perplexity of a text file (non-overlapping windows)"},
    {"eval-tasks", qpruner::cli::runEvalTasks, "zero-shot multiple-choice accuracy (BoolQ, PIQA, HellaSwag, ...)"},
    {"prune", qpruner::cli::runPrune, "structured pruning (heads and MLP channels, Taylor importance)"},
    {"quantize", qpruner::cli::runQuantize, "apply a precision map and write packed quantized weights"},
    {"memory", qpruner::cli::runMemory, "exact bytes under a precision map, fine-tuning memory estimate"},
    {"quant-error", qpruner::cli::runQuantError, "per-layer weight/output error of a quantization format"},
    {"importance", qpruner::cli::runImportance, "per-layer importance (mi, bi, quant-kl, taylor, cosine, outlier) on calibration data"},
    {"allocate", qpruner::cli::runAllocate, "importance-aware precision map under a memory budget (greedy, probabilistic, ...)"},
    {"search", qpruner::cli::runSearch, "Bayesian search of precision maps (GP + ParEGO EI), trials in a store"},
    {"finetune", qpruner::cli::runFinetune, "recovery fine-tuning: LoRA / LoftQ adapters on the quantized model"},
    {"run", qpruner::cli::runRun, "the whole pipeline from a config (prune, importance, allocate, search, evaluate)"},
    {"export", qpruner::cli::runExport, "write a GGUF file for llama.cpp or a Hugging Face directory (--dry-run: preview)"},
    {"trial", qpruner::cli::runTrial, "act on one trial of a search: recover, evaluate, export, generate"},
    {"worker", qpruner::cli::runWorker, "join a running search as one more worker (this or another machine)"},
    {"slurm-script", qpruner::cli::runSlurmScript, "print an sbatch script for a Slurm job array of workers"},
    {"db", qpruner::cli::runDb, "copy a whole store between SQLite and PostgreSQL (db copy --from A --to B)"},
    {"runs", qpruner::cli::runRuns, "list the runs of an experiment store"},
    {"pareto", qpruner::cli::runPareto, "a search run's Pareto front, hypervolume and chosen map"},
    {"make-random", qpruner::cli::runMakeRandom, "write a randomly initialised model of a standard LLaMA shape"},
};

void printUsage(std::ostream& os)
{
    os << "usage: qpruner <command> [arguments] [--help]\n\n"
          "QPruner Studio command line: structured pruning, mixed-precision quantization, Bayesian search and\n"
          "recovery fine-tuning of LLaMA-family models.\n\ncommands:\n";
    for (const auto& c : kCommands) {
        const std::string n = c.name;
        os << "  " << n << std::string(14 - n.size(), ' ') << c.summary << "\n";
    }
    os << "\nRun 'qpruner <command> --help' for a command's options.\n";
}

} // namespace

int main(int argc, char** argv)
{
    qpruner::tuneAllocatorForTensors();
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        printUsage(std::cout);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        std::cout << "qpruner " << QPRUNER_VERSION << "\n";
        return 0;
    }
    for (const auto& c : kCommands) {
        if (args[0] != c.name)
            continue;
        const std::vector<std::string> rest(args.begin() + 1, args.end());
        try {
            return c.run(rest);
        } catch (const qpruner::CancelledError&) {
            // SIGINT/SIGTERM: the core stopped between steps and recorded the stage and run as cancelled.
            const int sig = qpruner::cli::cancellingSignal();
            std::cerr << "qpruner " << c.name << ": cancelled" << (sig ? " by signal " + std::to_string(sig) : "")
                      << "; nothing half-written is left (resume with --resume where the command has it)\n";
            return 128 + (sig ? sig : 2);
        } catch (const qpruner::cli::UsageError& e) {
            std::cerr << "qpruner " << c.name << ": " << e.what() << "\n(see 'qpruner " << c.name << " --help')\n";
            return 2;
        } catch (const qpruner::Error& e) {
            std::cerr << "qpruner " << c.name << ": error: " << e.what() << "\n";
            return 1;
        } catch (const std::exception& e) {
            std::cerr << "qpruner " << c.name << ": internal error: " << e.what() << "\n";
            return 1;
        }
    }
    std::cerr << "qpruner: unknown command '" << args[0] << "'\n\n";
    printUsage(std::cerr);
    return 2;
}
