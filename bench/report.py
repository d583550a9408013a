#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Summarize the samples of dcd/bench.sh: print the table of both QEMU
# binaries side by side with their ratio, write results.csv, and draw
# latency against extent count with gnuplot.
#
# Usage: report.py OUTDIR
#   OUTDIR/raw.csv          variant,workload,n,value,unit,note (dcd-bench)
#   OUTDIR/engine-wall.csv  engine,op,n,value,unit (dc-engine-bench wall)
#   OUTDIR/callgrind/       callgrind dumps of dc-engine-bench callgrind
# writes OUTDIR/results.csv, OUTDIR/results.png (OUTDIR/plot/ its data).

import csv
import glob
import os
import re
import statistics
import subprocess
import sys

OUT = sys.argv[1]

# Where the base cannot run a workload, or where what it does is not
# the same work as ours, the table says so instead of a ratio.
UPSTREAM_MAX = 512


def load_samples():
    samples = {}    # (variant, workload, n) -> [values]
    notes = {}
    units = {}
    failures = []
    with open(os.path.join(OUT, 'raw.csv')) as f:
        # libqtest's "# starting QEMU: ..." lines go to stdout too
        for row in csv.reader(line for line in f if not line.startswith('#')):
            if not row or row[0] == 'variant':
                continue
            variant, workload, n = row[0], row[1], int(row[2])
            if workload == 'FAILED':
                failures.append((variant, row[5], n))
                continue
            key = (variant, workload, n)
            samples.setdefault(key, []).append(float(row[3]))
            units[key] = row[4]
            if row[5]:
                notes[key] = row[5]
    return samples, notes, units, failures


def stats(samples, key):
    v = samples.get(key)
    if not v:
        return None
    return statistics.median(v), min(v), max(v), len(v)


def fmt_time(us):
    if us is None:
        return '-'
    if us >= 1e6:
        return '%.2f s' % (us / 1e6)
    if us >= 1e3:
        return '%.2f ms' % (us / 1e3)
    return '%.0f us' % us


def fmt_rate(v):
    return '-' if v is None else '%.1f MB/s' % v


def note_of(notes, key):
    return notes.get(key, '')


def kv(note):
    return dict(p.split('=', 1) for p in note.split(';') if '=' in p)


def main():
    samples, notes, units, failures = load_samples()
    rows = []       # dicts for results.csv and the table

    def add_row(workload, label, n, up_key, our_key, higher_better=False,
                comparable=True, note=''):
        up = stats(samples, up_key) if up_key else None
        ours = stats(samples, our_key) if our_key else None
        ratio = None
        if up and ours and comparable and up[0] > 0 and ours[0] > 0:
            ratio = ours[0] / up[0] if higher_better else up[0] / ours[0]
        rows.append({
            'workload': workload, 'label': label, 'n': n,
            'upstream': up, 'ours': ours, 'ratio': ratio,
            'unit': units.get(our_key or up_key, 'us'), 'note': note,
            'comparable': comparable, 'higher_better': higher_better,
        })

    sizes = sorted({k[2] for k in samples if k[1] == 'qmp-add'})

    for n in sizes:
        add_row('qmp-add', 'QMP add, 1 request', n,
                ('upstream', 'qmp-add', n) if n <= UPSTREAM_MAX else None,
                ('ours', 'qmp-add', n),
                note='' if n <= UPSTREAM_MAX else 'upstream: not run (>512)')
    for n in sizes:
        up_key = ('upstream', 'add-accept-1req', n)
        up_note = kv(note_of(notes, up_key))
        same = (up_key in samples and
                int(up_note.get('accepted', -1)) == n)
        note = ''
        if up_key in samples:
            note = 'upstream: %s of %d records reached the host, %s accepted' % (
                up_note.get('reached', '?'), n, up_note.get('accepted', '?'))
            rc = note_of(notes, up_key).split(';')[-1]
            if rc and '=' not in rc and rc != 'overflow':
                note += ' (%s)' % rc
            if same:
                note = ''
        elif n > UPSTREAM_MAX:
            note = 'upstream: not run (>512)'
        add_row('add-accept-1req', 'add+accept, 1 request', n,
                up_key if n <= UPSTREAM_MAX else None,
                ('ours', 'add-accept-1req', n), comparable=same, note=note)
    for n in sorted({k[2] for k in samples if k[1] == 'add-accept-batch8'}):
        up_key = ('upstream', 'add-accept-batch8', n)
        up_note = kv(note_of(notes, up_key))
        acc = int(up_note.get('accepted', n))
        add_row('add-accept-batch8', 'add+accept, requests of 8', n, up_key,
                ('ours', 'add-accept-batch8', n),
                note='' if acc == n else
                'upstream stops at %d accepted (RESOURCES_EXHAUSTED)' % acc)
    for n in sorted({k[2] for k in samples if k[1] == 'add-accept-batch8'}):
        up_key = ('upstream', 'add-accept-batch8', n)
        acc = int(kv(note_of(notes, up_key)).get('accepted', n))
        add_row('add-accept-best', 'add+accept: ours 1 req vs upstream 8s',
                n, up_key, ('ours', 'add-accept-1req', n),
                note='' if acc == n else 'upstream: %d extents' % acc)
    for wl, label in (('extent-list', 'Get DC Extent List, all pages'),
                      ('release-span', 'Release DC, 1 span over N')):
        for n in sizes:
            up_key = ('upstream', wl, n)
            ext = kv(note_of(notes, up_key)).get('extents')
            note = ''
            if n > UPSTREAM_MAX:
                note = 'upstream: cannot hold N extents'
            elif ext:
                note = 'upstream: %s extents (its most)' % ext
            add_row(wl, label, n, up_key if n <= UPSTREAM_MAX else None,
                    ('ours', wl, n), note=note)
    for wl, label in (('qmp-release-tag', 'QMP tag-based release'),
                      ('release-tag', 'tag release until host released')):
        for n in sizes:
            add_row(wl, label, n, None, ('ours', wl, n),
                    note='upstream: no tag-based release')
    for wl, label in (('mem-write', 'DC memory write via CFMW'),
                      ('mem-read', 'DC memory read via CFMW')):
        for n in sorted({k[2] for k in samples if k[1] == wl}):
            add_row(wl, label, n, ('upstream', wl, n), ('ours', wl, n),
                    higher_better=True, note='N = MiB moved')

    # Engine: wall clock and callgrind
    wall = {}
    with open(os.path.join(OUT, 'engine-wall.csv')) as f:
        for row in csv.reader(f):
            if row and row[0] == 'engine':
                wall[(row[1], int(row[2]))] = float(row[3])
    ir = {}
    for path in glob.glob(os.path.join(OUT, 'callgrind', 'cg.out.*')):
        desc = total = None
        with open(path) as f:
            for line in f:
                m = re.match(r'desc: Trigger: Client Request: '
                             r'op=(\S+) n=(\d+) k=(\d+)', line)
                if m:
                    desc = (m.group(1), int(m.group(2)), int(m.group(3)))
                elif line.startswith('summary:'):
                    total = int(line.split()[1])
        if desc and total is not None:
            ir[(desc[0], desc[1])] = total / desc[2]

    # The table
    print()
    print('%-38s %6s %11s %11s %7s  %s' % ('workload (median)', 'N',
                                          'upstream', 'ours', 'ratio',
                                          'note'))
    print('-' * 100)
    last = None
    for r in rows:
        if r['upstream'] is None and r['ours'] is None:
            continue
        if last and last != r['workload']:
            print()
        last = r['workload']
        f = fmt_rate if r['higher_better'] else fmt_time
        up = f(r['upstream'][0]) if r['upstream'] else '-'
        ours = f(r['ours'][0]) if r['ours'] else '-'
        ratio = '%.2f' % r['ratio'] if r['ratio'] else '-'
        print('%-38s %6d %11s %11s %7s  %s' % (r['label'], r['n'], up, ours,
                                              ratio, r['note']))
    print()
    print('ratio: upstream/ours for times, ours/upstream for throughput:'
          ' above 1 means ours is faster')

    ops = ['add-accept', 'insert', 'lookup', 'split', 'release',
           'release-requested', 'list-seq', 'list-random']
    cg_sizes = sorted({k[1] for k in ir})
    print()
    print('DC engine alone (hw/cxl/cxl-dc.c): per operation, wall clock and'
          ' callgrind instructions (Ir)')
    print('%-18s %12s %12s %10s %10s %8s %8s' % (
        'operation', 'ops/s @64', 'ops/s @64Ki', 'Ir @64', 'Ir @64Ki',
        'Ir x', 'wall x'))
    print('-' * 84)
    engine_rows = []
    for op in ops:
        w64, wbig = wall.get((op, 64)), wall.get((op, 65536))
        i64, ibig = ir.get((op, 64)), ir.get((op, 65536))
        irx = ibig / i64 if i64 and ibig else None
        wx = w64 / wbig if w64 and wbig else None
        engine_rows.append((op, w64, wbig, i64, ibig, irx, wx))
        print('%-18s %12s %12s %10s %10s %8s %8s' % (
            op, '%.0f' % w64 if w64 else '-', '%.0f' % wbig if wbig else '-',
            '%.0f' % i64 if i64 else '-', '%.0f' % ibig if ibig else '-',
            '%.2f' % irx if irx else '-', '%.1f' % wx if wx else '-'))
    bpe = wall.get(('bytes-per-extent', 65536))
    sz = wall.get(('sizeof-extent', 65536))
    print('memory at 65536 accepted extents: %.0f heap bytes per extent'
          ' (struct CXLDCExtent: %d bytes)' % (bpe or 0, sz or 0))
    print('Ir x = instructions per operation at 65536 / at 64 extents'
          ' (per extent for add-accept, list-seq); wall x likewise in time')

    # Goals
    print()
    print('Goals')
    slower = [r for r in rows if r['ratio'] and r['ratio'] < 1.0]
    comparable = [r for r in rows if r['ratio']]
    if slower:
        print('  never slower than upstream: NOT MET in %d of %d comparable'
              ' rows:' % (len(slower), len(comparable)))
        for r in slower:
            spread = ''
            if r['upstream'] and r['ours']:
                spread = ' (upstream %s..%s, ours %s..%s over %d/%d samples)' % (
                    tuple((fmt_rate if r['higher_better'] else fmt_time)(x)
                          for x in (r['upstream'][1], r['upstream'][2],
                                    r['ours'][1], r['ours'][2])) +
                    (r['upstream'][3], r['ours'][3]))
            overlap = (r['upstream'][1] <= r['ours'][2] and
                       r['ours'][1] <= r['upstream'][2])
            print('    %s N=%d: ratio %.2f%s%s' % (
                r['label'], r['n'], r['ratio'], spread,
                ': min..max ranges overlap' if overlap else ''))
    else:
        print('  never slower than upstream: met in all %d comparable rows'
              % len(comparable))
    best = [r for r in rows if r['workload'] == 'add-accept-best'
            and r['n'] == 512]
    if best and best[0]['ratio']:
        r = best[0]
        print('  add+accept of 512 >= 10x faster: %s, %.1fx (ours: 512 in'
              ' 1 request, %s; upstream: %s, the most it accepts, in'
              ' requests of 8, %s; in 1 request upstream gets 8 of 512'
              ' records and accepts none)'
              % ('MET' if r['ratio'] >= 10 else 'NOT MET', r['ratio'],
                 fmt_time(r['ours'][0]), r['note'].replace('upstream: ', '')
                 or '512', fmt_time(r['upstream'][0])))
    bad = [(op, irx) for op, _, _, _, _, irx, _ in engine_rows
           if irx and irx >= 3]
    good = [(op, irx) for op, _, _, _, _, irx, _ in engine_rows
            if irx and irx < 3]
    print('  per-extent cost 64 -> 65536 < 3x (callgrind): met for %s; %s'
          % (', '.join('%s %.2fx' % g for g in good) or 'none',
             'NOT MET for ' + ', '.join('%s %.0fx' % b for b in bad)
             if bad else 'met for all'))
    for variant, group, n in failures:
        print('  FAILED run: %s %s N=%d (see out/bench/bench.log)'
              % (variant, group, n))

    # results.csv
    with open(os.path.join(OUT, 'results.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['section', 'workload', 'n', 'unit', 'upstream_median',
                    'ours_median', 'ratio', 'upstream_min', 'upstream_max',
                    'ours_min', 'ours_max', 'upstream_samples',
                    'ours_samples', 'note'])
        for r in rows:
            up, ours = r['upstream'], r['ours']
            if not up and not ours:
                continue
            w.writerow(['qemu', r['workload'], r['n'], r['unit'],
                        up and '%.1f' % up[0], ours and '%.1f' % ours[0],
                        r['ratio'] and '%.3f' % r['ratio'],
                        up and '%.1f' % up[1], up and '%.1f' % up[2],
                        ours and '%.1f' % ours[1], ours and '%.1f' % ours[2],
                        up and up[3], ours and ours[3], r['note']])
        for op, w64, wbig, i64, ibig, irx, wx in engine_rows:
            for n, v, unit in ((64, w64, 'ops/s'), (65536, wbig, 'ops/s')):
                if v:
                    w.writerow(['engine-wall', op, n, unit, '', '%.0f' % v,
                                '', '', '', '', '', '', '', ''])
        for (op, n), v in sorted(ir.items()):
            w.writerow(['engine-callgrind', op, n, 'Ir/op', '', '%.0f' % v,
                        '', '', '', '', '', '', '', ''])
        w.writerow(['engine-memory', 'bytes-per-extent', 65536, 'bytes', '',
                    '%.1f' % (bpe or 0), '', '', '', '', '', '', '', ''])

    plot(samples, notes, ir, cg_sizes)


def plot(samples, notes, ir, cg_sizes):
    pdir = os.path.join(OUT, 'plot')
    os.makedirs(pdir, exist_ok=True)
    series = []

    def write(name, title, points, style):
        if not points:
            return
        path = os.path.join(pdir, name + '.dat')
        with open(path, 'w') as f:
            for n, v in points:
                f.write('%d %g\n' % (n, v))
        series.append((path, title, style))

    def points(variant, wl, scale=1e-3, use_extents=False):
        pts = []
        for (v, w, n), vals in sorted(samples.items(), key=lambda x: x[0][2]):
            if v == variant and w == wl:
                x = n
                if use_extents:
                    x = int(kv(notes.get((v, w, n), '')).get('extents', n))
                    x = int(kv(notes.get((v, w, n), '')).get('accepted', x))
                pts.append((x, statistics.median(vals) * scale))
        return pts

    left = []
    for variant, wl, title, style in (
            ('ours', 'qmp-add', 'ours: QMP add', 'lc rgb "#1f77b4" pt 7'),
            ('upstream', 'qmp-add', 'upstream: QMP add',
             'lc rgb "#d62728" pt 7'),
            ('ours', 'add-accept-1req', 'ours: add+accept, 1 request',
             'lc rgb "#1f77b4" pt 5 dt 2'),
            ('ours', 'add-accept-batch8', 'ours: add+accept, requests of 8',
             'lc rgb "#1f77b4" pt 9 dt 3'),
            ('upstream', 'add-accept-batch8',
             'upstream: add+accept, requests of 8',
             'lc rgb "#d62728" pt 9 dt 3')):
        before = len(series)
        write('%s-%s' % (variant, wl), title,
              points(variant, wl, use_extents=wl == 'add-accept-batch8'),
              style)
        left += series[before:]
    right = []
    for variant, wl, title, style in (
            ('ours', 'extent-list', 'ours: Get DC Extent List (all)',
             'lc rgb "#1f77b4" pt 7'),
            ('upstream', 'extent-list', 'upstream: Get DC Extent List (all)',
             'lc rgb "#d62728" pt 7'),
            ('ours', 'release-span', 'ours: Release DC over N',
             'lc rgb "#1f77b4" pt 5 dt 2'),
            ('upstream', 'release-span', 'upstream: Release DC over N',
             'lc rgb "#d62728" pt 5 dt 2'),
            ('ours', 'release-tag', 'ours: tag release until released',
             'lc rgb "#2ca02c" pt 9 dt 3')):
        before = len(series)
        write('%s-%s' % (variant, wl), title,
              points(variant, wl, use_extents=variant == 'upstream'), style)
        right += series[before:]
    engine = []
    for op in ('add-accept', 'insert', 'lookup', 'split', 'release',
               'release-requested', 'list-random'):
        pts = [(n, ir[(op, n)]) for n in cg_sizes if (op, n) in ir]
        before = len(series)
        write('engine-' + op, op, pts, 'pt 7')
        engine += series[before:]

    def plots(lst):
        return ', \\\n     '.join('"%s" using 1:2 with linespoints %s lw 2'
                                  ' title "%s"' % (p, s, t)
                                  for p, t, s in lst)

    gp = os.path.join(pdir, 'results.gp')
    with open(gp, 'w') as f:
        f.write('''set terminal pngcairo size 1800,620 font "sans,10"
set output "%s"
set multiplot layout 1,3 title "qemu-dcd vs upstream QEMU (median latency; lower is better)"
set logscale xy
set grid
set key top left
set xlabel "extents (N)"
set xrange [0.7:100000]
set ylabel "ms"
set title "QMP add and add until accepted"
plot %s
set title "host: extent list walk and releases"
plot %s
set title "DC engine alone: instructions per operation (callgrind)"
set ylabel "instructions"
set xrange [30:100000]
plot %s
unset multiplot
''' % (os.path.join(OUT, 'results.png'), plots(left), plots(right),
           plots(engine)))
    subprocess.run(['gnuplot', gp], check=True)


main()
