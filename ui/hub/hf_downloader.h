// Downloads a model repo from the Hugging Face Hub into the hub cache, in exactly the layout huggingface_hub
// writes (blobs/<etag>, snapshots/<commit>/<file> as relative links, refs/<branch>), so transformers, llama.cpp
// scripts and the studio's cache scan all see the same files. Asynchronous on the calling thread's event
// loop (QNetworkAccessManager); nothing blocks.
//
// Protocol, per download(repo, revision):
//   1. GET  {endpoint}/api/models/{repo}/revision/{revision}  -> {"sha": COMMIT, "siblings": [{"rfilename"}]}
//   2. HEAD {endpoint}/{repo}/resolve/{COMMIT}/{file} for each selected file: the blob name is X-Linked-Etag
//      (else ETag, without W/ and quotes), the size X-Linked-Size (else Content-Length). A redirect carrying
//      X-Linked-Etag is read, not followed (the hub sends LFS files to a CDN whose ETag is another thing).
//   3. GET the same URL, following redirects (the Authorization header is dropped when the host changes),
//      into blobs/<etag>.incomplete, renamed to blobs/<etag> once its size matches; then the snapshot link.
// Resume: a later download() skips blobs already complete and continues an .incomplete one with
// "Range: bytes=N-" (206 appends; a 200 means the server ignored the range, so the file restarts).
// A failed or cancelled download keeps the .incomplete file and never leaves a half-written blob under its
// final name or a link to a missing blob.
#pragma once

#include <QElapsedTimer>
#include <QList>
#include <QNetworkAccessManager>
#include <QNetworkRequest>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QStringList>
#include <QTimer>
#include <QUrl>

#include "hub/hf_repo_folder.h"

class QFile;
class QNetworkReply;

namespace qpruner::ui {

class HfDownloader : public QObject {
    Q_OBJECT

public:
    static constexpr int kMaxRedirects = 10;
    static constexpr int kDefaultTransferTimeoutMs = 60'000;

    explicit HfDownloader(QObject* parent = nullptr);
    ~HfDownloader() override;

    // Default: $HF_ENDPOINT, else https://huggingface.co.
    QString endpoint() const { return endpoint_; }
    void setEndpoint(const QString& url);
    // Sent as "Authorization: Bearer <token>" to the endpoint's host only. Default: $HF_TOKEN, else the
    // token file huggingface-cli login writes ($HF_HOME/token, ~/.cache/huggingface/token).
    QString token() const { return token_; }
    void setToken(const QString& token) { token_ = token; }
    // A transfer with no data for this long fails (QNetworkRequest::setTransferTimeout).
    void setTransferTimeout(int ms) { transferTimeoutMs_ = ms; }

    // Which files of the repo are fetched: globs on the repo-relative name ('*' does not cross '/').
    // Default (defaultFilePatterns): config.json, generation_config.json, *.safetensors,
    // model.safetensors.index.json, tokenizer.json, tokenizer.model, tokenizer_config.json,
    // special_tokens_map.json; so only top-level files, and never *.bin / *.pth / *.gguf / README.md.
    static QStringList defaultFilePatterns();
    QStringList filePatterns() const { return patterns_; }
    void setFilePatterns(const QStringList& globs) { patterns_ = globs; }
    bool wantsFile(const QString& repoRelativeName) const;

    // Starts downloading `repoId` at `revision` (branch, tag or commit) into `cacheDir` (empty: the default
    // hub cache). Ends in exactly one of finished, failed or cancelled. Returns false, and starts nothing,
    // while another download runs.
    bool download(const QString& repoId, const QString& revision = QStringLiteral("main"),
                  const QString& cacheDir = {});
    // Runs the last download() again: finished blobs are skipped, a partial one continues.
    bool resume();
    bool canResume() const { return !isRunning() && !lastRepo_.isEmpty(); }
    bool isRunning() const { return phase_ != Phase::Idle; }

    QString repoId() const { return lastRepo_; }
    QString revision() const { return lastRevision_; }
    QString cacheDir() const { return lastCacheDir_; }

public Q_SLOTS:
    // Stops the transfer now; what was received stays in blobs/<etag>.incomplete for resume().
    void cancel();

Q_SIGNALS:
    void started(const QString& repoId);
    // Over every selected file: bytes on disk (finished blobs + the partial one) of the total. Throttled.
    void progress(qint64 bytesDone, qint64 bytesTotal, const QString& currentFile);
    void finished(const QString& snapshotDir);
    // "<repo>: <what failed> (HTTP <status> from <url>)" or the network error; names the file when one failed.
    void failed(const QString& message);
    void cancelled();

private:
    enum class Phase { Idle, Listing, Probing, Fetching };
    struct FileTask {
        QString name;       // repo-relative, '/'-separated
        QString etag;       // blob name
        qint64 size = -1;   // bytes; -1 when the server did not say
    };

    QNetworkRequest makeRequest(const QUrl& url) const;
    QUrl apiUrl() const;
    QUrl resolveUrl(const QString& file) const;

    void startListing();
    void onListingFinished(QNetworkReply* reply);
    void probeNext();
    void startProbe(const QUrl& url);
    void onProbeFinished(QNetworkReply* reply);
    void fetchNext();
    void startGet(const QUrl& url);
    void onGetMetaData(QNetworkReply* reply);
    void onGetReadyRead(QNetworkReply* reply);
    void onGetFinished(QNetworkReply* reply);
    void finishFile();
    void finishAll();

    void emitProgress(bool force);
    void fail(const QString& detail);
    void failHttp(const QString& what, QNetworkReply* reply);
    void resetTransfer();
    QNetworkReply* track(QNetworkReply* reply);

    QNetworkAccessManager nam_;
    QString endpoint_;
    QString token_;
    QStringList patterns_;
    int transferTimeoutMs_ = kDefaultTransferTimeoutMs;

    Phase phase_ = Phase::Idle;
    QString lastRepo_, lastRevision_, lastCacheDir_;
    HfRepoFolder folder_;
    QString commit_;
    QList<FileTask> files_;
    int current_ = 0;
    int redirects_ = 0;
    QPointer<QNetworkReply> reply_;

    // The file being fetched.
    QFile* out_ = nullptr;      // blobs/<etag>.incomplete, opened for append
    qint64 rangeStart_ = 0;     // bytes asked to skip ("Range: bytes=N-"); 0 without a range
    bool bodyAccepted_ = false; // the response's status allows writing its body
    bool retriedWithoutRange_ = false;
    bool restartFromZero_ = false; // a 206 started elsewhere than asked: drop the partial file, fetch it whole
    quint64 generation_ = 0;       // download() count, so a queued start of an abandoned run does nothing
    qint64 bytesFinished_ = 0;  // bytes of files already complete
    qint64 bytesTotal_ = 0;
    QElapsedTimer progressClock_;
    QTimer* progressTimer_;         // the trailing report of a throttled burst, so a stalled transfer shows its last byte
};

} // namespace qpruner::ui
