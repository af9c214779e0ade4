/* SPDX-License-Identifier: MIT */
/* The controlled scheduler's VM side (schedule.c): the --schedule, --replay and
 * --schedule-out options, the callbacks that name a thread's place and wait, the deadlock
 * exit, the schedule file and the --stats figures.  Called by the CLI, finalization and
 * the instruments. */
#ifndef VM_SCHEDULE_H
#define VM_SCHEDULE_H

#include <stdint.h>
#include <stdio.h>

#include "vm/core/state.h"

/* What the command line asked for. */
typedef struct {
    int strategy;               /* enum rt_sched_strategy; 0: not controlled */
    uint64_t seed;
    int seed_given;
    int depth;                  /* PCT depth (default 3) */
    uint64_t steps_estimate;    /* --schedule-steps (default 1000) */
    const char *out_path;       /* --schedule-out, or NULL */
    const char *replay_path;    /* --replay, or NULL */
} vm_schedule_options;

/* Status of a run that stopped on a deadlock. */
#define VM_EXIT_DEADLOCK 3

/* Parses a --schedule value ("random[:SEED]", "pct[:DEPTH[:SEED]]") into *o; 0, or -1 with
 * a one-line message in err. */
int vm_schedule_parse(const char *spec, vm_schedule_options *o, char *err, size_t errlen);

/* Before the runtime starts: reads the --replay file, takes a seed from the clock if none
 * was given, and fixes the string-hash key from the seed.  0, or -1 with a message. */
int vm_schedule_prepare(const vm_schedule_options *o, char *err, size_t errlen);

/* Starts controlled scheduling on the main thread `t` (holding the GIL) for `program`; does
 * nothing unless vm_schedule_prepare had a strategy.  0, or -1 with a message on stderr. */
int vm_schedule_start(vm_thread *t, const char *program);

/* Without a controlled run: turns on deadlock detection under the normal scheduler for a
 * program run (vm_wait_watch_deadlocks), reporting as a controlled run does (status 3). */
void vm_schedule_watch_deadlocks(void);

/* At exit, once the program and atexit have run: writes the --schedule-out file (once). */
void vm_schedule_finish(void);

/* Prints the --stats figures ("schedule: ..." and "uncontrolled: ..." lines, or `, "schedule":
 * {...}` for JSON) if a controlled run happened; 1 if it printed. */
int vm_schedule_report(FILE *out, int json);

#endif
