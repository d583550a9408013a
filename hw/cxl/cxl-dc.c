/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * CXL Dynamic Capacity engine: regions, accepted extents, pending add
 * groups, release requests and queued event records of one Dynamic
 * Capacity Device (CXL r3.1 sections 7.6.7.6.5, 7.6.7.6.6 and 8.2.9.9.9).
 *
 * Accepted extents live in one interval tree per region and a bitmap of
 * accepted blocks per region (for the guest data path); pending extents
 * of every group live in one interval tree, so that every "what overlaps
 * this range" question costs O(log n).  Requests are validated in full
 * before anything changes.
 *
 * The engine runs under the BQL: QMP, the mailbox and the memory window
 * accesses that consult cxl_dc_is_backed() all hold it.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "qemu/range.h"
#include "qapi/error.h"
#include "hw/cxl/cxl_dc.h"

#define NODE_EXTENT(n) container_of(n, CXLDCExtent, node)

static const QemuUUID null_tag;

/*
 * Tags: a count of the extents, pending or accepted, that carry each
 * non-null tag.  The key is the first member of its value.
 */
typedef struct DCTagRef {
    QemuUUID tag;
    uint32_t count;
} DCTagRef;

static gboolean tag_equal(gconstpointer a, gconstpointer b)
{
    return qemu_uuid_is_equal(a, b);
}

static void tag_ref(CXLDCState *dc, const QemuUUID *tag)
{
    DCTagRef *ref;

    if (qemu_uuid_is_null(tag)) {
        return;
    }
    ref = g_hash_table_lookup(dc->tags, tag);
    if (!ref) {
        ref = g_new0(DCTagRef, 1);
        ref->tag = *tag;
        g_hash_table_insert(dc->tags, &ref->tag, ref);
    }
    ref->count++;
}

static void tag_unref(CXLDCState *dc, const QemuUUID *tag)
{
    DCTagRef *ref;

    if (qemu_uuid_is_null(tag)) {
        return;
    }
    ref = g_hash_table_lookup(dc->tags, tag);
    if (ref && !--ref->count) {
        g_hash_table_remove(dc->tags, tag);
    }
}

static bool tag_in_use(CXLDCState *dc, const QemuUUID *tag)
{
    return g_hash_table_contains(dc->tags, tag);
}

uint32_t cxl_dc_extents_avail(CXLDCState *dc)
{
    CXLDCGroup *g = QTAILQ_FIRST(&dc->groups);
    uint64_t used = (uint64_t)dc->nr_accepted + dc->nr_pending;

    /*
     * Only the oldest group is answered in parts.  What its parts have
     * accepted so far may be more extents than it offered (pieces of
     * one extent): keep room for them, or a later add could take it and
     * leave the host unable to send the last part.
     */
    if (g && g->nr_staged > g->nr_extents) {
        used += g->nr_staged - g->nr_extents;
    }
    return used >= dc->max_extents ? 0 : dc->max_extents - used;
}

uint32_t cxl_dc_tags_avail(CXLDCState *dc)
{
    uint32_t used = g_hash_table_size(dc->tags);

    return used >= dc->max_tags ? 0 : dc->max_tags - used;
}

/* Extents */

static CXLDCExtent *extent_new(uint64_t dpa, uint64_t len, uint8_t rid,
                               const QemuUUID *tag, uint16_t shared_seq)
{
    CXLDCExtent *e = g_new0(CXLDCExtent, 1);

    e->node.start = dpa;
    e->node.last = dpa + len - 1;
    e->region_id = rid;
    e->tag = tag ? *tag : null_tag;
    e->shared_seq = shared_seq;
    return e;
}

static void accepted_insert(CXLDCState *dc, CXLDCExtent *e)
{
    CXLDCRegion *r = &dc->regions[e->region_id];

    interval_tree_insert(&e->node, &r->accepted);
    bitmap_set(r->backed, (e->node.start - r->base) / r->block_size,
               cxl_dc_extent_len(e) / r->block_size);
    r->nr_accepted++;
    dc->nr_accepted++;
    tag_ref(dc, &e->tag);
}

static void accepted_remove(CXLDCState *dc, CXLDCExtent *e)
{
    CXLDCRegion *r = &dc->regions[e->region_id];

    interval_tree_remove(&e->node, &r->accepted);
    bitmap_clear(r->backed, (e->node.start - r->base) / r->block_size,
                 cxl_dc_extent_len(e) / r->block_size);
    r->nr_accepted--;
    dc->nr_accepted--;
    tag_unref(dc, &e->tag);
}

CXLDCExtent *cxl_dc_accepted_first(CXLDCRegion *r)
{
    IntervalTreeNode *n = interval_tree_iter_first(&r->accepted, 0,
                                                   UINT64_MAX);

    return n ? NODE_EXTENT(n) : NULL;
}

CXLDCExtent *cxl_dc_accepted_next(CXLDCExtent *e)
{
    IntervalTreeNode *n = interval_tree_iter_next(&e->node, 0, UINT64_MAX);

    return n ? NODE_EXTENT(n) : NULL;
}

static CXLDCExtent *tree_first(IntervalTreeRoot *root, uint64_t start,
                               uint64_t last)
{
    IntervalTreeNode *n = interval_tree_iter_first(root, start, last);

    return n ? NODE_EXTENT(n) : NULL;
}

static CXLDCExtent *tree_next(CXLDCExtent *e, uint64_t start, uint64_t last)
{
    IntervalTreeNode *n = interval_tree_iter_next(&e->node, start, last);

    return n ? NODE_EXTENT(n) : NULL;
}

/* The generation moves on every change of the accepted list. */
static void accepted_changed(CXLDCState *dc)
{
    dc->generation++;
    dc->index_valid = false;
}

/* Records */

static void record_queue(CXLDCState *dc, CXLDCRecordType type,
                         uint16_t host_id, uint8_t rid, uint64_t dpa,
                         uint64_t len, const QemuUUID *tag,
                         uint16_t shared_seq, bool more)
{
    CXLDCRecord *rec = g_new0(CXLDCRecord, 1);

    rec->type = type;
    rec->flags = more ? CXL_DC_EVENT_FLAG_MORE : 0;
    rec->host_id = host_id;
    rec->region_id = rid;
    rec->dpa = dpa;
    rec->len = len;
    rec->tag = *tag;
    rec->shared_seq = shared_seq;
    rec->extents_avail = cxl_dc_extents_avail(dc);
    rec->tags_avail = cxl_dc_tags_avail(dc);
    QSIMPLEQ_INSERT_TAIL(&dc->records, rec, next);
    dc->nr_records++;
}

static void records_queued(CXLDCState *dc)
{
    if (dc->ops && dc->ops->records_queued) {
        dc->ops->records_queued(dc->opaque);
    }
}

static void notify(CXLDCState *dc, CXLDCNoticeType type, uint16_t host_id,
                   uint8_t rid, CXLDCReleaseReason reason, GArray *extents,
                   GArray *declined)
{
    CXLDCNotice n = {
        .type = type,
        .host_id = host_id,
        .region_id = rid,
        .reason = reason,
        .nr_extents = extents ? extents->len : 0,
        .extents = extents ? (CXLDCExtentRaw *)extents->data : NULL,
        .nr_declined = declined ? declined->len : 0,
        .declined = declined ? (CXLDCExtentRaw *)declined->data : NULL,
    };

    if (dc->ops && dc->ops->notify) {
        dc->ops->notify(dc->opaque, &n);
    }
}

/* Append [start, last] with @tag and @seq to @list of CXLDCExtentRaw. */
static void raw_append(GArray *list, uint64_t start, uint64_t last,
                       const QemuUUID *tag, uint16_t seq)
{
    CXLDCExtentRaw raw = {
        .start_dpa = start,
        .len = last - start + 1,
        .shared_seq = seq,
    };

    if (tag) {
        memcpy(raw.tag, tag->data, sizeof(raw.tag));
    }
    g_array_append_val(list, raw);
}

CXLDCRecord *cxl_dc_record_peek(CXLDCState *dc)
{
    return QSIMPLEQ_FIRST(&dc->records);
}

void cxl_dc_record_pop(CXLDCState *dc)
{
    CXLDCRecord *rec = QSIMPLEQ_FIRST(&dc->records);

    if (rec) {
        QSIMPLEQ_REMOVE_HEAD(&dc->records, next);
        dc->nr_records--;
        g_free(rec);
    }
}

/* Set up and tear down */

void cxl_dc_init(CXLDCState *dc, uint32_t max_extents, uint32_t max_tags,
                 const CXLDCOps *ops, void *opaque)
{
    memset(dc, 0, sizeof(*dc));
    dc->max_extents = max_extents;
    dc->max_tags = max_tags;
    dc->nr_hosts = 1;
    QTAILQ_INIT(&dc->groups);
    QTAILQ_INIT(&dc->releases);
    QSIMPLEQ_INIT(&dc->records);
    dc->tags = g_hash_table_new_full(qemu_uuid_hash, tag_equal, g_free, NULL);
    dc->ops = ops;
    dc->opaque = opaque;
}

bool cxl_dc_add_region(CXLDCState *dc, uint64_t base, uint64_t decode_len,
                       uint64_t len, uint64_t block_size,
                       uint32_t dsmad_handle, bool shareable, Error **errp)
{
    unsigned i = dc->nr_regions;
    CXLDCRegion *r, *prev = i ? &dc->regions[i - 1] : NULL;
    Range range;

    if (i >= CXL_DC_MAX_REGIONS) {
        error_setg(errp, "region %u: a device has at most %u DC regions",
                   i, CXL_DC_MAX_REGIONS);
        return false;
    }
    if (block_size < CXL_DC_MIN_BLOCK_SIZE || !is_power_of_2(block_size)) {
        error_setg(errp, "region %u: block size 0x%" PRIx64 " is not a"
                   " power of 2 of at least 0x%x", i, block_size,
                   CXL_DC_MIN_BLOCK_SIZE);
        return false;
    }
    if (base % CXL_DC_REGION_ALIGN || base % block_size) {
        error_setg(errp, "region %u: base 0x%" PRIx64 " is not aligned to"
                   " 256 MiB and to block size 0x%" PRIx64, i, base,
                   block_size);
        return false;
    }
    if (!len || len % block_size) {
        error_setg(errp, "region %u: length 0x%" PRIx64 " is not a non-zero"
                   " multiple of block size 0x%" PRIx64, i, len, block_size);
        return false;
    }
    if (decode_len % CXL_DC_REGION_ALIGN || len > decode_len) {
        error_setg(errp, "region %u: decode length 0x%" PRIx64 " is not a"
                   " multiple of 256 MiB of at least length 0x%" PRIx64,
                   i, decode_len, len);
        return false;
    }
    if (range_init(&range, base, decode_len)) {
        error_setg(errp, "region %u: base 0x%" PRIx64 " + decode length 0x%"
                   PRIx64 " wraps", i, base, decode_len);
        return false;
    }
    if (prev && base < prev->base + prev->decode_len) {
        error_setg(errp, "region %u: base 0x%" PRIx64 " is below the end"
                   " 0x%" PRIx64 " of region %u", i, base,
                   prev->base + prev->decode_len, i - 1);
        return false;
    }
    r = &dc->regions[i];
    *r = (CXLDCRegion) {
        .base = base,
        .decode_len = decode_len,
        .len = len,
        .block_size = block_size,
        .supported_block_sizes = block_size,
        .dsmad_handle = dsmad_handle,
        .shareable = shareable,
        .backed = bitmap_new(len / block_size),
    };
    dc->nr_regions++;
    return true;
}

CXLDCStatus cxl_dc_set_block_size(CXLDCState *dc, uint8_t rid,
                                  uint64_t block_size, Error **errp)
{
    CXLDCRegion *r;

    if (rid >= dc->nr_regions) {
        error_setg(errp, "region %u does not exist: the device has %u DC"
                   " regions", rid, dc->nr_regions);
        return CXL_DC_INVALID_INPUT;
    }
    r = &dc->regions[rid];
    if (!is_power_of_2(block_size) ||
        !(block_size & r->supported_block_sizes) ||
        r->len % block_size) {
        error_setg(errp, "region %u: block size 0x%" PRIx64 " is not"
                   " supported", rid, block_size);
        return CXL_DC_INVALID_INPUT;
    }
    if (r->nr_accepted ||
        tree_first(&dc->pending, r->base, r->base + r->len - 1)) {
        error_setg(errp, "region %u: holds extents, so its block size"
                   " cannot change", rid);
        return CXL_DC_UNSUPPORTED;
    }
    if (block_size == r->block_size) {
        return CXL_DC_OK;
    }
    g_free(r->backed);
    r->backed = bitmap_new(r->len / block_size);
    r->block_size = block_size;
    record_queue(dc, CXL_DC_EVENT_REGION_CONFIG_UPDATED, 0, rid, 0, 0,
                 &null_tag, 0, false);
    records_queued(dc);
    return CXL_DC_OK;
}

static void group_free(CXLDCState *dc, CXLDCGroup *g)
{
    IntervalTreeNode *n;
    uint32_t i;

    while ((n = interval_tree_iter_first(&g->staged, 0, UINT64_MAX))) {
        interval_tree_remove(n, &g->staged);
        tag_unref(dc, &NODE_EXTENT(n)->tag);
        g_free(NODE_EXTENT(n));
    }
    for (i = 0; i < g->nr_extents; i++) {
        interval_tree_remove(&g->extents[i]->node, &dc->pending);
        tag_unref(dc, &g->extents[i]->tag);
        g_free(g->extents[i]);
    }
    dc->nr_pending -= g->nr_extents;
    QTAILQ_REMOVE(&dc->groups, g, next);
    g_free(g->extents);
    g_free(g);
}

/* Queue release request @rel, its ranges indexed by DPA. */
static void release_add(CXLDCState *dc, CXLDCRelease *rel)
{
    uint32_t i;

    rel->nodes = g_new0(CXLDCReleaseRange, rel->nr_ranges);
    for (i = 0; i < rel->nr_ranges; i++) {
        rel->nodes[i].rel = rel;
        rel->nodes[i].node.start = rel->ranges[i].start_dpa;
        rel->nodes[i].node.last = rel->ranges[i].start_dpa +
                                  rel->ranges[i].len - 1;
        interval_tree_insert(&rel->nodes[i].node, &dc->releasing);
    }
    QTAILQ_INSERT_TAIL(&dc->releases, rel, next);
}

static void release_free(CXLDCState *dc, CXLDCRelease *rel)
{
    uint32_t i;

    for (i = 0; i < rel->nr_ranges; i++) {
        interval_tree_remove(&rel->nodes[i].node, &dc->releasing);
    }
    QTAILQ_REMOVE(&dc->releases, rel, next);
    g_free(rel->nodes);
    g_free(rel->ranges);
    g_free(rel);
}

/* The first release request range that overlaps [start, last], or NULL */
static CXLDCReleaseRange *releasing_first(CXLDCState *dc, uint64_t start,
                                          uint64_t last)
{
    IntervalTreeNode *n = interval_tree_iter_first(&dc->releasing, start,
                                                   last);

    return n ? container_of(n, CXLDCReleaseRange, node) : NULL;
}

void cxl_dc_clear(CXLDCState *dc)
{
    CXLDCExtent *e;
    unsigned i;
    bool changed = false;

    while (!QTAILQ_EMPTY(&dc->groups)) {
        group_free(dc, QTAILQ_FIRST(&dc->groups));
    }
    while (!QTAILQ_EMPTY(&dc->releases)) {
        release_free(dc, QTAILQ_FIRST(&dc->releases));
    }
    while (cxl_dc_record_peek(dc)) {
        cxl_dc_record_pop(dc);
    }
    for (i = 0; i < dc->nr_regions; i++) {
        while ((e = cxl_dc_accepted_first(&dc->regions[i]))) {
            accepted_remove(dc, e);
            g_free(e);
            changed = true;
        }
    }
    if (changed) {
        accepted_changed(dc);
    }
}

/* Tell that a reset withdrew request @id; @extents are CXLDCExtentRaw. */
static void notify_cancelled(CXLDCState *dc, CXLDCNoticeType type,
                             uint64_t id, uint16_t host_id, uint8_t rid,
                             GArray *extents)
{
    CXLDCNotice n = {
        .type = type,
        .host_id = host_id,
        .region_id = rid,
        .id = id,
        .nr_extents = extents->len,
        .extents = (CXLDCExtentRaw *)extents->data,
    };

    if (dc->ops && dc->ops->notify) {
        dc->ops->notify(dc->opaque, &n);
    }
}

/*
 * The host that comes back from a reset has no record of the requests
 * in flight, and the event log that carried them starts empty: nobody
 * will answer them.  The accepted extents stay: the device controls
 * the allocation of its blocks and reports it in its extent list (CXL
 * r3.1 section 9.13.3), which a host reads again with Get Dynamic
 * Capacity Extent List.  A response in parts that was not finished
 * accepted nothing, so staged ranges go with their group.
 */
void cxl_dc_reset(CXLDCState *dc)
{
    CXLDCGroup *g;
    CXLDCRelease *rel;

    while ((g = QTAILQ_FIRST(&dc->groups))) {
        g_autoptr(GArray) offered = g_array_new(false, false,
                                                sizeof(CXLDCExtentRaw));
        uint64_t id = g->id;
        uint16_t host_id = g->host_id;
        uint8_t rid = g->region_id;
        uint32_t i;

        for (i = 0; i < g->nr_extents; i++) {
            CXLDCExtent *e = g->extents[i];

            raw_append(offered, e->node.start, e->node.last, &e->tag,
                       e->shared_seq);
        }
        group_free(dc, g);
        notify_cancelled(dc, CXL_DC_NOTICE_ADD_CANCELLED, id, host_id, rid,
                         offered);
    }
    while ((rel = QTAILQ_FIRST(&dc->releases))) {
        g_autoptr(GArray) asked = g_array_new(false, false,
                                              sizeof(CXLDCExtentRaw));
        uint64_t id = rel->id;
        uint16_t host_id = rel->host_id;
        uint8_t rid = rel->region_id;

        g_array_append_vals(asked, rel->ranges, rel->nr_ranges);
        release_free(dc, rel);
        notify_cancelled(dc, CXL_DC_NOTICE_RELEASE_CANCELLED, id, host_id,
                         rid, asked);
    }
    while (cxl_dc_record_peek(dc)) {
        cxl_dc_record_pop(dc);
    }
}

void cxl_dc_cleanup(CXLDCState *dc)
{
    unsigned i;

    if (!dc->tags) {
        return;                 /* never initialized */
    }
    cxl_dc_clear(dc);
    for (i = 0; i < dc->nr_regions; i++) {
        g_free(dc->regions[i].backed);
    }
    g_hash_table_destroy(dc->tags);
    dc->tags = NULL;
    g_free(dc->index);
    dc->index = NULL;
    dc->index_valid = false;
    dc->nr_regions = 0;
}

/* Lookups */

CXLDCRegion *cxl_dc_find_region(CXLDCState *dc, uint64_t dpa, uint64_t len)
{
    unsigned i;
    Range range, region;

    if (!len || range_init(&range, dpa, len)) {
        return NULL;
    }
    for (i = 0; i < dc->nr_regions; i++) {
        range_init_nofail(&region, dc->regions[i].base, dc->regions[i].len);
        if (range_contains_range(&region, &range)) {
            return &dc->regions[i];
        }
    }
    return NULL;
}

bool cxl_dc_is_backed(CXLDCState *dc, uint64_t dpa, uint64_t len)
{
    CXLDCRegion *r = cxl_dc_find_region(dc, dpa, len);
    unsigned long first, end;

    if (!r) {
        return false;
    }
    first = (dpa - r->base) / r->block_size;
    end = (dpa - r->base + len - 1) / r->block_size + 1;
    return find_next_zero_bit(r->backed, end, first) == end;
}

/*
 * Bytes of [start, last] covered by extents of @root; extents never
 * overlap each other within one tree.
 */
static uint64_t tree_coverage(IntervalTreeRoot *root, uint64_t start,
                              uint64_t last)
{
    CXLDCExtent *e;
    uint64_t covered = 0;

    for (e = tree_first(root, start, last); e;
         e = tree_next(e, start, last)) {
        covered += MIN(e->node.last, last) - MAX(e->node.start, start) + 1;
    }
    return covered;
}

/* Validation shared by the requests */

typedef struct DCSpan {
    uint64_t start;
    uint64_t last;
    uint32_t index;             /* position in the request */
} DCSpan;

static int span_cmp(const void *a, const void *b)
{
    const DCSpan *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Sort @spans by start and report the first pair that overlaps; return
 * false and set @a, @b to their request indexes when one does.
 */
static bool spans_disjoint(DCSpan *spans, uint32_t n, uint32_t *a,
                           uint32_t *b)
{
    uint32_t i;

    qsort(spans, n, sizeof(*spans), span_cmp);
    for (i = 1; i < n; i++) {
        if (spans[i].start <= spans[i - 1].last) {
            *a = MIN(spans[i - 1].index, spans[i].index);
            *b = MAX(spans[i - 1].index, spans[i].index);
            return false;
        }
    }
    return true;
}

static bool check_host_region(CXLDCState *dc, uint16_t host_id, uint8_t rid,
                              Error **errp)
{
    if (host_id >= dc->nr_hosts) {
        error_setg(errp, "host %u does not exist: the device has %u host%s",
                   host_id, dc->nr_hosts, dc->nr_hosts == 1 ? "" : "s");
        return false;
    }
    if (rid >= dc->nr_regions) {
        error_setg(errp, "region %u does not exist: the device has %u DC"
                   " region%s", rid, dc->nr_regions,
                   dc->nr_regions == 1 ? "" : "s");
        return false;
    }
    return true;
}

/*
 * Check the ranges of a QMP or FM request against region @r and turn
 * them into DPA spans: non-zero, block-aligned, not wrapping, inside
 * the region, not overlapping each other.
 */
static bool check_ranges(CXLDCRegion *r, uint8_t rid, const CXLDCRange *ranges,
                         uint32_t n, DCSpan *spans, Error **errp)
{
    uint32_t i, a, b;
    Range range;

    if (!n) {
        error_setg(errp, "the extent list is empty");
        return false;
    }
    for (i = 0; i < n; i++) {
        const CXLDCRange *x = &ranges[i];

        if (!x->len) {
            error_setg(errp, "extent %u: length is 0", i);
            return false;
        }
        if (x->offset % r->block_size || x->len % r->block_size) {
            error_setg(errp, "extent %u: offset 0x%" PRIx64 " or length 0x%"
                       PRIx64 " is not aligned to block size 0x%" PRIx64,
                       i, x->offset, x->len, r->block_size);
            return false;
        }
        if (range_init(&range, x->offset, x->len) ||
            range_upb(&range) >= r->len) {
            error_setg(errp, "extent %u: offset 0x%" PRIx64 " length 0x%"
                       PRIx64 " extends beyond region %u of length 0x%"
                       PRIx64, i, x->offset, x->len, rid, r->len);
            return false;
        }
        spans[i].start = r->base + x->offset;
        spans[i].last = spans[i].start + x->len - 1;
        spans[i].index = i;
    }
    if (!spans_disjoint(spans, n, &a, &b)) {
        error_setg(errp, "extent %u: overlaps extent %u of the same request",
                   b, a);
        return false;
    }
    return true;
}

/* Adding capacity */

/*
 * Free capacity of region @r, neither accepted nor pending, in DPA order:
 * call @fn on each free span until it returns false.
 */
static void for_each_free(CXLDCState *dc, CXLDCRegion *r,
                          bool (*fn)(uint64_t start, uint64_t last,
                                     void *opaque),
                          void *opaque)
{
    uint64_t last = r->base + r->len - 1;
    uint64_t pos = r->base;
    CXLDCExtent *a = tree_first(&r->accepted, r->base, last);
    CXLDCExtent *p = tree_first(&dc->pending, r->base, last);

    while (pos <= last) {
        CXLDCExtent *next = NULL;

        /* The used extent that starts first at or after pos */
        if (a && (!p || a->node.start < p->node.start)) {
            next = a;
            a = tree_next(a, r->base, last);
        } else if (p) {
            next = p;
            p = tree_next(p, r->base, last);
        }
        if (!next) {
            fn(pos, last, opaque);
            return;
        }
        if (next->node.start > pos && !fn(pos, next->node.start - 1, opaque)) {
            return;
        }
        if (next->node.last == last) {
            return;
        }
        pos = MAX(pos, next->node.last + 1);
    }
}

typedef struct DCChoose {
    bool contiguous;
    uint64_t want;              /* bytes still to find */
    uint64_t largest;           /* contiguous: largest free span seen */
    uint64_t found;             /* free: bytes found */
    GArray *spans;              /* DCSpan */
} DCChoose;

static bool choose_span(uint64_t start, uint64_t last, void *opaque)
{
    DCChoose *c = opaque;
    uint64_t size = last - start + 1;
    DCSpan s = { .start = start };

    if (c->contiguous) {
        c->largest = MAX(c->largest, size);
        if (size < c->want) {
            return true;
        }
    }
    size = MIN(size, c->want);
    s.last = start + size - 1;
    s.index = c->spans->len;
    g_array_append_val(c->spans, s);
    c->want -= size;
    c->found += size;
    return c->want != 0;
}

/* Pick extents for a free or contiguous add of @len bytes of region @r. */
static GArray *choose_extents(CXLDCState *dc, const CXLDCAddRequest *req,
                              CXLDCRegion *r, Error **errp)
{
    bool contiguous = req->policy == CXL_DC_SELECT_CONTIGUOUS;
    DCChoose c = {
        .contiguous = contiguous,
        .want = req->len,
        .spans = g_array_new(false, false, sizeof(DCSpan)),
    };

    if (req->nr_ranges) {
        error_setg(errp, "%s selection takes a length, not an extent list",
                   contiguous ? "contiguous" : "free");
        goto fail;
    }
    if (!req->len || req->len % r->block_size) {
        error_setg(errp, "length 0x%" PRIx64 " is not a non-zero multiple"
                   " of block size 0x%" PRIx64, req->len, r->block_size);
        goto fail;
    }
    for_each_free(dc, r, choose_span, &c);
    if (c.want) {
        if (contiguous) {
            error_setg(errp, "region %u has no free range of 0x%" PRIx64
                       " bytes: the largest is 0x%" PRIx64 " bytes",
                       req->region_id, req->len, c.largest);
        } else {
            error_setg(errp, "region %u has 0x%" PRIx64 " bytes free, 0x%"
                       PRIx64 " requested", req->region_id, c.found,
                       req->len);
        }
        goto fail;
    }
    return c.spans;

fail:
    g_array_free(c.spans, true);
    return NULL;
}

bool cxl_dc_offer_add(CXLDCState *dc, const CXLDCAddRequest *req,
                      uint64_t *group_id, Error **errp)
{
    g_autoptr(GArray) chosen = NULL;
    g_autofree DCSpan *spans = NULL;
    CXLDCRegion *r;
    CXLDCExtent *e;
    CXLDCGroup *g;
    uint32_t i, n;

    if (!check_host_region(dc, req->host_id, req->region_id, errp)) {
        return false;
    }
    r = &dc->regions[req->region_id];

    switch (req->policy) {
    case CXL_DC_SELECT_SHARED:
        error_setg(errp, "enable-shared-access needs capacity shared with a"
                   " second host, and the device has %u host", dc->nr_hosts);
        return false;
    case CXL_DC_SELECT_FREE:
    case CXL_DC_SELECT_CONTIGUOUS:
        chosen = choose_extents(dc, req, r, errp);
        if (!chosen) {
            return false;
        }
        n = chosen->len;
        spans = g_memdup2(chosen->data, n * sizeof(DCSpan));
        break;
    case CXL_DC_SELECT_PRESCRIPTIVE:
        n = req->nr_ranges;
        spans = g_new0(DCSpan, MAX(n, 1));
        if (!check_ranges(r, req->region_id, req->ranges, n, spans, errp)) {
            return false;
        }
        for (i = 0; i < n; i++) {
            e = tree_first(&r->accepted, spans[i].start, spans[i].last);
            if (e) {
                error_setg(errp, "extent %u: overlaps accepted extent at"
                           " offset 0x%" PRIx64 " length 0x%" PRIx64,
                           spans[i].index, e->node.start - r->base,
                           cxl_dc_extent_len(e));
                return false;
            }
            e = tree_first(&dc->pending, spans[i].start, spans[i].last);
            if (e) {
                error_setg(errp, "extent %u: overlaps pending extent at"
                           " offset 0x%" PRIx64 " length 0x%" PRIx64,
                           spans[i].index, e->node.start - r->base,
                           cxl_dc_extent_len(e));
                return false;
            }
        }
        break;
    default:
        error_setg(errp, "selection policy %d is unknown", req->policy);
        return false;
    }

    if (n > cxl_dc_extents_avail(dc)) {
        error_setg(errp, "%u extents requested, but only %u of %u are"
                   " available", n, cxl_dc_extents_avail(dc),
                   dc->max_extents);
        return false;
    }
    if (req->has_tag && !qemu_uuid_is_null(&req->tag) &&
        !tag_in_use(dc, &req->tag) && !cxl_dc_tags_avail(dc)) {
        error_setg(errp, "the device tracks at most %u tags, all in use",
                   dc->max_tags);
        return false;
    }

    /* Valid: commit.  Offer the extents in DPA order. */
    g = g_new0(CXLDCGroup, 1);
    g->id = dc->next_group_id++;
    g->host_id = req->host_id;
    g->region_id = req->region_id;
    g->nr_extents = n;
    g->extents = g_new0(CXLDCExtent *, n);
    for (i = 0; i < n; i++) {
        e = extent_new(spans[i].start, spans[i].last - spans[i].start + 1,
                       req->region_id, req->has_tag ? &req->tag : NULL, 0);
        e->group = g;
        g->extents[i] = e;
        interval_tree_insert(&e->node, &dc->pending);
        tag_ref(dc, &e->tag);
    }
    dc->nr_pending += n;
    QTAILQ_INSERT_TAIL(&dc->groups, g, next);
    for (i = 0; i < n; i++) {
        e = g->extents[i];
        record_queue(dc, CXL_DC_EVENT_ADD_CAPACITY, g->host_id, g->region_id,
                     e->node.start, cxl_dc_extent_len(e), &e->tag,
                     e->shared_seq, i + 1 < n);
    }
    if (group_id) {
        *group_id = g->id;
    }
    records_queued(dc);
    return true;
}

/* Host side: checks of the ranges of a mailbox payload */

static CXLDCStatus check_host_ranges(CXLDCState *dc,
                                     const CXLDCExtentRaw *ranges, uint32_t n,
                                     DCSpan *spans, Error **errp)
{
    uint32_t i, a, b;
    CXLDCRegion *r;
    Range range;

    for (i = 0; i < n; i++) {
        uint64_t dpa = ranges[i].start_dpa, len = ranges[i].len;

        if (!len) {
            error_setg(errp, "extent %u: length is 0", i);
            return CXL_DC_INVALID_EXTENT_LIST;
        }
        if (range_init(&range, dpa, len)) {
            error_setg(errp, "extent %u: dpa 0x%" PRIx64 " + length 0x%"
                       PRIx64 " wraps", i, dpa, len);
            return CXL_DC_INVALID_PA;
        }
        r = cxl_dc_find_region(dc, dpa, len);
        if (!r) {
            error_setg(errp, "extent %u: dpa 0x%" PRIx64 " length 0x%"
                       PRIx64 " is not inside one DC region", i, dpa, len);
            return CXL_DC_INVALID_PA;
        }
        if ((dpa - r->base) % r->block_size || len % r->block_size) {
            error_setg(errp, "extent %u: dpa 0x%" PRIx64 " or length 0x%"
                       PRIx64 " is not aligned to block size 0x%" PRIx64,
                       i, dpa, len, r->block_size);
            return CXL_DC_INVALID_EXTENT_LIST;
        }
        spans[i].start = dpa;
        spans[i].last = dpa + len - 1;
        spans[i].index = i;
    }
    if (!spans_disjoint(spans, n, &a, &b)) {
        error_setg(errp, "extent %u: overlaps extent %u of the same request",
                   b, a);
        return CXL_DC_INVALID_EXTENT_LIST;
    }
    return CXL_DC_OK;
}

/*
 * Move a group's staged ranges into the accepted set, drop the group and
 * tell what the host accepted and declined.
 */
static void group_complete(CXLDCState *dc, CXLDCGroup *g)
{
    g_autoptr(GArray) accepted = g_array_new(false, false,
                                             sizeof(CXLDCExtentRaw));
    g_autoptr(GArray) declined = g_array_new(false, false,
                                             sizeof(CXLDCExtentRaw));
    uint16_t host_id = g->host_id;
    uint8_t rid = g->region_id;
    IntervalTreeNode *n;
    uint32_t i;

    /* What of each offered extent the host did not take */
    for (i = 0; i < g->nr_extents; i++) {
        CXLDCExtent *e = g->extents[i];
        uint64_t pos = e->node.start;

        for (n = interval_tree_iter_first(&g->staged, e->node.start,
                                          e->node.last);
             n; n = interval_tree_iter_next(n, e->node.start, e->node.last)) {
            if (n->start > pos) {
                raw_append(declined, pos, n->start - 1, &e->tag,
                           e->shared_seq);
            }
            pos = n->last + 1;
        }
        if (pos <= e->node.last) {
            raw_append(declined, pos, e->node.last, &e->tag, e->shared_seq);
        }
    }
    while ((n = interval_tree_iter_first(&g->staged, 0, UINT64_MAX))) {
        CXLDCExtent *e = NODE_EXTENT(n);

        interval_tree_remove(n, &g->staged);
        raw_append(accepted, e->node.start, e->node.last, &e->tag,
                   e->shared_seq);
        /* The staged extent held a tag reference: hand it over. */
        tag_unref(dc, &e->tag);
        accepted_insert(dc, e);
    }
    g->nr_staged = 0;
    group_free(dc, g);
    if (accepted->len) {
        accepted_changed(dc);
        notify(dc, CXL_DC_NOTICE_ACCEPTED, host_id, rid, 0, accepted,
               declined);
    } else {
        notify(dc, CXL_DC_NOTICE_REJECTED, host_id, rid, 0, declined, NULL);
    }
}

CXLDCStatus cxl_dc_host_add_response(CXLDCState *dc,
                                     const CXLDCExtentRaw *ranges,
                                     uint32_t n, bool more, Error **errp)
{
    CXLDCGroup *g = QTAILQ_FIRST(&dc->groups);
    g_autofree DCSpan *spans = g_new0(DCSpan, MAX(n, 1));
    CXLDCStatus ret;
    CXLDCExtent *e;
    uint64_t after;
    uint32_t i;

    if (!g) {
        error_setg(errp, "no add request is pending");
        return CXL_DC_INVALID_PA;
    }
    ret = check_host_ranges(dc, ranges, n, spans, errp);
    if (ret != CXL_DC_OK) {
        return ret;
    }
    for (i = 0; i < n; i++) {
        e = tree_first(&dc->pending, spans[i].start, spans[i].last);
        if (!e || e->group != g || e->node.start > spans[i].start ||
            e->node.last < spans[i].last) {
            error_setg(errp, "extent %u: dpa 0x%" PRIx64 " length 0x%" PRIx64
                       " is not inside one extent of the oldest pending add"
                       " (group %" PRIu64 ")", spans[i].index,
                       spans[i].start, spans[i].last - spans[i].start + 1,
                       g->id);
            return CXL_DC_INVALID_PA;
        }
        if (interval_tree_iter_first(&g->staged, spans[i].start,
                                     spans[i].last)) {
            error_setg(errp, "extent %u: dpa 0x%" PRIx64 " length 0x%" PRIx64
                       " was already accepted by an earlier part of this"
                       " response", spans[i].index, spans[i].start,
                       spans[i].last - spans[i].start + 1);
            return CXL_DC_INVALID_PA;
        }
    }
    /* Extents tracked once the group is answered */
    after = (uint64_t)dc->nr_accepted + dc->nr_pending - g->nr_extents +
            g->nr_staged + n;
    if (after > dc->max_extents) {
        error_setg(errp, "accepting %u extents would track %" PRIu64
                   " extents, more than the %u the device supports",
                   n, after, dc->max_extents);
        return CXL_DC_RESOURCES_EXHAUSTED;
    }

    for (i = 0; i < n; i++) {
        CXLDCExtent *s;

        e = tree_first(&dc->pending, spans[i].start, spans[i].last);
        s = extent_new(spans[i].start, spans[i].last - spans[i].start + 1,
                       e->region_id, &e->tag, e->shared_seq);
        interval_tree_insert(&s->node, &g->staged);
        tag_ref(dc, &s->tag);
        g->nr_staged++;
    }
    if (!more) {
        group_complete(dc, g);
    }
    return CXL_DC_OK;
}

/* Releasing capacity */

/*
 * Change in the number of accepted extents when the sorted, disjoint,
 * fully accepted @spans are removed: an extent cut in the middle leaves
 * two pieces, one released whole leaves none.
 */
static int64_t release_delta(CXLDCState *dc, const DCSpan *spans, uint32_t n)
{
    CXLDCExtent *cur = NULL;
    uint64_t cut_end = 0;
    int64_t delta = 0;
    uint32_t i;

    for (i = 0; i < n; i++) {
        CXLDCRegion *r = cxl_dc_find_region(dc, spans[i].start,
                                            spans[i].last - spans[i].start + 1);
        CXLDCExtent *e;

        for (e = tree_first(&r->accepted, spans[i].start, spans[i].last); e;
             e = tree_next(e, spans[i].start, spans[i].last)) {
            if (e != cur) {
                if (cur && cut_end < cur->node.last) {
                    delta++;    /* piece after the last cut of cur */
                }
                delta--;        /* cur is replaced by its pieces */
                cur = e;
                if (e->node.start < spans[i].start) {
                    delta++;    /* piece before the first cut */
                }
            } else if (cut_end + 1 < spans[i].start) {
                delta++;        /* piece between two cuts */
            }
            cut_end = MIN(spans[i].last, e->node.last);
        }
    }
    if (cur && cut_end < cur->node.last) {
        delta++;
    }
    return delta;
}

/* Remove [start, last], fully accepted, from the accepted set. */
static void release_span(CXLDCState *dc, uint64_t start, uint64_t last)
{
    CXLDCRegion *r = cxl_dc_find_region(dc, start, last - start + 1);
    CXLDCExtent *e;

    while ((e = tree_first(&r->accepted, start, last))) {
        accepted_remove(dc, e);
        if (e->node.start < start) {
            accepted_insert(dc, extent_new(e->node.start,
                                           start - e->node.start,
                                           e->region_id, &e->tag,
                                           e->shared_seq));
        }
        if (e->node.last > last) {
            accepted_insert(dc, extent_new(last + 1, e->node.last - last,
                                           e->region_id, &e->tag,
                                           e->shared_seq));
        }
        g_free(e);
    }
}

/* One notice of @type per region of the sorted @spans */
static void notify_spans(CXLDCState *dc, CXLDCNoticeType type,
                         uint16_t host_id, const DCSpan *spans, uint32_t n,
                         CXLDCReleaseReason reason)
{
    g_autoptr(GArray) list = g_array_new(false, false,
                                         sizeof(CXLDCExtentRaw));
    uint32_t i;

    for (i = 0; i < n; i++) {
        CXLDCRegion *r = cxl_dc_find_region(dc, spans[i].start,
                                            spans[i].last - spans[i].start + 1);

        raw_append(list, spans[i].start, spans[i].last, NULL, 0);
        if (i + 1 == n || spans[i + 1].start >= r->base + r->len) {
            notify(dc, type, host_id, r - dc->regions, reason, list, NULL);
            g_array_set_size(list, 0);
        }
    }
}

/* True when a release request asks to sanitize some of [start, last]. */
static bool sanitize_requested(CXLDCState *dc, uint64_t start, uint64_t last)
{
    IntervalTreeNode *n;

    for (n = interval_tree_iter_first(&dc->releasing, start, last); n;
         n = interval_tree_iter_next(n, start, last)) {
        if (container_of(n, CXLDCReleaseRange, node)->rel->sanitize) {
            return true;
        }
    }
    return false;
}

/*
 * After the sorted @spans left the accepted set: sanitize those that a
 * release request asked to sanitize (all of them when @sanitize) and
 * say so, then retire the release requests none of whose ranges is
 * accepted any more.  All spans are checked before any request retires.
 */
static void release_settle(CXLDCState *dc, uint16_t host_id,
                           const DCSpan *spans, uint32_t n, bool sanitize)
{
    g_autofree DCSpan *clean = g_new0(DCSpan, MAX(n, 1));
    g_autoptr(GPtrArray) candidates = g_ptr_array_new();
    CXLDCRelease *rel;
    uint32_t i, nr_clean = 0;

    for (i = 0; i < n; i++) {
        if (sanitize ||
            sanitize_requested(dc, spans[i].start, spans[i].last)) {
            clean[nr_clean++] = spans[i];
        }
    }
    for (i = 0; i < nr_clean && dc->ops && dc->ops->sanitize; i++) {
        dc->ops->sanitize(dc->opaque, clean[i].start,
                          clean[i].last - clean[i].start + 1);
    }
    notify_spans(dc, CXL_DC_NOTICE_SANITIZED, host_id, clean, nr_clean, 0);

    /* Only requests with a range in the released spans can be done */
    for (i = 0; i < n; i++) {
        IntervalTreeNode *node;

        for (node = interval_tree_iter_first(&dc->releasing, spans[i].start,
                                             spans[i].last);
             node; node = interval_tree_iter_next(node, spans[i].start,
                                                  spans[i].last)) {
            rel = container_of(node, CXLDCReleaseRange, node)->rel;
            if (!g_ptr_array_find(candidates, rel, NULL)) {
                g_ptr_array_add(candidates, rel);
            }
        }
    }
    for (i = 0; i < candidates->len; i++) {
        uint32_t j;
        bool done = true;

        rel = g_ptr_array_index(candidates, i);
        for (j = 0; j < rel->nr_ranges && done; j++) {
            CXLDCRegion *r = &dc->regions[rel->region_id];
            uint64_t s = rel->ranges[j].start_dpa;

            done = !tree_first(&r->accepted, s, s + rel->ranges[j].len - 1);
        }
        if (done) {
            release_free(dc, rel);
        }
    }
}

/* True when a release request asks for some of [start, last]. */
static bool release_requested(CXLDCState *dc, uint64_t start, uint64_t last)
{
    return releasing_first(dc, start, last);
}

CXLDCStatus cxl_dc_host_release(CXLDCState *dc, const CXLDCExtentRaw *ranges,
                                uint32_t n, Error **errp)
{
    g_autofree DCSpan *spans = g_new0(DCSpan, MAX(n, 1));
    bool requested = false;
    CXLDCStatus ret;
    int64_t delta;
    uint32_t i;

    if (!n) {
        error_setg(errp, "the extent list is empty");
        return CXL_DC_INVALID_INPUT;
    }
    ret = check_host_ranges(dc, ranges, n, spans, errp);
    if (ret != CXL_DC_OK) {
        return ret;
    }
    for (i = 0; i < n; i++) {
        CXLDCRegion *r = cxl_dc_find_region(dc, spans[i].start,
                                            spans[i].last - spans[i].start + 1);

        if (tree_coverage(&r->accepted, spans[i].start, spans[i].last) !=
            spans[i].last - spans[i].start + 1) {
            error_setg(errp, "extent %u: dpa 0x%" PRIx64 " length 0x%" PRIx64
                       " is not all accepted capacity", spans[i].index,
                       spans[i].start, spans[i].last - spans[i].start + 1);
            return CXL_DC_INVALID_PA;
        }
    }
    delta = release_delta(dc, spans, n);
    if (delta > 0 && delta > cxl_dc_extents_avail(dc)) {
        error_setg(errp, "releasing these ranges splits extents into %" PRId64
                   " more than the %u extents available", delta,
                   cxl_dc_extents_avail(dc));
        return CXL_DC_RESOURCES_EXHAUSTED;
    }

    for (i = 0; i < n; i++) {
        requested |= release_requested(dc, spans[i].start, spans[i].last);
        release_span(dc, spans[i].start, spans[i].last);
    }
    accepted_changed(dc);
    /* The host on the mailbox is host 0. */
    notify_spans(dc, CXL_DC_NOTICE_RELEASED, 0, spans, n,
                 requested ? CXL_DC_RELEASE_REQUESTED : CXL_DC_RELEASE_HOST);
    release_settle(dc, 0, spans, n, false);
    return CXL_DC_OK;
}

bool cxl_dc_request_release(CXLDCState *dc, const CXLDCReleaseRequest *req,
                            Error **errp)
{
    g_autofree DCSpan *spans = NULL;
    CXLDCRecordType type = req->forced ? CXL_DC_EVENT_FORCED_CAPACITY_RELEASE
                                       : CXL_DC_EVENT_RELEASE_CAPACITY;
    CXLDCRelease *rel;
    CXLDCRegion *r;
    CXLDCExtent *e;
    uint32_t i, n = 0;
    int64_t delta;

    if (!check_host_region(dc, req->host_id, req->region_id, errp)) {
        return false;
    }
    r = &dc->regions[req->region_id];

    switch (req->policy) {
    case CXL_DC_REMOVE_PRESCRIPTIVE:
        n = req->nr_ranges;
        spans = g_new0(DCSpan, MAX(n, 1));
        if (!check_ranges(r, req->region_id, req->ranges, n, spans, errp)) {
            return false;
        }
        for (i = 0; i < n; i++) {
            uint64_t len = spans[i].last - spans[i].start + 1;

            if (tree_coverage(&r->accepted, spans[i].start, spans[i].last) ==
                len) {
                continue;
            }
            e = tree_first(&dc->pending, spans[i].start, spans[i].last);
            if (e) {
                error_setg(errp, "extent %u: overlaps pending extent at"
                           " offset 0x%" PRIx64 " length 0x%" PRIx64
                           ", which the host has not accepted",
                           spans[i].index, e->node.start - r->base,
                           cxl_dc_extent_len(e));
            } else {
                error_setg(errp, "extent %u: offset 0x%" PRIx64 " length 0x%"
                           PRIx64 " is not all accepted capacity",
                           spans[i].index, spans[i].start - r->base, len);
            }
            return false;
        }
        break;
    case CXL_DC_REMOVE_TAG_BASED:
        if (!req->has_tag || qemu_uuid_is_null(&req->tag)) {
            error_setg(errp, "tag-based removal needs a non-null tag");
            return false;
        }
        if (req->nr_ranges) {
            error_setg(errp, "tag-based removal takes a tag, not an extent"
                       " list");
            return false;
        }
        spans = g_new0(DCSpan, MAX(r->nr_accepted, 1));
        for (e = cxl_dc_accepted_first(r); e; e = cxl_dc_accepted_next(e)) {
            if (qemu_uuid_is_equal(&e->tag, &req->tag)) {
                spans[n].start = e->node.start;
                spans[n].last = e->node.last;
                spans[n].index = n;
                n++;
            }
        }
        if (!n) {
            g_autofree char *tag = qemu_uuid_unparse_strdup(&req->tag);

            error_setg(errp, "no accepted extent of region %u has tag %s",
                       req->region_id, tag);
            return false;
        }
        break;
    default:
        error_setg(errp, "removal policy %d is unknown", req->policy);
        return false;
    }

    if (!req->forced) {
        /* One outstanding request per range keeps answers unambiguous. */
        for (i = 0; i < n; i++) {
            CXLDCReleaseRange *busy = releasing_first(dc, spans[i].start,
                                                      spans[i].last);

            if (busy) {
                error_setg(errp, "extent %u: offset 0x%" PRIx64 " is already"
                           " being released (request %" PRIu64 ")",
                           spans[i].index, spans[i].start - r->base,
                           busy->rel->id);
                return false;
            }
        }
    } else {
        delta = release_delta(dc, spans, n);
        if (delta > 0 && delta > cxl_dc_extents_avail(dc)) {
            error_setg(errp, "releasing these ranges splits extents into %"
                       PRId64 " more than the %u extents available", delta,
                       cxl_dc_extents_avail(dc));
            return false;
        }
    }

    /* Valid: commit. */
    if (req->forced) {
        for (i = 0; i < n; i++) {
            release_span(dc, spans[i].start, spans[i].last);
        }
        accepted_changed(dc);
        notify_spans(dc, CXL_DC_NOTICE_RELEASED, req->host_id, spans, n,
                     CXL_DC_RELEASE_FORCED);
        release_settle(dc, req->host_id, spans, n, req->sanitize);
    } else {
        rel = g_new0(CXLDCRelease, 1);
        rel->id = dc->next_release_id++;
        rel->host_id = req->host_id;
        rel->region_id = req->region_id;
        rel->sanitize = req->sanitize;
        rel->nr_ranges = n;
        rel->ranges = g_new0(CXLDCExtentRaw, n);
        for (i = 0; i < n; i++) {
            rel->ranges[i].start_dpa = spans[i].start;
            rel->ranges[i].len = spans[i].last - spans[i].start + 1;
        }
        release_add(dc, rel);
    }
    for (i = 0; i < n; i++) {
        const QemuUUID *tag = req->has_tag ? &req->tag : &null_tag;

        record_queue(dc, type, req->host_id, req->region_id, spans[i].start,
                     spans[i].last - spans[i].start + 1, tag, 0, i + 1 < n);
    }
    records_queued(dc);
    return true;
}

/* The accepted list, as Get Dynamic Capacity Extent List pages it */

static CXLDCExtent **accepted_index(CXLDCState *dc)
{
    uint32_t n = 0, rid;
    CXLDCExtent *e;

    if (dc->index_valid) {
        return dc->index;
    }
    g_free(dc->index);
    dc->index = g_new(CXLDCExtent *, MAX(dc->nr_accepted, 1));
    for (rid = 0; rid < dc->nr_regions; rid++) {
        for (e = cxl_dc_accepted_first(&dc->regions[rid]); e;
             e = cxl_dc_accepted_next(e)) {
            dc->index[n++] = e;
        }
    }
    dc->index_valid = true;
    return dc->index;
}

uint32_t cxl_dc_get_extents(CXLDCState *dc, uint32_t start, uint32_t max,
                            CXLDCExtentRaw *out)
{
    CXLDCExtent **index = accepted_index(dc);
    uint32_t n;

    for (n = 0; n < max && start < dc->nr_accepted &&
         n < dc->nr_accepted - start; n++) {
        CXLDCExtent *e = index[start + n];

        stq_le_p(&out[n].start_dpa, e->node.start);
        stq_le_p(&out[n].len, cxl_dc_extent_len(e));
        memcpy(out[n].tag, e->tag.data, sizeof(out[n].tag));
        stw_le_p(&out[n].shared_seq, e->shared_seq);
        memset(out[n].rsvd, 0, sizeof(out[n].rsvd));
    }
    return n;
}

/* Migration */

void cxl_dc_snapshot_free(CXLDCSnapshot *snap)
{
    g_free(snap->regions);
    g_free(snap->extents);
    g_free(snap->groups);
    g_free(snap->releases);
    g_free(snap->ranges);
    g_free(snap->records);
    memset(snap, 0, sizeof(*snap));
}

static void save_extent(CXLDCSavedExtent *out, CXLDCExtent *e,
                        CXLDCSavedKind kind, uint32_t group)
{
    *out = (CXLDCSavedExtent) {
        .dpa = e->node.start,
        .len = cxl_dc_extent_len(e),
        .shared_seq = e->shared_seq,
        .kind = kind,
        .group = group,
    };
    memcpy(out->tag, e->tag.data, sizeof(out->tag));
}

void cxl_dc_save(CXLDCState *dc, CXLDCSnapshot *snap)
{
    uint32_t nr_extents = dc->nr_accepted + dc->nr_pending;
    uint32_t i, n = 0, g_index = 0, r_index = 0;
    CXLDCRecord *rec;
    CXLDCRelease *rel;
    CXLDCExtent *e;
    CXLDCGroup *g;

    cxl_dc_snapshot_free(snap);
    QTAILQ_FOREACH(g, &dc->groups, next) {
        nr_extents += g->nr_staged;
        snap->nr_groups++;
    }
    QTAILQ_FOREACH(rel, &dc->releases, next) {
        snap->nr_releases++;
        snap->nr_ranges += rel->nr_ranges;
    }

    snap->extents = g_new0(CXLDCSavedExtent, nr_extents);
    snap->nr_regions = dc->nr_regions;
    snap->regions = g_new0(CXLDCSavedRegion, dc->nr_regions);
    for (i = 0; i < dc->nr_regions; i++) {
        snap->regions[i].base = dc->regions[i].base;
        snap->regions[i].len = dc->regions[i].len;
        snap->regions[i].block_size = dc->regions[i].block_size;
        for (e = cxl_dc_accepted_first(&dc->regions[i]); e;
             e = cxl_dc_accepted_next(e)) {
            save_extent(&snap->extents[n++], e, CXL_DC_SAVED_ACCEPTED, 0);
        }
    }
    snap->groups = g_new0(CXLDCSavedGroup, snap->nr_groups);
    QTAILQ_FOREACH(g, &dc->groups, next) {
        IntervalTreeNode *node;

        snap->groups[g_index] = (CXLDCSavedGroup) {
            .id = g->id, .host_id = g->host_id, .region_id = g->region_id,
        };
        for (i = 0; i < g->nr_extents; i++) {
            save_extent(&snap->extents[n++], g->extents[i],
                        CXL_DC_SAVED_PENDING, g_index);
        }
        for (node = interval_tree_iter_first(&g->staged, 0, UINT64_MAX); node;
             node = interval_tree_iter_next(node, 0, UINT64_MAX)) {
            save_extent(&snap->extents[n++], NODE_EXTENT(node),
                        CXL_DC_SAVED_STAGED, g_index);
        }
        g_index++;
    }
    snap->nr_extents = n;
    snap->releases = g_new0(CXLDCSavedRelease, snap->nr_releases);
    snap->ranges = g_new0(CXLDCSavedRange, snap->nr_ranges);
    n = 0;
    QTAILQ_FOREACH(rel, &dc->releases, next) {
        snap->releases[r_index++] = (CXLDCSavedRelease) {
            .id = rel->id, .host_id = rel->host_id,
            .region_id = rel->region_id, .sanitize = rel->sanitize,
            .nr_ranges = rel->nr_ranges,
        };
        for (i = 0; i < rel->nr_ranges; i++) {
            snap->ranges[n].dpa = rel->ranges[i].start_dpa;
            snap->ranges[n++].len = rel->ranges[i].len;
        }
    }
    snap->nr_records = dc->nr_records;
    snap->records = g_new0(CXLDCSavedRecord, dc->nr_records);
    n = 0;
    QSIMPLEQ_FOREACH(rec, &dc->records, next) {
        CXLDCSavedRecord *s = &snap->records[n++];

        *s = (CXLDCSavedRecord) {
            .type = rec->type, .flags = rec->flags,
            .region_id = rec->region_id, .host_id = rec->host_id,
            .dpa = rec->dpa, .len = rec->len,
            .shared_seq = rec->shared_seq,
            .extents_avail = rec->extents_avail,
            .tags_avail = rec->tags_avail,
        };
        memcpy(s->tag, rec->tag.data, sizeof(s->tag));
    }
    snap->generation = dc->generation;
    snap->next_group_id = dc->next_group_id;
    snap->next_release_id = dc->next_release_id;
}

/* Check that saved range @i lies in one region, on its blocks. */
static bool load_check_range(CXLDCState *dc, const CXLDCSavedRegion *regions,
                             const char *what, uint32_t i, uint64_t dpa,
                             uint64_t len, int *rid, Error **errp)
{
    CXLDCRegion *r = cxl_dc_find_region(dc, dpa, len);
    uint64_t bs;

    if (!r) {
        error_setg(errp, "%s %u: dpa 0x%" PRIx64 " length 0x%" PRIx64
                   " is not inside one DC region", what, i, dpa, len);
        return false;
    }
    *rid = r - dc->regions;
    bs = regions[*rid].block_size;
    if ((dpa - r->base) % bs || len % bs) {
        error_setg(errp, "%s %u: dpa 0x%" PRIx64 " length 0x%" PRIx64
                   " is not aligned to block size 0x%" PRIx64, what, i,
                   dpa, len, bs);
        return false;
    }
    return true;
}

static int saved_extent_cmp(const void *a, const void *b)
{
    const CXLDCSavedExtent *const *x = a, *const *y = b;

    return (*x)->dpa < (*y)->dpa ? -1 : (*x)->dpa > (*y)->dpa;
}

static int saved_range_cmp(const void *a, const void *b)
{
    const CXLDCSavedRange *x = *(const CXLDCSavedRange **)a;
    const CXLDCSavedRange *y = *(const CXLDCSavedRange **)b;

    return x->dpa < y->dpa ? -1 : x->dpa > y->dpa;
}

static const char *const saved_kind_name[] = {
    [CXL_DC_SAVED_ACCEPTED] = "accepted extent",
    [CXL_DC_SAVED_PENDING] = "pending extent",
    [CXL_DC_SAVED_STAGED] = "staged extent",
};

/*
 * Whether [@dpa, @last] meets an accepted extent among the @n sorted,
 * disjoint extents of @order
 */
static bool saved_accepted_meets(const CXLDCSavedExtent **order, uint32_t n,
                                 uint64_t dpa, uint64_t last)
{
    uint32_t lo = 0, hi = n;

    /* The first extent that ends at or after @dpa */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (order[mid]->dpa + order[mid]->len - 1 < dpa) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (; lo < n && order[lo]->dpa <= last; lo++) {
        if (order[lo]->kind == CXL_DC_SAVED_ACCEPTED) {
            return true;
        }
    }
    return false;
}

/* Check everything @snap claims against @dc's regions and limits. */
static bool load_check(CXLDCState *dc, const CXLDCSnapshot *snap,
                       Error **errp)
{
    g_autofree const CXLDCSavedExtent **order = NULL;
    g_autofree uint32_t *offered = g_new0(uint32_t, MAX(snap->nr_groups, 1));
    g_autofree uint64_t *last_offered = g_new0(uint64_t,
                                               MAX(snap->nr_groups, 1));
    uint32_t i, j, n = 0, ranges = 0, held = 0;
    bool live;
    int rid;

    if (snap->nr_regions != dc->nr_regions) {
        error_setg(errp, "the stream has %u DC regions, the device %u",
                   snap->nr_regions, dc->nr_regions);
        return false;
    }
    for (i = 0; i < snap->nr_regions; i++) {
        const CXLDCSavedRegion *s = &snap->regions[i];
        CXLDCRegion *r = &dc->regions[i];

        if (s->base != r->base || s->len != r->len) {
            error_setg(errp, "region %u: the stream has base 0x%" PRIx64
                       " length 0x%" PRIx64 ", the device base 0x%" PRIx64
                       " length 0x%" PRIx64, i, s->base, s->len, r->base,
                       r->len);
            return false;
        }
        if (!is_power_of_2(s->block_size) ||
            !(s->block_size & r->supported_block_sizes) ||
            r->len % s->block_size) {
            error_setg(errp, "region %u: block size 0x%" PRIx64 " is not"
                       " supported", i, s->block_size);
            return false;
        }
    }
    for (i = 0; i < snap->nr_groups; i++) {
        if (snap->groups[i].host_id >= dc->nr_hosts ||
            snap->groups[i].region_id >= dc->nr_regions) {
            error_setg(errp, "pending group %u: host %u or region %u does"
                       " not exist", i, snap->groups[i].host_id,
                       snap->groups[i].region_id);
            return false;
        }
        if (snap->groups[i].id >= snap->next_group_id) {
            error_setg(errp, "pending group %u: id %" PRIu64 " is not below"
                       " the next id %" PRIu64, i, snap->groups[i].id,
                       snap->next_group_id);
            return false;
        }
        /* Oldest first, as requests are numbered */
        if (i && snap->groups[i].id <= snap->groups[i - 1].id) {
            error_setg(errp, "pending group %u: id %" PRIu64 " is not above"
                       " the id %" PRIu64 " of the group before it", i,
                       snap->groups[i].id, snap->groups[i - 1].id);
            return false;
        }
    }

    /* Accepted and pending extents: in regions, disjoint from each other */
    order = g_new0(const CXLDCSavedExtent *, MAX(snap->nr_extents, 1));
    for (i = 0; i < snap->nr_extents; i++) {
        const CXLDCSavedExtent *e = &snap->extents[i];

        if (e->kind > CXL_DC_SAVED_STAGED) {
            error_setg(errp, "extent %u: kind %u is unknown", i, e->kind);
            return false;
        }
        if (e->kind != CXL_DC_SAVED_ACCEPTED && e->group >= snap->nr_groups) {
            error_setg(errp, "%s %u: group %u does not exist",
                       saved_kind_name[e->kind], i, e->group);
            return false;
        }
        if (!load_check_range(dc, snap->regions, saved_kind_name[e->kind], i,
                              e->dpa, e->len, &rid, errp)) {
            return false;
        }
        if (e->kind != CXL_DC_SAVED_ACCEPTED &&
            rid != snap->groups[e->group].region_id) {
            error_setg(errp, "%s %u: dpa 0x%" PRIx64 " is not in region %u"
                       " of its group %u", saved_kind_name[e->kind], i,
                       e->dpa, snap->groups[e->group].region_id, e->group);
            return false;
        }
        if (e->kind != CXL_DC_SAVED_STAGED) {
            order[n++] = e;
            held++;
        }
        if (e->kind == CXL_DC_SAVED_PENDING) {
            /* A group offers its extents in DPA order */
            if (offered[e->group] && e->dpa <= last_offered[e->group]) {
                error_setg(errp, "pending extent %u: dpa 0x%" PRIx64 " is"
                           " not above the extent before it in group %u",
                           i, e->dpa, e->group);
                return false;
            }
            offered[e->group]++;
            last_offered[e->group] = e->dpa;
        }
    }
    if (held > dc->max_extents) {
        error_setg(errp, "the stream holds %u extents, the device tracks at"
                   " most %u", held, dc->max_extents);
        return false;
    }
    /* An offer is never empty */
    for (i = 0; i < snap->nr_groups; i++) {
        if (!offered[i]) {
            error_setg(errp, "pending group %u offers no extent", i);
            return false;
        }
    }
    /*
     * Only the oldest offer is being answered, and the device must keep
     * room to finish that answer: the extents it staged replace those
     * offered.
     */
    for (i = 0, j = 0; i < snap->nr_extents; i++) {
        if (snap->extents[i].kind == CXL_DC_SAVED_STAGED) {
            if (snap->extents[i].group) {
                error_setg(errp, "staged extent %u: group %u is not the"
                           " oldest pending group", i,
                           snap->extents[i].group);
                return false;
            }
            j++;
        }
    }
    if (j && (uint64_t)held - offered[0] + j > dc->max_extents) {
        error_setg(errp, "%u staged extents leave no room to answer pending"
                   " group 0: the device tracks at most %u extents", j,
                   dc->max_extents);
        return false;
    }
    qsort(order, n, sizeof(*order), saved_extent_cmp);
    for (i = 1; i < n; i++) {
        if (order[i]->dpa <= order[i - 1]->dpa + order[i - 1]->len - 1) {
            error_setg(errp, "%s %td: dpa 0x%" PRIx64 " overlaps %s %td at"
                       " dpa 0x%" PRIx64, saved_kind_name[order[i]->kind],
                       order[i] - snap->extents, order[i]->dpa,
                       saved_kind_name[order[i - 1]->kind],
                       order[i - 1] - snap->extents, order[i - 1]->dpa);
            return false;
        }
    }
    /* Distinct tags within the device's limit */
    {
        g_autoptr(GHashTable) tags = g_hash_table_new(qemu_uuid_hash,
                                                      tag_equal);

        for (i = 0; i < snap->nr_extents; i++) {
            if (!qemu_uuid_is_null((QemuUUID *)snap->extents[i].tag)) {
                g_hash_table_add(tags, (gpointer)snap->extents[i].tag);
            }
        }
        if (g_hash_table_size(tags) > dc->max_tags) {
            error_setg(errp, "the stream holds %u tags, the device tracks at"
                       " most %u", g_hash_table_size(tags), dc->max_tags);
            return false;
        }
    }
    /*
     * Staged extents: each inside a pending extent of its own group, with
     * that extent's tag and sequence number, as an answer stages them
     */
    for (i = 0; i < snap->nr_extents; i++) {
        const CXLDCSavedExtent *e = &snap->extents[i];
        const CXLDCSavedExtent *p = NULL;
        bool inside = false;

        if (e->kind != CXL_DC_SAVED_STAGED) {
            continue;
        }
        for (j = 0; j < snap->nr_extents && !inside; j++) {
            p = &snap->extents[j];
            inside = p->kind == CXL_DC_SAVED_PENDING && p->group == e->group &&
                     p->dpa <= e->dpa &&
                     e->dpa + e->len - 1 <= p->dpa + p->len - 1;
        }
        if (inside && (memcmp(p->tag, e->tag, sizeof(e->tag)) ||
                       p->shared_seq != e->shared_seq)) {
            error_setg(errp, "staged extent %u: dpa 0x%" PRIx64 " has another"
                       " tag or sequence number than pending extent %td it"
                       " lies in", i, e->dpa, p - snap->extents);
            return false;
        }
        for (j = 0; j < i && inside; j++) {
            const CXLDCSavedExtent *o = &snap->extents[j];

            inside = o->kind != CXL_DC_SAVED_STAGED ||
                     o->dpa + o->len - 1 < e->dpa ||
                     e->dpa + e->len - 1 < o->dpa;
        }
        if (!inside) {
            error_setg(errp, "staged extent %u: dpa 0x%" PRIx64 " is not"
                       " inside one pending extent of group %u, alone", i,
                       e->dpa, e->group);
            return false;
        }
    }

    for (i = 0; i < snap->nr_releases; i++) {
        const CXLDCSavedRelease *rel = &snap->releases[i];

        if (rel->host_id >= dc->nr_hosts || rel->region_id >= dc->nr_regions ||
            !rel->nr_ranges || rel->nr_ranges > snap->nr_ranges - ranges ||
            rel->id >= snap->next_release_id) {
            error_setg(errp, "release request %u: host %u, region %u, %u"
                       " ranges or id %" PRIu64 " is out of range", i,
                       rel->host_id, rel->region_id, rel->nr_ranges,
                       rel->id);
            return false;
        }
        if (i && rel->id <= snap->releases[i - 1].id) {
            error_setg(errp, "release request %u: id %" PRIu64 " is not"
                       " above the id %" PRIu64 " of the request before it",
                       i, rel->id, snap->releases[i - 1].id);
            return false;
        }
        live = false;
        for (j = 0; j < rel->nr_ranges; j++, ranges++) {
            const CXLDCSavedRange *r = &snap->ranges[ranges];

            if (!load_check_range(dc, snap->regions, "release range", ranges,
                                  r->dpa, r->len, &rid, errp)) {
                return false;
            }
            if (rid != rel->region_id) {
                error_setg(errp, "release range %u: dpa 0x%" PRIx64 " is not"
                           " in region %u of its request", ranges, r->dpa,
                           rel->region_id);
                return false;
            }
            live |= saved_accepted_meets(order, n, r->dpa,
                                         r->dpa + r->len - 1);
        }
        /* A request ends once nothing it asks for is accepted any more */
        if (!live) {
            error_setg(errp, "release request %u asks for no accepted"
                       " capacity", i);
            return false;
        }
    }
    if (ranges != snap->nr_ranges) {
        error_setg(errp, "the stream has %u release ranges, its requests"
                   " name %u", snap->nr_ranges, ranges);
        return false;
    }
    /* Outstanding requests never ask for the same capacity twice */
    {
        g_autofree const CXLDCSavedRange **by_dpa =
            g_new(const CXLDCSavedRange *, MAX(snap->nr_ranges, 1));

        for (i = 0; i < snap->nr_ranges; i++) {
            by_dpa[i] = &snap->ranges[i];
        }
        qsort(by_dpa, snap->nr_ranges, sizeof(*by_dpa), saved_range_cmp);
        for (i = 1; i < snap->nr_ranges; i++) {
            if (by_dpa[i]->dpa <= by_dpa[i - 1]->dpa + by_dpa[i - 1]->len - 1) {
                error_setg(errp, "release range %td: dpa 0x%" PRIx64
                           " overlaps release range %td", by_dpa[i] -
                           snap->ranges, by_dpa[i]->dpa,
                           by_dpa[i - 1] - snap->ranges);
                return false;
            }
        }
    }
    for (i = 0; i < snap->nr_records; i++) {
        const CXLDCSavedRecord *r = &snap->records[i];

        if (r->type > CXL_DC_EVENT_REGION_CONFIG_UPDATED ||
            r->region_id >= dc->nr_regions ||
            r->flags & ~CXL_DC_EVENT_FLAG_MORE) {
            error_setg(errp, "queued record %u: type %u, region %u or flags"
                       " 0x%x is invalid", i, r->type, r->region_id,
                       r->flags);
            return false;
        }
    }
    return true;
}

bool cxl_dc_load(CXLDCState *dc, const CXLDCSnapshot *snap, Error **errp)
{
    g_autofree CXLDCGroup **groups = NULL;
    uint32_t i, j, ranges = 0;

    if (!load_check(dc, snap, errp)) {
        return false;
    }

    /* Valid: replace the state. */
    cxl_dc_clear(dc);
    for (i = 0; i < dc->nr_regions; i++) {
        CXLDCRegion *r = &dc->regions[i];

        if (r->block_size != snap->regions[i].block_size) {
            g_free(r->backed);
            r->block_size = snap->regions[i].block_size;
            r->backed = bitmap_new(r->len / r->block_size);
        }
    }
    groups = g_new0(CXLDCGroup *, MAX(snap->nr_groups, 1));
    for (i = 0; i < snap->nr_groups; i++) {
        CXLDCGroup *g = g_new0(CXLDCGroup, 1);

        g->id = snap->groups[i].id;
        g->host_id = snap->groups[i].host_id;
        g->region_id = snap->groups[i].region_id;
        g->extents = g_new0(CXLDCExtent *, snap->nr_extents);
        QTAILQ_INSERT_TAIL(&dc->groups, g, next);
        groups[i] = g;
    }
    for (i = 0; i < snap->nr_extents; i++) {
        const CXLDCSavedExtent *s = &snap->extents[i];
        CXLDCRegion *r = cxl_dc_find_region(dc, s->dpa, s->len);
        QemuUUID tag;
        CXLDCExtent *e;

        memcpy(tag.data, s->tag, sizeof(tag.data));
        e = extent_new(s->dpa, s->len, r - dc->regions, &tag, s->shared_seq);
        switch (s->kind) {
        case CXL_DC_SAVED_ACCEPTED:
            accepted_insert(dc, e);
            break;
        case CXL_DC_SAVED_PENDING:
            e->group = groups[s->group];
            groups[s->group]->extents[groups[s->group]->nr_extents++] = e;
            interval_tree_insert(&e->node, &dc->pending);
            tag_ref(dc, &e->tag);
            dc->nr_pending++;
            break;
        case CXL_DC_SAVED_STAGED:
            interval_tree_insert(&e->node, &groups[s->group]->staged);
            groups[s->group]->nr_staged++;
            tag_ref(dc, &e->tag);
            break;
        }
    }
    for (i = 0; i < snap->nr_releases; i++) {
        CXLDCRelease *rel = g_new0(CXLDCRelease, 1);

        rel->id = snap->releases[i].id;
        rel->host_id = snap->releases[i].host_id;
        rel->region_id = snap->releases[i].region_id;
        rel->sanitize = snap->releases[i].sanitize;
        rel->nr_ranges = snap->releases[i].nr_ranges;
        rel->ranges = g_new0(CXLDCExtentRaw, rel->nr_ranges);
        for (j = 0; j < rel->nr_ranges; j++, ranges++) {
            rel->ranges[j].start_dpa = snap->ranges[ranges].dpa;
            rel->ranges[j].len = snap->ranges[ranges].len;
        }
        release_add(dc, rel);
    }
    for (i = 0; i < snap->nr_records; i++) {
        const CXLDCSavedRecord *s = &snap->records[i];
        CXLDCRecord *rec = g_new0(CXLDCRecord, 1);

        *rec = (CXLDCRecord) {
            .type = s->type, .flags = s->flags, .host_id = s->host_id,
            .region_id = s->region_id, .dpa = s->dpa, .len = s->len,
            .shared_seq = s->shared_seq, .extents_avail = s->extents_avail,
            .tags_avail = s->tags_avail,
        };
        memcpy(rec->tag.data, s->tag, sizeof(rec->tag.data));
        QSIMPLEQ_INSERT_TAIL(&dc->records, rec, next);
        dc->nr_records++;
    }
    dc->generation = snap->generation;
    dc->index_valid = false;
    dc->next_group_id = snap->next_group_id;
    dc->next_release_id = snap->next_release_id;
    return true;
}
