// The paint formats of the map editor: one checkable swatch per candidate format, in the candidates' order
// (digit N on the grid picks the Nth). The checked one is what a click or drag paints.
#pragma once

#include <QWidget>

#include <vector>

#include "qpruner/quant_format.h"

class QButtonGroup;
class QHBoxLayout;
class QToolButton;

namespace qpruner::ui {

class FormatPalette : public QWidget {
    Q_OBJECT

public:
    explicit FormatPalette(QWidget* parent = nullptr);

    // Keeps the current format when it is still a candidate, else checks the first. Duplicates are dropped.
    void setCandidates(const std::vector<QuantSpec>& candidates);
    const std::vector<QuantSpec>& candidates() const { return candidates_; }

    QuantSpec current() const;
    // Ignored when `spec` is not a candidate.
    void setCurrent(const QuantSpec& spec);
    QToolButton* button(int index) const;

Q_SIGNALS:
    void currentChanged(const qpruner::QuantSpec& spec);

private:
    std::vector<QuantSpec> candidates_;
    std::vector<QToolButton*> buttons_;
    QButtonGroup* group_ = nullptr;
    QHBoxLayout* layout_ = nullptr;
    int current_ = -1;
};

} // namespace qpruner::ui
