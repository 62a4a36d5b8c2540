// Reading the Hugging Face hub cache. std::filesystem with error codes throughout, so that one unreadable
// folder costs one entry's problem text and never the whole scan.
#include "hub/hf_cache.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/number_format.h"

namespace fs = std::filesystem;

namespace qpruner::ui {

namespace {

const QString kModelsPrefix = QStringLiteral("models--");
constexpr qint64 kMaxJsonBytes = 64LL << 20; // a config or index larger than this is not one

fs::path toPath(const QString& s) { return fs::path(s.toStdString()); }
QString toQString(const fs::path& p) { return QString::fromStdString(p.string()); }

QString envValue(const char* name)
{
    return qEnvironmentVariable(name).trimmed();
}

QString expandUser(const QString& path)
{
    if (path == QLatin1String("~"))
        return QDir::homePath();
    if (path.startsWith(QLatin1String("~/")))
        return QDir::homePath() + path.mid(1);
    return path;
}

// A JSON object from a small file, or the reason it is not one ("config.json: not valid JSON (...)").
QJsonObject readJsonObject(const fs::path& file, const QString& label, QString* problem)
{
    QFile f(toQString(file));
    if (!f.open(QIODevice::ReadOnly)) {
        *problem = QStringLiteral("%1: cannot read (%2)").arg(label, f.errorString());
        return {};
    }
    if (f.size() > kMaxJsonBytes) {
        *problem = QStringLiteral("%1: too large for a JSON file (%2)").arg(label, formatBytes(f.size()));
        return {};
    }
    QJsonParseError err;
    const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &err);
    if (err.error != QJsonParseError::NoError) {
        *problem = QStringLiteral("%1: not valid JSON (%2 at offset %3)").arg(label, err.errorString()).arg(err.offset);
        return {};
    }
    if (!doc.isObject()) {
        *problem = QStringLiteral("%1: not a JSON object").arg(label);
        return {};
    }
    return doc.object();
}

// The snapshot refs/main names when it exists, else the most recently written one.
fs::path chooseSnapshot(const fs::path& repo, HfCachedModel& m)
{
    std::error_code ec;
    QFile ref(toQString(repo / "refs" / "main"));
    if (ref.open(QIODevice::ReadOnly)) {
        const QString commit = QString::fromUtf8(ref.read(256)).trimmed();
        const fs::path dir = repo / "snapshots" / commit.toStdString();
        if (!commit.isEmpty() && !commit.contains(QLatin1Char('/')) && fs::is_directory(dir, ec)) {
            m.refName = QStringLiteral("main");
            m.revision = commit;
            return dir;
        }
    }
    fs::path newest;
    fs::file_time_type newestTime = fs::file_time_type::min();
    for (auto it = fs::directory_iterator(repo / "snapshots", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        std::error_code e2;
        if (!it->is_directory(e2))
            continue;
        const auto t = fs::last_write_time(it->path(), e2);
        if (!e2 && (newest.empty() || t > newestTime)) {
            newest = it->path();
            newestTime = t;
        }
    }
    if (!newest.empty())
        m.revision = toQString(newest.filename());
    return newest;
}

void readConfig(const fs::path& snapshot, HfCachedModel& m, QStringList& problems)
{
    std::error_code ec;
    const fs::path cfg = snapshot / "config.json";
    if (!fs::exists(cfg, ec)) {
        problems << (fs::is_symlink(cfg, ec) ? QStringLiteral("config.json missing (broken link)")
                                             : QStringLiteral("config.json missing"));
        return;
    }
    QString problem;
    const QJsonObject j = readJsonObject(cfg, QStringLiteral("config.json"), &problem);
    if (!problem.isEmpty()) {
        problems << problem;
        return;
    }
    const QJsonArray archs = j.value(QLatin1String("architectures")).toArray();
    if (!archs.isEmpty())
        m.architecture = archs.first().toString();
    m.modelType = j.value(QLatin1String("model_type")).toString();
    m.hiddenSize = j.value(QLatin1String("hidden_size")).toInt();
    m.numLayers = j.value(QLatin1String("num_hidden_layers")).toInt();
}

void checkWeights(const fs::path& snapshot, QStringList& problems)
{
    std::error_code ec;
    const fs::path index = snapshot / "model.safetensors.index.json";
    QStringList missing;
    if (fs::exists(index, ec)) {
        QString problem;
        const QJsonObject j = readJsonObject(index, QStringLiteral("model.safetensors.index.json"), &problem);
        if (!problem.isEmpty()) {
            problems << problem;
            return;
        }
        const QJsonObject map = j.value(QLatin1String("weight_map")).toObject();
        if (map.isEmpty()) {
            problems << QStringLiteral("model.safetensors.index.json: no weight_map");
            return;
        }
        std::set<QString> shards;
        for (auto it = map.begin(); it != map.end(); ++it)
            shards.insert(it.value().toString());
        for (const QString& shard : shards)
            if (shard.isEmpty() || shard.contains(QLatin1String("..")) || !fs::exists(snapshot / shard.toStdString(), ec))
                missing << shard;
    } else {
        bool any = false;
        for (auto it = fs::directory_iterator(snapshot, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
            std::error_code e2;
            if (it->path().extension() == ".safetensors" && fs::exists(it->path(), e2))
                any = true;
        }
        if (!any) {
            problems << QStringLiteral("no *.safetensors weights");
            return;
        }
    }
    if (!missing.isEmpty()) {
        const int shown = std::min<int>(3, int(missing.size()));
        QString text = QStringLiteral("missing %1").arg(missing.mid(0, shown).join(QLatin1String(", ")));
        if (missing.size() > shown)
            text += QStringLiteral(" and %1 more shards").arg(missing.size() - shown);
        problems << text;
    }
}

} // namespace

QString HfCachedModel::architectureSummary() const
{
    QStringList details;
    if (!modelType.isEmpty() && !architecture.isEmpty())
        details << modelType;
    if (numLayers > 0)
        details << QStringLiteral("%1 layers").arg(numLayers);
    if (hiddenSize > 0)
        details << QStringLiteral("hidden %1").arg(formatCount(hiddenSize));
    const QString head = !architecture.isEmpty() ? architecture : modelType;
    if (head.isEmpty())
        return details.join(QLatin1String(", "));
    return details.isEmpty() ? head : QStringLiteral("%1 (%2)").arg(head, details.join(QLatin1String(", ")));
}

QString HfCache::defaultCacheDir()
{
    QString dir = envValue("HF_HUB_CACHE");
    if (dir.isEmpty())
        dir = envValue("HUGGINGFACE_HUB_CACHE");
    if (dir.isEmpty())
        dir = hfHomeDir() + QStringLiteral("/hub");
    return QDir::cleanPath(expandUser(dir));
}

QString HfCache::hfHomeDir()
{
    QString home = envValue("HF_HOME");
    if (home.isEmpty()) {
        QString xdg = envValue("XDG_CACHE_HOME");
        if (xdg.isEmpty())
            xdg = QDir::homePath() + QStringLiteral("/.cache");
        home = expandUser(xdg) + QStringLiteral("/huggingface");
    }
    return QDir::cleanPath(expandUser(home));
}

QString HfCache::repoFolderName(const QString& repoId)
{
    return kModelsPrefix + QString(repoId).replace(QLatin1Char('/'), QLatin1String("--"));
}

QString HfCache::repoIdFromFolder(const QString& folder)
{
    if (!folder.startsWith(kModelsPrefix) || folder.size() == kModelsPrefix.size())
        return {};
    return folder.mid(kModelsPrefix.size()).replace(QLatin1String("--"), QLatin1String("/"));
}

bool HfCache::isValidRepoId(const QString& repoId)
{
    static const QRegularExpression re(QStringLiteral("^([A-Za-z0-9_][A-Za-z0-9_.-]*/)?[A-Za-z0-9_][A-Za-z0-9_.-]*$"));
    return repoId.size() <= 96 && re.match(repoId).hasMatch() && !repoId.contains(QLatin1String("--")) &&
           !repoId.contains(QLatin1String(".."));
}

HfCachedModel HfCache::scanRepo(const QString& repoDir)
{
    HfCachedModel m;
    m.repoDir = QDir::cleanPath(repoDir);
    m.repoId = repoIdFromFolder(QDir(m.repoDir).dirName());
    QStringList problems;
    try {
        const fs::path repo = toPath(m.repoDir);
        std::error_code ec;
        int partialFiles = 0;
        for (auto it = fs::directory_iterator(repo / "blobs", ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            if (it->path().extension() != ".incomplete")
                continue;
            std::error_code e2;
            const auto size = fs::file_size(it->path(), e2);
            ++partialFiles;
            m.partialBytes += e2 ? 0 : qint64(size);
        }

        const fs::path snapshot = chooseSnapshot(repo, m);
        if (snapshot.empty()) {
            problems << QStringLiteral("no snapshot downloaded");
        } else {
            m.snapshotDir = toQString(snapshot);
            // Size on disk: the distinct files the snapshot's links resolve to (two names may share a blob).
            std::set<fs::path> targets;
            QStringList broken;
            for (auto it = fs::recursive_directory_iterator(snapshot, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                std::error_code e2;
                if (it->is_directory(e2))
                    continue;
                const fs::path target = fs::canonical(it->path(), e2);
                if (e2 || !fs::is_regular_file(target, e2))
                    broken << toQString(fs::relative(it->path(), snapshot, e2));
                else
                    targets.insert(target);
            }
            for (const fs::path& t : targets) {
                std::error_code e2;
                const auto size = fs::file_size(t, e2);
                m.sizeOnDisk += e2 ? 0 : qint64(size);
            }
            m.fileCount = int(targets.size());
            readConfig(snapshot, m, problems);
            checkWeights(snapshot, problems);
            const QString said = problems.join(QLatin1Char('\n')); // a missing config or shard is named once
            broken.erase(std::remove_if(broken.begin(), broken.end(),
                                        [&](const QString& name) { return said.contains(name); }),
                         broken.end());
            if (!broken.isEmpty())
                problems << QStringLiteral("broken link: %1").arg(broken.join(QLatin1String(", ")));
        }
        if (partialFiles > 0)
            problems << QStringLiteral("download incomplete (%1 partial %2, %3 so far)")
                            .arg(partialFiles)
                            .arg(partialFiles == 1 ? QStringLiteral("file") : QStringLiteral("files"),
                                 formatBytes(m.partialBytes));
    } catch (const std::exception& e) {
        problems << QStringLiteral("cannot read %1: %2").arg(m.repoDir, QString::fromLocal8Bit(e.what()));
    }
    m.complete = problems.isEmpty();
    m.problem = problems.join(QLatin1String("; "));
    return m;
}

QList<HfCachedModel> HfCache::scan(const QString& cacheDir)
{
    QList<HfCachedModel> out;
    if (cacheDir.isEmpty())
        return out;
    std::error_code ec;
    const fs::path root = toPath(cacheDir);
    for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::error_code e2;
        const QString name = toQString(it->path().filename());
        if (!name.startsWith(kModelsPrefix) || !it->is_directory(e2))
            continue;
        out.append(scanRepo(toQString(it->path())));
    }
    std::sort(out.begin(), out.end(), [](const HfCachedModel& a, const HfCachedModel& b) {
        return a.repoId.compare(b.repoId, Qt::CaseInsensitive) < 0;
    });
    return out;
}

} // namespace qpruner::ui
