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

/* Records what to report at exit; 0, or -1 with a message on stderr. */
int vm_instruments_start(const vm_instruments_config *cfg);

/* Opens the trace file and starts recording into it (trace.c); 0, or -1 with a message. */
int vm_trace_open(const char *path);

/* Names the trace's processes and threads, then closes the file; nothing if none is open. */
void vm_trace_close(void);

/* Closes the trace and prints the statistics (if asked) to stderr; called by finalization while the runtime's
 * interpreters and retired thread statistics still exist. */
void vm_instruments_finish(vm_thread *t);

#endif
