// SourcePicker: combo of built-ins + "File…", and a path row shown only for a file.
#include "newrun/source_picker.h"

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QToolButton>

namespace qpruner::ui {

SourcePicker::SourcePicker(const QStringList& builtIns, QWidget* parent) : QWidget(parent), builtIns_(builtIns)
{
    combo_ = new QComboBox;
    combo_->addItems(builtIns_);
    combo_->addItem(tr("File…"));
    path_ = new QLineEdit;
    path_->setPlaceholderText(tr("text, JSON or token file"));
    browse_ = new QToolButton;
    browse_->setText(tr("Browse…"));
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(combo_);
    layout->addWidget(path_, 1);
    layout->addWidget(browse_);
    connect(combo_, &QComboBox::currentIndexChanged, this, [this] {
        updateFileRow();
        Q_EMIT changed();
    });
    connect(path_, &QLineEdit::textChanged, this, &SourcePicker::changed);
    connect(browse_, &QToolButton::clicked, this, [this] {
        const QString file = QFileDialog::getOpenFileName(this, tr("Choose a data file"), path_->text());
        if (!file.isEmpty())
            path_->setText(file);
    });
    updateFileRow();
}

bool SourcePicker::isFile() const
{
    return combo_->currentIndex() == builtIns_.size();
}

QString SourcePicker::source() const
{
    return isFile() ? path_->text().trimmed() : combo_->currentText();
}

void SourcePicker::setSource(const QString& source)
{
    const int builtIn = int(builtIns_.indexOf(source));
    if (builtIn >= 0) {
        combo_->setCurrentIndex(builtIn);
    } else {
        path_->setText(source);
        combo_->setCurrentIndex(int(builtIns_.size()));
    }
    updateFileRow();
}

void SourcePicker::updateFileRow()
{
    path_->setVisible(isFile());
    browse_->setVisible(isFile());
}

} // namespace qpruner::ui
