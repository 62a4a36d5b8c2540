// Paints the jobs panel's progress cells as native progress bars (QStyle::CE_ProgressBar) with the
// "stage done/total" text on them; a job without a total gets an empty bar and just the text.
#pragma once

#include <QStyledItemDelegate>

namespace qpruner::ui {

class JobProgressDelegate : public QStyledItemDelegate {
    Q_OBJECT

public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;
};

} // namespace qpruner::ui
