/* Curriculum learning: difficulty per step for each schedule equals DeepSpeed's CurriculumScheduler
 * formula (values worked out by hand below), update_difficulty semantics, the three rounding floors,
 * config-driven schedules (legacy block and data_efficiency metrics), a custom schedule, errors. */
#include <stdint.h>
#include <stdlib.h>

#include "dsabi.h"
#include "minitest.h"
#include "test_data_util.h"

static ds_data_curriculum_t* make_root(int32_t type, int64_t lo, int64_t hi, int64_t total, int64_t step, double root,
                                       int32_t floor_mode) {
    ds_data_curriculum_options_t o;
    ds_data_curriculum_options_init(&o);
    o.schedule_type = type;
    o.min_difficulty = lo;
    o.max_difficulty = hi;
    o.total_curriculum_step = total;
    o.difficulty_step = step;
    o.root_degree = root;
    o.floor_mode = floor_mode;
    ds_data_curriculum_t* c = NULL;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    return c;
}

static void expect(ds_data_curriculum_t* c, const int64_t (*pairs)[2], int n) {
    for (int i = 0; i < n; ++i) {
        int64_t d = -1;
        CHECK_OK(ds_data_curriculum_get_difficulty(c, pairs[i][0], &d));
        if (d != pairs[i][1]) fprintf(stderr, "  step %lld: got %lld, want %lld\n", (long long)pairs[i][0], (long long)d, (long long)pairs[i][1]);
        CHECK_EQ_INT(d, pairs[i][1]);
    }
}

TEST(fixed_linear_matches_the_formula) {
    /* d = floor(step/100 * (1024 - 8) + 8); d -= d % 8; min(d, 1024) */
    ds_data_curriculum_t* c = make_root(DS_DATA_SCHEDULE_FIXED_LINEAR, 8, 1024, 100, 8, 0, DS_DATA_FLOOR_NONE);
    static const int64_t v[][2] = {{0, 8},    {1, 16},    {2, 24},    {10, 104},  {33, 336},
                                   {50, 512}, {99, 1008}, {100, 1024}, {150, 1024}};
    /* 1: 10.16+8=18.16 -> 18 -> 16; 2: 28.32 -> 24; 10: 109.6 -> 104; 33: 343.28 -> 336; 99: 1013.84 -> 1008 */
    expect(c, v, 9);
    ds_data_curriculum_destroy(c);
}

TEST(fixed_root_matches_the_formula) {
    /* d = floor((step/100)^(1/2) * 1016 + 8) rounded down to a multiple of 8 */
    ds_data_curriculum_t* c = make_root(DS_DATA_SCHEDULE_FIXED_ROOT, 8, 1024, 100, 8, 2, DS_DATA_FLOOR_NONE);
    static const int64_t v[][2] = {{0, 8}, {1, 104}, {4, 208}, {25, 512}, {50, 720}, {81, 920}, {100, 1024}, {400, 1024}};
    /* 1: 0.1*1016+8=109.6 -> 104; 4: 211.2 -> 208; 50: 0.7071*1016+8=726.4 -> 720; 81: 922.4 -> 920 */
    expect(c, v, 8);
    ds_data_curriculum_destroy(c);
    /* cube root, difficulty_step 16 */
    c = make_root(DS_DATA_SCHEDULE_FIXED_ROOT, 64, 2048, 1000, 16, 3, DS_DATA_FLOOR_NONE);
    static const int64_t w[][2] = {{1, 256}, {8, 448}, {125, 1056}, {999, 2032}};
    /* 1: 0.1*1984+64=262.4 -> 256; 8: 0.2*1984+64=460.8 -> 448; 125: 0.5*1984+64=1056; 999: 0.99967*1984+64=2047.3 -> 2032 */
    expect(c, w, 4);
    ds_data_curriculum_destroy(c);
}

TEST(rounding_floor_modes) {
    /* min 5, step 8: the rounded difficulty can fall below min (DeepSpeed 0.19.6 keeps 0) */
    static const int64_t none[][2] = {{0, 0}, {1, 8}, {10, 96}};
    static const int64_t at_min[][2] = {{0, 5}, {1, 8}, {10, 96}};
    static const int64_t at_step[][2] = {{0, 8}, {1, 8}, {10, 96}};
    ds_data_curriculum_t* c = make_root(DS_DATA_SCHEDULE_FIXED_LINEAR, 5, 100, 10, 8, 0, DS_DATA_FLOOR_NONE);
    expect(c, none, 3);
    ds_data_curriculum_destroy(c);
    c = make_root(DS_DATA_SCHEDULE_FIXED_LINEAR, 5, 100, 10, 8, 0, DS_DATA_FLOOR_MIN);
    expect(c, at_min, 3);
    ds_data_curriculum_destroy(c);
    c = make_root(DS_DATA_SCHEDULE_FIXED_LINEAR, 5, 100, 10, 8, 0, DS_DATA_FLOOR_STEP_MIN);
    expect(c, at_step, 3);
    ds_data_curriculum_destroy(c);
}

TEST(fixed_discrete_and_update_semantics) {
    ds_data_curriculum_options_t o;
    ds_data_curriculum_options_init(&o);
    const int64_t diff[3] = {1, 2, 3}, steps[2] = {5, 10};
    o.schedule_type = DS_DATA_SCHEDULE_FIXED_DISCRETE;
    o.min_difficulty = 1;
    o.max_difficulty = 3;
    o.discrete_difficulty = diff;
    o.discrete_max_step = steps;
    o.n_discrete = 2;
    ds_data_curriculum_t* c = NULL;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    static const int64_t v[][2] = {{0, 1}, {5, 1}, {6, 2}, {10, 2}, {11, 3}, {100000, 3}};
    expect(c, v, 6);
    ds_data_curriculum_destroy(c);

    /* update(step) moves only while below the maximum, then stays */
    c = make_root(DS_DATA_SCHEDULE_FIXED_LINEAR, 8, 64, 10, 8, 0, DS_DATA_FLOOR_NONE);
    int64_t d = 0;
    CHECK_OK(ds_data_curriculum_get_current(c, &d));
    CHECK_EQ_INT(d, 8);
    CHECK_OK(ds_data_curriculum_update(c, 5, &d)); /* floor(28 + 8) = 36 -> 32 */
    CHECK_EQ_INT(d, 32);
    CHECK_OK(ds_data_curriculum_update(c, 10, &d));
    CHECK_EQ_INT(d, 64);
    CHECK_OK(ds_data_curriculum_update(c, 1, &d)); /* at the maximum: no longer updated */
    CHECK_EQ_INT(d, 64);
    CHECK_OK(ds_data_curriculum_get_difficulty(c, 1, &d));
    CHECK_EQ_INT(d, 8);
    ds_data_curriculum_destroy(c);
}

static int64_t square_schedule(int64_t step, void* user) { return step * step + *(int64_t*)user; }

TEST(custom_schedule) {
    ds_data_curriculum_options_t o;
    ds_data_curriculum_options_init(&o);
    int64_t base = 3;
    o.schedule_type = DS_DATA_SCHEDULE_CUSTOM;
    o.min_difficulty = 0;
    o.max_difficulty = 1000;
    o.custom_fn = square_schedule;
    o.custom_user_data = &base;
    ds_data_curriculum_t* c = NULL;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    int64_t d = 0;
    CHECK_OK(ds_data_curriculum_get_difficulty(c, 7, &d));
    CHECK_EQ_INT(d, 52);
    ds_data_curriculum_destroy(c);
    o.custom_fn = NULL;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "custom_fn");
}

TEST(schedules_from_the_config) {
    ds_config_t* cfg = parse_config(
        "{\"train_batch_size\": 8, \"curriculum_learning\": {\"enabled\": true, \"curriculum_type\": \"seqlen\","
        " \"min_difficulty\": 8, \"max_difficulty\": 1024, \"schedule_type\": \"fixed_root\","
        " \"schedule_config\": {\"total_curriculum_step\": 100, \"difficulty_step\": 8, \"root_degree\": 2}}}");
    CHECK(cfg != NULL);
    ds_data_curriculum_options_t o;
    ds_data_curriculum_options_init(&o);
    o.config = cfg;
    ds_data_curriculum_t* c = NULL;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    int64_t d = 0;
    CHECK_OK(ds_data_curriculum_get_difficulty(c, 50, &d));
    CHECK_EQ_INT(d, 720);
    ds_data_curriculum_destroy(c);
    /* explicit fields override the config */
    o.total_curriculum_step = 200;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    CHECK_OK(ds_data_curriculum_get_difficulty(c, 50, &d)); /* 0.5*1016+8 = 516 -> 512 */
    CHECK_EQ_INT(d, 512);
    ds_data_curriculum_destroy(c);
    ds_config_destroy(cfg);

    cfg = parse_config("{\"train_batch_size\": 8, \"data_efficiency\": {\"enabled\": true, \"seed\": 7, \"data_sampling\": {"
                "\"enabled\": true, \"curriculum_learning\": {\"enabled\": true, \"data_cluster_path\": \"/tmp\","
                " \"curriculum_metrics\": {\"vocabularyrarity\": {\"difficulty_type\": \"percentile\","
                " \"clustering_type\": \"single_cluster\", \"min_difficulty\": 1, \"max_difficulty\": 100,"
                " \"schedule_type\": \"fixed_discrete\", \"schedule_config\": {\"difficulty\": [1, 50, 100],"
                " \"max_step\": [10, 20]}}}}}}}");
    CHECK(cfg != NULL);
    ds_data_curriculum_options_init(&o);
    o.config = cfg;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    static const int64_t v[][2] = {{10, 1}, {11, 50}, {21, 100}};
    expect(c, v, 3);
    ds_data_curriculum_destroy(c);
    o.metric = "seqlen";
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_NOT_FOUND);
    CHECK_CONTAINS(ds_last_error(), "opts->metric=\"seqlen\"");
    ds_config_destroy(cfg);

    cfg = parse_config("{\"train_batch_size\": 8}");
    ds_data_curriculum_options_init(&o);
    o.config = cfg;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "no schedule");
    ds_config_destroy(cfg);
}

TEST(bad_schedules_are_rejected_naming_the_key) {
    ds_data_curriculum_options_t o;
    ds_data_curriculum_options_init(&o);
    ds_data_curriculum_t* c = NULL;
    o.schedule_type = DS_DATA_SCHEDULE_FIXED_LINEAR;
    o.min_difficulty = 8;
    o.max_difficulty = 64;
    o.difficulty_step = 8;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "total_curriculum_step=0");
    o.total_curriculum_step = 10;
    o.max_difficulty = 4;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "max_difficulty=4 is smaller than min_difficulty=8");
    o.max_difficulty = 64;
    o.schedule_type = DS_DATA_SCHEDULE_FIXED_ROOT;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "root_degree");
    o.schedule_type = 17;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "schedule_type=17");
    const int64_t diff[2] = {1, 2}, steps[2] = {5, 10};
    o.schedule_type = DS_DATA_SCHEDULE_FIXED_DISCRETE;
    o.discrete_difficulty = diff;
    o.discrete_max_step = steps;
    o.n_discrete = 1;
    CHECK_OK(ds_data_curriculum_create(&o, &c));
    ds_data_curriculum_destroy(c);
    o.n_discrete = 0;
    CHECK_STATUS(ds_data_curriculum_create(&o, &c), DS_ERR_INVALID_ARG);
    CHECK_STATUS(ds_data_curriculum_get_difficulty(NULL, 1, NULL), DS_ERR_INVALID_ARG);
    int64_t d;
    CHECK_STATUS(ds_data_curriculum_get_difficulty(NULL, 1, &d), DS_ERR_INVALID_HANDLE);
    ds_data_curriculum_destroy(NULL);
}

TEST(lr_scaling_as_deepspeed) {
    double lr = 0;
    CHECK_OK(ds_data_scale_lr(DS_DATA_LR_SCALING_LINEAR, 32, 48, 0.001, &lr));
    CHECK_NEAR(lr, 0.0015, 1e-15);
    CHECK_OK(ds_data_scale_lr(DS_DATA_LR_SCALING_SQRT, 32, 128, 0.001, &lr));
    CHECK_NEAR(lr, 0.002, 1e-15);
    CHECK_OK(ds_data_scale_lr(DS_DATA_LR_SCALING_NONE, 32, 128, 0.001, &lr));
    CHECK_NEAR(lr, 0.001, 0);
    CHECK_STATUS(ds_data_scale_lr(5, 32, 128, 0.001, &lr), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "method=5");
    CHECK_STATUS(ds_data_scale_lr(0, 0, 128, 0.001, &lr), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "base_batch_size=0");
}

int main(void) {
    ds_lib_options_t lo;
    ds_lib_options_init(&lo);
    lo.log_level = DS_LOG_ERROR; /* difficulty_step warnings are expected */
    ds_lib_init(&lo);
    RUN(fixed_linear_matches_the_formula);
    RUN(fixed_root_matches_the_formula);
    RUN(rounding_floor_modes);
    RUN(fixed_discrete_and_update_semantics);
    RUN(custom_schedule);
    RUN(schedules_from_the_config);
    RUN(bad_schedules_are_rejected_naming_the_key);
    RUN(lr_scaling_as_deepspeed);
    return minitest_report();
}
