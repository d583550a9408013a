/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The operation language of the DC engine fuzz targets, and mailbox
 * payloads in the wire format, checked as hw/mem/cxl_type3_dc.c checks
 * them before it calls the engine (the glue itself is not linked: it
 * needs a device).
 *
 * An operation is an opcode byte (value % 16) and its arguments:
 *   0, 1   FM add, prescriptive: target, tag, count % 9, FM ranges
 *   2      FM add by length: policy, target, tag, length
 *   3      host add response: flags (bit 0 More), count % 9, host ranges
 *   4, 5   host add response derived from the oldest pending group
 *   6      host release: count % 9, host ranges
 *   7, 8   host release derived from accepted extents or a release
 *          request
 *   9, 10  FM release: flags (bit 0 tag-based, 1 forced, 2 sanitize,
 *          3 derived, 0xf0 unknown policy), target, tag, ranges
 *   11     drain records: count (0: all)
 *   12     get extent list: one page or a walk through all pages
 *   13     is-backed query
 *   14     set block size
 *   15     0xff: clear; else get extent list
 * A range is a mode byte: bit 7 raw (u64 start, u64 length); otherwise
 * a block index (bit 6: 16-bit) and block count (bit 5: up to 256)
 * of region (host: mode bit 0), bit 4 then a perturbation byte
 * (unaligned start or length, a length that wraps, zero length).
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

#define MAX_RANGES 16

static const QemuUUID fz_tags[4] = {
    { .data = { 0x11 } },
    { .data = { 0x22 } },
    { .data = { [15] = 0xff } },
    { .data = { 0x80, [15] = 0x01 } },
};

static void read_tag(FzIn *in, bool *has_tag, QemuUUID *tag)
{
    uint8_t sel = fz_u8(in) % 8;

    memset(tag, 0, sizeof(*tag));
    *has_tag = sel != 0 && sel != 7;
    switch (sel) {
    case 2 ... 5:
        *tag = fz_tags[sel - 2];
        break;
    case 6:
        fz_bytes(in, tag->data, sizeof(tag->data));
        break;
    case 7:
        *tag = fz_tags[0];      /* a tag, but has_tag false */
        break;
    }
}

/* Host and region of a request; now and then ones that do not exist */
static void read_target(FzDC *f, FzIn *in, uint16_t *host, uint8_t *rid)
{
    uint8_t b = fz_u8(in);

    *host = (b & 0xc0) == 0xc0 ? 1 + ((b >> 4) & 3) : 0;
    if ((b & 0x0f) == 0x0f) {
        *rid = f->dc.nr_regions + ((b >> 4) & 3) * 3;
    } else {
        *rid = (b & 0x0f) % f->dc.nr_regions;
    }
}

static CXLDCRegion *region_or_0(FzDC *f, uint8_t rid)
{
    return &f->dc.regions[rid < f->dc.nr_regions ? rid : 0];
}

/* A range of region @rid: offsets for the FM, DPAs for the host */
static void read_range(FzDC *f, FzIn *in, uint8_t rid, bool host,
                       uint64_t *start, uint64_t *len)
{
    uint8_t mode = fz_u8(in);
    CXLDCRegion *r;
    uint64_t nb, blk, cnt, off, l;

    if (mode & 0x80) {
        *start = fz_u64(in);
        *len = fz_u64(in);
        return;
    }
    r = region_or_0(f, host ? (mode & 1) : rid);
    nb = r->len / r->block_size;
    blk = ((mode & 0x40) ? fz_u16(in) : fz_u8(in)) % (nb + 1);
    cnt = (mode & 0x20) ? fz_u8(in) + 1ULL : fz_u8(in) % 8 + 1ULL;
    off = blk * r->block_size;
    l = cnt * r->block_size;
    if (mode & 0x10) {
        uint8_t d = fz_u8(in);

        switch (d & 3) {
        case 0:
            off += (d >> 2) | 1;
            break;
        case 1:
            l += (d >> 2) | 1;
            break;
        case 2:
            /* start + length wraps past 2^64 */
            l = -(r->base + off) + (uint64_t)(d >> 2) * r->block_size;
            break;
        case 3:
            l = 0;
            break;
        }
    }
    *start = host ? r->base + off : off;
    *len = l;
}

/* A sub-range of extent [s, s + len) chosen by @t, in whole blocks */
static void trim(uint64_t s, uint64_t len, uint64_t bs, uint8_t t,
                 uint64_t *os, uint64_t *ol)
{
    uint64_t nb = len / bs;
    uint64_t front = (t & 15) % nb;
    uint64_t back = (t >> 4) % (nb - front);

    *os = s + front * bs;
    *ol = (nb - front - back) * bs;
}

static void add_raw(CXLDCExtentRaw *raw, uint32_t *n, uint64_t s, uint64_t l)
{
    if (*n < MAX_RANGES) {
        raw[*n].start_dpa = s;
        raw[*n].len = l;
        (*n)++;
    }
}

static void op_offer_prescriptive(FzDC *f, FzIn *in)
{
    CXLDCRange ranges[MAX_RANGES];
    CXLDCAddRequest req = { .policy = CXL_DC_SELECT_PRESCRIPTIVE };
    uint32_t i;

    read_target(f, in, &req.host_id, &req.region_id);
    read_tag(in, &req.has_tag, &req.tag);
    req.nr_ranges = fz_u8(in) % 9;
    for (i = 0; i < req.nr_ranges; i++) {
        read_range(f, in, req.region_id, false, &ranges[i].offset,
                   &ranges[i].len);
    }
    req.ranges = ranges;
    fz_offer_add(f, &req);
}

static void op_offer_len(FzDC *f, FzIn *in)
{
    static const int policies[8] = {
        CXL_DC_SELECT_FREE, CXL_DC_SELECT_CONTIGUOUS, CXL_DC_SELECT_FREE,
        CXL_DC_SELECT_CONTIGUOUS, CXL_DC_SELECT_PRESCRIPTIVE,
        CXL_DC_SELECT_SHARED, 4, -1,
    };
    CXLDCRange one = { 0, 0 };
    CXLDCAddRequest req = {};
    uint8_t p = fz_u8(in), m;

    req.policy = policies[p % 8];
    read_target(f, in, &req.host_id, &req.region_id);
    read_tag(in, &req.has_tag, &req.tag);
    m = fz_u8(in);
    if (m & 0x80) {
        req.len = fz_u64(in);
    } else {
        req.len = ((m & 0x3f) + 1ULL) *
                  region_or_0(f, req.region_id)->block_size;
        if (m & 0x40) {
            req.len += 64;
        }
    }
    if (p & 0x80) {
        one.len = region_or_0(f, req.region_id)->block_size;
        req.nr_ranges = 1;
        req.ranges = &one;
    }
    fz_offer_add(f, &req);
}

static void op_respond_raw(FzDC *f, FzIn *in)
{
    CXLDCExtentRaw raw[MAX_RANGES] = {};
    bool more = fz_u8(in) & 1;
    uint32_t n = fz_u8(in) % 9, i;

    for (i = 0; i < n; i++) {
        read_range(f, in, 0, true, &raw[i].start_dpa, &raw[i].len);
    }
    fz_host_add_response(f, raw, n, more);
}

/*
 * Answer the oldest pending group: flags bit 0 More, bit 1 an empty
 * list, bit 2 split each range in two; a mask picks its extents, a
 * byte per extent trims it.
 */
static void op_respond_derived(FzDC *f, FzIn *in)
{
    CXLDCExtentRaw raw[MAX_RANGES] = {};
    uint8_t flags = fz_u8(in), mask = fz_u8(in);
    FzGroup *g = g_queue_peek_head(&f->groups);
    uint32_t n = 0, i;

    for (i = 0; g && !(flags & 2) && i < MIN(g->ext->len, 8); i++) {
        FzExt *e = &g_array_index(g->ext, FzExt, i);
        uint64_t bs = f->dc.regions[g->rid].block_size, s, l;

        if (!(mask & (1 << i))) {
            continue;
        }
        trim(e->start, e->len, bs, fz_u8(in), &s, &l);
        if ((flags & 4) && l >= 2 * bs) {
            uint64_t half = l / bs / 2 * bs;

            add_raw(raw, &n, s, half);
            add_raw(raw, &n, s + half, l - half);
        } else {
            add_raw(raw, &n, s, l);
        }
    }
    fz_host_add_response(f, raw, n, flags & 1);
}

static void op_release_raw(FzDC *f, FzIn *in)
{
    CXLDCExtentRaw raw[MAX_RANGES] = {};
    uint32_t n = fz_u8(in) % 9, i;

    for (i = 0; i < n; i++) {
        read_range(f, in, 0, true, &raw[i].start_dpa, &raw[i].len);
    }
    fz_host_release(f, raw, n);
}

/*
 * Release accepted capacity: flags bit 0 answers an outstanding release
 * request (bit 1 trims its ranges), else a mask picks accepted extents
 * from an index on, each trimmed, or with bit 2 run on to the end of
 * the next extent.
 */
static void op_release_derived(FzDC *f, FzIn *in)
{
    CXLDCExtentRaw raw[MAX_RANGES] = {};
    uint8_t flags = fz_u8(in);
    uint32_t n = 0, i;

    if ((flags & 1) && f->releases.length) {
        FzRelease *rel = g_queue_peek_nth(&f->releases,
                                          fz_u8(in) % f->releases.length);
        uint64_t bs = f->dc.regions[rel->rid].block_size;

        for (i = 0; i < rel->ranges->len; i++) {
            FzExt *x = &g_array_index(rel->ranges, FzExt, i);
            uint64_t s = x->start, l = x->len;

            if (flags & 2) {
                trim(x->start, x->len, bs, fz_u8(in), &s, &l);
            }
            add_raw(raw, &n, s, l);
        }
    } else if (f->acc->len) {
        uint8_t mask = fz_u8(in), base = fz_u8(in);

        for (i = 0; i < 8; i++) {
            uint32_t idx = (base + i) % f->acc->len;
            FzExt *e = &g_array_index(f->acc, FzExt, idx);
            uint64_t s, l;

            if (!(mask & (1 << i))) {
                continue;
            }
            trim(e->start, e->len, f->dc.regions[e->rid].block_size,
                 fz_u8(in), &s, &l);
            if ((flags & 4) && idx + 1 < f->acc->len) {
                FzExt *nx = &g_array_index(f->acc, FzExt, idx + 1);

                l = nx->start + nx->len - s;
            }
            add_raw(raw, &n, s, l);
        }
    }
    fz_host_release(f, raw, n);
}

static void op_fm_release(FzDC *f, FzIn *in)
{
    CXLDCRange ranges[MAX_RANGES];
    CXLDCReleaseRequest req = {};
    uint8_t flags = fz_u8(in);
    uint32_t i;

    req.policy = (flags & 1) ? CXL_DC_REMOVE_TAG_BASED
                             : CXL_DC_REMOVE_PRESCRIPTIVE;
    if ((flags & 0xf0) == 0xf0) {
        req.policy = 2 + (flags & 1);
    }
    req.forced = flags & 2;
    req.sanitize = flags & 4;
    read_target(f, in, &req.host_id, &req.region_id);
    read_tag(in, &req.has_tag, &req.tag);
    if (flags & 8) {
        /* Offsets of accepted extents of the region, trimmed */
        CXLDCRegion *r = region_or_0(f, req.region_id);
        uint8_t mask = fz_u8(in), base = fz_u8(in);
        g_autoptr(GArray) mine = g_array_new(false, false, sizeof(FzExt));

        for (i = 0; i < f->acc->len; i++) {
            FzExt *e = &g_array_index(f->acc, FzExt, i);

            if (e->rid == req.region_id) {
                g_array_append_val(mine, *e);
            }
        }
        if ((flags & 0x10) && mine->len) {
            req.has_tag = true;
            req.tag = g_array_index(mine, FzExt, base % mine->len).tag;
        }
        for (i = 0; i < 8 && mine->len &&
             req.policy == CXL_DC_REMOVE_PRESCRIPTIVE; i++) {
            FzExt *e = &g_array_index(mine, FzExt, (base + i) % mine->len);
            uint64_t s, l;

            if (!(mask & (1 << i))) {
                continue;
            }
            trim(e->start, e->len, r->block_size, fz_u8(in), &s, &l);
            ranges[req.nr_ranges].offset = s - r->base;
            ranges[req.nr_ranges].len = l;
            req.nr_ranges++;
        }
    } else if (req.policy == CXL_DC_REMOVE_PRESCRIPTIVE || (flags & 0x20)) {
        req.nr_ranges = fz_u8(in) % 9;
        for (i = 0; i < req.nr_ranges; i++) {
            read_range(f, in, req.region_id, false, &ranges[i].offset,
                       &ranges[i].len);
        }
    }
    req.ranges = ranges;
    fz_request_release(f, &req);
}

static void op_get_extents(FzDC *f, FzIn *in)
{
    uint8_t flags = fz_u8(in);

    if (flags & 1) {
        /* Page through the list, then jump back */
        uint32_t page = (flags >> 1) % 8 + 1;
        uint32_t s = fz_u8(in) % (f->acc->len + 1);

        while (s < f->acc->len) {
            fz_get_extents(f, s, page);
            s += page;
        }
        fz_get_extents(f, fz_u8(in), fz_u8(in));
    } else {
        uint32_t start = (flags & 2) ? fz_u32(in) : fz_u8(in);

        fz_get_extents(f, start, fz_u8(in));
    }
}

static void op_set_block_size(FzDC *f, FzIn *in)
{
    uint16_t host;
    uint8_t rid, sel;
    uint64_t bs;

    read_target(f, in, &host, &rid);
    bs = region_or_0(f, rid)->block_size;
    sel = fz_u8(in);
    switch (sel % 7) {
    case 1:
        bs *= 2;
        break;
    case 2:
        bs /= 2;
        break;
    case 3:
        bs = 0;
        break;
    case 4:
        bs = 64;
        break;
    case 5:
        bs = fz_u64(in);
        break;
    case 6:
        bs = 1ULL << 63;
        break;
    }
    fz_set_block_size(f, rid, bs);
}

void fz_op(FzDC *f, FzIn *in)
{
    uint8_t op = fz_u8(in);
    uint32_t n;

    switch (op % 16) {
    case 0:
    case 1:
        op_offer_prescriptive(f, in);
        break;
    case 2:
        op_offer_len(f, in);
        break;
    case 3:
        op_respond_raw(f, in);
        break;
    case 4:
    case 5:
        op_respond_derived(f, in);
        break;
    case 6:
        op_release_raw(f, in);
        break;
    case 7:
    case 8:
        op_release_derived(f, in);
        break;
    case 9:
    case 10:
        op_fm_release(f, in);
        break;
    case 11:
        n = fz_u8(in);
        for (n = n ? n : UINT32_MAX; n && f->records.length; n--) {
            fz_record_pop(f);
        }
        break;
    case 13: {
        uint64_t dpa, len;

        if (fz_u8(in) & 1) {
            dpa = fz_u64(in);
            len = fz_u64(in);
        } else {
            read_range(f, in, 0, true, &dpa, &len);
        }
        fz_is_backed(f, dpa, len);
        break;
    }
    case 14:
        op_set_block_size(f, in);
        break;
    case 15:
        if (op == 0xff) {
            fz_clear(f);
            break;
        }
        /* fall through */
    case 12:
        op_get_extents(f, in);
        break;
    }
}

/* Mailbox payloads, CXL r3.1 Tables 8-169 to 8-171 and 7-70, 7-71 */

#define UPDATE_HDR 8            /* count, flags, reserved */
#define UPDATE_ENTRY 0x18       /* start DPA, length, reserved */

static CXLDCExtentRaw *read_updated(const uint8_t *p, size_t len,
                                    uint32_t *n, bool *more)
{
    CXLDCExtentRaw *ranges;
    uint32_t i;

    if (len < UPDATE_HDR) {
        return NULL;
    }
    *n = ldl_le_p(p);
    *more = p[4] & 1;
    if (len - UPDATE_HDR < (uint64_t)*n * UPDATE_ENTRY) {
        return NULL;
    }
    ranges = g_new0(CXLDCExtentRaw, MAX(*n, 1));
    for (i = 0; i < *n; i++) {
        const uint8_t *e = p + UPDATE_HDR + i * UPDATE_ENTRY;

        ranges[i].start_dpa = ldq_le_p(e);
        ranges[i].len = ldq_le_p(e + 8);
    }
    return ranges;
}

bool fz_mbox_add_response(FzDC *f, const uint8_t *p, size_t len)
{
    uint32_t n;
    bool more;
    g_autofree CXLDCExtentRaw *ranges = read_updated(p, len, &n, &more);

    if (!ranges) {
        return false;
    }
    fz_host_add_response(f, ranges, n, more);
    return true;
}

bool fz_mbox_release(FzDC *f, const uint8_t *p, size_t len)
{
    uint32_t n;
    bool more;
    g_autofree CXLDCExtentRaw *ranges = read_updated(p, len, &n, &more);

    if (!ranges) {
        return false;
    }
    fz_host_release(f, ranges, n);
    return true;
}

/* Records that fit a 2 KiB output payload after its 16-byte header */
#define EXTENT_LIST_FIT ((2048 - 16) / sizeof(CXLDCExtentRaw))

bool fz_mbox_get_extents(FzDC *f, const uint8_t *p, size_t len)
{
    uint32_t want, start;

    if (len < 8) {
        return false;
    }
    want = ldl_le_p(p);
    start = ldl_le_p(p + 4);
    if (start > f->dc.nr_accepted) {
        return false;
    }
    fz_get_extents(f, start, MIN(want, EXTENT_LIST_FIT));
    return true;
}

#define INITIATE_HDR 0x20
#define INITIATE_ENTRY 0x28

static CXLDCRange *read_initiate(FzDC *f, const uint8_t *p, size_t len,
                                 uint32_t *n)
{
    g_autofree CXLDCRange *ranges = NULL;
    CXLDCRegion *r;
    uint32_t i;

    if (len < INITIATE_HDR) {
        return NULL;
    }
    *n = ldl_le_p(p + 0x1c);
    if (len - INITIATE_HDR < (uint64_t)*n * INITIATE_ENTRY) {
        return NULL;
    }
    if (p[3] >= f->dc.nr_regions) {
        return NULL;
    }
    r = &f->dc.regions[p[3]];
    ranges = g_new0(CXLDCRange, MAX(*n, 1));
    for (i = 0; i < *n; i++) {
        const uint8_t *e = p + INITIATE_HDR + i * INITIATE_ENTRY;
        uint64_t dpa = ldq_le_p(e);

        if (dpa < r->base) {
            return NULL;
        }
        ranges[i].offset = dpa - r->base;
        ranges[i].len = ldq_le_p(e + 8);
    }
    return g_steal_pointer(&ranges);
}

bool fz_mbox_initiate_add(FzDC *f, const uint8_t *p, size_t len)
{
    CXLDCAddRequest req = {};
    uint32_t n;
    g_autofree CXLDCRange *ranges = read_initiate(f, p, len, &n);

    if (!ranges) {
        return false;
    }
    req.host_id = lduw_le_p(p);
    req.policy = p[2] & 0x0f;
    req.region_id = p[3];
    memcpy(req.tag.data, p + 0xc, sizeof(req.tag.data));
    req.has_tag = !qemu_uuid_is_null(&req.tag);
    if (req.policy == CXL_DC_SELECT_PRESCRIPTIVE) {
        req.nr_ranges = n;
        req.ranges = ranges;
    } else {
        req.len = ldq_le_p(p + 4);
    }
    fz_offer_add(f, &req);
    return true;
}

bool fz_mbox_initiate_release(FzDC *f, const uint8_t *p, size_t len)
{
    CXLDCReleaseRequest req = {};
    uint32_t n;
    g_autofree CXLDCRange *ranges = read_initiate(f, p, len, &n);

    if (!ranges) {
        return false;
    }
    req.host_id = lduw_le_p(p);
    req.policy = p[2] & 0x0f;
    req.forced = p[2] & 0x10;
    req.sanitize = p[2] & 0x20;
    req.region_id = p[3];
    memcpy(req.tag.data, p + 0xc, sizeof(req.tag.data));
    req.has_tag = !qemu_uuid_is_null(&req.tag);
    if (req.policy == CXL_DC_REMOVE_PRESCRIPTIVE) {
        req.nr_ranges = n;
        req.ranges = ranges;
    }
    fz_request_release(f, &req);
    return true;
}

/*
 * Header, a count of setup operations (value % 16) and the operations,
 * then chunks: a 16-bit length whose bit 15 says the chunk holds
 * operations rather than one payload.
 */
int fz_run_payloads(const uint8_t *data, size_t size,
                    bool (*payload)(FzDC *f, const uint8_t *p, size_t len))
{
    FzIn in = { .p = data, .n = size };
    FzDC f;
    unsigned k;

    fz_dc_setup(&f, &in);
    for (k = fz_u8(&in) % 16; k && !fz_empty(&in); k--) {
        fz_op(&f, &in);
    }
    while (!fz_empty(&in)) {
        uint16_t hdr = fz_u16(&in);
        FzIn chunk = fz_sub(&in, hdr & 0x7fff);

        if (hdr & 0x8000) {
            while (!fz_empty(&chunk)) {
                fz_op(&f, &chunk);
            }
        } else {
            /* A buffer of its own, so that ASan sees over-reads */
            g_autofree uint8_t *p = g_memdup2(chunk.p, chunk.n);

            payload(&f, p, chunk.n);
        }
    }
    fz_dc_teardown(&f);
    return 0;
}
