/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-dcd benchmarks: one harness for both QEMU binaries (ours and the
 * pristine base, chosen with QTEST_QEMU_BINARY).  QMP requests go over
 * the real QMP socket libqtest opens; the host side is the mailbox
 * driver of tests/qtest/cxl-dcd-test.c over qtest MMIO.
 *
 *   dcd-bench ours|upstream single|batched|memory N REPS
 *
 * prints one CSV row per sample (dcd/bench.sh runs it repeatedly,
 * alternating the two binaries, and takes the medians):
 *   variant,workload,n,value,unit,note
 *
 * The base device differs from ours: it takes prescriptive requests
 * only, tracks at most 512 extents (pending ones included), and its
 * event log keeps 8 records and drops the rest.  The harness does not
 * assume that every record arrives: it counts what the host gets and
 * says so in the note.
 */

#include "qemu/osdep.h"

/*
 * The host driver: the committed cxl-dcd-test.c (dcd/bench.sh copies
 * it beside the build), its test main renamed out of the way.
 */
int cxl_dcd_test_main(int argc, char **argv);
#define main cxl_dcd_test_main
#include "cxl-dcd-test.c"
#undef main

#define BENCH_BLOCK         DCD_BLOCK_SIZE
#define BENCH_TAG           "7e57be4c-0000-4000-8000-00000000dcd0"
#define BENCH_UPSTREAM_MAX  512 /* CXL_NUM_EXTENTS_SUPPORTED of the base */
#define BENCH_BATCH         8   /* the base's event log holds 8 records */
#define BENCH_MEM_EXTENTS   8
#define BENCH_MEM_EXT_LEN   (4 * MiB)
/*
 * qtest carries the data base64-encoded on one line, and both ends look
 * for the line's end from its start after every read: lines of 64 KiB
 * keep that cost out of the figures.
 */
#define BENCH_MEM_CHUNK     (64 * KiB)

/*
 * One region of 128 GiB in 2 MiB blocks: room for 65536 one-block
 * extents.  reserve=off lets the lazily allocated backend exceed the
 * host's memory; nothing but the benchmark's few MiB is ever touched.
 */
#define BENCH_MACHINE \
    "-machine q35,cxl=on " \
    "-object memory-backend-ram,id=dc-mem0,size=128G,reserve=off " \
    "-device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 " \
    "-device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0 " \
    "-device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0," \
    "num-dc-regions=1,id=cxl-dcd0%s " \
    "-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G "

typedef struct Bench {
    bool ours;
    const char *variant;
    uint32_t n;
    int reps;
} Bench;

/* Samples of one workload, in microseconds or MB/s */
typedef struct Samples {
    const char *workload;
    const char *unit;
    GArray *v;                  /* double */
    char note[160];
} Samples;

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void samples_init(Samples *s, const char *workload, const char *unit)
{
    s->workload = workload;
    s->unit = unit;
    s->v = g_array_new(false, false, sizeof(double));
    s->note[0] = 0;
}

static void samples_add(Samples *s, double v)
{
    g_array_append_val(s->v, v);
}

/* Print the samples of @s as CSV rows */
static void samples_print(Bench *b, Samples *s)
{
    guint i;

    for (i = 0; i < s->v->len; i++) {
        printf("%s,%s,%u,%.1f,%s,%s\n", b->variant, s->workload, b->n,
               g_array_index(s->v, double, i), s->unit, s->note);
    }
    fflush(stdout);
    g_array_unref(s->v);
}

static Dcd *bench_boot(Bench *b)
{
    g_autofree char *args = g_strdup_printf(BENCH_MACHINE,
                                            b->ours ? ",dc-max-extents=65536"
                                                    : "");

    return dcd_probe(qtest_init(args));
}

/*
 * The QMP command adding @n adjacent one-block extents of region 0 from
 * block @first, as raw JSON, built before the clock starts.
 */
static char *add_cmd(uint32_t first, uint32_t n, const char *tag)
{
    GString *s = g_string_new("{\"execute\": \"cxl-add-dynamic-capacity\","
                              " \"arguments\": {\"path\": \"" DCD_PATH "\","
                              " \"host-id\": 0, \"selection-policy\":"
                              " \"prescriptive\", \"region\": 0, ");
    uint32_t i;

    if (tag) {
        g_string_append_printf(s, "\"tag\": \"%s\", ", tag);
    }
    g_string_append(s, "\"extents\": [");
    for (i = 0; i < n; i++) {
        g_string_append_printf(s, "%s{\"offset\":%" PRIu64 ",\"len\":%"
                               PRIu64 "}", i ? "," : "",
                               (uint64_t)(first + i) * BENCH_BLOCK,
                               (uint64_t)BENCH_BLOCK);
    }
    g_string_append(s, "]}}");
    return g_string_free(s, false);
}

/* Send a raw QMP command and wait for its answer; true if it succeeded */
static bool qmp_raw(QTestState *qts, const char *cmd, char **err)
{
    QDict *rsp;
    bool ok;

    qtest_qmp_send_raw(qts, "%s", cmd);
    rsp = qtest_qmp_receive(qts);
    ok = qdict_haskey(rsp, "return");
    if (!ok && err) {
        *err = g_strdup(qdict_get_try_str(qdict_get_qdict(rsp, "error"),
                                          "desc"));
    }
    qobject_unref(rsp);
    return ok;
}

/*
 * Untimed: read every QMP event QEMU sent so far (ours reports accepts
 * and releases with the extent lists), so that parsing them does not
 * land in the next timed QMP call.
 */
static void qmp_sync(QTestState *qts)
{
    qobject_unref(qtest_qmp(qts, "{'execute': 'query-status'}"));
    /* No event has this name: the call frees every buffered event */
    qobject_unref(qtest_qmp_event_ref(qts, "BENCH_NO_SUCH_EVENT"));
}

/*
 * Read the DC event log until it is empty, clearing each batch, as a
 * host driver does; unlike dcd_drain_dc_events() accept an overflowed
 * log (the base drops records) and say so in *@overflow.
 */
static GArray *bench_drain(Dcd *d, bool *overflow)
{
    GArray *events = g_array_new(false, true, sizeof(DcdEvent));

    *overflow = false;
    for (;;) {
        g_autoptr(GArray) records = g_array_new(false, true,
                                                sizeof(DcdEventRaw));
        g_autofree uint16_t *handles = NULL;
        uint8_t flags = 0;
        guint i;

        g_assert_cmphex(dcd_get_events(d, CXL_EVENT_LOG_DC, records, &flags),
                        ==, CXL_RC_SUCCESS);
        if (flags & CXL_GET_EVENTS_OVERFLOW) {
            *overflow = true;
        }
        if (!records->len) {
            return events;
        }
        handles = g_new0(uint16_t, records->len);
        for (i = 0; i < records->len; i++) {
            DcdEvent ev;

            dcd_parse_dc_event(&g_array_index(records, DcdEventRaw, i), &ev);
            handles[i] = ev.handle;
            g_array_append_val(events, ev);
        }
        g_assert_cmphex(dcd_clear_events(d, CXL_EVENT_LOG_DC, handles,
                                         records->len),
                        ==, CXL_RC_SUCCESS);
    }
}

/* Extents per Add DC Response or Release DC command */
static uint32_t per_cmd(Dcd *d)
{
    return (d->mbox.payload_max - sizeof(DcdUpdateExtentsIn)) /
           sizeof(DcdUpdatedExtentRaw);
}

/*
 * Accept @n extents in one logical response, in parts with More when
 * they do not fit one payload (the base handles one part only, but
 * never gets more than 8 records to answer).
 */
static uint16_t bench_accept(Dcd *d, const DcdExtent *exts, uint32_t n)
{
    uint32_t done = 0, k;
    uint16_t rc;

    if (!n) {
        return dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE, NULL, 0, 0);
    }
    for (done = 0; done < n; done += k) {
        k = MIN(per_cmd(d), n - done);
        rc = dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE, exts + done,
                                      k, done + k < n);
        if (rc != CXL_RC_SUCCESS) {
            return rc;
        }
    }
    return CXL_RC_SUCCESS;
}

/* Release @n extents, as many per Release DC command as fit */
static uint16_t bench_release(Dcd *d, const DcdExtent *exts, uint32_t n)
{
    uint32_t done, k;
    uint16_t rc;

    for (done = 0; done < n; done += k) {
        k = MIN(per_cmd(d), n - done);
        rc = dcd_update_extents_flags(d, CXL_OP_RELEASE_DC, exts + done, k, 0);
        if (rc != CXL_RC_SUCCESS) {
            return rc;
        }
    }
    return CXL_RC_SUCCESS;
}

/* Walk the whole accepted list in pages as large as a payload holds */
static uint32_t bench_walk(Dcd *d)
{
    g_autoptr(GArray) extents = dcd_extents(d, 0);

    return extents->len;
}

typedef struct AddResult {
    double qmp_us;              /* the QMP command */
    double total_us;            /* QMP until the host's last response */
    uint32_t reached;           /* records the host read */
    uint32_t accepted;
    bool overflow;
    uint16_t rc;                /* of the Add DC Response */
} AddResult;

/*
 * Offer @n extents from block @first in one QMP request; the host
 * drains the log and accepts everything it read.  When the device
 * refuses the response, the host rejects the offer so that nothing
 * stays pending.
 */
static void add_accept(Dcd *d, uint32_t first, uint32_t n, const char *tag,
                       AddResult *res)
{
    g_autofree char *cmd = add_cmd(first, n, tag);
    g_autoptr(GArray) events = NULL;
    g_autofree DcdExtent *exts = NULL;
    g_autofree char *err = NULL;
    double t0, t1;

    t0 = now_us();
    if (!qmp_raw(d->qts, cmd, &err)) {
        g_error("cxl-add-dynamic-capacity of %u extents failed: %s", n, err);
    }
    t1 = now_us();
    events = bench_drain(d, &res->overflow);
    exts = dcd_event_extents(events);
    res->rc = bench_accept(d, exts, events->len);
    res->total_us = now_us() - t0;
    res->qmp_us = t1 - t0;
    res->reached = events->len;
    res->accepted = res->rc == CXL_RC_SUCCESS ? events->len : 0;
    if (res->rc != CXL_RC_SUCCESS) {
        g_assert_cmphex(bench_accept(d, NULL, 0), ==, CXL_RC_SUCCESS);
    }
}

/*
 * Accept @n extents from block 0 in requests of BENCH_BATCH extents,
 * the most the base's event log passes whole; stop at the first
 * request the device refuses.  Return how many were accepted.
 */
static uint32_t add_accept_batched(Dcd *d, uint32_t n, uint16_t *rc)
{
    uint32_t done = 0;
    AddResult res;

    *rc = CXL_RC_SUCCESS;
    while (done < n) {
        uint32_t k = MIN(BENCH_BATCH, n - done);

        add_accept(d, done, k, NULL, &res);
        if (res.rc != CXL_RC_SUCCESS || res.reached != k) {
            *rc = res.rc;
            break;
        }
        done += k;
    }
    return done;
}

/* The release of one range spanning blocks [0, n) */
static double release_span(Dcd *d, uint32_t n, uint16_t *rc)
{
    DcdExtent span = { .dpa = 0, .len = (uint64_t)n * BENCH_BLOCK };
    double t0 = now_us();

    *rc = dcd_release(d, &span, 1);
    return now_us() - t0;
}

static const char *rc_name(uint16_t rc)
{
    switch (rc) {
    case CXL_RC_SUCCESS:
        return "success";
    case CXL_RC_INVALID_PA:
        return "INVALID_PA";
    case CXL_RC_RESOURCES:
        return "RESOURCES_EXHAUSTED";
    case CXL_RC_INVALID_EXTENTS:
        return "INVALID_EXTENT_LIST";
    default:
        return "error";
    }
}

/*
 * single: one QMP request of N extents, drained and accepted; on ours
 * then the extent list walk, the release of a span over the N, and a
 * tag-based release of N; on the base, how many records got through.
 */
static void run_single(Bench *b)
{
    Samples qmp, acc, walk, rel, qtag, tagcyc;
    uint32_t reached = 0, accepted = 0, walked = 0;
    bool overflow = false;
    uint16_t add_rc = CXL_RC_SUCCESS;
    int r;

    samples_init(&qmp, "qmp-add", "us");
    samples_init(&acc, "add-accept-1req", "us");
    samples_init(&walk, "extent-list", "us");
    samples_init(&rel, "release-span", "us");
    samples_init(&qtag, "qmp-release-tag", "us");
    samples_init(&tagcyc, "release-tag", "us");

    for (r = 0; r < b->reps; r++) {
        Dcd *d = bench_boot(b);
        AddResult res;

        add_accept(d, 0, b->n, NULL, &res);
        samples_add(&qmp, res.qmp_us);
        samples_add(&acc, res.total_us);
        reached = res.reached;
        accepted = res.accepted;
        overflow = res.overflow;
        add_rc = res.rc;
        qmp_sync(d->qts);

        if (b->ours) {
            g_autofree char *rcmd = NULL;
            g_autoptr(GArray) events = NULL;
            g_autofree DcdExtent *exts = NULL;
            g_autofree char *err = NULL;
            uint16_t rc;
            double t0, t1, t;
            int i;

            g_assert_cmpuint(accepted, ==, b->n);
            /* The list does not change: walk it a few times */
            for (i = 0; i < 3; i++) {
                t0 = now_us();
                walked = bench_walk(d);
                samples_add(&walk, now_us() - t0);
                g_assert_cmpuint(walked, ==, b->n);
            }
            t = release_span(d, b->n, &rc);
            g_assert_cmphex(rc, ==, CXL_RC_SUCCESS);
            samples_add(&rel, t);
            qmp_sync(d->qts);
            g_assert_cmpuint(bench_walk(d), ==, 0);

            /* Tag-based: accept N tagged extents, then ask them back */
            add_accept(d, 0, b->n, BENCH_TAG, &res);
            g_assert_cmpuint(res.accepted, ==, b->n);
            qmp_sync(d->qts);
            rcmd = g_strdup("{\"execute\": \"cxl-release-dynamic-capacity\","
                            " \"arguments\": {\"path\": \"" DCD_PATH "\","
                            " \"host-id\": 0, \"removal-policy\":"
                            " \"tag-based\", \"region\": 0, \"tag\": \""
                            BENCH_TAG "\"}}");
            t0 = now_us();
            if (!qmp_raw(d->qts, rcmd, &err)) {
                g_error("tag-based release failed: %s", err);
            }
            t1 = now_us();
            events = bench_drain(d, &overflow);
            g_assert_cmpuint(events->len, ==, b->n);
            exts = dcd_event_extents(events);
            g_assert_cmphex(bench_release(d, exts, events->len), ==,
                            CXL_RC_SUCCESS);
            samples_add(&qtag, t1 - t0);
            samples_add(&tagcyc, now_us() - t0);
            qmp_sync(d->qts);
            g_assert_cmpuint(bench_walk(d), ==, 0);
        }
        dcd_quit(d);
    }
    snprintf(acc.note, sizeof(acc.note), "reached=%u;accepted=%u;%s%s",
             reached, accepted, overflow ? "overflow;" : "",
             add_rc == CXL_RC_SUCCESS ? "" : rc_name(add_rc));
    samples_print(b, &qmp);
    samples_print(b, &acc);
    samples_print(b, &walk);
    samples_print(b, &rel);
    samples_print(b, &qtag);
    samples_print(b, &tagcyc);
}

/*
 * batched: N extents accepted in requests of 8, the way the base gets
 * the most extents accepted; on the base also the extent list walk and
 * the span release over what it accepted (ours measures those in
 * single, on the same extents).
 */
static void run_batched(Bench *b)
{
    Samples acc, walk, rel;
    uint32_t done = 0;
    uint16_t rc = CXL_RC_SUCCESS;
    int r;

    samples_init(&acc, "add-accept-batch8", "us");
    samples_init(&walk, "extent-list", "us");
    samples_init(&rel, "release-span", "us");

    for (r = 0; r < b->reps; r++) {
        Dcd *d = bench_boot(b);
        double t0 = now_us();
        int i;

        done = add_accept_batched(d, b->n, &rc);
        samples_add(&acc, now_us() - t0);
        qmp_sync(d->qts);
        if (!b->ours && done) {
            uint16_t rrc;
            double t;

            for (i = 0; i < 3; i++) {
                uint32_t walked;

                t0 = now_us();
                walked = bench_walk(d);
                samples_add(&walk, now_us() - t0);
                g_assert_cmpuint(walked, ==, done);
            }
            t = release_span(d, done, &rrc);
            if (rrc == CXL_RC_SUCCESS) {
                samples_add(&rel, t);
                g_assert_cmpuint(bench_walk(d), ==, 0);
            } else {
                snprintf(rel.note, sizeof(rel.note), "refused:%s",
                         rc_name(rrc));
            }
        }
        dcd_quit(d);
    }
    if (done < b->n) {
        snprintf(acc.note, sizeof(acc.note), "accepted=%u;stopped:%s", done,
                 rc_name(rc));
        snprintf(walk.note, sizeof(walk.note), "extents=%u", done);
        if (!rel.note[0]) {
            snprintf(rel.note, sizeof(rel.note), "extents=%u", done);
        }
    } else {
        snprintf(acc.note, sizeof(acc.note), "accepted=%u", done);
    }
    samples_print(b, &acc);
    samples_print(b, &walk);
    samples_print(b, &rel);
}

/*
 * memory: read and write throughput through the fixed memory window
 * over 8 accepted 4 MiB extents (32 MiB), decoders committed: N MiB
 * from the start, moved with qtest's base64 buffer commands.  The
 * accesses go through the window's MMIO path in 8-byte pieces.
 */
static void run_memory(Bench *b)
{
    const size_t size = MIN(b->n, BENCH_MEM_EXTENTS * BENCH_MEM_EXT_LEN /
                                  MiB) * MiB;
    g_autofree uint8_t *buf = g_malloc(size);
    g_autofree uint8_t *back = g_malloc(size);
    Samples wr, rd;
    int r;
    size_t i;

    samples_init(&wr, "mem-write", "MB/s");
    samples_init(&rd, "mem-read", "MB/s");
    for (i = 0; i < size; i++) {
        buf[i] = i * 131 + (i >> 12);
    }
    for (r = 0; r < b->reps; r++) {
        Dcd *d = bench_boot(b);
        GString *s = g_string_new("[");
        g_autoptr(GArray) events = NULL;
        g_autofree DcdExtent *exts = NULL;
        bool overflow;
        double t0;
        uint32_t e;

        for (e = 0; e < BENCH_MEM_EXTENTS; e++) {
            g_string_append_printf(s, "%s{'offset': %" PRIu64 ", 'len': %"
                                   PRIu64 "}", e ? "," : "",
                                   (uint64_t)e * BENCH_MEM_EXT_LEN,
                                   (uint64_t)BENCH_MEM_EXT_LEN);
        }
        g_string_append(s, "]");
        assert_ok(dcd_add(d->qts, 0, s->str));
        g_string_free(s, true);
        events = bench_drain(d, &overflow);
        g_assert_cmpuint(events->len, ==, BENCH_MEM_EXTENTS);
        exts = dcd_event_extents(events);
        g_assert_cmphex(bench_accept(d, exts, events->len), ==,
                        CXL_RC_SUCCESS);
        dcd_hdm_commit(d, GiB);

        t0 = now_us();
        for (i = 0; i < size; i += BENCH_MEM_CHUNK) {
            qtest_bufwrite(d->qts, dcd_hpa(d, i), buf + i,
                           MIN(BENCH_MEM_CHUNK, size - i));
        }
        samples_add(&wr, size / (now_us() - t0));
        memset(back, 0, size);
        t0 = now_us();
        for (i = 0; i < size; i += BENCH_MEM_CHUNK) {
            qtest_bufread(d->qts, dcd_hpa(d, i), back + i,
                          MIN(BENCH_MEM_CHUNK, size - i));
        }
        samples_add(&rd, size / (now_us() - t0));
        g_assert(!memcmp(buf, back, size));
        dcd_quit(d);
    }
    snprintf(wr.note, sizeof(wr.note), "bytes=%zu", size);
    snprintf(rd.note, sizeof(rd.note), "bytes=%zu", size);
    samples_print(b, &wr);
    samples_print(b, &rd);
}

int main(int argc, char **argv)
{
    Bench b = { 0 };

    if (argc != 5) {
        fprintf(stderr, "usage: %s ours|upstream single|batched|memory N"
                " REPS\n", argv[0]);
        return 2;
    }
    if (!getenv("QTEST_QEMU_BINARY")) {
        fprintf(stderr, "%s: set QTEST_QEMU_BINARY to the QEMU to run\n",
                argv[0]);
        return 2;
    }
    b.variant = argv[1];
    b.ours = !strcmp(argv[1], "ours");
    b.n = strtoul(argv[3], NULL, 0);
    b.reps = atoi(argv[4]);
    if (!b.n || b.reps < 1) {
        fprintf(stderr, "%s: N and REPS must be positive\n", argv[0]);
        return 2;
    }
    if (!strcmp(argv[2], "single")) {
        run_single(&b);
    } else if (!strcmp(argv[2], "batched")) {
        run_batched(&b);
    } else if (!strcmp(argv[2], "memory")) {
        run_memory(&b);
    } else {
        fprintf(stderr, "%s: unknown workload group %s\n", argv[0], argv[2]);
        return 2;
    }
    return 0;
}
