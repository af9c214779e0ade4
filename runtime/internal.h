/* SPDX-License-Identifier: MIT */
/* Declarations shared by the runtime's own files (lifecycle.c, interp.c, thread.c, gil.c,
 * stats.c) and its unit test; nothing outside runtime/ and tests/unit/ includes this. */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include "runtime.h"

/* Runs a pthread call that must not fail; a failure is a broken invariant. */
#define RT_MUST(call) \
    do { if ((call) != 0) rt_fatal(__func__, #call " failed"); } while (0)

/* HEAD_LOCK / HEAD_UNLOCK: the runtime mutex guarding the interpreter and thread lists. */
void rt_head_lock(void);
void rt_head_unlock(void);


/* Creates an interpreter without checking that the runtime is initialised (used by init). */
rt_interp *rt_interp_create(const rt_interp_config *config, size_t interp_size,
                            size_t thread_size);

/* Deletes the threads of `in`, runs hooks.interp_clear, unlinks and frees it; for its own
 * GIL, first waits until no thread holds or waits for it. */
void rt_interp_free(rt_interp *in);

/* Initialises a GIL: unlocked, no holder, default interval. */
void rt_gil_init(rt_gil *gil);

/* Wakes the threads waiting for `gil` and returns once all have left; they must be threads
 * that must exit (finalization).  The caller may hold the GIL. */
void rt_gil_evict(rt_gil *gil);

/* Waits until no thread holds or waits for `gil` (waiters that must exit leave), then
 * destroys it; the caller must not hold it. */
void rt_gil_fini(rt_gil *gil);

/* Takes t's GIL (urgent: the convoy fix of rt_thread_attach_urgent); exits the OS thread if
 * rt_thread_must_exit(t).  Does not touch the current-thread TLS. */
void rt_gil_take(rt_thread *t, int urgent);

/* Releases t's GIL; if `asked` and a thread was waiting, waits until another thread took it
 * and returns 1 (a forced switch), else returns 0. */
int rt_gil_drop(rt_thread *t, int asked);

/* Starts a brief detach of the holder `t` (rt_thread_detach_brief): 1 if `t` keeps its GIL
 * marked RT_BRIEF_HELD (or a waiter already released it), 0 if the caller must release it
 * as a detach does (waiters, or deferred calls to run). */
int rt_gil_hold_briefly(rt_thread *t);

/* Ends a brief detach of `t`: 1 if `t` still holds its GIL (the mark is cleared), 0 if a
 * waiter released it, so `t` must take it as any thread. */
int rt_gil_end_brief(rt_thread *t);

/* Returns how many deferred calls (rt_gil_defer) the calling thread has waiting. */
int rt_gil_deferred_count(void);

/* After fork(), in the child: re-creates the GIL's mutexes and condvars (the other threads'
 * waits are gone), held by `holder`, keeping the interval and counters. */
void rt_gil_after_fork(rt_gil *gil, rt_thread *holder);

/* Initialises an empty pending-call queue of capacity `cap` running `maxloop` calls per pass
 * (0: all); rt_pending_fini destroys it, dropping what is left. */
void rt_pending_init(rt_pending *p, int32_t cap, int32_t maxloop);
void rt_pending_fini(rt_pending *p);

/* Called by rt_gil_take once `t` holds the GIL: sets RT_CALLS_TO_DO on `t` if it has calls
 * to run [update_eval_breaker_for_thread]. */
void rt_pending_note_take(rt_thread *t);

/* Points the signal handler at the main thread state `main` (and its GIL). */
void rt_signals_init(rt_thread *main);

/* Restores the dispositions rt_signal_set replaced, closes the wakeup fd's use, stops
 * targeting the main thread and waits for handlers running on other threads to finish. */
void rt_signals_fini(void);

/* Waits until no signal handler is between reading a thread state pointer and writing its
 * eval breaker; called before a thread state is freed.  Async-signal-safe to wait for. */
void rt_signals_quiesce(void);

/* In the child after fork(): forgets tripped signals and counters, targets `main`. */
void rt_signals_after_fork(rt_thread *main);

/* Adds one hold or wait time to `s` (counters, max, reservoir); caller holds the GIL. */
void rt_stats_record_hold(rt_thread_stats *s, uint64_t ns);
void rt_stats_record_wait(rt_thread_stats *s, uint64_t ns);

/* Moves t's stats (and its sample buffers) to in->retired; caller holds HEAD_LOCK. */
void rt_stats_retire(rt_interp *in, rt_thread *t);

/* Frees the retired list of `in`. */
void rt_stats_free_retired(rt_interp *in);

/* ---- the controlled scheduler's hooks in thread.c and fork.c (sched.c) ---- */

struct rt_sched_slot;

/* rt_thread_bind: remembers t's scheduler slot (if any) for the calling OS thread. */
void rt_sched_bind(rt_thread *t);

/* attach: if `t` is controlled, waits until it holds the token (or the scheduler stops). */
void rt_sched_wait_turn(rt_thread *t);

/* The exiting controlled thread `t`, still attached: leaves the scheduler and picks the next
 * holder, to hand the token to (rt_sched_hand) once t released its GIL; NULL if none. */
struct rt_sched_slot *rt_sched_leave(rt_thread *t);

/* Makes `next` the token holder and wakes it. */
void rt_sched_hand(struct rt_sched_slot *next);

/* rt_thread_delete of a controlled thread that never ran: takes it off the scheduler. */
void rt_sched_forget(rt_thread *t);

/* In the child after fork(): control ends (the other threads are gone). */
void rt_sched_after_fork(void);

#endif
