#include "config/config.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config/reader.hpp"
#include "config/schema.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace ds::config {

namespace {

// Files are read whole; refuse anything this large (and endless files such as /dev/zero).
constexpr size_t kMaxFileBytes = size_t{64} << 20;

// Problems in these keys make the batch rule meaningless; it is skipped then.
bool batch_inputs_ok(const Report& report) {
    for (const Problem& p : report.problems())
        if (p.path == "train_batch_size" || p.path == "train_micro_batch_size_per_gpu" ||
            p.path == "gradient_accumulation_steps" || p.path == "sequence_parallel_size")
            return false;
    return true;
}

void log_diagnostics(const std::vector<Diagnostic>& diagnostics, const std::string& origin) {
    const std::string prefix = origin.empty() ? "config" : "config " + origin;
    for (const Diagnostic& d : diagnostics) {
        const int32_t level = d.severity == Severity::Warning ? DS_LOG_WARN : DS_LOG_INFO;
        if (d.path.empty())
            log(level, "%s: %s [%s]", prefix.c_str(), d.message.c_str(), d.kind.c_str());
        else
            log(level, "%s: %s: %s [%s]", prefix.c_str(), d.path.c_str(), d.message.c_str(), d.kind.c_str());
    }
}

}  // namespace

std::string Config::diagnostics_json() const {
    Value list = Value::array();
    for (const Diagnostic& d : diagnostics_) {
        Value item = Value::object();
        item.set("severity", Value::string(d.severity == Severity::Warning ? "warning" : "info"));
        item.set("kind", Value::string(d.kind));
        item.set("path", Value::string(d.path));
        item.set("message", Value::string(d.message));
        list.push(std::move(item));
    }
    return list.to_json(-1);
}

std::shared_ptr<const Config> parse(std::string_view text, const Options& options, const std::string& origin) {
    Report report;
    Value input;
    try {
        input = read_json(text, report);
    } catch (const Error& e) {
        if (origin.empty()) throw;
        throw Error(e.status(), origin + ": " + e.what());
    }
    if (report.has_errors()) report.raise(origin);

    Ctx ctx{report, options.strict, options.accept_auto};
    Value root = normalise_block(root_block(), input, "", ctx);

    const Value* sp = root.find("sequence_parallel_size");
    World world = resolve_world(options.world_size, sp && sp->is_integer() ? sp->as_int() : 1, report);
    if (batch_inputs_ok(report)) apply_batch_rule(root, world, report);
    if (report.has_errors()) report.raise(origin);

    std::vector<Diagnostic> diagnostics = report.take_diagnostics();
    log_diagnostics(diagnostics, origin);
    return std::make_shared<const Config>(std::move(root), std::move(diagnostics), std::move(world));
}

std::shared_ptr<const Config> load_file(const std::string& path, const Options& options) {
    struct Closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, Closer> f(std::fopen(path.c_str(), "rb"));
    if (!f) fail(DS_ERR_IO, "%s: cannot open: %s", path.c_str(), std::strerror(errno));
    std::string text;
    char buf[65536];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
        text.append(buf, n);
        if (text.size() > kMaxFileBytes)
            fail(DS_ERR_IO, "%s: larger than %zu MiB; that is not a DeepSpeed config", path.c_str(), kMaxFileBytes >> 20);
    }
    if (std::ferror(f.get())) fail(DS_ERR_IO, "%s: cannot read: %s", path.c_str(), std::strerror(errno));
    return parse(text, options, path);
}

}  // namespace ds::config
