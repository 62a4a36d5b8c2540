// PplSliceTable: integer cells (Qt's default delegate edits them with spin boxes), rebuilt on setSlices.
#include "newrun/ppl_slice_table.h"

#include <QHeaderView>

namespace qpruner::ui {

namespace {

const QStringList kBuiltIns = {QStringLiteral("tinystories"), QStringLiteral("wikitext2"), QStringLiteral("ptb")};

int intOr(const nlohmann::json& j, const char* key, int fallback)
{
    return j.is_object() && j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : fallback;
}

} // namespace

PplSliceTable::PplSliceTable(QWidget* parent) : QTableWidget(0, 4, parent)
{
    setHorizontalHeaderLabels({tr("Source"), tr("Windows"), tr("Seq len"), tr("Skip")});
    horizontalHeader()->setSectionResizeMode(SourceColumn, QHeaderView::Stretch);
    for (int c = WindowsColumn; c <= SkipColumn; ++c)
        horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    verticalHeader()->hide();
    setSelectionMode(QAbstractItemView::NoSelection);
    horizontalHeaderItem(SkipColumn)->setToolTip(tr("Windows skipped first, e.g. those the search validated on"));
    setSlices(nlohmann::json::array(
        {{{"source", "tinystories"}, {"windows", 40}, {"seq_len", 256}, {"skip", 16}}}));
    connect(this, &QTableWidget::itemChanged, this, &PplSliceTable::slicesChanged);
}

void PplSliceTable::appendRow(const QString& source, bool checked, int windows, int seqLen, int skip)
{
    const int row = rowCount();
    insertRow(row);
    auto* s = new QTableWidgetItem(source);
    s->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
    s->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
    s->setToolTip(source);
    setItem(row, SourceColumn, s);
    const int values[] = {windows, seqLen, skip};
    for (int c = WindowsColumn; c <= SkipColumn; ++c) {
        auto* v = new QTableWidgetItem;
        v->setData(Qt::EditRole, values[c - WindowsColumn]);
        v->setFlags(Qt::ItemIsEnabled | Qt::ItemIsEditable);
        setItem(row, c, v);
    }
}

nlohmann::json PplSliceTable::slices() const
{
    nlohmann::json out = nlohmann::json::array();
    for (int row = 0; row < rowCount(); ++row) {
        if (item(row, SourceColumn)->checkState() != Qt::Checked)
            continue;
        out.push_back({{"source", item(row, SourceColumn)->text().toStdString()},
                       {"windows", item(row, WindowsColumn)->data(Qt::EditRole).toInt()},
                       {"seq_len", item(row, SeqLenColumn)->data(Qt::EditRole).toInt()},
                       {"skip", item(row, SkipColumn)->data(Qt::EditRole).toInt()}});
    }
    return out;
}

void PplSliceTable::setSlices(const nlohmann::json& slices)
{
    const QSignalBlocker block(this);
    setRowCount(0);
    QStringList used;
    if (slices.is_array())
        for (const auto& s : slices) {
            const QString source = s.is_object() && s.contains("source") && s["source"].is_string()
                                       ? QString::fromStdString(s["source"].get<std::string>())
                                       : QStringLiteral("tinystories");
            appendRow(source, true, intOr(s, "windows", 40), intOr(s, "seq_len", 256), intOr(s, "skip", 0));
            used.append(source);
        }
    for (const QString& b : kBuiltIns)
        if (!used.contains(b))
            appendRow(b, false, 40, 256, 0);
    Q_EMIT slicesChanged();
}

QSize PplSliceTable::sizeHint() const
{
    int h = horizontalHeader()->sizeHint().height() + 2 * frameWidth();
    for (int row = 0; row < rowCount(); ++row)
        h += rowHeight(row);
    return {QTableWidget::sizeHint().width(), h + 2};
}

} // namespace qpruner::ui
