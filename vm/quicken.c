/* Quickening: builds a verified code object's execution copy, with superinstructions
 * (opcodes.def, SUPER rows) written over the first of each fusable pair, and the size of its
 * frames.  Called when a
 * module is linked; the eval loop runs code->exec, files and the disassembler see code->code. */
#include <stdlib.h>
#include <string.h>

#include "state.h"

static const struct { uint8_t super, n, ops[4]; } rows[] = {
#define OP(name, kind, pop, push, jpush, flags)
#define SUPER(name, n, i1, i2, i3, i4) {OP_##name, n, {OP_##i1, OP_##i2, OP_##i3, OP_##i4}},
#include "opcodes/opcodes.def"
#undef SUPER
#undef OP
};

void vm_quicken(vm_code *c)
{
    if (!c->exec) {     /* kept when quickened again: functions point into it (vm_func.entry) */
        c->exec = malloc((c->ncode ? c->ncode : 1) * sizeof(instr));
        if (!c->exec)
            RT_FATAL("out of memory");
    }
    memcpy(c->exec, c->code, c->ncode * sizeof(instr));
    c->framesize = c->nlocals + c->maxstack;
#if defined(__GNUC__)      /* the switch-dispatch fallback of eval.c has no superinstructions */
    for (uint32_t p = 0; p + 1 < c->ncode; p++)
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {  /* longest rows first */
            uint32_t n = rows[k].n, j = 0;
            while (j < n && p + j < c->ncode && INSTR_OP(c->code[p + j]) == rows[k].ops[j])
                j++;
            if (j == n) {
                c->exec[p] = INSTR(rows[k].super, INSTR_ARG(c->code[p]));
                break;
            }
        }
#endif
}
