// ds-config: check DeepSpeed config files, or show them normalised with every default filled in.
// Uses only the public API of libdsabi (dsabi.h).
#include <dsabi.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char* const kUsage =
    "usage: ds-config check FILE... [--world-size N] [--strict] [--no-auto] [--json] [-v]\n"
    "       ds-config show FILE... [--world-size N] [--strict] [--no-auto] [--json]\n"
    "\n"
    "Validate DeepSpeed JSON configs (comments and trailing commas allowed) the way dsabi reads them.\n"
    "\n"
    "commands:\n"
    "  check          print \"OK <file>\" and its warnings, or \"FAIL <file>\" and every problem found\n"
    "  show           print the normalised config: deprecated keys migrated, \"auto\" resolved, the batch\n"
    "                 sizes derived and every default (DeepSpeed 0.19.6) filled in\n"
    "\n"
    "options:\n"
    "  --world-size N data-parallel world size for the batch-size rule (default: $WORLD_SIZE,\n"
    "                 $OMPI_COMM_WORLD_SIZE, $SLURM_NTASKS, else 1)\n"
    "  --strict       unknown top-level keys and features dsabi does not implement are errors\n"
    "  --no-auto      \"auto\" values are errors instead of meaning \"use the default\"\n"
    "  --json         check: one JSON report for all files; show: compact JSON\n"
    "  -v, --verbose  check: also print notes (info diagnostics such as resolved \"auto\" values)\n"
    "  -h, --help     this text\n"
    "  --version      the dsabi version\n"
    "\n"
    "exit status: 0 every file is valid, 1 a file is invalid or unreadable, 2 usage error\n";

struct Args {
    std::string command;
    std::vector<std::string> files;
    int32_t world_size = 0;
    bool strict = false;
    bool accept_auto = true;
    bool json = false;
    bool verbose = false;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "ds-config: %s\n\n%s", message.c_str(), kUsage);
    std::exit(2);
}

int32_t parse_world_size(const std::string& text) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || errno != 0 || *end != '\0' || v < 1 || v > INT32_MAX)
        usage_error("--world-size needs a positive integer, got \"" + text + "\"");
    return static_cast<int32_t>(v);
}

Args parse_args(int argc, char** argv) {
    Args a;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (!options_done && arg.size() > 1 && arg[0] == '-') {
            if (arg == "--") {
                options_done = true;
            } else if (arg == "-h" || arg == "--help") {
                std::fputs(kUsage, stdout);
                std::exit(0);
            } else if (arg == "--version") {
                std::printf("ds-config (dsabi) %s\n", ds_version_string());
                std::exit(0);
            } else if (arg == "--world-size") {
                if (i + 1 >= argc) usage_error("--world-size needs a value");
                a.world_size = parse_world_size(argv[++i]);
            } else if (arg.rfind("--world-size=", 0) == 0) {
                a.world_size = parse_world_size(arg.substr(std::strlen("--world-size=")));
            } else if (arg == "--strict") {
                a.strict = true;
            } else if (arg == "--no-auto") {
                a.accept_auto = false;
            } else if (arg == "--json") {
                a.json = true;
            } else if (arg == "-v" || arg == "--verbose") {
                a.verbose = true;
            } else {
                usage_error("unknown option " + arg);
            }
        } else if (a.command.empty()) {
            a.command = arg;
        } else {
            a.files.push_back(arg);
        }
    }
    if (a.command.empty()) usage_error("no command given");
    if (a.command != "check" && a.command != "show") usage_error("unknown command \"" + a.command + "\"");
    if (a.files.empty()) usage_error("no config file given");
    return a;
}

// ---- a small reader for the diagnostics JSON (an array of objects with string members) ---------

struct Diag {
    std::string severity, kind, path, message;
};

class DiagReader {
public:
    explicit DiagReader(const char* text) : p_(text) {}

    std::vector<Diag> read() {
        std::vector<Diag> out;
        skip();
        if (!eat('[')) return out;
        skip();
        if (eat(']')) return out;
        do {
            skip();
            if (!eat('{')) return out;
            Diag d;
            skip();
            if (!eat('}')) {
                do {
                    skip();
                    std::string key = str();
                    skip();
                    eat(':');
                    skip();
                    std::string value = str();
                    if (key == "severity") d.severity = value;
                    if (key == "kind") d.kind = value;
                    if (key == "path") d.path = value;
                    if (key == "message") d.message = value;
                    skip();
                } while (eat(','));
                eat('}');
            }
            out.push_back(d);
            skip();
        } while (eat(','));
        return out;
    }

private:
    void skip() {
        while (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r') ++p_;
    }
    bool eat(char c) {
        if (*p_ != c) return false;
        ++p_;
        return true;
    }
    std::string str() {
        std::string s;
        if (!eat('"')) return s;
        while (*p_ && *p_ != '"') {
            if (*p_ == '\\' && p_[1]) {
                ++p_;
                switch (*p_) {
                    case 'n': s += '\n'; break;
                    case 't': s += '\t'; break;
                    case 'r': s += '\r'; break;
                    case 'b': s += '\b'; break;
                    case 'f': s += '\f'; break;
                    case 'u': {
                        unsigned v = 0;
                        for (int k = 0; k < 4 && p_[1]; ++k) {
                            char h = *++p_;
                            v = v * 16 + static_cast<unsigned>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                        }
                        s += v < 0x80 ? static_cast<char>(v) : '?';
                        break;
                    }
                    default: s += *p_; break;
                }
                ++p_;
            } else {
                s += *p_++;
            }
        }
        eat('"');
        return s;
    }
    const char* p_;
};

std::string json_escape(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// ds_last_error() reads "ds_config_load_file: FILE: <problems>"; keep "<problems>".
std::string problems_of(const std::string& file) {
    std::string msg = ds_last_error();
    const std::string prefix = "ds_config_load_file: ";
    if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
    if (msg.rfind(file + ": ", 0) == 0) msg.erase(0, file.size() + 2);
    return msg;
}

void print_indented(FILE* to, const std::string& text) {
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::fprintf(to, "  %s\n", text.substr(start, end - start).c_str());
        start = end + 1;
    }
}

ds_config_options_t make_options(const Args& a) {
    ds_config_options_t opts;
    ds_config_options_init(&opts);
    opts.world_size = a.world_size;
    opts.strict = a.strict ? 1 : 0;
    opts.accept_auto = a.accept_auto ? 1 : 0;
    return opts;
}

int run_check(const Args& a) {
    const ds_config_options_t opts = make_options(a);
    bool all_ok = true;
    std::string report = "[";
    for (size_t i = 0; i < a.files.size(); ++i) {
        const std::string& file = a.files[i];
        ds_config_t* cfg = nullptr;
        ds_status_t st = ds_config_load_file(file.c_str(), &opts, &cfg);
        std::string diagnostics_json = "[]";
        if (st == DS_OK) {
            char* diags = nullptr;
            if (ds_config_query_diagnostics(cfg, &diags) == DS_OK) {
                diagnostics_json = diags;
                ds_free(diags);
            }
            ds_config_destroy(cfg);
        } else {
            all_ok = false;
        }
        if (a.json) {
            if (i) report += ",";
            report += "\n  {\"file\": " + json_escape(file) + ", \"ok\": " + (st == DS_OK ? "true" : "false") +
                      ", \"status\": " + std::to_string(st) + ", \"status_text\": " + json_escape(ds_status_str(st));
            if (st != DS_OK) report += ", \"error\": " + json_escape(problems_of(file));
            report += ", \"diagnostics\": " + diagnostics_json + "}";
            continue;
        }
        if (st != DS_OK) {
            std::printf("FAIL %s (%s)\n", file.c_str(), ds_status_str(st));
            print_indented(stdout, problems_of(file));
            continue;
        }
        std::printf("OK %s\n", file.c_str());
        for (const Diag& d : DiagReader(diagnostics_json.c_str()).read()) {
            if (d.severity != "warning" && !a.verbose) continue;
            const char* label = d.severity == "warning" ? "warning" : "note";
            if (d.path.empty())
                std::printf("  %s [%s]: %s\n", label, d.kind.c_str(), d.message.c_str());
            else
                std::printf("  %s [%s] %s: %s\n", label, d.kind.c_str(), d.path.c_str(), d.message.c_str());
        }
    }
    if (a.json) std::printf("%s\n]\n", report.c_str());
    return all_ok ? 0 : 1;
}

int run_show(const Args& a) {
    const ds_config_options_t opts = make_options(a);
    bool all_ok = true;
    for (const std::string& file : a.files) {
        ds_config_t* cfg = nullptr;
        if (ds_config_load_file(file.c_str(), &opts, &cfg) != DS_OK) {
            std::fprintf(stderr, "FAIL %s\n", file.c_str());
            print_indented(stderr, problems_of(file));
            all_ok = false;
            continue;
        }
        char* json = nullptr;
        if (ds_config_to_json(cfg, "", a.json ? 0 : 1, &json) != DS_OK) {
            std::fprintf(stderr, "ds-config: %s\n", ds_last_error());
            all_ok = false;
        } else {
            if (a.files.size() > 1 && !a.json) std::printf("// %s\n", file.c_str());
            std::printf("%s\n", json);
            ds_free(json);
        }
        ds_config_destroy(cfg);
    }
    return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse_args(argc, argv);
    // The tool prints every diagnostic itself; keep the library's log quiet.
    ds_lib_init(nullptr);
    ds_lib_set_log(nullptr, nullptr, DS_LOG_NONE);
    return args.command == "check" ? run_check(args) : run_show(args);
}
