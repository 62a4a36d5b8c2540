// A short set of names with check boxes in a grid (importance metrics, candidate formats, evaluation tasks).
// checkedNames() keeps the order the names were checked in (setCheckedNames' order first), because the
// pipeline stores lists as written and a re-run should store the same document.
#pragma once

#include <QList>
#include <QStringList>
#include <QWidget>

class QCheckBox;
class QGridLayout;

namespace qpruner::ui {

class CheckableList : public QWidget {
    Q_OBJECT

public:
    explicit CheckableList(const QStringList& names, int columns = 4, QWidget* parent = nullptr);

    QStringList checkedNames() const { return order_; }
    // Checks exactly `names` (names not offered yet get a box of their own), in that order.
    void setCheckedNames(const QStringList& names);
    void setNameChecked(const QString& name, bool checked);
    QCheckBox* box(const QString& name) const;

Q_SIGNALS:
    void checkedChanged();

private:
    QCheckBox* addName(const QString& name);
    void onToggled(const QString& name, bool checked);

    int columns_;
    QGridLayout* grid_;
    QList<QCheckBox*> boxes_;
    QStringList order_;
    bool setting_ = false;
};

} // namespace qpruner::ui
