/* Instruments: --stats at exit (text or JSON) over the runtime's per-thread counters. */
#ifndef VM_INSTRUMENTS_H
#define VM_INSTRUMENTS_H

#include "state.h"

enum { VM_STATS_OFF = 0, VM_STATS_TEXT, VM_STATS_JSON };

typedef struct {
    int stats;                  /* VM_STATS_* */
} vm_instruments_config;

/* Records what to report at exit; 0, or -1 with a message on stderr. */
int vm_instruments_start(const vm_instruments_config *cfg);

/* Prints the statistics (if asked) to stderr; called by finalization while the runtime's
 * interpreters and retired thread statistics still exist. */
void vm_instruments_finish(vm_thread *t);

#endif
