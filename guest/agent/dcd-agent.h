/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * dcd-agent: a user space host agent for a CXL Dynamic Capacity Device.
 * Declarations shared by the device access code (device.c), the memory
 * access code (mem.c) and the command line and daemon (dcd-agent.c).
 */

#ifndef DCD_AGENT_H
#define DCD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)           (sizeof(a) / sizeof((a)[0]))
#define BIT(n)                  (1u << (n))
#define MiB                     (1024ULL * 1024)

#define DCD_RUN_DIR             "/run/dcd-agent"
#define DCD_PID_FILE            DCD_RUN_DIR "/pid"
#define DCD_LOG_FILE            DCD_RUN_DIR "/log"
#define DCD_LOCK_FILE           DCD_RUN_DIR "/mailbox.lock"
#define DCD_SYSFS_PCI           "/sys/bus/pci/devices"
#define DCD_CXL_PCI_DRIVER      "/sys/bus/pci/drivers/cxl_pci"

/* CXL r3.1 section 8.1.12.1: class code of a CXL memory device */
#define CXL_CLASS_MEMORY_DEVICE 0x050210

/* CXL r3.1 Table 8-34: Command Return Codes (those the agent names) */
#define CXL_RC_SUCCESS          0x00
#define CXL_RC_BACKGROUND       0x01
#define CXL_RC_INVALID_PA       0x0f

/* CXL r3.1 Table 8-37 and Table 8-126: Command Opcodes */
#define CXL_OP_GET_EVENT_RECORDS    0x0100
#define CXL_OP_CLEAR_EVENT_RECORDS  0x0101
#define CXL_OP_GET_DC_CONFIG        0x4800
#define CXL_OP_GET_DC_EXTENT_LIST   0x4801
#define CXL_OP_ADD_DC_RESPONSE      0x4802
#define CXL_OP_RELEASE_DC           0x4803

/* CXL r3.1 section 8.2.9.2: the Dynamic Capacity Event Log */
#define CXL_EVENT_LOG_DC            4
#define CXL_GET_EVENTS_OVERFLOW     BIT(0)
#define CXL_GET_EVENTS_MORE         BIT(1)

/* CXL r3.1 Table 8-50: Dynamic Capacity Event Record types and flags */
#define CXL_DC_EVENT_ADD_CAPACITY       0x00
#define CXL_DC_EVENT_RELEASE            0x01
#define CXL_DC_EVENT_FORCED_RELEASE     0x02
#define CXL_DC_EVENT_REGION_CONFIG      0x03
#define CXL_DC_EVENT_FLAG_MORE          BIT(0)

/* CXL r3.1 Table 8-168: Add Dynamic Capacity Response flags */
#define CXL_DC_UPDATE_FLAG_MORE         BIT(0)

/* Wire formats, CXL r3.1 section 8.2.9.  All fields little endian. */

/* CXL r3.1 Table 8-165: DC Region Configuration */
typedef struct __attribute__((packed)) DcdRegionRaw {
    uint64_t base;
    uint64_t decode_len;        /* in units of 256 MiB */
    uint64_t len;
    uint64_t block_size;
    uint32_t dsmad_handle;
    uint8_t flags;
    uint8_t rsvd[3];
} DcdRegionRaw;
_Static_assert(sizeof(DcdRegionRaw) == 0x28, "DcdRegionRaw");

/* CXL r3.1 Table 8-164: Get Dynamic Capacity Configuration Output */
typedef struct __attribute__((packed)) DcdGetConfigOut {
    uint8_t num_regions;
    uint8_t regions_returned;
    uint8_t rsvd[6];
    DcdRegionRaw regions[];
} DcdGetConfigOut;
_Static_assert(sizeof(DcdGetConfigOut) == 0x8, "DcdGetConfigOut");

/* CXL r3.1 Table 8-164, after the region list */
typedef struct __attribute__((packed)) DcdGetConfigTail {
    uint32_t extents_supported;
    uint32_t extents_available;
    uint32_t tags_supported;
    uint32_t tags_available;
} DcdGetConfigTail;
_Static_assert(sizeof(DcdGetConfigTail) == 0x10, "DcdGetConfigTail");

/* CXL r3.1 Table 8-51: Dynamic Capacity Extent */
typedef struct __attribute__((packed)) DcdExtentRaw {
    uint64_t start_dpa;
    uint64_t len;
    uint8_t tag[16];
    uint16_t shared_seq;
    uint8_t rsvd[6];
} DcdExtentRaw;
_Static_assert(sizeof(DcdExtentRaw) == 0x28, "DcdExtentRaw");

/* CXL r3.1 Table 8-166: Get DC Extent List Input */
typedef struct __attribute__((packed)) DcdGetExtentsIn {
    uint32_t count;
    uint32_t start_index;
} DcdGetExtentsIn;
_Static_assert(sizeof(DcdGetExtentsIn) == 0x8, "DcdGetExtentsIn");

/* CXL r3.1 Table 8-167: Get DC Extent List Output */
typedef struct __attribute__((packed)) DcdGetExtentsOut {
    uint32_t count;
    uint32_t total;
    uint32_t generation;
    uint8_t rsvd[4];
    DcdExtentRaw extents[];
} DcdGetExtentsOut;
_Static_assert(sizeof(DcdGetExtentsOut) == 0x10, "DcdGetExtentsOut");

/* CXL r3.1 Table 8-169: Updated Extent */
typedef struct __attribute__((packed)) DcdUpdatedExtentRaw {
    uint64_t start_dpa;
    uint64_t len;
    uint8_t rsvd[8];
} DcdUpdatedExtentRaw;
_Static_assert(sizeof(DcdUpdatedExtentRaw) == 0x18, "DcdUpdatedExtentRaw");

/*
 * CXL r3.1 Table 8-168: Add Dynamic Capacity Response Input, and
 * Table 8-170: Release Dynamic Capacity Input.
 */
typedef struct __attribute__((packed)) DcdUpdateExtentsIn {
    uint32_t count;
    uint8_t flags;
    uint8_t rsvd[3];
    DcdUpdatedExtentRaw extents[];
} DcdUpdateExtentsIn;
_Static_assert(sizeof(DcdUpdateExtentsIn) == 0x8, "DcdUpdateExtentsIn");

/* CXL r3.1 Table 8-43: Common Event Record Format */
typedef struct __attribute__((packed)) DcdEventHdrRaw {
    uint8_t uuid[16];
    uint8_t length;
    uint8_t flags[3];
    uint16_t handle;
    uint16_t related_handle;
    uint64_t timestamp;
    uint8_t maint_op_class;
    uint8_t rsvd[15];
} DcdEventHdrRaw;
_Static_assert(sizeof(DcdEventHdrRaw) == 0x30, "DcdEventHdrRaw");

/* CXL r3.1 Table 8-50: Dynamic Capacity Event Record */
typedef struct __attribute__((packed)) DcdDcEventRaw {
    DcdEventHdrRaw hdr;
    uint8_t type;
    uint8_t validity_flags;
    uint16_t host_id;
    uint8_t region_id;
    uint8_t flags;
    uint8_t rsvd1[2];
    DcdExtentRaw extent;
    uint8_t rsvd2[0x18];
    uint32_t extents_available;
    uint32_t tags_available;
} DcdDcEventRaw;
_Static_assert(sizeof(DcdDcEventRaw) == 0x80, "DcdDcEventRaw");

/* CXL r3.1 Table 8-53: Get Event Records Output */
typedef struct __attribute__((packed)) DcdGetEventsOut {
    uint8_t flags;
    uint8_t rsvd1;
    uint16_t overflow_count;
    uint64_t first_overflow_ts;
    uint64_t last_overflow_ts;
    uint16_t count;
    uint8_t rsvd2[10];
    DcdDcEventRaw records[];
} DcdGetEventsOut;
_Static_assert(sizeof(DcdGetEventsOut) == 0x20, "DcdGetEventsOut");

/* CXL r3.1 Table 8-54: Clear Event Records Input */
typedef struct __attribute__((packed)) DcdClearEventsIn {
    uint8_t log;
    uint8_t flags;
    uint8_t count;
    uint8_t rsvd[3];
    uint16_t handles[];
} DcdClearEventsIn;
_Static_assert(sizeof(DcdClearEventsIn) == 0x6, "DcdClearEventsIn");

/* Host order views */

typedef struct DcdExtent {
    uint64_t dpa;
    uint64_t len;
    uint8_t tag[16];
    uint16_t seq;
} DcdExtent;

typedef struct DcdRegion {
    uint64_t base;
    uint64_t decode_len;        /* in bytes */
    uint64_t len;
    uint64_t block_size;
    uint32_t dsmad_handle;
    uint8_t flags;
} DcdRegion;

#define DCD_MAX_REGIONS 8

typedef struct DcdConfig {
    uint8_t num_regions;
    uint8_t regions_returned;
    DcdRegion regions[DCD_MAX_REGIONS];
    uint32_t extents_supported;
    uint32_t extents_available;
    uint32_t tags_supported;
    uint32_t tags_available;
} DcdConfig;

typedef struct DcdEvent {
    uint16_t handle;
    uint8_t type;
    uint8_t flags;
    uint16_t host_id;
    uint8_t region;
    DcdExtent extent;
} DcdEvent;

/* The device as the agent sees it */
typedef struct Dcd {
    char bdf[256];              /* 0000:35:00.0 */
    char sysfs[512];            /* /sys/bus/pci/devices/<bdf> */
    uint8_t cfg[4096];          /* config space, as read at open */
    size_t cfg_len;
    volatile uint8_t *bar[6];   /* mapped BARs, NULL if not mapped */
    size_t bar_len[6];
    volatile uint8_t *dev_regs;     /* memory device register block */
    volatile uint8_t *comp_regs;    /* component register block */
    volatile uint8_t *status_regs;  /* Device Status (cap id 1) */
    volatile uint8_t *mbox;         /* primary mailbox (cap id 2) */
    volatile uint8_t *memdev_regs;  /* Memory Device Status (cap 0x4000) */
    size_t payload_max;
    int lock_fd;
} Dcd;

/* dcd-agent.c */
void dcd_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dcd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* device.c */
bool dcd_find(Dcd *d, const char *bdf);
bool dcd_driver(Dcd *d, char *buf, size_t size);
bool dcd_sysfs_write(const char *path, const char *val);
bool dcd_open(Dcd *d);
void dcd_close(Dcd *d);
uint16_t dcd_find_dvsec(Dcd *d, uint16_t id);
bool dcd_config_write16(Dcd *d, uint16_t off, uint16_t val);
bool dcd_mbox(Dcd *d, uint16_t opcode, const void *in, size_t in_len,
              void *out, size_t *out_len, uint16_t *rc);
const char *dcd_rc_name(uint16_t rc);
uint32_t dcd_event_status(Dcd *d);
bool dcd_get_config(Dcd *d, DcdConfig *cfg);
DcdExtent *dcd_get_extents(Dcd *d, uint32_t *n, uint32_t *generation);
void dcd_parse_extent(const DcdExtentRaw *raw, DcdExtent *ext);
uint32_t dcd_update_max(Dcd *d);
bool dcd_update_extents(Dcd *d, uint16_t opcode, const DcdExtent *exts,
                        uint32_t n, bool more, uint16_t *rc);
void dcd_format_uuid(const uint8_t *tag, char *buf);

/*
 * Register accesses: volatile so that each is one load or store of its
 * width, as the device's registers need (CXL r3.1 section 8.2).
 */
static inline uint32_t mmio_read32(volatile uint8_t *base, size_t off)
{
    return *(volatile uint32_t *)(base + off);
}

static inline uint64_t mmio_read64(volatile uint8_t *base, size_t off)
{
    return *(volatile uint64_t *)(base + off);
}

static inline void mmio_write32(volatile uint8_t *base, size_t off,
                                uint32_t val)
{
    *(volatile uint32_t *)(base + off) = val;
}

static inline void mmio_write64(volatile uint8_t *base, size_t off,
                                uint64_t val)
{
    *(volatile uint64_t *)(base + off) = val;
}

/* mem.c */
int dcd_mem_access(Dcd *d, uint64_t dpa, bool write, uint64_t val);
bool dcd_mem_release(Dcd *d);

#endif /* DCD_AGENT_H */
