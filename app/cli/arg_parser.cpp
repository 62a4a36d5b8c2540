#include "arg_parser.h"

#include <iostream>
#include <sstream>

namespace qpruner::cli {

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary))
{
    flag("help", "show this help and exit");
}

ArgParser& ArgParser::positional(const std::string& name, const std::string& help, bool required)
{
    positionals_.push_back({name, help, required});
    return *this;
}

ArgParser& ArgParser::option(const std::string& name, const std::string& valueName, const std::string& help,
                             std::optional<std::string> defaultValue)
{
    options_.push_back({name, valueName, help, std::move(defaultValue), false});
    return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help)
{
    options_.push_back({name, "", help, std::nullopt, true});
    return *this;
}

ArgParser& ArgParser::example(const std::string& line)
{
    examples_.push_back(line);
    return *this;
}

std::string ArgParser::usage() const
{
    std::ostringstream s;
    s << "usage: qpruner " << command_;
    for (const auto& p : positionals_)
        s << (p.required ? " " : " [") << p.name << (p.required ? "" : "]");
    s << " [options]\n\n" << summary_ << "\n";
    if (!positionals_.empty()) {
        s << "\narguments:\n";
        for (const auto& p : positionals_)
            s << "  " << p.name << std::string(p.name.size() < 22 ? 22 - p.name.size() : 1, ' ') << p.help << "\n";
    }
    s << "\noptions:\n";
    for (const auto& o : options_) {
        std::string left = "--" + o.name + (o.isFlag ? "" : " " + o.valueName);
        s << "  " << left << std::string(left.size() < 22 ? 22 - left.size() : 1, ' ') << o.help;
        if (o.defaultValue)
            s << " (default: " << (o.defaultValue->empty() ? "none" : *o.defaultValue) << ")";
        s << "\n";
    }
    if (!examples_.empty()) {
        s << "\nexamples:\n";
        for (const auto& e : examples_)
            s << "  " << e << "\n";
    }
    return s.str();
}

bool ArgParser::parse(const std::vector<std::string>& args)
{
    size_t pos = 0;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.size() > 2 && a.rfind("--", 0) == 0) {
            std::string name = a.substr(2), value;
            bool inlineValue = false;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
                inlineValue = true;
            }
            const Spec* spec = nullptr;
            for (const auto& o : options_)
                if (o.name == name)
                    spec = &o;
            if (!spec)
                throw UsageError("unknown option --" + name + " for '" + command_ + "'");
            if (spec->isFlag) {
                if (inlineValue)
                    throw UsageError("--" + name + " takes no value");
                flags_[name] = true;
                if (name == "help") {
                    std::cout << usage();
                    return false;
                }
                continue;
            }
            if (!inlineValue) {
                if (i + 1 >= args.size())
                    throw UsageError("--" + name + " needs a value (" + spec->valueName + ")");
                value = args[++i];
            }
            values_[name] = value;
        } else {
            if (pos >= positionals_.size())
                throw UsageError("unexpected argument '" + a + "' for '" + command_ + "'");
            values_[positionals_[pos++].name] = a;
        }
    }
    for (size_t p = pos; p < positionals_.size(); ++p)
        if (positionals_[p].required)
            throw UsageError("missing argument " + positionals_[p].name + " for '" + command_ + "'");
    for (const auto& o : options_)
        if (!o.isFlag && o.defaultValue && !values_.count(o.name))
            values_[o.name] = *o.defaultValue;
    return true;
}

bool ArgParser::has(const std::string& name) const
{
    auto it = values_.find(name);
    return it != values_.end() && !it->second.empty();
}

bool ArgParser::isSet(const std::string& name) const { return flags_.count(name) != 0; }

std::optional<std::string> ArgParser::find(const std::string& name) const
{
    auto it = values_.find(name);
    if (it == values_.end() || it->second.empty())
        return std::nullopt;
    return it->second;
}

std::string ArgParser::get(const std::string& name) const
{
    auto v = find(name);
    if (!v)
        throw UsageError("'" + command_ + "' needs --" + name);
    return *v;
}

int ArgParser::getInt(const std::string& name) const
{
    const int64_t v = getInt64(name);
    if (v < INT32_MIN || v > INT32_MAX)
        throw UsageError("--" + name + ": value out of range");
    return static_cast<int>(v);
}

int64_t ArgParser::getInt64(const std::string& name) const
{
    const std::string s = get(name);
    try {
        size_t used = 0;
        const long long v = std::stoll(s, &used);
        if (used != s.size())
            throw std::invalid_argument(s);
        return v;
    } catch (const std::exception&) {
        throw UsageError("--" + name + ": expected an integer, got '" + s + "'");
    }
}

double ArgParser::getDouble(const std::string& name) const
{
    const std::string s = get(name);
    try {
        size_t used = 0;
        const double v = std::stod(s, &used);
        if (used != s.size())
            throw std::invalid_argument(s);
        return v;
    } catch (const std::exception&) {
        throw UsageError("--" + name + ": expected a number, got '" + s + "'");
    }
}

nlohmann::json ArgParser::values() const
{
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, value] : values_)
        j[name] = value;
    for (const auto& [name, set] : flags_)
        if (set)
            j[name] = true;
    return j;
}

} // namespace qpruner::cli
