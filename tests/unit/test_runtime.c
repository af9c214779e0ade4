/* SPDX-License-Identifier: MIT */
/* Unit tests of runtime/: lifecycle, interpreters, thread states and the GIL, driven with
 * raw pthreads and no bytecode.  Each test runs forked (the runtime is a singleton); no
 * assertion is tighter than "happens after" or a generous bound. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/runtime.h"

#include "rt_helpers.h"

/* Waits until `n` threads queue for `gil`. */
static void wait_waiters(rt_gil *gil, uint32_t n)
{
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (atomic_load(&gil->nwaiting) < n) {
        ck_assert_msg(rt_now_ns() < end, "no thread queued for the GIL");
        sleep_us(100);
    }
}

/* Polls t's breaker like the eval loop until the drop request shows or the deadline. */
static int poll_drop_request(rt_thread *t, uint64_t deadline_ns)
{
    uint64_t end = rt_now_ns() + deadline_ns;
    while (rt_now_ns() < end)
        if (rt_breaker_load(&t->eval_breaker) & RT_GIL_DROP_REQUEST)
            return 1;
    return 0;
}

/* ---- a worker that attaches once, appends its letter to a log, detaches ---- */

static char order_log[16];              /* written only while holding the GIL */
static int order_len;

typedef struct {
    rt_thread *t;
    char letter;
    int urgent;
} once_arg;

static void *attach_once(void *p)
{
    once_arg *a = p;
    rt_thread_bind(a->t);
    if (a->urgent)
        rt_thread_attach_urgent(a->t);
    else
        rt_thread_attach(a->t);
    order_log[order_len++] = a->letter;
    rt_thread_detach(a->t);
    return NULL;
}

static void spawn_once(pthread_t *th, once_arg *a, rt_interp *in, char letter, int urgent)
{
    a->t = rt_thread_new(in, RT_WHENCE_THREADING);
    ck_assert_ptr_nonnull(a->t);
    a->letter = letter;
    a->urgent = urgent;
    ck_assert_int_eq(pthread_create(th, NULL, attach_once, a), 0);
}

/* ---- lifecycle ---- */

START_TEST(test_init_finalize_twice)
{
    ck_assert_ptr_null(rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread)));
    ck_assert(rt_runtime_finalize().failed);
    for (int round = 0; round < 2; round++) {
        start();
        rt_interp *m = rt_interp_main();
        rt_thread *t = rt_thread_current();
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->id, 0);
        ck_assert_ptr_eq(t, rt_main_runtime.main_tstate);
        ck_assert_ptr_eq(rt_thread_bound(), t);
        ck_assert_int_eq(t->id, 1);
        ck_assert_int_eq(t->whence, RT_WHENCE_INIT);
        ck_assert_int_eq(atomic_load(&t->state), RT_ATTACHED);
        ck_assert_int_eq(t->recursion_limit, RT_RECURSION_LIMIT);
        ck_assert_int_eq(t->c_recursion_remaining, RT_C_RECURSION_LIMIT);
        ck_assert_ptr_eq(m->gil, &m->own);
        ck_assert_int_eq(atomic_load(&m->gil->locked), 1);
        ck_assert_ptr_eq(atomic_load(&m->gil->last_holder), t);
        ck_assert(rt_runtime_init(sizeof(rt_interp), sizeof(rt_thread), NULL).failed);
        stop();
        ck_assert_ptr_null(rt_thread_current());
        ck_assert_ptr_null(rt_thread_bound());
        ck_assert_ptr_null(rt_interp_main());
    }
}
END_TEST

START_TEST(test_init_rejects_small_sizes)
{
    ck_assert(rt_runtime_init(sizeof(rt_interp) - 1, sizeof(rt_thread), NULL).failed);
    ck_assert(rt_runtime_init(sizeof(rt_interp), sizeof(rt_thread) - 1, NULL).failed);
    start();
    ck_assert_ptr_null(rt_interp_new(NULL, 8, sizeof(rt_thread)));
    stop();
}
END_TEST

static int nthread_clear, ninterp_clear;
static void count_thread_clear(rt_thread *t) { (void)t; nthread_clear++; }
static void count_interp_clear(rt_interp *in) { (void)in; ninterp_clear++; }

START_TEST(test_finalize_frees_everything)
{
    rt_hooks hooks = {.thread_clear = count_thread_clear, .interp_clear = count_interp_clear};
    ck_assert(!rt_runtime_init(sizeof(rt_interp) + 64, sizeof(rt_thread) + 64, &hooks).failed);
    rt_interp *a = rt_interp_new(NULL, sizeof(rt_interp) + 64, sizeof(rt_thread) + 64);
    rt_interp *b = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    ck_assert_ptr_nonnull(rt_thread_new(a, RT_WHENCE_EXEC));
    ck_assert_ptr_nonnull(rt_thread_new(b, RT_WHENCE_EXEC));
    ck_assert_ptr_nonnull(rt_thread_new(rt_interp_main(), RT_WHENCE_THREADING));
    stop();
    ck_assert_int_eq(ninterp_clear, 3);
    ck_assert_int_eq(nthread_clear, 4);
}
END_TEST

static void do_fatal(void)
{
    rt_fatal("some_function", "some message");
}

START_TEST(test_fatal_message)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        dup2(fds[1], 2);
        do_fatal();
    }
    close(fds[1]);
    char buf[256] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    ck_assert_str_eq(buf, "gilvm: fatal error in some_function: some message\n");
}
END_TEST

START_TEST(test_attach_twice_is_fatal)
{
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));   /* the expected message */
    start();
    rt_thread_attach(rt_thread_new(rt_interp_main(), RT_WHENCE_UNKNOWN));
}
END_TEST

/* ---- interpreters ---- */

START_TEST(test_interp_ids)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_interp *a = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    rt_interp *b = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    ck_assert_int_eq(a->id, 1);
    ck_assert_int_eq(b->id, 2);
    ck_assert_ptr_eq(rt_main_runtime.interps, b);   /* newest first */
    ck_assert_ptr_eq(b->next, a);
    ck_assert_ptr_eq(a->next, m);
    rt_interp_delete(b);
    ck_assert_ptr_eq(rt_main_runtime.interps, a);
    rt_interp *c = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    ck_assert_int_eq(c->id, 3);                      /* never reused */
    rt_interp_delete(a);
    ck_assert_ptr_eq(c->next, m);
    rt_thread *t = rt_thread_new(c, RT_WHENCE_EXEC);
    ck_assert_int_eq(t->id, 1);                      /* thread ids are per interpreter */
    rt_interp_delete(c);                             /* deletes its leftover thread */
    ck_assert_ptr_eq(rt_main_runtime.interps, m);
    ck_assert_ptr_null(m->next);
    stop();
}
END_TEST

START_TEST(test_interp_own_and_shared_gil)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_interp_config legacy = RT_INTERP_CONFIG_LEGACY;
    rt_interp *own = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    rt_interp *shared = rt_interp_new(&legacy, sizeof(rt_interp), sizeof(rt_thread));
    ck_assert_ptr_eq(own->gil, &own->own);
    ck_assert_ptr_eq(shared->gil, m->gil);
    ck_assert_int_eq(own->config.allow_fork, 0);

    /* Main holds its GIL: a thread of `own` still runs... */
    pthread_t th;
    once_arg a;
    order_len = 0;
    spawn_once(&th, &a, own, 'O', 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(order_len, 1);
    /* ...while a thread of `shared` waits for main to detach. */
    spawn_once(&th, &a, shared, 'S', 0);
    wait_waiters(m->gil, 1);
    rt_thread *me = rt_thread_current();
    rt_thread_detach(me);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_thread_attach(me);
    ck_assert_int_eq(order_len, 2);
    ck_assert_mem_eq(order_log, "OS", 2);
    stop();
}
END_TEST

START_TEST(test_switch_interval)
{
    start();
    rt_interp *m = rt_interp_main();
    ck_assert_uint_eq(rt_interp_switch_interval(m), 5000);
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 0), -1);
    ck_assert_uint_eq(rt_interp_switch_interval(m), 5000);
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 1234), 0);
    ck_assert_uint_eq(rt_interp_switch_interval(m), 1234);
    rt_interp_config legacy = RT_INTERP_CONFIG_LEGACY;
    rt_interp *shared = rt_interp_new(&legacy, sizeof(rt_interp), sizeof(rt_thread));
    rt_interp *own = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    ck_assert_uint_eq(rt_interp_switch_interval(shared), 1234);   /* a property of the GIL */
    ck_assert_uint_eq(rt_interp_switch_interval(own), 5000);
    stop();
}
END_TEST

/* ---- thread states ---- */

START_TEST(test_thread_list)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    rt_thread *t2 = rt_thread_new(m, RT_WHENCE_THREADING);
    rt_thread *t3 = rt_thread_new(m, RT_WHENCE_THREADING);
    ck_assert_int_eq(t2->id, 2);
    ck_assert_int_eq(t3->id, 3);
    ck_assert_int_eq(atomic_load(&t2->state), RT_DETACHED);
    ck_assert_ptr_eq(m->threads, t3);
    ck_assert_ptr_null(t3->prev);
    ck_assert_ptr_eq(t3->next, t2);
    ck_assert_ptr_eq(t2->prev, t3);
    ck_assert_ptr_eq(t2->next, t1);
    ck_assert_ptr_eq(t1->prev, t2);
    ck_assert_ptr_null(t1->next);

    rt_thread_delete(t2);                            /* from the middle */
    ck_assert_ptr_eq(t3->next, t1);
    ck_assert_ptr_eq(t1->prev, t3);
    rt_thread_delete(t3);                            /* the head */
    ck_assert_ptr_eq(m->threads, t1);
    ck_assert_ptr_null(t1->prev);
    ck_assert_int_eq(rt_thread_new(m, RT_WHENCE_THREADING)->id, 4);   /* never reused */
    stop();
}
END_TEST

START_TEST(test_attach_detach_swap)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    rt_thread_detach(t1);
    ck_assert_ptr_null(rt_thread_current());
    ck_assert_int_eq(atomic_load(&t1->state), RT_DETACHED);
    ck_assert_int_eq(atomic_load(&m->gil->locked), 0);
    rt_thread_attach(t1);
    ck_assert_ptr_eq(rt_thread_current(), t1);
    ck_assert_int_eq(atomic_load(&m->gil->locked), 1);

    rt_thread *t2 = rt_thread_new(m, RT_WHENCE_GILSTATE);
    ck_assert_ptr_eq(rt_thread_swap(t2), t1);
    ck_assert_ptr_eq(rt_thread_current(), t2);
    ck_assert_int_eq(atomic_load(&t1->state), RT_DETACHED);
    ck_assert_int_eq(atomic_load(&t2->state), RT_ATTACHED);
    ck_assert_ptr_eq(atomic_load(&m->gil->last_holder), t2);
    ck_assert_uint_eq(t2->stats.switches, 1);
    ck_assert_ptr_eq(rt_thread_swap(NULL), t2);
    ck_assert_ptr_null(rt_thread_current());
    ck_assert_int_eq(atomic_load(&m->gil->locked), 0);
    ck_assert_ptr_null(rt_thread_swap(t1));
    ck_assert_ptr_eq(rt_thread_current(), t1);
    ck_assert_ptr_eq(rt_thread_bound(), t1);        /* swapping does not rebind */
    rt_thread_delete(t2);
    stop();
}
END_TEST

static uint64_t seen_ids[16];
static int seen_live[16], nseen;

static void collect(void *arg, uint64_t id, int live, const rt_thread_stats *s)
{
    (void)arg;
    (void)s;
    seen_ids[nseen] = id;
    seen_live[nseen++] = live;
}

START_TEST(test_delete_all_but_and_retired_stats)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    for (int i = 0; i < 3; i++)
        rt_thread_new(m, RT_WHENCE_THREADING);
    rt_thread_delete_all_but(m, t1);
    ck_assert_ptr_eq(m->threads, t1);
    ck_assert_ptr_null(t1->next);
    ck_assert_ptr_null(t1->prev);
    ck_assert_uint_eq(m->nretired, 3);

    rt_thread *t5 = rt_thread_new(m, RT_WHENCE_THREADING);
    ck_assert_int_eq(t5->id, 5);
    nseen = 0;
    rt_interp_stats_foreach(m, collect, NULL);
    ck_assert_int_eq(nseen, 5);
    ck_assert(seen_ids[0] == 5 && seen_live[0] == 1);
    ck_assert(seen_ids[1] == 1 && seen_live[1] == 1);
    uint64_t retired = 0;
    for (int i = 2; i < 5; i++) {
        ck_assert_int_eq(seen_live[i], 0);
        retired |= 1u << seen_ids[i];
    }
    ck_assert_uint_eq(retired, (1u << 2) | (1u << 3) | (1u << 4));
    stop();
}
END_TEST

START_TEST(test_stats_reservoir_and_percentile)
{
    uint64_t v[100];
    for (int i = 0; i < 100; i++)
        v[99 - i] = (uint64_t)i + 1;
    uint64_t out;
    ck_assert_int_eq(rt_stats_percentile(v, 100, 50, &out), 0);
    ck_assert_uint_eq(out, 50);
    ck_assert_int_eq(rt_stats_percentile(v, 100, 99, &out), 0);
    ck_assert_uint_eq(out, 99);
    ck_assert_int_eq(rt_stats_percentile(v, 100, 100, &out), 0);
    ck_assert_uint_eq(out, 100);
    ck_assert_int_eq(rt_stats_percentile(v, 100, 0, &out), 0);
    ck_assert_uint_eq(out, 1);
    ck_assert_int_eq(rt_stats_percentile(v, 0, 50, &out), -1);
    ck_assert_int_eq(rt_stats_percentile(v, 100, 101, &out), -1);

    start();
    rt_thread *t1 = rt_thread_current();
    rt_thread *x = rt_thread_new(rt_interp_main(), RT_WHENCE_UNKNOWN);
    rt_thread_detach(t1);
    for (int i = 0; i < 5000; i++) {
        rt_thread_attach(x);
        rt_thread_detach(x);
    }
    rt_thread_attach(t1);
    ck_assert_uint_eq(x->stats.hold_count, 5000);
    ck_assert_uint_eq(x->stats.wait_count, 5000);
    ck_assert_uint_eq(x->stats.nhold, RT_STATS_SAMPLES);
    ck_assert_uint_eq(x->stats.nwait, RT_STATS_SAMPLES);
    ck_assert_uint_eq(x->stats.switches, 1);
    uint64_t p50, p99;
    ck_assert_int_eq(rt_stats_percentile(x->stats.hold_samples, x->stats.nhold, 50, &p50), 0);
    ck_assert_int_eq(rt_stats_percentile(x->stats.hold_samples, x->stats.nhold, 99, &p99), 0);
    ck_assert(p50 <= p99 && p99 <= x->stats.hold_max_ns && x->stats.hold_max_ns <= x->stats.hold_ns);
    stop();
}
END_TEST

/* ---- the GIL ---- */

enum { NWORKERS = 4, ROUNDS = 20000 };
static long shared_counter;             /* both only touched while holding the GIL */
static int inside;
static _Atomic int exclusion_broken;

static void *count_worker(void *p)
{
    rt_thread *t = p;
    rt_thread_bind(t);
    for (int i = 0; i < ROUNDS; i++) {
        rt_thread_attach(t);
        if (inside++)
            atomic_store(&exclusion_broken, 1);
        shared_counter++;
        inside--;
        rt_thread_detach(t);
    }
    return NULL;
}

START_TEST(test_gil_exact_counter)
{
    start();
    rt_thread *t1 = rt_thread_current();
    pthread_t th[NWORKERS];
    rt_thread *ts[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        ts[i] = rt_thread_new(rt_interp_main(), RT_WHENCE_THREADING);
    rt_thread_detach(t1);
    for (int i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, count_worker, ts[i]), 0);
    for (int i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    rt_thread_attach(t1);
    ck_assert_int_eq(atomic_load(&exclusion_broken), 0);
    ck_assert_int_eq(shared_counter, (long)NWORKERS * ROUNDS);
    for (int i = 0; i < NWORKERS; i++)
        ck_assert_uint_eq(ts[i]->stats.hold_count, ROUNDS);
    stop();
}
END_TEST

START_TEST(test_lone_thread_never_asked)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 500), 0);
    rt_thread_new(m, RT_WHENCE_THREADING);          /* exists, never waits */
    ck_assert(!poll_drop_request(t1, 50 * MS));     /* 100 intervals */
    ck_assert_uint_eq(t1->stats.forced_switches, 0);
    stop();
}
END_TEST

START_TEST(test_drop_request_then_other_holder)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    const uint64_t interval_us = 20000;
    ck_assert_int_eq(rt_interp_set_switch_interval(m, interval_us), 0);
    order_len = 0;

    uint64_t t0 = rt_now_ns();
    pthread_t th;
    once_arg b;
    spawn_once(&th, &b, m, 'B', 0);
    ck_assert(poll_drop_request(t1, DEADLINE_NS));
    /* The waiter started waiting after t0 and waited a whole interval first. */
    ck_assert_uint_ge(rt_now_ns() - t0, interval_us * 1000);
    ck_assert_int_eq(order_len, 0);

    rt_gil_yield(t1);
    ck_assert_int_eq(order_len, 1);                 /* the next holder was B */
    ck_assert_int_eq(rt_breaker_load(&t1->eval_breaker) & RT_GIL_DROP_REQUEST, 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_uint_eq(t1->stats.forced_switches, 1);
    ck_assert_uint_eq(b.t->stats.drop_requests, 1);
    ck_assert_uint_eq(b.t->stats.switches, 1);
    stop();
}
END_TEST

START_TEST(test_yield_without_waiter)
{
    start();
    rt_thread *t1 = rt_thread_current();
    rt_breaker_set(&t1->eval_breaker, RT_GIL_DROP_REQUEST);     /* stale request */
    rt_gil_yield(t1);
    ck_assert_ptr_eq(rt_thread_current(), t1);
    ck_assert_uint_eq(t1->stats.forced_switches, 0);
    ck_assert_int_eq(rt_breaker_load(&t1->eval_breaker), 0);
    stop();
}
END_TEST

/* Two busy threads polling like the eval loop: every yield hands over to the other. */
typedef struct {
    rt_thread *t;
    int idx;
    long local;
    uint64_t yields;
    int same_after_yield;
} busy_arg;

static int last_runner = -1;            /* GIL-protected, as shared_counter */
static int finished[2];

static void *busy_worker(void *p)
{
    busy_arg *a = p;
    rt_thread_bind(a->t);
    rt_thread_attach(a->t);
    for (;;) {
        shared_counter++;
        a->local++;
        last_runner = a->idx;
        if (finished[!a->idx] || a->t->stats.forced_switches >= 3)
            break;
        if (rt_breaker_load(&a->t->eval_breaker) & RT_GIL_DROP_REQUEST) {
            rt_gil_yield(a->t);
            a->yields++;
            a->same_after_yield += last_runner == a->idx;
        }
    }
    finished[a->idx] = 1;
    rt_thread_detach(a->t);
    return NULL;
}

START_TEST(test_forced_switching)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 1000), 0);
    busy_arg a[2] = {{.idx = 0}, {.idx = 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        a[i].t = rt_thread_new(m, RT_WHENCE_THREADING);
    rt_thread_detach(t1);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, busy_worker, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    rt_thread_attach(t1);

    ck_assert_int_eq(shared_counter, a[0].local + a[1].local);
    ck_assert_uint_ge(a[0].t->stats.forced_switches + a[1].t->stats.forced_switches, 3);
    for (int i = 0; i < 2; i++) {
        rt_thread_stats *s = &a[i].t->stats, *other = &a[!i].t->stats;
        ck_assert_int_eq(a[i].same_after_yield, 0);
        ck_assert_uint_eq(s->forced_switches, a[i].yields);
        ck_assert_uint_ge(other->drop_requests, s->forced_switches);
        ck_assert_uint_ge(s->switches, 1);
        ck_assert_uint_le(s->hold_max_ns, s->hold_ns);
    }
    stop();
}
END_TEST

START_TEST(test_fifo_order)
{
    start();
    rt_interp *m = rt_interp_main();
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 10000000), 0);   /* no drop requests */
    order_len = 0;
    const char *letters = "CBDA";
    pthread_t th[4];
    once_arg a[4];
    for (int i = 0; i < 4; i++) {
        spawn_once(&th[i], &a[i], m, letters[i], 0);
        wait_waiters(m->gil, (uint32_t)i + 1);
    }
    rt_thread *t1 = rt_thread_current();
    rt_thread_detach(t1);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    rt_thread_attach(t1);
    ck_assert_int_eq(order_len, 4);
    ck_assert_mem_eq(order_log, letters, 4);
    stop();
}
END_TEST

START_TEST(test_urgent_goes_first_and_asks_at_once)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 10000000), 0);   /* 10 s */
    order_len = 0;
    pthread_t tb, tc;
    once_arg b, c;
    spawn_once(&tb, &b, m, 'B', 0);
    wait_waiters(m->gil, 1);
    spawn_once(&tc, &c, m, 'C', 1);
    /* Only an urgent waiter can ask within 5 s of a 10 s interval. */
    ck_assert(poll_drop_request(t1, 5000 * MS));
    rt_gil_yield(t1);
    ck_assert_int_eq(order_len, 2);
    ck_assert_mem_eq(order_log, "CB", 2);
    ck_assert_int_eq(pthread_join(tb, NULL), 0);
    ck_assert_int_eq(pthread_join(tc, NULL), 0);
    ck_assert_uint_eq(c.t->stats.drop_requests, 1);
    ck_assert_uint_eq(b.t->stats.drop_requests, 0);
    ck_assert_uint_eq(t1->stats.forced_switches, 1);
    stop();
}
END_TEST

/* A thread that held the GIL long and blocked briefly is not urgent. */
static _Atomic int hog_detached, main_attached;

static void *hog(void *p)
{
    rt_thread *t = p;
    rt_thread_bind(t);
    rt_thread_attach(t);
    uint64_t end = rt_now_ns() + 300 * MS;
    while (rt_now_ns() < end)
        ;
    rt_thread_detach(t);
    atomic_store(&hog_detached, 1);
    while (!atomic_load(&main_attached))
        sleep_us(50);
    rt_thread_attach_urgent(t);
    rt_thread_detach(t);
    return NULL;
}

START_TEST(test_urgent_needs_short_hold)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 10000000), 0);
    rt_thread *h = rt_thread_new(m, RT_WHENCE_THREADING);
    pthread_t th;
    rt_thread_detach(t1);
    ck_assert_int_eq(pthread_create(&th, NULL, hog, h), 0);
    while (!atomic_load(&hog_detached))
        sleep_us(50);
    rt_thread_attach(t1);
    atomic_store(&main_attached, 1);
    wait_waiters(m->gil, 1);
    ck_assert(!poll_drop_request(t1, 200 * MS));
    rt_thread_detach(t1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_thread_attach(t1);
    ck_assert_uint_eq(h->stats.drop_requests, 0);
    stop();
}
END_TEST

/* ---- deferred calls (rt_gil_defer): run at the release, or at a poll once due ---- */

static int deferred_runs;               /* calls of note_deferred */
static int deferred_saw_gil;            /* the GIL was locked during one of them */

static void note_deferred(void *gil)
{
    deferred_runs++;
    if (atomic_load(&((rt_gil *)gil)->locked))
        deferred_saw_gil = 1;
}

START_TEST(test_defer_runs_at_release)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    for (int i = 0; i < RT_GIL_DEFER_MAX; i++)
        rt_gil_defer(t1, note_deferred, m->gil);
    ck_assert_int_eq(deferred_runs, 0);
    ck_assert_int_eq(rt_breaker_load(&t1->eval_breaker), RT_GIL_DEFERRED);   /* the reminder */
    rt_gil_defer(t1, note_deferred, m->gil);            /* one too many: runs at once */
    ck_assert_int_eq(deferred_runs, 1);
    ck_assert_int_eq(deferred_saw_gil, 1);
    deferred_saw_gil = 0;
    rt_thread_detach(t1);
    ck_assert_int_eq(deferred_runs, 1 + RT_GIL_DEFER_MAX);
    ck_assert_int_eq(deferred_saw_gil, 0);              /* after the release */
    ck_assert_int_eq(rt_gil_deferred_count(), 0);
    rt_thread_attach(t1);
    ck_assert_int_eq(rt_breaker_load(&t1->eval_breaker), 0);
    rt_gil_defer(t1, note_deferred, m->gil);
    rt_gil_defer_barrier();                             /* runs the caller's own */
    ck_assert_int_eq(deferred_runs, 2 + RT_GIL_DEFER_MAX);
    ck_assert_int_eq(rt_gil_deferred_count(), 0);
    stop();
}
END_TEST

START_TEST(test_defer_reminder_keeps_the_gil)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    uint64_t switches = atomic_load(&m->gil->switch_number);
    rt_gil_defer(t1, note_deferred, m->gil);
    uint64_t due = rt_now_ns() + RT_GIL_DEFER_US * 1000;  /* due by then at the latest */
    /* A poll right away: not due (still deferred, reminder set) or due (run, cleared). */
    rt_gil_defer_poll(t1);
    ck_assert_int_eq(deferred_runs == 0,
                     (rt_breaker_load(&t1->eval_breaker) & RT_GIL_DEFERRED) != 0);
    if (deferred_runs == 0) {
        ck_assert_int_eq(rt_gil_deferred_count(), 1);
        while (rt_now_ns() < due)
            ;
        rt_gil_defer_poll(t1);                          /* due: runs it, holding the GIL */
    }
    ck_assert_int_eq(deferred_runs, 1);
    ck_assert_int_eq(deferred_saw_gil, 1);
    ck_assert_int_eq(rt_breaker_load(&t1->eval_breaker), 0);
    ck_assert_ptr_eq(rt_thread_current(), t1);
    ck_assert_ptr_eq(atomic_load(&m->gil->last_holder), t1);
    ck_assert_uint_eq(atomic_load(&m->gil->switch_number), switches);
    ck_assert_uint_eq(t1->stats.forced_switches, 0);
    ck_assert_uint_eq(t1->stats.hold_count, 0);         /* never released */
    stop();
}
END_TEST

START_TEST(test_defer_then_request_drops)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    ck_assert_int_eq(rt_interp_set_switch_interval(m, 1000), 0);
    order_len = 0;
    rt_gil_defer(t1, note_deferred, m->gil);
    pthread_t th;
    once_arg b;
    spawn_once(&th, &b, m, 'B', 0);
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (!(rt_breaker_load(&t1->eval_breaker) & RT_GIL_DROP_REQUEST))  /* B's, after an interval */
        ck_assert_msg(rt_now_ns() < end, "no drop request");
    ck_assert(rt_breaker_load(&t1->eval_breaker) & RT_GIL_DEFERRED);
    rt_gil_yield(t1);                                   /* a real request: drop, B runs */
    ck_assert_int_eq(order_len, 1);
    ck_assert_int_eq(deferred_runs, 1);
    ck_assert_uint_eq(t1->stats.forced_switches, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_uint_eq(b.t->stats.drop_requests, 1);
    stop();
}
END_TEST

/* Finalization: a thread waiting for the GIL, and one that attaches afterwards, exit. */
static _Atomic int daemon_ran, late_go;

static void *daemon_waiter(void *p)
{
    rt_thread *t = p;
    rt_thread_bind(t);
    rt_thread_attach(t);
    atomic_store(&daemon_ran, 1);
    return NULL;
}

static void *daemon_late(void *p)
{
    while (!atomic_load(&late_go))
        sleep_us(100);
    rt_thread_attach(p);                            /* `p` is freed: must only be compared */
    atomic_store(&daemon_ran, 1);
    return NULL;
}

START_TEST(test_finalize_makes_waiters_exit)
{
    start();
    rt_interp *m = rt_interp_main();
    pthread_t w, l;
    ck_assert_int_eq(pthread_create(&w, NULL, daemon_waiter,
                                    rt_thread_new(m, RT_WHENCE_THREADING)), 0);
    ck_assert_int_eq(pthread_create(&l, NULL, daemon_late,
                                    rt_thread_new(m, RT_WHENCE_THREADING)), 0);
    wait_waiters(m->gil, 1);
    stop();
    atomic_store(&late_go, 1);
    ck_assert_int_eq(pthread_join(w, NULL), 0);
    ck_assert_int_eq(pthread_join(l, NULL), 0);
    ck_assert_int_eq(atomic_load(&daemon_ran), 0);
}
END_TEST

/* Brief detaches (gil.c Notes, "Beyond CPython 5"): with nobody waiting the thread keeps
 * its GIL and gets it back with no switch; a thread that comes for it takes it at once
 * (the interval is 100 s: waiting one would time the test out), and the holder then takes
 * it back as any thread. */
static _Atomic int brief_taken;

static void *brief_taker(void *p)
{
    rt_thread *t = p;
    rt_thread_bind(t);
    rt_thread_attach(t);
    atomic_store(&brief_taken, 1);
    sleep_us(20000);                /* the holder's attach must wait for this release */
    rt_thread_detach(t);
    return NULL;
}

START_TEST(test_brief_detach)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t1 = rt_thread_current();
    rt_interp_set_switch_interval(m, 100000000);
    rt_thread_detach_brief(t1);                     /* nobody waits: still held */
    ck_assert_ptr_null(rt_thread_current());
    ck_assert_int_eq(atomic_load(&m->gil->locked), 1);
    ck_assert_int_eq(atomic_load(&t1->brief), RT_BRIEF_HELD);
    uint64_t holds = t1->stats.hold_count;
    rt_thread_attach(t1);
    ck_assert_ptr_eq(rt_thread_current(), t1);
    ck_assert_int_eq(atomic_load(&t1->brief), RT_BRIEF_NONE);
    ck_assert_uint_eq(t1->stats.hold_count, holds);     /* never released */

    rt_thread *t2 = rt_thread_new(m, RT_WHENCE_THREADING);
    pthread_t th;
    rt_thread_detach_brief(t1);
    ck_assert_int_eq(pthread_create(&th, NULL, brief_taker, t2), 0);
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (!atomic_load(&brief_taken) && rt_now_ns() < end)
        sleep_us(100);
    ck_assert_int_eq(atomic_load(&brief_taken), 1);     /* taken without an interval */
    ck_assert_int_eq(atomic_load(&t1->state), RT_DETACHED);
    ck_assert_uint_eq(t1->stats.hold_count, holds + 1); /* its hold closed for it */
    rt_thread_attach(t1);                               /* waits for t2's release */
    ck_assert_ptr_eq(atomic_load(&m->gil->last_holder), t1);
    ck_assert_int_eq(atomic_load(&t1->brief), RT_BRIEF_NONE);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_thread_delete(t2);
    stop();
}
END_TEST

Suite *suite_runtime(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_init_finalize_twice);
    tcase_add_test(tc, test_init_rejects_small_sizes);
    tcase_add_test(tc, test_finalize_frees_everything);
    tcase_add_test(tc, test_fatal_message);
    tcase_add_test_raise_signal(tc, test_attach_twice_is_fatal, SIGABRT);
    suite_add_tcase(s, tc);

    tc = tcase_create("states");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_interp_ids);
    tcase_add_test(tc, test_interp_own_and_shared_gil);
    tcase_add_test(tc, test_switch_interval);
    tcase_add_test(tc, test_thread_list);
    tcase_add_test(tc, test_attach_detach_swap);
    tcase_add_test(tc, test_delete_all_but_and_retired_stats);
    tcase_add_test(tc, test_stats_reservoir_and_percentile);
    suite_add_tcase(s, tc);

    tc = tcase_create("gil");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_gil_exact_counter);
    tcase_add_test(tc, test_lone_thread_never_asked);
    tcase_add_test(tc, test_drop_request_then_other_holder);
    tcase_add_test(tc, test_yield_without_waiter);
    tcase_add_test(tc, test_forced_switching);
    tcase_add_test(tc, test_fifo_order);
    tcase_add_test(tc, test_urgent_goes_first_and_asks_at_once);
    tcase_add_test(tc, test_urgent_needs_short_hold);
    tcase_add_test(tc, test_defer_runs_at_release);
    tcase_add_test(tc, test_defer_reminder_keeps_the_gil);
    tcase_add_test(tc, test_defer_then_request_drops);
    tcase_add_test(tc, test_finalize_makes_waiters_exit);
    tcase_add_test(tc, test_brief_detach);
    suite_add_tcase(s, tc);
    return s;
}
