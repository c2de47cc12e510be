#pragma once
// Errors that reach the user as one line `bbt: error: ...`: usage errors exit 2, runtime errors 1.
#include <stdexcept>
#include <string>

namespace bbt {

// A runtime failure (bad data file, broken checkpoint, I/O error): exit code 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A usage or configuration error (unknown key, bad value, missing argument): exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

}  // namespace bbt
