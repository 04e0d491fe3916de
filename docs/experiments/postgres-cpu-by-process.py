#!/usr/bin/env python3
"""PostgreSQL's CPU split by kind of process, second by second.

    python3 docs/experiments/postgres-cpu-by-process.py sample FILE [PGDATA]   (until interrupted)
    python3 docs/experiments/postgres-cpu-by-process.py split FILE

`sample` reads, once a second, the CPU ticks (user + system, /proc/<pid>/stat) of the
postmaster and every child of it, with the child's title (backend, walwriter, ...),
and the ticks of children that have exited (the postmaster's cutime + cstime, as
pid 0). `split` prints each second's ticks by kind. Backends that exit show up
under "exited" too (their ticks move there): only "exited" ticks in seconds
where no backend disconnects are other children's, autovacuum workers' mostly.
"""
import collections
import os
import sys
import time


def sample(path, pgdata):
    postmaster = int(open(os.path.join(pgdata, 'postmaster.pid')).readline())
    with open(path, 'w') as out:
        while True:
            now = time.time()
            for pid in filter(str.isdigit, os.listdir('/proc')):
                try:
                    stat = open(f'/proc/{pid}/stat').read()
                    title = open(f'/proc/{pid}/cmdline').read().replace('\0', ' ').strip()
                except OSError:
                    continue  # exited meanwhile
                fields = stat[stat.rindex(')') + 2:].split()
                if int(pid) != postmaster and int(fields[1]) != postmaster:
                    continue
                out.write(f'{now:.2f} {pid} {int(fields[11]) + int(fields[12])} {title}\n')
                if int(pid) == postmaster:
                    out.write(f'{now:.2f} 0 {int(fields[13]) + int(fields[14])} exited\n')
            out.flush()
            time.sleep(1)


def kind(title):
    for name in ['exited', 'autovacuum worker', 'autovacuum launcher', 'checkpointer', 'background writer',
                 'walwriter', 'logical replication']:
        if name in title:
            return name
    return 'postmaster' if not title.startswith('postgres:') else 'backends'


def split(path):
    ticks = collections.defaultdict(dict)  # time -> pid -> (ticks, title)
    for line in open(path):
        at, pid, value, title = line.rstrip('\n').split(' ', 3)
        ticks[float(at)][int(pid)] = (int(value), title)
    times = sorted(ticks)
    for before, after in zip(times, times[1:]):
        by_kind = collections.Counter()
        for pid, (value, title) in ticks[after].items():
            # A process first seen now counts from zero; the exited-children total from its first reading.
            start = ticks[before].get(pid, (value if pid == 0 else 0, ''))[0]
            by_kind[kind(title)] += value - start
        print(f'{after - times[0]:7.1f} s  total {sum(by_kind.values()):4d}  ' +
              '  '.join(f'{name}={n}' for name, n in sorted(by_kind.items()) if n))


if __name__ == '__main__':
    if sys.argv[1:2] == ['sample']:
        sample(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else '/var/tmp/kvworker/pgdata')
    elif sys.argv[1:2] == ['split']:
        split(sys.argv[2])
    else:
        sys.exit(__doc__)
