// Start-up of qpruner-studio, kept out of main() so that it is compiled and warned about with the library.
#pragma once

class QApplication;

namespace qpruner::ui {

// Before QApplication exists: picks the "offscreen" platform when there is no display and the command
// only prints (--help, --version) or renders (--screenshot), so those work on headless machines.
void selectHeadlessPlatformIfNeeded(int argc, char** argv);

// Parses `qpruner-studio [MODEL] [--screenshot FILE]`, shows the main window and runs the event loop.
// Returns the process exit code.
int runStudio(QApplication& app);

} // namespace qpruner::ui
