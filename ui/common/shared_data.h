// Where the project's shared models live (never copied into the repository), and the demo models found
// there, so a fresh checkout can open a real model in two clicks.
#pragma once

#include <QList>
#include <QString>

namespace qpruner::ui {

struct DemoModel {
    QString name; // menu label
    QString path; // absolute path, known to exist
};

// $QPRUNER_SHARED_DATA when set, otherwise the build's QPRUNER_SHARED_DATA cache path. Empty when neither
// names an existing directory.
QString sharedDataDir();

// The demo checkpoints present under sharedDataDir(); entries whose file is missing are left out.
QList<DemoModel> demoModels();

} // namespace qpruner::ui
