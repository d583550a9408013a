/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * dcd-agent: answers a CXL Dynamic Capacity Device from user space, in
 * place of a kernel driver with DCD support.  The command line, the
 * daemon that polls the Dynamic Capacity Event Log, and the policies
 * that answer Add Capacity and Release Capacity records.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dcd-agent.h"

#define DCD_DEFAULT_POLL_MS     100
#define DCD_DRAIN_MAX           100000
#define DCD_STOP_WAIT_MS        5000
/* Event Status register bit of the Dynamic Capacity log */
#define DCD_EVENT_STATUS_DC     BIT(CXL_EVENT_LOG_DC)

/* CXL r3.1 section 8.2.9.2.1.6: UUID of Dynamic Capacity Event Records */
static const uint8_t dc_event_uuid[16] = {
    0xca, 0x95, 0xaf, 0xa7, 0xf1, 0x83, 0x40, 0x18,
    0x8c, 0x2f, 0x95, 0x26, 0x8e, 0x10, 0x1a, 0x2a,
};

typedef enum DcdPolicy {
    DCD_POLICY_ACCEPT_ALL,
    DCD_POLICY_ACCEPT_FIRST,
    DCD_POLICY_REJECT,
} DcdPolicy;

static const char *const policy_names[] = {
    [DCD_POLICY_ACCEPT_ALL] = "accept-all",
    [DCD_POLICY_ACCEPT_FIRST] = "accept-first",
    [DCD_POLICY_REJECT] = "reject",
};

/* The records of one request, up to the one without the More flag */
typedef struct DcdGroup {
    bool open;
    uint8_t type;
    uint8_t region;
    DcdExtent *exts;
    uint32_t n;
    uint32_t cap;
} DcdGroup;

typedef struct Agent {
    Dcd dev;
    DcdPolicy policy;
    DcdGroup group;
    bool print_only;            /* 'events': print, do not answer */
    uint32_t records;           /* records seen by 'events' */
} Agent;

static bool in_daemon;
static int log_fd = -1;
static int console_fd = -1;
static volatile sig_atomic_t stop_requested;

/* Logging: a line to stdout, or in the daemon to the console and log */

static void emit(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    char line[1024];
    int n;

    n = snprintf(line, sizeof(line), "dcd-agent: %s", prefix);
    vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    strcat(line, "\n");
    if (in_daemon) {
        if (console_fd >= 0 && write(console_fd, line, strlen(line)) < 0) {
            /* nowhere else to say it */
        }
        if (log_fd >= 0 && write(log_fd, line, strlen(line)) < 0) {
            /* nowhere else to say it */
        }
    } else {
        fputs(line, f);
        fflush(f);
    }
}

void dcd_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(stderr, in_daemon ? "error: " : "", fmt, ap);
    va_end(ap);
}

void dcd_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(stdout, "", fmt, ap);
    va_end(ap);
}

static const char *plural(uint32_t n)
{
    return n == 1 ? "" : "s";
}

/* Answering */

static bool group_add(DcdGroup *g, const DcdExtent *ext)
{
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 16;
        DcdExtent *exts = realloc(g->exts, cap * sizeof(*exts));

        if (!exts) {
            dcd_err("out of memory for a group of %u extents", g->n + 1);
            return false;
        }
        g->exts = exts;
        g->cap = cap;
    }
    g->exts[g->n++] = *ext;
    return true;
}

static void group_reset(DcdGroup *g)
{
    g->open = false;
    g->n = 0;
}

/*
 * Send @n extents with @opcode in as many parts as the payload needs,
 * each but the last with the More flag.  Returns how many went through;
 * stops at the first refused part, whose return code is in *@rc.
 */
static uint32_t send_parts(Dcd *d, uint16_t opcode, const DcdExtent *exts,
                           uint32_t n, uint32_t *parts, uint16_t *rc)
{
    uint32_t max = dcd_update_max(d);
    uint32_t off = 0;

    *parts = 0;
    *rc = CXL_RC_SUCCESS;
    do {
        uint32_t part = n - off < max ? n - off : max;
        bool more = off + part < n;

        if (!dcd_update_extents(d, opcode, exts + off, part, more, rc)) {
            *rc = 0xffff;
            return off;
        }
        if (*rc != CXL_RC_SUCCESS) {
            return off;
        }
        (*parts)++;
        off += part;
    } while (off < n);
    return off;
}

static void answer_add(Agent *a, DcdGroup *g)
{
    uint32_t take, done, parts;
    uint16_t rc, rc2;
    char how[64] = "";

    switch (a->policy) {
    case DCD_POLICY_ACCEPT_ALL:
        take = g->n;
        break;
    case DCD_POLICY_ACCEPT_FIRST:
        take = g->n ? 1 : 0;
        break;
    default:
        take = 0;
        break;
    }
    done = send_parts(&a->dev, CXL_OP_ADD_DC_RESPONSE, g->exts, take, &parts,
                      &rc);
    if (take && !done && rc == CXL_RC_INVALID_PA &&
        dcd_update_extents(&a->dev, CXL_OP_ADD_DC_RESPONSE, NULL, 0, false,
                           &rc2) && rc2 == CXL_RC_SUCCESS) {
        /*
         * The device answers the oldest pending offer first: one whose
         * records were cleared unanswered ('dcd-agent events') holds up
         * this one.  The empty response above declined it; try again.
         */
        dcd_log("an older offer was pending unanswered; declined it");
        done = send_parts(&a->dev, CXL_OP_ADD_DC_RESPONSE, g->exts, take,
                          &parts, &rc);
    }
    if (parts > 1) {
        snprintf(how, sizeof(how), " (in %u parts)", parts);
    }
    if (done == take && rc == CXL_RC_SUCCESS) {
        if (take) {
            dcd_log("offer of %u extent%s (region %u): accepted %u%s", g->n,
                    plural(g->n), g->region, take, how);
        } else {
            dcd_log("offer of %u extent%s (region %u): rejected", g->n,
                    plural(g->n), g->region);
        }
        return;
    }
    if (rc != 0xffff) {
        dcd_err("offer of %u extent%s (region %u): Add Dynamic Capacity"
                " Response with extents %u to %u refused: %s (0x%02x)",
                g->n, plural(g->n), g->region, done,
                done + dcd_update_max(&a->dev) - 1, dcd_rc_name(rc), rc);
    }
    /* Close the offer so that the device does not wait for us forever */
    if (dcd_update_extents(&a->dev, CXL_OP_ADD_DC_RESPONSE, NULL, 0, false,
                           &rc2) && rc2 == CXL_RC_SUCCESS) {
        dcd_log("offer of %u extent%s (region %u): accepted %u, the rest"
                " declined", g->n, plural(g->n), g->region, done);
    } else {
        dcd_err("offer of %u extent%s (region %u): closing the response"
                " failed too; the offer stays pending", g->n, plural(g->n),
                g->region);
    }
}

/*
 * The parts of [@dpa, @dpa + @len) that are in the accepted list
 * @held, appended to @out.
 */
static bool intersect(const DcdExtent *held, uint32_t nheld, uint64_t dpa,
                      uint64_t len, DcdGroup *out)
{
    uint64_t last = dpa + len - 1;
    uint32_t i;

    for (i = 0; i < nheld; i++) {
        uint64_t hs = held[i].dpa, hl = held[i].dpa + held[i].len - 1;
        DcdExtent piece = { 0 };

        if (hl < dpa || hs > last) {
            continue;
        }
        piece.dpa = hs > dpa ? hs : dpa;
        piece.len = (hl < last ? hl : last) - piece.dpa + 1;
        if (!group_add(out, &piece)) {
            return false;
        }
    }
    return true;
}

static void answer_release(Agent *a, DcdGroup *g)
{
    DcdGroup rel = { 0 };
    DcdExtent *held;
    uint32_t nheld, gen, i, done, parts;
    uint16_t rc;

    held = dcd_get_extents(&a->dev, &nheld, &gen);
    if (!held) {
        dcd_err("release of %u extent%s asked (region %u): not answered,"
                " the extent list is unreadable", g->n, plural(g->n),
                g->region);
        return;
    }
    for (i = 0; i < g->n; i++) {
        if (!intersect(held, nheld, g->exts[i].dpa, g->exts[i].len, &rel)) {
            goto out;
        }
    }
    if (!rel.n) {
        dcd_log("release of %u extent%s asked (region %u): released 0, none"
                " is held", g->n, plural(g->n), g->region);
        goto out;
    }
    done = send_parts(&a->dev, CXL_OP_RELEASE_DC, rel.exts, rel.n, &parts,
                      &rc);
    if (done == rel.n) {
        dcd_log("release of %u extent%s asked (region %u): released %u",
                g->n, plural(g->n), g->region, done);
    } else if (rc != 0xffff) {
        dcd_err("release of %u extent%s asked (region %u): released %u,"
                " then Release Dynamic Capacity refused: %s (0x%02x)",
                g->n, plural(g->n), g->region, done, dcd_rc_name(rc), rc);
    }
out:
    free(rel.exts);
    free(held);
}

static void log_forced(DcdGroup *g)
{
    char list[256] = "";
    size_t used = 0;
    uint32_t i;

    for (i = 0; i < g->n && i < 4; i++) {
        used += snprintf(list + used, sizeof(list) - used, "%s0x%" PRIx64
                         "+0x%" PRIx64, i ? ", " : "", g->exts[i].dpa,
                         g->exts[i].len);
    }
    if (g->n > 4) {
        snprintf(list + used, sizeof(list) - used, ", ...");
    }
    dcd_log("forced release of %u extent%s (region %u): %s; nothing to"
            " answer", g->n, plural(g->n), g->region, list);
}

static void group_done(Agent *a)
{
    DcdGroup *g = &a->group;

    switch (g->type) {
    case CXL_DC_EVENT_ADD_CAPACITY:
        answer_add(a, g);
        break;
    case CXL_DC_EVENT_RELEASE:
        answer_release(a, g);
        break;
    case CXL_DC_EVENT_FORCED_RELEASE:
        log_forced(g);
        break;
    }
    group_reset(g);
}

static const char *type_name(uint8_t type)
{
    switch (type) {
    case CXL_DC_EVENT_ADD_CAPACITY:
        return "add capacity";
    case CXL_DC_EVENT_RELEASE:
        return "release capacity";
    case CXL_DC_EVENT_FORCED_RELEASE:
        return "forced capacity release";
    case CXL_DC_EVENT_REGION_CONFIG:
        return "region configuration updated";
    default:
        return "unknown type";
    }
}

static void print_record(const DcdEvent *ev)
{
    char tag[40];

    dcd_format_uuid(ev->extent.tag, tag);
    printf("record 0x%04x: %s (0x%02x) host %u region %u dpa 0x%" PRIx64
           " len 0x%" PRIx64 " tag %s seq %u%s\n", ev->handle,
           type_name(ev->type), ev->type, ev->host_id, ev->region,
           ev->extent.dpa, ev->extent.len, tag, ev->extent.seq,
           ev->flags & CXL_DC_EVENT_FLAG_MORE ? " more" : "");
}

static void handle_record(Agent *a, const DcdEvent *ev)
{
    DcdGroup *g = &a->group;

    if (a->print_only) {
        print_record(ev);
        a->records++;
        return;
    }
    switch (ev->type) {
    case CXL_DC_EVENT_ADD_CAPACITY:
    case CXL_DC_EVENT_RELEASE:
    case CXL_DC_EVENT_FORCED_RELEASE:
        if (g->open && (g->type != ev->type || g->region != ev->region)) {
            dcd_err("record 0x%04x (%s, region %u) interrupts a %s group of"
                    " region %u that had no last record; answering that"
                    " group as it is", ev->handle, type_name(ev->type),
                    ev->region, type_name(g->type), g->region);
            group_done(a);
        }
        g->open = true;
        g->type = ev->type;
        g->region = ev->region;
        if (!group_add(g, &ev->extent)) {
            group_reset(g);
            return;
        }
        if (!(ev->flags & CXL_DC_EVENT_FLAG_MORE)) {
            group_done(a);
        }
        break;
    case CXL_DC_EVENT_REGION_CONFIG:
        dcd_log("region %u configuration updated", ev->region);
        break;
    default:
        dcd_log("record 0x%04x of unknown type 0x%02x ignored", ev->handle,
                ev->type);
        break;
    }
}

/*
 * One Get Event Records call on the DC log, its records cleared by
 * handle and then handled.  Returns the number of records, -1 on error.
 */
static int process_batch(Agent *a)
{
    Dcd *d = &a->dev;
    uint8_t in = CXL_EVENT_LOG_DC;
    uint8_t *buf = calloc(1, d->payload_max);
    DcdGetEventsOut *out = (DcdGetEventsOut *)buf;
    DcdClearEventsIn *clr = NULL;
    DcdEvent *evs = NULL;
    size_t len = d->payload_max;
    uint16_t rc, count = 0, i;
    int ret = -1;

    if (!buf) {
        dcd_err("out of memory");
        return -1;
    }
    if (!dcd_mbox(d, CXL_OP_GET_EVENT_RECORDS, &in, sizeof(in), buf, &len,
                  &rc)) {
        goto out;
    }
    if (rc != CXL_RC_SUCCESS) {
        dcd_err("Get Event Records of the Dynamic Capacity log failed: %s"
                " (0x%02x)", dcd_rc_name(rc), rc);
        goto out;
    }
    count = len >= sizeof(*out) ? le16toh(out->count) : 0;
    if (len < sizeof(*out) ||
        len < sizeof(*out) + (size_t)count * sizeof(DcdDcEventRaw) ||
        count > UINT8_MAX) {
        dcd_err("Get Event Records: output of %zu bytes does not hold its"
                " %u records", len, count);
        goto out;
    }
    if (out->flags & CXL_GET_EVENTS_OVERFLOW) {
        dcd_err("the Dynamic Capacity event log overflowed: %u records were"
                " lost", le16toh(out->overflow_count));
    }
    if (!count) {
        ret = 0;
        goto out;
    }
    evs = calloc(count, sizeof(*evs));
    clr = calloc(1, sizeof(*clr) + count * sizeof(uint16_t));
    if (!evs || !clr) {
        dcd_err("out of memory");
        goto out;
    }
    for (i = 0; i < count; i++) {
        const DcdDcEventRaw *raw = &out->records[i];

        evs[i].handle = le16toh(raw->hdr.handle);
        evs[i].type = raw->type;
        evs[i].flags = raw->flags;
        evs[i].host_id = le16toh(raw->host_id);
        evs[i].region = raw->region_id;
        dcd_parse_extent(&raw->extent, &evs[i].extent);
        if (memcmp(raw->hdr.uuid, dc_event_uuid, sizeof(dc_event_uuid))) {
            /* Not a DC record: clear it, handle nothing */
            evs[i].type = 0xff;
        }
        clr->handles[i] = raw->hdr.handle;
    }
    clr->log = CXL_EVENT_LOG_DC;
    clr->count = count;
    if (!dcd_mbox(d, CXL_OP_CLEAR_EVENT_RECORDS, clr,
                  sizeof(*clr) + count * sizeof(uint16_t), NULL, NULL, &rc)) {
        goto out;
    }
    if (rc != CXL_RC_SUCCESS) {
        dcd_err("Clear Event Records of %u Dynamic Capacity record%s"
                " failed: %s (0x%02x)", count, plural(count),
                dcd_rc_name(rc), rc);
        goto out;
    }
    for (i = 0; i < count; i++) {
        handle_record(a, &evs[i]);
    }
    ret = count;
out:
    free(clr);
    free(evs);
    free(buf);
    return ret;
}

/* Read the DC log until it is empty. */
static bool drain(Agent *a)
{
    int i, n;

    for (i = 0; i < DCD_DRAIN_MAX; i++) {
        n = process_batch(a);
        if (n <= 0) {
            return n == 0;
        }
    }
    dcd_err("the Dynamic Capacity event log is not empty after %d reads", i);
    return false;
}

/* The daemon */

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static pid_t daemon_pid(void)
{
    char buf[32], path[64], comm[32];
    long pid;
    FILE *f;

    f = fopen(DCD_PID_FILE, "r");
    if (!f) {
        return 0;
    }
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return 0;
    }
    fclose(f);
    pid = strtol(buf, NULL, 10);
    if (pid <= 0 || kill(pid, 0) < 0) {
        return 0;
    }
    /* A stale pid file may name an unrelated process */
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    if (!fgets(comm, sizeof(comm), f) || strncmp(comm, "dcd-agent", 9)) {
        fclose(f);
        return 0;
    }
    fclose(f);
    return pid;
}

static bool write_pid_file(pid_t pid)
{
    char buf[32];
    int fd, n;

    fd = open(DCD_PID_FILE ".new", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        dcd_err("cannot create " DCD_PID_FILE ".new: %s", strerror(errno));
        return false;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
    if (write(fd, buf, n) != n) {
        dcd_err("cannot write " DCD_PID_FILE ".new: %s", strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    if (rename(DCD_PID_FILE ".new", DCD_PID_FILE) < 0) {
        dcd_err("cannot rename " DCD_PID_FILE ".new: %s", strerror(errno));
        return false;
    }
    return true;
}

static void daemon_loop(Agent *a, unsigned poll_ms)
{
    struct sigaction sa = { .sa_handler = on_signal };
    struct timespec ts = {
        .tv_sec = poll_ms / 1000,
        .tv_nsec = (poll_ms % 1000) * 1000000L,
    };

    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    dcd_log("running on %s: policy %s, polling the Dynamic Capacity event"
            " log every %u ms", a->dev.bdf, policy_names[a->policy], poll_ms);
    while (!stop_requested) {
        /* The Event Status register needs no mailbox command */
        if ((dcd_event_status(&a->dev) & DCD_EVENT_STATUS_DC) ||
            a->group.open) {
            drain(a);
        }
        nanosleep(&ts, NULL);
    }
    if (a->group.open) {
        dcd_log("stopping with %u record%s of an unfinished %s group"
                " unanswered", a->group.n, plural(a->group.n),
                type_name(a->group.type));
    }
    dcd_log("stopped");
}

/* Commands */

typedef struct Options {
    const char *device;
    DcdPolicy policy;
    bool has_policy;
    unsigned poll_ms;
    bool has_poll;
} Options;

static void usage(FILE *f)
{
    fprintf(f,
"Usage: dcd-agent [--device=BDF] COMMAND [ARGS]\n"
"\n"
"Answers a CXL Dynamic Capacity Device (DCD) from user space, for a kernel\n"
"without DCD support.  The device is the first PCI function of class\n"
"0x%06x, or --device=BDF (e.g. 0000:35:00.0).\n"
"\n"
"Commands:\n"
"  start [--policy=P] [--poll-ms=N]\n"
"              unbind cxl_pci from the device and run a daemon that answers\n"
"              the device's Dynamic Capacity event log (pid file\n"
"              " DCD_PID_FILE ", log " DCD_LOG_FILE " and /dev/console)\n"
"  stop        stop the daemon and bind cxl_pci to the device again\n"
"  list        print the accepted extents (Get DC Extent List):\n"
"                generation G, N extents\n"
"                extent I dpa 0xD len 0xL tag UUID seq S\n"
"  config      print the DC regions (Get DC Configuration)\n"
"  release DPA LEN\n"
"              give back accepted capacity (Release Dynamic Capacity)\n"
"  once [--policy=P]\n"
"              answer the records pending in the event log, then exit\n"
"  events      print and clear the pending records without answering\n"
"              them (debugging: the offers they carry stay unanswered)\n"
"  unbind      unbind cxl_pci without starting the daemon (for 'once')\n"
"  bind        bind cxl_pci again (refused while the daemon runs)\n"
"  read DPA    read 8 bytes at DPA through the CXL fixed memory window\n"
"  write DPA VALUE\n"
"              write 8 bytes there (both commit the device's HDM decoder 0\n"
"              over the first CXL window and use /dev/mem; stop and bind\n"
"              uncommit it before cxl_pci takes the device back)\n"
"  help        this text\n"
"\n"
"Policies: accept-all (default) accepts every offered extent; accept-first\n"
"accepts the first extent of each offer; reject declines every offer.\n"
"Release requests are answered by releasing the asked ranges that are\n"
"accepted; forced releases are only logged.\n"
"\n"
"The daemon polls (default every %u ms) because the device's MSI/MSI-X\n"
"interrupts cannot be received from user space without VFIO.  Mailbox\n"
"commands of all dcd-agent processes are serialized by an flock on\n"
DCD_LOCK_FILE ".  Commands other than start refuse to run while\n"
"cxl_pci owns the device.  Numbers take 0x for hex and K, M, G suffixes.\n",
            CXL_CLASS_MEMORY_DEVICE, DCD_DEFAULT_POLL_MS);
}

static bool parse_u64(const char *what, const char *s, uint64_t *val)
{
    unsigned long long v;
    char *end;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s || *s == '-') {
        dcd_err("%s '%s' is not a number", what, s);
        return false;
    }
    switch (*end) {
    case 'K':
    case 'k':
        v <<= 10;
        end++;
        break;
    case 'M':
    case 'm':
        v <<= 20;
        end++;
        break;
    case 'G':
    case 'g':
        v <<= 30;
        end++;
        break;
    }
    if (*end) {
        dcd_err("%s '%s' is not a number", what, s);
        return false;
    }
    *val = v;
    return true;
}

/* Find the device and check that no kernel driver owns it. */
static bool open_unowned(Agent *a, const Options *o)
{
    char drv[64];

    if (!dcd_find(&a->dev, o->device) || !dcd_driver(&a->dev, drv,
                                                     sizeof(drv))) {
        return false;
    }
    if (!strcmp(drv, "cxl_pci")) {
        dcd_err("cxl_pci owns %s; run 'dcd-agent start' first", a->dev.bdf);
        return false;
    }
    if (drv[0]) {
        dcd_err("driver %s owns %s; unbind it first", drv, a->dev.bdf);
        return false;
    }
    return dcd_open(&a->dev);
}

static bool unbind_cxl_pci(Dcd *d, bool *was_bound)
{
    char drv[64];

    *was_bound = false;
    if (!dcd_driver(d, drv, sizeof(drv))) {
        return false;
    }
    if (drv[0] && strcmp(drv, "cxl_pci")) {
        dcd_err("driver %s owns %s; the agent only takes over from cxl_pci",
                drv, d->bdf);
        return false;
    }
    if (!drv[0]) {
        return true;
    }
    if (!dcd_sysfs_write(DCD_CXL_PCI_DRIVER "/unbind", d->bdf)) {
        return false;
    }
    *was_bound = true;
    return true;
}

static bool bind_cxl_pci(Dcd *d)
{
    char drv[64];

    if (!dcd_driver(d, drv, sizeof(drv))) {
        return false;
    }
    if (!strcmp(drv, "cxl_pci")) {
        return true;
    }
    if (drv[0]) {
        dcd_err("driver %s owns %s; not binding cxl_pci", drv, d->bdf);
        return false;
    }
    if (!dcd_mem_release(d)) {
        return false;
    }
    return dcd_sysfs_write(DCD_CXL_PCI_DRIVER "/bind", d->bdf);
}

static int cmd_start(Agent *a, const Options *o)
{
    DcdConfig cfg;
    bool was_bound;
    pid_t pid;
    int fd;

    pid = daemon_pid();
    if (pid) {
        dcd_err("the daemon already runs (pid %d)", (int)pid);
        return 1;
    }
    if (!dcd_find(&a->dev, o->device) ||
        !unbind_cxl_pci(&a->dev, &was_bound)) {
        return 1;
    }
    if (!dcd_open(&a->dev) || !dcd_get_config(&a->dev, &cfg)) {
        goto undo;
    }
    if (!cfg.num_regions) {
        dcd_err("%s has no dynamic capacity regions", a->dev.bdf);
        goto undo;
    }
    if (mkdir(DCD_RUN_DIR, 0755) < 0 && errno != EEXIST) {
        dcd_err("cannot create " DCD_RUN_DIR ": %s", strerror(errno));
        goto undo;
    }
    log_fd = open(DCD_LOG_FILE, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                  0644);
    if (log_fd < 0) {
        dcd_err("cannot open " DCD_LOG_FILE ": %s", strerror(errno));
        goto undo;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        dcd_err("fork failed: %s", strerror(errno));
        goto undo;
    }
    if (pid) {
        if (!write_pid_file(pid)) {
            kill(pid, SIGTERM);
            goto undo;
        }
        printf("dcd-agent: started on %s (pid %d, policy %s, %u DC region%s,"
               " polling every %u ms)\n", a->dev.bdf, (int)pid,
               policy_names[a->policy], cfg.num_regions,
               plural(cfg.num_regions), o->poll_ms);
        return 0;
    }
    setsid();
    if (chdir("/") < 0) {
        /* / always exists */
    }
    in_daemon = true;
    console_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) {
            close(fd);
        }
    }
    daemon_loop(a, o->poll_ms);
    if (daemon_pid() == getpid()) {
        unlink(DCD_PID_FILE);
    }
    dcd_close(&a->dev);
    _exit(0);

undo:
    dcd_close(&a->dev);
    if (was_bound && bind_cxl_pci(&a->dev)) {
        dcd_err("cxl_pci bound to %s again", a->dev.bdf);
    }
    return 1;
}

static int cmd_stop(Agent *a, const Options *o)
{
    pid_t pid = daemon_pid();
    int waited;

    if (pid) {
        if (kill(pid, SIGTERM) < 0) {
            dcd_err("cannot stop the daemon (pid %d): %s", (int)pid,
                    strerror(errno));
            return 1;
        }
        for (waited = 0; kill(pid, 0) == 0; waited += 10) {
            if (waited >= DCD_STOP_WAIT_MS) {
                dcd_err("the daemon (pid %d) still runs %d ms after SIGTERM",
                        (int)pid, DCD_STOP_WAIT_MS);
                return 1;
            }
            /* Reap it if it is our child (it is not, but be safe) */
            waitpid(pid, NULL, WNOHANG);
            usleep(10000);
        }
    }
    if (!dcd_find(&a->dev, o->device) || !bind_cxl_pci(&a->dev)) {
        return 1;
    }
    if (pid) {
        printf("dcd-agent: stopped the daemon (pid %d); cxl_pci owns %s\n",
               (int)pid, a->dev.bdf);
    } else {
        printf("dcd-agent: no daemon was running; cxl_pci owns %s\n",
               a->dev.bdf);
    }
    return 0;
}

static int cmd_list(Agent *a)
{
    uint32_t n, gen, i;
    DcdExtent *exts;
    char tag[40];

    exts = dcd_get_extents(&a->dev, &n, &gen);
    if (!exts) {
        return 1;
    }
    printf("generation %u, %u extents\n", gen, n);
    for (i = 0; i < n; i++) {
        dcd_format_uuid(exts[i].tag, tag);
        printf("extent %u dpa 0x%" PRIx64 " len 0x%" PRIx64 " tag %s seq %u\n",
               i, exts[i].dpa, exts[i].len, tag, exts[i].seq);
    }
    free(exts);
    return 0;
}

static int cmd_config(Agent *a)
{
    DcdConfig cfg;
    int i;

    if (!dcd_get_config(&a->dev, &cfg)) {
        return 1;
    }
    printf("%u regions\n", cfg.num_regions);
    for (i = 0; i < cfg.regions_returned; i++) {
        DcdRegion *r = &cfg.regions[i];

        printf("region %d base 0x%" PRIx64 " decode-len 0x%" PRIx64 " len 0x%"
               PRIx64 " block-size 0x%" PRIx64 " dsmad-handle %u flags 0x%02x"
               "\n", i, r->base, r->decode_len, r->len, r->block_size,
               r->dsmad_handle, r->flags);
    }
    printf("extents supported %u available %u, tags supported %u"
           " available %u\n", cfg.extents_supported, cfg.extents_available,
           cfg.tags_supported, cfg.tags_available);
    return 0;
}

static int cmd_release(Agent *a, uint64_t dpa, uint64_t len)
{
    DcdExtent ext = { .dpa = dpa, .len = len };
    uint16_t rc;

    if (!dcd_update_extents(&a->dev, CXL_OP_RELEASE_DC, &ext, 1, false,
                            &rc)) {
        return 1;
    }
    if (rc != CXL_RC_SUCCESS) {
        dcd_err("release of dpa 0x%" PRIx64 " len 0x%" PRIx64 " refused: %s"
                " (0x%02x)", dpa, len, dcd_rc_name(rc), rc);
        return 1;
    }
    printf("dcd-agent: released dpa 0x%" PRIx64 " len 0x%" PRIx64 "\n", dpa,
           len);
    return 0;
}

static int cmd_once(Agent *a)
{
    int tries;

    /* A group's last records reach the log as earlier ones are cleared */
    for (tries = 0; tries < 100; tries++) {
        if (!drain(a)) {
            return 1;
        }
        if (!a->group.open) {
            break;
        }
        usleep(10000);
    }
    if (a->group.open) {
        dcd_err("a %s group of %u record%s has no last record; left"
                " unanswered", type_name(a->group.type), a->group.n,
                plural(a->group.n));
        return 1;
    }
    return 0;
}

static int cmd_events(Agent *a)
{
    a->print_only = true;
    if (!drain(a)) {
        return 1;
    }
    printf("%u record%s\n", a->records, plural(a->records));
    return 0;
}

static int cmd_unbind(Agent *a, const Options *o)
{
    bool was_bound;

    if (!dcd_find(&a->dev, o->device) ||
        !unbind_cxl_pci(&a->dev, &was_bound) || !dcd_open(&a->dev)) {
        return 1;
    }
    printf("dcd-agent: %s is unbound from cxl_pci%s\n", a->dev.bdf,
           was_bound ? "" : " (it was already)");
    return 0;
}

static int cmd_bind(Agent *a, const Options *o)
{
    pid_t pid = daemon_pid();

    if (pid) {
        dcd_err("the daemon (pid %d) uses the device; run 'dcd-agent stop'"
                " instead", (int)pid);
        return 1;
    }
    if (!dcd_find(&a->dev, o->device) || !bind_cxl_pci(&a->dev)) {
        return 1;
    }
    printf("dcd-agent: cxl_pci owns %s\n", a->dev.bdf);
    return 0;
}

static bool parse_policy(const char *s, DcdPolicy *p)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(policy_names); i++) {
        if (!strcmp(s, policy_names[i])) {
            *p = i;
            return true;
        }
    }
    dcd_err("--policy=%s: unknown policy (accept-all, accept-first or"
            " reject)", s);
    return false;
}

int main(int argc, char **argv)
{
    Options o = { .policy = DCD_POLICY_ACCEPT_ALL,
                  .poll_ms = DCD_DEFAULT_POLL_MS };
    static Agent agent;
    Agent *a = &agent;
    const char *args[4];
    const char *cmd = NULL;
    unsigned nargs = 0;
    uint64_t v1, v2;
    int i, ret;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (!strncmp(arg, "--device=", 9)) {
            o.device = arg + 9;
        } else if (!strncmp(arg, "--policy=", 9)) {
            if (!parse_policy(arg + 9, &o.policy)) {
                return 2;
            }
            o.has_policy = true;
        } else if (!strncmp(arg, "--poll-ms=", 10)) {
            if (!parse_u64("--poll-ms", arg + 10, &v1) || v1 < 1 ||
                v1 > 60000) {
                dcd_err("--poll-ms=%s: give 1 to 60000 milliseconds",
                        arg + 10);
                return 2;
            }
            o.poll_ms = v1;
            o.has_poll = true;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 0;
        } else if (arg[0] == '-' && arg[1] && !(arg[1] >= '0' &&
                                                 arg[1] <= '9')) {
            dcd_err("unknown option '%s'; see 'dcd-agent help'", arg);
            return 2;
        } else if (!cmd) {
            cmd = arg;
        } else if (nargs < ARRAY_SIZE(args)) {
            args[nargs++] = arg;
        } else {
            dcd_err("too many arguments for '%s'; see 'dcd-agent help'", cmd);
            return 2;
        }
    }
    if (!cmd) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (o.has_policy && strcmp(cmd, "start") && strcmp(cmd, "once")) {
        dcd_err("--policy applies to 'start' and 'once', not '%s'", cmd);
        return 2;
    }
    if (o.has_poll && strcmp(cmd, "start")) {
        dcd_err("--poll-ms applies to 'start', not '%s'", cmd);
        return 2;
    }
    a->policy = o.policy;

    if (!strcmp(cmd, "release") || !strcmp(cmd, "write")) {
        if (nargs != 2) {
            dcd_err("'%s' takes two arguments (%s), not %u", cmd,
                    cmd[0] == 'r' ? "DPA LEN" : "DPA VALUE", nargs);
            return 2;
        }
    } else if (!strcmp(cmd, "read")) {
        if (nargs != 1) {
            dcd_err("'read' takes one argument (DPA), not %u", nargs);
            return 2;
        }
    } else if (nargs) {
        dcd_err("'%s' takes no arguments", cmd);
        return 2;
    }

    if (!strcmp(cmd, "start")) {
        return cmd_start(a, &o);
    } else if (!strcmp(cmd, "stop")) {
        return cmd_stop(a, &o);
    } else if (!strcmp(cmd, "unbind")) {
        ret = cmd_unbind(a, &o);
        dcd_close(&a->dev);
        return ret;
    } else if (!strcmp(cmd, "bind")) {
        return cmd_bind(a, &o);
    }

    if (strcmp(cmd, "list") && strcmp(cmd, "config") &&
        strcmp(cmd, "release") && strcmp(cmd, "once") &&
        strcmp(cmd, "events") && strcmp(cmd, "read") &&
        strcmp(cmd, "write")) {
        dcd_err("unknown command '%s'; see 'dcd-agent help'", cmd);
        return 2;
    }
    if (!strcmp(cmd, "release") &&
        (!parse_u64("DPA", args[0], &v1) || !parse_u64("LEN", args[1], &v2))) {
        return 2;
    }
    if ((!strcmp(cmd, "read") || !strcmp(cmd, "write")) &&
        (!parse_u64("DPA", args[0], &v1) ||
         (nargs > 1 && !parse_u64("VALUE", args[1], &v2)))) {
        return 2;
    }
    if ((!strcmp(cmd, "once") || !strcmp(cmd, "events")) && daemon_pid()) {
        dcd_err("the daemon (pid %d) answers the event log; stop it with"
                " 'dcd-agent stop' and use 'dcd-agent unbind' first",
                (int)daemon_pid());
        return 1;
    }
    if (!open_unowned(a, &o)) {
        dcd_close(&a->dev);
        return 1;
    }
    if (!strcmp(cmd, "list")) {
        ret = cmd_list(a);
    } else if (!strcmp(cmd, "config")) {
        ret = cmd_config(a);
    } else if (!strcmp(cmd, "release")) {
        ret = cmd_release(a, v1, v2);
    } else if (!strcmp(cmd, "once")) {
        ret = cmd_once(a);
    } else if (!strcmp(cmd, "events")) {
        ret = cmd_events(a);
    } else {
        ret = dcd_mem_access(&a->dev, v1, !strcmp(cmd, "write"), v2);
    }
    dcd_close(&a->dev);
    return ret;
}
