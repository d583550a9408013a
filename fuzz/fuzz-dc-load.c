/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the DC engine: cxl_dc_load(), the way the
 * migration stream comes in.  A short operation sequence builds a state
 * on a source device, cxl_dc_save() turns it into a snapshot, and
 * fuzz-chosen mutations bend that snapshot (wrong counts, overlaps,
 * ranges outside the regions or off their blocks, staged ranges outside
 * their group, shared tags, unknown kinds and record types, huge
 * values, reordered or duplicated entries) before it is loaded into a
 * destination that holds a state of its own.
 *
 * A refused load must change nothing (the same snapshot check as for
 * any failed call) and say why.  An accepted one must give a state that
 * passes every invariant against a shadow built from the snapshot
 * alone, that saves back to the snapshot (in the engine's order), that
 * a fresh device loads to the same state, and that takes further
 * operations.  Unmutated, between like devices, the destination ends up
 * in the source's state.
 *
 * Input:
 *   3 bytes    source device header (fz_dc_setup())
 *   1 byte     destination: bit 7 layout (bits 0-1) of its own, bit 6
 *              max extents of its own (a byte follows), bit 5 max tags
 *              of its own (a byte follows), bit 4 the source itself
 *   u16 + ops  operations on the source (fz_op()), length-prefixed
 *   u8 + ops   operations on the destination before the load
 *   1 byte     number of mutations (value % 32), then the mutations
 *   the rest   operations on the destination after the load
 *
 * A mutation is a selector byte: value % 8 picks regions, extents,
 * groups, release requests, release ranges, records, the scalars
 * (generation, next ids) or, with 7, a change of shape.  A field change
 * then reads an index byte (no index for the scalars), a field byte and
 * a mode byte (value % 12: a new value, a small or block-sized step of
 * the region the mode's bits 4-7 pick, a flipped bit, 0, all ones, the
 * field of another entry, a region boundary, doubled, halved, a small
 * value, a power of 2) with its argument; tags have modes of their own
 * (mutate_tag()).  A change of shape applies to array (selector >> 3)
 * % 6 and reads an operation byte (value % 4: delete, duplicate, swap,
 * insert a zeroed entry) and two index bytes.
 */

#include "qemu/osdep.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Entries a change of shape may grow an array to */
#define MAX_ENTRIES 1024

typedef struct Field {
    uint16_t off;
    uint8_t size;
} Field;

#define FIELD(type, member) \
    { offsetof(type, member), sizeof_field(type, member) }

static const Field region_fields[] = {
    FIELD(CXLDCSavedRegion, base),
    FIELD(CXLDCSavedRegion, len),
    FIELD(CXLDCSavedRegion, block_size),
};

static const Field extent_fields[] = {
    FIELD(CXLDCSavedExtent, dpa),
    FIELD(CXLDCSavedExtent, len),
    FIELD(CXLDCSavedExtent, tag),
    FIELD(CXLDCSavedExtent, shared_seq),
    FIELD(CXLDCSavedExtent, kind),
    FIELD(CXLDCSavedExtent, group),
};

static const Field group_fields[] = {
    FIELD(CXLDCSavedGroup, id),
    FIELD(CXLDCSavedGroup, host_id),
    FIELD(CXLDCSavedGroup, region_id),
};

static const Field release_fields[] = {
    FIELD(CXLDCSavedRelease, id),
    FIELD(CXLDCSavedRelease, host_id),
    FIELD(CXLDCSavedRelease, region_id),
    FIELD(CXLDCSavedRelease, sanitize),
    FIELD(CXLDCSavedRelease, nr_ranges),
};

static const Field range_fields[] = {
    FIELD(CXLDCSavedRange, dpa),
    FIELD(CXLDCSavedRange, len),
};

static const Field record_fields[] = {
    FIELD(CXLDCSavedRecord, type),
    FIELD(CXLDCSavedRecord, flags),
    FIELD(CXLDCSavedRecord, region_id),
    FIELD(CXLDCSavedRecord, host_id),
    FIELD(CXLDCSavedRecord, dpa),
    FIELD(CXLDCSavedRecord, len),
    FIELD(CXLDCSavedRecord, tag),
    FIELD(CXLDCSavedRecord, shared_seq),
    FIELD(CXLDCSavedRecord, extents_avail),
    FIELD(CXLDCSavedRecord, tags_avail),
};

static const Field scalar_fields[] = {
    FIELD(CXLDCSnapshot, generation),
    FIELD(CXLDCSnapshot, next_group_id),
    FIELD(CXLDCSnapshot, next_release_id),
};

/* One array of a snapshot; its count always matches its allocation */
typedef struct SnapArray {
    void **p;
    uint32_t *n;
    size_t size;
    const Field *fields;
    unsigned nr_fields;
} SnapArray;

#define NR_ARRAYS 6

static void snap_arrays(CXLDCSnapshot *s, SnapArray *a)
{
#define ARRAY(i, arr, count, f) \
    a[i] = (SnapArray) { (void **)&s->arr, &s->count, sizeof(*s->arr), \
                         f, ARRAY_SIZE(f) }
    ARRAY(0, regions, nr_regions, region_fields);
    ARRAY(1, extents, nr_extents, extent_fields);
    ARRAY(2, groups, nr_groups, group_fields);
    ARRAY(3, releases, nr_releases, release_fields);
    ARRAY(4, ranges, nr_ranges, range_fields);
    ARRAY(5, records, nr_records, record_fields);
#undef ARRAY
}

static uint8_t *entry(SnapArray *a, uint32_t i)
{
    return (uint8_t *)*a->p + (size_t)i * a->size;
}

static uint64_t get_field(const uint8_t *p, const Field *fl)
{
    uint64_t v8;
    uint32_t v4;
    uint16_t v2;

    switch (fl->size) {
    case 1:
        return p[fl->off];
    case 2:
        memcpy(&v2, p + fl->off, 2);
        return v2;
    case 4:
        memcpy(&v4, p + fl->off, 4);
        return v4;
    default:
        memcpy(&v8, p + fl->off, 8);
        return v8;
    }
}

static void set_field(uint8_t *p, const Field *fl, uint64_t v)
{
    uint64_t v8 = v;
    uint32_t v4 = v;
    uint16_t v2 = v;

    switch (fl->size) {
    case 1:
        p[fl->off] = v;
        break;
    case 2:
        memcpy(p + fl->off, &v2, 2);
        break;
    case 4:
        memcpy(p + fl->off, &v4, 4);
        break;
    default:
        memcpy(p + fl->off, &v8, 8);
        break;
    }
}

static const uint8_t some_tags[3][16] = {
    { 0x11 },
    { 0x22 },
    { [15] = 0xff },
};

/* A new tag for field @fl of entry @p of @a */
static void mutate_tag(CXLDCSnapshot *s, SnapArray *a, uint8_t *p,
                       const Field *fl, FzIn *in)
{
    uint8_t mode = fz_u8(in);
    uint8_t *tag = p + fl->off;
    uint32_t k;

    switch (mode % 6) {
    case 0:
        fz_bytes(in, tag, 16);
        break;
    case 1:
        memset(tag, 0, 16);
        break;
    case 2:
        memcpy(tag, some_tags[(mode >> 4) % 3], 16);
        break;
    case 3:
        /* Another extent's: shared tags */
        if (s->nr_extents) {
            k = fz_u8(in) % s->nr_extents;
            memcpy(tag, s->extents[k].tag, 16);
        }
        break;
    case 4:
        tag[fz_u8(in) % 16] ^= 1 << (mode >> 5);
        break;
    case 5:
        /* Another entry of the same array's */
        k = fz_u8(in) % *a->n;
        memmove(tag, entry(a, k) + fl->off, 16);
        break;
    }
}

/* A new value for field @fl (@old now) of an entry of @a */
static uint64_t mutate_value(CXLDCSnapshot *s, SnapArray *a, const Field *fl,
                             uint64_t old, FzIn *in)
{
    uint8_t mode = fz_u8(in);
    const CXLDCSavedRegion *r = s->nr_regions ?
        &s->regions[(mode >> 4) % s->nr_regions] : NULL;
    uint64_t bs = r && r->block_size ? r->block_size : 64;
    uint64_t base = r ? r->base : 0, len = r ? r->len : 0;

    switch (mode % 12) {
    case 0:
        return fz_u64(in);
    case 1:
        return old + (int8_t)fz_u8(in);
    case 2:
        return old + (int64_t)(int8_t)fz_u8(in) * bs;
    case 3:
        return old ^ (1ULL << (fz_u8(in) % (fl->size * 8)));
    case 4:
        return 0;
    case 5:
        return UINT64_MAX;
    case 6:
        return a && *a->n ? get_field(entry(a, fz_u8(in) % *a->n), fl) : old;
    case 7:
        switch (fz_u8(in) % 6) {
        case 0:
            return base;
        case 1:
            return base + len;
        case 2:
            return base + len - bs;
        case 3:
            return base - bs;
        case 4:
            return len;
        default:
            return len + bs;
        }
    case 8:
        return old * 2;
    case 9:
        return old / 2;
    case 10:
        return fz_u8(in);
    default:
        return 1ULL << (fz_u8(in) % 64);
    }
}

/* Delete, duplicate, swap or insert entries; allocations stay exact. */
static void mutate_shape(SnapArray *a, FzIn *in, uint8_t op)
{
    uint32_t n = *a->n;
    uint32_t i = fz_u8(in), j = fz_u8(in);
    g_autofree uint8_t *tmp = g_malloc0(a->size);

    switch (op & 3) {
    case 0:
        if (n) {
            i %= n;
            memmove(entry(a, i), entry(a, i + 1), (n - i - 1) * a->size);
            *a->p = g_realloc_n(*a->p, n - 1, a->size);
            *a->n = n - 1;
        }
        break;
    case 1:
    case 3:
        if (n < MAX_ENTRIES && ((op & 3) == 3 || n)) {
            if ((op & 3) == 1) {
                memcpy(tmp, entry(a, i % n), a->size);
            }
            j %= n + 1;
            *a->p = g_realloc_n(*a->p, n + 1, a->size);
            memmove(entry(a, j + 1), entry(a, j), (n - j) * a->size);
            memcpy(entry(a, j), tmp, a->size);
            *a->n = n + 1;
        }
        break;
    case 2:
        if (n) {
            i %= n;
            j %= n;
            memcpy(tmp, entry(a, i), a->size);
            memmove(entry(a, i), entry(a, j), a->size);
            memcpy(entry(a, j), tmp, a->size);
        }
        break;
    }
}

static void mutate(CXLDCSnapshot *s, FzIn *in)
{
    SnapArray arrays[NR_ARRAYS];
    SnapArray *a;
    uint8_t sel = fz_u8(in);
    const Field *fl;
    uint8_t *p;

    snap_arrays(s, arrays);
    if (sel % 8 == 7) {
        mutate_shape(&arrays[(sel >> 3) % NR_ARRAYS], in, fz_u8(in));
        return;
    }
    if (sel % 8 == 6) {
        fl = &scalar_fields[fz_u8(in) % ARRAY_SIZE(scalar_fields)];
        set_field((uint8_t *)s, fl,
                  mutate_value(s, NULL, fl, get_field((uint8_t *)s, fl), in));
        return;
    }
    a = &arrays[sel % 8];
    if (!*a->n) {
        return;
    }
    p = entry(a, fz_u8(in) % *a->n);
    fl = &a->fields[fz_u8(in) % a->nr_fields];
    if (fl->size == 16) {
        mutate_tag(s, a, p, fl, in);
    } else {
        set_field(p, fl, mutate_value(s, a, fl, get_field(p, fl), in));
    }
}

static int saved_dpa_cmp(const void *a, const void *b)
{
    const CXLDCSavedExtent *const *x = a, *const *y = b;

    return (*x)->dpa < (*y)->dpa ? -1 : (*x)->dpa > (*y)->dpa;
}

/*
 * @out, saved from the state @in loaded into, must be @in: the same
 * entries, the extents in the order of cxl_dc_save(): the accepted ones
 * by DPA, then for each group its pending ones in offer order and its
 * staged ones by DPA.
 */
static void check_round_trip(const CXLDCSnapshot *in,
                             const CXLDCSnapshot *out)
{
    g_autofree const CXLDCSavedExtent **order =
        g_new0(const CXLDCSavedExtent *, MAX(in->nr_extents, 1));
    uint32_t i, g, n = 0, first;

    FZ_CHECK(in->nr_regions == out->nr_regions &&
             in->nr_extents == out->nr_extents &&
             in->nr_groups == out->nr_groups &&
             in->nr_releases == out->nr_releases &&
             in->nr_ranges == out->nr_ranges &&
             in->nr_records == out->nr_records, "round trip: counts"
             " %u/%u/%u/%u/%u/%u loaded, %u/%u/%u/%u/%u/%u saved",
             in->nr_regions, in->nr_extents, in->nr_groups,
             in->nr_releases, in->nr_ranges, in->nr_records,
             out->nr_regions, out->nr_extents, out->nr_groups,
             out->nr_releases, out->nr_ranges, out->nr_records);
    FZ_CHECK(in->generation == out->generation &&
             in->next_group_id == out->next_group_id &&
             in->next_release_id == out->next_release_id, "round trip:"
             " generation or next ids differ");
    for (i = 0; i < in->nr_regions; i++) {
        FZ_CHECK(in->regions[i].base == out->regions[i].base &&
                 in->regions[i].len == out->regions[i].len &&
                 in->regions[i].block_size == out->regions[i].block_size,
                 "round trip: region %u differs", i);
    }

    for (i = 0; i < in->nr_extents; i++) {
        if (in->extents[i].kind == CXL_DC_SAVED_ACCEPTED) {
            order[n++] = &in->extents[i];
        }
    }
    qsort(order, n, sizeof(*order), saved_dpa_cmp);
    for (g = 0; g < in->nr_groups; g++) {
        for (i = 0; i < in->nr_extents; i++) {
            if (in->extents[i].kind == CXL_DC_SAVED_PENDING &&
                in->extents[i].group == g) {
                order[n++] = &in->extents[i];
            }
        }
        first = n;
        for (i = 0; i < in->nr_extents; i++) {
            if (in->extents[i].kind == CXL_DC_SAVED_STAGED &&
                in->extents[i].group == g) {
                order[n++] = &in->extents[i];
            }
        }
        qsort(order + first, n - first, sizeof(*order), saved_dpa_cmp);
    }
    FZ_CHECK(n == in->nr_extents, "round trip: %u of %u loaded extents"
             " have a known kind and group", n, in->nr_extents);
    for (i = 0; i < n; i++) {
        const CXLDCSavedExtent *x = order[i], *y = &out->extents[i];

        FZ_CHECK(x->dpa == y->dpa && x->len == y->len &&
                 !memcmp(x->tag, y->tag, 16) &&
                 x->shared_seq == y->shared_seq && x->kind == y->kind &&
                 (x->kind == CXL_DC_SAVED_ACCEPTED || x->group == y->group),
                 "round trip: extent %u saved as dpa 0x%" PRIx64 " len 0x%"
                 PRIx64 " kind %u group %u, expected dpa 0x%" PRIx64
                 " len 0x%" PRIx64 " kind %u group %u", i, y->dpa, y->len,
                 y->kind, y->group, x->dpa, x->len, x->kind, x->group);
    }
    for (i = 0; i < in->nr_groups; i++) {
        FZ_CHECK(in->groups[i].id == out->groups[i].id &&
                 in->groups[i].host_id == out->groups[i].host_id &&
                 in->groups[i].region_id == out->groups[i].region_id,
                 "round trip: group %u differs", i);
    }
    for (i = 0; i < in->nr_releases; i++) {
        const CXLDCSavedRelease *x = &in->releases[i], *y = &out->releases[i];

        FZ_CHECK(x->id == y->id && x->host_id == y->host_id &&
                 x->region_id == y->region_id &&
                 !!x->sanitize == y->sanitize && x->nr_ranges == y->nr_ranges,
                 "round trip: release request %u differs", i);
    }
    for (i = 0; i < in->nr_ranges; i++) {
        FZ_CHECK(in->ranges[i].dpa == out->ranges[i].dpa &&
                 in->ranges[i].len == out->ranges[i].len,
                 "round trip: release range %u differs", i);
    }
    for (i = 0; i < in->nr_records; i++) {
        const CXLDCSavedRecord *x = &in->records[i], *y = &out->records[i];

        FZ_CHECK(x->type == y->type && x->flags == y->flags &&
                 x->region_id == y->region_id && x->host_id == y->host_id &&
                 x->dpa == y->dpa && x->len == y->len &&
                 !memcmp(x->tag, y->tag, 16) &&
                 x->shared_seq == y->shared_seq &&
                 x->extents_avail == y->extents_avail &&
                 x->tags_avail == y->tags_avail,
                 "round trip: record %u differs", i);
    }
}

typedef struct DevConfig {
    uint8_t layout, max_extents, tags;
} DevConfig;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { .p = data, .n = size };
    DevConfig sc, dcfg;
    FzDC src, dst_dev, *dst = &dst_dev;
    CXLDCSnapshot snap = {};
    uint8_t d;
    unsigned k;
    FzIn ops;

    sc.layout = fz_u8(&in) & 3;
    sc.max_extents = fz_u8(&in);
    sc.tags = fz_u8(&in);
    dcfg = sc;
    d = fz_u8(&in);
    if (d & 0x80) {
        dcfg.layout = d & 3;
    }
    if (d & 0x40) {
        dcfg.max_extents = fz_u8(&in);
    }
    if (d & 0x20) {
        dcfg.tags = fz_u8(&in);
    }

    fz_dc_make(&src, sc.layout, sc.max_extents, sc.tags);
    ops = fz_sub(&in, fz_u16(&in));
    while (!fz_empty(&ops)) {
        fz_op(&src, &ops);
    }
    if (d & 0x10) {
        dst = &src;
        dcfg = sc;
    } else {
        fz_dc_make(dst, dcfg.layout, dcfg.max_extents, dcfg.tags);
    }
    ops = fz_sub(&in, fz_u8(&in));
    while (!fz_empty(&ops)) {
        fz_op(dst, &ops);
    }

    cxl_dc_save(&src.dc, &snap);
    k = fz_u8(&in) % 32;
    for (unsigned i = 0; i < k; i++) {
        mutate(&snap, &in);
    }

    if (fz_load(dst, &snap)) {
        CXLDCSnapshot again = {};
        FzDC fresh;

        cxl_dc_save(&dst->dc, &again);
        check_round_trip(&snap, &again);
        /* What a device saves, a like device loads to the same state */
        fz_dc_make(&fresh, dcfg.layout, dcfg.max_extents, dcfg.tags);
        FZ_CHECK(fz_load(&fresh, &again), "a saved state does not load");
        FZ_CHECK(fz_same_state(dst, &fresh), "a saved state loads to"
                 " another state");
        fz_dc_teardown(&fresh);
        cxl_dc_snapshot_free(&again);
        if (!k && dst != &src && !memcmp(&sc, &dcfg, sizeof(sc))) {
            FZ_CHECK(fz_same_state(&src, dst), "migration between like"
                     " devices changed the state");
        }
    }
    cxl_dc_snapshot_free(&snap);

    /* The destination goes on: accept, release, list, ... */
    while (!fz_empty(&in)) {
        fz_op(dst, &in);
    }
    if (dst != &src) {
        fz_dc_teardown(dst);
    }
    fz_dc_teardown(&src);
    return 0;
}
