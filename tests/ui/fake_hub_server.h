// An in-process HTTP/1.1 server in the Hugging Face Hub's URL layout, for the downloader tests (the hub is not
// reachable from the build machines). It serves
//   GET  /api/models/{repo}/revision/{rev}      {"sha", "siblings": [{"rfilename"}]}; 404 + X-Error-Code otherwise
//   HEAD/GET /{repo}/resolve/{rev}/{file}       plain files: 200 with ETag; LFS files: 302 to a CDN server with
//                                               X-Linked-Etag / X-Linked-Size (as the hub does)
//   HEAD/GET /cdn/{etag}                        the LFS bytes, with Range (206), and switches to cut the body
//                                               off, stall it, or ignore Range
// and records every request's method, path, Range and Authorization. No Q_OBJECT: lambdas only, so the header
// needs no moc. Lives on the thread that creates it, like the QNetworkAccessManager under test.
#pragma once

#include <QByteArray>
#include <QCryptographicHash>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QList>
#include <QMap>
#include <QPointer>
#include <QRegularExpression>
#include <QString>
#include <QStringList>
#include <QTcpServer>
#include <QTcpSocket>
#include <QUrl>

#include <utility>

namespace qpruner::testing {

struct FakeHubFile {
    QByteArray body;
    bool lfs = false;       // served through a redirect to the CDN
    bool weakEtag = false;  // ETag sent as W/"..."
    // The blob name a client must use: the sha256 for LFS files, the git blob sha1 otherwise (as on the hub).
    QByteArray etag() const
    {
        if (lfs)
            return QCryptographicHash::hash(body, QCryptographicHash::Sha256).toHex();
        return QCryptographicHash::hash("blob " + QByteArray::number(body.size()) + '\0' + body,
                                        QCryptographicHash::Sha1)
            .toHex();
    }
};

struct FakeHubRequest {
    QByteArray method;
    QByteArray path;          // decoded, without the query
    QByteArray range;         // the Range header, empty when absent
    QByteArray authorization; // the Authorization header, empty when absent
};

class FakeHubServer {
public:
    // Switches for bodies of /cdn/ responses (any offset, counted within one response).
    qint64 cutAfter = -1;    // close the connection after this many body bytes
    qint64 stallAfter = -1;  // send this many body bytes, then nothing more on that connection
    bool ignoreRange = false;// answer a Range request with 200 and the whole file

    QList<FakeHubRequest> requests;

    FakeHubServer()
    {
        server_.listen(QHostAddress::LocalHost);
        QObject::connect(&server_, &QTcpServer::newConnection, &server_, [this] {
            while (QTcpSocket* s = server_.nextPendingConnection()) {
                QObject::connect(s, &QTcpSocket::readyRead, &server_, [this, s] { onReadyRead(s); });
                QObject::connect(s, &QTcpSocket::disconnected, &server_, [this, s] {
                    buffers_.remove(s);
                    s->deleteLater();
                });
            }
        });
    }
    ~FakeHubServer()
    {
        for (const QPointer<QTcpSocket>& s : stalled_)
            if (s)
                s->abort();
    }

    bool isListening() const { return server_.isListening(); }
    QString url() const { return QStringLiteral("http://127.0.0.1:%1").arg(server_.serverPort()); }

    // LFS resolve URLs redirect to `cdn`'s /cdn/<etag> (another origin: another port).
    void setCdn(FakeHubServer* cdn) { cdn_ = cdn; }

    void addRepo(const QString& repoId, const QByteArray& commit, const QMap<QString, FakeHubFile>& files,
                 const QStringList& otherSiblings = {})
    {
        repos_[repoId] = Repo{commit, files, otherSiblings};
        if (cdn_)
            for (const FakeHubFile& f : files)
                if (f.lfs)
                    cdn_->blobs_[f.etag()] = f.body;
    }

    QList<FakeHubRequest> requestsTo(const QByteArray& pathPrefix, const QByteArray& method = {}) const
    {
        QList<FakeHubRequest> out;
        for (const FakeHubRequest& r : requests)
            if (r.path.startsWith(pathPrefix) && (method.isEmpty() || r.method == method))
                out.append(r);
        return out;
    }

private:
    struct Repo {
        QByteArray commit;
        QMap<QString, FakeHubFile> files;
        QStringList otherSiblings; // listed by the API, never served (the client must not ask)
    };
    using Headers = QList<std::pair<QByteArray, QByteArray>>;

    void onReadyRead(QTcpSocket* s)
    {
        if (stalled_.contains(s))
            return;
        QByteArray& buffer = buffers_[s];
        buffer += s->readAll();
        for (int end = int(buffer.indexOf("\r\n\r\n")); end >= 0; end = int(buffer.indexOf("\r\n\r\n"))) {
            const QByteArray head = buffer.left(end);
            buffer.remove(0, end + 4);
            const QList<QByteArray> lines = head.split('\n');
            const QList<QByteArray> first = lines.value(0).trimmed().split(' ');
            FakeHubRequest r;
            r.method = first.value(0);
            const QByteArray target = first.value(1);
            r.path = QUrl::fromPercentEncoding(target.left(target.contains('?') ? target.indexOf('?') : target.size()))
                         .toUtf8();
            for (int i = 1; i < lines.size(); ++i) {
                const int colon = int(lines[i].indexOf(':'));
                if (colon < 0)
                    continue;
                const QByteArray name = lines[i].left(colon).trimmed().toLower();
                const QByteArray value = lines[i].mid(colon + 1).trimmed();
                if (name == "range")
                    r.range = value;
                else if (name == "authorization")
                    r.authorization = value;
            }
            requests.append(r);
            handle(s, r);
            if (stalled_.contains(s) || s->state() != QAbstractSocket::ConnectedState)
                return;
        }
    }

    void handle(QTcpSocket* s, const FakeHubRequest& r)
    {
        static const QRegularExpression api(QStringLiteral("^/api/models/(.+)/revision/([^/]+)$"));
        static const QRegularExpression resolve(QStringLiteral("^/([^/]+/[^/]+|[^/]+)/resolve/([^/]+)/(.+)$"));
        const QString path = QString::fromUtf8(r.path);
        const bool head = r.method == "HEAD";
        if (path.startsWith(QLatin1String("/cdn/"))) {
            const QByteArray etag = r.path.mid(5);
            if (!blobs_.contains(etag))
                return send(s, 404, {}, "no such blob", head);
            return serveBody(s, r, blobs_[etag], {{"ETag", "\"cdn-" + etag.left(8) + "\""}}, true);
        }
        if (const auto m = api.match(path); m.hasMatch()) {
            const auto repo = repos_.constFind(m.captured(1));
            if (repo == repos_.constEnd())
                return send(s, 404, {{"X-Error-Code", "RepoNotFound"}}, R"({"error":"Repository not found"})", head);
            if (m.captured(2) != QLatin1String("main") && m.captured(2).toUtf8() != repo->commit)
                return send(s, 404, {{"X-Error-Code", "RevisionNotFound"}}, R"({"error":"Invalid rev id"})", head);
            QJsonArray siblings;
            for (auto it = repo->files.begin(); it != repo->files.end(); ++it)
                siblings.append(QJsonObject{{QStringLiteral("rfilename"), it.key()}});
            for (const QString& other : repo->otherSiblings)
                siblings.append(QJsonObject{{QStringLiteral("rfilename"), other}});
            const QJsonObject body{{QStringLiteral("id"), m.captured(1)},
                                   {QStringLiteral("sha"), QString::fromLatin1(repo->commit)},
                                   {QStringLiteral("siblings"), siblings}};
            return send(s, 200, {{"Content-Type", "application/json"}}, QJsonDocument(body).toJson(), head);
        }
        if (const auto m = resolve.match(path); m.hasMatch()) {
            const auto repo = repos_.constFind(m.captured(1));
            if (repo == repos_.constEnd())
                return send(s, 404, {{"X-Error-Code", "RepoNotFound"}}, "Repository not found", head);
            const auto file = repo->files.constFind(m.captured(3));
            if (file == repo->files.constEnd() ||
                (m.captured(2) != QLatin1String("main") && m.captured(2).toUtf8() != repo->commit))
                return send(s, 404, {{"X-Error-Code", "EntryNotFound"}}, "Entry not found", head);
            const QByteArray etag = file->etag();
            Headers h{{"X-Repo-Commit", repo->commit}};
            if (file->lfs) {
                h.emplaceBack("Location", (cdn_ ? cdn_->url().toUtf8() : QByteArray()) + "/cdn/" + etag);
                h.emplaceBack("X-Linked-Etag", "\"" + etag + "\"");
                h.emplaceBack("X-Linked-Size", QByteArray::number(file->body.size()));
                return send(s, 302, h, "Found. Redirecting to the CDN", head);
            }
            h.emplaceBack("ETag", (file->weakEtag ? "W/\"" : "\"") + etag + "\"");
            return serveBody(s, r, file->body, h, false);
        }
        send(s, 404, {}, "not found", head);
    }

    void serveBody(QTcpSocket* s, const FakeHubRequest& r, const QByteArray& body, Headers h, bool switches)
    {
        static const QRegularExpression range(QStringLiteral("^bytes=(\\d+)-$"));
        const auto m = range.match(QString::fromLatin1(r.range));
        if (m.hasMatch() && !(switches && ignoreRange)) {
            const qint64 from = m.captured(1).toLongLong();
            if (from >= body.size()) {
                h.emplaceBack("Content-Range", "bytes */" + QByteArray::number(body.size()));
                return send(s, 416, h, {}, r.method == "HEAD");
            }
            h.emplaceBack("Content-Range", "bytes " + QByteArray::number(from) + "-" + QByteArray::number(body.size() - 1) +
                                           "/" + QByteArray::number(body.size()));
            return send(s, 206, h, body.mid(from), r.method == "HEAD", switches);
        }
        send(s, 200, h, body, r.method == "HEAD", switches);
    }

    void send(QTcpSocket* s, int status, Headers h, const QByteArray& body, bool headOnly, bool switches = false)
    {
        static const QHash<int, QByteArray> reasons{{200, "OK"},       {206, "Partial Content"}, {302, "Found"},
                                                    {404, "Not Found"}, {416, "Range Not Satisfiable"}};
        QByteArray out = "HTTP/1.1 " + QByteArray::number(status) + " " + reasons.value(status, "Status") + "\r\n";
        h.emplaceBack("Content-Length", QByteArray::number(body.size()));
        h.emplaceBack("Connection", "keep-alive");
        for (const auto& [name, value] : h)
            out += name + ": " + value + "\r\n";
        out += "\r\n";
        if (headOnly) {
            s->write(out);
            return;
        }
        if (switches && cutAfter >= 0 && cutAfter < body.size()) {
            s->write(out + body.left(cutAfter));
            s->disconnectFromHost(); // sends what is queued, then closes
            return;
        }
        if (switches && stallAfter >= 0 && stallAfter < body.size()) {
            s->write(out + body.left(stallAfter));
            stalled_.append(s);
            return;
        }
        s->write(out + body);
    }

    QTcpServer server_;
    FakeHubServer* cdn_ = nullptr;
    QMap<QString, Repo> repos_;
    QHash<QByteArray, QByteArray> blobs_; // the CDN's: etag -> bytes
    QHash<QTcpSocket*, QByteArray> buffers_;
    QList<QPointer<QTcpSocket>> stalled_;
};

} // namespace qpruner::testing
