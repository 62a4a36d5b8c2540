// File > Export for the run on display: the editor's precision map (JSON), the run's config (JSON), the
// llama.cpp llama-quantize command for the editor's map, every trial as CSV, and the plots of the current tab
// as PNG / SVG / PDF. Asks for a file name, writes atomically, reports failures naming the file.
#pragma once

#include <QObject>

#include <functional>

class QAction;
class QMenu;
class QWidget;

namespace qpruner::ui {

class RunView;

class RunExporter : public QObject {
    Q_OBJECT

public:
    using ErrorPresenter = std::function<void(const QString& title, const QString& message)>;
    // Picks a file name; the default shows QFileDialog. Tests replace it.
    using FileChooser = std::function<QString(const QString& caption, const QString& suggestedName,
                                              const QString& filter)>;

    RunExporter(RunView& view, QWidget* parent);

    QMenu* menu() const { return menu_; }
    void setErrorPresenter(ErrorPresenter p) { presentError_ = std::move(p); }
    void setFileChooser(FileChooser c) { chooseFile_ = std::move(c); }

    // Each returns true when a file was written (false: cancelled, nothing to export, or an error shown).
    bool exportMap();
    bool exportConfig();
    bool exportLlamaCpp();
    bool exportTrialsCsv();
    bool exportPlots();

private:
    QString suggested(const QString& what, const QString& suffix) const;
    void fail(const QString& message) const;
    // Asks for a file name and writes `bytes` there atomically; false when cancelled or failed (shown).
    bool writeChosen(const QString& caption, const QString& suggestedName, const QString& filter,
                     const QByteArray& bytes);
    void updateEnabled();

    RunView& view_;
    QWidget* parentWidget_;
    QMenu* menu_ = nullptr;
    QAction* mapAction_ = nullptr;
    QAction* configAction_ = nullptr;
    QAction* llamaAction_ = nullptr;
    QAction* csvAction_ = nullptr;
    QAction* plotAction_ = nullptr;
    ErrorPresenter presentError_;
    FileChooser chooseFile_;
};

} // namespace qpruner::ui
