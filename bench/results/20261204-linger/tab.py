"""tab.py ROOT NAME...: the per-process CPU table of run.sh's runs, with the
average group size (members per group commit, warm-up included)."""
import json, re, sys

root, names = sys.argv[1], sys.argv[2:]
procs = ['order-command', 'mariadb', 'load-generator', 'order-projector', 'order-query', 'mongo-stand-in', 'outbox-relay', 'kafka']
print('| run | env | CPU/order | ' + ' | '.join(procs) + ' | group size | PlaceOrder p50 / p99 | fresh p99 | raw tx/s | errors |')
print('|' + '---|' * (len(procs) + 8))
for n in names:
    d = json.load(open(f'{root}/{n}/dayrun.json'))
    env = open(f'{root}/{n}/env').read().removeprefix('services:').strip() or '(defaults)'
    nums = [float(x) for x in re.findall(r'\} (\d+)', open(f'{root}/{n}/groups.txt').read())]
    size = (nums[0] + nums[2]) / (nums[1] + nums[3])
    c = d['cpu']
    po = c['orders']
    per = [1000 * c['seconds'].get(p, 0) / po for p in procs]
    print(f"| {n} | {env} | {1000 * c['totalSeconds'] / po:.3f} | " + ' | '.join(f'{x:.3f}' for x in per) +
          f" | {size:.2f} | {d['place']['p50Ms']:.1f} / {d['place']['p99Ms']:.1f} | {d['freshness']['p99Ms']:.0f} | {d['raw']['perSecond']:.0f} | {d['errors']} |")
