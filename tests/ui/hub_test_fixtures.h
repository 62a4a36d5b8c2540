// Fixtures of test_hub: a real tiny LLaMA checkpoint in memory, a hand-made Hugging Face cache covering what
// the scan must tell apart, and an environment guard. Header-only, included by test_hub.cpp alone.
#pragma once

#include <QtTest/QtTest>

#include <QDir>
#include <QFile>
#include <QRandomGenerator>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "io/safetensors_header.h"

namespace qpruner::testing {

inline QByteArray readBytes(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray("<unreadable>");
}

inline void writeBytes(const QString& path, const QByteArray& bytes)
{
    QDir().mkpath(QFileInfo(path).absolutePath());
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QCOMPARE(f.write(bytes), bytes.size());
}

// A LLaMA with tiny shapes, as a Hugging Face checkpoint: config.json and a model.safetensors holding every
// tensor of that config in float32.
struct TinyModel {
    QByteArray config;
    QByteArray weights;
    qint64 parameters = 0; // counted from the tensor shapes written
};

inline TinyModel makeTinyLlama()
{
    constexpr int64_t D = 16, F = 40, L = 2, H = 4, KV = 2, HD = 4, V = 48;
    std::map<std::string, qpruner::io::SafetensorsEntry> t;
    auto add = [&](const std::string& name, std::vector<int64_t> shape) { t[name] = {"F32", std::move(shape)}; };
    add("model.embed_tokens.weight", {V, D});
    for (int l = 0; l < L; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {D});
        add(p + "self_attn.q_proj.weight", {H * HD, D});
        add(p + "self_attn.k_proj.weight", {KV * HD, D});
        add(p + "self_attn.v_proj.weight", {KV * HD, D});
        add(p + "self_attn.o_proj.weight", {D, H * HD});
        add(p + "post_attention_layernorm.weight", {D});
        add(p + "mlp.gate_proj.weight", {F, D});
        add(p + "mlp.up_proj.weight", {F, D});
        add(p + "mlp.down_proj.weight", {D, F});
    }
    add("model.norm.weight", {D});
    add("lm_head.weight", {V, D});
    TinyModel m;
    for (const auto& [name, e] : t) {
        int64_t n = 1;
        for (int64_t d : e.shape)
            n *= d;
        m.parameters += n;
    }
    const std::string header = qpruner::io::buildSafetensorsHeader(t, {{"format", "pt"}});
    QByteArray data;
    QRandomGenerator rng(42);
    for (qint64 i = 0; i < m.parameters; ++i) {
        const float v = float(int(rng.bounded(2000)) - 1000) / 1000.0f;
        data.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    m.weights = QByteArray::fromStdString(header) + data;
    m.config = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
 "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "vocab_size": 48, "max_position_embeddings": 64, "rms_norm_eps": 1e-05, "tie_word_embeddings": false,
 "torch_dtype": "float32"})";
    return m;
}

inline QStringList incompleteBlobs(const QString& repoDir)
{
    return QDir(repoDir + QStringLiteral("/blobs")).entryList({QStringLiteral("*.incomplete")}, QDir::Files);
}

// Every entry under the snapshot resolves to a file; the dangling ones otherwise.
inline QStringList brokenLinks(const QString& snapshotDir)
{
    QStringList broken;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(snapshotDir.toStdString(), ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code e2;
        if (!it->is_directory(e2) && !std::filesystem::is_regular_file(it->path(), e2))
            broken << QString::fromStdString(it->path().string());
    }
    return broken;
}

// Sets and unsets environment variables for one test, restoring them afterwards.
class EnvGuard {
public:
    ~EnvGuard()
    {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            if (it->second)
                qputenv(it->first.constData(), *it->second);
            else
                qunsetenv(it->first.constData());
        }
    }
    void set(const char* name, const QByteArray& value)
    {
        remember(name);
        qputenv(name, value);
    }
    void unset(const char* name)
    {
        remember(name);
        qunsetenv(name);
    }

private:
    void remember(const char* name)
    {
        for (const auto& s : saved_)
            if (s.first == name)
                return;
        saved_.append({name, qEnvironmentVariableIsSet(name) ? std::optional(qgetenv(name)) : std::nullopt});
    }
    QList<std::pair<QByteArray, std::optional<QByteArray>>> saved_;
};

// A hand-made hub cache covering what the scan must tell apart.
struct SampleCache {
    QString root;
    QByteArray goodConfig = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
 "num_hidden_layers": 22})";
    QByteArray brokenConfig = R"({"hidden_size": 16,)";
    qint64 goodSize = 0;
    qint64 brokenSize = 0;

    QString repo(const QString& folder) const { return root + QLatin1Char('/') + folder; }
    void blob(const QString& folder, const QString& etag, const QByteArray& bytes) const
    {
        writeBytes(repo(folder) + QStringLiteral("/blobs/") + etag, bytes);
    }
    void link(const QString& folder, const QString& commit, const QString& name, const QString& etag) const
    {
        const QString path = repo(folder) + QStringLiteral("/snapshots/") + commit + QLatin1Char('/') + name;
        QDir().mkpath(QFileInfo(path).absolutePath());
        const QString target = QStringLiteral("../").repeated(2 + int(name.count(QLatin1Char('/')))) +
                               QStringLiteral("blobs/") + etag;
        std::filesystem::create_symlink(target.toStdString(), path.toStdString());
    }
    void ref(const QString& folder, const QString& commit) const
    {
        writeBytes(repo(folder) + QStringLiteral("/refs/main"), commit.toLatin1());
    }

    explicit SampleCache(const QString& dir) : root(dir)
    {
        const QByteArray weights(1000, 'w'), tokenizer(300, 't');
        // org/good: two snapshots sharing the weights blob; refs/main names the newer. Its tokenizer blob is
        // linked twice and must count once.
        const QString good = QStringLiteral("models--org--good");
        blob(good, QStringLiteral("c0"), R"({"model_type": "llama"})");
        blob(good, QStringLiteral("c1"), goodConfig);
        blob(good, QStringLiteral("w1"), weights);
        blob(good, QStringLiteral("t1"), tokenizer);
        link(good, QStringLiteral("aaaa"), QStringLiteral("config.json"), QStringLiteral("c0"));
        link(good, QStringLiteral("aaaa"), QStringLiteral("model.safetensors"), QStringLiteral("w1"));
        link(good, QStringLiteral("bbbb"), QStringLiteral("config.json"), QStringLiteral("c1"));
        link(good, QStringLiteral("bbbb"), QStringLiteral("model.safetensors"), QStringLiteral("w1"));
        link(good, QStringLiteral("bbbb"), QStringLiteral("tokenizer.json"), QStringLiteral("t1"));
        link(good, QStringLiteral("bbbb"), QStringLiteral("tokenizer_copy.json"), QStringLiteral("t1"));
        ref(good, QStringLiteral("bbbb"));
        goodSize = goodConfig.size() + weights.size() + tokenizer.size();

        // org/broken: config.json cut off mid-object.
        const QString broken = QStringLiteral("models--org--broken");
        blob(broken, QStringLiteral("bc"), brokenConfig);
        blob(broken, QStringLiteral("bw"), QByteArray(10, 'x'));
        link(broken, QStringLiteral("s1"), QStringLiteral("config.json"), QStringLiteral("bc"));
        link(broken, QStringLiteral("s1"), QStringLiteral("model.safetensors"), QStringLiteral("bw"));
        ref(broken, QStringLiteral("s1"));
        brokenSize = brokenConfig.size() + 10;

        // org/sharded: the index names two shards, only one is there; tokenizer.json dangles.
        const QString sharded = QStringLiteral("models--org--sharded");
        blob(sharded, QStringLiteral("sc"), goodConfig);
        blob(sharded, QStringLiteral("si"), R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
 "b": "model-00002-of-00002.safetensors"}})");
        blob(sharded, QStringLiteral("s1"), QByteArray(64, 's'));
        link(sharded, QStringLiteral("cc"), QStringLiteral("config.json"), QStringLiteral("sc"));
        link(sharded, QStringLiteral("cc"), QStringLiteral("model.safetensors.index.json"), QStringLiteral("si"));
        link(sharded, QStringLiteral("cc"), QStringLiteral("model-00001-of-00002.safetensors"), QStringLiteral("s1"));
        link(sharded, QStringLiteral("cc"), QStringLiteral("tokenizer.json"), QStringLiteral("gone"));
        ref(sharded, QStringLiteral("cc"));

        // org/partial: the weights are still downloading.
        const QString partial = QStringLiteral("models--org--partial");
        blob(partial, QStringLiteral("pc"), goodConfig);
        blob(partial, QStringLiteral("pw.incomplete"), QByteArray(123, 'p'));
        link(partial, QStringLiteral("dd"), QStringLiteral("config.json"), QStringLiteral("pc"));
        ref(partial, QStringLiteral("dd"));

        // gpt2 (no organisation, no refs): the newer of two snapshots is shown.
        const QString gpt2 = QStringLiteral("models--gpt2");
        blob(gpt2, QStringLiteral("g0"), R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})");
        blob(gpt2, QStringLiteral("g1"), QByteArray(20, 'g'));
        for (const QString& snap : {QStringLiteral("old1"), QStringLiteral("new2")}) {
            link(gpt2, snap, QStringLiteral("config.json"), QStringLiteral("g0"));
            link(gpt2, snap, QStringLiteral("model.safetensors"), QStringLiteral("g1"));
        }
        std::filesystem::last_write_time((repo(gpt2) + QStringLiteral("/snapshots/old1")).toStdString(),
                            std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));

        // Not model repos.
        blob(QStringLiteral("datasets--org--data"), QStringLiteral("d0"), "{}");
        link(QStringLiteral("datasets--org--data"), QStringLiteral("x"), QStringLiteral("config.json"), QStringLiteral("d0"));
        QDir().mkpath(repo(QStringLiteral("spaces--org--app/snapshots/y")));
        writeBytes(root + QStringLiteral("/version.txt"), "1");
    }
};

} // namespace qpruner::testing
