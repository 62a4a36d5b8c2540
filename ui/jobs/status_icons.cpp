// Status dots painted once per status (antialiased, at 16 and 32 px for high-DPI screens) and cached.
#include "jobs/status_icons.h"

#include <QHash>
#include <QPainter>
#include <QPixmap>

namespace qpruner::ui {

namespace {

QIcon paintDot(const QColor& fill)
{
    QIcon icon;
    for (int size : {16, 32}) {
        QPixmap pm(size, size);
        pm.fill(Qt::transparent);
        QPainter p(&pm);
        p.setRenderHint(QPainter::Antialiasing);
        const qreal margin = size * 0.18;
        p.setPen(QPen(fill.darker(140), size / 16.0));
        p.setBrush(fill);
        p.drawEllipse(QRectF(margin, margin, size - 2 * margin, size - 2 * margin));
        p.end();
        icon.addPixmap(pm);
    }
    return icon;
}

} // namespace

QColor runStatusColor(qpruner::store::RunStatus status)
{
    using qpruner::store::RunStatus;
    switch (status) {
    case RunStatus::Pending: return QColor(0x9e, 0x9e, 0x9e);
    case RunStatus::Running: return QColor(0x1e, 0x88, 0xe5);
    case RunStatus::Done: return QColor(0x43, 0xa0, 0x47);
    case RunStatus::Failed: return QColor(0xe5, 0x39, 0x35);
    case RunStatus::Cancelled: return QColor(0xfb, 0x8c, 0x00);
    }
    return Qt::gray;
}

QIcon runStatusIcon(qpruner::store::RunStatus status)
{
    static QHash<int, QIcon> cache;
    auto it = cache.find(int(status));
    if (it == cache.end())
        it = cache.insert(int(status), paintDot(runStatusColor(status)));
    return *it;
}

QIcon jobStateIcon(Job::State state)
{
    using qpruner::store::RunStatus;
    switch (state) {
    case Job::State::Queued: return runStatusIcon(RunStatus::Pending);
    case Job::State::Running: return runStatusIcon(RunStatus::Running);
    case Job::State::Done: return runStatusIcon(RunStatus::Done);
    case Job::State::Failed: return runStatusIcon(RunStatus::Failed);
    case Job::State::Cancelled: return runStatusIcon(RunStatus::Cancelled);
    }
    return {};
}

} // namespace qpruner::ui
