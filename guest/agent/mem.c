/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * dcd-agent memory access: make HPA = window base + DPA reach the device
 * by committing the endpoint's HDM decoder 0 (CXL r3.1 section 8.2.4.20)
 * over the first CXL Fixed Memory Window of the ACPI CEDT that is large
 * enough, then read or write 8 bytes there through /dev/mem.
 *
 * A host bridge with a single root port passes HDM accesses through
 * (CXL r3.1 section 9.13.1), and QEMU's pxb-cxl does so by default, so
 * only the endpoint's decoder is programmed.
 */

#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dcd-agent.h"

#define CEDT_PATH               "/sys/firmware/acpi/tables/CEDT"
#define ACPI_HDR_LEN            36
/* CXL r3.1 Table 9-22: CEDT structure types */
#define CEDT_TYPE_CFMWS         1

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
#define CXL_HDM_BASE_LO         0x10
#define CXL_HDM_BASE_HI         0x14
#define CXL_HDM_SIZE_LO         0x18
#define CXL_HDM_SIZE_HI         0x1c
#define CXL_HDM_CTRL            0x20
#define CXL_HDM_SKIP_LO         0x24
#define CXL_HDM_SKIP_HI         0x28
#define CXL_HDM_CTRL_COMMIT     BIT(9)
#define CXL_HDM_CTRL_COMMITTED  BIT(10)
#define CXL_HDM_CTRL_ERR        BIT(11)
#define CXL_HDM_CTRL_HOST_ONLY  BIT(12)
#define CXL_HDM_ALIGN           (256 * MiB)

/* CXL r3.1 section 8.1.3: PCIe DVSEC for CXL Devices, CXL Control */
#define CXL_DVSEC_DEVICE        0x0
#define CXL_DVSEC_CTRL          0x0c
#define CXL_DVSEC_CTRL_MEM_EN   BIT(2)

/* The first CFMWS of at least @need bytes: its base and size. */
static bool find_window(uint64_t need, uint64_t *base, uint64_t *size)
{
    uint8_t buf[65536];
    ssize_t len;
    size_t off;
    int fd;

    fd = open(CEDT_PATH, O_RDONLY);
    if (fd < 0) {
        dcd_err("cannot open " CEDT_PATH " (is CONFIG_ACPI_TABLES on?): %s",
                strerror(errno));
        return false;
    }
    len = read(fd, buf, sizeof(buf));
    close(fd);
    if (len < ACPI_HDR_LEN) {
        dcd_err(CEDT_PATH ": too short for an ACPI table header");
        return false;
    }
    for (off = ACPI_HDR_LEN; off + 4 <= (size_t)len;) {
        uint16_t slen = buf[off + 2] | buf[off + 3] << 8;
        uint64_t b, s;

        if (slen < 4 || off + slen > (size_t)len) {
            dcd_err(CEDT_PATH ": structure at offset 0x%zx has bad length %u",
                    off, slen);
            return false;
        }
        if (buf[off] == CEDT_TYPE_CFMWS && slen >= 24) {
            memcpy(&b, buf + off + 8, 8);
            memcpy(&s, buf + off + 16, 8);
            b = le64toh(b);
            s = le64toh(s);
            if (s >= need) {
                *base = b;
                *size = s;
                return true;
            }
        }
        off += slen;
    }
    dcd_err(CEDT_PATH ": no CXL Fixed Memory Window of 0x%" PRIx64
            " bytes or more", need);
    return false;
}

static volatile uint8_t *find_hdm(Dcd *d)
{
    volatile uint8_t *cm;
    uint32_t hdr;
    unsigned i;

    if (!d->comp_regs) {
        dcd_err("%s: the Register Locator DVSEC names no component register"
                " block", d->bdf);
        return NULL;
    }
    cm = d->comp_regs + CXL_CM_OFFSET;
    hdr = mmio_read32(cm, 0);
    if (CXL_CM_CAP_ID(hdr) != CXL_CM_CAP_ID_CXL) {
        dcd_err("%s: no CXL capability header in the component registers"
                " (found 0x%08x)", d->bdf, hdr);
        return NULL;
    }
    for (i = 1; i <= CXL_CM_CAP_ARRAY_SIZE(hdr); i++) {
        uint32_t cap = mmio_read32(cm, 4 * i);

        if (CXL_CM_CAP_ID(cap) == CXL_CM_CAP_ID_HDM) {
            return cm + CXL_CM_CAP_PTR(cap);
        }
    }
    dcd_err("%s: no HDM decoder capability in the component registers",
            d->bdf);
    return NULL;
}

/*
 * A file in DCD_RUN_DIR says that the agent committed decoder 0 of a
 * device, so that giving the device back to cxl_pci uncommits it: the
 * kernel would otherwise find a committed decoder that no region of its
 * own explains.  A decoder that was committed before is left alone.
 */
static void marker_path(const Dcd *d, char *buf, size_t size)
{
    snprintf(buf, size, DCD_RUN_DIR "/decoder0-%s", d->bdf);
}

static bool wait_committed(volatile uint8_t *hdm, bool committed,
                           uint32_t *ctrl)
{
    int i;

    for (i = 0; i < 1000; i++) {
        *ctrl = mmio_read32(hdm, CXL_HDM_CTRL);
        if (committed ? *ctrl & (CXL_HDM_CTRL_COMMITTED | CXL_HDM_CTRL_ERR)
                      : !(*ctrl & CXL_HDM_CTRL_COMMITTED)) {
            break;
        }
        usleep(1000);
    }
    if (committed) {
        return (*ctrl & (CXL_HDM_CTRL_COMMITTED | CXL_HDM_CTRL_ERR)) ==
               CXL_HDM_CTRL_COMMITTED;
    }
    return !(*ctrl & CXL_HDM_CTRL_COMMITTED);
}

static bool commit_decoder(Dcd *d, volatile uint8_t *hdm, uint64_t base,
                           uint64_t size)
{
    uint16_t dvsec = dcd_find_dvsec(d, CXL_DVSEC_DEVICE);
    char marker[sizeof(d->bdf) + sizeof(DCD_RUN_DIR) + 16];
    uint32_t ctrl = 0;
    int fd;

    if (dvsec) {
        uint16_t v = d->cfg[dvsec + CXL_DVSEC_CTRL] |
                     d->cfg[dvsec + CXL_DVSEC_CTRL + 1] << 8;

        if (!(v & CXL_DVSEC_CTRL_MEM_EN) &&
            !dcd_config_write16(d, dvsec + CXL_DVSEC_CTRL,
                                v | CXL_DVSEC_CTRL_MEM_EN)) {
            return false;
        }
    }
    marker_path(d, marker, sizeof(marker));
    mkdir(DCD_RUN_DIR, 0755);
    fd = open(marker, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
        dcd_err("cannot create %s: %s; not committing HDM decoder 0", marker,
                strerror(errno));
        return false;
    }
    close(fd);
    mmio_write32(hdm, CXL_HDM_GLOBAL_CTRL,
                 mmio_read32(hdm, CXL_HDM_GLOBAL_CTRL) | CXL_HDM_ENABLE);
    mmio_write32(hdm, CXL_HDM_BASE_LO, (uint32_t)base);
    mmio_write32(hdm, CXL_HDM_BASE_HI, base >> 32);
    mmio_write32(hdm, CXL_HDM_SIZE_LO, (uint32_t)size);
    mmio_write32(hdm, CXL_HDM_SIZE_HI, size >> 32);
    mmio_write32(hdm, CXL_HDM_SKIP_LO, 0);
    mmio_write32(hdm, CXL_HDM_SKIP_HI, 0);
    /* 256 byte granularity, 1 way: IG and IW are 0 */
    mmio_write32(hdm, CXL_HDM_CTRL, CXL_HDM_CTRL_HOST_ONLY |
                 CXL_HDM_CTRL_COMMIT);
    if (!wait_committed(hdm, true, &ctrl)) {
        dcd_err("%s: HDM decoder 0 did not commit (control 0x%08x)", d->bdf,
                ctrl);
        mmio_write32(hdm, CXL_HDM_CTRL, 0);
        unlink(marker);
        return false;
    }
    dcd_log("HDM decoder 0 of %s committed: HPA 0x%" PRIx64 " size 0x%"
            PRIx64 " to DPA 0", d->bdf, base, size);
    return true;
}

/*
 * Before cxl_pci takes @d back: uncommit HDM decoder 0 if the agent
 * committed it.
 */
bool dcd_mem_release(Dcd *d)
{
    char marker[sizeof(d->bdf) + sizeof(DCD_RUN_DIR) + 16];
    volatile uint8_t *hdm;
    uint32_t ctrl = 0;

    marker_path(d, marker, sizeof(marker));
    if (access(marker, F_OK) < 0) {
        return true;
    }
    if (!d->dev_regs && !dcd_open(d)) {
        return false;
    }
    hdm = find_hdm(d);
    if (!hdm) {
        return false;
    }
    mmio_write32(hdm, CXL_HDM_CTRL,
                 mmio_read32(hdm, CXL_HDM_CTRL) & ~CXL_HDM_CTRL_COMMIT);
    if (!wait_committed(hdm, false, &ctrl)) {
        dcd_err("%s: HDM decoder 0 did not uncommit (control 0x%08x)",
                d->bdf, ctrl);
        return false;
    }
    unlink(marker);
    dcd_log("HDM decoder 0 of %s uncommitted", d->bdf);
    return true;
}

/*
 * Map DPA 0 up to the end of the last DC region at the base of a fixed
 * memory window, unless decoder 0 does so already; the HPA of DPA 0 in
 * *@hpa0 and the mapped length in *@mapped.
 */
static bool map_dpa(Dcd *d, uint64_t *hpa0, uint64_t *mapped)
{
    volatile uint8_t *hdm = find_hdm(d);
    uint64_t end = 0, need, wbase, wsize, base, size;
    DcdConfig cfg;
    uint32_t ctrl;
    int i;

    if (!hdm || !dcd_get_config(d, &cfg)) {
        return false;
    }
    for (i = 0; i < cfg.regions_returned; i++) {
        uint64_t e = cfg.regions[i].base + cfg.regions[i].decode_len;

        end = e > end ? e : end;
    }
    if (!end) {
        dcd_err("%s reports no dynamic capacity region", d->bdf);
        return false;
    }
    need = (end + CXL_HDM_ALIGN - 1) & ~(CXL_HDM_ALIGN - 1);
    ctrl = mmio_read32(hdm, CXL_HDM_CTRL);
    base = (uint64_t)mmio_read32(hdm, CXL_HDM_BASE_HI) << 32 |
           (mmio_read32(hdm, CXL_HDM_BASE_LO) & 0xf0000000);
    size = (uint64_t)mmio_read32(hdm, CXL_HDM_SIZE_HI) << 32 |
           (mmio_read32(hdm, CXL_HDM_SIZE_LO) & 0xf0000000);
    if (ctrl & CXL_HDM_CTRL_COMMITTED) {
        uint64_t skip = (uint64_t)mmio_read32(hdm, CXL_HDM_SKIP_HI) << 32 |
                        (mmio_read32(hdm, CXL_HDM_SKIP_LO) & 0xf0000000);

        /* Interleave ways (bits 7:4) other than 1 break HPA = base + DPA */
        if (skip || (ctrl & 0xf0)) {
            dcd_err("%s: HDM decoder 0 is committed with DPA skip 0x%" PRIx64
                    " and control 0x%08x; not changing it", d->bdf, skip,
                    ctrl);
            return false;
        }
        *hpa0 = base;
        *mapped = size;
        return true;
    }
    if (!find_window(need, &wbase, &wsize)) {
        return false;
    }
    if (!commit_decoder(d, hdm, wbase, need)) {
        return false;
    }
    *hpa0 = wbase;
    *mapped = need;
    return true;
}

/*
 * Read (or write @val to) the 8 bytes at @dpa through the fixed memory
 * window.  Returns the exit status.
 */
int dcd_mem_access(Dcd *d, uint64_t dpa, bool write, uint64_t val)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t hpa0, mapped, hpa, pbase;
    volatile uint64_t *p;
    void *map;
    int fd;

    if (dpa & 7) {
        dcd_err("dpa 0x%" PRIx64 " is not 8 byte aligned", dpa);
        return 2;
    }
    if (!map_dpa(d, &hpa0, &mapped)) {
        return 1;
    }
    if (dpa >= mapped) {
        dcd_err("dpa 0x%" PRIx64 " is beyond the 0x%" PRIx64 " bytes HDM"
                " decoder 0 maps", dpa, mapped);
        return 1;
    }
    hpa = hpa0 + dpa;
    pbase = hpa & ~(uint64_t)(page - 1);
    fd = open("/dev/mem", O_RDWR | O_SYNC);
    if (fd < 0) {
        dcd_err("cannot open /dev/mem: %s", strerror(errno));
        return 1;
    }
    map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pbase);
    close(fd);
    if (map == MAP_FAILED) {
        dcd_err("cannot map HPA 0x%" PRIx64 " from /dev/mem: %s (a kernel"
                " with STRICT_DEVMEM refuses ranges a driver claims)",
                pbase, strerror(errno));
        return 1;
    }
    p = (volatile uint64_t *)((uint8_t *)map + (hpa - pbase));
    if (write) {
        *p = val;
        printf("dpa 0x%" PRIx64 " hpa 0x%" PRIx64 ": wrote 0x%016" PRIx64
               "\n", dpa, hpa, val);
    } else {
        val = *p;
        printf("dpa 0x%" PRIx64 " hpa 0x%" PRIx64 ": 0x%016" PRIx64 "\n",
               dpa, hpa, val);
    }
    munmap(map, page);
    return 0;
}
