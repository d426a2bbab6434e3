import json,sys,os
root=sys.argv[1]
names=sys.argv[2:]
procs=['order-command','mariadb','load-generator','order-projector','order-query','mongo-stand-in','outbox-relay','kafka']
print('| run | env | CPU/order | '+' | '.join(procs)+' | PlaceOrder p99 | fresh p99 | raw tx/s | errors |')
print('|'+'---|'*(len(procs)+7))
for n in names:
    d=json.load(open(f'{root}/{n}/dayrun.json'))
    env=open(f'{root}/{n}/env').read().replace('\n','; ')
    c=d['cpu']; po=c['orders']
    per=[1000*c['seconds'].get(p,0)/po for p in procs]
    print(f"| {n} | {env} | {1000*c['totalSeconds']/po:.3f} | "+' | '.join(f'{x:.3f}' for x in per)+f" | {d['place']['p99Ms']:.1f} | {d['freshness']['p99Ms']:.0f} | {d['raw']['perSecond']:.0f} | {d['errors']} |")
