// Swatch buttons use the shared format colours, so the palette doubles as the grid's legend.
#include "mapeditor/format_palette.h"

#include <QButtonGroup>
#include <QHBoxLayout>
#include <QPainter>
#include <QPixmap>
#include <QToolButton>

#include <algorithm>

#include "common/format_colors.h"

namespace qpruner::ui {

namespace {

QIcon swatch(const QuantSpec& spec)
{
    QPixmap pm(14, 14);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.fillRect(QRect(0, 0, 14, 14), formatColor(spec));
    p.setPen(QColor(0, 0, 0, 90));
    p.drawRect(QRect(0, 0, 13, 13));
    return QIcon(pm);
}

} // namespace

FormatPalette::FormatPalette(QWidget* parent) : QWidget(parent)
{
    layout_ = new QHBoxLayout(this);
    layout_->setContentsMargins(0, 0, 0, 0);
    layout_->setSpacing(2);
    group_ = new QButtonGroup(this);
    group_->setExclusive(true);
    connect(group_, &QButtonGroup::idClicked, this, [this](int id) {
        if (id == current_)
            return;
        current_ = id;
        Q_EMIT currentChanged(candidates_[static_cast<size_t>(id)]);
    });
}

void FormatPalette::setCandidates(const std::vector<QuantSpec>& candidates)
{
    const bool hadCurrent = current_ >= 0;
    const QuantSpec previous = hadCurrent ? current() : QuantSpec{};
    for (QToolButton* b : buttons_) {
        group_->removeButton(b);
        delete b;
    }
    buttons_.clear();
    candidates_.clear();
    for (const QuantSpec& spec : candidates)
        if (std::find(candidates_.begin(), candidates_.end(), spec) == candidates_.end())
            candidates_.push_back(spec);

    for (size_t i = 0; i < candidates_.size(); ++i) {
        const QuantSpec& spec = candidates_[i];
        auto* b = new QToolButton(this);
        const QString name = QString::fromStdString(spec.name());
        b->setText(name);
        b->setIcon(swatch(spec));
        b->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
        b->setCheckable(true);
        b->setAutoRaise(true);
        b->setFocusPolicy(Qt::NoFocus);
        b->setToolTip(i < 9 ? tr("Paint %1 (key %2 sets the selection to %1)").arg(name).arg(i + 1)
                            : tr("Paint %1").arg(name));
        group_->addButton(b, int(i));
        layout_->addWidget(b);
        buttons_.push_back(b);
    }

    current_ = -1;
    if (!candidates_.empty()) {
        const auto it = std::find(candidates_.begin(), candidates_.end(), previous);
        current_ = hadCurrent && it != candidates_.end() ? int(it - candidates_.begin()) : 0;
        buttons_[static_cast<size_t>(current_)]->setChecked(true);
    }
    if (current_ >= 0 && (!hadCurrent || current() != previous))
        Q_EMIT currentChanged(current());
}

QuantSpec FormatPalette::current() const
{
    return current_ >= 0 ? candidates_[static_cast<size_t>(current_)] : QuantSpec{};
}

void FormatPalette::setCurrent(const QuantSpec& spec)
{
    const auto it = std::find(candidates_.begin(), candidates_.end(), spec);
    if (it == candidates_.end())
        return;
    const int index = int(it - candidates_.begin());
    buttons_[static_cast<size_t>(index)]->setChecked(true);
    if (index != current_) {
        current_ = index;
        Q_EMIT currentChanged(spec);
    }
}

QToolButton* FormatPalette::button(int index) const
{
    return index >= 0 && index < int(buttons_.size()) ? buttons_[static_cast<size_t>(index)] : nullptr;
}

} // namespace qpruner::ui
