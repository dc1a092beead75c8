/* Distributed sampler: disjoint, covering, deterministic shares across 1-8 simulated ranks; padding
 * and drop_last as PyTorch's DistributedSampler; resume from a cursor; and the exact index order of
 * torch.utils.data.DistributedSampler, checked against Debian's python3-torch. */
#include <stdint.h>
#include <stdlib.h>

#include "dsabi.h"
#include "minitest.h"
#include "test_data_util.h"

static ds_sampler_t* make(uint64_t n, int32_t rank, int32_t world, int64_t seed, int32_t shuffle, int32_t drop_last) {
    ds_sampler_options_t o;
    ds_sampler_options_init(&o);
    o.n_samples = n;
    o.rank = rank;
    o.world_size = world;
    o.seed = seed;
    o.shuffle = shuffle;
    o.drop_last = drop_last;
    ds_sampler_t* s = NULL;
    CHECK_OK(ds_sampler_create(&o, &s));
    return s;
}

static int64_t* share(ds_sampler_t* s, int64_t epoch, uint64_t* n) {
    ds_sampler_get_indices(s, epoch, NULL, 0, n);
    int64_t* v = malloc(sizeof(int64_t) * (*n + 1));
    CHECK_OK(ds_sampler_get_indices(s, epoch, v, *n, n));
    return v;
}

TEST(shares_are_disjoint_cover_and_repeat_for_the_seed) {
    for (int32_t world = 1; world <= 8; ++world) {
        for (int drop = 0; drop <= 1; ++drop) {
            const uint64_t n = 1000 + rnd_below(1000);
            const int64_t seed = (int64_t)rnd_below(100000);
            int* seen = calloc(n, sizeof(int));
            uint64_t total = 0, per = 0;
            for (int32_t r = 0; r < world; ++r) {
                ds_sampler_t* s = make(n, r, world, seed, 1, drop);
                uint64_t k = 0;
                int64_t* v = share(s, 3, &k);
                int64_t len = 0;
                CHECK_OK(ds_sampler_get_length(s, &len));
                CHECK_EQ_INT(len, (int64_t)k);
                if (r == 0) per = k;
                CHECK_EQ_INT(k, per); /* every rank gets the same count */
                for (uint64_t i = 0; i < k; ++i) {
                    CHECK(v[i] >= 0 && (uint64_t)v[i] < n);
                    seen[v[i]]++;
                }
                total += k;
                /* the same seed gives the same share; another epoch a different one */
                ds_sampler_t* s2 = make(n, r, world, seed, 1, drop);
                uint64_t k2 = 0;
                int64_t* v2 = share(s2, 3, &k2);
                CHECK(k2 == k && memcmp(v, v2, k * 8) == 0);
                int64_t* v3 = share(s2, 4, &k2);
                CHECK(memcmp(v, v3, k * 8) != 0);
                free(v);
                free(v2);
                free(v3);
                ds_sampler_destroy(s);
                ds_sampler_destroy(s2);
            }
            if (drop) {
                /* floor: no index twice, n - n % world covered */
                uint64_t covered = 0;
                int twice = 0;
                for (uint64_t i = 0; i < n; ++i) {
                    covered += seen[i] > 0;
                    twice += seen[i] > 1;
                }
                CHECK_EQ_INT(twice, 0);
                CHECK_EQ_INT(total, n - n % (uint64_t)world);
                CHECK_EQ_INT(covered, total);
            } else {
                /* ceil: every index at least once; exactly (total - n) padded repeats */
                uint64_t missing = 0, extra = 0;
                for (uint64_t i = 0; i < n; ++i) {
                    missing += seen[i] == 0;
                    extra += seen[i] > 1 ? (uint64_t)(seen[i] - 1) : 0;
                }
                CHECK_EQ_INT(missing, 0);
                CHECK_EQ_INT(total, (n + (uint64_t)world - 1) / (uint64_t)world * (uint64_t)world);
                CHECK_EQ_INT(extra, total - n);
            }
            free(seen);
        }
    }
}

TEST(padding_repeats_from_the_start_like_torch) {
    /* n=3, world=8, no shuffle: indices 0 1 2 0 1 2 0 1; rank r takes position r */
    for (int32_t r = 0; r < 8; ++r) {
        ds_sampler_t* s = make(3, r, 8, 0, 0, 0);
        uint64_t k = 0;
        int64_t* v = share(s, 0, &k);
        CHECK_EQ_INT(k, 1);
        CHECK_EQ_INT(v[0], r % 3);
        free(v);
        ds_sampler_destroy(s);
    }
    /* n=10, world=4, drop_last: num_samples = ceil((10-4)/4) = 2, ranks take 0..7 strided */
    ds_sampler_t* s = make(10, 1, 4, 0, 0, 1);
    uint64_t k = 0;
    int64_t* v = share(s, 0, &k);
    CHECK_EQ_INT(k, 2);
    CHECK_EQ_INT(v[0], 1);
    CHECK_EQ_INT(v[1], 5);
    free(v);
    ds_sampler_destroy(s);
}

TEST(resume_from_cursor_equals_an_uninterrupted_run) {
    const uint64_t n = 777;
    ds_sampler_t* a = make(n, 2, 3, 99, 1, 0);
    int64_t len = 0;
    CHECK_OK(ds_sampler_get_length(a, &len));
    /* uninterrupted: epochs 0..2 read in random-sized pieces */
    int64_t* full = malloc(sizeof(int64_t) * (size_t)len * 3);
    int64_t got = 0;
    for (int64_t e = 0; e < 3; ++e) {
        CHECK_OK(ds_sampler_set_epoch(a, e));
        uint64_t m = 0;
        do {
            CHECK_OK(ds_sampler_next(a, full + got, 1 + rnd_below(50), &m));
            got += (int64_t)m;
        } while (m > 0);
    }
    CHECK_EQ_INT(got, 3 * len);
    /* interrupted in epoch 1 at position 123: a new sampler resumes from the saved cursor */
    ds_sampler_t* b = make(n, 2, 3, 99, 1, 0);
    int64_t* part = malloc(sizeof(int64_t) * (size_t)len * 3);
    int64_t p = 0;
    uint64_t m = 0;
    CHECK_OK(ds_sampler_next(b, part, (uint64_t)len, &m));
    p += (int64_t)m;
    CHECK_OK(ds_sampler_set_epoch(b, 1));
    CHECK_OK(ds_sampler_next(b, part + p, 123, &m));
    p += (int64_t)m;
    int64_t ce = 0, cp = 0;
    CHECK_OK(ds_sampler_get_cursor(b, &ce, &cp));
    CHECK_EQ_INT(ce, 1);
    CHECK_EQ_INT(cp, 123);
    ds_sampler_destroy(b);
    ds_sampler_t* c = make(n, 2, 3, 99, 1, 0);
    CHECK_OK(ds_sampler_set_cursor(c, ce, cp));
    do {
        CHECK_OK(ds_sampler_next(c, part + p, 64, &m));
        p += (int64_t)m;
    } while (m > 0);
    CHECK_OK(ds_sampler_set_epoch(c, 2));
    do {
        CHECK_OK(ds_sampler_next(c, part + p, 64, &m));
        p += (int64_t)m;
    } while (m > 0);
    CHECK_EQ_INT(p, 3 * len);
    CHECK(memcmp(full, part, sizeof(int64_t) * (size_t)p) == 0);
    CHECK_STATUS(ds_sampler_set_cursor(c, 0, len + 1), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "position=260 is outside [0, 259]");
    free(full);
    free(part);
    ds_sampler_destroy(a);
    ds_sampler_destroy(c);
}

TEST(arguments_are_checked) {
    ds_sampler_options_t o;
    ds_sampler_options_init(&o);
    ds_sampler_t* s = NULL;
    CHECK_STATUS(ds_sampler_create(&o, &s), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "n_samples is 0");
    o.n_samples = 10;
    o.rank = 4;
    o.world_size = 4;
    CHECK_STATUS(ds_sampler_create(&o, &s), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "rank=4 is outside [0, world_size=4)");
    o.rank = 0;
    o.world_size = 0;
    CHECK_STATUS(ds_sampler_create(&o, &s), DS_ERR_INVALID_ARG);
    o.world_size = 20;
    o.drop_last = 1;
    CHECK_STATUS(ds_sampler_create(&o, &s), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "leaves no sample");
    o.drop_last = 2;
    CHECK_STATUS(ds_sampler_create(&o, &s), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opts->drop_last=2");
    CHECK_STATUS(ds_sampler_create(NULL, &s), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_sampler_set_epoch(NULL, 0), DS_ERR_INVALID_HANDLE);
    s = make(5, 0, 1, 0, 1, 0);
    int64_t buf[5];
    uint64_t n = 0;
    CHECK_STATUS(ds_sampler_get_indices(s, 0, buf, 4, &n), DS_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(n, 5);
    CHECK_STATUS(ds_sampler_set_epoch(s, -1), DS_ERR_INVALID_ARG);
    ds_sampler_destroy(s);
    ds_sampler_destroy(NULL);
}

/* torch's DistributedSampler order, from /usr/bin/python3 (python3-torch). */
static const char* const kTorchScript =
    "import sys, torch\n"
    "from torch.utils.data import DistributedSampler\n"
    "for line in sys.stdin:\n"
    "    n, w, r, seed, e, sh, dl = map(int, line.split())\n"
    "    s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=bool(sh), seed=seed, drop_last=bool(dl))\n"
    "    s.set_epoch(e)\n"
    "    print(' '.join(map(str, list(s))))\n";

TEST(order_matches_torch_distributed_sampler) {
    /* cases: n, world, rank, seed, epoch, shuffle, drop_last */
    static const long long cases[][7] = {
        {1000, 8, 3, 42, 0, 1, 0},      {1000, 8, 7, 42, 5, 1, 0},   {17, 4, 1, 0, 0, 1, 0},
        {17, 4, 3, 0, 2, 1, 1},         {5, 8, 6, 1, 0, 1, 0},       {10, 3, 2, 0, 0, 0, 0},
        {100000, 3, 1, 7, 1, 1, 0},     {2, 1, 0, 123456789, 9, 1, 0}, {4099, 2, 0, 4294967301LL, 0, 1, 0},
        {65537, 5, 4, 2024, 3, 1, 1},   {1, 1, 0, 5, 0, 1, 0},
    };
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    const char* script = path_in("torch_order.py");
    write_file(script, kTorchScript, strlen(kTorchScript));
    const char* input = path_in("cases.txt");
    FILE* f = fopen(input, "w");
    for (int i = 0; i < n_cases; ++i)
        fprintf(f, "%lld %lld %lld %lld %lld %lld %lld\n", cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4],
                cases[i][5], cases[i][6]);
    fclose(f);
    char cmd[1200];
    /* Debian's python3-torch serves /usr/bin/python3; elsewhere DSABI_TORCH_PYTHON names one. */
    const char* py = getenv("DSABI_TORCH_PYTHON");
    if (!py || !*py) py = "/usr/bin/python3";
    snprintf(cmd, sizeof cmd, "%s -c \"exec(open('%s').read())\" < '%s'", py, script, input);
    FILE* p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    int checked = 0;
    for (int i = 0; i < n_cases; ++i) {
        ds_sampler_t* s = make((uint64_t)cases[i][0], (int32_t)cases[i][2], (int32_t)cases[i][1], cases[i][3],
                               (int32_t)cases[i][5], (int32_t)cases[i][6]);
        uint64_t k = 0;
        int64_t* v = share(s, cases[i][4], &k);
        int mismatch = 0;
        for (uint64_t j = 0; j < k; ++j) {
            long long t = -1;
            if (fscanf(p, "%lld", &t) != 1) {
                mismatch++;
                break;
            }
            if (t != v[j] && mismatch++ < 3)
                fprintf(stderr, "  case %d: index %llu: torch %lld, dsabi %lld\n", i, (unsigned long long)j, t, (long long)v[j]);
        }
        CHECK_EQ_INT(mismatch, 0);
        checked += mismatch == 0;
        free(v);
        ds_sampler_destroy(s);
    }
    const int rc = pclose(p);
    if (rc != 0) fprintf(stderr, "  python3 with torch failed (exit %d): install python3-torch (scripts/setup.sh)\n", rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(checked, n_cases);
    printf("torch order: %d/%d DistributedSampler cases identical\n", checked, n_cases);
}

int main(void) {
    scratch_init("data-sampler");
    RUN(shares_are_disjoint_cover_and_repeat_for_the_seed);
    RUN(padding_repeats_from_the_start_like_torch);
    RUN(resume_from_cursor_equals_an_uninterrupted_run);
    RUN(arguments_are_checked);
    RUN(order_matches_torch_distributed_sampler);
    scratch_cleanup();
    return minitest_report();
}
