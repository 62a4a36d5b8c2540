#include "model/run_shapes_panel.h"

#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "common/format_colors.h"
#include "common/number_format.h"
#include "plots/plot_export.h"
#include "plots/plot_style.h"
#include "qcustomplot.h"
#include "qpruner/error.h"

namespace qpruner::ui {

namespace {

QCPBars* makeBars(QCustomPlot* plot, QCPAxis* value, QCPBarsGroup* group, const QString& name, const QColor& color)
{
    auto* b = new QCPBars(plot->xAxis, value);
    b->setName(name);
    b->setWidth(0.2);
    b->setBarsGroup(group);
    b->setPen(Qt::NoPen);
    b->setBrush(color);
    b->addToLegend();
    return b;
}

// "24 (of 32)" where pruning changed it, else "32".
QString shapeText(int kept, int original)
{
    return kept == original ? QString::number(kept) : QStringLiteral("%1 (of %2)").arg(kept).arg(original);
}

QTableWidgetItem* cell(const QString& text, const QString& tip = {})
{
    auto* it = new QTableWidgetItem(text);
    it->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
    it->setTextAlignment(Qt::AlignCenter);
    if (!tip.isEmpty())
        it->setToolTip(tip);
    return it;
}

} // namespace

RunShapesPanel::RunShapesPanel(QWidget* parent) : QWidget(parent)
{
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    plot_ = new QCustomPlot(this);
    plot_->setObjectName(QStringLiteral("run-layer-shapes"));
    plot_->setMinimumHeight(170);
    applyPlotStyle(plot_);
    auto* group = new QCPBarsGroup(plot_);
    group->setSpacing(1);
    ffnOriginal_ = makeBars(plot_, plot_->yAxis, group, tr("FFN channels, original"), QColor(190, 200, 215));
    ffnKept_ = makeBars(plot_, plot_->yAxis, group, tr("FFN channels, this run"), runColor(0));
    headsOriginal_ = makeBars(plot_, plot_->yAxis2, group, tr("attention heads, original (right axis)"),
                              QColor(230, 205, 170));
    headsKept_ = makeBars(plot_, plot_->yAxis2, group, tr("attention heads, this run (right axis)"), runColor(1));
    plot_->xAxis->setLabel(tr("layer"));
    plot_->yAxis->setLabel(tr("FFN channels"));
    plot_->yAxis2->setVisible(true);
    plot_->yAxis2->setLabel(tr("attention heads"));
    placeLegendBelow(plot_, 2);
    auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
    ticker->setTickStep(1.0);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples); // whole layers, thinned out when many
    plot_->xAxis->setTicker(ticker);
    installPlotContextMenu(plot_);

    table_ = new QTableWidget(this);
    table_->setObjectName(QStringLiteral("run-layer-table"));
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setAlternatingRowColors(true);
    table_->verticalHeader()->setVisible(false);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(plot_);
    split->addWidget(table_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(caption_);
    layout->addWidget(split, 1);
    clear();
}

void RunShapesPanel::clear()
{
    caption_->setText(tr("No run shown: open one from the Runs dock to see its model layer by layer."));
    for (QCPBars* b : {ffnOriginal_, ffnKept_, headsOriginal_, headsKept_})
        b->data()->clear();
    plot_->replot();
    table_->clear();
    table_->setRowCount(0);
    table_->setColumnCount(0);
}

QString RunShapesPanel::caption() const
{
    return caption_->text();
}

void RunShapesPanel::setRun(const RunSnapshot& s)
{
    clear();
    if (!s.model && !s.baseModel) {
        caption_->setText(tr("Run %1: its model could not be read%2")
                              .arg(s.run.id)
                              .arg(s.modelError.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(s.modelError)));
        return;
    }
    const ModelConfig& now = s.model ? *s.model : *s.baseModel;
    const ModelConfig& original = s.baseModel ? *s.baseModel : now;
    const int n = now.numLayers();

    // The chosen map, resolved per linear ("-" where it does not fit the model).
    std::optional<ResolvedPrecision> resolved;
    if (s.chosenMap) {
        try {
            resolved = s.chosenMap->resolve(now);
        } catch (const Error&) {
        }
    }
    // The recovered adapter: the finetune stage done, with the config's rank and target modules; else the latest
    // recovery of a trial from the studio (trial-recover, whose config holds them).
    int loraRank = 0;
    QStringList targets;
    QString recoveredTrial;
    const nlohmann::json* fc = nullptr;
    if (const store::StageRecord* f = s.stage("finetune"); f && f->status == store::RunStatus::Done) {
        if (s.run.config.contains("finetune"))
            fc = &s.run.config["finetune"];
    } else {
        for (const auto& st : s.stages)
            if (st.name == "trial-recover" && st.status == store::RunStatus::Done && st.config.is_object()) {
                fc = &st.config;
                recoveredTrial = tr(" (trial %1)").arg(st.config.value("trial", -1));
            }
    }
    if (fc && fc->is_object()) {
        loraRank = fc->value("rank", 0);
        if (fc->contains("targets") && (*fc)["targets"].is_array())
            for (const auto& t : (*fc)["targets"])
                if (t.is_string())
                    targets << QString::fromStdString(t.get<std::string>());
    }

    QString text = tr("<b>Run %1</b>: %2 layers").arg(s.run.id).arg(n);
    if (s.model && s.baseModel && !(s.model->layers == s.baseModel->layers))
        text += tr(", pruned from the original's shapes (lighter bars)");
    else
        text += tr(", not pruned");
    text += resolved ? tr("; formats of the %1").arg(s.stage("search") ? tr("search's chosen map") : tr("initial map"))
                     : tr("; no precision map");
    text += loraRank > 0 ? tr("; recovered%3 with LoRA rank %1 on %2")
                               .arg(loraRank)
                               .arg(targets.join(QStringLiteral(", ")))
                               .arg(recoveredTrial)
                         : tr("; not recovered");
    caption_->setText(text);

    QStringList ranked; // the adapter's modules, in the table's order
    for (LinearModule m : kLinearModules)
        if (targets.contains(QString::fromLatin1(linearModuleName(m))))
            ranked << QString::fromLatin1(linearModuleName(m));

    QStringList headers = {tr("Layer"), tr("Heads"), tr("KV heads"), tr("FFN")};
    for (LinearModule m : kLinearModules)
        headers << QString::fromLatin1(linearModuleName(m));
    headers << tr("LoRA rank");
    table_->setColumnCount(int(headers.size()));
    table_->setHorizontalHeaderLabels(headers);
    table_->setRowCount(n);
    double maxFfn = 0, maxHeads = 0;
    for (int l = 0; l < n; ++l) {
        const LayerShape& k = now.layers[size_t(l)];
        const LayerShape& o = l < original.numLayers() ? original.layers[size_t(l)] : k;
        ffnOriginal_->addData(l, o.ffnDim);
        ffnKept_->addData(l, k.ffnDim);
        headsOriginal_->addData(l, o.numHeads);
        headsKept_->addData(l, k.numHeads);
        maxFfn = std::max<double>({maxFfn, double(o.ffnDim), double(k.ffnDim)});
        maxHeads = std::max<double>({maxHeads, double(o.numHeads), double(k.numHeads)});
        int c = 0;
        table_->setItem(l, c++, cell(QString::number(l)));
        table_->setItem(l, c++, cell(shapeText(k.numHeads, o.numHeads)));
        table_->setItem(l, c++, cell(shapeText(k.numKvHeads, o.numKvHeads)));
        table_->setItem(l, c++, cell(shapeText(k.ffnDim, o.ffnDim)));
        for (LinearModule m : kLinearModules) {
            if (resolved) {
                const QuantSpec& spec = resolved->layers[size_t(l)][size_t(m)];
                auto* it = cell(QString::fromStdString(spec.name()));
                it->setBackground(formatColor(spec));
                it->setForeground(formatTextColor(spec));
                table_->setItem(l, c++, it);
            } else {
                table_->setItem(l, c++, cell(QStringLiteral("-")));
            }
        }
        table_->setItem(l, c++, cell(loraRank > 0 && !ranked.isEmpty() ? QString::number(loraRank) : QStringLiteral("-"),
                                     loraRank > 0 ? tr("rank %1 on %2").arg(loraRank).arg(ranked.join(QStringLiteral(", ")))
                                                  : tr("not recovered")));
    }
    plot_->xAxis->setRange(-0.6, n - 0.4);
    plot_->yAxis->setRange(0, maxFfn * 1.1 + 1);
    plot_->yAxis2->setRange(0, maxHeads * 1.1 + 1);
    plot_->replot();
}

QString RunShapesPanel::cellText(int layer, const QString& header) const
{
    for (int c = 0; c < table_->columnCount(); ++c)
        if (table_->horizontalHeaderItem(c) && table_->horizontalHeaderItem(c)->text() == header) {
            const QTableWidgetItem* it = table_->item(layer, c);
            return it ? it->text() : QString();
        }
    return {};
}

} // namespace qpruner::ui
