#include "trials/trial_dialogs.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QDoubleValidator>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include "plots/qcustomplot_compat.h"

#include "common/number_format.h"
#include "jobs/job_queue.h"
#include "jobs/job_table_model.h"
#include "jobs/pipeline_jobs.h"
#include "newrun/checkable_list.h"
#include "newrun/ppl_slice_table.h"
#include "plots/plot_export.h"
#include "plots/plot_style.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

namespace {

using nlohmann::json;

const QStringList kTasks = {"boolq",    "piqa",          "hellaswag",  "winogrande",
                            "arc_easy", "arc_challenge", "openbookqa", "social_i_qa"};

QSpinBox* spin(int min, int max, int value, const QString& tip = {})
{
    auto* s = new QSpinBox;
    s->setRange(min, max);
    s->setValue(value);
    s->setToolTip(tip);
    return s;
}

int intOf(const json& j, const char* key, int def)
{
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : def;
}

double numberOf(const json& j, const char* key, double def)
{
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : def;
}

QString textOf(const json& j, const char* key, const QString& def = {})
{
    return j.contains(key) && j[key].is_string() ? QString::fromStdString(j[key].get<std::string>()) : def;
}

QComboBox* editableCombo(const QStringList& items, const QString& current)
{
    auto* c = new QComboBox;
    c->setEditable(true);
    c->addItems(items);
    if (c->findText(current) < 0)
        c->addItem(current);
    c->setCurrentText(current);
    return c;
}

QDialogButtonBox* okCancel(QDialog* dialog, const QString& okText)
{
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    buttons->button(QDialogButtonBox::Ok)->setText(okText);
    QObject::connect(buttons, &QDialogButtonBox::accepted, dialog, &QDialog::accept);
    QObject::connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::reject);
    return buttons;
}

QString shapeText(const std::vector<int64_t>& shape)
{
    QStringList parts;
    for (const int64_t d : shape)
        parts << QString::number(d);
    return parts.join(QStringLiteral(" \u00d7 "));
}

} // namespace

// --- RecoverDialog ----------------------------------------------------------------------------------------------

RecoverDialog::RecoverDialog(int trial, const json& defaults, bool resumable, bool recovered, QWidget* parent)
    : QDialog(parent), defaults_(defaults)
{
    setObjectName(QStringLiteral("recover-dialog"));
    setWindowTitle(tr("Recover Trial %1").arg(trial));
    init_ = new QComboBox;
    init_->addItems({QStringLiteral("loftq"), QStringLiteral("lora")});
    init_->setCurrentText(textOf(defaults, "init", QStringLiteral("loftq")));
    init_->setToolTip(tr("loftq initialises the adapters from the quantization error; lora starts them at zero"));
    loftqIter_ = spin(1, 100, intOf(defaults, "loftq_iter", 1), tr("Alternating LoftQ iterations"));
    rank_ = spin(1, 4096, intOf(defaults, "rank", 8));
    alpha_ = new QDoubleSpinBox;
    alpha_->setRange(0.01, 1e6);
    alpha_->setValue(numberOf(defaults, "alpha", 16));
    steps_ = spin(0, 10'000'000, intOf(defaults, "steps", 0), tr("Optimizer steps (0: the epochs)"));
    lr_ = new QLineEdit(QString::number(numberOf(defaults, "lr", 1e-4), 'g', 6));
    lr_->setValidator(new QDoubleValidator(0, 10, 12, lr_));
    batch_ = spin(1, 1'000'000, intOf(defaults, "batch_size", 64), tr("Examples per optimizer step"));
    micro_ = spin(1, 1'000'000, intOf(defaults, "micro_batch", 4), tr("Examples per forward pass"));
    seqLen_ = spin(2, 1'000'000, intOf(defaults, "seq_len", 256));
    data_ = editableCombo({QStringLiteral("alpaca"), QStringLiteral("tinystories"), QStringLiteral("wikitext2"),
                           QStringLiteral("ptb")},
                          textOf(defaults, "data", QStringLiteral("tinystories")));
    data_->setToolTip(tr("A built-in source or a file (text, or Alpaca-style instruction JSON)"));
    maxExamples_ = spin(-1, 100'000'000, intOf(defaults, "max_examples", -1), tr("-1: every example"));
    maxVal_ = spin(-1, 100'000'000, intOf(defaults, "max_val", -1), tr("Validation examples per evaluation (-1: all)"));
    evalEvery_ = spin(0, 10'000'000, intOf(defaults, "eval_every", 100), tr("Steps between validations (0: at the end)"));
    resume_ = new QCheckBox(tr("Continue the interrupted recovery of this trial from its checkpoint"));
    resume_->setEnabled(resumable);
    resume_->setToolTip(resumable ? tr("With the settings it was started with")
                                  : tr("No cancelled or failed recovery of this trial left a checkpoint"));

    auto* form = new QFormLayout;
    form->addRow(tr("Initialisation:"), init_);
    form->addRow(tr("LoftQ iterations:"), loftqIter_);
    form->addRow(tr("LoRA rank:"), rank_);
    form->addRow(tr("LoRA alpha:"), alpha_);
    form->addRow(tr("Data:"), data_);
    form->addRow(tr("Sequence length:"), seqLen_);
    form->addRow(tr("Training examples:"), maxExamples_);
    form->addRow(tr("Steps:"), steps_);
    form->addRow(tr("Learning rate:"), lr_);
    form->addRow(tr("Batch / micro-batch:"), [&] {
        auto* w = new QWidget;
        auto* h = new QHBoxLayout(w);
        h->setContentsMargins(0, 0, 0, 0);
        h->addWidget(batch_);
        h->addWidget(micro_);
        return w;
    }());
    form->addRow(tr("Validate every:"), evalEvery_);
    form->addRow(tr("Validation examples:"), maxVal_);
    auto* layout = new QVBoxLayout(this);
    auto* note = new QLabel(recovered ? tr("Trial %1 was recovered before: a new recovery replaces its adapter.")
                                            .arg(trial)
                                      : tr("Settings from the run's recovery config (else the defaults)."));
    note->setWordWrap(true);
    layout->addWidget(note);
    layout->addLayout(form);
    layout->addWidget(resume_);
    layout->addWidget(okCancel(this, tr("Recover")));
    // A resume repeats the interrupted recovery's settings (the defaults here): they are shown, not edited.
    connect(resume_, &QCheckBox::toggled, this, [this](bool on) {
        for (QWidget* w : std::initializer_list<QWidget*>{init_, loftqIter_, rank_, alpha_, steps_, lr_, batch_, micro_,
                                                          seqLen_, data_, maxExamples_, maxVal_, evalEvery_})
            w->setEnabled(!on);
    });
    resume_->setChecked(resumable); // an interrupted recovery is what one most likely wants to continue
}

json RecoverDialog::finetune() const
{
    if (resume())
        return defaults_; // exactly the interrupted recovery's settings
    json f = defaults_;
    f["init"] = init_->currentText().toStdString();
    f["loftq_iter"] = loftqIter_->value();
    f["rank"] = rank_->value();
    f["alpha"] = alpha_->value();
    f["steps"] = steps_->value();
    f["lr"] = lr_->text().toDouble();
    f["batch_size"] = batch_->value();
    f["micro_batch"] = micro_->value();
    f["seq_len"] = seqLen_->value();
    f["data"] = data_->currentText().trimmed().toStdString();
    f["max_examples"] = maxExamples_->value();
    f["max_val"] = maxVal_->value();
    f["eval_every"] = evalEvery_->value();
    return f;
}

bool RecoverDialog::resume() const
{
    return resume_->isEnabled() && resume_->isChecked();
}

// --- EvaluateDialog ---------------------------------------------------------------------------------------------

EvaluateDialog::EvaluateDialog(int trial, const json& defaults, bool recovered, QWidget* parent)
    : QDialog(parent), defaults_(defaults)
{
    setObjectName(QStringLiteral("evaluate-dialog"));
    setWindowTitle(tr("Evaluate Trial %1").arg(trial));
    ppl_ = new PplSliceTable;
    ppl_->setSlices(defaults.contains("ppl") ? defaults["ppl"] : json::array());
    tasks_ = new CheckableList(kTasks);
    QStringList checked;
    if (defaults.contains("tasks"))
        for (const auto& t : defaults["tasks"])
            checked << QString::fromStdString(t.get<std::string>());
    tasks_->setCheckedNames(checked);
    limit_ = spin(1, 100'000'000, intOf(defaults, "task_limit", 100), tr("Items per task (the first ones)"));
    batch_ = spin(1, 4096, intOf(defaults, "batch_size", 8), tr("Sequences per forward pass"));
    adapter_ = new QCheckBox(tr("With the recovered adapter"));
    adapter_->setEnabled(recovered);
    adapter_->setChecked(recovered);
    adapter_->setToolTip(recovered ? tr("Unchecked: the quantized map alone")
                                   : tr("The trial has not been recovered"));
    auto* form = new QFormLayout;
    form->addRow(tr("Perplexity:"), ppl_);
    form->addRow(tr("Zero-shot tasks:"), tasks_);
    form->addRow(tr("Items per task:"), limit_);
    form->addRow(tr("Batch size:"), batch_);
    form->addRow(QString(), adapter_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(okCancel(this, tr("Evaluate")));
}

json EvaluateDialog::evaluate() const
{
    json e = defaults_;
    e["ppl"] = ppl_->slices();
    json tasks = json::array();
    for (const QString& t : tasks_->checkedNames())
        tasks.push_back(t.toStdString());
    e["tasks"] = tasks;
    e["task_limit"] = limit_->value();
    e["batch_size"] = batch_->value();
    e["adapter"] = adapter_->isChecked();
    return e;
}

// --- ExportDialog -----------------------------------------------------------------------------------------------

ExportDialog::ExportDialog(const QString& dbPath, qint64 runId, int trial, bool recovered, const QString& defaultOut,
                           QWidget* parent)
    : QDialog(parent), db_(dbPath), runId_(runId), trial_(trial)
{
    setObjectName(QStringLiteral("export-dialog"));
    setWindowTitle(tr("Export Trial %1").arg(trial));
    target_ = new QComboBox;
    target_->addItem(tr("GGUF (llama.cpp)"), QStringLiteral("gguf"));
    target_->addItem(tr("Hugging Face directory"), QStringLiteral("hf"));
    out_ = new QLineEdit(defaultOut);
    auto* browse = new QToolButton;
    browse->setText(tr("Browse\u2026"));
    nf4_ = new QComboBox;
    nf4_->addItems({QStringLiteral("iq4_nl"), QStringLiteral("q4_0")});
    nf4_->setToolTip(tr("The GGUF type nf4 weights are written in"));
    dtype_ = new QComboBox;
    dtype_->addItem(tr("the map's embedding format"), QString());
    for (const char* d : {"bf16", "fp16", "fp32"})
        dtype_->addItem(QString::fromLatin1(d), QString::fromLatin1(d));
    pad_ = new QCheckBox(tr("Zero-pad pruned layers to one shape (an equivalent model)"));
    merge_ = new QCheckBox(tr("Merge the recovered adapter"));
    merge_->setEnabled(recovered);
    merge_->setChecked(recovered);
    merge_->setToolTip(recovered ? tr("Each adapted weight becomes deq(base) + scale \u00b7 B A")
                                 : tr("The trial has not been recovered"));
    strict_ = new QCheckBox(tr("Refuse type fallbacks and other warnings"));
    name_ = new QLineEdit;
    name_->setPlaceholderText(tr("run name and trial"));

    auto* outRow = new QWidget;
    auto* outLayout = new QHBoxLayout(outRow);
    outLayout->setContentsMargins(0, 0, 0, 0);
    outLayout->addWidget(out_, 1);
    outLayout->addWidget(browse);
    auto* form = new QFormLayout;
    form->addRow(tr("Format:"), target_);
    form->addRow(tr("Output:"), outRow);
    form->addRow(tr("nf4 as:"), nf4_);
    form->addRow(tr("HF dtype:"), dtype_);
    form->addRow(tr("GGUF name:"), name_);
    form->addRow(QString(), merge_);
    form->addRow(QString(), pad_);
    form->addRow(QString(), strict_);

    tensors_ = new QTableWidget(0, 6);
    tensors_->setObjectName(QStringLiteral("export-tensors"));
    tensors_->setHorizontalHeaderLabels({tr("Tensor"), tr("Shape"), tr("Map"), tr("Type"), tr("Bytes"), tr("Note")});
    tensors_->horizontalHeader()->setStretchLastSection(true);
    tensors_->verticalHeader()->setVisible(false);
    tensors_->verticalHeader()->setDefaultSectionSize(tensors_->fontMetrics().height() + 6);
    tensors_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    tensors_->setSelectionBehavior(QAbstractItemView::SelectRows);
    tensors_->setMinimumHeight(160);
    summary_ = new QLabel;
    summary_->setObjectName(QStringLiteral("export-summary"));
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Cancel);
    export_ = buttons->addButton(tr("Export"), QDialogButtonBox::AcceptRole);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(new QLabel(tr("What will be written (dry run):")));
    layout->addWidget(tensors_, 1);
    layout->addWidget(summary_);
    layout->addWidget(buttons);
    resize(760, 560);

    connect(browse, &QToolButton::clicked, this, [this] {
        const bool gguf = target_->currentData().toString() == QLatin1String("gguf");
        const QString path = gguf ? QFileDialog::getSaveFileName(this, tr("Export GGUF"), out_->text(),
                                                                 tr("GGUF model (*.gguf)"))
                                  : QFileDialog::getExistingDirectory(this, tr("Export Hugging Face directory"),
                                                                      QFileInfo(out_->text()).absolutePath());
        if (!path.isEmpty())
            out_->setText(path);
    });
    connect(target_, &QComboBox::currentIndexChanged, this, [this] {
        // The default output follows the format: model.gguf <-> model-hf/.
        const QString out = out_->text();
        const bool gguf = target_->currentData().toString() == QLatin1String("gguf");
        if (gguf && out.endsWith(QLatin1String("-hf")))
            out_->setText(out.left(out.size() - 3) + QStringLiteral(".gguf"));
        else if (!gguf && out.endsWith(QLatin1String(".gguf")))
            out_->setText(out.left(out.size() - 5) + QStringLiteral("-hf"));
        preview();
    });
    for (QComboBox* c : {nf4_, dtype_})
        connect(c, &QComboBox::currentIndexChanged, this, &ExportDialog::preview);
    for (QCheckBox* c : {pad_, merge_, strict_})
        connect(c, &QCheckBox::toggled, this, &ExportDialog::preview);
    connect(name_, &QLineEdit::editingFinished, this, &ExportDialog::preview);
    connect(out_, &QLineEdit::textChanged, this, &ExportDialog::updateEnabled);
    preview();
}

qpruner::ExportOptions ExportDialog::options() const
{
    qpruner::ExportOptions o;
    o.target = qpruner::parseExportTarget(target_->currentData().toString().toStdString());
    o.out = std::filesystem::path(out_->text().trimmed().toStdU16String());
    o.nf4Type = nf4_->currentText().toStdString();
    o.dtype = dtype_->currentData().toString().toStdString();
    o.padUniform = pad_->isChecked();
    o.strict = strict_->isChecked();
    o.name = name_->text().trimmed().toStdString();
    return o;
}

bool ExportDialog::mergeAdapter() const
{
    return merge_->isEnabled() && merge_->isChecked();
}

void ExportDialog::preview()
{
    const bool gguf = target_->currentData().toString() == QLatin1String("gguf");
    nf4_->setEnabled(gguf);
    name_->setEnabled(gguf);
    dtype_->setEnabled(!gguf);
    pad_->setEnabled(!gguf);
    plan_.reset();
    error_.clear();
    try {
        const auto store = openWorkspaceReadOnly(db_);
        plan_ = qpruner::pipeline::planTrialExport(*store, runId_, trial_, options(), mergeAdapter());
    } catch (const std::exception& e) {
        error_ = QString::fromUtf8(e.what());
    }
    tensors_->setRowCount(0);
    if (plan_) {
        tensors_->setRowCount(int(plan_->tensors.size()));
        for (int r = 0; r < int(plan_->tensors.size()); ++r) {
            const qpruner::ExportTensor& t = plan_->tensors[size_t(r)];
            const QStringList cells = {QString::fromStdString(t.name), shapeText(t.shape),
                                       QString::fromStdString(t.source), QString::fromStdString(t.type),
                                       formatCount(t.bytes), QString::fromStdString(t.note)};
            for (int c = 0; c < cells.size(); ++c) {
                auto* item = new QTableWidgetItem(cells[c]);
                if (c == 4)
                    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
                if (!t.note.empty())
                    item->setForeground(QColor(0xb0, 0x50, 0x00));
                tensors_->setItem(r, c, item);
            }
        }
        tensors_->resizeColumnsToContents();
        QString text = tr("%1 tensors, %2 (%3 bytes), %4 parameters, %5 bits per weight; architecture %6")
                           .arg(plan_->tensors.size())
                           .arg(formatBytes(plan_->totalBytes), formatCount(plan_->totalBytes),
                                formatCount(plan_->parameterCount))
                           .arg(plan_->bitsPerWeight, 0, 'f', 3)
                           .arg(QString::fromStdString(plan_->architecture));
        for (const std::string& w : plan_->warnings)
            text += QStringLiteral("<br><span style='color:#b05000'>%1</span>")
                        .arg(QString::fromStdString(w).toHtmlEscaped());
        summary_->setText(text);
    } else {
        summary_->setText(QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(error_.toHtmlEscaped()));
    }
    updateEnabled();
    Q_EMIT previewed();
}

void ExportDialog::updateEnabled()
{
    export_->setEnabled(plan_.has_value() && !out_->text().trimmed().isEmpty());
}

// --- RecoveryMonitor --------------------------------------------------------------------------------------------

RecoveryMonitor::RecoveryMonitor(Job* job, int trial, QWidget* parent) : QWidget(parent, Qt::Window), job_(job)
{
    setObjectName(QStringLiteral("recovery-monitor"));
    setAttribute(Qt::WA_DeleteOnClose);
    setWindowTitle(tr("Recovery of trial %1").arg(trial));
    plot_ = new QCustomPlot(this);
    plot_->setObjectName(QStringLiteral("recovery-loss"));
    applyPlotStyle(plot_);
    plot_->setMinimumSize(420, 260);
    train_ = plot_->addGraph();
    train_->setName(tr("training loss (per step)"));
    train_->setPen(QPen(runColor(0), 1.5));
    validation_ = plot_->addGraph();
    validation_->setName(tr("validation loss"));
    validation_->setPen(QPen(runColor(1), 2));
    validation_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, runColor(1), runColor(1), 7));
    plot_->xAxis->setLabel(tr("Optimizer step"));
    plot_->yAxis->setLabel(tr("Loss (nats per token)"));
    train_->addToLegend();
    validation_->addToLegend();
    plot_->legend->setVisible(true);
    installPlotContextMenu(plot_);
    status_ = new QLabel;
    status_->setObjectName(QStringLiteral("recovery-status"));
    cancel_ = new QPushButton(tr("Cancel Recovery"));
    auto* row = new QHBoxLayout;
    row->addWidget(status_, 1);
    row->addWidget(cancel_);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(plot_, 1);
    layout->addLayout(row);
    resize(640, 420);
    if (job) {
        connect(job, &Job::changed, this, &RecoveryMonitor::update);
        connect(cancel_, &QPushButton::clicked, job, &Job::cancel);
    }
    update();
}

void RecoveryMonitor::update()
{
    if (!job_) {
        cancel_->setEnabled(false);
        return;
    }
    if (job_->pointsAdded() != shownPoints_) {
        shownPoints_ = job_->pointsAdded();
        auto fill = [](QCPGraph* g, const QVector<QPointF>& pts) {
            QVector<double> x, y;
            for (const QPointF& p : pts) {
                x << p.x();
                y << p.y();
            }
            g->setData(x, y, true);
        };
        fill(train_, job_->series(QStringLiteral("loss")));
        fill(validation_, job_->series(QStringLiteral("val_loss")));
        plot_->rescaleAxes();
        plot_->replot();
    }
    const qpruner::Progress& p = job_->progress();
    QString text = QStringLiteral("%1: %2").arg(Job::stateName(job_->state()),
                                                QString::fromStdString(p.stage.empty() ? std::string("waiting")
                                                                                       : p.stage));
    if (p.total > 0)
        text += QStringLiteral(" %1/%2").arg(p.done).arg(p.total);
    if (const auto eta = job_->etaMs())
        text += tr(", ETA %1").arg(JobTableModel::formatDuration(*eta));
    if (job_->state() == Job::State::Failed)
        text += QStringLiteral(": ") + job_->errorText();
    status_->setText(text);
    cancel_->setEnabled(!job_->isFinished());
}

// --- GenerateWindow ---------------------------------------------------------------------------------------------

GenerateWindow::GenerateWindow(JobQueue& jobs, const QString& dbPath, qint64 runId, int trial, bool recovered,
                               QWidget* parent)
    : QWidget(parent, Qt::Window), jobs_(jobs), db_(dbPath), runId_(runId), trial_(trial)
{
    setObjectName(QStringLiteral("generate-window"));
    setAttribute(Qt::WA_DeleteOnClose);
    setWindowTitle(tr("Generate with Trial %1").arg(trial));
    prompt_ = new QLineEdit(QStringLiteral("Once upon a time"));
    steps_ = spin(2, 100'000, 64, tr("Positions, BOS and prompt included"));
    temperature_ = new QDoubleSpinBox;
    temperature_->setRange(0, 10);
    temperature_->setSingleStep(0.1);
    temperature_->setValue(0);
    temperature_->setToolTip(tr("0: greedy"));
    topP_ = new QDoubleSpinBox;
    topP_->setRange(0.01, 1);
    topP_->setSingleStep(0.05);
    topP_->setValue(0.9);
    seed_ = spin(0, 2'000'000'000, 0);
    base_box_ = new QCheckBox(tr("Also the uncompressed model"));
    base_box_->setChecked(true);
    adapter_ = new QCheckBox(tr("With the recovered adapter"));
    adapter_->setEnabled(recovered);
    adapter_->setChecked(recovered);
    go_ = new QPushButton(tr("Generate"));
    go_->setDefault(true);
    status_ = new QLabel;
    compressed_ = new QPlainTextEdit;
    compressed_->setReadOnly(true);
    compressed_->setObjectName(QStringLiteral("generate-compressed"));
    base_ = new QPlainTextEdit;
    base_->setReadOnly(true);
    base_->setObjectName(QStringLiteral("generate-base"));
    compressedTitle_ = new QLabel(tr("<b>Compressed</b> (trial %1)").arg(trial));
    baseTitle_ = new QLabel(tr("<b>Base</b> (the run's model)"));

    auto* form = new QFormLayout;
    form->addRow(tr("Prompt:"), prompt_);
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel(tr("Steps:")));
    row->addWidget(steps_);
    row->addWidget(new QLabel(tr("Temperature:")));
    row->addWidget(temperature_);
    row->addWidget(new QLabel(tr("Top-p:")));
    row->addWidget(topP_);
    row->addWidget(new QLabel(tr("Seed:")));
    row->addWidget(seed_);
    row->addStretch(1);
    auto* row2 = new QHBoxLayout;
    row2->addWidget(base_box_);
    row2->addWidget(adapter_);
    row2->addStretch(1);
    row2->addWidget(status_);
    row2->addWidget(go_);
    auto* sides = new QSplitter(Qt::Horizontal);
    for (auto [title, text] : {std::pair{compressedTitle_, compressed_}, std::pair{baseTitle_, base_}}) {
        auto* w = new QWidget;
        auto* v = new QVBoxLayout(w);
        v->setContentsMargins(0, 0, 0, 0);
        v->addWidget(title);
        v->addWidget(text, 1);
        sides->addWidget(w);
    }
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addLayout(row);
    layout->addLayout(row2);
    layout->addWidget(sides, 1);
    resize(820, 460);
    connect(go_, &QPushButton::clicked, this, &GenerateWindow::generate);
    connect(prompt_, &QLineEdit::returnPressed, this, &GenerateWindow::generate);
}

qpruner::pipeline::TrialGenerateRequest GenerateWindow::request() const
{
    qpruner::pipeline::TrialGenerateRequest r;
    r.prompt = prompt_->text().toStdString();
    r.steps = steps_->value();
    r.temperature = temperature_->value();
    r.topP = topP_->value();
    r.seed = uint64_t(seed_->value());
    r.base = base_box_->isChecked();
    r.adapter = adapter_->isEnabled() && adapter_->isChecked();
    return r;
}

void GenerateWindow::generate()
{
    if (job_ && !job_->isFinished())
        return;
    Job* job = startGenerateTrial(jobs_, db_, runId_, trial_, request());
    job_ = job;
    go_->setEnabled(false);
    status_->setText(tr("Generating\u2026"));
    connect(job, &Job::finished, this, [this, job](Job::State state) {
        go_->setEnabled(true);
        if (const auto r = trialActionResult(*job)) {
            showResult(*r);
            status_->clear();
        } else {
            status_->setText(state == Job::State::Cancelled ? tr("Cancelled") : tr("Failed: %1").arg(job->errorText()));
        }
        Q_EMIT generated();
    });
}

void GenerateWindow::showResult(const json& r)
{
    result_ = r;
    auto side = [](const json& s, QPlainTextEdit* text, QLabel* title, const QString& name) {
        if (s.is_null()) {
            text->clear();
            title->setText(QStringLiteral("<b>%1</b>").arg(name));
            return;
        }
        text->setPlainText(QString::fromStdString(s["text"].get<std::string>()));
        title->setText(tr("<b>%1</b>: %2 tokens, %3 tokens/s%4")
                           .arg(name)
                           .arg(s["generated_ids"].size())
                           .arg(s["tokens_per_second"].get<double>(), 0, 'f', 1)
                           .arg(s["adapter"].is_null() ? QString() : tr(", recovered")));
    };
    side(r["compressed"], compressed_, compressedTitle_, tr("Compressed (trial %1)").arg(trial_));
    side(r["base"], base_, baseTitle_, tr("Base (the run's model)"));
}

} // namespace qpruner::ui
