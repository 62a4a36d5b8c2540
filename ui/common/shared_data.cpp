// Shared data discovery for the "Demo models" menu.
#include "common/shared_data.h"

#include <QDir>
#include <QFileInfo>

#ifndef QPRUNER_DEFAULT_SHARED_DATA
#define QPRUNER_DEFAULT_SHARED_DATA ""
#endif

namespace qpruner::ui {

QString sharedDataDir()
{
    QString dir = qEnvironmentVariable("QPRUNER_SHARED_DATA");
    if (dir.isEmpty())
        dir = QString::fromUtf8(QPRUNER_DEFAULT_SHARED_DATA);
    if (dir.isEmpty() || !QFileInfo(dir).isDir())
        return {};
    return QDir::cleanPath(QFileInfo(dir).absoluteFilePath());
}

QList<DemoModel> demoModels()
{
    struct Entry {
        const char* name;
        const char* relativePath;
    };
    static constexpr Entry kEntries[] = {
        {"stories260K (llama2.c, TinyStories)", "models/stories260K/stories260K.bin"},
        {"llama2xs-64d (llama2.c, TinyStories)", "models/llama2xs-64d/model.bin"},
    };
    QList<DemoModel> out;
    const QString root = sharedDataDir();
    if (root.isEmpty())
        return out;
    for (const Entry& e : kEntries) {
        const QString path = QDir(root).filePath(QString::fromUtf8(e.relativePath));
        if (QFileInfo(path).isFile())
            out.append({QString::fromUtf8(e.name), path});
    }
    return out;
}

} // namespace qpruner::ui
