#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Write the seed corpora (corpus/<target>/) and the libFuzzer
# dictionaries (<target>.dict) of the DC engine fuzz targets.  The input
# formats are described in fuzz-dc-common.c, fuzz-dc-ops.c and
# fuzz-dc-region-layout.c.  Run from anywhere; it rewrites its outputs.
#
#   fuzz/make-corpus.py

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

KiB = 1 << 10
MiB = 1 << 20
U64 = (1 << 64) - 1

# Device header: layout, max extents (0: 64), max tags (index)
L0, L1, L2, L3 = 0, 1, 2, 3          # see fuzz-dc-common.c


def header(layout=L0, max_extents=0, tags=0):
    return bytes([layout, max_extents, tags])


# Operations (fz_op() in fuzz-dc-ops.c)
def blk(index, count, mode=0x00):
    """A range of 'count' blocks at block 'index' (count 1..8)."""
    return bytes([mode, index, count - 1])


def raw_range(start, length):
    return bytes([0x80]) + struct.pack('<QQ', start, length)


def offer(ranges, target=0, tag=0):
    return bytes([0x00, target, tag, len(ranges)]) + b''.join(ranges)


def offer_len(policy, blocks, target=0, tag=0):
    """policy: 0 free, 1 contiguous, 4 prescriptive, 5 shared"""
    return bytes([0x02, policy, target, tag, (blocks - 1) & 0x3f])


def respond(ranges, more=False):
    return bytes([0x03, int(more), len(ranges)]) + b''.join(ranges)


def accept(n=0, flags=0, mask=None, trims=b'\0' * 8):
    """Answer the oldest group, of n extents (0: none pending): flags
    1 More, 2 empty, 4 split; mask picks extents (default all), with a
    trim byte each."""
    mask = (1 << n) - 1 if mask is None else mask
    picked = bin(mask & ((1 << min(n, 8)) - 1)).count('1')
    if flags & 2:
        picked = 0
    return bytes([0x04, flags, mask]) + trims[:picked]


def release(ranges):
    return bytes([0x06, len(ranges)]) + b''.join(ranges)


def release_accepted(mask, base=0, trims=b'\0' * 8, flags=0):
    return bytes([0x07, flags, mask, base]) + trims[:bin(mask).count('1')]


def answer_release(index=0):
    return bytes([0x07, 0x01, index])


def fm_release(flags, ranges=(), target=0, tag=0):
    """flags: 1 tag-based, 2 forced, 4 sanitize"""
    out = bytes([0x09, flags, target, tag])
    if not flags & 1:
        out += bytes([len(ranges)]) + b''.join(ranges)
    return out


def drain(n=0):
    return bytes([0x0b, n])


def page_walk(page, start=0):
    return bytes([0x0c, 1 | ((page - 1) << 1), start, 0, 8])


def get_extents(start, count):
    return bytes([0x0c, 0, start, count])


def is_backed(start, length):
    return bytes([0x0d, 1]) + struct.pack('<QQ', start, length)


def set_block_size(sel, target=0):
    return bytes([0x0e, target, sel])


CLEAR = bytes([0xff])


# Payload targets: header, setup operations, then chunks
def payload_input(hdr, setup, chunks):
    out = hdr + bytes([len(setup)]) + b''.join(setup)
    for kind, data in chunks:
        flag = 0x8000 if kind == 'ops' else 0
        out += struct.pack('<H', flag | len(data)) + data
    return out


def ops(*o):
    return ('ops', b''.join(o))


def pl(data):
    return ('payload', data)


# Wire formats, CXL r3.1 Tables 8-169, 8-167, 7-70
def updated(entries, more=False, count=None):
    n = len(entries) if count is None else count
    out = struct.pack('<IB3x', n, int(more))
    for dpa, length in entries:
        out += struct.pack('<QQ8x', dpa, length)
    return out


def ext_list(count, start):
    return struct.pack('<II', count, start)


def initiate(policy, region, length=0, tag=b'\0' * 16, extents=(),
             host=0, count=None):
    n = len(extents) if count is None else count
    out = struct.pack('<HBBQ16sI', host, policy, region, length, tag, n)
    for dpa, ln in extents:
        out += struct.pack('<QQ16sH6x', dpa, ln, tag, 0)
    return out


def fm_add(*a, **k):
    return b'\0' + initiate(*a, **k)


def fm_rel(*a, **k):
    """policy: 0 tag-based, 1 prescriptive; 0x10 forced, 0x20 sanitize"""
    return b'\1' + initiate(*a, **k)


TAG = bytes([0x11] + [0] * 15)
BS0, BS1 = 2 * MiB, 64 * KiB
R1 = 256 * MiB

seeds = {}

seeds['add-response'] = {
    'accept-all': payload_input(
        header(L0), [offer([blk(0, 2), blk(4, 2)])],
        [pl(updated([(0, 2 * BS0), (4 * BS0, 2 * BS0)]))]),
    'in-parts': payload_input(
        header(L1), [offer([blk(0, 4)])],
        [pl(updated([(0, 2 * BS1)], more=True)),
         pl(updated([(3 * BS1, BS1)]))]),
    'reject': payload_input(
        header(L1), [offer([blk(2, 3)], target=1)],
        [pl(updated([])), pl(updated([(R1 + 2 * BS1, BS1)]))]),
    'count-beyond-payload': payload_input(
        header(L1), [offer([blk(0, 1)])],
        [pl(updated([(0, BS1)], count=5)),
         pl(updated([(U64 - BS1 + 1, 2 * BS1)])),
         pl(updated([(0, BS1), (0, BS1)]))]),
    'two-groups': payload_input(
        header(L1, 8), [offer([blk(0, 2)]), offer([blk(4, 2)])],
        [pl(updated([(BS1, BS1)], more=True)),
         ops(offer([blk(8, 1)])),
         pl(updated([(0, BS1)])),
         pl(updated([(4 * BS1, 2 * BS1)]))]),
    'split-limit': payload_input(
        header(L1, 4), [offer([blk(0, 4)])],
        [pl(updated([(0, BS1), (2 * BS1, BS1)], more=True)),
         ops(offer([blk(8, 1), blk(10, 1), blk(12, 1)])),
         pl(updated([]))]),
}

seeds['release'] = {
    'whole': payload_input(
        header(L0), [offer([blk(0, 2), blk(4, 2)]), accept(2)],
        [pl(updated([(0, 2 * BS0)]))]),
    'split-middle': payload_input(
        header(L1), [offer([blk(0, 8)]), accept(1)],
        [pl(updated([(3 * BS1, 2 * BS1)])), pl(updated([(0, BS1)]))]),
    'answer-sanitize': payload_input(
        header(L1), [offer([blk(0, 2), blk(4, 2)]), accept(2),
                     fm_release(4, [blk(0, 2), blk(4, 2)])],
        [pl(updated([(0, 2 * BS1), (4 * BS1, 2 * BS1)]))]),
    'split-exhausted': payload_input(
        header(L1, 2), [offer([blk(0, 8)]), accept(1)],
        [pl(updated([(2 * BS1, BS1)])), pl(updated([(5 * BS1, BS1)]))]),
    'malformed': payload_input(
        header(L1), [offer([blk(0, 4)]), accept(1)],
        [pl(updated([(0, BS1)], count=0x0aaaaaab)), pl(updated([(0, 0)])),
         pl(updated([(1, BS1)])), pl(updated([(0, U64)]))]),
}

seeds['get-extents'] = {
    'pages': payload_input(
        header(L1), [offer([blk(0, 1), blk(2, 1), blk(4, 1)]), accept(3)],
        [pl(ext_list(2, 0)), pl(ext_list(2, 2)), pl(ext_list(50, 0)),
         pl(ext_list(1, 4))]),
    'page-then-change': payload_input(
        header(L0), [offer([blk(i * 2, 1) for i in range(8)]), accept(8)],
        [pl(ext_list(3, 0)), pl(ext_list(3, 3)),
         ops(release_accepted(0x01, 1)),
         pl(ext_list(3, 3)), pl(ext_list(3, 6)), pl(ext_list(0, 7))]),
    'huge-count': payload_input(
        header(L1), [offer([blk(0, 1), blk(2, 1)], target=1), accept(2)],
        [pl(ext_list(0xffffffff, 0)), pl(ext_list(1, 0xffffffff)),
         ops(offer([blk(5, 1)])), pl(ext_list(0xffffffff, 1))]),
}


def region_compact(bs_shift, base_step=0, decode_units=1, blocks=1,
                   mode=0x00):
    return bytes([mode, bs_shift, base_step, decode_units - 1]) + \
        struct.pack('<H', blocks)


def region_raw(base, decode_len, length, bs, mode=0x80):
    return bytes([mode]) + struct.pack('<QQQQ', base, decode_len, length, bs)


seeds['region-layout'] = {
    'unit-test': bytes([64, 16, 2]) + region_compact(21, 0, 1, 64) +
    region_compact(21, 0, 1, 64) + offer([blk(0, 2)]) + accept(1),
    'top-of-space': bytes([64, 16, 3]) +
    region_raw(U64 + 1 - 256 * MiB, 256 * MiB, 256 * MiB, 2 * MiB) +
    region_raw(U64 + 1 - 512 * MiB, 256 * MiB, 256 * MiB, 2 * MiB) +
    region_raw(0, 256 * MiB, 128 * MiB, 2 * MiB),
    'nine-small': bytes([8, 1, 9]) +
    b''.join(region_compact(6, 0, 1, 16) for _ in range(9)),
    'invalid': bytes([0, 0, 6]) +
    region_compact(21 | 0x40, 0, 1, 8) +           # not a power of 2
    region_compact(21, 0, 1, 8, mode=0x40) +        # base not aligned
    region_compact(21, 0, 1, 200) +                 # len > decode
    region_compact(16, 0, 2, 4096) +
    region_compact(16, 0x81, 1, 4) +                # overlaps
    region_compact(0x80, 0, 1, 4),                  # block size 0
    'then-ops': bytes([16, 2, 2]) + region_compact(16, 0, 1, 32) +
    region_compact(12, 1, 4, 0, mode=0x20) +
    offer([blk(0, 4)]) + accept(1, flags=4) + fm_release(2 | 4, [blk(0, 1)]) +
    page_walk(2),
}

seeds['fm-initiate'] = {
    'add-release': payload_input(
        header(L0), [],
        [pl(fm_add(2, 0, extents=[(0, 2 * BS0), (8 * BS0, BS0)])),
         ops(accept(2)),
         pl(fm_rel(1, 0, extents=[(0, 2 * BS0)])),
         pl(fm_rel(1 | 0x10 | 0x20, 0, extents=[(8 * BS0, BS0)]))]),
    'free-contiguous-tag': payload_input(
        header(L1), [],
        [pl(fm_add(0, 1, length=6 * BS1, tag=TAG)),
         pl(fm_add(1, 1, length=3 * BS1, tag=TAG)),
         ops(accept(1), accept(1)),
         pl(fm_rel(0, 1, tag=TAG)),
         pl(fm_rel(0x10, 1, tag=TAG))]),
    'malformed': payload_input(
        header(L1), [],
        [pl(fm_add(2, 0, extents=[(0, BS1)], count=3)),
         pl(fm_add(2, 7, extents=[(0, BS1)])),
         pl(fm_add(2, 1, extents=[(0, BS1)])),
         pl(fm_add(3, 0, length=BS1)),
         pl(fm_add(0x0f, 0, length=BS1)),
         pl(fm_add(0, 0, length=U64 - BS1 + 1)),
         pl(fm_add(2, 0, extents=[(BS1, U64)])),
         pl(fm_add(2, 0, extents=[(0, BS1)], host=1))]),
    'forced-sanitize': payload_input(
        header(L1, 0, 2), [offer([blk(0, 8)], tag=2), accept(1)],
        [pl(fm_rel(1, 0, extents=[(2 * BS1, 2 * BS1)])),
         pl(fm_rel(0x30, 0, tag=TAG)),
         pl(fm_rel(0x11, 0, extents=[(0, BS1)]))]),
}

seeds['sequence'] = {
    'sanitize-two': header(L1) + offer([blk(0, 2), blk(4, 2)]) + accept(2) +
    fm_release(4, [blk(0, 2), blk(4, 2)]) + answer_release(),
    'split-limit': header(L1, 4) + offer([blk(0, 4)]) +
    accept(1, flags=1 | 4) + offer([blk(8, 1), blk(10, 1), blk(12, 1)]) +
    accept(flags=2) + accept() + release_accepted(0x03),
    'mixed': header(L0, 16, 0) + offer([blk(0, 4), blk(8, 2)], tag=2) +
    offer_len(0, 6, target=1) + offer_len(1, 3, target=1, tag=3) +
    accept(2, flags=1, mask=0x01) + accept(2, mask=0x02) + accept(1) +
    accept(1, mask=0x01, trims=b'\x11') + page_walk(1) +
    release_accepted(0x01, 0, b'\x01') + fm_release(1 | 2, tag=2) +
    fm_release(2 | 4, [blk(0, 1)], target=1) + drain(3) +
    is_backed(R1, BS0) + set_block_size(0) + page_walk(3) + drain() +
    CLEAR + offer([blk(1, 1)]) + accept(1),
    'tiny-blocks': header(L3, 32, 1) + offer([blk(0, 8), blk(16, 8),
                                              blk(40, 8)]) +
    accept(3, trims=b'\x21\x12\x00') + release_accepted(0x05, 0, b'\x01\x10') +
    fm_release(0, [blk(0, 1)]) + answer_release() + page_walk(1),
    'near-limit': header(L2, 12, 4) +
    offer([blk(i * 3, 2) for i in range(8)]) + accept(8, flags=4) +
    offer_len(0, 20) + accept(8) + release_accepted(0xff, 0,
                                                   b'\x11' * 8),
}


# Load target (fuzz-dc-load.c): source header, destination byte, source
# operations, destination operations, mutations, operations after
def load_input(hdr, src_ops, dst=0x00, dst_extra=b'', dst_ops=b'',
               mutations=(), after=b''):
    return hdr + bytes([dst]) + dst_extra + \
        struct.pack('<H', len(src_ops)) + src_ops + \
        bytes([len(dst_ops)]) + dst_ops + \
        bytes([len(mutations)]) + b''.join(mutations) + after


# Arrays and fields of a snapshot (fuzz-dc-load.c)
REGIONS, EXTENTS, GROUPS, RELEASES, RANGES, RECORDS = range(6)
F_DPA, F_LEN, F_TAG, F_SEQ, F_KIND, F_GROUP = range(6)      # extents
M_SET, M_STEP, M_BLOCKS, M_FLIP, M_ZERO, M_ONES, M_COPY, M_EDGE, \
    M_DOUBLE, M_HALF, M_SMALL, M_POW2 = range(12)


def field(array, index, fld, mode, arg=b''):
    return bytes([array, index, fld, mode]) + arg


def scalar(fld, mode, arg=b''):
    """fld: 0 generation, 1 next group id, 2 next release id"""
    return bytes([6, fld, mode]) + arg


def shape(array, op, i=0, j=0):
    """op: 0 delete, 1 duplicate, 2 swap, 3 insert a zeroed entry"""
    return bytes([7 | (array << 3), op, i, j])


# A busy source (layout 1): extents 0-1 accepted, 2 pending in group 0
# with 3 staged by a response in parts, 4 pending in group 1; a release
# request with sanitize; records left in the queue
BUSY = offer([blk(0, 2), blk(4, 1)], tag=2) + accept(2) + \
    offer([blk(8, 4)]) + accept(1, flags=1, trims=b'\x01') + \
    offer([blk(1, 1)], target=1, tag=3) + fm_release(4, [blk(0, 1)])

seeds['load'] = {
    'busy': load_input(header(L1), BUSY, dst_ops=offer([blk(20, 1)]),
                       after=accept(1, mask=0x01, trims=b'\x01') +
                       accept(1) + answer_release() + page_walk(2)),
    'into-itself': load_input(header(L1), BUSY, dst=0x10,
                              after=accept() + release_accepted(0x03)),
    'overlap': load_input(header(L1), BUSY, mutations=[
        field(EXTENTS, 1, F_DPA, M_COPY, b'\x00')]),
    'staged-other-group': load_input(header(L1), BUSY, mutations=[
        field(EXTENTS, 3, F_GROUP, M_STEP, b'\x01')]),
    'pending-on-accepted': load_input(header(L1), BUSY, mutations=[
        field(EXTENTS, 2, F_DPA, M_EDGE, b'\x00')]),
    'block-size': load_input(header(L1), offer([blk(0, 2)], target=1),
                             mutations=[field(REGIONS, 0, 2, M_DOUBLE)],
                             after=offer([blk(0, 1)]) + accept(1)),
    'record-type': load_input(header(L1), BUSY, mutations=[
        field(RECORDS, 0, 0, M_SMALL, b'\x09')]),
    'other-layout': load_input(header(L1), BUSY, dst=0x82),
    'small-device': load_input(header(L1), BUSY, dst=0x60,
                               dst_extra=b'\x02\x02'),
    'shapes': load_input(header(L1), BUSY, mutations=[
        shape(GROUPS, 0, 1), shape(EXTENTS, 1, 0, 9), shape(RECORDS, 3),
        shape(RANGES, 1)]),
    'counts-ids': load_input(header(L1), BUSY, mutations=[
        field(RELEASES, 0, 4, M_ONES), scalar(1, M_ZERO),
        field(GROUPS, 1, 0, M_COPY, b'\x00')]),
    'tags': load_input(header(L1, 0, 3), BUSY, mutations=[
        field(EXTENTS, 0, F_TAG, 0, bytes(range(1, 17))),
        field(EXTENTS, 4, F_TAG, 3, b'\x00')]),
    'empty': load_input(header(L0), b'', dst_ops=offer([blk(3, 1)]) +
                        accept(1), after=offer([blk(0, 1)]) + accept(1)),
}


def dict_u64(name, v):
    return name + '="' + ''.join('\\x%02x' % b for b in
                                 struct.pack('<Q', v & U64)) + '"'


def dict_u32(name, v):
    return name + '="' + ''.join('\\x%02x' % b for b in
                                 struct.pack('<I', v & 0xffffffff)) + '"'


def dict_bytes(name, data):
    return name + '="' + ''.join('\\x%02x' % b for b in data) + '"'


COMMON_U64 = [
    ('zero', 0), ('one', 1), ('min_block', 64), ('blk64k', 64 * KiB),
    ('blk2m', 2 * MiB), ('blk2m_x2', 4 * MiB), ('blk2m_plus1', 2 * MiB + 1),
    ('region_len', 128 * MiB), ('region_last_block', 126 * MiB),
    ('region1_base', 256 * MiB), ('region1_block1', 258 * MiB),
    ('region1_end', 384 * MiB), ('align256m', 256 * MiB),
    ('max', U64), ('max_block_aligned', U64 + 1 - 2 * MiB),
    ('wrap_from_region1', U64 + 1 - 256 * MiB), ('top_bit', 1 << 63),
    ('max_minus_64k', U64 + 1 - 64 * KiB), ('u32_max', 0xffffffff),
    ('u32_max_plus1', 1 << 32), ('one_mib', MiB), ('two_mib_dense', 2 * MiB),
]
COMMON_U32 = [
    ('count0', 0), ('count1', 1), ('count2', 2), ('count8', 8),
    ('count50', 50), ('count_max', 0xffffffff), ('count_2g', 0x80000000),
    ('count_x24_wraps32', 0x0aaaaaab), ('count_x40_wraps32', 0x06666667),
]

OPS = [
    ('op_offer', b'\x00\x00\x00\x01\x00\x00\x01'),
    ('op_accept_all', b'\x04\x00\xff'),
    ('op_accept_part_more', b'\x04\x05\x01\x00'),
    ('op_reject', b'\x04\x02\x00'),
    ('op_release_acc', b'\x07\x00\x01\x00\x00'),
    ('op_answer_release', b'\x07\x01\x00'),
    ('op_fm_release_sanitize', b'\x09\x04\x00\x00\x01\x00\x00\x00'),
    ('op_fm_forced_tag', b'\x09\x03\x00\x02'),
    ('op_drain', b'\x0b\x00'),
    ('op_page_walk', b'\x0c\x03\x00\x00\x08'),
    ('op_clear', b'\xff'),
]


def write_dict(target, extra):
    lines = ['# libFuzzer dictionary of fuzz-dc-%s, written by'
             ' make-corpus.py' % target]
    lines += [dict_u64('u64_' + n, v) for n, v in COMMON_U64]
    lines += [dict_u32('u32_' + n, v) for n, v in COMMON_U32]
    lines += [dict_bytes(n, d) for n, d in OPS]
    lines += extra
    with open(os.path.join(HERE, target + '.dict'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


# The generic target: QEMU's generic fuzzer on the cxl-dcd configuration
# of tests/qtest/fuzz/generic_fuzz_configs.h.  An input is a list of
# operations separated by "FUZZ": an opcode byte (modulo the number of
# operations), then its operands; a write is u8 size (0 byte .. 3 quad),
# u8 range, 2 bytes of padding, u32 offset, u64 value.  The range is an
# index into the device's MMIO ranges in address order, modulo their
# number: 8, the mailbox's is 4 (the one on which an Identify command
# reaches the most code; fuzz/run.sh generic -runs=0 prints the ranges).
SEP = b'FUZZ'
OP_WRITE, OP_CLOCK_STEP = 3, 9
MBOX = 4
MBOX_CTRL, MBOX_CMD, MBOX_PAYLOAD = 0x04, 0x08, 0x20
CEL_UUID = bytes.fromhex('0da9c0b5bf414b788f7996b1623b3f17')


def mmio_write(size, index, offset, value):
    return bytes([OP_WRITE]) + struct.pack('<BBxxIQ', size, index, offset,
                                           value)


def mbox_cmd(opcode, payload=b''):
    """One mailbox command: payload, command register, doorbell"""
    padded = payload + b'\0' * (-len(payload) % 8)
    w = [mmio_write(3, MBOX, MBOX_PAYLOAD + i,
                    struct.unpack_from('<Q', padded, i)[0])
         for i in range(0, len(padded), 8)]
    w.append(mmio_write(3, MBOX, MBOX_CMD, opcode | len(payload) << 16))
    w.append(mmio_write(2, MBOX, MBOX_CTRL, 1))
    return SEP.join(w)


def dev_input(*cmds):
    return SEP.join(cmds)


def dc_extents(extents, flags=0, count=None):
    """Add DC Response / Release DC input (CXL r3.1 Tables 8-168-8-170)"""
    n = len(extents) if count is None else count
    return struct.pack('<IB3x', n, flags) + b''.join(
        struct.pack('<QQ8x', dpa, length) for dpa, length in extents)


seeds['generic'] = {
    'identify': dev_input(mbox_cmd(0x4000)),
    'dc-config': dev_input(mbox_cmd(0x4800, bytes([8, 0])),
                           mbox_cmd(0x4800, bytes([1, 1]))),
    'extent-list': dev_input(mbox_cmd(0x4801, struct.pack('<II', 8, 0))),
    # Upstream dereferenced NULL on this: a response with nothing pending
    'add-response-nothing-pending': dev_input(
        mbox_cmd(0x4802, dc_extents([])),
        mbox_cmd(0x4802, dc_extents([(0, 2 * MiB)]))),
    'add-response-count-beyond-payload': dev_input(
        mbox_cmd(0x4802, dc_extents([(0, 2 * MiB)], count=0xffffffff))),
    'release-never-accepted': dev_input(
        mbox_cmd(0x4803, dc_extents([(0, 2 * MiB)])),
        mbox_cmd(0x4803, dc_extents([(U64 + 1 - 2 * MiB, 4 * MiB)]))),
    'events': dev_input(
        mbox_cmd(0x0103, bytes([0, 0, 0, 0, 1])),
        mbox_cmd(0x0102),
        mbox_cmd(0x0100, bytes([4])),
        mbox_cmd(0x0101, struct.pack('<BBB3xH', 4, 0, 1, 1))),
    'logs': dev_input(mbox_cmd(0x0400),
                      mbox_cmd(0x0401, CEL_UUID + struct.pack('<II', 0,
                                                              0x400))),
    'sanitize': dev_input(mbox_cmd(0x4400),
                          *[bytes([OP_CLOCK_STEP])] * 4,
                          mbox_cmd(0x4000)),
}


def write_generic_dict():
    lines = ['# libFuzzer dictionary of the generic target, written by'
             ' make-corpus.py',
             dict_bytes('separator', SEP),
             dict_bytes('doorbell', mmio_write(2, MBOX, MBOX_CTRL, 1)),
             dict_bytes('clock_step', bytes([OP_CLOCK_STEP]))]
    for name, op in [('identify', 0x4000), ('get_events', 0x0100),
                     ('clear_events', 0x0101), ('get_policy', 0x0102),
                     ('set_policy', 0x0103), ('get_log', 0x0401),
                     ('sanitize', 0x4400), ('dc_config', 0x4800),
                     ('extent_list', 0x4801), ('add_response', 0x4802),
                     ('release', 0x4803)]:
        lines.append(dict_bytes('cmd_' + name, struct.pack('<H', op)))
    lines += [dict_u64('u64_' + n, v) for n, v in COMMON_U64]
    lines += [dict_u32('u32_' + n, v) for n, v in COMMON_U32]
    with open(os.path.join(HERE, 'generic.dict'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


# The device target: tests/qtest/fuzz/cxl_dcd_fuzz.c, QMP requests and
# mailbox commands on a whole device.  An input is a list of operations:
# an opcode byte (modulo their number), then its operands, read as far
# as the input goes (zeros after it).
D_ADD, D_RELEASE, D_COMMAND, D_ANSWER, D_CLOCK, D_RESET = range(6)
FREE, CONTIGUOUS, PRESCRIPTIVE, SHARED = range(4)
D_OPCODES = [0x0100, 0x0101, 0x0102, 0x0103, 0x0401, 0x4000, 0x4400,
             0x4800, 0x4801, 0x4802, 0x4803]


def d_exts(exts, raw=False):
    """Extents: count, then (block, blocks - 1) or raw (u64 offset, len)"""
    if raw:
        return bytes([len(exts)]) + b''.join(struct.pack('<QQ', o, n)
                                             for o, n in exts)
    return bytes([len(exts)]) + b''.join(bytes([b, n - 1]) for b, n in exts)


def d_add(region, exts=(), policy=PRESCRIPTIVE, tag=None, length=None,
          raw=False):
    flags = (1 | (2 if tag else 0)) if tag is not None else 0
    if length is not None:
        return bytes([D_ADD, region, policy, flags | 4, length - 1])
    return bytes([D_ADD, region, policy, flags | (8 if raw else 0)]) + \
        d_exts(exts, raw)


def d_release(region, exts=(), forced=False, sanitize=False, tag=None,
              raw=False):
    flags = (1 if forced else 0) | (2 if sanitize else 0) | \
        (4 | 8 | (16 if tag else 0) if tag is not None else 0) | \
        (32 if raw else 0)
    return bytes([D_RELEASE, region, flags]) + d_exts(exts, raw)


def d_command(opcode, payload=b''):
    return bytes([D_COMMAND, D_OPCODES.index(opcode)]) + \
        struct.pack('<H', len(payload)) + payload


def d_answer(mask=0xff):
    return bytes([D_ANSWER, mask])


seeds['device'] = {
    'offer-accept': d_add(0, [(0, 2), (8, 1)]) + d_answer(),
    'accept-release': d_add(1, [(0, 4)]) + d_answer() +
    d_release(1, [(1, 2)]) + d_answer(),
    'reject': d_add(0, [(2, 1), (4, 1)]) + d_answer(0),
    'accept-first': d_add(0, [(i * 2, 1) for i in range(8)]) + d_answer(1),
    'tags-forced-sanitize': d_add(0, [(0, 2)], tag=0) + d_answer() +
    d_add(0, [(4, 2)], tag=1) + d_answer() +
    d_release(0, forced=True, sanitize=True, tag=0) +
    d_release(0, tag=1) + d_answer(),
    'length-free': d_add(1, policy=FREE, length=3) + d_answer() +
    d_add(1, policy=CONTIGUOUS, length=2) + d_answer(),
    'many-offers': b''.join(d_add(0, [(i * 16 + j * 2, 1)
                                      for j in range(8)])
                            for i in range(12)) + d_answer() * 4,
    'reset-in-flight': d_add(0, [(0, 1), (2, 1)]) + bytes([D_RESET]) +
    d_answer() + d_add(0, [(0, 1)]) + d_answer(),
    'host-commands': d_command(0x4802, struct.pack('<IB3x', 0, 0)) +
    d_command(0x4803, dc_extents([(0, 2 * MiB)])) +
    d_command(0x4801, struct.pack('<II', 0xffffffff, 0)) +
    d_command(0x4800, bytes([8, 0])),
    'sanitize-clock': d_add(0, [(0, 1)]) + d_answer() +
    d_command(0x4400) + bytes([D_CLOCK, 9]) * 3 + d_answer(),
    'raw-extents': d_add(0, [(U64 + 1 - 2 * MiB, 4 * MiB), (0, 0)],
                         raw=True) +
    d_release(0, [(0, U64)], raw=True),
}


def write_device_dict():
    lines = ['# libFuzzer dictionary of the device target, written by'
             ' make-corpus.py',
             dict_bytes('answer_all', d_answer()),
             dict_bytes('add_one', d_add(0, [(0, 1)])),
             dict_bytes('release_one', d_release(0, [(0, 1)])),
             dict_bytes('release_forced', d_release(0, [(0, 1)], forced=True)),
             dict_bytes('reset', bytes([D_RESET]))]
    lines += [dict_u64('u64_' + n, v) for n, v in COMMON_U64]
    lines += [dict_u32('u32_' + n, v) for n, v in COMMON_U32]
    with open(os.path.join(HERE, 'device.dict'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    for target, inputs in seeds.items():
        d = os.path.join(HERE, 'corpus', target)
        os.makedirs(d, exist_ok=True)
        # Seeds are NN-name; inputs kept from fuzzing (finding-*) stay
        for old in os.listdir(d):
            if old[:2].isdigit() and old[2:3] == '-':
                os.remove(os.path.join(d, old))
        for i, (name, data) in enumerate(inputs.items()):
            with open(os.path.join(d, '%02d-%s' % (i, name)), 'wb') as f:
                f.write(data)
    more_hdr = [dict_bytes('flags_more', b'\x01\x00\x00\x00'),
                dict_bytes('chunk_ops', b'\x10\x80'),
                dict_bytes('entry_one_block',
                           struct.pack('<QQ8x', 0, 2 * MiB))]
    write_dict('add-response', more_hdr)
    write_dict('release', more_hdr)
    write_dict('get-extents', [dict_bytes('chunk_ops', b'\x10\x80'),
                               dict_bytes('get_all', ext_list(50, 0))])
    write_dict('region-layout', [
        dict_bytes('compact_2m', region_compact(21, 0, 1, 64)),
        dict_bytes('compact_64b', region_compact(6, 0, 1, 16)),
        dict_u64('decode_unaligned', 256 * MiB + 64),
        dict_u64('non_pow2', 3 * MiB)])
    write_dict('fm-initiate', [
        dict_bytes('add_prescriptive', b'\x00\x00\x02\x00'),
        dict_bytes('release_prescriptive', b'\x00\x00\x01\x00'),
        dict_bytes('release_forced_sanitize', b'\x00\x00\x31\x00'),
        dict_bytes('tag', TAG),
        dict_bytes('chunk_ops', b'\x10\x80')])
    write_dict('sequence', [])
    write_generic_dict()
    write_device_dict()
    write_dict('load', [
        dict_bytes('src_ops_len', b'\x40\x00'),
        dict_bytes('mut_copy_dpa', field(EXTENTS, 1, F_DPA, M_COPY)),
        dict_bytes('mut_group', field(EXTENTS, 2, F_GROUP, M_STEP, b'\x01')),
        dict_bytes('mut_kind', field(EXTENTS, 0, F_KIND, M_SMALL, b'\x01')),
        dict_bytes('mut_edge', field(EXTENTS, 0, F_DPA, M_EDGE, b'\x01')),
        dict_bytes('mut_len_step', field(EXTENTS, 0, F_LEN, M_BLOCKS)),
        dict_bytes('mut_dup_extent', shape(EXTENTS, 1)),
        dict_bytes('mut_del_group', shape(GROUPS, 0)),
        dict_bytes('mut_next_id', scalar(1, M_ZERO)),
        dict_bytes('dst_itself', b'\x10'),
        dict_bytes('dst_other_layout', b'\x82')])


if __name__ == '__main__':
    main()
