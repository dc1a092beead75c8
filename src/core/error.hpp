// Internal error type and the thread-local last-error message.
//
// Inside dsabi, failures are thrown as ds::Error (a status and a message). The guard in
// src/capi/guard.hpp catches them at the C boundary, stores the message for ds_last_error() and
// returns the status. Nothing else may cross the boundary.
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

#include "dsabi.h"

namespace ds {

class Error : public std::runtime_error {
public:
    Error(ds_status_t status, std::string message) : std::runtime_error(std::move(message)), status_(status) {}
    ds_status_t status() const noexcept { return status_; }

private:
    ds_status_t status_;
};

// printf-style string formatting.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vformat(const char* fmt, va_list ap);

// Throw ds::Error(status, formatted message).
[[noreturn]] void fail(ds_status_t status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Thread-local last error of the calling thread.
void set_last_error(const std::string& message);
const char* last_error() noexcept;
void clear_last_error() noexcept;

}  // namespace ds
