// dsrun: start the ranks of a dsabi job (or of any program that reads the torchrun / DeepSpeed
// launcher environment) on this host or on the hosts of a DeepSpeed-format hostfile.
//
//   dsrun -n 4 ./train --config ds.json
//   dsrun --hostfile hosts --include 'worker-0@worker-1:0,2' --master-port 29600 ./train
//
// Every rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (and DeepSpeed's LOCAL_SIZE),
// CROSS_RANK, CROSS_SIZE, MASTER_ADDR, MASTER_PORT and DSABI_RUN_ID. Output lines are forwarded
// with a "[rank N] " prefix. The first rank to fail decides the exit status (its exit code, or 128 +
// its signal); the other ranks are then terminated (SIGTERM to each rank's process group, SIGKILL
// after --kill-timeout), so nothing is left behind. On several hosts, dsrun starts one node agent per
// host through a remote command (ssh by default) and the agents start the local ranks in dsrun's
// working directory (where it exists there); an agent whose connection to dsrun closes terminates
// its ranks.
//
// C++17 and POSIX (Linux: the ranks also die with dsrun through PR_SET_PDEATHSIG).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg, int code = 2) {
    std::fprintf(stderr, "dsrun: %s\n", msg.c_str());
    std::exit(code);
}

// ------------------------------------------------------------------------------------------------
// Hostfile and resource filters (DeepSpeed's formats)
// ------------------------------------------------------------------------------------------------

struct Node {
    std::string host;
    std::vector<int> slots;
};
using Resources = std::vector<Node>;  // in hostfile order

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n");
    if (a == std::string::npos) return "";
    size_t b = s.find_last_not_of(" \t\r\n");
    return s.substr(a, b - a + 1);
}

// One host per line, "host slots=N" (anything after that is ignored, as DeepSpeed's regex does);
// blank lines and lines starting with '#' are skipped; a duplicate host, any other line or an
// empty file is an error.
Resources parse_hostfile(const std::string& path) {
    std::ifstream in(path);
    if (!in) die("cannot read hostfile '" + path + "'");
    Resources res;
    std::set<std::string> seen;
    std::string raw;
    int lineno = 0;
    while (std::getline(in, raw)) {
        ++lineno;
        std::string line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        size_t sp = line.find_first_of(" \t");
        bool ok = sp != std::string::npos;
        std::string host, count;
        if (ok) {
            host = line.substr(0, sp);
            std::string rest = trim(line.substr(sp));
            ok = rest.rfind("slots=", 0) == 0;
            if (ok) {
                size_t i = 6;
                while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) count.push_back(rest[i++]);
                ok = !count.empty();
            }
        }
        if (!ok)
            die(path + ":" + std::to_string(lineno) + ": bad entry '" + line + "' (expected 'hostname slots=N')");
        if (!seen.insert(host).second) die(path + ":" + std::to_string(lineno) + ": host '" + host + "' is listed twice");
        long n = std::strtol(count.c_str(), nullptr, 10);
        Node node{host, {}};
        for (long s = 0; s < n; ++s) node.slots.push_back(static_cast<int>(s));
        res.push_back(node);
    }
    if (res.empty()) die("hostfile '" + path + "' is empty or not formatted correctly (expected lines 'hostname slots=N')");
    return res;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    out.push_back(cur);
    return out;
}

// --include / --exclude: NODE_SPEC[@NODE_SPEC...], NODE_SPEC = NAME[:SLOT[,SLOT...]].
Resources filter_resources(const Resources& all, const std::string& include, const std::string& exclude) {
    if (!include.empty() && !exclude.empty()) die("--include and --exclude are mutually exclusive");
    if (include.empty() && exclude.empty()) return all;
    const bool inc = !include.empty();
    std::map<std::string, std::vector<int>> avail;
    for (const Node& n : all) avail[n.host] = n.slots;
    std::map<std::string, std::vector<int>> chosen;
    if (!inc) chosen = avail;
    for (const std::string& spec : split(inc ? include : exclude, '@')) {
        if (spec.empty()) die(std::string("empty node spec in --") + (inc ? "include" : "exclude") + " '" + (inc ? include : exclude) + "'");
        size_t colon = spec.find(':');
        std::string host = spec.substr(0, colon);
        if (!avail.count(host)) die("hostname '" + host + "' not found in hostfile");
        if (colon == std::string::npos) {
            if (inc)
                chosen[host] = avail[host];
            else
                chosen[host].clear();
            continue;
        }
        for (const std::string& s : split(spec.substr(colon + 1), ',')) {
            char* end = nullptr;
            long slot = std::strtol(s.c_str(), &end, 10);
            if (s.empty() || *end != '\0') die("bad slot '" + s + "' for host '" + host + "'");
            const auto& a = avail[host];
            if (std::find(a.begin(), a.end(), slot) == a.end())
                die("no slot '" + s + "' specified on host '" + host + "'");
            auto& c = chosen[host];
            if (inc)
                c.push_back(static_cast<int>(slot));
            else
                c.erase(std::remove(c.begin(), c.end(), static_cast<int>(slot)), c.end());
        }
    }
    Resources out;
    for (const Node& n : all) {  // hostfile order, sorted unique slots, empty hosts dropped
        auto it = chosen.find(n.host);
        if (it == chosen.end()) continue;
        std::vector<int> s = it->second;
        std::sort(s.begin(), s.end());
        s.erase(std::unique(s.begin(), s.end()), s.end());
        if (!s.empty()) out.push_back({n.host, s});
    }
    if (out.empty()) die("no slots are left after --include / --exclude");
    return out;
}

// ------------------------------------------------------------------------------------------------
// world info: {"host":[slots],...} as URL-safe base64 (what DeepSpeed passes to its node launcher)
// ------------------------------------------------------------------------------------------------

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64_encode(const std::string& in) {
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8 | (uint8_t)in[i + 2];
        for (int k = 18; k >= 0; k -= 6) out.push_back(kB64[(v >> k) & 63]);
    }
    if (i < in.size()) {
        uint32_t v = (uint8_t)in[i] << 16 | (i + 1 < in.size() ? (uint8_t)in[i + 1] << 8 : 0);
        out.push_back(kB64[(v >> 18) & 63]);
        out.push_back(kB64[(v >> 12) & 63]);
        out.push_back(i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::string b64_decode(const std::string& in) {
    std::string out;
    uint32_t v = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        const char* p = std::strchr(kB64, c);
        if (!p || !c) die("bad --world-info");
        v = v << 6 | static_cast<uint32_t>(p - kB64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((v >> bits) & 0xff));
        }
    }
    return out;
}

std::string world_json(const Resources& r) {
    std::string s = "{";
    for (size_t i = 0; i < r.size(); ++i) {
        if (i) s += ",";
        s += "\"" + r[i].host + "\":[";
        for (size_t j = 0; j < r[i].slots.size(); ++j) s += (j ? "," : "") + std::to_string(r[i].slots[j]);
        s += "]";
    }
    return s + "}";
}

Resources parse_world_json(const std::string& s) {
    Resources r;
    size_t i = 0;
    auto expect = [&](char c) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        if (i >= s.size() || s[i] != c) die("bad --world-info");
        ++i;
    };
    expect('{');
    while (i < s.size() && s[i] != '}') {
        expect('"');
        size_t q = s.find('"', i);
        if (q == std::string::npos) die("bad --world-info");
        Node n{s.substr(i, q - i), {}};
        i = q + 1;
        expect(':');
        expect('[');
        while (i < s.size() && s[i] != ']') {
            char* end = nullptr;
            n.slots.push_back(static_cast<int>(std::strtol(s.c_str() + i, &end, 10)));
            i = static_cast<size_t>(end - s.c_str());
            if (i < s.size() && s[i] == ',') ++i;
        }
        expect(']');
        r.push_back(n);
        if (i < s.size() && s[i] == ',') ++i;
    }
    return r;
}

// ------------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------------

int g_sigpipe[2] = {-1, -1};
volatile sig_atomic_t g_signal = 0;

void on_signal(int sig) {
    if (sig != SIGCHLD) g_signal = sig;
    int saved = errno;
    char c = static_cast<char>(sig);
    (void)!write(g_sigpipe[1], &c, 1);
    errno = saved;
}

struct Child {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // KEY=VALUE added to (or replacing in) the inherited environment
    std::string prefix;            // "" = forward lines as they are
    std::string name;              // for messages: "rank 3", "node 1 (worker-1)"
    int keep_fd = -1;              // an fd the child inherits (rank 0's store socket)
    bool stdin_pipe = false;       // give the child a pipe as stdin (node agents watch it)
    // run time
    pid_t pid = -1;
    int out = -1, err = -1, in = -1;
    std::string out_buf, err_buf;
    bool exited = false;
    int code = 0;
};

struct SuperviseOptions {
    double failure_grace_s = 0;
    double kill_timeout_s = 5;
    bool watch_stdin = false;  // node agent: terminate when our stdin closes
    int close_after_spawn = -1; // our copy of rank 0's store socket
};

void set_cloexec(int fd, bool on) {
    int f = fcntl(fd, F_GETFD);
    fcntl(fd, F_SETFD, on ? (f | FD_CLOEXEC) : (f & ~FD_CLOEXEC));
}

void spawn(Child& c) {
    int o[2], e[2], i[2] = {-1, -1};
    if (pipe(o) || pipe(e) || (c.stdin_pipe && pipe(i))) die(std::string("pipe: ") + std::strerror(errno), 1);
    std::vector<std::string> env_strings;
    std::set<std::string> overridden;
    for (const auto& kv : c.env) overridden.insert(kv.substr(0, kv.find('=')));
    for (char** p = environ; *p; ++p) {
        std::string kv = *p;
        if (!overridden.count(kv.substr(0, kv.find('=')))) env_strings.push_back(kv);
    }
    for (const auto& kv : c.env) env_strings.push_back(kv);
    std::vector<char*> envp, argv;
    for (auto& s : env_strings) envp.push_back(&s[0]);
    envp.push_back(nullptr);
    for (auto& s : c.argv) argv.push_back(&s[0]);
    argv.push_back(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) die(std::string("fork: ") + std::strerror(errno), 1);
    if (pid == 0) {
        setpgid(0, 0);  // its own process group: terminating it reaches what it started too
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(137);
#endif
        (void)parent;
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(o[1], 1);
        dup2(e[1], 2);
        if (c.stdin_pipe) {
            dup2(i[0], 0);
        } else {
            int devnull = open("/dev/null", O_RDONLY);
            if (devnull >= 0) dup2(devnull, 0);
        }
        // Close everything else except the one inherited socket.
#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        if (c.keep_fd > 3) close_range(3, static_cast<unsigned>(c.keep_fd - 1), 0);
        close_range(static_cast<unsigned>(c.keep_fd >= 3 ? c.keep_fd + 1 : 3), ~0u, 0);
#else
        for (int fd = 3; fd < 65536; ++fd)
            if (fd != c.keep_fd) close(fd);
#endif
        if (c.keep_fd >= 0) set_cloexec(c.keep_fd, false);
        execvpe(argv[0], argv.data(), envp.data());
        std::fprintf(stderr, "dsrun: cannot run '%s': %s\n", argv[0], std::strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(o[1]);
    close(e[1]);
    if (c.stdin_pipe) {
        close(i[0]);
        c.in = i[1];
        set_cloexec(c.in, true);
    }
    c.pid = pid;
    c.out = o[0];
    c.err = e[0];
    set_cloexec(c.out, true);
    set_cloexec(c.err, true);
    fcntl(c.out, F_SETFL, O_NONBLOCK);
    fcntl(c.err, F_SETFL, O_NONBLOCK);
}

void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t w = write(fd, s.data() + off, s.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += static_cast<size_t>(w);
    }
}

// Forward complete lines of buf (all of it when flush) with the prefix.
void emit(std::string& buf, const std::string& prefix, int fd, bool flush) {
    size_t start = 0;
    std::string out;
    for (;;) {
        size_t nl = buf.find('\n', start);
        if (nl == std::string::npos) break;
        out += prefix + buf.substr(start, nl - start + 1);
        start = nl + 1;
    }
    buf.erase(0, start);
    if (flush && !buf.empty()) {
        out += prefix + buf + "\n";
        buf.clear();
    }
    if (!out.empty()) write_all(fd, out);
}

// Read what is available; returns false at end of file.
bool pump(int& fd, std::string& buf, const std::string& prefix, int to) {
    char tmp[65536];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r > 0) {
            buf.append(tmp, static_cast<size_t>(r));
            if (buf.size() > (1u << 20)) emit(buf, prefix, to, true);  // a very long line: pass it on
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            emit(buf, prefix, to, false);
            return true;
        }
        emit(buf, prefix, to, true);
        close(fd);
        fd = -1;
        return false;
    }
}

void signal_group(const Child& c, int sig) {
    if (c.pid > 0) kill(-c.pid, sig);
}

// Run the children to the end. Returns the job's exit status.
int supervise(std::vector<Child>& kids, const SuperviseOptions& so, const std::string& who) {
    if (pipe(g_sigpipe)) die("pipe", 1);
    set_cloexec(g_sigpipe[0], true);
    set_cloexec(g_sigpipe[1], true);
    fcntl(g_sigpipe[0], F_SETFL, O_NONBLOCK);
    fcntl(g_sigpipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

#ifdef __linux__
    // Orphans of the ranks (their children whose parent exited) are reparented to us, so that we
    // reap them instead of leaving zombies behind.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
    for (Child& c : kids) spawn(c);
    if (so.close_after_spawn >= 0) close(so.close_after_spawn);

    int first_failure = 0;
    std::string failure_what;
    int stop_signal = 0;
    bool terminating = false, killed = false, swept = false;
    Clock::time_point grace_end{}, kill_at{}, drain_end{};
    bool stdin_open = so.watch_stdin;

    auto terminate_all = [&](const char* why) {
        if (terminating) return;
        terminating = true;
        if (why) std::fprintf(stderr, "dsrun%s: %s; terminating the other ranks\n", who.c_str(), why);
        for (Child& c : kids) {
            if (c.in >= 0) {
                close(c.in);
                c.in = -1;
            }
            if (!c.exited) signal_group(c, SIGTERM);
        }
        kill_at = Clock::now() + std::chrono::milliseconds(static_cast<long>(so.kill_timeout_s * 1000));
    };

    for (;;) {
        std::vector<pollfd> fds;
        fds.push_back({g_sigpipe[0], POLLIN, 0});
        if (stdin_open) fds.push_back({0, POLLIN, 0});
        std::vector<std::pair<Child*, bool>> owners;
        for (Child& c : kids) {
            if (c.out >= 0) {
                fds.push_back({c.out, POLLIN, 0});
                owners.push_back({&c, false});
            }
            if (c.err >= 0) {
                fds.push_back({c.err, POLLIN, 0});
                owners.push_back({&c, true});
            }
        }
        int timeout = 200;
        poll(fds.data(), fds.size(), timeout);
        size_t base = 1;
        if (fds[0].revents) {
            char buf[64];
            while (read(g_sigpipe[0], buf, sizeof buf) > 0) {
            }
        }
        if (stdin_open) {
            if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[256];
                ssize_t r = read(0, buf, sizeof buf);
                if (r <= 0) {
                    stdin_open = false;
                    if (!stop_signal) stop_signal = SIGHUP;
                    terminate_all("the connection to dsrun closed");
                }
            }
            base = 2;
        }
        for (size_t k = 0; k < owners.size(); ++k) {
            if (!fds[base + k].revents) continue;
            Child& c = *owners[k].first;
            if (owners[k].second)
                pump(c.err, c.err_buf, c.prefix, 2);
            else
                pump(c.out, c.out_buf, c.prefix, 1);
        }
        // Reap.
        for (;;) {
            int st = 0;
            pid_t pid = waitpid(-1, &st, WNOHANG);
            if (pid <= 0) break;
            for (Child& c : kids) {
                if (c.pid != pid) continue;
                c.exited = true;
                c.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
                if (c.code != 0 && !first_failure && !terminating) {
                    first_failure = c.code;
                    failure_what = c.name.empty() ? c.argv[0] : c.name;
                    if (WIFSIGNALED(st))
                        failure_what += " was killed by signal " + std::to_string(WTERMSIG(st));
                    else
                        failure_what += " exited with status " + std::to_string(c.code);
                    grace_end = Clock::now() + std::chrono::milliseconds(static_cast<long>(so.failure_grace_s * 1000));
                }
            }
        }
        if (g_signal && !stop_signal) {
            stop_signal = g_signal;
            terminate_all(("received signal " + std::to_string(stop_signal)).c_str());
        }
        if (first_failure && !terminating && Clock::now() >= grace_end) terminate_all(failure_what.c_str());
        if (terminating && !killed && Clock::now() >= kill_at) {
            killed = true;
            for (Child& c : kids) signal_group(c, SIGKILL);
        }
        bool all_exited = std::all_of(kids.begin(), kids.end(), [](const Child& c) { return c.exited; });
        if (all_exited) {
            if ((first_failure || stop_signal) && !swept) {
                // What the ranks started and left behind goes too.
                swept = true;
                for (Child& c : kids) signal_group(c, SIGKILL);
            }
            if (drain_end == Clock::time_point{}) drain_end = Clock::now() + std::chrono::milliseconds(300);
            bool open = std::any_of(kids.begin(), kids.end(), [](const Child& c) { return c.out >= 0 || c.err >= 0; });
            if (!open || Clock::now() >= drain_end) break;
        }
    }
    for (Child& c : kids) {
        if (c.out >= 0) pump(c.out, c.out_buf, c.prefix, 1);
        if (c.err >= 0) pump(c.err, c.err_buf, c.prefix, 2);
        emit(c.out_buf, c.prefix, 1, true);
        emit(c.err_buf, c.prefix, 2, true);
        if (c.in >= 0) close(c.in);
    }
    if (first_failure) return first_failure;
    if (stop_signal) return 128 + stop_signal;
    return 0;
}

// ------------------------------------------------------------------------------------------------
// Command line
// ------------------------------------------------------------------------------------------------

struct Args {
    int nproc = 0;
    std::string hostfile, include, exclude;
    int num_nodes = -1, num_procs = -1;
    std::string master_addr;
    int master_port = 29500;
    bool port_given = false;
    std::string launcher_cmd;
    double failure_grace = 0, kill_timeout = 5;
    bool no_prefix = false, dry_run = false;
    std::string run_id;
    // node agent
    bool agent = false;
    int node_rank = -1;
    std::string world_info;
    std::string cwd;  // dsrun's working directory, for the ranks
    std::vector<std::string> env;
    std::vector<std::string> prog;
};

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: dsrun [options] [--] program [args...]\n"
                 "  -n, --nproc N            start N ranks on this host\n"
                 "  -H, --hostfile PATH      DeepSpeed hostfile: lines 'hostname slots=N', '#' comments\n"
                 "  -i, --include SPEC       use only NODE_SPEC[@NODE_SPEC...], NODE_SPEC = NAME[:SLOT[,SLOT...]]\n"
                 "  -e, --exclude SPEC       leave out hosts or slots (same format; not with --include)\n"
                 "      --num-nodes N        use the first N hosts\n"
                 "      --num-procs N        use slots 0..N-1 of every host (alias --num-gpus)\n"
                 "      --master-addr ADDR   rank 0's address (default 127.0.0.1; with a hostfile the first\n"
                 "                           address 'hostname -I' prints on the first host)\n"
                 "      --master-port PORT   default 29500; 0 picks a free port and hands its listening socket\n"
                 "                           to rank 0 ($DSABI_STORE_LISTEN_FD; one host only)\n"
                 "      --launcher-cmd CMD   how to run a command on a host; {host} is replaced, {cmd} is the\n"
                 "                           quoted command (appended when absent). Default\n"
                 "                           'ssh -o BatchMode=yes {host}' ($DSABI_LAUNCHER_CMD); for network\n"
                 "                           namespaces: 'ip netns exec {host} sh -c {cmd}'. The ranks\n"
                 "                           start in dsrun's working directory (where it exists there)\n"
                 "      --failure-grace S    after the first failure, let the other ranks run S more seconds\n"
                 "                           before terminating them (default 0)\n"
                 "      --kill-timeout S     SIGTERM to SIGKILL delay when terminating ranks (default 5)\n"
                 "      --run-id ID          DSABI_RUN_ID for the job (default: unique per run)\n"
                 "      --no-prefix          do not prefix output lines with [rank N]\n"
                 "      --dry-run            print the placement of every rank and exit\n"
                 "  -h, --help\n");
}

double parse_seconds(const std::string& v, const char* opt) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || d < 0) die(std::string(opt) + " takes a number of seconds >= 0, not '" + v + "'");
    return d;
}

int parse_int(const std::string& v, const char* opt, long lo, long hi) {
    char* end = nullptr;
    long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || x < lo || x > hi)
        die(std::string(opt) + " takes an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" + v + "'");
    return static_cast<int>(x);
}

Args parse_args(int argc, char** argv) {
    Args a;
    int i = 1;
    auto value = [&](const std::string& opt) -> std::string {
        if (i + 1 >= argc) die(opt + " needs a value");
        return argv[++i];
    };
    for (; i < argc; ++i) {
        std::string s = argv[i];
        std::string opt = s, inline_val;
        bool has_inline = false;
        if (s.rfind("--", 0) == 0 && s.find('=') != std::string::npos) {
            opt = s.substr(0, s.find('='));
            inline_val = s.substr(s.find('=') + 1);
            has_inline = true;
        }
        std::replace(opt.begin(), opt.end(), '_', '-');  // DeepSpeed spells --master_port
        auto val = [&]() { return has_inline ? inline_val : value(opt); };
        if (s == "--") {
            ++i;
            break;
        }
        if (s.empty() || s[0] != '-') break;
        if (opt == "-n" || opt == "--nproc" || opt == "--nproc-per-node") a.nproc = parse_int(val(), "--nproc", 1, 1 << 20);
        else if (opt == "-H" || opt == "--hostfile") a.hostfile = val();
        else if (opt == "-i" || opt == "--include") a.include = val();
        else if (opt == "-e" || opt == "--exclude") a.exclude = val();
        else if (opt == "--num-nodes") a.num_nodes = parse_int(val(), "--num-nodes", 1, 1 << 20);
        else if (opt == "--num-procs" || opt == "--num-gpus" || opt == "--num-accelerators") a.num_procs = parse_int(val(), "--num-procs", 1, 1 << 20);
        else if (opt == "--master-addr") a.master_addr = val();
        else if (opt == "--master-port") {
            a.master_port = parse_int(val(), "--master-port", 0, 65535);
            a.port_given = true;
        } else if (opt == "--launcher-cmd") a.launcher_cmd = val();
        else if (opt == "--failure-grace") a.failure_grace = parse_seconds(val(), "--failure-grace");
        else if (opt == "--kill-timeout") a.kill_timeout = parse_seconds(val(), "--kill-timeout");
        else if (opt == "--run-id") a.run_id = val();
        else if (opt == "--no-prefix") a.no_prefix = true;
        else if (opt == "--dry-run") a.dry_run = true;
        else if (opt == "--node-agent") a.agent = true;
        else if (opt == "--node-rank") a.node_rank = parse_int(val(), "--node-rank", 0, 1 << 20);
        else if (opt == "--world-info") a.world_info = val();
        else if (opt == "--env") a.env.push_back(val());
        else if (opt == "--cwd") a.cwd = val();
        else if (opt == "-h" || opt == "--help") {
            usage(stdout);
            std::exit(0);
        } else {
            usage(stderr);
            die("unknown option '" + s + "'");
        }
    }
    for (; i < argc; ++i) a.prog.push_back(argv[i]);
    return a;
}

std::string shell_quote(const std::string& s) {
    if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./=:,@+%") == std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out.push_back(c);
    }
    return out + "'";
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
}

// argv that runs `cmd` (already a shell command line) on host through the launcher template.
std::vector<std::string> remote_argv(const std::string& tmpl, const std::string& host, const std::string& cmd) {
    std::vector<std::string> out;
    bool placed = false;
    for (std::string w : words(tmpl)) {
        if (w == "{cmd}") {
            out.push_back(cmd);
            placed = true;
            continue;
        }
        for (size_t p; (p = w.find("{host}")) != std::string::npos;) w.replace(p, 6, host);
        out.push_back(w);
    }
    if (!placed) out.push_back(cmd);
    return out;
}

std::string self_path(const char* argv0) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) return std::string(buf, static_cast<size_t>(n));
    return argv0;
}

// dsrun's working directory, for the node agents (DeepSpeed's runners `cd` there too): $PWD when it
// names this directory (it keeps the symbolic links the user went through, which other hosts may
// resolve differently), else getcwd(); "" when neither is known.
std::string working_dir() {
    const char* pwd = std::getenv("PWD");
    struct stat here {}, named {};
    if (pwd && pwd[0] == '/' && stat(".", &here) == 0 && stat(pwd, &named) == 0 && here.st_dev == named.st_dev &&
        here.st_ino == named.st_ino)
        return pwd;
    char buf[4096];
    return getcwd(buf, sizeof buf) ? std::string(buf) : std::string();
}

std::string default_run_id() {
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    return "dsrun-" + std::string(host) + "-" + std::to_string(getpid()) + "-" + std::to_string(std::time(nullptr));
}

// Variables sent to remote hosts: DeepSpeed's exported prefixes plus ours, and the lines of
// .deepspeed_env (name from $DS_ENV_FILE) found in $HOME or the current directory.
std::vector<std::string> exported_env() {
    static const char* const prefixes[] = {"DSABI_", "NCCL_", "PYTHON", "UCX_", "MLFLOW", "MV2_", "DEEPSPEED_", "OMP_NUM_THREADS"};
    std::vector<std::string> out;
    for (char** p = environ; *p; ++p) {
        std::string kv = *p;
        if (kv.rfind("DSABI_LAUNCHER_CMD=", 0) == 0 || kv.rfind("DSABI_STORE_LISTEN_FD=", 0) == 0) continue;
        for (const char* pre : prefixes)
            if (kv.rfind(pre, 0) == 0) {
                out.push_back(kv);
                break;
            }
    }
    const char* name = std::getenv("DS_ENV_FILE");
    std::string file = name && *name ? name : ".deepspeed_env";
    const char* home = std::getenv("HOME");
    for (const std::string& dir : {std::string(home ? home : ""), std::string(".")}) {
        if (dir.empty()) continue;
        std::ifstream in(dir + "/" + file);
        std::string line;
        while (std::getline(in, line)) {
            line = trim(line);
            if (!line.empty() && line[0] != '#' && line.find('=') != std::string::npos) out.push_back(line);
        }
    }
    return out;
}

struct RankPlan {
    int rank, local_rank, local_size, cross_rank, cross_size, slot;
    std::string host;
};

std::vector<RankPlan> plan_ranks(const Resources& r) {
    std::vector<RankPlan> out;
    int rank = 0;
    for (size_t k = 0; k < r.size(); ++k)
        for (size_t j = 0; j < r[k].slots.size(); ++j)
            out.push_back({rank++, static_cast<int>(j), static_cast<int>(r[k].slots.size()), static_cast<int>(k),
                           static_cast<int>(r.size()), r[k].slots[j], r[k].host});
    return out;
}

std::vector<std::string> rank_env(const RankPlan& p, int world, const std::string& addr, int port, const std::string& run_id,
                                  const std::string& visible) {
    std::vector<std::string> e = {
        "RANK=" + std::to_string(p.rank),
        "WORLD_SIZE=" + std::to_string(world),
        "LOCAL_RANK=" + std::to_string(p.local_rank),
        "LOCAL_WORLD_SIZE=" + std::to_string(p.local_size),
        "LOCAL_SIZE=" + std::to_string(p.local_size),
        "CROSS_RANK=" + std::to_string(p.cross_rank),
        "CROSS_SIZE=" + std::to_string(p.cross_size),
        "GROUP_RANK=" + std::to_string(p.cross_rank),
        "MASTER_ADDR=" + addr,
        "MASTER_PORT=" + std::to_string(port),
        "DSABI_RUN_ID=" + run_id,
    };
    if (!visible.empty()) e.push_back("CUDA_VISIBLE_DEVICES=" + visible);
    return e;
}

// Listen on port (0: a free one) for rank 0's rendezvous store, so that the port is ours from now on.
int open_store_socket(int* port) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1, zero = 0;
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_any;
        a.sin6_port = htons(static_cast<uint16_t>(*port));
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 512) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        a.sin_port = htons(static_cast<uint16_t>(*port));
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 512) != 0)
            die("master port " + std::to_string(*port) + " is not free on this host: " + std::strerror(errno));
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return fd;
}

// Run a command and return its first line of output (for `hostname -I` on the first host).
std::string capture(const std::vector<std::string>& argv) {
    int p[2];
    if (pipe(p)) return "";
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        // Not dsrun's stdin: ssh would read it and send it to the remote command, eating the input
        // of a script that runs dsrun (`while read ...; do dsrun ...; done < list`).
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
            if (devnull != 0) close(devnull);
        }
        std::vector<char*> av;
        for (auto& s : argv) av.push_back(const_cast<char*>(s.c_str()));
        av.push_back(nullptr);
        execvp(av[0], av.data());
        _exit(127);
    }
    close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(r));
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return out;
}

int run_agent(const Args& a) {
    Resources world = parse_world_json(b64_decode(a.world_info));
    if (a.node_rank < 0 || a.node_rank >= static_cast<int>(world.size()))
        die("--node-rank " + std::to_string(a.node_rank) + " is outside the world info's " + std::to_string(world.size()) + " hosts");
    if (a.prog.empty()) die("no program to run");
    // A process group of its own: dsrun terminates the launcher's group (a local `sh -c` wrapper, say),
    // which must not take the agent down before it has terminated its ranks' groups; the agent ends
    // its ranks when its stdin (dsrun's pipe) closes, as it does under ssh.
    if (getpgrp() != getpid()) setpgid(0, 0);
    for (const std::string& kv : a.env) {
        size_t eq = kv.find('=');
        if (eq != std::string::npos) setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
    }
    std::vector<RankPlan> plan = plan_ranks(world);
    const Node& me = world[static_cast<size_t>(a.node_rank)];
    // As OpenMPI's mpirun: dsrun's directory when this host has it, else (with a warning) where the
    // agent was started, the remote login directory under ssh.
    if (!a.cwd.empty() && chdir(a.cwd.c_str()) != 0) {
        std::string why = std::strerror(errno);
        char here[4096];
        std::fprintf(stderr, "dsrun (node %d, %s): cannot change to '%s' (%s); the ranks start in '%s'\n", a.node_rank,
                     me.host.c_str(), a.cwd.c_str(), why.c_str(), getcwd(here, sizeof here) ? here : "?");
    }
    std::string visible;
    for (size_t j = 0; j < me.slots.size(); ++j) visible += (j ? "," : "") + std::to_string(me.slots[j]);
    std::vector<Child> kids;
    for (const RankPlan& p : plan) {
        if (p.cross_rank != a.node_rank) continue;
        Child c;
        c.argv = a.prog;
        c.env = rank_env(p, static_cast<int>(plan.size()), a.master_addr, a.master_port, a.run_id, visible);
        c.prefix = a.no_prefix ? "" : "[rank " + std::to_string(p.rank) + "] ";
        c.name = "rank " + std::to_string(p.rank);
        kids.push_back(std::move(c));
    }
    SuperviseOptions so;
    so.failure_grace_s = a.failure_grace;
    so.kill_timeout_s = a.kill_timeout;
    so.watch_stdin = true;
    return supervise(kids, so, " (node " + std::to_string(a.node_rank) + ", " + me.host + ")");
}

}  // namespace

int main(int argc, char** argv) {
    Args a = parse_args(argc, argv);
    if (a.run_id.empty()) a.run_id = default_run_id();
    if (a.agent) return run_agent(a);
    if (a.prog.empty() && !a.dry_run) {
        usage(stderr);
        die("no program to run");
    }

    // ---- one host ----
    if (a.hostfile.empty()) {
        if (!a.include.empty() || !a.exclude.empty()) die("--include / --exclude need --hostfile");
        if (a.nproc <= 0) die("give the number of ranks with -n N (or a --hostfile)");
        std::string addr = a.master_addr.empty() ? "127.0.0.1" : a.master_addr;
        int port = a.master_port;
        // --master-port 0: dsrun picks a free port by listening on it, and hands that socket to rank 0
        // (dsabi's store serves on it), so no other process can take the port in between. A fixed
        // port is left alone, as other launchers do (a rank 0 that is not a dsabi program binds it).
        int store_fd = a.dry_run || port != 0 ? -1 : open_store_socket(&port);
        Resources local = {{"localhost", {}}};
        for (int r = 0; r < a.nproc; ++r) local[0].slots.push_back(r);
        std::vector<RankPlan> plan = plan_ranks(local);
        if (a.dry_run) {
            for (const RankPlan& p : plan)
                std::printf("rank=%d host=%s local_rank=%d local_world_size=%d cross_rank=%d slot=%d\n", p.rank, p.host.c_str(),
                            p.local_rank, p.local_size, p.cross_rank, p.slot);
            return 0;
        }
        std::vector<Child> kids;
        for (const RankPlan& p : plan) {
            Child c;
            c.argv = a.prog;
            c.env = rank_env(p, a.nproc, addr, port, a.run_id, "");
            if (p.rank == 0 && store_fd >= 0) {
                c.env.push_back("DSABI_STORE_LISTEN_FD=" + std::to_string(store_fd));
                c.keep_fd = store_fd;
            }
            c.prefix = a.no_prefix ? "" : "[rank " + std::to_string(p.rank) + "] ";
            c.name = "rank " + std::to_string(p.rank);
            kids.push_back(std::move(c));
        }
        SuperviseOptions so;
        so.failure_grace_s = a.failure_grace;
        so.kill_timeout_s = a.kill_timeout;
        // The socket is rank 0's once it runs; a copy kept here would hold the port open after rank
        // 0 closed it (clients would queue instead of being refused).
        so.close_after_spawn = store_fd;
        return supervise(kids, so, "");
    }

    // ---- hosts of a hostfile ----
    Resources res = filter_resources(parse_hostfile(a.hostfile), a.include, a.exclude);
    if (a.num_nodes > 0 && static_cast<int>(res.size()) > a.num_nodes) res.resize(static_cast<size_t>(a.num_nodes));
    if (a.num_procs > 0)
        for (Node& n : res) {
            n.slots.clear();
            for (int s = 0; s < a.num_procs; ++s) n.slots.push_back(s);
        }
    if (a.nproc > 0) die("-n cannot be combined with --hostfile (use --num-procs for slots per host)");
    if (a.master_port == 0) die("--master-port 0 is for one host; give a port that is free on the first host");
    std::string tmpl = a.launcher_cmd;
    if (tmpl.empty()) {
        const char* e = std::getenv("DSABI_LAUNCHER_CMD");
        tmpl = e && *e ? e : "ssh -o BatchMode=yes {host}";
    }
    std::vector<RankPlan> plan = plan_ranks(res);
    std::string addr = a.master_addr;
    if (a.dry_run) {
        for (const RankPlan& p : plan)
            std::printf("rank=%d host=%s local_rank=%d local_world_size=%d cross_rank=%d slot=%d\n", p.rank, p.host.c_str(),
                        p.local_rank, p.local_size, p.cross_rank, p.slot);
        return 0;
    }
    if (addr.empty()) {
        std::string out = capture(remote_argv(tmpl, res[0].host, "hostname -I"));
        std::vector<std::string> w = words(out);
        if (w.empty()) die("could not learn the first host's address with '" + tmpl + "' and 'hostname -I'; give --master-addr");
        addr = w[0];
    }
    std::string info = b64_encode(world_json(res));
    std::string self = self_path(argv[0]);
    std::vector<std::string> env = exported_env();
    std::string cwd = working_dir();
    std::vector<Child> agents;
    for (size_t k = 0; k < res.size(); ++k) {
        std::vector<std::string> cmd = {self, "--node-agent", "--node-rank", std::to_string(k), "--world-info", info,
                                        "--master-addr", addr, "--master-port", std::to_string(a.master_port),
                                        "--run-id", a.run_id, "--failure-grace", std::to_string(a.failure_grace),
                                        "--kill-timeout", std::to_string(a.kill_timeout)};
        if (a.no_prefix) cmd.push_back("--no-prefix");
        if (!cwd.empty()) {
            cmd.push_back("--cwd");
            cmd.push_back(cwd);
        }
        for (const std::string& kv : env) {
            cmd.push_back("--env");
            cmd.push_back(kv);
        }
        cmd.push_back("--");
        for (const std::string& p : a.prog) cmd.push_back(p);
        std::string line;
        for (const std::string& w : cmd) line += (line.empty() ? "" : " ") + shell_quote(w);
        Child c;
        c.argv = remote_argv(tmpl, res[k].host, line);
        c.stdin_pipe = true;
        c.name = "node " + std::to_string(k) + " (" + res[k].host + ")";
        agents.push_back(std::move(c));
    }
    SuperviseOptions so;
    so.failure_grace_s = a.failure_grace;
    so.kill_timeout_s = a.kill_timeout;
    return supervise(agents, so, "");
}
