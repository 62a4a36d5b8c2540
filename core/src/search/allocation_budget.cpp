// Memory budgets as text ("350MiB", "4.5bpw", "0.4x", "40%") and the allocation method names (allocation.h).
#include "qpruner/allocation.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "qpruner/error.h"

namespace qpruner {

namespace {

constexpr const char* kAcceptedForms =
    "expected a byte count (123456, 350KiB, 1.5MiB, 2GB), bits per weight (4.5bpw) or a fraction of the model "
    "in bf16 (0.4x, 40%)";

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Shortest text that reads back as `v` ("4.5", "0.125").
std::string shortest(double v)
{
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
}

struct Unit {
    const char* name;
    BudgetUnit unit;
    long double scale;
};

constexpr Unit kUnits[] = {
    {"", BudgetUnit::Bytes, 1.0L},
    {"b", BudgetUnit::Bytes, 1.0L},
    {"kb", BudgetUnit::Bytes, 1e3L},
    {"mb", BudgetUnit::Bytes, 1e6L},
    {"gb", BudgetUnit::Bytes, 1e9L},
    {"tb", BudgetUnit::Bytes, 1e12L},
    {"kib", BudgetUnit::Bytes, 1024.0L},
    {"mib", BudgetUnit::Bytes, 1024.0L * 1024.0L},
    {"gib", BudgetUnit::Bytes, 1024.0L * 1024.0L * 1024.0L},
    {"tib", BudgetUnit::Bytes, 1024.0L * 1024.0L * 1024.0L * 1024.0L},
    {"bpw", BudgetUnit::BitsPerWeight, 1.0L},
    {"x", BudgetUnit::Fraction, 1.0L},
    {"%", BudgetUnit::Fraction, 0.01L},
};

} // namespace

std::string MemoryBudget::text() const
{
    switch (unit) {
    case BudgetUnit::Bytes:
        if (value >= 0 && value < 9.0e15 && value == std::floor(value)) {
            char buf[64];
            std::snprintf(buf, sizeof(buf), "%.0f B", value);
            return buf;
        }
        return shortest(value) + " B";
    case BudgetUnit::BitsPerWeight: return shortest(value) + " bpw";
    case BudgetUnit::Fraction: {
        std::string s = shortest(value);
        if (s.find_first_of("eE") == std::string::npos) {
            const auto dot = s.find('.');
            if (dot == std::string::npos)
                s += ".00";
            else if (s.size() - dot - 1 < 2)
                s += std::string(2 - (s.size() - dot - 1), '0');
        }
        return s + "x";
    }
    }
    return shortest(value);
}

MemoryBudget parseBudget(std::string_view text)
{
    const auto fail = [&](const std::string& why) {
        return ConfigError("budget '" + std::string(text) + "' " + why + " (" + kAcceptedForms + ")");
    };
    const std::string_view s = trim(text);
    if (s.empty())
        throw fail("is empty");
    if (s.front() == '-')
        throw fail("must be positive");
    // A plain decimal number: digits [. digits] [e [+-] digits]; no sign, no hex, no inf/nan.
    size_t i = 0;
    size_t digits = 0;
    while (i < s.size() && isDigit(s[i]))
        ++i, ++digits;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && isDigit(s[i]))
            ++i, ++digits;
    }
    if (digits == 0)
        throw fail("does not start with a number");
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < s.size() && (s[j] == '+' || s[j] == '-'))
            ++j;
        if (j < s.size() && isDigit(s[j])) {
            while (j < s.size() && isDigit(s[j]))
                ++j;
            i = j;
        }
    }
    double number = 0;
    const auto r = std::from_chars(s.data(), s.data() + i, number, std::chars_format::general);
    if (r.ec == std::errc::result_out_of_range || !std::isfinite(number))
        throw fail("is out of range");
    if (r.ec != std::errc() || r.ptr != s.data() + i)
        throw fail("does not start with a number");
    const std::string unitText = lower(trim(s.substr(i)));
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits)
        if (unitText == u.name)
            unit = &u;
    if (!unit)
        throw fail("has an unknown unit '" + std::string(trim(s.substr(i))) + "'");
    if (!(number > 0))
        throw fail("must be positive");

    MemoryBudget b;
    b.unit = unit->unit;
    // Percent divides in double (correctly rounded: "40%" is exactly the double 0.4, like "0.4x").
    long double v = unit->scale == 0.01L ? static_cast<long double>(number / 100.0)
                                         : static_cast<long double>(number) * unit->scale;
    if (b.unit == BudgetUnit::Bytes) {
        // "1.1kB" is 1100 bytes even though 1.1 is not exact in binary; other fractions round down.
        const long double nearest = std::nearbyint(v);
        v = std::fabs(v - nearest) <= 1e-9L * std::max(1.0L, v) ? nearest : std::floor(v);
        if (v < 1)
            throw fail("must be positive (at least one byte)");
    }
    b.value = static_cast<double>(v);
    if (!std::isfinite(b.value))
        throw fail("is out of range");
    return b;
}

AllocationMethod parseAllocationMethod(const std::string& name)
{
    const std::string n = lower(name);
    for (AllocationMethod m : {AllocationMethod::Greedy, AllocationMethod::Probabilistic, AllocationMethod::Uniform,
                               AllocationMethod::Random, AllocationMethod::ApRatio})
        if (n == allocationMethodName(m))
            return m;
    throw ConfigError("unknown allocation method '" + name +
                      "' (expected one of greedy, probabilistic, uniform, random, ap-ratio)");
}

std::string allocationMethodName(AllocationMethod m)
{
    switch (m) {
    case AllocationMethod::Greedy: return "greedy";
    case AllocationMethod::Probabilistic: return "probabilistic";
    case AllocationMethod::Uniform: return "uniform";
    case AllocationMethod::Random: return "random";
    case AllocationMethod::ApRatio: return "ap-ratio";
    }
    return "?";
}

} // namespace qpruner
