/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unit tests of the CXL Dynamic Capacity engine (hw/cxl/cxl-dc.c), and a
 * randomized check of its state against a per-block model.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/cxl/cxl_dc.h"

#define BS (2 * MiB)
#define REGION_LEN (128 * MiB)
#define REGION1_BASE (256 * MiB)
#define NBLOCKS (REGION_LEN / BS)

/* A notice as the fixture saw it */
typedef struct Notice {
    CXLDCNoticeType type;
    uint8_t region_id;
    CXLDCReleaseReason reason;
    uint64_t id;
    GArray *extents;            /* CXLDCRange: dpa, len */
    GArray *declined;
} Notice;

typedef struct Fixture {
    CXLDCState dc;
    GArray *sanitized;          /* CXLDCRange: dpa, len */
    unsigned queued_calls;
    GArray *notices;            /* Notice */
} Fixture;

static GArray *ranges_of(const CXLDCExtentRaw *raw, uint32_t n)
{
    GArray *a = g_array_new(false, false, sizeof(CXLDCRange));
    uint32_t i;

    for (i = 0; i < n; i++) {
        CXLDCRange r = { raw[i].start_dpa, raw[i].len };

        g_array_append_val(a, r);
    }
    return a;
}

static void fx_notify(void *opaque, const CXLDCNotice *n)
{
    Fixture *f = opaque;
    Notice rec = {
        .type = n->type,
        .region_id = n->region_id,
        .reason = n->reason,
        .id = n->id,
        .extents = ranges_of(n->extents, n->nr_extents),
        .declined = ranges_of(n->declined, n->nr_declined),
    };

    g_array_append_val(f->notices, rec);
}

static void clear_notices(Fixture *f)
{
    guint i;

    for (i = 0; i < f->notices->len; i++) {
        g_array_free(g_array_index(f->notices, Notice, i).extents, true);
        g_array_free(g_array_index(f->notices, Notice, i).declined, true);
    }
    g_array_set_size(f->notices, 0);
}

/* Assert @a holds exactly the @n ranges of @exp */
static void assert_ranges(GArray *a, const CXLDCRange *exp, guint n)
{
    guint i;

    g_assert_cmpuint(a->len, ==, n);
    for (i = 0; i < n; i++) {
        g_assert_cmphex(g_array_index(a, CXLDCRange, i).offset, ==,
                        exp[i].offset);
        g_assert_cmphex(g_array_index(a, CXLDCRange, i).len, ==, exp[i].len);
    }
}

static void fx_sanitize(void *opaque, uint64_t dpa, uint64_t len)
{
    Fixture *f = opaque;
    CXLDCRange r = { dpa, len };

    g_array_append_val(f->sanitized, r);
}

static void fx_records_queued(void *opaque)
{
    Fixture *f = opaque;

    f->queued_calls++;
}

static const CXLDCOps fx_ops = {
    .sanitize = fx_sanitize,
    .records_queued = fx_records_queued,
    .notify = fx_notify,
};

static void fx_init(Fixture *f, uint32_t max_extents)
{
    memset(f, 0, sizeof(*f));
    f->sanitized = g_array_new(false, false, sizeof(CXLDCRange));
    f->notices = g_array_new(false, false, sizeof(Notice));
    cxl_dc_init(&f->dc, max_extents, 16, &fx_ops, f);
    g_assert(cxl_dc_add_region(&f->dc, 0, 256 * MiB, REGION_LEN, BS, 0,
                               false, &error_abort));
    g_assert(cxl_dc_add_region(&f->dc, REGION1_BASE, 256 * MiB, REGION_LEN,
                               BS, 1, false, &error_abort));
}

static void fx_cleanup(Fixture *f)
{
    cxl_dc_cleanup(&f->dc);
    g_array_free(f->sanitized, true);
    clear_notices(f);
    g_array_free(f->notices, true);
}

static bool add(Fixture *f, uint8_t rid, const CXLDCRange *r, uint32_t n,
                Error **errp)
{
    CXLDCAddRequest req = {
        .region_id = rid,
        .policy = CXL_DC_SELECT_PRESCRIPTIVE,
        .nr_ranges = n,
        .ranges = r,
    };

    return cxl_dc_offer_add(&f->dc, &req, NULL, errp);
}

static CXLDCStatus respond(Fixture *f, const CXLDCRange *r, uint32_t n,
                           bool more)
{
    g_autofree CXLDCExtentRaw *raw = g_new0(CXLDCExtentRaw, MAX(n, 1));
    uint32_t i;

    for (i = 0; i < n; i++) {
        raw[i].start_dpa = r[i].offset;
        raw[i].len = r[i].len;
    }
    return cxl_dc_host_add_response(&f->dc, raw, n, more, NULL);
}

static CXLDCStatus host_release(Fixture *f, uint64_t dpa, uint64_t len)
{
    CXLDCExtentRaw raw = { .start_dpa = dpa, .len = len };

    return cxl_dc_host_release(&f->dc, &raw, 1, NULL);
}

static void drain_records(Fixture *f)
{
    while (cxl_dc_record_peek(&f->dc)) {
        cxl_dc_record_pop(&f->dc);
    }
}

/* Assert the accepted list is exactly @expect, in order. */
static void assert_extents(Fixture *f, const CXLDCRange *expect, uint32_t n)
{
    g_autofree CXLDCExtentRaw *out = g_new0(CXLDCExtentRaw, n + 1);
    uint32_t i;

    g_assert_cmpuint(f->dc.nr_accepted, ==, n);
    g_assert_cmpuint(cxl_dc_get_extents(&f->dc, 0, n + 1, out), ==, n);
    for (i = 0; i < n; i++) {
        g_assert_cmphex(ldq_le_p(&out[i].start_dpa), ==, expect[i].offset);
        g_assert_cmphex(ldq_le_p(&out[i].len), ==, expect[i].len);
    }
}

static void test_region_layout(void)
{
    CXLDCState dc;
    Error *err = NULL;

    cxl_dc_init(&dc, 16, 16, NULL, NULL);
    g_assert_false(cxl_dc_add_region(&dc, 0, 256 * MiB, 256 * MiB, 3000, 0,
                                     false, &err));
    g_assert(strstr(error_get_pretty(err), "power of 2"));
    error_free(err);
    err = NULL;
    g_assert_false(cxl_dc_add_region(&dc, MiB, 256 * MiB, 256 * MiB, BS, 0,
                                     false, &err));
    g_assert(strstr(error_get_pretty(err), "256 MiB"));
    error_free(err);
    err = NULL;
    g_assert(cxl_dc_add_region(&dc, 0, 256 * MiB, 256 * MiB, BS, 0, false,
                               &error_abort));
    g_assert_false(cxl_dc_add_region(&dc, 0, 256 * MiB, 256 * MiB, BS, 0,
                                     false, &err));
    g_assert(strstr(error_get_pretty(err), "below the end"));
    error_free(err);
    g_assert_cmpuint(dc.nr_regions, ==, 1);
    cxl_dc_cleanup(&dc);
}

static void test_add_accept_all(void)
{
    Fixture f;
    CXLDCRange r[] = { { 0, 4 * BS }, { 8 * BS, 2 * BS } };
    CXLDCRecord *rec;
    uint32_t gen;

    fx_init(&f, 64);
    g_assert(add(&f, 0, r, 2, &error_abort));
    g_assert_cmpuint(f.dc.nr_pending, ==, 2);
    g_assert_cmpuint(f.dc.nr_records, ==, 2);
    g_assert_cmpuint(f.queued_calls, ==, 1);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmpuint(rec->type, ==, CXL_DC_EVENT_ADD_CAPACITY);
    g_assert_cmpuint(rec->flags, ==, CXL_DC_EVENT_FLAG_MORE);
    g_assert_cmphex(rec->dpa, ==, 0);
    g_assert_cmphex(rec->len, ==, 4 * BS);
    cxl_dc_record_pop(&f.dc);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmpuint(rec->flags, ==, 0);
    g_assert_cmphex(rec->dpa, ==, 8 * BS);
    g_assert_false(cxl_dc_is_backed(&f.dc, 0, BS));

    gen = f.dc.generation;
    g_assert_cmpint(respond(&f, r, 2, false), ==, CXL_DC_OK);
    g_assert_cmpuint(f.dc.generation, !=, gen);
    g_assert_cmpuint(f.dc.nr_pending, ==, 0);
    assert_extents(&f, r, 2);
    g_assert(cxl_dc_is_backed(&f.dc, 0, 4 * BS));
    g_assert_false(cxl_dc_is_backed(&f.dc, 0, 5 * BS));
    g_assert(cxl_dc_is_backed(&f.dc, 9 * BS + 100, 8));
    fx_cleanup(&f);
}

static void test_add_reject(void)
{
    Fixture f;
    CXLDCRange r = { BS, BS };
    uint32_t gen;

    fx_init(&f, 64);
    g_assert(add(&f, 0, &r, 1, &error_abort));
    gen = f.dc.generation;
    g_assert_cmpint(respond(&f, NULL, 0, false), ==, CXL_DC_OK);
    g_assert_cmpuint(f.dc.generation, ==, gen);
    g_assert_cmpuint(f.dc.nr_pending, ==, 0);
    assert_extents(&f, NULL, 0);
    /* The range is free again. */
    g_assert(add(&f, 0, &r, 1, &error_abort));
    fx_cleanup(&f);
}

static void test_add_accept_part(void)
{
    Fixture f;
    CXLDCRange offer[] = { { 0, 4 * BS }, { 8 * BS, 2 * BS } };
    CXLDCRange part[] = { { BS, 2 * BS } };

    fx_init(&f, 64);
    g_assert(add(&f, 0, offer, 2, &error_abort));
    g_assert_cmpint(respond(&f, part, 1, false), ==, CXL_DC_OK);
    assert_extents(&f, part, 1);
    g_assert_cmpuint(f.dc.nr_pending, ==, 0);
    /* What the host declined is free again. */
    g_assert(add(&f, 0, offer + 1, 1, &error_abort));
    fx_cleanup(&f);
}

static void test_add_response_in_parts(void)
{
    Fixture f;
    CXLDCRange offer[] = { { 0, BS }, { 2 * BS, BS }, { 4 * BS, BS } };

    fx_init(&f, 64);
    g_assert(add(&f, 0, offer, 3, &error_abort));
    g_assert_cmpint(respond(&f, offer, 1, true), ==, CXL_DC_OK);
    /* Nothing is accepted until the last part. */
    assert_extents(&f, NULL, 0);
    /* Accepting twice is refused and changes nothing. */
    g_assert_cmpint(respond(&f, offer, 1, true), ==, CXL_DC_INVALID_PA);
    g_assert_cmpint(respond(&f, offer + 1, 2, false), ==, CXL_DC_OK);
    assert_extents(&f, offer, 3);
    fx_cleanup(&f);
}

static void test_add_response_errors(void)
{
    Fixture f;
    CXLDCRange offer[] = { { 0, 2 * BS } };
    CXLDCRange second[] = { { 8 * BS, BS } };
    CXLDCRange bad_len[] = { { 0, 100 } };
    CXLDCRange outside[] = { { 4 * BS, BS } };
    CXLDCRange younger[] = { { 8 * BS, BS } };
    CXLDCRange wrap[] = { { UINT64_MAX - BS + 1, 2 * BS } };
    CXLDCRange dup[] = { { 0, BS }, { 0, BS } };
    CXLDCRange zero[] = { { 0, 0 } };

    fx_init(&f, 64);
    /* Nothing pending: even an empty response is refused. */
    g_assert_cmpint(respond(&f, NULL, 0, false), ==, CXL_DC_INVALID_PA);
    g_assert(add(&f, 0, offer, 1, &error_abort));
    g_assert(add(&f, 0, second, 1, &error_abort));
    g_assert_cmpint(respond(&f, bad_len, 1, false), ==,
                    CXL_DC_INVALID_EXTENT_LIST);
    g_assert_cmpint(respond(&f, zero, 1, false), ==,
                    CXL_DC_INVALID_EXTENT_LIST);
    g_assert_cmpint(respond(&f, outside, 1, false), ==, CXL_DC_INVALID_PA);
    g_assert_cmpint(respond(&f, younger, 1, false), ==, CXL_DC_INVALID_PA);
    g_assert_cmpint(respond(&f, wrap, 1, false), ==, CXL_DC_INVALID_PA);
    g_assert_cmpint(respond(&f, dup, 2, false), ==,
                    CXL_DC_INVALID_EXTENT_LIST);
    g_assert_cmpuint(f.dc.nr_pending, ==, 2);
    assert_extents(&f, NULL, 0);
    g_assert_cmpint(respond(&f, offer, 1, false), ==, CXL_DC_OK);
    g_assert_cmpint(respond(&f, second, 1, false), ==, CXL_DC_OK);
    assert_extents(&f, (CXLDCRange[]) { offer[0], second[0] }, 2);
    fx_cleanup(&f);
}

static void expect_add_error(Fixture *f, uint8_t rid, const CXLDCRange *r,
                             uint32_t n, const char *needle)
{
    Error *err = NULL;
    uint32_t pending = f->dc.nr_pending, records = f->dc.nr_records;

    g_assert_false(add(f, rid, r, n, &err));
    g_assert(err);
    if (!strstr(error_get_pretty(err), needle)) {
        g_error("'%s' does not mention '%s'", error_get_pretty(err), needle);
    }
    error_free(err);
    g_assert_cmpuint(f->dc.nr_pending, ==, pending);
    g_assert_cmpuint(f->dc.nr_records, ==, records);
}

static void test_add_errors(void)
{
    Fixture f;
    CXLDCRange ok[] = { { 0, 2 * BS } };

    fx_init(&f, 8);
    expect_add_error(&f, 0, NULL, 0, "the extent list is empty");
    expect_add_error(&f, 2, ok, 1, "region 2 does not exist");
    expect_add_error(&f, 0, (CXLDCRange[]) { { 0, 0 } }, 1,
                     "extent 0: length is 0");
    expect_add_error(&f, 0, (CXLDCRange[]) { { 4096, BS } }, 1,
                     "extent 0: offset 0x1000 or length 0x200000 is not"
                     " aligned to block size 0x200000");
    expect_add_error(&f, 0, (CXLDCRange[]) { { 0, BS }, { 2 * BS, 4096 } },
                     2, "extent 1:");
    expect_add_error(&f, 0, (CXLDCRange[]) { { REGION_LEN - BS, 2 * BS } },
                     1, "extends beyond region 0");
    expect_add_error(&f, 0, (CXLDCRange[]) { { UINT64_MAX - BS + 1, BS } },
                     1, "extends beyond region 0");
    expect_add_error(&f, 0, (CXLDCRange[]) { { 0, 4 * BS }, { 2 * BS, BS } },
                     2, "extent 1: overlaps extent 0 of the same request");
    g_assert(add(&f, 0, ok, 1, &error_abort));
    expect_add_error(&f, 0, (CXLDCRange[]) { { BS, BS } }, 1,
                     "extent 0: overlaps pending extent at offset 0x0");
    g_assert_cmpint(respond(&f, ok, 1, false), ==, CXL_DC_OK);
    expect_add_error(&f, 0, (CXLDCRange[]) { { 4 * BS, BS }, { BS, BS } },
                     2, "extent 1: overlaps accepted extent at offset 0x0");
    /* Limit: 8 extents, one accepted. */
    expect_add_error(&f, 1, (CXLDCRange[]) {
                         { 0, BS }, { 2 * BS, BS }, { 4 * BS, BS },
                         { 6 * BS, BS }, { 8 * BS, BS }, { 10 * BS, BS },
                         { 12 * BS, BS }, { 14 * BS, BS } }, 8,
                     "8 extents requested, but only 7 of 8 are available");
    fx_cleanup(&f);
}

static void test_add_shared_refused(void)
{
    Fixture f;
    CXLDCRange r = { 0, BS };
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_SHARED, .nr_ranges = 1, .ranges = &r,
    };
    Error *err = NULL;

    fx_init(&f, 8);
    g_assert_false(cxl_dc_offer_add(&f.dc, &req, NULL, &err));
    g_assert(strstr(error_get_pretty(err), "second host"));
    error_free(err);
    err = NULL;
    req.policy = CXL_DC_SELECT_PRESCRIPTIVE;
    req.host_id = 1;
    g_assert_false(cxl_dc_offer_add(&f.dc, &req, NULL, &err));
    g_assert(strstr(error_get_pretty(err), "host 1 does not exist"));
    error_free(err);
    fx_cleanup(&f);
}

static void test_add_free_contiguous(void)
{
    Fixture f;
    CXLDCRange used[] = { { BS, BS }, { 4 * BS, 2 * BS } };
    CXLDCAddRequest req = {
        .region_id = 0, .policy = CXL_DC_SELECT_FREE, .len = 3 * BS,
    };
    CXLDCRecord *rec;
    Error *err = NULL;

    fx_init(&f, 64);
    g_assert(add(&f, 0, used, 2, &error_abort));
    drain_records(&f);
    /* Free: the lowest free blocks, 0, 2 and 3, in two extents. */
    g_assert(cxl_dc_offer_add(&f.dc, &req, NULL, &error_abort));
    g_assert_cmpuint(f.dc.nr_records, ==, 2);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmphex(rec->dpa, ==, 0);
    g_assert_cmphex(rec->len, ==, BS);
    cxl_dc_record_pop(&f.dc);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmphex(rec->dpa, ==, 2 * BS);
    g_assert_cmphex(rec->len, ==, 2 * BS);
    drain_records(&f);
    /* Contiguous: one extent, in the first gap large enough. */
    req.policy = CXL_DC_SELECT_CONTIGUOUS;
    req.len = 4 * BS;
    g_assert(cxl_dc_offer_add(&f.dc, &req, NULL, &error_abort));
    g_assert_cmpuint(f.dc.nr_records, ==, 1);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmphex(rec->dpa, ==, 6 * BS);
    g_assert_cmphex(rec->len, ==, 4 * BS);
    /* Too much */
    req.len = REGION_LEN;
    g_assert_false(cxl_dc_offer_add(&f.dc, &req, NULL, &err));
    g_assert(strstr(error_get_pretty(err), "no free range"));
    error_free(err);
    err = NULL;
    req.policy = CXL_DC_SELECT_FREE;
    g_assert_false(cxl_dc_offer_add(&f.dc, &req, NULL, &err));
    g_assert(strstr(error_get_pretty(err), "requested"));
    error_free(err);
    fx_cleanup(&f);
}

static void test_release_host(void)
{
    Fixture f;
    CXLDCRange r[] = { { 0, 4 * BS }, { 4 * BS, 2 * BS }, { 8 * BS, BS } };
    uint32_t gen;

    fx_init(&f, 64);
    g_assert(add(&f, 0, r, 3, &error_abort));
    g_assert_cmpint(respond(&f, r, 3, false), ==, CXL_DC_OK);
    /* Middle of an extent: splits it. */
    gen = f.dc.generation;
    g_assert_cmpint(host_release(&f, BS, BS), ==, CXL_DC_OK);
    g_assert_cmpuint(f.dc.generation, !=, gen);
    assert_extents(&f, (CXLDCRange[]) { { 0, BS }, { 2 * BS, 2 * BS },
                                        { 4 * BS, 2 * BS }, { 8 * BS, BS } },
                   4);
    /* Superset over two extents, adjacent */
    g_assert_cmpint(host_release(&f, 3 * BS, 2 * BS), ==, CXL_DC_OK);
    assert_extents(&f, (CXLDCRange[]) { { 0, BS }, { 2 * BS, BS },
                                        { 5 * BS, BS }, { 8 * BS, BS } },
                   4);
    /* Not accepted, or only partly: refused, nothing changes. */
    gen = f.dc.generation;
    g_assert_cmpint(host_release(&f, BS, BS), ==, CXL_DC_INVALID_PA);
    g_assert_cmpint(host_release(&f, 0, 2 * BS), ==, CXL_DC_INVALID_PA);
    g_assert_cmpint(host_release(&f, 0, 100), ==,
                    CXL_DC_INVALID_EXTENT_LIST);
    g_assert_cmpint(host_release(&f, 512 * MiB, BS), ==, CXL_DC_INVALID_PA);
    g_assert_cmpuint(f.dc.generation, ==, gen);
    g_assert_cmpuint(f.dc.nr_accepted, ==, 4);
    fx_cleanup(&f);
}

static void test_release_split_limit(void)
{
    Fixture f;
    CXLDCRange r[] = { { 0, 8 * BS }, { 8 * BS, BS } };

    fx_init(&f, 2);
    g_assert(add(&f, 0, r, 2, &error_abort));
    g_assert_cmpint(respond(&f, r, 2, false), ==, CXL_DC_OK);
    g_assert_cmpint(host_release(&f, BS, BS), ==,
                    CXL_DC_RESOURCES_EXHAUSTED);
    g_assert_cmpuint(f.dc.nr_accepted, ==, 2);
    /* Cutting an edge does not add an extent. */
    g_assert_cmpint(host_release(&f, 0, BS), ==, CXL_DC_OK);
    fx_cleanup(&f);
}

static bool fm_release(Fixture *f, CXLDCRemovalPolicy policy, bool forced,
                       bool sanitize, const QemuUUID *tag,
                       const CXLDCRange *r, uint32_t n, Error **errp)
{
    CXLDCReleaseRequest req = {
        .policy = policy,
        .forced = forced,
        .sanitize = sanitize,
        .has_tag = !!tag,
        .nr_ranges = n,
        .ranges = r,
    };

    if (tag) {
        req.tag = *tag;
    }
    return cxl_dc_request_release(&f->dc, &req, errp);
}

static void test_release_fm(void)
{
    Fixture f;
    CXLDCRange r[] = { { 0, 4 * BS } };
    CXLDCRange part[] = { { BS, BS } };
    CXLDCRecord *rec;
    Error *err = NULL;

    fx_init(&f, 64);
    g_assert(add(&f, 0, r, 1, &error_abort));
    drain_records(&f);
    /* Pending capacity cannot be released. */
    g_assert_false(fm_release(&f, CXL_DC_REMOVE_PRESCRIPTIVE, false, false,
                              NULL, part, 1, &err));
    g_assert(strstr(error_get_pretty(err), "pending extent"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(respond(&f, r, 1, false), ==, CXL_DC_OK);
    g_assert(fm_release(&f, CXL_DC_REMOVE_PRESCRIPTIVE, false, true, NULL,
                        part, 1, &error_abort));
    g_assert_cmpuint(f.dc.nr_records, ==, 1);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmpuint(rec->type, ==, CXL_DC_EVENT_RELEASE_CAPACITY);
    g_assert_cmphex(rec->dpa, ==, BS);
    g_assert_cmphex(rec->len, ==, BS);
    /* Still accessible until the host answers. */
    g_assert(cxl_dc_is_backed(&f.dc, BS, BS));
    g_assert_false(fm_release(&f, CXL_DC_REMOVE_PRESCRIPTIVE, false, false,
                              NULL, part, 1, &err));
    g_assert(strstr(error_get_pretty(err), "already being released"));
    error_free(err);
    /* The host releases the whole extent it accepted: all is sanitized. */
    g_assert_cmpint(host_release(&f, 0, 4 * BS), ==, CXL_DC_OK);
    g_assert_cmpuint(f.sanitized->len, ==, 1);
    g_assert_cmphex(g_array_index(f.sanitized, CXLDCRange, 0).offset, ==, 0);
    g_assert_cmphex(g_array_index(f.sanitized, CXLDCRange, 0).len, ==,
                    4 * BS);
    g_assert(QTAILQ_EMPTY(&f.dc.releases));
    fx_cleanup(&f);
}

static void test_release_forced_and_tag(void)
{
    Fixture f;
    QemuUUID tag_a, tag_b;
    CXLDCRange a[] = { { 0, BS }, { 4 * BS, BS } };
    CXLDCRange b[] = { { 8 * BS, BS } };
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE, .has_tag = true,
    };
    Error *err = NULL;
    CXLDCRecord *rec;

    fx_init(&f, 64);
    qemu_uuid_generate(&tag_a);
    qemu_uuid_generate(&tag_b);
    req.tag = tag_a;
    req.nr_ranges = 2;
    req.ranges = a;
    g_assert(cxl_dc_offer_add(&f.dc, &req, NULL, &error_abort));
    g_assert_cmpint(respond(&f, a, 2, false), ==, CXL_DC_OK);
    req.tag = tag_b;
    req.nr_ranges = 1;
    req.ranges = b;
    g_assert(cxl_dc_offer_add(&f.dc, &req, NULL, &error_abort));
    g_assert_cmpint(respond(&f, b, 1, false), ==, CXL_DC_OK);
    g_assert_cmpuint(cxl_dc_tags_avail(&f.dc), ==, 14);
    drain_records(&f);

    /* Tag-based, forced: both extents of tag_a go at once. */
    g_assert(fm_release(&f, CXL_DC_REMOVE_TAG_BASED, true, true, &tag_a,
                        NULL, 0, &error_abort));
    assert_extents(&f, b, 1);
    g_assert_false(cxl_dc_is_backed(&f.dc, 0, BS));
    g_assert_cmpuint(f.sanitized->len, ==, 2);
    g_assert_cmpuint(f.dc.nr_records, ==, 2);
    rec = cxl_dc_record_peek(&f.dc);
    g_assert_cmpuint(rec->type, ==, CXL_DC_EVENT_FORCED_CAPACITY_RELEASE);
    g_assert_cmpuint(rec->flags, ==, CXL_DC_EVENT_FLAG_MORE);
    g_assert(qemu_uuid_is_equal(&rec->tag, &tag_a));
    g_assert_cmpuint(cxl_dc_tags_avail(&f.dc), ==, 15);
    g_assert_false(fm_release(&f, CXL_DC_REMOVE_TAG_BASED, false, false,
                              &tag_a, NULL, 0, &err));
    g_assert(strstr(error_get_pretty(err), "has tag"));
    error_free(err);
    fx_cleanup(&f);
}

static void test_extent_list_paging(void)
{
    Fixture f;
    CXLDCRange r[40];
    CXLDCExtentRaw out[7];
    uint32_t i, start, got;

    fx_init(&f, 64);
    for (i = 0; i < 20; i++) {
        r[i] = (CXLDCRange) { i * 2 * BS, BS };
        r[20 + i] = (CXLDCRange) { REGION1_BASE + i * 2 * BS, BS };
    }
    g_assert(add(&f, 0, r, 20, &error_abort));
    g_assert_cmpint(respond(&f, r, 20, false), ==, CXL_DC_OK);
    for (i = 0; i < 20; i++) {
        r[20 + i].offset -= REGION1_BASE;
    }
    g_assert(add(&f, 1, r + 20, 20, &error_abort));
    for (i = 0; i < 20; i++) {
        r[20 + i].offset += REGION1_BASE;
    }
    g_assert_cmpint(respond(&f, r + 20, 20, false), ==, CXL_DC_OK);
    for (start = 0; start < 40; start += got) {
        got = cxl_dc_get_extents(&f.dc, start, 7, out);
        g_assert_cmpuint(got, ==, MIN(7, 40 - start));
        for (i = 0; i < got; i++) {
            g_assert_cmphex(ldq_le_p(&out[i].start_dpa), ==,
                            r[start + i].offset);
        }
    }
    /* Random access after paging */
    g_assert_cmpuint(cxl_dc_get_extents(&f.dc, 3, 1, out), ==, 1);
    g_assert_cmphex(ldq_le_p(&out[0].start_dpa), ==, r[3].offset);
    g_assert_cmpuint(cxl_dc_get_extents(&f.dc, 40, 1, out), ==, 0);
    fx_cleanup(&f);
}

static void test_many_extents(void)
{
    enum { N = 65536 };
    CXLDCState dc;
    g_autofree CXLDCRange *r = g_new0(CXLDCRange, N);
    g_autofree CXLDCExtentRaw *raw = g_new0(CXLDCExtentRaw, N);
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE, .nr_ranges = N, .ranges = r,
    };
    uint32_t i;

    /* 65536 extents of 64 KiB blocks with gaps in a 8 GiB region */
    cxl_dc_init(&dc, N, 16, NULL, NULL);
    g_assert(cxl_dc_add_region(&dc, 0, 8 * GiB, 8 * GiB, 64 * KiB, 0,
                               false, &error_abort));
    for (i = 0; i < N; i++) {
        r[i] = (CXLDCRange) { (uint64_t)i * 128 * KiB, 64 * KiB };
        raw[i] = (CXLDCExtentRaw) { .start_dpa = r[i].offset,
                                    .len = r[i].len };
    }
    g_assert(cxl_dc_offer_add(&dc, &req, NULL, &error_abort));
    g_assert_cmpuint(dc.nr_records, ==, N);
    g_assert_cmpint(cxl_dc_host_add_response(&dc, raw, N, false, NULL), ==,
                    CXL_DC_OK);
    g_assert_cmpuint(dc.nr_accepted, ==, N);
    g_assert_cmpuint(cxl_dc_extents_avail(&dc), ==, 0);
    /* A span over all of them */
    raw[0].len = (uint64_t)(N - 1) * 128 * KiB + 64 * KiB;
    g_assert_cmpint(cxl_dc_host_release(&dc, raw, 1, NULL), ==,
                    CXL_DC_INVALID_PA);
    for (i = 0; i < N; i++) {
        raw[i].len = 64 * KiB;
    }
    g_assert_cmpint(cxl_dc_host_release(&dc, raw, N, NULL), ==, CXL_DC_OK);
    g_assert_cmpuint(dc.nr_accepted, ==, 0);
    cxl_dc_cleanup(&dc);
}

static Notice *notice(Fixture *f, guint i)
{
    g_assert_cmpuint(i, <, f->notices->len);
    return &g_array_index(f->notices, Notice, i);
}

static void test_notices(void)
{
    Fixture f;
    CXLDCRange offer[] = { { 0, 4 * BS }, { 8 * BS, BS } };
    CXLDCRange part[] = { { BS, BS } };
    CXLDCRange r1 = { 0, 2 * BS };
    CXLDCRange r1_dpa = { REGION1_BASE, 2 * BS };
    Notice *n;

    fx_init(&f, 64);
    /* Accept a part: the rest of the offer is declined. */
    g_assert(add(&f, 0, offer, 2, &error_abort));
    g_assert_cmpuint(f.notices->len, ==, 0);
    g_assert_cmpint(respond(&f, part, 1, false), ==, CXL_DC_OK);
    n = notice(&f, 0);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_ACCEPTED);
    g_assert_cmpuint(n->region_id, ==, 0);
    assert_ranges(n->extents, part, 1);
    assert_ranges(n->declined, (CXLDCRange[]) { { 0, BS }, { 2 * BS, 2 * BS },
                                                { 8 * BS, BS } }, 3);
    clear_notices(&f);

    /* Reject: one notice listing everything offered */
    g_assert(add(&f, 1, &r1, 1, &error_abort));
    g_assert_cmpint(respond(&f, NULL, 0, false), ==, CXL_DC_OK);
    n = notice(&f, 0);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_REJECTED);
    g_assert_cmpuint(n->region_id, ==, 1);
    assert_ranges(n->extents, &r1_dpa, 1);
    clear_notices(&f);

    /* Released unasked, then in answer to a request with sanitize */
    g_assert(add(&f, 1, &r1, 1, &error_abort));
    g_assert_cmpint(respond(&f, &r1_dpa, 1, false), ==, CXL_DC_OK);
    clear_notices(&f);
    g_assert_cmpint(host_release(&f, BS, BS), ==, CXL_DC_OK);
    n = notice(&f, 0);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_RELEASED);
    g_assert_cmpint(n->reason, ==, CXL_DC_RELEASE_HOST);
    assert_ranges(n->extents, part, 1);
    clear_notices(&f);
    {
        CXLDCReleaseRequest req = {
            .region_id = 1, .policy = CXL_DC_REMOVE_PRESCRIPTIVE,
            .sanitize = true, .nr_ranges = 1, .ranges = &r1,
        };

        g_assert(cxl_dc_request_release(&f.dc, &req, &error_abort));
    }
    g_assert_cmpuint(f.notices->len, ==, 0);
    g_assert_cmpint(host_release(&f, REGION1_BASE, 2 * BS), ==, CXL_DC_OK);
    g_assert_cmpuint(f.notices->len, ==, 2);
    n = notice(&f, 0);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_RELEASED);
    g_assert_cmpint(n->reason, ==, CXL_DC_RELEASE_REQUESTED);
    g_assert_cmpuint(n->region_id, ==, 1);
    n = notice(&f, 1);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_SANITIZED);
    assert_ranges(n->extents, &r1_dpa, 1);
    clear_notices(&f);

    /* Forced */
    g_assert(add(&f, 0, (CXLDCRange[]) { { 0, BS } }, 1, &error_abort));
    g_assert_cmpint(respond(&f, (CXLDCRange[]) { { 0, BS } }, 1, false), ==,
                    CXL_DC_OK);
    clear_notices(&f);
    g_assert(fm_release(&f, CXL_DC_REMOVE_PRESCRIPTIVE, true, false, NULL,
                        (CXLDCRange[]) { { 0, BS } }, 1, &error_abort));
    n = notice(&f, 0);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_RELEASED);
    g_assert_cmpint(n->reason, ==, CXL_DC_RELEASE_FORCED);
    g_assert_cmpuint(f.notices->len, ==, 1);
    fx_cleanup(&f);
}

/*
 * A release request with sanitize over two extents, answered by one
 * host release of both: both are sanitized, reported once.
 */
static void test_release_sanitize_all_spans(void)
{
    Fixture f;
    QemuUUID tag;
    CXLDCRange r[] = { { 0, 2 * BS }, { 4 * BS, BS } };
    CXLDCAddRequest add_req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE, .has_tag = true,
        .nr_ranges = 2, .ranges = r,
    };
    Notice *n;

    fx_init(&f, 64);
    qemu_uuid_generate(&tag);
    add_req.tag = tag;
    g_assert(cxl_dc_offer_add(&f.dc, &add_req, NULL, &error_abort));
    g_assert_cmpint(respond(&f, r, 2, false), ==, CXL_DC_OK);
    g_assert(fm_release(&f, CXL_DC_REMOVE_TAG_BASED, false, true, &tag,
                        NULL, 0, &error_abort));
    clear_notices(&f);
    {
        CXLDCExtentRaw raw[] = { { .start_dpa = 0, .len = 2 * BS },
                                 { .start_dpa = 4 * BS, .len = BS } };

        g_assert_cmpint(cxl_dc_host_release(&f.dc, raw, 2, NULL), ==,
                        CXL_DC_OK);
    }
    assert_ranges(f.sanitized, r, 2);
    g_assert_cmpuint(f.notices->len, ==, 2);
    n = notice(&f, 1);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_SANITIZED);
    assert_ranges(n->extents, r, 2);
    g_assert(QTAILQ_EMPTY(&f.dc.releases));
    fx_cleanup(&f);
}

/* Build a state with something of everything migration must carry. */
static void build_busy_state(Fixture *f)
{
    QemuUUID tag;
    CXLDCRange acc[] = { { 0, 2 * BS }, { 4 * BS, BS } };
    CXLDCRange pend[] = { { 8 * BS, 2 * BS }, { 12 * BS, BS } };
    CXLDCRange later[] = { { 20 * BS, BS } };
    CXLDCRange staged[] = { { 8 * BS, BS } };
    CXLDCRange rel[] = { { BS, BS } };
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE, .has_tag = true,
        .nr_ranges = 2, .ranges = acc,
    };

    qemu_uuid_generate(&tag);
    req.tag = tag;
    g_assert(cxl_dc_offer_add(&f->dc, &req, NULL, &error_abort));
    g_assert_cmpint(respond(f, acc, 2, false), ==, CXL_DC_OK);
    g_assert(add(f, 0, pend, 2, &error_abort));
    g_assert(add(f, 1, later, 1, &error_abort));
    g_assert_cmpint(respond(f, staged, 1, true), ==, CXL_DC_OK);
    g_assert(fm_release(f, CXL_DC_REMOVE_PRESCRIPTIVE, false, true, NULL,
                        rel, 1, &error_abort));
    /* Some records left in the queue */
    cxl_dc_record_pop(&f->dc);
}

/* Assert two engines hold the same state, as their snapshots show. */
static void assert_same_state(CXLDCState *a, CXLDCState *b)
{
    CXLDCSnapshot sa = {}, sb = {};

    cxl_dc_save(a, &sa);
    cxl_dc_save(b, &sb);
#define SAME_ARRAY(n, arr) do { \
        g_assert_cmpuint(sa.n, ==, sb.n); \
        g_assert(!sa.n || !memcmp(sa.arr, sb.arr, sa.n * sizeof(*sa.arr))); \
    } while (0)
    SAME_ARRAY(nr_regions, regions);
    SAME_ARRAY(nr_extents, extents);
    SAME_ARRAY(nr_groups, groups);
    SAME_ARRAY(nr_releases, releases);
    SAME_ARRAY(nr_ranges, ranges);
    SAME_ARRAY(nr_records, records);
#undef SAME_ARRAY
    g_assert_cmpuint(sa.generation, ==, sb.generation);
    g_assert_cmpuint(sa.next_group_id, ==, sb.next_group_id);
    g_assert_cmpuint(sa.next_release_id, ==, sb.next_release_id);
    g_assert_cmpuint(a->nr_accepted, ==, b->nr_accepted);
    g_assert_cmpuint(a->nr_pending, ==, b->nr_pending);
    g_assert_cmpuint(cxl_dc_tags_avail(a), ==, cxl_dc_tags_avail(b));
    cxl_dc_snapshot_free(&sa);
    cxl_dc_snapshot_free(&sb);
}

/*
 * A reset cancels the pending offers (staged parts included) and
 * release requests, oldest first, with a notice each, and drops the
 * queued records; the accepted extents and the generation stay, and
 * the cancelled capacity can be offered again.
 */
static void test_reset(void)
{
    Fixture f;
    CXLDCRange acc[] = { { 0, 4 * BS }, { REGION1_BASE, 2 * BS } };
    CXLDCRange acc1 = { 0, 2 * BS };    /* acc[1] in region 1 */
    CXLDCRange off1[] = { { 8 * BS, BS }, { 10 * BS, BS } };
    CXLDCRange off2 = { 12 * BS, 2 * BS };
    CXLDCRange ask = { BS, BS };
    uint32_t gen, avail;
    Notice *n;

    fx_init(&f, 64);
    g_assert(add(&f, 0, &acc[0], 1, &error_abort));
    g_assert_cmpint(respond(&f, &acc[0], 1, false), ==, CXL_DC_OK);
    g_assert(add(&f, 1, &acc1, 1, &error_abort));
    g_assert_cmpint(respond(&f, &acc[1], 1, false), ==, CXL_DC_OK);
    avail = cxl_dc_extents_avail(&f.dc);
    g_assert(add(&f, 0, off1, 2, &error_abort));
    g_assert(add(&f, 0, &off2, 1, &error_abort));
    g_assert_cmpint(respond(&f, off1, 1, true), ==, CXL_DC_OK);
    g_assert(fm_release(&f, CXL_DC_REMOVE_PRESCRIPTIVE, false, false, NULL,
                        &ask, 1, &error_abort));
    g_assert_cmpuint(f.dc.nr_records, >, 0);
    gen = f.dc.generation;
    clear_notices(&f);

    cxl_dc_reset(&f.dc);
    g_assert_cmpuint(f.notices->len, ==, 3);
    n = &g_array_index(f.notices, Notice, 0);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_ADD_CANCELLED);
    g_assert_cmpuint(n->id, ==, 2);
    assert_ranges(n->extents, off1, 2);
    n = &g_array_index(f.notices, Notice, 1);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_ADD_CANCELLED);
    g_assert_cmpuint(n->id, ==, 3);
    assert_ranges(n->extents, &off2, 1);
    n = &g_array_index(f.notices, Notice, 2);
    g_assert_cmpint(n->type, ==, CXL_DC_NOTICE_RELEASE_CANCELLED);
    g_assert_cmpuint(n->id, ==, 0);
    assert_ranges(n->extents, &ask, 1);

    g_assert_cmpuint(f.dc.nr_pending, ==, 0);
    g_assert_cmpuint(f.dc.nr_records, ==, 0);
    g_assert_null(cxl_dc_record_peek(&f.dc));
    g_assert(QTAILQ_EMPTY(&f.dc.groups));
    g_assert(QTAILQ_EMPTY(&f.dc.releases));
    g_assert_cmpuint(f.dc.generation, ==, gen);
    g_assert_cmpuint(cxl_dc_extents_avail(&f.dc), ==, avail);
    assert_extents(&f, acc, 2);
    g_assert(cxl_dc_is_backed(&f.dc, 0, 4 * BS));
    g_assert_false(cxl_dc_is_backed(&f.dc, 8 * BS, BS));

    /* A host that came back: the capacity can be offered again */
    g_assert(add(&f, 0, off1, 2, &error_abort));
    g_assert_cmpint(respond(&f, off1, 2, false), ==, CXL_DC_OK);
    g_assert(fm_release(&f, CXL_DC_REMOVE_PRESCRIPTIVE, false, false, NULL,
                        &ask, 1, &error_abort));
    fx_cleanup(&f);
}

static void test_migrate_roundtrip(void)
{
    Fixture src, dst;
    CXLDCSnapshot snap = {};
    CXLDCRange rest[] = { { 9 * BS, BS }, { 12 * BS, BS } };

    fx_init(&src, 64);
    fx_init(&dst, 64);
    build_busy_state(&src);
    cxl_dc_save(&src.dc, &snap);
    g_assert(cxl_dc_load(&dst.dc, &snap, &error_abort));
    cxl_dc_snapshot_free(&snap);
    assert_same_state(&src.dc, &dst.dc);
    g_assert(cxl_dc_is_backed(&dst.dc, 0, 2 * BS));
    g_assert_false(cxl_dc_is_backed(&dst.dc, 8 * BS, BS));

    /* Both go on the same way: finish the response in parts, release */
    g_assert_cmpint(respond(&src, rest, 2, false), ==, CXL_DC_OK);
    g_assert_cmpint(respond(&dst, rest, 2, false), ==, CXL_DC_OK);
    g_assert_cmpint(host_release(&src, 0, 2 * BS), ==, CXL_DC_OK);
    g_assert_cmpint(host_release(&dst, 0, 2 * BS), ==, CXL_DC_OK);
    assert_same_state(&src.dc, &dst.dc);
    /* The pending release asked for sanitize: both sanitized */
    assert_ranges(src.sanitized, (CXLDCRange[]) { { 0, 2 * BS } }, 1);
    assert_ranges(dst.sanitized, (CXLDCRange[]) { { 0, 2 * BS } }, 1);
    fx_cleanup(&src);
    fx_cleanup(&dst);
}

/* Corrupt a copy of a busy snapshot with @fn; loading it must fail. */
typedef void (*Corrupt)(CXLDCSnapshot *snap);

static void corrupt_overlap(CXLDCSnapshot *snap)
{
    snap->extents[1].dpa = snap->extents[0].dpa + BS;
}

static void corrupt_out_of_range(CXLDCSnapshot *snap)
{
    snap->extents[0].dpa = REGION_LEN;
}

static void corrupt_misaligned(CXLDCSnapshot *snap)
{
    snap->extents[0].len = BS + 4096;
}

static void corrupt_wrap(CXLDCSnapshot *snap)
{
    snap->extents[0].dpa = UINT64_MAX - BS + 1;
    snap->extents[0].len = 2 * BS;
}

static void corrupt_regions(CXLDCSnapshot *snap)
{
    snap->nr_regions = 1;
}

static void corrupt_region_base(CXLDCSnapshot *snap)
{
    snap->regions[1].base += 256 * MiB;
}

static void corrupt_group_index(CXLDCSnapshot *snap)
{
    guint i;

    for (i = 0; i < snap->nr_extents; i++) {
        if (snap->extents[i].kind == CXL_DC_SAVED_PENDING) {
            snap->extents[i].group = 7;
            return;
        }
    }
}

static void corrupt_staged_outside(CXLDCSnapshot *snap)
{
    guint i;

    for (i = 0; i < snap->nr_extents; i++) {
        if (snap->extents[i].kind == CXL_DC_SAVED_STAGED) {
            snap->extents[i].dpa = 40 * BS;
            return;
        }
    }
}

/* Found by the load fuzz target: a staged extent that took another tag */
static void corrupt_staged_tag(CXLDCSnapshot *snap)
{
    guint i;

    for (i = 0; i < snap->nr_extents; i++) {
        if (snap->extents[i].kind == CXL_DC_SAVED_STAGED) {
            snap->extents[i].tag[0] ^= 0x5a;
            return;
        }
    }
}

/* Found by the load fuzz target, as the three below */
static void corrupt_group_order(CXLDCSnapshot *snap)
{
    uint64_t id = snap->groups[0].id;

    snap->groups[0].id = snap->groups[1].id;
    snap->groups[1].id = id;
}

static void corrupt_empty_group(CXLDCSnapshot *snap)
{
    snap->groups = g_renew(CXLDCSavedGroup, snap->groups,
                           snap->nr_groups + 1);
    snap->groups[snap->nr_groups] = snap->groups[snap->nr_groups - 1];
    snap->groups[snap->nr_groups].id = snap->next_group_id++;
    snap->nr_groups++;
}

static void corrupt_offer_order(CXLDCSnapshot *snap)
{
    CXLDCSavedExtent *first = NULL, tmp;
    guint i;

    for (i = 0; i < snap->nr_extents; i++) {
        CXLDCSavedExtent *e = &snap->extents[i];

        if (e->kind == CXL_DC_SAVED_PENDING && e->group == 0) {
            if (!first) {
                first = e;
                continue;
            }
            tmp = *first;
            *first = *e;
            *e = tmp;
            return;
        }
    }
}

static void corrupt_release_dead(CXLDCSnapshot *snap)
{
    snap->ranges[0].dpa = 30 * BS;
}

static void corrupt_release_twice(CXLDCSnapshot *snap)
{
    snap->releases = g_renew(CXLDCSavedRelease, snap->releases,
                             snap->nr_releases + 1);
    snap->releases[snap->nr_releases] = snap->releases[0];
    snap->releases[snap->nr_releases].id = snap->next_release_id++;
    snap->nr_releases++;
    snap->ranges = g_renew(CXLDCSavedRange, snap->ranges,
                           snap->nr_ranges + 1);
    snap->ranges[snap->nr_ranges++] = snap->ranges[0];
}

static void corrupt_pending_on_accepted(CXLDCSnapshot *snap)
{
    guint i;

    for (i = 0; i < snap->nr_extents; i++) {
        if (snap->extents[i].kind == CXL_DC_SAVED_PENDING) {
            snap->extents[i].dpa = 0;
            return;
        }
    }
}

static void corrupt_too_many(CXLDCSnapshot *snap)
{
    guint i;

    snap->extents = g_renew(CXLDCSavedExtent, snap->extents, 80);
    for (i = 0; i < 80; i++) {
        snap->extents[i] = (CXLDCSavedExtent) {
            .dpa = (i % 2 ? REGION1_BASE : 0) + (uint64_t)(i / 2) * BS,
            .len = BS,
            .kind = CXL_DC_SAVED_ACCEPTED,
        };
    }
    snap->nr_extents = 80;
}

static void corrupt_record(CXLDCSnapshot *snap)
{
    snap->records[0].type = 9;
}

static void corrupt_ranges(CXLDCSnapshot *snap)
{
    snap->releases[0].nr_ranges = 5;
}

static void corrupt_kind(CXLDCSnapshot *snap)
{
    snap->extents[0].kind = 3;
}

static const struct {
    Corrupt fn;
    const char *error;
} corruptions[] = {
    { corrupt_overlap, "accepted extent 1: dpa 0x200000 overlaps accepted"
                       " extent 0 at dpa 0x0" },
    { corrupt_out_of_range, "accepted extent 0: dpa 0x8000000" },
    { corrupt_misaligned, "is not aligned to block size" },
    { corrupt_wrap, "is not inside one DC region" },
    { corrupt_regions, "the stream has 1 DC regions, the device 2" },
    { corrupt_region_base, "region 1: the stream has base" },
    { corrupt_group_index, "group 7 does not exist" },
    { corrupt_staged_outside, "is not inside one pending extent" },
    { corrupt_staged_tag, "has another tag or sequence number than pending"
      " extent" },
    { corrupt_group_order, "pending group 1: id 1 is not above the id 2" },
    { corrupt_empty_group, "pending group 2 offers no extent" },
    { corrupt_offer_order, "is not above the extent before it in group 0" },
    { corrupt_release_dead, "release request 0 asks for no accepted" },
    { corrupt_release_twice, "overlaps release range 0" },
    { corrupt_pending_on_accepted, "pending extent 2: dpa 0x0 overlaps"
                                   " accepted extent 0" },
    { corrupt_too_many, "the stream holds 80 extents" },
    { corrupt_record, "queued record 0" },
    { corrupt_ranges, "release request 0" },
    { corrupt_kind, "kind 3 is unknown" },
};

static void test_migrate_corrupt(void)
{
    guint i;

    for (i = 0; i < ARRAY_SIZE(corruptions); i++) {
        Fixture src, dst;
        CXLDCSnapshot snap = {}, before = {}, after = {};
        Error *err = NULL;

        fx_init(&src, 64);
        fx_init(&dst, 64);
        build_busy_state(&src);
        /* The destination has a state of its own, which must survive */
        g_assert(add(&dst, 1, (CXLDCRange[]) { { 30 * BS, BS } }, 1,
                     &error_abort));
        cxl_dc_save(&dst.dc, &before);
        cxl_dc_save(&src.dc, &snap);
        corruptions[i].fn(&snap);
        g_assert_false(cxl_dc_load(&dst.dc, &snap, &err));
        if (!strstr(error_get_pretty(err), corruptions[i].error)) {
            g_error("corruption %u: '%s' does not mention '%s'", i,
                    error_get_pretty(err), corruptions[i].error);
        }
        error_free(err);
        cxl_dc_save(&dst.dc, &after);
        g_assert_cmpuint(before.nr_extents, ==, after.nr_extents);
        g_assert(!memcmp(before.extents, after.extents,
                         before.nr_extents * sizeof(*before.extents)));
        g_assert_cmpuint(before.nr_records, ==, after.nr_records);
        cxl_dc_snapshot_free(&snap);
        cxl_dc_snapshot_free(&before);
        cxl_dc_snapshot_free(&after);
        fx_cleanup(&src);
        fx_cleanup(&dst);
    }
}

/*
 * A response in parts may split an offered extent into more accepted
 * pieces than were offered.  That surplus counts against the limit at
 * once, so that no later add can use the room the final part needs and
 * wedge every add queued behind it (found by the fuzzer).
 */
static void test_add_parts_surplus(void)
{
    Fixture f;
    CXLDCRange offer[] = { { 0, 4 * BS } };
    CXLDCRange pieces[] = { { 0, BS }, { 2 * BS, BS } };
    CXLDCRange later[] = { { 8 * BS, BS }, { 10 * BS, BS }, { 12 * BS, BS } };
    Error *err = NULL;

    fx_init(&f, 4);
    g_assert(add(&f, 0, offer, 1, &error_abort));
    g_assert_cmpint(respond(&f, pieces, 2, true), ==, CXL_DC_OK);
    /* 1 offered, 2 staged: 2 of 4 extents are taken */
    g_assert_cmpuint(cxl_dc_extents_avail(&f.dc), ==, 2);
    g_assert_false(add(&f, 0, later, 3, &err));
    error_free(err);
    g_assert(add(&f, 0, later, 2, &error_abort));
    /* The final part still fits */
    g_assert_cmpint(respond(&f, NULL, 0, false), ==, CXL_DC_OK);
    assert_extents(&f, pieces, 2);
    fx_cleanup(&f);
}

/*
 * Randomized check against a model: one state per block, and per block
 * an extent number so that extent boundaries are modelled too.
 */
enum { M_FREE, M_PENDING, M_ACCEPTED };

typedef struct Model {
    uint8_t state[2][NBLOCKS];
    uint32_t ext[2][NBLOCKS];   /* extent number of pending/accepted */
    uint64_t group[2][NBLOCKS]; /* pending: group id */
    uint32_t next_ext;
    uint64_t next_group;
    uint64_t front_group;
    uint32_t max_extents;
} Model;

/* Successful operations of each kind, over all runs */
static unsigned model_ok[5];

static uint64_t block_dpa(int rid, int blk)
{
    return (rid ? REGION1_BASE : 0) + (uint64_t)blk * BS;
}

/* Count extents (runs of equal extent numbers) in a given state. */
static uint32_t model_count(Model *m, int state)
{
    uint32_t n = 0;
    int rid, b;

    for (rid = 0; rid < 2; rid++) {
        for (b = 0; b < NBLOCKS; b++) {
            if (m->state[rid][b] == state &&
                (b == 0 || m->state[rid][b - 1] != state ||
                 m->ext[rid][b - 1] != m->ext[rid][b])) {
                n++;
            }
        }
    }
    return n;
}

static void model_compare(Model *m, Fixture *f)
{
    g_autofree CXLDCExtentRaw *out = g_new0(CXLDCExtentRaw, 2 * NBLOCKS);
    uint32_t n, i = 0;
    int rid, b;

    for (rid = 0; rid < 2; rid++) {
        for (b = 0; b < NBLOCKS; b++) {
            uint64_t dpa = block_dpa(rid, b);
            bool pending = interval_tree_iter_first(&f->dc.pending, dpa,
                                                    dpa + BS - 1);

            g_assert_cmpint(cxl_dc_is_backed(&f->dc, dpa, BS), ==,
                            m->state[rid][b] == M_ACCEPTED);
            g_assert_cmpint(pending, ==, m->state[rid][b] == M_PENDING);
            /* Exactly one state per block */
            g_assert(!(pending && cxl_dc_is_backed(&f->dc, dpa, BS)));
        }
    }
    g_assert_cmpuint(f->dc.nr_pending, ==, model_count(m, M_PENDING));
    n = cxl_dc_get_extents(&f->dc, 0, 2 * NBLOCKS, out);
    g_assert_cmpuint(n, ==, model_count(m, M_ACCEPTED));
    g_assert_cmpuint(n, ==, f->dc.nr_accepted);
    for (rid = 0; rid < 2; rid++) {
        for (b = 0; b < NBLOCKS; b++) {
            int e = b;

            if (m->state[rid][b] != M_ACCEPTED ||
                (b && m->state[rid][b - 1] == M_ACCEPTED &&
                 m->ext[rid][b - 1] == m->ext[rid][b])) {
                continue;
            }
            while (e + 1 < NBLOCKS && m->state[rid][e + 1] == M_ACCEPTED &&
                   m->ext[rid][e + 1] == m->ext[rid][b]) {
                e++;
            }
            g_assert_cmphex(ldq_le_p(&out[i].start_dpa), ==,
                            block_dpa(rid, b));
            g_assert_cmphex(ldq_le_p(&out[i].len), ==,
                            (uint64_t)(e - b + 1) * BS);
            i++;
        }
    }
}

/* A random range of a region: mostly valid, sometimes not. */
static CXLDCRange random_range(void)
{
    CXLDCRange r;
    int kind = g_test_rand_int_range(0, 20);

    r.offset = (uint64_t)g_test_rand_int_range(0, NBLOCKS) * BS;
    r.len = (uint64_t)g_test_rand_int_range(1, 5) * BS;
    if (kind == 0) {
        r.len = 0;
    } else if (kind == 1) {
        r.offset += 4096;
    } else if (kind == 2) {
        r.offset = UINT64_MAX - BS + 1;
    }
    return r;
}

/*
 * Half the time, a range inside accepted capacity (a part of an extent,
 * one, or a span over several) when there is some; else random_range().
 */
static CXLDCRange release_range(Model *m, int *rid)
{
    CXLDCRange r = random_range();
    int b = g_test_rand_int_range(0, NBLOCKS), e;

    *rid = g_test_rand_int_range(0, 2);
    if (g_test_rand_int_range(0, 2) || m->state[*rid][b] != M_ACCEPTED) {
        return r;
    }
    for (e = b; e + 1 < NBLOCKS && m->state[*rid][e + 1] == M_ACCEPTED &&
         g_test_rand_int_range(0, 3); e++) {
        continue;
    }
    r.offset = (uint64_t)b * BS;
    r.len = (uint64_t)(e - b + 1) * BS;
    return r;
}

static bool range_valid(const CXLDCRange *r)
{
    return r->len && !(r->offset % BS) && !(r->len % BS) &&
           r->offset < REGION_LEN && r->len <= REGION_LEN - r->offset;
}

static void step_add(Model *m, Fixture *f)
{
    int rid = g_test_rand_int_range(0, 2);
    uint32_t n = g_test_rand_int_range(1, 4), i;
    CXLDCRange r[4];
    bool valid = true;
    uint64_t b, gid;
    uint8_t seen[NBLOCKS] = { 0 };
    Error *err = NULL;
    bool ok;

    for (i = 0; i < n; i++) {
        r[i] = random_range();
        if (!range_valid(&r[i])) {
            valid = false;
            continue;
        }
        for (b = r[i].offset / BS; b < (r[i].offset + r[i].len) / BS; b++) {
            if (m->state[rid][b] != M_FREE || seen[b]) {
                valid = false;
            }
            seen[b] = 1;
        }
    }
    if (model_count(m, M_ACCEPTED) + model_count(m, M_PENDING) + n >
        m->max_extents) {
        valid = false;
    }
    ok = add(f, rid, r, n, &err);
    g_assert_cmpint(ok, ==, valid);
    if (!ok) {
        g_assert(err);
        error_free(err);
        return;
    }
    model_ok[0]++;
    gid = m->next_group++;
    for (i = 0; i < n; i++) {
        uint32_t ext = m->next_ext++;

        for (b = r[i].offset / BS; b < (r[i].offset + r[i].len) / BS; b++) {
            m->state[rid][b] = M_PENDING;
            m->ext[rid][b] = ext;
            m->group[rid][b] = gid;
        }
    }
}

/* Answer the oldest group: accept a random part of each of its extents. */
static void step_respond(Model *m, Fixture *f)
{
    CXLDCRange acc[2 * NBLOCKS];
    uint32_t n = 0, group_extents;
    int rid, b;
    bool any = false;
    CXLDCStatus ret;

    for (rid = 0; rid < 2; rid++) {
        for (b = 0; b < NBLOCKS; b++) {
            if (m->state[rid][b] != M_PENDING ||
                m->group[rid][b] != m->front_group) {
                continue;
            }
            any = true;
            /* Accept this block alone, or with the previous one. */
            if (g_test_rand_int_range(0, 3) == 0) {
                continue;
            }
            if (n && acc[n - 1].offset + acc[n - 1].len == block_dpa(rid, b) &&
                b && m->ext[rid][b - 1] == m->ext[rid][b] &&
                m->state[rid][b - 1] == M_PENDING &&
                g_test_rand_int_range(0, 2)) {
                acc[n - 1].len += BS;
            } else {
                acc[n++] = (CXLDCRange) { block_dpa(rid, b), BS };
            }
        }
    }
    if (g_test_rand_int_range(0, 10) == 0 && n) {
        /* A range outside the group: refused, nothing changes. */
        acc[0].offset = block_dpa(1, NBLOCKS - 1) + BS;
        g_assert_cmpint(respond(f, acc, n, false), !=, CXL_DC_OK);
        return;
    }
    ret = respond(f, acc, n, false);
    if (!any) {
        g_assert_cmpint(ret, ==, CXL_DC_INVALID_PA);
        return;
    }
    /* Pieces of pending extents may need more than the limit allows. */
    group_extents = 0;
    for (rid = 0; rid < 2; rid++) {
        for (b = 0; b < NBLOCKS; b++) {
            group_extents += m->state[rid][b] == M_PENDING &&
                             m->group[rid][b] == m->front_group &&
                             (b == 0 || m->state[rid][b - 1] != M_PENDING ||
                              m->ext[rid][b - 1] != m->ext[rid][b]);
        }
    }
    if (model_count(m, M_ACCEPTED) + model_count(m, M_PENDING) -
        group_extents + n > m->max_extents) {
        g_assert_cmpint(ret, ==, CXL_DC_RESOURCES_EXHAUSTED);
        return;
    }
    /* Each accepted block range becomes an extent; the rest is free. */
    g_assert_cmpint(ret, ==, CXL_DC_OK);
    model_ok[n ? 1 : 2]++;
    for (rid = 0; rid < 2; rid++) {
        for (b = 0; b < NBLOCKS; b++) {
            if (m->state[rid][b] == M_PENDING &&
                m->group[rid][b] == m->front_group) {
                m->state[rid][b] = M_FREE;
            }
        }
    }
    while (n--) {
        uint32_t ext = m->next_ext++;
        uint64_t dpa;

        for (dpa = acc[n].offset; dpa < acc[n].offset + acc[n].len;
             dpa += BS) {
            rid = dpa >= REGION1_BASE;
            b = (dpa - block_dpa(rid, 0)) / BS;
            m->state[rid][b] = M_ACCEPTED;
            m->ext[rid][b] = ext;
        }
    }
    m->front_group++;
    while (m->front_group < m->next_group) {
        bool pending = false;

        for (rid = 0; rid < 2; rid++) {
            for (b = 0; b < NBLOCKS; b++) {
                pending |= m->state[rid][b] == M_PENDING &&
                           m->group[rid][b] == m->front_group;
            }
        }
        if (pending) {
            break;
        }
        m->front_group++;
    }
}

/*
 * Release @r of region @rid in the model, if it is all accepted and the
 * extents it splits fit the limit; return whether it was released.
 */
static bool model_release(Model *m, int rid, const CXLDCRange *r)
{
    uint64_t b, first = r->offset / BS, end;
    uint32_t before = model_count(m, M_ACCEPTED), after;
    Model save = *m;

    if (!range_valid(r)) {
        return false;
    }
    end = (r->offset + r->len) / BS;
    for (b = first; b < end; b++) {
        if (m->state[rid][b] != M_ACCEPTED) {
            return false;
        }
    }
    for (b = first; b < end; b++) {
        m->state[rid][b] = M_FREE;
    }
    /* The piece after the cut is a new extent. */
    if (end < NBLOCKS && m->state[rid][end] == M_ACCEPTED &&
        first > 0 && m->state[rid][first - 1] == M_ACCEPTED &&
        m->ext[rid][end] == m->ext[rid][first - 1]) {
        uint32_t ext = m->ext[rid][end], next = m->next_ext++;

        for (b = end; b < NBLOCKS && m->state[rid][b] == M_ACCEPTED &&
             m->ext[rid][b] == ext; b++) {
            m->ext[rid][b] = next;
        }
    }
    after = model_count(m, M_ACCEPTED);
    if (after + model_count(m, M_PENDING) > m->max_extents && after > before) {
        *m = save;
        return false;
    }
    return true;
}

static void step_release(Model *m, Fixture *f)
{
    int rid;
    CXLDCRange r = release_range(m, &rid);
    bool valid = model_release(m, rid, &r);
    uint32_t gen = f->dc.generation;
    CXLDCStatus ret;

    if (r.len && r.offset <= UINT64_MAX - block_dpa(rid, 0)) {
        r.offset += block_dpa(rid, 0);
    }
    ret = host_release(f, r.offset, r.len);
    g_assert_cmpint(ret == CXL_DC_OK, ==, valid);
    g_assert_cmpint(f->dc.generation != gen, ==, valid);
    model_ok[3] += valid;
}

static void step_forced(Model *m, Fixture *f)
{
    int rid;
    CXLDCRange r = release_range(m, &rid);
    CXLDCReleaseRequest req = {
        .region_id = rid, .policy = CXL_DC_REMOVE_PRESCRIPTIVE,
        .forced = true, .nr_ranges = 1, .ranges = &r,
    };
    bool valid = model_release(m, rid, &r);
    Error *err = NULL;
    bool ok;

    ok = cxl_dc_request_release(&f->dc, &req, &err);
    g_assert_cmpint(ok, ==, valid);
    model_ok[4] += ok;
    if (!ok) {
        error_free(err);
    }
}

static void test_model_run(unsigned steps, uint32_t max_extents)
{
    Fixture f;
    Model *m = g_new0(Model, 1);
    unsigned i;

    m->max_extents = max_extents;
    fx_init(&f, max_extents);
    for (i = 0; i < steps; i++) {
        switch (g_test_rand_int_range(0, 10)) {
        case 0: case 1: case 2: case 3:
            step_add(m, &f);
            break;
        case 4: case 5: case 6:
            step_respond(m, &f);
            break;
        case 7: case 8:
            step_release(m, &f);
            break;
        default:
            step_forced(m, &f);
            break;
        }
        if (g_test_rand_int_range(0, 4) == 0) {
            drain_records(&f);
        }
        model_compare(m, &f);
    }
    fx_cleanup(&f);
    g_free(m);
}

static void test_model(void)
{
    unsigned runs = g_test_slow() ? 20000 : 2000, i;

    for (i = 0; i < runs; i++) {
        test_model_run(100, i % 2 ? 12 : 64);
    }
    /*
     * Every kind of operation succeeded often: adds, answers with
     * extents, rejections, host releases, forced releases.
     */
    for (i = 0; i < ARRAY_SIZE(model_ok); i++) {
        g_assert_cmpuint(model_ok[i], >, runs / 2);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/cxl-dc/region/layout", test_region_layout);
    g_test_add_func("/cxl-dc/add/accept-all", test_add_accept_all);
    g_test_add_func("/cxl-dc/add/reject", test_add_reject);
    g_test_add_func("/cxl-dc/add/accept-part", test_add_accept_part);
    g_test_add_func("/cxl-dc/add/response-in-parts",
                    test_add_response_in_parts);
    g_test_add_func("/cxl-dc/add/response-errors", test_add_response_errors);
    g_test_add_func("/cxl-dc/add/errors", test_add_errors);
    g_test_add_func("/cxl-dc/add/shared-refused", test_add_shared_refused);
    g_test_add_func("/cxl-dc/add/free-contiguous", test_add_free_contiguous);
    g_test_add_func("/cxl-dc/release/host", test_release_host);
    g_test_add_func("/cxl-dc/release/split-limit", test_release_split_limit);
    g_test_add_func("/cxl-dc/release/fm-sanitize", test_release_fm);
    g_test_add_func("/cxl-dc/release/forced-tag",
                    test_release_forced_and_tag);
    g_test_add_func("/cxl-dc/extent-list/paging", test_extent_list_paging);
    g_test_add_func("/cxl-dc/notices", test_notices);
    g_test_add_func("/cxl-dc/add/parts-surplus", test_add_parts_surplus);
    g_test_add_func("/cxl-dc/reset", test_reset);
    g_test_add_func("/cxl-dc/migrate/roundtrip", test_migrate_roundtrip);
    g_test_add_func("/cxl-dc/migrate/corrupt", test_migrate_corrupt);
    g_test_add_func("/cxl-dc/release/sanitize-all-spans",
                    test_release_sanitize_all_spans);
    g_test_add_func("/cxl-dc/scale/65536", test_many_extents);
    g_test_add_func("/cxl-dc/model", test_model);

    return g_test_run();
}
