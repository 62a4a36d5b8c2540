// Writing a repo folder of the hub cache: links and refs. Every name is created under a temporary name and
// renamed into place, so a reader (another tool, the cache scan) never sees a half-made entry.
#include "hub/hf_repo_folder.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSaveFile>

#include <filesystem>

#include "hub/hf_cache.h"

namespace qpruner::ui {

HfRepoFolder::HfRepoFolder(const QString& cacheDir, const QString& repoId)
    : path_(QDir(cacheDir).filePath(HfCache::repoFolderName(repoId)))
{
}

QString HfRepoFolder::blobPath(const QString& etag) const
{
    return path_ + QStringLiteral("/blobs/") + etag;
}

QString HfRepoFolder::partialPath(const QString& etag) const
{
    return blobPath(etag) + QStringLiteral(".incomplete");
}

QString HfRepoFolder::snapshotDir(const QString& commit) const
{
    return path_ + QStringLiteral("/snapshots/") + commit;
}

QString HfRepoFolder::linkTarget(const QString& file, const QString& etag)
{
    return QStringLiteral("../").repeated(2 + int(file.count(QLatin1Char('/')))) + QStringLiteral("blobs/") + etag;
}

bool HfRepoFolder::link(const QString& commit, const QString& file, const QString& etag, QString* error) const
{
    namespace fs = std::filesystem;
    const QString linkPath = snapshotDir(commit) + QLatin1Char('/') + file;
    const QString parent = QFileInfo(linkPath).absolutePath();
    if (!QDir().mkpath(parent)) {
        *error = QStringLiteral("cannot create %1").arg(parent);
        return false;
    }
    const QString target = linkTarget(file, etag);
    std::error_code ec;
    if (fs::is_symlink(linkPath.toStdString(), ec) &&
        QString::fromStdString(fs::read_symlink(linkPath.toStdString(), ec).string()) == target && !ec)
        return true;
    const std::string tmp = (linkPath + QStringLiteral(".qpruner-link")).toStdString();
    fs::remove(tmp, ec);
    fs::create_symlink(target.toStdString(), tmp, ec);
    if (ec && !QFile::copy(blobPath(etag), QString::fromStdString(tmp))) {
        *error = QStringLiteral("file %1: cannot link %2 (%3)").arg(file, linkPath, QString::fromStdString(ec.message()));
        return false;
    }
    fs::rename(tmp, linkPath.toStdString(), ec);
    if (ec) {
        const QString why = QString::fromStdString(ec.message());
        fs::remove(tmp, ec);
        *error = QStringLiteral("file %1: cannot create %2 (%3)").arg(file, linkPath, why);
        return false;
    }
    return true;
}

bool HfRepoFolder::writeRef(const QString& revision, const QString& commit, QString* error) const
{
    const QString refPath = path_ + QStringLiteral("/refs/") + revision; // "refs/pr/1" makes folders, as in hf
    QDir().mkpath(QFileInfo(refPath).absolutePath());
    QSaveFile ref(refPath);
    if (!ref.open(QIODevice::WriteOnly) || ref.write(commit.toLatin1()) != commit.size() || !ref.commit()) {
        *error = QStringLiteral("cannot write %1 (%2)").arg(refPath, ref.errorString());
        return false;
    }
    return true;
}

QString HfRepoFolder::blobNameFromEtag(const QByteArray& header)
{
    QByteArray raw = header.trimmed();
    if (raw.startsWith("W/"))
        raw = raw.mid(2);
    if (raw.size() >= 2 && raw.startsWith('"') && raw.endsWith('"'))
        raw = raw.mid(1, raw.size() - 2);
    return QString::fromLatin1(raw);
}

bool HfRepoFolder::isSafeBlobName(const QString& name)
{
    static const QRegularExpression re(QStringLiteral("^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"));
    return name.size() <= 200 && re.match(name).hasMatch();
}

bool HfRepoFolder::isSafeRepoPath(const QString& name)
{
    if (name.isEmpty() || name.startsWith(QLatin1Char('/')) || name.contains(QLatin1Char('\\')))
        return false;
    for (const QString& part : name.split(QLatin1Char('/')))
        if (part.isEmpty() || part == QLatin1String(".") || part == QLatin1String(".."))
            return false;
    return true;
}

} // namespace qpruner::ui
