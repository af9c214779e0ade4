/* SPDX-License-Identifier: MIT */
/* Quickening: builds a verified code object's execution copy, one vm_xinstr per instruction
 * with its handler's address (direct threading) and decoded operand, superinstructions
 * (opcodes.def, SUPER rows) written over the first of each fusable run, and the size of its
 * frames.  Called when a module is linked; the eval loop runs code->exec, files and the
 * disassembler see code->code. */
#include <stdlib.h>
#include <string.h>

#include "vm/core/state.h"

static const struct { uint8_t super, n, ops[5]; } rows[] = {
#define OP(name, kind, pop, push, jpush, flags, picture)
#define SUPER(name, n, i1, i2, i3, i4, i5) {OP_##name, n, {OP_##i1, OP_##i2, OP_##i3, OP_##i4, OP_##i5}},
#include "opcodes/opcodes.def"
#undef SUPER
#undef OP
};

/* The row to write at p: the first (longest) that matches the code there, or -1. */
static int super_at(const vm_code *c, uint32_t p)
{
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        uint32_t n = rows[k].n, j = 0;
        while (j < n && p + j < c->ncode && INSTR_OP(c->code[p + j]) == rows[k].ops[j])
            j++;
        if (j == n)
            return rows[k].super;
    }
    return -1;
}

/* The decoded operand: signed for immediates, for jumps a byte offset from the next
 * instruction (the eval loop adds it to its ip as it is). */
static int32_t operand(instr w, uint32_t p)
{
    switch (op_kind_of(INSTR_OP(w))) {
    case OPK_IMM: return INSTR_IMM(w);
    case OPK_JUMP:
        return ((int32_t)INSTR_ARG(w) - (int32_t)(p + 1)) * (int32_t)sizeof(vm_xinstr);
    default: return (int32_t)INSTR_ARG(w);
    }
}

void vm_quicken(vm_interp *in, vm_code *c)
{
    const void *const *handlers = vm_eval_handlers();
    if (!c->exec) {     /* kept when quickened again: functions point into it (vm_func.entry) */
        c->exec = vm_xrealloc(NULL, (c->ncode ? c->ncode : 1) * sizeof *c->exec);
    }
    for (uint32_t p = 0; p < c->ncode; p++) {
        instr w = c->code[p];
        int super = handlers ? super_at(c, p) : -1;   /* switch dispatch: no supers */
        uint32_t op = super >= 0 ? (uint32_t)super : INSTR_OP(w);
        int global = op_kind_of(INSTR_OP(w)) == OPK_NAME;   /* names are globals' */
        c->exec[p] = (vm_xinstr){
            .handler = handlers ? handlers[op] : NULL,
            .op = op,
            .arg = operand(w, p),
            .aux = global ? vm_global_cell(in, c->names[INSTR_ARG(w)]) : NULL,  /* CALL: none yet */
        };
    }
    c->framesize = c->nlocals + c->maxstack;
}
