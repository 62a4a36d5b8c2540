// One study, many worker processes: `qpruner run` starts a stories260K search, `qpruner worker` processes join it
// on an SQLite file and on a real PostgreSQL server the test starts; one worker is killed with SIGKILL mid-trial
// and one sent SIGTERM. Every trial the study asked for completes exactly once (numbers contiguous, no map twice),
// the killed worker's and the stopped worker's trials come back as retries, the SIGTERM'd worker exits 0, and no
// worker row is left. `qpruner slurm-script` prints a script bash accepts whose command, run as three array tasks,
// completes a study too.
#include <QtTest/QtTest>

#include <csignal>
#include <fstream>
#include <map>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "pg_server.h"
#include "slurm_cluster.h"
#include "qpruner/store.h"
#include "test_data.h"

using namespace qpruner;
namespace fs = std::filesystem;

namespace {

QProcessEnvironment cliEnvironment()
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("QPRUNER_SHARED_DATA", QString::fromStdString(testing::sharedDataDir().string()));
    return env;
}

std::unique_ptr<QProcess> startCli(const QStringList& args, const QString& log, const QString& dir = {})
{
    auto p = std::make_unique<QProcess>();
    if (!dir.isEmpty())
        p->setWorkingDirectory(dir);
    p->setProcessEnvironment(cliEnvironment());
    p->setStandardOutputFile(log);
    p->setStandardErrorFile(log, QIODevice::Append);
    p->start(QStringLiteral(QPRUNER_CLI_PATH), args);
    p->waitForStarted(10000);
    return p;
}

// True once the process has ended (QProcess::waitForFinished is false for one that already ended while the test's
// event loop ran).
bool ended(QProcess& p, int timeoutMs)
{
    return p.state() == QProcess::NotRunning || p.waitForFinished(timeoutMs);
}

QString readLog(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}

// A search slow enough (group granularity, 40 windows of 256 tokens) for workers to join while it runs.
nlohmann::json studyConfig(int trials)
{
    return {{"version", 1},
            {"model", "${data}/models/stories260K/stories260K.bin"},
            {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", "6.5bpw"}}},
            {"search", {{"trials", trials}, {"granularity", "group"}, {"validation", {{"windows", 40}, {"seq_len", 256}}}}},
            {"evaluate", nullptr}};
}

// Waits until run 1 of `db` has a running search stage with at least `trials` trials claimed.
bool waitForSearch(const std::string& db, int trials, int timeoutMs = 120000)
{
    return QTest::qWaitFor(
        [&] {
            try {
                store::OpenOptions o;
                o.readOnly = true;
                const store::Store st(db, o);
                for (const auto& s : st.stages(1))
                    if (s.name == "search" && s.status == store::RunStatus::Running)
                        return int(st.trialSummaries(1).size()) >= trials;
            } catch (const std::exception&) {
            }
            return false;
        },
        timeoutMs);
}

} // namespace

class TestWorkers : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    testing::PgServer pg_;

    // The whole scenario on store `db`: the run plus `workers` worker processes, worker 0 killed, worker 1 stopped;
    // `cutConnections` (PostgreSQL): first every process's connection is terminated by the server.
    void study(const std::string& db, int workers, int trials, const std::function<void()>& cutConnections = {})
    {
        const QString config = tmp_.filePath(QStringLiteral("study.json"));
        std::ofstream(config.toStdString()) << studyConfig(trials).dump(2);
        auto run = startCli({"run", config, "--db", QString::fromStdString(db), "--threads", "1"},
                            tmp_.filePath(QStringLiteral("run.log")));
        QVERIFY2(waitForSearch(db, 1), qPrintable(readLog(tmp_.filePath(QStringLiteral("run.log")))));
        std::vector<std::unique_ptr<QProcess>> w;
        for (int i = 0; i < workers; ++i)
            w.push_back(startCli({"worker", "--db", QString::fromStdString(db), "--run", "1", "--threads", "1",
                                  "--heartbeat", "1", "--stale-after", "5"},
                                 tmp_.filePath(QStringLiteral("worker%1.log").arg(i))));
        // Once each of the two has a trial in flight: SIGKILL one, SIGTERM the other. runningOf: the number of the
        // trial `pid` is running, or -1.
        auto runningOf = [&](qint64 pid) {
            try {
                store::OpenOptions o;
                o.readOnly = true;
                const store::Store st(db, o);
                const std::string id = store::Store::workerId().substr(0, store::Store::workerId().rfind(':') + 1) +
                                       std::to_string(pid);
                for (const auto& t : st.trialSummaries(1))
                    if (t.worker == id && t.state == store::TrialState::Running)
                        return t.number;
            } catch (const std::exception&) {
            }
            return -1;
        };
        // A trial seen running may complete before a signal lands: the worker is paused (SIGSTOP) first, given time
        // for a commit already sent to land, and signalled only if the same trial is still running then. Returns
        // the number of the trial the signal interrupted.
        auto signalWhileRunning = [&](qint64 pid, int sig) {
            int signalled = -1;
            (void)QTest::qWaitFor(
                [&] {
                    const int seen = runningOf(pid);
                    if (seen < 0)
                        return false;
                    ::kill(pid_t(pid), SIGSTOP);
                    QThread::msleep(300);
                    if (runningOf(pid) == seen) {
                        ::kill(pid_t(pid), sig); // delivered on SIGCONT (SIGKILL at once)
                        signalled = seen;
                    }
                    ::kill(pid_t(pid), SIGCONT);
                    return signalled >= 0;
                },
                120000);
            return signalled;
        };
        const qint64 killed = w[0]->processId(), stopped = w[1]->processId();
        if (cutConnections) {
            QVERIFY(QTest::qWaitFor([&] { return runningOf(killed) >= 0; }, 120000));
            cutConnections(); // they reconnect: a transaction cut short runs again, a commit cut short fails its call
        }
        const int killedTrial = signalWhileRunning(killed, SIGKILL);
        QVERIFY(killedTrial >= 0);
        const int stoppedTrial = signalWhileRunning(stopped, SIGTERM);
        QVERIFY(stoppedTrial >= 0);

        QVERIFY(ended(*run, 300000));
        QVERIFY2(run->exitCode() == 0, qPrintable(readLog(tmp_.filePath(QStringLiteral("run.log")))));
        for (int i = 0; i < workers; ++i) {
            QVERIFY(ended(*w[size_t(i)], 120000));
            const QString log = readLog(tmp_.filePath(QStringLiteral("worker%1.log").arg(i)));
            if (i == 0) {
                QCOMPARE(w[0]->exitStatus(), QProcess::CrashExit);
                continue;
            }
            QVERIFY2(w[size_t(i)]->exitStatus() == QProcess::NormalExit && w[size_t(i)]->exitCode() == 0,
                     qPrintable(log));
            if (i == 1)
                QVERIFY2(log.contains(QLatin1String("stopped by signal 15; its running trial goes back to the queue")),
                         qPrintable(log));
        }

        const store::Store st(db);
        QCOMPARE(st.run(1).status, store::RunStatus::Done);
        const auto all = st.trialSummaries(1);
        std::set<std::string> encodings;
        std::set<int> retried;
        int complete = 0;
        std::map<std::string, int> byWorker;
        std::vector<std::string> errors, failedMaps;
        for (size_t i = 0; i < all.size(); ++i) {
            QCOMPARE(all[i].number, int(i)); // contiguous
            QVERIFY(all[i].state != store::TrialState::Running);
            if (all[i].state == store::TrialState::Complete) {
                ++complete;
                ++byWorker[all[i].worker];
                QVERIFY2(encodings.insert(all[i].encoding).second, all[i].encoding.c_str()); // no map twice
            } else {
                errors.push_back(all[i].error);
                failedMaps.push_back(all[i].encoding);
            }
            if (all[i].retryOf)
                retried.insert(*all[i].retryOf);
        }
        QCOMPARE(complete, trials);
        // The killed worker's trial (its process gone) and the stopped worker's ("cancelled") failed.
        // (A connection cut during a commit may fail one more trial, by its error; it comes back like the others.)
        std::string failures;
        for (const auto& t : all)
            if (t.state != store::TrialState::Complete)
                failures += "\n  trial " + std::to_string(t.number) + ": " + t.error;
        const std::string told = "killed trial " + std::to_string(killedTrial) + ", stopped trial " +
                                 std::to_string(stoppedTrial) + "; failed trials:" + failures;
        QVERIFY2(size_t(killedTrial) < all.size() && all[size_t(killedTrial)].state == store::TrialState::Failed &&
                     all[size_t(killedTrial)].error.find("is gone") != std::string::npos,
                 told.c_str());
        QVERIFY2(size_t(stoppedTrial) < all.size() && all[size_t(stoppedTrial)].state == store::TrialState::Failed &&
                     all[size_t(stoppedTrial)].error == "cancelled",
                 told.c_str());
        QVERIFY2(std::count(errors.begin(), errors.end(), std::string("cancelled")) == 1, told.c_str());
        // Both maps came back and completed: as retries, or proposed again by a worker before the retry.
        for (const std::string& e : failedMaps)
            QVERIFY2(encodings.count(e), e.c_str());
        QVERIFY(!retried.empty());
        QVERIFY2(byWorker.size() >= 2, "the run and at least one worker completed trials");
        QVERIFY(st.workers(1).empty()); // every worker retired or was dropped as gone
        qInfo("%s: %d trials complete, by %zu processes", st.isServer() ? "PostgreSQL" : "SQLite", complete,
              byWorker.size());
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(tmp_.isValid()); }
    void cleanupTestCase() { pg_.stop(); }

    void workersOnSqlite()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        study(tmp_.filePath(QStringLiteral("sqlite/study.db")).toStdString(), 3, 24);
    }

    void workersOnPostgres()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        const QString why = pg_.start();
        if (!why.isEmpty()) {
            if (testing::dataRequired())
                QFAIL(qPrintable(QStringLiteral("no PostgreSQL server: ") + why));
            QSKIP(qPrintable(QStringLiteral("no PostgreSQL server: ") + why));
        }
        QString error;
        QVERIFY2(pg_.createDatabase(QStringLiteral("study"), &error), qPrintable(error));
        study(pg_.url(QStringLiteral("study")), 4, 24, [&] {
            // Once the run and all 4 workers hold a connection (a worker still loading its model may not yet):
            // processes other than this test's, by the worker id in their application_name.
            const QString others = QStringLiteral("application_name LIKE 'qpruner %' AND application_name <> 'qpruner ") +
                                   QString::fromStdString(store::Store::workerId()) + QStringLiteral("'");
            QVERIFY(QTest::qWaitFor(
                [&] {
                    return pg_.sql(QStringLiteral("study"),
                                   QStringLiteral("SELECT count(DISTINCT application_name) FROM pg_stat_activity WHERE ") +
                                       others)
                               .toInt() >= 5;
                },
                120000));
            // The count is psql's last line (a backend that ends during the scan adds a WARNING line before it).
            const QString n = pg_.sql(QStringLiteral("study"),
                                      QStringLiteral("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                                     "WHERE ") +
                                          others)
                                  .split(QLatin1Char('\n'))
                                  .last();
            qInfo("terminated %s connections of the run and its workers", qPrintable(n));
            QVERIFY2(n.toInt() >= 5, qPrintable(n));
        });
    }


    // Worker processes share one evolution (evopress): a stage's trials spread over the processes, each stage
    // waits for the last of them, nothing is scored twice at a fidelity, and the study claims exactly the
    // (map, fidelity) pairs a single process claims (the evolution is replayed from the stored trials).
    void evopressAcrossWorkerProcesses()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        nlohmann::json config = studyConfig(30);
        config["search"]["strategy"] = "evopress";
        config["search"]["evopress"] = {{"offspring", 6}, {"fidelities", {0.25, 0.5, 1}}, {"survivors", {2, 1}}};
        const QString file = tmp_.filePath(QStringLiteral("evopress.json"));
        std::ofstream(file.toStdString()) << config.dump(2);
        auto keysOf = [](const std::string& db) {
            std::vector<std::pair<std::string, double>> keys;
            for (const auto& t : store::Store(db).trialSummaries(1)) {
                if (t.state != store::TrialState::Complete)
                    QTest::qFail(("trial " + std::to_string(t.number) + " not complete").c_str(), __FILE__, __LINE__);
                keys.push_back({t.encoding, t.fidelity});
            }
            return keys;
        };
        const std::string alone = tmp_.filePath(QStringLiteral("evopress/alone.db")).toStdString();
        auto single = startCli({"run", file, "--db", QString::fromStdString(alone), "--threads", "1"},
                               tmp_.filePath(QStringLiteral("evopress-alone.log")));
        QVERIFY(ended(*single, 300000));
        QVERIFY2(single->exitCode() == 0, qPrintable(readLog(tmp_.filePath(QStringLiteral("evopress-alone.log")))));

        const std::string db = tmp_.filePath(QStringLiteral("evopress/shared.db")).toStdString();
        auto run = startCli({"run", file, "--db", QString::fromStdString(db), "--threads", "1"},
                            tmp_.filePath(QStringLiteral("evopress-run.log")));
        QVERIFY2(waitForSearch(db, 1), qPrintable(readLog(tmp_.filePath(QStringLiteral("evopress-run.log")))));
        std::vector<std::unique_ptr<QProcess>> w;
        for (int i = 0; i < 2; ++i)
            w.push_back(startCli({"worker", "--db", QString::fromStdString(db), "--run", "1", "--threads", "1"},
                                 tmp_.filePath(QStringLiteral("evopress-worker%1.log").arg(i))));
        QVERIFY(ended(*run, 300000));
        QVERIFY2(run->exitCode() == 0, qPrintable(readLog(tmp_.filePath(QStringLiteral("evopress-run.log")))));
        for (int i = 0; i < 2; ++i) {
            QVERIFY(ended(*w[size_t(i)], 120000));
            QVERIFY2(w[size_t(i)]->exitCode() == 0,
                     qPrintable(readLog(tmp_.filePath(QStringLiteral("evopress-worker%1.log").arg(i)))));
        }
        const auto shared = keysOf(db), reference = keysOf(alone);
        QCOMPARE(shared.size(), size_t(30));
        using Keys = std::set<std::pair<std::string, double>>;
        const Keys sharedKeys(shared.begin(), shared.end()), referenceKeys(reference.begin(), reference.end());
        QCOMPARE(sharedKeys.size(), shared.size());
        QVERIFY(sharedKeys == referenceKeys);
        std::set<std::string> processes;
        for (const auto& t : store::Store(db).trialSummaries(1))
            processes.insert(t.worker);
        QVERIFY2(processes.size() >= 2, "the run and at least one worker evaluated trials");
        qInfo("evopress: 30 trials by %zu processes, the same (map, fidelity) pairs as one process", processes.size());
    }

    // The script on a real single-node Slurm (munged, slurmctld and slurmd started here): `sbatch --wait` runs
    // three array tasks of workers on a PostgreSQL study that `qpruner run` started, to completion.
    void slurmArrayOnARealCluster()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        testing::SlurmCluster slurm;
        QString why = slurm.start(2);
        if (why.isEmpty() && !pg_.running())
            why = pg_.start();
        if (!why.isEmpty()) {
            // Not root: slurmd cannot start jobs, whatever CI asks (PostgreSQL runs unprivileged, Slurm does not).
            if (testing::dataRequired() && ::geteuid() == 0)
                QFAIL(qPrintable(QStringLiteral("no Slurm cluster or PostgreSQL server: ") + why));
            QSKIP(qPrintable(QStringLiteral("no Slurm cluster or PostgreSQL server: ") + why));
        }
        QString error;
        QVERIFY2(pg_.createDatabase(QStringLiteral("slurm"), &error), qPrintable(error));
        const std::string db = pg_.url(QStringLiteral("slurm"));
        const QString dir = tmp_.filePath(QStringLiteral("cluster"));
        QDir().mkpath(dir);
        const QString config = dir + QStringLiteral("/study.json");
        std::ofstream(config.toStdString()) << studyConfig(18).dump(2);
        auto run = startCli({"run", config, "--db", QString::fromStdString(db), "--threads", "1"},
                            dir + QStringLiteral("/run.log"), dir);
        QVERIFY2(waitForSearch(db, 1), qPrintable(readLog(dir + QStringLiteral("/run.log"))));

        QProcess gen;
        gen.setProcessEnvironment(cliEnvironment());
        gen.start(QStringLiteral(QPRUNER_CLI_PATH), {"slurm-script", "--db", QString::fromStdString(db), "--run", "1",
                                                     "--array", "0-2", "--cpus-per-task", "1", "--time", "0:10:00"});
        QVERIFY(gen.waitForFinished(60000));
        QVERIFY2(gen.exitCode() == 0, gen.readAllStandardError().constData());
        const QString script = dir + QStringLiteral("/workers.sbatch");
        {
            QFile f(script);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(gen.readAllStandardOutput());
        }
        QProcess sbatch;
        QProcessEnvironment env = slurm.env();
        env.insert("QPRUNER_SHARED_DATA", QString::fromStdString(testing::sharedDataDir().string()));
        sbatch.setProcessEnvironment(env);
        sbatch.setWorkingDirectory(dir);
        sbatch.setProcessChannelMode(QProcess::MergedChannels);
        sbatch.start(QStringLiteral("sbatch"), {"--wait", script});
        QVERIFY(sbatch.waitForFinished(600000));
        const QString submitted = QString::fromLocal8Bit(sbatch.readAll());
        QVERIFY2(sbatch.exitCode() == 0, qPrintable(submitted));
        QVERIFY(ended(*run, 300000));
        QCOMPARE(run->exitCode(), 0);

        const store::Store st(db);
        QCOMPARE(st.run(1).status, store::RunStatus::Done);
        QCOMPARE(st.run(1).trialsComplete, int64_t(18));
        QVERIFY(st.workers(1).empty());
        const QStringList outputs = QDir(dir).entryList({QStringLiteral("qpruner-run-1-*.out")}, QDir::Files);
        QCOMPARE(outputs.size(), 3);
        std::set<std::string> workers;
        for (const auto& t : st.trialSummaries(1))
            workers.insert(t.worker);
        for (const QString& out : outputs) {
            const QString text = readLog(dir + QLatin1Char('/') + out);
            QVERIFY2(text.contains(QLatin1String("joining run 1")) && text.contains(QLatin1String("evaluated")),
                     qPrintable(text));
        }
        qInfo("Slurm: %s; 18 trials by %zu processes", qPrintable(submitted.trimmed()), workers.size());
    }

    // The script slurm-script prints: bash accepts it, its #SBATCH lines say what was asked, and its command, run
    // as three array tasks would run it, completes a study that `qpruner run` started.
    void slurmScript()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        const QString db = tmp_.filePath(QStringLiteral("slurm/study.db"));
        const QString config = tmp_.filePath(QStringLiteral("slurm.json"));
        std::ofstream(config.toStdString()) << studyConfig(12).dump(2);
        {
            // The store exists before the run starts, so the script can name it (and check its run) at once.
            store::Store create(db.toStdString());
        }
        auto run = startCli({"run", config, "--db", db, "--threads", "1"}, tmp_.filePath(QStringLiteral("srun.log")));
        QVERIFY(QTest::qWaitFor([&] { return QFileInfo::exists(db) && store::Store(db.toStdString()).runs().size() == 1; },
                                60000));

        QProcess gen;
        gen.setProcessEnvironment(cliEnvironment());
        gen.start(QStringLiteral(QPRUNER_CLI_PATH),
                  {"slurm-script", "--db", db, "--run", "1", "--array", "0-2", "--time", "0:30:00", "--gpus-per-task",
                   "1", "--cpus-per-task", "1", "--mem", "4G", "--partition", "gpu"});
        QVERIFY(gen.waitForFinished(60000));
        QVERIFY2(gen.exitCode() == 0, gen.readAllStandardError().constData());
        const QString script = QString::fromUtf8(gen.readAllStandardOutput());
        for (const char* line : {"#SBATCH --array=0-2\n", "#SBATCH --time=0:30:00\n", "#SBATCH --gpus-per-task=1\n",
                                 "#SBATCH --cpus-per-task=1\n", "#SBATCH --mem=4G\n", "#SBATCH --partition=gpu\n",
                                 "#SBATCH --signal=B:TERM@120\n"})
            QVERIFY2(script.contains(QLatin1String(line)), line);
        const QString file = tmp_.filePath(QStringLiteral("workers.sbatch"));
        {
            QFile f(file);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(script.toUtf8());
        }
        QProcess syntax;
        syntax.start(QStringLiteral("bash"), {"-n", file});
        QVERIFY(syntax.waitForFinished(10000));
        QVERIFY2(syntax.exitCode() == 0, syntax.readAllStandardError().constData());

        // Three array tasks, started while the run may still be before its search (the workers wait for it):
        // bash runs the script as sbatch would (SLURM_* set), the exec'd worker joins the run.
        std::vector<std::unique_ptr<QProcess>> tasks;
        for (int i = 0; i < 3; ++i) {
            auto p = std::make_unique<QProcess>();
            QProcessEnvironment env = cliEnvironment();
            env.insert("SLURM_ARRAY_TASK_ID", QString::number(i));
            env.insert("SLURM_CPUS_PER_TASK", "1");
            p->setProcessEnvironment(env);
            p->setProcessChannelMode(QProcess::MergedChannels);
            p->start(QStringLiteral("bash"), {file});
            tasks.push_back(std::move(p));
        }
        QVERIFY(ended(*run, 300000));
        QCOMPARE(run->exitCode(), 0);
        for (auto& p : tasks) {
            QVERIFY(ended(*p, 120000));
            QVERIFY2(p->exitCode() == 0, p->readAll().constData());
        }
        const store::Store st(db.toStdString());
        QCOMPARE(st.run(1).trialsComplete, int64_t(12));
        QVERIFY(st.workers(1).empty());

        // A worker started before its run reaches the search waits for it, and gives up after --wait seconds.
        {
            store::Store st(db.toStdString());
            store::RunRecord r;
            r.experimentId = st.experimentId("early");
            r.kind = "pipeline";
            r.config = {{"search", {{"trials", 4}}}};
            const int64_t early = st.createRun(r); // Running, no stage yet
            QProcess w;
            w.setProcessEnvironment(cliEnvironment());
            w.start(QStringLiteral(QPRUNER_CLI_PATH),
                    {"worker", "--db", db, "--run", QString::number(early), "--wait", "1"});
            QVERIFY(w.waitForFinished(60000));
            const QByteArray err = w.readAllStandardError();
            QCOMPARE(w.exitCode(), 1);
            QVERIFY2(err.contains("has not reached its search yet (no stage yet); waiting"), err.constData());
            QVERIFY2(err.contains("did not reach its search within 1 s (its last stage: none)"), err.constData());
        }

        // Bad requests are refused before a script is printed.
        QProcess bad;
        bad.setProcessEnvironment(cliEnvironment());
        bad.start(QStringLiteral(QPRUNER_CLI_PATH), {"slurm-script", "--db", db, "--run", "1", "--array", "0-x"});
        QVERIFY(bad.waitForFinished(60000));
        QCOMPARE(bad.exitCode(), 2);
        QVERIFY(bad.readAllStandardError().contains("--array: '0-x' is not a valid value"));
        bad.start(QStringLiteral(QPRUNER_CLI_PATH), {"slurm-script", "--db", db, "--run", "7"});
        QVERIFY(bad.waitForFinished(60000));
        QCOMPARE(bad.exitCode(), 1);
        QVERIFY(bad.readAllStandardError().contains("run 7 does not exist"));
    }
};

QTEST_GUILESS_MAIN(TestWorkers)
#include "test_workers.moc"
