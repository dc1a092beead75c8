// The C boundary: every extern "C" function in src/capi/ runs its body through ds::capi::guard,
// which turns any C++ exception into a status and a thread-local message prefixed with the
// function's name. Handle arguments are checked with check_handle before use.
#pragma once

#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "core/error.hpp"
#include "core/handles.hpp"
#include "core/log.hpp"

namespace ds::capi {

inline ds_status_t report(const char* fn, ds_status_t status, const char* what) noexcept {
    try {
        set_last_error(std::string(fn) + ": " + what);
        log(DS_LOG_DEBUG, "%s failed (%s): %s", fn, ds_status_str(status), what);
    } catch (...) {
    }
    return status;
}

// Run body; its return value (void, or a non-negative ds_status_t) is the result on success.
template <class F>
ds_status_t guard(const char* fn, F&& body) noexcept {
    try {
        if constexpr (std::is_void_v<decltype(body())>) {
            body();
            return DS_OK;
        } else {
            return body();
        }
    } catch (const Error& e) {
        return report(fn, e.status(), e.what());
    } catch (const std::bad_alloc&) {
        return report(fn, DS_ERR_NOMEM, "out of host memory");
    } catch (const std::system_error& e) {
        return report(fn, DS_ERR_IO, e.what());
    } catch (const std::exception& e) {
        return report(fn, DS_ERR_INTERNAL, e.what());
    } catch (...) {
        return report(fn, DS_ERR_UNKNOWN, "unknown exception");
    }
}

// Check that h is a live handle of type H (H::kMagic); throw DS_ERR_INVALID_HANDLE otherwise.
template <class H>
H* check_handle(const H* h, const char* arg_name) {
    if (!h) fail(DS_ERR_INVALID_HANDLE, "%s is NULL", arg_name);
    if (!handle_is_live(h, H::kMagic))
        fail(DS_ERR_INVALID_HANDLE, "%s=%p is not a live %s (destroyed, or a handle of another type)", arg_name,
             static_cast<const void*>(h), H::kTypeName);
    return const_cast<H*>(h);
}

// Throw DS_ERR_INVALID_ARG if an output pointer is NULL.
template <class T>
void check_out(T* p, const char* arg_name) {
    if (!p) fail(DS_ERR_INVALID_ARG, "%s is NULL (an output pointer is required)", arg_name);
}

// Register a freshly created handle object and return it.
template <class H>
H* publish(H* h) {
    handle_register(h, H::kMagic);
    return h;
}

// Unregister and delete a handle; NULL and non-live pointers are ignored (destroy is NULL-safe).
template <class H>
void retire(H* h) noexcept {
    if (!h || !handle_is_live(h, H::kMagic)) return;
    handle_unregister(h);
    delete h;
}

}  // namespace ds::capi
