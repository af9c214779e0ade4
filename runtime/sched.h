/* SPDX-License-Identifier: MIT */
/* The controlled scheduler (sched.c): under --schedule, a token that exactly one thread of the
 * runtime holds at a time, the choice of the next holder at every scheduling point, virtual
 * time, deadlock detection and the schedule record.  Called by thread.c and by the VM. */
#ifndef RT_SCHED_H
#define RT_SCHED_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime.h"

enum rt_sched_strategy { RT_SCHED_RANDOM = 1, RT_SCHED_PCT = 2, RT_SCHED_REPLAY = 3 };

/* rt_sched_block's results, besides 1 (ready) and 0 (deadline passed). */
enum {
    RT_SCHED_INTERRUPTED = 2,   /* a signal or a stop request is pending for the thread */
    RT_SCHED_STOPPED = 3,       /* the scheduler stopped meanwhile: wait uncontrolled */
};

/* One line of a schedule file: at `step`, thread `thread` of interpreter `interp` ran. */
typedef struct {
    uint64_t step;
    int64_t interp;
    uint64_t thread;
} rt_sched_choice;

/* Largest PCT depth accepted. */
#define RT_SCHED_MAX_DEPTH 64

typedef struct {
    int strategy;                   /* enum rt_sched_strategy */
    uint64_t seed;
    int depth;                      /* PCT: DEPTH (>= 1) */
    uint64_t steps_estimate;        /* PCT: k, the expected number of steps (>= 1) */
    char replay_strategy[32];       /* replay: the recorded run's strategy, as in its file */
    const rt_sched_choice *replay;  /* replay: the file's lines, by step (copied by start) */
    size_t nreplay;
    int record;                     /* keep the non-default choices for rt_sched_write (in a
                                     * temporary file: memory stays bounded) */
    /* Writes "file:line" of the instruction `t` is at into buf ("" if none); holding the token. */
    void (*where)(rt_thread *t, char *buf, size_t n);
    /* Writes what the blocked `t` waits for (its primitive, object and holder) into buf. */
    void (*describe)(rt_thread *t, int (*ready)(void *), void *obj, char *buf, size_t n);
    /* Called on a deadlock with the report (lines, the first "gilvm: deadlock: ..."); must
     * not return (the VM writes the schedule file and exits with status 3). */
    void (*deadlock)(const char *report);
} rt_sched_config;

/* Starts controlled scheduling with `main` (attached, the calling thread's state) holding the
 * token; 0, or -1 if it is already running or memory runs out. */
int rt_sched_start(const rt_sched_config *cfg, rt_thread *main);

/* Ends controlled scheduling (finalization, after rt_runtime_set_finalizing; fork child):
 * every thread waiting for the token is woken and goes on uncontrolled (or exits). */
void rt_sched_stop(void);

/* Returns 1 while controlled scheduling runs (one relaxed load). */
int rt_sched_active(void);

/* Returns 1 if `t` is under the scheduler's control: it runs only holding the token. */
int rt_sched_controls(const rt_thread *t);

/* Puts the new, not yet started thread `nt` under control, runnable; by the token holder
 * before it starts nt's OS thread.  0, or -1 if memory runs out (nt stays uncontrolled). */
int rt_sched_add(rt_thread *nt);

/* The token holder's OS thread swaps from its state `from` to a new state `to` of another
 * interpreter (rt_thread_swap: running code there): `to` runs under from's slot, with its
 * name in the schedule, until rt_sched_reclaim.  Nothing if `from` is not controlled. */
void rt_sched_lend(rt_thread *from, rt_thread *to);

/* `to`, which borrowed a slot (rt_sched_lend), is being deleted: the slot goes back to its
 * lender.  Nothing if `to` borrowed none. */
void rt_sched_reclaim(rt_thread *to);

/* A scheduling point of the token holder `t` (what: the primitive, e.g. "lock_release", or
 * NULL for a poll): may hand the token to another thread and wait for it to come back,
 * releasing t's GIL meanwhile.  Nothing if `t` is not controlled or runs alone. */
void rt_sched_yield(rt_thread *t, const char *what);

/* The poll's scheduling point (RT_SCHED set): rt_sched_yield(t, NULL). */
void rt_sched_poll(rt_thread *t);

/* Blocks the token holder `t` in primitive `what` until ready(obj) (called with `mu` held,
 * while only the token holder runs) or until the virtual time reaches `deadline_ns` (0:
 * none), running other threads meanwhile.  Returns 1 ready, 0 deadline passed,
 * RT_SCHED_INTERRUPTED, or RT_SCHED_STOPPED (t attached again, if it may still run).
 * With no thread able to run and none waiting on a deadline: the deadlock callback. */
int rt_sched_block(rt_thread *t, pthread_mutex_t *mu, int (*ready)(void *), void *obj,
                   uint64_t deadline_ns, const char *what);

/* The controlled `t` (detached, holding the token) enters a blocking call the scheduler
 * cannot see through (`what`: "fd-io", "waitpid"; noted as uncontrolled): the token goes to
 * another thread if one can run.  While a thread is outside, a scheduler with nobody to run
 * waits for it instead of reporting a deadlock. */
void rt_sched_outside_begin(rt_thread *t, const char *what);

/* `t` is back from outside (still detached); its attach then waits for the token. */
void rt_sched_outside_end(rt_thread *t);

/* A foreign thread (GILState) starts (+1) or ends (-1) running code uncontrolled; while one
 * does, a scheduler with nobody to run waits for it instead of reporting a deadlock. */
void rt_sched_foreign(int delta);

/* The clock in nanoseconds: virtual under control (each read advances it by 1 us), else
 * rt_now_ns(). */
uint64_t rt_sched_clock_ns(void);

/* The wall clock in seconds: virtual under control (a fixed epoch plus the virtual clock). */
double rt_sched_wall_s(double real);

/* Notes that the run met something the scheduler does not control ("signal", "fd-io",
 * "native-call", "fork", "foreign-thread", ...: a static string); from any thread. */
void rt_sched_note_uncontrolled(const char *what);

/* The run's figures for --stats. */
typedef struct {
    char strategy[40];              /* "random", "pct:3", "replay" */
    uint64_t seed, steps, preemptions, divergences, digest;
    int replay;
    const char *uncontrolled[16];   /* NULL-terminated */
} rt_sched_summary;

/* One thread of a deadlock report: its interpreter, its id, and what it waits for (the
 * describe callback's text: "FILE:LINE: waits in lock_acquire of lock 2, held by thread 3"). */
typedef struct {
    int64_t interp;
    uint64_t id;
    char desc[512];
} rt_deadlock_line;

/* The deadlock report (docs/runtime.md, "Deadlock detection") of the `n` threads `lines`,
 * which it sorts by (interp, id): "gilvm: deadlock: ..." and a line per thread; malloc'd,
 * or NULL if memory runs out.  Shared by the controlled scheduler and the VM's detection
 * under the normal scheduler (vm/lib/wait.c). */
char *rt_deadlock_report(rt_deadlock_line *lines, size_t n);

/* Fills *s; 0, or -1 if no controlled run started. */
int rt_sched_summary_get(rt_sched_summary *s);

/* Writes the schedule file (docs/runtime.md) for program `program` to `f`. */
void rt_sched_write(FILE *f, const char *program);

/* Reads a schedule file into *cfg (strategy RT_SCHED_REPLAY, seed, the choices in a malloc'd
 * array the caller frees); 0, or -1 with a one-line message in err. */
int rt_sched_read(FILE *f, rt_sched_config *cfg, char *err, size_t errlen);

#endif
