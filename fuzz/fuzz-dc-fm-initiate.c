/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: Initiate Dynamic Capacity Add and
 * Release payloads of the fabric manager (CXL r3.1 Tables 7-70 and
 * 7-71): policy, region, tag, length and extent list from the input.
 * Input: see fz_run_payloads() in fuzz-dc-ops.c; each payload chunk
 * starts with a byte whose bit 0 picks Release over Add.
 */

#include "qemu/osdep.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fm_payload(FzDC *f, const uint8_t *p, size_t len)
{
    if (!len) {
        return false;
    }
    if (p[0] & 1) {
        return fz_mbox_initiate_release(f, p + 1, len - 1);
    }
    return fz_mbox_initiate_add(f, p + 1, len - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_payloads(data, size, fm_payload);
}
