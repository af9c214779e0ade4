/* SPDX-License-Identifier: MIT */
/* Instruments: --stats at exit (text or JSON) over the runtime's per-thread counters, and
 * --trace, a Chrome Trace Event file of GIL activity. */
#ifndef VM_INSTRUMENTS_H
#define VM_INSTRUMENTS_H

#include "vm/core/state.h"

enum { VM_STATS_OFF = 0, VM_STATS_TEXT, VM_STATS_JSON };

typedef struct {
    int stats;                  /* VM_STATS_* */
    const char *trace_path;     /* --trace=FILE, or NULL */
} vm_instruments_config;

/* Records what to report at exit and opens the trace (if asked), timed from the start of the
 * calling thread's current GIL hold; the CLI calls it once the program has loaded, from the
 * main thread.  Only this process reports: a forked child neither traces nor prints stats.
 * 0, or -1 with a message on stderr. */
int vm_instruments_start(const vm_instruments_config *cfg);

/* Opens the trace file, valid JSON from then on, and records into it every GIL event the
 * runtime reports; times are from `t0_ns` (rt_now_ns), a slice begun earlier is clipped to
 * it.  0, or -1 with a message on stderr. */
int vm_trace_open(const char *path, uint64_t t0_ns);

/* Stops recording and closes the trace (already complete: events and names are written as
 * they come); nothing if none is open.  Reports a write error on stderr. */
void vm_trace_close(void);

/* Closes the calling thread's hold in progress into its statistics and the trace, closes the
 * trace and prints the statistics (if asked) to stderr; called by finalization, holding the
 * GIL, while the runtime's interpreters and retired thread statistics still exist.  Does
 * nothing in a forked child of the process that started the instruments. */
void vm_instruments_finish(vm_thread *t);

/* The --stats mode (VM_STATS_*) if this process started the instruments, else VM_STATS_OFF. */
int vm_instruments_stats_mode(void);


#endif
