/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: the input is a device header and
 * a sequence of operations (fz_op() in fuzz-dc-ops.c): adds of every
 * policy, host responses in parts, host and FM releases (prescriptive,
 * tag-based, forced, with sanitize), record drains, extent list pages.
 * After every step the harness checks the engine's invariants and its
 * state against a shadow model; a failed request must change nothing.
 */

#include "qemu/osdep.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { .p = data, .n = size };
    FzDC f;

    fz_dc_setup(&f, &in);
    while (!fz_empty(&in)) {
        fz_op(&f, &in);
    }
    fz_dc_teardown(&f);
    return 0;
}
