// The Search tab: every complete trial of a run as objective against memory, the Pareto front as a step line,
// the importance-aware start, the uniform baselines and manual trials marked, the budget line, and the
// hypervolume after each completed trial. Follows a running search: updateRun() may be called as often as the
// workspace is re-read; the plots are rebuilt only when the trials changed, at most once per 40 ms.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include <QList>
#include <QPoint>
#include <QTimer>
#include <QWidget>

#include "plots/trial_points.h"

class QLabel;
class QMenu;
class QCustomPlot;
class QCPGraph;
class QCPItemStraightLine;
class QCPItemText;
class QCPAbstractItem;

namespace qpruner::ui {

struct RunSnapshot;
class ByteAxisTicker;

class SearchPanel : public QWidget {
    Q_OBJECT
public:
    explicit SearchPanel(QWidget* parent = nullptr);
    ~SearchPanel() override;

    // Shows `snapshot`'s trials now (a new run: the view and the selection are reset).
    void setRun(const RunSnapshot& snapshot);
    // The same run re-read while it runs: coalesced, and nothing is redrawn when its trials did not change. A
    // snapshot of another run is taken as setRun().
    void updateRun(const RunSnapshot& snapshot);
    void clear();

    // Highlights trial `number` (e.g. the map open in the editor); -1 clears the highlight.
    void selectTrial(int number);
    int selectedTrial() const { return selected_; }

    QList<QCustomPlot*> plots() const;
    QCustomPlot* scatterPlot() const { return scatter_; }
    QCustomPlot* hypervolumePlot() const { return hvPlot_; }
    QCPGraph* trialsGraph() const { return trials_; }
    QCPGraph* frontGraph() const { return front_; }
    QCPGraph* importanceGraph() const { return importance_; }
    QCPGraph* uniformGraph() const { return uniform_; }
    QCPGraph* manualGraph() const { return manual_; }
    QCPGraph* bestGraph() const { return best_; } // the best complete trial within the budget
    QCPGraph* hypervolumeGraph() const { return hv_; }
    // x of the budget line (bytes of total memory), when one is drawn.
    std::optional<double> budgetLineX() const;
    int plottedTrialCount() const;
    const TrialPoints& points() const { return points_; }
    QString caption() const;
    // Widget position of trial `number`'s point on the scatter (after a replot laid it out); (-1, -1) if absent.
    QPoint trialPosition(int number) const;

    // What the scatter's context menu offers for the trial under the cursor (the studio's trial actions); the
    // menu is built by populateContextMenu, which the right click calls.
    using TrialMenuProvider = std::function<void(QMenu& menu, qint64 runId, int trial)>;
    void setTrialMenuProvider(TrialMenuProvider provider) { trialMenu_ = std::move(provider); }
    // The scatter's context menu at widget position `pos` (a point within a few pixels: its trial's actions
    // first, and it is selected), then "Reset zoom". The trial under `pos`, or -1.
    int populateContextMenu(QMenu& menu, const QPoint& pos);

Q_SIGNALS:
    // A point of the scatter was clicked: show that trial's map.
    void trialActivated(qint64 runId, int number);

private:
    void buildScatter();
    void buildHypervolumePlot();
    void apply(const TrialInput& input);
    void applyPending();
    void updateCaption();
    void rescale();
    void placeMarkerLabels();
    void showSelection();
    int nearestPoint(const QPoint& pos, double maxPixels) const;
    QString scatterToolTip(const QPoint& pos) const;
    QString hypervolumeToolTip(const QPoint& pos) const;

    QLabel* caption_ = nullptr;
    QCustomPlot* scatter_ = nullptr;
    QCustomPlot* hvPlot_ = nullptr;
    QCPGraph* trials_ = nullptr;
    QCPGraph* front_ = nullptr;
    QCPGraph* importance_ = nullptr;
    QCPGraph* uniform_ = nullptr;
    QCPGraph* manual_ = nullptr;
    QCPGraph* best_ = nullptr;
    QCPGraph* selection_ = nullptr;
    QCPGraph* hv_ = nullptr;
    QCPItemStraightLine* budgetLine_ = nullptr;
    QCPItemText* budgetLabel_ = nullptr;
    QList<QCPAbstractItem*> markerItems_; // tracers at marked trials and their labels
    QSharedPointer<ByteAxisTicker> memoryTicker_;

    QTimer coalesce_;
    std::optional<TrialInput> pending_;
    uint64_t appliedSignature_ = 0;
    bool applied_ = false;
    TrialPoints points_;
    std::vector<bool> onFront_;
    qint64 runId_ = 0;
    std::string runName_;
    store::RunStatus status_ = store::RunStatus::Pending;
    std::string budgetText_;
    int trialsAsked_ = 0;
    bool exhausted_ = false;
    int selected_ = -1;
    bool userView_ = false;   // the user zoomed or panned: updates keep the view
    bool settingView_ = false;
    QPoint pressPos_;
    TrialMenuProvider trialMenu_;
};

} // namespace qpruner::ui
