/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * cxl-type3 Dynamic Capacity glue: region layout, the DC mailbox
 * commands of the host (CXL r3.1 section 8.2.9.9.9) and of the fabric
 * manager (section 7.6.7.6), the QMP commands, and the event log feed.
 * Each one checks and translates its input, then calls the engine
 * (hw/cxl/cxl-dc.c), which owns the state.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qemu/uuid.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-cxl.h"
#include "qapi/qapi-events-cxl.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qom/object.h"
#include "system/hostmem.h"
#include "hw/cxl/cxl.h"
#include "hw/cxl/cxl_dc.h"
#include "hw/cxl/cxl_events.h"
#include "trace.h"

#define CXL_DC_BLOCK_SIZE (2 * MiB)

static CXLRetCode dc_ret(CXLDCStatus status)
{
    switch (status) {
    case CXL_DC_OK:
        return CXL_MBOX_SUCCESS;
    case CXL_DC_INVALID_INPUT:
        return CXL_MBOX_INVALID_INPUT;
    case CXL_DC_INVALID_PA:
        return CXL_MBOX_INVALID_PA;
    case CXL_DC_INVALID_EXTENT_LIST:
        return CXL_MBOX_INVALID_EXTENT_LIST;
    case CXL_DC_RESOURCES_EXHAUSTED:
        return CXL_MBOX_RESOURCES_EXHAUSTED;
    case CXL_DC_UNSUPPORTED:
        return CXL_MBOX_UNSUPPORTED;
    }
    g_assert_not_reached();
}

/* Event log feed */

/*
 * Move queued records into the Dynamic Capacity event log while it has
 * room; called when records are queued and when the host clears some.
 * The log never overflows, so no record is lost.
 */
void ct3_dc_refill_event_log(CXLType3Dev *ct3d)
{
    CXLDeviceState *cxlds = &ct3d->cxl_dstate;
    CXLDCRecord *rec;
    bool added = false;

    while ((rec = cxl_dc_record_peek(&ct3d->dc.state)) &&
           !cxl_event_log_full(cxlds, CXL_EVENT_TYPE_DYNAMIC_CAP)) {
        CXLEventDynamicCapacity ev = {};
        CXLDCExtentRaw *ext = (CXLDCExtentRaw *)ev.dynamic_capacity_extent;

        cxl_assign_event_header(&ev.hdr, &dynamic_capacity_uuid,
                                1 << CXL_EVENT_TYPE_INFO, sizeof(ev),
                                cxl_device_get_timestamp(cxlds));
        ev.type = rec->type;
        ev.validity_flags = 1;
        stw_le_p(&ev.host_id, rec->host_id);
        ev.updated_region_id = rec->region_id;
        ev.flags = rec->flags;
        stq_le_p(&ext->start_dpa, rec->dpa);
        stq_le_p(&ext->len, rec->len);
        memcpy(ext->tag, rec->tag.data, sizeof(ext->tag));
        stw_le_p(&ext->shared_seq, rec->shared_seq);
        stl_le_p(&ev.extents_avail, rec->extents_avail);
        stl_le_p(&ev.tags_avail, rec->tags_avail);
        cxl_event_insert(cxlds, CXL_EVENT_TYPE_DYNAMIC_CAP,
                         (CXLEventRecordRaw *)&ev);
        trace_cxl_dc_record_logged(rec->type, rec->region_id, rec->dpa,
                                   rec->len, rec->flags,
                                   ct3d->dc.state.nr_records - 1);
        cxl_dc_record_pop(&ct3d->dc.state);
        added = true;
    }
    if (added) {
        cxl_event_irq_assert(ct3d);
    }
}

static void ct3_dc_records_queued(void *opaque)
{
    ct3_dc_refill_event_log(opaque);
}

/* Sanitize on release: the released range reads back as zeros. */
static void ct3_dc_sanitize(void *opaque, uint64_t dpa, uint64_t len)
{
    CXLType3Dev *ct3d = opaque;
    uint64_t offset = dpa - ct3d->dc.state.regions[0].base;

    trace_cxl_dc_sanitize(dpa, len);
    address_space_set(&ct3d->dc.host_dc_as, offset, 0, len,
                      MEMTXATTRS_UNSPECIFIED);
}

/* QMP views of extents */

static CxlDynamicCapacityExtentInfo *extent_info(CXLDCState *dc, uint64_t dpa,
                                                 uint64_t len,
                                                 const QemuUUID *tag,
                                                 uint16_t shared_seq)
{
    CxlDynamicCapacityExtentInfo *info = g_new0(CxlDynamicCapacityExtentInfo,
                                                1);
    CXLDCRegion *r = cxl_dc_find_region(dc, dpa, len);

    info->region = r - dc->regions;
    info->offset = dpa - r->base;
    info->length = len;
    if (!qemu_uuid_is_null(tag)) {
        info->tag = qemu_uuid_unparse_strdup(tag);
    }
    info->shared_sequence = shared_seq;
    return info;
}

static CxlDynamicCapacityExtentInfoList *raw_info_list(
    CXLDCState *dc, const CXLDCExtentRaw *raw, uint32_t n)
{
    CxlDynamicCapacityExtentInfoList *list = NULL, **tail = &list;
    uint32_t i;

    for (i = 0; i < n; i++) {
        QemuUUID tag;

        memcpy(tag.data, raw[i].tag, sizeof(tag.data));
        QAPI_LIST_APPEND(tail, extent_info(dc, raw[i].start_dpa, raw[i].len,
                                           &tag, raw[i].shared_seq));
    }
    return list;
}

static const CxlDynamicCapacityReleaseReason release_reason[] = {
    [CXL_DC_RELEASE_HOST] = CXL_DYNAMIC_CAPACITY_RELEASE_REASON_HOST,
    [CXL_DC_RELEASE_REQUESTED] = CXL_DYNAMIC_CAPACITY_RELEASE_REASON_REQUESTED,
    [CXL_DC_RELEASE_FORCED] = CXL_DYNAMIC_CAPACITY_RELEASE_REASON_FORCED,
};

/* Tell management what changed, with a QMP event */
static void ct3_dc_notify(void *opaque, const CXLDCNotice *n)
{
    CXLType3Dev *ct3d = opaque;
    CXLDCState *dc = &ct3d->dc.state;
    g_autofree char *path = object_get_canonical_path(OBJECT(ct3d));
    g_autoptr(CxlDynamicCapacityExtentInfoList) extents =
        raw_info_list(dc, n->extents, n->nr_extents);
    g_autoptr(CxlDynamicCapacityExtentInfoList) declined =
        raw_info_list(dc, n->declined, n->nr_declined);
    CxlDynamicCapacityRequest request;

    switch (n->type) {
    case CXL_DC_NOTICE_ACCEPTED:
        trace_cxl_dc_accepted(n->region_id, n->nr_extents, n->nr_declined);
        qapi_event_send_cxl_dynamic_capacity_accepted(path, n->host_id,
                                                      n->region_id, extents,
                                                      declined);
        break;
    case CXL_DC_NOTICE_REJECTED:
        trace_cxl_dc_rejected(n->region_id, n->nr_extents);
        qapi_event_send_cxl_dynamic_capacity_rejected(path, n->host_id,
                                                      n->region_id, extents);
        break;
    case CXL_DC_NOTICE_RELEASED:
        trace_cxl_dc_released(n->region_id, n->nr_extents,
                              CxlDynamicCapacityReleaseReason_str(
                                  release_reason[n->reason]));
        qapi_event_send_cxl_dynamic_capacity_released(
            path, n->host_id, n->region_id, extents,
            release_reason[n->reason]);
        break;
    case CXL_DC_NOTICE_SANITIZED:
        qapi_event_send_cxl_dynamic_capacity_sanitized(path, n->host_id,
                                                       n->region_id,
                                                       extents);
        break;
    case CXL_DC_NOTICE_ADD_CANCELLED:
    case CXL_DC_NOTICE_RELEASE_CANCELLED:
        request = n->type == CXL_DC_NOTICE_ADD_CANCELLED ?
                  CXL_DYNAMIC_CAPACITY_REQUEST_ADD :
                  CXL_DYNAMIC_CAPACITY_REQUEST_RELEASE;
        trace_cxl_dc_cancelled(CxlDynamicCapacityRequest_str(request), n->id,
                               n->region_id, n->nr_extents);
        qapi_event_send_cxl_dynamic_capacity_cancelled(path, n->host_id,
                                                       n->region_id, request,
                                                       n->id, extents);
        break;
    }
}

static const CXLDCOps ct3_dc_ops = {
    .sanitize = ct3_dc_sanitize,
    .records_queued = ct3_dc_records_queued,
    .notify = ct3_dc_notify,
};

/* Set up and tear down */

/*
 * Split the DC backend into num-dc-regions equal regions placed right
 * after the static capacity, with 2 MiB blocks.
 */
bool ct3_dc_realize(CXLType3Dev *ct3d, Error **errp)
{
    MemoryRegion *mr = host_memory_backend_get_memory(ct3d->dc.host_dc);
    uint64_t dc_size = memory_region_size(mr);
    uint64_t base = ct3d->cxl_dstate.static_mem_size;
    uint32_t dsmad = (ct3d->hostvmem ? 1 : 0) + (ct3d->hostpmem ? 1 : 0);
    uint64_t region_len;
    unsigned i;

    if (ct3d->dc.num_regions > CXL_DC_MAX_REGIONS) {
        error_setg(errp, "num-dc-regions %u is more than the %u DC regions"
                   " a device supports", ct3d->dc.num_regions,
                   CXL_DC_MAX_REGIONS);
        return false;
    }
    if (dc_size % (ct3d->dc.num_regions * CXL_DC_REGION_ALIGN)) {
        error_setg(errp, "volatile-dc-memdev size 0x%" PRIx64 " is not a"
                   " multiple of num-dc-regions %u times 256 MiB", dc_size,
                   ct3d->dc.num_regions);
        return false;
    }
    if (!ct3d->dc.max_extents) {
        error_setg(errp, "dc-max-extents must be at least 1");
        return false;
    }
    region_len = dc_size / ct3d->dc.num_regions;
    cxl_dc_init(&ct3d->dc.state, ct3d->dc.max_extents, ct3d->dc.max_tags,
                &ct3_dc_ops, ct3d);
    for (i = 0; i < ct3d->dc.num_regions; i++) {
        if (!cxl_dc_add_region(&ct3d->dc.state, base + i * region_len,
                               region_len, region_len, CXL_DC_BLOCK_SIZE,
                               dsmad + i, false, errp)) {
            cxl_dc_cleanup(&ct3d->dc.state);
            return false;
        }
    }
    ct3d->dc.total_capacity = dc_size;
    return true;
}

void ct3_dc_unrealize(CXLType3Dev *ct3d)
{
    cxl_dc_cleanup(&ct3d->dc.state);
}

/*
 * Conventional reset (a machine reset, a secondary bus reset above the
 * device): the host forgets every exchange in flight, so the engine
 * cancels the requests it has not answered and tells management.  The
 * records that carried them go with the Dynamic Capacity event log,
 * and the log's interrupt setting returns to No Interrupts (CXL r3.1
 * section 8.2.9.2.5).  Accepted extents and their memory stay.
 */
void ct3_dc_reset(CXLType3Dev *ct3d)
{
    CXLDeviceState *cxlds = &ct3d->cxl_dstate;

    trace_cxl_dc_reset(ct3d->dc.state.nr_accepted, ct3d->dc.state.nr_pending,
                       ct3d->dc.state.nr_records);
    cxl_dc_reset(&ct3d->dc.state);
    cxl_event_log_clear(cxlds, CXL_EVENT_TYPE_DYNAMIC_CAP);
    cxlds->event_logs[CXL_EVENT_TYPE_DYNAMIC_CAP].irq_enabled = false;
}

/* Memory device mailbox commands, CXL r3.1 section 8.2.9.9.9 */

/* CXL r3.1 Table 8-165 and 8-166; all fields little endian */
typedef struct CXLDCConfigIn {
    uint8_t region_cnt;
    uint8_t start_rid;
} QEMU_PACKED CXLDCConfigIn;

typedef struct CXLDCRegionConfig {
    uint64_t base;
    uint64_t decode_len;        /* in units of 256 MiB */
    uint64_t region_len;
    uint64_t block_size;
    uint32_t dsmad_handle;
    uint8_t flags;
    uint8_t rsvd[3];
} QEMU_PACKED CXLDCRegionConfig;
QEMU_BUILD_BUG_ON(sizeof(CXLDCRegionConfig) != 0x28);

typedef struct CXLDCConfigOut {
    uint8_t num_regions;
    uint8_t regions_returned;
    uint8_t rsvd[6];
    CXLDCRegionConfig records[];
} QEMU_PACKED CXLDCConfigOut;

/* Follows the region records in Get DC Configuration output */
typedef struct CXLDCConfigTail {
    uint32_t num_extents_supported;
    uint32_t num_extents_available;
    uint32_t num_tags_supported;
    uint32_t num_tags_available;
} QEMU_PACKED CXLDCConfigTail;

static void put_config_tail(CXLDCState *dc, CXLDCConfigTail *tail)
{
    stl_le_p(&tail->num_extents_supported, dc->max_extents);
    stl_le_p(&tail->num_extents_available, cxl_dc_extents_avail(dc));
    stl_le_p(&tail->num_tags_supported, dc->max_tags);
    stl_le_p(&tail->num_tags_available, cxl_dc_tags_avail(dc));
}

/* Get Dynamic Capacity Configuration (Opcode 4800h) */
CXLRetCode cmd_dcd_get_dyn_cap_config(const struct cxl_cmd *cmd,
                                      uint8_t *payload_in, size_t len_in,
                                      uint8_t *payload_out, size_t *len_out,
                                      CXLCCI *cci)
{
    CXLType3Dev *ct3d = CXL_TYPE3(cci->d);
    CXLDCState *dc = &ct3d->dc.state;
    CXLDCConfigIn *in = (void *)payload_in;
    CXLDCConfigOut *out = (void *)payload_out;
    uint16_t count, i;
    size_t len;

    if (len_in < sizeof(*in)) {
        return CXL_MBOX_INVALID_PAYLOAD_LENGTH;
    }
    if (in->start_rid >= dc->nr_regions) {
        return CXL_MBOX_INVALID_INPUT;
    }
    count = MIN(dc->nr_regions - in->start_rid, in->region_cnt);
    len = sizeof(*out) + count * sizeof(out->records[0]) +
          sizeof(CXLDCConfigTail);
    if (len > cci->payload_max) {
        return CXL_MBOX_INTERNAL_ERROR;
    }

    memset(out, 0, len);
    out->num_regions = dc->nr_regions;
    out->regions_returned = count;
    for (i = 0; i < count; i++) {
        CXLDCRegion *r = &dc->regions[in->start_rid + i];

        stq_le_p(&out->records[i].base, r->base);
        stq_le_p(&out->records[i].decode_len,
                 r->decode_len / CXL_DC_REGION_ALIGN);
        stq_le_p(&out->records[i].region_len, r->len);
        stq_le_p(&out->records[i].block_size, r->block_size);
        stl_le_p(&out->records[i].dsmad_handle, r->dsmad_handle);
        out->records[i].flags = r->flags;
    }
    put_config_tail(dc, (CXLDCConfigTail *)&out->records[count]);
    *len_out = len;
    return CXL_MBOX_SUCCESS;
}

/* CXL r3.1 Table 8-167 and 8-168; all fields little endian */
typedef struct CXLDCExtentListIn {
    uint32_t extent_cnt;
    uint32_t start_extent_id;
} QEMU_PACKED CXLDCExtentListIn;

typedef struct CXLDCExtentListOut {
    uint32_t count;
    uint32_t total_extents;
    uint32_t generation_num;
    uint8_t rsvd[4];
    CXLDCExtentRaw records[];
} QEMU_PACKED CXLDCExtentListOut;

/* Get Dynamic Capacity Extent List (Opcode 4801h) */
CXLRetCode cmd_dcd_get_dyn_cap_ext_list(const struct cxl_cmd *cmd,
                                        uint8_t *payload_in, size_t len_in,
                                        uint8_t *payload_out, size_t *len_out,
                                        CXLCCI *cci)
{
    CXLDCState *dc = &CXL_TYPE3(cci->d)->dc.state;
    CXLDCExtentListIn *in = (void *)payload_in;
    CXLDCExtentListOut *out = (void *)payload_out;
    uint32_t start, want, fit, n;

    if (len_in < sizeof(*in)) {
        return CXL_MBOX_INVALID_PAYLOAD_LENGTH;
    }
    start = ldl_le_p(&in->start_extent_id);
    want = ldl_le_p(&in->extent_cnt);
    if (start > dc->nr_accepted) {
        return CXL_MBOX_INVALID_INPUT;
    }
    /* A count larger than fits is clamped to the payload. */
    fit = (cci->payload_max - sizeof(*out)) / sizeof(out->records[0]);
    n = cxl_dc_get_extents(dc, start, MIN(want, fit), out->records);
    stl_le_p(&out->count, n);
    stl_le_p(&out->total_extents, dc->nr_accepted);
    stl_le_p(&out->generation_num, dc->generation);
    memset(out->rsvd, 0, sizeof(out->rsvd));
    *len_out = sizeof(*out) + n * sizeof(out->records[0]);
    return CXL_MBOX_SUCCESS;
}

/*
 * Add Dynamic Capacity Response and Release Dynamic Capacity input,
 * CXL r3.1 Tables 8-169, 8-170 and 8-171; all fields little endian
 */
typedef struct CXLDCUpdatedExtent {
    uint64_t start_dpa;
    uint64_t len;
    uint8_t rsvd[8];
} QEMU_PACKED CXLDCUpdatedExtent;
QEMU_BUILD_BUG_ON(sizeof(CXLDCUpdatedExtent) != 0x18);

typedef struct CXLDCUpdateIn {
    uint32_t num_entries_updated;
    uint8_t flags;
    uint8_t rsvd[3];
    CXLDCUpdatedExtent updated_entries[];
} QEMU_PACKED CXLDCUpdateIn;

#define CXL_DC_UPDATE_FLAG_MORE (1 << 0)

/*
 * Check the length of an extent list payload and copy its extents into
 * a fresh array; NULL with *ret set when the payload is malformed.
 */
static CXLDCExtentRaw *read_updated_extents(uint8_t *payload_in,
                                            size_t len_in, uint32_t *n,
                                            bool *more, CXLRetCode *ret)
{
    CXLDCUpdateIn *in = (void *)payload_in;
    CXLDCExtentRaw *ranges;
    uint32_t i;

    if (len_in < sizeof(*in)) {
        *ret = CXL_MBOX_INVALID_PAYLOAD_LENGTH;
        return NULL;
    }
    *n = ldl_le_p(&in->num_entries_updated);
    *more = in->flags & CXL_DC_UPDATE_FLAG_MORE;
    if (len_in - sizeof(*in) <
        (uint64_t)*n * sizeof(in->updated_entries[0])) {
        *ret = CXL_MBOX_INVALID_PAYLOAD_LENGTH;
        return NULL;
    }
    ranges = g_new0(CXLDCExtentRaw, MAX(*n, 1));
    for (i = 0; i < *n; i++) {
        ranges[i].start_dpa = ldq_le_p(&in->updated_entries[i].start_dpa);
        ranges[i].len = ldq_le_p(&in->updated_entries[i].len);
    }
    *ret = CXL_MBOX_SUCCESS;
    return ranges;
}

/* Add Dynamic Capacity Response (Opcode 4802h) */
CXLRetCode cmd_dcd_add_dyn_cap_rsp(const struct cxl_cmd *cmd,
                                   uint8_t *payload_in, size_t len_in,
                                   uint8_t *payload_out, size_t *len_out,
                                   CXLCCI *cci)
{
    CXLType3Dev *ct3d = CXL_TYPE3(cci->d);
    g_autofree CXLDCExtentRaw *ranges = NULL;
    Error *err = NULL;
    CXLDCStatus status;
    CXLRetCode ret;
    uint32_t n;
    bool more;

    ranges = read_updated_extents(payload_in, len_in, &n, &more, &ret);
    if (!ranges) {
        return ret;
    }
    status = cxl_dc_host_add_response(&ct3d->dc.state, ranges, n, more,
                                      &err);
    trace_cxl_dc_add_response(n, more, status);
    if (status != CXL_DC_OK) {
        trace_cxl_dc_err_mbox(cmd->name, error_get_pretty(err));
        error_free(err);
    }
    *len_out = 0;
    return dc_ret(status);
}

/* Release Dynamic Capacity (Opcode 4803h) */
CXLRetCode cmd_dcd_release_dyn_cap(const struct cxl_cmd *cmd,
                                   uint8_t *payload_in, size_t len_in,
                                   uint8_t *payload_out, size_t *len_out,
                                   CXLCCI *cci)
{
    CXLType3Dev *ct3d = CXL_TYPE3(cci->d);
    g_autofree CXLDCExtentRaw *ranges = NULL;
    Error *err = NULL;
    CXLDCStatus status;
    CXLRetCode ret;
    uint32_t n;
    bool more;

    ranges = read_updated_extents(payload_in, len_in, &n, &more, &ret);
    if (!ranges) {
        return ret;
    }
    status = cxl_dc_host_release(&ct3d->dc.state, ranges, n, &err);
    trace_cxl_dc_release(n, status);
    if (status != CXL_DC_OK) {
        trace_cxl_dc_err_mbox(cmd->name, error_get_pretty(err));
        error_free(err);
    }
    *len_out = 0;
    return dc_ret(status);
}

/* The fabric manager's requests, from the FM-API or QMP */

static bool dc_offer_add(CXLType3Dev *ct3d, const CXLDCAddRequest *req,
                         Error **errp)
{
    ERRP_GUARD();
    uint64_t group;
    uint32_t before = ct3d->dc.state.nr_pending;

    if (!cxl_dc_offer_add(&ct3d->dc.state, req, &group, errp)) {
        trace_cxl_dc_err_request("add", error_get_pretty(*errp));
        return false;
    }
    trace_cxl_dc_offer_add(req->region_id, group,
                           ct3d->dc.state.nr_pending - before);
    return true;
}

static bool dc_request_release(CXLType3Dev *ct3d,
                               const CXLDCReleaseRequest *req, Error **errp)
{
    ERRP_GUARD();

    if (!cxl_dc_request_release(&ct3d->dc.state, req, errp)) {
        trace_cxl_dc_err_request("release", error_get_pretty(*errp));
        return false;
    }
    trace_cxl_dc_request_release(req->region_id, req->policy, req->forced,
                                 req->sanitize);
    return true;
}

/* Fabric manager commands, CXL r3.1 section 7.6.7.6 */

/* Get DCD Info (Opcode 5600h), CXL r3.1 Table 7-63 */
CXLRetCode cmd_fm_get_dcd_info(const struct cxl_cmd *cmd,
                               uint8_t *payload_in, size_t len_in,
                               uint8_t *payload_out, size_t *len_out,
                               CXLCCI *cci)
{
    struct {
        uint8_t num_hosts;
        uint8_t num_regions_supported;
        uint8_t rsvd1[2];
        uint16_t supported_add_sel_policy_bitmask;
        uint8_t rsvd2[2];
        uint16_t supported_removal_policy_bitmask;
        uint8_t sanitize_on_release_bitmask;
        uint8_t rsvd3;
        uint64_t total_dynamic_capacity;
        uint64_t region_blk_size_bitmasks[8];
    } QEMU_PACKED *out = (void *)payload_out;
    CXLType3Dev *ct3d = CXL_TYPE3(cci->d);
    CXLDCState *dc = &ct3d->dc.state;
    uint8_t sanitize = 0;
    int i;

    memset(out, 0, sizeof(*out));
    out->num_hosts = dc->nr_hosts;
    out->num_regions_supported = dc->nr_regions;
    stw_le_p(&out->supported_add_sel_policy_bitmask,
             BIT(CXL_DC_SELECT_FREE) | BIT(CXL_DC_SELECT_CONTIGUOUS) |
             BIT(CXL_DC_SELECT_PRESCRIPTIVE));
    stw_le_p(&out->supported_removal_policy_bitmask,
             BIT(CXL_DC_REMOVE_TAG_BASED) | BIT(CXL_DC_REMOVE_PRESCRIPTIVE));
    for (i = 0; i < dc->nr_regions; i++) {
        sanitize |= (dc->regions[i].flags & 1) << i;
        stq_le_p(&out->region_blk_size_bitmasks[i],
                 dc->regions[i].supported_block_sizes);
    }
    out->sanitize_on_release_bitmask = sanitize;
    stq_le_p(&out->total_dynamic_capacity,
             ct3d->dc.total_capacity / CXL_DC_REGION_ALIGN);
    *len_out = sizeof(*out);
    return CXL_MBOX_SUCCESS;
}

/* Get Host DC Region Configuration (Opcode 5601h), CXL r3.1 Table 7-65 */
CXLRetCode cmd_fm_get_host_dc_region_config(const struct cxl_cmd *cmd,
                                            uint8_t *payload_in,
                                            size_t len_in,
                                            uint8_t *payload_out,
                                            size_t *len_out, CXLCCI *cci)
{
    struct {
        uint16_t host_id;
        uint8_t region_cnt;
        uint8_t start_rid;
    } QEMU_PACKED *in = (void *)payload_in;
    struct {
        uint16_t host_id;
        uint8_t num_regions;
        uint8_t regions_returned;
        struct {
            uint64_t base;
            uint64_t decode_len;
            uint64_t region_len;
            uint64_t block_size;
            uint8_t flags;
            uint8_t rsvd1[3];
            uint8_t sanitize;
            uint8_t rsvd2[3];
        } QEMU_PACKED records[];
    } QEMU_PACKED *out = (void *)payload_out;
    CXLDCState *dc = &CXL_TYPE3(cci->d)->dc.state;
    uint16_t count, i;
    size_t len;

    if (len_in < sizeof(*in)) {
        return CXL_MBOX_INVALID_PAYLOAD_LENGTH;
    }
    if (lduw_le_p(&in->host_id) >= dc->nr_hosts ||
        in->start_rid >= dc->nr_regions) {
        return CXL_MBOX_INVALID_INPUT;
    }
    count = MIN(dc->nr_regions - in->start_rid, in->region_cnt);
    len = sizeof(*out) + count * sizeof(out->records[0]) +
          sizeof(CXLDCConfigTail);
    if (len > cci->payload_max) {
        return CXL_MBOX_INTERNAL_ERROR;
    }
    memset(out, 0, len);
    stw_le_p(&out->host_id, lduw_le_p(&in->host_id));
    out->num_regions = dc->nr_regions;
    out->regions_returned = count;
    for (i = 0; i < count; i++) {
        CXLDCRegion *r = &dc->regions[in->start_rid + i];

        stq_le_p(&out->records[i].base, r->base);
        stq_le_p(&out->records[i].decode_len,
                 r->decode_len / CXL_DC_REGION_ALIGN);
        stq_le_p(&out->records[i].region_len, r->len);
        stq_le_p(&out->records[i].block_size, r->block_size);
        out->records[i].flags =
            r->shareable ? BIT(CXL_DSMAS_FLAGS_SHARABLE) : 0;
        out->records[i].sanitize = r->flags & 1;
    }
    put_config_tail(dc, (CXLDCConfigTail *)&out->records[count]);
    *len_out = len;
    return CXL_MBOX_SUCCESS;
}

/* Set DC Region Configuration (Opcode 5602h), CXL r3.1 Table 7-67 */
CXLRetCode cmd_fm_set_dc_region_config(const struct cxl_cmd *cmd,
                                       uint8_t *payload_in, size_t len_in,
                                       uint8_t *payload_out, size_t *len_out,
                                       CXLCCI *cci)
{
    struct {
        uint8_t reg_id;
        uint8_t rsvd[3];
        uint64_t block_sz;
        uint8_t flags;
        uint8_t rsvd2[3];
    } QEMU_PACKED *in = (void *)payload_in;
    CXLDCState *dc = &CXL_TYPE3(cci->d)->dc.state;
    Error *err = NULL;
    CXLDCStatus status;

    if (len_in < sizeof(*in)) {
        return CXL_MBOX_INVALID_PAYLOAD_LENGTH;
    }
    if (in->reg_id >= dc->nr_regions) {
        return CXL_MBOX_INVALID_INPUT;
    }
    /* Sanitize on Release is not reconfigurable here. */
    if ((in->flags & 1) != (dc->regions[in->reg_id].flags & 1)) {
        return CXL_MBOX_UNSUPPORTED;
    }
    status = cxl_dc_set_block_size(dc, in->reg_id, ldq_le_p(&in->block_sz),
                                   &err);
    trace_cxl_dc_set_block_size(in->reg_id, ldq_le_p(&in->block_sz), status);
    if (status != CXL_DC_OK) {
        trace_cxl_dc_err_mbox(cmd->name, error_get_pretty(err));
        error_free(err);
    }
    *len_out = 0;
    return dc_ret(status);
}

/* Get DC Region Extent Lists (Opcode 5603h), CXL r3.1 Table 7-69 */
CXLRetCode cmd_fm_get_dc_region_extent_list(const struct cxl_cmd *cmd,
                                            uint8_t *payload_in,
                                            size_t len_in,
                                            uint8_t *payload_out,
                                            size_t *len_out, CXLCCI *cci)
{
    struct {
        uint16_t host_id;
        uint8_t rsvd[2];
        uint32_t extent_cnt;
        uint32_t start_extent_id;
    } QEMU_PACKED *in = (void *)payload_in;
    struct {
        uint16_t host_id;
        uint8_t rsvd[2];
        uint32_t start_extent_id;
        uint32_t extents_returned;
        uint32_t total_extents;
        uint32_t list_generation_num;
        uint8_t rsvd2[4];
        CXLDCExtentRaw records[];
    } QEMU_PACKED *out = (void *)payload_out;
    CXLDCState *dc = &CXL_TYPE3(cci->d)->dc.state;
    uint32_t start, want, fit, n;

    if (len_in < sizeof(*in)) {
        return CXL_MBOX_INVALID_PAYLOAD_LENGTH;
    }
    start = ldl_le_p(&in->start_extent_id);
    want = ldl_le_p(&in->extent_cnt);
    if (lduw_le_p(&in->host_id) >= dc->nr_hosts ||
        start > dc->nr_accepted) {
        return CXL_MBOX_INVALID_INPUT;
    }
    fit = (cci->payload_max - sizeof(*out)) / sizeof(out->records[0]);
    n = cxl_dc_get_extents(dc, start, MIN(want, fit), out->records);
    memset(out, 0, sizeof(*out));
    stw_le_p(&out->host_id, lduw_le_p(&in->host_id));
    stl_le_p(&out->start_extent_id, start);
    stl_le_p(&out->extents_returned, n);
    stl_le_p(&out->total_extents, dc->nr_accepted);
    stl_le_p(&out->list_generation_num, dc->generation);
    *len_out = sizeof(*out) + n * sizeof(out->records[0]);
    return CXL_MBOX_SUCCESS;
}

/*
 * Initiate Dynamic Capacity Add and Release input, CXL r3.1 Tables 7-70
 * and 7-71; all fields little endian
 */
typedef struct CXLDCInitiateIn {
    uint16_t host_id;
    uint8_t policy;             /* add: selection; release: flags */
    uint8_t reg_num;
    uint64_t length;
    uint8_t tag[0x10];
    uint32_t ext_count;
    CXLDCExtentRaw extents[];
} QEMU_PACKED CXLDCInitiateIn;
QEMU_BUILD_BUG_ON(sizeof(CXLDCInitiateIn) != 0x20);

#define CXL_DC_RELEASE_POLICY_MASK 0x0f
#define CXL_DC_RELEASE_FORCED (1 << 4)
#define CXL_DC_RELEASE_SANITIZE (1 << 5)

/*
 * Read the extent list of an Initiate payload as region offsets; NULL
 * with *ret set when the payload is malformed.
 */
static CXLDCRange *read_initiate_extents(CXLDCState *dc,
                                         CXLDCInitiateIn *in, size_t len_in,
                                         uint32_t *n, CXLRetCode *ret)
{
    g_autofree CXLDCRange *ranges = NULL;
    CXLDCRegion *r;
    uint32_t i;

    if (len_in < sizeof(*in)) {
        *ret = CXL_MBOX_INVALID_PAYLOAD_LENGTH;
        return NULL;
    }
    *n = ldl_le_p(&in->ext_count);
    if (len_in - sizeof(*in) < (uint64_t)*n * sizeof(in->extents[0])) {
        *ret = CXL_MBOX_INVALID_PAYLOAD_LENGTH;
        return NULL;
    }
    if (in->reg_num >= dc->nr_regions) {
        *ret = CXL_MBOX_INVALID_INPUT;
        return NULL;
    }
    r = &dc->regions[in->reg_num];
    ranges = g_new0(CXLDCRange, MAX(*n, 1));
    for (i = 0; i < *n; i++) {
        uint64_t dpa = ldq_le_p(&in->extents[i].start_dpa);

        /* The wire names DPAs; the engine takes region offsets. */
        if (dpa < r->base) {
            *ret = CXL_MBOX_INVALID_PA;
            return NULL;
        }
        ranges[i].offset = dpa - r->base;
        ranges[i].len = ldq_le_p(&in->extents[i].len);
    }
    *ret = CXL_MBOX_SUCCESS;
    return g_steal_pointer(&ranges);
}

static CXLRetCode fm_error(const struct cxl_cmd *cmd, Error *err)
{
    trace_cxl_dc_err_mbox(cmd->name, error_get_pretty(err));
    error_free(err);
    return CXL_MBOX_INVALID_INPUT;
}

/* Initiate Dynamic Capacity Add (Opcode 5604h) */
CXLRetCode cmd_fm_initiate_dc_add(const struct cxl_cmd *cmd,
                                  uint8_t *payload_in, size_t len_in,
                                  uint8_t *payload_out, size_t *len_out,
                                  CXLCCI *cci)
{
    CXLDCInitiateIn *in = (void *)payload_in;
    CXLDCState *dc = &CXL_TYPE3(cci->d)->dc.state;
    g_autofree CXLDCRange *ranges = NULL;
    CXLDCAddRequest req = {};
    Error *err = NULL;
    CXLRetCode ret;
    uint32_t n;

    ranges = read_initiate_extents(dc, in, len_in, &n, &ret);
    if (!ranges) {
        return ret;
    }
    req.host_id = lduw_le_p(&in->host_id);
    req.region_id = in->reg_num;
    req.policy = in->policy & 0x0f;
    memcpy(req.tag.data, in->tag, sizeof(req.tag.data));
    req.has_tag = !qemu_uuid_is_null(&req.tag);
    if (req.policy == CXL_DC_SELECT_PRESCRIPTIVE) {
        req.nr_ranges = n;
        req.ranges = ranges;
    } else {
        req.len = ldq_le_p(&in->length);
    }
    if (!dc_offer_add(CXL_TYPE3(cci->d), &req, &err)) {
        return fm_error(cmd, err);
    }
    *len_out = 0;
    return CXL_MBOX_SUCCESS;
}

/* Initiate Dynamic Capacity Release (Opcode 5605h) */
CXLRetCode cmd_fm_initiate_dc_release(const struct cxl_cmd *cmd,
                                      uint8_t *payload_in, size_t len_in,
                                      uint8_t *payload_out, size_t *len_out,
                                      CXLCCI *cci)
{
    CXLDCInitiateIn *in = (void *)payload_in;
    CXLDCState *dc = &CXL_TYPE3(cci->d)->dc.state;
    g_autofree CXLDCRange *ranges = NULL;
    CXLDCReleaseRequest req = {};
    Error *err = NULL;
    CXLRetCode ret;
    uint32_t n;

    ranges = read_initiate_extents(dc, in, len_in, &n, &ret);
    if (!ranges) {
        return ret;
    }
    req.host_id = lduw_le_p(&in->host_id);
    req.region_id = in->reg_num;
    req.policy = in->policy & CXL_DC_RELEASE_POLICY_MASK;
    req.forced = in->policy & CXL_DC_RELEASE_FORCED;
    req.sanitize = in->policy & CXL_DC_RELEASE_SANITIZE;
    memcpy(req.tag.data, in->tag, sizeof(req.tag.data));
    req.has_tag = !qemu_uuid_is_null(&req.tag);
    if (req.policy == CXL_DC_REMOVE_PRESCRIPTIVE) {
        req.nr_ranges = n;
        req.ranges = ranges;
    }
    if (!dc_request_release(CXL_TYPE3(cci->d), &req, &err)) {
        return fm_error(cmd, err);
    }
    *len_out = 0;
    return CXL_MBOX_SUCCESS;
}

/* QMP */

static CXLType3Dev *dc_device(const char *path, Error **errp)
{
    Object *obj = object_resolve_path_type(path, TYPE_CXL_TYPE3, NULL);
    CXLType3Dev *ct3d;

    if (!obj) {
        error_setg(errp, "'%s' is not the path of a cxl-type3 device", path);
        return NULL;
    }
    ct3d = CXL_TYPE3(obj);
    if (!ct3d->dc.num_regions) {
        error_setg(errp, "cxl-type3 device '%s' has no dynamic capacity"
                   " regions", path);
        return NULL;
    }
    return ct3d;
}

static bool parse_tag(const char *tag, QemuUUID *uuid, Error **errp)
{
    if (qemu_uuid_parse(tag, uuid) < 0) {
        error_setg(errp, "tag '%s' is not a UUID", tag);
        return false;
    }
    return true;
}

/* Copy a QMP extent list; *n is its length. */
static CXLDCRange *qmp_ranges(CxlDynamicCapacityExtentList *list,
                              uint32_t *n)
{
    CxlDynamicCapacityExtentList *l;
    CXLDCRange *ranges;
    uint32_t i = 0;

    for (l = list; l; l = l->next) {
        i++;
    }
    ranges = g_new0(CXLDCRange, MAX(i, 1));
    *n = i;
    for (l = list, i = 0; l; l = l->next, i++) {
        ranges[i].offset = l->value->offset;
        ranges[i].len = l->value->len;
    }
    return ranges;
}

void qmp_cxl_add_dynamic_capacity(const char *path, uint16_t host_id,
                                  CxlExtentSelectionPolicy sel_policy,
                                  uint8_t region, const char *tag,
                                  bool has_extents,
                                  CxlDynamicCapacityExtentList *extents,
                                  bool has_length, uint64_t length,
                                  Error **errp)
{
    CXLType3Dev *ct3d = dc_device(path, errp);
    const char *policy = CxlExtentSelectionPolicy_str(sel_policy);
    g_autofree CXLDCRange *ranges = NULL;
    CXLDCAddRequest req = {
        .host_id = host_id,
        .region_id = region,
    };

    if (!ct3d) {
        return;
    }
    if (tag && !parse_tag(tag, &req.tag, errp)) {
        return;
    }
    req.has_tag = tag;
    switch (sel_policy) {
    case CXL_EXTENT_SELECTION_POLICY_FREE:
    case CXL_EXTENT_SELECTION_POLICY_CONTIGUOUS:
        req.policy = sel_policy == CXL_EXTENT_SELECTION_POLICY_FREE ?
                     CXL_DC_SELECT_FREE : CXL_DC_SELECT_CONTIGUOUS;
        if (has_extents) {
            error_setg(errp, "selection policy '%s' takes a length, not an"
                       " extent list", policy);
            return;
        }
        if (!has_length) {
            error_setg(errp, "selection policy '%s' needs a length", policy);
            return;
        }
        req.len = length;
        break;
    case CXL_EXTENT_SELECTION_POLICY_PRESCRIPTIVE:
    case CXL_EXTENT_SELECTION_POLICY_ENABLE_SHARED_ACCESS:
        req.policy = sel_policy == CXL_EXTENT_SELECTION_POLICY_PRESCRIPTIVE ?
                     CXL_DC_SELECT_PRESCRIPTIVE : CXL_DC_SELECT_SHARED;
        if (has_length) {
            error_setg(errp, "selection policy '%s' takes an extent list,"
                       " not a length", policy);
            return;
        }
        ranges = qmp_ranges(extents, &req.nr_ranges);
        req.ranges = ranges;
        break;
    default:
        error_setg(errp, "selection policy %d is unknown", sel_policy);
        return;
    }
    dc_offer_add(ct3d, &req, errp);
}

void qmp_cxl_release_dynamic_capacity(const char *path, uint16_t host_id,
                                      CxlExtentRemovalPolicy removal_policy,
                                      bool has_forced_removal,
                                      bool forced_removal,
                                      bool has_sanitize_on_release,
                                      bool sanitize_on_release,
                                      uint8_t region,
                                      const char *tag,
                                      bool has_extents,
                                      CxlDynamicCapacityExtentList *extents,
                                      Error **errp)
{
    CXLType3Dev *ct3d = dc_device(path, errp);
    g_autofree CXLDCRange *ranges = NULL;
    CXLDCReleaseRequest req = {
        .host_id = host_id,
        .region_id = region,
        .forced = has_forced_removal && forced_removal,
        .sanitize = has_sanitize_on_release && sanitize_on_release,
    };

    if (!ct3d) {
        return;
    }
    if (tag && !parse_tag(tag, &req.tag, errp)) {
        return;
    }
    req.has_tag = tag;
    if (removal_policy == CXL_EXTENT_REMOVAL_POLICY_TAG_BASED) {
        req.policy = CXL_DC_REMOVE_TAG_BASED;
        if (has_extents) {
            error_setg(errp, "tag-based removal takes a tag, not an extent"
                       " list");
            return;
        }
    } else {
        req.policy = CXL_DC_REMOVE_PRESCRIPTIVE;
        ranges = qmp_ranges(extents, &req.nr_ranges);
        req.ranges = ranges;
    }
    dc_request_release(ct3d, &req, errp);
}

/* Query */

static CxlDynamicCapacityExtentInfoList *extent_info_list(CXLDCState *dc,
                                                          CXLDCExtent **ext,
                                                          uint32_t n)
{
    CxlDynamicCapacityExtentInfoList *list = NULL, **tail = &list;
    uint32_t i;

    for (i = 0; i < n; i++) {
        QAPI_LIST_APPEND(tail, extent_info(dc, cxl_dc_extent_dpa(ext[i]),
                                           cxl_dc_extent_len(ext[i]),
                                           &ext[i]->tag,
                                           ext[i]->shared_seq));
    }
    return list;
}

static CxlDynamicCapacityExtentInfoList *tree_info_list(CXLDCState *dc,
                                                        IntervalTreeRoot *root)
{
    CxlDynamicCapacityExtentInfoList *list = NULL, **tail = &list;
    IntervalTreeNode *n;

    for (n = interval_tree_iter_first(root, 0, UINT64_MAX); n;
         n = interval_tree_iter_next(n, 0, UINT64_MAX)) {
        CXLDCExtent *e = container_of(n, CXLDCExtent, node);

        QAPI_LIST_APPEND(tail, extent_info(dc, cxl_dc_extent_dpa(e),
                                           cxl_dc_extent_len(e), &e->tag,
                                           e->shared_seq));
    }
    return list;
}

static CxlDynamicCapacityInfo *dc_info(CXLType3Dev *ct3d)
{
    CXLDCState *dc = &ct3d->dc.state;
    CxlDynamicCapacityInfo *info = g_new0(CxlDynamicCapacityInfo, 1);
    CxlDynamicCapacityRegionInfoList **rtail = &info->regions;
    CxlDynamicCapacityPendingAddList **atail = &info->pending_adds;
    CxlDynamicCapacityPendingReleaseList **ltail = &info->pending_releases;
    CXLDCRelease *rel;
    CXLDCGroup *g;
    unsigned i;

    info->path = object_get_canonical_path(OBJECT(ct3d));
    for (i = 0; i < dc->nr_regions; i++) {
        CXLDCRegion *r = &dc->regions[i];
        CxlDynamicCapacityRegionInfo *ri = g_new0(CxlDynamicCapacityRegionInfo,
                                                  1);

        ri->index = i;
        ri->base = r->base;
        ri->decode_length = r->decode_len;
        ri->length = r->len;
        ri->block_size = r->block_size;
        ri->sanitize_on_release = r->flags & 1;
        ri->accepted = tree_info_list(dc, &r->accepted);
        QAPI_LIST_APPEND(rtail, ri);
    }
    QTAILQ_FOREACH(g, &dc->groups, next) {
        CxlDynamicCapacityPendingAdd *pa = g_new0(CxlDynamicCapacityPendingAdd,
                                                  1);

        pa->id = g->id;
        pa->host_id = g->host_id;
        pa->region = g->region_id;
        pa->extents = extent_info_list(dc, g->extents, g->nr_extents);
        pa->staged = tree_info_list(dc, &g->staged);
        QAPI_LIST_APPEND(atail, pa);
    }
    QTAILQ_FOREACH(rel, &dc->releases, next) {
        CxlDynamicCapacityPendingRelease *pr =
            g_new0(CxlDynamicCapacityPendingRelease, 1);

        pr->id = rel->id;
        pr->host_id = rel->host_id;
        pr->region = rel->region_id;
        pr->sanitize_on_release = rel->sanitize;
        pr->extents = raw_info_list(dc, rel->ranges, rel->nr_ranges);
        QAPI_LIST_APPEND(ltail, pr);
    }
    info->queued_records = dc->nr_records;
    info->extents_supported = dc->max_extents;
    info->extents_available = cxl_dc_extents_avail(dc);
    info->tags_supported = dc->max_tags;
    info->tags_available = cxl_dc_tags_avail(dc);
    info->generation = dc->generation;
    return info;
}

static int collect_dc_devices(Object *obj, void *opaque)
{
    CxlDynamicCapacityInfoList ***tail = opaque;
    CXLType3Dev *ct3d = (CXLType3Dev *)object_dynamic_cast(obj,
                                                           TYPE_CXL_TYPE3);

    if (ct3d && ct3d->dc.num_regions && ct3d->dc.state.tags) {
        QAPI_LIST_APPEND(*tail, dc_info(ct3d));
    }
    return 0;
}

CxlDynamicCapacityInfoList *qmp_query_cxl_dynamic_capacity(const char *path,
                                                           Error **errp)
{
    CxlDynamicCapacityInfoList *list = NULL, **tail = &list;

    if (path) {
        CXLType3Dev *ct3d = dc_device(path, errp);

        if (ct3d) {
            QAPI_LIST_APPEND(tail, dc_info(ct3d));
        }
        return list;
    }
    object_child_foreach_recursive(object_get_root(), collect_dc_devices,
                                   &tail);
    return list;
}

/* HMP: info cxl-dc [path] */

static void hmp_print_extents(Monitor *mon, const char *indent,
                              CxlDynamicCapacityExtentInfoList *list)
{
    for (; list; list = list->next) {
        CxlDynamicCapacityExtentInfo *e = list->value;
        g_autofree char *size = size_to_str(e->length);

        monitor_printf(mon, "%sregion %u offset 0x%" PRIx64 " size %s%s%s\n",
                       indent, e->region, e->offset, size,
                       e->tag ? " tag " : "", e->tag ? e->tag : "");
    }
}

void hmp_info_cxl_dc(Monitor *mon, const QDict *qdict)
{
    const char *path = qdict_get_try_str(qdict, "path");
    Error *err = NULL;
    g_autoptr(CxlDynamicCapacityInfoList) list =
        qmp_query_cxl_dynamic_capacity(path, &err);
    CxlDynamicCapacityInfoList *l;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    if (!list) {
        monitor_printf(mon, "no CXL device with dynamic capacity\n");
        return;
    }
    for (l = list; l; l = l->next) {
        CxlDynamicCapacityInfo *info = l->value;
        CxlDynamicCapacityRegionInfoList *r;
        CxlDynamicCapacityPendingAddList *a;
        CxlDynamicCapacityPendingReleaseList *rel;

        monitor_printf(mon, "%s: extents %u of %u available, tags %u of %u"
                       " available, generation %u, %u records queued\n",
                       info->path, info->extents_available,
                       info->extents_supported, info->tags_available,
                       info->tags_supported, info->generation,
                       info->queued_records);
        for (r = info->regions; r; r = r->next) {
            CxlDynamicCapacityRegionInfo *ri = r->value;
            g_autofree char *len = size_to_str(ri->length);
            g_autofree char *bs = size_to_str(ri->block_size);

            monitor_printf(mon, "  region %u: base 0x%" PRIx64 " size %s"
                           " block size %s%s\n", ri->index, ri->base, len,
                           bs, ri->sanitize_on_release ?
                           " sanitize-on-release" : "");
            hmp_print_extents(mon, "    accepted: ", ri->accepted);
        }
        for (a = info->pending_adds; a; a = a->next) {
            monitor_printf(mon, "  pending add %" PRIu64 " to host %u:\n",
                           a->value->id, a->value->host_id);
            hmp_print_extents(mon, "    offered: ", a->value->extents);
            hmp_print_extents(mon, "    staged: ", a->value->staged);
        }
        for (rel = info->pending_releases; rel; rel = rel->next) {
            monitor_printf(mon, "  pending release %" PRIu64 " from host %u%s:"
                           "\n", rel->value->id, rel->value->host_id,
                           rel->value->sanitize_on_release ?
                           " (sanitize)" : "");
            hmp_print_extents(mon, "    asked: ", rel->value->extents);
        }
    }
}
