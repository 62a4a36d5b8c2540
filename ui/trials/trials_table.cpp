#include "trials/trials_table.h"

#include <QLocale>
#include <cmath>

#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

#include "common/number_format.h"
#include "qpruner/trial_actions.h"

namespace qpruner::ui {

namespace {

uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 1099511628211ull;
}

QString actionWord(const std::string& stage)
{
    if (stage == qpruner::pipeline::kTrialRecoverStage)
        return QObject::tr("recovered");
    if (stage == qpruner::pipeline::kTrialEvaluateStage)
        return QObject::tr("evaluated");
    if (stage == qpruner::pipeline::kTrialExportStage)
        return QObject::tr("exported");
    return QObject::tr("generated");
}

} // namespace

void TrialsTableModel::setRun(const RunSnapshot& s)
{
    uint64_t h = 1469598103934665603ull;
    h = mix(h, uint64_t(s.run.id));
    for (const auto& t : s.trials) {
        h = mix(h, uint64_t(t.number));
        h = mix(h, uint64_t(t.state));
        h = mix(h, t.objective ? uint64_t(*t.objective * 1e9) : 7);
    }
    std::map<int, QString> actions;
    for (const auto& st : s.stages) {
        const int n = qpruner::pipeline::stageTrial(st);
        if (n < 0 || st.status != store::RunStatus::Done)
            continue;
        const QString word = actionWord(st.name);
        QString& text = actions[n];
        if (!text.split(QStringLiteral(", ")).contains(word))
            text += (text.isEmpty() ? QString() : QStringLiteral(", ")) + word;
        h = mix(h, uint64_t(st.id));
    }
    if (h == signature_ && runId_ == s.run.id)
        return;
    beginResetModel();
    signature_ = h;
    runId_ = s.run.id;
    trials_ = s.trials;
    actions_ = std::move(actions);
    endResetModel();
}

int TrialsTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(trials_.size());
}

int TrialsTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QString TrialsTableModel::actionsText(int number) const
{
    const auto it = actions_.find(number);
    return it == actions_.end() ? QString() : it->second;
}

QVariant TrialsTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= int(trials_.size()))
        return {};
    const store::TrialRecord& t = trials_[size_t(index.row())];
    if (role == NumberRole)
        return t.number;
    const bool sort = role == SortRole;
    if (role != Qt::DisplayRole && !sort && role != Qt::TextAlignmentRole)
        return {};
    if (role == Qt::TextAlignmentRole)
        return index.column() == NumberColumn || index.column() == MemoryColumn || index.column() == ObjectiveColumn ||
                       index.column() == FidelityColumn
                   ? QVariant(Qt::AlignRight | Qt::AlignVCenter)
                   : QVariant();
    switch (index.column()) {
    case NumberColumn: return t.number;
    case StateColumn: return QString::fromLatin1(store::trialStateName(t.state));
    case SourceColumn: return QString::fromStdString(t.source);
    case MemoryColumn: return sort ? QVariant(qlonglong(t.memoryBytes)) : QVariant(formatBytes(t.memoryBytes));
    case ObjectiveColumn:
        if (!t.objective)
            return sort ? QVariant(std::numeric_limits<double>::infinity()) : QVariant(QStringLiteral("-"));
        return sort ? QVariant(*t.objective) : QVariant(QString::number(*t.objective, 'g', 6));
    case FidelityColumn: {
        if (sort)
            return t.fidelity;
        // "1", "1/4", ... with the tokens scored when recorded: "1/4 · 2,032 tok".
        const double inv = 1.0 / t.fidelity;
        QString f = t.fidelity >= 1                                ? QStringLiteral("1")
                    : std::abs(inv - std::round(inv)) < 1e-9 ? QStringLiteral("1/%1").arg(qlonglong(std::llround(inv)))
                                                                : QString::number(t.fidelity, 'g', 3);
        if (t.tokens > 0)
            f += QStringLiteral(" \u00b7 %1 tok").arg(QLocale().toString(qlonglong(t.tokens)));
        return f;
    }
    case ActionsColumn: return actionsText(t.number);
    default: return {};
    }
}

QVariant TrialsTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case NumberColumn: return tr("Trial");
    case StateColumn: return tr("State");
    case SourceColumn: return tr("Source");
    case MemoryColumn: return tr("Memory");
    case ObjectiveColumn: return tr("Objective");
    case FidelityColumn: return tr("Fidelity");
    case ActionsColumn: return tr("Actions");
    default: return {};
    }
}

TrialsTable::TrialsTable(QWidget* parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("trials-table"));
    caption_ = new QLabel(tr("Trials: right-click one to recover, evaluate, export or generate with it"));
    model_ = new TrialsTableModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(model_);
    proxy_->setSortRole(TrialsTableModel::SortRole);
    view_ = new QTableView(this);
    view_->setModel(proxy_);
    view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    view_->verticalHeader()->setVisible(false);
    view_->verticalHeader()->setDefaultSectionSize(view_->fontMetrics().height() + 6);
    view_->horizontalHeader()->setStretchLastSection(true);
    view_->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder); // no sort until a header is clicked
    view_->setSortingEnabled(true);
    view_->setContextMenuPolicy(Qt::CustomContextMenu);
    view_->setAlternatingRowColors(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(caption_);
    layout->addWidget(view_, 1);

    connect(view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current) {
                const int n = trialAt(current);
                if (!selecting_ && n >= 0)
                    Q_EMIT trialSelected(runId_, n);
            });
    connect(view_, &QTableView::doubleClicked, this, [this](const QModelIndex& index) {
        const int n = trialAt(index);
        if (n >= 0)
            Q_EMIT trialActivated(runId_, n);
    });
    connect(view_, &QWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        QMenu menu(this);
        if (populateContextMenu(menu, pos) >= 0)
            menu.exec(view_->viewport()->mapToGlobal(pos));
    });
}

int TrialsTable::trialAt(const QModelIndex& proxyIndex) const
{
    return proxyIndex.isValid() ? proxy_->data(proxyIndex, TrialsTableModel::NumberRole).toInt() : -1;
}

void TrialsTable::setRun(const RunSnapshot& snapshot)
{
    const int selected = selectedTrial();
    runId_ = snapshot.run.id;
    model_->setRun(snapshot);
    if (selected >= 0)
        selectTrial(selected);
}

void TrialsTable::clear()
{
    model_->setRun(RunSnapshot{});
    runId_ = 0;
}

void TrialsTable::selectTrial(int number)
{
    selecting_ = true;
    if (number < 0) {
        view_->clearSelection();
    } else {
        const QModelIndexList hits =
            proxy_->match(proxy_->index(0, TrialsTableModel::NumberColumn), TrialsTableModel::NumberRole, number, 1,
                          Qt::MatchExactly);
        if (!hits.isEmpty()) {
            view_->setCurrentIndex(hits.front());
            view_->scrollTo(hits.front());
        }
    }
    selecting_ = false;
}

int TrialsTable::selectedTrial() const
{
    return trialAt(view_->currentIndex());
}

int TrialsTable::populateContextMenu(QMenu& menu, const QPoint& pos)
{
    const QModelIndex index = view_->indexAt(pos);
    const int n = trialAt(index);
    if (n < 0 || !trialMenu_)
        return -1;
    view_->setCurrentIndex(index);
    menu.addSection(tr("Trial %1").arg(n));
    trialMenu_(menu, runId_, n);
    return n;
}

} // namespace qpruner::ui
