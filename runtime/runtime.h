/* SPDX-License-Identifier: MIT */
/* The runtime layer's structures and entry points: the process-wide runtime, interpreters,
 * thread states and the GIL, modelled on CPython 3.14 (pycore_runtime.h, pycore_interp.h,
 * pycore_tstate.h).  Called by vm/; includes nothing of vm/.  The VM extends rt_interp and
 * rt_thread by embedding them as the first member of its own structs. */
#ifndef RT_RUNTIME_H
#define RT_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"

typedef struct rt_runtime rt_runtime;
typedef struct rt_interp rt_interp;
typedef struct rt_thread rt_thread;
typedef struct rt_gil rt_gil;

/* ---- pending calls [ceval_gil.c, struct _pending_calls]; see pending.c Notes ---- */

/* A pending call: runs holding the GIL on a thread of the target interpreter; returns 0, or
 * non-zero after setting the embedder's exception (the poll then raises it). */
typedef int (*rt_pending_fn)(void *arg);

#define RT_PENDING_CAP 300          /* per-interpreter queue: capacity */
#define RT_PENDING_MAXLOOP 100      /* per-interpreter queue: calls run per pass */
#define RT_PENDING_MAIN_CAP 32      /* main-thread-only queue: capacity (drained fully) */

typedef struct {
    pthread_mutex_t mutex;          /* guards everything below; never held while calling */
    rt_thread *handling;            /* the thread running this queue's calls, or NULL */
    _Atomic int32_t npending;       /* queued calls; written under mutex, read anywhere */
    int32_t cap, maxloop, first;    /* capacity, calls per pass (0: all), ring head */
    struct { rt_pending_fn fn; void *arg; } calls[RT_PENDING_CAP];
} rt_pending;

/* ---- status, as CPython's PyStatus: returned by value from lifecycle functions ---- */

typedef struct {
    int failed;        /* 0 on success */
    const char *func;  /* function that failed, or NULL */
    const char *msg;   /* static message, or NULL */
} rt_status;

#define RT_STATUS_OK ((rt_status){0, NULL, NULL})
#define RT_STATUS_ERR(m) ((rt_status){1, __func__, (m)})

/* Prints "gilvm: fatal error in FUNC: MSG" to stderr and aborts; for broken invariants. */
_Noreturn void rt_fatal(const char *func, const char *msg);
#define RT_FATAL(msg) rt_fatal(__func__, (msg))

/* ---- statistics kept per thread (read by --stats and the trace writer) ---- */

typedef struct {
    uint64_t switches;        /* times this thread took the GIL from another thread */
    uint64_t forced_switches; /* drops this thread made because it was asked to */
    uint64_t drop_requests;   /* drop requests this thread set on a holder */
    uint64_t hold_ns, hold_max_ns;   /* time holding the GIL: total and longest hold */
    uint64_t wait_ns, wait_max_ns;   /* time waiting for the GIL: total and longest wait */
    uint64_t bytecodes;       /* instructions executed; written by the VM */
    uint64_t pending_calls;   /* pending calls run by this thread */
    uint64_t signals;         /* signal handlers run by this thread */
    uint64_t gc_runs;         /* collections run by this thread */
    /* Samples of hold and wait times (ns) for p50/p99; a bounded reservoir. */
    uint32_t nhold, nwait;
    uint64_t *hold_samples, *wait_samples;
    uint64_t hold_count, wait_count; /* holds and waits seen; the reservoirs sample these */
    uint64_t rng;                    /* reservoir-sampling random state */
} rt_thread_stats;

/* Capacity of each sample reservoir (hold_samples, wait_samples). */
#define RT_STATS_SAMPLES 4096

/* Stores in *out the p-th percentile (0 <= p <= 100, nearest rank) of n samples; returns 0,
 * or -1 if n is 0, p is out of range or memory runs out. */
int rt_stats_percentile(const uint64_t *samples, uint32_t n, double p, uint64_t *out);

/* Stats of a deleted thread state, kept by its interpreter until the interpreter is freed;
 * thread id 0 is the merged row of every state swapped in to run code there from another
 * interpreter's thread (whence RT_WHENCE_EXEC). */
typedef struct {
    uint64_t thread_id;
    rt_thread_stats stats;
} rt_retired_stats;

/* ---- thread state [PyThreadState + _PyThreadStateImpl] ---- */

enum rt_thread_state { RT_DETACHED = 0, RT_ATTACHED = 1, RT_SUSPENDED = 2, RT_SHUTTING_DOWN = 3 };

enum rt_whence {
    RT_WHENCE_UNKNOWN = 0, RT_WHENCE_INIT, RT_WHENCE_FINI, RT_WHENCE_THREADING,
    RT_WHENCE_GILSTATE, RT_WHENCE_EXEC,
};

struct rt_thread {
    rt_breaker eval_breaker;        /* polled by the eval loop; see breaker.h */
    rt_thread *prev, *next;         /* interpreter's thread list, newest first */
    rt_interp *interp;
    uint64_t id;                    /* unique within its interpreter, from 1 */
    pthread_t os_ident;             /* set when bound to an OS thread */
    int bound;                      /* os_ident is valid */
    _Atomic int state;              /* enum rt_thread_state */
    int whence;                     /* enum rt_whence */
    int daemon;
    int recursion_limit;            /* the interpreter's, copied: bytecode frames allowed (the
                                     * VM counts a thread's frames in its frame records) */
    int c_recursion_remaining;      /* native re-entries left (callbacks into bytecode) */
    int gilstate_counter;           /* GILState nesting */
    void *_Atomic async_exc;        /* opaque VM exception to raise at the next poll */
    rt_thread_stats stats;
    uint64_t hold_start_ns;         /* when this thread last took the GIL */
    uint64_t last_hold_ns;          /* length of its last hold (convoy fix, gil.c Notes) */
    uint64_t detach_ns;             /* when it last released the GIL */
    _Atomic int brief;              /* enum rt_brief: a brief detach (rt_thread_detach_brief) */
    struct rt_sched_slot *sched;    /* its place in the controlled scheduler, or NULL (sched.c) */
};

/* rt_thread.brief: where a thread stands in a brief detach (gil.c Notes, "Beyond CPython 5"). */
enum rt_brief {
    RT_BRIEF_NONE = 0,              /* not in one */
    RT_BRIEF_HELD = 1,              /* in a foreign call, still holding its GIL */
    RT_BRIEF_RELEASED = 2,          /* in a foreign call; a waiter released the GIL for it */
    RT_BRIEF_RELEASING = 3,         /* a waiter claimed it and is releasing the GIL for it */
};

/* Defaults: recursion limit of a new interpreter, native re-entries per thread, switch
 * interval in microseconds (CPython's 5 ms). */
#define RT_RECURSION_LIMIT 1000
#define RT_C_RECURSION_LIMIT 200
#define RT_SWITCH_INTERVAL_US 5000

/* ---- GIL [ceval_gil.c, struct _gil_runtime_state] ---- */

struct rt_gil {
    pthread_mutex_t mutex;
    pthread_cond_t cond;            /* signalled when the GIL is released */
    pthread_mutex_t switch_mutex;
    pthread_cond_t switch_cond;     /* signalled when a forced switch completed */
    _Atomic int locked;
    rt_thread *_Atomic last_holder;
    _Atomic uint64_t switch_number;
    _Atomic uint64_t interval_us;   /* switch interval, microseconds, > 0 */
    int initialized;
    struct rt_gil_waiter *queue;    /* waiting threads, urgent first, then FIFO; under mutex */
    _Atomic uint32_t nwaiting;      /* length of queue; written under mutex */
    int closing;                    /* being torn down: releases and leavers signal cond */
    int nswitching;                 /* droppers in the forced-switch wait; under mutex */
};

/* ---- interpreter state [PyInterpreterState] ---- */

typedef struct {
    int own_gil;              /* 1: own GIL; 0: share the main interpreter's */
    int allow_threads;
    int allow_daemon_threads;
    int allow_fork;
} rt_interp_config;

/* The main interpreter's config: own GIL, everything allowed. */
#define RT_INTERP_CONFIG_MAIN ((rt_interp_config){1, 1, 1, 1})
/* CPython's isolated sub-interpreter default: own GIL, threads, no daemon threads, no fork. */
#define RT_INTERP_CONFIG_ISOLATED ((rt_interp_config){1, 1, 0, 0})
/* CPython's legacy sub-interpreter: shares the main GIL, everything allowed. */
#define RT_INTERP_CONFIG_LEGACY ((rt_interp_config){0, 1, 1, 1})

/* GIL events reported to rt_hooks.gil_event: slices (start < end) and instants (start == end). */
enum rt_gil_event {
    RT_GIL_EV_WAIT,           /* slice: the thread waited for the GIL (only when it queued) */
    RT_GIL_EV_HOLD,           /* slice: the thread held the GIL */
    RT_GIL_EV_DROP_REQUEST,   /* instant: the thread, waiting, asked the holder to drop */
    RT_GIL_EV_FORCED_SWITCH,  /* instant: the thread dropped because it was asked */
};

/* Asynchronous events reported to rt_hooks.async_event, as they start. */
enum rt_async_event {
    RT_EV_PENDING_CALL,       /* the thread runs a pending call */
    RT_EV_SIGNAL,             /* the main thread runs the handler of signal `arg` */
    RT_EV_GC,                 /* the embedder collected the interpreter's heap (reported by
                               * the embedder itself, after the collection) */
};

/* Callbacks from the runtime into the layer that embeds it (the VM). */
typedef struct {
    /* Releases what the embedder keeps in a thread state before the runtime frees it. */
    void (*thread_clear)(rt_thread *t);
    /* Releases what the embedder keeps in an interpreter before the runtime frees it. */
    void (*interp_clear)(rt_interp *in);
    /* Reports a GIL event (enum rt_gil_event) of `t`; runs on t's OS thread, holding the GIL;
     * may be NULL.  For the trace writer. */
    void (*gil_event)(rt_thread *t, int event, uint64_t start_ns, uint64_t end_ns);
    /* Reports an asynchronous event (enum rt_async_event, with its argument) as `t` starts
     * handling it, holding the GIL; may be NULL.  For the trace writer. */
    void (*async_event)(rt_thread *t, int event, int arg);
} rt_hooks;

struct rt_interp {
    rt_interp *next;                /* runtime's interpreter list, newest first */
    int64_t id;                     /* main = 0, strictly increasing, never reused */
    _Atomic int64_t id_refcount;
    rt_thread *threads;             /* head of the thread list (newest first) */
    uint64_t next_thread_id;
    rt_gil *gil;                    /* own_gil ? &own : main's */
    rt_gil own;
    rt_interp_config config;
    int recursion_limit;
    _Atomic int finalizing;
    size_t thread_size;             /* bytes to allocate per thread state (>= sizeof rt_thread) */
    rt_retired_stats *retired;      /* stats of deleted thread states, oldest first; HEAD_LOCK */
    size_t nretired, retired_cap;
    rt_pending pending;             /* run by any thread of this interpreter */
    _Atomic uint32_t sticky_breaker;    /* bits every thread carries (rt_interp_set_breaker) */
};

/* ---- runtime [_PyRuntimeState] ---- */

struct rt_runtime {
    pthread_mutex_t mutex;          /* HEAD_LOCK: interpreter and thread lists */
    int initialized;
    rt_interp *interps;             /* newest first */
    rt_interp *main_interp;
    int64_t next_interp_id;
    pthread_t main_thread;          /* OS ident of the main thread */
    rt_thread *_Atomic main_tstate; /* the main thread's state (the forking thread's, after fork) */
    rt_thread *_Atomic finalizing;  /* thread that runs finalization, or NULL */
    rt_hooks hooks;
    rt_pending pending_main;        /* main-thread-only calls [_PyRuntime.ceval.pending_mainthread] */
    _Atomic uint64_t epoch;         /* counts inits: a thread's binding from an earlier run is stale */
};

extern rt_runtime rt_main_runtime;

/* ---- lifecycle ---- */

/* Initialises the runtime and creates the main interpreter (id 0, `interp_size` bytes,
 * threads of `thread_size` bytes) with one thread state bound to the calling thread and
 * attached (holding the GIL).  Must be called once, from the main thread. */
rt_status rt_runtime_init(size_t interp_size, size_t thread_size, const rt_hooks *hooks);

/* Tears down every interpreter (sub-interpreters first) and the GIL last.  The caller is
 * the attached main thread state; it is detached and freed.  It marks the runtime
 * finalizing (if the VM has not), sets RT_EVAL_PLEASE_STOP on every other thread state and
 * makes threads waiting for a GIL exit; threads still holding a sub-interpreter's own GIL
 * must detach (the VM stops them at their next poll) or this waits for them.  The runtime
 * can be initialised again afterwards. */
rt_status rt_runtime_finalize(void);

/* Marks the runtime finalizing with `t` as the finalizing thread (idempotent for the same
 * `t`); returns -1 if another thread is already finalizing.  From then on every other thread
 * exits at its next GIL take (see rt_thread_must_exit). */
int rt_runtime_set_finalizing(rt_thread *t);

/* ---- interpreters ---- */

/* Creates an interpreter with `config` (NULL: RT_INTERP_CONFIG_ISOLATED), registers it in
 * the runtime list with the next id.  `interp_size` and `thread_size` are the embedder's
 * struct sizes.  NULL on failure, or if the runtime is not initialised. */
rt_interp *rt_interp_new(const rt_interp_config *config, size_t interp_size, size_t thread_size);

/* Unlinks and frees an interpreter whose threads have all been deleted (any left are
 * deleted too, as CPython's zapthreads); calls hooks.interp_clear.  Fatal for the main
 * interpreter or the caller's own. */
void rt_interp_delete(rt_interp *in);

/* Calls fn once per thread of `in`: live ones (newest first, live = 1) then retired ones
 * (oldest first, live = 0), under HEAD_LOCK, so fn must not call into the runtime.  Threads
 * write their own stats only while holding their GIL: hold that GIL for exact live values. */
void rt_interp_stats_foreach(rt_interp *in,
                             void (*fn)(void *arg, uint64_t thread_id, int live,
                                        const rt_thread_stats *s),
                             void *arg);

/* Returns the main interpreter. */
rt_interp *rt_interp_main(void);

/* Returns the interpreter with `id`, or NULL; the caller must keep it alive (it holds a
 * thread of it, or knows it is not being deleted). */
rt_interp *rt_interp_find(int64_t id);

/* Returns 1 if `in` has thread states (under HEAD_LOCK), else 0. */
int rt_interp_has_threads(rt_interp *in);

/* [_PyInterpreterState_IDIncref] Adds one reference to `in`'s id; any thread. */
void rt_interp_id_incref(rt_interp *in);

/* [_PyInterpreterState_IDDecref] Drops one reference to `in`'s id; returns how many are
 * left (the embedder destroys an interpreter that requires them at 0). */
int64_t rt_interp_id_decref(rt_interp *in);

/* Sets the switch interval in microseconds; returns -1 if `us` is 0 (caller raises). */
int rt_interp_set_switch_interval(rt_interp *in, uint64_t us);

/* Returns the switch interval in microseconds. */
uint64_t rt_interp_switch_interval(rt_interp *in);

/* Sets `bits` in the eval breaker of every thread of `in`, and makes every thread created in
 * it from now on start with them (sticky bits, such as RT_LIMITS).  From any thread, with
 * or without the GIL. */
void rt_interp_set_breaker(rt_interp *in, uint32_t bits);

/* Undoes rt_interp_set_breaker for `bits`: clears them in every thread of `in` and in new
 * threads' initial word. */
void rt_interp_clear_breaker(rt_interp *in, uint32_t bits);

/* ---- thread states ---- */

/* Allocates a detached thread state in `in` (zeroed, interp->thread_size bytes), links it at
 * the head of the thread list and gives it the next id.  NULL on allocation failure. */
rt_thread *rt_thread_new(rt_interp *in, int whence);

/* Binds `t` to the calling OS thread (sets os_ident). */
void rt_thread_bind(rt_thread *t);

/* Unlinks `t` from its interpreter, calls hooks.thread_clear, moves its stats to the
 * interpreter's retired list (in->retired) and frees it; `t` must not be attached. */
void rt_thread_delete(rt_thread *t);

/* Deletes the calling thread's attached state `t`: unlinks it holding the GIL, detaches
 * (releasing the GIL) and frees it; for a thread that is about to end. */
void rt_thread_delete_current(rt_thread *t);

/* Returns the thread state bound to the calling OS thread (the first one bound, even if
 * detached), or NULL; for GILState. */
rt_thread *rt_thread_bound(void);

/* Returns the calling thread's current (attached) thread state, or NULL. */
rt_thread *rt_thread_current(void);

/* Takes the GIL of t's interpreter (waiting as ceval_gil.c does) and makes `t` current.  If
 * another thread is finalizing the runtime, the calling OS thread exits instead. */
void rt_thread_attach(rt_thread *t);

/* As rt_thread_attach, for a thread returning from a blocking call or a sleep (the convoy
 * fix): if it spent at least as long detached as it held the GIL last time, it queues ahead
 * of threads that did not and asks the holder to drop at once instead of after an interval. */
void rt_thread_attach_urgent(rt_thread *t);

/* Returns 1 if another thread is finalizing the runtime, so `t` must never run again; only
 * compares pointers, so `t` may be dangling. */
int rt_thread_must_exit(rt_thread *t);

/* Ends the calling OS thread, which must never run again (rt_thread_must_exit), detaching
 * it first if it asked to be; touches no thread state. */
_Noreturn void rt_thread_exit(void);

/* Asks that the calling OS thread, joinable, be detached if the runtime ends it
 * (rt_thread_exit): its creator will not join it then. */
void rt_thread_set_detach_on_exit(void);

/* Makes no thread current and releases the GIL; `t` must be current. */
void rt_thread_detach(rt_thread *t);

/* As rt_thread_detach, for a call into C that is usually short (a native call through FFI):
 * when no thread waits for the GIL, `t` keeps holding it, marked RT_BRIEF_HELD, and the
 * first thread that comes to take it releases it on t's behalf at once instead of waiting
 * an interval; otherwise (or with deferred wake-ups to run) it releases as rt_thread_detach.
 * The next rt_thread_attach(_urgent) of `t` then only clears the mark if nobody took the
 * GIL meanwhile (no lock, no clock).  `t` must be current; no thread is current after. */
void rt_thread_detach_brief(rt_thread *t);

/* Detaches the current state (if any) and attaches `t` (if not NULL); returns the old one.
 * Under the controlled scheduler a new `t` runs in the old state's turns (rt_sched_lend). */
rt_thread *rt_thread_swap(rt_thread *t);

/* Deletes every thread state of `in` other than `keep` (after fork, at finalization). */
void rt_thread_delete_all_but(rt_interp *in, rt_thread *keep);

/* Calls fn(arg, t) for every thread state of every interpreter, under HEAD_LOCK (so fn must
 * not call into the runtime; no state is created or freed meanwhile), until fn returns
 * non-zero; returns that value, or 0. */
int rt_threads_foreach(int (*fn)(void *arg, rt_thread *t), void *arg);

/* Returns 1 if `t` is the main thread's state (that of the main interpreter). */
int rt_thread_is_main(const rt_thread *t);

/* [PyThreadState_SetAsyncExc] Stores `exc` (opaque; NULL clears) in the async-exception slot
 * of the thread of `in` whose id is `id`, sets its RT_ASYNC_EXCEPTION bit and calls
 * wake(thread) (if not NULL; under the thread-list lock, so the state stays alive) to end a
 * blocking wait; the slot's previous value goes to *old.  Returns 1, or 0 (nothing done)
 * if no such thread. */
int rt_thread_set_async_exc(rt_interp *in, uint64_t id, void *exc, void **old,
                            void (*wake)(rt_thread *t));

/* Handles RT_GIL_DROP_REQUEST at a poll: clears the bit, drops the GIL, waits until another
 * thread took it (forced switching), then re-attaches at the back of the queue.  Called by
 * the eval loop with `t` attached; without waiters it just drops and re-takes (running
 * t's deferred calls at the release). */
void rt_gil_yield(rt_thread *t);

/* Handles RT_GIL_DEFERRED at a poll, `t` holding its GIL: runs t's deferred calls if they
 * are due (clearing the bit), else leaves them and the bit for a later poll. */
void rt_gil_defer_poll(rt_thread *t);

/* Ends the GIL hold `t` has had since it last took its GIL at `now`, as a release does: one
 * hold in t's stats and a hooks.gil_event slice; then starts a new one.  Returns its length.
 * By rt_gil_drop, and by the VM's instruments for the hold still open at exit; `t` holds its
 * GIL (stats.c). */
uint64_t rt_stats_close_hold(rt_thread *t, uint64_t now);

/* Runs fn(arg) right after `t`, which holds its GIL, releases it (without the GIL, before
 * the release returns), or, if `t` keeps the GIL that long, at its first poll
 * RT_GIL_DEFER_US after its first deferred call (holding the GIL; it sets RT_GIL_DEFERRED
 * so that the polls call rt_gil_defer_poll).  For waking a thread
 * that will need the GIL at once (a queue's consumer): woken earlier it would only find the
 * GIL held and wait again, or ask for a drop (gil.c Notes, "Beyond CPython 4").  `fn` must
 * not take the GIL nor touch `t`; what it touches must outlive rt_gil_defer_barrier. */
void rt_gil_defer(rt_thread *t, void (*fn)(void *), void *arg);

/* rt_gil_defer: calls one holder can defer (more run at once), and the longest it defers
 * them while it keeps the GIL, in microseconds (less if the switch interval is shorter). */
#define RT_GIL_DEFER_MAX 4
#define RT_GIL_DEFER_US 50

/* Runs the calling thread's deferred calls (if it holds a GIL and has any), then waits
 * until no thread is running deferred calls after a release; call it before freeing what
 * a deferred call may touch.  From any thread, with or without a GIL. */
void rt_gil_defer_barrier(void);

/* ---- the clock and timed waits (clock.c) ---- */

/* Monotonic clock in nanoseconds. */
uint64_t rt_now_ns(void);

/* Initialises a condition variable whose timed waits use the monotonic clock. */
void rt_cond_init(pthread_cond_t *c);

/* Waits on `c` (whose mutex `m` the caller holds) until signalled or until the monotonic
 * time `deadline_ns`; returns 1 if the deadline has passed, else 0 (a wake-up, perhaps
 * spurious). */
int rt_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t deadline_ns);

/* ---- pending calls (pending.c) ---- */

/* [_PyEval_AddPendingCall] Queues fn(arg) to run at a poll of some thread of `in`, one
 * thread at a time.  From any thread, with or without a GIL, not from a signal handler.
 * Returns 0, or -1 if the queue is full (nothing is raised). */
int rt_pending_add(rt_interp *in, rt_pending_fn fn, void *arg);

/* [Py_AddPendingCall] Queues fn(arg) to run on the main thread of the main interpreter;
 * as rt_pending_add otherwise (capacity RT_PENDING_MAIN_CAP). */
int rt_pending_add_main(rt_pending_fn fn, void *arg);

/* Handles RT_CALLS_TO_DO for the attached `t`: runs up to RT_PENDING_MAXLOOP calls of t's
 * interpreter and, on the main thread, the whole main-thread queue; re-arms the bit if calls
 * are left.  Stops at the first call that fails and returns -1 (the rest stay queued, the
 * bit stays set); otherwise 0.  Another thread already running the queue: returns 0. */
int rt_pending_run(rt_thread *t);

/* Number of calls queued that `t` may run (its interpreter's, plus the main-thread queue
 * if `t` is the main thread). */
int rt_pending_count(const rt_thread *t);

/* ---- signals (signals.c) [signalmodule.c] ---- */

#define RT_NSIG 65                  /* signal numbers are 1 .. RT_NSIG - 1 */

/* A signal's disposition at the OS level. */
enum rt_sig_action {
    RT_SIG_DFL = 0,                 /* SIG_DFL */
    RT_SIG_IGN = 1,                 /* SIG_IGN */
    RT_SIG_CATCH = 2,               /* the runtime's handler: trips the signal for the VM */
    RT_SIG_OTHER = 3,               /* a handler the runtime did not install */
};

/* Sets the OS disposition of `signum` (RT_SIG_DFL, _IGN or _CATCH), remembering the first
 * disposition it replaces for rt_runtime_finalize to restore; 0, or -1 with errno. */
int rt_signal_set(int signum, int action);

/* Returns the OS disposition of `signum` (enum rt_sig_action), or -1 with errno. */
int rt_signal_get(int signum);

/* Returns 1 if `t` may run signal handlers: the main thread of the main interpreter. */
int rt_signals_can_handle(const rt_thread *t);

/* Makes `t` (NULL: none) the stand-in of the main thread: the state of another interpreter
 * the main OS thread has swapped in, whose eval breaker the handler also sets
 * RT_SIGNALS_PENDING on; returns the previous one.  Main OS thread only; set it back before
 * the state is freed (it waits for a handler using the old one). */
rt_thread *rt_signals_set_standin(rt_thread *t);

/* Returns 1 if `t` is the main thread's stand-in (rt_signals_set_standin), else 0. */
int rt_signals_is_standin(const rt_thread *t);

/* For the stand-in: if `signum` is tripped, clears its flag (the main thread's handler will
 * not run for it) and returns 1; else 0. */
int rt_signal_take(int signum);

/* Handles RT_SIGNALS_PENDING for the attached `t` [_PyErr_CheckSignalsTstate]: clears the
 * bit and, for each tripped signal in number order, clears its flag and calls
 * run(t, signum, arg).  If a call fails, re-arms the bit (the remaining signals run at a
 * later poll) and returns -1; else 0.  Does nothing unless rt_signals_can_handle(t). */
int rt_signals_handle(rt_thread *t, int (*run)(rt_thread *t, int signum, void *arg), void *arg);

/* Returns the number of times the runtime's handler caught `signum` since init (or fork):
 * deliveries, which POSIX may have coalesced but the runtime never loses. */
uint64_t rt_signal_count(int signum);

/* Returns 1 if a signal was caught and its handlers have not run yet (one atomic load). */
int rt_signals_tripped(void);

/* Makes the handler write each caught signal's number, as one byte, to `fd` (-1: none);
 * returns the previous fd, which no handler uses any more.  The caller checks that `fd` is
 * valid and non-blocking. */
int rt_signal_set_wakeup_fd(int fd);

/* As rt_signal_set_wakeup_fd, for the embedder's own fd (written after the wakeup fd), so
 * that a thread can wake the main thread's blocking waits (the VM's waker thread). */
int rt_signal_set_notify_fd(int fd);

/* ---- GILState (gilstate.c) [PyGILState_Ensure / Release] ---- */

enum {
    RT_GILSTATE_LOCKED = 0,         /* the thread already held the GIL */
    RT_GILSTATE_UNLOCKED = 1,       /* ensure took it */
    RT_GILSTATE_UNAVAILABLE = -1,   /* runtime not initialised or finalizing: nothing done */
};

/* Lets the calling OS thread, whatever created it, run code of the main interpreter: binds a
 * new thread state (whence RT_WHENCE_GILSTATE) if the thread has none, attaches it if it is
 * not attached, counts the nesting.  Returns RT_GILSTATE_LOCKED or _UNLOCKED, to pass to
 * rt_gilstate_release, or RT_GILSTATE_UNAVAILABLE once finalization has started (the thread
 * must not run code; releasing that value does nothing). */
int rt_gilstate_ensure(void);

/* Undoes the matching rt_gilstate_ensure: the outermost release of a state that ensure
 * created deletes it (releasing the GIL); otherwise releases the GIL if ensure took it. */
void rt_gilstate_release(int state);

/* Returns 1 if the calling thread's bound state is attached (holds the GIL), else 0. */
int rt_gilstate_check(void);

/* ---- fork (fork.c) [PyOS_BeforeFork / AfterFork_Parent / AfterFork_Child] ---- */

/* Before fork(): the caller, attached to the main interpreter and holding its GIL, takes the
 * runtime's locks (HEAD_LOCK, the pending queues') so the child inherits consistent state. */
void rt_fork_before(rt_thread *t);

/* In the parent after fork(): releases what rt_fork_before took. */
void rt_fork_after_parent(rt_thread *t);

/* In the child after fork(): releases the locks, re-creates the GIL (held by `t`), makes `t`
 * the main thread, clears tripped signals and their counters, and deletes every other thread
 * state and every sub-interpreter.  The VM must first stop pointing at the other states. */
rt_status rt_fork_after_child(rt_thread *t);

#endif
