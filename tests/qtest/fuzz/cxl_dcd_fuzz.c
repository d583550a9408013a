/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Fuzz target of a CXL Dynamic Capacity Device as a whole: a fabric
 * manager's QMP requests and a host's mailbox commands in any order, on
 * a cxl-type3 device with two dynamic capacity regions.  The generic
 * fuzzer reaches the mailbox too, but no state that needs an offer.
 *
 * Checked after every input: the accepted extents that
 * query-cxl-dynamic-capacity reports are those of the extent list the
 * host reads (CXL r3.1 section 8.2.9.9.9.2), and a conventional reset
 * leaves them as they are.  Between inputs the fabric manager takes
 * every extent back with a forced release, which must succeed.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-cxl.h"
#include "qapi/qapi-types-cxl.h"
#include "hw/cxl/cxl.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/libqos/pci-pc.h"
#include "fuzz.h"

#define DCD_PATH        "/machine/peripheral/cxl-dcd0"
#define DCD_DEVFN       QPCI_DEVFN(2, 0)
#define DCD_REGIONS     2

/* CXL r3.1 Table 8-37 and Table 8-126: the commands worth sending */
static const uint16_t dcd_opcodes[] = {
    0x0100, /* Get Event Records */
    0x0101, /* Clear Event Records */
    0x0102, /* Get Event Interrupt Policy */
    0x0103, /* Set Event Interrupt Policy */
    0x0401, /* Get Log */
    0x4000, /* Identify Memory Device */
    0x4400, /* Sanitize */
    0x4800, /* Get Dynamic Capacity Configuration */
    0x4801, /* Get Dynamic Capacity Extent List */
    0x4802, /* Add Dynamic Capacity Response */
    0x4803, /* Release Dynamic Capacity */
};

#define OP_GET_EVENTS       0x0100
#define OP_CLEAR_EVENTS     0x0101
#define OP_GET_EXTENTS      0x4801
#define OP_ADD_RESPONSE     0x4802
#define OP_RELEASE          0x4803
#define EVENT_LOG_DC        4

/* CXL r3.1 Table 8-53 and Table 8-50: offsets in the records read */
#define EVENTS_COUNT        0x14
#define EVENTS_RECORDS      0x20
#define RECORD_SIZE         0x80
#define RECORD_HANDLE       0x14
#define RECORD_DC_TYPE      0x30
#define RECORD_DC_FLAGS     0x35
#define RECORD_DC_EXTENT    0x38
#define DC_ADD_CAPACITY     0
#define DC_RELEASE_CAPACITY 1
#define DC_FLAG_MORE        BIT(0)

/* CXL r3.1 Tables 8-168 and 8-169: Add DC Response; 8-167: Extent List */
#define UPDATED_HDR         8
#define UPDATED_SIZE        0x18
#define EXTENT_LIST_HDR     0x10
#define EXTENT_SIZE         0x28

#define MAX_CHAIN           256

typedef struct DcdRange {
    uint64_t dpa, len;
} DcdRange;

typedef struct DcdFuzz {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    uint64_t mmio_alloc_ptr;
    uint64_t mbox;
    uint64_t block[DCD_REGIONS];
    uint8_t pl[CXL_MAILBOX_MAX_PAYLOAD_SIZE];
    /* An add chain whose More=0 record has not been read yet */
    DcdRange chain[MAX_CHAIN];
    unsigned chain_len;
} DcdFuzz;

static DcdFuzz F;

static const char *const tags[] = {
    "5b4f0fd5-2f3d-4a4c-9c5e-0b5b1b7a6e01",
    "5b4f0fd5-2f3d-4a4c-9c5e-0b5b1b7a6e02",
};

/* The bytes of one input, consumed from the front; zeros once empty */
typedef struct FuzzIn {
    const uint8_t *p;
    size_t left;
} FuzzIn;

static uint8_t in_u8(FuzzIn *in)
{
    if (!in->left) {
        return 0;
    }
    in->left--;
    return *in->p++;
}

static uint16_t in_u16(FuzzIn *in)
{
    return in_u8(in) | (uint16_t)in_u8(in) << 8;
}

static uint64_t in_u64(FuzzIn *in)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v |= (uint64_t)in_u8(in) << (i * 8);
    }
    return v;
}

static uint16_t mbox_run(uint16_t opcode, const void *in, size_t len,
                         size_t *out_len)
{
    QTestState *s = F.qts;
    uint64_t cmd;

    if (len) {
        qtest_memwrite(s, F.mbox + A_CXL_DEV_CMD_PAYLOAD, in, len);
    }
    qtest_writeq(s, F.mbox + A_CXL_DEV_MAILBOX_CMD,
                 opcode | (uint64_t)len << R_CXL_DEV_MAILBOX_CMD_LENGTH_SHIFT);
    qtest_writel(s, F.mbox + A_CXL_DEV_MAILBOX_CTRL, 1);
    flush_events(s);
    if (out_len) {
        cmd = qtest_readq(s, F.mbox + A_CXL_DEV_MAILBOX_CMD);
        *out_len = MIN(FIELD_EX64(cmd, CXL_DEV_MAILBOX_CMD, LENGTH),
                       sizeof(F.pl));
        if (*out_len) {
            qtest_memread(s, F.mbox + A_CXL_DEV_CMD_PAYLOAD, F.pl, *out_len);
        }
    }
    return FIELD_EX64(qtest_readq(s, F.mbox + A_CXL_DEV_MAILBOX_STS),
                      CXL_DEV_MAILBOX_STS, ERRNO);
}

/* Map the device registers again, as a host does after a reset */
static void dcd_probe(void)
{
    QPCIBar bar;

    F.bus->mmio_alloc_ptr = F.mmio_alloc_ptr;
    bar = qpci_iomap(F.dev, CXL_DEVICE_REG_BAR_IDX, NULL);
    qpci_device_enable(F.dev);
    F.mbox = bar.addr + CXL_MAILBOX_REGISTERS_OFFSET;
}

static CxlDynamicCapacityInfo *dcd_query(void)
{
    CxlDynamicCapacityInfoList *list;
    CxlDynamicCapacityInfo *info;

    list = qmp_query_cxl_dynamic_capacity(DCD_PATH, &error_abort);
    g_assert(list && !list->next);
    info = g_steal_pointer(&list->value);
    qapi_free_CxlDynamicCapacityInfoList(list);
    return info;
}

static CxlDynamicCapacityExtentList *read_extents(FuzzIn *in, uint8_t region,
                                                  bool raw)
{
    CxlDynamicCapacityExtentList *list = NULL;
    uint64_t block = F.block[region % DCD_REGIONS];
    unsigned n = in_u8(in) % 9;

    while (n--) {
        CxlDynamicCapacityExtent *e = g_new0(CxlDynamicCapacityExtent, 1);

        if (raw) {
            e->offset = in_u64(in);
            e->len = in_u64(in);
        } else {
            e->offset = (uint64_t)in_u8(in) * block;
            e->len = (uint64_t)(in_u8(in) % 16 + 1) * block;
        }
        QAPI_LIST_PREPEND(list, e);
    }
    return list;
}

/* QMP: offer capacity (u8 region, u8 policy, u8 flags, extents) */
static void fm_add(FuzzIn *in)
{
    uint8_t region = in_u8(in) % (DCD_REGIONS + 1);
    CxlExtentSelectionPolicy policy =
        in_u8(in) % CXL_EXTENT_SELECTION_POLICY__MAX;
    uint8_t flags = in_u8(in);
    const char *tag = flags & 1 ? tags[!!(flags & 2)] : NULL;
    CxlDynamicCapacityExtentList *exts = NULL;
    uint64_t length = 0;
    Error *err = NULL;

    if (flags & 4) {
        length = (uint64_t)(in_u8(in) + 1) * F.block[region % DCD_REGIONS];
    } else {
        exts = read_extents(in, region, flags & 8);
    }
    qmp_cxl_add_dynamic_capacity(DCD_PATH, 0, policy, region, tag,
                                 !(flags & 4), exts, flags & 4, length, &err);
    error_free(err);
    qapi_free_CxlDynamicCapacityExtentList(exts);
}

/* QMP: ask for capacity back (u8 region, u8 flags, extents) */
static void fm_release(FuzzIn *in)
{
    uint8_t region = in_u8(in) % (DCD_REGIONS + 1);
    uint8_t flags = in_u8(in);
    const char *tag = flags & 8 ? tags[!!(flags & 16)] : NULL;
    CxlExtentRemovalPolicy policy = flags & 4 ?
        CXL_EXTENT_REMOVAL_POLICY_TAG_BASED :
        CXL_EXTENT_REMOVAL_POLICY_PRESCRIPTIVE;
    CxlDynamicCapacityExtentList *exts = read_extents(in, region,
                                                      flags & 32);
    Error *err = NULL;

    qmp_cxl_release_dynamic_capacity(DCD_PATH, 0, policy, true, flags & 1,
                                     true, flags & 2, region, tag, !!exts,
                                     exts, &err);
    error_free(err);
    qapi_free_CxlDynamicCapacityExtentList(exts);
}

/* Host: any command of dcd_opcodes (u8 which, u16 length, payload) */
static void host_command(FuzzIn *in)
{
    uint16_t opcode = dcd_opcodes[in_u8(in) % ARRAY_SIZE(dcd_opcodes)];
    size_t len = in_u16(in) % (sizeof(F.pl) + 1);
    uint8_t payload[CXL_MAILBOX_MAX_PAYLOAD_SIZE] = {};

    len = MIN(len, in->left);
    memcpy(payload, in->p, len);
    in->p += len;
    in->left -= len;
    mbox_run(opcode, payload, len, NULL);
}

/* Add DC Response or Release DC with the @n extents of @ext */
static void host_updated(uint16_t opcode, const DcdRange *ext, unsigned n,
                         bool more)
{
    uint8_t payload[CXL_MAILBOX_MAX_PAYLOAD_SIZE] = {};
    unsigned i;

    stl_le_p(payload, n);
    payload[4] = more;
    for (i = 0; i < n; i++) {
        stq_le_p(payload + UPDATED_HDR + i * UPDATED_SIZE, ext[i].dpa);
        stq_le_p(payload + UPDATED_HDR + i * UPDATED_SIZE + 8, ext[i].len);
    }
    mbox_run(opcode, payload, UPDATED_HDR + n * UPDATED_SIZE, NULL);
}

/* Host: Add DC Response with the extents of the chain @mask selects */
static void host_respond(uint8_t mask)
{
    unsigned per_cmd = (sizeof(F.pl) - UPDATED_HDR) / UPDATED_SIZE;
    unsigned i, n = 0, sent = 0;
    DcdRange sel[MAX_CHAIN];

    for (i = 0; i < F.chain_len; i++) {
        if (mask & BIT(i % 8)) {
            sel[n++] = F.chain[i];
        }
    }
    do {
        unsigned part = MIN(n - sent, per_cmd);

        host_updated(OP_ADD_RESPONSE, sel + sent, part, sent + part < n);
        sent += part;
    } while (sent < n);
    F.chain_len = 0;
}

/*
 * Host: read the Dynamic Capacity log as a driver does, up to @rounds
 * times, answer each complete add chain with the extents @mask selects
 * and each release with the extent named, and clear what was read.
 */
static bool host_drain(uint8_t mask, unsigned rounds)
{
    uint8_t log = EVENT_LOG_DC;
    uint8_t clear[6 + 2 * (sizeof(F.pl) / RECORD_SIZE)];

    while (rounds--) {
        size_t len;
        unsigned i, n;

        if (mbox_run(OP_GET_EVENTS, &log, 1, &len) || len < EVENTS_RECORDS) {
            return false;
        }
        n = MIN(lduw_le_p(F.pl + EVENTS_COUNT),
                (len - EVENTS_RECORDS) / RECORD_SIZE);
        if (!n) {
            return true;
        }
        memset(clear, 0, sizeof(clear));
        clear[0] = EVENT_LOG_DC;
        clear[2] = n;
        for (i = 0; i < n; i++) {
            const uint8_t *r = F.pl + EVENTS_RECORDS + i * RECORD_SIZE;
            DcdRange ext = {
                .dpa = ldq_le_p(r + RECORD_DC_EXTENT),
                .len = ldq_le_p(r + RECORD_DC_EXTENT + 8),
            };

            memcpy(clear + 6 + 2 * i, r + RECORD_HANDLE, 2);
            switch (r[RECORD_DC_TYPE]) {
            case DC_ADD_CAPACITY:
                if (F.chain_len < MAX_CHAIN) {
                    F.chain[F.chain_len++] = ext;
                }
                if (!(r[RECORD_DC_FLAGS] & DC_FLAG_MORE)) {
                    host_respond(mask);
                }
                break;
            case DC_RELEASE_CAPACITY:
                host_updated(OP_RELEASE, &ext, 1, false);
                break;
            }
        }
        mbox_run(OP_CLEAR_EVENTS, clear, 6 + 2 * n, NULL);
    }
    return false;
}

/* Host: answer what the log holds (u8 mask of the extents accepted) */
static void host_answer(FuzzIn *in)
{
    host_drain(in_u8(in), 16);
}

static int range_cmp(const void *a, const void *b)
{
    const DcdRange *x = a, *y = b;

    return x->dpa < y->dpa ? -1 : x->dpa > y->dpa;
}

/* The accepted extents as QMP reports them, sorted */
static GArray *fm_view(void)
{
    g_autoptr(CxlDynamicCapacityInfo) info = dcd_query();
    GArray *seen = g_array_new(false, false, sizeof(DcdRange));
    CxlDynamicCapacityRegionInfoList *r;
    CxlDynamicCapacityExtentInfoList *e;

    for (r = info->regions; r; r = r->next) {
        for (e = r->value->accepted; e; e = e->next) {
            DcdRange ext = {
                .dpa = r->value->base + e->value->offset,
                .len = e->value->length,
            };

            g_array_append_val(seen, ext);
        }
    }
    g_array_sort(seen, range_cmp);
    return seen;
}

/* The extent list as the host reads it, page by page, sorted */
static GArray *host_view(void)
{
    GArray *list = g_array_new(false, false, sizeof(DcdRange));
    uint32_t total, gen = 0;
    uint8_t req[8];
    size_t len;
    unsigned i, n;

    do {
        stl_le_p(req, 32);
        stl_le_p(req + 4, list->len);
        g_assert_cmphex(mbox_run(OP_GET_EXTENTS, req, sizeof(req), &len), ==,
                        CXL_MBOX_SUCCESS);
        g_assert_cmpuint(len, >=, EXTENT_LIST_HDR);
        n = ldl_le_p(F.pl);
        total = ldl_le_p(F.pl + 4);
        g_assert(!list->len || ldl_le_p(F.pl + 8) == gen);
        gen = ldl_le_p(F.pl + 8);
        g_assert_cmpuint(len, ==, EXTENT_LIST_HDR + n * EXTENT_SIZE);
        for (i = 0; i < n; i++) {
            DcdRange ext = {
                .dpa = ldq_le_p(F.pl + EXTENT_LIST_HDR + i * EXTENT_SIZE),
                .len = ldq_le_p(F.pl + EXTENT_LIST_HDR + i * EXTENT_SIZE + 8),
            };

            g_array_append_val(list, ext);
        }
    } while (n && list->len < total);
    g_assert_cmpuint(list->len, ==, total);
    g_array_sort(list, range_cmp);
    return list;
}

static void assert_same(GArray *a, GArray *b)
{
    g_assert_cmpuint(a->len, ==, b->len);
    g_assert(!a->len || !memcmp(a->data, b->data, a->len * sizeof(DcdRange)));
}

/*
 * After a reset, which cancelled what the host had not answered, back
 * to a device with nothing accepted or logged through the interfaces
 * only: a forced release takes each accepted extent back, and the host
 * clears the records that tell it so.
 */
static void dcd_clean(QTestState *s)
{
    g_autoptr(CxlDynamicCapacityInfo) info = dcd_query();
    CxlDynamicCapacityRegionInfoList *r;
    CxlDynamicCapacityExtentInfoList *e;

    for (r = info->regions; r; r = r->next) {
        for (e = r->value->accepted; e; e = e->next) {
            CxlDynamicCapacityExtent ext = {
                .offset = e->value->offset,
                .len = e->value->length,
            };
            CxlDynamicCapacityExtentList one = { .value = &ext };

            qmp_cxl_release_dynamic_capacity(
                DCD_PATH, 0, CXL_EXTENT_REMOVAL_POLICY_PRESCRIPTIVE, true,
                true, false, false, r->value->index, NULL, true, &one,
                &error_abort);
        }
    }
    g_assert(host_drain(0, 100000));
    F.chain_len = 0;
    qapi_free_CxlDynamicCapacityInfo(info);
    info = dcd_query();
    for (r = info->regions; r; r = r->next) {
        g_assert(!r->value->accepted);
    }
    g_assert(!info->pending_adds && !info->pending_releases);
    g_assert_cmpuint(info->queued_records, ==, 0);
}

enum {
    OP_FM_ADD,
    OP_FM_RELEASE,
    OP_HOST_COMMAND,
    OP_HOST_ANSWER,
    OP_CLOCK_STEP,
    OP_RESET,
    OP_MAX
};

static void cxl_dcd_fuzz(QTestState *s, const unsigned char *data,
                         size_t size)
{
    FuzzIn in = { .p = data, .left = size };
    g_autoptr(GArray) before = NULL;
    g_autoptr(GArray) after = NULL;
    g_autoptr(GArray) host = NULL;

    while (in.left) {
        switch (in_u8(&in) % OP_MAX) {
        case OP_FM_ADD:
            fm_add(&in);
            break;
        case OP_FM_RELEASE:
            fm_release(&in);
            break;
        case OP_HOST_COMMAND:
            host_command(&in);
            break;
        case OP_HOST_ANSWER:
            host_answer(&in);
            break;
        case OP_CLOCK_STEP:
            /* u8: (n + 1) * 100 ms, the background commands' pace */
            qtest_clock_step(s, (in_u8(&in) + 1) * 100 * (int64_t)SCALE_MS);
            break;
        case OP_RESET:
            fuzz_reset(s);
            F.chain_len = 0;
            dcd_probe();
            break;
        }
        flush_events(s);
    }

    /* Wait out a background command, then compare the two views */
    if (FIELD_EX64(qtest_readq(s, F.mbox + A_CXL_DEV_MAILBOX_STS),
                   CXL_DEV_MAILBOX_STS, BG_OP)) {
        qtest_clock_step(s, 60 * NANOSECONDS_PER_SECOND);
    }
    before = fm_view();
    host = host_view();
    assert_same(before, host);
    fuzz_reset(s);
    dcd_probe();
    after = host_view();
    assert_same(before, after);
    dcd_clean(s);
}

static void cxl_dcd_pre_fuzz(QTestState *s)
{
    g_autoptr(CxlDynamicCapacityInfo) info = NULL;
    CxlDynamicCapacityRegionInfoList *r;
    int i = 0;

    F.qts = s;
    F.bus = qpci_new_pc(s, NULL);
    F.dev = qpci_device_find(F.bus, DCD_DEVFN);
    g_assert(F.dev);
    F.mmio_alloc_ptr = F.bus->mmio_alloc_ptr;
    dcd_probe();
    info = dcd_query();
    for (r = info->regions; r && i < DCD_REGIONS; r = r->next, i++) {
        F.block[i] = r->value->block_size;
    }
    g_assert_cmpint(i, ==, DCD_REGIONS);
}

static GString *cxl_dcd_cmdline(FuzzTarget *t)
{
    return g_string_new(TARGET_NAME " -machine q35,cxl=on,accel=qtest,"
                        "pit=off,hpet=off"
                        " -nodefaults -display none -m 64M"
                        " -object memory-backend-ram,id=dc0,size=512M"
                        " -device cxl-type3,bus=pcie.0,addr=0x2,"
                        "volatile-dc-memdev=dc0,num-dc-regions=2,"
                        "id=cxl-dcd0");
}

static void register_cxl_dcd_fuzz_targets(void)
{
    fuzz_add_target(&(FuzzTarget){
        .name = "cxl-dcd",
        .description = "Fuzz a CXL Dynamic Capacity Device with QMP "
                       "requests and mailbox commands",
        .get_init_cmdline = cxl_dcd_cmdline,
        .pre_fuzz = cxl_dcd_pre_fuzz,
        .fuzz = cxl_dcd_fuzz,
    });
}

fuzz_target_init(register_cxl_dcd_fuzz_targets);
