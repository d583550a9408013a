/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * CXL Dynamic Capacity engine: the state of a Dynamic Capacity Device's
 * regions, accepted extents, pending add groups, release requests and
 * the queue of Dynamic Capacity event records not yet in the event log.
 *
 * Plain C on plain structs (no QOM, no MMIO): the device glue in
 * hw/mem/cxl_type3.c and hw/cxl/cxl-mailbox-utils.c translates guest
 * payloads and QMP arguments into these calls.  Every entry point that
 * takes outside data validates the whole request first and changes
 * nothing when it fails.
 *
 * References are to CXL r3.1.
 */

#ifndef HW_CXL_CXL_DC_H
#define HW_CXL_CXL_DC_H

#include "qemu/interval-tree.h"
#include "qemu/queue.h"
#include "qemu/uuid.h"

#define CXL_DC_MAX_REGIONS 8
/* Region base and decode length granularity, CXL r3.1 Table 8-176 */
#define CXL_DC_REGION_ALIGN (256 * 1024 * 1024ULL)
#define CXL_DC_MIN_BLOCK_SIZE 64

/*
 * Dynamic Capacity Extent, CXL r3.1 Table 8-51.  All fields little
 * endian on the wire; the engine keeps host order in its own structs.
 */
typedef struct CXLDCExtentRaw {
    uint64_t start_dpa;
    uint64_t len;
    uint8_t tag[0x10];
    uint16_t shared_seq;
    uint8_t rsvd[0x6];
} QEMU_PACKED CXLDCExtentRaw;
QEMU_BUILD_BUG_ON(sizeof(CXLDCExtentRaw) != 0x28);

/* Outcome of a request, mapped by the glue to a CXL return code. */
typedef enum CXLDCStatus {
    CXL_DC_OK,
    CXL_DC_INVALID_INPUT,       /* a field holds a value not allowed */
    CXL_DC_INVALID_PA,          /* a range is not in the state needed */
    CXL_DC_INVALID_EXTENT_LIST, /* misaligned, empty or self-overlapping */
    CXL_DC_RESOURCES_EXHAUSTED, /* a limit would be exceeded */
    CXL_DC_UNSUPPORTED,         /* not possible in the current state */
} CXLDCStatus;

/* Extent selection policy of an add request, CXL r3.1 Table 7-70 */
typedef enum CXLDCSelectionPolicy {
    CXL_DC_SELECT_FREE,
    CXL_DC_SELECT_CONTIGUOUS,
    CXL_DC_SELECT_PRESCRIPTIVE,
    CXL_DC_SELECT_SHARED,
} CXLDCSelectionPolicy;

/* Extent removal policy of a release request, CXL r3.1 Table 7-71 */
typedef enum CXLDCRemovalPolicy {
    CXL_DC_REMOVE_TAG_BASED,
    CXL_DC_REMOVE_PRESCRIPTIVE,
} CXLDCRemovalPolicy;

/* Dynamic Capacity Event Type, CXL r3.1 Table 8-50 */
typedef enum CXLDCRecordType {
    CXL_DC_EVENT_ADD_CAPACITY = 0x0,
    CXL_DC_EVENT_RELEASE_CAPACITY = 0x1,
    CXL_DC_EVENT_FORCED_CAPACITY_RELEASE = 0x2,
    CXL_DC_EVENT_REGION_CONFIG_UPDATED = 0x3,
} CXLDCRecordType;

/* Flags of a Dynamic Capacity event record, CXL r3.1 Table 8-50 */
#define CXL_DC_EVENT_FLAG_MORE (1 << 0)

/*
 * The content of one Dynamic Capacity event record, in host order; the
 * glue adds the common record header when it places the record into
 * the device's event log.
 */
typedef struct CXLDCRecord {
    uint8_t type;               /* CXLDCRecordType */
    uint8_t flags;              /* CXL_DC_EVENT_FLAG_* */
    uint16_t host_id;
    uint8_t region_id;
    uint64_t dpa;
    uint64_t len;
    QemuUUID tag;
    uint16_t shared_seq;
    uint32_t extents_avail;
    uint32_t tags_avail;
    QSIMPLEQ_ENTRY(CXLDCRecord) next;
} CXLDCRecord;

/* A range of one region, as a request names it: @offset from its base. */
typedef struct CXLDCRange {
    uint64_t offset;
    uint64_t len;
} CXLDCRange;

typedef struct CXLDCGroup CXLDCGroup;

/*
 * An extent: accepted (in its region's tree, @group NULL) or offered
 * and pending (in the device's pending tree and in @group).
 */
typedef struct CXLDCExtent {
    IntervalTreeNode node;      /* start = DPA, last = DPA + len - 1 */
    QemuUUID tag;
    uint16_t shared_seq;
    uint8_t region_id;
    CXLDCGroup *group;
} CXLDCExtent;

/* Extents offered to the host by one add request, answered together */
struct CXLDCGroup {
    uint64_t id;
    uint16_t host_id;
    uint8_t region_id;
    uint32_t nr_extents;
    CXLDCExtent **extents;      /* in the order they were offered */
    /*
     * Ranges accepted so far by an Add Dynamic Capacity Response sent in
     * parts (More set): applied when the last part arrives.
     */
    IntervalTreeRoot staged;
    uint32_t nr_staged;
    QTAILQ_ENTRY(CXLDCGroup) next;
};

typedef struct CXLDCRelease CXLDCRelease;

/* A range of a release request, in the device's tree of such ranges */
typedef struct CXLDCReleaseRange {
    IntervalTreeNode node;
    CXLDCRelease *rel;
} CXLDCReleaseRange;

/* A release the fabric manager asked for and the host has not answered */
struct CXLDCRelease {
    uint64_t id;
    uint16_t host_id;
    uint8_t region_id;
    bool sanitize;
    uint32_t nr_ranges;
    CXLDCExtentRaw *ranges;     /* DPA ranges, host order */
    CXLDCReleaseRange *nodes;   /* the same, indexed */
    QTAILQ_ENTRY(CXLDCRelease) next;
};

typedef struct CXLDCRegion {
    uint64_t base;              /* DPA */
    uint64_t decode_len;
    uint64_t len;
    uint64_t block_size;
    uint64_t supported_block_sizes; /* bit n set: 2^n bytes supported */
    uint32_t dsmad_handle;
    uint8_t flags;
    bool shareable;
    IntervalTreeRoot accepted;
    uint32_t nr_accepted;
    /* One bit per block: set when the block is in an accepted extent */
    unsigned long *backed;
} CXLDCRegion;

/* A change of state the device reports to management, after it happened */
typedef enum CXLDCNoticeType {
    CXL_DC_NOTICE_ACCEPTED,     /* the host accepted some of an add */
    CXL_DC_NOTICE_REJECTED,     /* the host accepted nothing of an add */
    CXL_DC_NOTICE_RELEASED,     /* accepted capacity left the host */
    CXL_DC_NOTICE_SANITIZED,    /* released capacity now reads as zeros */
    CXL_DC_NOTICE_ADD_CANCELLED,        /* a reset withdrew an add */
    CXL_DC_NOTICE_RELEASE_CANCELLED,    /* a reset withdrew a release */
} CXLDCNoticeType;

typedef enum CXLDCReleaseReason {
    CXL_DC_RELEASE_HOST,        /* the host released it unasked */
    CXL_DC_RELEASE_REQUESTED,   /* in answer to a release request */
    CXL_DC_RELEASE_FORCED,      /* forced release: no answer awaited */
} CXLDCReleaseReason;

/*
 * One notice per request: all extents lie in @region_id.  The extents
 * are in host order (not the wire's little endian).
 */
typedef struct CXLDCNotice {
    CXLDCNoticeType type;
    uint16_t host_id;
    uint8_t region_id;
    CXLDCReleaseReason reason;  /* RELEASED only */
    uint64_t id;                /* *_CANCELLED: the request's number */
    /* accepted, rejected, released, sanitized, offered or asked back */
    uint32_t nr_extents;
    const CXLDCExtentRaw *extents;
    uint32_t nr_declined;       /* ACCEPTED: offered, not accepted */
    const CXLDCExtentRaw *declined;
} CXLDCNotice;

/* Hooks into the device; every member may be NULL */
typedef struct CXLDCOps {
    /* Make [dpa, dpa + len) read back as zeros (sanitize on release). */
    void (*sanitize)(void *opaque, uint64_t dpa, uint64_t len);
    /* New records were queued: the glue moves what fits into its log. */
    void (*records_queued)(void *opaque);
    /* The state changed as @n says. */
    void (*notify)(void *opaque, const CXLDCNotice *n);
} CXLDCOps;

typedef struct CXLDCState {
    uint8_t nr_regions;
    CXLDCRegion regions[CXL_DC_MAX_REGIONS];
    /* Limits: extents accepted plus pending, distinct non-null tags */
    uint32_t max_extents;
    uint32_t max_tags;
    uint16_t nr_hosts;

    uint32_t nr_accepted;
    uint32_t nr_pending;
    /* Moves on every change of the accepted extent list, and only then */
    uint32_t generation;

    IntervalTreeRoot pending;
    QTAILQ_HEAD(, CXLDCGroup) groups;
    uint64_t next_group_id;
    QTAILQ_HEAD(, CXLDCRelease) releases;
    IntervalTreeRoot releasing; /* ranges of all release requests */
    uint64_t next_release_id;

    QSIMPLEQ_HEAD(, CXLDCRecord) records;
    uint32_t nr_records;

    /* QemuUUID -> number of extents (accepted or pending) with that tag */
    GHashTable *tags;

    /*
     * The accepted list in DPA order, for Get DC Extent List to page
     * through at any index: rebuilt on first use after a change.
     */
    CXLDCExtent **index;
    bool index_valid;

    const CXLDCOps *ops;
    void *opaque;
} CXLDCState;

void cxl_dc_init(CXLDCState *dc, uint32_t max_extents, uint32_t max_tags,
                 const CXLDCOps *ops, void *opaque);
void cxl_dc_cleanup(CXLDCState *dc);

/*
 * Append a region; regions come in increasing, disjoint DPA order.
 * Fails, naming the rule, when the layout breaks CXL r3.1 Table 8-176.
 */
bool cxl_dc_add_region(CXLDCState *dc, uint64_t base, uint64_t decode_len,
                       uint64_t len, uint64_t block_size,
                       uint32_t dsmad_handle, bool shareable, Error **errp);

/*
 * Change the block size of region @rid, which must hold no accepted or
 * pending extent (CXL r3.1 section 7.6.7.6.3).
 */
CXLDCStatus cxl_dc_set_block_size(CXLDCState *dc, uint8_t rid,
                                  uint64_t block_size, Error **errp);

/* Forget every extent, group, release request and queued record. */
void cxl_dc_clear(CXLDCState *dc);

/*
 * Conventional reset of the device: cancel every add and release
 * request the host has not answered, with a notice for each, and drop
 * the queued records.  Accepted extents stay.
 */
void cxl_dc_reset(CXLDCState *dc);

/* The region holding all of [dpa, dpa + len), or NULL. */
CXLDCRegion *cxl_dc_find_region(CXLDCState *dc, uint64_t dpa, uint64_t len);

/* True when every byte of [dpa, dpa + len) is in an accepted extent. */
bool cxl_dc_is_backed(CXLDCState *dc, uint64_t dpa, uint64_t len);

uint32_t cxl_dc_extents_avail(CXLDCState *dc);
uint32_t cxl_dc_tags_avail(CXLDCState *dc);

/* Fabric manager side: offer capacity, ask for it back. */
typedef struct CXLDCAddRequest {
    uint16_t host_id;
    uint8_t region_id;
    CXLDCSelectionPolicy policy;
    bool has_tag;
    QemuUUID tag;
    /* prescriptive: the extents */
    uint32_t nr_ranges;
    const CXLDCRange *ranges;
    /* free and contiguous: the capacity the device chooses extents for */
    uint64_t len;
} CXLDCAddRequest;

bool cxl_dc_offer_add(CXLDCState *dc, const CXLDCAddRequest *req,
                      uint64_t *group_id, Error **errp);

typedef struct CXLDCReleaseRequest {
    uint16_t host_id;
    uint8_t region_id;
    CXLDCRemovalPolicy policy;
    bool forced;
    bool sanitize;
    bool has_tag;
    QemuUUID tag;
    /* prescriptive: the ranges */
    uint32_t nr_ranges;
    const CXLDCRange *ranges;
} CXLDCReleaseRequest;

bool cxl_dc_request_release(CXLDCState *dc, const CXLDCReleaseRequest *req,
                            Error **errp);

/*
 * Host side, from the mailbox.  @ranges are DPA ranges in host order;
 * @more is the More flag of a response sent in several parts.
 */
CXLDCStatus cxl_dc_host_add_response(CXLDCState *dc,
                                     const CXLDCExtentRaw *ranges,
                                     uint32_t n, bool more, Error **errp);
CXLDCStatus cxl_dc_host_release(CXLDCState *dc, const CXLDCExtentRaw *ranges,
                                uint32_t n, Error **errp);

/*
 * Copy up to @max accepted extents from index @start (DPA order) into
 * @out, little endian as on the wire; return how many were copied.
 */
uint32_t cxl_dc_get_extents(CXLDCState *dc, uint32_t start, uint32_t max,
                            CXLDCExtentRaw *out);

/* The queue of records not yet in the event log, oldest first. */
CXLDCRecord *cxl_dc_record_peek(CXLDCState *dc);
void cxl_dc_record_pop(CXLDCState *dc);

/*
 * Migration: the engine's state as flat arrays in host order, written by
 * cxl_dc_save() and checked in full by cxl_dc_load() before it replaces
 * the state.  All arrays are g_new() allocated.
 */
typedef enum CXLDCSavedKind {
    CXL_DC_SAVED_ACCEPTED,
    CXL_DC_SAVED_PENDING,       /* offered in group @group */
    CXL_DC_SAVED_STAGED,        /* accepted by a response in parts */
} CXLDCSavedKind;

typedef struct CXLDCSavedRegion {
    uint64_t base;
    uint64_t len;
    uint64_t block_size;
} CXLDCSavedRegion;

typedef struct CXLDCSavedExtent {
    uint64_t dpa;
    uint64_t len;
    uint8_t tag[16];
    uint16_t shared_seq;
    uint16_t kind;              /* CXLDCSavedKind */
    uint32_t group;             /* index into the groups, oldest first */
} CXLDCSavedExtent;

typedef struct CXLDCSavedGroup {
    uint64_t id;
    uint16_t host_id;
    uint8_t region_id;
} CXLDCSavedGroup;

typedef struct CXLDCSavedRelease {
    uint64_t id;
    uint16_t host_id;
    uint8_t region_id;
    uint8_t sanitize;
    uint32_t nr_ranges;         /* the next ones in the ranges array */
} CXLDCSavedRelease;

typedef struct CXLDCSavedRange {
    uint64_t dpa;
    uint64_t len;
} CXLDCSavedRange;

typedef struct CXLDCSavedRecord {
    uint8_t type;
    uint8_t flags;
    uint8_t region_id;
    uint16_t host_id;
    uint64_t dpa;
    uint64_t len;
    uint8_t tag[16];
    uint16_t shared_seq;
    uint32_t extents_avail;
    uint32_t tags_avail;
} CXLDCSavedRecord;

typedef struct CXLDCSnapshot {
    uint32_t nr_regions;
    CXLDCSavedRegion *regions;
    uint32_t nr_extents;
    CXLDCSavedExtent *extents;
    uint32_t nr_groups;
    CXLDCSavedGroup *groups;
    uint32_t nr_releases;
    CXLDCSavedRelease *releases;
    uint32_t nr_ranges;
    CXLDCSavedRange *ranges;
    uint32_t nr_records;
    CXLDCSavedRecord *records;
    uint32_t generation;
    uint64_t next_group_id;
    uint64_t next_release_id;
} CXLDCSnapshot;

void cxl_dc_save(CXLDCState *dc, CXLDCSnapshot *snap);
bool cxl_dc_load(CXLDCState *dc, const CXLDCSnapshot *snap, Error **errp);
void cxl_dc_snapshot_free(CXLDCSnapshot *snap);

/* Walk a region's accepted extents in DPA order: first, then next. */
CXLDCExtent *cxl_dc_accepted_first(CXLDCRegion *r);
CXLDCExtent *cxl_dc_accepted_next(CXLDCExtent *e);

static inline uint64_t cxl_dc_extent_dpa(const CXLDCExtent *e)
{
    return e->node.start;
}

static inline uint64_t cxl_dc_extent_len(const CXLDCExtent *e)
{
    return e->node.last - e->node.start + 1;
}

#endif /* HW_CXL_CXL_DC_H */
