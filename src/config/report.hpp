// What validation finds: errors (which fail the parse, all reported together) and diagnostics
// (warnings and notes kept on the config and returned by ds_config_query_diagnostics).
#pragma once

#include <string>
#include <vector>

#include "dsabi.h"

namespace ds::config {

enum class Severity { Info, Warning };

// Diagnostic kinds (the "kind" member of ds_config_query_diagnostics).
namespace kind {
inline constexpr const char* kUnknownKey = "unknown_key";
inline constexpr const char* kDeprecated = "deprecated";
inline constexpr const char* kUnsupported = "unsupported";
inline constexpr const char* kAuto = "auto";
inline constexpr const char* kBatch = "batch";
inline constexpr const char* kWorldSize = "world_size";
inline constexpr const char* kIneffective = "ineffective";
inline constexpr const char* kValue = "value";
}  // namespace kind

struct Diagnostic {
    Severity severity;
    std::string kind;
    std::string path;
    std::string message;
};

struct Problem {
    ds_status_t status;
    std::string path;  // "" for problems of the whole text (syntax errors)
    std::string message;
};

class Report {
public:
    void error(ds_status_t status, std::string path, std::string message);
    void warning(const char* kind, std::string path, std::string message);
    void info(const char* kind, std::string path, std::string message);

    bool has_errors() const { return !problems_.empty(); }
    const std::vector<Problem>& problems() const { return problems_; }
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
    std::vector<Diagnostic> take_diagnostics() { return std::move(diagnostics_); }

    // The status of all problems: their common status, or DS_ERR_CONFIG when they differ.
    ds_status_t status() const;
    // Throw one ds::Error listing every problem, one per line, each starting with its key path.
    // origin (a file name) is put in front when not empty.
    [[noreturn]] void raise(const std::string& origin) const;

private:
    std::vector<Problem> problems_;
    std::vector<Diagnostic> diagnostics_;
};

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string join_path(const std::string& parent, const std::string& key);

}  // namespace ds::config
