// The hub download as a small state machine on QNetworkReply signals: list -> probe each file (HEAD) ->
// fetch each missing blob (GET, resumable) -> link it into the snapshot -> write the ref.
#include "hub/hf_downloader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkReply>
#include <QRegularExpression>
#include <QTimer>

#include "common/number_format.h"
#include "hub/hf_cache.h"
#include "hub/hf_repo_folder.h"

#ifndef QPRUNER_VERSION
#define QPRUNER_VERSION "dev"
#endif

namespace qpruner::ui {

namespace {

constexpr qint64 kProgressIntervalMs = 100;
const QString kDefaultEndpoint = QStringLiteral("https://huggingface.co");

int httpStatus(const QNetworkReply* reply)
{
    return reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
}

bool isRedirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

QUrl redirectTarget(const QNetworkReply* reply)
{
    const QByteArray location = reply->rawHeader("Location");
    if (location.isEmpty())
        return {};
    return reply->url().resolved(QUrl::fromEncoded(location));
}

qint64 headerNumber(const QNetworkReply* reply, const char* name)
{
    const QByteArray v = reply->rawHeader(name);
    bool ok = false;
    const qint64 n = v.trimmed().toLongLong(&ok);
    return ok && n >= 0 ? n : -1;
}

QString readTokenFile()
{
    QString path = qEnvironmentVariable("HF_TOKEN_PATH");
    if (path.isEmpty())
        path = HfCache::hfHomeDir() + QStringLiteral("/token");
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QString::fromUtf8(f.read(4096)).trimmed();
}

QString sizeText(qint64 bytes)
{
    return bytes < 0 ? QStringLiteral("an unknown number of") : formatCount(bytes);
}

} // namespace

HfDownloader::HfDownloader(QObject* parent)
    : QObject(parent), patterns_(defaultFilePatterns()), progressTimer_(new QTimer(this))
{
    progressTimer_->setSingleShot(true);
    connect(progressTimer_, &QTimer::timeout, this, [this] {
        if (isRunning())
            emitProgress(true);
    });
    setEndpoint(qEnvironmentVariable("HF_ENDPOINT"));
    token_ = qEnvironmentVariable("HF_TOKEN").trimmed();
    if (token_.isEmpty())
        token_ = qEnvironmentVariable("HUGGING_FACE_HUB_TOKEN").trimmed();
    if (token_.isEmpty())
        token_ = readTokenFile();
}

HfDownloader::~HfDownloader()
{
    resetTransfer();
}

void HfDownloader::setEndpoint(const QString& url)
{
    QString e = url.trimmed();
    while (e.endsWith(QLatin1Char('/')))
        e.chop(1);
    endpoint_ = e.isEmpty() ? kDefaultEndpoint : e;
}

QStringList HfDownloader::defaultFilePatterns()
{
    return {QStringLiteral("config.json"),          QStringLiteral("generation_config.json"),
            QStringLiteral("*.safetensors"),        QStringLiteral("model.safetensors.index.json"),
            QStringLiteral("tokenizer.json"),       QStringLiteral("tokenizer.model"),
            QStringLiteral("tokenizer_config.json"), QStringLiteral("special_tokens_map.json")};
}

bool HfDownloader::wantsFile(const QString& name) const
{
    for (const QString& glob : patterns_) {
        // Qt's wildcard conversion keeps '*' inside one path component, as a shell glob does.
        const QRegularExpression re = QRegularExpression::fromWildcard(glob, Qt::CaseSensitive);
        if (re.match(name).hasMatch())
            return true;
    }
    return false;
}

// --- requests ---

QNetworkRequest HfDownloader::makeRequest(const QUrl& url) const
{
    QNetworkRequest r(url);
    r.setRawHeader("User-Agent", QByteArrayLiteral("qpruner-studio/" QPRUNER_VERSION));
    r.setRawHeader("Accept-Encoding", "identity"); // byte ranges and sizes refer to the stored bytes
    r.setAttribute(QNetworkRequest::RedirectPolicyAttribute, QNetworkRequest::ManualRedirectPolicy);
    r.setTransferTimeout(transferTimeoutMs_);
    // The token is for the hub only: a CDN or mirror a redirect points to never sees it.
    const QUrl hub(endpoint_);
    if (!token_.isEmpty() && url.host() == hub.host() && url.port(-1) == hub.port(-1))
        r.setRawHeader("Authorization", "Bearer " + token_.toUtf8());
    return r;
}

QUrl HfDownloader::apiUrl() const
{
    const QByteArray path = "/api/models/" + lastRepo_.toUtf8() + "/revision/" + QUrl::toPercentEncoding(lastRevision_);
    return QUrl::fromEncoded(QUrl(endpoint_).toEncoded() + path);
}

QUrl HfDownloader::resolveUrl(const QString& file) const
{
    QByteArray path = "/" + lastRepo_.toUtf8() + "/resolve/" + commit_.toUtf8();
    for (const QString& part : file.split(QLatin1Char('/')))
        path += "/" + QUrl::toPercentEncoding(part);
    return QUrl::fromEncoded(QUrl(endpoint_).toEncoded() + path);
}

QNetworkReply* HfDownloader::track(QNetworkReply* reply)
{
    reply_ = reply;
    return reply;
}

// --- the run ---

bool HfDownloader::download(const QString& repoId, const QString& revision, const QString& cacheDir)
{
    if (isRunning())
        return false;
    lastRepo_ = repoId.trimmed();
    lastRevision_ = revision.trimmed().isEmpty() ? QStringLiteral("main") : revision.trimmed();
    lastCacheDir_ = QDir::cleanPath(cacheDir.isEmpty() ? HfCache::defaultCacheDir() : cacheDir);
    folder_ = HfRepoFolder(lastCacheDir_, lastRepo_);
    commit_.clear();
    files_.clear();
    current_ = 0;
    bytesFinished_ = bytesTotal_ = 0;
    progressClock_.invalidate();
    phase_ = Phase::Listing;
    const quint64 generation = ++generation_;
    Q_EMIT started(lastRepo_);
    // Started from the event loop, so that even an immediate failure reaches the caller after download()
    // returned and never inside it.
    QTimer::singleShot(0, this, [this, generation] {
        if (generation == generation_ && phase_ == Phase::Listing && !reply_)
            startListing();
    });
    return true;
}

bool HfDownloader::resume()
{
    if (!canResume())
        return false;
    return download(lastRepo_, lastRevision_, lastCacheDir_);
}

void HfDownloader::startListing()
{
    if (!HfCache::isValidRepoId(lastRepo_)) {
        fail(QStringLiteral("not a repository id (expected ORG/NAME, e.g. TinyLlama/TinyLlama-1.1B-Chat-v1.0)"));
        return;
    }
    if (!HfRepoFolder::isSafeRepoPath(lastRevision_)) { // it names refs/<revision> on disk
        fail(QStringLiteral("'%1' is not a branch, tag or commit name").arg(lastRevision_));
        return;
    }
    redirects_ = 0;
    QNetworkReply* reply = track(nam_.get(makeRequest(apiUrl())));
    connect(reply, &QNetworkReply::finished, this, [this, reply] { onListingFinished(reply); });
}

void HfDownloader::onListingFinished(QNetworkReply* reply)
{
    reply->deleteLater();
    reply_ = nullptr;
    const int status = httpStatus(reply);
    if (isRedirect(status) && redirectTarget(reply).isValid() && ++redirects_ <= kMaxRedirects) {
        QNetworkReply* next = track(nam_.get(makeRequest(redirectTarget(reply))));
        connect(next, &QNetworkReply::finished, this, [this, next] { onListingFinished(next); });
        return;
    }
    if (status != 200) {
        failHttp(QStringLiteral("repository"), reply);
        return;
    }
    QJsonParseError err;
    const QJsonDocument doc = QJsonDocument::fromJson(reply->readAll(), &err);
    const QString where = reply->url().toString();
    if (err.error != QJsonParseError::NoError || !doc.isObject()) {
        fail(QStringLiteral("the file listing from %1 is not a JSON object").arg(where));
        return;
    }
    const QJsonObject j = doc.object();
    commit_ = j.value(QLatin1String("sha")).toString();
    if (!HfRepoFolder::isSafeBlobName(commit_)) {
        fail(QStringLiteral("the file listing from %1 has no usable commit \"sha\"").arg(where));
        return;
    }
    bool hasConfig = false, hasWeights = false;
    for (const QJsonValue& v : j.value(QLatin1String("siblings")).toArray()) {
        const QString name = v.toObject().value(QLatin1String("rfilename")).toString();
        if (!HfRepoFolder::isSafeRepoPath(name) || !wantsFile(name))
            continue;
        files_.append({name, {}, -1});
        hasConfig = hasConfig || name == QLatin1String("config.json");
        hasWeights = hasWeights || name.endsWith(QLatin1String(".safetensors"));
    }
    if (!hasConfig) {
        fail(QStringLiteral("revision '%1' has no config.json: not a transformers model").arg(lastRevision_));
        return;
    }
    if (!hasWeights) {
        fail(QStringLiteral("revision '%1' has no *.safetensors weights (the studio reads only safetensors)")
                 .arg(lastRevision_));
        return;
    }
    phase_ = Phase::Probing;
    current_ = 0;
    probeNext();
}

void HfDownloader::probeNext()
{
    if (current_ >= files_.size()) {
        bytesTotal_ = 0;
        for (const FileTask& f : files_)
            bytesTotal_ += std::max<qint64>(0, f.size);
        phase_ = Phase::Fetching;
        current_ = 0;
        fetchNext();
        return;
    }
    redirects_ = 0;
    startProbe(resolveUrl(files_[current_].name));
}

void HfDownloader::startProbe(const QUrl& url)
{
    QNetworkReply* reply = track(nam_.head(makeRequest(url)));
    connect(reply, &QNetworkReply::finished, this, [this, reply] { onProbeFinished(reply); });
}

void HfDownloader::onProbeFinished(QNetworkReply* reply)
{
    reply->deleteLater();
    reply_ = nullptr;
    FileTask& f = files_[current_];
    const int status = httpStatus(reply);
    const QByteArray linkedEtag = reply->rawHeader("X-Linked-Etag");
    if (isRedirect(status) && linkedEtag.isEmpty()) {
        const QUrl target = redirectTarget(reply);
        if (target.isValid() && ++redirects_ <= kMaxRedirects) {
            startProbe(target);
            return;
        }
        fail(QStringLiteral("file %1: too many redirects (last from %2)").arg(f.name, reply->url().toString()));
        return;
    }
    if (status != 200 && !isRedirect(status)) {
        failHttp(QStringLiteral("file ") + f.name, reply);
        return;
    }
    f.etag = HfRepoFolder::blobNameFromEtag(linkedEtag.isEmpty() ? reply->rawHeader("ETag") : linkedEtag);
    if (!HfRepoFolder::isSafeBlobName(f.etag)) {
        fail(QStringLiteral("file %1: the server sent no usable ETag (\"%2\") from %3")
                 .arg(f.name, f.etag, reply->url().toString()));
        return;
    }
    f.size = headerNumber(reply, "X-Linked-Size");
    if (f.size < 0 && status == 200) // a redirect's Content-Length is the redirect page's
        f.size = headerNumber(reply, "Content-Length");
    ++current_;
    probeNext();
}

void HfDownloader::fetchNext()
{
    while (current_ < files_.size()) {
        const FileTask& f = files_[current_];
        const QFileInfo blob(folder_.blobPath(f.etag));
        if (!blob.isFile() || (f.size >= 0 && blob.size() != f.size))
            break;
        QString error;
        if (!folder_.link(commit_, f.name, f.etag, &error)) {
            fail(error);
            return;
        }
        bytesFinished_ += blob.size();
        ++current_;
    }
    if (current_ >= files_.size()) {
        finishAll();
        return;
    }
    const FileTask& f = files_[current_];
    const QString partial = folder_.partialPath(f.etag);
    if (!QDir().mkpath(QFileInfo(partial).absolutePath())) {
        fail(QStringLiteral("cannot create %1").arg(QFileInfo(partial).absolutePath()));
        return;
    }
    if (f.size >= 0 && QFileInfo(partial).size() > f.size)
        QFile::remove(partial); // longer than the file can be: not a prefix of it
    out_ = new QFile(partial, this);
    // Unbuffered: every byte received is on disk, so cancel() or a crash leaves exactly that many to resume.
    if (!out_->open(QIODevice::WriteOnly | QIODevice::Append | QIODevice::Unbuffered)) {
        fail(QStringLiteral("file %1: cannot write %2 (%3)").arg(f.name, partial, out_->errorString()));
        return;
    }
    if (f.size > 0 && out_->size() == f.size) { // received whole by a run that stopped before the rename
        finishFile();
        return;
    }
    rangeStart_ = out_->size();
    retriedWithoutRange_ = false;
    restartFromZero_ = false;
    redirects_ = 0;
    emitProgress(true);
    startGet(resolveUrl(f.name));
}

void HfDownloader::startGet(const QUrl& url)
{
    QNetworkRequest request = makeRequest(url);
    if (rangeStart_ > 0)
        request.setRawHeader("Range", "bytes=" + QByteArray::number(rangeStart_) + "-");
    bodyAccepted_ = false;
    QNetworkReply* reply = track(nam_.get(request));
    connect(reply, &QNetworkReply::metaDataChanged, this, [this, reply] { onGetMetaData(reply); });
    connect(reply, &QNetworkReply::readyRead, this, [this, reply] { onGetReadyRead(reply); });
    connect(reply, &QNetworkReply::finished, this, [this, reply] { onGetFinished(reply); });
}

void HfDownloader::onGetMetaData(QNetworkReply* reply)
{
    const int status = httpStatus(reply);
    bodyAccepted_ = false;
    if (status == 200) {
        // The whole file: either none was asked to be skipped or the server ignored the range.
        if (out_->size() > 0)
            out_->resize(0);
        rangeStart_ = 0;
        bodyAccepted_ = true;
    } else if (status == 206) {
        static const QRegularExpression re(QStringLiteral("^bytes (\\d+)-"));
        const auto m = re.match(QString::fromLatin1(reply->rawHeader("Content-Range")));
        if (m.hasMatch() && m.captured(1).toLongLong() == out_->size()) {
            bodyAccepted_ = true;
        } else {
            restartFromZero_ = true;
            QMetaObject::invokeMethod(reply, &QNetworkReply::abort, Qt::QueuedConnection);
        }
    }
}

void HfDownloader::onGetReadyRead(QNetworkReply* reply)
{
    if (!reply->isOpen()) // aborted (transfer timeout): nothing left to read
        return;
    const QByteArray data = reply->readAll();
    if (!bodyAccepted_ || data.isEmpty())
        return;
    if (out_->write(data) != data.size()) {
        fail(QStringLiteral("file %1: cannot write %2 (%3)")
                 .arg(files_[current_].name, out_->fileName(), out_->errorString()));
        return;
    }
    emitProgress(false);
}

void HfDownloader::onGetFinished(QNetworkReply* reply)
{
    reply->deleteLater();
    reply_ = nullptr;
    if (bodyAccepted_)
        onGetReadyRead(reply);
    if (!isRunning())
        return; // the write failed
    const FileTask& f = files_[current_];
    const int status = httpStatus(reply);
    if (restartFromZero_) {
        restartFromZero_ = false;
        out_->resize(0);
        rangeStart_ = 0;
        startGet(reply->url());
        return;
    }
    if (isRedirect(status)) {
        const QUrl target = redirectTarget(reply);
        if (!target.isValid() || ++redirects_ > kMaxRedirects) {
            fail(QStringLiteral("file %1: too many redirects (last from %2)").arg(f.name, reply->url().toString()));
            return;
        }
        startGet(target);
        return;
    }
    if (status == 416 && !retriedWithoutRange_) { // the partial file does not fit the server's: start over
        retriedWithoutRange_ = true;
        out_->resize(0);
        rangeStart_ = 0;
        startGet(reply->url());
        return;
    }
    if (status != 200 && status != 206) {
        failHttp(QStringLiteral("file ") + f.name, reply);
        return;
    }
    const qint64 received = out_->size();
    qint64 expected = f.size;
    if (expected < 0) {
        const qint64 length = headerNumber(reply, "Content-Length");
        expected = length < 0 ? -1 : length + (status == 206 ? rangeStart_ : 0);
    }
    if (reply->error() != QNetworkReply::NoError || (expected >= 0 && received < expected)) {
        fail(QStringLiteral("file %1: the transfer stopped after %2 of %3 bytes (%4, from %5); Resume continues "
                            "from there")
                 .arg(f.name, formatCount(received), sizeText(expected),
                      reply->error() != QNetworkReply::NoError ? reply->errorString()
                                                               : QStringLiteral("connection closed early"),
                      reply->url().toString()));
        return;
    }
    if (expected >= 0 && received > expected) {
        out_->remove();
        fail(QStringLiteral("file %1: received %2 bytes, more than the %3 announced; the partial file was "
                            "discarded")
                 .arg(f.name, formatCount(received), formatCount(expected)));
        return;
    }
    finishFile();
}

void HfDownloader::finishFile()
{
    const FileTask& f = files_[current_];
    const QString blob = folder_.blobPath(f.etag);
    const qint64 size = out_->size();
    out_->close();
    QFile::remove(blob); // a blob of the wrong size, from some other tool
    if (!out_->rename(blob)) {
        fail(QStringLiteral("file %1: cannot rename %2 to %3 (%4)").arg(f.name, out_->fileName(), blob, out_->errorString()));
        return;
    }
    delete out_;
    out_ = nullptr;
    QString error;
    if (!folder_.link(commit_, f.name, f.etag, &error)) {
        fail(error);
        return;
    }
    bytesFinished_ += size;
    ++current_;
    fetchNext();
}

void HfDownloader::finishAll()
{
    // The ref last, so that refs/main never names a snapshot this run left incomplete.
    QString error;
    if (lastRevision_ != commit_ && !folder_.writeRef(lastRevision_, commit_, &error)) {
        fail(error);
        return;
    }
    const QString snapshot = folder_.snapshotDir(commit_);
    emitProgress(true);
    phase_ = Phase::Idle;
    Q_EMIT finished(snapshot);
}

void HfDownloader::emitProgress(bool force)
{
    if (!force && progressClock_.isValid() && progressClock_.elapsed() < kProgressIntervalMs) {
        if (!progressTimer_->isActive())
            progressTimer_->start(int(kProgressIntervalMs - progressClock_.elapsed()));
        return;
    }
    progressTimer_->stop();
    progressClock_.start();
    const qint64 done = bytesFinished_ + (out_ ? out_->size() : 0);
    const QString file = current_ < files_.size() ? files_[current_].name : QString();
    Q_EMIT progress(done, std::max(bytesTotal_, done), file);
}

// --- ending ---

void HfDownloader::resetTransfer()
{
    if (QNetworkReply* reply = reply_.data()) {
        reply_ = nullptr;
        reply->disconnect(this);
        if (bodyAccepted_ && out_ && out_->isOpen() && reply->isOpen()) // keep what already arrived
            out_->write(reply->readAll());
        reply->abort();
        reply->deleteLater();
    }
    progressTimer_->stop();
    if (out_) {
        out_->close();
        delete out_;
        out_ = nullptr;
    }
    bodyAccepted_ = false;
}

void HfDownloader::fail(const QString& detail)
{
    if (out_)
        emitProgress(true);
    resetTransfer();
    phase_ = Phase::Idle;
    Q_EMIT failed(lastRepo_ + QStringLiteral(": ") + detail);
}

void HfDownloader::failHttp(const QString& subject, QNetworkReply* reply)
{
    const int status = httpStatus(reply);
    const QString url = reply->url().toString();
    if (status == 0) {
        fail(QStringLiteral("%1: cannot reach %2 (%3)").arg(subject, url, reply->errorString()));
        return;
    }
    const QByteArray code = reply->rawHeader("X-Error-Code");
    const bool isRepo = subject == QLatin1String("repository");
    QString what;
    if (code == "GatedRepo")
        what = QStringLiteral("gated repository: request access on the hub, then set HF_TOKEN");
    else if (code == "RevisionNotFound")
        what = QStringLiteral("revision '%1' not found").arg(lastRevision_);
    else if (status == 404 || (isRepo && status == 401))
        what = isRepo && status == 401 ? QStringLiteral("repository not found (or private: set HF_TOKEN)")
                                       : subject + QStringLiteral(" not found");
    else if (status == 401 || status == 403)
        what = subject + QStringLiteral(": access denied (set HF_TOKEN)");
    else if (status >= 500)
        what = subject + QStringLiteral(": server error");
    else
        what = subject + QStringLiteral(": unexpected response");
    fail(QStringLiteral("%1 (HTTP %2 from %3)").arg(what).arg(status).arg(url));
}

void HfDownloader::cancel()
{
    if (!isRunning())
        return;
    resetTransfer();
    phase_ = Phase::Idle;
    Q_EMIT cancelled();
}

} // namespace qpruner::ui
