/* SPDX-License-Identifier: MIT */
/* Tables derived from opcodes.def: names, operand kinds, flags and stack effects.  Used by
 * the assembler, disassembler, verifier and tests; the eval loop derives its own table. */
#include <string.h>

#include "opcodes.h"

static const char *const names[] = {
#define OP(name, kind, pop, push, jpush, flags, picture) #name,
#include "opcodes.def"
#undef OP
};

static const unsigned char kinds[] = {
#define OP(name, kind, pop, push, jpush, flags, picture) OPK_##kind,
#include "opcodes.def"
#undef OP
};

static const unsigned char flagtab[] = {
#define OP(name, kind, pop, push, jpush, flags, picture) (flags),
#include "opcodes.def"
#undef OP
};

static const char *const pictures[] = {
#define OP(name, kind, pop, push, jpush, flags, picture) picture,
#include "opcodes.def"
#undef OP
};

static const char *const kind_operands[] = {
    [OPK_NONE] = "no operand", [OPK_CONST] = "a literal", [OPK_LOCAL] = "a local name or index",
    [OPK_NAME] = "a global name", [OPK_JUMP] = "a label", [OPK_COUNT] = "an unsigned integer",
    [OPK_IMM] = "an integer",
};

const char *op_name(unsigned op) { return op < OP__COUNT ? names[op] : NULL; }
const char *op_kind_operand(op_kind k) { return kind_operands[k]; }
const char *op_picture(unsigned op) { return pictures[op]; }
op_kind op_kind_of(unsigned op) { return (op_kind)kinds[op]; }
unsigned op_flags(unsigned op) { return flagtab[op]; }

int op_lookup(const char *name, unsigned len)
{
    for (unsigned i = 0; i < OP__COUNT; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return (int)i;
    return -1;
}

long op_pops(unsigned op, uint32_t arg)
{
    long a = (long)arg;
    (void)a;
    switch (op) {
#define OP(name, kind, pop, push, jpush, flags, picture) case OP_##name: return (pop);
#include "opcodes.def"
#undef OP
    }
    return 0;
}

long op_pushes(unsigned op, uint32_t arg)
{
    long a = (long)arg;
    (void)a;
    switch (op) {
#define OP(name, kind, pop, push, jpush, flags, picture) case OP_##name: return (push);
#include "opcodes.def"
#undef OP
    }
    return 0;
}

long op_jump_pushes(unsigned op, uint32_t arg)
{
    long a = (long)arg;
    (void)a;
    switch (op) {
#define OP(name, kind, pop, push, jpush, flags, picture) case OP_##name: return (jpush);
#include "opcodes.def"
#undef OP
    }
    return 0;
}
