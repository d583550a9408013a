/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * cxl-type3 migration: PCI and MSI-X state, the component and device
 * registers (HDM decoders, mailbox, status), the event logs and the
 * Dynamic Capacity state, so that a host driver goes on after migration
 * or loadvm where it left off.  Everything a stream claims is checked
 * before it is used: a corrupt or hostile stream fails the load.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "migration/vmstate.h"
#include "hw/pci/msix.h"
#include "system/hostmem.h"
#include "hw/cxl/cxl.h"
#include "hw/cxl/cxl_dc.h"

/* Event logs travel as the records they hold, oldest first. */

static bool event_log_pre_save(void *opaque, Error **errp)
{
    CXLEventLog *log = opaque;
    CXLEvent *ev;

    log->saved_count = 0;
    QSIMPLEQ_FOREACH(ev, &log->events, node) {
        log->saved[log->saved_count++] = ev->data;
    }
    return true;
}

static bool event_log_post_load(void *opaque, int version_id, Error **errp)
{
    CXLEventLog *log = opaque;
    CXLEvent *ev;
    uint32_t i;

    if (log->saved_count > CXL_EVENT_LOG_CAPACITY) {
        error_setg(errp, "event log: %u records, a log holds at most %u",
                   log->saved_count, CXL_EVENT_LOG_CAPACITY);
        return false;
    }
    for (i = 0; i < log->saved_count; i++) {
        if (!log->saved[i].hdr.handle) {
            error_setg(errp, "event log: record %u has handle 0", i);
            return false;
        }
    }
    while ((ev = QSIMPLEQ_FIRST(&log->events))) {
        QSIMPLEQ_REMOVE_HEAD(&log->events, node);
        g_free(ev);
    }
    for (i = 0; i < log->saved_count; i++) {
        ev = g_new0(CXLEvent, 1);
        ev->data = log->saved[i];
        QSIMPLEQ_INSERT_TAIL(&log->events, ev, node);
    }
    return true;
}

static const VMStateDescription vmstate_cxl_event_log = {
    .name = "cxl-event-log",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save_errp = event_log_pre_save,
    .post_load_errp = event_log_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(next_handle, CXLEventLog),
        VMSTATE_UINT16(overflow_err_count, CXLEventLog),
        VMSTATE_UINT64(first_overflow_timestamp, CXLEventLog),
        VMSTATE_UINT64(last_overflow_timestamp, CXLEventLog),
        VMSTATE_BOOL(irq_enabled, CXLEventLog),
        VMSTATE_UINT32(saved_count, CXLEventLog),
        VMSTATE_BUFFER_UNSAFE(saved, CXLEventLog, 0,
                              sizeof(CXLEventRecordRaw) *
                              CXL_EVENT_LOG_CAPACITY),
        VMSTATE_END_OF_LIST()
    }
};

/*
 * Dynamic Capacity state travels as the engine's snapshot: counts
 * first, then the arrays, whose sizes are checked against the device's
 * limits before anything is allocated for them.
 */

#define VMSTATE_DC_ARRAY(_field, _num, _vmsd, _type) {                \
    .name = stringify(_field),                                       \
    .vmsd = &(_vmsd),                                                \
    .num_offset = vmstate_offset_value(CXLDCSnapshot, _num, uint32_t),\
    .size = sizeof(_type),                                           \
    .flags = VMS_STRUCT | VMS_VARRAY_UINT32 | VMS_ALLOC | VMS_POINTER,\
    .offset = vmstate_offset_pointer(CXLDCSnapshot, _field, _type),  \
}

static const VMStateDescription vmstate_dc_region = {
    .name = "cxl-dc-region",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, CXLDCSavedRegion),
        VMSTATE_UINT64(len, CXLDCSavedRegion),
        VMSTATE_UINT64(block_size, CXLDCSavedRegion),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_dc_extent = {
    .name = "cxl-dc-extent",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(dpa, CXLDCSavedExtent),
        VMSTATE_UINT64(len, CXLDCSavedExtent),
        VMSTATE_UINT8_ARRAY(tag, CXLDCSavedExtent, 16),
        VMSTATE_UINT16(shared_seq, CXLDCSavedExtent),
        VMSTATE_UINT16(kind, CXLDCSavedExtent),
        VMSTATE_UINT32(group, CXLDCSavedExtent),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_dc_group = {
    .name = "cxl-dc-group",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(id, CXLDCSavedGroup),
        VMSTATE_UINT16(host_id, CXLDCSavedGroup),
        VMSTATE_UINT8(region_id, CXLDCSavedGroup),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_dc_release = {
    .name = "cxl-dc-release",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(id, CXLDCSavedRelease),
        VMSTATE_UINT16(host_id, CXLDCSavedRelease),
        VMSTATE_UINT8(region_id, CXLDCSavedRelease),
        VMSTATE_UINT8(sanitize, CXLDCSavedRelease),
        VMSTATE_UINT32(nr_ranges, CXLDCSavedRelease),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_dc_range = {
    .name = "cxl-dc-range",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(dpa, CXLDCSavedRange),
        VMSTATE_UINT64(len, CXLDCSavedRange),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_dc_record = {
    .name = "cxl-dc-record",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(type, CXLDCSavedRecord),
        VMSTATE_UINT8(flags, CXLDCSavedRecord),
        VMSTATE_UINT8(region_id, CXLDCSavedRecord),
        VMSTATE_UINT16(host_id, CXLDCSavedRecord),
        VMSTATE_UINT64(dpa, CXLDCSavedRecord),
        VMSTATE_UINT64(len, CXLDCSavedRecord),
        VMSTATE_UINT8_ARRAY(tag, CXLDCSavedRecord, 16),
        VMSTATE_UINT16(shared_seq, CXLDCSavedRecord),
        VMSTATE_UINT32(extents_avail, CXLDCSavedRecord),
        VMSTATE_UINT32(tags_avail, CXLDCSavedRecord),
        VMSTATE_END_OF_LIST()
    }
};

static CXLType3Dev *snap_device(CXLDCSnapshot *snap)
{
    return container_of(snap, CXLType3Dev, dc.snap);
}

/* Before the arrays load: their counts must fit the device. */
static bool dc_arrays_pre_load(void *opaque, Error **errp)
{
    CXLDCSnapshot *snap = opaque;
    CXLDCState *dc = &snap_device(snap)->dc.state;
    uint64_t blocks = 0, max = dc->max_extents;
    unsigned i;

    for (i = 0; i < dc->nr_regions; i++) {
        blocks += dc->regions[i].len / CXL_DC_MIN_BLOCK_SIZE;
    }
    if (snap->nr_regions > CXL_DC_MAX_REGIONS ||
        snap->nr_extents > 2 * max || snap->nr_groups > max ||
        snap->nr_releases > blocks || snap->nr_ranges > blocks ||
        snap->nr_records > 2 * max + blocks + dc->nr_regions) {
        error_setg(errp, "dynamic capacity: %u regions, %u extents, %u"
                   " groups, %u releases, %u ranges or %u records exceed"
                   " what the device can hold", snap->nr_regions,
                   snap->nr_extents, snap->nr_groups, snap->nr_releases,
                   snap->nr_ranges, snap->nr_records);
        return false;
    }
    return true;
}

static const VMStateDescription vmstate_dc_arrays = {
    .name = "cxl-dc-arrays",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_load_errp = dc_arrays_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_DC_ARRAY(regions, nr_regions, vmstate_dc_region,
                         CXLDCSavedRegion),
        VMSTATE_DC_ARRAY(extents, nr_extents, vmstate_dc_extent,
                         CXLDCSavedExtent),
        VMSTATE_DC_ARRAY(groups, nr_groups, vmstate_dc_group,
                         CXLDCSavedGroup),
        VMSTATE_DC_ARRAY(releases, nr_releases, vmstate_dc_release,
                         CXLDCSavedRelease),
        VMSTATE_DC_ARRAY(ranges, nr_ranges, vmstate_dc_range,
                         CXLDCSavedRange),
        VMSTATE_DC_ARRAY(records, nr_records, vmstate_dc_record,
                         CXLDCSavedRecord),
        VMSTATE_END_OF_LIST()
    }
};

static bool dc_needed(void *opaque)
{
    CXLType3Dev *ct3d = opaque;

    return ct3d->dc.num_regions;
}

static bool dc_pre_save(void *opaque, Error **errp)
{
    CXLType3Dev *ct3d = opaque;

    cxl_dc_save(&ct3d->dc.state, &ct3d->dc.snap);
    return true;
}

static int dc_post_save(void *opaque)
{
    CXLType3Dev *ct3d = opaque;

    cxl_dc_snapshot_free(&ct3d->dc.snap);
    return 0;
}

static bool dc_pre_load(void *opaque, Error **errp)
{
    CXLType3Dev *ct3d = opaque;

    cxl_dc_snapshot_free(&ct3d->dc.snap);
    return true;
}

static bool dc_post_load(void *opaque, int version_id, Error **errp)
{
    CXLType3Dev *ct3d = opaque;
    bool ok;

    ok = cxl_dc_load(&ct3d->dc.state, &ct3d->dc.snap, errp);
    cxl_dc_snapshot_free(&ct3d->dc.snap);
    if (!ok) {
        error_prepend(errp, "dynamic capacity: ");
    }
    return ok;
}

static const VMStateDescription vmstate_ct3d_dc = {
    .name = "cxl-type3/dynamic-capacity",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = dc_needed,
    .pre_save_errp = dc_pre_save,
    .post_save = dc_post_save,
    .pre_load_errp = dc_pre_load,
    .post_load_errp = dc_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(dc.snap.nr_regions, CXLType3Dev),
        VMSTATE_UINT32(dc.snap.nr_extents, CXLType3Dev),
        VMSTATE_UINT32(dc.snap.nr_groups, CXLType3Dev),
        VMSTATE_UINT32(dc.snap.nr_releases, CXLType3Dev),
        VMSTATE_UINT32(dc.snap.nr_ranges, CXLType3Dev),
        VMSTATE_UINT32(dc.snap.nr_records, CXLType3Dev),
        VMSTATE_UINT32(dc.snap.generation, CXLType3Dev),
        VMSTATE_UINT64(dc.snap.next_group_id, CXLType3Dev),
        VMSTATE_UINT64(dc.snap.next_release_id, CXLType3Dev),
        VMSTATE_STRUCT(dc.snap, CXLType3Dev, 1, vmstate_dc_arrays,
                       CXLDCSnapshot),
        VMSTATE_END_OF_LIST()
    }
};

const VMStateDescription vmstate_cxl_type3 = {
    .name = "cxl-type3",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, CXLType3Dev),
        VMSTATE_MSIX(parent_obj, CXLType3Dev),
        VMSTATE_UINT32_ARRAY(cxl_cstate.crb.cache_mem_registers, CXLType3Dev,
                             CXL2_COMPONENT_CM_REGION_SIZE >> 2),
        VMSTATE_UINT8_ARRAY(cxl_dstate.dev_reg_state, CXLType3Dev,
                            CXL_DEVICE_STATUS_REGISTERS_LENGTH),
        VMSTATE_UINT64(cxl_dstate.event_status, CXLType3Dev),
        VMSTATE_UINT8_ARRAY(cxl_dstate.mbox_reg_state, CXLType3Dev,
                            CXL_MAILBOX_REGISTERS_LENGTH),
        VMSTATE_UINT64(cxl_dstate.memdev_status, CXLType3Dev),
        VMSTATE_BOOL(cxl_dstate.timestamp.set, CXLType3Dev),
        VMSTATE_UINT64(cxl_dstate.timestamp.last_set, CXLType3Dev),
        VMSTATE_UINT64(cxl_dstate.timestamp.host_set, CXLType3Dev),
        VMSTATE_STRUCT_ARRAY(cxl_dstate.event_logs, CXLType3Dev,
                             CXL_EVENT_TYPE_MAX, 1, vmstate_cxl_event_log,
                             CXLEventLog),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_ct3d_dc,
        NULL
    }
};

/*
 * The memory behind the device migrates as the RAM of its backends,
 * which only the consumer of a backend can mark migratable.
 */
static void ct3_for_each_backend(CXLType3Dev *ct3d,
                                 void (*fn)(MemoryRegion *, DeviceState *))
{
    HostMemoryBackend *backends[] = {
        ct3d->hostvmem, ct3d->hostpmem, ct3d->lsa, ct3d->dc.host_dc,
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(backends); i++) {
        if (backends[i]) {
            fn(host_memory_backend_get_memory(backends[i]), DEVICE(ct3d));
        }
    }
}

void ct3_register_ram(CXLType3Dev *ct3d)
{
    ct3_for_each_backend(ct3d, vmstate_register_ram);
}

void ct3_unregister_ram(CXLType3Dev *ct3d)
{
    ct3_for_each_backend(ct3d, vmstate_unregister_ram);
}
