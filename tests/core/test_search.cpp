// The Bayesian search driver: proposals (retry, initial design, exhaustion), the optimiser against random search
// on a known function over 12 binary layers, workers without duplicate or lost trials, kill -9 then resume, and
// the trial evaluator on stories260K against the plain quantize-then-score path.
#include <QtTest/QtTest>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "eval/perplexity.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"
#include "qpruner/error.h"
#include "qpruner/importance_scores.h"
#include "qpruner/memory_model.h"
#include "qpruner/pipeline.h"
#include "qpruner/store.h"
#include "search/bayes_search.h"
#include "search/trial_evaluator.h"
#include "synthetic_objective.h"
#include "test_data.h"

using namespace qpruner;
using namespace qpruner::search;

namespace {

// The mapping that holds `p` (/proc/self/smaps): its header line and resident KiB; rss -1 when none holds it.
struct Mapping {
    std::string header;
    int64_t rssKiB = -1;
};
Mapping mappingOf(const void* p)
{
    std::ifstream in("/proc/self/smaps");
    const auto a = reinterpret_cast<uintptr_t>(p);
    std::string line, header;
    bool inside = false;
    while (std::getline(in, line)) {
        unsigned long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
            inside = a >= lo && a < hi;
            header = line;
            continue;
        }
        long kib = 0;
        if (inside && std::sscanf(line.c_str(), "Rss: %ld kB", &kib) == 1)
            return {header, kib};
    }
    return {};
}
int64_t mappingRssKiB(const void* p) { return mappingOf(p).rssKiB; }

using Synthetic = qpruner::testing::SyntheticObjective;

struct TempStore {
    QTemporaryDir dir;
    std::filesystem::path path() const { return std::filesystem::path(dir.path().toStdString()) / "study.db"; }
};

int64_t newRun(store::Store& st, uint64_t seed = 0)
{
    store::RunRecord r;
    r.experimentId = st.experimentId("test");
    r.kind = "search";
    r.config = {{"seed", seed}};
    return st.createRun(r);
}

SearchProblem problemOf(const Synthetic& s, std::vector<InitialPoint> initial = {})
{
    SearchProblem p;
    p.space = s.space;
    p.initial = std::move(initial);
    return p;
}

EvaluatorFactory syntheticEvaluators(const Synthetic& s, int sleepMs = 0)
{
    return [&s, sleepMs](int) -> Evaluator {
        return [&s, sleepMs](const Choice& c, double, const CancelToken*) {
            if (sleepMs > 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(sleepMs));
            EvaluationResult r;
            r.objective = s.value(c);
            return r;
        };
    };
}

// Trials until the optimum first appears (the trial count when it is never found).
int trialsToFind(const std::vector<store::TrialRecord>& trials, const std::string& optimum)
{
    for (const auto& t : trials)
        if (t.encoding == optimum)
            return t.number + 1;
    return int(trials.size());
}

SearchOptions quickOptions(int trials, uint64_t seed)
{
    SearchOptions o;
    o.trials = trials;
    o.seed = seed;
    o.logObjective = false;
    o.parEgo = false;
    o.poolRandom = 32;
    o.poolTwoEdits = 64;
    return o;
}

int childSearch(int argc, char** argv)
{
    // --child-search DB RUN SEED: a synthetic search of 30 trials at 40 ms each (the parent kills it).
    if (argc < 5)
        return 2;
    store::Store st(argv[2]);
    const Synthetic s(std::stoull(argv[4]));
    runSearch(st, std::stoll(argv[3]), problemOf(s), syntheticEvaluators(s, 40), quickOptions(30, 7));
    return 0;
}

} // namespace

class TestSearch : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void spaceEncodingAndFeatures()
    {
        Synthetic s(1);
        const Choice x = {1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        QCOMPARE(s.space.encode(x), std::string("101000000001"));
        QCOMPARE(s.space.decode("101000000001"), x);
        QCOMPARE(s.space.bytes(x), int64_t(100 + 120 + 1 + 3 + 3));
        VERIFY_THROWS(FormatError, s.space.decode("10100000000"), "11 units", "12");
        VERIFY_THROWS(FormatError, s.space.decode("101000000002"), "unit 11");
        const auto f = s.space.features(x);
        QCOMPARE(f.size(), size_t(13));
        QCOMPARE(f[0], 1.0);
        QCOMPARE(f[1], 0.0);
        const double cov = (s.space.importance[0] + s.space.importance[2] + s.space.importance[11]) / 12;
        QCOMPARE(f[12], cov);
        SearchSpace bad = s.space;
        bad.budgetBytes = bad.minBytes() - 1;
        VERIFY_THROWS(ConfigError, bad.validate(), "below the cheapest map");
    }

    void proposalPrecedence()
    {
        Synthetic s(2);
        const Choice a(12, 0), b = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        const auto problem = problemOf(s, {{a, "initial:a"}, {b, "initial:b"}});
        const SearchOptions o = quickOptions(10, 0);
        std::vector<store::TrialRecord> trials;
        Proposal p = propose(trials, problem, o, 0);
        QCOMPARE(p.source, std::string("initial:a"));
        QCOMPARE(p.choice, a);
        // a failed: it is retried before the next initial point.
        store::TrialRecord t;
        t.number = 0;
        t.encoding = s.space.encode(a);
        t.state = store::TrialState::Failed;
        trials.push_back(t);
        p = propose(trials, problem, o, 1);
        QCOMPARE(p.source, std::string("retry"));
        QCOMPARE(p.retryOf, std::optional<int>(0));
        QCOMPARE(p.choice, a);
        // The retry failed as well: the map is given up, and b comes next.
        t.number = 1;
        t.retryOf = 0;
        trials.push_back(t);
        p = propose(trials, problem, o, 2);
        QCOMPARE(p.source, std::string("initial:b"));
        // b complete: the acquisition proposes a feasible map no trial holds.
        t.number = 2;
        t.retryOf.reset();
        t.encoding = s.space.encode(b);
        t.state = store::TrialState::Complete;
        t.objective = s.value(b);
        t.budgetedBytes = s.space.bytes(b);
        trials.push_back(t);
        p = propose(trials, problem, o, 3);
        QCOMPARE(p.source, std::string("acquisition"));
        QVERIFY(s.space.feasible(p.choice));
        QVERIFY(s.space.encode(p.choice) != s.space.encode(a));
        QVERIFY(s.space.encode(p.choice) != s.space.encode(b));
        QVERIFY(p.secondsSurrogate > 0);
        // Deterministic for (trials, seed, number).
        QCOMPARE(propose(trials, problem, o, 3).choice, p.choice);
    }

    void manualTrialsAreIgnoredByProposals()
    {
        Synthetic s(2);
        const Choice a(12, 0);
        const auto problem = problemOf(s, {{a, "initial:a"}});
        const SearchOptions o = quickOptions(10, 0);
        // A failed and a complete hand-made map whose encodings are no points of the space: neither is retried
        // nor decoded (decode() would throw FormatError), so the first initial point still comes first.
        std::vector<store::TrialRecord> trials(2);
        trials[0].number = 0;
        trials[0].encoding = "manual:0123";
        trials[0].source = kManualTrialSource;
        trials[0].state = store::TrialState::Failed;
        trials[1] = trials[0];
        trials[1].number = 1;
        trials[1].encoding = "manual:4567";
        trials[1].state = store::TrialState::Complete;
        trials[1].objective = 1.0;
        Proposal p = propose(trials, problem, o, 2);
        QCOMPARE(p.source, std::string("initial:a"));
        store::TrialRecord t;
        t.number = 2;
        t.encoding = s.space.encode(a);
        t.state = store::TrialState::Complete;
        t.objective = s.value(a);
        t.budgetedBytes = s.space.bytes(a);
        trials.push_back(t);
        p = propose(trials, problem, o, 3);
        QCOMPARE(p.source, std::string("acquisition"));
        // The same proposal as without the manual trials.
        QCOMPARE(propose({t}, problem, o, 3).choice, p.choice);
    }

    void exhaustsSmallSpace()
    {
        // 3 binary units, every map feasible: 8 maps, then the pool runs dry.
        SearchSpace sp;
        sp.units = 3;
        sp.candidates = {"lo", "hi"};
        sp.position = {0, 1};
        sp.unitBytes = {{1, 2}, {1, 2}, {1, 2}};
        sp.budgetBytes = 6;
        sp.importance = {0, 0.5, 1};
        SearchProblem problem;
        problem.space = sp;
        TempStore ts;
        store::Store st(ts.path());
        const int64_t run = newRun(st);
        const SearchOptions o = quickOptions(20, 3);
        Progress last;
        const auto summary = runSearch(st, run, problem,
                                       [](int) -> Evaluator {
                                           return [](const Choice& c, double, const CancelToken*) {
                                               return EvaluationResult{double(c[0] + 2 * c[1] + 4 * c[2] + 1)};
                                           };
                                       },
                                       o, [&](const Progress& p) { last = p; });
        QVERIFY(summary.exhausted);
        QCOMPARE(summary.trialsComplete, 8);
        // The last progress says the search ran out of maps, at 8 of 8 (not "8/20" as if cut short).
        QCOMPARE(last.done, int64_t(8));
        QCOMPARE(last.total, int64_t(8));
        QCOMPARE(last.message, std::string("exhausted: every feasible map evaluated (8 of the 20 trials asked)"));
        std::set<std::string> seen;
        for (const auto& t : st.trials(run))
            seen.insert(t.encoding);
        QCOMPARE(seen.size(), size_t(8));
    }

    void optimiserBeatsRandomSearch()
    {
        // Averaged over seeds: trials until the known optimum is evaluated, the search against uniform random
        // search over the feasible maps (without replacement), both capped at 60 trials.
        const int cap = 60;
        double bo = 0, random = 0;
        int found = 0;
        const std::vector<uint64_t> seeds = {11, 12, 13, 14, 15};
        for (uint64_t seed : seeds) {
            const Synthetic s(seed);
            const auto [optimum, feasible] = s.optimum();
            TempStore ts;
            store::Store st(ts.path());
            const int64_t run = newRun(st, seed);
            // Initial design: the cheapest map and two random feasible ones (no importance-aware start, so the
            // surrogate has to do the work).
            std::mt19937_64 rng(seed);
            std::vector<InitialPoint> initial = {{Choice(12, 0), "initial:uniform:lo"}};
            while (initial.size() < 3) {
                Choice x(12);
                for (auto& v : x)
                    v = int(rng() & 1);
                if (s.space.feasible(x))
                    initial.push_back({x, "initial:random"});
            }
            runSearch(st, run, problemOf(s, initial), syntheticEvaluators(s), quickOptions(cap, seed));
            const int n = trialsToFind(st.trialSummaries(run), optimum);
            found += n < cap || st.trialSummaries(run)[size_t(n - 1)].encoding == optimum ? 1 : 0;
            bo += n;
            // Random search: a seeded permutation of the feasible maps.
            std::vector<std::string> maps;
            for (int m = 0; m < (1 << 12); ++m) {
                Choice x(12);
                for (int u = 0; u < 12; ++u)
                    x[size_t(u)] = (m >> u) & 1;
                if (s.space.feasible(x))
                    maps.push_back(s.space.encode(x));
            }
            QCOMPARE(int(maps.size()), feasible);
            std::shuffle(maps.begin(), maps.end(), rng);
            const auto it = std::find(maps.begin(), maps.end(), optimum);
            random += std::min<double>(cap, double(it - maps.begin() + 1));
            qInfo("seed %llu: %d feasible maps; search found the optimum after %d trials, random after %lld",
                  static_cast<unsigned long long>(seed), feasible, n,
                  static_cast<long long>(it - maps.begin() + 1));
        }
        bo /= double(seeds.size());
        random /= double(seeds.size());
        qInfo("mean trials to the optimum: search %.1f, random search %.1f (cap %d)", bo, random, cap);
        QVERIFY2(found >= 4, "the search found the optimum in fewer than 4 of 5 seeds");
        QVERIFY(bo < random);
        QVERIFY(bo < 0.6 * cap);
    }

    void deterministicForASeed()
    {
        const Synthetic s(21);
        std::vector<std::vector<std::string>> runs;
        for (int rep = 0; rep < 2; ++rep) {
            TempStore ts;
            store::Store st(ts.path());
            const int64_t run = newRun(st);
            runSearch(st, run, problemOf(s, {{Choice(12, 0), "initial:uniform:lo"}}), syntheticEvaluators(s),
                      quickOptions(15, 5));
            std::vector<std::string> enc;
            for (const auto& t : st.trialSummaries(run))
                enc.push_back(t.encoding);
            runs.push_back(enc);
        }
        QCOMPARE(runs[0].size(), size_t(15));
        QCOMPARE(runs[0], runs[1]);
    }

    void workersShareOneStudy()
    {
        // Three threads of this process plus a second Store (as another process would hold) on the same file:
        // exactly `trials` complete trials, numbers 0..n-1, no map twice.
        const Synthetic s(31);
        TempStore ts;
        store::Store st(ts.path());
        const int64_t run = newRun(st);
        SearchOptions o = quickOptions(40, 9);
        o.workers = 3;
        std::thread other([&] {
            store::Store second(ts.path());
            SearchOptions o2 = quickOptions(40, 9);
            runSearch(second, run, problemOf(s), syntheticEvaluators(s, 2), o2);
        });
        runSearch(st, run, problemOf(s), syntheticEvaluators(s, 2), o);
        other.join();
        const auto trials = st.trials(run);
        std::set<std::string> maps;
        for (size_t i = 0; i < trials.size(); ++i) {
            QCOMPARE(trials[i].number, int(i));
            QCOMPARE(trials[i].state, store::TrialState::Complete);
            maps.insert(trials[i].encoding);
        }
        QCOMPARE(trials.size(), size_t(40));
        QCOMPARE(maps.size(), size_t(40));
        QCOMPARE(st.integrityCheck(), std::string("ok"));
    }

    void killedSearchResumes()
    {
        const Synthetic s(41);
        TempStore ts;
        int64_t run = 0;
        {
            store::Store st(ts.path());
            run = newRun(st);
        }
        QProcess child;
        child.start(QCoreApplication::applicationFilePath(),
                    {"--child-search", QString::fromStdString(ts.path().string()), QString::number(run), "41"});
        QVERIFY(child.waitForStarted());
        // Wait until the child has completed some trials and is inside one, then kill -9.
        store::Store reader(ts.path());
        bool inside = false;
        for (int i = 0; i < 2000 && !inside; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            const auto t = reader.trialSummaries(run);
            const auto complete = std::count_if(t.begin(), t.end(), [](const auto& x) {
                return x.state == store::TrialState::Complete;
            });
            inside = complete >= 5 && !t.empty() && t.back().state == store::TrialState::Running;
        }
        QVERIFY2(inside, "the child never got 5 trials in");
        ::kill(pid_t(child.processId()), SIGKILL);
        QVERIFY(child.waitForFinished());
        QCOMPARE(child.exitStatus(), QProcess::CrashExit);

        store::Store st(ts.path());
        const auto before = st.trialSummaries(run);
        const int killedNumber = before.back().number;
        QCOMPARE(before.back().state, store::TrialState::Running);
        const auto reclaimed = st.reclaimTrials(run);
        QCOMPARE(reclaimed, std::vector<int>{killedNumber});
        runSearch(st, run, problemOf(s), syntheticEvaluators(s), quickOptions(30, 7));

        const auto trials = st.trials(run);
        int complete = 0, failed = 0;
        std::set<int> numbers;
        std::set<std::string> maps;
        const store::TrialRecord* retry = nullptr;
        for (const auto& t : trials) {
            numbers.insert(t.number);
            if (t.state == store::TrialState::Complete) {
                ++complete;
                QVERIFY2(maps.insert(t.encoding).second, "a map was evaluated twice");
            }
            if (t.state == store::TrialState::Failed) {
                ++failed;
                QCOMPARE(t.number, killedNumber);
                QVERIFY(QString::fromStdString(t.error).contains("is gone"));
            }
            if (t.retryOf == killedNumber)
                retry = &t;
        }
        QCOMPARE(complete, 30);
        QCOMPARE(failed, 1);
        QCOMPARE(numbers.size(), trials.size());
        QCOMPARE(*numbers.rbegin(), int(trials.size()) - 1);
        QVERIFY2(retry, "the killed trial was not re-proposed");
        QCOMPARE(retry->encoding, before.back().encoding);
        QCOMPARE(retry->state, store::TrialState::Complete);
        QCOMPARE(st.integrityCheck(), std::string("ok"));
    }

    void failingEvaluationStopsAfterThree()
    {
        const Synthetic s(51);
        TempStore ts;
        store::Store st(ts.path());
        const int64_t run = newRun(st);
        auto failing = [](int) -> Evaluator {
            return [](const Choice&, double, const CancelToken*) -> EvaluationResult {
                throw Error("validation file vanished");
            };
        };
        VERIFY_THROWS(Error, runSearch(st, run, problemOf(s), failing, quickOptions(10, 0)),
                      "3 trials failed in a row", "validation file vanished");
        const auto trials = st.trialSummaries(run);
        QCOMPARE(trials.size(), size_t(3));
        for (const auto& t : trials)
            QCOMPARE(t.state, store::TrialState::Failed);
        QCOMPARE(trials[1].retryOf, std::optional<int>(0)); // the first failure is retried once
    }

    void evaluatorMatchesQuantizeThenScore()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tokPath, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(textPath, "text/tinystories/tinystories_valid_subset.txt");
        const auto tok = loadTokenizer(tokPath);
        std::ifstream in(textPath);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto stream = tok->encode(text);
        const int64_t N = 4, T = 128;
        at::Tensor windows = at::empty({N, T}, at::kLong);
        for (int64_t i = 0; i < N * T; ++i)
            windows.data_ptr<int64_t>()[i] = stream[size_t(i)];

        PrecisionMap base(QuantSpec{QuantKind::BF16, 0, false});
        TrialEvaluatorOptions eo;
        eo.objective = SearchObjective::Kl;
        eo.batchSize = 3; // 4 windows: batches of 3 and 1
        std::vector<Progress> events;
        eo.progress = [&](const Progress& p) { events.push_back(p); };
        TrialEvaluator ev(model::loadModel(modelPath), base, windows, eo);
        const int layers = ev.model().config().numLayers();
        PrecisionMap mixed = base;
        mixed.setLayer(0, parseQuantSpec("nf4"));
        mixed.setLayer(layers - 1, parseQuantSpec("int8"));
        const auto count = [&](const std::string& stage, int64_t total) { // -1: an event with another total
            int n = 0;
            for (const Progress& p : events)
                if (p.stage == stage)
                    n = n < 0 || p.total != total ? -1 : n + 1;
            return n;
        };
        const auto r1 = ev.evaluate(mixed);
        QCOMPARE(ev.cachedLinears(), int64_t(7 * layers));
        // Progress inside the trial: one event per linear quantized, one per validation batch.
        QCOMPARE(count("search: quantize", 7 * layers), 7 * layers);
        QCOMPARE(count("search: score", N), 2);
        events.clear();
        const auto r2 = ev.evaluate(PrecisionMap(parseQuantSpec("nf4")));
        QCOMPARE(ev.cachedLinears(), int64_t(7 * layers + 7 * (layers - 1)));
        QCOMPARE(count("search: quantize", 7 * (layers - 1)), 7 * (layers - 1)); // layer 0's nf4 was cached
        const auto r3 = ev.evaluate(mixed); // all from the cache: the same numbers
        QCOMPARE(ev.cachedLinears(), int64_t(7 * layers + 7 * (layers - 1)));
        QCOMPARE(r3.objective, r1.objective);
        QVERIFY(r1.objective > 0);
        QVERIFY(r2.objective > r1.objective); // every layer nf4 moves further from the dense model

        // The plain path: quantize a fresh model with the map and score the same windows.
        auto fresh = model::loadModel(modelPath);
        quant::quantizeModel(*fresh, mixed);
        eval::PerplexityOptions po;
        po.seqLen = int(T);
        std::vector<int32_t> flat(stream.begin(), stream.begin() + N * T);
        const auto ppl = eval::evaluatePerplexity(*fresh, flat, po);
        QVERIFY(std::abs(r1.metrics["ppl"].get<double>() - ppl.ppl) < 1e-7 * ppl.ppl);
        QCOMPARE(r1.metrics["tokens"].get<int64_t>(), N * (T - 1));
    }

    // Variants in mapped files (search.variant_cache disk): the same trials, bit for bit, nothing left on disk, and
    // the pages of what a map does not use leave the process's RSS.
    void variantFilesGiveTheSameTrials()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        QTemporaryDir dir;
        const auto windows = at::randint(0, 512, {3, 64}, at::TensorOptions().dtype(at::kLong));
        PrecisionMap base(QuantSpec{QuantKind::BF16, 0, false});
        TrialEvaluatorOptions eo;
        eo.objective = SearchObjective::Kl;
        TrialEvaluator inRam(model::loadModel(modelPath), base, windows, eo);
        eo.variantDir = std::filesystem::path(dir.path().toStdString()) / "variants";
        TrialEvaluator inFiles(model::loadModel(modelPath), base, windows, eo);
        const int layers = inRam.model().config().numLayers();
        PrecisionMap mixed = base;
        mixed.setLayer(0, parseQuantSpec("nf4"));
        mixed.setLayer(layers - 1, parseQuantSpec("int8"));
        const auto isEmpty = [&] { return std::filesystem::is_empty(eo.variantDir); };
        for (const PrecisionMap& m : {mixed, PrecisionMap(parseQuantSpec("int4")), mixed, base}) {
            const auto a = inRam.evaluate(m), b = inFiles.evaluate(m);
            QCOMPARE(b.objective, a.objective);
            QCOMPARE(b.metrics["ppl"].get<double>(), a.metrics["ppl"].get<double>());
            QVERIFY(isEmpty()); // every variant file was unlinked once mapped
        }
        // The int4 layers' codes live in a deleted file of the directory, the RAM evaluator's on the heap.
        inFiles.evaluate(PrecisionMap(parseQuantSpec("int4")));
        inRam.evaluate(PrecisionMap(parseQuantSpec("int4")));
        const auto codes = [](const TrialEvaluator& e) {
            const auto* q = dynamic_cast<const quant::QuantLinear*>(e.model().layers[0].q.get());
            return q ? q->quantized().parts.begin()->second.data_ptr() : nullptr;
        };
        QVERIFY(codes(inFiles) && codes(inRam));
        const std::string header = mappingOf(codes(inFiles)).header;
        QVERIFY2(header.find(eo.variantDir.string() + "/qpruner-variant-") != std::string::npos &&
                     header.find("(deleted)") != std::string::npos,
                 header.c_str());
        QVERIFY(mappingOf(codes(inRam)).header.find("qpruner-variant") == std::string::npos);
        QCOMPARE(inFiles.cachedLinears(), inRam.cachedLinears());
        QCOMPARE(inFiles.cachedBytes(), inRam.cachedBytes());
        QVERIFY(inRam.cachedBytes() > 0);

        // A directory that cannot be made is named.
        const QString file = dir.filePath("plain-file");
        QFile f(file);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.close();
        eo.variantDir = std::filesystem::path(file.toStdString()) / "variants";
        const QString msg = testing::expectThrow<FileError>([&] { TrialEvaluator(model::loadModel(modelPath), base, windows, eo); });
        QVERIFY2(msg.contains("plain-file/variants") && msg.contains("variant directory"), qPrintable(msg));
    }

    // spillLinear moves a linear's bytes to a mapped, unlinked file: same outputs; releaseLinearPages drops them from
    // the RSS (read back from the file on the next use, the same values).
    void spilledLinearPagesLeaveTheRss()
    {
        QTemporaryDir dir;
        const auto w = at::randn({1024, 1024});
        const auto x = at::randn({8, 1024});
        const auto dense = std::make_shared<model::DenseLinear>(w);
        for (const char* format : {"int8", "nf4", "bf16"}) {
            const auto original = quant::convertLinear(*dense, parseQuantSpec(format));
            const auto path = std::filesystem::path(dir.path().toStdString()) / (std::string(format) + ".bin");
            const auto spilled = quant::spillLinear(*original, path);
            QVERIFY(!std::filesystem::exists(path));
            QCOMPARE(spilled->formatName(), original->formatName());
            QCOMPARE(spilled->storageBytes(), original->storageBytes());
            const auto y = original->forward(x);
            QVERIFY(at::equal(spilled->forward(x), y));
            const void* data = spilled->denseWeight().data_ptr(); // a dense bf16 variant: its mapped weight
            if (const auto* q = dynamic_cast<const quant::QuantLinear*>(spilled.get()))
                data = q->quantized().parts.begin()->second.data_ptr();
            const int64_t before = mappingRssKiB(data);
            QVERIFY2(before > 0, qPrintable(QString("%1: %2 KiB resident").arg(format).arg(before)));
            if (!quant::releaseLinearPages(*spilled))
                QSKIP("this kernel refuses MADV_PAGEOUT (Linux < 5.4)");
            QVERIFY2(mappingRssKiB(data) < before, qPrintable(QString("%1: %2 -> %3 KiB").arg(format).arg(before).arg(mappingRssKiB(data))));
            QVERIFY(at::equal(spilled->forward(x), y));
        }
        QVERIFY(testing::expectThrow<FileError>([&] {
                    quant::spillLinear(*dense, std::filesystem::path(dir.path().toStdString()) / "no" / "w.bin");
                }).contains("cannot create the weight file"));
    }

    // A run's compute_dtype: checked and named canonically by normalizeConfig, held on the run's thread and on its
    // search workers' threads (their objectives are those of bf16 matmuls), reported in every stage's "compute", and
    // gone from the process when the run ends.
    void computeDtypeOfARun()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        auto configWith = [&](const nlohmann::json& computeDtype) {
            nlohmann::json c = {{"version", 1},
                                {"model", modelPath.string()},
                                {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 2}, {"seq_len", 64}}}}},
                                {"allocate", {{"budget", "7bpw"}, {"candidates", {"nf4", "int8", "bf16"}}}},
                                {"search", {{"trials", 4}, {"workers", 2}, {"validation", {{"windows", 2}, {"seq_len", 64}}}}},
                                {"evaluate", nullptr}};
            if (!computeDtype.is_null())
                c["compute_dtype"] = computeDtype;
            return pipeline::normalizeConfig(c, std::filesystem::current_path(), testing::sharedDataDir());
        };
        QCOMPARE(configWith(nullptr)["compute_dtype"].get<std::string>(), std::string("auto"));
        QCOMPARE(configWith("bf16")["compute_dtype"].get<std::string>(), std::string("bfloat16"));
        QCOMPARE(configWith("fp32")["compute_dtype"].get<std::string>(), std::string("float32"));
        VERIFY_THROWS(ConfigError, configWith("float16"), "compute_dtype: float16 has no matmul on the CPU");
        VERIFY_THROWS(ConfigError, configWith("int8"), "compute_dtype: 'int8' is not auto, float32 or bfloat16");
        VERIFY_THROWS(ConfigError, configWith(3), "compute_dtype");

        TempStore ts;
        store::Store st(ts.path());
        pipeline::RunOptions ro;
        ro.threads = 1;
        const int64_t fp32Run = pipeline::startRun(st, configWith("float32"), ro).runId;
        const int64_t bf16Run = pipeline::startRun(st, configWith("bfloat16"), ro).runId;
        QVERIFY(!model::computeDtypeOverride()); // the runs' choices stayed with them
        for (const auto& [run, name] : {std::pair{fp32Run, "float32"}, std::pair{bf16Run, "bfloat16"}})
            for (const auto& stage : st.stages(run)) {
                QVERIFY2(stage.result.contains("compute"), stage.name.c_str());
                for (const char* side : {"dense", "quantized"}) {
                    QCOMPARE(stage.result["compute"][side]["dtype"].get<std::string>(), std::string(name));
                    QVERIFY(stage.result["compute"][side]["reason"].get<std::string>().find("forced") !=
                            std::string::npos);
                }
            }
        // The same maps scored in both runs (both workers' trials among them) differ by bf16's rounding.
        int compared = 0;
        for (const auto& a : st.trialSummaries(fp32Run))
            for (const auto& b : st.trialSummaries(bf16Run))
                if (a.encoding == b.encoding) {
                    const double fa = *st.trial(fp32Run, a.number).objective;
                    const double fb = *st.trial(bf16Run, b.number).objective;
                    QVERIFY2(std::abs(fa - fb) > 1e-6 * fa, qPrintable(QString("%1 vs %2").arg(fa).arg(fb)));
                    QVERIFY(std::abs(fa - fb) < 0.05 * fa);
                    ++compared;
                }
        QVERIFY2(compared >= 3, qPrintable(QString::number(compared)));
        // Evaluating a map by hand in the bf16 run scores it in bf16 too: the stored objective comes back.
        const store::TrialRecord first = st.trial(bf16Run, 0);
        PrecisionMap edited = PrecisionMap::fromJson(first.map);
        edited.setLayerModule(0, LinearModule::Down, parseQuantSpec("int4"));
        const double inBf16 = *pipeline::evaluateMap(st, bf16Run, edited.toJson()).objective;
        const double inFp32 = *pipeline::evaluateMap(st, fp32Run, edited.toJson()).objective;
        QVERIFY2(std::abs(inBf16 - inFp32) > 1e-6 * inFp32, qPrintable(QString("%1 vs %2").arg(inBf16).arg(inFp32)));
        QVERIFY(!model::computeDtypeOverride());
    }

    // prune.micro_batch and importance.micro_batch (memory against speed): default 4, checked and named, stored with
    // their stages; the pruned model and the scores do not depend on them beyond float rounding.
    void microBatchOfPruneAndImportance()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        auto configWith = [&](const nlohmann::json& pruneBatch, const nlohmann::json& importanceBatch) {
            nlohmann::json c = {
                {"version", 1},
                {"model", modelPath.string()},
                {"prune", {{"ratio", 0.25}, {"calibration", {{"samples", 5}, {"seq_len", 64}}}}},
                {"importance",
                 {{"metric", "taylor"}, {"metrics", {"taylor", "bi"}}, {"calibration", {{"samples", 5}, {"seq_len", 64}}}}},
                {"allocate", {{"budget", "7bpw"}, {"candidates", {"nf4", "int8", "bf16"}}}},
                {"search", nullptr},
                {"evaluate", nullptr}};
            if (!pruneBatch.is_null())
                c["prune"]["micro_batch"] = pruneBatch;
            if (!importanceBatch.is_null())
                c["importance"]["micro_batch"] = importanceBatch;
            return pipeline::normalizeConfig(c, std::filesystem::current_path(), testing::sharedDataDir());
        };
        const auto defaults = configWith(nullptr, nullptr);
        QCOMPARE(defaults["prune"]["micro_batch"], nlohmann::json(4));
        QCOMPARE(defaults["importance"]["micro_batch"], nlohmann::json(4));
        VERIFY_THROWS(ConfigError, configWith(0, nullptr), "prune.micro_batch: expected an integer >= 1");
        VERIFY_THROWS(ConfigError, configWith("2", nullptr), "prune.micro_batch");
        VERIFY_THROWS(ConfigError, configWith(nullptr, 1.5), "importance.micro_batch");

        TempStore ts;
        store::Store st(ts.path());
        pipeline::RunOptions ro;
        ro.threads = 1;
        // 5 windows: micro-batches of 4 + 1 against 5 of 1.
        const auto batched = pipeline::startRun(st, defaults, ro);
        const auto single = pipeline::startRun(st, configWith(1, 1), ro);
        QCOMPARE(batched.result["prune"]["parameters_after"], single.result["prune"]["parameters_after"]);
        for (const auto& stage : st.stages(single.runId))
            if (stage.name == "prune" || stage.name == "importance")
                QCOMPARE(stage.config["micro_batch"], nlohmann::json(1));
        // The same units were removed: the same pruned model.
        const auto a = model::loadModel(batched.result["prune"]["checkpoint"].get<std::string>());
        const auto b = model::loadModel(single.result["prune"]["checkpoint"].get<std::string>());
        QVERIFY(a->config().layers == b->config().layers);
        const auto tokens = at::arange(1, 40, at::kLong).unsqueeze(0);
        QVERIFY(at::equal(a->forward(tokens), b->forward(tokens)));
        const auto sa = ImportanceScores::load(batched.result["importance"]["scores"].get<std::string>());
        const auto sb = ImportanceScores::load(single.result["importance"]["scores"].get<std::string>());
        for (const char* metric : {"taylor", "bi"}) {
            const auto& la = sa.metric(metric).layers;
            const auto& lb = sb.metric(metric).layers;
            QCOMPARE(la.size(), lb.size());
            for (size_t l = 0; l < la.size(); ++l)
                QVERIFY2(std::abs(la[l] - lb[l]) <= 1e-4 * std::abs(la[l]) && la[l] > 0,
                         qPrintable(QString("%1 layer %2: %3 vs %4").arg(metric).arg(l).arg(la[l]).arg(lb[l])));
        }
    }

    // "Evaluate this map": a hand-made map becomes one more trial of a real pipeline study, scored like the
    // search's trials (the same validation slice: the search's own map re-evaluated by hand gives its objective).
    void evaluateMapAddsManualTrial()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        TempStore ts;
        store::Store st(ts.path());
        const nlohmann::json config = pipeline::normalizeConfig(
            {{"version", 1},
             {"model", modelPath.string()},
             {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
             {"allocate", {{"budget", "7bpw"}, {"candidates", {"nf4", "int8", "bf16"}}}},
             {"search", {{"trials", 3}, {"validation", {{"windows", 2}, {"seq_len", 64}}}}},
             {"evaluate", nullptr}},
            std::filesystem::current_path(), testing::sharedDataDir());
        pipeline::RunOptions ro;
        ro.threads = 1;
        int64_t created = 0;
        ro.onRunCreated = [&](int64_t id) { created = id; };
        const auto outcome = pipeline::startRun(st, config, ro);
        QCOMPARE(created, outcome.runId);
        const int64_t run = outcome.runId;
        const store::TrialRecord first = st.trial(run, 0);

        // The search's first map, evaluated by hand: same objective, a new trial numbered after the search's.
        store::TrialRecord again = pipeline::evaluateMap(st, run, first.map);
        QCOMPARE(again.number, 3);
        QCOMPARE(again.source, std::string(kManualTrialSource));
        QCOMPARE(again.state, store::TrialState::Complete);
        QCOMPARE(again.memoryBytes, first.memoryBytes);
        QCOMPARE(again.budgetedBytes, first.budgetedBytes);
        QVERIFY(std::abs(*again.objective - *first.objective) <= 1e-9 * *first.objective);
        QVERIFY(again.metrics.contains("memory"));
        // A map no search unit could express (one module overridden) is accepted and gets its exact bytes.
        PrecisionMap edited = PrecisionMap::fromJson(first.map);
        edited.setLayerModule(0, LinearModule::Down, parseQuantSpec("int4"));
        const store::TrialRecord manual = pipeline::evaluateMap(st, run, edited.toJson());
        QCOMPARE(manual.number, 4);
        QCOMPARE(manual.memoryBytes, memoryReport(inspectModel(modelPath).config, edited).totalBytes);
        QVERIFY(*manual.objective > 0);
        // The same map twice: the stored trial comes back, nothing is evaluated or added.
        QCOMPARE(pipeline::evaluateMap(st, run, edited.toJson()).number, 4);
        QCOMPARE(st.trialSummaries(run).size(), size_t(5));
        // Resuming the finished search proposes nothing new; the manual trials do not confuse it.
        pipeline::resumeRun(st, run, ro);
        QCOMPARE(st.trialSummaries(run).size(), size_t(5));
        // Bad requests name the problem and add nothing.
        PrecisionMap tooDeep = edited;
        tooDeep.setLayer(40, parseQuantSpec("nf4"));
        VERIFY_THROWS(ConfigError, pipeline::evaluateMap(st, run, tooDeep.toJson()), "40");
        const nlohmann::json unknownFormat = {{"version", 1}, {"default", "nf5"}};
        VERIFY_THROWS(ConfigError, pipeline::evaluateMap(st, run, unknownFormat), "nf5");
        QCOMPARE(st.trialSummaries(run).size(), size_t(5));
        QCOMPARE(st.integrityCheck(), std::string("ok"));
    }
};

int main(int argc, char** argv)
{
    if (argc >= 2 && std::string(argv[1]) == "--child-search")
        return childSearch(argc, argv);
    QCoreApplication app(argc, argv);
    TestSearch t;
    return QTest::qExec(&t, argc, argv);
}

#include "test_search.moc"
