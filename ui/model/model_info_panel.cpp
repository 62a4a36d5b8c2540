// ModelInfoPanel: layout and formatting of the model overview.
#include "model/model_info_panel.h"

#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>

#include "common/number_format.h"
#include "common/studio_identity.h"
#include "model/layer_table_model.h"

namespace qpruner::ui {

namespace {

QString yesNo(bool value)
{
    return value ? ModelInfoPanel::tr("yes") : ModelInfoPanel::tr("no");
}

} // namespace

ModelInfoPanel::ModelInfoPanel(QWidget* parent) : QWidget(parent)
{
    layerModel_ = new LayerTableModel(this);
    pages_ = new QStackedWidget(this);
    emptyPage_ = createEmptyPage();
    modelPage_ = createModelPage();
    pages_->addWidget(emptyPage_);
    pages_->addWidget(modelPage_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(pages_);
    clear();
}

QWidget* ModelInfoPanel::createEmptyPage()
{
    auto* page = new QWidget(this);
    auto* icon = new QLabel(page);
    icon->setPixmap(studioIcon().pixmap(96, 96));
    icon->setAlignment(Qt::AlignCenter);
    auto* title = new QLabel(tr("No model open"), page);
    QFont big = title->font();
    big.setPointSizeF(big.pointSizeF() * 1.4);
    big.setBold(true);
    title->setFont(big);
    title->setAlignment(Qt::AlignCenter);
    auto* hint = new QLabel(tr("Open a llama2.c checkpoint with File \u25b8 Open Model... (Ctrl+O),\n"
                               "a Hugging Face or QPruner model directory with File \u25b8 Open Model Directory... "
                               "(Ctrl+Shift+O),\nor drop either onto this window."),
                            page);
    hint->setAlignment(Qt::AlignCenter);
    hint->setForegroundRole(QPalette::PlaceholderText); // greyed by the style, no hard-coded colour
    auto* layout = new QVBoxLayout(page);
    layout->addStretch(2);
    layout->addWidget(icon);
    layout->addSpacing(8);
    layout->addWidget(title);
    layout->addWidget(hint);
    layout->addStretch(3);
    return page;
}

QGroupBox* ModelInfoPanel::createGroup(const QString& title,
                                       std::initializer_list<std::pair<Field, QString>> rows)
{
    auto* group = new QGroupBox(title, this);
    auto* form = new QFormLayout(group);
    form->setLabelAlignment(Qt::AlignLeft);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->setHorizontalSpacing(16);
    for (const auto& [field, label] : rows) {
        auto* value = new QLabel(group);
        value->setTextInteractionFlags(Qt::TextSelectableByMouse);
        values_.insert(field, value);
        form->addRow(label + QLatin1Char(':'), value);
    }
    return group;
}

QWidget* ModelInfoPanel::createModelPage()
{
    auto* page = new QWidget(this);

    titleLabel_ = new QLabel(page);
    QFont titleFont = titleLabel_->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.5);
    titleFont.setBold(true);
    titleLabel_->setFont(titleFont);
    titleLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    // Long paths must not force the window wider: the label may shrink and the tooltip has the full text.
    pathLabel_ = new QLabel(page);
    pathLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    pathLabel_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    pathLabel_->setForegroundRole(QPalette::PlaceholderText);
    values_.insert(Field::Path, pathLabel_);

    auto* checkpoint = createGroup(tr("Checkpoint"), {
                                                         {Field::Format, tr("Format")},
                                                         {Field::Dtype, tr("Weight dtype")},
                                                         {Field::TotalParameters, tr("Parameters")},
                                                         {Field::WeightBytes, tr("Weights")},
                                                         {Field::LayerCount, tr("Decoder layers")},
                                                         {Field::LayerShapes, tr("Layer shapes")},
                                                     });
    auto* architecture = createGroup(tr("Architecture"), {
                                                             {Field::Architecture, tr("Architecture")},
                                                             {Field::HiddenSize, tr("Hidden size")},
                                                             {Field::HeadDim, tr("Head dim")},
                                                             {Field::VocabSize, tr("Vocabulary")},
                                                             {Field::MaxSeqLen, tr("Max sequence length")},
                                                             {Field::SpecialTokens, tr("BOS / EOS ids")},
                                                         });
    auto* attention = createGroup(tr("Attention and normalisation"), {
                                                                         {Field::RopeTheta, tr("RoPE theta")},
                                                                         {Field::RopeScaling, tr("RoPE scaling")},
                                                                         {Field::NormEps, tr("RMSNorm eps")},
                                                                         {Field::TiedEmbeddings, tr("Tied embeddings")},
                                                                         {Field::AttentionBias, tr("Attention bias")},
                                                                         {Field::FamilyFeatures, tr("Family features")},
                                                                     });

    layerView_ = new QTableView(page);
    layerView_->setModel(layerModel_);
    layerView_->setAlternatingRowColors(true);
    layerView_->setSelectionBehavior(QAbstractItemView::SelectRows);
    layerView_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    layerView_->setWordWrap(false);
    layerView_->verticalHeader()->hide();
    layerView_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    layerView_->horizontalHeader()->setHighlightSections(false);

    layersGroup_ = new QGroupBox(tr("Decoder layers"), page);
    auto* layersLayout = new QVBoxLayout(layersGroup_);
    layersLayout->addWidget(layerView_);

    auto* header = new QVBoxLayout;
    header->setSpacing(2);
    header->addWidget(titleLabel_);
    header->addWidget(pathLabel_);

    auto* groups = new QHBoxLayout;
    groups->addWidget(checkpoint, 1);
    groups->addWidget(architecture, 1);
    groups->addWidget(attention, 1);

    auto* layout = new QVBoxLayout(page);
    layout->setContentsMargins(12, 12, 12, 12);
    layout->setSpacing(12);
    layout->addLayout(header);
    layout->addLayout(groups);
    layout->addWidget(layersGroup_, 1);
    return page;
}

QString ModelInfoPanel::formatLabel(const std::string& format)
{
    if (format == "llama2c")
        return tr("llama2.c checkpoint (llama2c)");
    if (format == "hf")
        return tr("Hugging Face safetensors (hf)");
    if (format == "native")
        return tr("QPruner native (native)");
    return QString::fromStdString(format);
}

void ModelInfoPanel::setField(Field field, const QString& text, const QString& toolTip)
{
    QLabel* label = values_.value(field);
    Q_ASSERT(label);
    label->setText(text);
    label->setToolTip(toolTip);
}

void ModelInfoPanel::setSummary(const qpruner::ModelSummary& summary)
{
    summary_ = summary;
    const qpruner::ModelConfig& c = summary.config;
    const QString path = QString::fromStdU16String(summary.path.u16string());
    const QFileInfo info(path);

    titleLabel_->setText(info.fileName().isEmpty() ? path : info.fileName());
    setField(Field::Path, path, path);
    setField(Field::Format, formatLabel(summary.format));
    setField(Field::Dtype, QString::fromStdString(summary.dtype));
    setField(Field::TotalParameters, formatParameterCount(summary.parameterCount),
             c.tiedEmbeddings ? tr("The output head shares the embedding matrix and is counted once") : QString());
    setField(Field::WeightBytes, formatBytesExact(summary.weightBytes));
    setField(Field::LayerCount, formatCount(c.numLayers()));
    setField(Field::LayerShapes, c.homogeneous() ? tr("uniform") : tr("vary per layer (pruned)"));

    setField(Field::Architecture, QString::fromStdString(c.architecture));
    setField(Field::HiddenSize, formatCount(c.hiddenSize));
    setField(Field::HeadDim, formatCount(c.headDim));
    setField(Field::VocabSize, formatCount(c.vocabSize));
    setField(Field::MaxSeqLen, formatCount(c.maxSeqLen));
    setField(Field::SpecialTokens, QStringLiteral("%1 / %2").arg(c.bosId).arg(c.eosId));

    setField(Field::RopeTheta, formatReal(c.ropeTheta));
    const auto& rs = c.ropeScaling;
    if (rs.type == "none")
        setField(Field::RopeScaling, tr("none"));
    else
        setField(Field::RopeScaling, QStringLiteral("%1 \u00d7%2").arg(QString::fromStdString(rs.type), formatReal(rs.factor)),
                 rs.type == "llama3" ? tr("low-frequency factor %1, high-frequency factor %2, original context %3")
                                           .arg(formatReal(rs.lowFreqFactor), formatReal(rs.highFreqFactor),
                                                formatCount(rs.originalMaxPositions))
                                     : tr("every RoPE frequency divided by the factor"));
    setField(Field::NormEps, formatReal(c.normEps));
    setField(Field::TiedEmbeddings, yesNo(c.tiedEmbeddings));
    setField(Field::AttentionBias, yesNo(c.attentionBias));
    QStringList features;
    for (const std::string& f : c.familyFeatures())
        features << QString::fromStdString(f);
    setField(Field::FamilyFeatures, features.isEmpty() ? tr("none (the LLaMA decoder)") : features.join(QStringLiteral(", ")),
             tr("What this model family adds to the LLaMA decoder (config.json's model_type %1)")
                 .arg(QString::fromStdString(c.architecture)));

    layerModel_->setConfig(c);
    layersGroup_->setTitle(tr("Decoder layers (%1)").arg(c.numLayers()));
    pages_->setCurrentWidget(modelPage_);
}

void ModelInfoPanel::clear()
{
    summary_.reset();
    for (QLabel* label : std::as_const(values_)) {
        label->clear();
        label->setToolTip({});
    }
    titleLabel_->clear();
    layerModel_->clear();
    pages_->setCurrentWidget(emptyPage_);
}

QString ModelInfoPanel::fieldText(Field field) const
{
    const QLabel* label = values_.value(field);
    return label ? label->text() : QString();
}

} // namespace qpruner::ui
