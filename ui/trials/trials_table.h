// The Search tab's table of every trial of a run: number, state, source, memory, objective and what the trial
// actions did to it (recovered, evaluated, exported, generated). Sorts by any column (numbers as numbers); a
// double click shows the trial's map in the editor, the context menu offers the trial actions.
#pragma once

#include <QAbstractTableModel>
#include <QWidget>

#include <functional>
#include <map>
#include <vector>

#include "workspace/run_snapshot.h"

class QLabel;
class QMenu;
class QSortFilterProxyModel;
class QTableView;

namespace qpruner::ui {

class TrialsTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        NumberColumn,
        StateColumn,
        SourceColumn,
        MemoryColumn,
        ObjectiveColumn,
        FidelityColumn, // fraction of the validation slice scored, and its tokens
        ActionsColumn,
        ColumnCount
    };
    static constexpr int SortRole = Qt::UserRole + 1;   // numbers for the numeric columns
    static constexpr int NumberRole = Qt::UserRole + 2; // the trial number of any cell

    using QAbstractTableModel::QAbstractTableModel;
    // Replaces the rows only when the trials or the trial stages changed (a live run re-reads often).
    void setRun(const RunSnapshot& snapshot);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;
    // "recovered, evaluated" etc. for trial `number` (empty when none).
    QString actionsText(int number) const;

private:
    std::vector<store::TrialRecord> trials_;
    std::map<int, QString> actions_;
    uint64_t signature_ = 0;
    qint64 runId_ = 0;
};

class TrialsTable : public QWidget {
    Q_OBJECT
public:
    explicit TrialsTable(QWidget* parent = nullptr);
    void setRun(const RunSnapshot& snapshot);
    void clear();
    // Highlights the row of trial `number` (-1: none) without emitting.
    void selectTrial(int number);
    int selectedTrial() const;

    using TrialMenuProvider = std::function<void(QMenu& menu, qint64 runId, int trial)>;
    void setTrialMenuProvider(TrialMenuProvider provider) { trialMenu_ = std::move(provider); }
    // The context menu of the row at viewport position `pos`; returns its trial (-1 when none).
    int populateContextMenu(QMenu& menu, const QPoint& pos);

    QTableView* view() const { return view_; }
    TrialsTableModel* model() const { return model_; }
    QSortFilterProxyModel* proxy() const { return proxy_; }

Q_SIGNALS:
    void trialSelected(qint64 runId, int number);  // a row became current
    void trialActivated(qint64 runId, int number); // double click: show its map

private:
    int trialAt(const QModelIndex& proxyIndex) const;

    QLabel* caption_ = nullptr;
    QTableView* view_ = nullptr;
    TrialsTableModel* model_ = nullptr;
    QSortFilterProxyModel* proxy_ = nullptr;
    TrialMenuProvider trialMenu_;
    qint64 runId_ = 0;
    bool selecting_ = false;
};

} // namespace qpruner::ui
