/* SPDX-License-Identifier: MIT */
/* The instruction set's derived views: opcode enum, operand kinds, flags, stack effects and
 * the 32-bit instruction encoding.  A leaf: includes nothing of ours but opcodes.def. */
#ifndef OPCODES_H
#define OPCODES_H

#include <stdint.h>

/* One instruction: opcode in the low 8 bits, operand in the high 24. */
typedef uint32_t instr;
#define INSTR(op, arg) ((instr)(op) | ((instr)(arg) << 8))
#define INSTR_OP(i)    ((i) & 0xffu)
#define INSTR_ARG(i)   ((i) >> 8)
#define INSTR_IMM(i)   ((int32_t)(i) >> 8)          /* sign-extended operand of kind IMM */
#define OPARG_MAX      0xffffffu
#define IMM_MIN        (-(1 << 23))
#define IMM_MAX        ((1 << 23) - 1)

typedef enum {
#define OP(name, kind, pop, push, jpush, flags, picture) OP_##name,
#include "opcodes.def"
#undef OP
    OP__COUNT,                      /* opcodes that may appear in files */
    OP__SUPER_BASE = OP__COUNT - 1,
#define OP(name, kind, pop, push, jpush, flags, picture)
#define SUPER(name, n, i1, i2, i3, i4, i5) OP_##name,
#include "opcodes.def"
#undef SUPER
#undef OP
    OP__ALL                         /* plus superinstructions (execution copies only) */
} opcode;

/* SUPER_LEN_NAME: how many instructions the superinstruction NAME fuses (its row's N). */
enum {
#define OP(name, kind, pop, push, jpush, flags, picture)
#define SUPER(name, n, i1, i2, i3, i4, i5) SUPER_LEN_##name = (n),
#include "opcodes.def"
#undef SUPER
#undef OP
};

typedef enum { OPK_NONE, OPK_CONST, OPK_LOCAL, OPK_NAME, OPK_JUMP, OPK_COUNT, OPK_IMM } op_kind;

enum { OPF_POLL = 1, OPF_JUMP = 2, OPF_BACK = 4, OPF_END = 8 };

/* Mnemonic of `op` ("LOAD_CONST"), or NULL if op is out of range. */
const char *op_name(unsigned op);

/* Stack picture of a valid opcode, as opcodes.def writes it: "a b -- a+b". */
const char *op_picture(unsigned op);

/* Opcode whose mnemonic is `name` (length `len`), or -1. */
int op_lookup(const char *name, unsigned len);

/* Operand kind of a valid opcode. */
op_kind op_kind_of(unsigned op);

/* What an operand of kind `k` is written as in assembly ("a literal", "a label"; "no
 * operand" for OPK_NONE): the assembler's messages and the REPL's :help. */
const char *op_kind_operand(op_kind k);

/* Flags (OPF_*) of a valid opcode. */
unsigned op_flags(unsigned op);

/* Values popped by `op` with operand `arg`. */
long op_pops(unsigned op, uint32_t arg);

/* Values pushed by `op` when it falls through. */
long op_pushes(unsigned op, uint32_t arg);

/* Values pushed by `op` when it takes its jump (OPF_JUMP only). */
long op_jump_pushes(unsigned op, uint32_t arg);

#endif
