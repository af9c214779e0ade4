/* SPDX-License-Identifier: MIT */
/* The host tests' one assertion: CHECK(cond, what) prints the failure with its line and the
 * recorded gilvm error, and exits 1.  Included by the hosts of tests/embed/. */
#ifndef EMBED_CHECK_H
#define EMBED_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, what) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: FAILED: %s (%s)\n  error: %s: %s\n", __FILE__, __LINE__, \
                    what, #cond, gilvm_error_type() ? gilvm_error_type() : "-", \
                    gilvm_error_message() ? gilvm_error_message() : "-"); \
            exit(1); \
        } \
    } while (0)

#endif
