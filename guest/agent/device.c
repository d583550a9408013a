/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * dcd-agent device access: find the CXL memory device on PCI through
 * sysfs, map its register blocks through the BAR resource files, and run
 * mailbox commands (CXL r3.1 section 8.2.8.4), serialized between
 * dcd-agent processes by an flock on DCD_LOCK_FILE.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dcd-agent.h"

/* PCI config space */
#define PCI_COMMAND             0x04
#define PCI_COMMAND_MEMORY      0x2
#define PCI_CFG_SPACE_SIZE      0x100
#define PCI_EXT_CAP_ID_DVSEC    0x23
#define PCI_DVSEC_HEADER1       0x4
#define PCI_DVSEC_HEADER2       0x8

/* CXL r3.1 section 8.1.1: DVSECs under the CXL vendor ID */
#define CXL_VENDOR_ID           0x1e98
#define CXL_DVSEC_REG_LOCATOR   0x8

/* CXL r3.1 section 8.1.9: Register Locator DVSEC entries */
#define CXL_REG_LOC_FIRST       0x0c
#define CXL_REG_LOC_ENTRY_SIZE  8
#define CXL_REG_LOC_BIR(lo)     ((lo) & 0x7)
#define CXL_REG_LOC_BLOCK(lo)   (((lo) >> 8) & 0xff)
#define CXL_REG_LOC_OFFSET(lo)  ((lo) & 0xffff0000)
#define CXL_REG_BLOCK_COMPONENT 0x01
#define CXL_REG_BLOCK_MEMDEV    0x03

/* CXL r3.1 sections 8.2.8.1 and 8.2.8.2: Device Capabilities Array */
#define CXL_DEV_CAP_ID(v)       ((v) & 0xffff)
#define CXL_DEV_CAP_COUNT(v)    (((v) >> 32) & 0xffff)
#define CXL_DEV_CAP_HDR(i)      (0x10 * ((i) + 1))
#define CXL_DEV_CAP_ID_STATUS   0x0001
#define CXL_DEV_CAP_ID_MBOX     0x0002
#define CXL_DEV_CAP_ID_MEMDEV   0x4000

/* CXL r3.1 section 8.2.8.5: Memory Device Status Register */
#define CXL_MEMDEV_MBOX_READY   BIT(4)

/* CXL r3.1 section 8.2.8.4: Mailbox Registers */
#define CXL_MBOX_CAP            0x00
#define CXL_MBOX_CTRL           0x04
#define CXL_MBOX_CMD            0x08
#define CXL_MBOX_STATUS         0x10
#define CXL_MBOX_PAYLOAD        0x20
#define CXL_MBOX_CAP_PAYLOAD(v) ((size_t)1 << ((v) & 0x1f))
#define CXL_MBOX_CTRL_DOORBELL  BIT(0)
#define CXL_MBOX_CMD_LEN_SHIFT  16
#define CXL_MBOX_CMD_LEN(v)     (((v) >> CXL_MBOX_CMD_LEN_SHIFT) & 0x1fffff)
#define CXL_MBOX_STATUS_RC(v)   (((v) >> 32) & 0xffff)
/* CXL r3.1 section 8.2.8.4.3: 2 s at most from doorbell to completion */
#define CXL_MBOX_TIMEOUT_MS     2000

/* CXL r3.1 Table 8-164: capacities are counted in 256 MiB */
#define CXL_CAPACITY_UNIT       (256 * MiB)

static bool read_file(const char *path, char *buf, size_t size)
{
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return false;
    }
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) {
        return false;
    }
    buf[n] = 0;
    return true;
}

static bool is_memdev(const char *bdf)
{
    char path[PATH_MAX], buf[32];

    snprintf(path, sizeof(path), DCD_SYSFS_PCI "/%s/class", bdf);
    return read_file(path, buf, sizeof(buf)) &&
           strtoul(buf, NULL, 16) == CXL_CLASS_MEMORY_DEVICE;
}

static int bdf_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Find the CXL memory device: @bdf if given, else the first PCI function
 * (in address order) with the CXL memory device class code.
 */
bool dcd_find(Dcd *d, const char *bdf)
{
    struct dirent **names;
    struct stat st;
    int i, n;

    memset(d, 0, sizeof(*d));
    d->lock_fd = -1;
    if (bdf) {
        snprintf(d->sysfs, sizeof(d->sysfs), DCD_SYSFS_PCI "/%s", bdf);
        if (stat(d->sysfs, &st) < 0) {
            dcd_err("--device=%s: no such PCI function in " DCD_SYSFS_PCI,
                    bdf);
            return false;
        }
        if (!is_memdev(bdf)) {
            dcd_err("--device=%s: not a CXL memory device (PCI class is not"
                    " 0x%06x)", bdf, CXL_CLASS_MEMORY_DEVICE);
            return false;
        }
        snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
        return true;
    }
    n = scandir(DCD_SYSFS_PCI, &names, NULL, bdf_cmp);
    if (n < 0) {
        dcd_err("cannot list " DCD_SYSFS_PCI ": %s", strerror(errno));
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!d->bdf[0] && names[i]->d_name[0] != '.' &&
            is_memdev(names[i]->d_name)) {
            snprintf(d->bdf, sizeof(d->bdf), "%s", names[i]->d_name);
        }
        free(names[i]);
    }
    free(names);
    if (!d->bdf[0]) {
        dcd_err("no CXL memory device (PCI class 0x%06x) in " DCD_SYSFS_PCI
                "; name one with --device=BDF", CXL_CLASS_MEMORY_DEVICE);
        return false;
    }
    snprintf(d->sysfs, sizeof(d->sysfs), DCD_SYSFS_PCI "/%s", d->bdf);
    return true;
}

/* The name of the driver bound to the device, "" if none. */
bool dcd_driver(Dcd *d, char *buf, size_t size)
{
    char path[PATH_MAX], link[PATH_MAX];
    ssize_t n;
    char *base;

    snprintf(path, sizeof(path), "%s/driver", d->sysfs);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        if (errno == ENOENT) {
            buf[0] = 0;
            return true;
        }
        dcd_err("cannot read %s: %s", path, strerror(errno));
        return false;
    }
    link[n] = 0;
    base = strrchr(link, '/');
    snprintf(buf, size, "%s", base ? base + 1 : link);
    return true;
}

bool dcd_sysfs_write(const char *path, const char *val)
{
    ssize_t n;
    int fd;

    fd = open(path, O_WRONLY);
    if (fd < 0) {
        dcd_err("cannot open %s: %s", path, strerror(errno));
        return false;
    }
    n = write(fd, val, strlen(val));
    if (n < 0) {
        dcd_err("writing '%s' to %s failed: %s", val, path, strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    return true;
}

static uint32_t cfg_read32(Dcd *d, uint16_t off)
{
    uint32_t v;

    if (off + 4u > d->cfg_len) {
        return 0;
    }
    memcpy(&v, d->cfg + off, 4);
    return le32toh(v);
}

/* The offset of CXL DVSEC @id in extended config space, 0 if none. */
uint16_t dcd_find_dvsec(Dcd *d, uint16_t id)
{
    uint16_t off = PCI_CFG_SPACE_SIZE;
    int n;

    for (n = 0; off && n < 1024; n++) {
        uint32_t hdr = cfg_read32(d, off);

        if ((hdr & 0xffff) == PCI_EXT_CAP_ID_DVSEC &&
            (cfg_read32(d, off + PCI_DVSEC_HEADER1) & 0xffff) ==
            CXL_VENDOR_ID &&
            (cfg_read32(d, off + PCI_DVSEC_HEADER2) & 0xffff) == id) {
            return off;
        }
        off = (hdr >> 20) & 0xffc;
    }
    return 0;
}

bool dcd_config_write16(Dcd *d, uint16_t off, uint16_t val)
{
    char path[PATH_MAX];
    uint16_t le = htole16(val);
    int fd;

    snprintf(path, sizeof(path), "%s/config", d->sysfs);
    fd = open(path, O_WRONLY);
    if (fd < 0) {
        dcd_err("cannot open %s: %s", path, strerror(errno));
        return false;
    }
    if (pwrite(fd, &le, sizeof(le), off) != sizeof(le)) {
        dcd_err("writing config space of %s at 0x%x failed: %s", d->bdf, off,
                strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    if (off + 2u <= d->cfg_len) {
        memcpy(d->cfg + off, &le, sizeof(le));
    }
    return true;
}

static bool read_config(Dcd *d)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/config", d->sysfs);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        dcd_err("cannot open %s: %s", path, strerror(errno));
        return false;
    }
    n = pread(fd, d->cfg, sizeof(d->cfg), 0);
    close(fd);
    if (n < 0) {
        dcd_err("cannot read %s: %s", path, strerror(errno));
        return false;
    }
    d->cfg_len = n;
    if (n <= PCI_CFG_SPACE_SIZE) {
        dcd_err("%s: only %zd bytes of config space readable, the CXL"
                " DVSECs are in extended config space (run as root)", path, n);
        return false;
    }
    return true;
}

static volatile uint8_t *map_bar(Dcd *d, unsigned bir)
{
    char path[PATH_MAX], buf[4096];
    unsigned long long start, end, flags;
    char *line;
    void *p;
    unsigned i;
    int fd;

    if (d->bar[bir]) {
        return d->bar[bir];
    }
    snprintf(path, sizeof(path), "%s/resource", d->sysfs);
    if (!read_file(path, buf, sizeof(buf))) {
        dcd_err("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    line = buf;
    for (i = 0; i < bir && line; i++) {
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    if (!line || sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3 ||
        !end) {
        dcd_err("BAR %u of %s is not assigned (see %s)", bir, d->bdf, path);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/resource%u", d->sysfs, bir);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        dcd_err("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    p = mmap(NULL, end - start + 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        dcd_err("cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    d->bar[bir] = p;
    d->bar_len[bir] = end - start + 1;
    return d->bar[bir];
}

/*
 * CXL r3.1 section 8.2.8.2: the registers of capability @id in the
 * device register block, or NULL.
 */
static volatile uint8_t *find_device_cap(Dcd *d, uint16_t id)
{
    uint64_t hdr = mmio_read64(d->dev_regs, 0);
    uint32_t i;

    for (i = 0; i < CXL_DEV_CAP_COUNT(hdr); i++) {
        size_t cap = CXL_DEV_CAP_HDR(i);

        if (CXL_DEV_CAP_ID(mmio_read32(d->dev_regs, cap)) == id) {
            return d->dev_regs + mmio_read32(d->dev_regs, cap + 4);
        }
    }
    return NULL;
}

/*
 * Map the register blocks the Register Locator DVSEC names (CXL r3.1
 * section 8.1.9) and find the device capabilities the agent uses.  The
 * caller has checked that no kernel driver owns the device.
 */
bool dcd_open(Dcd *d)
{
    uint16_t loc, off, cmd;
    uint32_t len;

    if (!read_config(d)) {
        return false;
    }
    cmd = cfg_read32(d, PCI_COMMAND) & 0xffff;
    if (!(cmd & PCI_COMMAND_MEMORY) &&
        !dcd_config_write16(d, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY)) {
        return false;
    }
    loc = dcd_find_dvsec(d, CXL_DVSEC_REG_LOCATOR);
    if (!loc) {
        dcd_err("%s has no Register Locator DVSEC (vendor 0x%04x id %u)",
                d->bdf, CXL_VENDOR_ID, CXL_DVSEC_REG_LOCATOR);
        return false;
    }
    len = cfg_read32(d, loc + PCI_DVSEC_HEADER1) >> 20;
    for (off = CXL_REG_LOC_FIRST; off + CXL_REG_LOC_ENTRY_SIZE <= (int)len;
         off += CXL_REG_LOC_ENTRY_SIZE) {
        uint32_t lo = cfg_read32(d, loc + off);
        uint32_t hi = cfg_read32(d, loc + off + 4);
        uint64_t reg_off = ((uint64_t)hi << 32) | CXL_REG_LOC_OFFSET(lo);
        unsigned bir = CXL_REG_LOC_BIR(lo);
        volatile uint8_t *bar;

        if (CXL_REG_LOC_BLOCK(lo) != CXL_REG_BLOCK_COMPONENT &&
            CXL_REG_LOC_BLOCK(lo) != CXL_REG_BLOCK_MEMDEV) {
            continue;
        }
        if (bir >= ARRAY_SIZE(d->bar)) {
            dcd_err("%s: register block %u is in BAR %u, which does not"
                    " exist", d->bdf, CXL_REG_LOC_BLOCK(lo), bir);
            return false;
        }
        bar = map_bar(d, bir);
        if (!bar) {
            return false;
        }
        if (reg_off >= d->bar_len[bir]) {
            dcd_err("%s: register block %u at offset 0x%" PRIx64 " is beyond"
                    " the 0x%zx bytes of BAR %u", d->bdf,
                    CXL_REG_LOC_BLOCK(lo), reg_off, d->bar_len[bir], bir);
            return false;
        }
        if (CXL_REG_LOC_BLOCK(lo) == CXL_REG_BLOCK_COMPONENT) {
            d->comp_regs = bar + reg_off;
        } else {
            d->dev_regs = bar + reg_off;
        }
    }
    if (!d->dev_regs) {
        dcd_err("%s: the Register Locator DVSEC names no memory device"
                " register block (block identifier %u)", d->bdf,
                CXL_REG_BLOCK_MEMDEV);
        return false;
    }
    d->status_regs = find_device_cap(d, CXL_DEV_CAP_ID_STATUS);
    d->mbox = find_device_cap(d, CXL_DEV_CAP_ID_MBOX);
    d->memdev_regs = find_device_cap(d, CXL_DEV_CAP_ID_MEMDEV);
    if (!d->mbox) {
        dcd_err("%s: no primary mailbox (capability id %u) in the device"
                " capabilities array", d->bdf, CXL_DEV_CAP_ID_MBOX);
        return false;
    }
    if (!d->status_regs) {
        dcd_err("%s: no device status registers (capability id %u) in the"
                " device capabilities array", d->bdf, CXL_DEV_CAP_ID_STATUS);
        return false;
    }
    if (d->memdev_regs &&
        !(mmio_read64(d->memdev_regs, 0) & CXL_MEMDEV_MBOX_READY)) {
        dcd_err("%s: the memory device status register says the mailbox"
                " is not ready", d->bdf);
        return false;
    }
    d->payload_max = CXL_MBOX_CAP_PAYLOAD(mmio_read32(d->mbox, CXL_MBOX_CAP));
    if (d->payload_max < 256 || d->payload_max > 1024 * 1024) {
        dcd_err("%s: mailbox payload size %zu is outside 256 bytes to 1 MiB",
                d->bdf, d->payload_max);
        return false;
    }
    return true;
}

void dcd_close(Dcd *d)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(d->bar); i++) {
        if (d->bar[i]) {
            munmap((void *)d->bar[i], d->bar_len[i]);
            d->bar[i] = NULL;
        }
    }
    if (d->lock_fd >= 0) {
        close(d->lock_fd);
        d->lock_fd = -1;
    }
}

uint32_t dcd_event_status(Dcd *d)
{
    return mmio_read32(d->status_regs, 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static bool wait_doorbell_clear(Dcd *d)
{
    uint64_t deadline = now_ms() + CXL_MBOX_TIMEOUT_MS;

    while (mmio_read32(d->mbox, CXL_MBOX_CTRL) & CXL_MBOX_CTRL_DOORBELL) {
        if (now_ms() > deadline) {
            return false;
        }
        usleep(100);
    }
    return true;
}

static bool lock_mailbox(Dcd *d)
{
    if (d->lock_fd < 0) {
        mkdir(DCD_RUN_DIR, 0755);
        d->lock_fd = open(DCD_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (d->lock_fd < 0) {
            dcd_err("cannot open " DCD_LOCK_FILE ": %s", strerror(errno));
            return false;
        }
    }
    while (flock(d->lock_fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            dcd_err("cannot lock " DCD_LOCK_FILE ": %s", strerror(errno));
            return false;
        }
    }
    return true;
}

/*
 * Run one mailbox command.  @out may be NULL to discard the output;
 * otherwise *@out_len is the size of @out on entry and the output
 * length on return.  False (with a message) if the mailbox failed; the
 * command's return code is in *@rc otherwise.
 */
bool dcd_mbox(Dcd *d, uint16_t opcode, const void *in, size_t in_len,
              void *out, size_t *out_len, uint16_t *rc)
{
    uint32_t words[4];
    uint64_t cmd, status;
    size_t len, i;
    bool ok = false;

    if (in_len > d->payload_max) {
        dcd_err("command 0x%04x: input of %zu bytes exceeds the %zu byte"
                " mailbox payload", opcode, in_len, d->payload_max);
        return false;
    }
    if (!lock_mailbox(d)) {
        return false;
    }
    if (!wait_doorbell_clear(d)) {
        dcd_err("%s: mailbox busy (doorbell still set after %d ms)", d->bdf,
                CXL_MBOX_TIMEOUT_MS);
        goto out;
    }
    /* Register accesses of 4 bytes; the payload area ends 4-aligned */
    for (i = 0; i < in_len; i += 4) {
        words[0] = 0;
        memcpy(words, (const uint8_t *)in + i, in_len - i < 4 ? in_len - i
                                                                : 4);
        mmio_write32(d->mbox, CXL_MBOX_PAYLOAD + i, words[0]);
    }
    mmio_write64(d->mbox, CXL_MBOX_CMD,
                 opcode | (uint64_t)in_len << CXL_MBOX_CMD_LEN_SHIFT);
    mmio_write32(d->mbox, CXL_MBOX_CTRL, CXL_MBOX_CTRL_DOORBELL);
    if (!wait_doorbell_clear(d)) {
        dcd_err("%s: command 0x%04x did not complete in %d ms", d->bdf,
                opcode, CXL_MBOX_TIMEOUT_MS);
        goto out;
    }
    /*
     * Like Linux's cxl_pci, tell a background command by its return code:
     * QEMU sets the Background Operation bit of the status register until
     * a first background command completes, whether one runs or not.
     */
    status = mmio_read64(d->mbox, CXL_MBOX_STATUS);
    *rc = CXL_MBOX_STATUS_RC(status);
    if (*rc == CXL_RC_BACKGROUND) {
        /* None of the agent's commands runs in the background */
        dcd_err("%s: command 0x%04x started a background operation",
                d->bdf, opcode);
        goto out;
    }
    cmd = mmio_read64(d->mbox, CXL_MBOX_CMD);
    len = CXL_MBOX_CMD_LEN(cmd);
    if (len > d->payload_max) {
        dcd_err("%s: command 0x%04x output length %zu exceeds the %zu byte"
                " payload", d->bdf, opcode, len, d->payload_max);
        goto out;
    }
    if (out) {
        if (len > *out_len) {
            dcd_err("%s: command 0x%04x output length %zu exceeds the %zu"
                    " bytes expected", d->bdf, opcode, len, *out_len);
            goto out;
        }
        for (i = 0; i < len; i += 4) {
            words[0] = mmio_read32(d->mbox, CXL_MBOX_PAYLOAD + i);
            memcpy((uint8_t *)out + i, words, len - i < 4 ? len - i : 4);
        }
        *out_len = len;
    }
    ok = true;
out:
    flock(d->lock_fd, LOCK_UN);
    return ok;
}

/* CXL r3.1 Table 8-34: Command Return Codes */
const char *dcd_rc_name(uint16_t rc)
{
    static const char *const names[] = {
        [0x00] = "success",
        [0x01] = "background command started",
        [0x02] = "invalid input",
        [0x03] = "unsupported",
        [0x04] = "internal error",
        [0x05] = "retry required",
        [0x06] = "busy",
        [0x07] = "media disabled",
        [0x08] = "firmware transfer in progress",
        [0x09] = "firmware transfer out of order",
        [0x0a] = "firmware verification failed",
        [0x0b] = "invalid slot",
        [0x0c] = "activation failed, firmware rolled back",
        [0x0d] = "activation failed, cold reset required",
        [0x0e] = "invalid handle",
        [0x0f] = "invalid physical address",
        [0x10] = "inject poison limit reached",
        [0x11] = "permanent media failure",
        [0x12] = "aborted",
        [0x13] = "invalid security state",
        [0x14] = "incorrect passphrase",
        [0x15] = "unsupported mailbox or CCI",
        [0x16] = "invalid payload length",
        [0x17] = "invalid log",
        [0x18] = "interrupted",
        [0x19] = "unsupported feature version",
        [0x1a] = "unsupported feature selection value",
        [0x1b] = "feature transfer in progress",
        [0x1c] = "feature transfer out of order",
        [0x1d] = "resources exhausted",
        [0x1e] = "invalid extent list",
        [0x1f] = "transfer out of order",
        [0x20] = "request abort not supported",
    };

    if (rc < ARRAY_SIZE(names) && names[rc]) {
        return names[rc];
    }
    return "unknown return code";
}

/* Get Dynamic Capacity Configuration, CXL r3.1 section 8.2.9.9.9.1 */
bool dcd_get_config(Dcd *d, DcdConfig *cfg)
{
    uint8_t in[2] = { DCD_MAX_REGIONS, 0 };
    uint8_t *buf = calloc(1, d->payload_max);
    DcdGetConfigOut *out = (DcdGetConfigOut *)buf;
    DcdGetConfigTail tail;
    size_t len = d->payload_max;
    uint16_t rc;
    int i;

    memset(cfg, 0, sizeof(*cfg));
    if (!buf) {
        dcd_err("out of memory");
        return false;
    }
    if (!dcd_mbox(d, CXL_OP_GET_DC_CONFIG, in, sizeof(in), buf, &len, &rc)) {
        goto fail;
    }
    if (rc != CXL_RC_SUCCESS) {
        dcd_err("Get Dynamic Capacity Configuration failed: %s (0x%02x)",
                dcd_rc_name(rc), rc);
        goto fail;
    }
    if (len < sizeof(*out) ||
        out->regions_returned > DCD_MAX_REGIONS ||
        len < sizeof(*out) + out->regions_returned * sizeof(DcdRegionRaw) +
              sizeof(tail)) {
        dcd_err("Get Dynamic Capacity Configuration: output of %zu bytes is"
                " too short for its %u regions", len, out->regions_returned);
        goto fail;
    }
    cfg->num_regions = out->num_regions;
    cfg->regions_returned = out->regions_returned;
    for (i = 0; i < out->regions_returned; i++) {
        DcdRegionRaw *raw = &out->regions[i];

        cfg->regions[i] = (DcdRegion) {
            .base = le64toh(raw->base),
            .decode_len = le64toh(raw->decode_len) * CXL_CAPACITY_UNIT,
            .len = le64toh(raw->len),
            .block_size = le64toh(raw->block_size),
            .dsmad_handle = le32toh(raw->dsmad_handle),
            .flags = raw->flags,
        };
    }
    memcpy(&tail, &out->regions[out->regions_returned], sizeof(tail));
    cfg->extents_supported = le32toh(tail.extents_supported);
    cfg->extents_available = le32toh(tail.extents_available);
    cfg->tags_supported = le32toh(tail.tags_supported);
    cfg->tags_available = le32toh(tail.tags_available);
    free(buf);
    return true;
fail:
    free(buf);
    return false;
}

void dcd_parse_extent(const DcdExtentRaw *raw, DcdExtent *ext)
{
    ext->dpa = le64toh(raw->start_dpa);
    ext->len = le64toh(raw->len);
    memcpy(ext->tag, raw->tag, sizeof(ext->tag));
    ext->seq = le16toh(raw->shared_seq);
}

/*
 * Get Dynamic Capacity Extent List, CXL r3.1 section 8.2.9.9.9.2: the
 * whole list, read a payload's worth at a time, and its generation.
 * Read again from the start when the list changes under the reader.
 * Returns a malloc'ed array (NULL with a message on failure; an empty
 * list is a non-NULL array with *@n == 0).
 */
DcdExtent *dcd_get_extents(Dcd *d, uint32_t *n, uint32_t *generation)
{
    uint32_t page = (d->payload_max - sizeof(DcdGetExtentsOut)) /
                    sizeof(DcdExtentRaw);
    uint8_t *buf = calloc(1, d->payload_max);
    DcdGetExtentsOut *out = (DcdGetExtentsOut *)buf;
    DcdExtent *exts = NULL;
    int attempt;

    if (!buf) {
        dcd_err("out of memory");
        return NULL;
    }
    for (attempt = 0; attempt < 10; attempt++) {
        uint32_t got = 0, total = 0, gen = 0;
        bool changed = false;

        free(exts);
        exts = calloc(1, sizeof(*exts));
        do {
            DcdGetExtentsIn in = {
                .count = htole32(page),
                .start_index = htole32(got),
            };
            size_t len = d->payload_max;
            uint32_t cnt, i;
            DcdExtent *grown;
            uint16_t rc;

            if (!exts) {
                dcd_err("out of memory");
                goto fail;
            }
            if (!dcd_mbox(d, CXL_OP_GET_DC_EXTENT_LIST, &in, sizeof(in),
                          buf, &len, &rc)) {
                goto fail;
            }
            if (rc != CXL_RC_SUCCESS) {
                dcd_err("Get Dynamic Capacity Extent List from index %u"
                        " failed: %s (0x%02x)", got, dcd_rc_name(rc), rc);
                goto fail;
            }
            cnt = len >= sizeof(*out) ? le32toh(out->count) : 0;
            if (len < sizeof(*out) ||
                cnt > page || len < sizeof(*out) + cnt * sizeof(DcdExtentRaw)) {
                dcd_err("Get Dynamic Capacity Extent List: output of %zu bytes"
                        " does not hold its %u extents", len, cnt);
                goto fail;
            }
            if (!got) {
                total = le32toh(out->total);
                gen = le32toh(out->generation);
            } else if (total != le32toh(out->total) ||
                       gen != le32toh(out->generation)) {
                changed = true;
                break;
            }
            if (!cnt && got < total) {
                dcd_err("Get Dynamic Capacity Extent List: no extent at index"
                        " %u of %u", got, total);
                goto fail;
            }
            cnt = cnt > total - got ? total - got : cnt;
            grown = realloc(exts, (got + cnt + 1) * sizeof(*exts));
            if (!grown) {
                dcd_err("out of memory");
                goto fail;
            }
            exts = grown;
            for (i = 0; i < cnt; i++) {
                dcd_parse_extent(&out->extents[i], &exts[got + i]);
            }
            got += cnt;
        } while (got < total);
        if (!changed) {
            *n = got;
            *generation = gen;
            free(buf);
            return exts;
        }
    }
    dcd_err("the extent list kept changing while it was read");
fail:
    free(exts);
    free(buf);
    return NULL;
}

/* How many extents one Add DC Response or Release DC payload holds */
uint32_t dcd_update_max(Dcd *d)
{
    return (d->payload_max - sizeof(DcdUpdateExtentsIn)) /
           sizeof(DcdUpdatedExtentRaw);
}

/*
 * Add Dynamic Capacity Response or Release Dynamic Capacity (CXL r3.1
 * sections 8.2.9.9.9.3 and 8.2.9.9.9.4) with @n extents, at most
 * dcd_update_max().
 */
bool dcd_update_extents(Dcd *d, uint16_t opcode, const DcdExtent *exts,
                        uint32_t n, bool more, uint16_t *rc)
{
    size_t len = sizeof(DcdUpdateExtentsIn) + n * sizeof(DcdUpdatedExtentRaw);
    DcdUpdateExtentsIn *in = calloc(1, len);
    uint32_t i;
    bool ok;

    if (!in) {
        dcd_err("out of memory");
        return false;
    }
    in->count = htole32(n);
    in->flags = more ? CXL_DC_UPDATE_FLAG_MORE : 0;
    for (i = 0; i < n; i++) {
        in->extents[i].start_dpa = htole64(exts[i].dpa);
        in->extents[i].len = htole64(exts[i].len);
    }
    ok = dcd_mbox(d, opcode, in, len, NULL, NULL, rc);
    free(in);
    return ok;
}

void dcd_format_uuid(const uint8_t *t, char *buf)
{
    sprintf(buf, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x", t[0], t[1], t[2], t[3], t[4], t[5],
            t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]);
}
