/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Shared harness of the DC engine fuzz targets: device setup from the
 * input, checked wrappers of the entry points, a shadow model, a state
 * snapshot, an invariant checker with its own tree walker.  Every call
 * is checked: a failure must change nothing (state, records, sanitize
 * and notify callbacks); a success must change what the shadow model
 * says, move the generation iff the accepted list changed, sanitize
 * what release requests asked for and give the matching notices.
 *
 * Set FUZZ_DC_DEBUG=1 to trace every call and its result to stderr.
 *
 * Input: a 3-byte header, then operations (see fz_op()):
 *   byte 0  layout & 3: 0: 2 regions of 128 MiB, 2 MiB blocks (the unit
 *           test's); 1: 1 MiB and 2 MiB, 64 KiB blocks; 2: 1 region of
 *           128 MiB, 64 KiB blocks; 3: 4 KiB of 64-byte blocks, then
 *           128 MiB of 2 MiB blocks
 *   byte 1  max extents (0: 64)
 *   byte 2  max tags: 16, 0, 1, 2, 4, 8 (value % 6)
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/cxl/cxl_dc.h"
#include "fuzz-dc.h"

void fz_fail(const char *file, int line, const char *cond,
             const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\nfuzz-dc: invariant broken at %s:%d: %s\n  ", file,
            line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

/* Input */

bool fz_empty(FzIn *in)
{
    return in->pos >= in->n;
}

void fz_bytes(FzIn *in, void *buf, size_t len)
{
    size_t have = in->pos < in->n ? MIN(len, in->n - in->pos) : 0;

    memset(buf, 0, len);
    if (have) {
        memcpy(buf, in->p + in->pos, have);
    }
    in->pos += have;
    if (have < len) {
        in->pos = in->n;
    }
}

uint8_t fz_u8(FzIn *in)
{
    uint8_t v;

    fz_bytes(in, &v, 1);
    return v;
}

uint16_t fz_u16(FzIn *in)
{
    uint8_t b[2];

    fz_bytes(in, b, sizeof(b));
    return lduw_le_p(b);
}

uint32_t fz_u32(FzIn *in)
{
    uint8_t b[4];

    fz_bytes(in, b, sizeof(b));
    return ldl_le_p(b);
}

uint64_t fz_u64(FzIn *in)
{
    uint8_t b[8];

    fz_bytes(in, b, sizeof(b));
    return ldq_le_p(b);
}

FzIn fz_sub(FzIn *in, size_t len)
{
    FzIn sub = { .p = in->p + MIN(in->pos, in->n), .n = 0 };

    sub.n = in->pos < in->n ? MIN(len, in->n - in->pos) : 0;
    in->pos += sub.n;
    return sub;
}

/* A count of non-null tags, few enough for a linear search */
typedef struct FzTagCount {
    QemuUUID tag;
    uint32_t n;
} FzTagCount;

/* Device setup */

typedef struct FzRegionLayout {
    uint64_t base, decode_len, len, block_size;
} FzRegionLayout;

static const FzRegionLayout layouts[4][2] = {
    { { 0, 256 * MiB, 128 * MiB, 2 * MiB },
      { 256 * MiB, 256 * MiB, 128 * MiB, 2 * MiB } },
    { { 0, 256 * MiB, 1 * MiB, 64 * KiB },
      { 256 * MiB, 256 * MiB, 2 * MiB, 64 * KiB } },
    { { 0, 256 * MiB, 128 * MiB, 64 * KiB } },
    { { 0, 256 * MiB, 4 * KiB, 64 },
      { 256 * MiB, 256 * MiB, 128 * MiB, 2 * MiB } },
};

static const uint32_t max_tags_choice[] = { 16, 0, 1, 2, 4, 8 };

static void fz_sanitize_cb(void *opaque, uint64_t dpa, uint64_t len)
{
    FzDC *f = opaque;
    CXLDCRange r = { dpa, len };

    g_array_append_val(f->b.sanitized, r);
}

static void fz_queued_cb(void *opaque)
{
    FzDC *f = opaque;

    f->queued_calls++;
}

static void fz_notify_cb(void *opaque, const CXLDCNotice *n)
{
    FzDC *f = opaque;
    FzNotice x = { .n = *n, .first = f->b.notice_ranges->len };
    uint32_t i;

    for (i = 0; i < n->nr_extents + n->nr_declined; i++) {
        const CXLDCExtentRaw *e = i < n->nr_extents ? &n->extents[i]
            : &n->declined[i - n->nr_extents];
        CXLDCRange r = { e->start_dpa, e->len };

        g_array_append_val(f->b.notice_ranges, r);
    }
    x.n.extents = NULL;
    x.n.declined = NULL;
    g_array_append_val(f->b.notices, x);
}

static const CXLDCOps fz_ops = {
    .sanitize = fz_sanitize_cb,
    .records_queued = fz_queued_cb,
    .notify = fz_notify_cb,
};

/* Sets of buffers kept for the next input; the load target uses three. */
#define BUFFER_CACHE 4
static FzBuffers buffer_cache[BUFFER_CACHE];
static unsigned buffers_cached;

static void buffers_get(FzBuffers *b)
{
    if (buffers_cached) {
        *b = buffer_cache[--buffers_cached];
        return;
    }
    b->sanitized = g_array_new(false, false, sizeof(CXLDCRange));
    b->notices = g_array_new(false, false, sizeof(FzNotice));
    b->notice_ranges = g_array_new(false, false, sizeof(CXLDCRange));
    b->snap_before = g_byte_array_new();
    b->snap_after = g_byte_array_new();
    b->snap_tags = g_ptr_array_new();
    b->acc_before = g_array_new(false, false, sizeof(FzExt));
    b->tags_eng = g_array_new(false, false, sizeof(FzTagCount));
    b->tags_sh = g_array_new(false, false, sizeof(FzTagCount));
    b->bitmap = g_array_new(false, false, sizeof(unsigned long));
    b->pend_list = g_ptr_array_new();
    b->pend_seen = g_array_new(false, true, 1);
    b->staged_list = g_ptr_array_new();
    b->staged_sorted = g_array_new(false, false, sizeof(FzExt));
    b->spans = g_array_new(false, false, sizeof(FzExt));
    b->tmp = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
}

static void buffers_put(FzBuffers *b)
{
    if (buffers_cached < BUFFER_CACHE) {
        buffer_cache[buffers_cached++] = *b;
        return;
    }
    g_array_free(b->sanitized, true);
    g_array_free(b->notices, true);
    g_array_free(b->notice_ranges, true);
    g_byte_array_unref(b->snap_before);
    g_byte_array_unref(b->snap_after);
    g_ptr_array_unref(b->snap_tags);
    g_array_free(b->acc_before, true);
    g_array_free(b->tags_eng, true);
    g_array_free(b->tags_sh, true);
    g_array_free(b->bitmap, true);
    g_ptr_array_unref(b->pend_list);
    g_array_free(b->pend_seen, true);
    g_ptr_array_unref(b->staged_list);
    g_array_free(b->staged_sorted, true);
    g_array_free(b->spans, true);
    g_ptr_array_unref(b->tmp);
}

void fz_dc_init(FzDC *f, uint32_t max_extents, uint32_t max_tags)
{
    memset(f, 0, sizeof(*f));
    buffers_get(&f->b);
    g_array_set_size(f->b.sanitized, 0);
    g_array_set_size(f->b.notices, 0);
    g_array_set_size(f->b.notice_ranges, 0);
    f->acc = g_array_new(false, false, sizeof(FzExt));
    g_queue_init(&f->groups);
    g_queue_init(&f->releases);
    g_queue_init(&f->records);
    cxl_dc_init(&f->dc, max_extents, max_tags, &fz_ops, f);
}

void fz_dc_setup(FzDC *f, FzIn *in)
{
    uint8_t layout = fz_u8(in);
    uint8_t max_extents = fz_u8(in);
    uint8_t tags = fz_u8(in);

    fz_dc_make(f, layout, max_extents, tags);
}

void fz_dc_make(FzDC *f, uint8_t layout, uint8_t max_extents, uint8_t tags)
{
    unsigned i;

    layout &= 3;
    fz_dc_init(f, max_extents ? max_extents : 64,
               max_tags_choice[tags % ARRAY_SIZE(max_tags_choice)]);
    for (i = 0; i < 2 && layouts[layout][i].len; i++) {
        const FzRegionLayout *l = &layouts[layout][i];

        cxl_dc_add_region(&f->dc, l->base, l->decode_len, l->len,
                          l->block_size, i, false, &error_abort);
    }
    fz_check(f);
}

static void group_free(gpointer p)
{
    FzGroup *g = p;

    g_array_free(g->ext, true);
    g_array_free(g->staged, true);
    g_free(g);
}

static void release_free(gpointer p)
{
    FzRelease *rel = p;

    g_array_free(rel->ranges, true);
    g_free(rel);
}

void fz_dc_teardown(FzDC *f)
{
    cxl_dc_cleanup(&f->dc);
    g_array_free(f->acc, true);
    g_queue_clear_full(&f->groups, group_free);
    g_queue_clear_full(&f->releases, release_free);
    g_queue_clear_full(&f->records, g_free);
    buffers_put(&f->b);
}

/*
 * An empty array of CXLDCRange for the current call, reused by the
 * next: call_begin() hands them all back.
 */
static GArray *fz_tmp(FzDC *f)
{
    GArray *a;

    if (f->tmp_used == f->b.tmp->len) {
        g_ptr_array_add(f->b.tmp,
                        g_array_new(false, false, sizeof(CXLDCRange)));
    }
    a = f->b.tmp->pdata[f->tmp_used++];
    g_array_set_size(a, 0);
    return a;
}

/* An independent walk of an interval tree, checking its structure */

#define NODE_EXT(n) container_of(n, CXLDCExtent, node)

typedef void FzVisit(CXLDCExtent *e, void *opaque);

static RBNode *rb_parent(RBNode *n)
{
    return (RBNode *)(n->rb_parent_color & ~(uintptr_t)3);
}

static bool rb_black(RBNode *n)
{
    return !n || (n->rb_parent_color & 1);
}

/*
 * In-order walk below @n; checks parent links, red-black rules and the
 * subtree_last augmentation.  Returns the black height.
 */
static int tree_walk_node(RBNode *n, RBNode *parent, FzVisit *fn,
                          void *opaque, uint64_t *sub_last)
{
    IntervalTreeNode *in;
    uint64_t l = 0, r = 0, max;
    int hl, hr;

    if (!n) {
        *sub_last = 0;
        return 1;
    }
    in = container_of(n, IntervalTreeNode, rb);
    FZ_CHECK(rb_parent(n) == parent, "tree node 0x%" PRIx64 " has a wrong"
             " parent link", in->start);
    FZ_CHECK(rb_black(n) || (rb_black(n->rb_left) && rb_black(n->rb_right)),
             "red tree node 0x%" PRIx64 " has a red child", in->start);
    FZ_CHECK(in->start <= in->last, "tree node 0x%" PRIx64 " ends at 0x%"
             PRIx64, in->start, in->last);
    hl = tree_walk_node(n->rb_left, n, fn, opaque, &l);
    fn(NODE_EXT(in), opaque);
    hr = tree_walk_node(n->rb_right, n, fn, opaque, &r);
    FZ_CHECK(hl == hr, "tree node 0x%" PRIx64 ": black heights %d and %d",
             in->start, hl, hr);
    max = MAX(in->last, MAX(n->rb_left ? l : 0, n->rb_right ? r : 0));
    FZ_CHECK(in->subtree_last == max, "tree node 0x%" PRIx64 ": subtree_last"
             " 0x%" PRIx64 ", expected 0x%" PRIx64, in->start,
             in->subtree_last, max);
    *sub_last = max;
    return hl + rb_black(n);
}

static void tree_walk(IntervalTreeRoot *root, FzVisit *fn, void *opaque)
{
    RBNode *leftmost = root->rb_root.rb_node;
    uint64_t sub;

    while (leftmost && leftmost->rb_left) {
        leftmost = leftmost->rb_left;
    }
    FZ_CHECK(root->rb_leftmost == leftmost, "tree leftmost cache is stale");
    FZ_CHECK(rb_black(root->rb_root.rb_node), "tree root is red");
    tree_walk_node(root->rb_root.rb_node, NULL, fn, opaque, &sub);
}

/*
 * The same walk without the checks, for snapshots: fz_check() checks
 * every tree after every call.
 */
static void tree_each(RBNode *n, FzVisit *fn, void *opaque)
{
    if (n) {
        tree_each(n->rb_left, fn, opaque);
        fn(NODE_EXT(container_of(n, IntervalTreeNode, rb)), opaque);
        tree_each(n->rb_right, fn, opaque);
    }
}

/*
 * Snapshot of the whole engine state, for "a failure changes nothing":
 * every field that fz_check() reads, down to the links and colours of
 * the tree nodes, so that a failed call whose snapshot is unchanged
 * needs no fz_check() after it (it would check the state it checked
 * before the call).  Each field is one fixed-size store into a buffer
 * that only grows: this runs around every call.
 */

typedef struct FzWriter {
    GByteArray *b;
    size_t pos;
    bool logical;
} FzWriter;

static inline void QEMU_ALWAYS_INLINE put(FzWriter *w, const void *p,
                                          size_t len)
{
    if (unlikely(w->pos + len > w->b->len)) {
        g_byte_array_set_size(w->b, MAX(2 * w->b->len, w->pos + len + 4096));
    }
    memcpy(w->b->data + w->pos, p, len);
    w->pos += len;
}

#define PUT(w, v) do { typeof(v) v_ = (v); put(w, &v_, sizeof(v_)); } while (0)

/*
 * In the logical mode (@w->logical), no addresses and no tree shapes:
 * what two engines built by different histories must agree on.
 */
static void put_root(FzWriter *w, IntervalTreeRoot *root)
{
    if (!w->logical) {
        PUT(w, (uintptr_t)root->rb_root.rb_node);
        PUT(w, (uintptr_t)root->rb_leftmost);
    }
}

static void put_extent(FzWriter *w, CXLDCExtent *e)
{
    if (!w->logical) {
        PUT(w, (uintptr_t)e);
        PUT(w, e->node.subtree_last);
        PUT(w, e->node.rb.rb_parent_color);
        PUT(w, (uintptr_t)e->node.rb.rb_left);
        PUT(w, (uintptr_t)e->node.rb.rb_right);
        PUT(w, (uintptr_t)e->group);
    }
    PUT(w, e->node.start);
    PUT(w, e->node.last);
    put(w, e->tag.data, sizeof(e->tag.data));
    PUT(w, e->shared_seq);
    PUT(w, e->region_id);
    PUT(w, e->group ? e->group->id : UINT64_MAX);
}

static void snap_visit(CXLDCExtent *e, void *opaque)
{
    put_extent(opaque, e);
}

static gint tagref_cmp(gconstpointer a, gconstpointer b)
{
    return memcmp(*(void **)a, *(void **)b, sizeof(QemuUUID));
}

/* Write the state into @b; returns the length written. */
static size_t snapshot(FzDC *f, GByteArray *b, bool logical)
{
    CXLDCState *dc = &f->dc;
    GPtrArray *tags = f->b.snap_tags;
    FzWriter w = { .b = b, .logical = logical };
    GHashTableIter it;
    gpointer key, value;
    CXLDCGroup *g;
    CXLDCRelease *rel;
    CXLDCRecord *rec;
    unsigned i, j;

    g_ptr_array_set_size(tags, 0);
    PUT(&w, dc->nr_regions);
    PUT(&w, dc->max_extents);
    PUT(&w, dc->max_tags);
    PUT(&w, dc->nr_hosts);
    PUT(&w, dc->nr_accepted);
    PUT(&w, dc->nr_pending);
    PUT(&w, dc->generation);
    PUT(&w, dc->next_group_id);
    PUT(&w, dc->next_release_id);
    PUT(&w, dc->nr_records);
    for (i = 0; i < dc->nr_regions; i++) {
        CXLDCRegion *r = &dc->regions[i];

        PUT(&w, r->base);
        PUT(&w, r->decode_len);
        PUT(&w, r->len);
        PUT(&w, r->block_size);
        PUT(&w, r->supported_block_sizes);
        PUT(&w, r->dsmad_handle);
        PUT(&w, r->flags);
        PUT(&w, r->shareable);
        PUT(&w, r->nr_accepted);
        put_root(&w, &r->accepted);
        tree_each(r->accepted.rb_root.rb_node, snap_visit, &w);
        put(&w, r->backed, BITS_TO_LONGS(r->len / r->block_size) *
            sizeof(unsigned long));
    }
    put_root(&w, &dc->pending);
    tree_each(dc->pending.rb_root.rb_node, snap_visit, &w);
    QTAILQ_FOREACH(g, &dc->groups, next) {
        if (!logical) {
            PUT(&w, (uintptr_t)g);
        }
        PUT(&w, g->id);
        PUT(&w, g->host_id);
        PUT(&w, g->region_id);
        PUT(&w, g->nr_extents);
        for (j = 0; j < g->nr_extents; j++) {
            put_extent(&w, g->extents[j]);
        }
        PUT(&w, g->nr_staged);
        put_root(&w, &g->staged);
        tree_each(g->staged.rb_root.rb_node, snap_visit, &w);
    }
    QTAILQ_FOREACH(rel, &dc->releases, next) {
        PUT(&w, rel->id);
        PUT(&w, rel->host_id);
        PUT(&w, rel->region_id);
        PUT(&w, rel->sanitize);
        PUT(&w, rel->nr_ranges);
        for (j = 0; j < rel->nr_ranges; j++) {
            PUT(&w, rel->ranges[j].start_dpa);
            PUT(&w, rel->ranges[j].len);
            put(&w, rel->ranges[j].tag, sizeof(rel->ranges[j].tag));
            PUT(&w, rel->ranges[j].shared_seq);
        }
    }
    QSIMPLEQ_FOREACH(rec, &dc->records, next) {
        /* Field by field: the padding holds whatever it holds */
        PUT(&w, rec->type);
        PUT(&w, rec->flags);
        PUT(&w, rec->host_id);
        PUT(&w, rec->region_id);
        PUT(&w, rec->dpa);
        PUT(&w, rec->len);
        put(&w, rec->tag.data, sizeof(rec->tag.data));
        PUT(&w, rec->shared_seq);
        PUT(&w, rec->extents_avail);
        PUT(&w, rec->tags_avail);
    }
    g_hash_table_iter_init(&it, dc->tags);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        g_ptr_array_add(tags, value);
    }
    g_ptr_array_sort(tags, tagref_cmp);
    for (i = 0; i < tags->len; i++) {
        /* DCTagRef: the tag, then a uint32_t count */
        put(&w, tags->pdata[i], sizeof(QemuUUID) + sizeof(uint32_t));
    }
    return w.pos;
}

/* Shadow model */

static const QemuUUID null_tag;

static CXLDCRegion *region(FzDC *f, uint8_t rid)
{
    return &f->dc.regions[rid];
}

static void sh_acc_insert(FzDC *f, const FzExt *e)
{
    unsigned i = 0;

    while (i < f->acc->len && g_array_index(f->acc, FzExt, i).start <
           e->start) {
        i++;
    }
    g_array_insert_val(f->acc, i, *e);
}

/* Remove [start, last] from the shadow's accepted extents. */
static void sh_acc_remove(FzDC *f, uint64_t start, uint64_t last)
{
    unsigned i = 0;

    while (i < f->acc->len) {
        FzExt e = g_array_index(f->acc, FzExt, i);
        uint64_t elast = e.start + e.len - 1;

        if (elast < start || e.start > last) {
            i++;
            continue;
        }
        g_array_remove_index(f->acc, i);
        if (e.start < start) {
            FzExt p = e;

            p.len = start - e.start;
            g_array_insert_val(f->acc, i, p);
            i++;
        }
        if (elast > last) {
            FzExt p = e;

            p.start = last + 1;
            p.len = elast - last;
            g_array_insert_val(f->acc, i, p);
            i++;
        }
    }
}

/*
 * Bytes of [start, last] in the shadow's accepted extents, which are
 * sorted and disjoint: a binary search finds the first that ends at or
 * after @start.
 */
static uint64_t sh_acc_coverage(FzDC *f, uint64_t start, uint64_t last)
{
    FzExt *a = (FzExt *)f->acc->data;
    uint64_t covered = 0;
    unsigned lo = 0, hi = f->acc->len, i;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;

        if (a[mid].start + a[mid].len - 1 < start) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (i = lo; i < f->acc->len && a[i].start <= last; i++) {
        uint64_t elast = a[i].start + a[i].len - 1;

        if (elast >= start) {
            covered += MIN(elast, last) - MAX(a[i].start, start) + 1;
        }
    }
    return covered;
}

static uint32_t sh_nr_pending(FzDC *f)
{
    uint32_t n = 0;
    GList *l;

    for (l = f->groups.head; l; l = l->next) {
        n += ((FzGroup *)l->data)->ext->len;
    }
    return n;
}

static void tag_count(GArray *counts, const QemuUUID *t)
{
    unsigned i;

    if (qemu_uuid_is_null(t)) {
        return;
    }
    for (i = 0; i < counts->len; i++) {
        FzTagCount *c = &g_array_index(counts, FzTagCount, i);

        if (qemu_uuid_is_equal(&c->tag, t)) {
            c->n++;
            return;
        }
    }
    g_array_append_val(counts, ((FzTagCount) { .tag = *t, .n = 1 }));
}

static void count_tags(GArray *counts, GArray *a)
{
    unsigned i;

    for (i = 0; i < a->len; i++) {
        tag_count(counts, &g_array_index(a, FzExt, i).tag);
    }
}

/* Non-null tags of the shadow's extents (accepted, pending, staged) */
static GArray *sh_tags(FzDC *f)
{
    GArray *counts = f->b.tags_sh;
    GList *l;

    g_array_set_size(counts, 0);
    count_tags(counts, f->acc);
    for (l = f->groups.head; l; l = l->next) {
        count_tags(counts, ((FzGroup *)l->data)->ext);
        count_tags(counts, ((FzGroup *)l->data)->staged);
    }
    return counts;
}

/*
 * Extents tracked now or once the oldest group is answered: the parts
 * of its response received so far may have split its extents.
 */
static uint32_t sh_extents_avail(FzDC *f)
{
    FzGroup *g = g_queue_peek_head(&f->groups);
    uint64_t used = (uint64_t)f->acc->len + sh_nr_pending(f);

    if (g && g->staged->len > g->ext->len) {
        used += g->staged->len - g->ext->len;
    }

    return used >= f->dc.max_extents ? 0 : f->dc.max_extents - used;
}

static uint32_t sh_tags_avail(FzDC *f)
{
    uint32_t used = sh_tags(f)->len;

    return used >= f->dc.max_tags ? 0 : f->dc.max_tags - used;
}

/* The availability that the records of the current call carry */
static void sh_records_begin(FzDC *f)
{
    f->rec_extents_avail = sh_extents_avail(f);
    f->rec_tags_avail = sh_tags_avail(f);
}

static void sh_record(FzDC *f, CXLDCRecordType type, uint16_t host_id,
                      uint8_t rid, uint64_t dpa, uint64_t len,
                      const QemuUUID *tag, bool more)
{
    CXLDCRecord *rec = g_new0(CXLDCRecord, 1);

    rec->type = type;
    rec->flags = more ? CXL_DC_EVENT_FLAG_MORE : 0;
    rec->host_id = host_id;
    rec->region_id = rid;
    rec->dpa = dpa;
    rec->len = len;
    rec->tag = *tag;
    rec->extents_avail = f->rec_extents_avail;
    rec->tags_avail = f->rec_tags_avail;
    g_queue_push_tail(&f->records, rec);
}

/* Retire release requests none of whose ranges is accepted any more. */
static void sh_settle_releases(FzDC *f)
{
    GList *l = f->releases.head;

    while (l) {
        GList *next = l->next;
        FzRelease *rel = l->data;
        bool done = true;
        unsigned i;

        for (i = 0; i < rel->ranges->len && done; i++) {
            FzExt *x = &g_array_index(rel->ranges, FzExt, i);

            done = !sh_acc_coverage(f, x->start, x->start + x->len - 1);
        }
        if (done) {
            release_free(rel);
            g_queue_delete_link(&f->releases, l);
        }
        l = next;
    }
}

/* Bytes of [start, last] covered by a sorted, merged list of ranges */
static uint64_t coverage(GArray *merged, uint64_t start, uint64_t last)
{
    uint64_t covered = 0;
    unsigned i;

    for (i = 0; i < merged->len; i++) {
        CXLDCRange *x = &g_array_index(merged, CXLDCRange, i);
        uint64_t xl = x->offset + x->len - 1;

        if (xl >= start && x->offset <= last) {
            covered += MIN(xl, last) - MAX(x->offset, start) + 1;
        }
    }
    return covered;
}

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const CXLDCRange *x = a, *y = b;

    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static GArray *merge_ranges(FzDC *f, GArray *in)
{
    GArray *out = fz_tmp(f);
    GArray *s = fz_tmp(f);
    unsigned i;

    g_array_append_vals(s, in->data, in->len);
    g_array_sort(s, range_cmp);
    for (i = 0; i < s->len; i++) {
        CXLDCRange x = g_array_index(s, CXLDCRange, i);
        CXLDCRange *last = out->len ?
            &g_array_index(out, CXLDCRange, out->len - 1) : NULL;

        if (last && x.offset <= last->offset + last->len) {
            last->len = MAX(last->offset + last->len, x.offset + x.len) -
                        last->offset;
        } else {
            g_array_append_val(out, x);
        }
    }
    return out;
}

/*
 * Capacity [start, last] of each of @released left the accepted set:
 * every byte of it that an outstanding release request with sanitize
 * (or the request itself, @all) covers must have been sanitized, and
 * nothing else may have been.
 */
static void check_sanitized(FzDC *f, GArray *released, GArray *sanitize_req,
                            bool all)
{
    GArray *rel = merge_ranges(f, released);
    GArray *san = merge_ranges(f, f->b.sanitized);
    GArray *req = merge_ranges(f, sanitize_req);
    unsigned i, j;

    for (i = 0; i < f->b.sanitized->len; i++) {
        CXLDCRange *s = &g_array_index(f->b.sanitized, CXLDCRange, i);

        FZ_CHECK(s->len && coverage(rel, s->offset, s->offset + s->len - 1)
                 == s->len, "sanitized dpa 0x%" PRIx64 " len 0x%" PRIx64
                 " was not released", s->offset, s->len);
    }
    for (i = 0; i < rel->len; i++) {
        CXLDCRange *x = &g_array_index(rel, CXLDCRange, i);
        uint64_t xl = x->offset + x->len - 1;

        if (all) {
            FZ_CHECK(coverage(san, x->offset, xl) == x->len,
                     "released dpa 0x%" PRIx64 " len 0x%" PRIx64 " with"
                     " sanitize, but it was not all sanitized", x->offset,
                     x->len);
            continue;
        }
        for (j = 0; j < req->len; j++) {
            CXLDCRange *y = &g_array_index(req, CXLDCRange, j);
            uint64_t a = MAX(x->offset, y->offset);
            uint64_t b = MIN(xl, y->offset + y->len - 1);

            FZ_CHECK(a > b || coverage(san, a, b) == b - a + 1,
                     "released dpa 0x%" PRIx64 "-0x%" PRIx64 " of a release"
                     " request with sanitize, but it was not sanitized",
                     a, b);
        }
    }
}

/* Ranges of outstanding release requests that asked for sanitize */
static GArray *sh_sanitize_ranges(FzDC *f)
{
    GArray *a = fz_tmp(f);
    GList *l;
    unsigned i;

    for (l = f->releases.head; l; l = l->next) {
        FzRelease *rel = l->data;

        for (i = 0; rel->sanitize && i < rel->ranges->len; i++) {
            FzExt *x = &g_array_index(rel->ranges, FzExt, i);
            CXLDCRange r = { x->start, x->len };

            g_array_append_val(a, r);
        }
    }
    return a;
}

/* Notices */

/* Sorted, merged ranges equal? */
static bool same_ranges(FzDC *f, GArray *a, GArray *b)
{
    GArray *x = merge_ranges(f, a);
    GArray *y = merge_ranges(f, b);

    return x->len == y->len &&
           !memcmp(x->data, y->data, x->len * sizeof(CXLDCRange));
}

/*
 * Check the notices of @type given by the current call: each in one
 * region, its extents sorted, disjoint and inside it; together they
 * cover exactly @expect (may be NULL: none expected).  Returns how many
 * notices of @type there were.
 */
static unsigned check_notices(FzDC *f, CXLDCNoticeType type, GArray *expect,
                              const char *what)
{
    GArray *got = fz_tmp(f);
    unsigned i, j, count = 0;

    for (i = 0; i < f->b.notices->len; i++) {
        FzNotice *x = &g_array_index(f->b.notices, FzNotice, i);
        CXLDCRegion *r;

        FZ_CHECK(x->n.type <= CXL_DC_NOTICE_SANITIZED, "%s: notice type %d",
                 what, x->n.type);
        if (x->n.type != type) {
            continue;
        }
        count++;
        FZ_CHECK(x->n.region_id < f->dc.nr_regions && x->n.nr_extents,
                 "%s: notice %d of region %u with %u extents", what, type,
                 x->n.region_id, x->n.nr_extents);
        r = region(f, x->n.region_id);
        for (j = 0; j < x->n.nr_extents + x->n.nr_declined; j++) {
            CXLDCRange *e = &g_array_index(f->b.notice_ranges, CXLDCRange,
                                           x->first + j);
            CXLDCRange *prev = j && j != x->n.nr_extents ? e - 1 : NULL;

            FZ_CHECK(e->len && e->offset >= r->base &&
                     e->offset + e->len > e->offset &&
                     e->offset + e->len <= r->base + r->len &&
                     (!prev || prev->offset + prev->len <= e->offset),
                     "%s: notice %d extent 0x%" PRIx64 " len 0x%" PRIx64
                     " is not sorted inside region %u", what, type,
                     e->offset, e->len, x->n.region_id);
            if (j < x->n.nr_extents) {
                g_array_append_val(got, *e);
            }
        }
    }
    if (expect) {
        FZ_CHECK(same_ranges(f, got, expect), "%s: notices %d name other"
                 " capacity than changed", what, type);
    } else {
        FZ_CHECK(!count, "%s: %u unexpected notices %d", what, count, type);
    }
    return count;
}

/* Notices of a call that changed no accepted capacity: none */
static void check_no_notices(FzDC *f, const char *what)
{
    FZ_CHECK(!f->b.notices->len, "%s gave %u notices", what, f->b.notices->len);
}

/*
 * Notices of a release of @released: RELEASED with @reason, and
 * SANITIZED for exactly what was sanitized.
 */
static void check_release_notices(FzDC *f, GArray *released,
                                  CXLDCReleaseReason reason,
                                  const char *what)
{
    unsigned i;

    check_notices(f, CXL_DC_NOTICE_RELEASED, released, what);
    check_notices(f, CXL_DC_NOTICE_SANITIZED,
                  f->b.sanitized->len ? f->b.sanitized : NULL, what);
    check_notices(f, CXL_DC_NOTICE_ACCEPTED, NULL, what);
    check_notices(f, CXL_DC_NOTICE_REJECTED, NULL, what);
    for (i = 0; i < f->b.notices->len; i++) {
        FzNotice *x = &g_array_index(f->b.notices, FzNotice, i);

        FZ_CHECK(x->n.type != CXL_DC_NOTICE_RELEASED || x->n.reason == reason,
                 "%s: released with reason %d, expected %d", what,
                 x->n.reason, reason);
    }
}

/* Checked calls */

void fz_state_changed(FzDC *f)
{
    f->snap_valid = false;
    f->checked = false;
}

/* Is the state what the last snapshot before a call saw? */
static bool fz_state_unchanged(FzDC *f)
{
    f->snap_after_len = snapshot(f, f->b.snap_after, false);
    return f->snap_valid && f->snap_after_len == f->snap_before_len &&
           !memcmp(f->b.snap_after->data, f->b.snap_before->data,
                   f->snap_after_len);
}

typedef struct FzCall {
    uint32_t generation;
} FzCall;

static void call_begin(FzDC *f, FzCall *c)
{
    if (!f->snap_valid) {
        f->snap_before_len = snapshot(f, f->b.snap_before, false);
        f->snap_valid = true;
        f->snap_checked = f->checked;
    }
    f->tmp_used = 0;
    c->generation = f->dc.generation;
    g_array_set_size(f->b.acc_before, 0);
    g_array_append_vals(f->b.acc_before, f->acc->data, f->acc->len);
    g_array_set_size(f->b.sanitized, 0);
    f->queued_calls = 0;
    g_array_set_size(f->b.notices, 0);
    g_array_set_size(f->b.notice_ranges, 0);
}

static bool ext_equal(const FzExt *a, const FzExt *b)
{
    return a->start == b->start && a->len == b->len &&
           qemu_uuid_is_equal(&a->tag, &b->tag) && a->seq == b->seq &&
           a->rid == b->rid;
}

static bool acc_changed(GArray *a, GArray *b)
{
    unsigned i;

    if (a->len != b->len) {
        return true;
    }
    for (i = 0; i < a->len; i++) {
        if (!ext_equal(&g_array_index(a, FzExt, i),
                       &g_array_index(b, FzExt, i))) {
            return true;
        }
    }
    return false;
}

/*
 * End of a call: @ok says whether it succeeded, @err is its error.  A
 * failure must leave the state exactly as it was; a success must have
 * moved the generation iff the accepted list changed.
 */
/* FUZZ_DC_DEBUG=1 in the environment traces every call to stderr. */
static bool debug(void)
{
    static int on = -1;

    if (on < 0) {
        on = !!getenv("FUZZ_DC_DEBUG");
    }
    return on;
}

static void call_end(FzDC *f, FzCall *c, bool ok, Error *err,
                     const char *what)
{
    if (debug()) {
        fprintf(stderr, "fuzz-dc: %s: %s (%u accepted, %u pending, %u"
                " records)\n", what, ok ? "ok" : error_get_pretty(err),
                f->dc.nr_accepted, f->dc.nr_pending, f->dc.nr_records);
    }
    if (!ok) {
        FZ_CHECK(err, "%s failed without an error", what);
        FZ_CHECK(*error_get_pretty(err), "%s failed with an empty error",
                 what);
        FZ_CHECK(fz_state_unchanged(f), "%s failed (%s) but changed the"
                 " state", what, error_get_pretty(err));
        FZ_CHECK(!f->b.sanitized->len, "%s failed (%s) but sanitized", what,
                 error_get_pretty(err));
        FZ_CHECK(!f->queued_calls, "%s failed (%s) but queued records",
                 what, error_get_pretty(err));
        FZ_CHECK(!f->b.notices->len, "%s failed (%s) but gave %u notices",
                 what, error_get_pretty(err), f->b.notices->len);
        f->failed_calls++;
    } else {
        FZ_CHECK(!err, "%s succeeded with an error: %s", what,
                 error_get_pretty(err));
        fz_state_changed(f);
        f->ok_calls++;
    }
    if (err) {
        error_free(err);
    }
    if (acc_changed(f->b.acc_before, f->acc)) {
        f->generation = f->dc.generation;
        FZ_CHECK(f->dc.generation != c->generation, "%s changed the"
                 " accepted extents but not the generation %u", what,
                 c->generation);
    } else {
        FZ_CHECK(f->dc.generation == c->generation, "%s moved the"
                 " generation from %u to %u but changed no accepted extent",
                 what, c->generation, f->dc.generation);
    }
    /*
     * A failed call left the state as the snapshot saw it, down to the
     * tree links: if fz_check() passed on that state, it passes again.
     */
    if (ok || !f->snap_checked) {
        fz_check(f);
    }
}

static FzGroup *group_new(uint64_t id, uint16_t host_id, uint8_t rid)
{
    FzGroup *g = g_new0(FzGroup, 1);

    g->id = id;
    g->host_id = host_id;
    g->rid = rid;
    g->ext = g_array_new(false, false, sizeof(FzExt));
    g->staged = g_array_new(false, false, sizeof(FzExt));
    return g;
}

static gint fzext_cmp(gconstpointer a, gconstpointer b)
{
    const FzExt *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

bool fz_offer_add(FzDC *f, const CXLDCAddRequest *req)
{
    FzCall c = {};
    Error *err = NULL;
    uint64_t gid = UINT64_MAX;
    bool ok;
    FzGroup *g;
    unsigned i;

    call_begin(f, &c);
    ok = cxl_dc_offer_add(&f->dc, req, &gid, &err);
    if (ok) {
        CXLDCGroup *eg = QTAILQ_LAST(&f->dc.groups);
        CXLDCRegion *r = region(f, req->region_id);
        const QemuUUID *tag = req->has_tag ? &req->tag : &null_tag;
        uint64_t total = 0;

        FZ_CHECK(req->policy == CXL_DC_SELECT_FREE ||
                 req->policy == CXL_DC_SELECT_CONTIGUOUS ||
                 req->policy == CXL_DC_SELECT_PRESCRIPTIVE,
                 "add with policy %d succeeded", req->policy);
        FZ_CHECK(req->host_id == 0 && req->region_id < f->dc.nr_regions,
                 "add for host %u region %u succeeded", req->host_id,
                 req->region_id);
        FZ_CHECK(gid == f->next_group_id && eg && eg->id == gid,
                 "add returned group %" PRIu64 ", expected %" PRIu64, gid,
                 f->next_group_id);
        g = group_new(f->next_group_id++, req->host_id, req->region_id);
        if (req->policy == CXL_DC_SELECT_PRESCRIPTIVE) {
            for (i = 0; i < req->nr_ranges; i++) {
                FzExt e = {
                    .start = r->base + req->ranges[i].offset,
                    .len = req->ranges[i].len,
                    .tag = *tag,
                    .rid = req->region_id,
                };

                g_array_append_val(g->ext, e);
            }
            g_array_sort(g->ext, fzext_cmp);
        } else {
            /* The device chose: check its choice is free capacity. */
            FZ_CHECK(req->nr_ranges == 0, "free/contiguous add with %u"
                     " ranges succeeded", req->nr_ranges);
            for (i = 0; i < eg->nr_extents; i++) {
                FzExt e = {
                    .start = eg->extents[i]->node.start,
                    .len = cxl_dc_extent_len(eg->extents[i]),
                    .tag = *tag,
                    .rid = req->region_id,
                };
                uint64_t last = e.start + e.len - 1;
                GList *l;
                unsigned j;

                FZ_CHECK(e.start >= r->base && last < r->base + r->len &&
                         last >= e.start, "chosen extent 0x%" PRIx64
                         " len 0x%" PRIx64 " is outside region %u", e.start,
                         e.len, req->region_id);
                FZ_CHECK(!sh_acc_coverage(f, e.start, last), "chosen"
                         " extent 0x%" PRIx64 " overlaps accepted capacity",
                         e.start);
                for (l = f->groups.head; l; l = l->next) {
                    GArray *ge = ((FzGroup *)l->data)->ext;

                    for (j = 0; j < ge->len; j++) {
                        FzExt *p = &g_array_index(ge, FzExt, j);

                        FZ_CHECK(p->start + p->len - 1 < e.start ||
                                 p->start > last, "chosen extent 0x%"
                                 PRIx64 " overlaps pending 0x%" PRIx64,
                                 e.start, p->start);
                    }
                }
                total += e.len;
                g_array_append_val(g->ext, e);
            }
            FZ_CHECK(total == req->len, "device chose 0x%" PRIx64 " bytes"
                     " for an add of 0x%" PRIx64, total, req->len);
            FZ_CHECK(req->policy != CXL_DC_SELECT_CONTIGUOUS ||
                     eg->nr_extents == 1, "contiguous add chose %u extents",
                     eg->nr_extents);
        }
        g_queue_push_tail(&f->groups, g);
        sh_records_begin(f);
        for (i = 0; i < g->ext->len; i++) {
            FzExt *e = &g_array_index(g->ext, FzExt, i);

            sh_record(f, CXL_DC_EVENT_ADD_CAPACITY, req->host_id,
                      req->region_id, e->start, e->len, &e->tag,
                      i + 1 < g->ext->len);
        }
        FZ_CHECK(f->queued_calls == 1, "add queued records %u times",
                 f->queued_calls);
        FZ_CHECK(!f->b.sanitized->len, "add sanitized");
        check_no_notices(f, "offer add");
    }
    call_end(f, &c, ok, err, "offer add");
    return ok;
}

bool fz_request_release(FzDC *f, const CXLDCReleaseRequest *req)
{
    FzCall c = {};
    Error *err = NULL;
    bool ok;
    unsigned i;

    call_begin(f, &c);
    ok = cxl_dc_request_release(&f->dc, req, &err);
    if (ok) {
        CXLDCRegion *r = region(f, req->region_id);
        const QemuUUID *tag = req->has_tag ? &req->tag : &null_tag;
        GArray *spans = f->b.spans;
        GArray *released = fz_tmp(f);
        GArray *san = sh_sanitize_ranges(f);

        FZ_CHECK(req->host_id == 0 && req->region_id < f->dc.nr_regions,
                 "release for host %u region %u succeeded", req->host_id,
                 req->region_id);
        g_array_set_size(spans, 0);
        if (req->policy == CXL_DC_REMOVE_PRESCRIPTIVE) {
            for (i = 0; i < req->nr_ranges; i++) {
                FzExt e = {
                    .start = r->base + req->ranges[i].offset,
                    .len = req->ranges[i].len,
                };

                FZ_CHECK(sh_acc_coverage(f, e.start, e.start + e.len - 1) ==
                         e.len, "release of 0x%" PRIx64 " len 0x%" PRIx64
                         " succeeded, but it is not all accepted", e.start,
                         e.len);
                g_array_append_val(spans, e);
            }
            g_array_sort(spans, fzext_cmp);
        } else {
            FZ_CHECK(req->policy == CXL_DC_REMOVE_TAG_BASED &&
                     req->has_tag && !qemu_uuid_is_null(&req->tag),
                     "release with policy %d succeeded", req->policy);
            for (i = 0; i < f->acc->len; i++) {
                FzExt e = g_array_index(f->acc, FzExt, i);

                if (e.rid == req->region_id &&
                    qemu_uuid_is_equal(&e.tag, &req->tag)) {
                    g_array_append_val(spans, e);
                }
            }
            FZ_CHECK(spans->len, "tag release matched no extent");
        }
        for (i = 0; i < spans->len; i++) {
            FzExt *e = &g_array_index(spans, FzExt, i);
            CXLDCRange x = { e->start, e->len };

            g_array_append_val(released, x);
        }
        if (req->forced) {
            for (i = 0; i < spans->len; i++) {
                FzExt *e = &g_array_index(spans, FzExt, i);

                sh_acc_remove(f, e->start, e->start + e->len - 1);
            }
            check_sanitized(f, released, san, req->sanitize);
            check_release_notices(f, released, CXL_DC_RELEASE_FORCED,
                                  "forced release");
            sh_settle_releases(f);
        } else {
            FzRelease *rel = g_new0(FzRelease, 1);

            FZ_CHECK(!f->b.sanitized->len, "a release request sanitized");
            check_no_notices(f, "release request");
            rel->id = f->next_release_id++;
            rel->rid = req->region_id;
            rel->sanitize = req->sanitize;
            rel->ranges = g_array_copy(spans);
            g_queue_push_tail(&f->releases, rel);
        }
        sh_records_begin(f);
        for (i = 0; i < spans->len; i++) {
            FzExt *e = &g_array_index(spans, FzExt, i);

            sh_record(f, req->forced ? CXL_DC_EVENT_FORCED_CAPACITY_RELEASE
                                     : CXL_DC_EVENT_RELEASE_CAPACITY,
                      req->host_id, req->region_id, e->start, e->len, tag,
                      i + 1 < spans->len);
        }
        FZ_CHECK(f->queued_calls == 1, "release queued records %u times",
                 f->queued_calls);
    }
    call_end(f, &c, ok, err, "request release");
    return ok;
}

/* The pending extent of @g holding all of [start, last], or NULL */
static FzExt *group_extent(FzGroup *g, uint64_t start, uint64_t last)
{
    unsigned i;

    for (i = 0; i < g->ext->len; i++) {
        FzExt *e = &g_array_index(g->ext, FzExt, i);

        if (e->start <= start && last <= e->start + e->len - 1) {
            return e;
        }
    }
    return NULL;
}

CXLDCStatus fz_host_add_response(FzDC *f, const CXLDCExtentRaw *ranges,
                                 uint32_t n, bool more)
{
    FzCall c = {};
    Error *err = NULL;
    CXLDCStatus st;
    unsigned i;

    call_begin(f, &c);
    st = cxl_dc_host_add_response(&f->dc, ranges, n, more, &err);
    FZ_CHECK(st <= CXL_DC_UNSUPPORTED, "add response returned %d", st);
    if (st == CXL_DC_OK) {
        FzGroup *g = g_queue_peek_head(&f->groups);

        FZ_CHECK(g, "add response with no pending add succeeded");
        for (i = 0; i < n; i++) {
            uint64_t s = ranges[i].start_dpa, l = s + ranges[i].len - 1;
            FzExt *e = group_extent(g, s, l);
            FzExt x;

            FZ_CHECK(ranges[i].len && l >= s && e, "add response accepted"
                     " 0x%" PRIx64 " len 0x%" PRIx64 ", not inside one"
                     " extent of group %" PRIu64, s, ranges[i].len, g->id);
            x = *e;
            x.start = s;
            x.len = ranges[i].len;
            g_array_append_val(g->staged, x);
        }
        if (!more) {
            GArray *offered = fz_tmp(f);
            GArray *staged = fz_tmp(f);
            unsigned nr;

            for (i = 0; i < g->ext->len; i++) {
                FzExt *e = &g_array_index(g->ext, FzExt, i);
                CXLDCRange x = { e->start, e->len };

                g_array_append_val(offered, x);
            }
            for (i = 0; i < g->staged->len; i++) {
                FzExt *e = &g_array_index(g->staged, FzExt, i);
                CXLDCRange x = { e->start, e->len };

                g_array_append_val(staged, x);
                sh_acc_insert(f, e);
            }
            nr = check_notices(f, CXL_DC_NOTICE_ACCEPTED,
                               staged->len ? staged : NULL, "add response");
            nr += check_notices(f, CXL_DC_NOTICE_REJECTED,
                                staged->len ? NULL : offered, "add response");
            FZ_CHECK(nr == 1 && f->b.notices->len == 1, "add response gave"
                     " %u notices", f->b.notices->len);
            if (staged->len) {
                FzNotice *x = &g_array_index(f->b.notices, FzNotice, 0);
                uint64_t covered = 0, total = 0;

                /* Accepted and declined together are what was offered */
                for (i = 0; i < x->n.nr_declined; i++) {
                    CXLDCRange *d = &g_array_index(
                        f->b.notice_ranges, CXLDCRange,
                        x->first + x->n.nr_extents + i);

                    covered += d->len;
                    g_array_append_val(staged, *d);
                }
                for (i = 0; i < offered->len; i++) {
                    total += g_array_index(offered, CXLDCRange, i).len;
                }
                for (i = 0; i < g->staged->len; i++) {
                    covered += g_array_index(g->staged, FzExt, i).len;
                }
                FZ_CHECK(covered == total && same_ranges(f, staged, offered),
                         "add response: accepted and declined capacity is"
                         " not what was offered");
            }
            FZ_CHECK(g_array_index(f->b.notices, FzNotice, 0).n.host_id ==
                     g->host_id, "add response notice names another host");
            group_free(g_queue_pop_head(&f->groups));
        } else {
            check_no_notices(f, "add response part");
        }
        FZ_CHECK(!f->queued_calls && !f->b.sanitized->len,
                 "add response queued records or sanitized");
    }
    call_end(f, &c, st == CXL_DC_OK, err, "add response");
    return st;
}

CXLDCStatus fz_host_release(FzDC *f, const CXLDCExtentRaw *ranges,
                            uint32_t n)
{
    FzCall c = {};
    Error *err = NULL;
    CXLDCStatus st;
    unsigned i;

    call_begin(f, &c);
    st = cxl_dc_host_release(&f->dc, ranges, n, &err);
    FZ_CHECK(st <= CXL_DC_UNSUPPORTED, "host release returned %d", st);
    if (st == CXL_DC_OK) {
        GArray *released = fz_tmp(f);
        GArray *san = sh_sanitize_ranges(f);
        bool requested = false;
        GList *rl;

        for (i = 0; i < n; i++) {
            uint64_t s = ranges[i].start_dpa, l = s + ranges[i].len - 1;
            CXLDCRange x = { s, ranges[i].len };

            FZ_CHECK(ranges[i].len && l >= s &&
                     sh_acc_coverage(f, s, l) == ranges[i].len,
                     "host release of 0x%" PRIx64 " len 0x%" PRIx64
                     " succeeded, but it is not all accepted", s,
                     ranges[i].len);
            g_array_append_val(released, x);
            for (rl = f->releases.head; rl; rl = rl->next) {
                GArray *rr = ((FzRelease *)rl->data)->ranges;
                unsigned j;

                for (j = 0; j < rr->len; j++) {
                    FzExt *y = &g_array_index(rr, FzExt, j);

                    requested |= y->start <= l && s <= y->start + y->len - 1;
                }
            }
        }
        for (i = 0; i < n; i++) {
            sh_acc_remove(f, ranges[i].start_dpa,
                          ranges[i].start_dpa + ranges[i].len - 1);
        }
        check_sanitized(f, released, san, false);
        check_release_notices(f, released, requested ? CXL_DC_RELEASE_REQUESTED
                                                     : CXL_DC_RELEASE_HOST,
                              "host release");
        sh_settle_releases(f);
        FZ_CHECK(!f->queued_calls, "host release queued records");
    }
    call_end(f, &c, st == CXL_DC_OK, err, "host release");
    return st;
}

uint32_t fz_get_extents(FzDC *f, uint32_t start, uint32_t max)
{
    uint32_t expect = start < f->acc->len ? MIN(max, f->acc->len - start)
                                          : 0;
    /*
     * Room for the entries the engine must write and no more, so that
     * ASan sees a write past them (one zeroed entry when none is due)
     */
    g_autofree CXLDCExtentRaw *out = g_new0(CXLDCExtentRaw, MAX(expect, 1));
    uint32_t gen = f->dc.generation;
    uint32_t n, i;

    n = cxl_dc_get_extents(&f->dc, start, max, out);
    if (debug()) {
        fprintf(stderr, "fuzz-dc: get extents %u+%u: %u\n", start, max, n);
    }
    FZ_CHECK(n == expect, "get extents %u+%u returned %u, expected %u",
             start, max, n, expect);
    FZ_CHECK(expect || buffer_is_zero(out, sizeof(*out)), "get extents %u+%u"
             " wrote an entry past the end of the list", start, max);
    for (i = 0; i < n; i++) {
        FzExt *e = &g_array_index(f->acc, FzExt, start + i);

        FZ_CHECK(ldq_le_p(&out[i].start_dpa) == e->start &&
                 ldq_le_p(&out[i].len) == e->len &&
                 !memcmp(out[i].tag, e->tag.data, 16) &&
                 lduw_le_p(&out[i].shared_seq) == e->seq,
                 "get extents %u+%u: entry %u is 0x%" PRIx64 " len 0x%"
                 PRIx64 ", expected 0x%" PRIx64 " len 0x%" PRIx64, start,
                 max, i, ldq_le_p(&out[i].start_dpa),
                 ldq_le_p(&out[i].len), e->start, e->len);
    }
    FZ_CHECK(f->dc.generation == gen, "get extents moved the generation");
    return n;
}

CXLDCStatus fz_set_block_size(FzDC *f, uint8_t rid, uint64_t block_size)
{
    FzCall c = {};
    Error *err = NULL;
    CXLDCStatus st;
    uint64_t old = rid < f->dc.nr_regions ? region(f, rid)->block_size : 0;

    call_begin(f, &c);
    st = cxl_dc_set_block_size(&f->dc, rid, block_size, &err);
    FZ_CHECK(st <= CXL_DC_UNSUPPORTED, "set block size returned %d", st);
    if (st == CXL_DC_OK) {
        CXLDCRegion *r = region(f, rid);
        GList *l;

        FZ_CHECK(r->block_size == block_size && is_power_of_2(block_size) &&
                 !(r->len % block_size), "block size 0x%" PRIx64 " set"
                 " for region %u of length 0x%" PRIx64, block_size, rid,
                 r->len);
        FZ_CHECK(!sh_acc_coverage(f, r->base, r->base + r->len - 1),
                 "block size of region %u changed while it holds accepted"
                 " extents", rid);
        for (l = f->groups.head; l; l = l->next) {
            FZ_CHECK(((FzGroup *)l->data)->rid != rid, "block size of"
                     " region %u changed while it holds pending extents",
                     rid);
        }
        if (old != block_size) {
            sh_records_begin(f);
            sh_record(f, CXL_DC_EVENT_REGION_CONFIG_UPDATED, 0, rid, 0, 0,
                      &null_tag, false);
        }
    }
    call_end(f, &c, st == CXL_DC_OK, err, "set block size");
    return st;
}

void fz_record_pop(FzDC *f)
{
    FZ_CHECK(!cxl_dc_record_peek(&f->dc) == !f->records.length,
             "record queue emptiness differs");
    cxl_dc_record_pop(&f->dc);
    fz_state_changed(f);
    g_free(g_queue_pop_head(&f->records));
    fz_check(f);
}

void fz_clear(FzDC *f)
{
    uint32_t gen = f->dc.generation;
    bool had = f->acc->len;

    cxl_dc_clear(&f->dc);
    fz_state_changed(f);
    g_array_set_size(f->acc, 0);
    g_queue_clear_full(&f->groups, group_free);
    g_queue_clear_full(&f->releases, release_free);
    g_queue_clear_full(&f->records, g_free);
    FZ_CHECK(had ? f->dc.generation != gen : f->dc.generation == gen,
             "clear: generation %u -> %u with %s accepted extents", gen,
             f->dc.generation, had ? "some" : "no");
    f->generation = f->dc.generation;
    fz_check(f);
}

void fz_is_backed(FzDC *f, uint64_t dpa, uint64_t len)
{
    bool got = cxl_dc_is_backed(&f->dc, dpa, len);
    bool expect = false;
    unsigned i;

    if (len && dpa + len > dpa) {
        for (i = 0; i < f->dc.nr_regions; i++) {
            CXLDCRegion *r = region(f, i);

            if (dpa >= r->base && dpa + len <= r->base + r->len) {
                expect = sh_acc_coverage(f, dpa, dpa + len - 1) == len;
            }
        }
    }
    FZ_CHECK(got == expect, "is_backed(0x%" PRIx64 ", 0x%" PRIx64 ") is %d",
             dpa, len, got);
}

/* Migration */

/* The region of the harness's device holding DPA @dpa, or -1 */
static int region_of(FzDC *f, uint64_t dpa)
{
    unsigned i;

    for (i = 0; i < f->dc.nr_regions; i++) {
        if (dpa >= region(f, i)->base &&
            dpa - region(f, i)->base < region(f, i)->len) {
            return i;
        }
    }
    return -1;
}

/*
 * The shadow of a state loaded from @snap, built from @snap alone: the
 * checker then compares the engine with it.  The engine accepted @snap,
 * so what its checks must have refused fails here.
 */
static void sh_load(FzDC *f, const CXLDCSnapshot *snap)
{
    g_autofree FzGroup **groups = g_new0(FzGroup *, MAX(snap->nr_groups, 1));
    uint32_t i, j, ranges = 0;

    g_array_set_size(f->acc, 0);
    g_queue_clear_full(&f->groups, group_free);
    g_queue_clear_full(&f->releases, release_free);
    g_queue_clear_full(&f->records, g_free);
    for (i = 0; i < snap->nr_groups; i++) {
        const CXLDCSavedGroup *s = &snap->groups[i];

        groups[i] = group_new(s->id, s->host_id, s->region_id);
        g_queue_push_tail(&f->groups, groups[i]);
    }
    for (i = 0; i < snap->nr_extents; i++) {
        const CXLDCSavedExtent *s = &snap->extents[i];
        int rid = region_of(f, s->dpa);
        FzExt x = {
            .start = s->dpa, .len = s->len, .seq = s->shared_seq, .rid = rid,
        };

        memcpy(x.tag.data, s->tag, sizeof(x.tag.data));
        FZ_CHECK(rid >= 0 && s->kind <= CXL_DC_SAVED_STAGED &&
                 (s->kind == CXL_DC_SAVED_ACCEPTED ||
                  s->group < snap->nr_groups), "load accepted extent %u:"
                 " dpa 0x%" PRIx64 " kind %u group %u", i, s->dpa, s->kind,
                 s->group);
        switch (s->kind) {
        case CXL_DC_SAVED_ACCEPTED:
            g_array_append_val(f->acc, x);
            break;
        case CXL_DC_SAVED_PENDING:
            g_array_append_val(groups[s->group]->ext, x);
            break;
        case CXL_DC_SAVED_STAGED:
            g_array_append_val(groups[s->group]->staged, x);
            break;
        }
    }
    g_array_sort(f->acc, fzext_cmp);
    for (i = 0; i < snap->nr_releases; i++) {
        const CXLDCSavedRelease *s = &snap->releases[i];
        FzRelease *rel = g_new0(FzRelease, 1);

        FZ_CHECK(s->nr_ranges <= snap->nr_ranges - ranges, "load accepted"
                 " release request %u with %u ranges, %u left", i,
                 s->nr_ranges, snap->nr_ranges - ranges);
        rel->id = s->id;
        rel->rid = s->region_id;
        rel->sanitize = s->sanitize;
        rel->ranges = g_array_new(false, false, sizeof(FzExt));
        for (j = 0; j < s->nr_ranges; j++, ranges++) {
            FzExt x = {
                .start = snap->ranges[ranges].dpa,
                .len = snap->ranges[ranges].len,
            };

            g_array_append_val(rel->ranges, x);
        }
        g_queue_push_tail(&f->releases, rel);
    }
    for (i = 0; i < snap->nr_records; i++) {
        const CXLDCSavedRecord *s = &snap->records[i];
        CXLDCRecord *rec = g_new0(CXLDCRecord, 1);

        rec->type = s->type;
        rec->flags = s->flags;
        rec->host_id = s->host_id;
        rec->region_id = s->region_id;
        rec->dpa = s->dpa;
        rec->len = s->len;
        memcpy(rec->tag.data, s->tag, sizeof(rec->tag.data));
        rec->shared_seq = s->shared_seq;
        rec->extents_avail = s->extents_avail;
        rec->tags_avail = s->tags_avail;
        g_queue_push_tail(&f->records, rec);
    }
    f->next_group_id = snap->next_group_id;
    f->next_release_id = snap->next_release_id;
    f->generation = snap->generation;
}

bool fz_load(FzDC *f, const CXLDCSnapshot *snap)
{
    FzCall c = {};
    Error *err = NULL;
    unsigned i;

    call_begin(f, &c);
    if (!cxl_dc_load(&f->dc, snap, &err)) {
        /* Nothing changed: same checks as for any failed call */
        call_end(f, &c, false, err, "load");
        return false;
    }
    if (debug()) {
        fprintf(stderr, "fuzz-dc: load: ok (%u accepted, %u pending, %u"
                " records)\n", f->dc.nr_accepted, f->dc.nr_pending,
                f->dc.nr_records);
    }
    FZ_CHECK(!err, "load succeeded with an error: %s",
             error_get_pretty(err));
    FZ_CHECK(!f->b.sanitized->len && !f->queued_calls &&
             !f->b.notices->len, "load sanitized, queued records or gave"
             " notices");
    fz_state_changed(f);
    f->ok_calls++;
    sh_load(f, snap);
    for (i = 0; i < f->dc.nr_regions; i++) {
        FZ_CHECK(region(f, i)->block_size == snap->regions[i].block_size,
                 "region %u: block size 0x%" PRIx64 " after loading 0x%"
                 PRIx64, i, region(f, i)->block_size,
                 snap->regions[i].block_size);
    }
    fz_check(f);
    return true;
}

bool fz_same_state(FzDC *a, FzDC *b)
{
    size_t la = snapshot(a, a->b.snap_after, true);
    size_t lb = snapshot(b, b->b.snap_after, true);

    return la == lb && !memcmp(a->b.snap_after->data, b->b.snap_after->data,
                               la);
}

/* Invariants, by independent walks of the engine's structures */

typedef struct WalkCtx {
    FzDC *f;
    uint32_t si;                /* accepted: index in the shadow */
    CXLDCRegion *r;
    uint8_t rid;
    unsigned count;
    bool have_prev;
    uint64_t prev_last;
    unsigned long *backed;
    CXLDCGroup *group;          /* staged: its group */
} WalkCtx;

static void check_in_region(FzDC *f, CXLDCExtent *e, const char *what)
{
    CXLDCRegion *r;

    FZ_CHECK(e->region_id < f->dc.nr_regions, "%s extent 0x%" PRIx64 " has"
             " region %u", what, e->node.start, e->region_id);
    r = region(f, e->region_id);
    FZ_CHECK(e->node.start >= r->base && e->node.last <= r->base + r->len - 1
             && e->node.start <= e->node.last, "%s extent 0x%" PRIx64
             "-0x%" PRIx64 " is outside region %u", what, e->node.start,
             e->node.last, e->region_id);
    FZ_CHECK(!((e->node.start - r->base) % r->block_size) &&
             !(cxl_dc_extent_len(e) % r->block_size), "%s extent 0x%" PRIx64
             " len 0x%" PRIx64 " is not aligned to block size 0x%" PRIx64,
             what, e->node.start, cxl_dc_extent_len(e), r->block_size);
}

static void disjoint_in_order(WalkCtx *w, CXLDCExtent *e, const char *what)
{
    FZ_CHECK(!w->have_prev || w->prev_last < e->node.start, "%s extent 0x%"
             PRIx64 " overlaps or precedes the one ending at 0x%" PRIx64,
             what, e->node.start, w->prev_last);
    w->have_prev = true;
    w->prev_last = e->node.last;
    w->count++;
}

static void accepted_visit(CXLDCExtent *e, void *opaque)
{
    WalkCtx *w = opaque;
    FzExt x;

    FZ_CHECK(!e->group, "accepted extent 0x%" PRIx64 " has a group",
             e->node.start);
    FZ_CHECK(e->region_id == w->rid, "extent 0x%" PRIx64 " of region %u is"
             " in the tree of region %u", e->node.start, e->region_id,
             w->rid);
    check_in_region(w->f, e, "accepted");
    disjoint_in_order(w, e, "accepted");
    tag_count(w->f->b.tags_eng, &e->tag);
    bitmap_set(w->backed, (e->node.start - w->r->base) / w->r->block_size,
               cxl_dc_extent_len(e) / w->r->block_size);
    x = (FzExt) {
        .start = e->node.start, .len = cxl_dc_extent_len(e),
        .tag = e->tag, .seq = e->shared_seq, .rid = e->region_id,
    };
    FZ_CHECK(w->si < w->f->acc->len &&
             ext_equal(&x, &g_array_index(w->f->acc, FzExt, w->si)),
             "accepted extent %u (0x%" PRIx64 " len 0x%" PRIx64 ") differs"
             " from the shadow's", w->si, x.start, x.len);
    w->si++;
}

/*
 * Pending extents in DPA order; check_groups() then matches them one to
 * one with the extents of the groups.
 */
static void pending_visit(CXLDCExtent *e, void *opaque)
{
    WalkCtx *w = opaque;

    FZ_CHECK(e->group, "pending extent 0x%" PRIx64 " has no group",
             e->node.start);
    check_in_region(w->f, e, "pending");
    disjoint_in_order(w, e, "pending");
    FZ_CHECK(!interval_tree_iter_first(&region(w->f, e->region_id)->accepted,
                                       e->node.start, e->node.last),
             "pending extent 0x%" PRIx64 " overlaps an accepted one",
             e->node.start);
    tag_count(w->f->b.tags_eng, &e->tag);
    g_ptr_array_add(w->f->b.pend_list, e);
}

static void staged_visit(CXLDCExtent *e, void *opaque)
{
    WalkCtx *w = opaque;
    IntervalTreeNode *n;
    CXLDCExtent *p;

    FZ_CHECK(!e->group, "staged extent 0x%" PRIx64 " has a group",
             e->node.start);
    check_in_region(w->f, e, "staged");
    disjoint_in_order(w, e, "staged");
    n = interval_tree_iter_first(&w->f->dc.pending, e->node.start,
                                 e->node.last);
    p = n ? NODE_EXT(n) : NULL;
    FZ_CHECK(p && p->group == w->group && p->node.start <= e->node.start &&
             e->node.last <= p->node.last, "staged extent 0x%" PRIx64 " is"
             " not inside a pending extent of its group", e->node.start);
    FZ_CHECK(qemu_uuid_is_equal(&p->tag, &e->tag), "staged extent 0x%"
             PRIx64 " has another tag than its pending extent",
             e->node.start);
    tag_count(w->f->b.tags_eng, &e->tag);
    g_ptr_array_add(w->f->b.staged_list, e);
}

static void check_records(FzDC *f)
{
    CXLDCRecord *rec;
    GList *l = f->records.head;
    uint32_t n = 0;

    QSIMPLEQ_FOREACH(rec, &f->dc.records, next) {
        CXLDCRecord *s = l ? l->data : NULL;

        FZ_CHECK(s, "engine has record %u, the shadow has not", n);
        FZ_CHECK(rec->type == s->type && rec->flags == s->flags &&
                 rec->host_id == s->host_id && rec->region_id ==
                 s->region_id && rec->dpa == s->dpa && rec->len == s->len &&
                 qemu_uuid_is_equal(&rec->tag, &s->tag) &&
                 rec->shared_seq == s->shared_seq &&
                 rec->extents_avail == s->extents_avail &&
                 rec->tags_avail == s->tags_avail,
                 "record %u: type %u flags %u region %u dpa 0x%" PRIx64
                 " len 0x%" PRIx64 " avail %u/%u, expected type %u flags %u"
                 " region %u dpa 0x%" PRIx64 " len 0x%" PRIx64 " avail %u/%u",
                 n, rec->type, rec->flags, rec->region_id, rec->dpa,
                 rec->len, rec->extents_avail, rec->tags_avail, s->type,
                 s->flags, s->region_id, s->dpa, s->len, s->extents_avail,
                 s->tags_avail);
        n++;
        l = l->next;
    }
    FZ_CHECK(!l, "the shadow has more records than the engine's %u", n);
    FZ_CHECK(n == f->dc.nr_records, "nr_records %u, queue length %u",
             f->dc.nr_records, n);
}

static void check_tags(FzDC *f)
{
    /* Counted by the walks of the accepted, pending and staged trees */
    GArray *eng = f->b.tags_eng, *sh;
    unsigned i, j;

    sh = sh_tags(f);
    FZ_CHECK(eng->len == g_hash_table_size(f->dc.tags) && eng->len == sh->len,
             "%u tags in use, the engine counts %u, the shadow %u", eng->len,
             g_hash_table_size(f->dc.tags), sh->len);
    for (i = 0; i < eng->len; i++) {
        FzTagCount *c = &g_array_index(eng, FzTagCount, i);
        /* DCTagRef: the tag, then a uint32_t count */
        uint8_t *ref = g_hash_table_lookup(f->dc.tags, &c->tag);
        bool in_shadow = false;

        FZ_CHECK(ref && ldl_he_p(ref + sizeof(QemuUUID)) == c->n,
                 "tag reference count is %u, %u extents carry the tag",
                 ref ? ldl_he_p(ref + sizeof(QemuUUID)) : 0, c->n);
        for (j = 0; j < sh->len; j++) {
            FzTagCount *d = &g_array_index(sh, FzTagCount, j);

            in_shadow |= qemu_uuid_is_equal(&c->tag, &d->tag) && c->n == d->n;
        }
        FZ_CHECK(in_shadow, "tag %u counts differ from the shadow's", i);
    }
    FZ_CHECK(eng->len <= f->dc.max_tags, "%u tags in use, at most %u"
             " allowed", eng->len, f->dc.max_tags);
    FZ_CHECK(cxl_dc_tags_avail(&f->dc) == f->dc.max_tags - eng->len,
             "tags available %u, expected %u", cxl_dc_tags_avail(&f->dc),
             f->dc.max_tags - eng->len);
}

/* Index of @e in the pending tree's extents (pend_list), or -1 */
static int pending_index(FzDC *f, CXLDCExtent *e)
{
    CXLDCExtent **a = (CXLDCExtent **)f->b.pend_list->pdata;
    int lo = 0, hi = f->b.pend_list->len - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;

        if (a[mid]->node.start == e->node.start) {
            return a[mid] == e ? mid : -1;
        } else if (a[mid]->node.start < e->node.start) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return -1;
}

static void check_groups(FzDC *f)
{
    CXLDCGroup *g;
    GList *l = f->groups.head;
    uint32_t pending = 0;
    bool first = true;
    unsigned i;

    g_array_set_size(f->b.pend_seen, 0);
    g_array_set_size(f->b.pend_seen, f->b.pend_list->len);
    QTAILQ_FOREACH(g, &f->dc.groups, next) {
        FzGroup *s = l ? l->data : NULL;
        GArray *sst = f->b.staged_sorted;
        GPtrArray *staged = f->b.staged_list;
        WalkCtx w = { .f = f, .group = g };

        FZ_CHECK(s && s->id == g->id && s->rid == g->region_id &&
                 s->host_id == g->host_id, "group %" PRIu64 " is not the"
                 " shadow's next", g->id);
        FZ_CHECK(g->nr_extents, "group %" PRIu64 " has no extents", g->id);
        FZ_CHECK(g->nr_extents == s->ext->len, "group %" PRIu64 " has %u"
                 " extents, expected %u", g->id, g->nr_extents,
                 s->ext->len);
        for (i = 0; i < g->nr_extents; i++) {
            FzExt *x = &g_array_index(s->ext, FzExt, i);
            CXLDCExtent *e = g->extents[i];
            int k = pending_index(f, e);

            FZ_CHECK(k >= 0 && !f->b.pend_seen->data[k], "group %" PRIu64
                     " extent %u is not in the pending tree, or twice in"
                     " groups", g->id, i);
            f->b.pend_seen->data[k] = 1;
            FZ_CHECK(e->group == g && e->node.start == x->start &&
                     cxl_dc_extent_len(e) == x->len &&
                     qemu_uuid_is_equal(&e->tag, &x->tag) &&
                     e->shared_seq == x->seq, "group %" PRIu64 " extent %u"
                     " is 0x%" PRIx64 " len 0x%" PRIx64 ", expected 0x%"
                     PRIx64 " len 0x%" PRIx64, g->id, i, e->node.start,
                     cxl_dc_extent_len(e), x->start, x->len);
            FZ_CHECK(e->region_id == g->region_id, "pending extent 0x%"
                     PRIx64 " of region %u in a group of region %u",
                     e->node.start, e->region_id, g->region_id);
            FZ_CHECK(!i || g->extents[i - 1]->node.start < e->node.start,
                     "group %" PRIu64 " extent %u at 0x%" PRIx64 " is not"
                     " above the one before", g->id, i, e->node.start);
        }
        pending += g->nr_extents;
        /* Staged ranges, in DPA order on both sides */
        g_ptr_array_set_size(staged, 0);
        tree_walk(&g->staged, staged_visit, &w);
        FZ_CHECK(w.count == g->nr_staged, "group %" PRIu64 ": nr_staged %u,"
                 " tree holds %u", g->id, g->nr_staged, w.count);
        FZ_CHECK(first || !g->nr_staged, "group %" PRIu64 " has staged"
                 " ranges but is not the oldest", g->id);
        g_array_set_size(sst, 0);
        g_array_append_vals(sst, s->staged->data, s->staged->len);
        g_array_sort(sst, fzext_cmp);
        FZ_CHECK(sst->len == staged->len, "group %" PRIu64 ": %u staged,"
                 " expected %u", g->id, staged->len, sst->len);
        for (i = 0; i < staged->len; i++) {
            CXLDCExtent *e = staged->pdata[i];
            FzExt *x = &g_array_index(sst, FzExt, i);

            FZ_CHECK(e->node.start == x->start &&
                     cxl_dc_extent_len(e) == x->len,
                     "group %" PRIu64 " staged %u is 0x%" PRIx64 ", expected"
                     " 0x%" PRIx64, g->id, i, e->node.start, x->start);
        }
        first = false;
        l = l->next;
    }
    FZ_CHECK(!l, "the shadow has more pending groups than the engine");
    /* Each pending extent is in one group, each group's in the tree */
    FZ_CHECK(pending == f->b.pend_list->len, "the pending tree holds %u"
             " extents, the groups %u", f->b.pend_list->len, pending);
    FZ_CHECK(pending == f->dc.nr_pending, "nr_pending %u, groups hold %u",
             f->dc.nr_pending, pending);
}

static void check_releases(FzDC *f)
{
    CXLDCRelease *rel;
    GList *l = f->releases.head;
    GArray *all = fz_tmp(f);
    unsigned i;

    QTAILQ_FOREACH(rel, &f->dc.releases, next) {
        FzRelease *s = l ? l->data : NULL;
        CXLDCRegion *r;
        bool live = false;

        FZ_CHECK(s && s->id == rel->id && s->rid == rel->region_id &&
                 s->sanitize == rel->sanitize &&
                 s->ranges->len == rel->nr_ranges, "release request %"
                 PRIu64 " is not the shadow's next", rel->id);
        FZ_CHECK(rel->region_id < f->dc.nr_regions && rel->nr_ranges,
                 "release request %" PRIu64 " region %u, %u ranges", rel->id,
                 rel->region_id, rel->nr_ranges);
        r = region(f, rel->region_id);
        for (i = 0; i < rel->nr_ranges; i++) {
            FzExt *x = &g_array_index(s->ranges, FzExt, i);
            uint64_t st = rel->ranges[i].start_dpa, len = rel->ranges[i].len;
            CXLDCRange y = { st, len };

            FZ_CHECK(st == x->start && len == x->len, "release request %"
                     PRIu64 " range %u differs from the shadow", rel->id, i);
            FZ_CHECK(len && st >= r->base && st + len <= r->base + r->len &&
                     st + len > st, "release request %" PRIu64 " range %u"
                     " 0x%" PRIx64 " len 0x%" PRIx64 " is outside its"
                     " region", rel->id, i, st, len);
            live |= !!sh_acc_coverage(f, st, st + len - 1);
            g_array_append_val(all, y);
        }
        FZ_CHECK(live, "release request %" PRIu64 " has no accepted range"
                 " left but is still outstanding", rel->id);
        l = l->next;
    }
    FZ_CHECK(!l, "the shadow has more release requests than the engine");
    g_array_sort(all, range_cmp);
    for (i = 1; i < all->len; i++) {
        CXLDCRange *a = &g_array_index(all, CXLDCRange, i - 1);
        CXLDCRange *b = &g_array_index(all, CXLDCRange, i);

        FZ_CHECK(a->offset + a->len <= b->offset, "outstanding release"
                 " ranges 0x%" PRIx64 " and 0x%" PRIx64 " overlap",
                 a->offset, b->offset);
    }
}

void fz_check(FzDC *f)
{
    CXLDCState *dc = &f->dc;
    WalkCtx pw = { .f = f };
    uint32_t accepted = 0, si = 0;
    unsigned i, mark = f->tmp_used;

    g_array_set_size(f->b.tags_eng, 0);
    g_ptr_array_set_size(f->b.pend_list, 0);
    for (i = 0; i < dc->nr_regions; i++) {
        CXLDCRegion *r = region(f, i);
        size_t longs = BITS_TO_LONGS(r->len / r->block_size);
        WalkCtx w = { .f = f, .r = r, .rid = i, .si = si };

        g_array_set_size(f->b.bitmap, longs);
        memset(f->b.bitmap->data, 0, longs * sizeof(unsigned long));
        w.backed = (unsigned long *)f->b.bitmap->data;
        tree_walk(&r->accepted, accepted_visit, &w);
        FZ_CHECK(w.count == r->nr_accepted, "region %u: nr_accepted %u,"
                 " tree holds %u", i, r->nr_accepted, w.count);
        FZ_CHECK(!memcmp(w.backed, r->backed, longs * sizeof(unsigned long)),
                 "region %u: the backed bitmap is not the union of the"
                 " accepted extents", i);
        accepted += w.count;
        si = w.si;
    }
    FZ_CHECK(si == f->acc->len, "engine has %u accepted extents, the shadow"
             " %u", si, f->acc->len);
    FZ_CHECK(accepted == dc->nr_accepted, "nr_accepted %u, trees hold %u",
             dc->nr_accepted, accepted);
    tree_walk(&dc->pending, pending_visit, &pw);
    FZ_CHECK(pw.count == dc->nr_pending, "nr_pending %u, tree holds %u",
             dc->nr_pending, pw.count);
    FZ_CHECK((uint64_t)dc->nr_accepted + dc->nr_pending <= dc->max_extents,
             "%u accepted + %u pending extents, at most %u allowed",
             dc->nr_accepted, dc->nr_pending, dc->max_extents);
    /*
     * The host can always finish the response it began: a last, empty
     * part must fit the limit, else the oldest group, and every add
     * queued behind it, can never be answered.
     */
    if (!QTAILQ_EMPTY(&dc->groups)) {
        CXLDCGroup *g = QTAILQ_FIRST(&dc->groups);

        FZ_CHECK((uint64_t)dc->nr_accepted + dc->nr_pending -
                 g->nr_extents + g->nr_staged <= dc->max_extents,
                 "group %" PRIu64 " can no longer be answered: %u accepted"
                 " + %u pending - %u offered + %u staged extents exceed the"
                 " limit of %u", g->id, dc->nr_accepted, dc->nr_pending,
                 g->nr_extents, g->nr_staged, dc->max_extents);
    }
    FZ_CHECK(cxl_dc_extents_avail(dc) == sh_extents_avail(f),
             "extents available %u, expected %u", cxl_dc_extents_avail(dc),
             sh_extents_avail(f));
    FZ_CHECK(dc->generation == f->generation, "generation %u, expected %u",
             dc->generation, f->generation);
    FZ_CHECK(dc->next_group_id == f->next_group_id &&
             dc->next_release_id == f->next_release_id,
             "next group/release ids differ from the shadow");
    check_groups(f);
    check_releases(f);
    check_records(f);
    check_tags(f);
    f->tmp_used = mark;
    f->checked = true;
}
