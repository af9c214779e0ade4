/* SPDX-License-Identifier: MIT */
/* The stack-depth flow analysis of one code object, written once for the verifier
 * (verify.c), which checks a loaded exception table against it, and the assembler (asm.c),
 * which takes its exception depths and maxstack from it.  Each caller words its own messages. */
#ifndef VM_FLOW_H
#define VM_FLOW_H

#include <stdint.h>

#include "opcodes/opcodes.h"

/* As a flow_entry's depth: unknown, to be computed as the depth before the entry's start. */
#define FLOW_UNKNOWN (-1)

/* As flow_code.maxstack: no declared maximum to check, only the largest depth to measure. */
#define FLOW_NO_LIMIT INT64_MAX

/* An exception-table entry: a raise in [start, end) keeps `depth` values and goes to `target`,
 * which starts with depth + 1 (the exception pushed). */
typedef struct {
    uint32_t start, end, target;
    int64_t depth;
} flow_entry;

/* What went wrong first; `pc` always names the instruction concerned. */
typedef enum {
    FLOW_OK,
    FLOW_MISMATCH,      /* pc reached with `depth` and again with `other`, from `from` */
    FLOW_UNDERFLOW,     /* pc pops `other` values with only `depth` on the stack */
    FLOW_OVERFLOW,      /* pc leaves `other` values, more than maxstack (`limit`) */
    FLOW_UNWIND,        /* pc raising leaves `other` values, fewer than the `limit` that
                           exception entry `entry` unwinds to */
    FLOW_NOMEM,         /* the analysis could not allocate its tables */
} flow_kind;

/* The first failure: kind, where, and the numbers the kind's comment names. */
typedef struct {
    flow_kind kind;
    uint32_t pc;
    int64_t from;       /* MISMATCH: the predecessor instruction, or -1: pc is the handler
                           of exception entry `entry` */
    uint32_t entry;
    int64_t depth;      /* the depth before pc (MISMATCH: the one recorded first) */
    int64_t other, limit;
} flow_failure;

/* One analysis: the inputs, then what it computes. */
typedef struct {
    const instr *code;          /* valid opcodes, jumps inside, the last one OPF_END */
    uint32_t ncode;
    int64_t entry_depth;        /* the depth at offset 0 */
    int64_t maxstack;           /* the most values an instruction may leave, or
                                   FLOW_NO_LIMIT (entry and handler depths: unchecked) */
    flow_entry *exc;            /* start < end <= ncode, target < ncode; FLOW_UNKNOWN
                                   depths are filled in */
    uint32_t nexc;

    int64_t maxdepth;           /* out: the largest depth any reachable point has */
    flow_failure fail;          /* out: kind FLOW_OK on success */
} flow_code;

/* Gives every instruction reachable from offset 0 and from the handlers one stack depth and
 * checks that exception entries unwind to no more than their ranges hold; returns 0, or -1
 * with f->fail describing the first failure.  Linear in ncode plus O(log ncode) per entry,
 * iterative (no recursion), so hostile code can make it neither slow nor deep. */
int flow_analyze(flow_code *f);

#endif
