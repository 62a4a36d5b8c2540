// ModelLoader: QtConcurrent job around qpruner::inspectModel.
#include "model/model_loader.h"

#include <QtConcurrent/QtConcurrentRun>

#include <exception>
#include <filesystem>

#include "qpruner/error.h"

namespace qpruner::ui {

ModelLoader::ModelLoader(QObject* parent) : QObject(parent)
{
    connect(&watcher_, &QFutureWatcherBase::finished, this, &ModelLoader::onFinished);
}

// The worker owns copies of everything it touches, so it may outlive the loader; the pool joins it at exit.
ModelLoader::~ModelLoader() = default;

bool ModelLoader::isLoading() const
{
    return !pendingPath_.isEmpty();
}

QString ModelLoader::pendingPath() const
{
    return pendingPath_;
}

void ModelLoader::load(const QString& path)
{
    pendingPath_ = path;
    timer_.start();
    Q_EMIT started(path);
    // setFuture() stops watching the previous future, which is how a superseded load gets dropped.
    watcher_.setFuture(QtConcurrent::run(&ModelLoader::run, path));
}

ModelLoader::Outcome ModelLoader::run(const QString& path)
{
    Outcome out;
    try {
        out.summary = qpruner::inspectModel(std::filesystem::path(path.toStdU16String()));
    } catch (const qpruner::Error& e) {
        out.error = QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        // Not one of the core's own errors (bad_alloc, filesystem_error, ...): still name the file.
        out.error = QStringLiteral("%1: %2").arg(path, QString::fromStdString(e.what()));
    } catch (...) {
        out.error = QStringLiteral("%1: unknown error").arg(path);
    }
    return out;
}

void ModelLoader::onFinished()
{
    const QString path = pendingPath_;
    pendingPath_.clear();
    const Outcome out = watcher_.result();
    if (out.summary)
        Q_EMIT loaded(path, *out.summary, timer_.elapsed());
    else
        Q_EMIT failed(path, out.error);
}

} // namespace qpruner::ui
