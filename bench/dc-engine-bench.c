/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Microbenchmarks of the DC engine (hw/cxl/cxl-dc.c) alone, through its
 * public API, on one region holding N accepted extents of 4 blocks with
 * a gap of 4 blocks after each.
 *
 *   dc-engine-bench wall        operations per second (median of 5) at
 *                               64 and 65536 extents, bytes per extent
 *   dc-engine-bench callgrind   under valgrind --tool=callgrind: one
 *                               stats dump per operation and size,
 *                               named "op=OP n=N k=K"; K operations
 *
 * Operations at N extents:
 *   add-accept      one offer of N extents, one response accepting all
 *                   (per extent)
 *   insert          offer one extent in a gap and accept it
 *   lookup          an offer overlapping an accepted extent, refused:
 *                   the "what overlaps" query
 *   split           host release of one block inside an extent
 *   release         host release of a whole extent
 *   release-requested  the same while a tag-based release request for
 *                   all N extents is pending
 *   list-seq        Get DC Extent List, the whole list in pages of 50
 *                   (per extent)
 *   list-random     one extent at a random index of the list
 *
 * CSV rows: engine,OP,N,VALUE,UNIT
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/cxl/cxl_dc.h"
#include <malloc.h>
#include <valgrind/callgrind.h>

#define BLK             (2 * MiB)
#define EXT_BLOCKS      4
#define STRIDE_BLOCKS   8
#define PAGE            50      /* extents per Get DC Extent List payload */
#define CG_OPS          32      /* operations per callgrind measurement */
#define WALL_OPS        20000
#define WALL_RUNS       5

static const char bench_tag[] = "7e57be4c-0000-4000-8000-00000000dcd0";

typedef struct Eng {
    CXLDCState dc;
    uint32_t n;
    uint32_t next;              /* next position of the permutation */
    uint32_t seed;
} Eng;

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * Distinct extents in a scattered order: i -> (seed + i * p) mod n for
 * an odd p, a permutation when n is a power of two.
 */
static uint32_t pick(Eng *e)
{
    return (e->seed + (uint64_t)e->next++ * 40503u) % e->n;
}

static void pop_records(CXLDCState *dc)
{
    while (cxl_dc_record_peek(dc)) {
        cxl_dc_record_pop(dc);
    }
}

/* An empty engine whose region fits @n extents and their gaps */
static void eng_init(Eng *e, uint32_t n)
{
    uint64_t len = ROUND_UP((uint64_t)n * STRIDE_BLOCKS * BLK,
                            CXL_DC_REGION_ALIGN);

    memset(e, 0, sizeof(*e));
    e->n = n;
    e->seed = 12345;
    cxl_dc_init(&e->dc, 4 * n + 1024, 1024, NULL, NULL);
    if (!cxl_dc_add_region(&e->dc, 0, len, len, BLK, 0, false,
                           &error_abort)) {
        abort();
    }
}

/* Offer @e->n extents in one request and accept them in one response */
static void eng_build(Eng *e, bool tagged)
{
    uint32_t n = e->n, i;
    g_autofree CXLDCRange *ranges = g_new0(CXLDCRange, n);
    g_autofree CXLDCExtentRaw *raw = g_new0(CXLDCExtentRaw, n);
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE,
        .nr_ranges = n,
        .ranges = ranges,
        .has_tag = tagged,
    };

    if (tagged && qemu_uuid_parse(bench_tag, &req.tag)) {
        abort();
    }
    for (i = 0; i < n; i++) {
        ranges[i].offset = (uint64_t)i * STRIDE_BLOCKS * BLK;
        ranges[i].len = EXT_BLOCKS * BLK;
        raw[i].start_dpa = ranges[i].offset;
        raw[i].len = ranges[i].len;
    }
    if (!cxl_dc_offer_add(&e->dc, &req, NULL, &error_abort)) {
        abort();
    }
    pop_records(&e->dc);
    if (cxl_dc_host_add_response(&e->dc, raw, n, false, &error_abort) !=
        CXL_DC_OK) {
        abort();
    }
    g_assert(e->dc.nr_accepted == n);
}

static void op_insert(Eng *e)
{
    uint32_t i = pick(e);
    CXLDCRange range = {
        .offset = ((uint64_t)i * STRIDE_BLOCKS + EXT_BLOCKS) * BLK,
        .len = BLK,
    };
    CXLDCExtentRaw raw = { .start_dpa = range.offset, .len = BLK };
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE,
        .nr_ranges = 1,
        .ranges = &range,
    };

    if (!cxl_dc_offer_add(&e->dc, &req, NULL, &error_abort)) {
        abort();
    }
    pop_records(&e->dc);
    if (cxl_dc_host_add_response(&e->dc, &raw, 1, false, &error_abort) !=
        CXL_DC_OK) {
        abort();
    }
}

static void op_lookup(Eng *e)
{
    uint32_t i = pick(e);
    CXLDCRange range = {
        .offset = ((uint64_t)i * STRIDE_BLOCKS + 3) * BLK,
        .len = BLK,
    };
    CXLDCAddRequest req = {
        .policy = CXL_DC_SELECT_PRESCRIPTIVE,
        .nr_ranges = 1,
        .ranges = &range,
    };

    /* NULL errp: the refusal formats no message */
    if (cxl_dc_offer_add(&e->dc, &req, NULL, NULL)) {
        abort();
    }
}

static void host_release(Eng *e, uint64_t block, uint64_t blocks)
{
    CXLDCExtentRaw raw = { .start_dpa = block * BLK, .len = blocks * BLK };

    if (cxl_dc_host_release(&e->dc, &raw, 1, &error_abort) != CXL_DC_OK) {
        abort();
    }
}

static void op_split(Eng *e)
{
    host_release(e, (uint64_t)pick(e) * STRIDE_BLOCKS + 1, 1);
}

static void op_release(Eng *e)
{
    host_release(e, (uint64_t)pick(e) * STRIDE_BLOCKS, EXT_BLOCKS);
}

static void op_list_random(Eng *e)
{
    CXLDCExtentRaw out;

    if (cxl_dc_get_extents(&e->dc, pick(e), 1, &out) != 1) {
        abort();
    }
}

/* The whole list in pages: @e->n extents */
static void list_seq(Eng *e)
{
    CXLDCExtentRaw out[PAGE];
    uint32_t start = 0, got;

    while ((got = cxl_dc_get_extents(&e->dc, start, PAGE, out))) {
        start += got;
    }
    g_assert(start == e->dc.nr_accepted);
}

/* A tag-based release request for every extent: they stay accepted */
static void request_release_all(Eng *e)
{
    CXLDCReleaseRequest req = {
        .policy = CXL_DC_REMOVE_TAG_BASED,
        .has_tag = true,
    };

    if (qemu_uuid_parse(bench_tag, &req.tag) ||
        !cxl_dc_request_release(&e->dc, &req, &error_abort)) {
        abort();
    }
    pop_records(&e->dc);
}

typedef void (*EngOp)(Eng *e);

static const struct {
    const char *name;
    EngOp fn;
    bool tagged_request;        /* needs request_release_all() first */
    /*
     * Go on picking after the extents the previous operation picked:
     * release must not meet the extents split cut.
     */
    bool continue_picks;
} ops[] = {
    { "lookup", op_lookup },
    { "list-random", op_list_random },
    { "insert", op_insert },
    { "split", op_split },
    { "release", op_release, false, true },
    { "release-requested", op_release, true },
};

/* callgrind: count instructions of each operation at each size */

static void cg_dump(const char *op, uint32_t n, uint32_t k)
{
    g_autofree char *name = g_strdup_printf("op=%s n=%u k=%u", op, n, k);

    CALLGRIND_DUMP_STATS_AT(name);
}

static void run_callgrind(void)
{
    static const uint32_t sizes[] = { 64, 512, 4096, 65536 };
    unsigned s, o;
    int k;

    for (s = 0; s < ARRAY_SIZE(sizes); s++) {
        uint32_t n = sizes[s];
        Eng e;

        eng_init(&e, n);
        CALLGRIND_ZERO_STATS;
        eng_build(&e, false);
        cg_dump("add-accept", n, n);

        CALLGRIND_ZERO_STATS;
        list_seq(&e);
        cg_dump("list-seq", n, n);

        for (o = 0; o < ARRAY_SIZE(ops); o++) {
            if (ops[o].tagged_request) {
                continue;
            }
            if (!ops[o].continue_picks) {
                e.next = 0;
            }
            CALLGRIND_ZERO_STATS;
            for (k = 0; k < CG_OPS; k++) {
                ops[o].fn(&e);
            }
            cg_dump(ops[o].name, n, CG_OPS);
        }
        cxl_dc_cleanup(&e.dc);

        eng_init(&e, n);
        eng_build(&e, true);
        request_release_all(&e);
        CALLGRIND_ZERO_STATS;
        for (k = 0; k < CG_OPS; k++) {
            op_release(&e);
        }
        cg_dump("release-requested", n, CG_OPS);
        cxl_dc_cleanup(&e.dc);
    }
}

/* wall clock: operations per second, median of WALL_RUNS runs */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Nanoseconds per operation of ops[@o] (or, with @o < 0, per extent of
 * add-accept and of list-seq) on @n extents: enough fresh engines to
 * run about WALL_OPS operations, never more than half of n on one.
 */
static double wall_ns(int o, const char *what, uint32_t n)
{
    bool tagged = o >= 0 && ops[o].tagged_request;
    /* release-requested is O(n) each: keep its run short */
    uint32_t target = tagged ? 2000 : WALL_OPS;
    uint32_t per = MAX(1, MIN(n / 2, target));
    uint64_t done = 0;
    double ns = 0;

    while (done < target) {
        Eng e;
        double t0;
        uint32_t k;

        eng_init(&e, n);
        if (o < 0 && !strcmp(what, "add-accept")) {
            t0 = now_ns();
            eng_build(&e, false);
            ns += now_ns() - t0;
            done += n;
        } else {
            eng_build(&e, tagged);
            if (o < 0) {
                t0 = now_ns();
                list_seq(&e);
                ns += now_ns() - t0;
                done += n;
            } else {
                if (tagged) {
                    request_release_all(&e);
                }
                t0 = now_ns();
                for (k = 0; k < per; k++) {
                    ops[o].fn(&e);
                }
                ns += now_ns() - t0;
                done += per;
            }
        }
        cxl_dc_cleanup(&e.dc);
    }
    return ns / done;
}

static void wall_row(int o, const char *what, uint32_t n)
{
    double v[WALL_RUNS];
    int r;

    for (r = 0; r < WALL_RUNS; r++) {
        v[r] = 1e9 / wall_ns(o, what, n);
    }
    printf("engine,%s,%u,%.0f,ops/s\n", what, n, median(v, WALL_RUNS));
    fflush(stdout);
}

static void run_wall(void)
{
    static const uint32_t sizes[] = { 64, 65536 };
    unsigned s, o;

    for (s = 0; s < ARRAY_SIZE(sizes); s++) {
        wall_row(-1, "add-accept", sizes[s]);
        wall_row(-1, "list-seq", sizes[s]);
        for (o = 0; o < ARRAY_SIZE(ops); o++) {
            wall_row(o, ops[o].name, sizes[s]);
        }
    }

    /* Heap bytes per accepted extent at 65536, records and groups gone */
    {
        Eng e;
        struct mallinfo2 before, after;

        eng_init(&e, 65536);
        malloc_trim(0);
        before = mallinfo2();
        eng_build(&e, false);
        after = mallinfo2();
        printf("engine,bytes-per-extent,65536,%.1f,bytes\n",
               (double)(after.uordblks - before.uordblks) / 65536);
        printf("engine,sizeof-extent,65536,%zu,bytes\n", sizeof(CXLDCExtent));
        cxl_dc_cleanup(&e.dc);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "wall")) {
        run_wall();
    } else if (argc == 2 && !strcmp(argv[1], "callgrind")) {
        run_callgrind();
    } else {
        fprintf(stderr, "usage: %s wall|callgrind\n", argv[0]);
        return 2;
    }
    return 0;
}
