/* SPDX-License-Identifier: MIT */
/* The controlled scheduler's VM side: options, the callbacks runtime/sched.c calls (a
 * thread's file:line, what it waits for, the deadlock exit), the schedule file at exit and
 * the --stats figures.  The scheduler itself is runtime/sched.c; docs/runtime.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/sched.h"
#include "vm/api/instruments.h"
#include "vm/api/schedule.h"
#include "vm/core/output.h"
#include "vm/lib/lib.h"
#include "vm/lib/wait.h"

static vm_schedule_options opts;
static rt_sched_config cfg;
static char *program;
static int prepared, written;
static pid_t run_pid;               /* the process the run started in: a forked child writes
                                     * no schedule file */

/* Parses an unsigned 64-bit decimal; 0, or -1. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (!len || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int vm_schedule_parse(const char *spec, vm_schedule_options *o, char *err, size_t errlen)
{
    const char *p = strchr(spec, ':');
    size_t nlen = p ? (size_t)(p - spec) : strlen(spec);
    uint64_t nums[2];
    int n = 0;
    while (p) {
        const char *q = strchr(p + 1, ':');
        size_t len = q ? (size_t)(q - p - 1) : strlen(p + 1);
        if (n == 2 || parse_u64(p + 1, len, &nums[n])) {
            snprintf(err, errlen, "invalid --schedule '%s' (use random[:SEED] or "
                     "pct[:DEPTH[:SEED]], SEED an unsigned 64-bit integer)", spec);
            return -1;
        }
        n++;
        p = q;
    }
    o->depth = 3;
    o->seed_given = 0;
    if (nlen == 6 && !strncmp(spec, "random", 6) && n <= 1) {
        o->strategy = RT_SCHED_RANDOM;
        if (n == 1) {
            o->seed = nums[0];
            o->seed_given = 1;
        }
        return 0;
    }
    if (nlen == 3 && !strncmp(spec, "pct", 3)) {
        o->strategy = RT_SCHED_PCT;
        if (n >= 1) {
            if (nums[0] < 1 || nums[0] > RT_SCHED_MAX_DEPTH) {
                snprintf(err, errlen, "invalid --schedule '%s': DEPTH must be 1 to %d", spec,
                         RT_SCHED_MAX_DEPTH);
                return -1;
            }
            o->depth = (int)nums[0];
        }
        if (n == 2) {
            o->seed = nums[1];
            o->seed_given = 1;
        }
        return 0;
    }
    snprintf(err, errlen, "invalid --schedule '%s' (use random[:SEED] or pct[:DEPTH[:SEED]])",
             spec);
    return -1;
}

int vm_schedule_prepare(const vm_schedule_options *o, char *err, size_t errlen)
{
    opts = *o;
    memset(&cfg, 0, sizeof cfg);
    if (o->replay_path) {
        FILE *f = fopen(o->replay_path, "r");
        if (!f) {
            snprintf(err, errlen, "can't open '%s': %s", o->replay_path, strerror(errno));
            return -1;
        }
        char msg[256];
        int rc = rt_sched_read(f, &cfg, msg, sizeof msg);
        fclose(f);
        if (rc) {
            snprintf(err, errlen, "%s: %s", o->replay_path, msg);
            return -1;
        }
        if (!strncmp(cfg.replay_strategy, "pct:", 4))
            cfg.depth = atoi(cfg.replay_strategy + 4);
    } else if (o->strategy) {
        cfg.strategy = o->strategy;
        cfg.depth = o->depth;
        cfg.steps_estimate = o->steps_estimate ? o->steps_estimate : 1000;
        if (o->seed_given)
            cfg.seed = o->seed;
        else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            cfg.seed = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                       ((uint64_t)getpid() << 40);
        }
    } else
        return 0;
    if (o->steps_estimate && o->replay_path)
        cfg.steps_estimate = o->steps_estimate;
    vm_hash_seed_fix(cfg.seed);
    prepared = 1;
    return 0;
}

/* ---- callbacks ---- */

static void where(rt_thread *rt, char *buf, size_t n)
{
    vm_frame *f = ((vm_thread *)rt)->frame;
    buf[0] = 0;
    if (!f || !f->code || !f->ip || !f->code->lines)
        return;
    vm_code *c = f->code;
    uint32_t pc = (uint32_t)(f->ip - c->exec);
    pc = pc ? pc - 1 : 0;
    if (pc >= c->ncode)
        return;
    const char *file = c->file ? c->file->data : "?";
    const char *slash = strrchr(file, '/');
    snprintf(buf, n, "%s:%" PRIu32, slash ? slash + 1 : file, c->lines[pc]);
}

static void describe(rt_thread *rt, int (*ready)(void *), void *obj, char *buf, size_t n)
{
    char at[64], what[400];
    where(rt, at, sizeof at);
    vm_wait_describe(ready, obj, what, sizeof what);
    snprintf(buf, n, "%s%s%s", at[0] ? at : "", at[0] ? ": waits in " : "waits in ", what);
}

static void write_out(void)
{
    if (written || !opts.out_path || getpid() != run_pid)
        return;
    written = 1;
    FILE *f = fopen(opts.out_path, "w");
    if (!f) {
        fprintf(stderr, "gilvm: can't write '%s': %s\n", opts.out_path, strerror(errno));
        return;
    }
    rt_sched_write(f, program);
    if (fclose(f))
        fprintf(stderr, "gilvm: can't write '%s': %s\n", opts.out_path, strerror(errno));
}

static _Noreturn void on_deadlock(const char *report)
{
    vm_output_flush();
    fflush(stdout);
    fputs(report, stderr);
    write_out();
    int mode = vm_instruments_stats_mode();
    if (mode)
        vm_schedule_report(stderr, 0);
    fflush(stderr);
    vm_threads_reap();              /* threads that ended (holding a lock, say): joined */
    _exit(VM_EXIT_DEADLOCK);
}

int vm_schedule_start(vm_thread *t, const char *prog)
{
    if (!prepared)
        return 0;
    free(program);
    program = strdup(prog ? prog : "?");
    cfg.record = opts.out_path != NULL;     /* only the schedule file reads the record */
    cfg.where = where;
    cfg.describe = describe;
    cfg.deadlock = on_deadlock;
    run_pid = getpid();
    vm_lib_set_before__exit(write_out);
    int rc = rt_sched_start(&cfg, &t->base);
    free((void *)cfg.replay);
    cfg.replay = NULL;
    cfg.nreplay = 0;
    if (rc) {
        fprintf(stderr, "gilvm: can't start the controlled scheduler\n");
        return -1;
    }
    return 0;
}

void vm_schedule_watch_deadlocks(void)
{
    if (!prepared)
        vm_wait_watch_deadlocks(describe, on_deadlock);
}

void vm_schedule_finish(void)
{
    if (prepared)
        write_out();
}

int vm_schedule_report(FILE *out, int json)
{
    rt_sched_summary s;
    if (!prepared || rt_sched_summary_get(&s))
        return 0;
    if (json) {
        fprintf(out, ", \"schedule\": {\"strategy\": \"%s\", \"seed\": %" PRIu64 ", \"steps\": %"
                PRIu64 ", \"preemptions\": %" PRIu64 ", \"digest\": \"%016" PRIx64 "\"",
                s.strategy, s.seed, s.steps, s.preemptions, s.digest);
        if (s.replay)
            fprintf(out, ", \"divergences\": %" PRIu64, s.divergences);
        fprintf(out, ", \"uncontrolled\": [");
        for (int i = 0; s.uncontrolled[i]; i++)
            fprintf(out, "%s\"%s\"", i ? ", " : "", s.uncontrolled[i]);
        fprintf(out, "]}");
        return 1;
    }
    fprintf(out, "schedule: %s seed %" PRIu64 " steps %" PRIu64 " preemptions %" PRIu64
            " digest %016" PRIx64, s.strategy, s.seed, s.steps, s.preemptions, s.digest);
    if (s.replay)
        fprintf(out, " divergences %" PRIu64, s.divergences);
    fprintf(out, "\nuncontrolled:");
    if (!s.uncontrolled[0])
        fprintf(out, " none");
    for (int i = 0; s.uncontrolled[i]; i++)
        fprintf(out, "%s %s", i ? "," : "", s.uncontrolled[i]);
    fprintf(out, "\n");
    return 1;
}
