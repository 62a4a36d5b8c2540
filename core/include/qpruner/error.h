// Typed errors of the core. Every message names the file, field or option at fault and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace qpruner {

// Base of all errors the core throws on purpose. The CLI prints what() and exits non-zero; the GUI shows it.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A file is missing, unreadable or shorter than its header says.
class FileError : public Error {
public:
    using Error::Error;
};

// A file was read but its content is wrong: bad JSON, unknown dtype, missing tensor, wrong shape.
class FormatError : public Error {
public:
    using Error::Error;
};

// An option or configuration value is invalid (bad ratio, unknown device, impossible budget).
class ConfigError : public Error {
public:
    using Error::Error;
};

// Long work stopped because its CancelToken was triggered.
class CancelledError : public Error {
public:
    CancelledError() : Error("cancelled") {}
};

} // namespace qpruner
