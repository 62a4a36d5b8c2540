// "New run": every choice of a pipeline config (pipeline.h) on six tabs - Model, Data, Pruning, Importance &
// budget, Search, Recovery & evaluation - with the defaults of resources/configs/stories260k-quick.json.
// Every edit re-checks the config with the core's own pipeline::normalizeConfig, so OK ("Start run") is
// enabled exactly when the pipeline will accept it, and otherwise the core's message (naming the key) shows.
// The budget field is checked live with parseBudget, its message right under it.
// setConfig() fills the fields from a stored config ("Re-run with changes"); keys the dialog has no field
// for are kept as they were (config() writes the fields over that document), except "workdir": a new run
// gets its own directory and never writes into the old run's artifacts.
#pragma once

#include <QDialog>
#include <QString>

#include <nlohmann/json.hpp>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QGroupBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QStackedWidget;
class QTabWidget;

namespace qpruner::ui {

class CheckableList;
class PplSliceTable;
class SourcePicker;

class NewRunDialog : public QDialog {
    Q_OBJECT

public:
    explicit NewRunDialog(QWidget* parent = nullptr);

    // The quick stories260K-style defaults, without a model.
    static nlohmann::json defaultConfig();

    // The pipeline config the fields describe (not normalised: paths as typed, relative to baseDir()).
    nlohmann::json config() const;
    void setConfig(const nlohmann::json& config);

    // Also names the experiment after the model while the experiment is still the automatic one.
    void setModelPath(const QString& path);
    // Relative paths in the config are taken relative to this (the workspace's directory).
    void setBaseDir(const QString& dir);
    QString baseDir() const { return baseDir_; }

    bool isConfigValid() const { return validationError_.isEmpty(); }
    QString validationError() const { return validationError_; }

    // For tests and the window's integration.
    QPushButton* okButton() const { return okButton_; }
    QLineEdit* budgetEdit() const { return budget_; }
    QLabel* budgetMessage() const { return budgetMessage_; }
    QLabel* validationMessage() const { return message_; }
    // What the chosen compute dtype means on this machine ("bfloat16 weights compute in float32: ...").
    QLabel* computeInfo() const { return computeInfo_; }
    QComboBox* computeDtypeBox() const { return computeDtype_; }
    QTabWidget* tabs() const { return tabs_; }

public Q_SLOTS:
    // Re-checks budget and config now (every field change calls it).
    void validate();

private:
    QWidget* buildModelTab();
    QWidget* buildDataTab();
    QWidget* buildPruningTab();
    QWidget* buildImportanceTab();
    QWidget* buildSearchTab();
    QWidget* buildRecoveryTab();
    void watchChanges();
    void updateMetricChoices();
    void updateEnabled();

    nlohmann::json base_;  // setConfig's document: what the fields are written over
    QString baseDir_;
    QString autoExperiment_; // the experiment name setModelPath chose, replaced by the next model's
    QString validationError_;
    bool filling_ = false;   // setConfig in progress: validate once at the end

    QTabWidget* tabs_;
    QLabel* message_;
    QPushButton* okButton_;

    // Model
    QLineEdit* model_;
    QLineEdit* tokenizer_;
    QComboBox* dtype_;
    QComboBox* computeDtype_;
    QLabel* computeInfo_;
    QLineEdit* experiment_;
    QLineEdit* name_;
    QSpinBox* seed_;
    // Data
    SourcePicker* calibSource_;
    QSpinBox* calibSamples_;
    QSpinBox* calibSeqLen_;
    SourcePicker* valSource_;
    QSpinBox* valWindows_;
    QSpinBox* valSeqLen_;
    QSpinBox* valSkip_;
    // Pruning
    QGroupBox* prune_;
    QDoubleSpinBox* pruneRatio_;
    QComboBox* pruneCriterion_;
    QLineEdit* pruneAttention_;
    QLineEdit* pruneMlp_;
    SourcePicker* pruneSource_;
    QSpinBox* pruneSamples_;
    QSpinBox* pruneSeqLen_;
    // Importance & budget
    CheckableList* metrics_;
    QComboBox* metric_;
    QLineEdit* budget_;
    QLabel* budgetMessage_;
    QComboBox* method_;
    CheckableList* candidates_;
    // Search
    QGroupBox* search_;
    QSpinBox* trials_;
    QComboBox* strategy_;
    QComboBox* granularity_;
    QComboBox* objective_;
    QComboBox* task_;
    QSpinBox* taskLimit_;
    QSpinBox* initialSamples_;
    QSpinBox* workers_;
    QSpinBox* tokenBudget_;
    QStackedWidget* strategySettings_; // one page per strategy, in strategy_'s order
    QLineEdit* fidelities_;            // bayes
    QCheckBox* knapsackSeeds_;         // bayes: initial_knapsack
    QSpinBox* evoOffspring_;
    QLineEdit* evoFidelities_;
    QLineEdit* evoSurvivors_;
    QSpinBox* nsgaPopulation_;
    QSpinBox* nsgaPrefilter_;
    QDoubleSpinBox* errorFidelity_;    // lagrangian
    QLineEdit* apSlopes_;
    // Recovery & evaluation
    QGroupBox* finetune_;
    SourcePicker* ftData_;
    QSpinBox* ftSteps_;
    QSpinBox* ftRank_;
    QComboBox* ftInit_;
    QGroupBox* evaluate_;
    PplSliceTable* ppl_;
    CheckableList* tasks_;
    QSpinBox* evalTaskLimit_;
};

} // namespace qpruner::ui
