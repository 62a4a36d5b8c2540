// One model repo's folder in the hub cache, written exactly as huggingface_hub writes it:
//   models--ORG--NAME/blobs/<etag>                  file contents, named by the hub's ETag
//   models--ORG--NAME/blobs/<etag>.incomplete       a download in progress (resumable)
//   models--ORG--NAME/snapshots/<commit>/<file>     relative links into blobs/
//   models--ORG--NAME/refs/<revision>               the commit a branch or tag pointed to
// Plain file operations with no network, shared by the downloader and its tests' expectations.
#pragma once

#include <QByteArray>
#include <QString>

namespace qpruner::ui {

class HfRepoFolder {
public:
    HfRepoFolder() = default;
    HfRepoFolder(const QString& cacheDir, const QString& repoId);

    QString path() const { return path_; }
    QString blobPath(const QString& etag) const;
    QString partialPath(const QString& etag) const; // blobPath + ".incomplete"
    QString snapshotDir(const QString& commit) const;

    // Makes snapshots/<commit>/<file> link to blobs/<etag>, replacing an older link in one rename so the name
    // never dangles; copies the blob where the file system has no symlinks (as huggingface_hub does).
    // False with `error` naming the file when it cannot.
    bool link(const QString& commit, const QString& file, const QString& etag, QString* error) const;
    // refs/<revision> := commit, without a newline, written atomically.
    bool writeRef(const QString& revision, const QString& commit, QString* error) const;

    // "../../blobs/<etag>", one more "../" per folder in `file`.
    static QString linkTarget(const QString& file, const QString& etag);
    // The blob name an ETag header gives: W/"abc" -> abc.
    static QString blobNameFromEtag(const QByteArray& header);
    // An ETag or commit usable as a file name: letters, digits, '_', '-', '.' and not starting with '.'.
    static bool isSafeBlobName(const QString& name);
    // A repo-relative file name that stays inside the snapshot (no "..", no absolute path).
    static bool isSafeRepoPath(const QString& name);

private:
    QString path_;
};

} // namespace qpruner::ui
