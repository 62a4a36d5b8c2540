// Tests of the Hugging Face cache scan, the hub downloader (against an in-process server in the hub's URL
// layout, fake_hub_server.h) and the start page that shows both. The served model is a real tiny LLaMA
// (config.json + a valid model.safetensors), so the downloaded snapshot is read back with inspectModel.
#include <QtTest/QtTest>

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QTableView>
#include <QTemporaryDir>

#include <filesystem>

#include "common/number_format.h"
#include "common/shared_data.h"
#include "fake_hub_server.h"
#include "hub_test_fixtures.h"
#include "hub/hf_cache.h"
#include "hub/hf_cache_table_model.h"
#include "hub/hf_downloader.h"
#include "qpruner/model_config.h"
#include "start/download_panel.h"
#include "start/start_page.h"
#include "test_data.h"

using qpruner::testing::EnvGuard;
using qpruner::testing::FakeHubFile;
using qpruner::testing::FakeHubServer;
using qpruner::testing::SampleCache;
using qpruner::testing::TinyModel;
using qpruner::testing::brokenLinks;
using qpruner::testing::incompleteBlobs;
using qpruner::testing::makeTinyLlama;
using qpruner::testing::readBytes;
using qpruner::testing::writeBytes;
using qpruner::ui::HfCache;
using qpruner::ui::HfCachedModel;
using qpruner::ui::HfCacheTableModel;
using qpruner::ui::HfDownloader;
using qpruner::ui::StartPage;

namespace fs = std::filesystem;

namespace {

constexpr int kTimeoutMs = 20'000;
const QString kRepo = QStringLiteral("tiny/llama");
const QByteArray kCommit = QCryptographicHash::hash("tiny/llama commit 1", QCryptographicHash::Sha1).toHex();

// The hub and its CDN (another port, so the LFS redirect crosses origins) serving tiny/llama.
struct HubFixture {
    FakeHubServer hub;
    FakeHubServer cdn;
    TinyModel model = makeTinyLlama();
    QMap<QString, FakeHubFile> files;
    QTemporaryDir dir;

    HubFixture()
    {
        files[QStringLiteral("config.json")] = {model.config};
        files[QStringLiteral("generation_config.json")] = {R"({"bos_token_id": 1, "eos_token_id": 2})", false, true};
        files[QStringLiteral("model.safetensors")] = {model.weights, true};
        files[QStringLiteral("tokenizer_config.json")] = {R"({"model_max_length": 64})"};
        files[QStringLiteral("original/params.json")] = {R"({"dim": 16, "n_layers": 2})"};
        hub.setCdn(&cdn);
        hub.addRepo(kRepo, kCommit, files,
                    {QStringLiteral("README.md"), QStringLiteral("pytorch_model.bin"),
                     QStringLiteral("original/consolidated.00.pth"), QStringLiteral(".gitattributes")});
    }
    QString cache() const { return dir.path() + QStringLiteral("/hub"); }
    QString repoDir() const { return cache() + QStringLiteral("/models--tiny--llama"); }
    QString snapshot() const { return repoDir() + QStringLiteral("/snapshots/") + QString::fromLatin1(kCommit); }
    QString blob(const QString& file) const
    {
        return repoDir() + QStringLiteral("/blobs/") + QString::fromLatin1(files[file].etag());
    }
    QByteArray shardPath() const { return "/cdn/" + files[QStringLiteral("model.safetensors")].etag(); }
    qint64 bytesOf(const QStringList& names) const
    {
        qint64 n = 0;
        for (const QString& name : names)
            n += files[name].body.size();
        return n;
    }
    void configure(HfDownloader& d)
    {
        d.setEndpoint(hub.url());
        d.setToken(QStringLiteral("hf_testtoken"));
    }
    void clearLogs()
    {
        hub.requests.clear();
        cdn.requests.clear();
    }
};

const QStringList kDefaultFiles = {QStringLiteral("config.json"), QStringLiteral("generation_config.json"),
                                   QStringLiteral("model.safetensors"), QStringLiteral("tokenizer_config.json")};

const HfCachedModel* findEntry(const QList<HfCachedModel>& list, const QString& repoId)
{
    for (const HfCachedModel& m : list)
        if (m.repoId == repoId)
            return &m;
    return nullptr;
}

} // namespace

class TestHub : public QObject {
    Q_OBJECT

private:
    QTemporaryDir defaultCache_; // HF_HUB_CACHE for the whole test: never scan the developer's own cache

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QLocale::setDefault(QLocale(QLocale::English, QLocale::UnitedStates));
        QVERIFY(defaultCache_.isValid());
        qputenv("HF_HUB_CACHE", defaultCache_.path().toUtf8());
    }

    void resolvesCacheDirectory()
    {
        EnvGuard env;
        for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"})
            env.unset(name);
        env.set("HOME", "/tmp/qpruner-home");
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/tmp/qpruner-home/.cache/huggingface/hub"));
        QCOMPARE(HfCache::hfHomeDir(), QStringLiteral("/tmp/qpruner-home/.cache/huggingface"));
        env.set("XDG_CACHE_HOME", "/x/cache");
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/x/cache/huggingface/hub"));
        env.set("HF_HOME", "/y/hf");
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/y/hf/hub"));
        env.set("HF_HOME", "~/hfhome");
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/tmp/qpruner-home/hfhome/hub"));
        env.set("HF_HUB_CACHE", ""); // empty counts as unset
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/tmp/qpruner-home/hfhome/hub"));
        env.set("HUGGINGFACE_HUB_CACHE", "/legacy/hub");
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/legacy/hub"));
        env.set("HF_HUB_CACHE", "/z/hub/");
        QCOMPARE(HfCache::defaultCacheDir(), QStringLiteral("/z/hub"));

        QCOMPARE(HfCache::repoFolderName(QStringLiteral("meta-llama/Llama-3.2-1B")),
                 QStringLiteral("models--meta-llama--Llama-3.2-1B"));
        QCOMPARE(HfCache::repoIdFromFolder(QStringLiteral("models--meta-llama--Llama-3.2-1B")),
                 QStringLiteral("meta-llama/Llama-3.2-1B"));
        QCOMPARE(HfCache::repoIdFromFolder(QStringLiteral("models--gpt2")), QStringLiteral("gpt2"));
        QCOMPARE(HfCache::repoIdFromFolder(QStringLiteral("datasets--org--x")), QString());
        QVERIFY(HfCache::isValidRepoId(QStringLiteral("TinyLlama/TinyLlama-1.1B-Chat-v1.0")));
        QVERIFY(HfCache::isValidRepoId(QStringLiteral("gpt2")));
        for (const char* bad : {"", "a/b/c", "../etc", "org/..", "a--b/c", "org/name ", "/name", "org/"})
            QVERIFY2(!HfCache::isValidRepoId(QString::fromLatin1(bad)), bad);
    }

    void scansCacheEntries()
    {
        QTemporaryDir dir;
        SampleCache sample(dir.path());
        const QList<HfCachedModel> list = HfCache::scan(dir.path());
        QStringList ids;
        for (const HfCachedModel& m : list)
            ids << m.repoId;
        QCOMPARE(ids, (QStringList{"gpt2", "org/broken", "org/good", "org/partial", "org/sharded"}));

        const HfCachedModel* good = findEntry(list, QStringLiteral("org/good"));
        QVERIFY2(good->complete, qPrintable(good->problem));
        QCOMPARE(good->problem, QString());
        QCOMPARE(good->revision, QStringLiteral("bbbb"));
        QCOMPARE(good->refName, QStringLiteral("main"));
        QCOMPARE(good->snapshotDir, sample.repo(QStringLiteral("models--org--good/snapshots/bbbb")));
        QCOMPARE(good->sizeOnDisk, sample.goodSize); // 109 + 1000 + 300: the shared tokenizer blob once
        QCOMPARE(good->sizeOnDisk, qint64(1409));
        QCOMPARE(good->fileCount, 3);
        QCOMPARE(good->architecture, QStringLiteral("LlamaForCausalLM"));
        QCOMPARE(good->modelType, QStringLiteral("llama"));
        QCOMPARE(good->hiddenSize, 2048);
        QCOMPARE(good->numLayers, 22);
        QCOMPARE(good->architectureSummary(), QStringLiteral("LlamaForCausalLM (llama, 22 layers, hidden 2,048)"));

        // A corrupt config.json costs its own entry only.
        const HfCachedModel* broken = findEntry(list, QStringLiteral("org/broken"));
        QVERIFY(!broken->complete);
        QVERIFY2(broken->problem.startsWith(QStringLiteral("config.json: not valid JSON")), qPrintable(broken->problem));
        QCOMPARE(broken->architecture, QString());
        QCOMPARE(broken->sizeOnDisk, sample.brokenSize);

        const HfCachedModel* sharded = findEntry(list, QStringLiteral("org/sharded"));
        QVERIFY(!sharded->complete);
        QVERIFY2(sharded->problem.contains(QStringLiteral("missing model-00002-of-00002.safetensors")),
                 qPrintable(sharded->problem));
        QVERIFY2(sharded->problem.contains(QStringLiteral("broken link: tokenizer.json")), qPrintable(sharded->problem));
        QVERIFY(!sharded->problem.contains(QStringLiteral("00001")));

        const HfCachedModel* partial = findEntry(list, QStringLiteral("org/partial"));
        QVERIFY(!partial->complete);
        QCOMPARE(partial->partialBytes, qint64(123));
        QVERIFY2(partial->problem.contains(QStringLiteral("download incomplete (1 partial file")),
                 qPrintable(partial->problem));

        const HfCachedModel* gpt2 = findEntry(list, QStringLiteral("gpt2"));
        QVERIFY2(gpt2->complete, qPrintable(gpt2->problem));
        QCOMPARE(gpt2->revision, QStringLiteral("new2"));
        QCOMPARE(gpt2->refName, QString());
        QCOMPARE(gpt2->architecture, QStringLiteral("GPT2LMHeadModel"));
        QCOMPARE(gpt2->hiddenSize, 0);

        QVERIFY(HfCache::scan(dir.path() + QStringLiteral("/absent")).isEmpty());
        QDir().mkpath(dir.path() + QStringLiteral("/models--org--empty/blobs"));
        const HfCachedModel empty = HfCache::scanRepo(dir.path() + QStringLiteral("/models--org--empty"));
        QCOMPARE(empty.problem, QStringLiteral("no snapshot downloaded"));
        QVERIFY(!empty.complete);
    }

    void selectsFiles()
    {
        HfDownloader d;
        for (const char* name : {"config.json", "generation_config.json", "model.safetensors",
                                 "model-00001-of-00004.safetensors", "model.safetensors.index.json", "tokenizer.json",
                                 "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
            QVERIFY2(d.wantsFile(QString::fromLatin1(name)), name);
        for (const char* name : {"README.md", "pytorch_model.bin", "model.gguf", "original/consolidated.00.pth",
                                 "onnx/model.safetensors", ".gitattributes", "config.json.bak"})
            QVERIFY2(!d.wantsFile(QString::fromLatin1(name)), name);
    }

    void downloadsIntoCacheLayout()
    {
        HubFixture fx;
        QVERIFY(fx.hub.isListening() && fx.cdn.isListening());
        HfDownloader d;
        fx.configure(d);
        d.setFilePatterns(HfDownloader::defaultFilePatterns() << QStringLiteral("original/*.json"));
        QSignalSpy finished(&d, &HfDownloader::finished);
        QSignalSpy failed(&d, &HfDownloader::failed);
        QSignalSpy progress(&d, &HfDownloader::progress);
        QVERIFY(d.download(kRepo, QStringLiteral("main"), fx.cache()));
        QVERIFY(!d.download(kRepo, QStringLiteral("main"), fx.cache())); // one at a time
        QVERIFY(finished.wait(kTimeoutMs));
        QCOMPARE(failed.count(), 0);
        QCOMPARE(finished.takeFirst().at(0).toString(), fx.snapshot());

        const QStringList fetched = QStringList(kDefaultFiles) << QStringLiteral("original/params.json");
        for (const QString& name : fetched) {
            const QString link = fx.snapshot() + QLatin1Char('/') + name;
            const QString depth = name.contains(QLatin1Char('/')) ? QStringLiteral("../../../") : QStringLiteral("../../");
            QCOMPARE(QString::fromStdString(fs::read_symlink(link.toStdString()).string()),
                     depth + QStringLiteral("blobs/") + QString::fromLatin1(fx.files[name].etag()));
            QCOMPARE(readBytes(link), fx.files[name].body);
            QCOMPARE(readBytes(fx.blob(name)), fx.files[name].body);
        }
        // The weak ETag W/"<sha1>" names its blob without W/ and quotes; the LFS one by X-Linked-Etag (sha256).
        QCOMPARE(fx.files[QStringLiteral("generation_config.json")].etag().size(), 40);
        QCOMPARE(fx.files[QStringLiteral("model.safetensors")].etag().size(), 64);
        QCOMPARE(QDir(fx.repoDir() + QStringLiteral("/blobs")).entryList(QDir::Files).size(), 5);
        QCOMPARE(readBytes(fx.repoDir() + QStringLiteral("/refs/main")), kCommit);
        QVERIFY(incompleteBlobs(fx.repoDir()).isEmpty());
        QVERIFY(!QFileInfo::exists(fx.snapshot() + QStringLiteral("/README.md")));

        // What went over the wire: the listing and the probes with the token; the shard through the CDN
        // without it; nothing the filter leaves out.
        const QByteArray repoPath = "/tiny/llama/resolve/" + kCommit + "/";
        QCOMPARE(fx.hub.requestsTo("/api/models/tiny/llama/revision/main").size(), 1);
        QCOMPARE(fx.hub.requestsTo("/api/").first().authorization, QByteArray("Bearer hf_testtoken"));
        QCOMPARE(fx.hub.requestsTo(repoPath, "HEAD").size(), 5);
        QCOMPARE(fx.hub.requestsTo(repoPath + "model.safetensors", "GET").size(), 1); // answered 302
        const auto shardGets = fx.cdn.requestsTo(fx.shardPath(), "GET");
        QCOMPARE(shardGets.size(), 1);
        QCOMPARE(shardGets.first().authorization, QByteArray());
        QCOMPARE(shardGets.first().range, QByteArray());
        for (const char* unwanted : {"README.md", "pytorch_model.bin", "original/consolidated.00.pth"})
            QCOMPARE(fx.hub.requestsTo(repoPath + unwanted).size(), 0);

        const qint64 total = fx.bytesOf(fetched);
        QVERIFY(progress.count() >= 2);
        QCOMPARE(progress.last().at(0).toLongLong(), total);
        QCOMPARE(progress.last().at(1).toLongLong(), total);

        // The studio reads the snapshot as a Hugging Face model.
        const qpruner::ModelSummary summary = qpruner::inspectModel(fx.snapshot().toStdString());
        QCOMPARE(summary.format, std::string("hf"));
        QCOMPARE(summary.dtype, std::string("float32"));
        QCOMPARE(fx.model.parameters, qint64(6992));
        QCOMPARE(qint64(summary.parameterCount), fx.model.parameters);
        QCOMPARE(qint64(summary.weightBytes), fx.model.parameters * 4);
        QCOMPARE(summary.config.hiddenSize, 16);
        QCOMPARE(summary.config.numLayers(), 2);

        // And the cache scan lists it with its exact size.
        const QList<HfCachedModel> list = HfCache::scan(fx.cache());
        QCOMPARE(list.size(), 1);
        const HfCachedModel& m = list.first();
        QCOMPARE(m.repoId, kRepo);
        QCOMPARE(m.revision, QString::fromLatin1(kCommit));
        QCOMPARE(m.refName, QStringLiteral("main"));
        QCOMPARE(m.snapshotDir, fx.snapshot());
        QCOMPARE(m.sizeOnDisk, total);
        QCOMPARE(m.fileCount, 5);
        QCOMPARE(m.architecture, QStringLiteral("LlamaForCausalLM"));
        QCOMPARE(m.modelType, QStringLiteral("llama"));
        QCOMPARE(m.hiddenSize, 16);
        QCOMPARE(m.numLayers, 2);
        QVERIFY2(m.complete, qPrintable(m.problem));

        // A second download finds every blob and fetches nothing.
        fx.clearLogs();
        QVERIFY(d.download(kRepo, QStringLiteral("main"), fx.cache()));
        QVERIFY(finished.wait(kTimeoutMs));
        QCOMPARE(fx.hub.requestsTo(repoPath, "GET").size(), 0);
        QCOMPARE(fx.hub.requestsTo(repoPath, "HEAD").size(), 5);
        QCOMPARE(fx.cdn.requests.size(), 0);
    }

    void resumesAfterCutOff()
    {
        HubFixture fx;
        HfDownloader d;
        fx.configure(d);
        QSignalSpy finished(&d, &HfDownloader::finished);
        QSignalSpy failed(&d, &HfDownloader::failed);
        fx.cdn.cutAfter = 10'000;
        QVERIFY(d.download(kRepo, QStringLiteral("main"), fx.cache()));
        QVERIFY(failed.wait(kTimeoutMs));
        QCOMPARE(finished.count(), 0);
        const QString message = failed.takeFirst().at(0).toString();
        QVERIFY2(message.startsWith(kRepo + QStringLiteral(": file model.safetensors:")), qPrintable(message));
        QVERIFY2(message.contains(QStringLiteral("after 10,000 of 30,056 bytes")), qPrintable(message));

        // What arrived waits as .incomplete; nothing under the final blob name, no dangling link.
        const QString partial = fx.blob(QStringLiteral("model.safetensors")) + QStringLiteral(".incomplete");
        const QByteArray& body = fx.files[QStringLiteral("model.safetensors")].body;
        QCOMPARE(body.size(), 30'056); // 2,088 bytes of header + 6,992 float32 parameters
        QCOMPARE(QFileInfo(partial).size(), qint64(10'000));
        QCOMPARE(readBytes(partial), body.left(10'000));
        QVERIFY(!QFileInfo::exists(fx.blob(QStringLiteral("model.safetensors"))));
        QVERIFY(!QFileInfo::exists(fx.snapshot() + QStringLiteral("/model.safetensors")));
        QCOMPARE(brokenLinks(fx.snapshot()), QStringList());
        const HfCachedModel scanned = HfCache::scanRepo(fx.repoDir());
        QVERIFY(!scanned.complete);
        QCOMPARE(scanned.partialBytes, qint64(10'000));
        QVERIFY2(scanned.problem.contains(QStringLiteral("download incomplete")), qPrintable(scanned.problem));

        // Resume asks for the rest only, and skips the files already there.
        fx.cdn.cutAfter = -1;
        fx.clearLogs();
        QVERIFY(d.canResume());
        QVERIFY(d.resume());
        QVERIFY(finished.wait(kTimeoutMs));
        const auto gets = fx.cdn.requestsTo(fx.shardPath(), "GET");
        QCOMPARE(gets.size(), 1);
        QCOMPARE(gets.first().range, QByteArray("bytes=10000-"));
        QCOMPARE(fx.hub.requestsTo("/tiny/llama/resolve/" + kCommit + "/config.json", "GET").size(), 0);
        QCOMPARE(readBytes(fx.snapshot() + QStringLiteral("/model.safetensors")), body);
        QVERIFY(incompleteBlobs(fx.repoDir()).isEmpty());
        QVERIFY(HfCache::scanRepo(fx.repoDir()).complete);
    }

    void resumesAfterCancel()
    {
        HubFixture fx;
        HfDownloader d;
        fx.configure(d);
        QSignalSpy finished(&d, &HfDownloader::finished);
        QSignalSpy failed(&d, &HfDownloader::failed);
        QSignalSpy cancelled(&d, &HfDownloader::cancelled);
        qint64 done = 0;
        connect(&d, &HfDownloader::progress, this, [&done](qint64 bytes, qint64, const QString&) { done = bytes; });
        fx.cdn.stallAfter = 12'000;
        QVERIFY(d.download(kRepo, QStringLiteral("main"), fx.cache()));
        // config.json and generation_config.json come first (name order), then the shard stalls at 12,000.
        const qint64 before = fx.bytesOf({QStringLiteral("config.json"), QStringLiteral("generation_config.json")});
        QTRY_COMPARE_WITH_TIMEOUT(done, before + 12'000, kTimeoutMs);
        d.cancel();
        QCOMPARE(cancelled.count(), 1);
        QCOMPARE(failed.count(), 0);
        QVERIFY(!d.isRunning());
        const QString partial = fx.blob(QStringLiteral("model.safetensors")) + QStringLiteral(".incomplete");
        const qint64 onDisk = QFileInfo(partial).size();
        QCOMPARE(onDisk, qint64(12'000));
        QCOMPARE(brokenLinks(fx.snapshot()), QStringList());

        // A later download() of the same repo continues from the bytes on disk.
        fx.cdn.stallAfter = -1;
        fx.clearLogs();
        QVERIFY(d.download(kRepo, QStringLiteral("main"), fx.cache()));
        QVERIFY(finished.wait(kTimeoutMs));
        const auto gets = fx.cdn.requestsTo(fx.shardPath(), "GET");
        QCOMPARE(gets.size(), 1);
        QCOMPARE(gets.first().range, "bytes=" + QByteArray::number(onDisk) + "-");
        QCOMPARE(readBytes(fx.snapshot() + QStringLiteral("/model.safetensors")),
                 fx.files[QStringLiteral("model.safetensors")].body);
        QVERIFY(incompleteBlobs(fx.repoDir()).isEmpty());
        QCOMPARE(cancelled.count(), 1);
    }

    void restartsWhenRangeIgnored()
    {
        HubFixture fx;
        HfDownloader d;
        fx.configure(d);
        QSignalSpy finished(&d, &HfDownloader::finished);
        QSignalSpy failed(&d, &HfDownloader::failed);
        fx.cdn.cutAfter = 10'000;
        QVERIFY(d.download(kRepo, QStringLiteral("main"), fx.cache()));
        QVERIFY(failed.wait(kTimeoutMs));

        fx.cdn.cutAfter = -1;
        fx.cdn.ignoreRange = true; // answers 200 with the whole file
        fx.clearLogs();
        QVERIFY(d.resume());
        QVERIFY(finished.wait(kTimeoutMs));
        QCOMPARE(fx.cdn.requestsTo(fx.shardPath(), "GET").first().range, QByteArray("bytes=10000-"));
        const QString blob = fx.blob(QStringLiteral("model.safetensors"));
        QCOMPARE(QFileInfo(blob).size(), qint64(30'056)); // not 10,000 + 30,056
        QCOMPARE(readBytes(blob), fx.files[QStringLiteral("model.safetensors")].body);
        QVERIFY(incompleteBlobs(fx.repoDir()).isEmpty());
    }

    void reportsMissingRepo()
    {
        HubFixture fx;
        HfDownloader d;
        fx.configure(d);
        QSignalSpy failed(&d, &HfDownloader::failed);
        QVERIFY(d.download(QStringLiteral("nobody/missing"), QStringLiteral("main"), fx.cache()));
        QCOMPARE(failed.count(), 0); // reported from the event loop, never inside download()
        QVERIFY(failed.wait(kTimeoutMs));
        const QString message = failed.takeFirst().at(0).toString();
        QCOMPARE(message, QStringLiteral("nobody/missing: repository not found (HTTP 404 from %1/api/models/"
                                         "nobody/missing/revision/main)")
                              .arg(fx.hub.url()));
        QVERIFY(!QFileInfo::exists(fx.cache() + QStringLiteral("/models--nobody--missing")));

        QVERIFY(d.download(kRepo, QStringLiteral("no-such-branch"), fx.cache()));
        QVERIFY(failed.wait(kTimeoutMs));
        QVERIFY2(failed.takeFirst().at(0).toString().startsWith(
                     QStringLiteral("tiny/llama: revision 'no-such-branch' not found (HTTP 404 from ")),
                 "revision message");
        QVERIFY(!QFileInfo::exists(fx.repoDir()));

        QVERIFY(d.download(QStringLiteral("not a repo"), QStringLiteral("main"), fx.cache()));
        QVERIFY(failed.wait(kTimeoutMs));
        QVERIFY(failed.takeFirst().at(0).toString().startsWith(QStringLiteral("not a repo: not a repository id")));
        QVERIFY(d.download(kRepo, QStringLiteral("../../escape"), fx.cache()));
        QVERIFY(failed.wait(kTimeoutMs));
        QCOMPARE(failed.takeFirst().at(0).toString(),
                 QStringLiteral("tiny/llama: '../../escape' is not a branch, tag or commit name"));
        QCOMPARE(fx.hub.requestsTo("/api/").size(), 2); // the two well-formed requests only
    }

    void startPageListsCacheAndOpens()
    {
        QTemporaryDir dir;
        SampleCache sample(dir.path());
        StartPage page;
        page.resize(1120, 740);
        QSignalSpy refreshed(&page, &StartPage::cacheRefreshed);
        QSignalSpy openModel(&page, &StartPage::openModelRequested);
        page.setCacheDir(dir.path());
        QVERIFY(refreshed.wait(kTimeoutMs));
        QCOMPARE(refreshed.last().at(0).toInt(), 5);
        HfCacheTableModel* model = page.cacheModel();
        QCOMPARE(model->rowCount(), 5);
        const int good = model->rowOfRepo(QStringLiteral("org/good"));
        QCOMPARE(good, 2);
        auto cell = [model](int row, int column) { return model->index(row, column).data().toString(); };
        QCOMPARE(cell(good, HfCacheTableModel::RevisionColumn), QStringLiteral("bbbb (main)"));
        QCOMPARE(cell(good, HfCacheTableModel::SizeColumn), qpruner::ui::formatBytes(1409));
        QCOMPARE(model->index(good, 0).data(HfCacheTableModel::SizeRole).toLongLong(), qint64(1409));
        QCOMPARE(cell(good, HfCacheTableModel::ArchitectureColumn),
                 QStringLiteral("LlamaForCausalLM (llama, 22 layers, hidden 2,048)"));
        QCOMPARE(cell(good, HfCacheTableModel::StatusColumn), QStringLiteral("complete"));
        const int broken = model->rowOfRepo(QStringLiteral("org/broken"));
        QCOMPARE(cell(broken, HfCacheTableModel::StatusColumn), QStringLiteral("incomplete"));
        QVERIFY(model->index(broken, HfCacheTableModel::StatusColumn)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .startsWith(QStringLiteral("config.json: not valid JSON")));
        QVERIFY(page.cacheDirLabel()->text().contains(dir.path()));

        // Enter on a complete entry opens its snapshot.
        page.show();
        QVERIFY(QTest::qWaitForWindowExposed(&page));
        page.cacheView()->setFocus();
        page.cacheView()->setCurrentIndex(model->index(good, 0));
        QTest::keyClick(page.cacheView(), Qt::Key_Return);
        QCOMPARE(openModel.count(), 1);
        QCOMPARE(openModel.takeFirst().at(0).toString(), sample.repo(QStringLiteral("models--org--good/snapshots/bbbb")));

        // Double-click on an interrupted download offers to continue it instead.
        const int partial = model->rowOfRepo(QStringLiteral("org/partial"));
        const QRect rect = page.cacheView()->visualRect(model->index(partial, 0));
        QTest::mouseClick(page.cacheView()->viewport(), Qt::LeftButton, {}, rect.center()); // as a user's press
        QTest::mouseDClick(page.cacheView()->viewport(), Qt::LeftButton, {}, rect.center());
        QCOMPARE(openModel.count(), 0);
        QCOMPARE(page.downloadPanel()->repoEdit()->text(), QStringLiteral("org/partial"));
        QCOMPARE(page.downloadPanel()->revisionEdit()->text(), QStringLiteral("main"));
        QVERIFY2(page.cacheDetailsLabel()->text().startsWith(QStringLiteral("org/partial: no *.safetensors weights; "
                                                                             "download incomplete (1 partial file")),
                 qPrintable(page.cacheDetailsLabel()->text()));

        // Recent workspaces and runs.
        QSignalSpy openWorkspace(&page, &StartPage::openWorkspaceRequested);
        QSignalSpy openRun(&page, &StartPage::openRunRequested);
        const QString db = dir.path() + QStringLiteral("/studio.db");
        writeBytes(db, "SQLite format 3");
        page.setRecentWorkspaces({db, QStringLiteral("/nowhere/old.db")});
        page.setRecentRuns({db + QStringLiteral("#3"), QStringLiteral("not a key"), db + QStringLiteral("#12")});
        QCOMPARE(page.recentWorkspacesList()->count(), 2);
        QCOMPARE(page.recentWorkspacesList()->item(1)->text(), QStringLiteral("old.db \u2014 /nowhere (missing)"));
        QCOMPARE(page.recentRunsList()->count(), 2);
        QCOMPARE(page.recentRunsList()->item(0)->text(), QStringLiteral("run 3 - studio.db"));
        QCOMPARE(page.recentRunsList()->item(1)->text(), QStringLiteral("run 12 - studio.db"));
        Q_EMIT page.recentWorkspacesList()->itemActivated(page.recentWorkspacesList()->item(0));
        QCOMPARE(openWorkspace.count(), 1);
        QCOMPARE(openWorkspace.first().at(0).toString(), db);
        Q_EMIT page.recentRunsList()->itemActivated(page.recentRunsList()->item(1));
        QCOMPARE(openRun.count(), 1);
        QCOMPARE(openRun.first().at(0).toString(), db);
        QCOMPARE(openRun.first().at(1).toLongLong(), qint64(12));
        page.setRecentRuns({});
        QCOMPARE(page.recentRunsList()->count(), 1); // the placeholder, which opens nothing
        Q_EMIT page.recentRunsList()->itemActivated(page.recentRunsList()->item(0));
        QCOMPARE(openRun.count(), 1);

        if (qEnvironmentVariableIsSet("QPRUNER_HUB_GRAB"))
            page.grab().save(qEnvironmentVariable("QPRUNER_HUB_GRAB") + QStringLiteral("/start_page_cache.png"));
    }

    void startPageDownloadsAndRefreshes()
    {
        HubFixture fx;
        StartPage page;
        QSignalSpy refreshed(&page, &StartPage::cacheRefreshed);
        QSignalSpy openModel(&page, &StartPage::openModelRequested);
        page.setCacheDir(fx.cache());
        QVERIFY(refreshed.wait(kTimeoutMs));
        QCOMPARE(refreshed.last().at(0).toInt(), 0);
        fx.configure(*page.downloader());

        qpruner::ui::DownloadPanel* panel = page.downloadPanel();
        QVERIFY(!panel->downloadButton()->isEnabled());
        panel->repoEdit()->setText(kRepo);
        QVERIFY(panel->downloadButton()->isEnabled());
        QSignalSpy finished(page.downloader(), &HfDownloader::finished);
        panel->downloadButton()->click();
        QVERIFY(panel->cancelButton()->isEnabled());
        QVERIFY(finished.wait(kTimeoutMs));
        QVERIFY(refreshed.wait(kTimeoutMs));
        QCOMPARE(refreshed.last().at(0).toInt(), 1);
        QCOMPARE(page.cacheModel()->entry(0).repoId, kRepo);
        QVERIFY(page.cacheModel()->entry(0).complete);
        QCOMPARE(page.cacheModel()->entry(0).sizeOnDisk, fx.bytesOf(kDefaultFiles));
        QCOMPARE(page.cacheView()->currentIndex().row(), 0);
        QCOMPARE(panel->progressBar()->value(), panel->progressBar()->maximum());
        QVERIFY(!panel->cancelButton()->isEnabled());
        QVERIFY(panel->openButton()->isEnabled());
        panel->openButton()->click();
        QCOMPARE(openModel.count(), 1);
        QCOMPARE(openModel.first().at(0).toString(), fx.snapshot());

        // A failure shows the downloader's message and offers Resume after a partial transfer.
        fx.cdn.cutAfter = 5'000;
        QFile::remove(fx.blob(QStringLiteral("model.safetensors")));
        QSignalSpy failed(page.downloader(), &HfDownloader::failed);
        panel->downloadButton()->click();
        QVERIFY(failed.wait(kTimeoutMs));
        QVERIFY(panel->resumeButton()->isEnabled());
        QVERIFY(!panel->openButton()->isEnabled());
        fx.cdn.cutAfter = -1;
        panel->resumeButton()->click();
        QVERIFY(finished.wait(kTimeoutMs));
        QCOMPARE(fx.cdn.requests.last().range, QByteArray("bytes=5000-"));
        if (qEnvironmentVariableIsSet("QPRUNER_HUB_GRAB")) {
            page.resize(1120, 740);
            page.grab().save(qEnvironmentVariable("QPRUNER_HUB_GRAB") + QStringLiteral("/start_page_download.png"));
        }
    }

    void formatsProgress()
    {
        using qpruner::ui::DownloadPanel;
        QCOMPARE(DownloadPanel::progressText(1048576, 4194304, 1048576.0, QStringLiteral("model.safetensors")),
                 QStringLiteral("1.00 MiB of 4.00 MiB \u2013 1.00 MiB/s \u2013 0:03 left \u2013 model.safetensors"));
        QCOMPARE(DownloadPanel::progressText(0, 3LL << 20, -1.0, {}), QStringLiteral("0.00 MiB of 3.00 MiB"));
        QCOMPARE(DownloadPanel::progressText(0, 7200LL * 1024, 1024.0, {}),
                 QStringLiteral("0.00 MiB of 7.03 MiB \u2013 1.00 KiB/s \u2013 2:00:00 left"));
    }

    void demoModelsFollowSharedData()
    {
        {
            EnvGuard env;
            env.set("QPRUNER_SHARED_DATA", "/nonexistent/qpruner-shared-data");
            StartPage page;
            QVERIFY(!page.demoModelsBox()->isVisibleTo(&page));
            QCOMPARE(page.demoModelsList()->count(), 0);
        }
        QPRUNER_SHARED_FILE(stories, "models/stories260K/stories260K.bin");
        StartPage page;
        QSignalSpy openModel(&page, &StartPage::openModelRequested);
        const QList<qpruner::ui::DemoModel> demos = qpruner::ui::demoModels();
        QVERIFY(!demos.isEmpty());
        QVERIFY(page.demoModelsBox()->isVisibleTo(&page));
        QCOMPARE(page.demoModelsList()->count(), demos.size());
        QCOMPARE(page.demoModelsList()->item(0)->text(), demos.first().name);
        Q_EMIT page.demoModelsList()->itemActivated(page.demoModelsList()->item(0));
        QCOMPARE(openModel.count(), 1);
        // The shared-data root may be given as a relative or ".."-bearing path
        // (the CMake default is ../shared/data): compare the files, not the spellings.
        QCOMPARE(QFileInfo(openModel.first().at(0).toString()).canonicalFilePath(),
                 QFileInfo(QString::fromStdString(stories.string())).canonicalFilePath());
    }
};

QTEST_MAIN(TestHub)
#include "test_hub.moc"
