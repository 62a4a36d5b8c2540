// qpruner db copy --from A --to B: a whole store from one engine to the other (SQLite file <-> PostgreSQL).
#include <cstdio>
#include <iostream>

#include "cli_context.h"
#include "commands.h"
#include "qpruner/store.h"

namespace qpruner::cli {

int runDb(const Args& args)
{
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: qpruner db copy --from STORE --to STORE [--json]\n\n"
                     "Copies every experiment, run, stage, layer score, trial and artifact record, ids and values\n"
                     "exactly, into an empty store: an SQLite file to postgresql://user@host/db (to spread a study\n"
                     "over a cluster) and back (to take it home). Artifacts' files are not moved, only their records.\n";
        return args.empty() ? 2 : 0;
    }
    if (args[0] != "copy")
        throw UsageError("unknown action '" + args[0] + "': expected copy");
    ArgParser p("db copy", "Copies a whole store into an empty one (SQLite <-> PostgreSQL).");
    p.option("from", "STORE", "the store to read (file or postgresql:// URL)");
    p.option("to", "STORE", "the empty store to write (created when absent)");
    p.flag("json", "print the rows copied per table as one JSON object");
    if (!p.parse(Args(args.begin() + 1, args.end())))
        return 0;
    store::OpenOptions ro;
    ro.readOnly = true;
    const store::Store from(p.get("from"), ro);
    store::Store to(p.get("to"));
    const auto counts = store::copyStore(from, to);
    if (p.isSet("json")) {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [table, n] : counts)
            j[table] = n;
        printJson(j);
        return 0;
    }
    for (const auto& [table, n] : counts)
        std::printf("%-13s %10lld rows\n", table.c_str(), static_cast<long long>(n));
    std::printf("copied %s to %s\n", p.get("from").c_str(), p.get("to").c_str());
    return 0;
}

} // namespace qpruner::cli
