#include "export_report.h"

#include <cstdio>

#include "cli_context.h"

namespace qpruner::cli {

nlohmann::json exportReportJson(const ExportPlan& plan, bool dryRun)
{
    nlohmann::json j = exportPlanJson(plan);
    j["dry_run"] = dryRun;
    return j;
}

void printExportReport(const ExportPlan& plan, bool dryRun, const std::string& out)
{
    std::printf("%-44s %-16s %-8s %-8s %12s\n", "tensor", "shape", "map", "type", "bytes");
    for (const ExportTensor& t : plan.tensors) {
        std::string shape;
        for (const int64_t d : t.shape) {
            if (!shape.empty())
                shape += 'x';
            shape += std::to_string(d);
        }
        std::printf("%-44s %-16s %-8s %-8s %12s%s%s\n", t.name.c_str(), shape.c_str(), t.source.c_str(),
                    t.type.c_str(), withThousands(t.bytes).c_str(), t.note.empty() ? "" : "  ", t.note.c_str());
    }
    for (const std::string& w : plan.warnings)
        std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("%s %s (%s): %s, %s bytes, %s parameters, %.3f bits per weight\n", dryRun ? "would write" : "wrote",
                out.c_str(), plan.architecture.c_str(), humanBytes(plan.totalBytes).c_str(),
                withThousands(plan.totalBytes).c_str(), withThousands(plan.parameterCount).c_str(),
                plan.bitsPerWeight);
}

} // namespace qpruner::cli
