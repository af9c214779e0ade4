/* SPDX-License-Identifier: MIT */
/* The controlled scheduler (--schedule): one token for the whole runtime, the choice of its
 * next holder at every scheduling point (random, PCT or a replayed schedule), virtual time,
 * deadlock detection, the schedule's digest and record.  Called by thread.c (attach, exit)
 * and by the VM (polls, blocking primitives, the CLI). */

/* Notes

   The token.  Under control a thread runs bytecode only while it holds the token *and* its
   GIL; `S.current` names the holder.  A thread coming to attach (rt_thread_attach: a new
   thread, a thread given the token back) first waits on its own condvar until it is the
   holder (rt_sched_wait_turn), then takes its GIL, which is free: the previous holder
   released it before it handed the token over.  So no thread ever waits for a GIL, no drop
   request is ever set, and no timer decides anything: sub-interpreters with their own GILs
   change nothing, since the token is one for the runtime.

   Scheduling points.  The holder asks for the next thread (pick) at every poll (the eval
   breaker's RT_SCHED bit, which every controlled thread carries while two or more are live,
   and nobody otherwise: a lone thread pays nothing), at every primitive that can wake a
   thread (rt_sched_yield: thread start, lock release, queue put, ...), when it blocks
   (rt_sched_block) and when it exits (rt_sched_leave).  If the pick is another thread, it
   releases its GIL, hands the token over and waits for it to come back.

   Who may touch what: the thread list, the strategy's state, the counters and the record are
   touched only by the token holder; `mu` orders one holder's writes before the next one's
   reads (the handoff locks it).  Blocked threads are not woken by their objects: the holder
   evaluates ready(obj) (under the object's mutex) when it picks, and wakes only the one it
   picks.

   Virtual time.  The clock (rt_sched_clock_ns) starts at 1 s and advances 1 us per read and
   1 us per step, so that busy loops on the clock end, differences are never zero, and a
   sleeper wakes while other threads keep busy; when no thread can run and some wait on a
   deadline, it jumps to the earliest deadline.  When no thread can run
   and none waits on a deadline, that is a deadlock: the VM's callback reports it and exits.

   The uncontrolled.  A thread entering a blocking call the scheduler cannot see through (fd
   I/O, waitpid: rt_sched_outside_begin) hands the token to a thread that can run, if any,
   else keeps it; back from it, it sets `back` and waits for the token like any thread, and
   the holder counts it runnable.  While a thread is outside, or a foreign (GILState) thread
   runs code, a holder with nobody to run waits for them in slices of 20 ms instead of
   reporting a deadlock: only they can change anything.

   Steps and the digest.  A step is a pick made while two or more controlled threads are
   live.  Default rule: keep the current thread if it can run, else the runnable thread with
   the lowest (interpreter id, thread id).  The digest is 64-bit FNV-1a over the bytes of
   (step, interp << 32 | thread), both 64-bit little-endian, for every step. */

#ifdef __linux__
#define _GNU_SOURCE                 /* sched_getaffinity: one_cpu() */
#endif
#include <errno.h>
#include <sched.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sched.h"

typedef struct rt_sched_slot {
    rt_thread *t;
    int64_t interp;                 /* ids, kept: t may be gone when the record is written */
    uint64_t id;
    struct rt_sched_slot *next;     /* S.list, by (interp, id); or S.dead */
    pthread_cond_t cv;              /* signalled when the token comes to this thread */
    _Atomic int sleeping;           /* it waits on cv (under S.mu), not spinning */
    int blocked;
    const char *what;               /* primitive it blocks in */
    pthread_mutex_t *mu;
    int (*ready)(void *);
    void *obj;
    uint64_t deadline;
    int64_t prio;                   /* PCT priority: the runnable thread with the highest runs */
    uint64_t passed;                /* PCT: steps in a row it could have run and did not */
    rt_thread *lender;              /* t borrowed the slot from it (rt_sched_lend), or NULL */
    int outside;                    /* in an uncontrolled blocking call (rt_sched_outside_begin) */
    _Atomic int back;               /* ... and back from it, waiting for the token */
} rt_sched_slot;

#define NKINDS 16

/* Virtual time a step takes: busy threads make the clock move, so a sleeper wakes. */
#define RT_SCHED_STEP_NS 1000

/* Rounds a thread waiting for the token spins (with a sched_yield every 64) before it sleeps. */
#define RT_SCHED_SPIN 2048

/* PCT: steps in a row a runnable thread may be passed over before it goes highest. */
#define RT_SCHED_PCT_STARVE 1000

static struct {
    _Atomic int on;
    pthread_mutex_t mu;             /* with each slot's `sleeping`: a handoff to a sleeper */
    rt_sched_slot *_Atomic current;
    rt_sched_slot *list, *dead;
    _Atomic int nlive;              /* written by the holder; read by waiters (spin or not) */
    rt_sched_config cfg;
    rt_sched_choice *replay;
    size_t nreplay, ireplay;
    uint64_t rng;
    uint64_t step, preemptions, divergences, digest;
    uint64_t change[RT_SCHED_MAX_DEPTH];   /* PCT change points, ascending */
    int nchange, ichange;
    int64_t ceiling;                /* PCT: the highest priority given so far (starvation) */
    const char *yield_what;         /* the primitive of the holder's rt_sched_yield, or NULL */
    _Atomic uint64_t vnow;
    FILE *rec;                      /* the record's lines, spilled as they come (memory stays
                                     * bounded however long the run); NULL: not recording */
    int started;                    /* a run happened: its summary can be read */
    int pinned;                     /* the process runs on one CPU (one_cpu): nobody spins */
    const char *_Atomic kinds[NKINDS];     /* uncontrolled things met */
    int noutside;                   /* slots outside, not picked back yet (holder's) */
    _Atomic int nforeign;           /* foreign (GILState) threads attached or attaching */
    pthread_cond_t outcv;           /* under mu: a thread came back from outside */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .outcv = PTHREAD_COND_INITIALIZER};

/* The slot of the state bound to this OS thread (rt_sched_bind), read by attach instead of
 * the state, which finalization may be freeing. */
static _Thread_local rt_sched_slot *tss_slot;

static uint64_t next_random(void)
{
    uint64_t z = (S.rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
    return n ? next_random() % n : 0;
}

int rt_sched_active(void)
{
    return atomic_load_explicit(&S.on, memory_order_relaxed);
}

int rt_sched_controls(const rt_thread *t)
{
    return rt_sched_active() && tss_slot && tss_slot->t == t;
}

static rt_sched_slot *slot_new(rt_thread *t)
{
    rt_sched_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->interp = t->interp->id;
    s->id = t->id;
    rt_cond_init(&s->cv);
    s->prio = (int64_t)S.cfg.depth + 1 + (int64_t)(next_random() >> 3);
    rt_sched_slot **p = &S.list;
    while (*p && ((*p)->interp < s->interp || ((*p)->interp == s->interp && (*p)->id < s->id)))
        p = &(*p)->next;
    s->next = *p;
    *p = s;
    t->sched = s;
    if (++S.nlive == 2)
        for (rt_sched_slot *o = S.list; o; o = o->next)
            rt_breaker_set(&o->t->eval_breaker, RT_SCHED);
    else if (S.nlive > 2)
        rt_breaker_set(&t->eval_breaker, RT_SCHED);
    return s;
}

/* Takes `s` off the list (to S.dead: a daemon may still wait on its condvar). */
static void slot_unlist(rt_sched_slot *s)
{
    rt_sched_slot **p = &S.list;
    while (*p && *p != s)
        p = &(*p)->next;
    if (!*p)
        return;
    *p = s->next;
    s->next = S.dead;
    S.dead = s;
    if (--S.nlive == 1)
        rt_breaker_clear(&S.list->t->eval_breaker, RT_SCHED);
}

static void free_slots(rt_sched_slot *s)
{
    while (s) {
        rt_sched_slot *next = s->next;
        pthread_cond_destroy(&s->cv);
        free(s);
        s = next;
    }
}

/* Returns 1 if this process may run on one CPU only (explore gives each run one: on_cpu in
 * vm/cli/explore.c).  Its threads then hand the token over by a plain context switch on
 * that CPU, and a waiter must not spin: it would only take the CPU from the holder.  On
 * several CPUs a waiter spins a little first (wait_token). */
static int one_cpu(void)
{
#ifdef __linux__
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1;
#else
    return 0;
#endif
}

int rt_sched_start(const rt_sched_config *cfg, rt_thread *main)
{
    if (rt_sched_active())
        return -1;
    free_slots(S.list);
    free_slots(S.dead);
    if (S.rec)
        fclose(S.rec);
    free(S.replay);
    S.list = S.dead = NULL;
    S.rec = cfg->record ? tmpfile() : NULL;
    if (cfg->record && !S.rec)
        return -1;
    S.replay = NULL;
    S.nreplay = S.ireplay = 0;
    S.nlive = 0;
    S.noutside = 0;
    S.cfg = *cfg;
    if (S.cfg.depth < 1)
        S.cfg.depth = 1;
    if (S.cfg.depth > RT_SCHED_MAX_DEPTH)
        S.cfg.depth = RT_SCHED_MAX_DEPTH;
    if (S.cfg.steps_estimate < 1)
        S.cfg.steps_estimate = 1000;
    S.rng = cfg->seed;
    S.step = S.preemptions = S.divergences = 0;
    S.digest = 0xcbf29ce484222325u;
    atomic_store(&S.vnow, 1000000000u);
    for (int i = 0; i < NKINDS; i++)
        atomic_store(&S.kinds[i], NULL);
    if (cfg->nreplay) {
        S.replay = malloc(cfg->nreplay * sizeof *S.replay);
        if (!S.replay)
            return -1;
        memcpy(S.replay, cfg->replay, cfg->nreplay * sizeof *S.replay);
        S.nreplay = cfg->nreplay;
    }
    S.cfg.replay = NULL;
    /* PCT: DEPTH-1 change points, distinct, uniform over 1..k. */
    S.nchange = S.ichange = 0;
    S.ceiling = (int64_t)1 << 62 | RT_SCHED_MAX_DEPTH;
    if (S.cfg.strategy == RT_SCHED_PCT) {
        uint64_t k = S.cfg.steps_estimate;
        int want = S.cfg.depth - 1;
        if ((uint64_t)want > k)
            want = (int)k;
        while (S.nchange < want) {
            uint64_t c = 1 + below(k);
            int i = 0, dup = 0;
            for (; i < S.nchange; i++)
                if (S.change[i] == c)
                    dup = 1;
            if (dup)
                continue;
            i = S.nchange++;
            while (i > 0 && S.change[i - 1] > c) {
                S.change[i] = S.change[i - 1];
                i--;
            }
            S.change[i] = c;
        }
    }
    rt_sched_slot *s = slot_new(main);
    if (!s)
        return -1;
    tss_slot = s;
    atomic_store(&S.current, s);
    S.started = 1;
    S.pinned = one_cpu();
    atomic_store(&S.on, 1);
    return 0;
}

void rt_sched_stop(void)
{
    if (!rt_sched_active())
        return;
    RT_MUST(pthread_mutex_lock(&S.mu));
    atomic_store(&S.on, 0);
    for (rt_sched_slot *s = S.list; s; s = s->next) {
        rt_breaker_clear(&s->t->eval_breaker, RT_SCHED);
        RT_MUST(pthread_cond_signal(&s->cv));
    }
    RT_MUST(pthread_mutex_unlock(&S.mu));
}

void rt_sched_after_fork(void)
{
    atomic_store(&S.on, 0);
    RT_MUST(pthread_mutex_init(&S.mu, NULL));
    S.list = S.dead = NULL;         /* the other threads' slots: leaked, never touched */
    tss_slot = NULL;
}

void rt_sched_bind(rt_thread *t)
{
    if (t->sched)
        tss_slot = t->sched;
}

/* Moves slot `s` (and its RT_SCHED bit) from `from` to `to`; by the token holder. */
static void slot_move(rt_sched_slot *s, rt_thread *from, rt_thread *to)
{
    from->sched = NULL;
    to->sched = s;
    s->t = to;
    if (rt_breaker_load(&from->eval_breaker) & RT_SCHED) {
        rt_breaker_clear(&from->eval_breaker, RT_SCHED);
        rt_breaker_set(&to->eval_breaker, RT_SCHED);
    }
}

void rt_sched_lend(rt_thread *from, rt_thread *to)
{
    rt_sched_slot *s = from->sched;
    if (!s || s != tss_slot || to->sched || !rt_sched_active())
        return;
    s->lender = from;
    slot_move(s, from, to);
}

void rt_sched_reclaim(rt_thread *to)
{
    rt_sched_slot *s = to->sched;
    if (!s || !s->lender)
        return;
    rt_thread *from = s->lender;
    s->lender = NULL;
    slot_move(s, to, from);
}

int rt_sched_add(rt_thread *nt)
{
    if (!rt_sched_active())
        return 0;
    return slot_new(nt) ? 0 : -1;
}

void rt_sched_forget(rt_thread *t)
{
    if (t->sched && rt_sched_active())
        slot_unlist(t->sched);
    t->sched = NULL;
}

/* ---- the handoff ---- */

void rt_sched_hand(rt_sched_slot *next)
{
    atomic_store(&S.current, next);
    if (atomic_load(&next->sleeping)) {
        RT_MUST(pthread_mutex_lock(&S.mu));
        RT_MUST(pthread_cond_signal(&next->cv));
        RT_MUST(pthread_mutex_unlock(&S.mu));
    }
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits until `s` holds the token or the scheduler stops; 1 if it holds it.  It spins a
 * little first: a thread switched out is often switched back in a few microseconds, and a
 * futex wake-up costs more than that (with two live threads only). */
static int wait_token(rt_sched_slot *s)
{
    /* Spinning pays with two threads; with more, the spinners take the CPU from the holder. */
    int spin = !S.pinned && atomic_load_explicit(&S.nlive, memory_order_relaxed) <= 2
               ? RT_SCHED_SPIN : 0;
    for (int i = 0; i < spin; i++) {
        if (atomic_load(&S.current) == s)
            return atomic_load(&S.on);
        if (!atomic_load_explicit(&S.on, memory_order_relaxed))
            return 0;
        if (i % 64 == 63)
            sched_yield();
        else
            cpu_relax();
    }
    RT_MUST(pthread_mutex_lock(&S.mu));
    atomic_store(&s->sleeping, 1);      /* then read current: see rt_sched_hand */
    while (atomic_load(&S.current) != s && atomic_load(&S.on))
        RT_MUST(pthread_cond_wait(&s->cv, &S.mu));
    atomic_store(&s->sleeping, 0);
    int mine = atomic_load(&S.current) == s && atomic_load(&S.on);
    RT_MUST(pthread_mutex_unlock(&S.mu));
    return mine;
}

void rt_sched_wait_turn(rt_thread *t)
{
    rt_sched_slot *s = tss_slot;
    if (s && s->t == t && rt_sched_active())
        wait_token(s);
}

/* Gives the token to `next` and waits for it to come back, t's GIL released meanwhile, then
 * attaches t again; 0 if the scheduler stopped meanwhile (finalization: the attach then ends
 * this OS thread if it must never run again), else 1. */
static int switch_to(rt_sched_slot *me, rt_sched_slot *next)
{
    rt_thread *t = me->t;
    rt_thread_detach(t);
    rt_sched_hand(next);
    int mine = wait_token(me);
    rt_thread_attach(t);
    return mine;
}

/* ---- picking ---- */

static int interrupted(rt_sched_slot *s)
{
    return (rt_breaker_load(&s->t->eval_breaker) & (RT_SIGNALS_PENDING | RT_EVAL_PLEASE_STOP)) != 0;
}

static int is_ready(rt_sched_slot *s)
{
    RT_MUST(pthread_mutex_lock(s->mu));
    int r = s->ready(s->obj);
    RT_MUST(pthread_mutex_unlock(s->mu));
    return r;
}

static int runnable(rt_sched_slot *s)
{
    if (s->outside)
        return atomic_load(&s->back);
    if (!s->blocked)
        return 1;
    return interrupted(s) || (s->deadline && s->deadline <= atomic_load(&S.vnow)) || is_ready(s);
}

static void fnv(uint64_t x)
{
    for (int i = 0; i < 8; i++) {
        S.digest ^= (x >> (8 * i)) & 0xff;
        S.digest *= 0x100000001b3u;
    }
}

static void note_record(rt_sched_slot *me, int me_live, int preempt, rt_sched_slot *chosen)
{
    if (!S.rec)
        return;
    char at[48] = "", where[72];
    if (me_live && S.cfg.where)
        S.cfg.where(me->t, at, sizeof at);
    const char *what = !me_live ? "thread_exit" : me->blocked ? me->what : S.yield_what;
    if (what && *at)
        snprintf(where, sizeof where, "%s %s", what, at);
    else
        snprintf(where, sizeof where, "%s", what ? what : *at ? at : "?");
    if (chosen->interp)
        fprintf(S.rec, "%" PRIu64 " %" PRId64 ".%" PRIu64 " %s %s\n", S.step, chosen->interp,
                chosen->id, preempt ? "preempt" : "switch", where);
    else
        fprintf(S.rec, "%" PRIu64 " %" PRIu64 " %s %s\n", S.step, chosen->id,
                preempt ? "preempt" : "switch", where);
}

static int line_order(const void *a, const void *b)
{
    const rt_deadlock_line *x = a, *y = b;
    if (x->interp != y->interp)
        return x->interp < y->interp ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

char *rt_deadlock_report(rt_deadlock_line *lines, size_t n)
{
    qsort(lines, n, sizeof *lines, line_order);
    size_t cap = 128 + n * (sizeof lines->desc + 64), len;
    char *rep = malloc(cap);
    if (!rep)
        return NULL;
    len = (size_t)snprintf(rep, cap, "gilvm: deadlock: no thread can run (%zu thread%s blocked, "
                           "none with a timeout)\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        const rt_deadlock_line *l = &lines[i];
        if (l->interp)
            len += (size_t)snprintf(rep + len, cap - len, "  thread %" PRId64 ".%" PRIu64
                                    ": %s\n", l->interp, l->id, l->desc);
        else
            len += (size_t)snprintf(rep + len, cap - len, "  thread %" PRIu64 ": %s\n", l->id,
                                    l->desc);
    }
    return rep;
}

static _Noreturn void deadlock(void)
{
    size_t n = 0;
    for (rt_sched_slot *s = S.list; s; s = s->next)
        n++;
    rt_deadlock_line *lines = calloc(n ? n : 1, sizeof *lines);
    char *rep = NULL;
    if (lines) {
        size_t i = 0;
        for (rt_sched_slot *s = S.list; s; s = s->next, i++) {
            lines[i].interp = s->interp;
            lines[i].id = s->id;
            if (S.cfg.describe)
                S.cfg.describe(s->t, s->ready, s->obj, lines[i].desc, sizeof lines[i].desc);
        }
        rep = rt_deadlock_report(lines, n);
    }
    if (S.cfg.deadlock)
        S.cfg.deadlock(rep ? rep : "gilvm: deadlock\n");
    fputs(rep ? rep : "gilvm: deadlock\n", stderr);
    _exit(3);
}

/* The candidate with the highest PCT priority. */
static rt_sched_slot *highest(rt_sched_slot **c, size_t n)
{
    rt_sched_slot *best = c[0];
    for (size_t i = 1; i < n; i++)
        if (c[i]->prio > best->prio)
            best = c[i];
    return best;
}

/* Waits (really) until a thread comes back from outside, or a slice passes. */
static void wait_outside(void)
{
    RT_MUST(pthread_mutex_lock(&S.mu));
    rt_cond_wait_until(&S.outcv, &S.mu, rt_now_ns() + 20000000u);
    RT_MUST(pthread_mutex_unlock(&S.mu));
}

/* The holder `me` (me_live: still on the list; blocked or not) picks the next holder; NULL
 * if nobody can run and `me` is going outside (it keeps the token). */
static rt_sched_slot *pick(rt_sched_slot *me, int me_live)
{
    rt_sched_slot *cand[64], **c = cand, **heap = NULL;
    size_t cap = 64, n;
    for (;;) {
        n = 0;
        uint64_t earliest = 0;
        for (rt_sched_slot *s = S.list; s; s = s->next) {
            if (runnable(s)) {
                if (n == cap) {
                    rt_sched_slot **more = realloc(heap, 2 * cap * sizeof *more);
                    if (!more)
                        RT_FATAL("out of memory");
                    if (!heap)
                        memcpy(more, cand, n * sizeof *more);
                    heap = c = more;
                    cap *= 2;
                }
                c[n++] = s;
            } else if (!s->outside && s->deadline && (!earliest || s->deadline < earliest))
                earliest = s->deadline;
        }
        if (n)
            break;
        if (earliest) {
            atomic_store(&S.vnow, earliest);
            continue;
        }
        if (me_live && me->outside)
            return NULL;
        if (S.noutside || atomic_load(&S.nforeign) > 0) {
            wait_outside();         /* uncontrolled: only they can make a thread runnable */
            continue;
        }
        deadlock();
    }
    int me_runs = 0;
    for (size_t i = 0; i < n; i++)
        me_runs |= c[i] == me;
    rt_sched_slot *dflt = me_live && me_runs ? me : c[0], *chosen = dflt;
    if (S.nlive + !me_live < 2) {       /* one live thread: no choice, no step */
        free(heap);
        if (chosen->outside) {
            chosen->outside = 0;
            atomic_store(&chosen->back, 0);
            S.noutside--;
        }
        return chosen;
    }
    S.step++;
    atomic_fetch_add_explicit(&S.vnow, RT_SCHED_STEP_NS, memory_order_relaxed);
    if (n > 1) {
        /* A signal to handle goes first (uncontrolled: it came from outside). */
        for (size_t i = 0; i < n; i++)
            if (rt_breaker_load(&c[i]->t->eval_breaker) & RT_SIGNALS_PENDING) {
                chosen = c[i];
                goto chose;
            }
        switch (S.cfg.strategy) {
        case RT_SCHED_RANDOM:
            chosen = c[below(n)];
            break;
        case RT_SCHED_PCT: {
            rt_sched_slot *best = highest(c, n);
            while (S.ichange < S.nchange && S.change[S.ichange] <= S.step) {
                if (S.change[S.ichange] == S.step) {
                    best->prio = S.nchange - S.ichange;     /* below every initial priority */
                    best = highest(c, n);
                }
                S.ichange++;
            }
            /* A thread that spins waiting for a lower one would run for ever: a runnable
             * thread passed over RT_SCHED_PCT_STARVE steps in a row goes highest. */
            for (size_t i = 0; i < n; i++)
                if (c[i] != best && ++c[i]->passed >= RT_SCHED_PCT_STARVE) {
                    c[i]->prio = ++S.ceiling;
                    best = c[i];
                }
            best->passed = 0;
            chosen = best;
            break;
        }
        default:
            break;
        }
    }
chose:
    if (S.cfg.strategy == RT_SCHED_REPLAY) {
        while (S.ireplay < S.nreplay && S.replay[S.ireplay].step < S.step)
            S.ireplay++;
        if (S.ireplay < S.nreplay && S.replay[S.ireplay].step == S.step) {
            rt_sched_choice *want = &S.replay[S.ireplay++];
            rt_sched_slot *w = NULL;
            for (size_t i = 0; i < n; i++)
                if (c[i]->interp == want->interp && c[i]->id == want->thread)
                    w = c[i];
            if (w)
                chosen = w;
            else
                S.divergences++;
        }
    }
    fnv(S.step);
    fnv((uint64_t)chosen->interp << 32 | chosen->id);
    if (chosen->outside) {          /* back from outside: controlled again */
        chosen->outside = 0;
        atomic_store(&chosen->back, 0);
        S.noutside--;
    }
    if (chosen != dflt) {
        int preempt = me_live && me_runs;
        S.preemptions += (uint64_t)preempt;
        note_record(me, me_live, preempt, chosen);
    }
    free(heap);
    return chosen;
}

void rt_sched_yield(rt_thread *t, const char *what)
{
    rt_sched_slot *me = tss_slot;
    if (!me || me->t != t || !rt_sched_active() || S.nlive < 2)
        return;
    S.yield_what = what;
    rt_sched_slot *next = pick(me, 1);
    S.yield_what = NULL;
    if (next != me)
        switch_to(me, next);
}

void rt_sched_poll(rt_thread *t)
{
    rt_sched_yield(t, NULL);
}

int rt_sched_block(rt_thread *t, pthread_mutex_t *mu, int (*ready)(void *), void *obj,
                   uint64_t deadline_ns, const char *what)
{
    rt_sched_slot *me = tss_slot;
    me->blocked = 1;
    me->what = what;
    me->mu = mu;
    me->ready = ready;
    me->obj = obj;
    me->deadline = deadline_ns;
    rt_sched_slot *next = pick(me, 1);
    if (next != me && !switch_to(me, next)) {
        me->blocked = 0;
        me->deadline = 0;
        return RT_SCHED_STOPPED;    /* attached, uncontrolled from now on */
    }
    me->blocked = 0;
    me->deadline = 0;
    if (is_ready(me))
        return 1;
    if (interrupted(me))
        return RT_SCHED_INTERRUPTED;
    return 0;                       /* picked, so the deadline passed */
}

void rt_sched_outside_begin(rt_thread *t, const char *what)
{
    rt_sched_slot *me = tss_slot;
    if (!me || me->t != t || !rt_sched_active())
        return;
    rt_sched_note_uncontrolled(what);
    me->outside = 1;
    atomic_store(&me->back, 0);
    S.noutside++;
    rt_sched_slot *next = S.nlive > 1 ? pick(me, 1) : NULL;
    if (next && next != me)
        rt_sched_hand(next);
}

void rt_sched_outside_end(rt_thread *t)
{
    rt_sched_slot *me = tss_slot;
    if (!me || me->t != t || !rt_sched_active())
        return;
    if (atomic_load(&S.current) == me) {  /* nobody else could run: it kept the token */
        me->outside = 0;
        S.noutside--;
        return;
    }
    RT_MUST(pthread_mutex_lock(&S.mu));
    atomic_store(&me->back, 1);
    RT_MUST(pthread_cond_broadcast(&S.outcv));
    RT_MUST(pthread_mutex_unlock(&S.mu));
}

void rt_sched_foreign(int delta)
{
    atomic_fetch_add(&S.nforeign, delta);
    if (delta > 0)
        rt_sched_note_uncontrolled("foreign-thread");
    else {
        RT_MUST(pthread_mutex_lock(&S.mu));
        RT_MUST(pthread_cond_broadcast(&S.outcv));
        RT_MUST(pthread_mutex_unlock(&S.mu));
    }
}

rt_sched_slot *rt_sched_leave(rt_thread *t)
{
    rt_sched_slot *me = tss_slot;
    if (!me || me->t != t || !rt_sched_active())
        return NULL;
    slot_unlist(me);
    tss_slot = NULL;
    if (!S.list)
        return NULL;
    return pick(me, 0);
}

/* ---- time and the uncontrolled ---- */

uint64_t rt_sched_clock_ns(void)
{
    if (!rt_sched_active())
        return rt_now_ns();
    return atomic_fetch_add(&S.vnow, 1000) + 1000;
}

double rt_sched_wall_s(double real)
{
    if (!rt_sched_active())
        return real;
    return 1700000000.0 + (double)rt_sched_clock_ns() * 1e-9;
}

void rt_sched_note_uncontrolled(const char *what)
{
    if (!rt_sched_active())
        return;
    for (int i = 0; i < NKINDS; i++) {
        const char *k = atomic_load(&S.kinds[i]);
        if (k && !strcmp(k, what))
            return;
        if (!k) {
            const char *expected = NULL;
            if (atomic_compare_exchange_strong(&S.kinds[i], &expected, what))
                return;
            if (!strcmp(expected, what))
                return;
        }
    }
}

/* ---- reporting ---- */

static void strategy_name(char *buf, size_t n)
{
    switch (S.cfg.strategy) {
    case RT_SCHED_RANDOM:
        snprintf(buf, n, "random");
        break;
    case RT_SCHED_PCT:
        snprintf(buf, n, "pct:%d", S.cfg.depth);
        break;
    default:
        snprintf(buf, n, "%s", S.cfg.replay_strategy[0] ? S.cfg.replay_strategy : "replay");
        break;
    }
}

int rt_sched_summary_get(rt_sched_summary *s)
{
    if (!S.started)
        return -1;
    memset(s, 0, sizeof *s);
    if (S.cfg.strategy == RT_SCHED_REPLAY)
        snprintf(s->strategy, sizeof s->strategy, "replay");
    else
        strategy_name(s->strategy, sizeof s->strategy);
    s->replay = S.cfg.strategy == RT_SCHED_REPLAY;
    s->seed = S.cfg.seed;
    s->steps = S.step;
    s->preemptions = S.preemptions;
    s->divergences = S.divergences;
    s->digest = S.digest;
    int j = 0;
    for (int i = 0; i < NKINDS && j < 15; i++) {
        const char *k = atomic_load(&S.kinds[i]);
        if (k)
            s->uncontrolled[j++] = k;
    }
    return 0;
}

void rt_sched_write(FILE *f, const char *program)
{
    char strat[40];
    strategy_name(strat, sizeof strat);
    fprintf(f, "gilvm-schedule 1\n");
    fprintf(f, "strategy %s seed %" PRIu64 " steps-estimate %" PRIu64 "\n", strat, S.cfg.seed,
            S.cfg.steps_estimate);
    fprintf(f, "program %s\n", program ? program : "?");
    fprintf(f, "steps %" PRIu64 "\n", S.step);
    fprintf(f, "digest %016" PRIx64 "\n", S.digest);
    fprintf(f, "# step thread kind where\n");
    if (S.rec) {
        char buf[8192];
        size_t n;
        fflush(S.rec);
        rewind(S.rec);
        while ((n = fread(buf, 1, sizeof buf, S.rec)) > 0)
            fwrite(buf, 1, n, f);
        fseek(S.rec, 0, SEEK_END);
    }
}

int rt_sched_read(FILE *f, rt_sched_config *cfg, char *err, size_t errlen)
{
    char line[1024];
    size_t n = 0, cap = 0;
    rt_sched_choice *ch = NULL;
    int lineno = 0, header = 0;
    memset(cfg, 0, sizeof *cfg);
    cfg->strategy = RT_SCHED_REPLAY;
    cfg->steps_estimate = 1000;
    cfg->depth = 3;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || !*s)
            continue;
        if (!header) {
            if (strncmp(s, "gilvm-schedule 1", 16)) {
                snprintf(err, errlen, "line %d: not a gilvm schedule file (expected "
                         "'gilvm-schedule 1')", lineno);
                free(ch);
                return -1;
            }
            header = 1;
            continue;
        }
        if (!strncmp(s, "strategy", 8) && (s[8] == ' ' || !s[8])) {
            char name[32];
            unsigned long long seed = 0, k = 1000;
            int got = sscanf(s + 8, " %31s seed %llu steps-estimate %llu", name, &seed, &k);
            if (got < 2) {
                snprintf(err, errlen, "line %d: bad strategy line", lineno);
                free(ch);
                return -1;
            }
            snprintf(cfg->replay_strategy, sizeof cfg->replay_strategy, "%s", name);
            cfg->seed = seed;
            cfg->steps_estimate = k;
            continue;
        }
        if (!strncmp(s, "program ", 8) || !strncmp(s, "steps ", 6) || !strncmp(s, "digest ", 7))
            continue;
        char *end;
        errno = 0;
        unsigned long long step = strtoull(s, &end, 10);
        if (end == s || errno || (*end != ' ' && *end != '\t' && *end)) {
            snprintf(err, errlen, "line %d: expected 'STEP THREAD KIND WHERE'", lineno);
            free(ch);
            return -1;
        }
        s = end;
        while (*s == ' ' || *s == '\t')
            s++;
        unsigned long long a = strtoull(s, &end, 10), b = 0;
        int64_t interp = 0;
        if (end == s) {
            snprintf(err, errlen, "line %d: bad thread '%.20s'", lineno, s);
            free(ch);
            return -1;
        }
        if (*end == '.') {
            char *p = end + 1;
            b = strtoull(p, &end, 10);
            if (end == p) {
                snprintf(err, errlen, "line %d: bad thread", lineno);
                free(ch);
                return -1;
            }
            interp = (int64_t)a;
        } else
            b = a;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            rt_sched_choice *more = realloc(ch, cap * sizeof *more);
            if (!more) {
                free(ch);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            ch = more;
        }
        if (n && step <= ch[n - 1].step) {
            snprintf(err, errlen, "line %d: steps must increase", lineno);
            free(ch);
            return -1;
        }
        ch[n].step = step;
        ch[n].interp = interp;
        ch[n].thread = b;
        n++;
    }
    if (!header) {
        snprintf(err, errlen, "empty file (expected 'gilvm-schedule 1')");
        free(ch);
        return -1;
    }
    cfg->replay = ch;
    cfg->nreplay = n;
    return 0;
}
