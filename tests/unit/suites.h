/* SPDX-License-Identifier: MIT */
/* The list of Check suites in the one unit-test binary; each test_*.c defines suite_NAME(). */
SUITE(opcodes)
SUITE(values)
SUITE(asm)
SUITE(loader)
SUITE(gc)
SUITE(runtime)
SUITE(async)
SUITE(poll)
SUITE(limits)
SUITE(sched)
