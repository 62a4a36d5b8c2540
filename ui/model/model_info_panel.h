// The Overview of an open model: what the checkpoint is (format, dtype, size), its architecture
// hyper-parameters and a per-layer table. Shows a hint instead while no model is open.
#pragma once

#include <QMap>
#include <QWidget>

#include <optional>

#include "qpruner/model_config.h"

class QLabel;
class QStackedWidget;
class QTableView;
class QGroupBox;
class QFormLayout;

namespace qpruner::ui {

class LayerTableModel;

class ModelInfoPanel : public QWidget {
    Q_OBJECT

public:
    // Every value the panel shows, so callers and tests read them without knowing the layout.
    enum class Field {
        Path,
        Format,
        Dtype,
        TotalParameters,
        WeightBytes,
        Architecture,
        LayerCount,
        LayerShapes,
        HiddenSize,
        HeadDim,
        VocabSize,
        MaxSeqLen,
        NormEps,
        RopeTheta,
        RopeScaling,
        TiedEmbeddings,
        AttentionBias,
        SpecialTokens,
        FamilyFeatures,
    };

    explicit ModelInfoPanel(QWidget* parent = nullptr);

    void setSummary(const qpruner::ModelSummary& summary);
    void clear();

    bool hasModel() const { return summary_.has_value(); }
    const std::optional<qpruner::ModelSummary>& summary() const { return summary_; }
    // The text shown for `field`; empty while no model is open.
    QString fieldText(Field field) const;
    const LayerTableModel* layerModel() const { return layerModel_; }

private:
    QWidget* createEmptyPage();
    QWidget* createModelPage();
    QGroupBox* createGroup(const QString& title, std::initializer_list<std::pair<Field, QString>> rows);
    void setField(Field field, const QString& text, const QString& toolTip = {});
    static QString formatLabel(const std::string& format);

    QStackedWidget* pages_ = nullptr;
    QWidget* emptyPage_ = nullptr;
    QWidget* modelPage_ = nullptr;
    QLabel* titleLabel_ = nullptr;
    QLabel* pathLabel_ = nullptr;
    QGroupBox* layersGroup_ = nullptr;
    QTableView* layerView_ = nullptr;
    LayerTableModel* layerModel_ = nullptr;
    QMap<Field, QLabel*> values_;
    std::optional<qpruner::ModelSummary> summary_;
};

} // namespace qpruner::ui
