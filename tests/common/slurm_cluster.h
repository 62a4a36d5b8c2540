// A real single-node Slurm cluster for tests, started by the test itself: munged with its own key and socket,
// slurmctld and slurmd in the foreground from a slurm.conf generated in a fresh directory (own ports, no
// accounting, linuxproc process tracking), stopped by the destructor. Needs root (slurmd) and Debian's slurmctld,
// slurmd, slurm-client and munge packages; start() says why not otherwise. env() is what sbatch/squeue need.
#pragma once

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QProcessEnvironment>
#include <QStandardPaths>
#include <QString>
#include <QTest>

#include <csignal>
#include <filesystem>
#include <memory>
#include <unistd.h>

namespace qpruner::testing {

class SlurmCluster {
public:
    SlurmCluster() = default;
    SlurmCluster(const SlurmCluster&) = delete;
    SlurmCluster& operator=(const SlurmCluster&) = delete;
    ~SlurmCluster() { stop(); }

    QString start(int cpus = 2)
    {
        for (const char* tool : {"munged", "slurmctld", "slurmd", "sbatch", "sinfo"})
            if (QStandardPaths::findExecutable(QString::fromLatin1(tool), {"/usr/sbin", "/usr/bin", "/sbin"}).isEmpty())
                return QStringLiteral("%1 is not installed (Debian: slurmctld slurmd slurm-client munge)").arg(tool);
        if (::geteuid() != 0)
            return QStringLiteral("slurmd needs root to start jobs as their user");
        char tmpl[] = "/tmp/qpruner-slurm-XXXXXX";
        if (!::mkdtemp(tmpl))
            return QStringLiteral("cannot create a directory under /tmp");
        dir_ = QString::fromLatin1(tmpl);
        QDir(dir_).mkpath(QStringLiteral("state"));
        QDir(dir_).mkpath(QStringLiteral("spool"));
        {
            QFile key(dir_ + QStringLiteral("/munge.key"));
            if (!key.open(QIODevice::WriteOnly))
                return QStringLiteral("cannot write the munge key");
            QFile random(QStringLiteral("/dev/urandom"));
            random.open(QIODevice::ReadOnly);
            key.write(random.read(1024));
            key.setPermissions(QFile::ReadOwner);
        }
        char name[256] = {};
        ::gethostname(name, sizeof name - 1);
        const QString host = QString::fromLocal8Bit(name).section(QLatin1Char('.'), 0, 0);
        const int port = 30000 + int(::getpid() % 10000) * 2;
        const QString conf = QStringLiteral(
                                 "ClusterName=qptest\nSlurmctldHost=%1\nSlurmUser=root\nSlurmctldPort=%2\n"
                                 "SlurmdPort=%3\nAuthType=auth/munge\nAuthInfo=socket=%4/munge.sock\n"
                                 "CredType=cred/munge\nStateSaveLocation=%4/state\nSlurmdSpoolDir=%4/spool\n"
                                 "SlurmctldPidFile=%4/slurmctld.pid\nSlurmdPidFile=%4/slurmd.pid\n"
                                 "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
                                 "SchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
                                 "SelectTypeParameters=CR_Core\nReturnToService=2\nMpiDefault=none\n"
                                 "JobCompType=jobcomp/none\nJobAcctGatherType=jobacct_gather/none\n"
                                 "AccountingStorageType=accounting_storage/none\n"
                                 "SlurmctldLogFile=%4/slurmctld.log\nSlurmdLogFile=%4/slurmd.log\n"
                                 "NodeName=%1 CPUs=%5 State=UNKNOWN\n"
                                 "PartitionName=debug Nodes=%1 Default=YES MaxTime=INFINITE State=UP\n")
                                 .arg(host)
                                 .arg(port)
                                 .arg(port + 1)
                                 .arg(dir_)
                                 .arg(cpus);
        {
            QFile f(confPath());
            if (!f.open(QIODevice::WriteOnly))
                return QStringLiteral("cannot write slurm.conf");
            f.write(conf.toUtf8());
        }
        QProcess munge;
        munge.start(QStringLiteral("munged"),
                    {"-f", "-S", dir_ + "/munge.sock", "--key-file=" + dir_ + "/munge.key",
                     "--log-file=" + dir_ + "/munged.log", "--pid-file=" + dir_ + "/munged.pid",
                     "--seed-file=" + dir_ + "/munged.seed"});
        if (!munge.waitForFinished(30000) || munge.exitCode() != 0)
            return QStringLiteral("munged did not start: ") + QString::fromLocal8Bit(munge.readAll());
        for (const char* daemon : {"slurmctld", "slurmd"}) {
            auto p = std::make_unique<QProcess>();
            p->setProcessChannelMode(QProcess::MergedChannels);
            p->setStandardOutputFile(dir_ + QStringLiteral("/%1.out").arg(QString::fromLatin1(daemon)));
            p->setProcessEnvironment(env());
            p->start(QString::fromLatin1(daemon), {"-D", "-f", confPath()});
            if (!p->waitForStarted(10000))
                return QStringLiteral("%1 did not start").arg(QString::fromLatin1(daemon));
            daemons_.push_back(std::move(p));
        }
        // Up when sinfo sees the node idle.
        const bool up = QTest::qWaitFor(
            [&] {
                QProcess sinfo;
                sinfo.setProcessEnvironment(env());
                sinfo.start(QStringLiteral("sinfo"), {"-h", "-o", "%t"});
                sinfo.waitForFinished(10000);
                return sinfo.readAll().trimmed() == "idle";
            },
            30000);
        if (!up)
            return QStringLiteral("the node did not come up (see %1/slurmctld.log)").arg(dir_);
        return {};
    }

    void stop()
    {
        for (auto& p : daemons_) {
            p->terminate();
            if (!p->waitForFinished(10000))
                p->kill();
            p->waitForFinished(5000);
        }
        daemons_.clear();
        if (!dir_.isEmpty()) {
            QFile pid(dir_ + QStringLiteral("/munged.pid"));
            if (pid.open(QIODevice::ReadOnly))
                ::kill(pid_t(pid.readAll().trimmed().toLongLong()), SIGTERM);
            std::error_code ec;
            std::filesystem::remove_all(dir_.toStdString(), ec);
            dir_.clear();
        }
    }

    QString confPath() const { return dir_ + QStringLiteral("/slurm.conf"); }
    QProcessEnvironment env() const
    {
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        e.insert(QStringLiteral("SLURM_CONF"), confPath());
        return e;
    }

private:
    QString dir_;
    std::vector<std::unique_ptr<QProcess>> daemons_;
};

} // namespace qpruner::testing
