// The coloured status dots shared by the jobs panel and the run browser, so that "running" or "failed" looks
// the same in both: grey pending/queued, blue running, green done, red failed, amber cancelled.
#pragma once

#include <QColor>
#include <QIcon>

#include "jobs/job.h"
#include "qpruner/store.h"

namespace qpruner::ui {

QColor runStatusColor(qpruner::store::RunStatus status);
QIcon runStatusIcon(qpruner::store::RunStatus status);
QIcon jobStateIcon(Job::State state);

} // namespace qpruner::ui
