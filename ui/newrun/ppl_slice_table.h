// The perplexity evaluations of a run: one row per text source (the built-in corpora, plus any file a config
// names) with a check box and its windows, window length and skipped windows, edited in place. slices() is the
// config's "evaluate.ppl" list: the checked rows, top to bottom.
#pragma once

#include <QTableWidget>

#include <nlohmann/json.hpp>

namespace qpruner::ui {

class PplSliceTable : public QTableWidget {
    Q_OBJECT

public:
    enum Column { SourceColumn, WindowsColumn, SeqLenColumn, SkipColumn };

    explicit PplSliceTable(QWidget* parent = nullptr);

    nlohmann::json slices() const;
    // Checks exactly the sources of `slices` (adding rows for files) with their numbers, in that order on top;
    // the other built-ins stay below, unchecked. Missing numbers take the pipeline defaults (40, 256, 0).
    void setSlices(const nlohmann::json& slices);

    QSize sizeHint() const override;

Q_SIGNALS:
    void slicesChanged();

private:
    void appendRow(const QString& source, bool checked, int windows, int seqLen, int skip);
};

} // namespace qpruner::ui
