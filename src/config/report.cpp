#include "config/report.hpp"

#include "core/error.hpp"

namespace ds::config {

void Report::error(ds_status_t status, std::string path, std::string message) {
    problems_.push_back(Problem{status, std::move(path), std::move(message)});
}

void Report::warning(const char* kind, std::string path, std::string message) {
    diagnostics_.push_back(Diagnostic{Severity::Warning, kind, std::move(path), std::move(message)});
}

void Report::info(const char* kind, std::string path, std::string message) {
    diagnostics_.push_back(Diagnostic{Severity::Info, kind, std::move(path), std::move(message)});
}

ds_status_t Report::status() const {
    if (problems_.empty()) return DS_OK;
    ds_status_t s = problems_.front().status;
    for (const Problem& p : problems_)
        if (p.status != s) return DS_ERR_CONFIG;
    return s;
}

void Report::raise(const std::string& origin) const {
    auto line = [](const Problem& p) { return p.path.empty() ? p.message : p.path + ": " + p.message; };
    std::string msg = origin.empty() ? std::string() : origin + ": ";
    if (problems_.size() == 1) {
        msg += line(problems_.front());
    } else {
        msg += std::to_string(problems_.size()) + " problems in the config:";
        for (const Problem& p : problems_) msg += "\n  " + line(p);
    }
    throw Error(status(), std::move(msg));
}

std::string join_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

}  // namespace ds::config
