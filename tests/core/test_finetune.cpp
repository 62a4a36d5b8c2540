// Tests of the recovery fine-tune (finetune/trainer, adapter_io, recovery): only adapters learn, training lowers
// validation loss on a real model, adapters round-trip through PEFT-named files, merged weights equal the adapted
// forward, a resumed (or cancelled and resumed) run equals an uninterrupted one, and the schedule, clipping,
// accumulation and optimizer state behave as specified.
#include <QtTest/QtTest>

#include <QTemporaryDir>

#include <cmath>
#include <fstream>

#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "finetune/adapter_io.h"
#include "finetune/loftq.h"
#include "finetune/recovery.h"
#include "finetune/trainer.h"
#include "io/json_file.h"
#include "model/checkpoint.h"
#include "model/random_model.h"
#include "model/safetensors_file.h"
#include "model_fixtures.h"
#include "qpruner/error.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"
#include "test_data.h"

using namespace qpruner;
using namespace qpruner::testing;
namespace fs = std::filesystem;

namespace {

// Random examples of lengths 8..24 with prompts of 0..5 tokens, vocab 512.
finetune::TrainData syntheticData(int train, int validation, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    auto make = [&](int n) {
        std::vector<finetune::TrainExample> v;
        for (int i = 0; i < n; ++i) {
            finetune::TrainExample e;
            const int len = 8 + static_cast<int>(rng() % 17);
            for (int t = 0; t < len; ++t)
                e.tokens.push_back(static_cast<int32_t>(3 + rng() % 509));
            e.promptTokens = static_cast<int32_t>(rng() % 6);
            v.push_back(e);
        }
        return v;
    };
    finetune::TrainData d;
    d.train = make(train);
    d.validation = make(validation);
    return d;
}

// A random stories-shaped model (2 layers) quantized with a mixed map, LoRA attached with dropout.
struct Adapted {
    std::unique_ptr<model::LlamaModel> model;
    std::vector<at::Tensor> params;
};

PrecisionMap mixedMap()
{
    return PrecisionMap::fromJson(nlohmann::json{{"version", 1},
                                                 {"default", "nf4"},
                                                 {"layers", {{"1", {{"default", "int8"}, {"down", "bf16"}}}}}});
}

// With fp32Compute the activations are fp32 (the embedding converted back after quantizing), else the map's bf16.
Adapted adaptedModel(finetune::LoraInit init, double dropout = 0.05, uint64_t seed = 7, bool fp32Compute = false)
{
    Adapted a;
    a.model = model::makeRandomModel(storiesShapedConfig(2), at::kFloat, 3);
    const auto dense = finetune::captureLinears(*a.model);
    quant::quantizeModel(*a.model, mixedMap());
    if (fp32Compute) {
        a.model->embedding = a.model->embedding.to(at::kFloat);
        a.model->setWeightDtype(at::kFloat);
    }
    FinetuneSettings s;
    s.dropout = dropout;
    finetune::LoraOptions lo;
    lo.seed = seed;
    finetune::InitOptions io;
    io.init = init;
    io.reportBoth = false;
    a.params = finetune::attachLoraWithInit(*a.model, dense, s, lo, io).params;
    return a;
}

finetune::TrainOptions smallOptions();

// adaptedModel() after `steps` steps on 12 synthetic examples.
Adapted trainedModel(int steps, uint64_t dataSeed, bool fp32Compute = false);

finetune::TrainOptions smallOptions()
{
    finetune::TrainOptions o;
    o.steps = 8;
    o.batchSize = 6;
    o.microBatch = 4;
    o.lr = 5e-3;
    o.warmupSteps = 2;
    o.evalEvery = 3;
    o.saveEvery = 0;
    o.seed = 11;
    return o;
}

Adapted trainedModel(int steps, uint64_t dataSeed, bool fp32Compute)
{
    auto a = adaptedModel(finetune::LoraInit::Loftq, 0.05, 7, fp32Compute);
    auto o = smallOptions();
    o.steps = steps;
    finetune::Trainer(*a.model, a.params, syntheticData(12, 0, dataSeed), o).run();
    return a;
}

at::Tensor logitsOf(const model::LlamaModel& m, const at::Tensor& tokens)
{
    c10::InferenceMode guard;
    return m.forward(tokens);
}

bool sameTensors(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b)
{
    if (a.size() != b.size())
        return false;
    for (const auto& [name, t] : a) {
        auto it = b.find(name);
        if (it == b.end() || !at::equal(t, it->second))
            return false;
    }
    return true;
}

} // namespace

class TestFinetune : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void schedule()
    {
        finetune::TrainOptions o;
        o.lr = 1e-3;
        o.warmupSteps = 10;
        o.schedule = finetune::LrSchedule::Cosine;
        QCOMPARE(finetune::scheduledLr(o, 0, 110), 0.0);
        QCOMPARE(finetune::scheduledLr(o, 5, 110), 5e-4);
        QCOMPARE(finetune::scheduledLr(o, 10, 110), 1e-3);
        QVERIFY(std::abs(finetune::scheduledLr(o, 60, 110) - 5e-4) < 1e-15); // half-way through the decay
        QVERIFY(std::abs(finetune::scheduledLr(o, 35, 110) - 1e-3 * 0.5 * (1 + std::cos(M_PI / 4))) < 1e-15);
        o.schedule = finetune::LrSchedule::Linear;
        QVERIFY(std::abs(finetune::scheduledLr(o, 35, 110) - 7.5e-4) < 1e-15);
        QCOMPARE(finetune::scheduledLr(o, 110, 110), 0.0);
        o.schedule = finetune::LrSchedule::Constant;
        QCOMPARE(finetune::scheduledLr(o, 100, 110), 1e-3);
        o.warmupSteps = 500; // clamped to the run: the last step still warms up
        QCOMPARE(finetune::scheduledLr(o, 50, 100), 5e-4);
        QVERIFY(expectThrow<ConfigError>([] { finetune::parseLrSchedule("cosin"); }).contains("cosin"));
    }

    // Micro-batches of different lengths accumulate to the gradient of one pass over all targets, and clipping
    // scales the gradients to the asked norm.
    void accumulationAndClipping()
    {
        auto a = adaptedModel(finetune::LoraInit::Loftq, 0.0, 7, true);
        const auto data = syntheticData(6, 0, 5);
        auto mb = [&](size_t i0, size_t n) {
            std::vector<const finetune::TrainExample*> ex;
            size_t T = 0;
            for (size_t i = i0; i < i0 + n; ++i)
                T = std::max(T, data.train[i].tokens.size());
            at::Tensor tokens = at::zeros({int64_t(n), int64_t(T)}, at::kLong);
            at::Tensor mask = at::zeros({int64_t(n), int64_t(T)}, at::kBool);
            for (size_t b = 0; b < n; ++b) {
                const auto& e = data.train[i0 + b];
                for (size_t t = 0; t < e.tokens.size(); ++t) {
                    tokens[int64_t(b)][int64_t(t)] = e.tokens[t];
                    mask[int64_t(b)][int64_t(t)] = int32_t(t) >= std::max(e.promptTokens, 1);
                }
            }
            return finetune::MicroBatch{tokens, mask};
        };
        // Gradients of the whole batch in one pass (lr 0: nothing moves).
        finetune::AdamW one(a.params, {0.0});
        const auto whole = finetune::trainStep(*a.model, one, std::vector<finetune::MicroBatch>{mb(0, 6)});
        std::vector<at::Tensor> g1;
        for (const auto& p : a.params)
            g1.push_back(p.grad().clone());
        finetune::AdamW two(a.params, {0.0});
        const auto split = finetune::trainStep(*a.model, two, {mb(0, 2), mb(2, 3), mb(5, 1)});
        QVERIFY(std::abs(whole.loss - split.loss) < 1e-5);
        QCOMPARE(whole.targets, split.targets);
        double normSq = 0;
        for (size_t i = 0; i < g1.size(); ++i) {
            QVERIFY(maxAbsDiff(g1[i], a.params[i].grad()) < 1e-5);
            normSq += g1[i].pow(2).sum().item<double>();
        }
        QVERIFY(std::abs(split.gradNorm - std::sqrt(normSq)) < 1e-4 * std::sqrt(normSq));
        QVERIFY(split.gradNorm > 0.01);
        // Clipped to a tenth of the norm.
        finetune::AdamW three(a.params, {0.0});
        const double maxNorm = split.gradNorm / 10;
        const auto clipped = finetune::trainStep(*a.model, three, {mb(0, 6)}, maxNorm);
        double after = 0;
        for (const auto& p : a.params)
            after += p.grad().pow(2).sum().item<double>();
        QVERIFY(std::abs(clipped.gradNorm - split.gradNorm) < 1e-4 * split.gradNorm); // reported before clipping
        QVERIFY(std::abs(std::sqrt(after) - maxNorm) < 1e-4 * maxNorm);
    }

    // Only the adapters change: every stored tensor of the frozen model is bit-identical after training.
    void onlyAdaptersLearn()
    {
        auto a = adaptedModel(finetune::LoraInit::Loftq);
        std::map<std::string, at::Tensor> frozen;
        auto snapshot = [&](std::map<std::string, at::Tensor>& out) {
            out["embedding"] = a.model->embedding.clone();
            out["norm"] = a.model->finalNorm.clone();
            for (size_t l = 0; l < a.model->layers.size(); ++l) {
                const auto& L = a.model->layers[l];
                out["attn_norm" + std::to_string(l)] = L.attnNorm.clone();
                out["ffn_norm" + std::to_string(l)] = L.ffnNorm.clone();
                for (const LinearModule m : kLinearModules) {
                    const auto* lora = dynamic_cast<const finetune::LoraLinear*>(model::layerLinear(L, m).get());
                    QVERIFY(lora);
                    const std::string key = std::to_string(l) + linearModuleName(m);
                    if (const auto* q = dynamic_cast<const quant::QuantLinear*>(lora->base().get()))
                        for (const auto& [suffix, t] : q->quantized().parts)
                            out[key + suffix] = t.clone();
                    else
                        out[key] = lora->base()->denseWeight().clone();
                }
            }
        };
        snapshot(frozen);
        std::vector<at::Tensor> before;
        for (const auto& p : a.params)
            before.push_back(p.detach().clone());
        const auto data = syntheticData(24, 6, 1);
        finetune::Trainer trainer(*a.model, a.params, data, smallOptions());
        const auto r = trainer.run();
        QCOMPARE(r.steps, int64_t(8));
        std::map<std::string, at::Tensor> after;
        snapshot(after);
        QVERIFY(sameTensors(frozen, after));
        QVERIFY(!a.model->embedding.requires_grad());
        int changed = 0;
        for (size_t i = 0; i < before.size(); ++i)
            changed += at::equal(before[i], a.params[i].detach()) ? 0 : 1;
        QCOMPARE(changed, int(before.size())); // every A and B moved
    }

    // A few dozen steps on stories260K (nf4) lower the validation loss of held-out TinyStories windows.
    void trainingLowersValidationLoss()
    {
        const fs::path dir = sharedDataDir() / "models/stories260K";
        if (!fs::exists(dir / "stories260K.bin")) {
            if (dataRequired())
                QFAIL("shared data missing: models/stories260K");
            QSKIP("shared data not found (set QPRUNER_SHARED_DATA)");
        }
        auto m = model::loadModel(dir / "stories260K.bin");
        const auto tok = loadTokenizer(dir / "tok512.model");
        finetune::DataOptions d;
        d.seqLen = 64;
        d.maxExamples = 300;
        d.validationCount = 40;
        const auto data =
            finetune::loadTrainData(sharedDataDir() / "text/tinystories/tinystories_valid_subset.txt", *tok, d);
        const auto dense = finetune::captureLinears(*m);
        quant::quantizeModel(*m, PrecisionMap(parseQuantSpec("nf4")));
        FinetuneSettings s;
        finetune::InitOptions io;
        io.init = finetune::LoraInit::Lora;
        auto prepared = finetune::attachLoraWithInit(*m, dense, s, {}, io);
        finetune::TrainOptions o;
        o.steps = 30;
        o.batchSize = 8;
        o.microBatch = 8;
        o.lr = 2e-3;
        o.warmupSteps = 3;
        o.evalEvery = 0;
        finetune::Trainer trainer(*m, prepared.params, data, o);
        std::vector<Progress> events;
        const auto r = trainer.run([&](const Progress& p) { events.push_back(p); });
        QCOMPARE(r.validation.size(), size_t(2)); // before training and at the end
        // Progress: 30 steps (each with its loss and lr), and each of the two validations per micro-batch of 8
        // (40 examples: 5 events) plus its end (40/40, with the loss for a plot).
        int steps = 0, validation = 0;
        std::vector<std::pair<double, double>> validated; // (step, val_loss)
        for (const Progress& p : events) {
            if (p.stage == "finetune") {
                ++steps;
                QCOMPARE(p.values.size(), size_t(2));
                QCOMPARE(p.values[0].first, std::string("loss"));
                QCOMPARE(p.values[0].second, r.train[size_t(steps - 1)].loss);
            }
            if (p.stage == "finetune: validation") {
                ++validation;
                QCOMPARE(p.total, int64_t(40));
                QVERIFY(p.done % 8 == 0 && p.done <= 40);
                if (p.done == 40) {
                    QCOMPARE(p.values.size(), size_t(2));
                    validated.emplace_back(p.values[0].second, p.values[1].second);
                } else {
                    QVERIFY(p.values.empty());
                }
            }
        }
        QCOMPARE(steps, 30);
        QCOMPARE(validation, 12);
        QCOMPARE(validated.size(), size_t(2));
        QCOMPARE(validated.front().first, 0.0);
        QCOMPARE(validated.back().first, 30.0);
        QCOMPARE(validated.front().second, r.validation.front().loss);
        QCOMPARE(validated.back().second, r.validation.back().loss);
        QCOMPARE(events.front().stage, std::string("finetune: validation")); // the initialisation, first
        const double before = r.validation.front().loss, after = r.validation.back().loss;
        qInfo("validation loss %.4f -> %.4f after 30 steps", before, after);
        QVERIFY(after < before - 0.02);
        QCOMPARE(r.bestStep, int64_t(30));
        QVERIFY(std::abs(trainer.validationLoss() - after) < 1e-9);
        // A cancel during the first validation stops there: no validation point, no step, cancelled.
        CancelToken stop;
        finetune::Trainer cut(*m, prepared.params, data, o);
        const auto c = cut.run(
            [&](const Progress& p) {
                if (p.stage == "finetune: validation" && p.done >= 16)
                    stop.cancel();
            },
            &stop);
        QVERIFY(c.cancelled);
        QCOMPARE(c.validation.size(), size_t(0));
        QCOMPARE(c.steps, int64_t(0));
    }

    // save -> load gives the same logits exactly; PEFT names and config keys; bad adapter files are refused.
    void adapterRoundTrip()
    {
        auto a = trainedModel(3, 2);
        const at::Tensor tokens = randomTokens(2, 12, 512, 9);
        const at::Tensor expected = logitsOf(*a.model, tokens);

        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        finetune::AdapterConfig ac;
        ac.targets = {kLinearModules.begin(), kLinearModules.end()};
        ac.dropout = 0.05;
        ac.init = finetune::LoraInit::Loftq;
        ac.loftqIterations = 1;
        ac.precisionMap = mixedMap().toJson();
        finetune::saveAdapter(*a.model, dir, ac);
        const auto contents = model::readSafetensorsFile(dir / finetune::kAdapterWeightsFile);
        QCOMPARE(contents.tensors.size(), size_t(2 * 7 * 2));
        const auto& qa = contents.tensors.at("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
        QCOMPARE(qa.sizes(), (at::IntArrayRef{8, 172}));
        QCOMPARE(contents.tensors.at("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight").sizes(),
                 (at::IntArrayRef{32, 8}));
        const auto cfg = io::readJsonFile(dir / finetune::kAdapterConfigFile);
        QCOMPARE(cfg["peft_type"].get<std::string>(), std::string("LORA"));
        QCOMPARE(cfg["r"].get<int>(), 8);
        QCOMPARE(cfg["lora_alpha"].get<double>(), 16.0);
        QCOMPARE(cfg["target_modules"][4].get<std::string>(), std::string("gate_proj"));
        QCOMPARE(cfg["init_lora_weights"].get<std::string>(), std::string("loftq"));

        // The same base, fresh adapters loaded from the directory.
        std::vector<std::pair<model::LinearPtr*, model::LinearPtr>> bases;
        auto b = model::makeRandomModel(storiesShapedConfig(2), at::kFloat, 3);
        quant::quantizeModel(*b, mixedMap());
        for (size_t l = 0; l < b->layers.size(); ++l)
            for (const LinearModule m : kLinearModules) // LoftQ's bases, as the adapter was trained on
                model::layerLinear(b->layers[l], m) =
                    dynamic_cast<const finetune::LoraLinear&>(*model::layerLinear(a.model->layers[l], m)).base();
        finetune::loadAdapter(*b, dir);
        QVERIFY(at::equal(logitsOf(*b, tokens), expected));
        QVERIFY(expectThrow<ConfigError>([&] { finetune::loadAdapter(*b, dir); }).contains("already has LoRA"));

        // Damaged adapters name the file and the tensor; the model is left without adapters.
        auto c = model::makeRandomModel(storiesShapedConfig(2), at::kFloat, 3);
        auto tensors = contents.tensors;
        tensors.erase("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        model::writeSafetensorsFile(dir / finetune::kAdapterWeightsFile, tensors);
        QString msg = expectThrow<FormatError>([&] { finetune::loadAdapter(*c, dir); });
        QVERIFY2(msg.contains("layers.1.self_attn.v_proj.lora_B.weight") && msg.contains("missing"), qPrintable(msg));
        QCOMPARE(finetune::detachLora(*c), 0);
        tensors = contents.tensors;
        tensors["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = at::zeros({8, 63});
        model::writeSafetensorsFile(dir / finetune::kAdapterWeightsFile, tensors);
        msg = expectThrow<FormatError>([&] { finetune::loadAdapter(*c, dir); });
        QVERIFY2(msg.contains("up_proj.lora_A") && msg.contains("[8, 63]") && msg.contains("[8, 64]"),
                 qPrintable(msg));
        tensors = contents.tensors;
        tensors["base_model.model.model.layers.2.mlp.up_proj.lora_A.weight"] = at::zeros({8, 64});
        model::writeSafetensorsFile(dir / finetune::kAdapterWeightsFile, tensors);
        msg = expectThrow<FormatError>([&] { finetune::loadAdapter(*c, dir); });
        QVERIFY2(msg.contains("layers.2.mlp.up_proj") && msg.contains("no LoRA layer"), qPrintable(msg));
        { std::ofstream(dir / finetune::kAdapterConfigFile) << "{\"r\": 8, \"target_modules\": [\"q_prj\"]}"; }
        msg = expectThrow<FormatError>([&] { finetune::loadAdapter(*c, dir); });
        QVERIFY2(msg.contains("adapter_config.json") && msg.contains("target_modules") && msg.contains("q_prj"),
                 qPrintable(msg));
        { std::ofstream(dir / finetune::kAdapterConfigFile) << "{\"r\": 8, \"target"; }
        QVERIFY(expectThrow<FormatError>([&] { finetune::loadAdapter(*c, dir); }).contains("adapter_config.json"));
        QCOMPARE(finetune::detachLora(*c), 0);
    }

    // Merged dense weights give the adapted model's forward.
    void mergedEqualsAdapted()
    {
        auto a = trainedModel(4, 4);
        const at::Tensor tokens = randomTokens(2, 16, 512, 3);
        const at::Tensor adapted = logitsOf(*a.model, tokens);
        QCOMPARE(finetune::mergeAdapters(*a.model, at::kFloat), 14);
        QCOMPARE(finetune::detachLora(*a.model), 0);
        const at::Tensor merged = logitsOf(*a.model, tokens);
        // The compute dtype is bf16 (the map's embedding), so compare at its precision.
        const double diff = maxAbsDiff(adapted, merged), scale = adapted.abs().max().item<double>();
        qInfo("max |adapted - merged| = %.3g (logits up to %.3g)", diff, scale);
        QVERIFY(diff < 0.02 * scale);
        // And at fp32 compute the two agree up to summation order (W x + s B (A x) against (W + s B A) x).
        auto b = trainedModel(4, 4, true);
        const at::Tensor adapted32 = logitsOf(*b.model, tokens);
        finetune::mergeAdapters(*b.model, at::kFloat);
        const double diff32 = maxAbsDiff(adapted32, logitsOf(*b.model, tokens));
        qInfo("fp32 compute: max |adapted - merged| = %.3g", diff32);
        QVERIFY(diff32 < 5e-4 * adapted32.abs().max().item<double>()); // summation order only
    }

    // A run stopped at a checkpoint and resumed in a fresh model equals the uninterrupted run bit for bit
    // (adapters, optimizer state, curves), dropout included; cancelling leaves a checkpoint to resume from.
    void resumeEqualsUninterrupted()
    {
        const auto data = syntheticData(20, 5, 3);
        auto o = smallOptions();
        o.steps = 9;
        o.saveEvery = 4;
        QTemporaryDir t1, t2;
        finetune::AdapterConfig ac;
        ac.targets = {kLinearModules.begin(), kLinearModules.end()};
        ac.dropout = 0.05;

        auto full = adaptedModel(finetune::LoraInit::Loftq);
        finetune::Trainer reference(*full.model, full.params, data, o, {fs::path(t1.path().toStdString()), ac});
        const auto r1 = reference.run();
        const auto last = model::readSafetensorsFile(fs::path(t1.path().toStdString()) / "checkpoint" /
                                                     finetune::kAdapterWeightsFile);

        // Cancel after 5 steps (the cancel is seen before step 6).
        const fs::path out = t2.path().toStdString();
        auto part = adaptedModel(finetune::LoraInit::Loftq);
        CancelToken cancel;
        finetune::Trainer first(*part.model, part.params, data, o, {out, ac});
        const auto r2 = first.run([&](const Progress& p) { if (p.stage == "finetune" && p.done == 5) cancel.cancel(); }, &cancel);
        QVERIFY(r2.cancelled);
        QCOMPARE(r2.steps, int64_t(5));
        QVERIFY(fs::exists(out / finetune::kAdapterWeightsFile)); // a usable adapter (best so far)
        QCOMPARE(io::readJsonFile(out / "checkpoint/trainer_state.json")["step"].get<int64_t>(), int64_t(5));

        auto again = adaptedModel(finetune::LoraInit::Loftq, 0.05, 999); // other init: the checkpoint replaces it
        finetune::Trainer second(*again.model, again.params, data, o, {out, ac});
        second.resume();
        QCOMPARE(second.step(), int64_t(5));
        const auto r3 = second.run();
        QCOMPARE(r3.resumedFrom, int64_t(5));
        QCOMPARE(r3.steps, int64_t(9));
        const auto resumed = model::readSafetensorsFile(out / "checkpoint" / finetune::kAdapterWeightsFile);
        QVERIFY(sameTensors(last.tensors, resumed.tensors));
        const auto opt1 = model::readSafetensorsFile(fs::path(t1.path().toStdString()) / "checkpoint/optimizer.safetensors");
        const auto opt2 = model::readSafetensorsFile(out / "checkpoint/optimizer.safetensors");
        QVERIFY(sameTensors(opt1.tensors, opt2.tensors));
        QCOMPARE(r3.train.size(), r1.train.size());
        for (size_t i = 0; i < r1.train.size(); ++i)
            QCOMPARE(r3.train[i].loss, r1.train[i].loss);
        QCOMPARE(r3.validation.size(), r1.validation.size());
        QCOMPARE(r3.bestStep, r1.bestStep);
        QCOMPARE(r3.bestValidationLoss, r1.bestValidationLoss);
        // The selected adapters agree too.
        QVERIFY(sameTensors(model::readSafetensorsFile(fs::path(t1.path().toStdString()) / finetune::kAdapterWeightsFile).tensors,
                            model::readSafetensorsFile(out / finetune::kAdapterWeightsFile).tensors));

        // Other settings are refused, naming the setting.
        auto other = adaptedModel(finetune::LoraInit::Loftq);
        auto o2 = o;
        o2.batchSize = 5;
        finetune::Trainer mismatch(*other.model, other.params, data, o2, {out, ac});
        QVERIFY(expectThrow<ConfigError>([&] { mismatch.resume(); }).contains("batch_size"));
        QTemporaryDir empty;
        finetune::Trainer none(*other.model, other.params, data, o, {fs::path(empty.path().toStdString()), ac});
        QVERIFY(expectThrow<FileError>([&] { none.resume(); }).contains("no checkpoint"));
    }

    void optimizerState()
    {
        at::Tensor p = at::randn({3, 4}).requires_grad_(true);
        at::Tensor q = at::randn({2}).requires_grad_(true);
        finetune::AdamW opt({p, q}, {1e-2});
        p.mutable_grad() = at::ones({3, 4});
        opt.step();
        const auto state = opt.state();
        QCOMPARE(state.size(), size_t(3)); // m.0, v.0, steps (q never updated)
        QCOMPARE(state.at("steps")[0].item<int64_t>(), int64_t(1));
        finetune::AdamW fresh({p, q}, {1e-2});
        fresh.loadState(state);
        QVERIFY(sameTensors(fresh.state(), state));
        auto bad = state;
        bad["m.1"] = at::zeros({2});
        QVERIFY(expectThrow<FormatError>([&] { fresh.loadState(bad); }).contains("tensor 1"));
        bad = state;
        bad["v.0"] = at::zeros({4, 3});
        QVERIFY(expectThrow<FormatError>([&] { fresh.loadState(bad); }).contains("shape"));
        bad = state;
        bad["steps"] = at::zeros({3}, at::kLong);
        QVERIFY(expectThrow<FormatError>([&] { fresh.loadState(bad); }).contains("steps"));
    }

    void badOptions()
    {
        auto a = adaptedModel(finetune::LoraInit::Lora);
        const auto data = syntheticData(4, 0, 1);
        auto o = smallOptions();
        o.microBatch = 0;
        QVERIFY(expectThrow<ConfigError>([&] { finetune::Trainer(*a.model, a.params, data, o); })
                    .contains("micro-batch"));
        o = smallOptions();
        o.steps = 0;
        o.epochs = 0;
        QVERIFY(expectThrow<ConfigError>([&] { finetune::Trainer(*a.model, a.params, data, o); }).contains("epochs"));
        finetune::TrainData empty;
        QVERIFY(expectThrow<ConfigError>([&] { finetune::Trainer(*a.model, a.params, empty, smallOptions()); })
                    .contains("empty"));
        auto longData = syntheticData(2, 0, 1);
        longData.train[1].tokens.assign(300, 5);
        QVERIFY(expectThrow<ConfigError>([&] { finetune::Trainer(*a.model, a.params, longData, smallOptions()); })
                    .contains("example 1 has 300 tokens"));
        // Epochs decide the step count: ceil(2.5 * 10 / 4) = 7.
        o = smallOptions();
        o.steps = 0;
        o.epochs = 2.5;
        o.batchSize = 4;
        QCOMPARE(finetune::Trainer(*a.model, a.params, syntheticData(10, 0, 1), o).totalSteps(), int64_t(7));
    }

    // The whole stage on a real model: outputs on disk, the map's formats in the base, eval through the files.
    void recoveryStage()
    {
        const fs::path dir = sharedDataDir() / "models/stories260K";
        if (!fs::exists(dir / "stories260K.bin")) {
            if (dataRequired())
                QFAIL("shared data missing: models/stories260K");
            QSKIP("shared data not found (set QPRUNER_SHARED_DATA)");
        }
        QTemporaryDir tmp;
        const fs::path out = fs::path(tmp.path().toStdString()) / "adapter";
        auto m = model::loadModel(dir / "stories260K.bin");
        const auto tok = loadTokenizer(dir / "tok512.model");
        finetune::RecoveryOptions o;
        o.dataFile = sharedDataDir() / "finetune/alpaca_small_2000.json";
        o.data.format = finetune::DataFormat::Alpaca;
        o.data.seqLen = 256;
        o.data.maxExamples = 60;
        o.data.validationCount = 10;
        o.init.loftqIterations = 2;
        o.train.steps = 4;
        o.train.batchSize = 4;
        o.train.warmupSteps = 1;
        o.train.lr = 1e-3;
        o.outDir = out;
        o.merge = true;
        o.baseModel = (dir / "stories260K.bin").string();
        const PrecisionMap map = mixedMap();
        const auto r = finetune::runRecovery(*m, map, *tok, o);
        QCOMPARE(r.train.steps, int64_t(4));
        QCOMPARE(r.validationExamples, int64_t(10));
        QVERIFY(r.trainExamples >= 30); // records whose response the cutoff leaves nothing of are dropped
        QCOMPARE(r.init.entries.size(), size_t(5 * 7));
        for (size_t l = 0; l < 5; ++l)
            QVERIFY(r.init.layerLoftqErrors[l].back() < r.init.layerLoraInitError[l]);
        QVERIFY(r.predicted.totalBytes > 0 && r.train.peakRssBytes > 0);
        for (const char* f : {"adapter_model.safetensors", "adapter_config.json", "training.json",
                              "checkpoint/trainer_state.json", "base/config.json", "merged/config.json"})
            QVERIFY2(fs::exists(out / f), f);
        const auto training = io::readJsonFile(out / "training.json");
        QCOMPARE(training["train"]["train"].size(), size_t(4));
        QVERIFY(training["memory"]["predicted"]["total_bytes"].get<int64_t>() > 0);
        // The stored base holds the map's formats; base + adapter evaluates as the trained model does.
        const auto base = model::loadModel(out / "base");
        QCOMPARE(quant::heldSpec(*base->layers[1].q).name(), std::string("int8"));
        QCOMPARE(quant::heldSpec(*base->layers[1].down).name(), std::string("bf16"));
        QCOMPARE(quant::heldSpec(*base->layers[3].gate).name(), std::string("nf4"));
        const auto reloaded = finetune::loadModelWithAdapter(dir / "stories260K.bin", out);
        const at::Tensor tokens = randomTokens(2, 32, 512, 5);
        QVERIFY(at::equal(logitsOf(*reloaded, tokens), logitsOf(*m, tokens)));
        const auto merged = model::loadModel(out / "merged");
        const at::Tensor ref = logitsOf(*m, tokens);
        QVERIFY(maxAbsDiff(logitsOf(*merged, tokens), ref) < 0.02 * ref.abs().max().item<double>());
    }
};

QTEST_APPLESS_MAIN(TestFinetune)
#include "test_finetune.moc"
