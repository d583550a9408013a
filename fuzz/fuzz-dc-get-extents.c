/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: Get Dynamic Capacity Extent List
 * requests (CXL r3.1 Table 8-167), start index and count from the input,
 * pages interleaved with operations that change the list; every page is
 * compared with the shadow's list.
 * Input: see fz_run_payloads() in fuzz-dc-ops.c.
 */

#include "qemu/osdep.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_payloads(data, size, fz_mbox_get_extents);
}
