// A small command-line parser for the `qpruner` subcommands (no Qt in the CLI): declared options with help
// text and defaults, `--opt value` and `--opt=value`, flags, positionals, and usage errors that name the option.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qpruner::cli {

// Thrown for bad command lines; main prints it with the usage hint and exits with status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ArgParser {
public:
    ArgParser(std::string command, std::string summary);

    ArgParser& positional(const std::string& name, const std::string& help, bool required = true);
    ArgParser& option(const std::string& name, const std::string& valueName, const std::string& help,
                      std::optional<std::string> defaultValue = std::nullopt);
    ArgParser& flag(const std::string& name, const std::string& help);
    ArgParser& example(const std::string& line);

    // Returns false when --help was given (usage already printed to stdout).
    bool parse(const std::vector<std::string>& args);

    std::string usage() const;

    bool has(const std::string& name) const;          // option given or defaulted
    bool isSet(const std::string& flagName) const;    // flag given
    std::string get(const std::string& name) const;   // option/positional value; throws UsageError if absent
    std::optional<std::string> find(const std::string& name) const;
    int getInt(const std::string& name) const;
    int64_t getInt64(const std::string& name) const;
    double getDouble(const std::string& name) const;
    // Every option and positional with a value (given or defaulted) and every flag given: {"name": "value"
    // or true}. With the command, it reproduces the invocation (what a run records as its config).
    nlohmann::json values() const;

private:
    struct Spec {
        std::string name, valueName, help;
        std::optional<std::string> defaultValue;
        bool isFlag = false;
    };
    struct Positional {
        std::string name, help;
        bool required = true;
    };
    std::string command_, summary_;
    std::vector<Spec> options_;
    std::vector<Positional> positionals_;
    std::vector<std::string> examples_;
    std::map<std::string, std::string> values_;
    std::map<std::string, bool> flags_;
};

} // namespace qpruner::cli
