/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: Release Dynamic Capacity payloads
 * (CXL r3.1 Table 8-170) from the host, between operations that offer,
 * accept and request back capacity.
 * Input: see fz_run_payloads() in fuzz-dc-ops.c.
 */

#include "qemu/osdep.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_payloads(data, size, fz_mbox_release);
}
