// ds-data: build token datasets from text files, and inspect them. Uses only the public API (dsabi.h).
#include <dsabi.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

const char* const kUsage =
    "usage: ds-data build -o OUT.dst [options] FILE...\n"
    "       ds-data info FILE.dst\n"
    "       ds-data verify FILE.dst\n"
    "       ds-data decode FILE.dst INDEX [--tokenizer bytes|gpt2 --vocab V --merges M]\n"
    "       ds-data metric-seqlen FILE.dst OUT.metric\n"
    "\n"
    "Token datasets for dsabi's loader (format: docs/data.md). Nothing is downloaded.\n"
    "\n"
    "build options:\n"
    "  -o, --output PATH      the dataset to write (written to a temporary name, renamed at the end)\n"
    "  --tokenizer NAME       bytes (default: one id per byte) or gpt2 (needs --vocab and --merges)\n"
    "  --vocab PATH           GPT-2 vocab.json\n"
    "  --merges PATH          GPT-2 merges.txt\n"
    "  --split MODE           file (default: one document per file), line, paragraph, or delimiter\n"
    "  --delimiter TEXT       the separator for --split delimiter (e.g. '<|endoftext|>')\n"
    "  --eot                  append the end-of-text id to every document\n"
    "  --token-bytes N        2 or 4 (default: 2 when the vocabulary fits in u16)\n"
    "  --keep-empty           keep documents without tokens\n"
    "  --chunk-mb N           read size in MiB (default 4); memory stays bounded by it\n"
    "  -q, --quiet            no progress bar\n"
    "\n"
    "metric-seqlen writes each document's length as a per-sample metric file (curriculum buckets).\n"
    "exit status: 0 ok, 1 failure (the message names the file and offset), 2 usage error\n";

[[noreturn]] void usage_error(const std::string& m) {
    std::fprintf(stderr, "ds-data: %s\n\n%s", m.c_str(), kUsage);
    std::exit(2);
}

int report(const char* what) {
    std::fprintf(stderr, "ds-data: %s: %s\n", what, ds_last_error());
    return 1;
}

struct Progress {
    bool tty = false;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    double last = -1;
};

int32_t on_progress(uint64_t done, uint64_t total, uint64_t docs, uint64_t tokens, void* user) {
    Progress* p = static_cast<Progress*>(user);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - p->t0).count();
    if (done < total && s - p->last < 0.2) return 0;
    p->last = s;
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int width = 30, fill = static_cast<int>(frac * width);
    char bar[width + 1];
    for (int i = 0; i < width; ++i) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    std::fprintf(stderr, "%s[%s] %5.1f%%  %.1f/%.1f MB  %.1f MB/s  %llu docs  %llu tokens%s", p->tty ? "\r" : "", bar,
                 frac * 100, done / 1e6, total / 1e6, s > 0 ? done / 1e6 / s : 0.0, static_cast<unsigned long long>(docs),
                 static_cast<unsigned long long>(tokens), p->tty ? "" : "\n");
    std::fflush(stderr);
    return 0;
}

ds_data_tokenizer_t* make_tokenizer(const std::string& name, const std::string& vocab, const std::string& merges) {
    ds_data_tokenizer_options_t to;
    ds_data_tokenizer_options_init(&to);
    if (name == "bytes") {
        to.kind = DS_DATA_TOKENIZER_BYTES;
    } else if (name == "gpt2") {
        if (vocab.empty() || merges.empty()) usage_error("--tokenizer gpt2 needs --vocab and --merges");
        to.kind = DS_DATA_TOKENIZER_GPT2;
        to.vocab_path = vocab.c_str();
        to.merges_path = merges.c_str();
    } else {
        usage_error("--tokenizer must be bytes or gpt2, got \"" + name + "\"");
    }
    ds_data_tokenizer_t* tok = nullptr;
    if (ds_data_tokenizer_create(&to, &tok) != DS_OK) {
        report("tokenizer");
        std::exit(1);
    }
    return tok;
}

int cmd_build(int argc, char** argv) {
    std::string out, tokname = "bytes", vocab, merges, split = "file", delim;
    std::vector<std::string> files;
    int32_t token_bytes = 0, eot = 0, keep_empty = 0;
    uint64_t chunk = 0;
    bool quiet = false;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* name) {
            if (i + 1 >= argc) usage_error(std::string(name) + " needs a value");
            return std::string(argv[++i]);
        };
        if (a == "-o" || a == "--output") out = value("--output");
        else if (a == "--tokenizer") tokname = value("--tokenizer");
        else if (a == "--vocab") vocab = value("--vocab");
        else if (a == "--merges") merges = value("--merges");
        else if (a == "--split") split = value("--split");
        else if (a == "--delimiter") delim = value("--delimiter");
        else if (a == "--eot") eot = 1;
        else if (a == "--keep-empty") keep_empty = 1;
        else if (a == "--token-bytes") token_bytes = std::atoi(value("--token-bytes").c_str());
        else if (a == "--chunk-mb") chunk = std::strtoull(value("--chunk-mb").c_str(), nullptr, 10) << 20;
        else if (a == "-q" || a == "--quiet") quiet = true;
        else if (!a.empty() && a[0] == '-') usage_error("unknown option " + a);
        else files.push_back(a);
    }
    if (out.empty()) usage_error("build needs -o OUT");
    if (files.empty()) usage_error("build needs at least one input file");
    ds_data_build_options_t bo;
    ds_data_build_options_init(&bo);
    if (split == "file") bo.split = DS_DATA_SPLIT_FILE;
    else if (split == "line") bo.split = DS_DATA_SPLIT_LINE;
    else if (split == "paragraph") bo.split = DS_DATA_SPLIT_PARAGRAPH;
    else if (split == "delimiter") bo.split = DS_DATA_SPLIT_DELIMITER;
    else usage_error("--split must be file, line, paragraph or delimiter");
    ds_data_tokenizer_t* tok = make_tokenizer(tokname, vocab, merges);
    bo.tokenizer = tok;
    bo.delimiter = delim.empty() ? nullptr : delim.c_str();
    bo.append_eot = eot;
    bo.keep_empty = keep_empty;
    bo.token_bytes = token_bytes;
    bo.chunk_bytes = chunk;
    Progress prog;
    prog.tty = isatty(2);
    if (!quiet) {
        bo.progress = on_progress;
        bo.progress_user_data = &prog;
    }
    std::vector<const char*> in;
    for (auto& f : files) in.push_back(f.c_str());
    ds_data_build_stats_t st;
    ds_data_build_stats_init(&st);
    const ds_status_t rc = ds_data_build(out.c_str(), in.data(), static_cast<int32_t>(in.size()), &bo, &st);
    if (!quiet && prog.tty) std::fprintf(stderr, "\n");
    ds_data_tokenizer_destroy(tok);
    if (rc != DS_OK) return report("build");
    std::printf("wrote %s: %llu files, %llu documents, %llu tokens, %.1f MB in -> %.1f MB out, %.2f s (%.1f MB/s)\n",
                out.c_str(), static_cast<unsigned long long>(st.n_files), static_cast<unsigned long long>(st.n_documents),
                static_cast<unsigned long long>(st.n_tokens), st.bytes_in / 1e6, st.bytes_out / 1e6, st.seconds,
                st.seconds > 0 ? st.bytes_in / 1e6 / st.seconds : 0.0);
    return 0;
}

int cmd_info(const char* path, int32_t verify) {
    ds_data_options_t o;
    ds_data_options_init(&o);
    o.verify = verify;
    ds_data_t* d = nullptr;
    if (ds_data_open(path, &o, &d) != DS_OK) return report("open");
    ds_data_info_t info;
    ds_data_info_init(&info);
    ds_data_get_info(d, &info);
    std::printf("%s: format %u, u%d tokens, %llu documents, %llu tokens, vocab_size %lld, %llu bytes, tokens crc32c %08x%s\n",
                path, info.format_version, info.token_bytes * 8, static_cast<unsigned long long>(info.n_documents),
                static_cast<unsigned long long>(info.n_tokens), static_cast<long long>(info.vocab_size),
                static_cast<unsigned long long>(info.file_bytes), info.tokens_crc32c,
                verify == DS_DATA_VERIFY_FULL ? " (verified)" : "");
    ds_data_close(d);
    return 0;
}

int cmd_decode(int argc, char** argv) {
    if (argc < 2) usage_error("decode needs FILE and INDEX");
    std::string tokname = "bytes", vocab, merges;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage_error(a + " needs a value");
        if (a == "--tokenizer") tokname = argv[++i];
        else if (a == "--vocab") vocab = argv[++i];
        else if (a == "--merges") merges = argv[++i];
        else usage_error("unknown option " + a);
    }
    ds_data_t* d = nullptr;
    if (ds_data_open(argv[0], nullptr, &d) != DS_OK) return report("open");
    const uint64_t index = std::strtoull(argv[1], nullptr, 10);
    uint64_t n = 0;
    ds_status_t st = ds_data_get_document(d, index, nullptr, 0, &n);
    if (st != DS_OK && st != DS_ERR_BUFFER_TOO_SMALL) return report("document");
    std::vector<int32_t> ids(n);
    if (ds_data_get_document(d, index, ids.data(), n, &n) != DS_OK) return report("document");
    ds_data_tokenizer_t* tok = make_tokenizer(tokname, vocab, merges);
    uint64_t len = 0;
    st = ds_data_tokenizer_decode(tok, ids.data(), n, nullptr, 0, &len);
    std::string text(len, '\0');
    if (ds_data_tokenizer_decode(tok, ids.data(), n, &text[0], len, &len) != DS_OK) return report("decode");
    std::fwrite(text.data(), 1, text.size(), stdout);
    ds_data_tokenizer_destroy(tok);
    ds_data_close(d);
    return 0;
}

int cmd_metric_seqlen(const char* in, const char* out) {
    ds_data_t* d = nullptr;
    if (ds_data_open(in, nullptr, &d) != DS_OK) return report("open");
    ds_data_info_t info;
    ds_data_info_init(&info);
    ds_data_get_info(d, &info);
    std::vector<int64_t> v(info.n_documents);
    for (uint64_t i = 0; i < info.n_documents; ++i) {
        uint64_t n = 0;
        ds_data_get_document(d, i, nullptr, 0, &n);
        v[i] = static_cast<int64_t>(n);
    }
    ds_data_close(d);
    if (ds_data_metric_write(out, v.data(), v.size()) != DS_OK) return report("metric");
    std::printf("wrote %s: %zu values\n", out, v.size());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) usage_error("a command is required");
    const std::string cmd = argv[1];
    if (cmd == "-h" || cmd == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "build") return cmd_build(argc - 2, argv + 2);
    if (cmd == "info" && argc == 3) return cmd_info(argv[2], DS_DATA_VERIFY_OFFSETS);
    if (cmd == "verify" && argc == 3) return cmd_info(argv[2], DS_DATA_VERIFY_FULL);
    if (cmd == "decode") return cmd_decode(argc - 2, argv + 2);
    if (cmd == "metric-seqlen" && argc == 4) return cmd_metric_seqlen(argv[2], argv[3]);
    usage_error("unknown command or wrong arguments: " + cmd);
}
