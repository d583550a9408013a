/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QTest testcase for CXL Dynamic Capacity Devices: the QMP commands
 * cxl-add-dynamic-capacity and cxl-release-dynamic-capacity on a
 * cxl-type3 device with two dynamic capacity regions, answered by a
 * minimal host driver that finds the device on PCI, drives its mailbox
 * over MMIO and commits HDM decoders so that the fixed memory window
 * reaches the dynamic capacity.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qemu/uuid.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_ids.h"
#include "hw/pci/pci_regs.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qjson.h"

#define DCD_PATH "/machine/peripheral/cxl-dcd0"

/*
 * A 1 GiB volatile backend split by the device into two 512 MiB DC
 * regions with 2 MiB blocks, behind one root port of a CXL host bridge
 * (with extra options @pxb) with a fixed memory window.
 */
#define DCD_MACHINE_PXB(pxb) \
    "-machine q35,cxl=on " \
    "-object memory-backend-ram,id=dc-mem0,size=1G " \
    "-device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52" pxb " " \
    "-device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0 " \
    "-device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0," \
    "num-dc-regions=2,id=cxl-dcd0 " \
    "-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G "

#define DCD_MACHINE DCD_MACHINE_PXB("")

/*
 * The same device behind a CXL switch, as a fabric manager sees it:
 * downstream port DCD_SW_PORT leads to the device, DCD_SW_PORT_EMPTY to
 * nothing.  The switch mailbox CCI is a second function of the device
 * whose first function is the switch's upstream port.
 */
#define DCD_SW_PORT             2
#define DCD_SW_PORT_EMPTY       3

#define DCD_SWITCH_MACHINE \
    "-machine q35,cxl=on " \
    "-object memory-backend-ram,id=dc-mem0,size=1G " \
    "-device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 " \
    "-device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0 " \
    "-device cxl-upstream,id=us0,bus=rp0,addr=0.0,multifunction=on " \
    "-device cxl-switch-mailbox-cci,bus=rp0,addr=0.1,target=us0 " \
    "-device cxl-downstream,id=swport0,bus=us0,port=" \
    stringify(DCD_SW_PORT) ",chassis=0,slot=4 " \
    "-device cxl-downstream,id=swport1,bus=us0,port=" \
    stringify(DCD_SW_PORT_EMPTY) ",chassis=0,slot=5 " \
    "-device cxl-type3,bus=swport0,volatile-dc-memdev=dc-mem0," \
    "num-dc-regions=2,id=cxl-dcd0 " \
    "-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G "

#define DCD_NUM_REGIONS         2
#define DCD_REGION_LEN          (512 * MiB)
#define DCD_BLOCK_SIZE          (2 * MiB)
#define DCD_CAPACITY            (DCD_NUM_REGIONS * DCD_REGION_LEN)

/*
 * Host side constants: a driver knows these from the specifications,
 * not from QEMU's device model headers.
 */

/* Q35 MCH PCIEXBAR: place the 256 MiB ECAM window and enable it */
#define Q35_PCIEXBAR            0x60
#define Q35_PCIEXBAR_EN         0x1
#define DCD_ECAM_BASE           0xb0000000ULL

/* Config space address as libqos' PC bus takes it: bus in bits 15:8 */
#define DCD_BDF(bus, slot, fn)  (((bus) << 8) | QPCI_DEVFN(slot, fn))

/* CXL r3.1 section 8.1.12.1: class code of a CXL memory device */
#define CXL_CLASS_MEMORY_DEVICE 0x050210

/* CXL r3.1 Table 8-16: class code of a Switch Mailbox CCI */
#define CXL_CLASS_SWITCH_CCI    0x0c0b00

/* CXL r3.1 section 8.1.1: DVSEC IDs under the CXL vendor ID */
#define CXL_VENDOR_ID           0x1e98
#define CXL_DVSEC_DEVICE        0x0
#define CXL_DVSEC_REG_LOCATOR   0x8

/* CXL r3.1 section 8.1.3.2: DVSEC CXL Control */
#define CXL_DVSEC_CTRL          0x0c
#define CXL_DVSEC_CTRL_MEM_EN   BIT(2)

/* CXL r3.1 section 8.1.9: Register Locator DVSEC entries */
#define CXL_REG_LOC_FIRST       0x0c
#define CXL_REG_LOC_ENTRY_SIZE  8
#define CXL_REG_LOC_BIR(lo)     ((lo) & 0x7)
#define CXL_REG_LOC_BLOCK(lo)   (((lo) >> 8) & 0xff)
#define CXL_REG_LOC_OFFSET(lo)  ((lo) & 0xffff0000)
#define CXL_REG_BLOCK_COMPONENT 0x01
#define CXL_REG_BLOCK_MEMDEV    0x03

/* CXL r3.1 section 8.2.8.1 and 8.2.8.2: Device Capabilities Array */
#define CXL_DEV_CAP_COUNT(v)    (((v) >> 32) & 0xffff)
#define CXL_DEV_CAP_HDR(i)      (0x10 * ((i) + 1))
#define CXL_DEV_CAP_ID_STATUS   0x0001
#define CXL_DEV_CAP_ID_MBOX     0x0002
#define CXL_DEV_CAP_ID_MEMDEV   0x4000

/* CXL r3.1 section 8.2.8.3: Event Status Register */
#define CXL_DEV_EVENT_STATUS    0x00

/* CXL r3.1 section 8.2.8.5: Memory Device Status Register */
#define CXL_MEMDEV_STATUS       0x00
#define CXL_MEMDEV_MEDIA(v)     (((v) >> 2) & 0x3)
#define CXL_MEMDEV_MEDIA_READY  0x1
#define CXL_MEMDEV_MBOX_READY   BIT(4)

/* CXL r3.1 section 8.2.8.4: Mailbox Registers */
#define CXL_MBOX_CAP            0x00
#define CXL_MBOX_CTRL           0x04
#define CXL_MBOX_CMD            0x08
#define CXL_MBOX_STATUS         0x10
#define CXL_MBOX_PAYLOAD        0x20
#define CXL_MBOX_CAP_PAYLOAD(v) (1u << ((v) & 0x1f))
#define CXL_MBOX_CTRL_DOORBELL  BIT(0)
#define CXL_MBOX_CMD_LEN_SHIFT  16
#define CXL_MBOX_CMD_LEN(v)     (((v) >> CXL_MBOX_CMD_LEN_SHIFT) & 0x1fffff)
#define CXL_MBOX_STATUS_RC(v)   (((v) >> 32) & 0xffff)
#define CXL_MBOX_STATUS_BG_OP   BIT(0)
#define CXL_MBOX_BG_STATUS      0x18
#define CXL_MBOX_POLL_MAX       1000

/* CXL r3.1 Table 8-34: Command Return Codes */
#define CXL_RC_SUCCESS          0x00
#define CXL_RC_BG_STARTED       0x01
#define CXL_RC_INVALID_INPUT    0x02
#define CXL_RC_UNSUPPORTED      0x03
#define CXL_RC_INVALID_PA       0x0f
#define CXL_RC_INVALID_PL_LEN   0x16
#define CXL_RC_RESOURCES        0x1d
#define CXL_RC_INVALID_EXTENTS  0x1e

/* CXL r3.1 Table 8-37 and Table 8-126: Command Opcodes */
#define CXL_OP_GET_EVENT_RECORDS    0x0100
#define CXL_OP_GET_INT_POLICY       0x0102
#define CXL_OP_SET_INT_POLICY       0x0103
#define CXL_OP_CLEAR_EVENT_RECORDS  0x0101
#define CXL_OP_GET_SUPPORTED_LOGS   0x0400
#define CXL_OP_GET_LOG              0x0401
#define CXL_OP_IDENTIFY_MEMDEV      0x4000
#define CXL_OP_SANITIZE             0x4400
#define CXL_OP_GET_DC_CONFIG        0x4800
#define CXL_OP_GET_DC_EXTENT_LIST   0x4801
#define CXL_OP_ADD_DC_RESPONSE      0x4802
#define CXL_OP_RELEASE_DC           0x4803

/* CXL r3.1 sections 7.6.7.3.1 and 7.6.7.6: FM API Command Opcodes */
#define CXL_OP_TUNNEL_MGMT          0x5300
#define CXL_OP_FM_GET_DCD_INFO      0x5600
#define CXL_OP_FM_SET_REGION_CONFIG 0x5602
#define CXL_OP_FM_GET_DC_EXTENTS    0x5603
#define CXL_OP_FM_INITIATE_ADD      0x5604
#define CXL_OP_FM_INITIATE_RELEASE  0x5605

/* CXL r3.1 Figure 7-19: CCI Message Format fields */
#define CXL_CCI_CAT_REQ             0x0
#define CXL_CCI_CAT_RSP             0x1
#define CXL_CCI_CAT_MASK            0xf
#define CXL_CCI_PL_LEN_MASK         0x1fffff
#define CXL_CCI_PL_BO               BIT(23)

/* CXL r3.1 Table 7-37: Target Type of a tunneled command */
#define CXL_TUNNEL_TARGET_PORT_OR_LD 0x0

/* CXL r3.1 Table 7-63, 7-70 and 7-71: selection and removal policies */
#define CXL_FM_SELECT_FREE          0
#define CXL_FM_SELECT_CONTIGUOUS    1
#define CXL_FM_SELECT_PRESCRIPTIVE  2
#define CXL_FM_REMOVE_TAG_BASED     0
#define CXL_FM_REMOVE_PRESCRIPTIVE  1
#define CXL_FM_RELEASE_FORCED       BIT(4)

/* CXL r3.1 section 8.2.9.2: event logs, and their Event Status bits */
#define CXL_EVENT_LOG_DC            4
#define CXL_GET_EVENTS_OVERFLOW     BIT(0)
#define CXL_GET_EVENTS_MORE         BIT(1)
#define CXL_DC_EVENT_ADD_CAPACITY   0x00
#define CXL_DC_EVENT_RELEASE        0x01
#define CXL_DC_EVENT_FORCED_RELEASE 0x02
#define CXL_DC_EVENT_FLAG_MORE      BIT(0)
#define DCD_DRAIN_MAX               10000

/* CXL r3.1 section 8.2.4: CXL.cache and CXL.mem registers */
#define CXL_CM_OFFSET           0x1000
#define CXL_CM_CAP_ID(v)        ((v) & 0xffff)
#define CXL_CM_CAP_ID_CXL       0x1
#define CXL_CM_CAP_ID_HDM       0x5
#define CXL_CM_CAP_ARRAY_SIZE(v) (((v) >> 24) & 0xff)
#define CXL_CM_CAP_PTR(v)       (((v) >> 20) & 0xfff)

/* CXL r3.1 section 8.2.4.20: CXL HDM Decoder Capability Structure */
#define CXL_HDM_GLOBAL_CTRL     0x04
#define CXL_HDM_ENABLE          BIT(1)
#define CXL_HDM_BASE_LO(n)      (0x10 + 0x20 * (n))
#define CXL_HDM_BASE_HI(n)      (0x14 + 0x20 * (n))
#define CXL_HDM_SIZE_LO(n)      (0x18 + 0x20 * (n))
#define CXL_HDM_SIZE_HI(n)      (0x1c + 0x20 * (n))
#define CXL_HDM_CTRL(n)         (0x20 + 0x20 * (n))
/* Target List Low in ports, DPA Skip Low in devices; likewise High */
#define CXL_HDM_TL_LO(n)        (0x24 + 0x20 * (n))
#define CXL_HDM_TL_HI(n)        (0x28 + 0x20 * (n))
#define CXL_HDM_CTRL_COMMIT     BIT(9)
#define CXL_HDM_CTRL_COMMITTED  BIT(10)
#define CXL_HDM_CTRL_ERR        BIT(11)
#define CXL_HDM_CTRL_HOST_ONLY  BIT(12)
#define CXL_HDM_ALIGN           (256 * MiB)

/* CXL r3.1 Table 8-127 and 8-165: capacities are counted in 256 MiB */
#define CXL_CAPACITY_UNIT       (256 * MiB)

/* Wire formats, CXL r3.1 section 8.2.9 */

/*
 * CXL r3.1 Table 8-127: Identify Memory Device Output Payload.
 * All fields little endian.
 */
typedef struct DcdIdentifyOut {
    char fw_revision[16];
    uint64_t total_capacity;
    uint64_t volatile_capacity;
    uint64_t persistent_capacity;
    uint64_t partition_align;
    uint16_t info_event_log_size;
    uint16_t warning_event_log_size;
    uint16_t failure_event_log_size;
    uint16_t fatal_event_log_size;
    uint32_t lsa_size;
    uint8_t poison_list_max_mer[3];
    uint16_t inject_poison_limit;
    uint8_t poison_caps;
    uint8_t qos_telemetry_caps;
    uint16_t dc_event_log_size;
} QEMU_PACKED DcdIdentifyOut;
QEMU_BUILD_BUG_ON(sizeof(DcdIdentifyOut) != 0x45);

/*
 * CXL r3.1 Table 8-163: Get Dynamic Capacity Configuration Input.
 * All fields little endian.
 */
typedef struct DcdGetConfigIn {
    uint8_t region_count;
    uint8_t start_region;
} QEMU_PACKED DcdGetConfigIn;
QEMU_BUILD_BUG_ON(sizeof(DcdGetConfigIn) != 0x2);

/*
 * CXL r3.1 Table 8-165: DC Region Configuration.
 * All fields little endian.
 */
typedef struct DcdRegionRaw {
    uint64_t base;
    uint64_t decode_len;        /* in units of 256 MiB */
    uint64_t len;
    uint64_t block_size;
    uint32_t dsmad_handle;
    uint8_t flags;
    uint8_t rsvd[3];
} QEMU_PACKED DcdRegionRaw;
QEMU_BUILD_BUG_ON(sizeof(DcdRegionRaw) != 0x28);

/*
 * CXL r3.1 Table 8-164: Get Dynamic Capacity Configuration Output,
 * whose region list is followed by DcdGetConfigTail.
 * All fields little endian.
 */
typedef struct DcdGetConfigOut {
    uint8_t num_regions;
    uint8_t regions_returned;
    uint8_t rsvd[6];
    DcdRegionRaw regions[];
} QEMU_PACKED DcdGetConfigOut;
QEMU_BUILD_BUG_ON(sizeof(DcdGetConfigOut) != 0x8);

/*
 * CXL r3.1 Table 8-164, after the region list.
 * All fields little endian.
 */
typedef struct DcdGetConfigTail {
    uint32_t extents_supported;
    uint32_t extents_available;
    uint32_t tags_supported;
    uint32_t tags_available;
} QEMU_PACKED DcdGetConfigTail;
QEMU_BUILD_BUG_ON(sizeof(DcdGetConfigTail) != 0x10);

/*
 * CXL r3.1 Table 8-51: Dynamic Capacity Extent.
 * All fields little endian.
 */
typedef struct DcdExtentRaw {
    uint64_t start_dpa;
    uint64_t len;
    uint8_t tag[16];
    uint16_t shared_seq;
    uint8_t rsvd[6];
} QEMU_PACKED DcdExtentRaw;
QEMU_BUILD_BUG_ON(sizeof(DcdExtentRaw) != 0x28);

/*
 * CXL r3.1 Table 8-166: Get DC Extent List Input.
 * All fields little endian.
 */
typedef struct DcdGetExtentsIn {
    uint32_t count;
    uint32_t start_index;
} QEMU_PACKED DcdGetExtentsIn;
QEMU_BUILD_BUG_ON(sizeof(DcdGetExtentsIn) != 0x8);

/*
 * CXL r3.1 Table 8-167: Get DC Extent List Output.
 * All fields little endian.
 */
typedef struct DcdGetExtentsOut {
    uint32_t count;
    uint32_t total;
    uint32_t generation;
    uint8_t rsvd[4];
    DcdExtentRaw extents[];
} QEMU_PACKED DcdGetExtentsOut;
QEMU_BUILD_BUG_ON(sizeof(DcdGetExtentsOut) != 0x10);

/*
 * CXL r3.1 Table 8-169: Updated Extent.
 * All fields little endian.
 */
typedef struct DcdUpdatedExtentRaw {
    uint64_t start_dpa;
    uint64_t len;
    uint8_t rsvd[8];
} QEMU_PACKED DcdUpdatedExtentRaw;
QEMU_BUILD_BUG_ON(sizeof(DcdUpdatedExtentRaw) != 0x18);

/*
 * CXL r3.1 Table 8-168: Add Dynamic Capacity Response Input, and
 * Table 8-170: Release Dynamic Capacity Input.
 * All fields little endian.
 */
typedef struct DcdUpdateExtentsIn {
    uint32_t count;
    uint8_t flags;
    uint8_t rsvd[3];
    DcdUpdatedExtentRaw extents[];
} QEMU_PACKED DcdUpdateExtentsIn;
QEMU_BUILD_BUG_ON(sizeof(DcdUpdateExtentsIn) != 0x8);

/*
 * CXL r3.1 Table 8-43: Common Event Record Format.
 * All fields little endian.
 */
typedef struct DcdEventHdrRaw {
    uint8_t uuid[16];
    uint8_t length;
    uint8_t flags[3];
    uint16_t handle;
    uint16_t related_handle;
    uint64_t timestamp;
    uint8_t maint_op_class;
    uint8_t rsvd[15];
} QEMU_PACKED DcdEventHdrRaw;
QEMU_BUILD_BUG_ON(sizeof(DcdEventHdrRaw) != 0x30);

/*
 * CXL r3.1 Table 8-43: an event record of any log.
 * All fields little endian.
 */
typedef struct DcdEventRaw {
    DcdEventHdrRaw hdr;
    uint8_t data[0x50];
} QEMU_PACKED DcdEventRaw;
QEMU_BUILD_BUG_ON(sizeof(DcdEventRaw) != 0x80);

/*
 * CXL r3.1 Table 8-50: Dynamic Capacity Event Record.
 * All fields little endian.
 */
typedef struct DcdDcEventRaw {
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
} QEMU_PACKED DcdDcEventRaw;
QEMU_BUILD_BUG_ON(sizeof(DcdDcEventRaw) != sizeof(DcdEventRaw));

/*
 * CXL r3.1 Table 8-52: Get Event Records Input.
 * All fields little endian.
 */
typedef struct DcdGetEventsIn {
    uint8_t log;
} QEMU_PACKED DcdGetEventsIn;
QEMU_BUILD_BUG_ON(sizeof(DcdGetEventsIn) != 0x1);

/*
 * CXL r3.1 Table 8-53: Get Event Records Output.
 * All fields little endian.
 */
typedef struct DcdGetEventsOut {
    uint8_t flags;
    uint8_t rsvd1;
    uint16_t overflow_count;
    uint64_t first_overflow_ts;
    uint64_t last_overflow_ts;
    uint16_t count;
    uint8_t rsvd2[10];
    DcdEventRaw records[];
} QEMU_PACKED DcdGetEventsOut;
QEMU_BUILD_BUG_ON(sizeof(DcdGetEventsOut) != 0x20);

/*
 * CXL r3.1 Table 8-54: Clear Event Records Input.
 * All fields little endian.
 */
typedef struct DcdClearEventsIn {
    uint8_t log;
    uint8_t flags;
    uint8_t count;
    uint8_t rsvd[3];
    uint16_t handles[];
} QEMU_PACKED DcdClearEventsIn;
QEMU_BUILD_BUG_ON(sizeof(DcdClearEventsIn) != 0x6);

/*
 * CXL r3.1 Figure 7-19: CCI Message Format, up to the payload.
 * All fields little endian.
 */
typedef struct DcdCciMsgHdr {
    uint8_t category;
    uint8_t tag;
    uint8_t rsvd;
    uint8_t command;
    uint8_t command_set;
    uint8_t pl_length[3];       /* bits 20:0 length, bit 23 BO */
    uint16_t rc;
    uint16_t vendor_status;
} QEMU_PACKED DcdCciMsgHdr;
QEMU_BUILD_BUG_ON(sizeof(DcdCciMsgHdr) != 0xc);

/*
 * CXL r3.1 Table 7-37: Tunnel Management Command Request Payload,
 * whose Command Size counts the CCI message with its payload.
 * All fields little endian.
 */
typedef struct DcdTunnelIn {
    uint8_t port_or_ld;
    uint8_t target_type;
    uint16_t size;
    DcdCciMsgHdr msg;
    uint8_t payload[];
} QEMU_PACKED DcdTunnelIn;
QEMU_BUILD_BUG_ON(sizeof(DcdTunnelIn) != 0x10);

/*
 * CXL r3.1 Table 7-38: Tunnel Management Command Response Payload.
 * All fields little endian.
 */
typedef struct DcdTunnelOut {
    uint16_t len;
    uint8_t rsvd[2];
    DcdCciMsgHdr msg;
    uint8_t payload[];
} QEMU_PACKED DcdTunnelOut;
QEMU_BUILD_BUG_ON(sizeof(DcdTunnelOut) != 0x10);

/*
 * CXL r3.1 Table 7-63: Get DCD Info Response Payload.
 * All fields little endian.
 */
typedef struct DcdFmInfoOut {
    uint8_t num_hosts;
    uint8_t num_regions;
    uint8_t rsvd1[2];
    uint16_t add_policies;
    uint8_t rsvd2[2];
    uint16_t removal_policies;
    uint8_t sanitize_mask;
    uint8_t rsvd3;
    uint64_t total_capacity;    /* in units of 256 MiB */
    uint64_t block_sizes[8];    /* per region: bit n set, 2^n supported */
} QEMU_PACKED DcdFmInfoOut;
QEMU_BUILD_BUG_ON(sizeof(DcdFmInfoOut) != 0x54);

/*
 * CXL r3.1 Table 7-68: Get DC Region Extent Lists Request Payload.
 * All fields little endian.
 */
typedef struct DcdFmGetExtentsIn {
    uint16_t host_id;
    uint8_t rsvd[2];
    uint32_t count;
    uint32_t start_index;
} QEMU_PACKED DcdFmGetExtentsIn;
QEMU_BUILD_BUG_ON(sizeof(DcdFmGetExtentsIn) != 0xc);

/*
 * CXL r3.1 Table 7-69: Get DC Region Extent Lists Response Payload.
 * All fields little endian.
 */
typedef struct DcdFmGetExtentsOut {
    uint16_t host_id;
    uint8_t rsvd1[2];
    uint32_t start_index;
    uint32_t count;
    uint32_t total;
    uint32_t generation;
    uint8_t rsvd2[4];
    DcdExtentRaw extents[];
} QEMU_PACKED DcdFmGetExtentsOut;
QEMU_BUILD_BUG_ON(sizeof(DcdFmGetExtentsOut) != 0x18);

/*
 * CXL r3.1 Table 7-70: Initiate Dynamic Capacity Add Request Payload,
 * and Table 7-71: Initiate Dynamic Capacity Release Request Payload.
 * All fields little endian.
 */
typedef struct DcdFmInitiateIn {
    uint16_t host_id;
    uint8_t policy;             /* add: selection policy; release: flags */
    uint8_t region;
    uint64_t len;
    uint8_t tag[16];
    uint32_t count;
    DcdExtentRaw extents[];
} QEMU_PACKED DcdFmInitiateIn;
QEMU_BUILD_BUG_ON(sizeof(DcdFmInitiateIn) != 0x20);

/* CXL r3.1 section 8.2.9.2.1.6: UUID of Dynamic Capacity Event Records */
static const uint8_t dcd_dc_event_uuid[16] = {
    0xca, 0x95, 0xaf, 0xa7, 0xf1, 0x83, 0x40, 0x18,
    0x8c, 0x2f, 0x95, 0x26, 0x8e, 0x10, 0x1a, 0x2a,
};

/* Host order views of what the device reports */

typedef struct DcdExtent {
    uint64_t dpa;
    uint64_t len;
    uint8_t tag[16];
    uint16_t shared_seq;
} DcdExtent;

typedef struct DcdRegion {
    uint64_t base;
    uint64_t decode_len;        /* in bytes */
    uint64_t len;
    uint64_t block_size;
    uint32_t dsmad_handle;
    uint8_t flags;
} DcdRegion;

typedef struct DcdConfig {
    uint8_t num_regions;
    uint8_t regions_returned;
    DcdRegion regions[8];
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
    uint32_t extents_available;
} DcdEvent;

/* A mailbox, CXL r3.1 section 8.2.8.4: its registers and payload size */
typedef struct DcdMbox {
    QTestState *qts;
    uint64_t regs;
    size_t payload_max;
} DcdMbox;

/*
 * The host driver's view of one DCD: where its registers and its HPA
 * range are. Everything is found from the host side: PCI enumeration,
 * the Register Locator DVSEC, capability arrays and the memory map.
 * Behind a switch, the driver also reaches the switch mailbox CCI, as a
 * fabric manager running on the host would.
 */
typedef struct Dcd {
    QTestState *qts;
    QPCIBus *bus;
    GPtrArray *bridges;         /* every bridge found, owned */
    GPtrArray *ports;           /* root port, then switch ports, above dev */
    QPCIDevice *dev;            /* the CXL memory device */
    QPCIDevice *swcci;          /* the switch mailbox CCI, if any */
    uint64_t ecam;              /* ECAM base, for extended config space */
    uint64_t comp_regs;         /* device component registers */
    uint64_t dev_regs;          /* device registers */
    uint64_t status_regs;       /* Device Status registers */
    DcdMbox mbox;               /* primary mailbox */
    uint64_t memdev_regs;       /* Memory Device Status registers */
    DcdMbox fm;                 /* switch mailbox CCI's mailbox */
    uint8_t fm_tag;             /* tag of the next tunneled message */
    uint64_t dev_mmio;          /* where the device's BARs start */
    uint64_t hb_comp_regs;      /* host bridge component registers */
    uint64_t fmw_base;          /* fixed memory window HPA range */
    uint64_t fmw_size;
} Dcd;

static QTestState *dcd_start(void)
{
    return qtest_init(DCD_MACHINE);
}

/* PCI */

static uint64_t dcd_ecam_addr(Dcd *d, QPCIDevice *pdev, uint16_t off)
{
    g_assert_cmpuint(off, <, PCI_CFG_SPACE_EXP_SIZE);
    return d->ecam + ((uint64_t)pdev->devfn << 12) + off;
}

static uint32_t dcd_ext_readl(Dcd *d, QPCIDevice *pdev, uint16_t off)
{
    return qtest_readl(d->qts, dcd_ecam_addr(d, pdev, off));
}

static void dcd_ext_writew(Dcd *d, QPCIDevice *pdev, uint16_t off,
                           uint16_t val)
{
    qtest_writew(d->qts, dcd_ecam_addr(d, pdev, off), val);
}

/*
 * The CXL DVSECs live in extended config space, which port 0xcf8 does
 * not reach: enable the Q35 ECAM window (firmware's job on real hosts).
 */
static void dcd_enable_ecam(Dcd *d)
{
    QPCIDevice *mch = qpci_device_find(d->bus, DCD_BDF(0, 0, 0));

    g_assert(mch);
    qpci_config_writel(mch, Q35_PCIEXBAR + 4, DCD_ECAM_BASE >> 32);
    qpci_config_writel(mch, Q35_PCIEXBAR, DCD_ECAM_BASE | Q35_PCIEXBAR_EN);
    d->ecam = DCD_ECAM_BASE;
    g_assert_cmphex(dcd_ext_readl(d, mch, PCI_VENDOR_ID), ==,
                    qpci_config_readl(mch, PCI_VENDOR_ID));
    g_free(mch);
}

static void dcd_scan_bus(Dcd *d, int bus, int *next_bus, GPtrArray *path);

/*
 * Give @bridge on @bus the next free bus number and scan the buses
 * behind it; @path holds the bridges above @bus.
 */
static void dcd_scan_bridge(Dcd *d, QPCIDevice *bridge, int bus,
                            int *next_bus, GPtrArray *path)
{
    int sec = (*next_bus)++;

    /* dcd_probe() runs once: nothing numbered the bridge before */
    g_assert_cmpint(qpci_config_readb(bridge, PCI_SECONDARY_BUS), ==, 0);
    g_assert_cmpint(sec, <, 256);
    qpci_config_writeb(bridge, PCI_PRIMARY_BUS, bus);
    qpci_config_writeb(bridge, PCI_SECONDARY_BUS, sec);
    /* Pass every number on until the buses behind it are counted */
    qpci_config_writeb(bridge, PCI_SUBORDINATE_BUS, 0xff);
    g_ptr_array_add(path, bridge);
    dcd_scan_bus(d, sec, next_bus, path);
    g_ptr_array_remove_index(path, path->len - 1);
    qpci_config_writeb(bridge, PCI_SUBORDINATE_BUS, *next_bus - 1);
}

/*
 * Scan @bus and, depth first, the buses behind its bridges, which get
 * bus numbers from *@next_bus on, as firmware numbers them.  Note the
 * CXL memory device with the bridges above it, and the switch mailbox
 * CCI.
 */
static void dcd_scan_bus(Dcd *d, int bus, int *next_bus, GPtrArray *path)
{
    int slot, fn;

    for (slot = 0; slot < 32; slot++) {
        for (fn = 0; fn < 8; fn++) {
            QPCIDevice *pdev = qpci_device_find(d->bus,
                                                DCD_BDF(bus, slot, fn));
            uint32_t class;
            uint8_t hdr;

            if (!pdev) {
                if (!fn) {
                    break;
                }
                continue;
            }
            hdr = qpci_config_readb(pdev, PCI_HEADER_TYPE);
            class = qpci_config_readl(pdev, PCI_CLASS_REVISION) >> 8;
            if (class == CXL_CLASS_MEMORY_DEVICE && !d->dev) {
                d->dev = pdev;
                d->ports = g_ptr_array_copy(path, NULL, NULL);
            } else if (class == CXL_CLASS_SWITCH_CCI && !d->swcci) {
                d->swcci = pdev;
            } else if ((hdr & PCI_HEADER_TYPE_MASK) ==
                       PCI_HEADER_TYPE_BRIDGE) {
                g_ptr_array_add(d->bridges, pdev);
                dcd_scan_bridge(d, pdev, bus, next_bus, path);
            } else {
                g_free(pdev);
            }
            if (!fn && !(hdr & PCI_HEADER_TYPE_MFD)) {
                break;
            }
        }
    }
}

/*
 * Scan every root bus for the CXL memory device, as firmware does to
 * find the buses of expander host bridges, numbering the buses behind
 * the bridges it meets.
 */
static void dcd_enumerate(Dcd *d)
{
    g_autoptr(GPtrArray) path = g_ptr_array_new();
    int next_bus = 1;
    int bus;

    d->bridges = g_ptr_array_new_with_free_func(g_free);
    for (bus = 0; bus < 256 && !d->dev; bus = MAX(bus + 1, next_bus)) {
        next_bus = MAX(next_bus, bus + 1);
        dcd_scan_bus(d, bus, &next_bus, path);
    }
    g_assert(d->dev);
    g_assert_cmpuint(d->ports->len, >, 0);
}

static uint16_t dcd_find_dvsec(Dcd *d, QPCIDevice *pdev, uint16_t id)
{
    uint16_t off = PCI_CFG_SPACE_SIZE;
    int n;

    for (n = 0; off && n < PCI_CFG_SPACE_EXP_SIZE / 4; n++) {
        uint32_t hdr = dcd_ext_readl(d, pdev, off);

        if (PCI_EXT_CAP_ID(hdr) == PCI_EXT_CAP_ID_DVSEC &&
            PCI_DVSEC_HEADER1_VID(dcd_ext_readl(d, pdev,
                                  off + PCI_DVSEC_HEADER1)) == CXL_VENDOR_ID &&
            PCI_DVSEC_HEADER2_ID(dcd_ext_readl(d, pdev,
                                 off + PCI_DVSEC_HEADER2)) == id) {
            return off;
        }
        off = PCI_EXT_CAP_NEXT(hdr);
    }
    return 0;
}

/*
 * Assign the BARs the Register Locator DVSEC of @pdev names (CXL r3.1
 * section 8.1.9) and return where its component and device register
 * blocks are; 0 for one it does not have.
 */
static void dcd_map_register_blocks(Dcd *d, QPCIDevice *pdev,
                                    uint64_t *comp_regs, uint64_t *dev_regs)
{
    uint16_t loc = dcd_find_dvsec(d, pdev, CXL_DVSEC_REG_LOCATOR);
    uint64_t bars[6] = { 0 };
    uint32_t len;
    uint16_t off;

    g_assert(loc);
    *comp_regs = 0;
    *dev_regs = 0;
    len = dcd_ext_readl(d, pdev, loc + PCI_DVSEC_HEADER1) >> 20;
    for (off = CXL_REG_LOC_FIRST; off + CXL_REG_LOC_ENTRY_SIZE <= len;
         off += CXL_REG_LOC_ENTRY_SIZE) {
        uint32_t lo = dcd_ext_readl(d, pdev, loc + off);
        uint32_t hi = dcd_ext_readl(d, pdev, loc + off + 4);
        uint8_t bir = CXL_REG_LOC_BIR(lo);
        uint64_t addr;

        if (!CXL_REG_LOC_BLOCK(lo)) {
            continue;
        }
        g_assert_cmpuint(bir, <, ARRAY_SIZE(bars));
        if (!bars[bir]) {
            bars[bir] = qpci_iomap(pdev, bir, NULL).addr;
        }
        addr = bars[bir] + ((uint64_t)hi << 32) + CXL_REG_LOC_OFFSET(lo);
        switch (CXL_REG_LOC_BLOCK(lo)) {
        case CXL_REG_BLOCK_COMPONENT:
            *comp_regs = addr;
            break;
        case CXL_REG_BLOCK_MEMDEV:
            *dev_regs = addr;
            break;
        default:
            break;
        }
    }
}

/*
 * CXL r3.1 section 8.2.8.2: the registers of capability @id in the
 * device register block at @dev_regs, or 0 if there are none.
 */
static uint64_t dcd_find_device_cap(Dcd *d, uint64_t dev_regs, uint16_t id)
{
    uint64_t hdr_reg = qtest_readq(d->qts, dev_regs);
    uint32_t i;

    g_assert_cmphex(hdr_reg & 0xffff, ==, 0);
    for (i = 0; i < CXL_DEV_CAP_COUNT(hdr_reg); i++) {
        uint64_t hdr = dev_regs + CXL_DEV_CAP_HDR(i);

        if ((qtest_readl(d->qts, hdr) & 0xffff) == id) {
            return dev_regs + qtest_readl(d->qts, hdr + 4);
        }
    }
    return 0;
}

static void dcd_mbox_init(DcdMbox *mb, QTestState *qts, uint64_t regs)
{
    g_assert(regs);
    mb->qts = qts;
    mb->regs = regs;
    mb->payload_max = CXL_MBOX_CAP_PAYLOAD(qtest_readl(qts,
                                                       regs + CXL_MBOX_CAP));
    g_assert_cmpuint(mb->payload_max, >=, 256);
}

/* Find the device capabilities the driver uses */
static void dcd_find_device_caps(Dcd *d)
{
    d->status_regs = dcd_find_device_cap(d, d->dev_regs,
                                         CXL_DEV_CAP_ID_STATUS);
    d->memdev_regs = dcd_find_device_cap(d, d->dev_regs,
                                         CXL_DEV_CAP_ID_MEMDEV);
    g_assert(d->status_regs);
    g_assert(d->memdev_regs);
}

/*
 * Open the non-prefetchable window of @port, a root or switch port,
 * over [@start, @end), keep its other windows closed, and let it
 * forward.
 */
static void dcd_open_port(QPCIDevice *port, uint64_t start, uint64_t end)
{
    uint64_t base = QEMU_ALIGN_DOWN(start, MiB);
    uint64_t limit = QEMU_ALIGN_UP(end, MiB) - 1;

    g_assert_cmphex(limit, <, 4 * GiB);
    qpci_config_writew(port, PCI_MEMORY_BASE, base >> 16);
    qpci_config_writew(port, PCI_MEMORY_LIMIT, limit >> 16);
    qpci_config_writew(port, PCI_PREF_MEMORY_BASE, 0xfff0);
    qpci_config_writew(port, PCI_PREF_MEMORY_LIMIT, 0);
    qpci_config_writel(port, PCI_PREF_BASE_UPPER32, 0);
    qpci_config_writel(port, PCI_PREF_LIMIT_UPPER32, 0);
    qpci_config_writeb(port, PCI_IO_BASE, 0xf0);
    qpci_config_writeb(port, PCI_IO_LIMIT, 0);
    qpci_config_writew(port, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* The root port above the device */
static QPCIDevice *dcd_root_port(Dcd *d)
{
    return g_ptr_array_index(d->ports, 0);
}

/*
 * qtest has no firmware to describe the platform: read where the
 * machine placed the fixed memory window and the host bridge's
 * component registers (ACPI CEDT CFMWS and CHBS on a real host).
 */
static uint64_t dcd_mtree_find(Dcd *d, const char *name, uint64_t *size)
{
    g_autofree char *mtree = qtest_hmp(d->qts, "info mtree");
    g_autofree char *suffix = g_strdup_printf("): %s", name);
    g_auto(GStrv) lines = g_strsplit(mtree, "\n", -1);
    int i;

    for (i = 0; lines[i]; i++) {
        uint64_t start, last;

        if (g_str_has_suffix(g_strchomp(lines[i]), suffix) &&
            sscanf(lines[i], " %" SCNx64 "-%" SCNx64, &start, &last) == 2) {
            if (size) {
                *size = last - start + 1;
            }
            return start;
        }
    }
    g_error("no memory region '%s' in the memory tree", name);
}

/*
 * Enable the device, whose BARs are assigned, let it decode HDM and
 * find its mailbox.
 */
static void dcd_device_up(Dcd *d)
{
    uint16_t dvsec;
    uint64_t sts;

    qpci_device_enable(d->dev);
    dcd_find_device_caps(d);

    /* CXL r3.1 section 8.1.3.2: let the device decode HDM */
    dvsec = dcd_find_dvsec(d, d->dev, CXL_DVSEC_DEVICE);
    g_assert(dvsec);
    dcd_ext_writew(d, d->dev, dvsec + CXL_DVSEC_CTRL,
                   (dcd_ext_readl(d, d->dev, dvsec + CXL_DVSEC_CTRL) &
                    0xffff) | CXL_DVSEC_CTRL_MEM_EN);

    sts = qtest_readq(d->qts, d->memdev_regs + CXL_MEMDEV_STATUS);
    g_assert(sts & CXL_MEMDEV_MBOX_READY);
    g_assert_cmpuint(CXL_MEMDEV_MEDIA(sts), ==, CXL_MEMDEV_MEDIA_READY);
    dcd_mbox_init(&d->mbox, d->qts,
                  dcd_find_device_cap(d, d->dev_regs, CXL_DEV_CAP_ID_MBOX));
}

/*
 * Bring the device up as a host driver would, on a started machine,
 * and the switch mailbox CCI if there is one.  The root port forwards
 * all BARs; the switch ports, below the CCI, only the device's.
 */
static Dcd *dcd_probe(QTestState *qts)
{
    Dcd *d = g_new0(Dcd, 1);
    uint64_t mmio_start, dev_start;
    uint64_t sw_comp_regs, sw_dev_regs = 0;
    guint i;

    d->qts = qts;
    d->bus = qpci_new_pc(qts, NULL);
    dcd_enable_ecam(d);
    dcd_enumerate(d);

    mmio_start = d->bus->mmio_alloc_ptr;
    if (d->swcci) {
        /* CXL r3.1 section 7.2.9: the mailbox is in device registers */
        dcd_map_register_blocks(d, d->swcci, &sw_comp_regs, &sw_dev_regs);
        g_assert(sw_dev_regs);
        d->bus->mmio_alloc_ptr = QEMU_ALIGN_UP(d->bus->mmio_alloc_ptr, MiB);
    }
    dev_start = d->bus->mmio_alloc_ptr;
    d->dev_mmio = dev_start;
    dcd_map_register_blocks(d, d->dev, &d->comp_regs, &d->dev_regs);
    g_assert(d->comp_regs);
    g_assert(d->dev_regs);
    dcd_open_port(dcd_root_port(d), mmio_start, d->bus->mmio_alloc_ptr);
    for (i = 1; i < d->ports->len; i++) {
        dcd_open_port(g_ptr_array_index(d->ports, i), dev_start,
                      d->bus->mmio_alloc_ptr);
    }
    if (d->swcci) {
        qpci_device_enable(d->swcci);
        dcd_mbox_init(&d->fm, qts, dcd_find_device_cap(d, sw_dev_regs,
                                                       CXL_DEV_CAP_ID_MBOX));
    }
    dcd_device_up(d);

    d->hb_comp_regs = dcd_mtree_find(d, "pxb-cxl-host", NULL);
    d->fmw_base = dcd_mtree_find(d, "cxl-fixed-memory-region", &d->fmw_size);
    return d;
}

static void dcd_free(Dcd *d)
{
    g_free(d->dev);
    g_free(d->swcci);
    g_ptr_array_unref(d->ports);
    g_ptr_array_unref(d->bridges);
    qpci_free_pc(d->bus);
    g_free(d);
}

static Dcd *dcd_boot(void)
{
    return dcd_probe(dcd_start());
}

static void dcd_quit(Dcd *d)
{
    QTestState *qts = d->qts;

    dcd_free(d);
    qtest_quit(qts);
}

/* Mailbox, CXL r3.1 section 8.2.8.4 */

static void dcd_mbox_wait_idle(DcdMbox *mb)
{
    int i;

    for (i = 0; i < CXL_MBOX_POLL_MAX; i++) {
        if (!(qtest_readl(mb->qts, mb->regs + CXL_MBOX_CTRL) &
              CXL_MBOX_CTRL_DOORBELL)) {
            return;
        }
    }
    g_error("mailbox doorbell still set after %d polls", i);
}

/*
 * Run one command on mailbox @mb and return its CXL return code. @out
 * may be NULL to discard the output payload; otherwise *@out_len is the
 * size of @out on entry and the output payload length on return.
 */
static uint16_t dcd_mbox_run(DcdMbox *mb, uint16_t opcode, const void *in,
                             size_t in_len, void *out, size_t *out_len)
{
    uint64_t cmd;
    size_t len;
    uint16_t rc;

    g_assert_cmpuint(in_len, <=, mb->payload_max);
    g_assert(!out == !out_len);

    dcd_mbox_wait_idle(mb);
    if (in_len) {
        qtest_memwrite(mb->qts, mb->regs + CXL_MBOX_PAYLOAD, in, in_len);
    }
    qtest_writeq(mb->qts, mb->regs + CXL_MBOX_CMD,
                 opcode | (uint64_t)in_len << CXL_MBOX_CMD_LEN_SHIFT);
    qtest_writel(mb->qts, mb->regs + CXL_MBOX_CTRL, CXL_MBOX_CTRL_DOORBELL);
    dcd_mbox_wait_idle(mb);

    rc = CXL_MBOX_STATUS_RC(qtest_readq(mb->qts,
                                        mb->regs + CXL_MBOX_STATUS));
    cmd = qtest_readq(mb->qts, mb->regs + CXL_MBOX_CMD);
    len = CXL_MBOX_CMD_LEN(cmd);
    g_assert_cmpuint(len, <=, mb->payload_max);
    if (out) {
        g_assert_cmpuint(len, <=, *out_len);
        if (len) {
            qtest_memread(mb->qts, mb->regs + CXL_MBOX_PAYLOAD, out, len);
        }
        *out_len = len;
    }
    return rc;
}

/* A command on the device's primary mailbox, as dcd_mbox_run() */
static uint16_t dcd_mbox(Dcd *d, uint16_t opcode, const void *in,
                         size_t in_len, void *out, size_t *out_len)
{
    return dcd_mbox_run(&d->mbox, opcode, in, in_len, out, out_len);
}

static uint16_t dcd_identify(Dcd *d, DcdIdentifyOut *id)
{
    size_t len = sizeof(*id);
    uint16_t rc;

    memset(id, 0, sizeof(*id));
    rc = dcd_mbox(d, CXL_OP_IDENTIFY_MEMDEV, NULL, 0, id, &len);
    if (rc == CXL_RC_SUCCESS) {
        g_assert_cmpuint(len, ==, sizeof(*id));
    }
    return rc;
}

static uint16_t dcd_get_dc_config(Dcd *d, DcdConfig *cfg)
{
    DcdGetConfigIn in = {
        .region_count = ARRAY_SIZE(cfg->regions),
        .start_region = 0,
    };
    g_autofree uint8_t *buf = g_malloc0(d->mbox.payload_max);
    DcdGetConfigOut *out = (DcdGetConfigOut *)buf;
    DcdGetConfigTail *tail;
    size_t len = d->mbox.payload_max;
    uint16_t rc;
    int i;

    memset(cfg, 0, sizeof(*cfg));
    rc = dcd_mbox(d, CXL_OP_GET_DC_CONFIG, &in, sizeof(in), buf, &len);
    if (rc != CXL_RC_SUCCESS) {
        return rc;
    }
    g_assert_cmpuint(out->regions_returned, <=, ARRAY_SIZE(cfg->regions));
    g_assert_cmpuint(len, ==, sizeof(*out) + sizeof(*tail) +
                     out->regions_returned * sizeof(out->regions[0]));

    cfg->num_regions = out->num_regions;
    cfg->regions_returned = out->regions_returned;
    for (i = 0; i < out->regions_returned; i++) {
        DcdRegionRaw *raw = &out->regions[i];

        cfg->regions[i] = (DcdRegion) {
            .base = ldq_le_p(&raw->base),
            .decode_len = ldq_le_p(&raw->decode_len) * CXL_CAPACITY_UNIT,
            .len = ldq_le_p(&raw->len),
            .block_size = ldq_le_p(&raw->block_size),
            .dsmad_handle = ldl_le_p(&raw->dsmad_handle),
            .flags = raw->flags,
        };
    }
    tail = (DcdGetConfigTail *)&out->regions[out->regions_returned];
    cfg->extents_supported = ldl_le_p(&tail->extents_supported);
    cfg->extents_available = ldl_le_p(&tail->extents_available);
    cfg->tags_supported = ldl_le_p(&tail->tags_supported);
    cfg->tags_available = ldl_le_p(&tail->tags_available);
    return rc;
}

static void dcd_parse_extent(const DcdExtentRaw *raw, DcdExtent *ext)
{
    ext->dpa = ldq_le_p(&raw->start_dpa);
    ext->len = ldq_le_p(&raw->len);
    memcpy(ext->tag, raw->tag, sizeof(ext->tag));
    ext->shared_seq = lduw_le_p(&raw->shared_seq);
}

/* Append @n extents of a wire list to @extents (of DcdExtent) */
static void dcd_append_extents(GArray *extents, const DcdExtentRaw *raw,
                               uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        DcdExtent ext;

        dcd_parse_extent(&raw[i], &ext);
        g_array_append_val(extents, ext);
    }
}

/*
 * One Get Dynamic Capacity Extent List call: append up to @count
 * extents from index @start to @extents.
 */
static uint16_t dcd_get_extent_list(Dcd *d, uint32_t start, uint32_t count,
                                    GArray *extents, uint32_t *total,
                                    uint32_t *generation)
{
    DcdGetExtentsIn in;
    g_autofree uint8_t *buf = g_malloc0(d->mbox.payload_max);
    DcdGetExtentsOut *out = (DcdGetExtentsOut *)buf;
    size_t len = d->mbox.payload_max;
    uint32_t n;
    uint16_t rc;

    stl_le_p(&in.count, count);
    stl_le_p(&in.start_index, start);
    rc = dcd_mbox(d, CXL_OP_GET_DC_EXTENT_LIST, &in, sizeof(in), buf, &len);
    if (rc != CXL_RC_SUCCESS) {
        return rc;
    }
    g_assert_cmpuint(len, >=, sizeof(*out));
    n = ldl_le_p(&out->count);
    g_assert_cmpuint(n, <=, count);
    g_assert_cmpuint(len, ==, sizeof(*out) + n * sizeof(out->extents[0]));
    *total = ldl_le_p(&out->total);
    *generation = ldl_le_p(&out->generation);
    g_assert_cmpuint(n, <=, *total - MIN(start, *total));

    dcd_append_extents(extents, out->extents, n);
    return rc;
}

/* One call of a command that reads the extent list */
typedef uint16_t (*DcdGetExtentListFn)(Dcd *d, uint32_t start, uint32_t count,
                                       GArray *extents, uint32_t *total,
                                       uint32_t *generation);

/*
 * The device's whole accepted extent list, read with @get @page extents
 * at a time, and its generation number in *@generation.
 */
static GArray *dcd_read_extents(Dcd *d, DcdGetExtentListFn get,
                                uint32_t page, uint32_t *generation)
{
    GArray *extents = g_array_new(false, true, sizeof(DcdExtent));
    uint32_t total = 0, gen = 0;
    uint32_t first_total = 0, first_gen = 0;
    int calls = 0;

    do {
        uint32_t start = extents->len;

        g_assert_cmphex(get(d, start, page, extents, &total, &gen),
                        ==, CXL_RC_SUCCESS);
        if (!calls++) {
            first_total = total;
            first_gen = gen;
        }
        /* Nothing changes the list while it is read */
        g_assert_cmpuint(total, ==, first_total);
        g_assert_cmpuint(gen, ==, first_gen);
        g_assert(extents->len > start || extents->len == total);
    } while (extents->len < total);
    if (generation) {
        *generation = gen;
    }
    return extents;
}

/*
 * The device's whole accepted extent list as the host reads it, @page
 * extents at a time (0: as many as a payload holds).
 */
static GArray *dcd_extents(Dcd *d, uint32_t page)
{
    if (!page) {
        page = (d->mbox.payload_max - sizeof(DcdGetExtentsOut)) /
               sizeof(DcdExtentRaw);
    }
    return dcd_read_extents(d, dcd_get_extent_list, page, NULL);
}

static uint16_t dcd_update_extents_flags(Dcd *d, uint16_t opcode,
                                         const DcdExtent *exts, uint32_t n,
                                         uint8_t flags)
{
    size_t len = sizeof(DcdUpdateExtentsIn) +
                 n * sizeof(DcdUpdatedExtentRaw);
    g_autofree DcdUpdateExtentsIn *in = g_malloc0(len);
    uint32_t i;

    stl_le_p(&in->count, n);
    in->flags = flags;
    for (i = 0; i < n; i++) {
        stq_le_p(&in->extents[i].start_dpa, exts[i].dpa);
        stq_le_p(&in->extents[i].len, exts[i].len);
    }
    return dcd_mbox(d, opcode, in, len, NULL, NULL);
}

static uint16_t dcd_update_extents(Dcd *d, uint16_t opcode,
                                   const DcdExtent *exts, uint32_t n)
{
    return dcd_update_extents_flags(d, opcode, exts, n, 0);
}

/* Accept @n of the offered extents; 0 rejects the whole offer. */
static uint16_t dcd_add_response(Dcd *d, const DcdExtent *exts, uint32_t n)
{
    return dcd_update_extents(d, CXL_OP_ADD_DC_RESPONSE, exts, n);
}

static uint16_t dcd_release(Dcd *d, const DcdExtent *exts, uint32_t n)
{
    return dcd_update_extents(d, CXL_OP_RELEASE_DC, exts, n);
}

/*
 * One Get Event Records call on @log: append the records to @records
 * (of DcdEventRaw) and return the output flags in *@flags.
 */
static uint16_t dcd_get_events(Dcd *d, uint8_t log, GArray *records,
                               uint8_t *flags)
{
    DcdGetEventsIn in = { .log = log };
    g_autofree uint8_t *buf = g_malloc0(d->mbox.payload_max);
    DcdGetEventsOut *out = (DcdGetEventsOut *)buf;
    size_t len = d->mbox.payload_max;
    uint16_t n;
    uint16_t rc;

    rc = dcd_mbox(d, CXL_OP_GET_EVENT_RECORDS, &in, sizeof(in), buf, &len);
    if (rc != CXL_RC_SUCCESS) {
        return rc;
    }
    g_assert_cmpuint(len, >=, sizeof(*out));
    n = lduw_le_p(&out->count);
    g_assert_cmpuint(len, ==, sizeof(*out) + n * sizeof(out->records[0]));
    g_array_append_vals(records, out->records, n);
    *flags = out->flags;
    return rc;
}

static uint16_t dcd_clear_events(Dcd *d, uint8_t log,
                                 const uint16_t *handles, uint8_t n)
{
    size_t len = sizeof(DcdClearEventsIn) + n * sizeof(uint16_t);
    g_autofree DcdClearEventsIn *in = g_malloc0(len);
    uint8_t i;

    in->log = log;
    in->count = n;
    for (i = 0; i < n; i++) {
        stw_le_p(&in->handles[i], handles[i]);
    }
    return dcd_mbox(d, CXL_OP_CLEAR_EVENT_RECORDS, in, len, NULL, NULL);
}

static void dcd_parse_dc_event(const DcdEventRaw *raw, DcdEvent *ev)
{
    const DcdDcEventRaw *dc = (const DcdDcEventRaw *)raw;

    g_assert(!memcmp(raw->hdr.uuid, dcd_dc_event_uuid,
                     sizeof(dcd_dc_event_uuid)));
    g_assert_cmpuint(raw->hdr.length, ==, sizeof(*raw));
    ev->handle = lduw_le_p(&raw->hdr.handle);
    ev->type = dc->type;
    ev->flags = dc->flags;
    ev->host_id = lduw_le_p(&dc->host_id);
    ev->region = dc->region_id;
    dcd_parse_extent(&dc->extent, &ev->extent);
    ev->extents_available = ldl_le_p(&dc->extents_available);
}

/*
 * Read every record of the Dynamic Capacity Event Log, clearing each
 * batch by handle, until the log is empty; return them (of DcdEvent).
 */
static GArray *dcd_drain_dc_events(Dcd *d)
{
    GArray *events = g_array_new(false, true, sizeof(DcdEvent));
    int calls;

    for (calls = 0; calls < DCD_DRAIN_MAX; calls++) {
        g_autoptr(GArray) records = g_array_new(false, true,
                                                sizeof(DcdEventRaw));
        g_autofree uint16_t *handles = NULL;
        uint8_t flags = 0;
        guint i;

        g_assert_cmphex(dcd_get_events(d, CXL_EVENT_LOG_DC, records, &flags),
                        ==, CXL_RC_SUCCESS);
        /* The device never drops a record */
        g_assert_cmphex(flags & CXL_GET_EVENTS_OVERFLOW, ==, 0);
        if (!records->len) {
            g_assert(!(flags & CXL_GET_EVENTS_MORE));
            return events;
        }
        g_assert_cmpuint(records->len, <=, UINT8_MAX);
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
    g_error("dynamic capacity event log not empty after %d reads", calls);
}

static uint32_t dcd_event_status(Dcd *d)
{
    return qtest_readl(d->qts, d->status_regs + CXL_DEV_EVENT_STATUS);
}

/* HDM decoders, CXL r3.1 section 8.2.4.20 */

/* The HDM Decoder Capability of a component, or 0 if it has none. */
static uint64_t dcd_find_hdm(Dcd *d, uint64_t comp_regs)
{
    uint64_t cm = comp_regs + CXL_CM_OFFSET;
    uint32_t hdr = qtest_readl(d->qts, cm);
    int i;

    g_assert_cmpuint(CXL_CM_CAP_ID(hdr), ==, CXL_CM_CAP_ID_CXL);
    for (i = 1; i <= CXL_CM_CAP_ARRAY_SIZE(hdr); i++) {
        uint32_t cap = qtest_readl(d->qts, cm + 4 * i);

        if (CXL_CM_CAP_ID(cap) == CXL_CM_CAP_ID_HDM) {
            return cm + CXL_CM_CAP_PTR(cap);
        }
    }
    return 0;
}

static void dcd_hdm_commit_decoder(Dcd *d, uint64_t hdm, int n,
                                   uint64_t base, uint64_t size,
                                   uint32_t target_list)
{
    QTestState *qts = d->qts;
    uint32_t ctrl;
    int i;

    g_assert(QEMU_IS_ALIGNED(base, CXL_HDM_ALIGN));
    g_assert(QEMU_IS_ALIGNED(size, CXL_HDM_ALIGN));
    qtest_writel(qts, hdm + CXL_HDM_GLOBAL_CTRL,
                 qtest_readl(qts, hdm + CXL_HDM_GLOBAL_CTRL) |
                 CXL_HDM_ENABLE);
    qtest_writel(qts, hdm + CXL_HDM_BASE_LO(n), (uint32_t)base);
    qtest_writel(qts, hdm + CXL_HDM_BASE_HI(n), base >> 32);
    qtest_writel(qts, hdm + CXL_HDM_SIZE_LO(n), (uint32_t)size);
    qtest_writel(qts, hdm + CXL_HDM_SIZE_HI(n), size >> 32);
    qtest_writel(qts, hdm + CXL_HDM_TL_LO(n), target_list);
    qtest_writel(qts, hdm + CXL_HDM_TL_HI(n), 0);
    /* 256 byte granularity, 1 way: IG and IW are 0 */
    qtest_writel(qts, hdm + CXL_HDM_CTRL(n),
                 CXL_HDM_CTRL_HOST_ONLY | CXL_HDM_CTRL_COMMIT);
    for (i = 0; i < CXL_MBOX_POLL_MAX; i++) {
        ctrl = qtest_readl(qts, hdm + CXL_HDM_CTRL(n));
        if (ctrl & (CXL_HDM_CTRL_COMMITTED | CXL_HDM_CTRL_ERR)) {
            break;
        }
    }
    g_assert_cmphex(ctrl & (CXL_HDM_CTRL_COMMITTED | CXL_HDM_CTRL_ERR), ==,
                    CXL_HDM_CTRL_COMMITTED);
}

/*
 * Map the first @size bytes of the fixed memory window to DPA 0 on:
 * decoder 0 of the host bridge, targeting the root port (a host bridge
 * with a single root port may have no decoders), and decoder 0 of the
 * device. DC regions start at DPA 0 when the device has no static
 * capacity.
 */
static void dcd_hdm_commit(Dcd *d, uint64_t size)
{
    uint64_t hb_hdm = dcd_find_hdm(d, d->hb_comp_regs);
    uint64_t dev_hdm = dcd_find_hdm(d, d->comp_regs);

    g_assert_cmphex(size, <=, d->fmw_size);
    g_assert(dev_hdm);
    /* TODO: commit the decoders of a switch's upstream port too */
    g_assert_cmpuint(d->ports->len, ==, 1);
    if (hb_hdm) {
        QPCIDevice *rp = dcd_root_port(d);
        uint8_t exp = qpci_find_capability(rp, PCI_CAP_ID_EXP, 0);
        uint32_t lnkcap = qpci_config_readl(rp, exp + PCI_EXP_LNKCAP);

        dcd_hdm_commit_decoder(d, hb_hdm, 0, d->fmw_base, size,
                               (lnkcap & PCI_EXP_LNKCAP_PN) >> 24);
    }
    /* DPA skip 0 */
    dcd_hdm_commit_decoder(d, dev_hdm, 0, d->fmw_base, size, 0);
}

/* The HPA at which dcd_hdm_commit() made @dpa visible. */
static uint64_t dcd_hpa(Dcd *d, uint64_t dpa)
{
    return d->fmw_base + dpa;
}

/* QMP */

/* Issue cxl-add-dynamic-capacity with a prescriptive extent list. */
static QDict *dcd_add(QTestState *qts, unsigned region, const char *extents)
{
    return qtest_qmp(qts,
                     "{'execute': 'cxl-add-dynamic-capacity',"
                     " 'arguments': {"
                     "  'path': " "'" DCD_PATH "',"
                     "  'host-id': 0,"
                     "  'selection-policy': 'prescriptive',"
                     "  'region': %u,"
                     "  'extents': %p }}", region,
                     qobject_from_json(extents, &error_abort));
}

static void assert_ok(QDict *rsp)
{
    g_assert(rsp);
    if (qdict_haskey(rsp, "error")) {
        g_error("unexpected error: %s",
                qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"));
    }
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
}

/* Assert a QMP error whose description contains @needle. */
static void assert_error(QDict *rsp, const char *needle)
{
    QDict *err;
    const char *desc;

    g_assert(rsp);
    g_assert(qdict_haskey(rsp, "error"));
    err = qdict_get_qdict(rsp, "error");
    g_assert_cmpstr(qdict_get_str(err, "class"), ==, "GenericError");
    desc = qdict_get_str(err, "desc");
    if (!strstr(desc, needle)) {
        g_error("error '%s' does not mention '%s'", desc, needle);
    }
    qobject_unref(rsp);
}

/* Offer @extents of @region over QMP; return the event records read. */
static GArray *dcd_offer(Dcd *d, unsigned region, const char *extents)
{
    assert_ok(dcd_add(d->qts, region, extents));
    return dcd_drain_dc_events(d);
}

static void assert_extent(const DcdExtent *ext, uint64_t dpa, uint64_t len)
{
    g_assert_cmphex(ext->dpa, ==, dpa);
    g_assert_cmphex(ext->len, ==, len);
}

/* Assert that @events offer exactly the extents (dpa, len) of @exp. */
static void assert_add_events(GArray *events, const DcdExtent *exp,
                              guint n)
{
    guint i;

    g_assert_cmpuint(events->len, ==, n);
    for (i = 0; i < n; i++) {
        DcdEvent *ev = &g_array_index(events, DcdEvent, i);

        g_assert_cmpuint(ev->type, ==, CXL_DC_EVENT_ADD_CAPACITY);
        /* All but the last record of one offer carry More */
        g_assert_cmpuint(!!(ev->flags & CXL_DC_EVENT_FLAG_MORE), ==,
                         i < n - 1);
        g_assert_cmpuint(ev->host_id, ==, 0);
        assert_extent(&ev->extent, exp[i].dpa, exp[i].len);
    }
}

/* Copy the extents of @events, as a driver answering them would. */
static DcdExtent *dcd_event_extents(GArray *events)
{
    DcdExtent *exts = g_new0(DcdExtent, events->len);
    guint i;

    for (i = 0; i < events->len; i++) {
        exts[i] = g_array_index(events, DcdEvent, i).extent;
    }
    return exts;
}

/* Offer @extents of @region and accept all of them. */
static void dcd_add_accept(Dcd *d, unsigned region, const char *extents)
{
    g_autoptr(GArray) events = dcd_offer(d, region, extents);
    g_autofree DcdExtent *accept = dcd_event_extents(events);

    g_assert_cmpuint(events->len, >, 0);
    g_assert_cmphex(dcd_add_response(d, accept, events->len), ==,
                    CXL_RC_SUCCESS);
}

/* Tests */

#define TWO_EXTENTS \
    "[{'offset': 0, 'len': 134217728}," \
    " {'offset': 134217728, 'len': 134217728}]"

/* The extents of TWO_EXTENTS in region 0, which starts at DPA 0 */
static const DcdExtent two_extents[] = {
    { .dpa = 0, .len = 128 * MiB },
    { .dpa = 128 * MiB, .len = 128 * MiB },
};

/*
 * The example of the series' cover letter: offer two 128 MiB extents of
 * region 0 to the host.
 */
static void test_add_seed_example(void)
{
    QTestState *qts = dcd_start();

    assert_ok(dcd_add(qts, 0, TWO_EXTENTS));
    /* The same range is now pending: offering it again must fail. */
    assert_error(dcd_add(qts, 0, "[{'offset': 0, 'len': 2097152}]"),
                 "pending");
    /* Region 1 is independent and still free. */
    assert_ok(dcd_add(qts, 1, "[{'offset': 0, 'len': 2097152}]"));
    qtest_quit(qts);
}

static void test_add_bad_region(void)
{
    QTestState *qts = dcd_start();

    assert_error(dcd_add(qts, 2, "[{'offset': 0, 'len': 2097152}]"),
                 "region");
    qtest_quit(qts);
}

static void test_add_misaligned(void)
{
    QTestState *qts = dcd_start();

    assert_error(dcd_add(qts, 0, "[{'offset': 4096, 'len': 2097152}]"),
                 "aligned");
    assert_error(dcd_add(qts, 0, "[{'offset': 0, 'len': 4096}]"),
                 "aligned");
    /* Nothing was queued by the failures: the range is still free. */
    assert_ok(dcd_add(qts, 0, "[{'offset': 0, 'len': 2097152}]"));
    qtest_quit(qts);
}

static void test_add_beyond_region(void)
{
    QTestState *qts = dcd_start();

    /* Region 0 is 512 MiB long: its last block starts at 510 MiB. */
    assert_ok(dcd_add(qts, 0, "[{'offset': 534773760, 'len': 2097152}]"));
    assert_error(dcd_add(qts, 0, "[{'offset': 536870912, 'len': 2097152}]"),
                 "beyond");
    qtest_quit(qts);
}

static void test_add_self_overlap(void)
{
    QTestState *qts = dcd_start();

    assert_error(dcd_add(qts, 0,
                         "[{'offset': 0, 'len': 4194304},"
                         " {'offset': 2097152, 'len': 2097152}]"),
                 "overlap");
    qtest_quit(qts);
}

static void test_bad_path(void)
{
    QTestState *qts = dcd_start();
    QDict *rsp;

    rsp = qtest_qmp(qts,
                    "{'execute': 'cxl-add-dynamic-capacity',"
                    " 'arguments': {'path': '/machine/peripheral/nope',"
                    "  'host-id': 0, 'selection-policy': 'prescriptive',"
                    "  'region': 0,"
                    "  'extents': [{'offset': 0, 'len': 2097152}]}}");
    g_assert(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

static void test_mbox_identify(void)
{
    Dcd *d = dcd_boot();
    DcdIdentifyOut id;

    g_assert_cmphex(dcd_identify(d, &id), ==, CXL_RC_SUCCESS);
    /* All of the capacity is dynamic: none is static */
    g_assert_cmpuint(ldq_le_p(&id.total_capacity), ==, 0);
    g_assert_cmpuint(ldq_le_p(&id.volatile_capacity), ==, 0);
    g_assert_cmpuint(ldq_le_p(&id.persistent_capacity), ==, 0);
    g_assert_cmpuint(lduw_le_p(&id.dc_event_log_size), >, 0);
    dcd_quit(d);
}

/*
 * The Background Operation bit of the Mailbox Status register (CXL r3.1
 * section 8.2.8.4.5) is set while a background command runs, and only
 * then: not before the first one, and not once it has completed.
 */
static void test_mbox_background_bit(void)
{
    Dcd *d = dcd_boot();
    DcdIdentifyOut id;
    uint64_t bg_status;

    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_STATUS) &
                    CXL_MBOX_STATUS_BG_OP, ==, 0);
    g_assert_cmphex(dcd_identify(d, &id), ==, CXL_RC_SUCCESS);
    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_STATUS) &
                    CXL_MBOX_STATUS_BG_OP, ==, 0);

    /* Sanitize runs in the background for a while of virtual time */
    g_assert_cmphex(dcd_mbox(d, CXL_OP_SANITIZE, NULL, 0, NULL, NULL), ==,
                    CXL_RC_BG_STARTED);
    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_STATUS) &
                    CXL_MBOX_STATUS_BG_OP, ==, CXL_MBOX_STATUS_BG_OP);
    qtest_clock_step(d->qts, 30 * 1000 * 1000 * 1000LL);
    bg_status = qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_BG_STATUS);
    g_assert_cmphex(bg_status & 0xffff, ==, CXL_OP_SANITIZE);
    g_assert_cmpuint((bg_status >> 16) & 0x7f, ==, 100);
    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_STATUS) &
                    CXL_MBOX_STATUS_BG_OP, ==, 0);
    dcd_quit(d);
}

/*
 * What a guest can do to the mailbox registers beyond the commands:
 * byte and word writes to the registers are ignored (they aborted
 * QEMU), and a command whose length field exceeds the payload
 * registers is refused with Invalid Payload Length (the device read
 * its input from up to 1 MiB past them).
 */
static void test_mbox_register_abuse(void)
{
    Dcd *d = dcd_boot();
    uint64_t regs = d->mbox.regs;
    uint64_t lens[] = { d->mbox.payload_max + 1, 0xfffff };
    uint8_t no_extents[8] = {};
    DcdIdentifyOut id;
    unsigned i, off;

    qtest_writeq(d->qts, regs + CXL_MBOX_CMD, CXL_OP_IDENTIFY_MEMDEV);
    for (off = 0; off < CXL_MBOX_PAYLOAD; off++) {
        qtest_writeb(d->qts, regs + off, 0xff);
        if (!(off & 1)) {
            qtest_writew(d->qts, regs + off, 0xffff);
        }
    }
    g_assert_cmphex(qtest_readl(d->qts, regs + CXL_MBOX_CTRL) &
                    CXL_MBOX_CTRL_DOORBELL, ==, 0);
    g_assert_cmphex(qtest_readq(d->qts, regs + CXL_MBOX_CMD), ==,
                    CXL_OP_IDENTIFY_MEMDEV);
    g_assert_cmphex(dcd_identify(d, &id), ==, CXL_RC_SUCCESS);

    for (i = 0; i < ARRAY_SIZE(lens); i++) {
        qtest_memwrite(d->qts, regs + CXL_MBOX_PAYLOAD, no_extents,
                       sizeof(no_extents));
        qtest_writeq(d->qts, regs + CXL_MBOX_CMD,
                     CXL_OP_ADD_DC_RESPONSE |
                     lens[i] << CXL_MBOX_CMD_LEN_SHIFT);
        qtest_writel(d->qts, regs + CXL_MBOX_CTRL, CXL_MBOX_CTRL_DOORBELL);
        g_assert_cmphex(CXL_MBOX_STATUS_RC(qtest_readq(d->qts, regs +
                                                       CXL_MBOX_STATUS)),
                        ==, CXL_RC_INVALID_PL_LEN);
        g_assert_cmpuint(CXL_MBOX_CMD_LEN(qtest_readq(d->qts, regs +
                                                      CXL_MBOX_CMD)),
                         ==, 0);
    }
    g_assert_cmphex(dcd_identify(d, &id), ==, CXL_RC_SUCCESS);
    dcd_quit(d);
}

/*
 * CXL r3.1 Table 8-70: Get Log Input.
 * All fields little endian.
 */
typedef struct DcdGetLogIn {
    uint8_t uuid[16];
    uint32_t offset;
    uint32_t length;
} QEMU_PACKED DcdGetLogIn;
QEMU_BUILD_BUG_ON(sizeof(DcdGetLogIn) != 0x18);

#define CXL_CEL_UUID "0da9c0b5-bf41-4b78-8f79-96b1623b3f17"

static uint16_t dcd_get_cel(Dcd *d, uint32_t offset, uint32_t length,
                            uint8_t *out, size_t *out_len)
{
    DcdGetLogIn in = {};
    QemuUUID uuid;

    g_assert(qemu_uuid_parse(CXL_CEL_UUID, &uuid) == 0);
    memcpy(in.uuid, uuid.data, sizeof(in.uuid));
    stl_le_p(&in.offset, offset);
    stl_le_p(&in.length, length);
    return dcd_mbox(d, CXL_OP_GET_LOG, &in, sizeof(in), out, out_len);
}

/*
 * The Command Effects Log lists the dynamic capacity commands, which
 * the Linux driver needs, and Get Log reads it at byte offsets within
 * the size Get Supported Logs reports (CXL r3.1 section 8.2.9.5.2).
 * The device used to read at four times the offset, up to 768 KiB
 * past the log, and to answer offsets beyond the log's size.
 */
static void test_mbox_cel(void)
{
    Dcd *d = dcd_boot();
    uint8_t logs[0x1c], cel[0x800], part[8];
    size_t len = sizeof(logs);
    uint32_t size, i;
    bool found[4] = {};

    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, logs,
                             &len), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, ==, sizeof(logs));
    g_assert_cmpuint(lduw_le_p(logs), ==, 1);
    size = ldl_le_p(logs + 0x18);
    g_assert_cmpuint(size, >=, 8);
    g_assert_cmpuint(size % 4, ==, 0);
    g_assert_cmpuint(size, <=, sizeof(cel));

    len = sizeof(cel);
    g_assert_cmphex(dcd_get_cel(d, 0, size, cel, &len), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, ==, size);
    for (i = 0; i < size; i += 4) {
        uint16_t op = lduw_le_p(cel + i);

        if (op >= CXL_OP_GET_DC_CONFIG && op <= CXL_OP_RELEASE_DC) {
            found[op - CXL_OP_GET_DC_CONFIG] = true;
        }
    }
    g_assert(found[0] && found[1] && found[2] && found[3]);

    /* Offsets count bytes: the second entry, the last one */
    len = sizeof(part);
    g_assert_cmphex(dcd_get_cel(d, 4, 8, part, &len), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 8);
    g_assert(!memcmp(part, cel + 4, 8));
    len = sizeof(part);
    g_assert_cmphex(dcd_get_cel(d, size - 4, 4, part, &len), ==,
                    CXL_RC_SUCCESS);
    g_assert(!memcmp(part, cel + size - 4, 4));

    /* Nothing beyond the log's size */
    g_assert_cmphex(dcd_get_cel(d, size, 4, NULL, NULL), ==,
                    CXL_RC_INVALID_INPUT);
    g_assert_cmphex(dcd_get_cel(d, size - 4, 8, NULL, NULL), ==,
                    CXL_RC_INVALID_INPUT);
    g_assert_cmphex(dcd_get_cel(d, UINT32_MAX, 4, NULL, NULL), ==,
                    CXL_RC_INVALID_INPUT);
    dcd_quit(d);
}

static void test_mbox_errors(void)
{
    Dcd *d = dcd_boot();
    DcdGetConfigIn in = { .region_count = 1, .start_region = 0 };
    uint8_t out[64];
    size_t len = sizeof(out);

    /* An opcode the device does not implement */
    g_assert_cmphex(dcd_mbox(d, 0x48ff, NULL, 0, out, &len), ==,
                    CXL_RC_UNSUPPORTED);
    g_assert_cmpuint(len, ==, 0);
    /* A payload shorter than Table 8-163 */
    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_DC_CONFIG, &in, 1, NULL, NULL),
                    ==, CXL_RC_INVALID_PL_LEN);
    /* A starting region beyond the last one */
    in.start_region = DCD_NUM_REGIONS;
    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_DC_CONFIG, &in, sizeof(in),
                             NULL, NULL),
                    ==, CXL_RC_INVALID_INPUT);
    /* The mailbox still works after errors */
    in.start_region = 0;
    len = sizeof(out);
    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_DC_CONFIG, &in, sizeof(in),
                             out, &len),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, ==, sizeof(DcdGetConfigOut) +
                     sizeof(DcdRegionRaw) + sizeof(DcdGetConfigTail));
    dcd_quit(d);
}

static void test_mbox_get_dc_config(void)
{
    Dcd *d = dcd_boot();
    DcdConfig cfg;
    int i;

    g_assert_cmphex(dcd_get_dc_config(d, &cfg), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(cfg.num_regions, ==, DCD_NUM_REGIONS);
    g_assert_cmpuint(cfg.regions_returned, ==, DCD_NUM_REGIONS);
    g_assert_cmphex(cfg.regions[0].base, ==, 0);
    for (i = 0; i < DCD_NUM_REGIONS; i++) {
        g_assert_cmphex(cfg.regions[i].len, ==, DCD_REGION_LEN);
        g_assert_cmphex(cfg.regions[i].decode_len, ==, DCD_REGION_LEN);
        g_assert_cmphex(cfg.regions[i].block_size, ==, DCD_BLOCK_SIZE);
    }
    g_assert_cmphex(cfg.regions[1].base, ==,
                    cfg.regions[0].base + DCD_REGION_LEN);
    g_assert_cmpuint(cfg.extents_supported, >, 0);
    g_assert_cmpuint(cfg.extents_available, ==, cfg.extents_supported);
    dcd_quit(d);
}

static void test_add_accept_all(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autoptr(GArray) extents = NULL;
    g_autofree DcdExtent *accept = NULL;
    DcdConfig cfg;

    g_assert_cmphex(dcd_event_status(d) & BIT(CXL_EVENT_LOG_DC), ==, 0);
    assert_ok(dcd_add(d->qts, 0, TWO_EXTENTS));
    g_assert_cmphex(dcd_event_status(d) & BIT(CXL_EVENT_LOG_DC), !=, 0);

    events = dcd_drain_dc_events(d);
    assert_add_events(events, two_extents, ARRAY_SIZE(two_extents));
    g_assert_cmphex(dcd_event_status(d) & BIT(CXL_EVENT_LOG_DC), ==, 0);

    accept = dcd_event_extents(events);
    g_assert_cmphex(dcd_add_response(d, accept, events->len), ==,
                    CXL_RC_SUCCESS);

    /* Read back one extent per call too, to cover paging */
    extents = dcd_extents(d, 1);
    g_assert_cmpuint(extents->len, ==, 2);
    assert_extent(&g_array_index(extents, DcdExtent, 0), 0, 128 * MiB);
    assert_extent(&g_array_index(extents, DcdExtent, 1), 128 * MiB,
                  128 * MiB);

    g_assert_cmphex(dcd_get_dc_config(d, &cfg), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(cfg.extents_available, ==, cfg.extents_supported - 2);
    dcd_quit(d);
}

static void test_add_reject(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autoptr(GArray) extents = NULL;

    events = dcd_offer(d, 0, TWO_EXTENTS);
    assert_add_events(events, two_extents, ARRAY_SIZE(two_extents));
    g_assert_cmphex(dcd_add_response(d, NULL, 0), ==, CXL_RC_SUCCESS);

    extents = dcd_extents(d, 0);
    g_assert_cmpuint(extents->len, ==, 0);

    /* The rejected range is free again: it can be offered anew */
    g_clear_pointer(&events, g_array_unref);
    events = dcd_offer(d, 0, TWO_EXTENTS);
    assert_add_events(events, two_extents, ARRAY_SIZE(two_extents));
    dcd_quit(d);
}

static void test_add_accept_part(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autoptr(GArray) extents = NULL;
    g_autofree DcdExtent *accept = NULL;
    QDict *rsp;

    events = dcd_offer(d, 0, TWO_EXTENTS);
    assert_add_events(events, two_extents, ARRAY_SIZE(two_extents));
    accept = dcd_event_extents(events);
    g_assert_cmphex(dcd_add_response(d, accept, 1), ==, CXL_RC_SUCCESS);

    extents = dcd_extents(d, 0);
    g_assert_cmpuint(extents->len, ==, 1);
    assert_extent(&g_array_index(extents, DcdExtent, 0), 0, 128 * MiB);

    /* The accepted half cannot be offered again, the other half can */
    rsp = dcd_add(d->qts, 0, "[{'offset': 0, 'len': 134217728}]");
    g_assert(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    g_clear_pointer(&events, g_array_unref);
    events = dcd_offer(d, 0, "[{'offset': 134217728, 'len': 134217728}]");
    assert_add_events(events, &two_extents[1], 1);
    dcd_quit(d);
}

static void test_release_host(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autoptr(GArray) extents = NULL;
    g_autofree DcdExtent *accept = NULL;

    events = dcd_offer(d, 0, TWO_EXTENTS);
    accept = dcd_event_extents(events);
    g_assert_cmphex(dcd_add_response(d, accept, events->len), ==,
                    CXL_RC_SUCCESS);

    g_assert_cmphex(dcd_release(d, &accept[0], 1), ==, CXL_RC_SUCCESS);
    extents = dcd_extents(d, 0);
    g_assert_cmpuint(extents->len, ==, 1);
    assert_extent(&g_array_index(extents, DcdExtent, 0), 128 * MiB,
                  128 * MiB);

    /* A released extent is no longer the host's to release */
    g_assert_cmphex(dcd_release(d, &accept[0], 1), ==, CXL_RC_INVALID_PA);
    g_clear_pointer(&extents, g_array_unref);
    extents = dcd_extents(d, 0);
    g_assert_cmpuint(extents->len, ==, 1);
    dcd_quit(d);
}

#define DCD_PATTERN 0x0123456789abcdefULL

static void test_memory_read_write(void)
{
    Dcd *d = dcd_boot();
    const uint64_t other = 0xfedcba9876543210ULL;
    uint64_t hpa = dcd_hpa(d, 64 * MiB);
    uint64_t last = dcd_hpa(d, 128 * MiB - 8);
    uint64_t free_hpa = dcd_hpa(d, 128 * MiB);
    uint64_t region1_hpa = dcd_hpa(d, DCD_REGION_LEN);

    dcd_add_accept(d, 0, "[{'offset': 0, 'len': 134217728}]");

    /* Accepted, but no decoder maps the window to the device yet */
    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, 0);

    dcd_hdm_commit(d, DCD_CAPACITY);

    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, DCD_PATTERN);
    qtest_writeq(d->qts, last, other);
    g_assert_cmphex(qtest_readq(d->qts, last), ==, other);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, DCD_PATTERN);

    /*
     * DC capacity not accepted by the host is not backed: the device
     * fails the access, which qtest reads as 0, and drops writes.
     */
    qtest_writeq(d->qts, free_hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, free_hpa), ==, 0);
    qtest_writeq(d->qts, region1_hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, region1_hpa), ==, 0);
    dcd_quit(d);
}

/*
 * The same through a host bridge that has HDM decoders although it has
 * a single root port, so that its decoder must be committed too.
 */
static void test_memory_hb_decoder(void)
{
    Dcd *d = dcd_probe(qtest_init(DCD_MACHINE_PXB(",hdm_for_passthrough=on")));
    uint64_t hpa = dcd_hpa(d, DCD_REGION_LEN + 2 * MiB);

    g_assert(dcd_find_hdm(d, d->hb_comp_regs));
    dcd_add_accept(d, 1, "[{'offset': 0, 'len': 4194304}]");
    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, 0);

    dcd_hdm_commit(d, DCD_CAPACITY);
    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, DCD_PATTERN);
    dcd_quit(d);
}

static void test_memory_release(void)
{
    Dcd *d = dcd_boot();
    const DcdExtent ext = { .dpa = 0, .len = 128 * MiB };
    uint64_t hpa = dcd_hpa(d, 0);

    dcd_add_accept(d, 0, "[{'offset': 0, 'len': 134217728}]");
    dcd_hdm_commit(d, DCD_CAPACITY);
    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, DCD_PATTERN);

    /* Released capacity is no longer reachable through the window */
    g_assert_cmphex(dcd_release(d, &ext, 1), ==, CXL_RC_SUCCESS);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, 0);
    dcd_quit(d);
}

/* QMP with any arguments; @args is a JSON object without "path" */
static QDict *dcd_qmp(QTestState *qts, const char *cmd, const char *args)
{
    QDict *a = qobject_to(QDict, qobject_from_json(args, &error_abort));

    g_assert(a);
    qdict_put_str(a, "path", DCD_PATH);
    return qtest_qmp(qts, "{'execute': %s, 'arguments': %p}", cmd, a);
}

static QDict *dcd_qmp_release(QTestState *qts, const char *args)
{
    return dcd_qmp(qts, "cxl-release-dynamic-capacity", args);
}

/* Assert that @extents (of DcdExtent) are exactly (dpa, len) of @exp */
static void assert_extents(GArray *extents, const DcdExtent *exp, guint n)
{
    guint i;

    g_assert_cmpuint(extents->len, ==, n);
    for (i = 0; i < n; i++) {
        assert_extent(&g_array_index(extents, DcdExtent, i), exp[i].dpa,
                      exp[i].len);
    }
}

/* The accepted extent list, asserted equal to @exp */
static void assert_extent_list(Dcd *d, const DcdExtent *exp, guint n)
{
    g_autoptr(GArray) extents = dcd_extents(d, 0);

    assert_extents(extents, exp, n);
}

/* The list generation number the device reports now */
static uint32_t dcd_generation(Dcd *d)
{
    g_autoptr(GArray) extents = g_array_new(false, true, sizeof(DcdExtent));
    uint32_t total, gen;

    g_assert_cmphex(dcd_get_extent_list(d, 0, 0, extents, &total, &gen),
                    ==, CXL_RC_SUCCESS);
    return gen;
}

/* Assert @events are release records of @type for exactly @exp */
static void assert_release_events(GArray *events, uint8_t type,
                                  const DcdExtent *exp, guint n)
{
    guint i;

    g_assert_cmpuint(events->len, ==, n);
    for (i = 0; i < n; i++) {
        DcdEvent *ev = &g_array_index(events, DcdEvent, i);

        g_assert_cmpuint(ev->type, ==, type);
        g_assert_cmpuint(!!(ev->flags & CXL_DC_EVENT_FLAG_MORE), ==,
                         i < n - 1);
        assert_extent(&ev->extent, exp[i].dpa, exp[i].len);
    }
}

/*
 * The example end to end: offer, accept, ask for the capacity back,
 * the host releases it one extent per command as Linux does.
 */
static void test_seed_end_to_end(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    uint32_t gen0, gen1;

    gen0 = dcd_generation(d);
    events = dcd_offer(d, 0, TWO_EXTENTS);
    assert_add_events(events, two_extents, 2);
    /* Nothing is the host's until it answers */
    assert_extent_list(d, NULL, 0);
    g_assert_cmpuint(dcd_generation(d), ==, gen0);

    g_assert_cmphex(dcd_add_response(d, two_extents, 2), ==,
                    CXL_RC_SUCCESS);
    assert_extent_list(d, two_extents, 2);
    gen1 = dcd_generation(d);
    g_assert_cmpuint(gen1, !=, gen0);

    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'prescriptive',"
                              " 'region': 0, 'extents': " TWO_EXTENTS "}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    assert_release_events(events, CXL_DC_EVENT_RELEASE, two_extents, 2);
    /* Still the host's until it releases */
    assert_extent_list(d, two_extents, 2);
    g_assert_cmpuint(dcd_generation(d), ==, gen1);

    g_assert_cmphex(dcd_release(d, &two_extents[0], 1), ==, CXL_RC_SUCCESS);
    g_assert_cmphex(dcd_release(d, &two_extents[1], 1), ==, CXL_RC_SUCCESS);
    assert_extent_list(d, NULL, 0);
    g_assert_cmpuint(dcd_generation(d), !=, gen1);
    dcd_quit(d);
}

/*
 * A single add of 4096 extents reaches the host whole, through an event
 * log of 8 records: 4096 records in DPA order, More on all but the
 * last.  The host accepts them in one response split over many mailbox
 * commands with the More flag.
 */
#define MANY_EXTENTS 4096

static void test_add_4096_extents(void)
{
    Dcd *d = dcd_probe(qtest_init(
        "-machine q35,cxl=on "
        "-object memory-backend-ram,id=dc-mem0,size=8G "
        "-device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 "
        "-device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0 "
        "-device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0,"
        "num-dc-regions=1,id=cxl-dcd0 "
        "-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=8G "));
    g_autoptr(GString) json = g_string_new("[");
    g_autoptr(GArray) events = NULL;
    g_autoptr(GArray) extents = NULL;
    g_autofree DcdExtent *exp = g_new0(DcdExtent, MANY_EXTENTS);
    uint32_t per_cmd, done;
    guint i;

    for (i = 0; i < MANY_EXTENTS; i++) {
        exp[i].dpa = (uint64_t)i * DCD_BLOCK_SIZE;
        exp[i].len = DCD_BLOCK_SIZE;
        g_string_append_printf(json, "%s{'offset': %" PRIu64 ", 'len': %"
                               PRIu64 "}", i ? "," : "", exp[i].dpa,
                               exp[i].len);
    }
    g_string_append(json, "]");
    events = dcd_offer(d, 0, json->str);
    assert_add_events(events, exp, MANY_EXTENTS);

    per_cmd = (d->mbox.payload_max - sizeof(DcdUpdateExtentsIn)) /
              sizeof(DcdUpdatedExtentRaw);
    g_assert_cmpuint(per_cmd, <, MANY_EXTENTS);
    for (done = 0; done < MANY_EXTENTS; done += per_cmd) {
        uint32_t n = MIN(per_cmd, MANY_EXTENTS - done);
        bool more = done + n < MANY_EXTENTS;

        g_assert_cmphex(dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE,
                                                 exp + done, n, more),
                        ==, CXL_RC_SUCCESS);
        if (more) {
            /* Parts are applied together, when the last one arrives */
            g_assert_cmpuint(dcd_generation(d), ==, 0);
        }
    }
    extents = dcd_extents(d, 0);
    g_assert_cmpuint(extents->len, ==, MANY_EXTENTS);
    for (i = 0; i < MANY_EXTENTS; i++) {
        assert_extent(&g_array_index(extents, DcdExtent, i), exp[i].dpa,
                      exp[i].len);
    }
    dcd_quit(d);
}

/* A response in parts: nothing changes until the part without More */
static void test_add_response_in_parts(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autofree DcdExtent *offer = NULL;

    events = dcd_offer(d, 0, "[{'offset': 0, 'len': 2097152},"
                             " {'offset': 8388608, 'len': 2097152},"
                             " {'offset': 16777216, 'len': 4194304}]");
    offer = dcd_event_extents(events);
    g_assert_cmphex(dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE,
                                             offer, 1, 1),
                    ==, CXL_RC_SUCCESS);
    assert_extent_list(d, NULL, 0);
    /* Accepting the same extent again in a later part is refused */
    g_assert_cmphex(dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE,
                                             offer, 1, 1),
                    ==, CXL_RC_INVALID_PA);
    g_assert_cmphex(dcd_add_response(d, offer + 2, 1), ==, CXL_RC_SUCCESS);
    assert_extent_list(d, (DcdExtent[]) { offer[0], offer[2] }, 2);
    /* The extent the host did not accept is free again */
    g_clear_pointer(&events, g_array_unref);
    events = dcd_offer(d, 0, "[{'offset': 8388608, 'len': 2097152}]");
    g_assert_cmpuint(events->len, ==, 1);
    dcd_quit(d);
}

/* Release of a span over two extents, then of a part of one */
static void test_release_superset_partial(void)
{
    Dcd *d = dcd_boot();
    const DcdExtent span = { .dpa = 64 * MiB, .len = 128 * MiB };
    const DcdExtent part = { .dpa = 0, .len = 2 * MiB };

    dcd_add_accept(d, 0, TWO_EXTENTS);
    g_assert_cmphex(dcd_release(d, &span, 1), ==, CXL_RC_SUCCESS);
    assert_extent_list(d, (DcdExtent[]) { { .dpa = 0, .len = 64 * MiB },
                                          { .dpa = 192 * MiB,
                                            .len = 64 * MiB } }, 2);
    g_assert_cmphex(dcd_release(d, &part, 1), ==, CXL_RC_SUCCESS);
    assert_extent_list(d, (DcdExtent[]) { { .dpa = 2 * MiB,
                                            .len = 62 * MiB },
                                          { .dpa = 192 * MiB,
                                            .len = 64 * MiB } }, 2);
    /* A span over a gap is not all accepted: refused, nothing changes */
    g_assert_cmphex(dcd_release(d, &span, 1), ==, CXL_RC_INVALID_PA);
    assert_extent_list(d, (DcdExtent[]) { { .dpa = 2 * MiB,
                                            .len = 62 * MiB },
                                          { .dpa = 192 * MiB,
                                            .len = 64 * MiB } }, 2);
    dcd_quit(d);
}

#define TAG_A "5f1a9d1c-3b7e-4c2a-9e61-0c8d2f4b7a10"
#define TAG_B "a2c4e6f8-1b3d-4f5a-8c7e-9d0b2a4c6e8f"

static void test_release_tag_based(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autofree DcdExtent *tagged = NULL;
    QemuUUID tag_a;
    guint i;

    g_assert(qemu_uuid_parse(TAG_A, &tag_a) == 0);
    assert_ok(dcd_qmp(d->qts, "cxl-add-dynamic-capacity",
                      "{'host-id': 0, 'selection-policy': 'prescriptive',"
                      " 'region': 0, 'tag': '" TAG_A "', 'extents': "
                      TWO_EXTENTS "}"));
    events = dcd_drain_dc_events(d);
    tagged = dcd_event_extents(events);
    for (i = 0; i < 2; i++) {
        g_assert(!memcmp(tagged[i].tag, tag_a.data, 16));
    }
    g_assert_cmphex(dcd_add_response(d, tagged, 2), ==, CXL_RC_SUCCESS);
    assert_ok(dcd_qmp(d->qts, "cxl-add-dynamic-capacity",
                      "{'host-id': 0, 'selection-policy': 'prescriptive',"
                      " 'region': 1, 'tag': '" TAG_B "', 'extents':"
                      " [{'offset': 0, 'len': 2097152}]}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    g_assert_cmphex(dcd_add_response(d, &g_array_index(events, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_SUCCESS);

    /* The extent list reports the tags too */
    {
        g_autoptr(GArray) extents = dcd_extents(d, 0);

        g_assert_cmpuint(extents->len, ==, 3);
        g_assert(!memcmp(g_array_index(extents, DcdExtent, 0).tag,
                         tag_a.data, 16));
    }

    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'tag-based',"
                              " 'region': 0, 'tag': '" TAG_A "'}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    assert_release_events(events, CXL_DC_EVENT_RELEASE, two_extents, 2);
    for (i = 0; i < 2; i++) {
        g_assert(!memcmp(g_array_index(events, DcdEvent, i).extent.tag,
                         tag_a.data, 16));
    }
    g_assert_cmphex(dcd_release(d, two_extents, 2), ==, CXL_RC_SUCCESS);
    assert_extent_list(d, (DcdExtent[]) { { .dpa = DCD_REGION_LEN,
                                            .len = 2 * MiB } }, 1);
    /* No accepted extent of region 0 has that tag any more */
    assert_error(dcd_qmp_release(d->qts,
                                 "{'host-id': 0, 'removal-policy':"
                                 " 'tag-based', 'region': 0, 'tag': '"
                                 TAG_A "'}"), "has tag");
    dcd_quit(d);
}

/* Forced release: the host loses access at once, unasked */
static void test_release_forced(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    uint64_t hpa = dcd_hpa(d, 4 * MiB);

    dcd_add_accept(d, 0, TWO_EXTENTS);
    dcd_hdm_commit(d, DCD_CAPACITY);
    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, DCD_PATTERN);

    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'prescriptive',"
                              " 'forced-removal': true, 'region': 0,"
                              " 'extents': [{'offset': 0,"
                              " 'len': 134217728}]}"));
    /* Unreadable before the host has even read the event */
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, 0);
    assert_extent_list(d, &two_extents[1], 1);
    events = dcd_drain_dc_events(d);
    assert_release_events(events, CXL_DC_EVENT_FORCED_RELEASE,
                          two_extents, 1);
    /* Nothing for the host to release any more */
    g_assert_cmphex(dcd_release(d, &two_extents[0], 1), ==,
                    CXL_RC_INVALID_PA);
    dcd_quit(d);
}

/*
 * Write through the fixed memory window, release, offer the same range
 * again: with sanitize-on-release it reads back as zeros, without it
 * the data is still there.
 */
static void do_release_sanitize(bool sanitize)
{
    Dcd *d = dcd_boot();
    const DcdExtent ext = { .dpa = 0, .len = 2 * MiB };
    g_autoptr(GArray) events = NULL;
    uint64_t hpa = dcd_hpa(d, MiB);
    g_autofree char *args = g_strdup_printf(
        "{'host-id': 0, 'removal-policy': 'prescriptive', 'region': 0,"
        " 'sanitize-on-release': %s,"
        " 'extents': [{'offset': 0, 'len': 2097152}]}",
        sanitize ? "true" : "false");

    dcd_add_accept(d, 0, "[{'offset': 0, 'len': 2097152}]");
    dcd_hdm_commit(d, DCD_CAPACITY);
    qtest_writeq(d->qts, hpa, DCD_PATTERN);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, DCD_PATTERN);

    assert_ok(dcd_qmp_release(d->qts, args));
    events = dcd_drain_dc_events(d);
    assert_release_events(events, CXL_DC_EVENT_RELEASE, &ext, 1);
    g_assert_cmphex(dcd_release(d, &ext, 1), ==, CXL_RC_SUCCESS);
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==, 0);

    dcd_add_accept(d, 0, "[{'offset': 0, 'len': 2097152}]");
    g_assert_cmphex(qtest_readq(d->qts, hpa), ==,
                    sanitize ? 0 : DCD_PATTERN);
    dcd_quit(d);
}

static void test_release_sanitize(void)
{
    do_release_sanitize(true);
}

static void test_release_no_sanitize(void)
{
    do_release_sanitize(false);
}

/* Free and contiguous: the device picks the extents */
static void test_add_free_contiguous(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;

    dcd_add_accept(d, 0, "[{'offset': 2097152, 'len': 2097152}]");
    assert_ok(dcd_qmp(d->qts, "cxl-add-dynamic-capacity",
                      "{'host-id': 0, 'selection-policy': 'free',"
                      " 'region': 0, 'length': 6291456}"));
    events = dcd_drain_dc_events(d);
    assert_add_events(events, (DcdExtent[]) { { .dpa = 0, .len = 2 * MiB },
                                              { .dpa = 4 * MiB,
                                                .len = 4 * MiB } }, 2);
    assert_ok(dcd_qmp(d->qts, "cxl-add-dynamic-capacity",
                      "{'host-id': 0, 'selection-policy': 'contiguous',"
                      " 'region': 1, 'length': 8388608}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    assert_add_events(events, (DcdExtent[]) { { .dpa = DCD_REGION_LEN,
                                                .len = 8 * MiB } }, 1);
    dcd_quit(d);
}

/*
 * Every refused QMP request names what is wrong and changes nothing:
 * no record reaches the host and the extent list stays as it was.
 */
static const struct {
    const char *cmd;
    const char *args;
    const char *error;
} bad_requests[] = {
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': []}", "the extent list is empty" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 0, 'len': 0}]}", "extent 0: length is 0" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 4194304, 'len': 2097152},"
      " {'offset': 65536, 'len': 2097152}]}",
      "extent 1: offset 0x10000 or length 0x200000 is not aligned" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 1,"
      " 'extents': [{'offset': 534773760, 'len': 4194304}]}",
      "extent 0: offset 0x1fe00000 length 0x400000 extends beyond"
      " region 1" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 18446744073707454464, 'len': 4194304}]}",
      "extends beyond region 0" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 4194304, 'len': 4194304},"
      " {'offset': 6291456, 'len': 2097152}]}",
      "extent 1: overlaps extent 0 of the same request" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 0, 'len': 4194304}]}",
      "extent 0: overlaps accepted extent at offset 0x0 length 0x200000" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 1,"
      " 'extents': [{'offset': 2097152, 'len': 2097152}]}",
      "extent 0: overlaps pending extent at offset 0x0 length 0x400000" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 2,"
      " 'extents': [{'offset': 0, 'len': 2097152}]}",
      "region 2 does not exist: the device has 2 DC regions" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 1, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 8388608, 'len': 2097152}]}",
      "host 1 does not exist: the device has 1 host" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'tag': 'not-a-uuid',"
      " 'extents': [{'offset': 8388608, 'len': 2097152}]}",
      "tag 'not-a-uuid' is not a UUID" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'enable-shared-access',"
      " 'region': 0, 'extents': [{'offset': 8388608, 'len': 2097152}]}",
      "enable-shared-access needs capacity shared with a second host" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'free', 'region': 0,"
      " 'extents': [{'offset': 8388608, 'len': 2097152}]}",
      "selection policy 'free' takes a length, not an extent list" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'contiguous', 'region': 0}",
      "selection policy 'contiguous' needs a length" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'contiguous', 'region': 0,"
      " 'length': 1073741824}",
      "region 0 has no free range of 0x40000000 bytes" },
    { "cxl-add-dynamic-capacity",
      "{'host-id': 0, 'selection-policy': 'prescriptive', 'region': 0,"
      " 'length': 2097152}",
      "selection policy 'prescriptive' takes an extent list, not a length" },
    { "cxl-release-dynamic-capacity",
      "{'host-id': 0, 'removal-policy': 'prescriptive', 'region': 0,"
      " 'extents': [{'offset': 2097152, 'len': 2097152}]}",
      "extent 0: offset 0x200000 length 0x200000 is not all accepted"
      " capacity" },
    { "cxl-release-dynamic-capacity",
      "{'host-id': 0, 'removal-policy': 'prescriptive', 'region': 1,"
      " 'extents': [{'offset': 0, 'len': 2097152}]}",
      "extent 0: overlaps pending extent at offset 0x0 length 0x400000,"
      " which the host has not accepted" },
    { "cxl-release-dynamic-capacity",
      "{'host-id': 0, 'removal-policy': 'prescriptive', 'region': 0}",
      "the extent list is empty" },
    { "cxl-release-dynamic-capacity",
      "{'host-id': 0, 'removal-policy': 'tag-based', 'region': 0}",
      "tag-based removal needs a non-null tag" },
    { "cxl-release-dynamic-capacity",
      "{'host-id': 0, 'removal-policy': 'tag-based', 'region': 0,"
      " 'tag': '" TAG_A "', 'extents': [{'offset': 0, 'len': 2097152}]}",
      "tag-based removal takes a tag, not an extent list" },
    { "cxl-release-dynamic-capacity",
      "{'host-id': 0, 'removal-policy': 'tag-based', 'region': 0,"
      " 'tag': '" TAG_B "'}",
      "no accepted extent of region 0 has tag " TAG_B },
};

static void test_qmp_errors(void)
{
    Dcd *d = dcd_boot();
    const DcdExtent accepted = { .dpa = 0, .len = 2 * MiB };
    g_autoptr(GArray) pending = NULL;
    uint32_t gen;
    guint i;

    /* Region 0: one accepted extent; region 1: one pending extent */
    dcd_add_accept(d, 0, "[{'offset': 0, 'len': 2097152}]");
    pending = dcd_offer(d, 1, "[{'offset': 0, 'len': 4194304}]");
    gen = dcd_generation(d);

    for (i = 0; i < ARRAY_SIZE(bad_requests); i++) {
        g_autoptr(GArray) events = NULL;

        assert_error(dcd_qmp(d->qts, bad_requests[i].cmd,
                             bad_requests[i].args), bad_requests[i].error);
        events = dcd_drain_dc_events(d);
        g_assert_cmpuint(events->len, ==, 0);
        assert_extent_list(d, &accepted, 1);
        g_assert_cmpuint(dcd_generation(d), ==, gen);
    }
    /* The pending offer is intact: the host can still accept it */
    g_assert_cmphex(dcd_add_response(d, &g_array_index(pending, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_SUCCESS);
    assert_extent_list(d, (DcdExtent[]) { accepted,
                                          { .dpa = DCD_REGION_LEN,
                                            .len = 4 * MiB } }, 2);
    dcd_quit(d);
}

/*
 * Add Dynamic Capacity Response with nothing pending: upstream QEMU
 * dereferenced the missing group.  Refused, and QEMU keeps running.
 */
static void test_mbox_response_nothing_pending(void)
{
    Dcd *d = dcd_boot();
    const DcdExtent ext = { .dpa = 0, .len = 2 * MiB };

    g_assert_cmphex(dcd_add_response(d, NULL, 0), ==, CXL_RC_INVALID_PA);
    g_assert_cmphex(dcd_add_response(d, &ext, 1), ==, CXL_RC_INVALID_PA);
    /* Alive and unchanged */
    assert_ok(qtest_qmp(d->qts, "{'execute': 'query-status'}"));
    assert_extent_list(d, NULL, 0);
    dcd_quit(d);
}

/* Fabric manager, CXL r3.1 section 7.6.7, through the switch mailbox CCI */

static Dcd *dcd_switch_boot(void)
{
    Dcd *d = dcd_probe(qtest_init(DCD_SWITCH_MACHINE));

    g_assert(d->swcci);
    /* The root port, then the switch's upstream and downstream ports */
    g_assert_cmpuint(d->ports->len, ==, 3);
    return d;
}

/*
 * Send FM API command @opcode to the component behind downstream port
 * @port of the switch in a Tunnel Management Command (CXL r3.1 section
 * 7.6.7.3.1) and return the switch CCI's return code.  @rsp, of
 * d->fm.payload_max bytes, receives the response payload and *@rsp_len
 * its length.
 */
static uint16_t dcd_tunnel_run(Dcd *d, uint8_t port, uint16_t opcode,
                               const void *in, size_t in_len,
                               DcdTunnelOut *rsp, size_t *rsp_len)
{
    size_t len = sizeof(DcdTunnelIn) + in_len;
    g_autofree DcdTunnelIn *req = g_malloc0(len);

    g_assert(d->swcci);
    g_assert_cmpuint(in_len, <=, CXL_CCI_PL_LEN_MASK);
    req->port_or_ld = port;
    req->target_type = CXL_TUNNEL_TARGET_PORT_OR_LD;
    stw_le_p(&req->size, sizeof(req->msg) + in_len);
    req->msg.category = CXL_CCI_CAT_REQ;
    req->msg.tag = ++d->fm_tag;
    req->msg.command = opcode & 0xff;
    req->msg.command_set = opcode >> 8;
    st24_le_p(req->msg.pl_length, in_len);
    if (in_len) {
        memcpy(req->payload, in, in_len);
    }
    *rsp_len = d->fm.payload_max;
    return dcd_mbox_run(&d->fm, CXL_OP_TUNNEL_MGMT, req, len, rsp, rsp_len);
}

/*
 * Run FM API command @opcode on the DCD behind downstream port
 * DCD_SW_PORT and return the tunneled command's return code; @out and
 * @out_len as for dcd_mbox_run().
 */
static uint16_t dcd_fm(Dcd *d, uint16_t opcode, const void *in,
                       size_t in_len, void *out, size_t *out_len)
{
    g_autofree DcdTunnelOut *rsp = g_malloc0(d->fm.payload_max);
    size_t len, pl_len;

    g_assert(!out == !out_len);
    g_assert_cmphex(dcd_tunnel_run(d, DCD_SW_PORT, opcode, in, in_len, rsp,
                                   &len),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, >=, sizeof(*rsp));
    /* Response Length counts the CCI message, header and payload */
    g_assert_cmpuint(lduw_le_p(&rsp->len), ==,
                     len - offsetof(DcdTunnelOut, msg));
    g_assert_cmpuint(rsp->msg.category & CXL_CCI_CAT_MASK, ==,
                     CXL_CCI_CAT_RSP);
    g_assert_cmpuint(rsp->msg.tag, ==, d->fm_tag);
    g_assert_cmphex(rsp->msg.command | rsp->msg.command_set << 8, ==,
                    opcode);
    pl_len = rsp->msg.pl_length[0] | rsp->msg.pl_length[1] << 8 |
             rsp->msg.pl_length[2] << 16;
    g_assert_cmphex(pl_len & CXL_CCI_PL_BO, ==, 0);
    g_assert_cmpuint(pl_len, ==, len - sizeof(*rsp));
    if (out) {
        g_assert_cmpuint(pl_len, <=, *out_len);
        memcpy(out, rsp->payload, pl_len);
        *out_len = pl_len;
    }
    return lduw_le_p(&rsp->msg.rc);
}

static void dcd_fm_get_dcd_info(Dcd *d, DcdFmInfoOut *info)
{
    size_t len = sizeof(*info);

    memset(info, 0, sizeof(*info));
    g_assert_cmphex(dcd_fm(d, CXL_OP_FM_GET_DCD_INFO, NULL, 0, info, &len),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, ==, sizeof(*info));
}

/*
 * One Get DC Region Extent Lists call for host 0: append up to @count
 * extents from index @start to @extents.
 */
static uint16_t dcd_fm_get_extent_list(Dcd *d, uint32_t start,
                                       uint32_t count, GArray *extents,
                                       uint32_t *total, uint32_t *generation)
{
    DcdFmGetExtentsIn in = { 0 };
    g_autofree uint8_t *buf = g_malloc0(d->fm.payload_max);
    DcdFmGetExtentsOut *out = (DcdFmGetExtentsOut *)buf;
    size_t len = d->fm.payload_max;
    uint32_t n;
    uint16_t rc;

    stl_le_p(&in.count, count);
    stl_le_p(&in.start_index, start);
    rc = dcd_fm(d, CXL_OP_FM_GET_DC_EXTENTS, &in, sizeof(in), buf, &len);
    if (rc != CXL_RC_SUCCESS) {
        return rc;
    }
    g_assert_cmpuint(len, >=, sizeof(*out));
    g_assert_cmpuint(lduw_le_p(&out->host_id), ==, 0);
    g_assert_cmpuint(ldl_le_p(&out->start_index), ==, start);
    n = ldl_le_p(&out->count);
    g_assert_cmpuint(n, <=, count);
    g_assert_cmpuint(len, ==, sizeof(*out) + n * sizeof(out->extents[0]));
    *total = ldl_le_p(&out->total);
    *generation = ldl_le_p(&out->generation);
    g_assert_cmpuint(n, <=, *total - MIN(start, *total));

    dcd_append_extents(extents, out->extents, n);
    return rc;
}

/*
 * The accepted extent list as the fabric manager reads it, @page
 * extents at a time (0: as many as the switch CCI's payload holds; the
 * device returns fewer if its own payload is smaller), and its
 * generation number in *@generation.
 */
static GArray *dcd_fm_extents(Dcd *d, uint32_t page, uint32_t *generation)
{
    if (!page) {
        page = (d->fm.payload_max - sizeof(DcdTunnelOut) -
                sizeof(DcdFmGetExtentsOut)) / sizeof(DcdExtentRaw);
    }
    return dcd_read_extents(d, dcd_fm_get_extent_list, page, generation);
}

/*
 * An Initiate Dynamic Capacity Add or Release payload for host 0 and
 * @region with the @n extents @exts; *@size is its length.
 */
static DcdFmInitiateIn *dcd_fm_initiate_in(uint8_t region, uint8_t policy,
                                           uint64_t len,
                                           const DcdExtent *exts,
                                           uint32_t n, size_t *size)
{
    DcdFmInitiateIn *in;
    uint32_t i;

    *size = sizeof(*in) + n * sizeof(in->extents[0]);
    in = g_malloc0(*size);
    in->policy = policy;
    in->region = region;
    stq_le_p(&in->len, len);
    stl_le_p(&in->count, n);
    for (i = 0; i < n; i++) {
        stq_le_p(&in->extents[i].start_dpa, exts[i].dpa);
        stq_le_p(&in->extents[i].len, exts[i].len);
    }
    return in;
}

/*
 * Initiate Dynamic Capacity Add (@opcode CXL_OP_FM_INITIATE_ADD,
 * @policy a selection policy) or Release (CXL_OP_FM_INITIATE_RELEASE,
 * @policy the flags) for host 0.
 */
static uint16_t dcd_fm_initiate(Dcd *d, uint16_t opcode, uint8_t region,
                                uint8_t policy, uint64_t len,
                                const DcdExtent *exts, uint32_t n)
{
    size_t size;
    g_autofree DcdFmInitiateIn *in = dcd_fm_initiate_in(region, policy, len,
                                                        exts, n, &size);

    return dcd_fm(d, opcode, in, size, NULL, NULL);
}

/* Assert that every record of @events is about @region */
static void assert_events_region(GArray *events, uint8_t region)
{
    guint i;

    for (i = 0; i < events->len; i++) {
        g_assert_cmpuint(g_array_index(events, DcdEvent, i).region, ==,
                         region);
    }
}

/*
 * The fabric manager adds capacity of @region, the host reads the offer
 * and accepts all of it; return the records the host read.
 */
static GArray *dcd_fm_add_accept(Dcd *d, uint8_t region, uint8_t policy,
                                 uint64_t len, const DcdExtent *exts,
                                 uint32_t n)
{
    GArray *events;
    g_autofree DcdExtent *accept = NULL;

    g_assert_cmphex(dcd_fm_initiate(d, CXL_OP_FM_INITIATE_ADD, region,
                                    policy, len, exts, n),
                    ==, CXL_RC_SUCCESS);
    events = dcd_drain_dc_events(d);
    g_assert_cmpuint(events->len, >, 0);
    assert_events_region(events, region);
    accept = dcd_event_extents(events);
    g_assert_cmphex(dcd_add_response(d, accept, events->len), ==,
                    CXL_RC_SUCCESS);
    return events;
}

/*
 * Assert that the fabric manager reads exactly @exp at generation @gen,
 * as the host does.
 */
static void assert_fm_extent_list(Dcd *d, const DcdExtent *exp, guint n,
                                  uint32_t gen)
{
    g_autoptr(GArray) extents = NULL;
    uint32_t fm_gen;

    extents = dcd_fm_extents(d, 0, &fm_gen);
    assert_extents(extents, exp, n);
    g_assert_cmpuint(fm_gen, ==, gen);
    assert_extent_list(d, exp, n);
    g_assert_cmpuint(dcd_generation(d), ==, gen);
}

static void test_fm_get_dcd_info(void)
{
    Dcd *d = dcd_switch_boot();
    DcdFmInfoOut info;
    DcdConfig cfg;
    unsigned i;

    dcd_fm_get_dcd_info(d, &info);
    g_assert_cmpuint(info.num_hosts, ==, 1);
    g_assert_cmpuint(info.num_regions, ==, DCD_NUM_REGIONS);
    g_assert_cmphex(lduw_le_p(&info.add_policies), ==,
                    BIT(CXL_FM_SELECT_FREE) | BIT(CXL_FM_SELECT_CONTIGUOUS) |
                    BIT(CXL_FM_SELECT_PRESCRIPTIVE));
    g_assert_cmphex(lduw_le_p(&info.removal_policies), ==,
                    BIT(CXL_FM_REMOVE_TAG_BASED) |
                    BIT(CXL_FM_REMOVE_PRESCRIPTIVE));
    g_assert_cmpuint(ldq_le_p(&info.total_capacity), ==,
                     DCD_CAPACITY / CXL_CAPACITY_UNIT);
    for (i = 0; i < ARRAY_SIZE(info.block_sizes); i++) {
        uint64_t sizes = ldq_le_p(&info.block_sizes[i]);

        /* Bit n set: blocks of 2^n bytes are supported */
        if (i < DCD_NUM_REGIONS) {
            g_assert_cmphex(sizes & DCD_BLOCK_SIZE, ==, DCD_BLOCK_SIZE);
        } else {
            g_assert_cmphex(sizes, ==, 0);
        }
    }

    /* The host reaches the same device through the switch */
    g_assert_cmphex(dcd_get_dc_config(d, &cfg), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(cfg.num_regions, ==, DCD_NUM_REGIONS);
    g_assert_cmphex(cfg.regions[1].base, ==, DCD_REGION_LEN);
    dcd_quit(d);
}

/* Region 1 extents, named by DPA as the FM API names them */
static const DcdExtent fm_extents[] = {
    { .dpa = DCD_REGION_LEN, .len = 128 * MiB },
    { .dpa = DCD_REGION_LEN + 256 * MiB, .len = 2 * MiB },
};

static void test_fm_add_prescriptive(void)
{
    Dcd *d = dcd_switch_boot();
    g_autoptr(GArray) events = NULL;
    g_autofree DcdExtent *accept = NULL;
    uint32_t gen0;

    gen0 = dcd_generation(d);
    g_assert_cmphex(dcd_fm_initiate(d, CXL_OP_FM_INITIATE_ADD, 1,
                                    CXL_FM_SELECT_PRESCRIPTIVE, 0,
                                    fm_extents, ARRAY_SIZE(fm_extents)),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmphex(dcd_event_status(d) & BIT(CXL_EVENT_LOG_DC), !=, 0);
    events = dcd_drain_dc_events(d);
    assert_add_events(events, fm_extents, ARRAY_SIZE(fm_extents));
    assert_events_region(events, 1);
    /* Nothing is the host's until it answers */
    assert_fm_extent_list(d, NULL, 0, gen0);

    accept = dcd_event_extents(events);
    g_assert_cmphex(dcd_add_response(d, accept, events->len), ==,
                    CXL_RC_SUCCESS);
    g_assert_cmpuint(dcd_generation(d), !=, gen0);
    assert_fm_extent_list(d, fm_extents, ARRAY_SIZE(fm_extents),
                          dcd_generation(d));
    /* One extent per call too, to cover paging */
    g_clear_pointer(&events, g_array_unref);
    events = dcd_fm_extents(d, 1, NULL);
    assert_extents(events, fm_extents, ARRAY_SIZE(fm_extents));
    dcd_quit(d);
}

/* Free and contiguous: the FM names a length, the device the extents */
static void test_fm_add_free(void)
{
    Dcd *d = dcd_switch_boot();
    const DcdExtent used = { .dpa = 2 * MiB, .len = 2 * MiB };
    const DcdExtent chosen[] = {
        { .dpa = 0, .len = 2 * MiB },
        { .dpa = 4 * MiB, .len = 4 * MiB },
        { .dpa = DCD_REGION_LEN, .len = 8 * MiB },
    };
    g_autoptr(GArray) events = NULL;

    events = dcd_fm_add_accept(d, 0, CXL_FM_SELECT_PRESCRIPTIVE, 0, &used,
                               1);
    g_clear_pointer(&events, g_array_unref);
    events = dcd_fm_add_accept(d, 0, CXL_FM_SELECT_FREE, 6 * MiB, NULL, 0);
    assert_add_events(events, chosen, 2);
    g_clear_pointer(&events, g_array_unref);
    events = dcd_fm_add_accept(d, 1, CXL_FM_SELECT_CONTIGUOUS, 8 * MiB,
                               NULL, 0);
    assert_add_events(events, &chosen[2], 1);
    assert_fm_extent_list(d, (DcdExtent[]) { chosen[0], used, chosen[1],
                                             chosen[2] }, 4,
                          dcd_generation(d));
    dcd_quit(d);
}

static void test_fm_release(void)
{
    Dcd *d = dcd_switch_boot();
    const DcdExtent third = { .dpa = 256 * MiB, .len = 2 * MiB };
    g_autoptr(GArray) events = NULL;
    uint32_t gen;

    events = dcd_fm_add_accept(d, 0, CXL_FM_SELECT_PRESCRIPTIVE, 0,
                               two_extents, 2);
    gen = dcd_generation(d);

    /* Prescriptive: the host is asked and gives the capacity back */
    g_assert_cmphex(dcd_fm_initiate(d, CXL_OP_FM_INITIATE_RELEASE, 0,
                                    CXL_FM_REMOVE_PRESCRIPTIVE, 0,
                                    two_extents, 2),
                    ==, CXL_RC_SUCCESS);
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    assert_release_events(events, CXL_DC_EVENT_RELEASE, two_extents, 2);
    assert_events_region(events, 0);
    /* Still the host's until it releases */
    assert_fm_extent_list(d, two_extents, 2, gen);
    g_assert_cmphex(dcd_release(d, two_extents, 2), ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(dcd_generation(d), !=, gen);
    assert_fm_extent_list(d, NULL, 0, dcd_generation(d));

    /* Forced: gone at once, the host is only told */
    g_clear_pointer(&events, g_array_unref);
    events = dcd_fm_add_accept(d, 0, CXL_FM_SELECT_PRESCRIPTIVE, 0, &third,
                               1);
    gen = dcd_generation(d);
    g_assert_cmphex(dcd_fm_initiate(d, CXL_OP_FM_INITIATE_RELEASE, 0,
                                    CXL_FM_REMOVE_PRESCRIPTIVE |
                                    CXL_FM_RELEASE_FORCED, 0, &third, 1),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(dcd_generation(d), !=, gen);
    assert_fm_extent_list(d, NULL, 0, dcd_generation(d));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    assert_release_events(events, CXL_DC_EVENT_FORCED_RELEASE, &third, 1);
    g_assert_cmphex(dcd_release(d, &third, 1), ==, CXL_RC_INVALID_PA);
    dcd_quit(d);
}

/*
 * Refused Initiate requests, on a device with an accepted extent in
 * region 0 and a pending one in region 1: the tunneled return code
 * names the fault and nothing changes.
 */
static const DcdExtent fm_accepted = { .dpa = 0, .len = 2 * MiB };
static const DcdExtent fm_pending = { .dpa = DCD_REGION_LEN, .len = 4 * MiB };

static const struct {
    const char *what;
    uint16_t opcode;
    uint16_t host_id;
    uint8_t region;
    uint8_t policy;
    uint64_t len;
    uint32_t count;             /* Extent Count */
    uint32_t n;                 /* extents in the payload */
    DcdExtent ext[2];
    uint16_t rc;
} fm_bad_requests[] = {
    { "add: 2 extents counted, 1 sent", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 2, 1,
      { { 8 * MiB, 2 * MiB } }, CXL_RC_INVALID_PL_LEN },
    { "add: 2^32 - 1 extents counted, 1 sent", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, UINT32_MAX, 1,
      { { 8 * MiB, 2 * MiB } }, CXL_RC_INVALID_PL_LEN },
    { "release: 2 extents counted, 1 sent", CXL_OP_FM_INITIATE_RELEASE, 0,
      0, CXL_FM_REMOVE_PRESCRIPTIVE, 0, 2, 1,
      { { 0, 2 * MiB } }, CXL_RC_INVALID_PL_LEN },
    { "add: region 2", CXL_OP_FM_INITIATE_ADD, 0, DCD_NUM_REGIONS,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { 2 * DCD_REGION_LEN, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "release: region 2", CXL_OP_FM_INITIATE_RELEASE, 0, DCD_NUM_REGIONS,
      CXL_FM_REMOVE_PRESCRIPTIVE, 0, 1, 1,
      { { 2 * DCD_REGION_LEN, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "add: host 1", CXL_OP_FM_INITIATE_ADD, 1, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { 8 * MiB, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "add: overlaps the pending extent", CXL_OP_FM_INITIATE_ADD, 0, 1,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { DCD_REGION_LEN + 2 * MiB, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "add: overlaps the accepted extent", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { 0, 4 * MiB } }, CXL_RC_INVALID_INPUT },
    { "add: extents overlap each other", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 2, 2,
      { { 8 * MiB, 4 * MiB }, { 10 * MiB, 2 * MiB } },
      CXL_RC_INVALID_INPUT },
    { "add: DPA below the region", CXL_OP_FM_INITIATE_ADD, 0, 1,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { 8 * MiB, 2 * MiB } }, CXL_RC_INVALID_PA },
    { "add: beyond the region", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { DCD_REGION_LEN - 2 * MiB, 4 * MiB } }, CXL_RC_INVALID_INPUT },
    { "add: misaligned", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 1, 1,
      { { 8 * MiB + 4096, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "add: no extent", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE, 0, 0, 0, { }, CXL_RC_INVALID_INPUT },
    { "add: free, length 0", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_FREE, 0, 0, 0, { }, CXL_RC_INVALID_INPUT },
    { "add: contiguous, larger than the region", CXL_OP_FM_INITIATE_ADD, 0,
      0, CXL_FM_SELECT_CONTIGUOUS, DCD_REGION_LEN, 0, 0, { },
      CXL_RC_INVALID_INPUT },
    { "add: enable shared access", CXL_OP_FM_INITIATE_ADD, 0, 0,
      CXL_FM_SELECT_PRESCRIPTIVE + 1, 0, 1, 1,
      { { 8 * MiB, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "release: the pending extent", CXL_OP_FM_INITIATE_RELEASE, 0, 1,
      CXL_FM_REMOVE_PRESCRIPTIVE, 0, 1, 1,
      { { DCD_REGION_LEN, 4 * MiB } }, CXL_RC_INVALID_INPUT },
    { "release: free capacity", CXL_OP_FM_INITIATE_RELEASE, 0, 0,
      CXL_FM_REMOVE_PRESCRIPTIVE, 0, 1, 1,
      { { 8 * MiB, 2 * MiB } }, CXL_RC_INVALID_INPUT },
    { "release: tag-based, null tag", CXL_OP_FM_INITIATE_RELEASE, 0, 0,
      CXL_FM_REMOVE_TAG_BASED, 0, 0, 0, { }, CXL_RC_INVALID_INPUT },
};

/* Nothing reached the host, and both see the extent list unchanged */
static void assert_fm_unchanged(Dcd *d, uint32_t gen)
{
    g_autoptr(GArray) events = NULL;

    g_assert_cmphex(dcd_event_status(d) & BIT(CXL_EVENT_LOG_DC), ==, 0);
    events = dcd_drain_dc_events(d);
    g_assert_cmpuint(events->len, ==, 0);
    assert_fm_extent_list(d, &fm_accepted, 1, gen);
}

static void test_fm_errors(void)
{
    Dcd *d = dcd_switch_boot();
    g_autoptr(GArray) pending = NULL;
    g_autofree DcdTunnelOut *rsp = g_malloc0(d->fm.payload_max);
    DcdFmGetExtentsIn get = { 0 };
    size_t size, len;
    uint32_t gen;
    guint i;

    g_array_unref(dcd_fm_add_accept(d, 0, CXL_FM_SELECT_PRESCRIPTIVE, 0,
                                    &fm_accepted, 1));
    g_assert_cmphex(dcd_fm_initiate(d, CXL_OP_FM_INITIATE_ADD, 1,
                                    CXL_FM_SELECT_PRESCRIPTIVE, 0,
                                    &fm_pending, 1),
                    ==, CXL_RC_SUCCESS);
    pending = dcd_drain_dc_events(d);
    g_assert_cmpuint(pending->len, ==, 1);
    gen = dcd_generation(d);

    for (i = 0; i < ARRAY_SIZE(fm_bad_requests); i++) {
        g_autofree DcdFmInitiateIn *in = NULL;

        g_test_message("%s", fm_bad_requests[i].what);
        in = dcd_fm_initiate_in(fm_bad_requests[i].region,
                                fm_bad_requests[i].policy,
                                fm_bad_requests[i].len,
                                fm_bad_requests[i].ext,
                                fm_bad_requests[i].n, &size);
        stw_le_p(&in->host_id, fm_bad_requests[i].host_id);
        stl_le_p(&in->count, fm_bad_requests[i].count);
        g_assert_cmphex(dcd_fm(d, fm_bad_requests[i].opcode, in, size,
                               NULL, NULL),
                        ==, fm_bad_requests[i].rc);
        assert_fm_unchanged(d, gen);
    }

    /* Payloads shorter than the fixed fields */
    {
        g_autofree DcdFmInitiateIn *in = NULL;

        in = dcd_fm_initiate_in(0, CXL_FM_SELECT_FREE, 2 * MiB, NULL, 0,
                                &size);
        g_assert_cmphex(dcd_fm(d, CXL_OP_FM_INITIATE_ADD, in, size - 1,
                               NULL, NULL),
                        ==, CXL_RC_INVALID_PL_LEN);
        g_assert_cmphex(dcd_fm(d, CXL_OP_FM_INITIATE_RELEASE, in, size - 1,
                               NULL, NULL),
                        ==, CXL_RC_INVALID_PL_LEN);
    }
    g_assert_cmphex(dcd_fm(d, CXL_OP_FM_GET_DC_EXTENTS, &get,
                           sizeof(get) - 1, NULL, NULL),
                    ==, CXL_RC_INVALID_PL_LEN);
    /* No device behind the other downstream port: nothing to tunnel to */
    g_assert_cmphex(dcd_tunnel_run(d, DCD_SW_PORT_EMPTY,
                                   CXL_OP_FM_GET_DCD_INFO, NULL, 0, rsp,
                                   &len),
                    ==, CXL_RC_INVALID_INPUT);
    assert_fm_unchanged(d, gen);

    /* The pending offer is intact: the host can still accept it */
    g_assert_cmphex(dcd_add_response(d, &fm_pending, 1), ==,
                    CXL_RC_SUCCESS);
    assert_fm_extent_list(d, (DcdExtent[]) { fm_accepted, fm_pending }, 2,
                          dcd_generation(d));
    dcd_quit(d);
}

/*
 * The walkthrough of docs/system/devices/cxl.rst, "Dynamic Capacity
 * Devices", run as written: its command line starts the machine, each
 * "->" line is sent over QMP and the "<-" lines that follow must match
 * the reply or the event (timestamps aside).  A comment
 * ".. walkthrough-host: accept" or "release" makes the host driver
 * accept every extent offered, or release every range asked for.
 */
typedef struct DocBlock {
    char *host_action;          /* set for a walkthrough-host comment */
    GPtrArray *lines;           /* of char *: a literal block */
} DocBlock;

static void doc_block_free(gpointer p)
{
    DocBlock *b = p;

    g_free(b->host_action);
    if (b->lines) {
        g_ptr_array_unref(b->lines);
    }
    g_free(b);
}

/* The literal blocks and host comments of the DCD section, in order */
static GPtrArray *doc_walkthrough(void)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "..", "..",
                                                  "docs", "system",
                                                  "devices", "cxl.rst",
                                                  NULL);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GPtrArray *blocks = g_ptr_array_new_with_free_func(doc_block_free);
    bool in_section = false, want_block = false;
    int i;

    g_assert(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        const char *l = lines[i];

        if (lines[i + 1] && g_str_has_prefix(lines[i + 1], "---")) {
            in_section = !strcmp(l, "Dynamic Capacity Devices");
            continue;
        }
        if (!in_section) {
            continue;
        }
        if (g_str_has_prefix(l, ".. walkthrough-host: ")) {
            DocBlock *b = g_new0(DocBlock, 1);

            b->host_action = g_strdup(l + strlen(".. walkthrough-host: "));
            g_ptr_array_add(blocks, b);
        } else if (g_str_has_suffix(l, "::")) {
            want_block = true;
        } else if (want_block && l[0] == ' ') {
            DocBlock *b = g_new0(DocBlock, 1);

            b->lines = g_ptr_array_new_with_free_func(g_free);
            for (; lines[i] && (lines[i][0] == ' ' || !lines[i][0]); i++) {
                if (lines[i][0]) {
                    g_ptr_array_add(b->lines, g_strstrip(g_strdup(lines[i])));
                }
            }
            i--;
            want_block = false;
            g_ptr_array_add(blocks, b);
        }
    }
    g_assert_cmpuint(blocks->len, >, 0);
    return blocks;
}

/* Join the lines of the QMP message at *@i, which starts "->" or "<-" */
static char *doc_message(GPtrArray *lines, guint *i)
{
    GString *s = g_string_new(g_ptr_array_index(lines, *i));

    for ((*i)++; *i < lines->len; (*i)++) {
        const char *l = g_ptr_array_index(lines, *i);

        if (g_str_has_prefix(l, "->") || g_str_has_prefix(l, "<-")) {
            break;
        }
        g_string_append_c(s, ' ');
        g_string_append(s, l);
    }
    return g_string_free(s, false);
}

static void assert_qobject_equal(QObject *got, QObject *exp)
{
    if (!qobject_is_equal(got, exp)) {
        g_autoptr(GString) g = qobject_to_json_pretty(got, true);
        g_autoptr(GString) e = qobject_to_json_pretty(exp, true);

        g_error("got:\n%s\nexpected:\n%s", g->str, e->str);
    }
}

/* The machine of a "qemu-system-x86_64 ..." block, without -qmp */
static Dcd *doc_start(GPtrArray *lines)
{
    g_autoptr(GString) cmd = g_string_new(NULL);
    g_autoptr(GString) args = g_string_new(NULL);
    g_auto(GStrv) words = NULL;
    guint i;

    for (i = 0; i < lines->len; i++) {
        const char *l = g_ptr_array_index(lines, i);

        g_string_append(cmd, l);
        if (g_str_has_suffix(cmd->str, "\\")) {
            g_string_truncate(cmd, cmd->len - 1);
        }
        g_string_append_c(cmd, ' ');
    }
    words = g_strsplit_set(cmd->str, " ", -1);
    g_assert_cmpstr(words[0], ==, "qemu-system-x86_64");
    for (i = 1; words[i]; i++) {
        if (!strcmp(words[i], "-qmp")) {
            i++;
        } else if (words[i][0]) {
            g_string_append_printf(args, "%s ", words[i]);
        }
    }
    return dcd_probe(qtest_init(args->str));
}

/* Play the host: accept every extent offered, or release all asked for */
static void doc_host(Dcd *d, const char *action)
{
    g_autoptr(GArray) events = dcd_drain_dc_events(d);
    g_autofree DcdExtent *exts = dcd_event_extents(events);

    g_assert_cmpuint(events->len, >, 0);
    if (!strcmp(action, "accept")) {
        g_assert_cmphex(dcd_add_response(d, exts, events->len), ==,
                        CXL_RC_SUCCESS);
    } else if (!strcmp(action, "release")) {
        g_assert_cmphex(dcd_release(d, exts, events->len), ==,
                        CXL_RC_SUCCESS);
    } else {
        g_error("unknown walkthrough-host action '%s'", action);
    }
}

static void doc_qmp(Dcd *d, GPtrArray *lines)
{
    g_autoptr(QDict) reply = NULL;
    guint i = 0;

    while (i < lines->len) {
        g_autofree char *msg = doc_message(lines, &i);
        QObject *obj = qobject_from_json(msg + 2, &error_abort);

        if (g_str_has_prefix(msg, "->")) {
            g_assert(!reply);
            reply = qtest_qmp(d->qts, "%p", obj);
        } else {
            g_autoptr(QDict) exp = qobject_to(QDict, obj);

            if (qdict_haskey(exp, "event")) {
                g_autoptr(QDict) ev = qtest_qmp_eventwait_ref(
                    d->qts, qdict_get_str(exp, "event"));

                assert_qobject_equal(qdict_get(ev, "data"),
                                     qdict_get(exp, "data"));
            } else {
                g_assert(reply);
                qdict_del(reply, "id");
                assert_qobject_equal(QOBJECT(reply), QOBJECT(exp));
                qobject_unref(reply);
                reply = NULL;
            }
        }
    }
    g_assert(!reply);
}

static void test_doc_walkthrough(void)
{
    g_autoptr(GPtrArray) blocks = doc_walkthrough();
    unsigned qmp = 0, host = 0;
    Dcd *d = NULL;
    guint i;

    for (i = 0; i < blocks->len; i++) {
        DocBlock *b = g_ptr_array_index(blocks, i);
        const char *first = b->lines ? g_ptr_array_index(b->lines, 0) : "";

        if (b->host_action) {
            g_assert(d);
            doc_host(d, b->host_action);
            host++;
        } else if (g_str_has_prefix(first, "qemu-system-x86_64")) {
            g_assert(!d);
            d = doc_start(b->lines);
        } else if (g_str_has_prefix(first, "->") ||
                   g_str_has_prefix(first, "<-")) {
            g_assert(d);
            doc_qmp(d, b->lines);
            qmp++;
        }
    }
    /* The walkthrough has all its parts: nothing was skipped. */
    g_assert(d);
    g_assert_cmpuint(qmp, >=, 5);
    g_assert_cmpuint(host, ==, 2);
    dcd_quit(d);
}

/* QMP events and query-cxl-dynamic-capacity */

static const char *const dcd_event_names[] = {
    "CXL_DYNAMIC_CAPACITY_ACCEPTED",
    "CXL_DYNAMIC_CAPACITY_REJECTED",
    "CXL_DYNAMIC_CAPACITY_RELEASED",
    "CXL_DYNAMIC_CAPACITY_SANITIZED",
    "CXL_DYNAMIC_CAPACITY_CANCELLED",
};

/*
 * Wait for event @name and return its data; assert that no other
 * dynamic capacity event came with it: each change is reported once.
 */
static QDict *dcd_event_once(Dcd *d, const char *name)
{
    QDict *ev = qtest_qmp_eventwait_ref(d->qts, name);
    QDict *data = qdict_get_qdict(ev, "data");
    guint i;

    qobject_ref(data);
    qobject_unref(ev);
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, DCD_PATH);
    /* A round trip, so that any further event has arrived by now */
    assert_ok(qtest_qmp(d->qts, "{'execute': 'query-status'}"));
    for (i = 0; i < ARRAY_SIZE(dcd_event_names); i++) {
        QDict *more = qtest_qmp_event_ref(d->qts, dcd_event_names[i]);

        if (more) {
            g_error("unexpected second event %s", dcd_event_names[i]);
        }
    }
    return data;
}

/* Parse an extent of a QMP reply into the host's view of it. */
static DcdExtent qmp_extent(QDict *e)
{
    DcdExtent ext = {
        .dpa = qdict_get_int(e, "region") * DCD_REGION_LEN +
               qdict_get_int(e, "offset"),
        .len = qdict_get_int(e, "length"),
        .shared_seq = qdict_get_int(e, "shared-sequence"),
    };

    if (qdict_haskey(e, "tag")) {
        QemuUUID tag;

        g_assert(qemu_uuid_parse(qdict_get_str(e, "tag"), &tag) == 0);
        memcpy(ext.tag, tag.data, sizeof(ext.tag));
    }
    return ext;
}

/* Assert that the extent list @list of an event is exactly @exp. */
static void assert_qmp_extents(QList *list, const DcdExtent *exp, guint n)
{
    QListEntry *entry;
    guint i = 0;

    QLIST_FOREACH_ENTRY(list, entry) {
        DcdExtent got = qmp_extent(qobject_to(QDict, entry->value));

        g_assert_cmpuint(i, <, n);
        assert_extent(&got, exp[i].dpa, exp[i].len);
        i++;
    }
    g_assert_cmpuint(i, ==, n);
}

/*
 * query-cxl-dynamic-capacity and the host's Get Dynamic Capacity Extent
 * List agree on every extent (address, length, tag and sequence, in the
 * host's byte layout), on their number and on the generation.
 */
static void assert_query_matches_host(Dcd *d)
{
    QDict *rsp = qtest_qmp(d->qts, "{'execute': 'query-cxl-dynamic-capacity',"
                           " 'arguments': {'path': %s}}", DCD_PATH);
    QList *devs = qdict_get_qlist(rsp, "return");
    QDict *info = qobject_to(QDict, qlist_peek(devs));
    g_autoptr(GArray) host = g_array_new(false, true, sizeof(DcdExtent));
    g_autoptr(GArray) seen = g_array_new(false, true, sizeof(DcdExtent));
    QListEntry *r, *e;
    uint32_t total, gen;
    guint i;

    g_assert_cmpuint(qlist_size(devs), ==, 1);
    g_assert_cmpstr(qdict_get_str(info, "path"), ==, DCD_PATH);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "regions"), r) {
        QDict *region = qobject_to(QDict, r->value);

        QLIST_FOREACH_ENTRY(qdict_get_qlist(region, "accepted"), e) {
            DcdExtent ext = qmp_extent(qobject_to(QDict, e->value));

            g_array_append_val(seen, ext);
        }
    }
    do {
        g_assert_cmphex(dcd_get_extent_list(d, host->len, 64, host, &total,
                                            &gen), ==, CXL_RC_SUCCESS);
    } while (host->len < total);
    g_assert_cmpuint(seen->len, ==, host->len);
    for (i = 0; i < host->len; i++) {
        DcdExtent *a = &g_array_index(seen, DcdExtent, i);
        DcdExtent *b = &g_array_index(host, DcdExtent, i);

        g_assert_cmphex(a->dpa, ==, b->dpa);
        g_assert_cmphex(a->len, ==, b->len);
        g_assert(!memcmp(a->tag, b->tag, sizeof(a->tag)));
        g_assert_cmpuint(a->shared_seq, ==, b->shared_seq);
    }
    g_assert_cmpuint(qdict_get_int(info, "generation"), ==, gen);
    qobject_unref(rsp);
}

static void test_events_accept_all(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(QDict) ev = NULL;

    dcd_add_accept(d, 0, TWO_EXTENTS);
    ev = dcd_event_once(d, "CXL_DYNAMIC_CAPACITY_ACCEPTED");
    g_assert_cmpint(qdict_get_int(ev, "host-id"), ==, 0);
    g_assert_cmpint(qdict_get_int(ev, "region"), ==, 0);
    assert_qmp_extents(qdict_get_qlist(ev, "accepted"), two_extents, 2);
    assert_qmp_extents(qdict_get_qlist(ev, "declined"), NULL, 0);
    assert_query_matches_host(d);
    dcd_quit(d);
}

static void test_events_accept_part(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = dcd_offer(d, 1, TWO_EXTENTS);
    const DcdExtent part = { .dpa = DCD_REGION_LEN + 128 * MiB,
                             .len = 64 * MiB };
    g_autoptr(QDict) ev = NULL;

    g_assert_cmphex(dcd_add_response(d, &part, 1), ==, CXL_RC_SUCCESS);
    ev = dcd_event_once(d, "CXL_DYNAMIC_CAPACITY_ACCEPTED");
    g_assert_cmpint(qdict_get_int(ev, "region"), ==, 1);
    assert_qmp_extents(qdict_get_qlist(ev, "accepted"), &part, 1);
    assert_qmp_extents(qdict_get_qlist(ev, "declined"), (DcdExtent[]) {
                           { .dpa = DCD_REGION_LEN, .len = 128 * MiB },
                           { .dpa = DCD_REGION_LEN + 192 * MiB,
                             .len = 64 * MiB } }, 2);
    assert_query_matches_host(d);
    dcd_quit(d);
}

static void test_events_reject(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = dcd_offer(d, 0, TWO_EXTENTS);
    g_autoptr(QDict) ev = NULL;

    g_assert_cmphex(dcd_add_response(d, NULL, 0), ==, CXL_RC_SUCCESS);
    ev = dcd_event_once(d, "CXL_DYNAMIC_CAPACITY_REJECTED");
    assert_qmp_extents(qdict_get_qlist(ev, "extents"), two_extents, 2);
    assert_query_matches_host(d);
    dcd_quit(d);
}

/* Release @ext and check the RELEASED event names it and @reason. */
static void expect_released(Dcd *d, const DcdExtent *ext,
                            const char *reason)
{
    g_autoptr(QDict) ev = dcd_event_once(d, "CXL_DYNAMIC_CAPACITY_RELEASED");

    g_assert_cmpstr(qdict_get_str(ev, "reason"), ==, reason);
    assert_qmp_extents(qdict_get_qlist(ev, "extents"), ext, 1);
    assert_query_matches_host(d);
}

static void dcd_accept_two(Dcd *d)
{
    dcd_add_accept(d, 0, TWO_EXTENTS);
    qobject_unref(dcd_event_once(d, "CXL_DYNAMIC_CAPACITY_ACCEPTED"));
}

static void test_events_host_release(void)
{
    Dcd *d = dcd_boot();

    dcd_accept_two(d);
    g_assert_cmphex(dcd_release(d, &two_extents[0], 1), ==, CXL_RC_SUCCESS);
    expect_released(d, &two_extents[0], "host");
    dcd_quit(d);
}

static void test_events_fm_release(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;

    dcd_accept_two(d);
    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'prescriptive',"
                              " 'region': 0, 'extents': [{'offset': 134217728,"
                              " 'len': 134217728}]}"));
    events = dcd_drain_dc_events(d);
    g_assert_cmpuint(events->len, ==, 1);
    g_assert_cmphex(dcd_release(d, &two_extents[1], 1), ==, CXL_RC_SUCCESS);
    expect_released(d, &two_extents[1], "requested");
    dcd_quit(d);
}

static void test_events_forced(void)
{
    Dcd *d = dcd_boot();

    dcd_accept_two(d);
    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'prescriptive',"
                              " 'forced-removal': true, 'region': 0,"
                              " 'extents': [{'offset': 0,"
                              " 'len': 134217728}]}"));
    expect_released(d, &two_extents[0], "forced");
    dcd_quit(d);
}

static void test_events_sanitize(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = NULL;
    g_autoptr(QDict) ev = NULL;

    dcd_accept_two(d);
    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'prescriptive',"
                              " 'sanitize-on-release': true, 'region': 0,"
                              " 'extents': [{'offset': 0,"
                              " 'len': 134217728}]}"));
    events = dcd_drain_dc_events(d);
    g_assert_cmphex(dcd_release(d, &two_extents[0], 1), ==, CXL_RC_SUCCESS);
    ev = qtest_qmp_eventwait_ref(d->qts, "CXL_DYNAMIC_CAPACITY_RELEASED");
    qobject_unref(ev);
    ev = dcd_event_once(d, "CXL_DYNAMIC_CAPACITY_SANITIZED");
    assert_qmp_extents(qdict_get_qlist(ev, "extents"), &two_extents[0], 1);
    assert_query_matches_host(d);
    dcd_quit(d);
}

/*
 * A tunnel request whose CCI message claims a longer payload than the
 * request carries is refused by the switch, not passed on to read past
 * the end of the input (upstream QEMU over-read it).
 */
static void test_fm_tunnel_length(void)
{
    Dcd *d = dcd_switch_boot();
    size_t len = sizeof(DcdTunnelIn) + 8;
    g_autofree DcdTunnelIn *req = g_malloc0(len);
    g_autofree uint8_t *rsp = g_malloc0(d->fm.payload_max);
    size_t rsp_len = d->fm.payload_max;

    req->port_or_ld = DCD_SW_PORT;
    req->target_type = CXL_TUNNEL_TARGET_PORT_OR_LD;
    stw_le_p(&req->size, sizeof(req->msg) + 8);
    req->msg.category = CXL_CCI_CAT_REQ;
    req->msg.command = CXL_OP_FM_INITIATE_ADD & 0xff;
    req->msg.command_set = CXL_OP_FM_INITIATE_ADD >> 8;
    st24_le_p(req->msg.pl_length, 0x1000);
    g_assert_cmphex(dcd_mbox_run(&d->fm, CXL_OP_TUNNEL_MGMT, req, len, rsp,
                                 &rsp_len), ==, CXL_RC_INVALID_PL_LEN);
    dcd_quit(d);
}

/*
 * CXL r3.1 Table 8-57: Event Interrupt Policy.
 * Bits 1:0 of each setting are the mode, bits 7:4 the message number.
 */
typedef struct DcdIntPolicy {
    uint8_t info;
    uint8_t warn;
    uint8_t failure;
    uint8_t fatal;
    uint8_t dyn_cap;
} QEMU_PACKED DcdIntPolicy;
QEMU_BUILD_BUG_ON(sizeof(DcdIntPolicy) != 0x5);

#define CXL_INT_MSI_MSIX 0x1

/*
 * The host enables MSI/MSI-X for the Dynamic Capacity log and reads
 * back the message number it must listen on: the one the device uses
 * for that log, shared with the informational log.
 */
static void test_mbox_interrupt_policy(void)
{
    Dcd *d = dcd_boot();
    DcdIntPolicy set = {
        .info = CXL_INT_MSI_MSIX, .warn = CXL_INT_MSI_MSIX,
        .failure = CXL_INT_MSI_MSIX, .fatal = CXL_INT_MSI_MSIX,
        .dyn_cap = CXL_INT_MSI_MSIX,
    };
    DcdIntPolicy get = {};
    size_t len = sizeof(get);

    g_assert_cmphex(dcd_mbox(d, CXL_OP_SET_INT_POLICY, &set, sizeof(set),
                             NULL, NULL), ==, CXL_RC_SUCCESS);
    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_INT_POLICY, NULL, 0, &get, &len),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(len, ==, sizeof(get));
    g_assert_cmphex(get.dyn_cap & 0x3, ==, CXL_INT_MSI_MSIX);
    g_assert_cmphex(get.info & 0x3, ==, CXL_INT_MSI_MSIX);
    g_assert_cmphex(get.dyn_cap >> 4, ==, get.info >> 4);
    g_assert_cmphex(get.dyn_cap >> 4, !=, 0);
    dcd_quit(d);
}


/* Misbehaving hosts: each refused with the right code, nothing changes */

/* Assert the accepted list and the pending offers are as they were. */
static void assert_unchanged(Dcd *d, const DcdExtent *accepted, guint n,
                             uint32_t gen, guint pending)
{
    QDict *rsp = qtest_qmp(d->qts, "{'execute': 'query-cxl-dynamic-capacity',"
                           " 'arguments': {'path': %s}}", DCD_PATH);
    QDict *info = qobject_to(QDict, qlist_peek(qdict_get_qlist(rsp,
                                                               "return")));

    assert_extent_list(d, accepted, n);
    g_assert_cmpuint(dcd_generation(d), ==, gen);
    g_assert_cmpuint(qlist_size(qdict_get_qlist(info, "pending-adds")), ==,
                     pending);
    qobject_unref(rsp);
}

static void test_host_accept_wrong(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) first = dcd_offer(d, 0, "[{'offset': 0,"
                                              " 'len': 4194304}]");
    g_autoptr(GArray) second = dcd_offer(d, 0, "[{'offset': 8388608,"
                                               " 'len': 2097152}]");
    const DcdExtent never = { .dpa = 64 * MiB, .len = 2 * MiB };
    const DcdExtent spill = { .dpa = 2 * MiB, .len = 4 * MiB };
    uint32_t gen = dcd_generation(d);

    /* Never offered, only partly offered, offered later than the oldest */
    g_assert_cmphex(dcd_add_response(d, &never, 1), ==, CXL_RC_INVALID_PA);
    g_assert_cmphex(dcd_add_response(d, &spill, 1), ==, CXL_RC_INVALID_PA);
    g_assert_cmphex(dcd_add_response(d, &g_array_index(second, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_INVALID_PA);
    assert_unchanged(d, NULL, 0, gen, 2);

    /* The oldest, then the same again: nothing of it is pending now */
    g_assert_cmphex(dcd_add_response(d, &g_array_index(first, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_SUCCESS);
    gen = dcd_generation(d);
    g_assert_cmphex(dcd_add_response(d, &g_array_index(first, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_INVALID_PA);
    assert_unchanged(d, &g_array_index(first, DcdEvent, 0).extent, 1, gen, 1);
    dcd_quit(d);
}

/*
 * A response in parts that never finishes: the offer stays pending with
 * what it staged, later offers queue behind it, and the host can still
 * finish it.
 */
static void test_host_more_never_finishes(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) events = dcd_offer(d, 0, TWO_EXTENTS);
    g_autoptr(GArray) later = NULL;
    QDict *rsp, *info, *add;

    g_assert_cmphex(dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE,
                                             two_extents, 1, 1),
                    ==, CXL_RC_SUCCESS);
    later = dcd_offer(d, 1, "[{'offset': 0, 'len': 2097152}]");
    g_assert_cmpuint(later->len, ==, 1);
    rsp = qtest_qmp(d->qts, "{'execute': 'query-cxl-dynamic-capacity',"
                    " 'arguments': {'path': %s}}", DCD_PATH);
    info = qobject_to(QDict, qlist_peek(qdict_get_qlist(rsp, "return")));
    g_assert_cmpuint(qlist_size(qdict_get_qlist(info, "pending-adds")), ==,
                     2);
    add = qobject_to(QDict, qlist_peek(qdict_get_qlist(info,
                                                       "pending-adds")));
    assert_qmp_extents(qdict_get_qlist(add, "staged"), two_extents, 1);
    qobject_unref(rsp);
    assert_extent_list(d, NULL, 0);

    g_assert_cmphex(dcd_add_response(d, &two_extents[1], 1), ==,
                    CXL_RC_SUCCESS);
    assert_extent_list(d, two_extents, 2);
    dcd_quit(d);
}

/*
 * Add DC Response and Release DC whose payload is shorter than the
 * count of extents it declares, up to 2^32 - 1.
 */
static void test_host_short_payload(void)
{
    Dcd *d = dcd_boot();
    static const uint32_t counts[] = { 2, 85, 0x10000, 0xffffffff };
    size_t len = sizeof(DcdUpdateExtentsIn) + sizeof(DcdUpdatedExtentRaw);
    g_autofree DcdUpdateExtentsIn *in = g_malloc0(len);
    g_autoptr(GArray) events = dcd_offer(d, 0, TWO_EXTENTS);
    uint32_t gen = dcd_generation(d);
    guint i;

    stq_le_p(&in->extents[0].start_dpa, 0);
    stq_le_p(&in->extents[0].len, 128 * MiB);
    for (i = 0; i < ARRAY_SIZE(counts); i++) {
        stl_le_p(&in->count, counts[i]);
        g_assert_cmphex(dcd_mbox(d, CXL_OP_ADD_DC_RESPONSE, in, len, NULL,
                                 NULL), ==, CXL_RC_INVALID_PL_LEN);
        g_assert_cmphex(dcd_mbox(d, CXL_OP_RELEASE_DC, in, len, NULL, NULL),
                        ==, CXL_RC_INVALID_PL_LEN);
    }
    /* Shorter than the fixed header */
    g_assert_cmphex(dcd_mbox(d, CXL_OP_ADD_DC_RESPONSE, in, 4, NULL, NULL),
                    ==, CXL_RC_INVALID_PL_LEN);
    assert_unchanged(d, NULL, 0, gen, 1);
    dcd_quit(d);
}

/* Release DC with nothing in it, or of a range the host never had */
static void test_host_release_wrong(void)
{
    Dcd *d = dcd_boot();
    const DcdExtent beyond = { .dpa = 2 * DCD_REGION_LEN, .len = 2 * MiB };
    const DcdExtent wrap = { .dpa = UINT64_MAX - MiB + 1, .len = 2 * MiB };
    const DcdExtent misaligned = { .dpa = 4096, .len = 2 * MiB };
    uint32_t gen;

    dcd_add_accept(d, 0, TWO_EXTENTS);
    gen = dcd_generation(d);
    g_assert_cmphex(dcd_release(d, NULL, 0), ==, CXL_RC_INVALID_INPUT);
    g_assert_cmphex(dcd_release(d, &beyond, 1), ==, CXL_RC_INVALID_PA);
    g_assert_cmphex(dcd_release(d, &wrap, 1), ==, CXL_RC_INVALID_PA);
    g_assert_cmphex(dcd_release(d, &misaligned, 1), ==,
                    CXL_RC_INVALID_EXTENTS);
    g_assert_cmphex(dcd_release(d, (DcdExtent[]) { two_extents[0],
                                                   two_extents[0] }, 2),
                    ==, CXL_RC_INVALID_EXTENTS);
    assert_unchanged(d, two_extents, 2, gen, 0);
    dcd_quit(d);
}

/*
 * num-dc-regions above 8 overflowed the device's region array in
 * upstream QEMU: a device that asks for 9 is refused at creation.
 */
static void test_too_many_regions(void)
{
    QTestState *qts = qtest_init(
        "-machine q35,cxl=on "
        "-object memory-backend-ram,id=dc-mem0,size=1G "
        "-object memory-backend-ram,id=dc-mem1,size=9G "
        "-device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 "
        "-device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0 "
        "-device cxl-rp,id=rp1,bus=cxl.0,chassis=0,slot=1 "
        "-device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0,"
        "num-dc-regions=2,id=cxl-dcd0 "
        "-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G ");

    assert_error(qtest_qmp(qts, "{'execute': 'device_add', 'arguments': {"
                           " 'driver': 'cxl-type3', 'bus': 'rp1',"
                           " 'volatile-dc-memdev': 'dc-mem1',"
                           " 'num-dc-regions': 9, 'id': 'cxl-dcd1'}}"),
                 "num-dc-regions 9 is more than the 8 DC regions a device"
                 " supports");
    /* QEMU is alive, and the backend is free for a valid device */
    assert_ok(qtest_qmp(qts, "{'execute': 'device_add', 'arguments': {"
                        " 'driver': 'cxl-type3', 'bus': 'rp1',"
                        " 'volatile-dc-memdev': 'dc-mem1',"
                        " 'num-dc-regions': 3, 'id': 'cxl-dcd1'}}"));
    qtest_quit(qts);
}

/*
 * Set DC Region Configuration with a region index past the device's
 * regions: upstream QEMU read the region before checking the index.
 */
static void test_fm_set_region_config_bad_index(void)
{
    Dcd *d = dcd_switch_boot();
    struct {
        uint8_t region;
        uint8_t rsvd[3];
        uint64_t block_size;
        uint8_t flags;
        uint8_t rsvd2[3];
    } QEMU_PACKED in = { .region = 200 };

    stq_le_p(&in.block_size, 2 * MiB);
    g_assert_cmphex(dcd_fm(d, CXL_OP_FM_SET_REGION_CONFIG, &in, sizeof(in),
                           NULL, NULL), ==, CXL_RC_INVALID_INPUT);
    in.region = 0;
    g_assert_cmphex(dcd_fm(d, CXL_OP_FM_SET_REGION_CONFIG, &in, sizeof(in),
                           NULL, NULL), ==, CXL_RC_SUCCESS);
    dcd_quit(d);
}


/* Mask or unmask MSI-X vector @vec of the device */
static void dcd_msix_mask(Dcd *d, uint16_t vec, bool mask)
{
    uint64_t off = d->dev->msix_table_off + vec * PCI_MSIX_ENTRY_SIZE +
                   PCI_MSIX_ENTRY_VECTOR_CTRL;

    qpci_io_writel(d->dev, d->dev->msix_table_bar, off,
                   mask ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

/*
 * The device interrupts the host whenever Dynamic Capacity records
 * enter its event log: when an offer is queued, and again when records
 * held back by a full log move in as the host clears it.  Vectors are
 * masked, so an interrupt shows as the vector's pending bit.
 */
static void test_interrupt_on_records(void)
{
    Dcd *d = dcd_boot();
    QPCIDevice *rp = dcd_root_port(d);
    uint64_t window = (uint64_t)(qpci_config_readw(rp, PCI_MEMORY_BASE) &
                                 0xfff0) << 16;
    DcdIntPolicy set = {
        .info = CXL_INT_MSI_MSIX, .dyn_cap = CXL_INT_MSI_MSIX,
    };
    DcdIntPolicy get = {};
    size_t len = sizeof(get);
    g_autoptr(GString) json = g_string_new("[");
    g_autoptr(GArray) records = g_array_new(false, true,
                                            sizeof(DcdEventRaw));
    uint16_t handles[8];
    uint8_t flags;
    uint16_t vec;
    guint i;

    g_assert_cmphex(dcd_mbox(d, CXL_OP_SET_INT_POLICY, &set, sizeof(set),
                             NULL, NULL), ==, CXL_RC_SUCCESS);
    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_INT_POLICY, NULL, 0, &get, &len),
                    ==, CXL_RC_SUCCESS);
    vec = get.dyn_cap >> 4;
    qpci_msix_enable(d->dev);
    dcd_open_port(rp, window, d->bus->mmio_alloc_ptr);
    g_assert(!qpci_msix_pending(d->dev, vec));

    /* 12 extents: 8 records fit the log, 4 wait */
    for (i = 0; i < 12; i++) {
        g_string_append_printf(json, "%s{'offset': %u, 'len': 2097152}",
                               i ? "," : "", i * 4 * 1048576);
    }
    g_string_append(json, "]");
    assert_ok(dcd_add(d->qts, 0, json->str));
    g_assert(qpci_msix_pending(d->dev, vec));

    /* Deliver it, which clears the pending bit, and mask again */
    dcd_msix_mask(d, vec, false);
    g_assert(!qpci_msix_pending(d->dev, vec));
    dcd_msix_mask(d, vec, true);

    /* Clearing the 8 logged records lets the other 4 in: interrupt */
    g_assert_cmphex(dcd_get_events(d, CXL_EVENT_LOG_DC, records, &flags), ==,
                    CXL_RC_SUCCESS);
    g_assert_cmpuint(records->len, ==, 8);
    for (i = 0; i < 8; i++) {
        handles[i] = lduw_le_p(&g_array_index(records, DcdEventRaw,
                                              i).hdr.handle);
    }
    g_assert(!qpci_msix_pending(d->dev, vec));
    g_assert_cmphex(dcd_clear_events(d, CXL_EVENT_LOG_DC, handles, 8), ==,
                    CXL_RC_SUCCESS);
    g_assert(qpci_msix_pending(d->dev, vec));
    dcd_quit(d);
}


/* Migration */

/*
 * Migrate @d's machine, started with @args, to a new QEMU, through a
 * socket or, with @to_file, through a file; the host driver goes on
 * with the destination, whose QMP replaces the source's.
 */
static void dcd_migrate(Dcd *d, const char *args, bool to_file)
{
    g_autofree char *path = g_strdup_printf("%s/dcd-migrate-%d.%s",
                                            g_get_tmp_dir(), getpid(),
                                            to_file ? "bin" : "sock");
    g_autofree char *uri = g_strdup_printf("%s:%s", to_file ? "file" : "unix",
                                           path);
    g_autofree char *dst_args = g_strdup_printf("%s -incoming %s", args, uri);
    QTestState *dst = NULL;
    const char *status;
    QDict *rsp;
    int tries;

    if (!to_file) {
        dst = qtest_init(dst_args);
    }
    assert_ok(qtest_qmp(d->qts, "{'execute': 'migrate',"
                        " 'arguments': {'uri': %s}}", uri));
    for (tries = 0; tries < 6000; tries++) {
        rsp = qtest_qmp(d->qts, "{'execute': 'query-migrate'}");
        status = qdict_get_str(qdict_get_qdict(rsp, "return"), "status");
        if (!strcmp(status, "completed") || !strcmp(status, "failed")) {
            break;
        }
        qobject_unref(rsp);
        g_usleep(10 * 1000);
    }
    g_assert_cmpstr(status, ==, "completed");
    qobject_unref(rsp);
    qtest_quit(d->qts);
    if (to_file) {
        dst = qtest_init(dst_args);
        unlink(path);
    }
    qtest_qmp_eventwait(dst, "RESUME");
    d->qts = dst;
    d->bus->qts = dst;
    d->mbox.qts = dst;
}

#define MIGRATE_TAG_A "0b4e6d6a-5c1d-4f0e-9a2b-3c4d5e6f7a8b"
#define MIGRATE_TAG_B "1c5f7e7b-6d2e-4a1f-8b3c-4d5e6f708192"

/*
 * What a device holds when it moves or is reset, and what the host
 * driver knows of it
 */
typedef struct DcdInFlight {
    DcdExtent b_ext;            /* accepted, tag B, asked back */
    DcdExtent offered[12];      /* pending: 4 records read and answered */
    uint64_t hpa;               /* data written here, in tag A */
    uint32_t gen;
} DcdInFlight;

#define IN_FLIGHT_READ 4

/*
 * Give @d accepted extents of two tags with data written to them, a
 * release the host has seen and not answered, and an offer of 12
 * extents whose record chain the host has only partly read, and partly
 * answered with a response in parts (More set).
 */
static void in_flight_prepare(Dcd *d, DcdInFlight *m)
{
    g_autoptr(GString) json = g_string_new("[");
    g_autoptr(GArray) events = NULL;
    g_autoptr(GArray) records = g_array_new(false, true,
                                            sizeof(DcdEventRaw));
    uint16_t handles[IN_FLIGHT_READ];
    uint8_t flags;
    guint i;

    m->b_ext = (DcdExtent) { .dpa = DCD_REGION_LEN, .len = 4 * MiB };
    m->hpa = dcd_hpa(d, 64 * MiB);
    assert_ok(dcd_qmp(d->qts, "cxl-add-dynamic-capacity",
                      "{'host-id': 0, 'selection-policy': 'prescriptive',"
                      " 'region': 0, 'tag': '" MIGRATE_TAG_A "', 'extents': "
                      TWO_EXTENTS "}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    g_assert_cmphex(dcd_add_response(d, two_extents, 2), ==, CXL_RC_SUCCESS);
    assert_ok(dcd_qmp(d->qts, "cxl-add-dynamic-capacity",
                      "{'host-id': 0, 'selection-policy': 'prescriptive',"
                      " 'region': 1, 'tag': '" MIGRATE_TAG_B "', 'extents':"
                      " [{'offset': 0, 'len': 4194304}]}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    g_assert_cmphex(dcd_add_response(d, &m->b_ext, 1), ==, CXL_RC_SUCCESS);
    dcd_hdm_commit(d, DCD_CAPACITY);
    qtest_writeq(d->qts, m->hpa, DCD_PATTERN);

    /* A release the host has seen and not answered */
    assert_ok(dcd_qmp_release(d->qts,
                              "{'host-id': 0, 'removal-policy': 'tag-based',"
                              " 'region': 1, 'tag': '" MIGRATE_TAG_B "'}"));
    g_clear_pointer(&events, g_array_unref);
    events = dcd_drain_dc_events(d);
    g_assert_cmpuint(events->len, ==, 1);

    /* An offer of 12 extents: the host reads and clears 4 records */
    for (i = 0; i < 12; i++) {
        m->offered[i].dpa = 256 * MiB + i * 4 * MiB;
        m->offered[i].len = 2 * MiB;
        g_string_append_printf(json, "%s{'offset': %" PRIu64 ", 'len': %"
                               PRIu64 "}", i ? "," : "", m->offered[i].dpa,
                               m->offered[i].len);
    }
    g_string_append(json, "]");
    assert_ok(dcd_add(d->qts, 0, json->str));
    g_assert_cmphex(dcd_get_events(d, CXL_EVENT_LOG_DC, records, &flags), ==,
                    CXL_RC_SUCCESS);
    for (i = 0; i < IN_FLIGHT_READ; i++) {
        DcdEvent e;

        dcd_parse_dc_event(&g_array_index(records, DcdEventRaw, i), &e);
        assert_extent(&e.extent, m->offered[i].dpa, m->offered[i].len);
        handles[i] = e.handle;
    }
    g_assert_cmphex(dcd_clear_events(d, CXL_EVENT_LOG_DC, handles,
                                     IN_FLIGHT_READ), ==, CXL_RC_SUCCESS);
    /* ... and accepts them in a first part of its response */
    g_assert_cmphex(dcd_update_extents_flags(d, CXL_OP_ADD_DC_RESPONSE,
                                             m->offered, IN_FLIGHT_READ,
                                             CXL_DC_EVENT_FLAG_MORE), ==,
                    CXL_RC_SUCCESS);
    m->gen = dcd_generation(d);
}

/*
 * The state of in_flight_prepare() is all there, and the host goes on:
 * it reads the rest of the chain, accepts the rest of the offer with
 * the last part of its response, answers the release, and the data
 * stays.
 */
static void in_flight_finish(Dcd *d, DcdInFlight *m)
{
    g_autoptr(GArray) events = NULL;
    g_autoptr(QDict) ev = NULL;

    /* The list, its generation and the data are there */
    assert_extent_list(d, (DcdExtent[]) { two_extents[0], two_extents[1],
                                          m->b_ext }, 3);
    g_assert_cmpuint(dcd_generation(d), ==, m->gen);
    g_assert_cmphex(qtest_readq(d->qts, m->hpa), ==, DCD_PATTERN);
    /* The rest of the chain: 8 records, More on all but the last */
    events = dcd_drain_dc_events(d);
    assert_add_events(events, m->offered + IN_FLIGHT_READ,
                      12 - IN_FLIGHT_READ);
    /* The host accepts the rest of the offer and answers the release */
    g_assert_cmphex(dcd_add_response(d, m->offered + IN_FLIGHT_READ,
                                     12 - IN_FLIGHT_READ), ==,
                    CXL_RC_SUCCESS);
    ev = qtest_qmp_eventwait_ref(d->qts, "CXL_DYNAMIC_CAPACITY_ACCEPTED");
    assert_qmp_extents(qdict_get_qlist(qdict_get_qdict(ev, "data"),
                                       "accepted"), m->offered, 12);
    qobject_unref(ev);
    ev = NULL;
    g_assert_cmphex(dcd_release(d, &m->b_ext, 1), ==, CXL_RC_SUCCESS);
    ev = qtest_qmp_eventwait_ref(d->qts, "CXL_DYNAMIC_CAPACITY_RELEASED");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"), ==,
                    "requested");
    g_assert_cmphex(qtest_readq(d->qts, m->hpa), ==, DCD_PATTERN);
    assert_query_matches_host(d);
}

/*
 * Migrate a device with the state of in_flight_prepare(); on the
 * destination the host carries on where it stopped.
 */
static void do_migrate(bool to_file)
{
    Dcd *d = dcd_boot();
    DcdInFlight m;

    in_flight_prepare(d, &m);
    dcd_migrate(d, DCD_MACHINE, to_file);
    in_flight_finish(d, &m);
    dcd_quit(d);
}

static void test_migrate_socket(void)
{
    do_migrate(false);
}

static void test_migrate_file(void)
{
    do_migrate(true);
}


/* Drop the QMP events of dynamic capacity received so far. */
static void dcd_flush_events(Dcd *d)
{
    QDict *ev;
    guint i;

    assert_ok(qtest_qmp(d->qts, "{'execute': 'query-status'}"));
    for (i = 0; i < ARRAY_SIZE(dcd_event_names); i++) {
        while ((ev = qtest_qmp_event_ref(d->qts, dcd_event_names[i]))) {
            qobject_unref(ev);
        }
    }
}

/* Assert that no QMP event of dynamic capacity has come. */
static void assert_no_events(Dcd *d)
{
    guint i;

    assert_ok(qtest_qmp(d->qts, "{'execute': 'query-status'}"));
    for (i = 0; i < ARRAY_SIZE(dcd_event_names); i++) {
        QDict *ev = qtest_qmp_event_ref(d->qts, dcd_event_names[i]);

        if (ev) {
            g_error("unexpected event %s", dcd_event_names[i]);
        }
    }
}

/* The device's entry of query-cxl-dynamic-capacity */
static QDict *dcd_query(Dcd *d)
{
    g_autoptr(QDict) rsp = qtest_qmp(d->qts,
                                     "{'execute': 'query-cxl-dynamic-capacity',"
                                     " 'arguments': {'path': %s}}", DCD_PATH);
    QDict *info = qobject_to(QDict,
                             qlist_peek(qdict_get_qlist(rsp, "return")));

    qobject_ref(info);
    return info;
}

/* Run the job @cmd with @args until it concludes; assert it succeeded. */
static void dcd_job(Dcd *d, const char *cmd, const char *args)
{
    QDict *a = qobject_to(QDict, qobject_from_json(args, &error_abort));
    const char *id = qdict_get_str(a, "job-id");
    g_autofree char *job = g_strdup(id);
    int tries;

    assert_ok(qtest_qmp(d->qts, "{'execute': %s, 'arguments': %p}", cmd, a));
    for (tries = 0; tries < 6000; tries++) {
        g_autoptr(QDict) rsp = qtest_qmp(d->qts, "{'execute': 'query-jobs'}");
        QListEntry *e;

        QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
            QDict *info = qobject_to(QDict, e->value);

            if (strcmp(qdict_get_str(info, "id"), job) ||
                strcmp(qdict_get_str(info, "status"), "concluded")) {
                continue;
            }
            if (qdict_haskey(info, "error")) {
                g_error("job %s failed: %s", job,
                        qdict_get_str(info, "error"));
            }
            assert_ok(qtest_qmp(d->qts, "{'execute': 'job-dismiss',"
                                " 'arguments': {'id': %s}}", job));
            return;
        }
        g_usleep(10 * 1000);
    }
    g_error("job %s did not conclude", job);
}

/*
 * A qcow2 image on @path for internal snapshots, node "snap", made over
 * QMP: the build has no qemu-img.
 */
static void dcd_snapshot_image(Dcd *d, const char *path)
{
    assert_ok(qtest_qmp(d->qts, "{'execute': 'blockdev-add', 'arguments':"
                        " {'driver': 'file', 'node-name': 'snap-file',"
                        " 'filename': %s}}", path));
    dcd_job(d, "blockdev-create",
            "{'job-id': 'create', 'options': {'driver': 'qcow2',"
            " 'file': 'snap-file', 'size': 67108864}}");
    assert_ok(qtest_qmp(d->qts, "{'execute': 'blockdev-add', 'arguments':"
                        " {'driver': 'qcow2', 'node-name': 'snap',"
                        " 'file': 'snap-file'}}"));
}

#define DCD_SNAPSHOT_ARGS \
    "{'job-id': 'snapshot', 'tag': 'dcd', 'vmstate': 'snap'," \
    " 'devices': ['snap']}"

/*
 * savevm with the state of in_flight_prepare(), then change all of it:
 * the host finishes the offer, answers the release, takes more capacity
 * and overwrites the data.  loadvm brings back exactly what was saved,
 * with no event, and the host carries on from there.
 */
static void test_migrate_savevm(void)
{
    Dcd *d = dcd_boot();
    g_autofree char *img = NULL;
    g_autoptr(QDict) saved = NULL;
    g_autoptr(QDict) now = NULL;
    g_autoptr(GArray) events = NULL;
    const DcdExtent more = { .dpa = DCD_REGION_LEN + 64 * MiB,
                             .len = 2 * MiB };
    DcdExtent list[2 + 12 + 1];
    DcdInFlight m;
    int fd;

    fd = g_file_open_tmp("dcd-savevm-XXXXXX.qcow2", &img, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    dcd_snapshot_image(d, img);
    in_flight_prepare(d, &m);
    saved = dcd_query(d);
    dcd_job(d, "snapshot-save", DCD_SNAPSHOT_ARGS);

    events = dcd_drain_dc_events(d);
    assert_add_events(events, m.offered + IN_FLIGHT_READ,
                      12 - IN_FLIGHT_READ);
    g_assert_cmphex(dcd_add_response(d, m.offered + IN_FLIGHT_READ,
                                     12 - IN_FLIGHT_READ), ==,
                    CXL_RC_SUCCESS);
    g_assert_cmphex(dcd_release(d, &m.b_ext, 1), ==, CXL_RC_SUCCESS);
    dcd_add_accept(d, 1, "[{'offset': 67108864, 'len': 2097152}]");
    list[0] = two_extents[0];
    list[1] = two_extents[1];
    memcpy(&list[2], m.offered, sizeof(m.offered));
    list[14] = more;
    assert_extent_list(d, list, ARRAY_SIZE(list));
    qtest_writeq(d->qts, m.hpa, ~DCD_PATTERN);
    now = dcd_query(d);
    g_assert(!qobject_is_equal(QOBJECT(now), QOBJECT(saved)));
    qobject_unref(now);
    now = NULL;
    dcd_flush_events(d);

    dcd_job(d, "snapshot-load", DCD_SNAPSHOT_ARGS);
    now = dcd_query(d);
    assert_qobject_equal(QOBJECT(now), QOBJECT(saved));
    assert_no_events(d);
    in_flight_finish(d, &m);
    dcd_quit(d);
    unlink(img);
}

/* Reset */

/* After a reset that cleared its registers, the host probes again. */
static Dcd *dcd_reprobe(Dcd *d)
{
    QTestState *qts = d->qts;

    dcd_free(d);
    return dcd_probe(qts);
}

/*
 * After a reset of the device alone, the bridges above it keep their
 * configuration: the host assigns the device's BARs again.
 */
static void dcd_reprobe_device(Dcd *d)
{
    d->bus->mmio_alloc_ptr = d->dev_mmio;
    dcd_map_register_blocks(d, d->dev, &d->comp_regs, &d->dev_regs);
    dcd_device_up(d);
}

/* Wait for CXL_DYNAMIC_CAPACITY_CANCELLED of @request; return its data */
static QDict *dcd_cancelled(Dcd *d, const char *request, const DcdExtent *exp,
                            guint n)
{
    QDict *ev = qtest_qmp_eventwait_ref(d->qts,
                                        "CXL_DYNAMIC_CAPACITY_CANCELLED");
    QDict *data = qdict_get_qdict(ev, "data");

    qobject_ref(data);
    qobject_unref(ev);
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, DCD_PATH);
    g_assert_cmpstr(qdict_get_str(data, "request"), ==, request);
    g_assert_cmpuint(qdict_get_int(data, "host-id"), ==, 0);
    assert_qmp_extents(qdict_get_qlist(data, "extents"), exp, n);
    return data;
}

/*
 * A conventional reset of a device in the state of in_flight_prepare()
 * cancelled each request in flight, with an event naming it.
 */
static void assert_reset_cancelled(Dcd *d, DcdInFlight *m, QDict *before)
{
    g_autoptr(QDict) add = NULL;
    g_autoptr(QDict) rel = NULL;
    QDict *pending_add, *pending_rel;

    pending_add = qobject_to(QDict,
                             qlist_peek(qdict_get_qlist(before,
                                                        "pending-adds")));
    pending_rel = qobject_to(QDict,
                             qlist_peek(qdict_get_qlist(before,
                                                        "pending-releases")));
    add = dcd_cancelled(d, "add", m->offered, 12);
    g_assert_cmpuint(qdict_get_int(add, "id"), ==,
                     qdict_get_int(pending_add, "id"));
    g_assert_cmpuint(qdict_get_int(add, "region"), ==, 0);
    rel = dcd_cancelled(d, "release", &m->b_ext, 1);
    g_assert_cmpuint(qdict_get_int(rel, "id"), ==,
                     qdict_get_int(pending_rel, "id"));
    g_assert_cmpuint(qdict_get_int(rel, "region"), ==, 1);
}

/*
 * After that reset the accepted extents, their generation and their
 * data stayed, nothing is pending, the event log is empty with its
 * interrupt off, and the fabric manager can offer the cancelled
 * capacity again.
 */
static void assert_reset_done(Dcd *d, DcdInFlight *m, QDict *before)
{
    g_autoptr(QDict) info = NULL;
    g_autoptr(GArray) records = g_array_new(false, true,
                                            sizeof(DcdEventRaw));
    g_autoptr(GArray) events = NULL;
    DcdIntPolicy pol = {};
    size_t len = sizeof(pol);
    uint8_t flags;

    assert_no_events(d);
    info = dcd_query(d);
    g_assert(!qlist_size(qdict_get_qlist(info, "pending-adds")));
    g_assert(!qlist_size(qdict_get_qlist(info, "pending-releases")));
    g_assert_cmpuint(qdict_get_int(info, "queued-records"), ==, 0);
    g_assert_cmpuint(qdict_get_int(info, "extents-available"), ==,
                     qdict_get_int(info, "extents-supported") - 3);
    assert_qobject_equal(qdict_get(info, "regions"),
                         qdict_get(before, "regions"));

    /* The host's view: the same extents, no record, no interrupt */
    assert_extent_list(d, (DcdExtent[]) { two_extents[0], two_extents[1],
                                          m->b_ext }, 3);
    g_assert_cmpuint(dcd_generation(d), ==, m->gen);
    assert_query_matches_host(d);
    g_assert_cmphex(dcd_get_events(d, CXL_EVENT_LOG_DC, records, &flags), ==,
                    CXL_RC_SUCCESS);
    g_assert_cmpuint(records->len, ==, 0);
    g_assert_cmphex(dcd_event_status(d) & BIT(CXL_EVENT_LOG_DC), ==, 0);
    g_assert_cmphex(dcd_mbox(d, CXL_OP_GET_INT_POLICY, NULL, 0, &pol, &len),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmphex(pol.dyn_cap & 0x3, ==, 0);
    g_assert_cmphex(qtest_readq(d->qts, m->hpa), ==, DCD_PATTERN);

    /* Offered capacity is free again; the host answers a new offer */
    events = dcd_offer(d, 0, "[{'offset': 268435456, 'len': 50331648}]");
    g_assert_cmpuint(events->len, ==, 1);
    g_assert_cmphex(dcd_add_response(d, &g_array_index(events, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_SUCCESS);
    g_assert_cmpuint(dcd_generation(d), !=, m->gen);
    assert_query_matches_host(d);
}

/*
 * system_reset: the whole machine, the device with it, goes through a
 * conventional reset; the host boots again and probes the device.
 */
static void test_reset_machine(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(QDict) before = NULL;
    DcdInFlight m;

    in_flight_prepare(d, &m);
    before = dcd_query(d);
    dcd_flush_events(d);
    assert_ok(qtest_qmp(d->qts, "{'execute': 'system_reset'}"));
    /* Waiting for an event drops the others: RESET comes last */
    assert_reset_cancelled(d, &m, before);
    qtest_qmp_eventwait(d->qts, "RESET");
    d = dcd_reprobe(d);
    dcd_hdm_commit(d, DCD_CAPACITY);
    assert_reset_done(d, &m, before);
    dcd_quit(d);
}

/*
 * Secondary Bus Reset through the root port's Bridge Control register
 * (PCI-to-PCI Bridge Architecture, section 3.2.5.18): a conventional
 * reset of the device alone.  The host bridge keeps its decoder.
 */
static void dcd_bus_reset(Dcd *d)
{
    QPCIDevice *rp = dcd_root_port(d);
    uint16_t ctl = qpci_config_readw(rp, PCI_BRIDGE_CONTROL);

    qpci_config_writew(rp, PCI_BRIDGE_CONTROL, ctl | PCI_BRIDGE_CTL_BUS_RESET);
    qpci_config_writew(rp, PCI_BRIDGE_CONTROL, ctl);
}

static void test_reset_bus(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(QDict) before = NULL;
    DcdInFlight m;

    in_flight_prepare(d, &m);
    before = dcd_query(d);
    dcd_flush_events(d);
    dcd_bus_reset(d);
    assert_reset_cancelled(d, &m, before);
    dcd_reprobe_device(d);
    dcd_hdm_commit(d, DCD_CAPACITY);
    assert_reset_done(d, &m, before);
    dcd_quit(d);
}

/*
 * A conventional reset aborts a background command in flight.  The
 * sanitize's timer used to outlive the reset of its CCI and complete
 * later: it reported a command the host had not sent since and
 * discarded the event records logged after the reset, an offer of
 * dynamic capacity among them.
 */
static void test_reset_background(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(GArray) records = g_array_new(false, true,
                                            sizeof(DcdEventRaw));
    g_autoptr(GArray) events = NULL;
    uint8_t flags;

    g_assert_cmphex(dcd_mbox(d, CXL_OP_SANITIZE, NULL, 0, NULL, NULL), ==,
                    CXL_RC_BG_STARTED);
    dcd_bus_reset(d);
    dcd_reprobe_device(d);
    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_STATUS) &
                    CXL_MBOX_STATUS_BG_OP, ==, 0);
    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_BG_STATUS),
                    ==, 0);

    /* An offer, then more than the virtual time the sanitize needed */
    assert_ok(dcd_add(d->qts, 0, "[{'offset': 0, 'len': 2097152}]"));
    qtest_clock_step(d->qts, 30 * 1000 * 1000 * 1000LL);
    g_assert_cmphex(qtest_readq(d->qts, d->mbox.regs + CXL_MBOX_BG_STATUS),
                    ==, 0);
    g_assert_cmphex(dcd_get_events(d, CXL_EVENT_LOG_DC, records, &flags), ==,
                    CXL_RC_SUCCESS);
    g_assert_cmpuint(records->len, ==, 1);

    /* The host answers it as if nothing had happened before */
    events = dcd_drain_dc_events(d);
    g_assert_cmpuint(events->len, ==, 1);
    g_assert_cmphex(dcd_add_response(d, &g_array_index(events, DcdEvent,
                                                       0).extent, 1),
                    ==, CXL_RC_SUCCESS);
    assert_extent_list(d, (DcdExtent[]) { { .dpa = 0, .len = 2097152 } }, 1);
    dcd_quit(d);
}

#define CXL_DVSEC_CAP           0x0a
#define CXL_DVSEC_CAP_RESET     BIT(7)
#define CXL_DVSEC_CTRL2         0x10
#define CXL_DVSEC_CTRL2_RESET   BIT(2)

/*
 * CXL Reset (CXL r3.1 section 9.7) is not implemented: the device does
 * not report it capable, and Initiate CXL Reset changes nothing.
 */
static void test_reset_cxl(void)
{
    Dcd *d = dcd_boot();
    g_autoptr(QDict) before = NULL;
    g_autoptr(QDict) after = NULL;
    uint16_t dvsec = dcd_find_dvsec(d, d->dev, CXL_DVSEC_DEVICE);
    DcdInFlight m;

    g_assert(dvsec);
    /* DVSEC CXL Capability is the upper half of the dword at 0x08 */
    g_assert_cmphex((dcd_ext_readl(d, d->dev, dvsec + CXL_DVSEC_CAP - 2) >>
                     16) & CXL_DVSEC_CAP_RESET, ==, 0);
    in_flight_prepare(d, &m);
    before = dcd_query(d);
    dcd_flush_events(d);
    dcd_ext_writew(d, d->dev, dvsec + CXL_DVSEC_CTRL2, CXL_DVSEC_CTRL2_RESET);
    after = dcd_query(d);
    assert_qobject_equal(QOBJECT(after), QOBJECT(before));
    assert_no_events(d);
    in_flight_finish(d, &m);
    dcd_quit(d);
}

/*
 * A stream whose Dynamic Capacity state is corrupt is refused with an
 * error naming what is wrong; the destination stays up and unchanged.
 */
typedef struct DcdCorruption {
    const char *what;
    uint32_t offset;            /* from the first count of the subsection */
    uint64_t value;             /* written big endian */
    unsigned size;
    const char *error;
} DcdCorruption;

/*
 * Offsets in the subsection "cxl-type3/dynamic-capacity" after its
 * version: 6 counts, generation, 2 ids (44 bytes), then 2 regions of 24
 * bytes, then extents of 40 bytes (dpa, len, tag, seq, kind, group).
 */
#define DC_SUB_REGIONS  44
#define DC_SUB_EXTENTS  (DC_SUB_REGIONS + 2 * 24)

static const DcdCorruption corruptions[] = {
    { "count", 4, 0xffffffff, 4, "exceed what the device can hold" },
    { "overlap", DC_SUB_EXTENTS + 40, 64 * MiB, 8,
      "accepted extent 1: dpa 0x4000000 overlaps accepted extent 0" },
    { "out of range", DC_SUB_EXTENTS, 4 * GiB, 8,
      "accepted extent 0: dpa 0x100000000 length 0x8000000 is not inside"
      " one DC region" },
    { "region base", DC_SUB_REGIONS, 256 * MiB, 8,
      "region 0: the stream has base 0x10000000" },
};

static void test_migrate_corrupt(void)
{
    g_autofree char *path = g_strdup_printf("%s/dcd-corrupt-%d.bin",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    const char *name = "cxl-type3/dynamic-capacity";
    g_autofree uint8_t *stream = NULL;
    size_t len, base;
    void *at;
    Dcd *d = dcd_boot();
    guint i;
    QDict *rsp;

    dcd_add_accept(d, 0, TWO_EXTENTS);
    assert_ok(qtest_qmp(d->qts, "{'execute': 'migrate',"
                        " 'arguments': {'uri': %s}}", uri));
    do {
        rsp = qtest_qmp(d->qts, "{'execute': 'query-migrate'}");
        i = !strcmp(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    "completed");
        qobject_unref(rsp);
        g_usleep(10 * 1000);
    } while (!i);
    dcd_quit(d);
    g_assert(g_file_get_contents(path, (char **)&stream, &len, NULL));
    at = memmem(stream, len, name, strlen(name));
    g_assert(at);
    base = (uint8_t *)at - stream;
    /* After the name, the subsection's version (4 bytes) */
    base += strlen(name) + 4;
    g_assert_cmpuint(ldl_be_p(stream + base), ==, 2);        /* regions */
    g_assert_cmpuint(ldl_be_p(stream + base + 4), ==, 2);    /* extents */

    for (i = 0; i < ARRAY_SIZE(corruptions); i++) {
        g_autofree uint8_t *bad = g_memdup2(stream, len);
        uint8_t *field = bad + base + corruptions[i].offset;
        QTestState *dst;
        QDict *info;
        const char *status;

        if (corruptions[i].size == 8) {
            stq_be_p(field, corruptions[i].value);
        } else {
            stl_be_p(field, corruptions[i].value);
        }
        g_assert(g_file_set_contents(path, (char *)bad, len, NULL));
        dst = qtest_init(DCD_MACHINE "-incoming defer");
        assert_ok(qtest_qmp(dst, "{'execute': 'migrate-incoming',"
                            " 'arguments': {'uri': %s,"
                            " 'exit-on-error': false}}", uri));
        do {
            rsp = qtest_qmp(dst, "{'execute': 'query-migrate'}");
            info = qdict_get_qdict(rsp, "return");
            status = qdict_haskey(info, "status") ?
                     qdict_get_str(info, "status") : "";
            if (!strcmp(status, "failed") || !strcmp(status, "completed")) {
                break;
            }
            qobject_unref(rsp);
            g_usleep(10 * 1000);
        } while (true);
        g_assert_cmpstr(status, ==, "failed");
        if (!strstr(qdict_get_str(info, "error-desc"), corruptions[i].error)) {
            g_error("%s: '%s' does not mention '%s'", corruptions[i].what,
                    qdict_get_str(info, "error-desc"), corruptions[i].error);
        }
        qobject_unref(rsp);
        /* Alive, with its own empty dynamic capacity state */
        rsp = qtest_qmp(dst, "{'execute': 'query-cxl-dynamic-capacity'}");
        info = qobject_to(QDict, qlist_peek(qdict_get_qlist(rsp, "return")));
        g_assert_cmpint(qdict_get_int(info, "extents-available"), ==,
                        qdict_get_int(info, "extents-supported"));
        qobject_unref(rsp);
        qtest_quit(dst);
    }
    unlink(path);
}


/* query-qmp-schema lists the new command, its events and new members */
static void test_qmp_schema(void)
{
    QTestState *qts = dcd_start();
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-qmp-schema'}");
    static const char *const names[] = {
        "query-cxl-dynamic-capacity",
        "CXL_DYNAMIC_CAPACITY_ACCEPTED",
        "CXL_DYNAMIC_CAPACITY_REJECTED",
        "CXL_DYNAMIC_CAPACITY_RELEASED",
        "CXL_DYNAMIC_CAPACITY_SANITIZED",
        "cxl-add-dynamic-capacity",
    };
    bool found[ARRAY_SIZE(names)] = { false };
    bool has_length = false;
    g_autofree char *add_args = NULL;
    QListEntry *e;
    guint i;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *entity = qobject_to(QDict, e->value);

        for (i = 0; i < ARRAY_SIZE(names); i++) {
            if (!strcmp(qdict_get_str(entity, "name"), names[i])) {
                found[i] = true;
                if (i == ARRAY_SIZE(names) - 1) {
                    add_args = g_strdup(qdict_get_str(entity, "arg-type"));
                }
            }
        }
    }
    for (i = 0; i < ARRAY_SIZE(names); i++) {
        if (!found[i]) {
            g_error("query-qmp-schema does not list %s", names[i]);
        }
    }
    /* The add command's arguments have the member length */
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *entity = qobject_to(QDict, e->value);
        QListEntry *m;

        if (strcmp(qdict_get_str(entity, "name"), add_args)) {
            continue;
        }
        QLIST_FOREACH_ENTRY(qdict_get_qlist(entity, "members"), m) {
            has_length |= !strcmp(qdict_get_str(qobject_to(QDict, m->value),
                                                "name"), "length");
        }
    }
    g_assert(has_length);
    qobject_unref(rsp);
    qtest_quit(qts);
}


int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/cxl/dcd/qmp/add/seed-example", test_add_seed_example);
    qtest_add_func("/cxl/dcd/qmp/add/bad-region", test_add_bad_region);
    qtest_add_func("/cxl/dcd/qmp/add/misaligned", test_add_misaligned);
    qtest_add_func("/cxl/dcd/qmp/add/beyond-region", test_add_beyond_region);
    qtest_add_func("/cxl/dcd/qmp/add/self-overlap", test_add_self_overlap);
    qtest_add_func("/cxl/dcd/qmp/bad-path", test_bad_path);
    qtest_add_func("/cxl/dcd/mbox/identify", test_mbox_identify);
    qtest_add_func("/cxl/dcd/mbox/errors", test_mbox_errors);
    qtest_add_func("/cxl/dcd/mbox/register-abuse", test_mbox_register_abuse);
    qtest_add_func("/cxl/dcd/mbox/cel", test_mbox_cel);
    qtest_add_func("/cxl/dcd/mbox/background-bit", test_mbox_background_bit);
    qtest_add_func("/cxl/dcd/mbox/get-dc-config", test_mbox_get_dc_config);
    qtest_add_func("/cxl/dcd/add/accept-all", test_add_accept_all);
    qtest_add_func("/cxl/dcd/add/reject", test_add_reject);
    qtest_add_func("/cxl/dcd/add/accept-part", test_add_accept_part);
    qtest_add_func("/cxl/dcd/release/host", test_release_host);
    qtest_add_func("/cxl/dcd/memory/read-write", test_memory_read_write);
    qtest_add_func("/cxl/dcd/memory/hb-decoder", test_memory_hb_decoder);
    qtest_add_func("/cxl/dcd/memory/release", test_memory_release);
    qtest_add_func("/cxl/dcd/add/seed-end-to-end", test_seed_end_to_end);
    qtest_add_func("/cxl/dcd/add/4096-extents", test_add_4096_extents);
    qtest_add_func("/cxl/dcd/add/response-in-parts",
                   test_add_response_in_parts);
    qtest_add_func("/cxl/dcd/add/free-contiguous", test_add_free_contiguous);
    qtest_add_func("/cxl/dcd/release/superset-partial",
                   test_release_superset_partial);
    qtest_add_func("/cxl/dcd/release/tag-based", test_release_tag_based);
    qtest_add_func("/cxl/dcd/release/forced", test_release_forced);
    qtest_add_func("/cxl/dcd/release/sanitize", test_release_sanitize);
    qtest_add_func("/cxl/dcd/release/no-sanitize", test_release_no_sanitize);
    qtest_add_func("/cxl/dcd/qmp/errors", test_qmp_errors);
    qtest_add_func("/cxl/dcd/mbox/response-nothing-pending",
                   test_mbox_response_nothing_pending);
    qtest_add_func("/cxl/dcd/events/accept-all", test_events_accept_all);
    qtest_add_func("/cxl/dcd/events/accept-part", test_events_accept_part);
    qtest_add_func("/cxl/dcd/events/reject", test_events_reject);
    qtest_add_func("/cxl/dcd/events/host-release", test_events_host_release);
    qtest_add_func("/cxl/dcd/events/fm-release", test_events_fm_release);
    qtest_add_func("/cxl/dcd/events/forced", test_events_forced);
    qtest_add_func("/cxl/dcd/events/sanitize", test_events_sanitize);
    qtest_add_func("/cxl/dcd/doc/walkthrough", test_doc_walkthrough);
    qtest_add_func("/cxl/dcd/qmp/schema", test_qmp_schema);
    qtest_add_func("/cxl/dcd/migrate/socket", test_migrate_socket);
    qtest_add_func("/cxl/dcd/migrate/file", test_migrate_file);
    qtest_add_func("/cxl/dcd/migrate/corrupt", test_migrate_corrupt);
    qtest_add_func("/cxl/dcd/migrate/savevm", test_migrate_savevm);
    qtest_add_func("/cxl/dcd/reset/machine", test_reset_machine);
    qtest_add_func("/cxl/dcd/reset/bus", test_reset_bus);
    qtest_add_func("/cxl/dcd/reset/cxl-reset", test_reset_cxl);
    qtest_add_func("/cxl/dcd/reset/background", test_reset_background);
    qtest_add_func("/cxl/dcd/fm/tunnel-length", test_fm_tunnel_length);
    qtest_add_func("/cxl/dcd/fm/set-region-config-bad-index",
                   test_fm_set_region_config_bad_index);
    qtest_add_func("/cxl/dcd/host/accept-wrong", test_host_accept_wrong);
    qtest_add_func("/cxl/dcd/host/more-never-finishes",
                   test_host_more_never_finishes);
    qtest_add_func("/cxl/dcd/host/short-payload", test_host_short_payload);
    qtest_add_func("/cxl/dcd/host/release-wrong", test_host_release_wrong);
    qtest_add_func("/cxl/dcd/device/too-many-regions", test_too_many_regions);
    qtest_add_func("/cxl/dcd/mbox/interrupt-policy",
                   test_mbox_interrupt_policy);
    qtest_add_func("/cxl/dcd/mbox/interrupt-on-records",
                   test_interrupt_on_records);
    qtest_add_func("/cxl/dcd/fm/get-dcd-info", test_fm_get_dcd_info);
    qtest_add_func("/cxl/dcd/fm/initiate-add-prescriptive",
                   test_fm_add_prescriptive);
    qtest_add_func("/cxl/dcd/fm/initiate-add-free", test_fm_add_free);
    qtest_add_func("/cxl/dcd/fm/initiate-release", test_fm_release);
    qtest_add_func("/cxl/dcd/fm/errors", test_fm_errors);

    return g_test_run();
}
