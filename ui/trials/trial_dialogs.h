// The dialogs and windows of the trial actions (Search tab, trials table, Run > Trial): settings prefilled from
// the run, checked by the core when the job starts (its ConfigError names the key), and the windows that follow a
// job: the recovery's live loss plot and the side-by-side generations.
#pragma once

#include <QDialog>
#include <QPointer>
#include <QWidget>

#include <nlohmann/json.hpp>

#include "jobs/job.h"
#include "qpruner/model_export.h"
#include "qpruner/trial_actions.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPGraph;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace qpruner::ui {

class CheckableList;
class JobQueue;
class PplSliceTable;

// Recover: LoftQ or LoRA settings of `finetune` (pipeline.h), starting from recoveryDefaults(); resume continues
// the checkpoint a cancelled or failed recovery of this trial left, with its settings.
class RecoverDialog : public QDialog {
    Q_OBJECT
public:
    RecoverDialog(int trial, const nlohmann::json& defaults, bool resumable, bool recovered,
                  QWidget* parent = nullptr);
    nlohmann::json finetune() const; // the defaults with the edited keys
    bool resume() const;

    QComboBox* initBox() const { return init_; }
    QSpinBox* stepsBox() const { return steps_; }
    QSpinBox* rankBox() const { return rank_; }
    QComboBox* dataBox() const { return data_; }
    QCheckBox* resumeBox() const { return resume_; }
    QSpinBox* batchBox() const { return batch_; }
    QSpinBox* microBatchBox() const { return micro_; }
    QSpinBox* seqLenBox() const { return seqLen_; }
    QSpinBox* maxExamplesBox() const { return maxExamples_; }
    QSpinBox* maxValBox() const { return maxVal_; }
    QSpinBox* evalEveryBox() const { return evalEvery_; }

private:
    nlohmann::json defaults_;
    QComboBox* init_ = nullptr;
    QSpinBox* loftqIter_ = nullptr;
    QSpinBox* rank_ = nullptr;
    QDoubleSpinBox* alpha_ = nullptr;
    QSpinBox* steps_ = nullptr;
    QLineEdit* lr_ = nullptr;
    QSpinBox* batch_ = nullptr;
    QSpinBox* micro_ = nullptr;
    QSpinBox* seqLen_ = nullptr;
    QComboBox* data_ = nullptr;
    QSpinBox* maxExamples_ = nullptr;
    QSpinBox* maxVal_ = nullptr;
    QSpinBox* evalEvery_ = nullptr;
    QCheckBox* resume_ = nullptr;
};

// Evaluate: perplexity slices and the zero-shot tasks, with the recovered adapter or without.
class EvaluateDialog : public QDialog {
    Q_OBJECT
public:
    EvaluateDialog(int trial, const nlohmann::json& defaults, bool recovered, QWidget* parent = nullptr);
    nlohmann::json evaluate() const;

    PplSliceTable* pplTable() const { return ppl_; }
    CheckableList* taskList() const { return tasks_; }
    QSpinBox* limitBox() const { return limit_; }
    QSpinBox* batchBox() const { return batch_; }
    QCheckBox* adapterBox() const { return adapter_; }

private:
    nlohmann::json defaults_;
    PplSliceTable* ppl_ = nullptr;
    CheckableList* tasks_ = nullptr;
    QSpinBox* limit_ = nullptr;
    QSpinBox* batch_ = nullptr;
    QCheckBox* adapter_ = nullptr;
};

// Export model: GGUF or Hugging Face, the dry-run preview (every tensor's type and bytes, the exact size, the
// warnings) redone whenever an option changes, then the export as a job.
class ExportDialog : public QDialog {
    Q_OBJECT
public:
    ExportDialog(const QString& dbPath, qint64 runId, int trial, bool recovered, const QString& defaultOut,
                 QWidget* parent = nullptr);
    qpruner::ExportOptions options() const; // target, out, nf4Type, dtype, padUniform, strict, name
    bool mergeAdapter() const;

    QComboBox* targetBox() const { return target_; }
    QLineEdit* outEdit() const { return out_; }
    QComboBox* nf4Box() const { return nf4_; }
    QCheckBox* mergeBox() const { return merge_; }
    QCheckBox* padBox() const { return pad_; }
    QTableWidget* tensorTable() const { return tensors_; }
    QLabel* summaryLabel() const { return summary_; }
    QPushButton* exportButton() const { return export_; }
    // The last preview: its plan, or the core's error.
    std::optional<qpruner::ExportPlan> plan() const { return plan_; }
    QString previewError() const { return error_; }

public Q_SLOTS:
    void preview(); // recomputes the plan (synchronously: headers and the tokenizer only, no weights)

Q_SIGNALS:
    void previewed();

private:
    void updateEnabled();

    QString db_;
    qint64 runId_;
    int trial_;
    QComboBox* target_ = nullptr;
    QLineEdit* out_ = nullptr;
    QComboBox* nf4_ = nullptr;
    QComboBox* dtype_ = nullptr;
    QCheckBox* pad_ = nullptr;
    QCheckBox* merge_ = nullptr;
    QCheckBox* strict_ = nullptr;
    QLineEdit* name_ = nullptr;
    QTableWidget* tensors_ = nullptr;
    QLabel* summary_ = nullptr;
    QPushButton* export_ = nullptr;
    std::optional<qpruner::ExportPlan> plan_;
    QString error_;
};

// Follows a recovery job: training loss per step and validation loss per evaluation on one plot, the progress
// line with its ETA, Cancel. Closing the window leaves the job running.
class RecoveryMonitor : public QWidget {
    Q_OBJECT
public:
    RecoveryMonitor(Job* job, int trial, QWidget* parent = nullptr);
    QCustomPlot* plot() const { return plot_; }
    QCPGraph* trainGraph() const { return train_; }
    QCPGraph* validationGraph() const { return validation_; }
    QLabel* statusLabel() const { return status_; }

private:
    void update();

    QPointer<Job> job_;
    QCustomPlot* plot_ = nullptr;
    QCPGraph* train_ = nullptr;
    QCPGraph* validation_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton* cancel_ = nullptr;
    qint64 shownPoints_ = -1;
};

// Generate: prompt, steps, temperature, top-p and seed; the trial's text beside the run's uncompressed model's.
// Each Generate is a job (and a stage of the run); the texts appear when it is done.
class GenerateWindow : public QWidget {
    Q_OBJECT
public:
    GenerateWindow(JobQueue& jobs, const QString& dbPath, qint64 runId, int trial, bool recovered,
                   QWidget* parent = nullptr);
    qpruner::pipeline::TrialGenerateRequest request() const;

    QLineEdit* promptEdit() const { return prompt_; }
    QSpinBox* stepsBox() const { return steps_; }
    QDoubleSpinBox* temperatureBox() const { return temperature_; }
    QSpinBox* seedBox() const { return seed_; }
    QPlainTextEdit* compressedText() const { return compressed_; }
    QPlainTextEdit* baseText() const { return base_; }
    Job* job() const { return job_; }
    // The last finished generation's stage result (null before).
    const nlohmann::json& result() const { return result_; }

public Q_SLOTS:
    void generate();

Q_SIGNALS:
    void generated();

private:
    void showResult(const nlohmann::json& r);

    JobQueue& jobs_;
    QString db_;
    qint64 runId_;
    int trial_;
    QLineEdit* prompt_ = nullptr;
    QSpinBox* steps_ = nullptr;
    QDoubleSpinBox* temperature_ = nullptr;
    QDoubleSpinBox* topP_ = nullptr;
    QSpinBox* seed_ = nullptr;
    QCheckBox* base_box_ = nullptr;
    QCheckBox* adapter_ = nullptr;
    QPushButton* go_ = nullptr;
    QLabel* status_ = nullptr;
    QPlainTextEdit* compressed_ = nullptr;
    QPlainTextEdit* base_ = nullptr;
    QLabel* compressedTitle_ = nullptr;
    QLabel* baseTitle_ = nullptr;
    QPointer<Job> job_;
    nlohmann::json result_;
};

} // namespace qpruner::ui
