/* Token datasets: writer/reader round trips on seeded random data, the on-disk layout, corrupt and
 * truncated files, tokenizers (byte-level and a small hand-made GPT-2 BPE), ds_data_build. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "dsabi.h"
#include "minitest.h"
#include "test_data_util.h"

/* Write n_docs random documents (lengths 0..max_len, ids < vocab) and keep a copy. */
typedef struct {
    int32_t* ids;
    uint64_t* offsets;
    uint64_t n_docs, n_tokens;
} Corpus;

static Corpus make_corpus(const char* path, uint64_t n_docs, uint32_t max_len, uint32_t vocab, int32_t token_bytes) {
    Corpus c;
    c.n_docs = n_docs;
    c.offsets = calloc(n_docs + 1, sizeof(uint64_t));
    c.ids = malloc(sizeof(int32_t) * (n_docs * (max_len + 1) + 1));
    c.n_tokens = 0;
    ds_data_writer_options_t o;
    ds_data_writer_options_init(&o);
    o.token_bytes = token_bytes;
    o.vocab_size = vocab;
    o.buffer_bytes = 4096; /* many flushes */
    ds_data_writer_t* w = NULL;
    CHECK_OK(ds_data_writer_create(path, &o, &w));
    for (uint64_t d = 0; d < n_docs; ++d) {
        uint32_t len = rnd_below(max_len + 1);
        for (uint32_t k = 0; k < len; ++k) c.ids[c.n_tokens + k] = (int32_t)rnd_below(vocab);
        /* append in two pieces to exercise streaming documents */
        uint32_t half = len / 2;
        CHECK_OK(ds_data_writer_append(w, c.ids + c.n_tokens, half));
        CHECK_OK(ds_data_writer_append(w, c.ids + c.n_tokens + half, len - half));
        CHECK_OK(ds_data_writer_end_document(w));
        c.n_tokens += len;
        c.offsets[d + 1] = c.n_tokens;
    }
    CHECK_OK(ds_data_writer_commit(w));
    CHECK_STATUS(ds_data_writer_append(w, c.ids, 1), DS_ERR_STATE);
    CHECK_CONTAINS(ds_last_error(), "already committed");
    ds_data_writer_destroy(w);
    return c;
}

static void free_corpus(Corpus* c) {
    free(c->ids);
    free(c->offsets);
}

TEST(round_trip_documents_and_stream_u16_u32) {
    for (int32_t tb = 2; tb <= 4; tb += 2) {
        const char* p = path_in(tb == 2 ? "rt16.dst" : "rt32.dst");
        const uint32_t vocab = tb == 2 ? 50257 : 200000;
        Corpus c = make_corpus(p, 300, 700, vocab, tb);
        ds_data_t* d = NULL;
        CHECK_OK(ds_data_open(p, NULL, &d));
        ds_data_info_t info;
        ds_data_info_init(&info);
        CHECK_OK(ds_data_get_info(d, &info));
        CHECK_EQ_INT(info.format_version, DS_DATA_FORMAT_VERSION);
        CHECK_EQ_INT(info.token_bytes, tb);
        CHECK_EQ_INT(info.n_documents, c.n_docs);
        CHECK_EQ_INT(info.n_tokens, c.n_tokens);
        CHECK_EQ_INT(info.vocab_size, vocab);
        /* layout: 64-byte header, tokens, 8-aligned offsets, nothing after */
        uint64_t tokens_end = 64 + c.n_tokens * (uint64_t)tb;
        CHECK_EQ_INT(info.file_bytes, ((tokens_end + 7) & ~7ull) + 8 * (c.n_docs + 1));
        CHECK_EQ_INT(file_size(p), (long)info.file_bytes);
        int32_t* buf = malloc(sizeof(int32_t) * 800);
        int bad = 0;
        for (uint64_t i = 0; i < c.n_docs; ++i) {
            uint64_t len = 0;
            CHECK_OK(ds_data_get_document(d, i, buf, 800, &len));
            if (len != c.offsets[i + 1] - c.offsets[i] ||
                memcmp(buf, c.ids + c.offsets[i], len * sizeof(int32_t)) != 0)
                bad++;
        }
        CHECK_EQ_INT(bad, 0);
        /* random ranges of the concatenated stream */
        for (int k = 0; k < 200; ++k) {
            uint64_t first = rnd_below((uint32_t)c.n_tokens);
            uint64_t n = rnd_below((uint32_t)(c.n_tokens - first) < 700 ? (uint32_t)(c.n_tokens - first) + 1 : 700);
            CHECK_OK(ds_data_read_tokens(d, first, n, buf));
            if (memcmp(buf, c.ids + first, n * sizeof(int32_t)) != 0) bad++;
        }
        CHECK_EQ_INT(bad, 0);
        /* (buf, cap, len) protocol */
        uint64_t i_long = 0;
        while (c.offsets[i_long + 1] - c.offsets[i_long] < 2) i_long++;
        uint64_t len = 0;
        buf[0] = -7;
        CHECK_STATUS(ds_data_get_document(d, i_long, buf, 1, &len), DS_ERR_BUFFER_TOO_SMALL);
        CHECK_EQ_INT(len, c.offsets[i_long + 1] - c.offsets[i_long]);
        CHECK_EQ_INT(buf[0], -7);
        CHECK_STATUS(ds_data_get_document(d, c.n_docs, buf, 800, &len), DS_ERR_INVALID_ARG);
        CHECK_CONTAINS(ds_last_error(), "index=300 is outside [0, 300)");
        CHECK_STATUS(ds_data_read_tokens(d, c.n_tokens - 2, 3, buf), DS_ERR_INVALID_ARG);
        CHECK_CONTAINS(ds_last_error(), "is beyond the");
        /* full verification: checksum and vocab */
        ds_data_options_t o;
        ds_data_options_init(&o);
        o.verify = DS_DATA_VERIFY_FULL;
        ds_data_t* d2 = NULL;
        CHECK_OK(ds_data_open(p, &o, &d2));
        ds_data_close(d2);
        free(buf);
        ds_data_close(d);
        free_corpus(&c);
    }
}

TEST(writer_rejects_bad_ids_and_discards_uncommitted) {
    ds_data_writer_options_t o;
    ds_data_writer_options_init(&o);
    o.vocab_size = 100;
    ds_data_writer_t* w = NULL;
    const char* p = path_in("bad.dst");
    CHECK_OK(ds_data_writer_create(p, &o, &w));
    int32_t ids[3] = {5, 100, 7};
    CHECK_STATUS(ds_data_writer_append(w, ids, 3), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "ids[1]=100 is outside [0, 100)");
    int32_t neg = -1;
    CHECK_STATUS(ds_data_writer_append(w, &neg, 1), DS_ERR_INVALID_ARG);
    ds_data_writer_destroy(w); /* never committed: nothing at p, no temporary left */
    CHECK_EQ_INT(file_size(p), -1);
    CHECK(system("ls /tmp >/dev/null") == 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' | grep tmp)\"", g_dir);
    CHECK(system(cmd) == 0);

    o.token_bytes = 3;
    CHECK_STATUS(ds_data_writer_create(p, &o, &w), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->token_bytes=3");
    CHECK(w == NULL);
    ds_data_writer_options_init(&o);
    o.vocab_size = 70000; /* u16 cannot hold it */
    CHECK_STATUS(ds_data_writer_create(p, &o, &w), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "use token_bytes=4");
    ds_data_writer_options_init(&o);
    o.struct_size = 4;
    CHECK_STATUS(ds_data_writer_create(p, &o, &w), DS_ERR_VERSION);
    CHECK_STATUS(ds_data_writer_create("/nonexistent-dir/x.dst", NULL, &w), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "/nonexistent-dir/x.dst");
    CHECK_STATUS(ds_data_writer_append(NULL, ids, 1), DS_ERR_INVALID_HANDLE);
    ds_data_writer_destroy(NULL);
}

/* Expect DS_ERR_CORRUPT naming the file and a byte offset. */
static void expect_corrupt(const char* p, int32_t verify, const char* offset_text, const char* what) {
    ds_data_options_t o;
    ds_data_options_init(&o);
    o.verify = verify;
    ds_data_t* d = NULL;
    CHECK_STATUS(ds_data_open(p, &o, &d), DS_ERR_CORRUPT);
    CHECK(d == NULL);
    CHECK_CONTAINS(ds_last_error(), "ds_data_open: ");
    CHECK_CONTAINS(ds_last_error(), p);
    CHECK_CONTAINS(ds_last_error(), offset_text);
    CHECK_CONTAINS(ds_last_error(), what);
}

TEST(corrupt_and_truncated_files_are_rejected_with_file_and_offset) {
    const char* good = path_in("good.dst");
    Corpus c = make_corpus(good, 50, 100, 1000, 2);
    const long size = file_size(good);
    const char* p = path_in("broken.dst");

    copy_file(good, p, 40); /* shorter than the header */
    expect_corrupt(p, 1, "at byte offset 40", "fewer than the 64-byte header");
    copy_file(good, p, size - 3); /* cut in the offsets */
    char want[64];
    snprintf(want, sizeof want, "at byte offset %ld", size - 3);
    expect_corrupt(p, 1, want, "truncated");
    copy_file(good, p, 64 + 10); /* cut in the tokens */
    expect_corrupt(p, 0, "at byte offset 74", "truncated");
    copy_file(good, p, -1);
    {
        FILE* f = fopen(p, "ab");
        fputs("junk", f);
        fclose(f);
    }
    snprintf(want, sizeof want, "at byte offset %ld", size);
    expect_corrupt(p, 0, want, "4 unexpected bytes");

    copy_file(good, p, -1);
    patch_file(p, 0, "XSTOKENS", 8);
    expect_corrupt(p, 0, "at byte offset 0", "bad magic");
    copy_file(good, p, -1);
    uint32_t v = 3;
    patch_file(p, 12, &v, 4); /* token width: the header checksum catches it */
    expect_corrupt(p, 0, "at byte offset 60", "header checksum");

    /* a bad document offset (not covered by the header checksum) */
    copy_file(good, p, -1);
    const long offsets_at = size - 8 * 51;
    uint64_t big = 1u << 30;
    patch_file(p, offsets_at + 8 * 7, &big, 8);
    snprintf(want, sizeof want, "at byte offset %ld", offsets_at + 8 * 7);
    expect_corrupt(p, 1, want, "offsets[7]=1073741824 is beyond the");
    /* with verify=HEADER it opens, but reading that document fails without reading past the end */
    ds_data_options_t o;
    ds_data_options_init(&o);
    o.verify = DS_DATA_VERIFY_HEADER;
    ds_data_t* d = NULL;
    CHECK_OK(ds_data_open(p, &o, &d));
    int32_t buf[200];
    uint64_t len = 0;
    CHECK_STATUS(ds_data_get_document(d, 6, buf, 200, &len), DS_ERR_CORRUPT);
    CHECK_CONTAINS(ds_last_error(), "document 6 spans");
    ds_data_close(d);

    /* a flipped token byte: only the full check reads the tokens */
    copy_file(good, p, -1);
    unsigned char b = 0xFF;
    patch_file(p, 64 + 2 * 5, &b, 1);
    d = NULL;
    CHECK_OK(ds_data_open(p, NULL, &d));
    ds_data_close(d);
    expect_corrupt(p, 2, "at byte offset 64", "checksum");

    CHECK_STATUS(ds_data_open(path_in("missing.dst"), NULL, &d), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "missing.dst");
    /* a newer format version is DS_ERR_VERSION (header checksum recomputed by the test) */
    free_corpus(&c);
}

TEST(options_and_handles_are_checked) {
    ds_data_t* d = NULL;
    CHECK_STATUS(ds_data_open(NULL, NULL, &d), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_data_open("x", NULL, NULL), DS_ERR_INVALID_ARG);
    ds_data_options_t o;
    ds_data_options_init(&o);
    o.verify = 7;
    CHECK_STATUS(ds_data_open("x", &o, &d), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->verify=7");
    ds_data_info_t info;
    ds_data_info_init(&info);
    CHECK_STATUS(ds_data_get_info(NULL, &info), DS_ERR_INVALID_HANDLE);
    ds_sampler_t* s = NULL;
    ds_sampler_options_t so;
    ds_sampler_options_init(&so);
    so.n_samples = 4;
    CHECK_OK(ds_sampler_create(&so, &s));
    CHECK_STATUS(ds_data_get_info((ds_data_t*)s, &info), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "is not a live ds_data_t");
    ds_sampler_destroy(s);
    ds_data_close(NULL);
    /* an old, smaller info struct is not overrun */
    const char* p = path_in("small.dst");
    Corpus c = make_corpus(p, 3, 5, 50, 2);
    CHECK_OK(ds_data_open(p, NULL, &d));
    unsigned char raw[sizeof(ds_data_info_t) + 8];
    memset(raw, 0xAB, sizeof raw);
    ds_data_info_t* old = (ds_data_info_t*)raw;
    old->struct_size = 24; /* up to n_documents */
    old->abi_version = DS_ABI_VERSION;
    CHECK_OK(ds_data_get_info(d, old));
    CHECK_EQ_INT(old->n_documents, 3);
    CHECK_EQ_INT(raw[24], 0xAB);
    ds_data_close(d);
    free_corpus(&c);
}

TEST(metric_files_round_trip_and_reject_damage) {
    int64_t v[100];
    for (int i = 0; i < 100; ++i) v[i] = (int64_t)rnd_below(1000) - 10;
    const char* p = path_in("m.metric");
    CHECK_OK(ds_data_metric_write(p, v, 100));
    CHECK_EQ_INT(file_size(p), 32 + 800);
    CHECK_STATUS(ds_data_metric_write(NULL, v, 100), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_data_metric_write(p, NULL, 3), DS_ERR_INVALID_ARG);
}

/* ---- tokenizers ---- */

TEST(byte_tokenizer_round_trips_any_bytes) {
    ds_data_tokenizer_t* t = NULL;
    CHECK_OK(ds_data_tokenizer_create(NULL, &t));
    int64_t vs = 0;
    CHECK_OK(ds_data_tokenizer_get_vocab_size(t, &vs));
    CHECK_EQ_INT(vs, 257);
    int32_t eot = 0;
    CHECK_OK(ds_data_tokenizer_get_eot(t, &eot));
    CHECK_EQ_INT(eot, 256);
    char text[4096];
    for (int i = 0; i < 4096; ++i) text[i] = (char)rnd_below(256);
    int32_t ids[4096];
    uint64_t n = 0;
    CHECK_STATUS(ds_data_tokenizer_encode(t, text, 4096, ids, 10, &n), DS_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(n, 4096);
    CHECK_OK(ds_data_tokenizer_encode(t, text, 4096, ids, 4096, &n));
    CHECK_EQ_INT(ids[7], (unsigned char)text[7]);
    char back[4096];
    uint64_t m = 0;
    CHECK_OK(ds_data_tokenizer_decode(t, ids, n, back, sizeof back, &m));
    CHECK_EQ_INT(m, 4096);
    CHECK(memcmp(back, text, 4096) == 0);
    int32_t bad[2] = {65, 300};
    CHECK_STATUS(ds_data_tokenizer_decode(t, bad, 2, back, sizeof back, &m), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "ids[1]=300");
    ds_data_tokenizer_destroy(t);
}

/* A small GPT-2-style vocabulary: byte b has id b (keys in GPT-2's byte alphabet), then merges. */
static uint32_t byte_cp(int b) {
    int n = 0;
    for (int x = 0; x < 256; ++x) {
        int printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
        if (x == b) return printable ? (uint32_t)x : (uint32_t)(256 + n);
        if (!printable) n++;
    }
    return 0;
}

static const char* const kMerges[][3] = {
    /* left, right, merged (as GPT-2 text; \u0120 is the space byte) */
    {"h", "e", "he"},           {"l", "l", "ll"},        {"he", "ll", "hell"},    {"hell", "o", "hello"},
    {"o", "r", "or"},           {"\\u0120", "w", "\\u0120w"}, {"\\u0120w", "or", "\\u0120wor"},
    {"l", "d", "ld"},           {"\\u0120wor", "ld", "\\u0120world"},
};

static void write_gpt2_files(const char* vocab_path, const char* merges_path) {
    FILE* f = fopen(vocab_path, "w");
    fputs("{", f);
    for (int b = 0; b < 256; ++b) fprintf(f, "\"\\u%04x\": %d, ", byte_cp(b), b);
    for (int k = 0; k < 9; ++k) fprintf(f, "\"%s\": %d, ", kMerges[k][2], 256 + k);
    fprintf(f, "\"<|endoftext|>\": %d}", 265);
    fclose(f);
    f = fopen(merges_path, "w");
    fputs("#version: 0.2\n", f);
    for (int k = 0; k < 9; ++k) {
        /* merges.txt holds the characters themselves (UTF-8): U+0120 is C4 A0 */
        const char* parts[2] = {kMerges[k][0], kMerges[k][1]};
        for (int q = 0; q < 2; ++q) {
            const char* s = parts[q];
            if (strncmp(s, "\\u0120", 6) == 0) {
                fputs("\xC4\xA0", f);
                s += 6;
            }
            fputs(s, f);
            fputc(q == 0 ? ' ' : '\n', f);
        }
    }
    fclose(f);
}

static ds_data_tokenizer_t* gpt2(void) {
    write_gpt2_files(path_in("vocab.json"), path_in("merges.txt"));
    ds_data_tokenizer_options_t o;
    ds_data_tokenizer_options_init(&o);
    o.kind = DS_DATA_TOKENIZER_GPT2;
    o.vocab_path = path_in("vocab.json");
    o.merges_path = path_in("merges.txt");
    ds_data_tokenizer_t* t = NULL;
    CHECK_OK(ds_data_tokenizer_create(&o, &t));
    return t;
}

static void expect_ids(ds_data_tokenizer_t* t, const char* text, const int32_t* want, uint64_t n_want) {
    int32_t ids[64];
    uint64_t n = 0;
    CHECK_OK(ds_data_tokenizer_encode(t, text, strlen(text), ids, 64, &n));
    CHECK_EQ_INT(n, n_want);
    for (uint64_t i = 0; i < n && i < n_want; ++i) {
        if (ids[i] != want[i]) fprintf(stderr, "  \"%s\": id %llu is %d, want %d\n", text, (unsigned long long)i, ids[i], want[i]);
        CHECK_EQ_INT(ids[i], want[i]);
    }
    char back[256];
    uint64_t m = 0;
    CHECK_OK(ds_data_tokenizer_decode(t, ids, n, back, sizeof back, &m));
    CHECK_EQ_INT(m, strlen(text));
    CHECK(memcmp(back, text, m) == 0);
}

TEST(gpt2_bpe_merges_by_rank_after_pretokenizing) {
    ds_data_tokenizer_t* t = gpt2();
    int64_t vs = 0;
    CHECK_OK(ds_data_tokenizer_get_vocab_size(t, &vs));
    CHECK_EQ_INT(vs, 266);
    int32_t eot = 0;
    CHECK_OK(ds_data_tokenizer_get_eot(t, &eot));
    CHECK_EQ_INT(eot, 265);
    /* "hello" -> h e l l o -> he l l o -> he ll o -> hell o -> hello; " world" -> ... -> \u0120world */
    const int32_t a[] = {259, 264};
    expect_ids(t, "hello world", a, 2);
    /* two spaces: the first stands alone (\s+(?!\S)), the second starts " world"; "!" is its own piece */
    const int32_t b[] = {259, 32, 264, 33};
    expect_ids(t, "hello  world!", b, 4);
    /* contractions split off; no merge for "it" */
    const int32_t c[] = {105, 116, 39, 115};
    expect_ids(t, "it's", c, 4);
    /* letters and numbers are separate pieces; UTF-8 letters stay in the word */
    const int32_t d[] = {116, 256, 32, 50, 48, 50, 52, 32, 99, 97, 102, 195, 169};
    expect_ids(t, "the 2024 caf\xC3\xA9", d, 13);
    /* trailing spaces, newlines */
    const int32_t e[] = {259, 10, 10, 264, 32, 32};
    expect_ids(t, "hello\n\n world  ", e, 6);
    /* any bytes round-trip, invalid UTF-8 included */
    char text[2000];
    for (int i = 0; i < 2000; ++i) text[i] = rnd_below(4) == 0 ? (char)rnd_below(256) : "hello world it's "[rnd_below(17)];
    int32_t ids[2000];
    uint64_t n = 0, m = 0;
    CHECK_OK(ds_data_tokenizer_encode(t, text, 2000, ids, 2000, &n));
    CHECK(n < 2000);
    char back[2000];
    CHECK_OK(ds_data_tokenizer_decode(t, ids, n, back, 2000, &m));
    CHECK_EQ_INT(m, 2000);
    CHECK(memcmp(back, text, 2000) == 0);
    ds_data_tokenizer_destroy(t);
}

TEST(gpt2_files_are_validated) {
    ds_data_tokenizer_options_t o;
    ds_data_tokenizer_options_init(&o);
    o.kind = DS_DATA_TOKENIZER_GPT2;
    ds_data_tokenizer_t* t = NULL;
    CHECK_STATUS(ds_data_tokenizer_create(&o, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "nothing is downloaded");
    o.vocab_path = path_in("nope.json");
    o.merges_path = path_in("merges.txt");
    CHECK_STATUS(ds_data_tokenizer_create(&o, &t), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "nope.json");
    write_file(path_in("v.json"), "[1, 2]", 6);
    o.vocab_path = path_in("v.json");
    CHECK_STATUS(ds_data_tokenizer_create(&o, &t), DS_ERR_CORRUPT);
    CHECK_CONTAINS(ds_last_error(), "not a JSON object");
    write_gpt2_files(path_in("vocab.json"), path_in("merges.txt"));
    write_file(path_in("m2.txt"), "#version: 0.2\nh e\nx y z\n", 24);
    o.vocab_path = path_in("vocab.json");
    o.merges_path = path_in("m2.txt");
    CHECK_STATUS(ds_data_tokenizer_create(&o, &t), DS_ERR_CORRUPT);
    CHECK_CONTAINS(ds_last_error(), "line 3");
    o.kind = 9;
    CHECK_STATUS(ds_data_tokenizer_create(&o, &t), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->kind=9");
}

/* ---- build ---- */

static int32_t g_progress_calls;
static int32_t count_progress(uint64_t done, uint64_t total, uint64_t docs, uint64_t tokens, void* user) {
    (void)docs;
    (void)tokens;
    g_progress_calls++;
    CHECK(done <= total);
    return user ? 1 : 0;
}

/* Decode document i of a dataset with tokenizer t into a malloc'ed string. */
static char* decode_doc(ds_data_t* d, ds_data_tokenizer_t* t, uint64_t i, uint64_t* out_len) {
    uint64_t n = 0;
    ds_data_get_document(d, i, NULL, 0, &n);
    int32_t* ids = malloc(sizeof(int32_t) * (n + 1));
    CHECK_OK(ds_data_get_document(d, i, ids, n, &n));
    uint64_t m = 0;
    ds_data_tokenizer_decode(t, ids, n, NULL, 0, &m);
    char* s = malloc(m + 1);
    CHECK_OK(ds_data_tokenizer_decode(t, ids, n, s, m, &m));
    s[m] = 0;
    *out_len = m;
    free(ids);
    return s;
}

TEST(build_round_trips_text_through_tokens_with_each_split) {
    /* Two files; a small chunk size so documents and pieces straddle chunk boundaries. */
    char f1[512], f2[512], out[512], out2[512];
    snprintf(f1, sizeof f1, "%s", path_in("a.txt"));
    snprintf(f2, sizeof f2, "%s", path_in("b.txt"));
    snprintf(out, sizeof out, "%s", path_in("built.dst"));
    snprintf(out2, sizeof out2, "%s", path_in("stopped.dst"));
    const char* t1 = "hello world\nit's the 2024 caf\xC3\xA9\r\n\n\nsecond  paragraph<|endoftext|>third\n";
    const char* t2 = "line one\n\nline two<|endoftext|>";
    write_file(f1, t1, strlen(t1));
    write_file(f2, t2, strlen(t2));
    const char* in[2] = {f1, f2};
    ds_data_tokenizer_t* toks[2] = {NULL, gpt2()};
    ds_data_tokenizer_create(NULL, &toks[0]);
    for (int k = 0; k < 2; ++k) {
        ds_data_build_options_t o;
        ds_data_build_options_init(&o);
        o.tokenizer = toks[k];
        o.chunk_bytes = 7;
        o.progress = count_progress;
        ds_data_build_stats_t st;
        ds_data_build_stats_init(&st);
        g_progress_calls = 0;
        /* split per file: decode(document) == the file */
        CHECK_OK(ds_data_build(out, in, 2, &o, &st));
        CHECK(g_progress_calls >= 10);
        CHECK_EQ_INT(st.n_files, 2);
        CHECK_EQ_INT(st.n_documents, 2);
        CHECK_EQ_INT(st.bytes_in, strlen(t1) + strlen(t2));
        CHECK_EQ_INT((long)st.bytes_out, file_size(out));
        ds_data_t* d = NULL;
        CHECK_OK(ds_data_open(out, NULL, &d));
        uint64_t m = 0;
        char* s = decode_doc(d, toks[k], 0, &m);
        CHECK_STR_EQ(s, t1);
        free(s);
        s = decode_doc(d, toks[k], 1, &m);
        CHECK_STR_EQ(s, t2);
        free(s);
        if (k == 1) { /* same ids as encoding the whole text at once */
            int32_t ids[200];
            uint64_t n = 0, n2 = 0;
            CHECK_OK(ds_data_tokenizer_encode(toks[k], t1, strlen(t1), ids, 200, &n));
            int32_t got[200];
            CHECK_OK(ds_data_get_document(d, 0, got, 200, &n2));
            CHECK_EQ_INT(n2, n);
            CHECK(memcmp(ids, got, n * 4) == 0);
        }
        ds_data_close(d);

        /* lines (the newline and a preceding \r are not part of a document; empty lines skipped) */
        o.split = DS_DATA_SPLIT_LINE;
        o.append_eot = 1;
        CHECK_OK(ds_data_build(out, in, 2, &o, &st));
        CHECK_EQ_INT(st.n_documents, 5);
        CHECK_OK(ds_data_open(out, NULL, &d));
        const char* lines[6] = {"hello world", "it's the 2024 caf\xC3\xA9", "second  paragraph<|endoftext|>third",
                                "line one", "line two<|endoftext|>", NULL};
        for (int i = 0; i < 5; ++i) {
            s = decode_doc(d, toks[k], (uint64_t)i, &m);
            char want[128];
            snprintf(want, sizeof want, "%s<|endoftext|>", lines[i]);
            CHECK_STR_EQ(s, want);
            free(s);
        }
        ds_data_close(d);

        /* paragraphs */
        o.split = DS_DATA_SPLIT_PARAGRAPH;
        o.append_eot = 0;
        CHECK_OK(ds_data_build(out, in, 2, &o, &st));
        CHECK_EQ_INT(st.n_documents, 4);
        CHECK_OK(ds_data_open(out, NULL, &d));
        s = decode_doc(d, toks[k], 0, &m);
        CHECK_STR_EQ(s, "hello world\nit's the 2024 caf\xC3\xA9");
        free(s);
        s = decode_doc(d, toks[k], 1, &m);
        CHECK_STR_EQ(s, "second  paragraph<|endoftext|>third");
        free(s);
        s = decode_doc(d, toks[k], 3, &m);
        CHECK_STR_EQ(s, "line two<|endoftext|>");
        free(s);
        ds_data_close(d);

        /* delimiter */
        o.split = DS_DATA_SPLIT_DELIMITER;
        o.delimiter = "<|endoftext|>";
        CHECK_OK(ds_data_build(out, in, 2, &o, &st));
        CHECK_EQ_INT(st.n_documents, 3); /* the empty piece after the last delimiter is skipped */
        CHECK_OK(ds_data_open(out, NULL, &d));
        s = decode_doc(d, toks[k], 1, &m);
        CHECK_STR_EQ(s, "third\n");
        free(s);
        s = decode_doc(d, toks[k], 2, &m);
        CHECK_STR_EQ(s, "line one\n\nline two");
        free(s);
        ds_data_close(d);
        o.keep_empty = 1;
        CHECK_OK(ds_data_build(out, in, 2, &o, &st));
        CHECK_EQ_INT(st.n_documents, 4);

        /* the progress callback stops the build: nothing is left behind */
        o.progress_user_data = (void*)1;
        CHECK_STATUS(ds_data_build(out2, in, 2, &o, &st), DS_ABORTED);
        CHECK_CONTAINS(ds_last_error(), "stopped by the progress callback");
        CHECK_EQ_INT(file_size(out2), -1);
    }
    ds_data_tokenizer_destroy(toks[0]);
    ds_data_tokenizer_destroy(toks[1]);
}

TEST(build_errors_name_the_problem) {
    const char* out = path_in("e.dst");
    const char* in[1] = {path_in("absent.txt")};
    CHECK_STATUS(ds_data_build(out, in, 1, NULL, NULL), DS_ERR_IO);
    CHECK_CONTAINS(ds_last_error(), "absent.txt");
    CHECK_STATUS(ds_data_build(out, in, 0, NULL, NULL), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_data_build(out, NULL, 1, NULL, NULL), DS_ERR_INVALID_ARG);
    ds_data_build_options_t o;
    ds_data_build_options_init(&o);
    o.split = DS_DATA_SPLIT_DELIMITER;
    write_file(path_in("x.txt"), "abc", 3);
    in[0] = path_in("x.txt");
    CHECK_STATUS(ds_data_build(out, in, 1, &o, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->delimiter");
    o.split = 9;
    CHECK_STATUS(ds_data_build(out, in, 1, &o, NULL), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->split=9");
}

/* The ds-data tool (built beside the tests: $DSABI_BUILD_DIR/bin/ds-data). */
TEST(ds_data_tool_builds_inspects_and_rejects) {
    const char* bd = getenv("DSABI_BUILD_DIR");
    char tool[600];
    snprintf(tool, sizeof tool, "%s/bin/ds-data", bd ? bd : ".");
    if (access(tool, X_OK) != 0) {
        printf("ds-data tool not found at %s: tool test skipped\n", tool);
        return;
    }
    char txt[512], dst[512], out[512], cmd[8192];
    snprintf(txt, sizeof txt, "%s", path_in("tool.txt"));
    snprintf(dst, sizeof dst, "%s", path_in("tool.dst"));
    snprintf(out, sizeof out, "%s", path_in("tool.out"));
    const char* text = "first paragraph\nstill first\n\nsecond paragraph\n";
    write_file(txt, text, strlen(text));
    snprintf(cmd, sizeof cmd, "'%s' build -q --split paragraph -o '%s' '%s' > '%s' && '%s' info '%s' >> '%s' && '%s' decode '%s' 1 >> '%s'",
             tool, dst, txt, out, tool, dst, out, tool, dst, out);
    CHECK_EQ_INT(system(cmd), 0);
    FILE* f = fopen(out, "r");
    char all[2000] = "";
    size_t n = f ? fread(all, 1, sizeof all - 1, f) : 0;
    all[n] = 0;
    if (f) fclose(f);
    CHECK_CONTAINS(all, "2 documents, 43 tokens");
    CHECK_CONTAINS(all, "format 1, u16 tokens, 2 documents, 43 tokens, vocab_size 257");
    CHECK_CONTAINS(all, "\nsecond paragraph"); /* decode prints the document's text */
    /* a truncated file: exit status 1 and the file and offset in the message */
    copy_file(dst, path_in("cut.dst"), 70);
    snprintf(cmd, sizeof cmd, "'%s' verify '%s' 2> '%s'", tool, path_in("cut.dst"), out);
    const int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    f = fopen(out, "r");
    n = f ? fread(all, 1, sizeof all - 1, f) : 0;
    all[n] = 0;
    if (f) fclose(f);
    CHECK_CONTAINS(all, "cut.dst' at byte offset 70: truncated");
}

int main(void) {
    scratch_init("data-format");
    RUN(round_trip_documents_and_stream_u16_u32);
    RUN(writer_rejects_bad_ids_and_discards_uncommitted);
    RUN(corrupt_and_truncated_files_are_rejected_with_file_and_offset);
    RUN(options_and_handles_are_checked);
    RUN(metric_files_round_trip_and_reject_damage);
    RUN(byte_tokenizer_round_trips_any_bytes);
    RUN(gpt2_bpe_merges_by_rank_after_pretokenizing);
    RUN(gpt2_files_are_validated);
    RUN(build_round_trips_text_through_tokens_with_each_split);
    RUN(build_errors_name_the_problem);
    RUN(ds_data_tool_builds_inspects_and_rejects);
    scratch_cleanup();
    return minitest_report();
}
