// OverviewPanel: read-only views of a RunSnapshot.
#include "overview/overview_panel.h"

#include <QFont>
#include <QFontDatabase>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "common/number_format.h"
#include "qpruner/memory_model.h"

namespace qpruner::ui {

namespace {

using nlohmann::json;

QString str(const json& j, const char* key)
{
    return j.contains(key) && j[key].is_string() ? QString::fromStdString(j[key].get<std::string>()) : QString();
}

QString num(const json& j, const char* key, int precision = 4)
{
    if (!j.contains(key) || !j[key].is_number())
        return QStringLiteral("-");
    return QString::number(j[key].get<double>(), 'g', precision);
}

QString statusText(store::RunStatus s)
{
    return QString::fromLatin1(store::runStatusName(s));
}

QColor statusColor(store::RunStatus s)
{
    switch (s) {
    case store::RunStatus::Done: return QColor(0x2e, 0x8b, 0x57);
    case store::RunStatus::Running: return QColor(0x1e, 0x6f, 0xc8);
    case store::RunStatus::Failed: return QColor(0xc0, 0x30, 0x30);
    case store::RunStatus::Cancelled: return QColor(0xb0, 0x80, 0x20);
    case store::RunStatus::Pending: break;
    }
    return QColor(0x70, 0x70, 0x70);
}

QTableWidgetItem* item(const QString& text)
{
    auto* it = new QTableWidgetItem(text);
    it->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    return it;
}

QTableWidget* makeTable(const QStringList& headers, QWidget* parent)
{
    auto* t = new QTableWidget(0, int(headers.size()), parent);
    t->setHorizontalHeaderLabels(headers);
    t->verticalHeader()->setVisible(false);
    t->horizontalHeader()->setStretchLastSection(true);
    t->setSelectionBehavior(QAbstractItemView::SelectRows);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->setAlternatingRowColors(true);
    return t;
}

} // namespace

QString stageSummary(const store::StageRecord& stage)
{
    const json& r = stage.result;
    if (stage.status == store::RunStatus::Failed || stage.status == store::RunStatus::Cancelled)
        return QString::fromStdString(stage.error);
    if (stage.name == "prune" && r.contains("parameters_after"))
        return QStringLiteral("%1 -> %2 parameters")
            .arg(formatCount(r["parameters_before"].get<qint64>()), formatCount(r["parameters_after"].get<qint64>()));
    if (stage.name == "importance" && r.contains("metrics")) {
        if (r["metrics"].is_string())
            return QStringLiteral("metrics: %1").arg(str(r, "metrics"));
        QStringList names;
        for (const auto& m : r["metrics"])
            if (m.is_string())
                names << QString::fromStdString(m.get<std::string>());
        return QStringLiteral("metrics: %1").arg(names.join(QStringLiteral(", ")));
    }
    if (stage.name == "allocate" && r.contains("best"))
        return QStringLiteral("%1 under %2: %3 bpw over the linears, %4")
            .arg(str(r, "method"), str(r, "budget"), num(r["best"], "linear_bits_per_weight", 3),
                 formatBytes(r["best"].value("total_bytes", qint64(0))));
    if (stage.name == "search" && r.contains("trials_complete")) {
        QString s = QStringLiteral("%1 trials complete, %2 failed").arg(r["trials_complete"].get<int>()).arg(
            r.value("trials_failed", 0));
        if (r.value("exhausted", false))
            s += QStringLiteral(" (search space exhausted: every feasible map evaluated)");
        if (r.contains("chosen") && r["chosen"].is_object())
            s += QStringLiteral("; chosen trial %1: objective %2 at %3")
                     .arg(r["chosen"]["trial"].get<int>())
                     .arg(num(r["chosen"], "objective"))
                     .arg(formatBytes(r["chosen"]["memory_bytes"].get<qint64>()));
        return s;
    }
    if (stage.name == "finetune" && r.contains("train")) {
        const json& t = r["train"];
        QString text = QStringLiteral("%1 steps, best validation loss %2 at step %3")
                           .arg(t.value("steps", 0))
                           .arg(num(t, "best_validation_loss"))
                           .arg(t.value("best_step", 0));
        if (r.contains("init") && r["init"].is_object())
            text += QStringLiteral("; init %1").arg(str(r["init"], "init"));
        return text;
    }
    const QString trial = r.contains("trial") && r["trial"].is_number_integer()
                              ? QStringLiteral("trial %1: ").arg(r["trial"].get<int>())
                              : QString();
    if (stage.name == "trial-recover" && r.contains("train")) {
        const json& t = r["train"];
        return trial + QStringLiteral("%1 steps, best validation loss %2 at step %3; init %4")
                           .arg(t.value("steps", 0))
                           .arg(num(t, "best_validation_loss"))
                           .arg(t.value("best_step", 0))
                           .arg(r.contains("init") && r["init"].is_object() ? str(r["init"], "init") : QString());
    }
    if (stage.name == "trial-export" && r.contains("total_bytes"))
        return trial + QStringLiteral("%1, %2 to %3")
                           .arg(str(r, "target").toUpper(), formatBytes(r["total_bytes"].get<qint64>()), str(r, "out"));
    if (stage.name == "trial-generate" && r.contains("compressed") && r["compressed"].is_object()) {
        QString text = str(r["compressed"], "text").simplified();
        if (text.size() > 80)
            text = text.left(80) + QStringLiteral("\u2026");
        return trial + QStringLiteral("\u201c%1\u201d").arg(text);
    }
    if (stage.name == "evaluate" || stage.name == "trial-evaluate") {
        QStringList parts;
        for (const auto& p : r.value("ppl", json::array()))
            parts << QStringLiteral("ppl %1 on %2").arg(num(p, "ppl"), str(p, "source"));
        for (const auto& t : r.value("tasks", json::array()))
            parts << QStringLiteral("%1 acc %2").arg(str(t, "task"), num(t, "acc", 3));
        return (stage.name == "evaluate" ? QString() : trial) +
               (r.contains("adapter") && !r["adapter"].is_null() ? QStringLiteral("(recovered) ") : QString()) +
               parts.join(QStringLiteral(", "));
    }
    return {};
}

OverviewPanel::OverviewPanel(QWidget* parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("OverviewPanel"));
    header_ = new QLabel(this);
    header_->setTextFormat(Qt::RichText);
    header_->setWordWrap(true);
    header_->setTextInteractionFlags(Qt::TextBrowserInteraction);
    connect(header_, &QLabel::linkActivated, this, [this](const QString& link) {
        if (link.startsWith(QLatin1String("run:")))
            Q_EMIT parentRunActivated(link.mid(4).toLongLong());
    });
    metrics_ = new QLabel(this);
    metrics_->setTextFormat(Qt::RichText);
    metrics_->setWordWrap(true);
    metrics_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    stages_ = makeTable({tr("Stage"), tr("Status"), tr("Seconds"), tr("Started"), tr("Result")}, this);
    artifacts_ = makeTable({tr("Kind"), tr("Size"), tr("sha256"), tr("Path")}, this);
    results_ = makeTable({}, this);
    results_->setObjectName(QStringLiteral("evaluation-results"));
    results_->setToolTip(tr("Every evaluation of the run: the pipeline's chosen map and each evaluated trial"));
    config_ = new QPlainTextEdit(this);
    config_->setReadOnly(true);
    config_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));

    auto* lower = new QSplitter(Qt::Horizontal, this);
    auto* tables = new QSplitter(Qt::Vertical, lower);
    tables->addWidget(stages_);
    tables->addWidget(results_);
    tables->addWidget(artifacts_);
    lower->addWidget(tables);
    lower->addWidget(config_);
    lower->setStretchFactor(0, 3);
    lower->setStretchFactor(1, 2);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(header_);
    layout->addWidget(metrics_);
    layout->addWidget(lower, 1);
    clear();
}

void OverviewPanel::clear()
{
    header_->setText(tr("<i>No run selected.</i>"));
    metrics_->clear();
    stages_->setRowCount(0);
    artifacts_->setRowCount(0);
    results_->setRowCount(0);
    results_->setVisible(false);
    config_->clear();
}

void OverviewPanel::showResults(const RunSnapshot& s)
{
    // One row per finished evaluation; one column per perplexity source and per task, in the order first seen.
    std::vector<const store::StageRecord*> rows;
    QStringList ppl, tasks;
    for (const auto& st : s.stages) {
        if ((st.name != "evaluate" && st.name != "trial-evaluate") || st.status != store::RunStatus::Done ||
            !st.result.is_object())
            continue;
        rows.push_back(&st);
        for (const auto& p : st.result.value("ppl", json::array()))
            if (!ppl.contains(str(p, "source")))
                ppl << str(p, "source");
        for (const auto& t : st.result.value("tasks", json::array()))
            if (!tasks.contains(str(t, "task")))
                tasks << str(t, "task");
    }
    QStringList headers = {tr("Evaluated"), tr("Recovered"), tr("Memory")};
    for (const QString& p : ppl)
        headers << tr("ppl %1").arg(p);
    for (const QString& t : tasks)
        headers << tr("%1 acc").arg(t);
    if (!tasks.isEmpty())
        headers << tr("Average acc");
    results_->clear();
    results_->setColumnCount(int(headers.size()));
    results_->setHorizontalHeaderLabels(headers);
    results_->setRowCount(int(rows.size()));
    results_->setVisible(!rows.empty());
    for (int i = 0; i < int(rows.size()); ++i) {
        const json& r = rows[size_t(i)]->result;
        const bool trial = rows[size_t(i)]->name == "trial-evaluate";
        results_->setItem(i, 0, item(trial ? tr("trial %1").arg(r.value("trial", -1)) : tr("chosen map")));
        results_->setItem(i, 1, item(r.contains("adapter") && !r["adapter"].is_null() ? tr("yes") : tr("no")));
        const json mem = r.value("memory", json::object());
        results_->setItem(i, 2, item(mem.contains("total_bytes") ? formatBytes(mem["total_bytes"].get<qint64>())
                                                                 : QStringLiteral("-")));
        int c = 3;
        for (const QString& p : ppl) {
            QString v = QStringLiteral("-");
            for (const auto& x : r.value("ppl", json::array()))
                if (str(x, "source") == p)
                    v = num(x, "ppl", 5);
            results_->setItem(i, c++, item(v));
        }
        double sum = 0;
        int n = 0;
        for (const QString& t : tasks) {
            QString v = QStringLiteral("-");
            for (const auto& x : r.value("tasks", json::array()))
                if (str(x, "task") == t && x.contains("acc")) {
                    v = QString::number(x["acc"].get<double>(), 'f', 4);
                    sum += x["acc"].get<double>();
                    ++n;
                }
            results_->setItem(i, c++, item(v));
        }
        if (!tasks.isEmpty())
            results_->setItem(i, c, item(n ? QString::number(sum / n, 'f', 4) : QStringLiteral("-")));
    }
    results_->resizeColumnsToContents();
}

QString OverviewPanel::headerText() const
{
    return header_->text();
}

QString OverviewPanel::keyMetricsText() const
{
    return metrics_->text();
}

void OverviewPanel::setRun(const RunSnapshotPtr& snapshot)
{
    if (!snapshot) {
        clear();
        return;
    }
    const RunSnapshot& s = *snapshot;
    const store::RunRecord& r = s.run;
    QString h = QStringLiteral("<h2 style='margin:0'>Run %1 <span style='color:%2'>(%3)</span></h2>")
                    .arg(r.id)
                    .arg(statusColor(r.status).name(), statusText(r.status));
    if (!r.name.empty())
        h += QStringLiteral("<b>%1</b><br>").arg(QString::fromStdString(r.name).toHtmlEscaped());
    h += tr("Experiment <b>%1</b> &middot; kind %2 &middot; created %3")
             .arg(QString::fromStdString(r.experiment).toHtmlEscaped(), QString::fromStdString(r.kind),
                  QString::fromStdString(r.createdAt));
    if (!r.finishedAt.empty())
        h += tr(" &middot; finished %1").arg(QString::fromStdString(r.finishedAt));
    if (r.parentRunId)
        h += tr(" &middot; parent <a href='run:%1'>run %1</a>").arg(*r.parentRunId);
    h += QStringLiteral("<br>") + tr("Model: %1").arg(QString::fromStdString(r.baseModel).toHtmlEscaped());
    if (!r.error.empty() && r.status != store::RunStatus::Done)
        h += QStringLiteral("<br><span style='color:#c03030'>%1</span>")
                 .arg(QString::fromStdString(r.error).toHtmlEscaped());
    header_->setText(h);

    // Key figures.
    QStringList rows;
    auto row = [&](const QString& k, const QString& v) {
        rows << QStringLiteral("<tr><td style='padding-right:14px'><b>%1</b></td><td>%2</td></tr>").arg(k, v);
    };
    if (s.baseModel)
        row(tr("Parameters"), s.model && s.model->parameterCount() != s.baseModel->parameterCount()
                                  ? tr("%1 -> %2 after pruning (%3 layers)")
                                        .arg(formatParameterCount(s.baseModel->parameterCount()),
                                             formatParameterCount(s.model->parameterCount()))
                                        .arg(s.model->numLayers())
                                  : tr("%1 (%2 layers)")
                                        .arg(formatParameterCount(s.baseModel->parameterCount()))
                                        .arg(s.baseModel->numLayers()));
    else if (!s.modelError.isEmpty())
        row(tr("Model"), s.modelError.toHtmlEscaped());
    if (s.search)
        row(tr("Search"), tr("%1 of %2 trials complete (%3 running, %4 failed); objective %5; budget %6%7")
                              .arg(r.trialsComplete)
                              .arg(s.search->trials)
                              .arg(r.trialsRunning)
                              .arg(r.trialsFailed)
                              .arg(QString::fromStdString(s.search->objective), QString::fromStdString(s.search->budget),
                                   s.searchExhausted() ? tr("; search space exhausted: every feasible map was evaluated")
                                                       : QString()));
    if (s.chosenMap && s.model) {
        try {
            const MemoryReport m = memoryReport(*s.model, *s.chosenMap);
            const store::StageRecord* search = s.stage("search");
            const bool fromSearch = search && search->result.contains("chosen") && search->result["chosen"].is_object();
            row(fromSearch ? tr("Chosen map") : tr("Initial map"),
                tr("%1, %2 bits per linear weight%3")
                    .arg(formatBytesExact(m.totalBytes))
                    .arg(m.linearBitsPerWeight, 0, 'f', 3)
                    .arg(fromSearch ? tr("; trial %1, objective %2")
                                          .arg(search->result["chosen"]["trial"].get<int>())
                                          .arg(num(search->result["chosen"], "objective"))
                                    : QString()));
        } catch (const std::exception& e) {
            row(tr("Chosen map"), QString::fromUtf8(e.what()).toHtmlEscaped());
        }
    }
    if (const store::StageRecord* e = s.stage("evaluate"); e && e->status == store::RunStatus::Done)
        row(tr("Evaluation"), stageSummary(*e).toHtmlEscaped());
    metrics_->setText(rows.isEmpty() ? QString() : QStringLiteral("<table>") + rows.join(QString()) +
                                                          QStringLiteral("</table>"));

    stages_->setRowCount(int(s.stages.size()));
    for (int i = 0; i < int(s.stages.size()); ++i) {
        const store::StageRecord& st = s.stages[size_t(i)];
        stages_->setItem(i, 0, item(QString::fromStdString(st.name)));
        QTableWidgetItem* status = item(statusText(st.status));
        status->setForeground(statusColor(st.status));
        stages_->setItem(i, 1, status);
        stages_->setItem(i, 2, item(QString::number(st.seconds, 'f', 1)));
        stages_->setItem(i, 3, item(QString::fromStdString(st.startedAt)));
        QTableWidgetItem* summary = item(stageSummary(st));
        summary->setToolTip(QString::fromStdString(st.result.dump(2)));
        stages_->setItem(i, 4, summary);
    }
    stages_->resizeColumnsToContents();

    showResults(s);

    artifacts_->setRowCount(int(s.artifacts.size()));
    for (int i = 0; i < int(s.artifacts.size()); ++i) {
        const store::ArtifactRecord& a = s.artifacts[size_t(i)];
        artifacts_->setItem(i, 0, item(QString::fromStdString(a.kind)));
        artifacts_->setItem(i, 1, item(formatBytes(a.bytes)));
        QTableWidgetItem* sha = item(QString::fromStdString(a.sha256.substr(0, 12)));
        sha->setToolTip(QString::fromStdString(a.sha256));
        artifacts_->setItem(i, 2, sha);
        artifacts_->setItem(i, 3, item(QString::fromStdString(a.path)));
    }
    artifacts_->resizeColumnsToContents();
    config_->setPlainText(QString::fromStdString(r.config.dump(2)));
}

} // namespace qpruner::ui
