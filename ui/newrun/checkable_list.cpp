// CheckableList: one QCheckBox per name in a grid; the checked order is tracked as boxes toggle.
#include "newrun/checkable_list.h"

#include <QCheckBox>
#include <QGridLayout>

namespace qpruner::ui {

CheckableList::CheckableList(const QStringList& names, int columns, QWidget* parent)
    : QWidget(parent), columns_(std::max(1, columns)), grid_(new QGridLayout(this))
{
    grid_->setContentsMargins(0, 0, 0, 0);
    grid_->setHorizontalSpacing(16);
    for (const QString& n : names)
        addName(n);
}

QCheckBox* CheckableList::addName(const QString& name)
{
    auto* b = new QCheckBox(name);
    const int i = int(boxes_.size());
    grid_->addWidget(b, i / columns_, i % columns_);
    boxes_.append(b);
    connect(b, &QCheckBox::toggled, this, [this, name](bool on) { onToggled(name, on); });
    return b;
}

QCheckBox* CheckableList::box(const QString& name) const
{
    for (QCheckBox* b : boxes_)
        if (b->text() == name)
            return b;
    return nullptr;
}

void CheckableList::onToggled(const QString& name, bool checked)
{
    if (setting_)
        return;
    order_.removeAll(name);
    if (checked)
        order_.append(name);
    Q_EMIT checkedChanged();
}

void CheckableList::setCheckedNames(const QStringList& names)
{
    setting_ = true;
    for (QCheckBox* b : boxes_)
        b->setChecked(false);
    order_.clear();
    for (const QString& n : names) {
        QCheckBox* b = box(n) ? box(n) : addName(n);
        b->setChecked(true);
        if (!order_.contains(n))
            order_.append(n);
    }
    setting_ = false;
    Q_EMIT checkedChanged();
}

void CheckableList::setNameChecked(const QString& name, bool checked)
{
    QCheckBox* b = box(name) ? box(name) : addName(name);
    b->setChecked(checked); // toggled -> onToggled -> checkedChanged
}

} // namespace qpruner::ui
