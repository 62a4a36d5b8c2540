// A memory axis: the data stay in exact bytes (so a point sits at TrialRecord::memoryBytes and tests compare
// bytes), while ticks are placed and labelled in one binary unit (B, KiB, MiB or GiB) chosen for the data.
#pragma once

#include <QString>

#include "plots/qcustomplot_compat.h"

namespace qpruner::ui {

class ByteAxisTicker : public QCPAxisTicker {
public:
    // Picks the largest unit in which `maxBytes` is at least 1.
    void setUnitFor(double maxBytes);
    double unitBytes() const { return unit_; }
    QString unitName() const; // "B", "KiB", "MiB", "GiB"
    // `bytes` in the unit with two decimals, e.g. "256.31 KiB", so captions match the axis.
    QString format(double bytes) const;

protected:
    double getTickStep(const QCPRange& range) override;
    QString getTickLabel(double tick, const QLocale& locale, QChar formatChar, int precision) override;

private:
    double unit_ = 1;
    int decimals_ = 0; // of the last tick step, in the unit
};

} // namespace qpruner::ui
