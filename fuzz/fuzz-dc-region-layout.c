/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: region layouts as Get Dynamic
 * Capacity Configuration reports them (CXL r3.1 Table 8-166).  Up to
 * nine cxl_dc_add_region() calls with base, decode length, length and
 * block size from the input, each compared with the rules of CXL r3.1
 * Table 8-176; then capacity at the edges of every region is added,
 * accepted, queried and released, and the rest of the input runs as
 * operations (fz_op()) on that layout.
 *
 * Input: max extents, max tags, count % 10, then per region a mode
 * byte: bit 7 raw (u64 base, decode length, length, block size);
 * otherwise compact bytes (see read_layout()).
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

/* Harness limit: regions of more blocks are not added (bitmap size) */
#define MAX_BLOCKS (1ULL << 15)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Layout {
    uint64_t base, decode_len, len, block_size;
} Layout;

static void read_layout(FzIn *in, uint8_t mode, uint64_t end, Layout *l)
{
    uint8_t b, d;
    uint16_t c;

    if (mode & 0x80) {
        l->base = fz_u64(in);
        l->decode_len = fz_u64(in);
        l->len = fz_u64(in);
        l->block_size = fz_u64(in);
        return;
    }
    /* Block size: 2^(b & 63), +64 with bit 6, 0 with bit 7 */
    b = fz_u8(in);
    l->block_size = 1ULL << (b & 63);
    if (b & 0x40) {
        l->block_size += 64;
    }
    if (b & 0x80) {
        l->block_size = 0;
    }
    /* Base: the end of the previous region plus 256 MiB steps */
    b = fz_u8(in);
    if (b == 0xff) {
        l->base = -(256 * MiB) * (1 + (mode & 7));
    } else if (b & 0x80) {
        l->base = end - 256 * MiB * (1 + (b & 3));
    } else {
        l->base = end + 256 * MiB * (b & 0x7f);
    }
    if (mode & 0x40) {
        l->base += l->block_size;
    }
    /* Decode length in 256 MiB units */
    d = fz_u8(in);
    l->decode_len = 256 * MiB * ((d & 0x3f) + !(d & 0x40));
    if (d & 0x80) {
        l->decode_len += 64;
    }
    /* Length: a number of blocks, or the decode length */
    c = fz_u16(in);
    l->len = (c & 0x7fff) * l->block_size;
    if (mode & 0x20) {
        l->len = l->decode_len;
    }
    if (c & 0x8000) {
        l->len += 64;
    }
}

/* CXL r3.1 Table 8-176, as the engine states the rules */
static bool layout_valid(CXLDCState *dc, const Layout *l)
{
    CXLDCRegion *prev = dc->nr_regions ?
        &dc->regions[dc->nr_regions - 1] : NULL;

    return dc->nr_regions < CXL_DC_MAX_REGIONS &&
           l->block_size >= 64 && is_power_of_2(l->block_size) &&
           !(l->base % (256 * MiB)) && !(l->base % l->block_size) &&
           l->len && !(l->len % l->block_size) &&
           !(l->decode_len % (256 * MiB)) && l->len <= l->decode_len &&
           l->base + l->decode_len > l->base &&
           (!prev || l->base >= prev->base + prev->decode_len);
}

/* Add and accept a block at each edge of region @rid, query, release. */
static void exercise_edges(FzDC *f, uint8_t rid)
{
    CXLDCRegion *r = &f->dc.regions[rid];
    uint64_t bs = r->block_size, last = r->base + r->len - 1;
    CXLDCRange ranges[2] = { { 0, bs }, { r->len - bs, bs } };
    CXLDCAddRequest add = {
        .region_id = rid, .policy = CXL_DC_SELECT_PRESCRIPTIVE,
        .nr_ranges = r->len > bs ? 2 : 1, .ranges = ranges,
    };
    CXLDCExtentRaw raw[2] = {
        { .start_dpa = r->base, .len = bs },
        { .start_dpa = r->base + r->len - bs, .len = bs },
    };
    CXLDCReleaseRequest rel = {
        .region_id = rid, .policy = CXL_DC_REMOVE_PRESCRIPTIVE,
        .forced = true, .sanitize = true, .nr_ranges = 1, .ranges = ranges,
    };

    if (!fz_offer_add(f, &add)) {
        return;
    }
    fz_host_add_response(f, raw, add.nr_ranges, false);
    fz_is_backed(f, r->base, 1);
    fz_is_backed(f, last, 1);
    fz_is_backed(f, last, 2);
    fz_is_backed(f, r->base - 1, 2);
    fz_is_backed(f, r->base, r->len);
    fz_get_extents(f, 0, 4);
    fz_host_release(f, &raw[1], 1);
    fz_request_release(f, &rel);
    while (f->records.length) {
        fz_record_pop(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { .p = data, .n = size };
    uint8_t max_extents = fz_u8(&in), max_tags = fz_u8(&in);
    unsigned n = fz_u8(&in) % 10, i;
    uint64_t end = 0;
    FzDC f;

    fz_dc_init(&f, max_extents ? max_extents : 64, max_tags % 17);
    for (i = 0; i < n; i++) {
        uint8_t mode = fz_u8(&in);
        uint8_t nr = f.dc.nr_regions;
        Error *err = NULL;
        Layout l;
        bool valid, ok;

        read_layout(&in, mode, end, &l);
        valid = layout_valid(&f.dc, &l);
        if (valid && l.len / l.block_size > MAX_BLOCKS) {
            continue;
        }
        ok = cxl_dc_add_region(&f.dc, l.base, l.decode_len, l.len,
                               l.block_size, i, mode & 8, &err);
        FZ_CHECK(ok == valid, "region base 0x%" PRIx64 " decode 0x%" PRIx64
                 " len 0x%" PRIx64 " block 0x%" PRIx64 ": engine %s, rules"
                 " %s (%s)", l.base, l.decode_len, l.len, l.block_size,
                 ok ? "accepts" : "rejects", valid ? "allow" : "forbid",
                 err ? error_get_pretty(err) : "");
        if (ok) {
            CXLDCRegion *r = &f.dc.regions[nr];

            FZ_CHECK(!err && f.dc.nr_regions == nr + 1 && r->base == l.base
                     && r->decode_len == l.decode_len && r->len == l.len &&
                     r->block_size == l.block_size && r->dsmad_handle == i &&
                     r->shareable == !!(mode & 8) && !r->nr_accepted &&
                     (r->supported_block_sizes & l.block_size),
                     "region %u is not what was asked", nr);
            end = l.base + l.decode_len;
        } else {
            FZ_CHECK(err && *error_get_pretty(err) &&
                     f.dc.nr_regions == nr, "a rejected region changed"
                     " the device or gave no error");
            error_free(err);
        }
    }
    fz_check(&f);
    for (i = 0; i < f.dc.nr_regions; i++) {
        exercise_edges(&f, i);
    }
    while (f.dc.nr_regions && !fz_empty(&in)) {
        fz_op(&f, &in);
    }
    fz_dc_teardown(&f);
    return 0;
}
