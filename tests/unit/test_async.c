/* SPDX-License-Identifier: MIT */
/* Unit tests of asynchronous events (design §9 items 7-23): pending calls, signals, async
 * exceptions, GILState, finalization and fork, driven from C with raw pthreads (the runtime
 * alone) and through the embedding API (gilvm.h, with the VM).  Every test runs in its own
 * forked process with a timeout; tests that install signal handlers reset them first.  No
 * assertion is tighter than an ordering, an exact count or a generous bound. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/runtime.h"
#include "vm/lib/lib.h"
#include "vm/api/gilvm.h"

/* Under TSan, a child forked from a multi-threaded test may start threads (tests of fork). */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}

#include "rt_helpers.h"

static void reset_signals(void)
{
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGINT, SIG_DFL);
}

/* Waits until `n` threads queue for `gil`. */
static void wait_waiters(rt_gil *gil, uint32_t n)
{
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (atomic_load(&gil->nwaiting) < n) {
        ck_assert_msg(rt_now_ns() < end, "no thread queued for the GIL");
        sleep_us(100);
    }
}

static void wait_flag(_Atomic int *flag, int value)
{
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (atomic_load(flag) != value) {
        ck_assert_msg(rt_now_ns() < end, "flag never became %d", value);
        sleep_us(100);
    }
}

/* ---- pending calls (runtime) ---- */

static int log_calls[400], nlog;        /* written by pending calls, holding the GIL */
static rt_thread *ran_on[400];

static int note(void *arg)
{
    ran_on[nlog] = rt_thread_current();
    log_calls[nlog++] = (int)(intptr_t)arg;
    return 0;
}

static int fail_note(void *arg)
{
    note(arg);
    return -1;
}

START_TEST(test_pending_interp_queue_caps_and_passes)
{
    start();
    rt_thread *t = rt_thread_current();
    rt_interp *m = rt_interp_main();
    for (int i = 0; i < RT_PENDING_CAP; i++)
        ck_assert_int_eq(rt_pending_add(m, note, (void *)(intptr_t)i), 0);
    ck_assert_int_eq(rt_pending_add(m, note, (void *)-1), -1);      /* full: refused */
    ck_assert(rt_breaker_load(&t->eval_breaker) & RT_CALLS_TO_DO); /* main holds the GIL */
    ck_assert_int_eq(rt_pending_count(t), 300);

    /* 100 per pass; the bit stays armed while calls are left. */
    for (int pass = 1; pass <= 3; pass++) {
        ck_assert_int_eq(rt_pending_run(t), 0);
        ck_assert_int_eq(nlog, 100 * pass);
        ck_assert_int_eq(!!(rt_breaker_load(&t->eval_breaker) & RT_CALLS_TO_DO), pass < 3);
    }
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(log_calls[i], i);
    ck_assert_uint_eq(t->stats.pending_calls, 300);
    stop();
}
END_TEST

START_TEST(test_pending_main_queue_caps_and_drains)
{
    start();
    rt_thread *t = rt_thread_current();
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(rt_pending_add_main(note, (void *)(intptr_t)i), i < 32 ? 0 : -1);
    ck_assert(rt_breaker_load(&t->eval_breaker) & RT_CALLS_TO_DO);
    ck_assert_int_eq(rt_pending_run(t), 0);                         /* all 32 in one pass */
    ck_assert_int_eq(nlog, 32);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(log_calls[i], i);
    ck_assert(!(rt_breaker_load(&t->eval_breaker) & RT_CALLS_TO_DO));
    stop();
}
END_TEST

START_TEST(test_pending_first_failure_stops_the_pass)
{
    start();
    rt_thread *t = rt_thread_current();
    ck_assert_int_eq(rt_pending_add_main(note, (void *)1), 0);
    ck_assert_int_eq(rt_pending_add_main(fail_note, (void *)2), 0);
    ck_assert_int_eq(rt_pending_add_main(note, (void *)3), 0);
    ck_assert_int_eq(rt_pending_run(t), -1);
    ck_assert_int_eq(nlog, 2);
    ck_assert(rt_breaker_load(&t->eval_breaker) & RT_CALLS_TO_DO);  /* the third is left */
    ck_assert_int_eq(rt_pending_run(t), 0);
    ck_assert_int_eq(nlog, 3);
    ck_assert_int_eq(log_calls[2], 3);
    stop();
}
END_TEST

/* A thread that is not main, attached to `interp`, polling like the eval loop: runs pending
 * calls and honours drop requests until `stop_poller`. */
static _Atomic int stop_poller, poller_attached;

static void *poller(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    rt_thread_attach(t);
    atomic_store(&poller_attached, 1);
    while (!atomic_load(&stop_poller)) {
        uint32_t bits = rt_breaker_load(&t->eval_breaker);
        if (bits & RT_CALLS_TO_DO)
            rt_pending_run(t);
        if (bits & RT_GIL_DROP_REQUEST)
            rt_gil_yield(t);
    }
    rt_thread_detach(t);
    return NULL;
}

START_TEST(test_pending_main_queue_only_on_main)
{
    start();
    rt_thread *me = rt_thread_current();
    rt_interp *m = rt_interp_main();
    ck_assert_int_eq(rt_pending_add_main(note, (void *)7), 0);
    ck_assert_int_eq(rt_pending_add(m, note, (void *)8), 0);
    pthread_t th;
    rt_thread *w = rt_thread_new(m, RT_WHENCE_THREADING);
    ck_assert_int_eq(pthread_create(&th, NULL, poller, w), 0);
    rt_thread_detach(me);           /* the worker takes the GIL and runs what it may */
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (atomic_load(&m->pending.npending) > 0)
        ck_assert(rt_now_ns() < end);
    atomic_store(&stop_poller, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_thread_attach(me);
    ck_assert_int_eq(nlog, 1);
    ck_assert_int_eq(log_calls[0], 8);
    ck_assert_ptr_eq(ran_on[0], w);
    ck_assert_int_eq(rt_pending_count(me), 1);                      /* main's is still queued */
    ck_assert(rt_breaker_load(&me->eval_breaker) & RT_CALLS_TO_DO);
    ck_assert_int_eq(rt_pending_run(me), 0);
    ck_assert_int_eq(nlog, 2);
    ck_assert_ptr_eq(ran_on[1], me);
    rt_thread_delete(w);
    stop();
}
END_TEST

/* §9 item 10: a call queued for interpreter B from a thread of A runs on a thread of B. */
START_TEST(test_pending_for_other_interpreter)
{
    start();
    rt_interp *b = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    rt_thread *tb = rt_thread_new(b, RT_WHENCE_EXEC);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, poller, tb), 0);
    wait_flag(&poller_attached, 1);
    ck_assert_int_eq(rt_pending_add(b, note, (void *)42), 0);       /* main holds A's GIL */
    ck_assert(!(rt_breaker_load(&rt_thread_current()->eval_breaker) & RT_CALLS_TO_DO));
    uint64_t end = rt_now_ns() + DEADLINE_NS;
    while (atomic_load(&b->pending.npending) > 0)
        ck_assert(rt_now_ns() < end);
    atomic_store(&stop_poller, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(nlog, 1);
    ck_assert_ptr_eq(ran_on[0], tb);
    ck_assert_int_eq(b->pending.npending, 0);
    stop();
}
END_TEST

/* A pending call added while nobody of the interpreter holds the GIL is noticed by the next
 * thread that takes it. */
static void *add_from_foreign(void *arg)
{
    (void)arg;
    ck_assert_ptr_null(rt_thread_current());                        /* no state, no GIL */
    ck_assert_int_eq(rt_pending_add(rt_interp_main(), note, (void *)5), 0);
    return NULL;
}

START_TEST(test_pending_add_without_gil_seen_at_take)
{
    start();
    rt_thread *me = rt_thread_current();
    rt_thread_detach(me);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, add_from_foreign, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_breaker_clear(&me->eval_breaker, RT_CALLS_TO_DO);
    rt_thread_attach(me);
    ck_assert(rt_breaker_load(&me->eval_breaker) & RT_CALLS_TO_DO);
    ck_assert_int_eq(rt_pending_run(me), 0);
    ck_assert_int_eq(nlog, 1);
    stop();
}
END_TEST

/* One runner at a time: while a call of main is running (having released the GIL), another
 * thread's poll does not run the queue; it hands the bit back to main.  A call that polls
 * (runs rt_pending_run itself) does not nest either. */
static _Atomic int in_slow_call, slow_may_finish, worker_polled;
static rt_thread *worker_state;

static int nested(void *arg)
{
    return note(arg);
}

static int slow_call(void *arg)
{
    rt_thread *me = rt_thread_current();
    note(arg);
    ck_assert_int_eq(rt_pending_add(me->interp, nested, (void *)99), 0);
    ck_assert_int_eq(rt_pending_run(me), 0);                        /* would nest: does not */
    ck_assert_int_eq(nlog, 1);
    rt_thread_detach(me);
    atomic_store(&in_slow_call, 1);
    wait_flag(&slow_may_finish, 1);
    rt_thread_attach(me);
    return 0;
}

static void *release_slow(void *arg)
{
    (void)arg;
    wait_flag(&worker_polled, 1);
    atomic_store(&slow_may_finish, 1);
    return NULL;
}

static void *second_runner(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    wait_flag(&in_slow_call, 1);
    rt_thread_attach(t);
    rt_breaker_set(&t->eval_breaker, RT_CALLS_TO_DO);
    ck_assert_int_eq(rt_pending_run(t), 0);
    ck_assert(!(rt_breaker_load(&t->eval_breaker) & RT_CALLS_TO_DO));
    atomic_store(&worker_polled, 1);
    rt_thread_detach(t);
    return NULL;
}

START_TEST(test_pending_one_runner_at_a_time)
{
    start();
    rt_thread *me = rt_thread_current();
    worker_state = rt_thread_new(me->interp, RT_WHENCE_THREADING);
    pthread_t th, rel;
    ck_assert_int_eq(pthread_create(&th, NULL, second_runner, worker_state), 0);
    ck_assert_int_eq(pthread_create(&rel, NULL, release_slow, NULL), 0);
    ck_assert_int_eq(rt_pending_add(me->interp, slow_call, (void *)1), 0);
    ck_assert_int_eq(rt_pending_run(me), 0);        /* returns once slow_call is done */
    ck_assert_int_eq(pthread_join(th, NULL), 0);    /* (slow_call waited for the worker) */
    ck_assert_int_eq(pthread_join(rel, NULL), 0);
    ck_assert_int_eq(atomic_load(&worker_polled), 1);
    ck_assert_int_eq(nlog, 2);                      /* the nested call ran after, not inside */
    ck_assert_int_eq(log_calls[1], 99);
    ck_assert_ptr_eq(ran_on[1], me);
    rt_thread_delete(worker_state);
    stop();
}
END_TEST


/* ---- signals (runtime) ---- */

static int handled[8], nhandled, fail_first;

static int record_signal(rt_thread *t, int signum, void *arg)
{
    (void)t, (void)arg;
    handled[nhandled++] = signum;
    if (fail_first) {
        fail_first = 0;
        return -1;
    }
    return 0;
}

START_TEST(test_signal_trips_and_coalesces)
{
    reset_signals();
    start();
    rt_thread *me = rt_thread_current();
    ck_assert_int_eq(rt_signal_get(SIGUSR1), RT_SIG_DFL);
    ck_assert_int_eq(rt_signal_set(SIGUSR1, RT_SIG_CATCH), 0);
    ck_assert_int_eq(rt_signal_set(SIGUSR2, RT_SIG_CATCH), 0);
    ck_assert_int_eq(rt_signal_get(SIGUSR1), RT_SIG_CATCH);
    ck_assert_int_eq(rt_signals_tripped(), 0);

    /* §9 item 13: two deliveries before handling, one call; the counter says two. */
    raise(SIGUSR1);
    raise(SIGUSR1);
    ck_assert_uint_eq(rt_signal_count(SIGUSR1), 2);
    ck_assert(rt_breaker_load(&me->eval_breaker) & RT_SIGNALS_PENDING);
    ck_assert_int_eq(rt_signals_tripped(), 1);
    ck_assert_int_eq(rt_signals_handle(me, record_signal, NULL), 0);
    ck_assert_int_eq(nhandled, 1);
    ck_assert_int_eq(handled[0], SIGUSR1);
    ck_assert(!(rt_breaker_load(&me->eval_breaker) & RT_SIGNALS_PENDING));
    ck_assert_int_eq(rt_signals_handle(me, record_signal, NULL), 0);   /* nothing left */
    ck_assert_int_eq(nhandled, 1);

    /* Two signals, two calls, in signal-number order. */
    raise(SIGUSR2);
    raise(SIGUSR1);
    ck_assert_int_eq(rt_signals_handle(me, record_signal, NULL), 0);
    ck_assert_int_eq(nhandled, 3);
    ck_assert_int_eq(handled[1], SIGUSR1);
    ck_assert_int_eq(handled[2], SIGUSR2);
    ck_assert_uint_eq(me->stats.signals, 3);
    stop();
    /* Finalization restored the dispositions. */
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    ck_assert_ptr_eq((void *)sa.sa_handler, (void *)SIG_DFL);
}
END_TEST

/* §9 item 15, runtime part: a handler that fails re-arms the bit; the rest run later. */
START_TEST(test_signal_handler_failure_rearms)
{
    reset_signals();
    start();
    rt_thread *me = rt_thread_current();
    rt_signal_set(SIGUSR1, RT_SIG_CATCH);
    rt_signal_set(SIGUSR2, RT_SIG_CATCH);
    raise(SIGUSR1);
    raise(SIGUSR2);
    fail_first = 1;
    ck_assert_int_eq(rt_signals_handle(me, record_signal, NULL), -1);
    ck_assert_int_eq(nhandled, 1);
    ck_assert(rt_breaker_load(&me->eval_breaker) & RT_SIGNALS_PENDING);
    ck_assert_int_eq(rt_signals_handle(me, record_signal, NULL), 0);
    ck_assert_int_eq(nhandled, 2);
    ck_assert_int_eq(handled[1], SIGUSR2);
    raise(SIGUSR1);                                     /* later signals still arrive */
    ck_assert_int_eq(rt_signals_handle(me, record_signal, NULL), 0);
    ck_assert_int_eq(nhandled, 3);
    stop();
}
END_TEST

/* §9 item 12, runtime part: only the main thread of the main interpreter handles signals. */
START_TEST(test_signal_only_main_thread_handles)
{
    reset_signals();
    start();
    rt_interp *sub = rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    rt_thread *other = rt_thread_new(rt_interp_main(), RT_WHENCE_THREADING);
    rt_thread *in_sub = rt_thread_new(sub, RT_WHENCE_EXEC);
    ck_assert(rt_signals_can_handle(rt_thread_current()));
    ck_assert(!rt_signals_can_handle(other));
    ck_assert(!rt_signals_can_handle(in_sub));
    rt_signal_set(SIGUSR1, RT_SIG_CATCH);
    raise(SIGUSR1);
    ck_assert(!(rt_breaker_load(&other->eval_breaker) & RT_SIGNALS_PENDING));
    ck_assert(!(rt_breaker_load(&in_sub->eval_breaker) & RT_SIGNALS_PENDING));
    ck_assert_int_eq(rt_signals_handle(other, record_signal, NULL), 0);
    ck_assert_int_eq(nhandled, 0);
    ck_assert_int_eq(rt_signals_handle(rt_thread_current(), record_signal, NULL), 0);
    ck_assert_int_eq(nhandled, 1);
    stop();
}
END_TEST

/* §9 item 14: one byte per signal on the wakeup fd, and whoever reads it finds the pending
 * bit already set.  A reader thread plays the consumer: after each byte it checks the bit,
 * clears it and lets the next signal go; signals are raised on a third thread. */
static int wake_r;
static _Atomic int acked, bytes_ok, bytes_seen;

static void *wake_reader(void *arg)
{
    rt_thread *m = arg;
    for (int i = 0; i < 200; i++) {
        unsigned char b;
        ssize_t n;
        while ((n = read(wake_r, &b, 1)) < 0 && errno == EAGAIN)
            sleep_us(50);
        ck_assert_int_eq(n, 1);
        atomic_fetch_add(&bytes_seen, 1);
        if (b == SIGUSR1 && (rt_breaker_load(&m->eval_breaker) & RT_SIGNALS_PENDING))
            atomic_fetch_add(&bytes_ok, 1);
        rt_breaker_clear(&m->eval_breaker, RT_SIGNALS_PENDING);
        atomic_store(&acked, i + 1);
    }
    return NULL;
}

static void *wake_raiser(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        raise(SIGUSR1);
        wait_flag(&acked, i + 1);
    }
    return NULL;
}

START_TEST(test_wakeup_fd_byte_after_pending_bit)
{
    reset_signals();
    start();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    wake_r = fds[0];
    ck_assert_int_eq(rt_signal_set_wakeup_fd(fds[1]), -1);
    rt_signal_set(SIGUSR1, RT_SIG_CATCH);
    pthread_t r, s;
    ck_assert_int_eq(pthread_create(&r, NULL, wake_reader, rt_thread_current()), 0);
    ck_assert_int_eq(pthread_create(&s, NULL, wake_raiser, NULL), 0);
    ck_assert_int_eq(pthread_join(s, NULL), 0);
    ck_assert_int_eq(pthread_join(r, NULL), 0);
    ck_assert_int_eq(atomic_load(&bytes_seen), 200);
    ck_assert_int_eq(atomic_load(&bytes_ok), 200);
    ck_assert_uint_eq(rt_signal_count(SIGUSR1), 200);
    ck_assert_int_eq(rt_signal_set_wakeup_fd(-1), fds[1]);
    stop();
}
END_TEST

/* Beyond CPython: a main thread waiting for the GIL gets it promptly when a signal arrives,
 * even with a 100 s switch interval and two threads queued ahead of it. */
static _Atomic int hog_stop, hog_holding;
static char take_order[8];
static _Atomic int take_len;

static void *hog(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    rt_thread_attach(t);
    atomic_store(&hog_holding, 1);
    while (!atomic_load(&hog_stop))
        if (rt_breaker_load(&t->eval_breaker) & RT_GIL_DROP_REQUEST)
            rt_gil_yield(t);
    rt_thread_detach(t);
    return NULL;
}

typedef struct {
    rt_thread *t;
    char letter;
} taker_arg;

static void *taker(void *p)
{
    taker_arg *a = p;
    rt_thread_bind(a->t);
    rt_thread_attach(a->t);
    take_order[atomic_fetch_add(&take_len, 1)] = a->letter;
    rt_thread_detach(a->t);
    return NULL;
}

static void *raise_later(void *arg)
{
    rt_gil *gil = arg;
    wait_waiters(gil, 3);           /* the two takers and main queue for the GIL */
    sleep_us(20000);
    raise(SIGUSR1);
    return NULL;
}

START_TEST(test_signal_makes_main_gil_wait_urgent)
{
    reset_signals();
    start();
    rt_thread *me = rt_thread_current();
    rt_interp *m = me->interp;
    rt_interp_set_switch_interval(m, 100000000);            /* 100 s */
    rt_signal_set(SIGUSR1, RT_SIG_CATCH);
    pthread_t h, a, b, r;
    taker_arg ta = {rt_thread_new(m, RT_WHENCE_THREADING), 'A'};
    taker_arg tb = {rt_thread_new(m, RT_WHENCE_THREADING), 'B'};
    ck_assert_int_eq(pthread_create(&h, NULL, hog, rt_thread_new(m, RT_WHENCE_THREADING)), 0);
    rt_thread_detach(me);
    wait_flag(&hog_holding, 1);
    ck_assert_int_eq(pthread_create(&a, NULL, taker, &ta), 0);
    wait_waiters(m->gil, 1);
    ck_assert_int_eq(pthread_create(&b, NULL, taker, &tb), 0);
    wait_waiters(m->gil, 2);
    ck_assert_int_eq(pthread_create(&r, NULL, raise_later, m->gil), 0);
    uint64_t t0 = rt_now_ns();
    rt_thread_attach(me);                                   /* third in the queue */
    take_order[atomic_fetch_add(&take_len, 1)] = 'M';
    ck_assert_msg(rt_now_ns() - t0 < 50000 * MS, "main waited for a switch interval");
    ck_assert(rt_breaker_load(&me->eval_breaker) & RT_SIGNALS_PENDING);
    ck_assert_int_eq(take_order[0], 'M');                   /* ahead of A and B */
    atomic_store(&hog_stop, 1);
    rt_interp_set_switch_interval(m, 1000);
    rt_thread_detach(me);
    ck_assert_int_eq(pthread_join(r, NULL), 0);
    ck_assert_int_eq(pthread_join(a, NULL), 0);
    ck_assert_int_eq(pthread_join(b, NULL), 0);
    ck_assert_int_eq(pthread_join(h, NULL), 0);
    rt_thread_attach(me);
    ck_assert_int_eq(atomic_load(&take_len), 3);
    stop();
}
END_TEST

/* ---- async exceptions (runtime) ---- */

static int wakes;
static rt_thread *woken;

/* The wake callback of set_async_exc: counts its calls. */
static void count_wake(rt_thread *t)
{
    wakes++;
    woken = t;
}

START_TEST(test_async_exc_slot)
{
    start();
    rt_interp *m = rt_interp_main();
    rt_thread *t = rt_thread_new(m, RT_WHENCE_THREADING);
    int first, second;
    void *old = (void *)1;
    ck_assert_int_eq(rt_thread_set_async_exc(m, t->id, &first, &old, count_wake), 1);
    ck_assert_ptr_null(old);
    ck_assert(rt_breaker_load(&t->eval_breaker) & RT_ASYNC_EXCEPTION);
    ck_assert_int_eq(rt_thread_set_async_exc(m, t->id, &second, &old, NULL), 1);
    ck_assert_ptr_eq(old, &first);
    ck_assert_int_eq(rt_thread_set_async_exc(m, t->id, NULL, &old, count_wake), 1);     /* clears */
    ck_assert_ptr_eq(old, &second);
    ck_assert_ptr_null(atomic_load(&t->async_exc));
    ck_assert_int_eq(rt_thread_set_async_exc(m, 12345, &first, &old, count_wake), 0);
    ck_assert_int_eq(wakes, 2);             /* the live thread, once per call with a wake */
    ck_assert_ptr_eq(woken, t);
    rt_thread_delete(t);
    stop();
}
END_TEST

/* ---- GILState ---- */

typedef struct {
    int first, nested, check_in, check_after;
    rt_thread *state, *nested_state;
    int threads_inside, threads_after;
} gilstate_report;

static int count_threads(rt_interp *in)
{
    int n = 0;
    rt_head_lock();
    for (rt_thread *t = in->threads; t; t = t->next)
        n++;
    rt_head_unlock();
    return n;
}

/* §9 item 19: a foreign thread: UNLOCKED and a new state; nested: LOCKED, nothing new; after
 * the releases the state is gone and the GIL free. */
static void *foreign(void *arg)
{
    gilstate_report *r = arg;
    ck_assert_ptr_null(rt_thread_bound());
    r->first = rt_gilstate_ensure();
    r->state = rt_thread_current();
    r->check_in = rt_gilstate_check();
    r->threads_inside = count_threads(rt_interp_main());
    r->nested = rt_gilstate_ensure();
    r->nested_state = rt_thread_current();
    rt_gilstate_release(r->nested);
    ck_assert_ptr_eq(rt_thread_current(), r->state);                /* still attached */
    rt_gilstate_release(r->first);
    r->check_after = rt_gilstate_check();
    ck_assert_ptr_null(rt_thread_current());
    ck_assert_ptr_null(rt_thread_bound());
    r->threads_after = count_threads(rt_interp_main());
    return NULL;
}

START_TEST(test_gilstate_foreign_thread)
{
    start();
    rt_thread *me = rt_thread_current();
    rt_interp *m = me->interp;
    int before = count_threads(m);
    rt_thread_detach(me);
    gilstate_report r = {0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, foreign, &r), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(r.first, RT_GILSTATE_UNLOCKED);
    ck_assert_int_eq(r.nested, RT_GILSTATE_LOCKED);
    ck_assert_ptr_nonnull(r.state);
    ck_assert_ptr_eq(r.nested_state, r.state);
    ck_assert_int_eq(r.check_in, 1);
    ck_assert_int_eq(r.check_after, 0);
    ck_assert_int_eq(r.threads_inside, before + 1);
    ck_assert_int_eq(r.threads_after, before);
    ck_assert_int_eq(atomic_load(&m->gil->locked), 0);              /* the GIL is free */
    rt_thread_attach(me);
    stop();
}
END_TEST

/* §9 item 20: a thread with a detached state of its own gets that same state re-attached,
 * and the release never deletes it. */
static void *own_state(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    rt_thread_attach(t);
    rt_thread_detach(t);                    /* as around a native call */
    int s = rt_gilstate_ensure();
    ck_assert_int_eq(s, RT_GILSTATE_UNLOCKED);
    ck_assert_ptr_eq(rt_thread_current(), t);
    ck_assert_int_eq(t->gilstate_counter, 2);
    rt_gilstate_release(s);
    ck_assert_ptr_null(rt_thread_current());
    ck_assert_ptr_eq(rt_thread_bound(), t);
    ck_assert_int_eq(t->gilstate_counter, 1);
    return NULL;
}

START_TEST(test_gilstate_reattaches_own_state)
{
    start();
    rt_thread *me = rt_thread_current();
    /* The main thread, attached: LOCKED, and its state is never deleted. */
    int s = rt_gilstate_ensure();
    ck_assert_int_eq(s, RT_GILSTATE_LOCKED);
    rt_gilstate_release(s);
    ck_assert_ptr_eq(rt_thread_current(), me);
    rt_thread *t = rt_thread_new(me->interp, RT_WHENCE_THREADING);
    int before = count_threads(me->interp);
    rt_thread_detach(me);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, own_state, t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_thread_attach(me);
    ck_assert_int_eq(count_threads(me->interp), before);             /* not deleted */
    rt_thread_delete(t);
    stop();
}
END_TEST

static void *ensure_refused(void *arg)
{
    int *out = arg;
    *out = rt_gilstate_ensure();
    rt_gilstate_release(*out);              /* releasing "unavailable" does nothing */
    return NULL;
}

static int ensure_on_new_thread(void)
{
    int r = 99;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, ensure_refused, &r), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    return r;
}

START_TEST(test_gilstate_after_finalization_starts)
{
    ck_assert_int_eq(ensure_on_new_thread(), RT_GILSTATE_UNAVAILABLE);   /* before init */
    start();
    ck_assert_int_eq(rt_runtime_set_finalizing(rt_thread_current()), 0);
    ck_assert_int_eq(ensure_on_new_thread(), RT_GILSTATE_UNAVAILABLE);
    int before = count_threads(rt_interp_main());
    ck_assert_int_eq(before, 1);                                        /* nothing created */
    stop();
    ck_assert_int_eq(ensure_on_new_thread(), RT_GILSTATE_UNAVAILABLE);  /* after finalize */
}
END_TEST

/* ---- fork (runtime) ---- */

static void *queue_for_gil(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    rt_thread_attach(t);
    rt_thread_detach(t);
    return NULL;
}

/* The child's checks; exits 0 if all hold. */
static void fork_child_checks(rt_thread *t)
{
    rt_status st = rt_fork_after_child(t);
    int ok = !st.failed;
    rt_interp *m = rt_interp_main();
    ok &= rt_thread_is_main(t) && pthread_equal(rt_main_runtime.main_thread, pthread_self());
    ok &= m->threads == t && t->next == NULL && t->prev == NULL;        /* one thread state */
    ok &= atomic_load(&m->gil->locked) && atomic_load(&m->gil->last_holder) == t;
    ok &= m->gil->queue == NULL && atomic_load(&m->gil->nwaiting) == 0;
    ok &= rt_main_runtime.interps == m && m->next == NULL;             /* sub-interps gone */
    ok &= rt_pending_add_main(note, NULL) == 0 && rt_pending_run(t) == 0 && nlog == 1;
    /* The child can start a thread that takes the GIL, and finalize. */
    pthread_t th;
    rt_thread *nt = rt_thread_new(m, RT_WHENCE_THREADING);
    ok &= pthread_create(&th, NULL, queue_for_gil, nt) == 0;
    rt_thread_detach(t);
    pthread_join(th, NULL);
    rt_thread_attach(t);
    rt_thread_delete(nt);
    ok &= !rt_runtime_finalize().failed;
    _exit(ok ? 0 : 1);
}

START_TEST(test_fork_with_gil_waiters)
{
    start();
    rt_thread *me = rt_thread_current();
    rt_interp *m = me->interp;
    rt_interp_new(NULL, sizeof(rt_interp), sizeof(rt_thread));
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, queue_for_gil,
                                        rt_thread_new(m, RT_WHENCE_THREADING)), 0);
    wait_waiters(m->gil, 3);                /* they wait for the GIL main holds */
    rt_fork_before(me);
    pid_t pid = fork();
    if (pid == 0)
        fork_child_checks(me);
    rt_fork_after_parent(me);
    ck_assert_int_ge(pid, 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    rt_thread_detach(me);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    rt_thread_attach(me);
    stop();
}
END_TEST

/* Forked from a worker thread: in the child, that thread's state is the main one. */
static void *fork_from_worker(void *arg)
{
    rt_thread *t = arg;
    rt_thread_bind(t);
    rt_thread_attach(t);
    rt_fork_before(t);
    pid_t pid = fork();
    if (pid == 0)
        fork_child_checks(t);
    rt_fork_after_parent(t);
    int status = -1;
    waitpid(pid, &status, 0);
    rt_thread_detach(t);
    return (void *)(intptr_t)status;
}

START_TEST(test_fork_from_worker)
{
    start();
    rt_thread *me = rt_thread_current();
    rt_thread_detach(me);
    pthread_t th;
    void *status;
    ck_assert_int_eq(pthread_create(&th, NULL, fork_from_worker,
                                    rt_thread_new(me->interp, RT_WHENCE_THREADING)), 0);
    ck_assert_int_eq(pthread_join(th, &status), 0);
    ck_assert_msg(WIFEXITED((int)(intptr_t)status) && WEXITSTATUS((int)(intptr_t)status) == 0,
                  "child status %d", (int)(intptr_t)status);
    rt_thread_attach(me);
    stop();
}
END_TEST

/* ---- through the embedding API, with the VM ---- */

static void vm_start(void)
{
    reset_signals();
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
}

/* §9 item 7 with a C pending call: added by a foreign thread (no GIL, no state) while main
 * runs an endless loop; it runs on the main thread, and failing without an exception makes
 * the poll raise RuntimeError, which ends the loop. */
static pthread_t main_pthread;
static _Atomic int c_call_ran_on_main, c_call_ran;

static int c_pending(void *arg)
{
    (void)arg;
    atomic_store(&c_call_ran_on_main, pthread_equal(pthread_self(), main_pthread));
    atomic_store(&c_call_ran, 1);
    return -1;
}

static void *add_c_call(void *arg)
{
    (void)arg;
    sleep_us(50000);
    ck_assert_int_eq(gilvm_pending_add(c_pending, NULL), 0);
    return NULL;
}

START_TEST(test_embed_pending_add_from_foreign_thread)
{
    vm_start();
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));      /* the expected traceback */
    main_pthread = pthread_self();
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, add_c_call, NULL), 0);
    int rc = gilvm_run_string("loop.gasm", "loop:\n    JUMP_BACKWARD loop\n");
    ck_assert_int_eq(rc, GILVM_EXIT_EXCEPTION);
    ck_assert_int_eq(atomic_load(&c_call_ran), 1);
    ck_assert_int_eq(atomic_load(&c_call_ran_on_main), 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(gilvm_pending_add_interp(7, c_pending, NULL), -1);  /* no such interp */
    gilvm_runtime_finalize(0);
    ck_assert_int_eq(gilvm_pending_add(c_pending, NULL), -1);           /* not running */
}
END_TEST

static int count_runs(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* Calls still queued at finalization run then. */
START_TEST(test_embed_pending_run_at_finalization)
{
    vm_start();
    static _Atomic int runs;
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(gilvm_pending_add(count_runs, (void *)&runs), i < 32 ? 0 : -1);
    ck_assert_int_eq(gilvm_pending_add_interp(0, count_runs, (void *)&runs), 0);
    ck_assert_int_eq(atomic_load(&runs), 0);
    ck_assert_int_eq(gilvm_runtime_finalize(0), 0);
    ck_assert_int_eq(atomic_load(&runs), 33);
}
END_TEST

/* GILState through the public API: a foreign thread runs code on its own new state while
 * main waits with the GIL released. */
static int foreign_run_rc = -1;

static void *foreign_runs_code(void *arg)
{
    (void)arg;
    int s = gilvm_gilstate_ensure();
    ck_assert_int_eq(s, GILVM_GILSTATE_UNLOCKED);
    ck_assert_int_eq(gilvm_gilstate_check(), 1);
    foreign_run_rc = gilvm_run_string("foreign.gasm",
        "    LOAD_GLOBAL get_ident\n    CALL 0\n    LOAD_GLOBAL main_thread_ident\n"
        "    CALL 0\n    NE\n    POP_JUMP_IF_TRUE ok\n    LOAD_GLOBAL exit\n    LOAD_INT 3\n"
        "    CALL 1\n    POP\nok:\n    LOAD_INT 7\n    STORE_GLOBAL from_foreign\n");
    gilvm_gilstate_release(s);
    ck_assert_int_eq(gilvm_gilstate_check(), 0);
    return NULL;
}

START_TEST(test_embed_gilstate_runs_code)
{
    vm_start();
    rt_thread *me = rt_thread_current();
    rt_thread_detach(me);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_runs_code, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rt_thread_attach(me);
    ck_assert_int_eq(foreign_run_rc, 0);
    ck_assert_int_eq(gilvm_run_string("check.gasm",
        "    LOAD_GLOBAL from_foreign\n    LOAD_INT 7\n    EQ\n    POP_JUMP_IF_TRUE ok\n"
        "    LOAD_GLOBAL exit\n    LOAD_INT 4\n    CALL 1\n    POP\nok:\n    LOAD_NONE\n"
        "    POP\n"), 0);
    gilvm_runtime_finalize(0);
    ck_assert_int_eq(ensure_on_new_thread(), GILVM_GILSTATE_UNAVAILABLE);
}
END_TEST

/* §2 finalization: once the runtime is marked finalizing, joining a live daemon thread or
 * taking a lock it holds raises FinalizationError instead of hanging; then finalization
 * completes with the daemon still blocked. */
static const char daemon_setup[] =
    ".func daemon()\n"
    "    LOAD_GLOBAL lock_acquire\n    LOAD_GLOBAL lock\n    CALL 1\n    POP\n"
    "    LOAD_CONST True\n    STORE_GLOBAL holding\n"
    "forever:\n    LOAD_GLOBAL sleep\n    LOAD_CONST 0.001\n    CALL 1\n    POP\n"
    "    JUMP_BACKWARD forever\n"
    ".end\n"
    "    LOAD_CONST False\n    STORE_GLOBAL holding\n"
    "    LOAD_GLOBAL Lock\n    CALL 0\n    STORE_GLOBAL lock\n"
    "    LOAD_GLOBAL thread_start\n    LOAD_GLOBAL daemon\n    BUILD_TUPLE 0\n"
    "    LOAD_CONST True\n    CALL 3\n    STORE_GLOBAL d\n"
    "wait:\n    LOAD_GLOBAL holding\n    POP_JUMP_IF_TRUE done\n    LOAD_GLOBAL sleep\n"
    "    LOAD_CONST 0.001\n    CALL 1\n    POP\n    JUMP_BACKWARD wait\n"
    "done:\n";

/* Exits with 0 if CALL raises FinalizationError, 1 if it returns, 2 for another error. */
#define EXPECT_FINALIZATION_ERROR(call) \
    "    .try h\n" call "    POP\n    .end_try\n    LOAD_GLOBAL exit\n    LOAD_INT 1\n" \
    "    CALL 1\n    POP\n    HALT\nh:\n    PUSH_EXC_INFO\n    LOAD_GLOBAL FinalizationError\n" \
    "    CHECK_EXC_MATCH\n    POP_JUMP_IF_FALSE other\n    POP\n    POP_EXCEPT\n" \
    "    LOAD_GLOBAL exit\n    LOAD_INT 0\n    CALL 1\n    POP\n    HALT\nother:\n" \
    "    POP\n    POP_EXCEPT\n    LOAD_GLOBAL exit\n    LOAD_INT 2\n    CALL 1\n    POP\n"

START_TEST(test_finalization_error_for_daemon_join_and_lock)
{
    vm_start();
    ck_assert_int_eq(gilvm_run_string("setup.gasm", daemon_setup), 0);
    rt_thread *me = rt_thread_current();
    ck_assert_int_eq(rt_runtime_set_finalizing(me), 0);
    ck_assert_int_eq(gilvm_run_string("join.gasm", EXPECT_FINALIZATION_ERROR(
        "    LOAD_GLOBAL thread_join\n    LOAD_GLOBAL d\n    CALL 1\n")), 0);
    ck_assert_int_eq(gilvm_run_string("lock.gasm", EXPECT_FINALIZATION_ERROR(
        "    LOAD_GLOBAL lock_acquire\n    LOAD_GLOBAL lock\n    CALL 1\n")), 0);
    ck_assert_int_eq(gilvm_runtime_finalize(0), 0);
}
END_TEST

/* §9 item 22's second half: a thread start during finalization fails with RuntimeError. */
START_TEST(test_thread_start_refused_while_finalizing)
{
    vm_start();
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    rt_thread *me = rt_thread_current();
    ck_assert_int_eq(rt_runtime_set_finalizing(me), 0);
    ck_assert_int_eq(gilvm_run_string("start.gasm",
        ".func f()\n    LOAD_NONE\n    RETURN\n.end\n"
        "    .try h\n    LOAD_GLOBAL thread_start\n    LOAD_GLOBAL f\n    CALL 1\n    POP\n"
        "    .end_try\n    HALT\nh:\n    PUSH_EXC_INFO\n    STORE_GLOBAL e\n    POP_EXCEPT\n"
        "    LOAD_GLOBAL exit\n    LOAD_GLOBAL str\n    LOAD_GLOBAL e\n    CALL 1\n"
        "    LOAD_CONST \"can't create new thread at interpreter shutdown\"\n    EQ\n"
        "    LOAD_INT 10\n    ADD\n    CALL 1\n    POP\n"), 11);
    gilvm_runtime_finalize(0);
}
END_TEST

/* SIGINT raises KeyboardInterrupt from the start, unless the process was started with it
 * ignored (a background job) or the embedder said no; finalization restores it. */
START_TEST(test_sigint_default_unless_ignored)
{
    reset_signals();
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
    ck_assert_int_eq(rt_signal_get(SIGINT), RT_SIG_CATCH);
    gilvm_runtime_finalize(0);
    ck_assert_int_eq(rt_signal_get(SIGINT), RT_SIG_DFL);

    signal(SIGINT, SIG_IGN);
    ck_assert_int_eq(gilvm_runtime_init(NULL), 0);
    ck_assert_int_eq(rt_signal_get(SIGINT), RT_SIG_IGN);
    ck_assert_int_eq(gilvm_run_string("ign.gasm",
        "    LOAD_GLOBAL getsignal\n    LOAD_GLOBAL SIGINT\n    CALL 1\n    LOAD_GLOBAL SIG_IGN\n"
        "    EQ\n    POP_JUMP_IF_TRUE ok\n    LOAD_GLOBAL exit\n    LOAD_INT 3\n    CALL 1\n"
        "    POP\nok:\n    LOAD_GLOBAL raise_signal\n    LOAD_GLOBAL SIGINT\n    CALL 1\n"
        "    POP\n"), 0);
    gilvm_runtime_finalize(0);

    signal(SIGINT, SIG_DFL);
    gilvm_config cfg = {.no_signal_handlers = 1};
    ck_assert_int_eq(gilvm_runtime_init(&cfg), 0);
    ck_assert_int_eq(rt_signal_get(SIGINT), RT_SIG_DFL);
    gilvm_runtime_finalize(0);
}
END_TEST

Suite *suite_async(void)
{
    Suite *s = suite_create("async");
    TCase *tc = tcase_create("pending");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pending_interp_queue_caps_and_passes);
    tcase_add_test(tc, test_pending_main_queue_caps_and_drains);
    tcase_add_test(tc, test_pending_first_failure_stops_the_pass);
    tcase_add_test(tc, test_pending_main_queue_only_on_main);
    tcase_add_test(tc, test_pending_for_other_interpreter);
    tcase_add_test(tc, test_pending_add_without_gil_seen_at_take);
    suite_add_tcase(s, tc);

    tcase_add_test(tc, test_pending_one_runner_at_a_time);

    tc = tcase_create("signals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_signal_trips_and_coalesces);
    tcase_add_test(tc, test_signal_handler_failure_rearms);
    tcase_add_test(tc, test_signal_only_main_thread_handles);
    tcase_add_test(tc, test_wakeup_fd_byte_after_pending_bit);
    tcase_add_test(tc, test_signal_makes_main_gil_wait_urgent);
    tcase_add_test(tc, test_sigint_default_unless_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("async_exc_gilstate");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_async_exc_slot);
    tcase_add_test(tc, test_gilstate_foreign_thread);
    tcase_add_test(tc, test_gilstate_reattaches_own_state);
    tcase_add_test(tc, test_gilstate_after_finalization_starts);
    suite_add_tcase(s, tc);

    tc = tcase_create("fork");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fork_with_gil_waiters);
    tcase_add_test(tc, test_fork_from_worker);
    suite_add_tcase(s, tc);

    tc = tcase_create("embed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_embed_pending_add_from_foreign_thread);
    tcase_add_test(tc, test_embed_pending_run_at_finalization);
    tcase_add_test(tc, test_embed_gilstate_runs_code);
    tcase_add_test(tc, test_finalization_error_for_daemon_join_and_lock);
    tcase_add_test(tc, test_thread_start_refused_while_finalizing);
    suite_add_tcase(s, tc);
    return s;
}
