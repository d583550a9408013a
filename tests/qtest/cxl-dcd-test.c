/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QTest testcase for CXL Dynamic Capacity Devices: the QMP commands
 * cxl-add-dynamic-capacity and cxl-release-dynamic-capacity on a
 * cxl-type3 device with two dynamic capacity regions.
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"

#define DCD_PATH "/machine/peripheral/cxl-dcd0"

/*
 * A 1 GiB volatile backend split by the device into two 512 MiB DC
 * regions with 2 MiB blocks, behind one root port of a CXL host bridge
 * with a fixed memory window.
 */
#define DCD_MACHINE \
    "-machine q35,cxl=on " \
    "-object memory-backend-ram,id=dc-mem0,size=1G " \
    "-device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 " \
    "-device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0 " \
    "-device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0," \
    "num-dc-regions=2,id=cxl-dcd0 " \
    "-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G "

static QTestState *dcd_start(void)
{
    return qtest_init(DCD_MACHINE);
}

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

/*
 * The example of the series' cover letter: offer two 128 MiB extents of
 * region 0 to the host.
 */
static void test_add_seed_example(void)
{
    QTestState *qts = dcd_start();

    assert_ok(dcd_add(qts, 0,
                      "[{'offset': 0, 'len': 134217728},"
                      " {'offset': 134217728, 'len': 134217728}]"));
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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/cxl/dcd/qmp/add/seed-example", test_add_seed_example);
    qtest_add_func("/cxl/dcd/qmp/add/bad-region", test_add_bad_region);
    qtest_add_func("/cxl/dcd/qmp/add/misaligned", test_add_misaligned);
    qtest_add_func("/cxl/dcd/qmp/add/beyond-region", test_add_beyond_region);
    qtest_add_func("/cxl/dcd/qmp/add/self-overlap", test_add_self_overlap);
    qtest_add_func("/cxl/dcd/qmp/bad-path", test_bad_path);

    return g_test_run();
}
