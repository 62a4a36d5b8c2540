// What `qpruner export` and `qpruner trial export` print of an export plan: its JSON (--json) and the table of
// every tensor's type and bytes with the total.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "qpruner/model_export.h"

namespace qpruner::cli {

nlohmann::json exportReportJson(const ExportPlan& plan, bool dryRun);
void printExportReport(const ExportPlan& plan, bool dryRun, const std::string& out);

} // namespace qpruner::cli
