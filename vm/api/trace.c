/* SPDX-License-Identifier: MIT */
/* --trace=FILE.json: a Chrome Trace Event file (opens in Perfetto and chrome://tracing) of GIL
 * holds and waits, drop requests, forced switches, signals, pending calls and collections,
 * written as the runtime reports them through rt_hooks.gil_event and async_event.
 * docs/cli.md describes the format.
 *
 * The file is valid JSON at every moment: each event (after the names of its process and
 * thread, the first time they are seen) is written at once, followed by the closing "]}",
 * which the next write overwrites.  So a program that ends in _exit() or dies leaves a
 * readable trace of everything up to its last event, and closing writes nothing.  The trace
 * belongs to the process that opened it: a fork()ed child forgets it (pthread_atfork) and
 * never writes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/api/instruments.h"

/* Events come from any thread (each interpreter's GIL serialises only its own threads), so
 * everything here is under trace_mu. */
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;
static off_t trace_end;         /* where the next event goes: the closing "]}" is there */
static uint64_t trace_t0;
static int trace_first;         /* no event written yet */
static int trace_errno;         /* the first write error; writing stopped there */

/* The processes (tid 0) and threads whose names are written: an open-addressing set. */
typedef struct { int64_t pid; uint64_t tid; } named_key;
static named_key *named;
static size_t named_cap, named_n;

static const char trace_tail[] = "\n]}\n";

static size_t named_slot(named_key *set, size_t cap, int64_t pid, uint64_t tid)
{
    uint64_t h = ((uint64_t)pid * 0x9E3779B97F4A7C15u) ^ (tid * 0xC2B2AE3D27D4EB4Fu);
    size_t i = (size_t)(h ^ (h >> 29)) & (cap - 1);
    while (set[i].tid != UINT64_MAX && (set[i].pid != pid || set[i].tid != tid))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Adds (pid, tid) to the set; 1 if it was new, 0 if already there or memory ran out (the
 * name is then written again, harmless but for duplicates). */
static int named_add(int64_t pid, uint64_t tid)
{
    if (2 * (named_n + 1) > named_cap) {
        size_t cap = named_cap ? 2 * named_cap : 64;
        named_key *set = vm_malloc(cap * sizeof *set);
        if (set == NULL)
            return 1;
        for (size_t i = 0; i < cap; i++)
            set[i].tid = UINT64_MAX;
        for (size_t i = 0; i < named_cap; i++)
            if (named[i].tid != UINT64_MAX)
                set[named_slot(set, cap, named[i].pid, named[i].tid)] = named[i];
        vm_free(named);
        named = set;
        named_cap = cap;
    }
    size_t i = named_slot(named, named_cap, pid, tid);
    if (named[i].tid != UINT64_MAX)
        return 0;
    named[i] = (named_key){pid, tid};
    named_n++;
    return 1;
}

/* The text of the events being written, then the tail. */
static char out[1024];
static size_t out_len;

static void emit(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + out_len, sizeof out - out_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_len += (size_t)n < sizeof out - out_len ? (size_t)n : sizeof out - out_len - 1;
}

/* Starts an event: the separator, then "{" and the name. */
static void emit_begin(const char *name)
{
    emit("%s\n{\"name\": \"%s\"", trace_first ? "" : ",", name);
    trace_first = 0;
}

/* Writes out[] followed by the tail at trace_end and moves trace_end past the events. */
static void flush_events(void)
{
    size_t events = out_len;
    emit("%s", trace_tail);
    for (size_t done = 0; done < out_len && trace_errno == 0;) {
        ssize_t n = pwrite(trace_fd, out + done, out_len - done, trace_end + (off_t)done);
        if (n > 0)
            done += (size_t)n;
        else if (n == 0 || errno != EINTR)
            trace_errno = n ? errno : EIO;
    }
    trace_end += (off_t)events;
    out_len = 0;
}

/* Names t's process and thread, the first time they appear. */
static void name_thread(rt_thread *t)
{
    int64_t pid = t->interp->id;
    if (named_add(pid, 0)) {
        emit_begin("process_name");
        emit(", \"ph\": \"M\", \"pid\": %" PRId64 ", \"args\": {\"name\": \"interpreter %" PRId64
             "\"}}", pid, pid);
    }
    if (named_add(pid, t->id)) {
        emit_begin("thread_name");
        emit(", \"ph\": \"M\", \"pid\": %" PRId64 ", \"tid\": %" PRIu64, pid, t->id);
        if (t == atomic_load(&rt_main_runtime.main_tstate))
            emit(", \"args\": {\"name\": \"main\"}}");
        else if (t->whence == RT_WHENCE_EXEC)   /* swapped in by interp_call and the like */
            emit(", \"args\": {\"name\": \"thread %" PRIu64 " (run from another interpreter)\"}}", t->id);
        else
            emit(", \"args\": {\"name\": \"thread %" PRIu64 "\"}}", t->id);
    }
}

/* Writes one event of t: an instant ('i') at `start`, or a slice ('X') from `start` to
 * `end`, clipped to the trace's start; `args`, if not NULL, is the text of a JSON object. */
static void trace_write(rt_thread *t, const char *name, char ph, uint64_t start, uint64_t end,
                        const char *args)
{
    int saved_errno = errno;        /* the runtime reports events between a call and its errno */
    pthread_mutex_lock(&trace_mu);
    if (trace_fd >= 0 && trace_errno == 0 && end >= trace_t0) {
        if (start < trace_t0)       /* began before the trace: only the part inside it */
            start = trace_t0;
        name_thread(t);
        uint64_t ts = start - trace_t0;
        emit_begin(name);
        emit(", \"ph\": \"%c\", \"ts\": %" PRIu64 ".%03u, \"pid\": %" PRId64 ", \"tid\": %" PRIu64,
             ph, ts / 1000, (unsigned)(ts % 1000), t->interp->id, t->id);
        if (ph == 'X')
            emit(", \"dur\": %" PRIu64 ".%03u", (end - start) / 1000,
                 (unsigned)((end - start) % 1000));
        else
            emit(", \"s\": \"t\"");
        if (args)
            emit(", \"args\": %s", args);
        emit("}");
        flush_events();
    }
    pthread_mutex_unlock(&trace_mu);
    errno = saved_errno;
}

static void gil_event(rt_thread *t, int event, uint64_t start, uint64_t end)
{
    static const char *const names[] = {
        [RT_GIL_EV_WAIT] = "wait GIL", [RT_GIL_EV_HOLD] = "hold GIL",
        [RT_GIL_EV_DROP_REQUEST] = "drop request", [RT_GIL_EV_FORCED_SWITCH] = "forced switch",
    };
    trace_write(t, names[event], start == end ? 'i' : 'X', start, end, NULL);
}

static void async_event(rt_thread *t, int event, int arg)
{
    uint64_t now = rt_now_ns();
    if (event == RT_EV_SIGNAL) {
        char args[32];
        snprintf(args, sizeof args, "{\"signum\": %d}", arg);
        trace_write(t, "signal", 'i', now, now, args);
    } else
        trace_write(t, event == RT_EV_GC ? "gc" : "pending call", 'i', now, now, NULL);
}

/* fork(): the forking thread holds trace_mu across it, so the child's copy is consistent;
 * the child closes its descriptor of the parent's file without writing. */
static void fork_prepare(void) { pthread_mutex_lock(&trace_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&trace_mu); }

static void fork_child(void)
{
    if (trace_fd >= 0)
        close(trace_fd);
    trace_fd = -1;
    pthread_mutex_unlock(&trace_mu);
}

int vm_trace_open(const char *path, uint64_t t0_ns)
{
    static int atfork_registered;
    if (!atfork_registered) {
        int err = pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (err) {
            fprintf(stderr, "gilvm: can't trace: %s\n", strerror(err));
            return -1;
        }
        atfork_registered = 1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "gilvm: can't open trace file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&trace_mu);
    trace_fd = fd;
    trace_t0 = t0_ns;
    trace_first = 1;
    trace_errno = 0;
    trace_end = 0;
    emit("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [");
    flush_events();
    pthread_mutex_unlock(&trace_mu);
    rt_main_runtime.hooks.gil_event = gil_event;
    rt_main_runtime.hooks.async_event = async_event;
    return 0;
}

void vm_trace_close(void)
{
    pthread_mutex_lock(&trace_mu);
    if (trace_fd >= 0) {
        if (close(trace_fd) && trace_errno == 0)
            trace_errno = errno;
        if (trace_errno)
            fprintf(stderr, "gilvm: error writing the trace file: %s\n", strerror(trace_errno));
        trace_fd = -1;
    }
    vm_free(named);
    named = NULL;
    named_cap = named_n = 0;
    pthread_mutex_unlock(&trace_mu);
}
