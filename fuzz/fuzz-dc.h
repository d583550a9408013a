/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Shared harness of the libFuzzer targets of the CXL Dynamic Capacity
 * engine (hw/cxl/cxl-dc.c): an input reader, a device set up from the
 * input, wrappers of the engine's entry points that check every call
 * against a shadow model and a snapshot, and an invariant checker that
 * walks the engine's trees with its own code.
 */

#ifndef TESTS_FUZZ_DC_FUZZ_DC_H
#define TESTS_FUZZ_DC_FUZZ_DC_H

#include "qemu/queue.h"
#include "hw/cxl/cxl_dc.h"

/* Report a broken invariant and crash, so that libFuzzer keeps the input. */
#define FZ_CHECK(cond, ...)                                            \
    do {                                                               \
        if (!(cond)) {                                                 \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);           \
        }                                                              \
    } while (0)

void fz_fail(const char *file, int line, const char *cond,
             const char *fmt, ...) G_GNUC_PRINTF(4, 5) G_GNUC_NORETURN;

/* Input reader: reads past the end return zeros. */
typedef struct FzIn {
    const uint8_t *p;
    size_t n;
    size_t pos;
} FzIn;

bool fz_empty(FzIn *in);
uint8_t fz_u8(FzIn *in);
uint16_t fz_u16(FzIn *in);
uint32_t fz_u32(FzIn *in);
uint64_t fz_u64(FzIn *in);
void fz_bytes(FzIn *in, void *buf, size_t len);
/* The next @len bytes (fewer at the end) as a sub-reader */
FzIn fz_sub(FzIn *in, size_t len);

/* Shadow model */
typedef struct FzExt {
    uint64_t start;             /* DPA */
    uint64_t len;
    QemuUUID tag;
    uint16_t seq;
    uint8_t rid;
} FzExt;

typedef struct FzGroup {
    uint64_t id;
    uint16_t host_id;
    uint8_t rid;
    GArray *ext;                /* FzExt, in offer order */
    GArray *staged;             /* FzExt */
} FzGroup;

typedef struct FzRelease {
    uint64_t id;
    uint8_t rid;
    bool sanitize;
    GArray *ranges;             /* FzExt: start, len */
} FzRelease;

/* A notice the engine gave during the current call */
typedef struct FzNotice {
    CXLDCNotice n;              /* extents point into FzDC.notice_ranges */
    uint32_t first;             /* its extents, then its declined ones */
} FzNotice;

/*
 * Buffers the harness reuses from call to call, and from input to input
 * (fz_dc_teardown() keeps a few sets for the next fz_dc_init()): fresh
 * allocations per input are what ASan makes expensive.
 */
typedef struct FzBuffers {
    /* Callbacks seen during the current call */
    GArray *sanitized;          /* CXLDCRange: dpa, len */
    GArray *notices;            /* FzNotice */
    GArray *notice_ranges;      /* CXLDCRange */
    /* Snapshots of the state before and after the current call */
    GByteArray *snap_before, *snap_after;
    GPtrArray *snap_tags;
    /* Scratch */
    GArray *acc_before;         /* FzExt */
    GArray *tags_eng, *tags_sh; /* FzTagCount */
    GArray *bitmap;             /* unsigned long */
    GPtrArray *pend_list;       /* CXLDCExtent *, the pending tree in order */
    GArray *pend_seen;          /* uint8_t per pend_list entry */
    GPtrArray *staged_list;     /* CXLDCExtent *, one group's staged tree */
    GArray *staged_sorted;      /* FzExt */
    GArray *spans;              /* FzExt */
    GPtrArray *tmp;             /* GArray of CXLDCRange, see fz_tmp() */
} FzBuffers;

typedef struct FzDC {
    CXLDCState dc;
    FzBuffers b;
    unsigned queued_calls;      /* during the current call */

    /* Shadow */
    GArray *acc;                /* FzExt, sorted by start */
    GQueue groups;              /* FzGroup * */
    GQueue releases;            /* FzRelease * */
    GQueue records;             /* CXLDCRecord * */
    uint64_t next_group_id;
    uint64_t next_release_id;
    uint32_t generation;

    /*
     * Length of the snapshot of the state before the current call, in
     * b.snap_before: still valid after a call that failed, since that
     * changed nothing.
     */
    size_t snap_before_len, snap_after_len;
    bool snap_valid;
    bool snap_checked;          /* fz_check() passed on that state */
    bool checked;               /* fz_check() passed on the state now */
    unsigned tmp_used;          /* arrays of b.tmp in use */
    uint32_t rec_extents_avail, rec_tags_avail;

    /* Statistics, for corpus work */
    unsigned ok_calls;
    unsigned failed_calls;
} FzDC;

/* An engine with no regions yet, with the harness's callbacks */
void fz_dc_init(FzDC *f, uint32_t max_extents, uint32_t max_tags);
/*
 * Read the 3-byte device header (layout, max extents, max tags) and
 * set up the engine with its regions.
 */
void fz_dc_setup(FzDC *f, FzIn *in);
/* The same from the three header bytes */
void fz_dc_make(FzDC *f, uint8_t layout, uint8_t max_extents, uint8_t tags);
void fz_dc_teardown(FzDC *f);

/*
 * Code that changes the engine behind the checked entry points' back
 * calls this, then fz_check().
 */
void fz_state_changed(FzDC *f);

/* Checked entry points: each returns what the engine returned. */
bool fz_offer_add(FzDC *f, const CXLDCAddRequest *req);
bool fz_request_release(FzDC *f, const CXLDCReleaseRequest *req);
CXLDCStatus fz_host_add_response(FzDC *f, const CXLDCExtentRaw *ranges,
                                 uint32_t n, bool more);
CXLDCStatus fz_host_release(FzDC *f, const CXLDCExtentRaw *ranges,
                            uint32_t n);
uint32_t fz_get_extents(FzDC *f, uint32_t start, uint32_t max);
CXLDCStatus fz_set_block_size(FzDC *f, uint8_t rid, uint64_t block_size);
void fz_record_pop(FzDC *f);
void fz_clear(FzDC *f);
void fz_is_backed(FzDC *f, uint64_t dpa, uint64_t len);

/*
 * cxl_dc_load() checked: a refusal must change nothing (as for any
 * failed call); after a load, the shadow is rebuilt from @snap alone
 * and the engine checked against it.  Returns what the engine returned.
 */
bool fz_load(FzDC *f, const CXLDCSnapshot *snap);
/*
 * Do two engines hold the same state: everything but addresses and
 * the shapes of their trees?
 */
bool fz_same_state(FzDC *a, FzDC *b);

/* Every invariant, and the engine against the shadow. */
void fz_check(FzDC *f);

/*
 * One operation of the sequence language (see fuzz-dc-common.c) read
 * from @in and applied through the checked entry points.
 */
void fz_op(FzDC *f, FzIn *in);

/*
 * Mailbox payloads in the wire format, checked as the device glue
 * (hw/mem/cxl_type3_dc.c) checks them, then handed to the engine.
 * Return false when the payload itself is malformed.
 */
bool fz_mbox_add_response(FzDC *f, const uint8_t *p, size_t len);
bool fz_mbox_release(FzDC *f, const uint8_t *p, size_t len);
bool fz_mbox_get_extents(FzDC *f, const uint8_t *p, size_t len);
bool fz_mbox_initiate_add(FzDC *f, const uint8_t *p, size_t len);
bool fz_mbox_initiate_release(FzDC *f, const uint8_t *p, size_t len);

/*
 * The common shape of the mailbox targets: header, up to 15 setup
 * operations, then payloads, each prefixed with a 16-bit length, handed
 * to @payload.
 */
int fz_run_payloads(const uint8_t *data, size_t size,
                    bool (*payload)(FzDC *f, const uint8_t *p, size_t len));

#endif /* TESTS_FUZZ_DC_FUZZ_DC_H */
