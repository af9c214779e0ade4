/* SPDX-License-Identifier: MIT */
/* Unit tests of runtime/sched.c, the controlled scheduler, on the bare runtime (no VM):
 * the schedule file's reader, and raw pthreads taking turns by the token, the same
 * interleaving and digest for the same seed, virtual time and a deadlock's report. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/runtime.h"
#include "runtime/sched.h"

#include "rt_helpers.h"

/* ---- the reader ---- */

static int read_text(const char *text, rt_sched_config *cfg, char *err, size_t n)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    ck_assert_ptr_nonnull(f);
    int rc = rt_sched_read(f, cfg, err, n);
    fclose(f);
    return rc;
}

START_TEST(test_read_good)
{
    rt_sched_config cfg;
    char err[256] = "";
    int rc = read_text("gilvm-schedule 1\n"
                       "strategy pct:3 seed 1234 steps-estimate 500\n"
                       "program t.gasm\nsteps 211\ndigest 9f3c0a1b2c3d4e5f\n"
                       "# step thread kind where\n"
                       "12 2 preempt t.gasm:14\n"
                       "40 1.3 switch lock_acquire t.gasm:20\n", &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(cfg.strategy, RT_SCHED_REPLAY);
    ck_assert_str_eq(cfg.replay_strategy, "pct:3");
    ck_assert_uint_eq(cfg.seed, 1234);
    ck_assert_uint_eq(cfg.steps_estimate, 500);
    ck_assert_uint_eq(cfg.nreplay, 2);
    ck_assert_uint_eq(cfg.replay[0].step, 12);
    ck_assert_int_eq(cfg.replay[0].interp, 0);
    ck_assert_uint_eq(cfg.replay[0].thread, 2);
    ck_assert_uint_eq(cfg.replay[1].step, 40);
    ck_assert_int_eq(cfg.replay[1].interp, 1);
    ck_assert_uint_eq(cfg.replay[1].thread, 3);
    free((void *)cfg.replay);
}
END_TEST

START_TEST(test_read_bad)
{
    static const char *const bad[][2] = {
        {"", "empty file"},
        {"schedule 1\n", "line 1: not a gilvm schedule file"},
        {"gilvm-schedule 1\nstrategy\n", "line 2: bad strategy line"},
        {"gilvm-schedule 1\nx 2 preempt a:1\n", "line 2: expected 'STEP THREAD KIND WHERE'"},
        {"gilvm-schedule 1\n5 two preempt a:1\n", "line 2: bad thread"},
        {"gilvm-schedule 1\n5 2 preempt a:1\n5 1 switch a:2\n", "line 3: steps must increase"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rt_sched_config cfg;
        char err[256] = "";
        ck_assert_int_eq(read_text(bad[i][0], &cfg, err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad[i][1]) != NULL, "'%s': got '%s'", bad[i][0], err);
    }
}
END_TEST

/* ---- threads taking turns ---- */

enum { NWORKERS = 3, NROUNDS = 30 };

static char order[NWORKERS * NROUNDS + 1];
static size_t norder;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static int ndone;

static int all_done(void *p)
{
    (void)p;
    return ndone == NWORKERS;
}

static void *worker(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    rt_thread_attach(t);            /* waits for the token */
    for (int i = 0; i < NROUNDS; i++) {
        order[norder++] = (char)('a' + t->id - 2);     /* only the token holder runs */
        rt_sched_yield(t, "test");
    }
    pthread_mutex_lock(&done_mu);
    ndone++;
    pthread_mutex_unlock(&done_mu);
    rt_thread_delete_current(t);
    return NULL;
}

/* Runs NWORKERS threads under `cfg`; their interleaving into out, the digest into *digest. */
static void run_workers(rt_sched_config *cfg, char *out, uint64_t *digest)
{
    start();
    rt_thread *main = rt_thread_current();
    norder = 0;
    ndone = 0;
    ck_assert_int_eq(rt_sched_start(cfg, main), 0);
    pthread_t tids[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        rt_thread *t = rt_thread_new(main->interp, RT_WHENCE_THREADING);
        ck_assert_int_eq(rt_sched_add(t), 0);
        ck_assert_int_eq(pthread_create(&tids[i], NULL, worker, t), 0);
        rt_sched_yield(main, "thread_start");
    }
    ck_assert_int_eq(rt_sched_block(main, &done_mu, all_done, NULL, 0, "join"), 1);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(tids[i], NULL);
    order[norder] = 0;
    strcpy(out, order);
    rt_sched_summary s;
    ck_assert_int_eq(rt_sched_summary_get(&s), 0);
    *digest = s.digest;
    ck_assert_uint_gt(s.steps, NWORKERS * NROUNDS);
    rt_sched_stop();
    stop();
}

START_TEST(test_same_seed_same_interleaving)
{
    char a[sizeof order], b[sizeof order], c[sizeof order];
    uint64_t da, db, dc;
    rt_sched_config cfg = {.strategy = RT_SCHED_RANDOM, .seed = 42};
    run_workers(&cfg, a, &da);
    run_workers(&cfg, b, &db);
    ck_assert_str_eq(a, b);
    ck_assert_uint_eq(da, db);
    ck_assert_uint_eq(strlen(a), NWORKERS * NROUNDS);
    cfg.seed = 43;
    run_workers(&cfg, c, &dc);
    ck_assert_msg(strcmp(a, c) || da != dc, "seeds 42 and 43 ran alike: %s", a);
    /* Every worker interleaved with another at least once (random switches often). */
    ck_assert_msg(strstr(a, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == NULL, "%s", a);
}
END_TEST

START_TEST(test_pct_same_seed)
{
    char a[sizeof order], b[sizeof order];
    uint64_t da, db;
    rt_sched_config cfg = {.strategy = RT_SCHED_PCT, .seed = 7, .depth = 3,
                           .steps_estimate = 100};
    run_workers(&cfg, a, &da);
    run_workers(&cfg, b, &db);
    ck_assert_str_eq(a, b);
    ck_assert_uint_eq(da, db);
}
END_TEST

static int never(void *p)
{
    (void)p;
    return 0;
}

START_TEST(test_virtual_time_jumps)
{
    start();
    rt_thread *main = rt_thread_current();
    rt_sched_config cfg = {.strategy = RT_SCHED_RANDOM, .seed = 1};
    ck_assert_int_eq(rt_sched_start(&cfg, main), 0);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    uint64_t t0 = rt_sched_clock_ns(), real0 = rt_now_ns();
    uint64_t hour = 3600ull * 1000000000ull;
    ck_assert_int_eq(rt_sched_block(main, &mu, never, NULL, t0 + hour, "sleep"), 0);
    ck_assert_uint_ge(rt_sched_clock_ns() - t0, hour);
    ck_assert_uint_lt(rt_now_ns() - real0, DEADLINE_NS);
    rt_sched_stop();
    stop();
}
END_TEST

static void deadlock_report(const char *report)
{
    /* Check runs this test forked: the status tells the parent what the report said. */
    _exit(strstr(report, "gilvm: deadlock: no thread can run (1 thread blocked") ? 3 : 4);
}

START_TEST(test_deadlock_calls_back)
{
    start();
    rt_thread *main = rt_thread_current();
    rt_sched_config cfg = {.strategy = RT_SCHED_RANDOM, .seed = 1, .deadlock = deadlock_report};
    ck_assert_int_eq(rt_sched_start(&cfg, main), 0);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    rt_sched_block(main, &mu, never, NULL, 0, "wait");
    ck_abort_msg("a block with nothing to wake it returned");
}
END_TEST

Suite *suite_sched(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, test_read_good);
    tcase_add_test(tc, test_read_bad);
    suite_add_tcase(s, tc);
    tc = tcase_create("token");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_same_seed_same_interleaving);
    tcase_add_test(tc, test_pct_same_seed);
    tcase_add_test(tc, test_virtual_time_jumps);
    tcase_add_exit_test(tc, test_deadlock_calls_back, 3);
    suite_add_tcase(s, tc);
    return s;
}
