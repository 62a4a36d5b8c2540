// A text source as the pipeline config names it: one of the built-in corpora ("tinystories", "wikitext2",
// "ptb", "alpaca") or a file. A combo box lists the built-ins plus "File…"; choosing the latter shows a path
// field with a Browse button. source() is exactly what goes into the config.
#pragma once

#include <QStringList>
#include <QWidget>

class QComboBox;
class QLineEdit;
class QToolButton;

namespace qpruner::ui {

class SourcePicker : public QWidget {
    Q_OBJECT

public:
    explicit SourcePicker(const QStringList& builtIns, QWidget* parent = nullptr);

    // A built-in name, or the file path (possibly empty while "File…" is chosen without one).
    QString source() const;
    void setSource(const QString& source);
    bool isFile() const;

    QComboBox* comboBox() const { return combo_; }
    QLineEdit* pathEdit() const { return path_; }

Q_SIGNALS:
    void changed();

private:
    void updateFileRow();

    QStringList builtIns_;
    QComboBox* combo_;
    QLineEdit* path_;
    QToolButton* browse_;
};

} // namespace qpruner::ui
