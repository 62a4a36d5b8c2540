// NewRunDialog: the widgets, their mapping to and from the config document, and the live validation.
#include "newrun/new_run_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QStackedWidget>
#include <QTabWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include <climits>
#include <filesystem>
#include <functional>

#include "common/shared_data.h"
#include "newrun/checkable_list.h"
#include "newrun/ppl_slice_table.h"
#include "newrun/source_picker.h"
#include "qpruner/allocation.h"
#include "qpruner/error.h"
#include "qpruner/pipeline.h"
#include "qpruner/quant_format.h"

namespace qpruner::ui {

using nlohmann::json;

namespace {

// Names the core accepts (pipeline.cpp, eval/task_data.cpp); the core stays the judge through normalizeConfig.
const QStringList kCalibrationSources = {"tinystories", "wikitext2", "ptb", "alpaca"};
const QStringList kTextSources = {"tinystories", "wikitext2", "ptb"};
const QStringList kMetrics = {"quant-kl", "mi", "bi", "taylor", "cosine", "outlier"};
const QStringList kTasks = {"boolq",    "piqa",          "hellaswag",  "winogrande",
                            "arc_easy", "arc_challenge", "openbookqa", "social_i_qa"};
const QStringList kCriteria = {"taylor-first", "taylor-vector", "taylor-second", "taylor-mix", "l1", "l2", "random"};

const json& member(const json& j, const char* key)
{
    static const json null;
    return j.is_object() && j.contains(key) ? j[key] : null;
}
QString str(const json& j, const char* key, const QString& fallback)
{
    const json& v = member(j, key);
    return v.is_string() ? QString::fromStdString(v.get<std::string>()) : fallback;
}
int integer(const json& j, const char* key, int fallback)
{
    const json& v = member(j, key);
    return v.is_number_integer() ? int(std::clamp<int64_t>(v.get<int64_t>(), INT_MIN, INT_MAX)) : fallback;
}
double number(const json& j, const char* key, double fallback)
{
    const json& v = member(j, key);
    return v.is_number() ? v.get<double>() : fallback;
}
QStringList names(const json& j, const char* key, const QStringList& fallback)
{
    const json& v = member(j, key);
    if (!v.is_array())
        return fallback;
    QStringList out;
    for (const auto& s : v)
        if (s.is_string())
            out.append(QString::fromStdString(s.get<std::string>()));
    return out;
}
json toJson(const QStringList& list)
{
    json out = json::array();
    for (const QString& s : list)
        out.push_back(s.toStdString());
    return out;
}
// The object at `key` of `base` (to write fields over), or an empty object.
json objectOf(const json& base, const char* key)
{
    const json& v = member(base, key);
    return v.is_object() ? v : json::object();
}

QSpinBox* spin(int min, int max, int value, const QString& tip = {})
{
    auto* s = new QSpinBox;
    s->setRange(min, max);
    s->setValue(value);
    s->setToolTip(tip);
    s->setGroupSeparatorShown(true);
    return s;
}
QComboBox* combo(const QStringList& items)
{
    auto* c = new QComboBox;
    c->addItems(items);
    return c;
}
void setComboText(QComboBox* c, const QString& text)
{
    int i = c->findText(text);
    if (i < 0) { // a value this build's list lacks: keep it, normalizeConfig will say what is wrong with it
        c->addItem(text);
        i = c->count() - 1;
    }
    c->setCurrentIndex(i);
}
// "0.25, 1" -> [0.25, 1] (integers stay integers); text that is not a list of numbers goes to the config as it is,
// so that normalizeConfig names the key and what it expected.
nlohmann::json numberList(const QString& text)
{
    nlohmann::json out = nlohmann::json::array();
    for (const QString& part : text.split(QRegularExpression(QStringLiteral("[,\\s]+")), Qt::SkipEmptyParts)) {
        bool ok = false;
        const qlonglong i = part.toLongLong(&ok);
        if (ok) {
            out.push_back(i);
            continue;
        }
        const double d = part.toDouble(&ok);
        if (!ok)
            return text.toStdString();
        out.push_back(d);
    }
    return out;
}
QString listText(const nlohmann::json& v, const char* fallback)
{
    if (v.is_string()) // not a list: shown as typed (validation names it)
        return QString::fromStdString(v.get<std::string>());
    if (!v.is_array())
        return QString::fromLatin1(fallback);
    QStringList parts;
    for (const auto& x : v)
        parts << (x.is_number_integer() ? QString::number(x.get<qlonglong>())
                  : x.is_number()       ? QString::number(x.get<double>(), 'g', 6)
                                        : QString::fromStdString(x.dump()));
    return parts.join(QStringLiteral(", "));
}
QWidget* pathRow(QLineEdit* edit, QWidget* owner, const QString& caption, const QString& filter)
{
    auto* row = new QWidget;
    auto* layout = new QHBoxLayout(row);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* browse = new QToolButton;
    browse->setText(NewRunDialog::tr("Browse…"));
    layout->addWidget(edit, 1);
    layout->addWidget(browse);
    QObject::connect(browse, &QToolButton::clicked, owner, [edit, owner, caption, filter] {
        const QString f = QFileDialog::getOpenFileName(owner, caption, QFileInfo(edit->text()).path(), filter);
        if (!f.isEmpty())
            edit->setText(f);
    });
    return row;
}
QWidget* page(QLayout* layout)
{
    auto* w = new QWidget;
    w->setLayout(layout);
    return w;
}
QLabel* note(const QString& text)
{
    auto* l = new QLabel(text);
    l->setWordWrap(true);
    l->setStyleSheet(QStringLiteral("color: palette(placeholder-text);"));
    return l;
}

} // namespace

NewRunDialog::NewRunDialog(QWidget* parent) : QDialog(parent), baseDir_(QDir::currentPath())
{
    setWindowTitle(tr("New run"));
    tabs_ = new QTabWidget;
    tabs_->addTab(buildModelTab(), tr("Model"));
    tabs_->addTab(buildDataTab(), tr("Data"));
    tabs_->addTab(buildPruningTab(), tr("Pruning"));
    tabs_->addTab(buildImportanceTab(), tr("Importance && budget"));
    tabs_->addTab(buildSearchTab(), tr("Search"));
    tabs_->addTab(buildRecoveryTab(), tr("Recovery && evaluation"));

    message_ = new QLabel;
    message_->setWordWrap(true);
    message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    okButton_ = buttons->button(QDialogButtonBox::Ok);
    okButton_->setText(tr("Start run"));
    connect(buttons, &QDialogButtonBox::accepted, this, [this] {
        validate();
        if (isConfigValid())
            accept();
    });
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(tabs_, 1);
    layout->addWidget(message_);
    layout->addWidget(buttons);

    resize(720, 620);
    watchChanges();
    setConfig(defaultConfig());
    if (const auto demos = demoModels(); !demos.isEmpty())
        setModelPath(demos.first().path);
}

json NewRunDialog::defaultConfig()
{
    return json::parse(R"({
      "version": 1, "experiment": "default", "name": "", "model": "", "tokenizer": "", "seed": 0,
      "importance": {"metric": "quant-kl", "metrics": ["quant-kl"],
                     "calibration": {"source": "tinystories", "samples": 32, "seq_len": 128}},
      "allocate": {"budget": "7bpw", "method": "probabilistic", "candidates": ["nf4", "int8", "bf16"]},
      "search": {"trials": 16, "strategy": "bayes", "granularity": "layer", "objective": "ppl",
                 "validation": {"source": "tinystories", "windows": 16, "seq_len": 256, "skip": 0}},
      "evaluate": {"ppl": [{"source": "tinystories", "windows": 40, "seq_len": 256, "skip": 16}]}
    })");
}

QWidget* NewRunDialog::buildModelTab()
{
    model_ = new QLineEdit;
    model_->setPlaceholderText(tr("llama2.c .bin, safetensors checkpoint or model directory"));
    tokenizer_ = new QLineEdit;
    tokenizer_->setPlaceholderText(tr("empty: found beside the model"));
    dtype_ = combo({"fp32", "bf16", "fp16"});
    dtype_->setToolTip(tr("Precision the model's dense weights are held in"));
    computeDtype_ = combo({"auto", "float32", "bfloat16"});
    computeDtype_->setToolTip(tr("Precision the matmuls and activations use. auto: bfloat16 only on a CPU with native "
                                 "bf16 (AVX512_BF16 or AMX), where it is fast; float32 elsewhere, where bf16 "
                                 "matmuls are many times slower"));
    computeInfo_ = new QLabel;
    computeInfo_->setWordWrap(true);
    computeInfo_->setStyleSheet(QStringLiteral("color: palette(placeholder-text);"));
    experiment_ = new QLineEdit;
    experiment_->setToolTip(tr("Runs of one experiment are grouped in the run browser"));
    name_ = new QLineEdit;
    name_->setPlaceholderText(tr("optional description"));
    seed_ = spin(0, INT_MAX, 0, tr("Seeds sampling, allocation and search"));
    auto* form = new QFormLayout;
    form->addRow(tr("&Model:"), pathRow(model_, this, tr("Choose a model"),
                                        tr("Models (*.bin *.safetensors *.json);;All files (*)")));
    form->addRow(tr("&Tokenizer:"), pathRow(tokenizer_, this, tr("Choose a tokenizer"),
                                            tr("Tokenizers (*.model *.json *.bin);;All files (*)")));
    form->addRow(tr("&Dtype:"), dtype_);
    form->addRow(tr("&Compute:"), computeDtype_);
    form->addRow(QString(), computeInfo_);
    form->addRow(tr("&Experiment:"), experiment_);
    form->addRow(tr("Run &name:"), name_);
    form->addRow(tr("&Seed:"), seed_);
    return page(form);
}

QWidget* NewRunDialog::buildDataTab()
{
    calibSource_ = new SourcePicker(kCalibrationSources);
    calibSamples_ = spin(1, 1'000'000, 32, tr("Calibration sequences the importance metrics average over"));
    calibSeqLen_ = spin(2, 1'000'000, 128, tr("Tokens per calibration sequence"));
    auto* calib = new QGroupBox(tr("Calibration (importance scores)"));
    auto* cf = new QFormLayout(calib);
    cf->addRow(tr("Source:"), calibSource_);
    cf->addRow(tr("Samples:"), calibSamples_);
    cf->addRow(tr("Sequence length:"), calibSeqLen_);

    valSource_ = new SourcePicker(kTextSources);
    valWindows_ = spin(1, 1'000'000, 16, tr("Consecutive windows each search trial is evaluated on"));
    valSeqLen_ = spin(2, 1'000'000, 256);
    valSkip_ = spin(0, 1'000'000, 0, tr("Windows skipped at the start of the text"));
    auto* val = new QGroupBox(tr("Validation (the search objective)"));
    auto* vf = new QFormLayout(val);
    vf->addRow(tr("Source:"), valSource_);
    vf->addRow(tr("Windows:"), valWindows_);
    vf->addRow(tr("Sequence length:"), valSeqLen_);
    vf->addRow(tr("Skip windows:"), valSkip_);

    auto* layout = new QVBoxLayout;
    layout->addWidget(calib);
    layout->addWidget(val);
    layout->addStretch(1);
    return page(layout);
}

QWidget* NewRunDialog::buildPruningTab()
{
    prune_ = new QGroupBox(tr("Structured pruning before quantization"));
    prune_->setCheckable(true);
    pruneRatio_ = new QDoubleSpinBox;
    pruneRatio_->setRange(0.01, 0.95);
    pruneRatio_->setSingleStep(0.05);
    pruneRatio_->setDecimals(3);
    pruneRatio_->setValue(0.25);
    pruneRatio_->setToolTip(tr("Fraction of the prunable parameters removed"));
    pruneCriterion_ = combo(kCriteria);
    pruneAttention_ = new QLineEdit;
    pruneAttention_->setPlaceholderText(tr("all, or BEGIN:END"));
    pruneMlp_ = new QLineEdit;
    pruneMlp_->setPlaceholderText(tr("all, or BEGIN:END"));
    pruneSource_ = new SourcePicker(kCalibrationSources);
    pruneSamples_ = spin(1, 1'000'000, 10);
    pruneSeqLen_ = spin(2, 1'000'000, 64);
    auto* form = new QFormLayout(prune_);
    form->addRow(tr("Ratio:"), pruneRatio_);
    form->addRow(tr("Criterion:"), pruneCriterion_);
    form->addRow(tr("Attention layers:"), pruneAttention_);
    form->addRow(tr("MLP layers:"), pruneMlp_);
    form->addRow(tr("Calibration source:"), pruneSource_);
    form->addRow(tr("Calibration samples:"), pruneSamples_);
    form->addRow(tr("Sequence length:"), pruneSeqLen_);
    auto* layout = new QVBoxLayout;
    layout->addWidget(prune_);
    layout->addWidget(note(tr("The pruned checkpoint is what importance, allocation and search then work on.")));
    layout->addStretch(1);
    return page(layout);
}

QWidget* NewRunDialog::buildImportanceTab()
{
    metrics_ = new CheckableList(kMetrics);
    metrics_->setToolTip(tr("Layer importance metrics to compute (all are stored and plotted)"));
    metric_ = new QComboBox;
    metric_->setToolTip(tr("The metric that drives the allocation and the search's prior"));
    budget_ = new QLineEdit;
    budget_->setToolTip(tr("Bits per weight (4.5bpw), bytes (350KiB, 1.5MiB) or a fraction of bf16 (0.4x, 40%)"));
    budgetMessage_ = new QLabel;
    budgetMessage_->setWordWrap(true);
    budgetMessage_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    method_ = combo({"probabilistic", "greedy", "uniform", "random", "ap-ratio"});
    QStringList formats;
    for (const std::string& n : quantSpecNames())
        formats.append(QString::fromStdString(n));
    candidates_ = new CheckableList(formats);
    candidates_->setToolTip(tr("Formats a layer may take (at least two)"));

    auto* budgetBox = new QWidget;
    auto* bl = new QVBoxLayout(budgetBox);
    bl->setContentsMargins(0, 0, 0, 0);
    bl->addWidget(budget_);
    bl->addWidget(budgetMessage_);
    auto* form = new QFormLayout;
    form->addRow(tr("Importance metrics:"), metrics_);
    form->addRow(tr("Driving metric:"), metric_);
    form->addRow(tr("Memory &budget:"), budgetBox);
    form->addRow(tr("Allocation:"), method_);
    form->addRow(tr("Candidate formats:"), candidates_);
    return page(form);
}

QWidget* NewRunDialog::buildSearchTab()
{
    search_ = new QGroupBox(tr("Search over precision maps"));
    search_->setCheckable(true);
    trials_ = spin(1, 1'000'000, 16, tr("Trials evaluated (each quantizes the model and measures the objective)"));
    strategy_ = combo({"bayes", "random", "evopress", "nsga2", "lagrangian", "ap-ratio"});
    const QStringList strategyTips = {
        tr("Gaussian-process Bayesian optimisation (ParEGO expected improvement); multi-fidelity with fidelities < 1"),
        tr("Random feasible maps: the baseline"),
        tr("EvoPress: (1 + lambda) evolution with level-switch mutations and multi-step selection on growing "
           "token budgets"),
        tr("NSGA-II over (objective, memory) with a Gaussian-process pre-filter of the offspring (QR-Adaptor)"),
        tr("Per-unit error table (KL of each unit at each format, charged to the token budget) and the exact "
           "knapsack at the budget and below"),
        tr("Arithmetic-progression schedules: precision rising linearly with depth, one map per slope")};
    for (int i = 0; i < strategyTips.size(); ++i)
        strategy_->setItemData(i, strategyTips[i], Qt::ToolTipRole);
    strategy_->setToolTip(tr("How the next map to evaluate is chosen (hover an entry for what it does)"));
    granularity_ = combo({"layer", "group", "module"});
    granularity_->setToolTip(tr("layer: one format per layer; group: attention and MLP of a layer separately; "
                                "module: each linear separately"));
    tokenBudget_ = spin(0, INT_MAX, 0, tr("Stop when the trials have scored this many validation tokens (0: no "
                                          "limit): the cost that compares strategies fairly"));
    tokenBudget_->setSpecialValueText(tr("no limit"));
    // Strategy settings: one page per strategy.
    strategySettings_ = new QStackedWidget;
    strategySettings_->setObjectName(QStringLiteral("strategySettings"));
    auto settingsPage = [this](const std::function<void(QFormLayout*)>& fill) {
        auto* w = new QWidget;
        auto* f = new QFormLayout(w);
        f->setContentsMargins(0, 0, 0, 0);
        fill(f);
        strategySettings_->addWidget(w);
    };
    fidelities_ = new QLineEdit(QStringLiteral("1"));
    fidelities_->setToolTip(tr("Fractions of the validation windows, ascending, ending at 1; e.g. 0.25, 1 scores "
                               "new maps on a quarter and promotes the best quarter of them"));
    evoOffspring_ = spin(1, 10'000, 16, tr("Offspring per generation (lambda)"));
    evoFidelities_ = new QLineEdit(QStringLiteral("0.125, 0.5, 1"));
    evoFidelities_->setToolTip(tr("Selection stages: fractions of the validation windows, ending at 1"));
    evoSurvivors_ = new QLineEdit(QStringLiteral("4, 1"));
    evoSurvivors_->setToolTip(tr("Offspring kept after each stage but the last"));
    nsgaPopulation_ = spin(2, 10'000, 16, tr("Population, and offspring per generation"));
    nsgaPrefilter_ = spin(1, 100, 4, tr("Candidates bred per offspring kept; the surrogate picks (1: no surrogate)"));
    errorFidelity_ = new QDoubleSpinBox;
    errorFidelity_->setRange(0.01, 1);
    errorFidelity_->setSingleStep(0.125);
    errorFidelity_->setDecimals(3);
    errorFidelity_->setValue(0.25);
    errorFidelity_->setToolTip(tr("Fraction of the validation windows the per-unit error table (lagrangian, "
                                  "knapsack seeds) is measured on"));
    apSlopes_ = new QLineEdit(QStringLiteral("0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3"));
    apSlopes_->setToolTip(tr("Slopes of the depth schedules, in candidate positions per model depth"));
    knapsackSeeds_ = new QCheckBox(tr("Lead with the knapsack's answers"));
    knapsackSeeds_->setChecked(true);
    knapsackSeeds_->setToolTip(tr("Start from the knapsack's best maps under a per-unit error table (KL of each unit "
                                  "at each format, charged to the token budget)"));
    settingsPage([&](QFormLayout* f) {
        f->addRow(tr("Fidelities:"), fidelities_);
        f->addRow(QString(), knapsackSeeds_);
    });
    settingsPage([&](QFormLayout* f) { f->addRow(note(tr("No settings.")));  });
    settingsPage([&](QFormLayout* f) {
        f->addRow(tr("Offspring:"), evoOffspring_);
        f->addRow(tr("Stage fidelities:"), evoFidelities_);
        f->addRow(tr("Survivors:"), evoSurvivors_);
    });
    settingsPage([&](QFormLayout* f) {
        f->addRow(tr("Population:"), nsgaPopulation_);
        f->addRow(tr("Pre-filter factor:"), nsgaPrefilter_);
    });
    settingsPage([&](QFormLayout* f) { f->addRow(note(tr("The error table's fidelity is set below."))); });
    settingsPage([&](QFormLayout* f) { f->addRow(tr("Slopes:"), apSlopes_); });
    connect(strategy_, &QComboBox::currentIndexChanged, this, [this](int i) {
        strategySettings_->setCurrentIndex(std::clamp(i, 0, strategySettings_->count() - 1));
    });
    objective_ = combo({"ppl", "kl", "accuracy"});
    task_ = combo(QStringList{QString()} + kTasks);
    task_->setToolTip(tr("The task whose accuracy the accuracy objective maximises"));
    taskLimit_ = spin(1, 1'000'000, 64, tr("Task items per trial"));
    initialSamples_ = spin(0, 1'000, 4, tr("Importance-guided samples in the initial design"));
    workers_ = spin(1, 256, 1, tr("Parallel trial evaluations"));
    auto* form = new QFormLayout(search_);
    form->addRow(tr("Trials:"), trials_);
    form->addRow(tr("Strategy:"), strategy_);
    form->addRow(tr("Strategy settings:"), strategySettings_);
    form->addRow(tr("Error table fidelity:"), errorFidelity_);
    form->addRow(tr("Token budget:"), tokenBudget_);
    form->addRow(tr("Granularity:"), granularity_);
    form->addRow(tr("Objective:"), objective_);
    form->addRow(tr("Task:"), task_);
    form->addRow(tr("Task items:"), taskLimit_);
    form->addRow(tr("Initial samples:"), initialSamples_);
    form->addRow(tr("Workers:"), workers_);
    auto* layout = new QVBoxLayout;
    layout->addWidget(search_);
    layout->addWidget(note(tr("Without a search the run keeps the allocation's importance-aware map.")));
    layout->addStretch(1);
    return page(layout);
}

QWidget* NewRunDialog::buildRecoveryTab()
{
    finetune_ = new QGroupBox(tr("Recovery fine-tune (LoRA on the chosen map)"));
    finetune_->setCheckable(true);
    ftData_ = new SourcePicker({"alpaca", "tinystories", "wikitext2", "ptb"});
    ftSteps_ = spin(0, 10'000'000, 100, tr("Optimizer steps (0: one epoch)"));
    ftRank_ = spin(1, 4096, 8);
    ftInit_ = combo({"loftq", "lora"});
    ftInit_->setToolTip(tr("loftq initialises the adapters from the quantization error"));
    auto* ff = new QFormLayout(finetune_);
    ff->addRow(tr("Data:"), ftData_);
    ff->addRow(tr("Steps:"), ftSteps_);
    ff->addRow(tr("LoRA rank:"), ftRank_);
    ff->addRow(tr("Initialisation:"), ftInit_);

    evaluate_ = new QGroupBox(tr("Evaluate the chosen map"));
    evaluate_->setCheckable(true);
    ppl_ = new PplSliceTable;
    tasks_ = new CheckableList(kTasks);
    evalTaskLimit_ = spin(1, 1'000'000, 100, tr("Items per task"));
    auto* ef = new QFormLayout(evaluate_);
    ef->addRow(tr("Perplexity:"), ppl_);
    ef->addRow(tr("Tasks:"), tasks_);
    ef->addRow(tr("Task items:"), evalTaskLimit_);

    auto* layout = new QVBoxLayout;
    layout->addWidget(finetune_);
    layout->addWidget(evaluate_, 1);
    return page(layout);
}

void NewRunDialog::watchChanges()
{
    const auto changed = [this] {
        if (!filling_)
            validate();
    };
    for (QLineEdit* e : findChildren<QLineEdit*>())
        connect(e, &QLineEdit::textChanged, this, changed);
    for (QAbstractSpinBox* s : findChildren<QAbstractSpinBox*>()) {
        if (auto* i = qobject_cast<QSpinBox*>(s))
            connect(i, &QSpinBox::valueChanged, this, changed);
        else if (auto* d = qobject_cast<QDoubleSpinBox*>(s))
            connect(d, &QDoubleSpinBox::valueChanged, this, changed);
    }
    for (QComboBox* c : findChildren<QComboBox*>())
        connect(c, &QComboBox::currentIndexChanged, this, changed);
    for (QGroupBox* g : findChildren<QGroupBox*>())
        connect(g, &QGroupBox::toggled, this, changed);
    for (CheckableList* l : findChildren<CheckableList*>())
        connect(l, &CheckableList::checkedChanged, this, changed);
    connect(ppl_, &PplSliceTable::slicesChanged, this, changed);
    connect(metrics_, &CheckableList::checkedChanged, this, &NewRunDialog::updateMetricChoices);
    connect(objective_, &QComboBox::currentIndexChanged, this, &NewRunDialog::updateEnabled);
    connect(experiment_, &QLineEdit::textEdited, this, [this] { autoExperiment_.clear(); });
}

void NewRunDialog::updateMetricChoices()
{
    const QString current = metric_->currentText();
    const QSignalBlocker block(metric_);
    metric_->clear();
    metric_->addItems(metrics_->checkedNames());
    const int i = metric_->findText(current);
    metric_->setCurrentIndex(i >= 0 ? i : 0);
}

void NewRunDialog::updateEnabled()
{
    const bool accuracy = objective_->currentText() == QLatin1String("accuracy");
    task_->setEnabled(accuracy);
    taskLimit_->setEnabled(accuracy);
}

void NewRunDialog::setModelPath(const QString& path)
{
    model_->setText(path);
    const QString current = experiment_->text().trimmed();
    if (current.isEmpty() || current == QLatin1String("default") || current == autoExperiment_) {
        const QFileInfo info(path);
        autoExperiment_ = info.isDir() ? info.fileName() : info.completeBaseName();
        if (!autoExperiment_.isEmpty())
            experiment_->setText(autoExperiment_);
    }
}

void NewRunDialog::setBaseDir(const QString& dir)
{
    baseDir_ = dir;
    validate();
}

json NewRunDialog::config() const
{
    json c = base_.is_object() ? base_ : json::object();
    c["version"] = 1;
    c["experiment"] = experiment_->text().trimmed().toStdString();
    c["name"] = name_->text().toStdString();
    c["model"] = model_->text().trimmed().toStdString();
    c["tokenizer"] = tokenizer_->text().trimmed().toStdString();
    c["dtype"] = dtype_->currentText().toStdString();
    c["compute_dtype"] = computeDtype_->currentText().toStdString();
    c["seed"] = seed_->value();

    if (prune_->isChecked()) {
        json p = objectOf(c, "prune");
        p["ratio"] = pruneRatio_->value();
        p["criterion"] = pruneCriterion_->currentText().toStdString();
        p["attention_layers"] = pruneAttention_->text().trimmed().toStdString();
        p["mlp_layers"] = pruneMlp_->text().trimmed().toStdString();
        json cal = objectOf(p, "calibration");
        cal["source"] = pruneSource_->source().toStdString();
        cal["samples"] = pruneSamples_->value();
        cal["seq_len"] = pruneSeqLen_->value();
        p["calibration"] = cal;
        c["prune"] = p;
    } else {
        c["prune"] = nullptr;
    }

    json imp = objectOf(c, "importance");
    imp["metrics"] = toJson(metrics_->checkedNames());
    imp["metric"] = metric_->currentText().toStdString();
    json cal = objectOf(imp, "calibration");
    cal["source"] = calibSource_->source().toStdString();
    cal["samples"] = calibSamples_->value();
    cal["seq_len"] = calibSeqLen_->value();
    imp["calibration"] = cal;
    c["importance"] = imp;

    json alloc = objectOf(c, "allocate");
    alloc["budget"] = budget_->text().trimmed().toStdString();
    alloc["method"] = method_->currentText().toStdString();
    alloc["candidates"] = toJson(candidates_->checkedNames());
    c["allocate"] = alloc;

    if (search_->isChecked()) {
        json s = objectOf(c, "search");
        s["trials"] = trials_->value();
        s["strategy"] = strategy_->currentText().toStdString();
        s["granularity"] = granularity_->currentText().toStdString();
        s["objective"] = objective_->currentText().toStdString();
        s["task"] = task_->currentText().toStdString();
        s["task_limit"] = taskLimit_->value();
        s["initial_samples"] = initialSamples_->value();
        s["workers"] = workers_->value();
        s["token_budget"] = tokenBudget_->value();
        // Multi-fidelity is a bayes setting (evopress has its own stages): other strategies get the single fidelity.
        s["fidelities"] = strategy_->currentText() == QLatin1String("bayes") ? numberList(fidelities_->text())
                                                                             : json::array({1});
        json evo = objectOf(s, "evopress");
        evo["offspring"] = evoOffspring_->value();
        evo["fidelities"] = numberList(evoFidelities_->text());
        evo["survivors"] = numberList(evoSurvivors_->text());
        s["evopress"] = evo;
        json nsga = objectOf(s, "nsga2");
        nsga["population"] = nsgaPopulation_->value();
        nsga["prefilter"] = nsgaPrefilter_->value();
        s["nsga2"] = nsga;
        s["error_fidelity"] = errorFidelity_->value();
        s["initial_knapsack"] = strategy_->currentText() == QLatin1String("bayes") && knapsackSeeds_->isChecked();
        s["ap_slopes"] = numberList(apSlopes_->text());
        json v = objectOf(s, "validation");
        v["source"] = valSource_->source().toStdString();
        v["windows"] = valWindows_->value();
        v["seq_len"] = valSeqLen_->value();
        v["skip"] = valSkip_->value();
        s["validation"] = v;
        c["search"] = s;
    } else {
        c["search"] = nullptr;
    }

    if (finetune_->isChecked()) {
        json f = objectOf(c, "finetune");
        f["data"] = ftData_->source().toStdString();
        f["steps"] = ftSteps_->value();
        f["rank"] = ftRank_->value();
        f["init"] = ftInit_->currentText().toStdString();
        c["finetune"] = f;
    } else {
        c["finetune"] = nullptr;
    }

    if (evaluate_->isChecked()) {
        json e = objectOf(c, "evaluate");
        e["ppl"] = ppl_->slices();
        e["tasks"] = toJson(tasks_->checkedNames());
        e["task_limit"] = evalTaskLimit_->value();
        c["evaluate"] = e;
    } else {
        c["evaluate"] = nullptr;
    }
    return c;
}

void NewRunDialog::setConfig(const json& config)
{
    // Fallbacks are normalizeConfig's defaults, so a key left out means what the pipeline would make of it.
    filling_ = true;
    base_ = config.is_object() ? config : json::object();
    base_.erase("workdir");
    const json& c = base_;
    model_->setText(str(c, "model", {}));
    tokenizer_->setText(str(c, "tokenizer", {}));
    setComboText(dtype_, str(c, "dtype", "fp32"));
    QString compute = str(c, "compute_dtype", "auto");
    try { // "bf16" and "fp32" are shown by their full names
        compute = QString::fromStdString(pipeline::computeDtypeSetting(compute.toStdString()));
    } catch (const std::exception&) { // kept as it is: validation names it
    }
    setComboText(computeDtype_, compute);
    experiment_->setText(str(c, "experiment", "default"));
    autoExperiment_.clear();
    name_->setText(str(c, "name", {}));
    seed_->setValue(integer(c, "seed", 0));

    const json& p = member(c, "prune");
    prune_->setChecked(p.is_object());
    pruneRatio_->setValue(number(p, "ratio", 0.25));
    setComboText(pruneCriterion_, str(p, "criterion", "taylor-first"));
    pruneAttention_->setText(str(p, "attention_layers", {}));
    pruneMlp_->setText(str(p, "mlp_layers", {}));
    // A section that is off shows what we suggest when it is switched on (stories260k-pruned.json); one that
    // is on shows the pipeline's defaults for what it leaves out.
    const json& pc = member(p, "calibration");
    pruneSource_->setSource(str(pc, "source", "tinystories"));
    pruneSamples_->setValue(integer(pc, "samples", p.is_object() ? 32 : 10));
    pruneSeqLen_->setValue(integer(pc, "seq_len", p.is_object() ? 128 : 64));

    const json& imp = member(c, "importance");
    const QString metric = str(imp, "metric", "quant-kl");
    metrics_->setCheckedNames(names(imp, "metrics", {metric}));
    updateMetricChoices();
    setComboText(metric_, metric);
    const json& ic = member(imp, "calibration");
    calibSource_->setSource(str(ic, "source", "tinystories"));
    calibSamples_->setValue(integer(ic, "samples", 32));
    calibSeqLen_->setValue(integer(ic, "seq_len", 128));

    const json& a = member(c, "allocate");
    budget_->setText(str(a, "budget", "4.5bpw"));
    setComboText(method_, str(a, "method", "probabilistic"));
    candidates_->setCheckedNames(names(a, "candidates", {"nf4", "int8", "bf16"}));

    const json& s = member(c, "search");
    search_->setChecked(!member(c, "search").is_null() || !c.contains("search"));
    trials_->setValue(integer(s, "trials", 40));
    setComboText(strategy_, str(s, "strategy", "bayes"));
    strategySettings_->setCurrentIndex(std::clamp(strategy_->currentIndex(), 0, strategySettings_->count() - 1));
    setComboText(granularity_, str(s, "granularity", "layer"));
    setComboText(objective_, str(s, "objective", "ppl"));
    setComboText(task_, str(s, "task", {}));
    taskLimit_->setValue(integer(s, "task_limit", 64));
    initialSamples_->setValue(integer(s, "initial_samples", 4));
    workers_->setValue(integer(s, "workers", 1));
    tokenBudget_->setValue(integer(s, "token_budget", 0));
    fidelities_->setText(listText(member(s, "fidelities"), "1"));
    const json& evo = member(s, "evopress");
    evoOffspring_->setValue(integer(evo, "offspring", 16));
    evoFidelities_->setText(listText(member(evo, "fidelities"), "0.125, 0.5, 1"));
    evoSurvivors_->setText(listText(member(evo, "survivors"), "4, 1"));
    const json& nsga = member(s, "nsga2");
    nsgaPopulation_->setValue(integer(nsga, "population", 16));
    nsgaPrefilter_->setValue(integer(nsga, "prefilter", 4));
    errorFidelity_->setValue(s.is_object() && s.contains("error_fidelity") && s["error_fidelity"].is_number()
                                 ? s["error_fidelity"].get<double>()
                                 : 0.25);
    knapsackSeeds_->setChecked(!s.is_object() || !s.contains("initial_knapsack") || !s["initial_knapsack"].is_boolean() ||
                               s["initial_knapsack"].get<bool>());
    apSlopes_->setText(listText(member(s, "ap_slopes"), "0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3"));
    const json& v = member(s, "validation");
    valSource_->setSource(str(v, "source", "tinystories"));
    valWindows_->setValue(integer(v, "windows", 16));
    valSeqLen_->setValue(integer(v, "seq_len", 256));
    valSkip_->setValue(integer(v, "skip", 0));

    const json& f = member(c, "finetune");
    finetune_->setChecked(f.is_object());
    ftData_->setSource(str(f, "data", f.is_object() ? "tinystories" : "alpaca"));
    ftSteps_->setValue(integer(f, "steps", f.is_object() ? 0 : 100));
    ftRank_->setValue(integer(f, "rank", 8));
    setComboText(ftInit_, str(f, "init", "loftq"));

    const json& e = member(c, "evaluate");
    evaluate_->setChecked(!e.is_null() || !c.contains("evaluate"));
    ppl_->setSlices(e.is_object() && e.contains("ppl") ? e["ppl"] : json::array({json::object()}));
    tasks_->setCheckedNames(names(e, "tasks", {}));
    evalTaskLimit_->setValue(integer(e, "task_limit", 100));

    filling_ = false;
    updateEnabled();
    validate();
}

void NewRunDialog::validate()
{
    try {
        computeInfo_->setText(QString::fromStdString(pipeline::describeComputeDtype(
            dtype_->currentText().toStdString(), computeDtype_->currentText().toStdString())));
    } catch (const std::exception& e) {
        computeInfo_->setText(QString::fromUtf8(e.what()));
    }
    // The budget on its own first: its message sits under the field, where the user is typing.
    const QString budgetText = budget_->text().trimmed();
    try {
        const MemoryBudget b = parseBudget(budgetText.toStdString());
        budgetMessage_->setStyleSheet(QStringLiteral("color: palette(placeholder-text);"));
        budgetMessage_->setText(b.unit == BudgetUnit::BitsPerWeight ? tr("%1 over the decoder linears")
                                                                                 .arg(QString::fromStdString(b.text()))
                                : b.unit == BudgetUnit::Bytes ? tr("%1 for the whole model")
                                                                    .arg(QString::fromStdString(b.text()))
                                                              : tr("%1 of the model's bf16 size")
                                                                    .arg(QString::fromStdString(b.text())));
    } catch (const std::exception& e) {
        budgetMessage_->setStyleSheet(QStringLiteral("color: #c62828;"));
        budgetMessage_->setText(QString::fromUtf8(e.what()));
    }
    const bool budgetBad = budgetMessage_->styleSheet().contains(QLatin1String("c62828"));

    QString error;
    QString summary;
    try {
        const json n = pipeline::normalizeConfig(config(), std::filesystem::path(baseDir_.toStdU16String()),
                                                 std::filesystem::path(sharedDataDir().toStdU16String()));
        QStringList stages;
        if (!n["prune"].is_null())
            stages << tr("prune");
        stages << tr("importance") << tr("allocate");
        if (!n["search"].is_null())
            stages << (n["search"]["trials"].get<int>() == 1
                           ? tr("search (1 trial)")
                           : tr("search (%1 trials)").arg(n["search"]["trials"].get<int>()));
        if (!n["finetune"].is_null())
            stages << tr("fine-tune");
        if (!n["evaluate"].is_null())
            stages << tr("evaluate");
        summary = tr("Stages: %1").arg(stages.join(QStringLiteral(" → ")));
    } catch (const std::exception& e) { // ConfigError, FileError (model not found), FormatError
        error = QString::fromUtf8(e.what());
    }
    validationError_ = error;
    if (error.isEmpty()) {
        message_->setStyleSheet(QString());
        message_->setText(summary);
    } else {
        message_->setStyleSheet(QStringLiteral("color: #c62828;"));
        // Say where the field is: the user may be on another tab.
        message_->setText(budgetBad && error == budgetMessage_->text()
                              ? tr("Importance & budget › Memory budget: %1").arg(error)
                              : error);
    }
    okButton_->setEnabled(error.isEmpty());
}

} // namespace qpruner::ui
