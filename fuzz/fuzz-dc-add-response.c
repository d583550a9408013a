/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: Add Dynamic Capacity Response
 * payloads (CXL r3.1 Table 8-169) from the host, whole or in parts with
 * More set, between operations that offer and release capacity.
 * Input: see fz_run_payloads() in fuzz-dc-ops.c.
 */

#include "qemu/osdep.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_payloads(data, size, fz_mbox_add_response);
}
