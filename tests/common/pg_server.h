// A real PostgreSQL server for tests, started by the test itself: initdb into a fresh directory, pg_ctl start on a
// Unix socket only (no TCP port), trust authentication for one user, stopped (and its directory removed) by the
// destructor. As root it runs the server as the `postgres` system user (initdb refuses root). Databases are
// created per test with createdb; url(name) is the libpq URL the store opens.
#pragma once

#include <QDir>
#include <QProcess>
#include <QStandardPaths>
#include <QString>
#include <QStringList>

#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace qpruner::testing {

class PgServer {
public:
    PgServer() = default;
    PgServer(const PgServer&) = delete;
    PgServer& operator=(const PgServer&) = delete;
    ~PgServer() { stop(); }

    // Empty when it is running; else why not (the binaries are missing, initdb or the start failed).
    QString start()
    {
        bin_ = binDir();
        if (bin_.isEmpty())
            return QStringLiteral("PostgreSQL's initdb and pg_ctl were not found (Debian: apt install postgresql)");
        char tmpl[] = "/tmp/qpruner-pg-XXXXXX";
        if (!::mkdtemp(tmpl))
            return QStringLiteral("cannot create a directory under /tmp");
        dir_ = QString::fromLatin1(tmpl);
        ::chmod(tmpl, 0755);
        const QString data = dir_ + QStringLiteral("/data");
        QDir().mkpath(data);
        if (::geteuid() == 0) {
            const passwd* pw = ::getpwnam("postgres");
            if (!pw)
                return QStringLiteral("running as root and there is no `postgres` user to run the server as");
            if (::chown(tmpl, pw->pw_uid, pw->pw_gid) != 0 ||
                ::chown(data.toLocal8Bit().constData(), pw->pw_uid, pw->pw_gid) != 0)
                return QStringLiteral("cannot hand the server's directory to the postgres user");
            asUser_ = QStringLiteral("postgres");
        }
        QString out;
        if (!run(bin_ + QStringLiteral("/initdb"),
                 {QStringLiteral("-D"), data, QStringLiteral("-U"), QStringLiteral("qpruner"),
                  QStringLiteral("--auth=trust"), QStringLiteral("-E"), QStringLiteral("UTF8"),
                  QStringLiteral("--no-sync"), QStringLiteral("--locale=C")},
                 &out))
            return QStringLiteral("initdb failed: ") + out;
        port_ = 20000 + int(::getpid() % 20000);
        const QString options = QStringLiteral("-k %1 -p %2 -c listen_addresses= -c fsync=off -c "
                                               "synchronous_commit=off -c max_connections=60")
                                    .arg(dir_)
                                    .arg(port_);
        if (!run(bin_ + QStringLiteral("/pg_ctl"),
                 {QStringLiteral("-D"), data, QStringLiteral("-o"), options, QStringLiteral("-l"),
                  dir_ + QStringLiteral("/server.log"), QStringLiteral("-w"), QStringLiteral("start")},
                 &out))
            return QStringLiteral("pg_ctl start failed: ") + out;
        running_ = true;
        return {};
    }

    void stop()
    {
        if (running_) {
            QString out;
            run(bin_ + QStringLiteral("/pg_ctl"),
                {QStringLiteral("-D"), dir_ + QStringLiteral("/data"), QStringLiteral("-m"), QStringLiteral("immediate"),
                 QStringLiteral("-w"), QStringLiteral("stop")},
                &out);
            running_ = false;
        }
        if (!dir_.isEmpty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir_.toStdString(), ec);
            dir_.clear();
        }
    }

    // A new, empty database; false with the reason in *error.
    bool createDatabase(const QString& name, QString* error = nullptr)
    {
        QString out;
        const bool ok = run(bin_ + QStringLiteral("/createdb"),
                            {QStringLiteral("-h"), dir_, QStringLiteral("-p"), QString::number(port_),
                             QStringLiteral("-U"), QStringLiteral("qpruner"), name},
                            &out, false);
        if (!ok && error)
            *error = out;
        return ok;
    }

    // Runs one SQL command as the superuser on database `db` (e.g. pg_terminate_backend); psql's output.
    QString sql(const QString& db, const QString& command)
    {
        QString out;
        run(bin_ + QStringLiteral("/psql"),
            {QStringLiteral("-h"), dir_, QStringLiteral("-p"), QString::number(port_), QStringLiteral("-U"),
             QStringLiteral("qpruner"), QStringLiteral("-d"), db, QStringLiteral("-At"), QStringLiteral("-c"), command},
            &out, false);
        return out;
    }

    std::string url(const QString& db) const
    {
        return QStringLiteral("postgresql:///%1?host=%2&port=%3&user=qpruner").arg(db, dir_).arg(port_).toStdString();
    }
    bool running() const { return running_; }

private:
    static QString binDir()
    {
        // Debian keeps the server programs under /usr/lib/postgresql/<major>/bin.
        const QDir lib(QStringLiteral("/usr/lib/postgresql"));
        QStringList majors = lib.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
        std::sort(majors.begin(), majors.end(), [](const QString& a, const QString& b) { return a.toInt() > b.toInt(); });
        for (const QString& m : majors)
            if (QFileInfo::exists(lib.filePath(m + QStringLiteral("/bin/initdb"))))
                return lib.filePath(m + QStringLiteral("/bin"));
        const QString initdb = QStandardPaths::findExecutable(QStringLiteral("initdb"));
        return initdb.isEmpty() ? QString() : QFileInfo(initdb).absolutePath();
    }

    // Runs a program (as the postgres user when root and `asServer`), waiting up to 60 s.
    bool run(const QString& program, const QStringList& args, QString* out, bool asServer = true)
    {
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        if (asServer && !asUser_.isEmpty())
            p.start(QStringLiteral("runuser"), QStringList{QStringLiteral("-u"), asUser_, QStringLiteral("--"), program} + args);
        else
            p.start(program, args);
        if (!p.waitForFinished(60000)) {
            *out = QStringLiteral("%1 did not finish: %2").arg(program, p.errorString());
            p.kill();
            return false;
        }
        *out = QString::fromLocal8Bit(p.readAll()).trimmed();
        return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    }

    QString bin_, dir_, asUser_;
    int port_ = 0;
    bool running_ = false;
};

} // namespace qpruner::testing
