// Opens models off the UI thread. Today it only reads the header (qpruner::inspectModel, fast); loading
// weights later goes through the same object, so the window already treats every open as asynchronous.
#pragma once

#include <QElapsedTimer>
#include <QFutureWatcher>
#include <QObject>
#include <QString>

#include <optional>

#include "qpruner/model_config.h"

namespace qpruner::ui {

class ModelLoader : public QObject {
    Q_OBJECT

public:
    explicit ModelLoader(QObject* parent = nullptr);
    ~ModelLoader() override;

    bool isLoading() const;
    // The path of the load in flight; empty when idle.
    QString pendingPath() const;

public Q_SLOTS:
    // Starts reading `path` (a llama2.c .bin or a model directory). A load still in flight is superseded:
    // its result is dropped, so only the latest request is ever reported.
    void load(const QString& path);

Q_SIGNALS:
    void started(const QString& path);
    void loaded(const QString& path, const qpruner::ModelSummary& summary, qint64 elapsedMs);
    void failed(const QString& path, const QString& message);

private:
    // Errors are caught on the worker thread and travel as text: QFuture only rethrows QException.
    struct Outcome {
        std::optional<qpruner::ModelSummary> summary;
        QString error;
    };
    static Outcome run(const QString& path);
    void onFinished();

    QFutureWatcher<Outcome> watcher_;
    QString pendingPath_;
    QElapsedTimer timer_;
};

} // namespace qpruner::ui
