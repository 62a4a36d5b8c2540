// Run metrics table: reads the evaluate stage's result ({"ppl": [...], "tasks": [...], "memory": {...}}).
#include "plots/run_metrics_table.h"

#include <algorithm>

#include <QHeaderView>

#include "common/number_format.h"
#include "plots/byte_axis_ticker.h"
#include "plots/plot_style.h"
#include "plots/trial_points.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

const nlohmann::json* latestEvaluation(const RunSnapshot& s, QString* label)
{
    const store::StageRecord* last = nullptr;
    for (const auto& st : s.stages)
        if ((st.name == "evaluate" || st.name == "trial-evaluate") && st.status == store::RunStatus::Done &&
            st.result.is_object())
            last = &st;
    if (!last)
        return nullptr;
    if (label) {
        const nlohmann::json& r = last->result;
        *label = last->name == "evaluate" ? QObject::tr("chosen map")
                                          : QObject::tr("trial %1").arg(r.value("trial", -1));
        if (r.contains("adapter") && !r["adapter"].is_null())
            *label += QObject::tr(", recovered");
    }
    return &last->result;
}

namespace {

const nlohmann::json* evaluateResult(const RunSnapshot& s)
{
    return latestEvaluation(s);
}

// Appends `name` to `names` unless present (keeps first-seen order).
void addName(QStringList& names, const QString& name)
{
    if (!name.isEmpty() && !names.contains(name))
        names << name;
}

// Set on numeric cells whose text says more than their number (the budget: "6 bpw (213 KiB in all)").
constexpr int kCsvAsText = Qt::UserRole + 1;

// Sorts by its number (Qt::UserRole) where both items have one, else by text.
class SortItem : public QTableWidgetItem {
public:
    using QTableWidgetItem::QTableWidgetItem;
    bool operator<(const QTableWidgetItem& other) const override
    {
        const QVariant a = data(Qt::UserRole), b = other.data(Qt::UserRole);
        if (a.isValid() && b.isValid())
            return a.toDouble() < b.toDouble();
        if (a.isValid() != b.isValid())
            return a.isValid(); // numbers before "-"
        return QTableWidgetItem::operator<(other);
    }
};

QTableWidgetItem* textItem(const QString& text, const QString& tip = {})
{
    auto* item = new SortItem(text);
    item->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
    item->setToolTip(tip.isEmpty() ? text : tip);
    return item;
}

QTableWidgetItem* numberItem(double value, const QString& text, const QString& tip = {})
{
    QTableWidgetItem* item = textItem(text, tip);
    item->setData(Qt::UserRole, value);
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

} // namespace

RunMetricsTable::RunMetricsTable(QWidget* parent) : QTableWidget(parent)
{
    setObjectName(QStringLiteral("compare-metrics"));
    setEditTriggers(QAbstractItemView::NoEditTriggers);
    setSelectionBehavior(QAbstractItemView::SelectRows);
    setAlternatingRowColors(true);
    verticalHeader()->setVisible(false);
    horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    horizontalHeader()->setStretchLastSection(true);
    horizontalHeader()->setSortIndicator(0, Qt::AscendingOrder); // the runs' own order until a header is clicked
}

void RunMetricsTable::setRuns(const std::vector<RunSnapshot>& runs, const std::vector<TrialPoints>& points)
{
    QStringList sources, tasks;
    for (const RunSnapshot& s : runs)
        if (const nlohmann::json* r = evaluateResult(s)) {
            if (r->contains("ppl") && (*r)["ppl"].is_array())
                for (const auto& p : (*r)["ppl"])
                    if (p.is_object() && p.contains("source") && p["source"].is_string())
                        addName(sources, QString::fromStdString(p["source"].get<std::string>()));
            if (r->contains("tasks") && (*r)["tasks"].is_array())
                for (const auto& t : (*r)["tasks"])
                    if (t.is_object() && t.contains("task") && t["task"].is_string())
                        addName(tasks, QString::fromStdString(t["task"].get<std::string>()));
        }

    QStringList headers = {tr("Run"),           tr("Kind"),   tr("Status"),           tr("Trials complete"),
                           tr("Best within budget"), tr("Memory of best"), tr("Budget"), tr("Evaluated memory"),
                           tr("Recovered")};
    const int fixed = int(headers.size());
    for (const QString& s : sources)
        headers << tr("ppl %1").arg(s);
    for (const QString& t : tasks)
        headers << tr("acc %1").arg(t);

    // Every size of the table in one unit (the largest that suits them), so runs compare at a glance.
    double maxBytes = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
        maxBytes = std::max(maxBytes, points[i].budgetMemory.value_or(0));
        for (double m : points[i].memory)
            maxBytes = std::max(maxBytes, m);
    }
    ByteAxisTicker units;
    units.setUnitFor(maxBytes);

    setSortingEnabled(false); // filled in input order, then sorted as the header says
    clear();
    setColumnCount(int(headers.size()));
    setHorizontalHeaderLabels(headers);
    setRowCount(int(runs.size()));
    for (int row = 0; row < int(runs.size()); ++row) {
        const RunSnapshot& s = runs[size_t(row)];
        const TrialPoints& p = points[size_t(row)];
        QTableWidgetItem* label = textItem(runLabel(s.run.id, s.run.name, 40),
                                           QStringLiteral("run %1: %2").arg(s.run.id).arg(QString::fromStdString(s.run.name)));
        label->setData(Qt::UserRole, row); // sorts by the order the runs were given
        setItem(row, 0, label);
        setItem(row, 1, textItem(QString::fromStdString(s.run.kind)));
        setItem(row, 2, textItem(QString::fromLatin1(store::runStatusName(s.run.status))));
        setItem(row, 3, numberItem(p.complete, formatCount(p.complete),
                                   tr("%1 complete, %2 running, %3 failed").arg(p.complete).arg(p.running).arg(p.failed)));
        if (p.bestInBudget >= 0) {
            const size_t b = size_t(p.bestInBudget);
            const double shown = p.shown[qsizetype(b)];
            setItem(row, 4, numberItem(shown, QStringLiteral("%1 %2").arg(objectiveShortName(p.objective))
                                                                   .arg(QString::number(shown, 'g', 6)),
                                       tr("trial %1%2").arg(p.number[b]).arg(p.budgetMemory ? tr(", within the budget") : QString())));
            const double memory = p.memory[qsizetype(b)];
            setItem(row, 5, numberItem(memory, units.format(memory), formatBytesExact(qint64(memory))));
        } else {
            setItem(row, 4, textItem(p.size() > 0 ? tr("none within budget") : QStringLiteral("-")));
            setItem(row, 5, textItem(QStringLiteral("-")));
        }
        // The budget limits the quantized linears; shown as the total memory it allows, like "Memory of best".
        if (s.search && s.search->budgetBytes > 0 && p.budgetMemory)
            setItem(row, 6, numberItem(*p.budgetMemory,
                                       tr("%1 (%2 in all)").arg(QString::fromStdString(s.search->budget),
                                                                units.format(*p.budgetMemory)),
                                       tr("%1 counted by the budget, %2 in all")
                                           .arg(formatBytesExact(s.search->budgetBytes),
                                                formatBytesExact(qint64(*p.budgetMemory)))));
        else if (s.search && s.search->budgetBytes > 0)
            setItem(row, 6, numberItem(double(s.search->budgetBytes),
                                       tr("%1 (%2 counted)").arg(QString::fromStdString(s.search->budget),
                                                                 units.format(double(s.search->budgetBytes))),
                                       formatBytesExact(s.search->budgetBytes)));
        else
            setItem(row, 6, textItem(s.search ? QString::fromStdString(s.search->budget) : QStringLiteral("-")));
        item(row, 6)->setData(kCsvAsText, true);

        for (int c = 7; c < int(headers.size()); ++c)
            setItem(row, c, textItem(QStringLiteral("-")));
        // Recovered: the run's finetune stage (LoRA / LoftQ on the chosen map), its steps and best validation loss.
        // A trial recovered from the studio (trial-recover) counts too, the later of the two deciding.
        const store::StageRecord* f = nullptr;
        for (const auto& st : s.stages)
            if (st.name == "finetune" || st.name == "trial-recover")
                f = &st;
        if (f) {
            const nlohmann::json& fr = f->result;
            if (f->status == store::RunStatus::Done && fr.is_object() && fr.contains("train") && fr["train"].is_object()) {
                const nlohmann::json& t = fr["train"];
                QString text = f->name == "finetune" ? tr("yes, %1 steps").arg(t.value("steps", 0))
                                                     : tr("yes (trial %1), %2 steps")
                                                           .arg(fr.value("trial", -1))
                                                           .arg(t.value("steps", 0));
                if (t.contains("best_validation_loss") && t["best_validation_loss"].is_number())
                    text += tr(", val loss %1").arg(t["best_validation_loss"].get<double>(), 0, 'f', 4);
                setItem(row, 8, textItem(text));
            } else {
                setItem(row, 8, textItem(tr("no (%1)").arg(QString::fromLatin1(store::runStatusName(f->status)))));
            }
        } else {
            setItem(row, 8, textItem(tr("no")));
        }
        const nlohmann::json* r = evaluateResult(s);
        if (!r)
            continue;
        if (r->contains("memory") && (*r)["memory"].is_object() && (*r)["memory"].contains("total_bytes") &&
            (*r)["memory"]["total_bytes"].is_number()) {
            const auto bytes = (*r)["memory"]["total_bytes"].get<int64_t>();
            setItem(row, 7, numberItem(double(bytes), units.format(double(bytes)), formatBytesExact(bytes)));
        }
        if (r->contains("ppl") && (*r)["ppl"].is_array())
            for (const auto& e : (*r)["ppl"])
                if (e.is_object() && e.contains("source") && e["source"].is_string() && e.contains("ppl") &&
                    e["ppl"].is_number()) {
                    const int c = fixed + int(sources.indexOf(QString::fromStdString(e["source"].get<std::string>())));
                    const double v = e["ppl"].get<double>();
                    setItem(row, c, numberItem(v, QString::number(v, 'f', 4), QString::number(v, 'g', 10)));
                }
        if (r->contains("tasks") && (*r)["tasks"].is_array())
            for (const auto& e : (*r)["tasks"])
                if (e.is_object() && e.contains("task") && e["task"].is_string() && e.contains("acc") &&
                    e["acc"].is_number()) {
                    const int c = fixed + int(sources.size()) +
                                  int(tasks.indexOf(QString::fromStdString(e["task"].get<std::string>())));
                    const double v = e["acc"].get<double>();
                    QString tip = QString::number(v, 'g', 10);
                    if (e.contains("items") && e["items"].is_number())
                        tip += tr(" over %1 items").arg(e["items"].get<int64_t>());
                    setItem(row, c, numberItem(v, QString::number(v, 'f', 3), tip));
                }
    }
    setSortingEnabled(true);
}

QString RunMetricsTable::toCsv() const
{
    auto field = [](QString v) {
        if (v.contains(QLatin1Char(',')) || v.contains(QLatin1Char('"')) || v.contains(QLatin1Char('\n')))
            v = QLatin1Char('"') + v.replace(QLatin1Char('"'), QStringLiteral("\"\"")) + QLatin1Char('"');
        return v;
    };
    QStringList lines, cells;
    for (int c = 0; c < columnCount(); ++c)
        cells << field(horizontalHeaderItem(c) ? horizontalHeaderItem(c)->text() : QString());
    lines << cells.join(QLatin1Char(','));
    const int run = 0;
    for (int r = 0; r < rowCount(); ++r) {
        cells.clear();
        for (int c = 0; c < columnCount(); ++c) {
            const QTableWidgetItem* it = item(r, c);
            if (!it) {
                cells << QString();
                continue;
            }
            const QVariant v = it->data(Qt::UserRole);
            if (c == run)
                cells << field(it->toolTip()); // "run N: the whole name"
            else if (v.isValid() && !it->data(kCsvAsText).toBool())
                cells << field(QString::number(v.toDouble(), 'g', QLocale::FloatingPointShortest)); // round-trips
            else
                cells << field(it->text());
        }
        lines << cells.join(QLatin1Char(','));
    }
    return lines.join(QLatin1Char('\n')) + QLatin1Char('\n');
}

int RunMetricsTable::columnOf(const QString& header) const
{
    for (int c = 0; c < columnCount(); ++c)
        if (horizontalHeaderItem(c) && horizontalHeaderItem(c)->text() == header)
            return c;
    return -1;
}

QString RunMetricsTable::cellText(int row, const QString& header) const
{
    const int c = columnOf(header);
    const QTableWidgetItem* it = c >= 0 ? item(row, c) : nullptr;
    return it ? it->text() : QString();
}

} // namespace qpruner::ui
