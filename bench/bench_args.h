// The benchmarks' tiny command line: `--name value` options and comma-separated lists.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace qpruner::bench {

inline std::vector<std::string> split(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty())
            out.push_back(item);
    return out;
}

inline std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback)
{
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == "--" + name)
            return argv[i + 1];
    return fallback;
}

} // namespace qpruner::bench
